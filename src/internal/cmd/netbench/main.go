// Command netbench measures balena-engine's bridge networking against
// Debian's Docker (dockerd 20.10 with containerd, its shims and its
// userland proxy) in the same run:
//
//   - "docker run --rm busybox true" on the default bridge (no --network
//     flag), median of 20 after 2 warm-ups, the engines taking turns;
//   - the memory each published port adds (one container publishing 50
//     ports against one publishing none: Docker starts a docker-proxy
//     process per port and address family, balena-engine publishes with
//     kernel NAT only);
//   - the memory each running container on the default bridge adds;
//   - throughput: container to container on the bridge, and from "the
//     host" to a published port (on 127.0.0.1, which Docker serves with
//     docker-proxy, and on the bridge's gateway address, which both serve
//     with DNAT), with busybox nc and with a small static Go sender and
//     receiver (this command, built with CGO_ENABLED=0 and bind-mounted
//     into the containers).
//
// Memory is RSS and PSS (/proc/PID/smaps_rollup) summed over the engine's
// own processes: every process in the network namespace the engine's
// daemon runs in (balena-engine: daemon and monitor; Docker: dockerd,
// containerd, shims and docker-proxy), not the containers' processes,
// which have namespaces of their own.
//
//	go run ./src/internal/cmd/netbench -engine bin/balena-engine -out docs/results/network-bench.md
//
// Run as root from the module's root; make bench runs it. Neither daemon
// touches the host's network: each runs in a network namespace this
// command makes (a file bound with unshare --net=FILE, as the e2e tests'
// withNetDaemon does), where it makes its bridge, veths and firewall
// rules; traffic from "the host" is sent from inside that namespace. At
// the end both daemons and their containers are stopped, every process
// left in those namespaces or in the engines' cgroups is killed by PID,
// and the namespace files and work directories are unmounted and removed.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/balena-os/balena-engine/src/client"
	"github.com/balena-os/balena-engine/src/internal/mounts"
	"github.com/balena-os/balena-engine/src/internal/procmem"
	"github.com/balena-os/balena-engine/src/internal/testimage"
)

// selfPkg is this command's package, built again as a static binary to run
// inside the containers (helper mode).
const selfPkg = "github.com/balena-os/balena-engine/src/internal/cmd/netbench"

const (
	goPort = 5001 // the Go receiver's port, in its container and published
	ncPort = 5002 // busybox nc's
)

type options struct {
	engine, out string
	runs, warm  int // run --rm repetitions, and warm-ups before them
	ports       int // published by the ports container
	ctrs        int // containers of the per-container figure
	mib         int // MiB sent by each throughput run
	xruns       int // throughput repetitions
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "helper" {
		os.Exit(helper(os.Args[2:]))
	}
	var o options
	flag.StringVar(&o.engine, "engine", "bin/balena-engine", "the balena-engine binary")
	flag.StringVar(&o.out, "out", "", "write the results (markdown) to this file too")
	flag.IntVar(&o.runs, "runs", 20, "run --rm repetitions (after the warm-ups)")
	flag.IntVar(&o.warm, "warm", 2, "run --rm warm-ups, not counted")
	flag.IntVar(&o.ports, "ports", 50, "ports published by one container for the per-port figure")
	flag.IntVar(&o.ctrs, "containers", 10, "running containers for the per-container figure")
	flag.IntVar(&o.mib, "mib", 512, "MiB sent by each throughput run")
	flag.IntVar(&o.xruns, "xruns", 7, "throughput repetitions (median reported)")
	flag.Parse()
	if o.runs < 1 || o.ports < 1 || o.ctrs < 1 || o.mib < 1 || o.xruns < 1 || o.ports > 1000 {
		fmt.Fprintln(os.Stderr, "netbench: bad flags")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "netbench:", err)
		os.Exit(1)
	}
}

// engine is one daemon under test, in its own network namespace.
type engine struct {
	name                   string // "balena-engine" or "docker"
	work                   string
	sock, execDir, dataDir string
	nsFile                 string // the namespace's file, bound by unshare --net
	nsLink                 string // its /proc/PID/ns/net link text, "net:[inode]"
	cgroupParent           string
	args                   []string // the daemon's command, nsenter first
	cmd                    *exec.Cmd
	exited                 chan struct{} // closed when cmd has been waited for
	cli                    string        // the docker CLI
}

// mem is a sample of an engine's own processes' memory.
type mem struct {
	rss, pss           int64
	procs              map[string]int // comm: count
	proxies            int            // docker-proxy processes
	proxyRSS, proxyPSS int64
}

// xfer is one throughput path's runs.
type xfer struct {
	label string
	durs  []time.Duration
}

type results struct {
	runRm           []time.Duration
	idle            mem // after the run --rm runs, nothing running
	ctrBase, ctrN   mem // before and with the containers running
	portBase, portN mem // one container publishing none, and one publishing the ports
	xfers           map[string]*xfer
}

type bench struct {
	o        options
	work     string
	helper   string // the static build of this command
	archive  string
	engines  []*engine
	res      map[string]*results
	cleaned  sync.Once
	leftover []string // processes cleanup had to kill, and anything it could not undo
	loadAvg  [2]string
}

func run(o options) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("run as root")
	}
	for _, tool := range []string{"unshare", "nsenter", "busybox", "dockerd", "containerd", "docker-proxy", "iptables", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not installed (make bench installs docker.io)", tool)
		}
	}
	cli := "/usr/local/bin/docker"
	if _, err := os.Stat(cli); err != nil {
		if cli, err = exec.LookPath("docker"); err != nil {
			return fmt.Errorf("no docker CLI")
		}
	}
	engineBin, _ := filepath.Abs(o.engine)
	o.engine = engineBin
	work, err := os.MkdirTemp("/var/tmp", "netbench-")
	if err != nil {
		return err
	}
	b := &bench{o: o, work: work, res: map[string]*results{}}
	b.loadAvg[0] = loadavg()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "netbench: %v: cleaning up\n", s)
		b.cleanup()
		os.Exit(1)
	}()

	err = b.measure(cli)
	b.cleanup()
	signal.Stop(sigs)
	if err != nil {
		return err
	}
	b.loadAvg[1] = loadavg()
	rep := b.report()
	fmt.Print(rep)
	if o.out != "" {
		return os.WriteFile(o.out, []byte(rep), 0o644)
	}
	return nil
}

func (b *bench) measure(cli string) error {
	b.archive = filepath.Join(b.work, "busybox.tar")
	if err := testimage.WriteHostBusybox(b.archive, "busybox:latest"); err != nil {
		return err
	}
	// The helper: this command again, static, to run in busybox containers.
	b.helper = filepath.Join(b.work, "netbench-helper")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", b.helper, selfPkg)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building the static helper (run from the module's root): %v\n%s", err, out)
	}

	for _, name := range []string{"balena-engine", "docker"} {
		e := &engine{name: name, work: filepath.Join(b.work, name), cli: cli}
		b.engines = append(b.engines, e) // before anything is made: cleanup sees it
		e.sock = filepath.Join(e.work, "api.sock")
		e.execDir = filepath.Join(e.work, "exec")
		e.dataDir = filepath.Join(e.work, "data")
		e.nsFile = filepath.Join(e.work, "netns")
		e.cgroupParent = "/" + filepath.Base(b.work) + "-" + name
		if err := os.MkdirAll(e.work, 0o755); err != nil {
			return err
		}
		conf := filepath.Join(e.work, "daemon.json")
		if err := os.WriteFile(conf, []byte("{}\n"), 0o644); err != nil {
			return err
		}
		if err := e.makeNetns(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		common := []string{"--data-root", e.dataDir, "--exec-root", e.execDir, "-H", "unix://" + e.sock,
			"--pidfile", filepath.Join(e.work, "pid"), "--config-file", conf, "--cgroup-parent", e.cgroupParent}
		e.args = []string{"nsenter", "--net=" + e.nsFile, "--"}
		if name == "docker" {
			// The default bridge docker0, iptables on, the userland
			// proxy on (dockerd's defaults: that is the comparison).
			e.args = append(append(e.args, "dockerd"), common...)
		} else {
			e.args = append(append(e.args, b.o.engine, "daemon"), common...)
			e.args = append(e.args, "--bridge=balena0", "--iptables=true", "--ip-forward=true")
		}
		if err := e.start(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if _, err := e.docker("load", "-i", b.archive); err != nil {
			return err
		}
		b.res[name] = &results{xfers: map[string]*xfer{}}
	}

	if err := b.latency(); err != nil {
		return err
	}
	for _, e := range b.engines {
		if err := b.perContainer(e); err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
	}
	for _, e := range b.engines {
		if err := b.perPort(e); err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
	}
	return b.throughput()
}

// makeNetns makes the namespace the daemon runs in and brings its
// loopback up.
func (e *engine) makeNetns() error {
	if err := os.WriteFile(e.nsFile, nil, 0o644); err != nil {
		return err
	}
	if out, err := exec.Command("unshare", "--net="+e.nsFile, "true").CombinedOutput(); err != nil {
		return fmt.Errorf("unshare --net=%s: %v: %s", e.nsFile, err, out)
	}
	if out, err := exec.Command("nsenter", "--net="+e.nsFile, "--", "busybox", "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fmt.Errorf("lo up: %v: %s", err, out)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(e.nsFile, &st); err != nil {
		return err
	}
	e.nsLink = fmt.Sprintf("net:[%d]", st.Ino)
	return nil
}

func (e *engine) start() error {
	os.Remove(e.sock)
	logf, err := os.OpenFile(filepath.Join(e.work, "daemon.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	e.cmd = exec.Command(e.args[0], e.args[1:]...) // nsenter execs the daemon: the same PID
	e.cmd.Stdout, e.cmd.Stderr = logf, logf
	if err := e.cmd.Start(); err != nil {
		e.cmd = nil
		return err
	}
	exited := make(chan struct{})
	go func(cmd *exec.Cmd) { cmd.Wait(); close(exited) }(e.cmd)
	e.exited = exited
	c, err := client.New("unix://" + e.sock)
	if err != nil {
		return err
	}
	defer c.Close()
	t0 := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Ping(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("the daemon exited; see %s", filepath.Join(e.work, "daemon.log"))
		default:
		}
		if time.Since(t0) > 60*time.Second {
			return fmt.Errorf("no answer: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *engine) stop() {
	if e.cmd == nil || e.cmd.Process == nil {
		return
	}
	e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
	case <-time.After(30 * time.Second):
		e.cmd.Process.Kill()
		<-e.exited
	}
	e.cmd = nil
}

// docker runs the docker CLI against this engine and returns its stdout.
func (e *engine) docker(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.cli, args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+e.sock, "DOCKER_CONFIG="+e.work)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s: docker %s: %v: %s%s", e.name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

func (e *engine) inspect(ref, format string) (string, error) {
	out, err := e.docker("inspect", "-f", format, ref)
	return strings.TrimSpace(out), err
}

// memory sums RSS and PSS over the processes in the engine's network
// namespace: the daemon and everything it started that did not get a
// namespace of its own (containers do).
func (e *engine) memory() mem {
	m := mem{procs: map[string]int{}}
	for _, pid := range e.nsPIDs() {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		rss, pss, ok := smapsRollup(pid)
		if !ok {
			continue
		}
		c := strings.TrimSpace(string(comm))
		m.procs[c]++
		m.rss += rss
		m.pss += pss
		if c == "docker-proxy" {
			m.proxies++
			m.proxyRSS += rss
			m.proxyPSS += pss
		}
	}
	return m
}

// nsPIDs lists the processes in the engine's namespace (not this one,
// should one of its threads be there for a moment).
func (e *engine) nsPIDs() []int {
	if e.nsLink == "" {
		return nil
	}
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil && l == e.nsLink {
			pids = append(pids, pid)
		}
	}
	return pids
}

func smapsRollup(pid int) (rss, pss int64, ok bool) {
	r, err := procmem.Read(pid)
	return r.RSS, r.PSS, err == nil
}

// settledMemory samples the engine's memory once it has finished what a
// change started (goroutines, proxy processes): 2 s after it, then 5
// samples 400 ms apart, the median of each figure (a Go heap grows and is
// given back to the kernel in steps).
func (e *engine) settledMemory() mem {
	time.Sleep(2 * time.Second)
	var ms []mem
	for i := 0; i < 5; i++ {
		if i > 0 {
			time.Sleep(400 * time.Millisecond)
		}
		ms = append(ms, e.memory())
	}
	mid := func(f func(mem) int64) int64 {
		var vs []int64
		for _, m := range ms {
			vs = append(vs, f(m))
		}
		sort.Slice(vs, func(i, j int) bool { return vs[i] < vs[j] })
		return vs[len(vs)/2]
	}
	m := ms[len(ms)-1]
	m.rss = mid(func(m mem) int64 { return m.rss })
	m.pss = mid(func(m mem) int64 { return m.pss })
	m.proxyRSS = mid(func(m mem) int64 { return m.proxyRSS })
	m.proxyPSS = mid(func(m mem) int64 { return m.proxyPSS })
	return m
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration{}, ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// latency times "docker run --rm busybox true" on the default bridge, the
// engines taking turns (the first of each pair alternating) so that
// whatever else the machine does falls on both.
func (b *bench) latency() error {
	for i := 0; i < b.o.warm+b.o.runs; i++ {
		order := []*engine{b.engines[0], b.engines[1]}
		if i%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, e := range order {
			t0 := time.Now()
			if _, err := e.docker("run", "--rm", "busybox", "true"); err != nil {
				return err
			}
			if d := time.Since(t0); i >= b.o.warm {
				b.res[e.name].runRm = append(b.res[e.name].runRm, d)
			}
		}
	}
	for _, e := range b.engines {
		fmt.Printf("%s: run --rm busybox true (default bridge): median %v of %d\n", e.name, median(b.res[e.name].runRm), b.o.runs)
	}
	return nil
}

// perContainer: the engine's memory with N sleeping containers on the
// default bridge against none.
func (b *bench) perContainer(e *engine) error {
	r := b.res[e.name]
	r.idle = e.settledMemory()
	r.ctrBase = r.idle
	for i := 0; i < b.o.ctrs; i++ {
		if _, err := e.docker("run", "-d", "--name", fmt.Sprintf("ctr%d", i), "busybox", "sleep", "100000"); err != nil {
			return err
		}
	}
	r.ctrN = e.settledMemory()
	fmt.Printf("%s: %d containers on the bridge: engine RSS %s -> %s, PSS %s -> %s\n", e.name, b.o.ctrs,
		mib(r.ctrBase.rss), mib(r.ctrN.rss), mib(r.ctrBase.pss), mib(r.ctrN.pss))
	return e.removeAll()
}

func (e *engine) removeAll() error {
	out, err := e.docker("ps", "-aq")
	if err != nil {
		return err
	}
	if ids := strings.Fields(out); len(ids) > 0 {
		_, err = e.docker(append([]string{"rm", "-f"}, ids...)...)
	}
	return err
}

// perPort: one container publishing N ports against one publishing none,
// each alone.
func (b *bench) perPort(e *engine) error {
	r := b.res[e.name]
	if _, err := e.docker("run", "-d", "--name", "noports", "busybox", "sleep", "100000"); err != nil {
		return err
	}
	r.portBase = e.settledMemory()
	if err := e.removeAll(); err != nil {
		return err
	}
	first, last := 20000, 20000+b.o.ports-1
	spec := fmt.Sprintf("%d-%d:%d-%d", first, last, first, last)
	if _, err := e.docker("run", "-d", "--name", "ports", "-p", spec, "busybox", "sleep", "100000"); err != nil {
		return err
	}
	r.portN = e.settledMemory()
	fmt.Printf("%s: %d published ports: engine RSS %s -> %s, PSS %s -> %s, %d docker-proxy processes\n", e.name, b.o.ports,
		mib(r.portBase.rss), mib(r.portN.rss), mib(r.portBase.pss), mib(r.portN.pss), r.portN.proxies)
	return e.removeAll()
}

// The throughput paths.
var paths = []struct{ key, label string }{
	{"ctr-go", "container to container on the bridge, Go sender and receiver"},
	{"ctr-nc", "container to container on the bridge, busybox nc to nc"},
	{"lo-go", "host to published port on 127.0.0.1, Go to Go"},
	{"lo-nc", "host to published port on 127.0.0.1, Go to busybox nc"},
	{"gw-go", "host to published port on the bridge gateway's address, Go to Go"},
	{"gw-nc", "host to published port on the bridge gateway's address, Go to busybox nc"},
}

type servers struct {
	goIP, ncIP, gw string
	goPID, ncPID   int
}

// throughput starts a Go receiver and a busybox nc receiver in each
// engine, publishing their ports, then sends the same amount along each
// path, the engines taking turns.
func (b *bench) throughput() error {
	srv := map[string]*servers{}
	for _, e := range b.engines {
		s, err := b.startServers(e)
		if err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
		srv[e.name] = s
	}
	n := int64(b.o.mib) << 20
	for i := 0; i < b.o.xruns; i++ {
		order := []*engine{b.engines[0], b.engines[1]}
		if i%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, p := range paths {
			for _, e := range order {
				s := srv[e.name]
				d, err := b.transfer(e, s, p.key, n)
				if err != nil {
					return fmt.Errorf("%s: %s: %w", e.name, p.label, err)
				}
				x := b.res[e.name].xfers[p.key]
				if x == nil {
					x = &xfer{label: p.label}
					b.res[e.name].xfers[p.key] = x
				}
				x.durs = append(x.durs, d)
				fmt.Printf("%s: %s: %.0f MB/s\n", e.name, p.label, mbps(n, d))
			}
		}
	}
	return nil
}

func (b *bench) startServers(e *engine) (*servers, error) {
	vol := b.helper + ":/nb:ro"
	if _, err := e.docker("run", "-d", "--name", "srv-go", "-p", fmt.Sprintf("%d:%d", goPort, goPort), "-v", vol,
		"busybox", "/nb", "helper", "serve", strconv.Itoa(goPort)); err != nil {
		return nil, err
	}
	// nc's stdin is a FIFO opened for reading and writing: it never
	// ends, so nc never half-closes (a closed stdin would make it shut
	// its side, and the sender would stop at the EOF it reads). nc -l
	// serves one connection and exits when the sender closes: the loop
	// listens again.
	loop := fmt.Sprintf("mkfifo /f; while :; do nc -l -p %d 0<>/f >/dev/null; done", ncPort)
	if _, err := e.docker("run", "-d", "--name", "srv-nc", "-p", fmt.Sprintf("%d:%d", ncPort, ncPort), "busybox", "sh", "-c", loop); err != nil {
		return nil, err
	}
	s := &servers{}
	var err error
	if s.goIP, err = e.inspect("srv-go", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"); err != nil {
		return nil, err
	}
	if s.ncIP, err = e.inspect("srv-nc", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"); err != nil {
		return nil, err
	}
	if s.gw, err = e.inspect("srv-go", "{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}"); err != nil {
		return nil, err
	}
	if net.ParseIP(s.goIP) == nil || net.ParseIP(s.ncIP) == nil || net.ParseIP(s.gw) == nil {
		return nil, fmt.Errorf("the receivers' addresses %q and %q, gateway %q", s.goIP, s.ncIP, s.gw)
	}
	for _, c := range []struct {
		name string
		pid  *int
		port int
	}{{"srv-go", &s.goPID, goPort}, {"srv-nc", &s.ncPID, ncPort}} {
		out, err := e.inspect(c.name, "{{.State.Pid}}")
		if err != nil {
			return nil, err
		}
		if *c.pid, err = strconv.Atoi(out); err != nil || *c.pid <= 0 {
			return nil, fmt.Errorf("%s's PID: %q", c.name, out)
		}
		if err := waitListen(*c.pid, c.port); err != nil {
			return nil, fmt.Errorf("%s: %w", c.name, err)
		}
	}
	return s, nil
}

// transfer sends n bytes along one path and returns the time from the
// connection being made (for nc clients: from the client's start) to the
// receiver having read the last byte and closed.
func (b *bench) transfer(e *engine, s *servers, path string, n int64) (time.Duration, error) {
	if strings.HasSuffix(path, "-nc") {
		// The previous connection's nc has exited; its successor must
		// listen before a sender that cannot retry connects.
		if err := waitListen(s.ncPID, ncPort); err != nil {
			return 0, err
		}
	}
	switch path {
	case "ctr-go":
		out, err := e.docker("run", "--rm", "-v", b.helper+":/nb:ro", "busybox", "/nb", "helper", "send",
			net.JoinHostPort(s.goIP, strconv.Itoa(goPort)), strconv.FormatInt(n, 10))
		if err != nil {
			return 0, err
		}
		return parseNanos(out)
	case "ctr-nc":
		send := fmt.Sprintf("dd if=/dev/zero bs=65536 count=%d 2>/dev/null | nc %s %d", n/65536, s.ncIP, ncPort)
		out, err := e.docker("run", "--rm", "-v", b.helper+":/nb:ro", "busybox", "/nb", "helper", "time", "sh", "-c", send)
		if err != nil {
			return 0, err
		}
		return parseNanos(out)
	}
	host := "127.0.0.1"
	if strings.HasPrefix(path, "gw-") {
		host = s.gw
	}
	port, pid, check := goPort, s.goPID, true
	if strings.HasSuffix(path, "-nc") {
		port, pid, check = ncPort, s.ncPID, false
	}
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		conn, err := dialIn(e.nsFile, net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return 0, err
		}
		d, reply, err := send(conn, n)
		if err == nil && check {
			if got, _ := strconv.ParseInt(strings.TrimSpace(reply), 10, 64); got != n {
				err = fmt.Errorf("the receiver got %q bytes, want %d", strings.TrimSpace(reply), n)
			}
		}
		if err == nil {
			return d, nil
		}
		last = err
		if err := waitListen(pid, port); err != nil {
			return 0, err
		}
	}
	return 0, last
}

// parseNanos reads the helper's last output line, nanoseconds first.
func parseNanos(out string) (time.Duration, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	f := strings.Fields(lines[len(lines)-1])
	if len(f) == 0 {
		return 0, fmt.Errorf("no time in %q", out)
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || ns <= 0 {
		return 0, fmt.Errorf("no time in %q", out)
	}
	return time.Duration(ns), nil
}

// waitListen waits for a TCP socket listening on port in pid's network
// namespace.
func waitListen(pid, port int) error {
	want := fmt.Sprintf(":%04X", port)
	for t0 := time.Now(); time.Since(t0) < 20*time.Second; time.Sleep(5 * time.Millisecond) {
		for _, f := range []string{"tcp", "tcp6"} {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
			if err != nil {
				return fmt.Errorf("process %d: %v", pid, err)
			}
			for _, line := range strings.Split(string(b), "\n")[1:] {
				fs := strings.Fields(line)
				if len(fs) > 3 && strings.HasSuffix(fs[1], want) && fs[3] == "0A" {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("nothing listens on port %d in process %d's namespace", port, pid)
}

// dialIn connects to addr from the network namespace bound on nsFile: the
// socket is made by a thread that enters the namespace and leaves it
// again (if it cannot, the thread ends with its goroutine).
func dialIn(nsFile, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, err}
			return
		}
		defer orig.Close()
		target, err := os.Open(nsFile)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, fmt.Errorf("setns: %w", err)}
			return
		}
		var c net.Conn
		for t0 := time.Now(); ; time.Sleep(20 * time.Millisecond) {
			c, err = net.DialTimeout("tcp", addr, 5*time.Second)
			if err == nil || time.Since(t0) > 10*time.Second {
				break
			}
		}
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// send writes n zero bytes, closes its side, and reads the receiver's
// reply to its end; it returns the time from its first write to that end.
func send(conn net.Conn, n int64) (time.Duration, string, error) {
	defer conn.Close()
	buf := make([]byte, 256<<10)
	t0 := time.Now()
	for left := n; left > 0; {
		k := int64(len(buf))
		if left < k {
			k = left
		}
		w, err := conn.Write(buf[:k])
		if err != nil {
			return 0, "", err
		}
		left -= int64(w)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		return 0, "", err
	}
	reply, err := io.ReadAll(conn)
	d := time.Since(t0)
	if err != nil {
		return 0, "", err
	}
	return d, string(reply), nil
}

// helper is what runs inside the containers:
//
//	helper serve PORT        receive connections one at a time, each to its end; reply with its byte count
//	helper send ADDR BYTES   send BYTES to ADDR; print nanoseconds and the receiver's count
//	helper time CMD...       run CMD (its output to stderr); print the nanoseconds it took
func helper(args []string) int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "netbench helper:", err); return 1 }
	if len(args) < 2 {
		return fail(errors.New("usage: helper serve PORT | send ADDR BYTES | time CMD [ARG...]"))
	}
	switch args[0] {
	case "serve":
		ln, err := net.Listen("tcp", ":"+args[1])
		if err != nil {
			return fail(err)
		}
		buf := make([]byte, 256<<10)
		for {
			c, err := ln.Accept()
			if err != nil {
				return fail(err)
			}
			var total int64
			for {
				k, err := c.Read(buf)
				total += int64(k)
				if err != nil {
					break
				}
			}
			fmt.Fprintf(c, "%d\n", total)
			c.Close()
		}
	case "send":
		if len(args) != 3 {
			return fail(errors.New("usage: helper send ADDR BYTES"))
		}
		n, err := strconv.ParseInt(args[2], 10, 64)
		if err != nil {
			return fail(err)
		}
		var c net.Conn
		for t0 := time.Now(); ; time.Sleep(20 * time.Millisecond) {
			if c, err = net.DialTimeout("tcp", args[1], 5*time.Second); err == nil {
				break
			} else if time.Since(t0) > 10*time.Second {
				return fail(err)
			}
		}
		d, reply, err := send(c, n)
		if err != nil {
			return fail(err)
		}
		if got, _ := strconv.ParseInt(strings.TrimSpace(reply), 10, 64); got != n {
			return fail(fmt.Errorf("the receiver got %q bytes, want %d", strings.TrimSpace(reply), n))
		}
		fmt.Println(d.Nanoseconds(), n)
		return 0
	case "time":
		cmd := exec.Command(args[1], args[2:]...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stderr, os.Stderr
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			return fail(err)
		}
		fmt.Println(time.Since(t0).Nanoseconds())
		return 0
	}
	return fail(fmt.Errorf("unknown helper command %q", args[0]))
}

// cleanup stops both daemons and their containers, kills by PID whatever
// is left in the engines' namespaces and cgroups, and removes the
// cgroups, mounts and work directory. It runs once.
func (b *bench) cleanup() {
	b.cleaned.Do(func() {
		for _, e := range b.engines {
			if e.cmd != nil {
				e.removeAll()
			}
			e.stop()
			if e.name == "balena-engine" {
				// The monitor outlives the daemon by design.
				if raw, err := os.ReadFile(filepath.Join(e.execDir, "monitor", "monitor.pid")); err == nil {
					if pid, err := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil && pid > 1 {
						syscall.Kill(pid, syscall.SIGKILL)
						waitGone(pid)
					}
				}
			}
		}
		// Anything else the engines started: in their namespaces (Docker's
		// containerd, shims, proxies) or their containers' cgroups.
		for pass := 0; pass < 3; pass++ {
			left := b.leftPIDs()
			if len(left) == 0 {
				break
			}
			for _, pid := range left {
				comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
				if pass == 0 {
					b.leftover = append(b.leftover, fmt.Sprintf("%d (%s)", pid, strings.TrimSpace(string(comm))))
				}
				syscall.Kill(pid, syscall.SIGKILL)
			}
			for _, pid := range left {
				waitGone(pid)
			}
		}
		if left := b.leftPIDs(); len(left) > 0 {
			b.leftover = append(b.leftover, fmt.Sprintf("still running after SIGKILL: %v", left))
		}
		for _, e := range b.engines {
			for _, dir := range cgroupDirs(e.cgroupParent) {
				removeCgroup(dir)
				if _, err := os.Stat(dir); err == nil {
					b.leftover = append(b.leftover, "cgroup not removed: "+dir)
				}
			}
		}
		mounts.DetachUnder(b.work)
		if ms := mounts.Under(b.work); len(ms) > 0 {
			b.leftover = append(b.leftover, fmt.Sprintf("mounts left: %v", ms))
		}
		if err := os.RemoveAll(b.work); err != nil {
			b.leftover = append(b.leftover, "work directory: "+err.Error())
		}
		if len(b.leftover) > 0 {
			fmt.Fprintln(os.Stderr, "netbench: cleanup:", strings.Join(b.leftover, "; "))
		}
	})
}

// leftPIDs lists the processes in the engines' namespaces and cgroups, and
// the daemons if they still run.
func (b *bench) leftPIDs() []int {
	seen := map[int]bool{}
	for _, e := range b.engines {
		for _, pid := range e.nsPIDs() {
			seen[pid] = true
		}
		for _, dir := range cgroupDirs(e.cgroupParent) {
			filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
				if err == nil && info.Name() == "cgroup.procs" {
					raw, _ := os.ReadFile(path)
					for _, f := range strings.Fields(string(raw)) {
						if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
							seen[pid] = true
						}
					}
				}
				return nil
			})
		}
	}
	delete(seen, os.Getpid())
	var pids []int
	for pid := range seen {
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	return pids
}

func waitGone(pid int) {
	for i := 0; i < 200 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(10 * time.Millisecond)
	}
}

// cgroupDirs is the parent's directory in each hierarchy (cgroup v1) or
// the unified one (v2).
func cgroupDirs(parent string) []string {
	out := []string{filepath.Join("/sys/fs/cgroup", parent)}
	hs, _ := os.ReadDir("/sys/fs/cgroup")
	for _, h := range hs {
		if h.IsDir() {
			out = append(out, filepath.Join("/sys/fs/cgroup", h.Name(), parent))
		}
	}
	var dirs []string
	for _, d := range out {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// removeCgroup removes dir and the cgroups below it, deepest first.
func removeCgroup(dir string) {
	var dirs []string
	filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err == nil && info.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	for _, d := range dirs {
		for i := 0; i < 100; i++ {
			if err := syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func loadavg() string {
	raw, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func mib(v int64) string { return fmt.Sprintf("%.2f MiB", float64(v)/(1<<20)) }

func kib(v float64) string { return fmt.Sprintf("%.0f KiB", v/1024) }

func mbps(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() / 1e6 }

func sh(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

func cpuModel() string {
	raw, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "?"
}

func (b *bench) report() string {
	var w strings.Builder
	o, d := b.res["balena-engine"], b.res["docker"]
	commit := sh("git", "rev-parse", "HEAD")
	if exec.Command("git", "diff", "--quiet", "HEAD").Run() != nil {
		commit += " with uncommitted changes"
	}
	fmt.Fprintf(&w, "# Network benchmark\n\nMade by `make bench` (`go run ./src/internal/cmd/netbench %s`) on %s.\n\n",
		strings.Join(os.Args[1:], " "), time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&w, "- machine: %s, %s, %d cores, kernel %s; load average %s at the start, %s at the end\n",
		sh("uname", "-m"), cpuModel(), runtime.NumCPU(), sh("uname", "-r"), b.loadAvg[0], b.loadAvg[1])
	fmt.Fprintf(&w, "- commit: %s\n", commit)
	fmt.Fprintf(&w, "- engines: %s (`--bridge=balena0 --iptables=true --ip-forward=true`); %s with %s (Debian's docker.io: default bridge docker0, iptables on, userland proxy on, its defaults)\n",
		sh(b.o.engine, "--version"), sh("dockerd", "--version"), sh("containerd", "--version"))
	fmt.Fprintf(&w, "- client: the docker CLI (%s) for both; the project's busybox image (Debian's busybox-static)\n", sh(b.engines[0].cli, "--version"))
	b.method(&w)

	w.WriteString("\n## Latency and memory\n\n| figure | balena-engine | Docker 20.10 | Docker / balena-engine |\n|---|---:|---:|---:|\n")
	row := func(name, a, c string, ratio float64) {
		r := "-"
		if ratio > 0 {
			r = fmt.Sprintf("%.2fx", ratio)
		}
		fmt.Fprintf(&w, "| %s | %s | %s | %s |\n", name, a, c, r)
	}
	ratio := func(theirs, ours float64) float64 {
		if ours <= 0 || theirs <= 0 {
			return 0
		}
		return theirs / ours
	}
	ms := func(t time.Duration) string { return fmt.Sprintf("%.1f ms", float64(t.Microseconds())/1000) }
	lo, ld := median(o.runRm), median(d.runRm)
	row(fmt.Sprintf("`run --rm busybox true`, default bridge (median of %d)", b.o.runs), ms(lo), ms(ld), ratio(float64(ld), float64(lo)))
	row("idle engine RSS (networking on, after the run --rm runs)", mib(o.idle.rss), mib(d.idle.rss), ratio(float64(d.idle.rss), float64(o.idle.rss)))
	row("idle engine PSS", mib(o.idle.pss), mib(d.idle.pss), ratio(float64(d.idle.pss), float64(o.idle.pss)))
	per := func(a, z mem, n int, f func(mem) int64) float64 { return float64(f(z)-f(a)) / float64(n) }
	rss := func(m mem) int64 { return m.rss }
	pss := func(m mem) int64 { return m.pss }
	pr, dr := per(o.portBase, o.portN, b.o.ports, rss), per(d.portBase, d.portN, b.o.ports, rss)
	row(fmt.Sprintf("RSS per published port (%d ports)", b.o.ports), kib(pr), kib(dr), ratio(dr, pr))
	pp, dp := per(o.portBase, o.portN, b.o.ports, pss), per(d.portBase, d.portN, b.o.ports, pss)
	row(fmt.Sprintf("PSS per published port (%d ports)", b.o.ports), kib(pp), kib(dp), ratio(dp, pp))
	row(fmt.Sprintf("engine RSS, one container publishing %d ports", b.o.ports), mib(o.portN.rss), mib(d.portN.rss), ratio(float64(d.portN.rss), float64(o.portN.rss)))
	row(fmt.Sprintf("engine PSS, one container publishing %d ports", b.o.ports), mib(o.portN.pss), mib(d.portN.pss), ratio(float64(d.portN.pss), float64(o.portN.pss)))
	fmt.Fprintf(&w, "| docker-proxy processes for %d ports (their RSS, PSS) | %d | %d (%s, %s) | - |\n", b.o.ports, o.portN.proxies, d.portN.proxies, mib(d.portN.proxyRSS), mib(d.portN.proxyPSS))
	cr, dcr := per(o.ctrBase, o.ctrN, b.o.ctrs, rss), per(d.ctrBase, d.ctrN, b.o.ctrs, rss)
	row(fmt.Sprintf("RSS per running container on the bridge (%d running)", b.o.ctrs), mib(int64(cr)), mib(int64(dcr)), ratio(dcr, cr))
	cp, dcp := per(o.ctrBase, o.ctrN, b.o.ctrs, pss), per(d.ctrBase, d.ctrN, b.o.ctrs, pss)
	row(fmt.Sprintf("PSS per running container on the bridge (%d running)", b.o.ctrs), mib(int64(cp)), mib(int64(dcp)), ratio(dcp, cp))

	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "not met"
	}
	fmt.Fprintf(&w, "\nGoal: run --rm at least 3x faster than Docker's: %.2fx, %s.\n", ratio(float64(ld), float64(lo)), met(lo > 0 && ld >= 3*lo))
	fmt.Fprintf(&w, "\n## Throughput\n\n%d MiB per run, median of %d runs; MB/s is 10^6 bytes per second.\n\n", b.o.mib, b.o.xruns)
	w.WriteString("| path | balena-engine | Docker 20.10 | balena-engine / Docker |\n|---|---:|---:|---:|\n")
	n := int64(b.o.mib) << 20
	for _, p := range paths {
		ox, dx := o.xfers[p.key], d.xfers[p.key]
		if ox == nil || dx == nil {
			continue
		}
		om, dm := mbps(n, median(ox.durs)), mbps(n, median(dx.durs))
		fmt.Fprintf(&w, "| %s | %.0f MB/s | %.0f MB/s | %.2f |\n", p.label, om, dm, om/dm)
	}
	var worst []string
	for _, p := range paths {
		if ox, dx := o.xfers[p.key], d.xfers[p.key]; ox != nil && dx != nil {
			if r := mbps(n, median(ox.durs)) / mbps(n, median(dx.durs)); r < 0.95 {
				worst = append(worst, fmt.Sprintf("%s (%.2f)", p.label, r))
			}
		}
	}
	if len(worst) == 0 {
		w.WriteString("\nGoal: throughput within 5% of Docker's or better on every path: met.\n")
	} else {
		fmt.Fprintf(&w, "\nGoal: throughput within 5%% of Docker's or better on every path: not met on %s.\n", strings.Join(worst, "; "))
	}
	w.WriteString("\nEvery run, MB/s:\n\n")
	for _, p := range paths {
		for _, e := range b.engines {
			if x := b.res[e.name].xfers[p.key]; x != nil {
				var vs []string
				for _, dur := range x.durs {
					vs = append(vs, fmt.Sprintf("%.0f", mbps(n, dur)))
				}
				fmt.Fprintf(&w, "- %s, %s: %s\n", p.label, e.name, strings.Join(vs, ", "))
			}
		}
	}
	w.WriteString("\n## Processes counted\n\n")
	for _, e := range b.engines {
		r := b.res[e.name]
		fmt.Fprintf(&w, "- %s: idle %s; with %d ports published %s; with %d containers %s\n", e.name,
			procList(r.idle), b.o.ports, procList(r.portN), b.o.ctrs, procList(r.ctrN))
	}
	w.WriteString("\n## Cleanup\n\n")
	if len(b.leftover) == 0 {
		w.WriteString("Both daemons and their containers stopped; no process of theirs was left in their namespaces or cgroups; namespaces, cgroups, mounts and work directory removed.\n")
	} else {
		fmt.Fprintf(&w, "Left after the daemons stopped, then killed or reported: %s\n", strings.Join(b.leftover, "; "))
	}
	return w.String()
}

func (b *bench) method(w *strings.Builder) {
	fmt.Fprintf(w, `- isolation: each daemon runs in a network namespace of its own, made by this command (a file bound with `+"`unshare --net=FILE`"+`, its loopback up, the daemon started under `+"`nsenter --net=FILE`"+`), with its own data root, exec root and cgroup parent; its bridge, veths and iptables rules are made there, and the host's network is not changed. "The host" below is that namespace
- run --rm: `+"`docker run --rm busybox true`"+` with no --network flag (the default bridge: a veth, an address, /etc files each time), %d warm-ups then %d runs, the engines taking turns (which goes first alternating); wall time of the docker CLI
- memory: RSS and PSS (`+"`/proc/PID/smaps_rollup`"+`) summed over every process in the daemon's namespace, the median of 5 samples 400 ms apart taken from 2 s after each change: balena-engine's daemon and monitor; Docker's dockerd, containerd, containerd-shim-runc-v2 and docker-proxy. Containers' processes have namespaces of their own and are not counted
- per published port: (one container publishing %d ports with `+"`-p %d-%d:%d-%d`"+` - one container publishing none) / %d, each container alone. Docker starts a docker-proxy process per published port (and address family); balena-engine publishes with DNAT rules only (as dockerd's `+"`--userland-proxy=false`"+`)
- per container: (%d `+"`busybox sleep`"+` containers running on the default bridge - none) / %d
- throughput: receivers in containers on the default bridge, with their ports published: this command built static (CGO_ENABLED=0), bind-mounted in, reading 256 KiB at a time and answering with the byte count it got (checked); and busybox nc (`+"`nc -l -p %d`"+` to /dev/null, which reads and writes 1 KiB at a time). Container to container: a client container on the same bridge sends to the receiver's address (the Go sender, 256 KiB writes, timed from the connection made to the receiver's reply; or `+"`dd if=/dev/zero | nc`"+`, timed around the whole pipeline). Host to published port: this command sends from the engine's namespace (a socket made by a thread that joins it) to 127.0.0.1:PORT, which Docker serves with docker-proxy and balena-engine with DNAT (route_localnet), and to the bridge's gateway address, which both serve with DNAT; timed from the connection made to the receiver's close. Runs of the engines alternate
- noise: the figures come from one run on a shared machine; see the load average above and each throughput run below
`, b.o.warm, b.o.runs, b.o.ports, 20000, 20000+b.o.ports-1, 20000, 20000+b.o.ports-1, b.o.ports, b.o.ctrs, b.o.ctrs, ncPort)
}

func procList(m mem) string {
	var names []string
	for c := range m.procs {
		names = append(names, c)
	}
	sort.Strings(names)
	var parts []string
	for _, c := range names {
		parts = append(parts, fmt.Sprintf("%s x%d", c, m.procs[c]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
