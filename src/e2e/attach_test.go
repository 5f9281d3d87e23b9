//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/balena-os/balena-engine/src/stdstream"
	containertypes "github.com/moby/moby/api/types/container"
	"golang.org/x/net/websocket"
)

// hijackAttach opens POST /containers/NAME/attach?QUERY as the docker CLI
// does and returns the connection, past the 101 answer.
func hijackAttach(t *testing.T, p paths, name, query string) (net.Conn, *bufio.Reader) {
	t.Helper()
	return hijackPost(t, p, "/containers/"+name+"/attach?"+query, "")
}

// hijackPost sends POST path with a JSON body (or none), asking for the
// connection, and returns it past the 101 answer.
func hijackPost(t *testing.T, p paths, path, body string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("unix", p.sock)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: engine\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 101 ") {
		conn.Close()
		t.Fatalf("POST %s: %q %v", path, status, err)
	}
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("POST %s: headers: %v", path, err)
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

// readUntil reads from r until what it has read contains want.
func readUntil(t *testing.T, r io.Reader, want string) string {
	t.Helper()
	var got strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(got.String(), want) {
		n, err := r.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("waiting for %q: %q, %v", want, got.String(), err)
		}
	}
	return got.String()
}

// detachedBy says whether the daemon ends the client's stream (EOF)
// after it sent keys, key by key as typed; what came meanwhile is read
// and dropped.
func detachedBy(t *testing.T, conn net.Conn, r io.Reader, keys string) bool {
	t.Helper()
	for i := range len(keys) {
		if _, err := conn.Write([]byte{keys[i]}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // a person's keys come apart, and are read apart
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, r)
	return err == nil // EOF, not the deadline
}

// The detach keys: Ctrl-P Ctrl-Q, or those asked for (detachKeys), typed
// in an attached terminal end the client's attach (or exec) and leave the
// container (or the exec's process) running, as Docker's daemon does;
// without a terminal they are the container's input like any other
// bytes. Keys Docker cannot read are refused with its words.
func TestE2EDetachKeys(t *testing.T) {
	p, _, env := withBusybox(t)
	since := strconv.FormatInt(time.Now().Unix(), 10)
	run(t, env, "docker", "run", "-dit", "--network", "none", "--name", "tty", "busybox", "sh")
	defer run(t, env, "docker", "rm", "-f", "tty")
	waitProgram(t, env, "tty", "sh")
	running := func(name string) string {
		return strings.TrimSpace(run(t, env, "docker", "inspect", "--format", "{{.State.Running}}", name).stdout)
	}
	for _, c := range []struct{ query, keys string }{
		{"", "\x10\x11"},
		{"&detachKeys=ctrl-a,x", "\x01x"},
		{"&detachKeys=ctrl-@", "\x00"},
	} {
		conn, br := hijackAttach(t, p, "tty", "stream=1&stdin=1&stdout=1&stderr=1"+c.query)
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		io.WriteString(conn, "echo mark-$((6*7))\n")
		readUntil(t, br, "mark-42")
		if !detachedBy(t, conn, br, c.keys) {
			t.Errorf("attach%s: still attached after %q", c.query, c.keys)
		}
		conn.Close()
		if running("tty") != "true" {
			t.Fatalf("attach%s: the container stopped when its client detached", c.query)
		}
	}
	// Keys that only begin the sequence are the container's.
	conn, br := hijackAttach(t, p, "tty", "stream=1&stdin=1&stdout=1&stderr=1&detachKeys=q,z")
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(conn, "echo aqqb-$((6*7))q\n")
	readUntil(t, br, "aqqb-42q\r\n")
	conn.Close()
	if r := run(t, env, "docker", "events", "--since", since, "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "event=detach", "--format", "{{.Action}} {{.Actor.Attributes.name}}"); strings.Count(r.stdout, "detach tty\n") != 3 {
		t.Errorf("detach events: %q %q", r.stdout, r.stderr)
	}

	// No terminal: the keys are input like any other.
	run(t, env, "docker", "run", "-di", "--network", "none", "--name", "pipe", "busybox", "cat")
	defer run(t, env, "docker", "rm", "-f", "pipe")
	conn, br = hijackAttach(t, p, "pipe", "stream=1&stdin=1&stdout=1&stderr=1")
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(conn, "k\x10\x11\n")
	var out strings.Builder
	for !strings.Contains(out.String(), "k\x10\x11\n") {
		_, b, err := stdstream.ReadFrame(br)
		out.Write(b)
		if err != nil {
			t.Errorf("without a terminal, the container had %q: %v", out.String(), err)
			break
		}
	}
	conn.Close()

	// An exec with a terminal: its client goes, its process stays.
	api := apiClient(t, p)
	id, err := api.ExecCreate(t.Context(), "tty", containertypes.ExecCreateRequest{Cmd: []string{"sh"}, Tty: true,
		AttachStdin: true, AttachStdout: true, DetachKeys: "ctrl-e"})
	if err != nil {
		t.Fatal(err)
	}
	ec, er := hijackPost(t, p, "/exec/"+id+"/start", `{"Tty":true}`)
	ec.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(ec, "echo exec-$((6*7))\n")
	readUntil(t, er, "exec-42")
	if !detachedBy(t, ec, er, "\x05") {
		t.Error("exec: still attached after its detach key")
	}
	ec.Close()
	if in, err := api.ExecInspect(t.Context(), id); err != nil || !in.Running || string(in.DetachKeys) != "\x05" {
		t.Errorf("the exec after its client detached: %+v %v", in, err)
	}

	// Keys Docker cannot read: its words and status (500 for an exec's).
	for _, c := range []struct {
		method, path, body, want string
		code                     int
	}{
		{"POST", "/containers/tty/attach?stream=1&stdin=1&detachKeys=ctrl-1", "", "Invalid detach keys (ctrl-1) provided", 400},
		{"POST", "/containers/tty/start?detachKeys=ctrl-", "", "Invalid detach keys (ctrl-) provided", 400},
		{"POST", "/containers/tty/exec", `{"Cmd":["true"],"DetachKeys":"ab"}`, "Invalid escape keys (ab) provided", 500},
	} {
		if code, body := apiCall(t, p, c.method, c.path, c.body); code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s %s: %d %s, want %d %q", c.method, c.path, code, body, c.code, c.want)
		}
	}
}

// Ctrl-P Ctrl-Q at a terminal, with the docker CLI and ours: attach and
// exec -it end with "read escape sequence" (exit 1), run -it quietly
// (exit 0), and the container, or the exec's shell, runs on.
func TestE2EDetachKeysCLI(t *testing.T) {
	p, _, env := withBusybox(t)
	bin := engineBin(t)
	for _, cli := range []string{"docker", bin + " -H unix://" + p.sock} {
		name := "tty" + strconv.Itoa(len(cli)%7)
		run(t, env, "docker", "run", "-dit", "--network", "none", "--name", name, "busybox", "sh")
		waitProgram(t, env, name, "sh")
		keys := []string{"echo hi-$((6*7))", "\x10\x11"}
		for _, c := range []struct{ args, want string }{
			{"attach " + name, "read escape sequence\nEXIT=1\n"},
			{"exec -it " + name + " sh", "read escape sequence\nEXIT=1\n"},
			{"run -it --network none --label detached=" + name + " busybox sh", "EXIT=0\n"},
		} {
			out := runProgramInPty(t, env, keys, "sh", "-c", "'"+cli+" "+c.args+"; echo EXIT=$?'")
			if !strings.Contains(out, "hi-42\n") || !strings.HasSuffix(out, c.want) {
				t.Errorf("%s %s: %q, want it to end %q", filepath.Base(strings.Fields(cli)[0]), c.args, out, c.want)
			}
		}
		if r := run(t, env, "docker", "ps", "-q", "--filter", "name="+name, "--filter", "status=running"); strings.TrimSpace(r.stdout) == "" {
			t.Errorf("%s: the container stopped", cli)
		}
		if r := run(t, env, "docker", "ps", "-q", "--filter", "label=detached="+name, "--filter", "status=running"); strings.TrimSpace(r.stdout) == "" {
			t.Errorf("%s: the container of run -it stopped", cli)
		}
		if r := run(t, env, "docker", "top", name); strings.Count(r.stdout, " sh\n") < 2 {
			t.Errorf("%s: the exec's shell is gone: %q", cli, r.stdout)
		}
	}
}
