//go:build e2e

package e2e

// End-to-end tests of our own client's info, top, stats, cp and attach,
// each checked against what the docker CLI makes of the same daemon.

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestE2ECLIInfo(t *testing.T) {
	p, _, env := withBusybox(t)
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "up", "busybox", "sleep", "1000")
	run(t, env, "docker", "create", "--network", "none", "--name", "down", "busybox", "true")
	r := ours(t, p, "info")
	if r.code != 0 {
		t.Fatalf("info: %d %q", r.code, r.stderr)
	}
	for _, want := range []string{"Client:\n Version:", "\nServer:\n Containers: 2\n  Running: 1\n  Paused: 0\n  Stopped: 1\n Images: 1\n",
		" Storage Driver: overlay2\n", " Logging Driver: json-file\n", " Cgroup Driver: cgroupfs\n", " Security Options:\n  seccomp\n   Profile: builtin\n",
		" OSType: linux\n", " Docker Root Dir: " + p.dataRoot + "\n", " Debug Mode: false\n", " Live Restore Enabled: true\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("info lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "WARNING: the firewall is not managed (--iptables=false)") {
		t.Errorf("info's warnings: %q", r.stderr)
	}
	// The server's lines are the docker CLI's, label for label.
	d := run(t, env, "docker", "info")
	for _, label := range []string{"Containers", "Running", "Paused", "Stopped", "Images", "Server Version", "Storage Driver",
		"Backing Filesystem", "Logging Driver", "Cgroup Driver", "Cgroup Version", "Swarm", "Kernel Version", "Operating System",
		"OSType", "Architecture", "CPUs", "Total Memory", "Name", "ID", "Docker Root Dir", "Debug Mode", "Live Restore Enabled"} {
		line := ""
		for _, l := range strings.Split(d.stdout, "\n") {
			if strings.HasPrefix(strings.TrimLeft(l, " "), label+":") && (label != "Debug Mode" || strings.HasPrefix(l, " Debug")) {
				line = l
			}
		}
		if line == "" {
			t.Errorf("docker info has no %q line:\n%s", label, d.stdout)
		} else if !strings.Contains(r.stdout, line+"\n") {
			t.Errorf("info lacks docker's line %q:\n%s", line, r.stdout)
		}
	}
	format := "{{.Containers}} {{.ContainersRunning}} {{.Images}} {{.Driver}} {{.OSType}} {{.NCPU}} {{.LiveRestoreEnabled}} {{.ID}}"
	r, d = ours(t, p, "info", "--format", format), run(t, env, "docker", "info", "--format", format)
	if r.code != 0 || r.stdout != d.stdout || !strings.HasPrefix(r.stdout, "2 1 1 overlay2 linux ") {
		t.Errorf("info --format: %q %q, docker's %q", r.stdout, r.stderr, d.stdout)
	}
	var info map[string]any
	r = ours(t, p, "system", "info", "--format", "{{json .}}")
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil || info["DockerRootDir"] != p.dataRoot || info["Driver"] != "overlay2" {
		t.Errorf("system info --format '{{json .}}': %v %q", err, r.stdout)
	}
	if r := ours(t, p, "info", "--format", "{{.Nope}}"); r.code == 0 {
		t.Errorf("a template on a missing field succeeded: %q", r.stdout)
	}
	if r := ours(t, p, "info", "extra"); r.code != 125 {
		t.Errorf("info with an argument: %d %q", r.code, r.stderr)
	}
	run(t, env, "docker", "rm", "-f", "up", "down")
}

func TestE2ECLITopAndStats(t *testing.T) {
	p, _, env := withBusybox(t)
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "spin", "-m", "64m", "busybox",
		"sh", "-c", "while true; do :; done")
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "sleeper", "busybox", "sleep", "1000")
	waitProgram(t, env, "spin", "sh")
	waitProgram(t, env, "sleeper", "sleep")

	r := ours(t, p, "top", "sleeper")
	d := run(t, env, "docker", "top", "sleeper")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "UID PID PPID C STIME TTY TIME CMD" ||
		!strings.HasSuffix(lines[1], "sleep 1000") {
		t.Errorf("top: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r.stdout != d.stdout {
		t.Errorf("top %q, docker top %q", r.stdout, d.stdout)
	}
	if r := ours(t, p, "container", "top", "sleeper", "-ef"); r.code != 0 || !strings.Contains(r.stdout, "sleep 1000") {
		t.Errorf("container top with ps options: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := ours(t, p, "top", "nothing-here"); r.code != 1 || !strings.Contains(r.stderr, "No such container") {
		t.Errorf("top of an unknown container: %d %q", r.code, r.stderr)
	}
	if r := ours(t, p, "top"); r.code != 125 {
		t.Errorf("top without a container: %d", r.code)
	}

	r = ours(t, p, "stats", "--no-stream", "spin")
	lines = strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 2 {
		t.Fatalf("stats --no-stream: %d %q %q", r.code, r.stdout, r.stderr)
	}
	header := regexpFields(lines[0])
	if strings.Join(header, "|") != "CONTAINER ID|NAME|CPU %|MEM USAGE / LIMIT|MEM %|NET I/O|BLOCK I/O|PIDS" {
		t.Errorf("stats header %q", lines[0])
	}
	row := regexpFields(lines[1])
	if len(row) != 8 || row[1] != "spin" || !strings.HasSuffix(row[3], "/ 64MiB") {
		t.Fatalf("stats row %q", lines[1])
	}
	if pids, err := strconv.Atoi(row[7]); err != nil || pids < 1 {
		t.Errorf("stats PIDS %q", row[7])
	}
	if cpu, _ := strconv.ParseFloat(strings.TrimSuffix(row[2], "%"), 64); cpu < 20 {
		t.Errorf("a busy loop at %s CPU", row[2])
	}
	// --format as docker's; no container named: the running ones.
	format := "{{.Name}} {{.PIDs}} {{.NetIO}}"
	r = ours(t, p, "stats", "--no-stream", "--format", format)
	// The docker CLI gives up on a sample that takes it over two seconds
	// (ours come a second apart): under load it may print nothing.
	for i := 0; i < 3; i++ {
		if d = run(t, env, "docker", "stats", "--no-stream", "--format", format, "spin", "sleeper"); strings.Count(d.stdout, "\n") == 2 {
			break
		}
	}
	sorted := func(s string) string {
		l := strings.Split(strings.TrimSpace(s), "\n")
		sort.Strings(l)
		return strings.Join(l, "\n")
	}
	if r.code != 0 || sorted(r.stdout) != "sleeper 1 0B / 0B\nspin 1 0B / 0B" || sorted(r.stdout) != sorted(d.stdout) {
		t.Errorf("stats --format: %q %q, docker's %q", r.stdout, r.stderr, d.stdout)
	}
	r = ours(t, p, "stats", "--no-stream", "--no-trunc", "--format", "{{.ID}}", "sleeper")
	if id := strings.TrimSpace(run(t, env, "docker", "inspect", "--format", "{{.Id}}", "sleeper").stdout); strings.TrimSpace(r.stdout) != id {
		t.Errorf("stats --no-trunc: %q, want %q", r.stdout, id)
	}
	if r := ours(t, p, "stats", "--no-stream", "nothing-here"); r.code != 1 || !strings.Contains(r.stderr, "No such container") {
		t.Errorf("stats of an unknown container: %d %q", r.code, r.stderr)
	}
	// Streaming: the screen cleared, then a frame a second until stopped.
	cmd := exec.Command(engineBin(t), "-H", "unix://"+p.sock, "stats", "sleeper")
	var out syncBuffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Two frames with the container in them.
	poll(20*time.Second, func() bool {
		s := out.String()
		return strings.Count(s, "\033[H") >= 2 && strings.Count(s, "sleeper") >= 2
	})
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Wait()
	if s := out.String(); !strings.HasPrefix(s, "\033[2J\033[H") || strings.Count(s, "\033[H") < 2 || !strings.Contains(s, "sleeper") {
		t.Errorf("streamed stats: %q", s)
	}
	run(t, env, "docker", "rm", "-f", "spin", "sleeper")
}

// regexpFields splits a table line on runs of two or more spaces.
func regexpFields(line string) []string {
	var out []string
	for _, f := range strings.Split(line, "  ") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// tree lists what is under dir: each path, its kind, its contents or
// target, so that two copies can be compared.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			b.WriteString(rel + " -> " + l + "\n")
		case fi.IsDir():
			b.WriteString(rel + "/\n")
		default:
			c, _ := os.ReadFile(p)
			b.WriteString(rel + " = " + strconv.Quote(string(c)) + "\n")
		}
		return nil
	})
	return b.String()
}

func tarNames(t *testing.T, s string) string {
	t.Helper()
	tr := tar.NewReader(strings.NewReader(s))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Errorf("reading a tar: %v", err)
			break
		}
		names = append(names, strings.TrimSuffix(h.Name, "/"))
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

func TestE2ECLICopy(t *testing.T) {
	p, _, env := withBusybox(t)
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "cpc", "busybox", "sh", "-c",
		"mkdir -p /data/sub /ours /theirs; echo v > /data/v; echo w > /data/sub/w; echo hi > /tmp/x; ln -s /tmp/x /tmp/lnk; sleep 1000")
	waitExec(t, env, "cpc", "test", "-L", "/tmp/lnk")

	// From the container: the same cases through our client and docker's,
	// each into a tree of its own; the trees must be alike.
	base := map[string]string{"ours": filepath.Join(p.dir, "ours"), "docker": filepath.Join(p.dir, "docker")}
	for _, dir := range base {
		os.MkdirAll(filepath.Join(dir, "d"), 0o755)
		os.WriteFile(filepath.Join(dir, "existing"), []byte("old\n"), 0o644)
	}
	cp := func(who string, args ...string) result {
		if who == "ours" {
			return ours(t, p, append([]string{"cp"}, args...)...)
		}
		return run(t, env, "docker", append([]string{"cp"}, args...)...)
	}
	for _, c := range []struct {
		src, dst string
		ok       bool
	}{
		{"cpc:/tmp/x", "x", true},               // a file to a new name
		{"cpc:/tmp/x", "d", true},               // into a directory
		{"cpc:/tmp/x", "existing", true},        // over a file
		{"cpc:/data", "d/", true},               // a directory into one
		{"cpc:/data", "newdata", true},          // a directory to a new name
		{"cpc:data/sub", "relative", true},      // a container path is from its root
		{"cpc:/data", "existing", false},        // a directory over a file
		{"cpc:/tmp/x", "missing/", false},       // a missing directory
		{"cpc:/nothing", "d", false},            // nothing there
		{"cpc:/tmp/x", "nodir/sub/file", false}, // no parent
	} {
		for who, dir := range base {
			r := cp(who, c.src, filepath.Join(dir, c.dst)+map[bool]string{true: "/"}[strings.HasSuffix(c.dst, "/")])
			if (r.code == 0) != c.ok {
				t.Errorf("%s cp %s %s: exit %d %q", who, c.src, c.dst, r.code, r.stderr)
			}
		}
	}
	// -L: the link's target, under the link's name.
	for who, dir := range base {
		if r := cp(who, "-L", "cpc:/tmp/lnk", filepath.Join(dir, "followed")); r.code != 0 {
			t.Errorf("%s cp -L: %q", who, r.stderr)
		}
	}
	if o, d := tree(t, base["ours"]), tree(t, base["docker"]); o != d {
		t.Errorf("copies from the container differ:\nours:\n%s\ndocker's:\n%s", o, d)
	}
	// "/.": the directory's contents, not the directory (docker's
	// documented rule; the docker CLI relies on the daemon's archive being
	// rooted at "." for it, which ours is not: our client does not).
	dots := filepath.Join(p.dir, "dots")
	os.Mkdir(dots, 0o755)
	if r := ours(t, p, "cp", "cpc:/data/.", dots); r.code != 0 || tree(t, dots) != "./\nsub/\nsub/w = \"w\\n\"\nv = \"v\\n\"\n" {
		t.Errorf("cp of /. into a directory: %q\n%s", r.stderr, tree(t, dots))
	}
	if r := ours(t, p, "cp", "cpc:/data/.", filepath.Join(p.dir, "dots2")); r.code != 0 || tree(t, filepath.Join(p.dir, "dots2")) != tree(t, dots) {
		t.Errorf("cp of /. to a new name: %q\n%s", r.stderr, tree(t, filepath.Join(p.dir, "dots2")))
	}
	if r := ours(t, p, "cp", "cpc:/nothing", p.dir); !strings.Contains(r.stderr, "Could not find the file /nothing in container") {
		t.Errorf("cp of a missing path: %q", r.stderr)
	}
	if r := ours(t, p, "cp", "cpc:/data", filepath.Join(base["ours"], "existing")); r.stderr != "cannot copy directory\n" {
		t.Errorf("cp of a directory over a file: %q", r.stderr)
	}
	// To stdout: a tar, named as docker names it.
	r, d := ours(t, p, "cp", "cpc:/data", "-"), run(t, env, "docker", "cp", "cpc:/data", "-")
	if r.code != 0 || tarNames(t, r.stdout) != "data data/sub data/sub/w data/v" || tarNames(t, r.stdout) != tarNames(t, d.stdout) {
		t.Errorf("cp to -: %q, docker's %q (%s)", tarNames(t, r.stdout), tarNames(t, d.stdout), r.stderr)
	}

	// Into the container: the same cases into /ours and /theirs.
	in := filepath.Join(p.dir, "in")
	os.MkdirAll(filepath.Join(in, "sub"), 0o755)
	os.WriteFile(filepath.Join(in, "f.txt"), []byte("from the host\n"), 0o644)
	os.WriteFile(filepath.Join(in, "sub", "g"), []byte("g\n"), 0o600)
	os.Symlink("f.txt", filepath.Join(in, "link"))
	for who, root := range map[string]string{"ours": "/ours", "docker": "/theirs"} {
		for _, c := range []struct {
			src, dst string
			ok       bool
		}{
			{in, root + "/", true},                                    // a directory into one
			{in + "/.", root + "/contents", true},                     // its contents to a new name
			{filepath.Join(in, "f.txt"), root + "/renamed.txt", true}, // a file to a new name
			{filepath.Join(in, "f.txt"), root + "/renamed.txt", true}, // over a file
			{in, root + "/renamed.txt", false},                        // a directory over a file
			{filepath.Join(in, "f.txt"), root + "/missing/", false},   // a missing directory
			{filepath.Join(p.dir, "nothing"), root + "/", false},      // nothing here
			{filepath.Join(in, "link"), root + "/", true},             // a symlink as a symlink
			{filepath.Join(in, "link"), root + "/followed", true},     // the same to a new name
		} {
			r := cp(who, c.src, "cpc:"+c.dst)
			if (r.code == 0) != c.ok {
				t.Errorf("%s cp %s %s: exit %d %q", who, c.src, c.dst, r.code, r.stderr)
			}
		}
		if r := cp(who, "-L", filepath.Join(in, "link"), "cpc:"+root+"/deref"); r.code != 0 {
			t.Errorf("%s cp -L to the container: %q", who, r.stderr)
		}
	}
	list := func(root string) string {
		return run(t, env, "docker", "exec", "cpc", "sh", "-c", "cd "+root+" && find . | sort && find . -type f | sort | xargs md5sum && find . -type l | sort | xargs ls -l | sed 's/.* \\.\\//.\\//'").stdout
	}
	if o, d := list("/ours"), list("/theirs"); o != d || !strings.Contains(o, "./in/sub/g") {
		t.Errorf("copies into the container differ:\nours:\n%s\ndocker's:\n%s", o, d)
	}

	// From stdin: a tar extracted in a directory; a hostile one refused.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "piped.txt", Mode: 0o644, Size: 6, Typeflag: tar.TypeReg})
	tw.Write([]byte("piped\n"))
	tw.Close()
	if r := oursWithStdin(t, p, &buf, "cp", "-", "cpc:/tmp"); r.code != 0 {
		t.Errorf("cp - : %d %q", r.code, r.stderr)
	}
	if r := run(t, env, "docker", "exec", "cpc", "cat", "/tmp/piped.txt"); r.stdout != "piped\n" {
		t.Errorf("cp from stdin: %q %q", r.stdout, r.stderr)
	}
	if r := oursWithStdin(t, p, strings.NewReader(""), "cp", "-", "cpc:/tmp/x"); r.code != 1 || !strings.Contains(r.stderr, `destination "cpc:/tmp/x" must be a directory`) {
		t.Errorf("cp - to a file: %d %q", r.code, r.stderr)
	}
	buf.Reset()
	tw = tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "../../escape", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("x"))
	tw.Close()
	if r := oursWithStdin(t, p, &buf, "cp", "-", "cpc:/tmp"); r.code != 1 || !strings.Contains(r.stderr, "path traversal") {
		t.Errorf("a hostile tar from stdin: %d %q", r.code, r.stderr)
	}
	if r := run(t, env, "docker", "exec", "cpc", "ls", "/escape"); r.code == 0 {
		t.Error("the hostile tar wrote /escape")
	}

	// Usage errors, in docker's words.
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"cp", "a", "b"}, 1, "must specify at least one container source"},
		{[]string{"cp", "cpc:/a", "cpc:/b"}, 1, "copying between containers is not supported"},
		{[]string{"cp", "cpc:/a"}, 125, `"balena-engine cp" requires exactly 2 arguments.`},
		{[]string{"cp", "cpc:/tmp/x", filepath.Join(p.dir, "no", "such", "x")}, 1, "invalid output path: directory"},
	} {
		if r := ours(t, p, c.args...); r.code != c.code || !strings.Contains(r.stderr, c.msg) {
			t.Errorf("%q: %d %q", c.args, r.code, r.stderr)
		}
	}
	run(t, env, "docker", "rm", "-f", "cpc")
}

func TestE2ECLIAttach(t *testing.T) {
	p, _, env := withBusybox(t)
	bin := engineBin(t)
	host := []string{"-H", "unix://" + p.sock}

	// Output until the container ends; its exit code is the client's.
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "ticker", "busybox", "sh", "-c",
		`i=0; while [ $i -lt 20 ]; do echo tick $i; i=$((i+1)); sleep 0.2; done; echo bye >&2; exit 3`)
	r := ours(t, p, "attach", "ticker")
	if r.code != 3 || !strings.Contains(r.stdout, "tick 19\n") || r.stderr != "bye\n" {
		t.Errorf("attach: %d %q %q", r.code, r.stdout, r.stderr)
	}
	// A stopped container: refused as docker refuses it.
	r, d := ours(t, p, "attach", "ticker"), run(t, env, "docker", "attach", "ticker")
	want := "You cannot attach to a stopped container, start it first\n"
	if r.code != 1 || r.stderr != want || d.code != 1 || d.stderr != want {
		t.Errorf("attach to a stopped container: %d %q; docker's %d %q", r.code, r.stderr, d.code, d.stderr)
	}
	if r := ours(t, p, "container", "attach", "nothing-here"); r.code != 1 || !strings.Contains(r.stderr, "No such container") {
		t.Errorf("attach to nothing: %d %q", r.code, r.stderr)
	}

	// -i containers get the client's input (closed with it), unless --no-stdin.
	run(t, env, "docker", "run", "-di", "--network", "none", "--name", "reader", "busybox", "sh", "-c", `read x; echo "got $x"; exit 4`)
	waitProgram(t, env, "reader", "sh")
	r = oursWithStdin(t, p, strings.NewReader("hello\n"), "attach", "reader")
	if r.code != 4 || r.stdout != "got hello\n" {
		t.Errorf("attach with input: %d %q %q", r.code, r.stdout, r.stderr)
	}

	// --sig-proxy (the default): Ctrl-C goes to the container, the
	// session goes on until it ends.
	run(t, env, "docker", "run", "-d", "--network", "none", "--name", "trapper", "busybox", "sh", "-c",
		`trap 'echo got INT; exit 7' INT; while true; do echo ready; sleep 0.1; done`)
	cmd := exec.Command(bin, append(host, "attach", "trapper")...)
	var out syncBuffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Attached, and the trap set: the loop's output comes through.
	eventually(t, 20*time.Second, "attached to trapper", func() bool { return strings.Contains(out.String(), "ready") })
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 || !strings.Contains(out.String(), "got INT") {
			t.Errorf("attach with a proxied SIGINT: %v %q", err, out.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Errorf("attach did not end after a proxied SIGINT: %q", out.String())
	}

	// -t: the local terminal in raw mode, keys to the container.
	run(t, env, "docker", "run", "-dit", "--network", "none", "--name", "tty2", "busybox", "sh")
	waitProgram(t, env, "tty2", "sh")
	o := runProgramInPty(t, nil, []string{"echo attached-$((6*7))", "tty", "exit 5"}, bin, append(host, "attach", "tty2")...)
	if !strings.Contains(o, "attached-42") || !strings.Contains(o, "/dev/pts/0") {
		t.Errorf("attach to a -t container: %q", o)
	}
	if r := run(t, env, "docker", "inspect", "--format", "{{.State.ExitCode}}", "tty2"); r.stdout != "5\n" {
		t.Errorf("exit code after attach -t: %q", r.stdout)
	}
	// -t with -i needs a terminal to read from.
	run(t, env, "docker", "run", "-dit", "--network", "none", "--name", "tty3", "busybox", "sh")
	if r := ours(t, p, "attach", "tty3"); r.code != 1 || !strings.Contains(r.stderr, "the input device is not a TTY") {
		t.Errorf("attach -t without a terminal: %d %q", r.code, r.stderr)
	}
	run(t, env, "docker", "rm", "-f", "ticker", "reader", "trapper", "tty2", "tty3")
}
