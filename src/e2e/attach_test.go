//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/balena-os/balena-engine/src/stdstream"
	"golang.org/x/net/websocket"
)

// hijackAttach opens POST /containers/NAME/attach?QUERY as the docker CLI
// does and returns the connection, past the 101 answer.
func hijackAttach(t *testing.T, p paths, name, query string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("unix", p.sock)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /containers/%s/attach?%s HTTP/1.1\r\nHost: engine\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n", name, query)
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 101 ") {
		conn.Close()
		t.Fatalf("attach %s: %q %v", query, status, err)
	}
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("attach headers: %v", err)
		}
		if l == "\r\n" {
			return conn, br
		}
	}
}

// countsFrom1 reads lines from next until it has seen target of them,
// each one more than the one before, from 1: the output of a counter.
func countsFrom1(t *testing.T, what string, target int, next func() (string, error)) {
	t.Helper()
	var pending string
	seen := 0
	deadline := time.Now().Add(60 * time.Second)
	for seen < target {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d lines in 60 s, want %d", what, seen, target)
		}
		chunk, err := next()
		if err != nil {
			t.Fatalf("%s: after line %d: %v", what, seen, err)
		}
		pending += chunk
		for {
			line, rest, ok := strings.Cut(pending, "\n")
			if !ok {
				break
			}
			pending = rest
			if n, err := strconv.Atoi(line); err != nil || n != seen+1 {
				t.Fatalf("%s: line %q after %d (a line lost or sent twice)", what, line, seen)
			}
			seen++
		}
	}
}

// An attach with logs=1&stream=1 sends the log, then the live output,
// with nothing twice and nothing missing in between, however fast the
// container writes: over the hijacked connection and over the WebSocket,
// several times while the container goes on.
func TestE2EAttachLogsThenStream(t *testing.T) {
	p, _, env := withBusybox(t)
	// A counter as fast as the shell's builtins go, slowed a little so
	// that the log stays small.
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "counter", "busybox", "sh", "-c",
		`i=0; while :; do i=$((i+1)); echo $i; j=0; while [ $j -lt 20 ]; do j=$((j+1)); done; done`)
	defer run(t, env, "docker", "rm", "-f", "counter")
	last := func() int {
		n, _ := strconv.Atoi(strings.TrimSpace(run(t, env, "docker", "logs", "--tail", "1", "counter").stdout))
		return n
	}
	eventually(t, 30*time.Second, "counter's first lines", func() bool { return last() > 100 })

	check := func(what string, next func() (string, error)) {
		t.Helper()
		countsFrom1(t, what, last()+20000, next) // well past where the replay ends
	}
	for i := range 3 {
		conn, br := hijackAttach(t, p, "counter", "logs=1&stream=1&stdout=1&stderr=1")
		conn.SetReadDeadline(time.Now().Add(90 * time.Second))
		check(fmt.Sprintf("hijacked attach %d", i), func() (string, error) {
			stream, b, err := stdstream.ReadFrame(br)
			if err == nil && stream != stdstream.Stdout {
				err = fmt.Errorf("a frame of stream %d", stream)
			}
			return string(b), err
		})
		conn.Close()

		wc, err := net.Dial("unix", p.sock)
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := websocket.NewConfig("ws://engine/v1.45/containers/counter/attach/ws?logs=1&stream=1&stdout=1&stderr=1", "http://engine")
		ws, err := websocket.NewClient(cfg, wc)
		if err != nil {
			t.Fatalf("websocket handshake: %v", err)
		}
		ws.SetDeadline(time.Now().Add(90 * time.Second))
		buf := make([]byte, 64<<10)
		check(fmt.Sprintf("WebSocket attach %d", i), func() (string, error) {
			n, err := ws.Read(buf)
			return string(buf[:n]), err
		})
		ws.Close()
	}
}

// A line the container has begun without ending it yet (a prompt) is not
// in the log: an attach with logs=1&stream=1 sends it after the log, as
// the live stream would have had it.
func TestE2EAttachLogsPartialLine(t *testing.T) {
	p, _, env := withBusybox(t)
	run(t, env, "docker", "run", "-d", "-i", "--network", "none", "--name", "prompt", "busybox", "sh", "-c",
		`echo first; printf 'name> '; read x; echo "hello $x"`)
	defer run(t, env, "docker", "rm", "-f", "prompt")
	// The log has its first line: the prompt came after it.
	eventually(t, 30*time.Second, "first line in prompt's log", func() bool {
		return run(t, env, "docker", "logs", "prompt").stdout == "first\n"
	})
	waitProgram(t, env, "prompt", "sh")
	conn, br := hijackAttach(t, p, "prompt", "logs=1&stream=1&stdin=1&stdout=1&stderr=1")
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	var got strings.Builder
	for got.String() != "first\nname> " {
		_, b, err := stdstream.ReadFrame(br)
		if err != nil {
			t.Fatalf("before the input: %q, %v", got.String(), err)
		}
		got.Write(b)
		if got.Len() > len("first\nname> ") {
			t.Fatalf("before the input: %q", got.String())
		}
	}
	io.WriteString(conn, "you\n")
	for {
		_, b, err := stdstream.ReadFrame(br)
		got.Write(b)
		if err != nil {
			break
		}
	}
	if got.String() != "first\nname> hello you\n" {
		t.Errorf("attached: %q", got.String())
	}
}
