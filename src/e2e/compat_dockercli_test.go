//go:build e2e

package e2e

// The official docker CLI as an acceptance suite (issue #13), in two
// versions: the machine's current one (docker on PATH, 28.x) and Debian's
// docker.io client (20.10, API 1.41), fetched once with apt-get download
// into a cache outside the clone (dockerCLI2010). Each runs the same checks
// (dockerCLIChecks) against a daemon of its own with networking on, in a
// network namespace of its own (withNetDaemon), with the busybox test image
// loaded and a local registry (testregistry) to pull from and push to,
// reached from that namespace through a relay (relayInto). A check prints
// one line, PASS, FAIL or SKIP, and each CLI a SUMMARY line; a failing
// check named in dockerCLIGaps (an engine gap, with its reason) is a SKIP.
// Expected outputs and exit codes are those Docker documents and its own
// daemon gives; where the two CLI versions differ (their wording, or the
// API version's semantics) a check says which it expects of which.

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/balena-os/balena-engine/src/apiversion"
	"github.com/balena-os/balena-engine/src/internal/testimage"
	"github.com/balena-os/balena-engine/src/internal/testregistry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// dockerCLI2010Cache is where Debian's docker.io client is kept once
// extracted (DOCKER_CLI_2010_CACHE overrides it).
const dockerCLI2010Cache = "/var/cache/balena-engine-test/docker-20.10"

// dockerCLIGaps are the engine's known gaps the suite meets: check name ->
// what the engine does and what Docker does. A failing check listed here
// is a SKIP with that reason and what was seen; one that passes is a PASS
// (and the entry is stale). A key "NAME@API" applies at that API version
// only.
var dockerCLIGaps = map[string]string{}

// dockerCLISummary is the line each CLI's run ends with.
var dockerCLISummary = regexp.MustCompile(`^SUMMARY docker-cli (\S+): (\d+) passed, (\d+) skipped, (\d+) failed$`)

// dockerCLI2010 returns Debian's docker.io client (20.10), fetched with
// apt-get download and extracted (dpkg-deb -x) into the cache the first
// time, and reused from there afterwards.
func dockerCLI2010(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("DOCKER_CLI_2010_CACHE")
	if dir == "" {
		dir = dockerCLI2010Cache
	}
	bin := filepath.Join(dir, "docker")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	work, err := os.MkdirTemp(dir, "fetch-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(work)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	apt := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Dir = work
		return cmd.CombinedOutput()
	}
	// Root downloads into a directory _apt cannot write: say so to apt
	// rather than have it warn.
	dl := []string{"-q", "-o", "APT::Sandbox::User=root", "download", "docker.io"}
	if out, err := apt(dl...); err != nil {
		// A fresh machine may have no package lists yet.
		t.Logf("apt-get download docker.io: %v\n%s\nupdating the package lists", err, out)
		if out, err := apt("-q", "update"); err != nil {
			t.Fatalf("apt-get update: %v\n%s", err, out)
		}
		if out, err := apt(dl...); err != nil {
			t.Fatalf("apt-get download docker.io: %v\n%s", err, out)
		}
	}
	debs, _ := filepath.Glob(filepath.Join(work, "docker.io_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("apt-get download docker.io left %v", debs)
	}
	root := filepath.Join(work, "root")
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", debs[0], root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x %s: %v\n%s", debs[0], err, out)
	}
	// Renamed into place whole: a run beside this one sees it or not.
	if err := os.Rename(filepath.Join(root, "usr", "bin", "docker"), bin); err != nil {
		t.Fatal(err)
	}
	t.Logf("extracted %s from %s", bin, filepath.Base(debs[0]))
	return bin
}

// relayInto makes addr (127.0.0.1:PORT in the test's own network
// namespace) reachable at the same address in h: a listener made in h's
// namespace, each connection to it relayed to addr from here. The daemon
// in h reaches the test's registry through it.
func relayInto(t *testing.T, h netHost, addr string) {
	t.Helper()
	var l net.Listener
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Never unlocked: the thread, in h's namespace now, ends with
		// this goroutine instead of going back to the scheduler.
		runtime.LockOSThread()
		f, e := os.Open(string(h))
		if e != nil {
			err = e
			return
		}
		defer f.Close()
		if e := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); e != nil {
			err = fmt.Errorf("setns %s: %w", h, e)
			return
		}
		l, err = net.Listen("tcp", addr)
	}()
	<-done
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer u.Close()
				go func() {
					io.Copy(u, c)
					u.(*net.TCPConn).CloseWrite()
				}()
				io.Copy(c, u)
			}()
		}
	}()
}

// registryImage is the busybox image with one more layer, a file
// /marker holding text, which the image's command prints.
func registryImage(t *testing.T, text string) testimage.Image {
	t.Helper()
	bb := busyboxImage(t)
	cfg := ocispec.ImageConfig{
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Cmd: []string{"cat", "/marker"},
	}
	return testimage.New(hostPlatform, cfg, bb.Layers[0], testimage.NewLayer(testimage.File{Name: "marker", Body: []byte(text + "\n")}))
}

func TestCompatDockerCLI(t *testing.T) {
	current, err := exec.LookPath("docker")
	if err != nil {
		t.Fatalf("the docker CLI is not installed: %v", err)
	}
	clis := []string{current, dockerCLI2010(t)}
	if v := cliVersion(t, clis[1]); !strings.HasPrefix(v, "20.10.") {
		t.Fatalf("%s is docker %s, not Debian's 20.10 client", clis[1], v)
	}
	if cliVersion(t, current) == cliVersion(t, clis[1]) {
		t.Fatalf("the docker on PATH (%s) is the 20.10 client too: the suite wants the current one (/usr/local/bin/docker) first on PATH", current)
	}

	reg := testregistry.Start(t)
	images := map[string]string{
		"hello":    pushImage(t, reg, "cli/hello:1", registryImage(t, "hello from the registry")),
		"autopull": pushImage(t, reg, "cli/autopull:1", registryImage(t, "pulled by run")),
	}
	start := time.Now()
	for _, bin := range clis {
		version := cliVersion(t, bin)
		t.Run(version, func(t *testing.T) {
			began := time.Now()
			p, h, _, env := withNetDaemon(t)
			relayInto(t, h, reg.Host)
			s := &cliSuite{suiteLog: suiteLog{t: t, suite: "docker-cli", version: version, gaps: dockerCLIGaps, gapsName: "dockerCLIGaps"}, bin: bin, env: env, p: p, h: h, reg: reg.Host, images: images}
			cmd := exec.Command(bin, "version", "--format", "{{.Client.APIVersion}}")
			cmd.Env = append(os.Environ(), env...)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s version: %v", bin, err)
			}
			s.api = strings.TrimSpace(string(out))
			s.println(fmt.Sprintf("# docker-cli %s (%s), API %s", version, bin, s.api))
			for _, c := range dockerCLIChecks {
				s.check(c.name, c.fn)
			}
			s.finish(dockerCLISummary, began)
		})
	}
	t.Logf("both CLIs in %s", time.Since(start).Round(100*time.Millisecond))
}

// cliVersion is a docker CLI's own version (docker --version: "Docker
// version 20.10.24+dfsg1, build 297e128").
func cliVersion(t *testing.T, bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", bin, err)
	}
	m := regexp.MustCompile(`^Docker version ([^,\s]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("%s --version: %q", bin, out)
	}
	return string(m[1])
}

// cliSuite is one CLI's run of the checks against its daemon.
type cliSuite struct {
	suiteLog
	bin    string // the docker CLI
	api    string // the API version it speaks to the daemon
	env    []string
	p      paths
	h      netHost
	reg    string            // the registry, 127.0.0.1:PORT
	images map[string]string // images in the registry, by role
}

// check runs one check of the suite (gaps may be named for an API version).
func (s *cliSuite) check(name string, fn func(*cliSuite)) {
	s.run(name, s.api, func() { fn(s) })
}

// docker runs the CLI to its end (a minute at most) with stdin, if given.
func (s *cliSuite) dockerIn(stdin io.Reader, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Env = append(append(os.Environ(), s.env...), "FROM_CLI_ENV=passed")
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		s.failf("docker %s: no end within a minute", strings.Join(args, " "))
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		s.failf("docker %s: %v", strings.Join(args, " "), err)
	}
	return result{out.String(), errb.String(), code}
}

func (s *cliSuite) docker(args ...string) result { return s.dockerIn(nil, args...) }

// old says whether the CLI is the 20.10 one.
func (s *cliSuite) old() bool { return strings.HasPrefix(s.version, "20.10.") }

// slug is the CLI's version as a repository name's component.
func (s *cliSuite) slug() string {
	return regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(s.version), "-")
}

// ok runs the CLI, which must succeed, and gives its output trimmed.
func (s *cliSuite) ok(args ...string) string {
	r := s.docker(args...)
	if r.code != 0 {
		s.failf("docker %s: exit %d: %s", strings.Join(args, " "), r.code, strings.TrimSpace(r.stderr))
	}
	return strings.TrimSpace(r.stdout)
}

// code runs the CLI, which must exit with want and write what to its
// standard error (if what is not empty).
func (s *cliSuite) code(want int, what string, args ...string) result {
	r := s.docker(args...)
	if r.code != want {
		s.failf("docker %s: exit %d, want %d (stderr %q)", strings.Join(args, " "), r.code, want, strings.TrimSpace(r.stderr))
	}
	if what != "" && !strings.Contains(r.stderr, what) {
		s.failf("docker %s: stderr %q, want it to contain %q", strings.Join(args, " "), strings.TrimSpace(r.stderr), what)
	}
	return r
}

// codeOneOf is code with several acceptable messages (the CLIs' wordings
// of the same answer).
func (s *cliSuite) codeOneOf(want int, what []string, args ...string) result {
	r := s.code(want, "", args...)
	for _, w := range what {
		if strings.Contains(r.stderr, w) {
			return r
		}
	}
	s.failf("docker %s: stderr %q, want it to contain one of %q", strings.Join(args, " "), strings.TrimSpace(r.stderr), what)
	return r
}

func (s *cliSuite) matches(got, re, what string) {
	if !regexp.MustCompile(re).MatchString(got) {
		s.failf("%s = %q, want it to match %s", what, got, re)
	}
}

// rm removes containers, whatever their state, at the end of a check.
func (s *cliSuite) rm(names ...string) {
	s.docker(append([]string{"rm", "-f"}, names...)...)
}

// apiAtLeast says whether the CLI speaks API v or newer.
func (s *cliSuite) apiAtLeast(v string) bool { return apiversion.Compare(s.api, v) >= 0 }

// inspect gives a Go template's value for an object.
func (s *cliSuite) inspect(name, format string) string {
	return s.ok("inspect", "--format", format, name)
}

// waitFor polls cond until it holds, or fails the check after timeout.
func (s *cliSuite) waitFor(timeout time.Duration, what string, cond func() bool) {
	if !poll(timeout, cond) {
		s.failf("%s: not within %v", what, timeout)
	}
}

// runningProgram waits until container name's main process is program
// (the container's init has handed over to its command).
func (s *cliSuite) runningProgram(name, program string) {
	pid := s.inspect(name, "{{.State.Pid}}")
	s.waitFor(20*time.Second, name+" runs "+program, func() bool {
		b, err := os.ReadFile("/proc/" + pid + "/comm")
		return err == nil && strings.TrimSpace(string(b)) == program
	})
}

// background starts the CLI and returns its output as it comes and a stop
// function (kills the CLI by its PID, returns its exit code or -1).
func (s *cliSuite) background(args ...string) (*syncBuffer, *syncBuffer, func() int, <-chan struct{}) {
	cmd := exec.Command(s.bin, args...)
	cmd.Env = append(os.Environ(), s.env...)
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		s.failf("docker %s: %v", strings.Join(args, " "), err)
	}
	exited := make(chan struct{})
	code := -1
	go func() {
		err := cmd.Wait()
		var ee *exec.ExitError
		if err == nil {
			code = 0
		} else if errors.As(err, &ee) && ee.Exited() {
			code = ee.ExitCode()
		}
		close(exited)
	}()
	stop := func() int {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
		return code
	}
	return &out, &errb, stop, exited
}

// pty runs the CLI on a terminal (script(1) makes one), typing each input
// line once the shell in the container has prompted for it (a "# " more),
// and returns what the terminal showed and the CLI's exit code.
func (s *cliSuite) pty(input []string, args ...string) (string, int) {
	cmd := exec.Command("script", "-qec", s.bin+" "+strings.Join(args, " "), "/dev/null")
	cmd.Env = append(os.Environ(), s.env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		s.failf("%v", err)
	}
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		s.failf("script: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for i, l := range input {
		if !poll(time.Until(deadline), func() bool { return strings.Count(out.String(), "# ") > i }) {
			break
		}
		io.WriteString(stdin, l+"\n")
	}
	select {
	case err := <-done:
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		return strings.ReplaceAll(out.String(), "\r", ""), code
	case <-time.After(time.Until(deadline)):
		cmd.Process.Kill()
		<-done
		s.failf("docker %s on a terminal did not end; it showed %q", strings.Join(args, " "), out.String())
	}
	return "", 0
}

// fetch gets a URL from the daemon's network namespace (its "host").
func (s *cliSuite) fetch(url string) (string, bool) {
	out, err := exec.Command("nsenter", "--net="+string(s.h), "--", "curl", "-sS", "-m", "5", url).Output()
	return string(out), err == nil
}

// cliLines splits output into its non-empty lines.
func cliLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimRight(l, " \t"); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// cliColumns splits a table's line at runs of two or more spaces.
func cliColumns(line string) []string {
	return regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), -1)
}

var (
	cliShortID = regexp.MustCompile(`^[0-9a-f]{12}$`)
	cliLongID  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

type cliCheck struct {
	name string
	fn   func(*cliSuite)
}

// dockerCLIChecks run in this order, each against the state the earlier
// ones left (the busybox image, and containers and objects each check
// removes itself unless it says otherwise).
var dockerCLIChecks = []cliCheck{
	{"version", func(s *cliSuite) {
		r := s.docker("version")
		s.expect(r.code == 0, "version: exit %d: %s", r.code, r.stderr)
		s.contains(r.stdout, "Client:", "version")
		s.contains(r.stdout, "Server:", "version")
		s.contains(r.stdout, " API version:", "version")
		// The CLI speaks its own version, negotiated down only to a
		// server's older one; the engine serves up to apiversion.Max.
		want := s.ok("version", "--format", "{{.Client.DefaultAPIVersion}}")
		if apiversion.Compare(want, apiversion.Max) > 0 {
			want = apiversion.Max
		}
		if s.old() {
			s.eq(want, "1.41", "20.10's Client.DefaultAPIVersion")
		}
		s.eq(s.api, want, "Client.APIVersion")
		s.eq(s.ok("version", "--format", "{{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Os}}/{{.Server.Arch}}"),
			apiversion.Max+" "+apiversion.Min+" linux/"+runtime.GOARCH, "Server API versions and platform")
		s.expect(s.ok("version", "--format", "{{.Server.Version}}") != "", "Server.Version is empty")
	}},
	{"info", func(s *cliSuite) {
		r := s.docker("info")
		s.expect(r.code == 0, "info: exit %d: %s", r.code, r.stderr)
		for _, want := range []string{"Server Version:", "Containers: ", " Running: ", "Images: ", "Storage Driver:", "Logging Driver: json-file",
			"Cgroup Driver:", "Kernel Version:", "Operating System:", "OSType: linux", "Architecture: ", "Total Memory:", "Docker Root Dir: " + s.p.dataRoot} {
			s.contains(r.stdout, want, "info")
		}
		s.expect(!strings.Contains(r.stderr, "ERROR") && !strings.Contains(r.stdout, "ERROR"), "info reports an error: %s", r.stderr)
		s.matches(r.stdout, `\n  Volume: local\n`, "info's volume plugins")
		// The daemon turned forwarding on for its bridge; the bridge
		// netfilter settings are the kernel's (br_netfilter or not).
		s.eq(s.ok("info", "--format", "{{.IPv4Forwarding}}"), "true", "IPv4Forwarding")
		s.expect(!strings.Contains(r.stderr, "IPv4 forwarding is disabled"), "info warns: %s", r.stderr)
		if s.old() {
			// 20.10 warns of what /info (before API 1.50) says is off.
			nf, _ := exec.Command("nsenter", "--net="+string(s.h), "--", "cat", "/proc/sys/net/bridge/bridge-nf-call-iptables").Output()
			on := strings.TrimSpace(string(nf)) == "1"
			s.expect(on != strings.Contains(r.stderr, "WARNING: bridge-nf-call-iptables is disabled"),
				"bridge-nf-call-iptables is %v, info's warnings: %q", on, r.stderr)
		}
		s.eq(s.ok("info", "--format", "{{.OSType}} {{.Images}} {{.Containers}} {{.DockerRootDir}}"), "linux 1 0 "+s.p.dataRoot, "info's OSType Images Containers DockerRootDir")
	}},

	// Images from the registry.
	{"pull", func(s *cliSuite) {
		ref := s.images["hello"]
		r := s.docker("pull", ref)
		s.expect(r.code == 0, "pull: exit %d: %s", r.code, r.stderr)
		s.contains(r.stdout, "1: Pulling from cli/hello", "pull's output")
		s.contains(r.stdout, "Pull complete", "pull's output")
		s.matches(r.stdout, `(?m)^Digest: sha256:[0-9a-f]{64}$`, "pull's output")
		s.contains(r.stdout, "Status: Downloaded newer image for "+ref+"\n", "pull's output")
		l := cliLines(r.stdout)
		s.eq(l[len(l)-1], ref, "pull's last line")
		r = s.docker("pull", ref)
		s.contains(r.stdout, "Status: Image is up to date for "+ref+"\n", "a second pull's output")
		s.eq(s.ok("pull", "-q", ref), ref, "pull -q")
		s.matches(s.ok("image", "inspect", "--format", "{{json .RepoDigests}}", ref), `^\["`+regexp.QuoteMeta(s.reg)+`/cli/hello@sha256:[0-9a-f]{64}"\]$`, "RepoDigests of the pulled image")
		s.eq(s.ok("run", "--rm", ref), "hello from the registry", "the pulled image's command")
	}},
	{"pull.missing", func(s *cliSuite) {
		ref := s.reg + "/cli/nothing:1"
		s.code(1, "Error response from daemon: manifest for "+ref+" not found", "pull", ref)
	}},
	{"push", func(s *cliSuite) {
		repo := s.reg + "/cli/pushed-" + s.slug()
		ref := repo + ":1"
		s.ok("tag", "busybox", ref)
		r := s.docker("push", ref)
		s.expect(r.code == 0, "push: exit %d: %s", r.code, r.stderr)
		s.contains(r.stdout, "The push refers to repository ["+repo+"]", "push's output")
		s.matches(r.stdout, `(?m)^1: digest: sha256:[0-9a-f]{64} size: \d+$`, "push's output")
		id := s.inspect("busybox", "{{.Id}}")
		s.ok("rmi", ref)
		s.ok("pull", ref)
		s.eq(s.inspect(ref, "{{.Id}}"), id, "the ID pulled back")
		s.ok("rmi", ref)
	}},

	// docker run.
	{"run.foreground", func(s *cliSuite) {
		r := s.docker("run", "--rm", "busybox", "echo", "hello", "world")
		s.eq(r.stdout, "hello world\n", "stdout")
		s.eq(r.stderr, "", "stderr")
		s.expect(r.code == 0, "exit %d", r.code)
		r = s.docker("run", "--rm", "busybox", "sh", "-c", "echo to-stderr >&2")
		s.eq(r.stdout+"|"+r.stderr, "|to-stderr\n", "stdout|stderr")
	}},
	{"run.detached", func(s *cliSuite) {
		defer s.rm("det")
		id := s.ok("run", "-d", "--name", "det", "busybox", "sleep", "1000")
		s.matches(id, cliLongID.String(), "run -d's output")
		s.eq(s.inspect("det", "{{.Id}} {{.State.Running}} {{.Name}}"), id+" true /det", "inspect")
	}},
	{"run.name_conflict", func(s *cliSuite) {
		defer s.rm("dup")
		id := s.ok("create", "--name", "dup", "busybox")
		s.code(125, `Conflict. The container name "/dup" is already in use by container "`+id+`"`, "run", "--name", "dup", "busybox", "true")
	}},
	{"run.rm", func(s *cliSuite) {
		s.eq(s.ok("run", "--rm", "--name", "gone", "busybox", "echo", "once"), "once", "output")
		// The CLI waits for the removal before it returns.
		s.eq(s.ok("ps", "-aq", "--filter", "name=gone"), "", "ps -a of the --rm container")
	}},
	{"run.exit_code", func(s *cliSuite) {
		s.code(3, "", "run", "--rm", "busybox", "sh", "-c", "exit 3")
		s.code(0, "", "run", "--rm", "busybox", "true")
		s.code(1, "", "run", "--rm", "busybox", "false")
	}},
	{"run.command_not_found", func(s *cliSuite) {
		// Docker: 127 when the command cannot be found, the message
		// naming it.
		s.code(127, `exec: "no-such-command": executable file not found in $PATH`, "run", "--rm", "busybox", "no-such-command")
		s.eq(s.ok("ps", "-aq"), "", "containers left (--rm)")
	}},
	{"run.command_not_executable", func(s *cliSuite) {
		// 126 when it cannot be invoked.
		s.code(126, "permission denied", "run", "--rm", "busybox", "/etc/passwd")
	}},
	{"run.daemon_error", func(s *cliSuite) {
		// 125 for the daemon's own errors.
		s.code(125, "invalid restart policy", "run", "--restart", "bogus", "busybox", "true")
		s.code(125, "", "run", "--rm", "--no-such-flag", "busybox", "true")
	}},
	{"run.pull_missing", func(s *cliSuite) {
		ref := s.images["autopull"]
		r := s.docker("run", "--rm", ref)
		s.expect(r.code == 0, "exit %d: %s", r.code, r.stderr)
		s.eq(r.stdout, "pulled by run\n", "the image's command's output")
		s.contains(r.stderr, "Unable to find image '"+ref+"' locally\n", "stderr")
		s.contains(r.stderr, "Status: Downloaded newer image for "+ref+"\n", "stderr")
		s.eq(s.ok("images", "-q", ref), s.inspect(ref, "{{.Id}}")[7:19], "images -q of the pulled image")
	}},
	{"run.env", func(s *cliSuite) {
		out := s.ok("run", "--rm", "-e", "FOO=bar", "-e", "FROM_CLI_ENV", "--env", "EMPTY=", "busybox", "sh", "-c", `echo "$FOO $FROM_CLI_ENV [$EMPTY] $PATH"`)
		s.eq(out, "bar passed [] /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "the container's environment")
	}},
	{"run.volume", func(s *cliSuite) {
		defer s.docker("volume", "rm", "runvol")
		s.ok("run", "--rm", "-v", "runvol:/data", "busybox", "sh", "-c", "echo stored > /data/f")
		s.contains(s.ok("volume", "ls", "-q"), "runvol", "volume ls (the volume run made)")
		s.eq(s.ok("run", "--rm", "-v", "runvol:/data:ro", "busybox", "cat", "/data/f"), "stored", "the volume's file in another container")
		r := s.docker("run", "--rm", "-v", "runvol:/data:ro", "busybox", "touch", "/data/g")
		s.expect(r.code == 1 && strings.Contains(r.stderr, "Read-only file system"), "a write to a :ro volume: exit %d %q", r.code, r.stderr)
		dir := filepath.Join(s.p.dir, "bind-"+s.version)
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "x"), []byte("from the host\n"), 0o644)
		s.eq(s.ok("run", "--rm", "-v", dir+":/mnt", "busybox", "sh", "-c", "cat /mnt/x; echo back > /mnt/y"), "from the host", "a bind mount")
		b, _ := os.ReadFile(filepath.Join(dir, "y"))
		s.eq(string(b), "back\n", "a file written through a bind mount")
	}},
	{"run.publish", func(s *cliSuite) {
		defer s.rm("web")
		s.ok("run", "-d", "--name", "web", "-p", "18080:80", "busybox", "sh", "-c",
			`mkdir /www && echo "hello from web" > /www/index.html && exec httpd -f -p 80 -h /www`)
		var body string
		s.waitFor(10*time.Second, "http://127.0.0.1:18080/ answers", func() bool {
			out, ok := s.fetch("http://127.0.0.1:18080/")
			body = out
			return ok
		})
		s.eq(body, "hello from web\n", "the page")
		s.contains(s.ok("port", "web"), "80/tcp -> 0.0.0.0:18080", "port web")
		s.contains(s.ok("port", "web", "80"), "0.0.0.0:18080", "port web 80")
		s.contains(s.ok("port", "web", "80/tcp"), "0.0.0.0:18080", "port web 80/tcp")
		// The CLI's own words: 28's repeat the argument, 20.10's add the
		// protocol.
		s.codeOneOf(1, []string{"Error: No public port '81' published for web", "Error: No public port '81/tcp' published for web"}, "port", "web", "81")
		s.contains(s.ok("ps", "--filter", "name=web", "--format", "{{.Ports}}"), "0.0.0.0:18080->80/tcp", "ps's Ports")
	}},
	{"run.interactive_tty", func(s *cliSuite) {
		out, code := s.pty([]string{"echo typed-$((6*7)); tty", "exit 4"}, "run", "-it", "--rm", "busybox", "sh")
		s.contains(out, "typed-42\n", "the terminal")
		s.contains(out, "/dev/pts/0\n", "the terminal")
		s.expect(code == 4, "exit %d, want 4; the terminal showed %q", code, out)
	}},
	{"run.interactive_stdin", func(s *cliSuite) {
		r := s.dockerIn(strings.NewReader("line one\nline two\n"), "run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done")
		s.eq(r.stdout, "line one\nline two\ndone\n", "output")
		s.expect(r.code == 0, "exit %d", r.code)
	}},
	{"create_start", func(s *cliSuite) {
		defer s.rm("cs")
		id := s.ok("create", "--name", "cs", "busybox", "echo", "created")
		s.matches(id, cliLongID.String(), "create's output")
		s.eq(s.inspect("cs", "{{.State.Status}}"), "created", "status")
		s.eq(s.ok("start", "-a", "cs"), "created", "start -a")
		s.eq(s.ok("start", "cs"), "cs", "start")
	}},

	// Containers: listing and inspecting.
	{"ps", func(s *cliSuite) {
		defer s.rm("ps-run", "ps-exit")
		s.ok("run", "-d", "--name", "ps-run", "--label", "suite=cli", "busybox", "sleep", "1000")
		s.code(3, "", "run", "--name", "ps-exit", "busybox", "sh", "-c", "exit 3")
		out := cliLines(s.ok("ps"))
		s.eq(strings.Join(cliColumns(out[0]), "|"), "CONTAINER ID|IMAGE|COMMAND|CREATED|STATUS|PORTS|NAMES", "ps's header")
		s.expect(len(out) == 2, "ps: %q, want the running container only", out)
		row := cliColumns(out[1])
		s.expect(cliShortID.MatchString(row[0]) && row[1] == "busybox" && row[2] == `"sleep 1000"` && strings.HasPrefix(row[4], "Up ") && row[len(row)-1] == "ps-run",
			"ps's row %q", row)
		all := s.ok("ps", "-a", "--format", "{{.Names}}\t{{.Status}}")
		s.matches(all, `(?m)^ps-exit\tExited \(3\) `, "ps -a")
		s.matches(all, `(?m)^ps-run\tUp `, "ps -a")
		q := cliLines(s.ok("ps", "-q"))
		s.expect(len(q) == 1 && cliShortID.MatchString(q[0]) && strings.HasPrefix(s.inspect("ps-run", "{{.Id}}"), q[0]), "ps -q: %q", q)
		s.expect(len(cliLines(s.ok("ps", "-aq"))) == 2, "ps -aq: want two")
		s.matches(s.ok("ps", "-aq", "--no-trunc", "--filter", "name=ps-exit"), cliLongID.String(), "ps -aq --no-trunc")
		s.eq(s.ok("ps", "-l", "--format", "{{.Names}}"), "ps-exit", "ps -l")
		s.eq(s.ok("ps", "--format", "table {{.Names}}\t{{.Image}}"), "NAMES     IMAGE\nps-run    busybox", "ps --format table")
	}},
	{"ps.size", func(s *cliSuite) {
		defer s.rm("sz")
		s.ok("run", "--name", "sz", "busybox", "dd", "if=/dev/zero", "of=/tmp/f", "bs=1024", "count=100")
		rw, err := strconv.ParseInt(s.ok("inspect", "-s", "--format", "{{.SizeRw}}", "sz"), 10, 64)
		s.expect(err == nil && rw >= 100<<10 && rw < 200<<10, "inspect -s: SizeRw %d (%v), want about 100 KiB", rw, err)
		rootfs, err := strconv.ParseInt(s.ok("inspect", "-s", "--format", "{{.SizeRootFs}}", "sz"), 10, 64)
		img, _ := strconv.ParseInt(s.inspect("busybox", "{{.Size}}"), 10, 64)
		s.expect(err == nil && rootfs == rw+img, "inspect -s: SizeRootFs %d, want SizeRw %d + the image's %d", rootfs, rw, img)
		s.matches(s.ok("ps", "-as", "--filter", "name=sz", "--format", "{{.Size}}"), `^10\d(\.\d+)?kB \(virtual \d(\.\d+)?MB\)$`, "ps -s")
		s.eq(s.inspect("sz", "{{.SizeRw}}"), "<nil>", "SizeRw without -s")
	}},
	{"ps.filter", func(s *cliSuite) {
		defer s.docker("rm", "-f", "-v", "pf-a", "pf-b", "pf-exit")
		s.ok("run", "-d", "--name", "pf-a", "--label", "suite=cli", "--label", "role=a", "-v", "/data", "busybox", "sleep", "1000")
		s.ok("run", "-d", "--name", "pf-b", "--label", "suite=cli", "busybox", "sleep", "1000")
		s.code(2, "", "run", "--name", "pf-exit", "busybox", "sh", "-c", "exit 2")
		names := func(args ...string) string {
			l := cliLines(s.ok(append([]string{"ps", "--format", "{{.Names}}"}, args...)...))
			slices.Sort(l)
			return strings.Join(l, " ")
		}
		s.eq(names("--filter", "name=pf-a"), "pf-a", "--filter name=pf-a")
		s.eq(names("--filter", "name=pf-"), "pf-a pf-b", "--filter name=pf-")
		s.eq(names("-a", "--filter", "status=exited"), "pf-exit", "--filter status=exited")
		s.eq(names("-a", "--filter", "exited=2"), "pf-exit", "--filter exited=2")
		s.eq(names("--filter", "label=suite=cli"), "pf-a pf-b", "--filter label=suite=cli")
		s.eq(names("--filter", "label=role"), "pf-a", "--filter label=role")
		s.eq(names("--filter", "label=suite=cli", "--filter", "label=role=a"), "pf-a", "two label filters")
		s.eq(names("-a", "--filter", "ancestor=busybox"), "pf-a pf-b pf-exit", "--filter ancestor=busybox")
		s.eq(names("-a", "--filter", "ancestor=busybox:latest"), "pf-a pf-b pf-exit", "--filter ancestor=busybox:latest")
		s.eq(names("--filter", "volume=/data"), "pf-a", "--filter volume=/data")
		s.eq(names("--filter", "health=none", "--filter", "is-task=false"), "pf-a pf-b", "--filter health=none --filter is-task=false")
		s.eq(names("--filter", "id="+s.inspect("pf-b", "{{.Id}}")[:12]), "pf-b", "--filter id=")
		s.eq(names("--filter", "name=nothing"), "", "--filter name=nothing")
	}},
	{"inspect", func(s *cliSuite) {
		defer s.rm("insp", "insp-exit")
		s.ok("run", "-d", "--name", "insp", "--label", "k=v", "busybox", "sleep", "1000")
		s.eq(s.inspect("insp", "{{.State.Status}} {{.State.Running}} {{.Config.Image}} {{.HostConfig.RestartPolicy.Name}} {{.Path}}"),
			"running true busybox no sleep", "inspect --format")
		s.eq(s.inspect("insp", "{{json .Config.Cmd}} {{json .Config.Labels}} {{json .Args}}"), `["sleep","1000"] {"k":"v"} ["1000"]`, "inspect --format json")
		s.eq(s.ok("inspect", "-f", "{{.Name}}", "--type", "container", "insp"), "/insp", "inspect -f --type container")
		s.code(3, "", "run", "--name", "insp-exit", "busybox", "sh", "-c", "exit 3")
		s.eq(s.ok("container", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "insp-exit"), "exited 3", "an exited container")
		// Several objects: a JSON array of both.
		var both []map[string]any
		s.expect(json.Unmarshal([]byte(s.ok("inspect", "insp", "insp-exit")), &both) == nil && len(both) == 2, "inspect of two: not an array of two")
		s.code(1, "No such object: nothing", "inspect", "nothing")
		s.code(1, "No such container: nothing", "container", "inspect", "nothing")
	}},

	// Logs.
	{"logs", func(s *cliSuite) {
		defer s.rm("lg")
		s.ok("run", "--name", "lg", "busybox", "sh", "-c", "echo out1; echo err1 >&2; echo out2")
		r := s.docker("logs", "lg")
		s.eq(r.stdout, "out1\nout2\n", "logs' stdout")
		s.eq(r.stderr, "err1\n", "logs' stderr")
		// Lines of stdout and stderr come in the order the log has them,
		// which between the two streams is the order they were read in.
		r = s.docker("logs", "--tail", "1", "lg")
		s.expect(len(cliLines(r.stdout+r.stderr)) == 1, "logs --tail 1: %q %q", r.stdout, r.stderr)
		r = s.docker("logs", "--tail", "0", "lg")
		s.eq(r.stdout+r.stderr, "", "logs --tail 0")
		r = s.docker("logs", "-t", "lg")
		for _, l := range cliLines(r.stdout + r.stderr) {
			s.matches(l, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{1,9}Z (out1|err1|out2)$`, "a line of logs -t")
		}
		s.eq(fmt.Sprint(len(cliLines(r.stdout+r.stderr))), "3", "logs -t's lines")
	}},
	{"logs.tail", func(s *cliSuite) {
		defer s.rm("lt")
		s.ok("run", "--name", "lt", "busybox", "sh", "-c", "for i in 1 2 3 4 5; do echo $i; done")
		s.eq(s.ok("logs", "--tail", "2", "lt"), "4\n5", "logs --tail 2")
		s.eq(s.ok("logs", "--tail", "all", "lt"), "1\n2\n3\n4\n5", "logs --tail all")
		s.eq(s.ok("logs", "-n", "10", "lt"), "1\n2\n3\n4\n5", "logs -n 10")
	}},
	{"logs.follow", func(s *cliSuite) {
		defer s.rm("lf")
		// Writes, then waits for the test to let it go on, writes and ends.
		s.ok("run", "-d", "--name", "lf", "busybox", "sh", "-c",
			"echo first; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo second; echo third >&2; exit 0")
		out, errb, stop, exited := s.background("logs", "-f", "lf")
		defer stop()
		s.waitFor(10*time.Second, "logs -f shows the first line", func() bool { return out.String() == "first\n" })
		select {
		case <-exited:
			s.failf("logs -f ended while the container runs: %q", out.String())
		default:
		}
		s.ok("exec", "lf", "touch", "/tmp/go")
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			s.failf("logs -f did not end with the container; it showed %q", out.String())
		}
		s.eq(fmt.Sprint(stop()), "0", "logs -f's exit code")
		s.eq(out.String()+"|"+errb.String(), "first\nsecond\n|third\n", "logs -f's stdout|stderr")
	}},

	// Exec.
	{"exec", func(s *cliSuite) {
		defer s.rm("ex")
		s.ok("run", "-d", "--name", "ex", "busybox", "sleep", "1000")
		s.runningProgram("ex", "sleep")
		s.eq(s.ok("exec", "ex", "echo", "hi"), "hi", "exec's output")
		s.code(7, "", "exec", "ex", "sh", "-c", "exit 7")
		r := s.dockerIn(strings.NewReader("from stdin\n"), "exec", "-i", "ex", "cat")
		s.eq(r.stdout, "from stdin\n", "exec -i")
		s.eq(s.ok("exec", "-e", "X=1", "-w", "/tmp", "ex", "sh", "-c", "echo $X $(pwd)"), "1 /tmp", "exec -e -w")
		s.eq(s.ok("exec", "-u", "nobody", "ex", "id", "-u"), "65534", "exec -u")
		s.ok("exec", "-d", "ex", "sh", "-c", "echo detached > /tmp/d")
		s.waitFor(10*time.Second, "exec -d's command ran", func() bool { return s.docker("exec", "ex", "cat", "/tmp/d").stdout == "detached\n" })
		s.code(127, `exec: "no-such-command": executable file not found in $PATH`, "exec", "ex", "no-such-command")
		s.code(1, "No such container: nothing", "exec", "nothing", "true")
		s.ok("stop", "-t", "0", "ex")
		s.code(1, "is not running", "exec", "ex", "true")
	}},
	{"exec.interactive_tty", func(s *cliSuite) {
		defer s.rm("ext")
		s.ok("run", "-d", "--name", "ext", "busybox", "sleep", "1000")
		out, code := s.pty([]string{"tty; echo in-$((2*3))", "exit 5"}, "exec", "-it", "ext", "sh")
		s.contains(out, "in-6\n", "the terminal")
		s.matches(out, `/dev/pts/\d+\n`, "the terminal")
		s.expect(code == 5, "exit %d, want 5; the terminal showed %q", code, out)
	}},

	// Files.
	{"cp", func(s *cliSuite) {
		defer s.rm("cpc")
		s.ok("run", "-d", "--name", "cpc", "busybox", "sh", "-c", "mkdir -p /data/sub && echo inside > /data/sub/f && exec sleep 1000")
		s.runningProgram("cpc", "sleep")
		dir := filepath.Join(s.p.dir, "cp-"+s.version)
		os.MkdirAll(dir, 0o755)
		host := filepath.Join(dir, "host.txt")
		os.WriteFile(host, []byte("from the host\n"), 0o640)
		// Host to container: a file to a directory, to a new name.
		s.eq(s.ok("cp", host, "cpc:/tmp/"), "", "cp's output")
		s.eq(s.ok("exec", "cpc", "cat", "/tmp/host.txt"), "from the host", "the copied file")
		s.ok("cp", host, "cpc:/tmp/renamed")
		s.eq(s.ok("exec", "cpc", "stat", "-c", "%a", "/tmp/renamed"), "640", "the copied file's mode")
		// Container to host: a file, a directory.
		s.ok("cp", "cpc:/data/sub/f", filepath.Join(dir, "f"))
		b, _ := os.ReadFile(filepath.Join(dir, "f"))
		s.eq(string(b), "inside\n", "a file copied out")
		s.ok("cp", "cpc:/data", filepath.Join(dir, "data"))
		b, _ = os.ReadFile(filepath.Join(dir, "data", "sub", "f"))
		s.eq(string(b), "inside\n", "a directory copied out")
		// Through a tar stream on stdout and stdin.
		r := s.docker("cp", "cpc:/data/sub/f", "-")
		s.eq(tarNamesOf(r.stdout), "f", "cp to - (the tar's entries)")
		r = s.dockerIn(strings.NewReader(r.stdout), "cp", "-", "cpc:/tmp")
		s.expect(r.code == 0, "cp - ctr:/tmp: exit %d %s", r.code, r.stderr)
		s.eq(s.ok("exec", "cpc", "cat", "/tmp/f"), "inside", "a tar copied in from stdin")
		// 20.10's client words the 404 of the path's stat itself.
		if s.old() {
			s.code(1, "Error: No such container:path: cpc:/nothing", "cp", "cpc:/nothing", dir)
		} else {
			s.code(1, "Could not find the file /nothing in container cpc", "cp", "cpc:/nothing", dir)
		}
		// A destination whose directory is missing: the daemon's 404 of
		// the extraction, which 20.10's client words itself again.
		if s.old() {
			s.code(1, "Error: No such container:path: cpc:/nothing", "cp", host, "cpc:/nothing/deeper")
		} else {
			s.code(1, "Could not find the file /nothing in container cpc", "cp", host, "cpc:/nothing/deeper")
		}
	}},
	{"diff", func(s *cliSuite) {
		defer s.rm("df")
		s.ok("run", "--name", "df", "busybox", "sh", "-c", "touch /tmp/new && mkdir /added && rm /etc/group")
		got := cliLines(s.ok("diff", "df"))
		slices.Sort(got)
		s.eq(strings.Join(got, ","), "A /added,A /tmp/new,C /etc,C /tmp,D /etc/group", "diff")
	}},

	// The lifecycle.
	{"stop", func(s *cliSuite) {
		defer s.rm("st", "st-term")
		// sleep as PID 1 ignores SIGTERM: stop kills after -t.
		s.ok("run", "-d", "--name", "st", "busybox", "sleep", "1000")
		s.runningProgram("st", "sleep")
		began := time.Now()
		s.eq(s.ok("stop", "-t", "1", "st"), "st", "stop's output")
		took := time.Since(began)
		s.expect(took >= time.Second && took < 8*time.Second, "stop -t 1 took %v", took)
		s.eq(s.inspect("st", "{{.State.Status}} {{.State.ExitCode}}"), "exited 137", "after stop")
		// A container that handles SIGTERM ends with its own status.
		s.ok("run", "-d", "--name", "st-term", "busybox", "sh", "-c", `trap "exit 0" TERM; echo ready; while :; do sleep 0.1; done`)
		s.waitFor(10*time.Second, "st-term is ready", func() bool { return s.docker("logs", "st-term").stdout == "ready\n" })
		s.eq(s.ok("stop", "st-term"), "st-term", "stop's output")
		s.eq(s.inspect("st-term", "{{.State.Status}} {{.State.ExitCode}}"), "exited 0", "after stop")
		s.eq(s.ok("stop", "st-term"), "st-term", "stop of a stopped container")
		s.code(1, "No such container: nothing", "stop", "nothing")
	}},
	{"kill", func(s *cliSuite) {
		defer s.rm("kl", "kl-usr1")
		s.ok("run", "-d", "--name", "kl", "busybox", "sleep", "1000")
		s.eq(s.ok("kill", "kl"), "kl", "kill's output")
		s.eq(s.ok("wait", "kl"), "137", "wait after kill")
		s.code(1, "is not running", "kill", "kl")
		s.ok("run", "-d", "--name", "kl-usr1", "busybox", "sh", "-c", `trap "echo got-usr1" USR1; echo ready; while :; do sleep 0.1; done`)
		s.waitFor(10*time.Second, "kl-usr1 is ready", func() bool { return s.docker("logs", "kl-usr1").stdout == "ready\n" })
		s.eq(s.ok("kill", "-s", "USR1", "kl-usr1"), "kl-usr1", "kill -s USR1's output")
		s.waitFor(10*time.Second, "the trap ran", func() bool { return strings.Contains(s.docker("logs", "kl-usr1").stdout, "got-usr1") })
		s.eq(s.inspect("kl-usr1", "{{.State.Running}}"), "true", "running after USR1")
	}},
	{"restart", func(s *cliSuite) {
		defer s.rm("rs")
		s.ok("run", "-d", "--name", "rs", "busybox", "sleep", "1000")
		before := s.inspect("rs", "{{.State.StartedAt}} {{.State.Pid}}")
		s.eq(s.ok("restart", "-t", "1", "rs"), "rs", "restart's output")
		after := s.inspect("rs", "{{.State.StartedAt}} {{.State.Pid}}")
		s.expect(before != after, "StartedAt and Pid unchanged: %s", after)
		s.eq(s.inspect("rs", "{{.State.Running}} {{.RestartCount}}"), "true 0", "after restart")
		// A stopped container starts again.
		s.ok("stop", "-t", "0", "rs")
		s.ok("restart", "rs")
		s.eq(s.inspect("rs", "{{.State.Running}}"), "true", "a stopped container restarted")
	}},
	{"wait", func(s *cliSuite) {
		defer s.rm("wt1", "wt2")
		s.ok("create", "--name", "wt1", "busybox", "sh", "-c", "exit 5")
		s.ok("create", "--name", "wt2", "busybox", "sh", "-c", "exit 6")
		s.ok("start", "wt1", "wt2")
		s.eq(s.ok("wait", "wt1", "wt2"), "5\n6", "wait's output")
		s.code(1, "No such container: nothing", "wait", "nothing")
	}},
	{"rm", func(s *cliSuite) {
		defer s.rm("rmc", "rmv")
		s.ok("run", "-d", "--name", "rmc", "busybox", "sleep", "1000")
		r := s.docker("rm", "rmc")
		s.expect(r.code == 1 && strings.Contains(strings.ToLower(r.stderr), "stop the container before") && strings.Contains(r.stderr, "force remove"),
			"rm of a running container: exit %d %q", r.code, r.stderr)
		s.eq(s.ok("rm", "-f", "rmc"), "rmc", "rm -f's output")
		s.code(1, "No such container: rmc", "rm", "rmc")
		// -v removes the container's anonymous volumes, not named ones.
		s.ok("run", "--name", "rmv", "-v", "/anon", "-v", "rmnamed:/named", "busybox", "true")
		anon := s.inspect("rmv", `{{range .Mounts}}{{if eq .Destination "/anon"}}{{.Name}}{{end}}{{end}}`)
		s.matches(anon, cliLongID.String(), "the anonymous volume's name")
		s.eq(s.ok("rm", "-v", "rmv"), "rmv", "rm -v's output")
		vols := s.ok("volume", "ls", "-q")
		s.expect(!strings.Contains(vols, anon), "rm -v left the anonymous volume %s", anon)
		s.expect(strings.Contains(vols, "rmnamed"), "rm -v removed the named volume: %q", vols)
		s.ok("volume", "rm", "rmnamed")
	}},
	{"rename", func(s *cliSuite) {
		defer s.rm("rn-old", "rn-new", "rn-other")
		s.ok("run", "-d", "--name", "rn-old", "busybox", "sleep", "1000")
		s.ok("create", "--name", "rn-other", "busybox")
		s.eq(s.ok("rename", "rn-old", "rn-new"), "", "rename's output")
		s.eq(s.inspect("rn-new", "{{.Name}} {{.State.Running}}"), "/rn-new true", "the renamed container")
		s.code(1, "No such object: rn-old", "inspect", "rn-old")
		s.code(1, "Conflict", "rename", "rn-new", "rn-other")
		s.code(1, "No such container: nothing", "rename", "nothing", "something")
	}},
	{"top", func(s *cliSuite) {
		defer s.rm("tp")
		s.ok("run", "-d", "--name", "tp", "busybox", "sleep", "1000")
		s.runningProgram("tp", "sleep")
		out := cliLines(s.ok("top", "tp"))
		s.eq(strings.Join(strings.Fields(out[0]), " "), "UID PID PPID C STIME TTY TIME CMD", "top's header")
		s.expect(len(out) == 2 && strings.HasSuffix(out[1], "sleep 1000"), "top: %q", out)
		s.eq(s.inspect("tp", "{{.State.Pid}}"), strings.Fields(out[1])[1], "top's PID")
		s.ok("stop", "-t", "0", "tp")
		s.code(1, "is not running", "top", "tp")
	}},
	{"top.ps_args", func(s *cliSuite) {
		defer s.rm("tpa")
		s.ok("run", "-d", "--name", "tpa", "busybox", "sleep", "1000")
		s.runningProgram("tpa", "sleep")
		out := cliLines(s.ok("top", "tpa", "-o", "pid,comm"))
		s.expect(len(out) == 2 && strings.Join(strings.Fields(out[0]), " ") == "PID COMMAND" && strings.HasSuffix(out[1], "sleep"), "top -o pid,comm: %q", out)
	}},

	// Images.
	{"images", func(s *cliSuite) {
		out := cliLines(s.ok("images"))
		s.eq(strings.Join(cliColumns(out[0]), "|"), "REPOSITORY|TAG|IMAGE ID|CREATED|SIZE", "images' header")
		bbID := s.inspect("busybox", "{{.Id}}")
		row := ""
		for _, l := range out[1:] {
			if strings.HasPrefix(l, "busybox ") {
				row = l
			}
		}
		c := cliColumns(row)
		s.expect(len(c) == 5 && c[1] == "latest" && c[2] == bbID[7:19] && strings.HasSuffix(c[4], "MB"), "images' busybox row %q", row)
		s.contains(s.ok("images", "--format", "{{.Repository}}:{{.Tag}}"), "busybox:latest", "images --format")
		s.eq(s.ok("images", "--format", "{{.ID}}", "busybox"), bbID[7:19], "images --format {{.ID}} busybox")
		for _, l := range cliLines(s.ok("images", "-q")) {
			s.matches(l, cliShortID.String(), "a line of images -q")
		}
		s.eq(s.ok("images", "-q", "--no-trunc", "busybox"), bbID, "images -q --no-trunc busybox")
		s.eq(s.ok("images", "--filter", "reference=busy*", "--format", "{{.Repository}}"), "busybox", "images --filter reference=busy*")
		s.eq(s.ok("images", "-q", "nothing"), "", "images of nothing")
	}},
	{"tag", func(s *cliSuite) {
		defer s.docker("rmi", "cli/tagged:v1", "cli/tagged:v2")
		s.eq(s.ok("tag", "busybox", "cli/tagged:v1"), "", "tag's output")
		s.ok("image", "tag", "busybox:latest", "cli/tagged:v2")
		id := s.inspect("busybox", "{{.Id}}")
		s.eq(s.ok("image", "inspect", "--format", "{{.Id}}", "cli/tagged:v1"), id, "the tag's image")
		got := cliLines(s.ok("images", "--format", "{{.Repository}}:{{.Tag}}", "cli/tagged"))
		slices.Sort(got)
		s.eq(strings.Join(got, " "), "cli/tagged:v1 cli/tagged:v2", "images cli/tagged")
		s.code(1, "No such image: nothing", "tag", "nothing", "cli/tagged:v3")
	}},
	{"tag.missing", func(s *cliSuite) {
		s.code(1, "Error response from daemon: No such image: nothing:latest", "tag", "nothing", "cli/tagged:v3")
	}},
	{"rmi", func(s *cliSuite) {
		s.ok("tag", "busybox", "cli/rmi:1")
		s.eq(s.ok("rmi", "cli/rmi:1"), "Untagged: cli/rmi:1", "rmi of one more tag")
		s.code(1, "No such image: cli/rmi:1", "rmi", "cli/rmi:1")
		// The ID of an image with two tags: Docker refuses without -f.
		s.ok("tag", "busybox", "cli/rmi:2")
		defer s.docker("rmi", "cli/rmi:2")
		id := s.inspect("busybox", "{{.Id}}")
		s.code(1, "image is referenced in multiple repositories", "rmi", id[7:19])
		// An image's last tag: untagged and deleted.
		ref := s.images["hello"]
		hello := s.inspect(ref, "{{.Id}}")
		out := s.ok("rmi", ref)
		s.contains(out, "Untagged: "+ref+"\n", "rmi's output")
		s.contains(out, "Deleted: "+hello, "rmi's output")
		s.code(1, "No such image", "image", "inspect", ref)
		s.ok("pull", ref)
	}},
	{"rmi.in_use", func(s *cliSuite) {
		// The last tag of an image a container uses: refused, whatever
		// the container's state.
		ref := s.images["hello"]
		s.ok("create", "--name", "rmi-user", ref)
		defer s.rm("rmi-user")
		user, img := s.inspect("rmi-user", "{{.Id}}"), s.inspect(ref, "{{.Id}}")
		s.code(1, fmt.Sprintf("Error response from daemon: conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s", ref, user[:12], img[7:19]), "rmi", ref)
	}},
	{"save_load", func(s *cliSuite) {
		ref := s.images["hello"]
		id := s.inspect(ref, "{{.Id}}")
		archive := filepath.Join(s.p.dir, "save-"+s.version+".tar")
		s.eq(s.ok("save", "-o", archive, ref), "", "save -o's output")
		s.ok("rmi", ref)
		out := s.ok("load", "-i", archive)
		s.contains(out, "Loaded image: "+ref, "load's output")
		s.eq(s.inspect(ref, "{{.Id}}"), id, "the loaded image's ID")
		s.eq(s.ok("run", "--rm", ref), "hello from the registry", "the loaded image runs")
		// Through stdout and stdin, two images in one archive.
		r := s.docker("save", "busybox", ref)
		s.expect(r.code == 0 && len(r.stdout) > 1<<20, "save to stdout: exit %d, %d bytes: %s", r.code, len(r.stdout), r.stderr)
		s.ok("rmi", ref)
		r = s.dockerIn(strings.NewReader(r.stdout), "load")
		s.expect(r.code == 0, "load from stdin: exit %d: %s", r.code, r.stderr)
		s.contains(r.stdout, "Loaded image: "+ref, "load's output")
		s.contains(r.stdout, "Loaded image: busybox:latest", "load's output")
		s.eq(s.inspect(ref, "{{.Id}}"), id, "the loaded image's ID")
		s.eq(s.ok("load", "-q", "-i", archive), "Loaded image: "+ref, "load -q")
	}},
	{"history", func(s *cliSuite) {
		out := cliLines(s.ok("history", "busybox"))
		s.eq(strings.Join(cliColumns(out[0]), "|"), "IMAGE|CREATED|CREATED BY|SIZE|COMMENT", "history's header")
		s.expect(len(out) == 2, "history busybox: %q", out)
		id := s.inspect("busybox", "{{.Id}}")
		s.eq(cliColumns(out[1])[0], id[7:19], "history's image")
		s.eq(s.ok("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}", "busybox"), "testimage layer 0|", "history --format")
		s.eq(s.ok("history", "-q", "busybox"), id[7:19], "history -q")
		ref := s.images["hello"]
		s.eq(strings.Join(cliLines(s.ok("history", "--format", "{{.CreatedBy}}", ref)), ","), "testimage layer 1,testimage layer 0", "history of two layers (newest first)")
		s.code(1, "No such image: nothing", "history", "nothing")
	}},
	{"image_inspect", func(s *cliSuite) {
		s.eq(s.ok("image", "inspect", "--format", "{{.Os}}/{{.Architecture}} {{json .RepoTags}} {{.RootFS.Type}} {{len .RootFS.Layers}} {{json .Config.Cmd}}", "busybox"),
			"linux/"+runtime.GOARCH+` ["busybox:latest"] layers 1 ["sh"]`, "image inspect --format")
		var imgs []map[string]any
		s.expect(json.Unmarshal([]byte(s.ok("image", "inspect", "busybox")), &imgs) == nil && len(imgs) == 1, "image inspect: not an array of one")
		for _, k := range []string{"Id", "RepoTags", "RepoDigests", "Created", "Config", "Architecture", "Os", "Size", "RootFS", "Metadata"} {
			_, ok := imgs[0][k]
			s.expect(ok, "image inspect has no %s", k)
		}
		s.code(1, "No such image: nothing", "image", "inspect", "nothing")
	}},

	// Volumes.
	{"volume", func(s *cliSuite) {
		defer s.docker("volume", "rm", "-f", "clivol", "clilab")
		s.eq(s.ok("volume", "create", "clivol"), "clivol", "volume create's output")
		s.eq(s.ok("volume", "create", "--label", "k=v", "clilab"), "clilab", "volume create --label")
		anon := s.ok("volume", "create")
		s.matches(anon, cliLongID.String(), "volume create's generated name")
		defer s.docker("volume", "rm", anon)
		out := cliLines(s.ok("volume", "ls"))
		s.eq(strings.Join(cliColumns(out[0]), "|"), "DRIVER|VOLUME NAME", "volume ls' header")
		s.expect(slices.ContainsFunc(out, func(l string) bool { return strings.Join(cliColumns(l), "|") == "local|clivol" }), "volume ls: %q", out)
		q := cliLines(s.ok("volume", "ls", "-q"))
		slices.Sort(q)
		want := []string{anon, "clilab", "clivol"}
		slices.Sort(want)
		s.eq(strings.Join(q, " "), strings.Join(want, " "), "volume ls -q")
		s.eq(s.ok("volume", "ls", "--format", "{{.Name}} {{.Driver}}", "--filter", "name=clivol"), "clivol local", "volume ls --filter name --format")
		s.eq(s.ok("volume", "ls", "-q", "--filter", "label=k=v"), "clilab", "volume ls --filter label")
		s.eq(s.ok("volume", "inspect", "--format", "{{.Name}} {{.Driver}} {{.Scope}} {{json .Labels}} {{.Mountpoint}}", "clilab"),
			`clilab local local {"k":"v"} `+filepath.Join(s.p.dataRoot, "volumes", "clilab", "_data"), "volume inspect --format")
		r := s.docker("volume", "inspect", "nothing")
		s.expect(r.code == 1 && strings.Contains(strings.ToLower(r.stderr), "no such volume"), "volume inspect nothing: exit %d %q", r.code, r.stderr)
		// In use: refused.
		s.ok("create", "--name", "voluser", "-v", "clivol:/v", "busybox")
		defer s.rm("voluser")
		s.code(1, "volume is in use", "volume", "rm", "clivol")
		s.ok("rm", "voluser")
		s.eq(s.ok("volume", "rm", "clivol", "clilab"), "clivol\nclilab", "volume rm's output")
		r = s.docker("volume", "rm", "clivol")
		s.expect(r.code == 1 && strings.Contains(strings.ToLower(r.stderr), "no such volume"), "volume rm of nothing: exit %d %q", r.code, r.stderr)
	}},
	{"volume.prune", func(s *cliSuite) {
		s.ok("volume", "create", "pr-named")
		defer s.docker("volume", "rm", "-f", "pr-named")
		s.ok("run", "--name", "pr-anon", "-v", "/anon", "busybox", "true")
		anon := s.inspect("pr-anon", "{{range .Mounts}}{{.Name}}{{end}}")
		s.ok("rm", "pr-anon")
		s.ok("volume", "create", "pr-used")
		s.ok("create", "--name", "pr-user", "-v", "pr-used:/u", "busybox")
		defer s.docker("volume", "rm", "pr-used")
		defer s.rm("pr-user")
		out := s.ok("volume", "prune", "-f")
		left := s.ok("volume", "ls", "-q")
		s.contains(out, "Deleted Volumes:\n", "volume prune's output")
		s.contains(out, anon+"\n", "volume prune's output")
		s.contains(out, "Total reclaimed space:", "volume prune's output")
		s.expect(!strings.Contains(left, anon), "volume prune left the anonymous volume")
		s.expect(strings.Contains(left, "pr-used"), "volume prune removed a volume in use")
		if s.apiAtLeast("1.42") {
			// API 1.42 on: anonymous volumes only, unless -a.
			s.expect(strings.Contains(left, "pr-named"), "volume prune removed a named volume (API %s)", s.api)
			out = s.ok("volume", "prune", "-af")
			s.contains(out, "pr-named\n", "volume prune -a's output")
		} else {
			// Before, every unused volume.
			s.contains(out, "pr-named\n", "volume prune's output (API "+s.api+")")
		}
		s.expect(!strings.Contains(s.ok("volume", "ls", "-q"), "pr-named"), "pr-named is left")
	}},

	// Networks.
	{"network", func(s *cliSuite) {
		defer s.docker("network", "rm", "clinet", "clinet2")
		defer s.rm("srv", "cli-other")
		id := s.ok("network", "create", "clinet")
		s.matches(id, cliLongID.String(), "network create's output")
		s.ok("network", "create", "--subnet", "10.99.0.0/24", "--label", "k=v", "clinet2")
		s.code(1, "network with name clinet already exists", "network", "create", "clinet")
		out := cliLines(s.ok("network", "ls"))
		s.eq(strings.Join(cliColumns(out[0]), "|"), "NETWORK ID|NAME|DRIVER|SCOPE", "network ls' header")
		names := cliLines(s.ok("network", "ls", "--format", "{{.Name}}"))
		slices.Sort(names)
		s.eq(strings.Join(names, " "), "bridge clinet clinet2 host none", "network ls --format {{.Name}}")
		s.eq(s.ok("network", "ls", "-q", "--filter", "name=clinet2"), s.inspect("clinet2", "{{.Id}}")[:12], "network ls -q --filter name")
		s.eq(s.ok("network", "ls", "--filter", "label=k=v", "--format", "{{.Name}} {{.Driver}} {{.Scope}}"), "clinet2 bridge local", "network ls --filter label")
		s.eq(s.ok("network", "inspect", "--format", "{{.Name}} {{.Driver}} {{.Scope}} {{range .IPAM.Config}}{{.Subnet}}{{end}} {{json .Labels}}", "clinet2"),
			`clinet2 bridge local 10.99.0.0/24 {"k":"v"}`, "network inspect --format")
		s.eq(s.ok("network", "inspect", "--format", "{{.Id}}", "clinet"), id, "network inspect's Id")
		// 20.10's client words a 404 itself.
		s.codeOneOf(1, []string{"Error response from daemon: network nothing not found", "Error: No such network: nothing"}, "network", "inspect", "nothing")

		// Two containers on it reach each other by name.
		s.ok("run", "-d", "--name", "srv", "--network", "clinet", "busybox", "sh", "-c",
			`mkdir /www && echo "served by srv" > /www/index.html && exec httpd -f -p 80 -h /www`)
		s.runningProgram("srv", "httpd")
		s.eq(s.ok("run", "--rm", "--network", "clinet", "busybox", "timeout", "10", "wget", "-qO-", "http://srv/"), "served by srv", "srv by name from clinet")
		// connect: a container of another user network joins (one of
		// the default bridge would have no resolver, as with Docker).
		s.ok("run", "-d", "--name", "cli-other", "--network", "clinet2", "busybox", "sleep", "1000")
		r := s.docker("exec", "cli-other", "nslookup", "srv")
		s.expect(r.code != 0, "srv resolves from clinet2: %s", r.stdout)
		s.eq(s.ok("network", "connect", "clinet", "cli-other"), "", "network connect's output")
		nets := s.inspect("cli-other", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}")
		s.eq(nets, "clinet clinet2", "cli-other's networks")
		s.eq(s.ok("exec", "cli-other", "timeout", "10", "wget", "-qO-", "http://srv/"), "served by srv", "srv by name from a connected container")
		members := strings.Fields(s.ok("network", "inspect", "--format", "{{range .Containers}}{{.Name}} {{end}}", "clinet"))
		slices.Sort(members)
		s.eq(strings.Join(members, " "), "cli-other srv", "clinet's containers")
		r = s.code(1, "has active endpoints", "network", "rm", "clinet")
		s.contains(r.stderr, "network clinet ", "network rm's error")
		// disconnect.
		s.eq(s.ok("network", "disconnect", "clinet", "cli-other"), "", "network disconnect's output")
		s.eq(s.inspect("cli-other", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}"), "clinet2", "cli-other's networks")
		r = s.docker("exec", "cli-other", "nslookup", "srv")
		s.expect(r.code != 0, "srv resolves after disconnect: %s", r.stdout)
		s.rm("srv", "cli-other")
		s.eq(s.ok("network", "rm", "clinet", "clinet2"), "clinet\nclinet2", "network rm's output")
		s.codeOneOf(1, []string{"Error response from daemon: network nothing not found", "Error: No such network: nothing"}, "network", "rm", "nothing")
	}},
	{"network.prune", func(s *cliSuite) {
		s.ok("network", "create", "pr-net")
		defer s.docker("network", "rm", "pr-net")
		out := s.ok("network", "prune", "-f")
		s.eq(out, "Deleted Networks:\npr-net", "network prune's output")
		s.eq(s.ok("network", "ls", "-q", "--filter", "name=pr-net"), "", "network ls after prune")
	}},

	// Events.
	{"events", func(s *cliSuite) {
		defer s.rm("ev")
		since := time.Now()
		s.code(4, "", "run", "--name", "ev", "busybox", "sh", "-c", "exit 4")
		s.ok("rm", "ev")
		until := strconv.FormatFloat(float64(time.Now().UnixNano())/1e9, 'f', 3, 64)
		sinceArg := strconv.FormatFloat(float64(since.UnixNano())/1e9, 'f', 3, 64)
		actions := cliLines(s.ok("events", "--since", sinceArg, "--until", until, "--filter", "container=ev", "--format", "{{.Type}} {{.Action}}"))
		var seen []string
		for _, a := range actions {
			if slices.Contains([]string{"container create", "container start", "container die", "container destroy"}, a) {
				seen = append(seen, strings.TrimPrefix(a, "container "))
			}
		}
		s.eq(strings.Join(seen, ","), "create,start,die,destroy", "the container's events (of "+strings.Join(actions, ",")+")")
		// Docker's default format: time, type, action, ID, attributes.
		out := s.ok("events", "--since", sinceArg, "--until", until, "--filter", "container=ev", "--filter", "event=die")
		s.matches(out, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d) container die [0-9a-f]{64} \(.*exitCode=4.*\)$`, "events' default format")
		s.contains(out, "image=busybox", "the die event's attributes")
		s.contains(out, "name=ev", "the die event's attributes")
		s.eq(s.ok("events", "--since", sinceArg, "--until", until, "--filter", "event=die", "--filter", "container=ev", "--format", "{{.Actor.Attributes.exitCode}}"), "4", "--filter event=die")
		s.eq(s.ok("events", "--since", sinceArg, "--until", until, "--filter", "type=network", "--filter", "container=nothing"), "", "events of nothing")
		var ev struct {
			Type, Action, Status, ID, From string
			Actor                          struct{ ID string }
			TimeNano                       int64 `json:"timeNano"`
		}
		j := cliLines(s.ok("events", "--since", sinceArg, "--until", until, "--filter", "event=destroy", "--filter", "container=ev", "--format", "{{json .}}"))
		s.expect(len(j) == 1 && json.Unmarshal([]byte(j[0]), &ev) == nil, "events --format json: %q", j)
		s.expect(ev.Type == "container" && ev.Action == "destroy" && ev.Status == "destroy" && ev.ID == ev.Actor.ID && ev.From == "busybox" && ev.TimeNano >= since.UnixNano(),
			"the destroy event: %+v", ev)
		// --until in the past: the stream ends; before --since: nothing.
		s.eq(s.ok("events", "--since", until, "--until", until), "", "events between now and now")
	}},
	{"events.follow", func(s *cliSuite) {
		defer s.rm("evf")
		since := strconv.FormatInt(time.Now().Unix(), 10)
		out, _, stop, exited := s.background("events", "--since", since, "--filter", "container=evf", "--format", "{{.Action}}")
		defer stop()
		s.ok("run", "-d", "--name", "evf", "busybox", "sleep", "1000")
		s.waitFor(10*time.Second, "events shows evf's start", func() bool { return strings.Contains(out.String(), "start\n") })
		s.ok("rm", "-f", "evf")
		s.waitFor(10*time.Second, "events shows evf's destroy", func() bool { return strings.Contains(out.String(), "destroy\n") })
		select {
		case <-exited:
			s.failf("events without --until ended")
		default:
		}
		l := cliLines(out.String())
		s.eq(l[0]+" "+l[len(l)-1], "create destroy", "the first and last events of "+strings.Join(l, ","))
	}},

	// The system.
	{"system.df", func(s *cliSuite) {
		defer s.rm("sdf")
		s.ok("run", "-d", "--name", "sdf", "busybox", "sleep", "1000")
		out := cliLines(s.ok("system", "df"))
		s.eq(strings.Join(cliColumns(out[0]), "|"), "TYPE|TOTAL|ACTIVE|SIZE|RECLAIMABLE", "system df's header")
		var types []string
		for _, l := range out[1:] {
			types = append(types, cliColumns(l)[0])
		}
		s.eq(strings.Join(types, ","), "Images,Containers,Local Volumes,Build Cache", "system df's rows")
		s.matches(s.ok("system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}"), `^Images \d+ 1\nContainers 1 1\nLocal Volumes 0 0\nBuild Cache 0 0$`, "system df --format")
		v := s.ok("system", "df", "-v")
		for _, want := range []string{"Images space usage:", "Containers space usage:", "Local Volumes space usage:", "Build cache usage: 0B", "sdf"} {
			s.contains(v, want, "system df -v")
		}
	}},
	{"container.prune", func(s *cliSuite) {
		defer s.rm("cp-run", "cp-exit")
		s.ok("run", "-d", "--name", "cp-run", "busybox", "sleep", "1000")
		s.ok("run", "--name", "cp-exit", "busybox", "true")
		id := s.inspect("cp-exit", "{{.Id}}")
		out := s.ok("container", "prune", "-f")
		s.matches(out, `^Deleted Containers:\n`+id+`\n\nTotal reclaimed space: \d+(\.\d+)?[kMG]?B$`, "container prune's output")
		s.eq(s.ok("ps", "-a", "--format", "{{.Names}}"), "cp-run", "what prune left")
		s.eq(s.ok("container", "prune", "-f"), "Total reclaimed space: 0B", "a second prune")
	}},
	{"image.prune", func(s *cliSuite) {
		// A container keeps busybox in use.
		s.ok("create", "--name", "ip-user", "busybox")
		defer s.rm("ip-user")
		ref := s.images["hello"]
		hello := s.inspect(ref, "{{.Id}}")
		// Its only tag moved to busybox: the image is dangling.
		s.ok("tag", "busybox", ref)
		s.eq(s.ok("images", "-q", "--filter", "dangling=true", "--no-trunc"), hello, "the dangling image")
		out := s.ok("image", "prune", "-f")
		s.contains(out, "Deleted Images:\n", "image prune's output")
		s.contains(out, "deleted: "+hello+"\n", "image prune's output")
		s.matches(out, `\nTotal reclaimed space: \d+(\.\d+)?[kMG]?B$`, "image prune's output")
		s.code(1, "No such image", "image", "inspect", hello)
		s.ok("rmi", ref)
	}},
	{"image.prune.all", func(s *cliSuite) {
		// A container keeps busybox in use.
		s.ok("create", "--name", "ip-user", "busybox")
		defer s.rm("ip-user")
		// The checks after this one need busybox by its name.
		bb := s.inspect("busybox", "{{.Id}}")
		defer s.docker("tag", bb, "busybox:latest")
		// -a: every image no container uses (run.pull_missing's).
		auto := s.images["autopull"]
		autoID := s.inspect(auto, "{{.Id}}")
		out := s.ok("image", "prune", "-af")
		s.contains(out, "untagged: "+auto+"\n", "image prune -a's output")
		s.contains(out, "deleted: "+autoID+"\n", "image prune -a's output")
		s.contains(out, "Total reclaimed space:", "image prune -a's output")
		s.eq(s.ok("images", "--format", "{{.Repository}}:{{.Tag}}"), "busybox:latest", "images after prune -a")
	}},
	{"system.prune", func(s *cliSuite) {
		defer s.rm("sp-run", "sp-exit")
		defer s.docker("network", "rm", "sp-net")
		defer s.docker("volume", "rm", "sp-vol")
		s.ok("run", "-d", "--name", "sp-run", "busybox", "sleep", "1000")
		s.ok("run", "--name", "sp-exit", "busybox", "true")
		exited := s.inspect("sp-exit", "{{.Id}}")
		s.ok("network", "create", "sp-net")
		s.ok("volume", "create", "sp-vol")
		out := s.ok("system", "prune", "-f")
		s.contains(out, "Deleted Containers:\n"+exited+"\n", "system prune's output")
		s.contains(out, "Deleted Networks:\nsp-net\n", "system prune's output")
		s.contains(out, "Total reclaimed space:", "system prune's output")
		s.eq(s.ok("ps", "-a", "--format", "{{.Names}}"), "sp-run", "containers left")
		s.eq(s.ok("volume", "ls", "-q"), "sp-vol", "volumes left (no --volumes)")
		s.contains(s.ok("images", "--format", "{{.Repository}}"), "busybox", "images left")
		s.eq(s.ok("network", "ls", "-q", "--filter", "name=sp-net"), "", "sp-net left")
	}},
}

// tarNamesOf lists a tar stream's entries, sorted, space-separated, or
// says why it cannot.
func tarNamesOf(s string) string {
	tr := tar.NewReader(strings.NewReader(s))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Sprintf("(not a tar: %v)", err)
		}
		names = append(names, strings.TrimSuffix(h.Name, "/"))
	}
	slices.Sort(names)
	return strings.Join(names, " ")
}
