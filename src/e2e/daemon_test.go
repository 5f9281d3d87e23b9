//go:build e2e

package e2e

// End-to-end tests of the built binary (make e2e): the daemon role serving
// the official docker CLI and our own client, socket activation, the
// configuration file, and bad input that must fail clearly and leave
// nothing behind.

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestE2EDaemonServesDockerCLI(t *testing.T) {
	bin := engineBin(t)
	p := newPaths(t)
	d := startDaemon(t, exec.Command(bin, p.daemonArgs()...), p.sock)

	pid, err := os.ReadFile(p.pidfile)
	if err != nil || strings.TrimSpace(string(pid)) != strconv.Itoa(d.cmd.Process.Pid) {
		t.Errorf("pid file = %q, %v; want %d", pid, err, d.cmd.Process.Pid)
	}
	for _, dir := range []string{p.dataRoot, p.execRoot} {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			t.Errorf("%s not created: %v", dir, err)
		}
	}
	// CVE-2021-41091: only root, and root's group, go through these.
	for dir, want := range map[string]os.FileMode{p.dataRoot: 0o710, filepath.Join(p.dataRoot, "volumes"): 0o710, p.execRoot: 0o700} {
		if fi, err := os.Stat(dir); err != nil {
			t.Error(err)
		} else if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %o, want %o", dir, fi.Mode().Perm(), want)
		}
	}

	dockerEnv := []string{"DOCKER_HOST=unix://" + p.sock, "DOCKER_CONFIG=" + p.dir}
	ours := run(t, nil, bin, "--version")
	ourVersion := strings.TrimSuffix(strings.Fields(ours.stdout)[2], ",")

	r := run(t, dockerEnv, "docker", "version")
	if r.code != 0 || !strings.Contains(r.stdout, "Server: balenaEngine") ||
		!strings.Contains(r.stdout, "(minimum version 1.24)") {
		t.Errorf("docker version: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, dockerEnv, "docker", "version", "--format", "{{.Server.Version}} {{.Server.APIVersion}} {{.Server.Os}}")
	if want := ourVersion + " 1.56 linux\n"; r.stdout != want {
		t.Errorf("docker version --format = %q, want %q (stderr %s)", r.stdout, want, r.stderr)
	}

	r = run(t, nil, bin, "-H", "unix://"+p.sock, "version")
	if r.code != 0 || !strings.Contains(r.stdout, "Server: balenaEngine") || !strings.Contains(r.stdout, "Kernel version:") {
		t.Errorf("balena-engine version: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// What is not there yet says so, through the docker CLI too.
	r = run(t, dockerEnv, "docker", "network", "create", "-d", "overlay", "mesh")
	if r.code == 0 || !strings.Contains(r.stderr, `network driver "overlay" is not implemented`) {
		t.Errorf("docker network create -d overlay: exit %d, stderr %q", r.code, r.stderr)
	}

	if err := d.stop(t); err != nil {
		t.Errorf("daemon exit after SIGTERM: %v\n%s", err, d.stderr)
	}
	mustNotExist(t, p.sock, p.pidfile)
}

func TestE2ESocketActivation(t *testing.T) {
	bin := engineBin(t)
	p := newPaths(t)
	l, err := net.Listen("unix", p.sock)
	if err != nil {
		t.Fatal(err)
	}
	f, err := l.(*net.UnixListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	defer l.Close()
	// As systemd does: the socket is fd 3 and LISTEN_PID names the daemon,
	// which the shell's exec makes true.
	args := append([]string{"-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"`, bin}, p.daemonArgs()...)
	args[len(args)-len(p.daemonArgs())+2] = "fd://"
	cmd := exec.Command("sh", args...)
	cmd.ExtraFiles = []*os.File{f}
	d := startDaemon(t, cmd, p.sock)
	r := run(t, []string{"DOCKER_HOST=unix://" + p.sock, "DOCKER_CONFIG=" + p.dir}, "docker", "version", "--format", "{{.Server.APIVersion}}")
	if r.stdout != "1.56\n" {
		t.Errorf("docker version over an activated socket: %q %q", r.stdout, r.stderr)
	}
	if err := d.stop(t); err != nil {
		t.Errorf("daemon exit: %v\n%s", err, d.stderr)
	}

	// fd:// without systemd: a clear error.
	q := newPaths(t)
	args = q.daemonArgs()
	args[2] = "fd://"
	r = run(t, nil, bin, args...)
	if r.code == 0 || !strings.Contains(r.stderr, "no sockets found via socket activation") {
		t.Errorf("fd:// without activation: exit %d, stderr %q", r.code, r.stderr)
	}
	mustNotExist(t, q.pidfile, q.dataRoot, q.execRoot)
}

func TestE2EConfigFile(t *testing.T) {
	bin := engineBin(t)
	p := newPaths(t)
	cfg := `{"hosts": ["unix://` + p.sock + `"], "data-root": "` + p.dataRoot + `", "log-level": "debug"}`
	if err := os.WriteFile(p.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, exec.Command(bin, "daemon", "--config-file", p.config,
		"--exec-root", p.execRoot, "--pidfile", p.pidfile, "--bridge=none", "--iptables=false", "--ip-forward=false"), p.sock)
	if _, err := os.Stat(p.dataRoot); err != nil {
		t.Errorf("data-root from daemon.json not used: %v", err)
	}
	d.stop(t)
	if !strings.Contains(d.stderr.String(), "level=DEBUG") {
		t.Errorf("log-level from daemon.json not applied:\n%s", d.stderr)
	}

	// A setting both in the file and on the command line is refused.
	r := run(t, nil, bin, "daemon", "--config-file", p.config, "--data-root", p.dataRoot+"2",
		"--exec-root", p.execRoot, "--pidfile", p.pidfile)
	if r.code == 0 || !strings.Contains(r.stderr, "specified both as a flag and in the configuration file: data-root") {
		t.Errorf("conflict: exit %d, stderr %q", r.code, r.stderr)
	}
	mustNotExist(t, p.dataRoot+"2", p.sock, p.pidfile)
}

func TestE2EBadInput(t *testing.T) {
	bin := engineBin(t)
	p := newPaths(t)

	cases := []struct {
		name string
		argv []string
		code int // 0: any non-zero
		want string
	}{
		{"unknown daemon flag", []string{"daemon", "--bogus"}, 2, "unknown flag: --bogus"},
		{"unknown client flag", []string{"--bogus", "version"}, 125, "unknown flag: --bogus"},
		{"unknown command", []string{"frobnicate"}, 1, "'frobnicate' is not a balena-engine command"},
		{"init typed by hand", []string{"init"}, 1, "'init' is not a balena-engine command"},
		{"version argument", []string{"version", "extra"}, 125, "accepts no arguments"},
		{"bad log level", append(p.daemonArgs(), "--log-level", "loud"), 2, `invalid log level "loud"`},
		{"tcp host", []string{"daemon", "-H", "tcp://127.0.0.1:2375"}, 2, "tcp:// listeners are not implemented yet"},
		{"socket in a missing directory", []string{"daemon", "-H", "unix://" + filepath.Join(p.dir, "missing", "x.sock"),
			"--data-root", p.dataRoot, "--exec-root", p.execRoot, "--pidfile", p.pidfile, "--config-file", p.config},
			1, "can't create API socket"},
	}
	for _, c := range cases {
		r := run(t, nil, bin, c.argv...)
		if (c.code == 0 && r.code == 0) || (c.code != 0 && r.code != c.code) || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", c.name, r.code, r.stderr, c.code, c.want)
		}
	}
	mustNotExist(t, p.dataRoot, p.execRoot, p.pidfile)

	// A state directory that cannot be made (under a regular file): the
	// socket, PID file and data root made before it are removed again.
	args := p.daemonArgs()
	args[6] = filepath.Join(p.config, "exec")
	r := run(t, nil, bin, args...)
	if r.code != 1 || !strings.Contains(r.stderr, "create exec root") {
		t.Errorf("exec root under a file: exit %d, stderr %q", r.code, r.stderr)
	}
	mustNotExist(t, p.sock, p.pidfile, p.dataRoot)

	// Started under a name that is no role.
	odd := filepath.Join(p.dir, "balena-frob")
	if err := os.Symlink(bin, odd); err != nil {
		t.Fatal(err)
	}
	r = run(t, nil, odd, "version")
	if r.code == 0 || !strings.Contains(r.stderr, `unknown role "balena-frob"`) {
		t.Errorf("unknown role: exit %d, stderr %q", r.code, r.stderr)
	}
	// And the daemon's own names.
	balenad := filepath.Join(p.dir, "balenad")
	if err := os.Symlink(bin, balenad); err != nil {
		t.Fatal(err)
	}
	r = run(t, nil, balenad, "--help")
	if r.code != 0 || !strings.Contains(r.stderr, "Usage: balena-engine daemon") {
		t.Errorf("balenad --help: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestE2ESecondDaemonRefused(t *testing.T) {
	bin := engineBin(t)
	p := newPaths(t)
	first := startDaemon(t, exec.Command(bin, p.daemonArgs()...), p.sock)

	// Same socket: refused before anything is touched; the first keeps
	// its socket and PID file.
	r := run(t, nil, bin, p.daemonArgs()...)
	if r.code == 0 || !strings.Contains(r.stderr, "another daemon is already listening") {
		t.Errorf("second daemon on the same socket: exit %d, stderr %q", r.code, r.stderr)
	}
	// Same PID file, other socket: refused, and its socket is removed.
	q := newPaths(t)
	args := q.daemonArgs()
	args[8] = p.pidfile
	r = run(t, nil, bin, args...)
	if r.code == 0 || !strings.Contains(r.stderr, "pid file found, ensure balena-engine is not running") {
		t.Errorf("second daemon with the same pid file: exit %d, stderr %q", r.code, r.stderr)
	}
	mustNotExist(t, q.sock, q.dataRoot, q.execRoot)

	c := apiClient(t, p)
	if _, err := c.ServerVersion(context.Background()); err != nil {
		t.Errorf("first daemon stopped serving: %v", err)
	}
	if pid, _ := os.ReadFile(p.pidfile); strings.TrimSpace(string(pid)) != strconv.Itoa(first.cmd.Process.Pid) {
		t.Errorf("first daemon's pid file changed: %q", pid)
	}
}
