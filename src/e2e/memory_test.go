//go:build e2e

package e2e

// End-to-end checks that what a client asks for does not cost the daemon
// memory in proportion to the data it touches.

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// procStatusKiB reads a field of /proc/PID/status ("VmRSS", "VmHWM"), in KiB.
func procStatusKiB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", field, line, err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// rssWindow resets the process's peak RSS and returns its RSS now, so that
// VmHWM after a request is the peak the request caused.
func rssWindow(t *testing.T, pid int) int64 {
	t.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		t.Fatalf("reset the peak RSS: %v", err)
	}
	return procStatusKiB(t, pid, "VmRSS")
}

// appendBigLog appends entries of a 100-byte line to a json-file log until
// it holds size bytes, then the entry "the end".
func appendBigLog(t *testing.T, path string, size int64) int {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	payload := strings.Repeat("y", 100)
	t0 := time.Now().UTC()
	n := 0
	for written := int64(0); written < size; n++ {
		k, _ := fmt.Fprintf(bw, `{"log":"%s %d\n","stream":"stdout","time":"%s"}`+"\n",
			payload, n, t0.Add(time.Duration(n)*time.Microsecond).Format(time.RFC3339Nano))
		written += int64(k)
	}
	fmt.Fprintf(bw, `{"log":"the end\n","stream":"stderr","time":"%s"}`+"\n", t0.Add(time.Duration(n)*time.Microsecond).Format(time.RFC3339Nano))
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	return n + 1
}

// attachLogs attaches with logs=1 and no stream, reading Docker's frames
// as they come: the number of frames and the last one's payload.
func attachLogs(t *testing.T, sock, name string) (int, string) {
	t.Helper()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Minute))
	fmt.Fprintf(conn, "POST /containers/%s/attach?logs=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: engine\r\nContent-Length: 0\r\n\r\n", name)
	br := bufio.NewReaderSize(conn, 1<<20)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 200 ") {
		t.Fatalf("attach: %q %v", status, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	frames, last := 0, []byte(nil)
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err == io.EOF {
			return frames, string(last)
		} else if err != nil {
			t.Fatalf("attach stream after %d frames: %v", frames, err)
		}
		size := binary.BigEndian.Uint32(hdr[4:])
		if cap(last) < int(size) {
			last = make([]byte, size)
		}
		last = last[:size]
		if _, err := io.ReadFull(br, last); err != nil {
			t.Fatal(err)
		}
		frames++
	}
}

// docker logs --tail 1 of a 100 MB json-file log reads its end, not the
// whole log into memory; attach with logs=1 streams the whole of it. The
// daemon's peak RSS is measured during each request.
func TestE2ELogsMemory(t *testing.T) {
	p, d, env := withBusybox(t)
	pid := d.cmd.Process.Pid
	for _, name := range []string{"big", "small"} {
		if r := run(t, env, "docker", "run", "--network", "none", "--name", name, "busybox", "echo", "first"); r.code != 0 {
			t.Fatalf("run: %d %q", r.code, r.stderr)
		}
	}
	logPath := strings.TrimSpace(run(t, env, "docker", "inspect", "--format", "{{.LogPath}}", "big").stdout)
	entries := appendBigLog(t, logPath, 100<<20)
	fi, err := os.Stat(logPath)
	if err != nil {
		t.Fatal(err)
	}
	// The code of a logs request is paged in before the measure.
	if r := run(t, env, "docker", "logs", "--tail", "1", "small"); r.stdout != "first\n" {
		t.Fatalf("logs --tail 1 of a small log: %q %q", r.stdout, r.stderr)
	}

	before := rssWindow(t, pid)
	start := time.Now()
	r := run(t, env, "docker", "logs", "--tail", "1", "big")
	took := time.Since(start)
	peak := procStatusKiB(t, pid, "VmHWM")
	t.Logf("docker logs --tail 1 of a %d MiB log (%d entries): %v, daemon RSS %.1f MiB before, peak %.1f MiB (+%.1f MiB)",
		fi.Size()>>20, entries, took.Round(time.Millisecond), float64(before)/1024, float64(peak)/1024, float64(max(0, peak-before))/1024)
	if r.code != 0 || r.stdout != "" || r.stderr != "the end\n" {
		t.Errorf("logs --tail 1: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if peak-before > 32<<10 {
		t.Errorf("logs --tail 1 grew the daemon's RSS by %d KiB", peak-before)
	}

	r = run(t, env, "docker", "logs", "--tail", "2", "--until", time.Now().Add(-time.Hour).Format(time.RFC3339), "big")
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Errorf("logs --tail 2 until an hour ago: %d %q %q", r.code, r.stdout, r.stderr)
	}

	before = rssWindow(t, pid)
	start = time.Now()
	frames, last := attachLogs(t, p.sock, "big")
	took = time.Since(start)
	peak = procStatusKiB(t, pid, "VmHWM")
	t.Logf("attach with logs=1, the whole log: %v, daemon RSS %.1f MiB before, peak %.1f MiB (+%.1f MiB)",
		took.Round(time.Millisecond), float64(before)/1024, float64(peak)/1024, float64(max(0, peak-before))/1024)
	if frames != entries+1 || last != "the end\n" {
		t.Errorf("attach logs=1: %d frames (want %d), last %q", frames, entries+1, last)
	}
	if peak-before > 32<<10 {
		t.Errorf("attach with logs=1 grew the daemon's RSS by %d KiB", peak-before)
	}
}

// openSockets lists a process's open sockets by inode ("socket:[N]").
func openSockets(t *testing.T, pid int) map[string]bool {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	for _, e := range ents {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); err == nil && strings.HasPrefix(l, "socket:") {
			set[l] = true
		}
	}
	return set
}

// waitSockets waits until ok(the daemon's open sockets) or the deadline.
func waitSockets(t *testing.T, pid int, ok func(map[string]bool) bool) (map[string]bool, bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		set := openSockets(t, pid)
		if ok(set) || time.Now().After(deadline) {
			return set, ok(set)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// opened lists the sockets of now that were not in before.
func opened(before, now map[string]bool) map[string]bool {
	added := map[string]bool{}
	for s := range now {
		if !before[s] {
			added[s] = true
		}
	}
	return added
}

// An attach to a container that writes nothing is let go as soon as its
// client is gone: the daemon closes the client's connection and its own
// to the monitor then, not at the container's next output.
func TestE2EAttachAbandoned(t *testing.T) {
	p, d, env := withBusybox(t)
	pid := d.cmd.Process.Pid
	if r := run(t, env, "docker", "run", "-d", "--network", "none", "--name", "quiet", "busybox", "sleep", "600"); r.code != 0 {
		t.Fatalf("run: %d %q", r.code, r.stderr)
	}
	for _, input := range []bool{false, true} {
		base := openSockets(t, pid)
		conn, err := net.Dial("unix", p.sock)
		if err != nil {
			t.Fatal(err)
		}
		q := "stream=1&stdout=1&stderr=1"
		if input {
			q += "&stdin=1"
		}
		fmt.Fprintf(conn, "POST /containers/quiet/attach?%s HTTP/1.1\r\nHost: engine\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n", q)
		br := bufio.NewReader(conn)
		status, err := br.ReadString('\n')
		if err != nil || !strings.Contains(status, " 101 ") {
			t.Fatalf("attach: %q %v", status, err)
		}
		if !input {
			conn.(*net.UnixConn).CloseWrite() // as docker attach does with no input
		}
		// The client's connection and the one to the monitor, told apart
		// by inode from those open before: sockets of earlier requests may
		// close meanwhile, and the daemon's own wait on the new container's
		// monitor may open, so counts alone would mislead.
		now, ok := waitSockets(t, pid, func(now map[string]bool) bool { return len(opened(base, now)) >= 2 })
		added := opened(base, now)
		if !ok {
			t.Fatalf("attached: %d sockets opened (%d open, %d before)", len(added), len(now), len(base))
		}
		start := time.Now()
		conn.Close()
		left := func(now map[string]bool) int {
			n := 0
			for s := range added {
				if now[s] {
					n++
				}
			}
			return n
		}
		_, ok = waitSockets(t, pid, func(now map[string]bool) bool { return left(now) <= len(added)-2 })
		t.Logf("stdin=%v: the daemon let the attach go %v after its client left (%d sockets opened by the attach)", input, time.Since(start).Round(time.Millisecond), len(added))
		if !ok {
			t.Errorf("stdin=%v: the client left 10 s ago, the daemon still holds %d of the %d sockets opened by the attach", input, left(openSockets(t, pid)), len(added))
		}
	}
	run(t, env, "docker", "rm", "-f", "quiet")
}
