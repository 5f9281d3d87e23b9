//go:build e2e

package e2e

// Docker Compose as an acceptance suite (issue #13), in two versions: the
// current one, built once from its Go module (github.com/docker/compose/v5)
// as a docker CLI plugin into a cache outside the clone (composeV5), and
// Debian's docker-compose 1.29 (python, /usr/bin/docker-compose). Each runs
// the same checks (composeChecks) on the application in compat/compose/
// (three services of the busybox test image: a user network, a named
// volume, a published port, depends_on with condition: service_healthy)
// against a daemon of its own with networking on, in a network namespace
// of its own (withNetDaemon). A check prints one line, PASS, FAIL or SKIP,
// and each Compose a SUMMARY line; a failing check named in composeGaps (an
// engine gap, with its reason) is a SKIP. What is expected is what Compose
// does against Docker; where the two Composes word or name things apart
// (compat-web-1 against compat_web_1), a check says which it expects of
// which.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// composeV5Version is the Compose built from its Go module: the newest the
// module proxy serves whose go.mod this machine's Go (1.26.8) builds
// (v5.7.x ask for go 1.26.10 and newer).
const composeV5Version = "v5.6.0"

// composeV5Cache is where the built plugin is kept (COMPOSE_V5_CACHE
// overrides it): a directory holding docker-compose, named by the CLI
// configuration's cliPluginsExtraDirs.
const composeV5Cache = "/var/cache/balena-engine-test/compose-" + composeV5Version

// composeDebian is Debian's docker-compose (1.29, python).
const composeDebian = "/usr/bin/docker-compose"

// composeV1API is the API version Compose 1.29 is run at: Debian's
// docker.io (20.10), which Debian ships it with, speaks 1.41. At the
// newest version Compose 1.29 cannot recreate a container, with Docker
// 25 and newer alike: image inspect has no ContainerConfig from API 1.45
// on, which it reads (KeyError: 'ContainerConfig').
const composeV1API = "1.41"

// composeProject names the application's project (-p).
const composeProject = "compat"

// composeGaps are the engine's known gaps the suite meets: check name ->
// what the engine does and what Docker does. A failing check listed here
// is a SKIP with that reason and what was seen; one that passes is a PASS
// (and the entry is stale). A key "NAME@VERSION" applies to that Compose
// version only. None today.
var composeGaps = map[string]string{}

var composeSummary = regexp.MustCompile(`^SUMMARY compose (\S+): (\d+) passed, (\d+) skipped, (\d+) failed$`)

// composeV5 returns the directory holding Compose v5's docker CLI plugin
// (docker-compose), built the first time from the module's source
// (fetched through the Go module proxy with go mod download, built as its
// own main module, so its go.mod's exclude directives hold), and reused
// from the cache afterwards.
func composeV5(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("COMPOSE_V5_CACHE")
	if dir == "" {
		dir = composeV5Cache
	}
	bin := filepath.Join(dir, "docker-compose")
	if _, err := os.Stat(bin); err == nil {
		return dir
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	work, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(work)
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	goCmd := func(dir string, args ...string) []byte {
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Dir = dir
		// Its own module, with this machine's Go: no workspace, no
		// toolchain download, no C.
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOTOOLCHAIN=local", "CGO_ENABLED=0", "GOFLAGS=-mod=readonly -buildvcs=false")
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("go %s (building Compose %s into %s): %v\n%s", strings.Join(args, " "), composeV5Version, dir, err, stderr)
		}
		return out
	}
	mod := "github.com/docker/compose/v5@" + composeV5Version
	var dl struct{ Dir string }
	if err := json.Unmarshal(goCmd(work, "mod", "download", "-json", mod), &dl); err != nil || dl.Dir == "" {
		t.Fatalf("go mod download %s: %v %+v", mod, err, dl)
	}
	src := filepath.Join(work, "src")
	if err := os.CopyFS(src, os.DirFS(dl.Dir)); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(work, "docker-compose")
	goCmd(src, "build", "-trimpath", "-ldflags", "-s -w -X github.com/docker/compose/v5/internal.Version="+composeV5Version, "-o", out, "./cmd")
	// Renamed into place whole: a run beside this one sees it or not.
	if err := os.Rename(out, bin); err != nil {
		t.Fatal(err)
	}
	t.Logf("built Compose %s into %s in %s", composeV5Version, bin, time.Since(began).Round(time.Second))
	return dir
}

func TestCompatCompose(t *testing.T) {
	file, err := filepath.Abs(filepath.Join("compat", "compose", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Fatalf("the docker CLI is not installed (Compose v5 runs as its plugin): %v", err)
	}
	if _, err := os.Stat(composeDebian); err != nil {
		t.Fatalf("Debian's docker-compose 1.29 is not installed (%v): apt-get install docker-compose", err)
	}
	plugins := composeV5(t)
	runs := []struct {
		cmd []string // the Compose command
		env []string // its environment, over the daemon's
		v1  bool
	}{
		{cmd: []string{"docker", "compose"}},
		{cmd: []string{composeDebian}, env: []string{"COMPOSE_API_VERSION=" + composeV1API}, v1: true},
	}
	start := time.Now()
	for _, r := range runs {
		version := composeVersion(t, r.cmd, r.env, plugins)
		t.Run(version, func(t *testing.T) {
			began := time.Now()
			p, h, d, env := withNetDaemon(t)
			dumpMonitorLog(t, p)
			t.Cleanup(func() {
				if t.Failed() {
					d.stop(t)
					t.Logf("daemon log:\n%s", d.stderr)
				}
			})
			// The CLI finds the plugin through its configuration
			// (DOCKER_CONFIG is the daemon's directory).
			cfg := fmt.Sprintf(`{"cliPluginsExtraDirs": [%q]}`, plugins)
			if err := os.WriteFile(filepath.Join(p.dir, "config.json"), []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			s := &composeSuite{suiteLog: suiteLog{t: t, suite: "compose", version: version, gaps: composeGaps, gapsName: "composeGaps"}, cmd: r.cmd, env: append(env, r.env...), file: file, h: h, v1: r.v1}
			line := fmt.Sprintf("# compose %s (%s)", version, strings.Join(r.cmd, " "))
			if r.v1 {
				line += ", API " + composeV1API
			}
			s.println(line)
			defer s.cleanup()
			for _, c := range composeChecks {
				s.check(c.name, c.fn)
			}
			s.finish(composeSummary, began)
		})
	}
	t.Logf("both Composes in %s", time.Since(start).Round(100*time.Millisecond))
}

// composeVersion is a Compose's own version (version --short: "5.6.0",
// "1.29.2"), plugins being where the CLI finds Compose v5.
func composeVersion(t *testing.T, cmd, env []string, plugins string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`{"cliPluginsExtraDirs": [%q]}`, plugins)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	c := exec.Command(cmd[0], append(cmd[1:], "version", "--short")...)
	c.Env = append(append(os.Environ(), env...), "DOCKER_CONFIG="+dir)
	out, err := c.CombinedOutput()
	v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	if err != nil || !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(v) {
		t.Fatalf("%s version --short: %v: %q", strings.Join(cmd, " "), err, out)
	}
	return v
}

// composeSuite is one Compose's run of the checks against its daemon.
type composeSuite struct {
	suiteLog
	cmd  []string // the Compose command
	env  []string // the daemon's environment, and the Compose's own
	file string   // compose.yaml
	h    netHost
	v1   bool // Compose 1.29

	// last is the last Compose command run and what it printed, logged
	// with a check's failure.
	last string

	// vars are variables of the application (WORKER_MESSAGE), given to
	// every Compose command from the check that set them on.
	vars []string
}

// check runs one check (gaps may be named for a Compose major version),
// logging the last Compose command when it fails.
func (s *composeSuite) check(name string, fn func(*composeSuite)) {
	s.last = "none"
	if s.run(name, strings.SplitN(s.version, ".", 2)[0], func() { fn(s) }) {
		s.t.Logf("the last Compose command of %s: %s", name, s.last)
	}
}

// exec runs a command to its end (two minutes at most) with the suite's
// environment and extra.
func (s *composeSuite) exec(extra []string, name string, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(append(os.Environ(), s.env...), extra...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		s.failf("%s %s: no end within two minutes (stderr %q)", name, strings.Join(args, " "), errb.String())
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		s.failf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return result{out.String(), errb.String(), code}
}

// composeArgs is the command line of Compose with args, on the
// application's file and project.
func (s *composeSuite) composeArgs(args ...string) []string {
	return append(append(slices.Clone(s.cmd), "-f", s.file, "-p", composeProject), args...)
}

// compose runs Compose with args.
func (s *composeSuite) compose(args ...string) result {
	a := s.composeArgs(args...)
	r := s.exec(s.vars, a[0], a[1:]...)
	s.last = fmt.Sprintf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	return r
}

// ok runs Compose, which must succeed, and gives its output trimmed.
func (s *composeSuite) ok(args ...string) string {
	r := s.compose(args...)
	if r.code != 0 {
		s.failf("compose %s: exit %d: %s", strings.Join(args, " "), r.code, strings.TrimSpace(r.stderr))
	}
	// Compose 1.29 reports some failures (of a restart, a stop, a
	// start of one container among several) and exits 0.
	if m := regexp.MustCompile(`(?m)^ERROR: .*$`).FindString(r.stderr); m != "" {
		s.failf("compose %s: %s", strings.Join(args, " "), m)
	}
	return strings.TrimSpace(r.stdout)
}

// docker runs the current docker CLI against the daemon: how the checks
// look at what Compose made.
func (s *composeSuite) docker(args ...string) string {
	r := s.exec(nil, "docker", args...)
	if r.code != 0 {
		s.failf("docker %s: exit %d: %s", strings.Join(args, " "), r.code, strings.TrimSpace(r.stderr))
	}
	return strings.TrimSpace(r.stdout)
}

func (s *composeSuite) inspect(ref, format string) string {
	return s.docker("inspect", "--format", format, ref)
}

func (s *composeSuite) waitFor(timeout time.Duration, what string, cond func() bool) {
	if !poll(timeout, cond) {
		s.failf("%s: not within %v", what, timeout)
	}
}

// fetch gets a URL from the daemon's network namespace (its "host").
func (s *composeSuite) fetch(url string) (string, bool) {
	out, err := exec.Command("nsenter", "--net="+string(s.h), "--", "curl", "-sS", "-m", "5", url).Output()
	return string(out), err == nil
}

// name is the container Compose names for service's first replica.
func (s *composeSuite) name(service string) string {
	if s.v1 {
		return composeProject + "_" + service + "_1"
	}
	return composeProject + "-" + service + "-1"
}

var composeServices = []string{"db", "web", "worker"}

// containers are the project's containers (running or not) by service,
// as the label filter of the container list finds them; a service's
// one-off containers are left out.
func (s *composeSuite) containers() map[string]string {
	out := s.docker("ps", "-a", "--no-trunc", "--filter", "label=com.docker.compose.project="+composeProject,
		"--filter", "label=com.docker.compose.oneoff=False",
		"--format", `{{.ID}} {{.Label "com.docker.compose.service"}}`)
	m := map[string]string{}
	for _, l := range cliLines(out) {
		f := strings.Fields(l)
		if len(f) != 2 {
			s.failf("docker ps: %q", l)
		}
		if _, dup := m[f[1]]; dup {
			s.failf("two containers of service %s: %q", f[1], out)
		}
		m[f[1]] = f[0]
	}
	return m
}

// all3 are the three services' containers, which must all be there.
func (s *composeSuite) all3() map[string]string {
	m := s.containers()
	for _, svc := range composeServices {
		if m[svc] == "" {
			s.failf("no container of service %s (have %v)", svc, m)
		}
	}
	if len(m) != 3 {
		s.failf("containers %v, want one per service", m)
	}
	return m
}

// started is when each container last started.
func (s *composeSuite) started(ids map[string]string) map[string]string {
	m := map[string]string{}
	for svc, id := range ids {
		m[svc] = s.inspect(id, "{{.State.StartedAt}}")
	}
	return m
}

// healthy waits until db and web are healthy, and worker answers on its
// port with what it fetched from web (message: its WORKER_MESSAGE).
func (s *composeSuite) healthy(message string) {
	for _, svc := range []string{"db", "web"} {
		s.waitFor(30*time.Second, svc+" healthy", func() bool {
			return s.inspect(s.name(svc), "{{.State.Health.Status}}") == "healthy"
		})
	}
	want := "worker " + message + " got: hello from web"
	var got result
	s.waitFor(30*time.Second, "web reaches worker by its name", func() bool {
		got = s.compose("exec", "-T", "web", "wget", "-q", "-O", "-", "http://worker/")
		return got.code == 0 && strings.TrimSpace(got.stdout) == want
	})
}

// background runs Compose with args in a process group of its own (the
// docker CLI runs the plugin as its child), its output as it comes; stop
// ends the group by its ID and waits for it.
func (s *composeSuite) background(args ...string) (out *syncBuffer, stop func()) {
	a := s.composeArgs(args...)
	cmd := exec.Command(a[0], a[1:]...)
	cmd.Env = append(append(os.Environ(), s.env...), s.vars...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		s.failf("compose %s: %v", strings.Join(args, " "), err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	return out, func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
}

// cleanup takes the project down if a check left it up (down -v failed or
// never ran), so the daemon's clean-up finds nothing of it.
func (s *composeSuite) cleanup() {
	defer func() { recover() }() // a failure here was a check's, reported
	if len(s.containers()) > 0 {
		s.compose("down", "-v", "-t", "1")
	}
}

// composeEvent is a line of "compose events --json" (the same keys in
// both versions).
type composeEvent struct {
	Action, ID, Service, Type string
	Attributes                map[string]string
}

type composeCheck struct {
	name string
	fn   func(*composeSuite)
}

// composeChecks run in this order, on the application each leaves up
// (until down).
var composeChecks = []composeCheck{
	{"version", func(s *composeSuite) {
		if s.v1 {
			out := s.ok("version")
			s.contains(out, "docker-compose version "+s.version, "version")
			return
		}
		// As a CLI plugin: the docker CLI lists it and runs it.
		s.eq(s.ok("version"), "Docker Compose version v"+s.version, "docker compose version")
		plugins := s.docker("info", "--format", "{{json .ClientInfo.Plugins}}")
		s.contains(plugins, `"Name":"compose"`, "the CLI's plugins")
		s.contains(plugins, `"Version":"v`+s.version+`"`, "the CLI's plugins")
	}},
	{"config", func(s *composeSuite) {
		s.eq(strings.Join(cliLines(s.ok("config", "--services")), " "), "db web worker", "config --services")
		s.eq(strings.Join(cliLines(s.ok("config", "--volumes")), " "), "data", "config --volumes")
	}},
	{"up", func(s *composeSuite) {
		out := s.compose("up", "-d")
		s.expect(out.code == 0, "up -d: exit %d: %s", out.code, out.stderr)
		ids := s.all3()
		for _, svc := range composeServices {
			s.eq(s.inspect(ids[svc], "{{.State.Status}} {{.Name}}"), "running /"+s.name(svc), svc+"'s state and name")
		}
		// Compose waited for db's health before starting web, and for
		// web's before worker.
		for _, svc := range []string{"db", "web"} {
			s.eq(s.inspect(ids[svc], "{{.State.Health.Status}}"), "healthy", svc+"'s health once up returned")
		}
		s.eq(s.inspect(ids["worker"], "{{if .State.Health}}{{.State.Health.Status}}{{end}}"), "", "worker's health (it has no healthcheck)")
		s.healthy("one")
	}},
	{"up.order", func(s *composeSuite) {
		// The daemon's events since the daemon started: each service
		// started after its dependency was healthy.
		out := s.docker("events", "--since", "0", "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
			"--filter", "label=com.docker.compose.project="+composeProject, "--filter", "type=container",
			"--format", "{{.Actor.Attributes.name}} {{.Action}}")
		lines := cliLines(out)
		at := func(l string) int {
			i := slices.Index(lines, l)
			s.expect(i >= 0, "no event %q in %q", l, lines)
			return i
		}
		s.expect(at(s.name("db")+" health_status: healthy") < at(s.name("web")+" start"), "web started before db was healthy: %q", lines)
		s.expect(at(s.name("web")+" health_status: healthy") < at(s.name("worker")+" start"), "worker started before web was healthy: %q", lines)
		s.expect(at(s.name("db")+" create") < at(s.name("db")+" start"), "db's events: %q", lines)
	}},
	{"ps", func(s *composeSuite) {
		ids := s.all3()
		table := cliLines(s.ok("ps"))
		s.expect(len(table) == 4 || (s.v1 && len(table) == 5), "ps: %q", table)
		for _, svc := range composeServices {
			var row string
			for _, l := range table {
				if strings.HasPrefix(l, s.name(svc)+" ") {
					row = l
				}
			}
			s.expect(row != "", "ps has no row for %s: %q", s.name(svc), table)
			if s.v1 {
				s.contains(row, "Up", "ps's "+svc)
			} else {
				s.expect(regexp.MustCompile(` Up (Less than a second|\d+ seconds?|About a minute)`).MatchString(row), "ps's %s row: %q", svc, row)
				s.contains(row, " "+svc+" ", "ps's "+svc+" row (SERVICE)")
			}
			if svc != "worker" {
				s.contains(row, "(healthy)", "ps's "+svc+" row")
			} else if strings.Contains(row, "health") {
				s.failf("ps's worker row shows a health: %q", row)
			}
			if svc == "web" {
				s.contains(row, "0.0.0.0:8080->80/tcp", "ps's web row")
			}
		}
		var want []string
		for _, id := range ids {
			want = append(want, id)
		}
		slices.Sort(want)
		got := cliLines(s.ok("ps", "-q"))
		for i, id := range got {
			if len(id) == 12 {
				got[i] = ids[s.serviceOf(id)]
			}
		}
		slices.Sort(got)
		s.eq(strings.Join(got, " "), strings.Join(want, " "), "ps -q")
		s.eq(strings.Join(cliLines(s.ok("ps", "--services")), " "), "db web worker", "ps --services")
		if !s.v1 {
			// The JSON form: state and health as Docker reports them.
			for _, l := range cliLines(s.ok("ps", "--format", "json")) {
				var c struct{ Service, State, Health, Name string }
				s.expect(json.Unmarshal([]byte(l), &c) == nil, "ps --format json: %q", l)
				want := "healthy"
				if c.Service == "worker" {
					want = ""
				}
				s.eq(c.State+" "+c.Health, "running "+want, "ps --format json's "+c.Name)
			}
		}
	}},
	{"labels", func(s *composeSuite) {
		ids := s.all3()
		for _, svc := range composeServices {
			var labels map[string]string
			s.expect(json.Unmarshal([]byte(s.inspect(ids[svc], "{{json .Config.Labels}}")), &labels) == nil, "labels of %s", svc)
			for k, v := range map[string]string{
				"com.docker.compose.project":              composeProject,
				"com.docker.compose.service":              svc,
				"com.docker.compose.container-number":     "1",
				"com.docker.compose.oneoff":               "False",
				"com.docker.compose.version":              s.version,
				"com.docker.compose.project.config_files": s.file,
				"com.docker.compose.project.working_dir":  filepath.Dir(s.file),
			} {
				s.eq(labels[k], v, svc+"'s label "+k)
			}
			s.expect(regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(labels["com.docker.compose.config-hash"]), "%s's config-hash %q", svc, labels["com.docker.compose.config-hash"])
			// The list's label filter, by key=value and by key.
			s.eq(s.docker("ps", "-q", "--no-trunc", "--filter", "label=com.docker.compose.service="+svc,
				"--filter", "label=com.docker.compose.project="+composeProject), ids[svc], "ps --filter label=…service="+svc)
			// Its network, with its service's name as an alias.
			aliases := s.inspect(ids[svc], `{{json (index .NetworkSettings.Networks "compat_app").Aliases}}`)
			s.contains(aliases, `"`+svc+`"`, svc+"'s aliases on compat_app")
		}
		s.eq(strconv.Itoa(len(cliLines(s.docker("ps", "-q", "--filter", "label=com.docker.compose.project")))), "3", "ps --filter label=com.docker.compose.project")
		s.eq(s.docker("network", "inspect", "--format", `{{.Driver}} {{index .Labels "com.docker.compose.network"}} {{index .Labels "com.docker.compose.project"}}`, "compat_app"),
			"bridge app compat", "network compat_app's driver and labels")
		s.eq(s.docker("network", "ls", "-q", "--filter", "label=com.docker.compose.project="+composeProject, "--format", "{{.Name}}"), "compat_app", "networks by label")
		s.eq(s.docker("volume", "inspect", "--format", `{{.Driver}} {{index .Labels "com.docker.compose.volume"}} {{index .Labels "com.docker.compose.project"}}`, "compat_data"),
			"local data compat", "volume compat_data's driver and labels")
		s.eq(s.docker("volume", "ls", "-q", "--filter", "label=com.docker.compose.project="+composeProject), "compat_data", "volumes by label")
		s.eq(s.inspect(ids["web"], `{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}}{{end}}`), "volume compat_data /www/data false", "web's mount")
	}},
	{"logs", func(s *composeSuite) {
		sep := "-"
		if s.v1 {
			sep = "_"
		}
		prefix := func(svc string) string { return `^` + svc + sep + `1\s+\| ` }
		all := s.ok("logs", "--no-color")
		for _, want := range []string{prefix("db") + `db ready$`, prefix("web") + `web serving$`, prefix("worker") + `worker one got: hello from web$`} {
			s.expect(regexp.MustCompile(`(?m)`+want).MatchString(all), "logs: no line matching %s in %q", want, all)
		}
		one := cliLines(s.ok("logs", "--no-color", "worker"))
		for _, l := range one {
			if !regexp.MustCompile(prefix("worker")).MatchString(l) && !strings.HasPrefix(l, "Attaching to ") {
				s.failf("logs worker: a line not worker's: %q", l)
			}
		}
		s.expect(len(one) > 0, "logs worker: nothing")
		s.expect(regexp.MustCompile(`(?m)`+prefix("db")+`db ready$`).MatchString(s.ok("logs", "--no-color", "--tail", "1", "db")), "logs --tail 1 db")
	}},
	{"exec", func(s *composeSuite) {
		s.eq(s.ok("exec", "-T", "db", "cat", "/data/state"), "ready", "exec db cat /data/state")
		s.eq(s.ok("exec", "-T", "web", "wget", "-q", "-O", "-", "http://worker/"), "worker one got: hello from web", "exec web wget http://worker/")
		// web reads the volume db wrote, read-only.
		s.eq(s.ok("exec", "-T", "web", "cat", "/www/data/state"), "ready", "exec web cat /www/data/state")
		r := s.compose("exec", "-T", "web", "sh", "-c", "echo out; echo err >&2; exit 3")
		s.eq(fmt.Sprintf("%d %q %q", r.code, r.stdout, strings.TrimSpace(r.stderr)), `3 "out\n" "err"`, "exec's exit code and streams")
		r = s.compose("exec", "-T", "web", "touch", "/www/data/x")
		s.expect(r.code != 0 && strings.Contains(r.stderr, "Read-only file system"), "web writes the read-only volume: %d %q", r.code, r.stderr)
		r = s.compose("exec", "-T", "-e", "X=from-exec", "-w", "/www", "web", "sh", "-c", `echo "$X $PWD $GREETING"`)
		s.eq(strings.TrimSpace(r.stdout), "from-exec /www hello from web", "exec -e -w")
	}},
	{"port", func(s *composeSuite) {
		s.eq(s.ok("port", "web", "80"), "0.0.0.0:8080", "port web 80")
		// The published port, from the daemon's host: web's page, and the
		// volume db wrote.
		got, ok := s.fetch("http://127.0.0.1:8080/")
		s.expect(ok && got == "hello from web\n", "http://127.0.0.1:8080/: %q (%v)", got, ok)
		got, ok = s.fetch("http://127.0.0.1:8080/data/state")
		s.expect(ok && got == "ready\n", "http://127.0.0.1:8080/data/state: %q (%v)", got, ok)
	}},
	{"top", func(s *composeSuite) {
		// Each container's processes: 1.29 heads them with the
		// container's name, v5 puts the service and replica in columns.
		out := s.ok("top")
		for _, svc := range composeServices {
			if s.v1 {
				s.expect(regexp.MustCompile(`(?m)^`+s.name(svc)+`$`).MatchString(out), "top: no %s in %q", s.name(svc), out)
			} else {
				s.expect(regexp.MustCompile(`(?m)^`+svc+`\s+1\s+0\s+\d+`).MatchString(out), "top: no row of %s in %q", svc, out)
			}
		}
		for _, want := range []string{"sleep 2147483647", "httpd -f -p 80 -h /www"} {
			s.contains(out, want, "top")
		}
	}},
	{"events", func(s *composeSuite) {
		// Compose's events of the project while worker restarts: as
		// Docker's, kill (the stop signal), die, stop, start, restart.
		out, stop := s.background("events", "--json")
		defer stop()
		// Live once the healthchecks' execs show.
		s.waitFor(20*time.Second, "compose events shows the healthchecks' execs", func() bool { return strings.Contains(out.String(), `"exec_start: `) })
		id := s.all3()["worker"]
		s.ok("restart", "-t", "5", "worker")
		var seen []string
		s.waitFor(20*time.Second, "the worker's restart event", func() bool {
			seen = nil
			sc := bufio.NewScanner(strings.NewReader(out.String()))
			for sc.Scan() {
				var e composeEvent
				if json.Unmarshal(sc.Bytes(), &e) != nil {
					continue
				}
				if e.Service == "worker" && !strings.HasPrefix(e.Action, "exec_") {
					s.eq(e.ID+" "+e.Type+" "+e.Attributes["name"], id+" container "+s.name("worker"), "a worker event's id, type and name")
					a := e.Action
					if a == "kill" {
						a += "(" + e.Attributes["signal"] + ")"
					}
					seen = append(seen, a)
				}
			}
			return slices.Contains(seen, "restart")
		})
		s.eq(strings.Join(seen, ","), "kill(15),die,stop,start,restart", "the worker's events")
		s.healthy("one")
	}},
	{"restart", func(s *composeSuite) {
		ids := s.all3()
		before := s.started(ids)
		s.ok("restart")
		after := s.all3()
		s.eq(fmt.Sprint(after), fmt.Sprint(ids), "the containers after restart")
		for svc, t := range s.started(ids) {
			s.expect(t != before[svc], "%s not restarted (started %s)", svc, t)
		}
		s.healthy("one")
	}},
	{"up.unchanged", func(s *composeSuite) {
		// Nothing changed: Compose reads back its labels, the networks and
		// the volume, and leaves everything as it is.
		ids := s.all3()
		before := s.started(ids)
		r := s.compose("up", "-d")
		s.expect(r.code == 0, "up -d: exit %d: %s", r.code, r.stderr)
		s.eq(fmt.Sprint(s.all3()), fmt.Sprint(ids), "the containers after a second up")
		s.eq(fmt.Sprint(s.started(ids)), fmt.Sprint(before), "their start times")
		for _, svc := range composeServices {
			if s.v1 {
				s.contains(r.stderr, s.name(svc)+" is up-to-date", "up's output")
			} else {
				s.expect(regexp.MustCompile(`Container `+s.name(svc)+`\s+Running`).MatchString(r.stderr), "up's output for %s: %q", svc, r.stderr)
			}
		}
	}},
	{"pause", func(s *composeSuite) {
		s.ok("pause", "worker")
		s.eq(s.inspect(s.name("worker"), "{{.State.Status}}"), "paused", "worker after pause")
		s.contains(strings.Join(cliLines(s.ok("ps", "worker")), "\n"), "Paused", "ps worker")
		s.ok("unpause", "worker")
		s.eq(s.inspect(s.name("worker"), "{{.State.Status}}"), "running", "worker after unpause")
	}},
	{"stop.start", func(s *composeSuite) {
		ids := s.all3()
		s.ok("stop", "-t", "5")
		for svc, id := range ids {
			s.eq(s.inspect(id, "{{.State.Status}} {{.State.ExitCode}}"), "exited 0", svc+" after stop")
		}
		s.eq(s.docker("ps", "-q", "--filter", "label=com.docker.compose.project="+composeProject), "", "running containers after stop")
		s.ok("start")
		s.eq(fmt.Sprint(s.all3()), fmt.Sprint(ids), "the containers after start")
		s.healthy("one")
	}},
	{"run", func(s *composeSuite) {
		// A one-off container of db's service: the volume, the network
		// (web by name), its output, its exit code; removed with --rm.
		s.eq(s.ok("run", "--rm", "--no-deps", "-T", "db", "cat", "/data/state"), "ready", "run db cat /data/state")
		s.eq(s.ok("run", "--rm", "--no-deps", "-T", "db", "wget", "-q", "-O", "-", "http://web/"), "hello from web", "run db wget http://web/")
		r := s.compose("run", "--rm", "--no-deps", "-T", "db", "sh", "-c", "exit 5")
		s.eq(strconv.Itoa(r.code), "5", "run's exit code")
		s.eq(s.docker("ps", "-aq", "--filter", "label=com.docker.compose.oneoff=True"), "", "one-off containers left")
		s.all3()
	}},
	{"recreate", func(s *composeSuite) {
		// worker's environment changes: Compose recreates it, and only it.
		ids := s.all3()
		before := s.started(ids)
		s.vars = []string{"WORKER_MESSAGE=two"}
		r := s.compose("up", "-d")
		s.expect(r.code == 0, "up -d: exit %d: %s", r.code, r.stderr)
		after := s.all3()
		s.expect(after["worker"] != ids["worker"], "worker was not recreated (%s)", ids["worker"])
		for _, svc := range []string{"db", "web"} {
			s.eq(after[svc], ids[svc], svc+"'s container")
			s.eq(s.inspect(ids[svc], "{{.State.StartedAt}}"), before[svc], svc+"'s start time")
		}
		if s.v1 {
			s.contains(r.stderr, "Recreating "+s.name("worker"), "up's output")
		} else {
			s.expect(regexp.MustCompile(`Container `+s.name("worker")+`\s+Recreated?`).MatchString(r.stderr), "up's output: %q", r.stderr)
		}
		s.eq(s.inspect(after["worker"], "{{.Name}}"), "/"+s.name("worker"), "the new worker's name")
		s.contains(s.inspect(after["worker"], "{{json .Config.Env}}"), `"WORKER_MESSAGE=two"`, "the new worker's environment")
		s.healthy("two")
		// The old one is gone, not left renamed.
		s.eq(strconv.Itoa(len(cliLines(s.docker("ps", "-aq", "--filter", "label=com.docker.compose.project="+composeProject)))), "3", "the project's containers")
	}},
	{"down", func(s *composeSuite) {
		ids := s.all3()
		s.ok("down", "-v", "-t", "5")
		s.eq(s.docker("ps", "-aq", "--filter", "label=com.docker.compose.project="+composeProject), "", "the project's containers after down")
		for svc, id := range ids {
			r := s.exec(nil, "docker", "inspect", id)
			s.expect(r.code != 0, "%s's container is still there", svc)
		}
		s.eq(s.docker("network", "ls", "-q", "--filter", "name=compat_app"), "", "network compat_app after down")
		s.eq(s.docker("volume", "ls", "-q", "--filter", "label=com.docker.compose.project="+composeProject), "", "the project's volumes after down -v")
		r := s.exec(nil, "docker", "volume", "inspect", "compat_data")
		s.expect(r.code != 0, "volume compat_data is still there")
		// The network's bridge and the containers' veths are gone from the
		// daemon's host.
		links, ok := s.h.links()
		s.expect(ok, "ip link in the daemon's namespace")
		for _, l := range links {
			if l != "lo" && l != "balena0" {
				s.failf("a link left after down: %q (of %q)", l, links)
			}
		}
		s.eq(s.docker("network", "ls", "--format", "{{.Name}}"), "bridge\nhost\nnone", "the networks left")
	}},
}

// serviceOf is the service of a container of the project by its short ID.
func (s *composeSuite) serviceOf(short string) string {
	for svc, id := range s.containers() {
		if strings.HasPrefix(id, short) {
			return svc
		}
	}
	s.failf("no container %s in the project", short)
	return ""
}

// links are the names of the network links in the namespace.
func (h netHost) links() ([]string, bool) {
	out, err := exec.Command("nsenter", "--net="+string(h), "--", "ip", "-o", "link", "show").Output()
	if err != nil {
		return nil, false
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// "2: balena0: <...>" or "5: vethab12@if4: <...>"
		f := strings.SplitN(l, ": ", 3)
		if len(f) < 2 {
			continue
		}
		names = append(names, strings.SplitN(f[1], "@", 2)[0])
	}
	return names, true
}
