package container

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/balena-os/balena-engine/src/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/blkiodev"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// rootfs makes a root filesystem with an /etc/passwd and /etc/group.
func rootfs(t *testing.T) string {
	r := t.TempDir()
	os.MkdirAll(filepath.Join(r, "etc"), 0o755)
	os.WriteFile(filepath.Join(r, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(r, "etc/group"), []byte("root:x:0:\napp:x:1000:\naudio:x:29:app\nvideo:x:44:\n"), 0o644)
	return r
}

func testImage() dockerspec.DockerOCIImageConfig {
	return dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{
		Env: []string{"PATH=/bin", "A=image"}, Cmd: []string{"sh"}, WorkingDir: "/srv"}}
}

func spec(t *testing.T, cfg containertypes.Config, host containertypes.HostConfig) (*specs.Spec, error) {
	t.Helper()
	if host.NetworkMode == "" {
		host.NetworkMode = "none"
	}
	return Spec(SpecInput{ID: "0123456789abcdef0123", Config: &cfg, Host: &host, Image: testImage(), Rootfs: rootfs(t)})
}

func TestResolveCommand(t *testing.T) {
	img := dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{Entrypoint: []string{"/init"}, Cmd: []string{"serve"}}}
	cases := []struct {
		cfg  containertypes.Config
		want []string
	}{
		{containertypes.Config{}, []string{"/init", "serve"}},
		{containertypes.Config{Cmd: []string{"debug"}}, []string{"/init", "debug"}},
		{containertypes.Config{Entrypoint: []string{"sh", "-c"}}, []string{"sh", "-c"}}, // the image's cmd goes with its entrypoint
		{containertypes.Config{Entrypoint: []string{"sh", "-c"}, Cmd: []string{"echo hi"}}, []string{"sh", "-c", "echo hi"}},
		{containertypes.Config{Entrypoint: []string{}, Cmd: []string{"ls"}}, []string{"ls"}},   // "Entrypoint": []
		{containertypes.Config{Entrypoint: []string{""}, Cmd: []string{"ls"}}, []string{"ls"}}, // --entrypoint "" (the CLI sends [""])
		{containertypes.Config{Entrypoint: []string{""}}, nil},                                 // ... which drops the image's cmd too: no command
	}
	for _, c := range cases {
		got, err := ResolveCommand(&c.cfg, img)
		if c.want == nil {
			if errdefs.KindOf(err) != errdefs.KindInvalidParameter {
				t.Errorf("ResolveCommand(%+v) = %q, %v; want no command", c.cfg, got, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ResolveCommand(%+v) = %q, %v; want %q", c.cfg, got, err, c.want)
		}
	}
	if _, err := ResolveCommand(&containertypes.Config{}, dockerspec.DockerOCIImageConfig{}); errdefs.KindOf(err) != errdefs.KindInvalidParameter {
		t.Errorf("no command: %v", err)
	}
}

func TestSpecBasics(t *testing.T) {
	s, err := spec(t, containertypes.Config{Env: []string{"A=ctr", "B=2"}, User: "app", Cmd: []string{"id"}, Labels: map[string]string{"x": "y"}},
		containertypes.HostConfig{GroupAdd: []string{"video"}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Process.Args, []string{"id"}) || s.Process.Cwd != "/srv" {
		t.Errorf("process = %+v", s.Process)
	}
	if !reflect.DeepEqual(s.Process.Env, []string{"PATH=/bin", "A=ctr", "B=2", "HOSTNAME=0123456789ab"}) {
		t.Errorf("env = %q", s.Process.Env)
	}
	if s.Process.User.UID != 1000 || s.Process.User.GID != 1000 || !slices.Contains(s.Process.User.AdditionalGids, 29) ||
		!slices.Contains(s.Process.User.AdditionalGids, 44) {
		t.Errorf("user = %+v", s.Process.User)
	}
	if s.Hostname != "0123456789ab" {
		t.Errorf("hostname = %q", s.Hostname)
	}
	var nsTypes []string
	for _, n := range s.Linux.Namespaces {
		nsTypes = append(nsTypes, string(n.Type))
	}
	if !slices.Contains(nsTypes, "network") || !slices.Contains(nsTypes, "pid") || !slices.Contains(nsTypes, "uts") {
		t.Errorf("namespaces = %v", nsTypes)
	}
	if len(s.Process.Capabilities.Bounding) != len(defaultCaps) || slices.Contains(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN") {
		t.Errorf("caps = %v", s.Process.Capabilities.Bounding)
	}
	if !slices.Contains(s.Linux.MaskedPaths, "/proc/kcore") {
		t.Error("default masked paths missing")
	}
	var dsts []string
	for _, m := range s.Mounts {
		dsts = append(dsts, m.Destination)
	}
	for _, d := range []string{"/proc", "/dev", "/dev/pts", "/sys", "/dev/shm", "/dev/mqueue", "/sys/fs/cgroup"} {
		if !slices.Contains(dsts, d) {
			t.Errorf("mount %s missing: %v", d, dsts)
		}
	}
	if s.Linux.Resources.Devices[0].Allow {
		t.Error("device cgroup does not start by denying all")
	}
}

func TestSpecHostNetworkAndPrivileged(t *testing.T) {
	s, err := spec(t, containertypes.Config{}, containertypes.HostConfig{NetworkMode: "host", Privileged: true, ReadonlyRootfs: true})
	if err != nil {
		t.Fatal(err)
	}
	uts := false
	for _, n := range s.Linux.Namespaces {
		if n.Type == specs.NetworkNamespace {
			t.Errorf("host network still has a %s namespace", n.Type)
		}
		uts = uts || n.Type == specs.UTSNamespace
	}
	// As Docker: its own UTS namespace, named after the host.
	if h, _ := os.Hostname(); !uts || s.Hostname != h {
		t.Errorf("host network: UTS namespace %v, hostname %q, want the host's %q", uts, s.Hostname, h)
	}
	// A host name of its own on the host's network (balena's agent does it).
	named, err := spec(t, containertypes.Config{Hostname: "device-1"}, containertypes.HostConfig{NetworkMode: "host"})
	if err != nil || named.Hostname != "device-1" {
		t.Errorf("host network with a host name: %v, %q", err, named.Hostname)
	}
	// --uts=host: the host's namespace, no host name set.
	shared, err := spec(t, containertypes.Config{}, containertypes.HostConfig{NetworkMode: "host", UTSMode: "host"})
	if err != nil || shared.Hostname != "" || slices.ContainsFunc(shared.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.UTSNamespace }) {
		t.Errorf("--uts=host: %v, hostname %q, namespaces %v", err, shared.Hostname, shared.Linux.Namespaces)
	}
	if !slices.Contains(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN") || len(s.Linux.MaskedPaths) != 0 {
		t.Error("privileged is not privileged")
	}
	if !s.Linux.Resources.Devices[0].Allow || !s.Root.Readonly {
		t.Errorf("privileged devices %+v, readonly %v", s.Linux.Resources.Devices, s.Root.Readonly)
	}
}

func TestSpecOptions(t *testing.T) {
	bindSrc := t.TempDir()
	pids := int64(50)
	s, err := spec(t, containertypes.Config{Cmd: []string{"x"}}, containertypes.HostConfig{
		CapAdd: []string{"net_admin"}, CapDrop: []string{"CAP_MKNOD"},
		SecurityOpt: []string{"no-new-privileges", "seccomp=unconfined"},
		Binds:       []string{bindSrc + ":/data:ro"},
		Mounts:      []mount.Mount{{Type: mount.TypeTmpfs, Target: "/run", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20}}},
		Tmpfs:       map[string]string{"/cache": "size=2m"},
		ShmSize:     1 << 20,
		Resources: containertypes.Resources{Memory: 64 << 20, MemorySwap: 128 << 20, NanoCPUs: 5e8, CPUShares: 512,
			PidsLimit: &pids, BlkioWeight: 300, Ulimits: nil,
			DeviceCgroupRules: []string{"c 13:* rmw"},
			Devices:           []containertypes.DeviceMapping{{PathOnHost: "/dev/null", PathInContainer: "/dev/mynull"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	caps := s.Process.Capabilities.Bounding
	if !slices.Contains(caps, "CAP_NET_ADMIN") || slices.Contains(caps, "CAP_MKNOD") || !s.Process.NoNewPrivileges {
		t.Errorf("caps %v, nnp %v", caps, s.Process.NoNewPrivileges)
	}
	find := func(dst string) *specs.Mount {
		for i := range s.Mounts {
			if s.Mounts[i].Destination == dst {
				return &s.Mounts[i]
			}
		}
		return nil
	}
	if m := find("/data"); m == nil || m.Source != bindSrc || !slices.Contains(m.Options, wantRO()) {
		t.Errorf("bind: %+v", m)
	}
	if m := find("/run"); m == nil || !slices.Contains(m.Options, "size=1048576") {
		t.Errorf("tmpfs mount: %+v", m)
	}
	if m := find("/cache"); m == nil || !slices.Contains(m.Options, "size=2m") {
		t.Errorf("tmpfs: %+v", m)
	}
	if m := find("/dev/shm"); m == nil || !slices.Contains(m.Options, "size=1048576") {
		t.Errorf("shm: %+v", m)
	}
	r := s.Linux.Resources
	if *r.Memory.Limit != 64<<20 || *r.Memory.Swap != 128<<20 || *r.CPU.Quota != 50000 || *r.CPU.Period != 100000 ||
		*r.CPU.Shares != 512 || *r.Pids.Limit != 50 || *r.BlockIO.Weight != 300 {
		t.Errorf("resources = %+v", r)
	}
	if len(s.Linux.Devices) != 1 || s.Linux.Devices[0].Path != "/dev/mynull" || s.Linux.Devices[0].Major != 1 || s.Linux.Devices[0].Minor != 3 {
		t.Errorf("devices = %+v", s.Linux.Devices)
	}
	if len(r.Devices) != 3 || r.Devices[2].Type != "c" || *r.Devices[2].Major != 13 || r.Devices[2].Minor != nil {
		t.Errorf("device rules = %+v", r.Devices)
	}
}

func TestSpecErrors(t *testing.T) {
	cases := []struct {
		name string
		cfg  containertypes.Config
		host containertypes.HostConfig
		kind errdefs.Kind
		want string
	}{
		{"unknown user", containertypes.Config{User: "nobody-here"}, containertypes.HostConfig{}, errdefs.KindInvalidParameter, "unable to find user nobody-here"},
		{"relative workdir", containertypes.Config{WorkingDir: "srv"}, containertypes.HostConfig{}, errdefs.KindInvalidParameter, "needs to be an absolute path"},
		{"bad cap", containertypes.Config{}, containertypes.HostConfig{CapAdd: []string{"FLY"}}, errdefs.KindInvalidParameter, `invalid capability to add: "CAP_FLY"`},
		{"seccomp path", containertypes.Config{}, containertypes.HostConfig{SecurityOpt: []string{"seccomp=/x.json"}}, errdefs.KindInvalidParameter, "Decoding seccomp profile failed"},
		{"seccomp empty", containertypes.Config{}, containertypes.HostConfig{SecurityOpt: []string{"seccomp="}}, errdefs.KindInvalidParameter, "seccomp needs a profile"},
		{"seccomp both", containertypes.Config{}, containertypes.HostConfig{SecurityOpt: []string{`seccomp={"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86"],"archMap":[{"architecture":"SCMP_ARCH_X86"}]}`}}, errdefs.KindInvalidParameter, "both 'architectures' and 'archMap'"},
		{"bad security opt", containertypes.Config{}, containertypes.HostConfig{SecurityOpt: []string{"magic=on"}}, errdefs.KindInvalidParameter, "invalid --security-opt"},
		{"bad bind", containertypes.Config{}, containertypes.HostConfig{Binds: []string{"/a"}}, errdefs.KindInvalidParameter, "invalid volume specification"},
		{"unresolved volume", containertypes.Config{}, containertypes.HostConfig{Binds: []string{"data:/data"}}, errdefs.KindInvalidParameter, "was not resolved"},
		{"bad bind mode", containertypes.Config{}, containertypes.HostConfig{Binds: []string{"/tmp:/x:fast"}}, errdefs.KindInvalidParameter, "invalid mode: fast"},
		{"missing bind source", containertypes.Config{}, containertypes.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeBind, Source: "/nonexistent/x", Target: "/x"}}}, errdefs.KindInvalidParameter, "bind source path does not exist"},
		{"relative target", containertypes.Config{}, containertypes.HostConfig{Tmpfs: map[string]string{"rel": ""}}, errdefs.KindInvalidParameter, "not an absolute path"},
		{"duplicate", containertypes.Config{}, containertypes.HostConfig{Binds: []string{"/tmp:/x"}, Tmpfs: map[string]string{"/x": ""}}, errdefs.KindInvalidParameter, "duplicate mount point"},
		{"tiny memory", containertypes.Config{}, containertypes.HostConfig{Resources: containertypes.Resources{Memory: 1 << 20}}, errdefs.KindInvalidParameter, "Minimum memory limit allowed is 6MB"},
		{"swap below memory", containertypes.Config{}, containertypes.HostConfig{Resources: containertypes.Resources{Memory: 64 << 20, MemorySwap: 32 << 20}}, errdefs.KindInvalidParameter, "memoryswap limit should be larger"},
		{"too many cpus", containertypes.Config{}, containertypes.HostConfig{Resources: containertypes.Resources{NanoCPUs: 1000e9}}, errdefs.KindInvalidParameter, "range of CPUs"},
		{"cpuset", containertypes.Config{}, containertypes.HostConfig{Resources: containertypes.Resources{CpusetCpus: "0-999"}}, errdefs.KindInvalidParameter, "requested CPUs are not available"},
		{"missing device", containertypes.Config{}, containertypes.HostConfig{Resources: containertypes.Resources{Devices: []containertypes.DeviceMapping{{PathOnHost: "/dev/nope"}}}}, errdefs.KindInvalidParameter, `adding custom device "/dev/nope"`},
		{"not a device", containertypes.Config{}, containertypes.HostConfig{Resources: containertypes.Resources{Devices: []containertypes.DeviceMapping{{PathOnHost: "/etc/hostname"}}}}, errdefs.KindInvalidParameter, "not a device node"},
		{"bad rule", containertypes.Config{}, containertypes.HostConfig{Resources: containertypes.Resources{DeviceCgroupRules: []string{"x 1:2 rwm"}}}, errdefs.KindInvalidParameter, "invalid device cgroup rule"},
		{"blkio", containertypes.Config{}, containertypes.HostConfig{Resources: containertypes.Resources{BlkioWeight: 5000}}, errdefs.KindInvalidParameter, "blkio weight"},
	}
	for _, c := range cases {
		_, err := spec(t, c.cfg, c.host)
		if err == nil || errdefs.KindOf(err) != c.kind || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v (kind %v), want %v with %q", c.name, err, errdefs.KindOf(err), c.kind, c.want)
		}
	}
}

// An image whose /etc/passwd is a symlink to the host's must not have it read.
func TestResolveUserStaysInRoot(t *testing.T) {
	r := t.TempDir()
	os.MkdirAll(filepath.Join(r, "etc"), 0o755)
	os.Symlink("/etc/passwd", filepath.Join(r, "etc/passwd"))
	for _, u := range []string{"", "0", "0:0"} {
		if got, err := ResolveUser(r, u, nil); err != nil || got.UID != 0 {
			t.Fatalf("user %q without a passwd file: %v %v", u, got, err) // numeric IDs need no file
		}
	}
	// "daemon" exists in the host's /etc/passwd, not in the image's.
	if _, err := ResolveUser(r, "daemon", nil); err == nil {
		t.Error("user resolved through a symlink to the host's /etc/passwd")
	}
}

func TestSpecInit(t *testing.T) {
	yes := true
	cfg := containertypes.Config{Cmd: []string{"sleep", "9"}}
	host := containertypes.HostConfig{NetworkMode: "none", Init: &yes}
	s, err := Spec(SpecInput{ID: "0123456789abcdef0123", Config: &cfg, Host: &host, Image: testImage(), Rootfs: rootfs(t), InitPath: "/usr/bin/balena-engine"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{InitDest, "--", "sleep", "9"}; !reflect.DeepEqual(s.Process.Args, want) {
		t.Errorf("args %q, want %q", s.Process.Args, want)
	}
	var found bool
	for _, m := range s.Mounts {
		if m.Destination == InitDest {
			found = m.Source == "/usr/bin/balena-engine" && slices.Contains(m.Options, "ro")
		}
	}
	if !found {
		t.Errorf("no read-only bind of the engine at %s: %+v", InitDest, s.Mounts)
	}
	s, _ = spec(t, cfg, containertypes.HostConfig{})
	if s.Process.Args[0] != "sleep" {
		t.Errorf("without --init: %q", s.Process.Args)
	}
}

// blockDeviceForTest is a block device of this machine, for the limits
// that take one; the test is skipped on a machine without any.
func blockDeviceForTest(t *testing.T) (path string, major, minor int64) {
	t.Helper()
	devs, _ := os.ReadDir("/sys/block")
	for _, d := range devs {
		p := "/dev/" + d.Name()
		if maj, mnr, err := blockDevice(p); err == nil {
			return p, maj, mnr
		}
	}
	t.Skip("no block device in /dev")
	return "", 0, 0
}

// The memory, real-time and block I/O resources reach the spec, which
// libcontainer writes to the cgroup (v1's files, v2's io.max and
// io.bfq.weight): devices by their numbers.
func TestSpecResources(t *testing.T) {
	dev, major, minor := blockDeviceForTest(t)
	host := containertypes.HostConfig{Resources: containertypes.Resources{
		MemorySwappiness: int64p(10), OomKillDisable: boolp(true), Memory: 64 << 20,
		CPURealtimePeriod: 1000000, CPURealtimeRuntime: 500000,
		BlkioWeightDevice:    []*blkiodev.WeightDevice{{Path: dev, Weight: 200}},
		BlkioDeviceReadBps:   []*blkiodev.ThrottleDevice{{Path: dev, Rate: 1 << 20}},
		BlkioDeviceWriteBps:  []*blkiodev.ThrottleDevice{{Path: dev, Rate: 2 << 20}},
		BlkioDeviceReadIOps:  []*blkiodev.ThrottleDevice{{Path: dev, Rate: 100}},
		BlkioDeviceWriteIOps: []*blkiodev.ThrottleDevice{{Path: dev, Rate: 200}},
	}}
	s, err := spec(t, containertypes.Config{}, host)
	if err != nil {
		t.Fatal(err)
	}
	r := s.Linux.Resources
	if r.Memory.Swappiness == nil || *r.Memory.Swappiness != 10 || r.Memory.DisableOOMKiller == nil || !*r.Memory.DisableOOMKiller {
		t.Errorf("memory: %+v", r.Memory)
	}
	if r.CPU.RealtimePeriod == nil || *r.CPU.RealtimePeriod != 1000000 || r.CPU.RealtimeRuntime == nil || *r.CPU.RealtimeRuntime != 500000 {
		t.Errorf("cpu: %+v", r.CPU)
	}
	d := specs.LinuxBlockIODevice{Major: major, Minor: minor}
	w := uint16(200)
	want := &specs.LinuxBlockIO{
		WeightDevice:            []specs.LinuxWeightDevice{{LinuxBlockIODevice: d, Weight: &w}},
		ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: d, Rate: 1 << 20}},
		ThrottleWriteBpsDevice:  []specs.LinuxThrottleDevice{{LinuxBlockIODevice: d, Rate: 2 << 20}},
		ThrottleReadIOPSDevice:  []specs.LinuxThrottleDevice{{LinuxBlockIODevice: d, Rate: 100}},
		ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: d, Rate: 200}},
	}
	if !reflect.DeepEqual(r.BlockIO, want) {
		t.Errorf("block I/O: %+v, want %+v", r.BlockIO, want)
	}
	// The docker CLI's "not given" (-1), as older records keep it, and
	// the OOM killer left on: nothing in the spec.
	s, err = spec(t, containertypes.Config{}, containertypes.HostConfig{Resources: containertypes.Resources{MemorySwappiness: int64p(-1), OomKillDisable: boolp(false)}})
	if err != nil || s.Linux.Resources.Memory != nil {
		t.Errorf("defaults: %v %+v", err, s.Linux.Resources.Memory)
	}
	for _, bad := range []string{"/dev/null", "/dev/nonexistent"} {
		_, err := spec(t, containertypes.Config{}, containertypes.HostConfig{Resources: containertypes.Resources{
			BlkioDeviceReadBps: []*blkiodev.ThrottleDevice{{Path: bad, Rate: 1}}}})
		if errdefs.KindOf(err) != errdefs.KindInvalidParameter || !strings.Contains(err.Error(), bad) {
			t.Errorf("%s: %v, want 400 naming it", bad, err)
		}
	}
}

// --pid and --ipc container:NAME join the other container's namespaces
// (paths the start resolves); a shareable or shared IPC namespace binds
// its /dev/shm from the host; --ipc none has no /dev/shm at all.
func TestSpecSharedNamespaces(t *testing.T) {
	nsPath := func(s *specs.Spec, typ specs.LinuxNamespaceType) (string, bool) {
		for _, n := range s.Linux.Namespaces {
			if n.Type == typ {
				return n.Path, true
			}
		}
		return "", false
	}
	shmMount := func(s *specs.Spec) *specs.Mount {
		for i := range s.Mounts {
			if s.Mounts[i].Destination == "/dev/shm" {
				return &s.Mounts[i]
			}
		}
		return nil
	}
	host := containertypes.HostConfig{PidMode: "container:other", IpcMode: "container:other", NetworkMode: "none"}
	cfg := containertypes.Config{}
	s, err := Spec(SpecInput{ID: "0123456789abcdef0123", Config: &cfg, Host: &host, Image: testImage(), Rootfs: rootfs(t),
		PidnsPath: "/proc/42/ns/pid", IpcnsPath: "/proc/42/ns/ipc", ShmPath: "/data/containers/other/shm"})
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := nsPath(s, specs.PIDNamespace); !ok || p != "/proc/42/ns/pid" {
		t.Errorf("PID namespace: %q %v", p, ok)
	}
	if p, ok := nsPath(s, specs.IPCNamespace); !ok || p != "/proc/42/ns/ipc" {
		t.Errorf("IPC namespace: %q %v", p, ok)
	}
	if m := shmMount(s); m == nil || m.Type != "bind" || m.Source != "/data/containers/other/shm" {
		t.Errorf("/dev/shm: %+v", m)
	}
	s, err = spec(t, containertypes.Config{}, containertypes.HostConfig{IpcMode: "none"})
	if err != nil {
		t.Fatal(err)
	}
	if m := shmMount(s); m != nil {
		t.Errorf("--ipc none has a /dev/shm: %+v", m)
	}
	if _, ok := nsPath(s, specs.IPCNamespace); !ok {
		t.Error("--ipc none without an IPC namespace of its own")
	}
	s, err = spec(t, containertypes.Config{}, containertypes.HostConfig{IpcMode: "private", ShmSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if m := shmMount(s); m == nil || m.Type != "tmpfs" || !slices.Contains(m.Options, "size=1048576") {
		t.Errorf("private /dev/shm: %+v", m)
	}
	if p, _ := nsPath(s, specs.PIDNamespace); p != "" {
		t.Errorf("a PID namespace of its own has a path: %q", p)
	}
}

// The initial console size (HostConfig.ConsoleSize, height and width)
// goes into the spec's process for a container with a terminal only.
func TestSpecConsoleSize(t *testing.T) {
	s, err := spec(t, containertypes.Config{Tty: true}, containertypes.HostConfig{ConsoleSize: [2]uint{30, 100}})
	if err != nil {
		t.Fatal(err)
	}
	if b := s.Process.ConsoleSize; b == nil || b.Height != 30 || b.Width != 100 {
		t.Errorf("console size: %+v", b)
	}
	for _, tc := range []struct {
		tty  bool
		size [2]uint
	}{{false, [2]uint{30, 100}}, {true, [2]uint{0, 100}}, {true, [2]uint{}}} {
		s, err := spec(t, containertypes.Config{Tty: tc.tty}, containertypes.HostConfig{ConsoleSize: tc.size})
		if err != nil || s.Process.ConsoleSize != nil {
			t.Errorf("tty %v, size %v: %v %+v", tc.tty, tc.size, err, s.Process.ConsoleSize)
		}
	}
}

// wantRO is the option of a read-only bind on this kernel: recursively
// read-only where it can be.
func wantRO() string {
	if rroSupported() == nil {
		return "rro"
	}
	return "ro"
}

// --mount's bind options: bind-recursive (disabled, writable: read-only at
// the top only, readonly: everywhere or an error), bind-create-src; the
// clients before API 1.44 (read-only at the top only); tmpfs-option.
func TestSpecMountOptions(t *testing.T) {
	src := t.TempDir()
	missing := filepath.Join(t.TempDir(), "made", "here")
	for _, tc := range []struct {
		name           string
		m              mount.Mount
		roNonRecursive bool
		want           []string // the mount's options
		err            string
	}{
		{"default", mount.Mount{Type: mount.TypeBind, Source: src, Target: "/b"}, false, []string{"rbind", "rprivate"}, ""},
		{"read-only", mount.Mount{Type: mount.TypeBind, Source: src, Target: "/b", ReadOnly: true}, false, []string{"rbind", "rprivate", wantRO()}, ""},
		{"read-only, API 1.43", mount.Mount{Type: mount.TypeBind, Source: src, Target: "/b", ReadOnly: true}, true, []string{"rbind", "rprivate", "ro"}, ""},
		{"bind-recursive=disabled", mount.Mount{Type: mount.TypeBind, Source: src, Target: "/b", BindOptions: &mount.BindOptions{NonRecursive: true, Propagation: "rslave"}}, false,
			[]string{"bind", "rslave"}, ""},
		{"bind-recursive=writable", mount.Mount{Type: mount.TypeBind, Source: src, Target: "/b", ReadOnly: true, BindOptions: &mount.BindOptions{ReadOnlyNonRecursive: true}}, false,
			[]string{"rbind", "rprivate", "ro"}, ""},
		{"bind-recursive=writable without readonly", mount.Mount{Type: mount.TypeBind, Source: src, Target: "/b", BindOptions: &mount.BindOptions{ReadOnlyNonRecursive: true}}, false,
			nil, "options conflict: Writable && ReadOnlyNonRecursive"},
		{"both", mount.Mount{Type: mount.TypeBind, Source: src, Target: "/b", ReadOnly: true, BindOptions: &mount.BindOptions{ReadOnlyNonRecursive: true, ReadOnlyForceRecursive: true}}, false,
			nil, "mount options conflict: ReadOnlyNonRecursive && ReadOnlyForceRecursive"},
		{"a missing source", mount.Mount{Type: mount.TypeBind, Source: missing, Target: "/b"}, false, nil, `invalid mount config for type "bind": bind source path does not exist: ` + missing},
		{"bind-create-src", mount.Mount{Type: mount.TypeBind, Source: missing, Target: "/b", BindOptions: &mount.BindOptions{CreateMountpoint: true}}, false, []string{"rbind", "rprivate"}, ""},
		{"tmpfs-option exec", mount.Mount{Type: mount.TypeTmpfs, Target: "/t", TmpfsOptions: &mount.TmpfsOptions{Options: [][]string{{"exec"}}}}, false,
			[]string{"nosuid", "nodev", "noexec", "exec"}, ""},
		{"tmpfs-option other", mount.Mount{Type: mount.TypeTmpfs, Target: "/t", TmpfsOptions: &mount.TmpfsOptions{Options: [][]string{{"uid", "1000"}}}}, false,
			nil, `invalid mount config for type "tmpfs": invalid option: uid`},
		{"tmpfs-option empty", mount.Mount{Type: mount.TypeTmpfs, Target: "/t", TmpfsOptions: &mount.TmpfsOptions{Options: [][]string{{}}}}, false,
			nil, `invalid mount config for type "tmpfs": invalid option array length`},
	} {
		got, err := fromMount(tc.m, tc.roNonRecursive)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err || errdefs.KindOf(err) != errdefs.KindInvalidParameter {
				t.Errorf("%s: %v, want 400 %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got.Options, tc.want) {
			t.Errorf("%s: %v %q, want %q", tc.name, err, got.Options, tc.want)
		}
	}
	if fi, err := os.Stat(missing); err != nil || !fi.IsDir() {
		t.Errorf("bind-create-src made no directory: %v", err)
	}
	// bind-recursive=readonly: everywhere, or refused where the kernel
	// cannot.
	got, err := fromMount(mount.Mount{Type: mount.TypeBind, Source: src, Target: "/b", ReadOnly: true, BindOptions: &mount.BindOptions{ReadOnlyForceRecursive: true}}, true)
	if rroSupported() == nil {
		if err != nil || !slices.Contains(got.Options, "rro") {
			t.Errorf("bind-recursive=readonly: %v %q", err, got.Options)
		}
	} else if err == nil {
		t.Errorf("bind-recursive=readonly on a kernel without mount_setattr: %q", got.Options)
	}
	// -v SRC:DST:ro follows the client's version as --mount does.
	for nonRec, want := range map[bool]string{false: wantRO(), true: "ro"} {
		if m, err := parseBind(src+":/v:ro", nonRec); err != nil || !slices.Contains(m.Options, want) {
			t.Errorf("-v :ro (top only: %v): %v %q", nonRec, err, m.Options)
		}
	}
}

// The network counters of docker stats come from the container's
// /proc/PID/net/dev: every interface but loopback, receive columns then
// transmit ones; none (a container on the none network) is nil, as Docker.
func TestParseNetDev(t *testing.T) {
	const dev = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     140       2    0    0    0     0          0         0      140       2    0    0    0     0       0          0
  eth0:    1296      16    1    2    0     0          0         0      796      10    3    4    0     0       0          0
`
	got := parseNetDev(dev)
	want := containertypes.NetworkStats{RxBytes: 1296, RxPackets: 16, RxErrors: 1, RxDropped: 2, TxBytes: 796, TxPackets: 10, TxErrors: 3, TxDropped: 4}
	if len(got) != 1 || got["eth0"] != want {
		t.Errorf("parseNetDev = %+v, want eth0 %+v only", got, want)
	}
	if got := parseNetDev(strings.Join(strings.Split(dev, "\n")[:3], "\n")); got != nil {
		t.Errorf("loopback only: %+v, want nil", got)
	}
	if got := netStats(os.Getpid()); got == nil && len(parseNetDev(mustRead(t, "/proc/self/net/dev"))) > 0 {
		t.Error("netStats of this process read nothing")
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
