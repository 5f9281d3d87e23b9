//go:build e2e

package e2e

// Container-create fields that used to be accepted and dropped (issue
// #13): each is honoured (checked in the kernel's files), refused with
// Docker's words, or discarded with Docker's warning, through the docker
// CLI.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/balena-os/balena-engine/src/internal/testimage"
	"github.com/balena-os/balena-engine/src/internal/testregistry"
	containertypes "github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// cgroupV2 says whether the host runs the unified hierarchy.
func cgroupV2() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

// cgroupFile reads a file of a container's cgroup: v2's, or v1's in the
// controller's hierarchy.
func cgroupFile(t *testing.T, p paths, id, controller, name string) string {
	t.Helper()
	dir := filepath.Join("/sys/fs/cgroup", p.cgroupParent, id)
	if !cgroupV2() {
		dir = filepath.Join("/sys/fs/cgroup", controller, p.cgroupParent, id)
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("container's cgroup: %v", err)
	}
	return string(b)
}

// testBlockDevice is a disk of this machine (a loop or RAM device if
// there is nothing else): the limits per device need a real one.
func testBlockDevice(t *testing.T) (path string, majmin string) {
	t.Helper()
	devs, _ := os.ReadDir("/sys/block")
	var fallback, fallbackNum string
	for _, d := range devs {
		var st unix.Stat_t
		p := "/dev/" + d.Name()
		if unix.Stat(p, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK {
			continue
		}
		num := fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		if strings.HasPrefix(d.Name(), "loop") || strings.HasPrefix(d.Name(), "ram") || strings.HasPrefix(d.Name(), "zram") {
			if fallback == "" {
				fallback, fallbackNum = p, num
			}
			continue
		}
		return p, num
	}
	if fallback == "" {
		t.Skip("no block device")
	}
	return fallback, fallbackNum
}

// Block I/O limits per device, memory swappiness and the OOM killer
// switch reach the container's cgroup where the hierarchy has them (v1's
// blkio and memory files, v2's io.max); where it has not, the docker CLI
// prints Docker's warning and the container runs without them.
func TestE2EResourceLimitsPerDevice(t *testing.T) {
	p, _, env := withBusybox(t)
	dev, num := testBlockDevice(t)
	r := run(t, env, "docker", "run", "-d", "--network", "none", "--name", "limited", "-m", "64m",
		"--device-read-bps", dev+":1mb", "--device-write-bps", dev+":2mb",
		"--device-read-iops", dev+":100", "--device-write-iops", dev+":200",
		"--memory-swappiness", "10", "--oom-kill-disable", "busybox", "sleep", "100")
	if r.code != 0 {
		t.Fatalf("docker run: %d %s", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	t.Cleanup(func() { run(t, env, "docker", "rm", "-f", "limited") })
	if cgroupV2() {
		if got, want := cgroupFile(t, p, id, "", "io.max"), num+" rbps=1048576 wbps=2097152 riops=100 wiops=200"; !strings.Contains(got, want) {
			t.Errorf("io.max: %q, want %q", got, want)
		}
		for _, w := range []string{"WARNING: Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.",
			"WARNING: Your kernel does not support OomKillDisable. OomKillDisable discarded."} {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("docker run's output %q lacks %q", r.stderr, w)
			}
		}
	} else {
		for file, want := range map[string]string{
			"blkio.throttle.read_bps_device":   num + " 1048576",
			"blkio.throttle.write_bps_device":  num + " 2097152",
			"blkio.throttle.read_iops_device":  num + " 100",
			"blkio.throttle.write_iops_device": num + " 200",
		} {
			if got := cgroupFile(t, p, id, "blkio", file); strings.TrimSpace(got) != want {
				t.Errorf("%s: %q, want %q", file, got, want)
			}
		}
		if got := cgroupFile(t, p, id, "memory", "memory.swappiness"); strings.TrimSpace(got) != "10" {
			t.Errorf("memory.swappiness: %q", got)
		}
		if got := cgroupFile(t, p, id, "memory", "memory.oom_control"); !strings.Contains(got, "oom_kill_disable 1") {
			t.Errorf("memory.oom_control: %q", got)
		}
		if r.stderr != "" {
			t.Errorf("docker run warned: %q", r.stderr)
		}
	}
	if got := strings.TrimSpace(run(t, env, "docker", "inspect", "--format",
		"{{(index .HostConfig.BlkioDeviceReadBps 0).Rate}} {{(index .HostConfig.BlkioDeviceWriteIOps 0).Rate}}", "limited").stdout); got != "1048576 200" {
		t.Errorf("inspect: %q", got)
	}

	// A weight per device is BFQ's (v1's blkio.bfq.weight_device, v2's
	// io.bfq.weight): for a device scheduled by BFQ (a loop device of the
	// test's, set to it) it is written; for one of another scheduler the
	// kernel would refuse it, and Docker's warning says it is discarded.
	if bfqDev, bfqNum, ok := bfqLoopDevice(t); ok {
		r = run(t, env, "docker", "run", "-d", "--network", "none", "--name", "weighted", "--blkio-weight-device", bfqDev+":200", "busybox", "sleep", "100")
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("docker run --blkio-weight-device: %d %s", r.code, r.stderr)
		}
		id = strings.TrimSpace(r.stdout)
		t.Cleanup(func() { run(t, env, "docker", "rm", "-f", "weighted") })
		ctl, file := "blkio", "blkio.bfq.weight_device"
		if cgroupV2() {
			ctl, file = "", "io.bfq.weight"
		}
		if got := cgroupFile(t, p, id, ctl, file); !strings.Contains(got, bfqNum+" 200") {
			t.Errorf("%s: %q, want %s 200", file, got, bfqNum)
		}
	}
	if sched, _ := os.ReadFile("/sys/dev/block/" + num + "/queue/scheduler"); !strings.Contains(string(sched), "[bfq]") && !cgroupFileExists("blkio/blkio.weight_device") {
		r = run(t, env, "docker", "run", "--rm", "--network", "none", "--blkio-weight-device", dev+":200", "busybox", "true")
		if w := "WARNING: Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded."; r.code != 0 || !strings.Contains(r.stderr, w) {
			t.Errorf("--blkio-weight-device of a device without BFQ (%s): %d %q, want %q", sched, r.code, r.stderr, w)
		}
	}

	// A plain run warns of nothing.
	if r := run(t, env, "docker", "run", "--rm", "--network", "none", "busybox", "true"); r.code != 0 || r.stderr != "" {
		t.Errorf("plain docker run: %d %q", r.code, r.stderr)
	}
}

func cgroupFileExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/fs/cgroup", name))
	return err == nil
}

// bfqLoopDevice attaches a loop device of the test's own and gives it the
// BFQ scheduler; false where there is no losetup or no BFQ.
func bfqLoopDevice(t *testing.T) (dev, num string, ok bool) {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, nil, "losetup", "--find", "--show", img)
	if r.code != 0 {
		t.Logf("no loop device: %s", r.stderr)
		return "", "", false
	}
	dev = strings.TrimSpace(r.stdout)
	t.Cleanup(func() { run(t, nil, "losetup", "-d", dev) })
	if err := os.WriteFile("/sys/block/"+filepath.Base(dev)+"/queue/scheduler", []byte("bfq"), 0o644); err != nil {
		t.Logf("no BFQ for %s: %v", dev, err)
		return "", "", false
	}
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		t.Fatal(err)
	}
	return dev, fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev)), true
}

// Real-time CPU limits are cgroup v1's: the daemon's --cpu-rt-runtime
// gives the containers' parent cgroup its budget, as dockerd's does; the
// container's cpu.rt_* files then get its limits, at create and by docker
// update. On v2 the create is refused, as Docker refuses it.
func TestE2ECPURealtime(t *testing.T) {
	p, _, env := withBusybox(t, "--cpu-rt-runtime", "100000")
	if _, err := os.Stat("/sys/fs/cgroup/cpu/cpu.rt_runtime_us"); err != nil {
		r := run(t, env, "docker", "create", "--network", "none", "--cpu-rt-runtime", "50000", "busybox", "true")
		if r.code == 0 || !strings.Contains(r.stderr, "kernel does not support CPU real-time scheduler") {
			t.Errorf("--cpu-rt-runtime without the scheduler: %d %q", r.code, r.stderr)
		}
		return
	}
	r := run(t, env, "docker", "run", "-d", "--network", "none", "--name", "rt", "--cpu-rt-period", "1000000", "--cpu-rt-runtime", "50000", "busybox", "sleep", "100")
	if r.code != 0 && strings.Contains(r.stderr, "real-time budget") {
		t.Skipf("this host gives the test's parent cgroup no real-time budget: %s", r.stderr)
	}
	if r.code != 0 {
		t.Fatalf("docker run --cpu-rt-runtime: %d %s", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	t.Cleanup(func() { run(t, env, "docker", "rm", "-f", "rt") })
	parent, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpu", p.cgroupParent, "cpu.rt_runtime_us"))
	if got := strings.TrimSpace(string(parent)); got != "100000" {
		t.Errorf("the parent's cpu.rt_runtime_us: %q, want the daemon's 100000", got)
	}
	if got := strings.TrimSpace(cgroupFile(t, p, id, "cpu", "cpu.rt_runtime_us")); got != "50000" {
		t.Errorf("cpu.rt_runtime_us: %q", got)
	}
	if r := run(t, env, "docker", "update", "--cpu-rt-runtime", "40000", "rt"); r.code != 0 {
		t.Errorf("docker update --cpu-rt-runtime: %d %q", r.code, r.stderr)
	}
	if got := strings.TrimSpace(cgroupFile(t, p, id, "cpu", "cpu.rt_runtime_us")); got != "40000" {
		t.Errorf("cpu.rt_runtime_us after docker update: %q", got)
	}
	if r := run(t, env, "docker", "create", "--network", "none", "--cpu-rt-period", "1000", "--cpu-rt-runtime", "2000", "busybox", "true"); r.code == 0 ||
		!strings.Contains(r.stderr, "cpu real-time runtime cannot be higher than cpu real-time period") {
		t.Errorf("runtime above the period: %d %q", r.code, r.stderr)
	}
}

// What the engine cannot honour is refused at create with Docker's words
// (or a 501 naming it), through the docker CLI, which exits 125; what
// Docker discards with a warning is discarded so, and the CLI prints it.
func TestE2ECreateRefusalsAndWarnings(t *testing.T) {
	_, _, env := withBusybox(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--runtime", "kata"}, "unknown or invalid runtime name: kata"},
		{[]string{"--isolation", "hyperv"}, "invalid isolation (hyperv): linux only supports 'default'"},
		{[]string{"--gpus", "all"}, `could not select device driver "" with capabilities: [[gpu]]`},
		{[]string{"--device", "vendor.com/class=name"}, `could not select device driver "cdi" with capabilities: []`},
		{[]string{"--storage-opt", "size=1G"}, "--storage-opt"},
	} {
		args := append(append([]string{"run", "--rm", "--network", "none"}, c.args...), "busybox", "true")
		r := run(t, env, "docker", args...)
		if r.code != 125 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("docker %v: %d %q, want 125 with %q", args, r.code, r.stderr, c.want)
		}
	}
	if r := run(t, env, "docker", "ps", "-aq"); r.stdout != "" {
		t.Errorf("refused runs left containers: %q", r.stdout)
	}
	// Accepted as Docker accepts them.
	r := run(t, env, "docker", "run", "--rm", "--network", "none", "--runtime", "runc", "--isolation", "default", "busybox", "true")
	if r.code != 0 || r.stderr != "" {
		t.Errorf("--runtime runc --isolation default: %d %q", r.code, r.stderr)
	}
}

// A container's own --cgroup-parent puts its cgroup there (Docker's
// cgroupfs driver: PARENT/ID), and what reads the container through its
// cgroup (docker cp of a running container checks its init's) follows.
func TestE2ECgroupParent(t *testing.T) {
	p, _, env := withBusybox(t)
	parent := p.cgroupParent + "/custom"
	t.Cleanup(func() {
		run(t, env, "docker", "rm", "-f", "cg")
		for _, dir := range p.cgroupDirs("custom") {
			os.Remove(dir)
		}
	})
	r := run(t, env, "docker", "run", "-d", "--network", "none", "--name", "cg", "--cgroup-parent", parent, "-m", "32m", "busybox", "sleep", "100")
	if r.code != 0 {
		t.Fatalf("docker run --cgroup-parent: %d %s", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	pid := strings.TrimSpace(run(t, env, "docker", "inspect", "--format", "{{.State.Pid}} {{.HostConfig.CgroupParent}}", "cg").stdout)
	pid, gotParent, _ := strings.Cut(pid, " ")
	if gotParent != parent {
		t.Errorf("inspect's CgroupParent: %q", gotParent)
	}
	b, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), ":"+parent+"/"+id+"\n") {
		t.Errorf("the container's process is in\n%s\nnot in %s/%s", b, parent, id)
	}
	// The limit is on that cgroup.
	mem := filepath.Join("/sys/fs/cgroup", parent, id, "memory.max")
	if !cgroupV2() {
		mem = filepath.Join("/sys/fs/cgroup/memory", parent, id, "memory.limit_in_bytes")
	}
	if got, err := os.ReadFile(mem); err != nil || strings.TrimSpace(string(got)) != "33554432" {
		t.Errorf("%s: %q %v", mem, got, err)
	}
	if r := run(t, env, "docker", "cp", "cg:/etc/hostname", "-"); r.code != 0 {
		t.Errorf("docker cp from a container with its own cgroup parent: %d %s", r.code, r.stderr)
	}
	run(t, env, "docker", "rm", "-f", "cg")
	if _, err := os.Stat(filepath.Dir(mem)); !os.IsNotExist(err) {
		t.Errorf("the container's cgroup is left: %v", err)
	}
}

// --pid and --ipc container:NAME join the other container's namespaces
// (the same /proc/PID/ns links on the host), a shareable container's
// /dev/shm is shared with them; --ipc none has no /dev/shm, --ipc host the
// host's. Docker's refusals when the other container does not allow it.
func TestE2ESharedNamespaces(t *testing.T) {
	_, _, env := withBusybox(t)
	docker := dockerOK(t, env)
	t.Cleanup(func() { run(t, env, "docker", "rm", "-f", "joiner", "donor", "private") })
	docker("run", "-d", "--network", "none", "--name", "donor", "--ipc", "shareable", "busybox", "sleep", "100")
	docker("run", "-d", "--network", "none", "--name", "joiner", "--pid", "container:donor", "--ipc", "container:donor", "busybox", "sleep", "101")
	ns := func(name, kind string) string {
		t.Helper()
		pid := docker("inspect", "--format", "{{.State.Pid}}", name)
		l, err := os.Readlink("/proc/" + pid + "/ns/" + kind)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	for _, kind := range []string{"pid", "ipc"} {
		if a, b := ns("donor", kind), ns("joiner", kind); a != b {
			t.Errorf("%s namespaces: donor %s, joiner %s", kind, a, b)
		}
	}
	if a, b := ns("donor", "uts"), ns("joiner", "uts"); a == b {
		t.Errorf("the UTS namespace is shared too: %s", a)
	}
	// The joiner sees the donor's processes, the donor's init first.
	if got := docker("exec", "joiner", "cat", "/proc/1/cmdline"); got != "sleep\x00100\x00" && strings.TrimRight(got, "\x00") != "sleep\x00100" {
		t.Errorf("the joiner's PID 1: %q", got)
	}
	docker("exec", "donor", "sh", "-c", "echo shared > /dev/shm/x")
	if got := docker("exec", "joiner", "cat", "/dev/shm/x"); got != "shared" {
		t.Errorf("/dev/shm written by the donor, read by the joiner: %q", got)
	}
	// docker cp of the joiner, whose init is not its namespace's first.
	if r := run(t, env, "docker", "cp", "joiner:/etc/hostname", "-"); r.code != 0 {
		t.Errorf("docker cp from the joiner: %d %s", r.code, r.stderr)
	}

	// The shareable /dev/shm is the donor's run's: unmounted when it ends
	// (which ends the joiner too, its PID namespace's init gone).
	donorID := docker("inspect", "--format", "{{.Id}}", "donor")
	mounted := func() bool {
		b, _ := os.ReadFile("/proc/self/mountinfo")
		return strings.Contains(string(b), donorID+"/shm ")
	}
	if !mounted() {
		t.Error("the shareable /dev/shm is not mounted on the host")
	}
	docker("stop", "-t", "1", "donor")
	if mounted() {
		t.Error("the shareable /dev/shm is still mounted after the donor's exit")
	}
	eventually(t, 10*time.Second, "the joiner to end with its PID namespace's init", func() bool {
		return docker("inspect", "--format", "{{.State.Running}}", "joiner") == "false"
	})

	docker("run", "-d", "--network", "none", "--name", "private", "busybox", "sleep", "100")
	docker("create", "--network", "none", "--name", "stopped", "busybox", "true")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--ipc", "container:private"}, "failed to join IPC namespace: container private: non-shareable IPC (hint: use IpcMode:shareable for the donor container)"},
		{[]string{"--pid", "container:stopped"}, "failed to join PID namespace: container stopped is not running"},
		{[]string{"--pid", "container:nosuch"}, "failed to join PID namespace: No such container: nosuch"},
	} {
		args := append(append([]string{"run", "--rm", "--network", "none"}, c.args...), "busybox", "true")
		if r := run(t, env, "docker", args...); r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("docker %v: %d %q, want %q", args, r.code, r.stderr, c.want)
		}
	}

	if got := docker("run", "--rm", "--network", "none", "--ipc", "none", "busybox", "sh", "-c", "grep -c ' /dev/shm ' /proc/self/mountinfo || true"); got != "0" {
		t.Errorf("--ipc none: /dev/shm mounts %q", got)
	}
	f, err := os.CreateTemp("/dev/shm", "be-e2e-")
	if err != nil {
		t.Skipf("no /dev/shm on the host: %v", err)
	}
	f.WriteString("host's")
	f.Close()
	defer os.Remove(f.Name())
	if got := docker("run", "--rm", "--network", "none", "--ipc", "host", "busybox", "cat", f.Name()); got != "host's" {
		t.Errorf("--ipc host: the host's /dev/shm file reads %q", got)
	}
}

// --health-start-interval: during the start period, until the container
// is healthy, probes come at the start interval (here 200 ms, where the
// interval is an hour); once healthy, at the interval.
func TestE2EHealthStartInterval(t *testing.T) {
	_, _, env := withBusybox(t)
	docker := dockerOK(t, env)
	t.Cleanup(func() { run(t, env, "docker", "rm", "-f", "failing", "passing") })
	docker("run", "-d", "--network", "none", "--name", "failing", "--health-cmd", "echo x >> /tmp/probes; exit 1",
		"--health-interval", "1h", "--health-start-period", "1m", "--health-start-interval", "200ms", "busybox", "sleep", "1000")
	docker("run", "-d", "--network", "none", "--name", "passing", "--health-cmd", "echo x >> /tmp/probes",
		"--health-interval", "1h", "--health-start-period", "1m", "--health-start-interval", "200ms", "busybox", "sleep", "1000")
	probes := func(name string) int {
		out := run(t, env, "docker", "exec", name, "cat", "/tmp/probes").stdout
		return strings.Count(out, "x")
	}
	eventually(t, 10*time.Second, "five probes at the start interval", func() bool { return probes("failing") >= 5 })
	// Failures in the start period do not count: still starting.
	if got := docker("inspect", "--format", "{{.Config.Healthcheck.StartInterval}} {{.State.Health.Status}} {{.State.Health.FailingStreak}}", "failing"); got != "200ms starting 0" {
		t.Errorf("failing: %q", got)
	}
	if got := docker("inspect", "--format", "{{.State.Health.Status}}", "passing"); got != "healthy" {
		t.Errorf("passing: %q", got)
	}
	// Healthy: the next probe is an hour away.
	time.Sleep(time.Second)
	if n := probes("passing"); n != 1 {
		t.Errorf("a healthy container was probed %d times in its start period, want once", n)
	}
}

// HostConfig.ConsoleSize is the terminal's size when the command starts
// (before any resize, which a client sends only once it has attached);
// clients before API 1.42 do not have it read, as with Docker.
func TestE2EConsoleSize(t *testing.T) {
	p, _, _ := withBusybox(t)
	c := apiClient(t, p)
	ctx := context.Background()
	for _, tc := range []struct {
		version string
		sized   bool
	}{{"1.42", true}, {"1.41", false}} {
		body := `{"Image":"busybox","Tty":true,"Cmd":["stty","size"],"HostConfig":{"NetworkMode":"none","ConsoleSize":[30,100]}}`
		code, out := apiCall(t, p, http.MethodPost, "/v"+tc.version+"/containers/create", body)
		var cr containertypes.CreateResponse
		if err := json.Unmarshal([]byte(out), &cr); err != nil || code != http.StatusCreated {
			t.Fatalf("create: %d %s", code, out)
		}
		wait, err := c.ContainerWait(ctx, cr.ID, "next-exit")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ContainerPost(ctx, cr.ID, "start", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := wait(); err != nil {
			t.Fatal(err)
		}
		logs, err := c.ContainerLogs(ctx, cr.ID, url.Values{"stdout": {"1"}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(logs)
		logs.Close()
		if got := strings.TrimSpace(string(b)); (got == "30 100") != tc.sized {
			t.Errorf("API %s: stty size %q (30 100 wanted: %v)", tc.version, got, tc.sized)
		}
	}
}

// An exec's ConsoleSize: the create request's, or the start request's,
// which wins; not read before API 1.42, as with Docker.
func TestE2EExecConsoleSize(t *testing.T) {
	p, _, env := withBusybox(t)
	if r := run(t, env, "docker", "run", "-d", "--network", "none", "--name", "sized", "busybox", "sleep", "600"); r.code != 0 {
		t.Fatalf("run: %d %q", r.code, r.stderr)
	}
	defer run(t, env, "docker", "rm", "-f", "sized")
	for _, tc := range []struct {
		version, create, start, want string
	}{
		{"1.42", `,"ConsoleSize":[30,100]`, `{"Tty":true}`, "30 100"},
		{"1.42", `,"ConsoleSize":[30,100]`, `{"Tty":true,"ConsoleSize":[40,120]}`, "40 120"},
		{"1.41", `,"ConsoleSize":[30,100]`, `{"Tty":true,"ConsoleSize":[40,120]}`, ""},
	} {
		code, out := apiCall(t, p, http.MethodPost, "/v"+tc.version+"/containers/sized/exec",
			`{"Cmd":["stty","size"],"Tty":true,"AttachStdout":true`+tc.create+`}`)
		var cr containertypes.ExecCreateResponse
		if err := json.Unmarshal([]byte(out), &cr); err != nil || code != http.StatusCreated {
			t.Fatalf("exec create: %d %s", code, out)
		}
		conn, br := hijackPost(t, p, "/v"+tc.version+"/exec/"+cr.ID+"/start", tc.start)
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		b, _ := io.ReadAll(br)
		conn.Close()
		got := strings.TrimSpace(string(b))
		if (tc.want != "" && got != tc.want) || (tc.want == "" && (got == "30 100" || got == "40 120")) {
			t.Errorf("API %s, create%s, start %s: stty size %q, want %q", tc.version, tc.create, tc.start, got, tc.want)
		}
	}
}

// --mount's options: a read-only bind is read-only with the mounts below
// its source too where the kernel can (Docker from API 1.44), at its top
// only with bind-recursive=writable; bind-recursive=disabled leaves the
// mounts below out; bind-create-src makes a missing source; volume-label
// labels the volume it makes, volume-opt is refused (no local volume
// options yet); tmpfs exec lets a file there be run.
func TestE2EMountOptions(t *testing.T) {
	p, _, env := withBusybox(t)
	docker := dockerOK(t, env)
	src := filepath.Join(p.dir, "src")
	sub := filepath.Join(src, "sub")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(sub, unix.MNT_DETACH) })
	os.WriteFile(filepath.Join(sub, "f"), []byte("below"), 0o644)
	write := func(mountOpts string) result {
		return run(t, env, "docker", "run", "--rm", "--network", "none", "--mount", "type=bind,src="+src+",dst=/b"+mountOpts,
			"busybox", "sh", "-c", "cat /b/sub/f && touch /b/sub/new && echo wrote")
	}
	rro := unix.MountSetattr(-1, "", unix.AT_EMPTY_PATH, &unix.MountAttr{}) != unix.ENOSYS
	if r := write(",readonly"); r.stdout != "below" && rro || strings.Contains(r.stdout, "wrote") == rro {
		t.Errorf("readonly (recursively where the kernel can: %v): %q %q", rro, r.stdout, r.stderr)
	}
	// -v SRC:DST:ro too; from a client before API 1.44, at the top only.
	if r := run(t, env, "docker", "run", "--rm", "--network", "none", "-v", src+":/b:ro", "busybox", "sh", "-c", "touch /b/sub/v && echo wrote"); strings.Contains(r.stdout, "wrote") == rro {
		t.Errorf("-v :ro (recursively where the kernel can: %v): %q %q", rro, r.stdout, r.stderr)
	}
	body := `{"Image":"busybox","Cmd":["sh","-c","touch /b/sub/old && ! touch /b/top"],"HostConfig":{"NetworkMode":"none","Binds":["` + src + `:/b:ro"]}}`
	if code, out := apiCall(t, p, http.MethodPost, "/v1.43/containers/create?name=older", body); code != http.StatusCreated {
		t.Fatalf("create at API 1.43: %d %s", code, out)
	}
	if r := run(t, env, "docker", "start", "-a", "older"); r.code != 0 {
		t.Errorf("-v :ro from API 1.43 is not read-only at its top only: %d %q", r.code, r.stderr)
	}
	if r := write(",readonly,bind-recursive=writable"); !strings.Contains(r.stdout, "wrote") {
		t.Errorf("bind-recursive=writable: %q %q", r.stdout, r.stderr)
	}
	if r := write(",bind-recursive=disabled"); r.code == 0 || strings.Contains(r.stdout, "below") {
		t.Errorf("bind-recursive=disabled shows the mount below: %q %q", r.stdout, r.stderr)
	}
	if rro {
		if r := write(",readonly,bind-recursive=readonly"); r.code == 0 || strings.Contains(r.stdout, "wrote") {
			t.Errorf("bind-recursive=readonly: %q %q", r.stdout, r.stderr)
		}
	}
	// Made when missing, on request only (BindOptions.CreateMountpoint,
	// which the docker CLI's run has no option for).
	made := filepath.Join(p.dir, "made", "here")
	if r := run(t, env, "docker", "run", "--rm", "--network", "none", "--mount", "type=bind,src="+made+",dst=/m", "busybox", "true"); r.code == 0 {
		t.Errorf("a missing bind source was accepted")
	}
	body = `{"Image":"busybox","Cmd":["touch","/m/x"],"HostConfig":{"NetworkMode":"none","Mounts":[{"Type":"bind","Source":"` + made + `","Target":"/m","BindOptions":{"CreateMountpoint":true}}]}}`
	if code, out := apiCall(t, p, http.MethodPost, "/v1.50/containers/create?name=made", body); code != http.StatusCreated {
		t.Fatalf("create with CreateMountpoint: %d %s", code, out)
	}
	docker("start", "-a", "made")
	if _, err := os.Stat(filepath.Join(made, "x")); err != nil {
		t.Errorf("CreateMountpoint: %v", err)
	}

	docker("run", "--rm", "--network", "none", "--mount", "type=volume,src=labelled,dst=/v,volume-label=a=b,volume-label=c=d", "busybox", "true")
	if got := docker("volume", "inspect", "--format", "{{.Labels.a}} {{.Labels.c}}", "labelled"); got != "b d" {
		t.Errorf("volume labels: %q", got)
	}
	if r := run(t, env, "docker", "run", "--rm", "--network", "none", "--mount", "type=volume,src=opted,dst=/v,volume-opt=type=tmpfs", "busybox", "true"); r.code != 125 ||
		!strings.Contains(r.stderr, "local volume options (type, device, o) are not implemented yet") {
		t.Errorf("volume-opt: %d %q", r.code, r.stderr)
	}

	// tmpfs exec, through the API (the docker CLI has no option for it).
	for _, tc := range []struct {
		opts string
		ran  bool
	}{{`[["exec"]]`, true}, {`null`, false}} {
		body := `{"Image":"busybox","Cmd":["sh","-c","printf '#!/bin/sh\\necho ran' > /t/x && chmod +x /t/x && /t/x"],
			"HostConfig":{"NetworkMode":"none","Mounts":[{"Type":"tmpfs","Target":"/t","TmpfsOptions":{"Options":` + tc.opts + `}}]}}`
		code, out := apiCall(t, p, http.MethodPost, "/v1.50/containers/create", body)
		var cr containertypes.CreateResponse
		if err := json.Unmarshal([]byte(out), &cr); err != nil || code != http.StatusCreated {
			t.Fatalf("create: %d %s", code, out)
		}
		r := run(t, env, "docker", "start", "-a", cr.ID)
		if strings.Contains(r.stdout, "ran") != tc.ran {
			t.Errorf("tmpfs options %s: %d %q %q", tc.opts, r.code, r.stdout, r.stderr)
		}
	}
}

// create's platform query: the local image of another platform is
// Docker's 404, on which the docker CLI pulls the image for the platform
// asked for and creates again; with --pull never it stops there.
func TestE2ECreatePlatform(t *testing.T) {
	bin := engineBin(t)
	reg := testregistry.Start(t)
	ref := pushImage(t, reg, "test/plat:1", busyboxImage(t))
	p := newPaths(t)
	startDaemon(t, exec.Command(bin, p.daemonArgs()...), p.sock)
	env := []string{"DOCKER_HOST=unix://" + p.sock, "DOCKER_CONFIG=" + p.dir}
	docker := dockerOK(t, env)
	docker("pull", ref)
	other := "arm64"
	if hostPlatform.Architecture == "arm64" {
		other = "amd64"
	}
	// The same tag, now of the other platform only.
	pushImage(t, reg, "test/plat:1", testimage.New(ocispec.Platform{OS: "linux", Architecture: other}, ocispec.ImageConfig{Cmd: []string{"true"}}))
	r := run(t, env, "docker", "create", "--pull", "never", "--network", "none", "--platform", "linux/"+other, ref)
	want := fmt.Sprintf("image with reference %s was found but its platform (linux/%s) does not match the specified platform (linux/%s)", ref, hostPlatform.Architecture, other)
	if r.code == 0 || !strings.Contains(r.stderr, want) {
		t.Errorf("create --pull never --platform linux/%s: %d %q, want %q", other, r.code, r.stderr, want)
	}
	docker("create", "--network", "none", "--name", "same", "--platform", "linux/"+hostPlatform.Architecture, ref)
	docker("create", "--network", "none", "--name", "foreign", "--platform", "linux/"+other, ref)
	img := docker("inspect", "--format", "{{.Image}}", "foreign")
	if got := docker("image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", img); got != "linux/"+other {
		t.Errorf("the container's image after the pull: %s", got)
	}
}
