//go:build e2e

package e2e

// Container logs: the json-file driver's rotation and compression, the
// other drivers, the journal, and a full disk under the log files.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/balena-os/balena-engine/src/internal/testimage"
	"github.com/balena-os/balena-engine/src/stdstream"
)

// json-file with compress=true gzips the rotated files; docker logs reads
// through them.
func TestE2ELogCompress(t *testing.T) {
	_, _, env := withBusybox(t)
	r := run(t, env, "docker", "run", "--network", "none", "--name", "chatty", "--log-opt", "max-size=2k", "--log-opt", "max-file=3",
		"--log-opt", "compress=true", "busybox", "sh", "-c", "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done")
	if r.code != 0 {
		t.Fatalf("run: %d %q", r.code, r.stderr)
	}
	logPath := strings.TrimSpace(run(t, env, "docker", "inspect", "--format", "{{.LogPath}}", "chatty").stdout)
	zipped, _ := filepath.Glob(logPath + ".*.gz")
	if len(zipped) != 2 {
		t.Errorf("gzipped rotated logs: %v", zipped)
	}
	lines := strings.Split(strings.TrimSpace(run(t, env, "docker", "logs", "chatty").stdout), "\n")
	if len(lines) < 40 || lines[len(lines)-1] != "line-199" {
		t.Fatalf("docker logs over compressed files: %d lines, last %q", len(lines), lines[len(lines)-1])
	}
	for i := 1; i < len(lines); i++ {
		var a, b int
		fmt.Sscanf(lines[i-1], "line-%d", &a)
		fmt.Sscanf(lines[i], "line-%d", &b)
		if b != a+1 {
			t.Fatalf("gap between %q and %q", lines[i-1], lines[i])
		}
	}
	run(t, env, "docker", "rm", "chatty")
}

// The log drivers: local (files with Docker's local defaults), none
// (nothing stored, attach still works), and the daemon's default.
func TestE2ELogDrivers(t *testing.T) {
	p, _, env := withBusybox(t, "--log-driver", "local", "--log-opt", "max-size=8k")
	// The daemon's default, recorded in the container.
	r := run(t, env, "docker", "run", "--network", "none", "--name", "loc", "busybox", "sh", "-c",
		`i=0; while [ $i -lt 2000 ]; do echo "line $i"; i=$((i+1)); done`)
	if r.code != 0 || !strings.HasSuffix(r.stdout, "line 1999\n") {
		t.Fatalf("run: %d %q", r.code, r.stderr)
	}
	if r := run(t, env, "docker", "inspect", "--format", "{{.HostConfig.LogConfig.Type}} {{.HostConfig.LogConfig.Config}}", "loc"); r.stdout != "local map[max-size:8k]\n" {
		t.Errorf("inspect: %q %q", r.stdout, r.stderr)
	}
	if r := run(t, env, "docker", "logs", "--tail", "2", "loc"); r.stdout != "line 1998\nline 1999\n" {
		t.Errorf("logs --tail 2: %q %q", r.stdout, r.stderr)
	}
	// 2000 lines of ~60 bytes in 8 KiB files: rotated, 5 files kept, the
	// old ones compressed (local's defaults).
	id := strings.TrimSpace(run(t, env, "docker", "inspect", "--format", "{{.Id}}", "loc").stdout)
	files, _ := filepath.Glob(filepath.Join(p.dataRoot, "containers", id, id+"-json.log*"))
	gz, _ := filepath.Glob(filepath.Join(p.dataRoot, "containers", id, id+"-json.log.*.gz"))
	if len(files) != 5 || len(gz) != 4 {
		t.Errorf("local log files: %v (compressed %v)", files, gz)
	}
	if r := run(t, env, "docker", "info", "--format", "{{.LoggingDriver}} {{.Plugins.Log}}"); r.stdout != "local [json-file local journald none]\n" {
		t.Errorf("info: %q", r.stdout)
	}

	// none: the output still reaches an attached client; nothing is kept.
	r = run(t, env, "docker", "run", "--network", "none", "--log-driver", "none", "--name", "quiet", "busybox", "echo", "not kept")
	if r.code != 0 || r.stdout != "not kept\n" {
		t.Errorf("run --log-driver none: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := run(t, env, "docker", "logs", "quiet"); r.code == 0 || !strings.Contains(r.stderr, "configured logging driver does not support reading") {
		t.Errorf("logs of a none container: %d %q", r.code, r.stderr)
	}
	id = strings.TrimSpace(run(t, env, "docker", "inspect", "--format", "{{.Id}}", "quiet").stdout)
	if files, _ := filepath.Glob(filepath.Join(p.dataRoot, "containers", id, "*.log*")); len(files) != 0 {
		t.Errorf("none stored %v", files)
	}
	// journald on a host without one: a clear error at start.
	if _, err := os.Stat("/run/systemd/journal/socket"); os.IsNotExist(err) {
		r := run(t, env, "docker", "run", "--rm", "--network", "none", "--log-driver", "journald", "busybox", "true")
		if r.code == 0 || !strings.Contains(r.stderr, "journald is not enabled on this host") {
			t.Errorf("journald without a journal: %d %q", r.code, r.stderr)
		}
	}
	// Drivers left out, and options a driver does not take.
	if r := run(t, env, "docker", "run", "--network", "none", "--log-driver", "syslog", "busybox", "true"); r.code == 0 || !strings.Contains(r.stderr, "no log driver named 'syslog' is registered") {
		t.Errorf("syslog: %d %q", r.code, r.stderr)
	}
	// (The docker CLI refuses options for none itself; ours leaves it to
	// the daemon.)
	ours := run(t, nil, engineBin(t), "-H", "unix://"+p.sock, "run", "--network", "none", "--log-driver", "none", "--log-opt", "max-size=1m", "busybox", "true")
	if ours.code == 0 || !strings.Contains(ours.stderr, "unknown log opt 'max-size' for none log driver") {
		t.Errorf("none with options: %d %q", ours.code, ours.stderr)
	}
	if r := run(t, env, "docker", "run", "--network", "none", "--log-driver", "journald", "--log-opt", "max-size=1m", "busybox", "true"); r.code == 0 || !strings.Contains(r.stderr, "unknown log opt 'max-size' for journald log driver") {
		t.Errorf("journald with max-size: %d %q", r.code, r.stderr)
	}
}

// journald: entries carry Docker's fields, and docker logs reads them back
// (through journalctl), following until the container exits. The daemon
// runs in a mount namespace of its own with a journald of its own, so the
// test neither needs nor touches the machine's journal.
func TestE2EJournald(t *testing.T) {
	const journald = "/lib/systemd/systemd-journald"
	if _, err := os.Stat(journald); err != nil {
		t.Skipf("no %s on this machine", journald)
	}
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "journald.pid")
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidfile); err == nil {
			if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 1 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	script := `set -e
for d in /run/systemd /run/log /var/log/journal; do mkdir -p $d; mount -t tmpfs tmpfs $d; done
mkdir -p /run/systemd/journal
` + journald + ` >/dev/null 2>&1 &
echo $! > ` + pidfile + `
for i in $(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done
exec "$@"`
	p, _, env := withBusyboxUnder(t, []string{"unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh"})
	r := run(t, env, "docker", "run", "--network", "none", "--log-driver", "journald", "--log-opt", "tag=app-{{.Name}}", "--name", "jd",
		"busybox", "sh", "-c", "echo to-out; echo to-err >&2; printf no-newline")
	if r.code != 0 || r.stdout != "to-out\nno-newline" || r.stderr != "to-err\n" {
		t.Errorf("run: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = run(t, env, "docker", "logs", "jd")
	if r.stdout != "to-out\nno-newline" || r.stderr != "to-err\n" {
		t.Errorf("logs: %q %q", r.stdout, r.stderr)
	}
	if r := run(t, env, "docker", "logs", "--tail", "1", "jd"); r.stdout+r.stderr != "no-newline" {
		t.Errorf("logs --tail 1: %q %q", r.stdout, r.stderr)
	}
	// Follow a running container until it exits; with --tail 0 only what
	// comes after.
	run(t, env, "docker", "run", "-d", "--network", "none", "--log-driver", "journald", "--name", "jf",
		"busybox", "sh", "-c", "echo before; sleep 1; for i in 1 2 3; do echo tick $i; sleep 0.3; done")
	eventually(t, 20*time.Second, `"before" in jf's log`, func() bool {
		return strings.Contains(run(t, env, "docker", "logs", "jf").stdout, "before")
	})
	r = run(t, env, "docker", "logs", "-f", "--tail", "0", "jf")
	if r.code != 0 || r.stdout != "tick 1\ntick 2\ntick 3\n" {
		t.Errorf("logs -f --tail 0: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := run(t, env, "docker", "logs", "jf"); r.stdout != "before\ntick 1\ntick 2\ntick 3\n" {
		t.Errorf("logs after -f: %q %q", r.stdout, r.stderr)
	}

	// An attach with logs=1&stream=1: the journal's entries up to the
	// attach, then the live output, nothing twice, nothing missing (a
	// counter slow enough for journald's rate limit).
	run(t, env, "docker", "run", "-d", "--network", "none", "--log-driver", "journald", "--name", "jc",
		"busybox", "sh", "-c", `i=0; while :; do i=$((i+1)); echo $i; sleep 0.005; done`)
	defer run(t, env, "docker", "rm", "-f", "jc")
	last := func() int {
		n, _ := strconv.Atoi(strings.TrimSpace(run(t, env, "docker", "logs", "--tail", "1", "jc").stdout))
		return n
	}
	eventually(t, 20*time.Second, "jc's first lines", func() bool { return last() > 10 })
	for i := range 2 {
		conn, br := hijackAttach(t, p, "jc", "logs=1&stream=1&stdout=1&stderr=1")
		conn.SetReadDeadline(time.Now().Add(90 * time.Second))
		countsFrom1(t, fmt.Sprintf("attach %d", i), last()+100, func() (string, error) {
			_, b, err := stdstream.ReadFrame(br)
			return string(b), err
		})
		conn.Close()
	}
}

// A container logging onto a full disk: the daemon and the monitor go on
// serving, the container keeps running (its output is dropped while the
// disk is full, as with Docker), and rotation bounds a log that is limited.
func TestE2ELogsDiskFull(t *testing.T) {
	bin := engineBin(t)
	p := newPaths(t)
	if err := os.MkdirAll(p.dataRoot, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", p.dataRoot, "tmpfs", 0, "size=24m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Unmount(p.dataRoot, syscall.MNT_DETACH) })
	startDaemon(t, exec.Command(bin, p.daemonArgs()...), p.sock)
	env := []string{"DOCKER_HOST=unix://" + p.sock, "DOCKER_CONFIG=" + p.dir}
	archive := filepath.Join(p.dir, "busybox.tar")
	f, _ := os.Create(archive)
	testimage.Archive(f, "busybox:latest", busyboxImage(t))
	f.Close()
	if r := run(t, env, "docker", "load", "-i", archive); r.code != 0 {
		t.Fatal(r.stderr)
	}
	free := func() uint64 {
		var st syscall.Statfs_t
		syscall.Statfs(p.dataRoot, &st)
		return st.Bavail * uint64(st.Bsize)
	}
	chatty := `x=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; while true; do echo $x $x $x $x; done`
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "filler", "busybox", "sh", "-c", chatty)
	deadline := time.Now().Add(60 * time.Second)
	for free() > 64<<10 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := free(); n > 64<<10 {
		t.Fatalf("the disk did not fill: %d bytes free", n)
	}
	time.Sleep(500 * time.Millisecond) // writes failing for a while
	if r := run(t, env, "docker", "ps", "--format", "{{.Names}} {{.State}}"); r.code != 0 || r.stdout != "filler running\n" {
		t.Errorf("ps with a full disk: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := run(t, env, "docker", "exec", "filler", "echo", "still here"); r.code != 0 || r.stdout != "still here\n" {
		t.Errorf("exec with a full disk: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := run(t, env, "docker", "logs", "--tail", "1", "filler"); r.code != 0 || !strings.HasPrefix(r.stdout, "xxxx") {
		t.Errorf("logs with a full disk: %d %.80q %q", r.code, r.stdout, r.stderr)
	}
	if r := run(t, env, "docker", "rm", "-f", "filler"); r.code != 0 {
		t.Fatalf("rm -f with a full disk: %q", r.stderr)
	}
	// The space is back; a limited log stays within max-size x max-file.
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "bounded", "--log-opt", "max-size=512k", "--log-opt", "max-file=3", "busybox", "sh", "-c", chatty)
	id := strings.TrimSpace(run(t, env, "docker", "inspect", "--format", "{{.Id}}", "bounded").stdout)
	logs := filepath.Join(p.dataRoot, "containers", id, id+"-json.log")
	// Rotated up to the last file, then once more, which drops the oldest:
	// the limit is in play.
	ino := func() uint64 {
		var st syscall.Stat_t
		if syscall.Stat(logs+".2", &st) != nil {
			return 0
		}
		return st.Ino
	}
	var last uint64
	eventually(t, 60*time.Second, "the log rotated up to max-file", func() bool { last = ino(); return last != 0 })
	eventually(t, 60*time.Second, "the oldest rotated log dropped", func() bool { return ino() != last })
	files, _ := filepath.Glob(logs + "*")
	var total int64
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			total += fi.Size()
		}
	}
	if len(files) != 3 || total > 3*512<<10 {
		t.Errorf("bounded log: %d files, %d bytes (limit %d)", len(files), total, 3*512<<10)
	}
	run(t, env, "docker", "rm", "-f", "bounded")
}

// docker logs --details: each line after its attributes and a space, as
// Docker sends them; the engine's log drivers add no attributes, so a
// space alone. With -t the timestamp, Docker's fixed nine digits, first.
func TestE2ELogsDetails(t *testing.T) {
	_, _, env := withBusybox(t)
	run(t, env, "docker", "run", "--network", "none", "--name", "det", "busybox", "sh", "-c", "echo out1; echo err1 >&2")
	if r := run(t, env, "docker", "logs", "--details", "det"); r.stdout != " out1\n" || r.stderr != " err1\n" {
		t.Errorf("logs --details: %q %q", r.stdout, r.stderr)
	}
	r := run(t, env, "docker", "logs", "--details", "-t", "det")
	if ok, _ := regexp.MatchString(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z  out1\n$`, r.stdout); !ok {
		t.Errorf("logs --details -t: %q", r.stdout)
	}
	if r := run(t, env, "docker", "logs", "det"); r.stdout != "out1\n" {
		t.Errorf("logs: %q", r.stdout)
	}
	run(t, env, "docker", "rm", "det")
}
