package api

import (
	"bufio"
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/balena-os/balena-engine/src/apiversion"
	"github.com/balena-os/balena-engine/src/container"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	"github.com/opencontainers/cgroups"
	"golang.org/x/sys/unix"
)

// info is GET /info: what "docker info" shows.
func (s *Server) info(w http.ResponseWriter, r *http.Request) error {
	ctrs, err := s.cfg.Containers.List()
	if err != nil {
		return err
	}
	imgs, err := s.cfg.Images.List()
	if err != nil {
		return err
	}
	in := system.Info{
		ID: s.cfg.EngineID, Containers: len(ctrs), Images: len(imgs),
		Driver: "overlay2", DriverStatus: [][2]string{{"Backing Filesystem", backingFS(s.cfg.DataRoot)}},
		MemoryLimit: true, SwapLimit: fileExists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes") || cgroups.IsCgroup2UnifiedMode(),
		CPUCfsPeriod: true, CPUCfsQuota: true, CPUShares: true, CPUSet: true, PidsLimit: true,
		Debug: s.cfg.Debug, NGoroutines: runtime.NumGoroutine(), SystemTime: time.Now().Format(time.RFC3339Nano),
		LoggingDriver: s.cfg.Containers.DefaultLogDriver(), CgroupDriver: "cgroupfs", CgroupVersion: cgroupVersion(),
		KernelVersion: s.cfg.KernelVersion, OperatingSystem: osName(), OSType: runtime.GOOS,
		Architecture: machine(), IndexServerAddress: "https://index.docker.io/v1/", NCPU: runtime.NumCPU(),
		MemTotal: memTotal(), DockerRootDir: s.cfg.DataRoot, ServerVersion: s.cfg.Version.Version,
		DefaultRuntime: "runc", LiveRestoreEnabled: true, Isolation: "", InitBinary: "docker-init (balena-engine)",
		Runtimes:        map[string]system.RuntimeWithStatus{"runc": {Runtime: system.Runtime{Path: "balena-engine (libcontainer, in-process)"}}},
		Swarm:           swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive},
		SecurityOptions: s.cfg.Containers.SecurityOptions(),
		Warnings:        []string{},
		Plugins:         system.PluginsInfo{Volume: []string{"local"}, Log: container.LogDrivers, Network: []string{"bridge", "host", "null"}},
		// As Docker, the kernel's setting (the engine turns it on for
		// its bridges unless --ip-forward=false).
		IPv4Forwarding: sysctlOn("net/ipv4/ip_forward"),
	}
	if s.cfg.Networks != nil && !s.cfg.Networks.IPTablesEnabled() {
		in.Warnings = append(in.Warnings, "WARNING: the firewall is not managed (--iptables=false): published ports and masquerading do not work")
	}
	in.Name, _ = os.Hostname()
	for _, c := range ctrs {
		switch c.State.Status {
		case container.StatusRunning:
			in.ContainersRunning++
		case container.StatusPaused:
			in.ContainersPaused++
		default:
			in.ContainersStopped++
		}
	}
	if apiversion.Compare(RequestVersion(r.Context()), "1.50") < 0 {
		// Docker sent these until API 1.50 (deprecated in 1.48);
		// clients of older versions (docker 20.10's info) warn when
		// they are false or missing.
		return writeJSON(w, http.StatusOK, infoBefore150{in,
			sysctlOn("net/bridge/bridge-nf-call-iptables"), sysctlOn("net/bridge/bridge-nf-call-ip6tables")})
	}
	return writeJSON(w, http.StatusOK, in)
}

// infoBefore150 is GET /info before API 1.50.
type infoBefore150 struct {
	system.Info
	BridgeNfIptables  bool
	BridgeNfIp6tables bool
}

// sysctlOn says whether a kernel setting (of the daemon's network
// namespace for net/...) reads 1; false when it is absent (for the bridge
// settings: no br_netfilter).
func sysctlOn(name string) bool {
	b, err := os.ReadFile("/proc/sys/" + name)
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func cgroupVersion() string {
	if cgroups.IsCgroup2UnifiedMode() {
		return "2"
	}
	return "1"
}

func machine() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return runtime.GOARCH
	}
	return strings.TrimRight(string(u.Machine[:]), "\x00")
}

func osName() string {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return "Linux"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}

func memTotal() int64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return int64(si.Totalram) * int64(si.Unit)
}

func backingFS(dir string) string {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return "unknown"
	}
	// Type is an int32 on 32-bit targets: compare as unsigned.
	switch uint32(st.Type) {
	case uint32(unix.EXT4_SUPER_MAGIC):
		return "extfs"
	case uint32(unix.TMPFS_MAGIC):
		return "tmpfs"
	case uint32(unix.BTRFS_SUPER_MAGIC):
		return "btrfs"
	case uint32(unix.XFS_SUPER_MAGIC):
		return "xfs"
	case uint32(unix.F2FS_SUPER_MAGIC):
		return "f2fs"
	}
	return "unknown"
}
