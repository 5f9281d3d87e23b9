// Package container holds containers: their records, and the translation
// of Docker's container configuration into an OCI runtime spec. Spec is a
// pure function from data to data (as runc's libcontainer/configs keeps
// what a container should be apart from what starts it); the runtime
// package starts what it describes.
package container

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/balena-os/balena-engine/src/errdefs"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// defaultCaps are the capabilities Docker gives a container.
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// allCaps is every capability, for --privileged and "ALL".
var allCaps = []string{
	"CAP_AUDIT_CONTROL", "CAP_AUDIT_READ", "CAP_AUDIT_WRITE", "CAP_BLOCK_SUSPEND", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_KILL", "CAP_LEASE", "CAP_LINUX_IMMUTABLE",
	"CAP_MAC_ADMIN", "CAP_MAC_OVERRIDE", "CAP_MKNOD", "CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_RAW", "CAP_PERFMON", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP",
	"CAP_SETUID", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_CHROOT", "CAP_SYS_MODULE", "CAP_SYS_NICE",
	"CAP_SYS_PACCT", "CAP_SYS_PTRACE", "CAP_SYS_RAWIO", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_SYSLOG", "CAP_WAKE_ALARM",
}

var defaultMaskedPaths = []string{
	"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
	"/sys/devices/virtual/powercap",
}

var defaultReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// SpecInput is everything a container's spec is made from.
type SpecInput struct {
	ID     string
	Config *containertypes.Config     // as created, before the image's defaults
	Host   *containertypes.HostConfig // may be nil
	Image  dockerspec.DockerOCIImageConfig
	Rootfs string // the mounted root filesystem
	// EtcFiles are files the engine writes per container and binds over
	// the image's: "/etc/hostname", "/etc/hosts", "/etc/resolv.conf".
	EtcFiles map[string]string
	// Volumes are mounts the engine resolved from volume names; the
	// host config given has no volume entries left.
	Volumes []specs.Mount
	// InitPath is the host path of the executable bound at
	// /sbin/docker-init for --init (the engine's own binary).
	InitPath string
	// SeccompProfile is the daemon's profile for containers that name
	// none: "" or "builtin" for Docker's default, "unconfined", or JSON.
	SeccompProfile string
	// NoSeccomp says the engine was built without seccomp support.
	NoSeccomp bool
	// NetnsPath is the network namespace a bridged container joins (its
	// network sandbox's); "" for a new empty one.
	NetnsPath string
	// PidnsPath and IpcnsPath are the namespaces of another container
	// that --pid and --ipc container:NAME join; "" for new ones.
	PidnsPath, IpcnsPath string
	// ReadOnlyNonRecursive makes read-only binds read-only at their top
	// only: Docker's default for clients before API 1.44.
	ReadOnlyNonRecursive bool
	// ShmPath is the host directory bound at /dev/shm: a shareable IPC
	// namespace's tmpfs (its own, or the one whose namespace it joins) or
	// the host's /dev/shm; "" for a tmpfs of the container's own.
	ShmPath string
}

// InitDest is where --init's executable appears in a container.
const InitDest = "/sbin/docker-init"

// Process is the command a container runs, resolved against its image.
type Process struct {
	Args    []string
	Env     []string
	Cwd     string
	User    specs.User
	Tty     bool
	Rlimits []specs.POSIXRlimit
}

// ResolveCommand picks the command as Docker does: the container's
// entrypoint, else the image's; the container's cmd, else the image's
// (unless the container set an entrypoint, which discards the image's cmd).
func ResolveCommand(cfg *containertypes.Config, img dockerspec.DockerOCIImageConfig) ([]string, error) {
	entry, cmd := img.Entrypoint, img.Cmd
	if len(cfg.Entrypoint) == 1 && cfg.Entrypoint[0] == "" {
		// --entrypoint "" (or "Entrypoint": ""): as Docker, the image's
		// entrypoint and its cmd are both dropped.
		entry, cmd = nil, nil
	} else if len(cfg.Entrypoint) > 0 {
		entry = cfg.Entrypoint
		cmd = nil
	} else if cfg.Entrypoint != nil {
		entry = nil // --entrypoint "": reset
	}
	if len(cfg.Cmd) > 0 {
		cmd = cfg.Cmd
	}
	args := append(append([]string{}, entry...), cmd...)
	if len(args) == 0 {
		return nil, errdefs.InvalidParameter(errors.New("no command specified"))
	}
	return args, nil
}

// MergeEnv is the image's environment overridden by the container's.
func MergeEnv(img, ctr []string) []string {
	var out []string
	idx := map[string]int{}
	for _, list := range [][]string{img, ctr} {
		for _, kv := range list {
			k, _, _ := strings.Cut(kv, "=")
			if i, ok := idx[k]; ok {
				out[i] = kv
				continue
			}
			idx[k] = len(out)
			out = append(out, kv)
		}
	}
	if _, ok := idx["PATH"]; !ok {
		out = append([]string{defaultPath}, out...)
	}
	return out
}

// openInRoot opens a regular file of the container's root filesystem,
// resolving symlinks inside it (RESOLVE_IN_ROOT) and reading the inode so
// found: an image's /etc/passwd cannot point at the host's, nor can a
// running container swap one in between a check and the open, nor have a
// FIFO block the daemon.
func openInRoot(root, path string) (io.ReadCloser, error) {
	h, err := pathrs.OpenInRoot(root, path)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	f, err := pathrs.Reopen(h, unix.O_RDONLY)
	if err != nil {
		return nil, err // not a nil *os.File in a non-nil interface
	}
	return f, nil
}

// ResolveUser turns "name", "uid", "name:group", "uid:gid" into IDs with
// the image's /etc/passwd and /etc/group, adding the user's supplementary
// groups and any --group-add.
func ResolveUser(rootfs, spec string, groupAdd []string) (specs.User, error) {
	if rootfs == "" {
		return specs.User{}, nil // validating at create: users are resolved at start
	}
	passwd, _ := openInRoot(rootfs, "/etc/passwd")
	group, _ := openInRoot(rootfs, "/etc/group")
	defer func() {
		for _, f := range []io.ReadCloser{passwd, group} {
			if f != nil {
				f.Close()
			}
		}
	}()
	var pr, gr io.Reader
	if passwd != nil {
		pr = passwd
	}
	if group != nil {
		gr = group
	}
	eu, err := user.GetExecUser(spec, &user.ExecUser{Uid: 0, Gid: 0, Home: "/"}, pr, gr)
	if err != nil {
		return specs.User{}, errdefs.InvalidParameter(fmt.Errorf("unable to find user %s: %w", spec, err))
	}
	u := specs.User{UID: uint32(eu.Uid), GID: uint32(eu.Gid)}
	for _, g := range eu.Sgids {
		u.AdditionalGids = append(u.AdditionalGids, uint32(g))
	}
	if len(groupAdd) > 0 {
		var gr2 io.Reader
		if g, err := openInRoot(rootfs, "/etc/group"); err == nil {
			defer g.Close()
			gr2 = g
		}
		gids, err := user.GetAdditionalGroups(groupAdd, gr2)
		if err != nil {
			return specs.User{}, errdefs.InvalidParameter(fmt.Errorf("unable to find groups %v: %w", groupAdd, err))
		}
		for _, g := range gids {
			u.AdditionalGids = append(u.AdditionalGids, uint32(g))
		}
	}
	return u, nil
}

// Spec builds the OCI runtime spec of a container.
func Spec(in SpecInput) (*specs.Spec, error) {
	cfg, host := in.Config, in.Host
	if host == nil {
		host = &containertypes.HostConfig{}
	}
	args, err := ResolveCommand(cfg, in.Image)
	if err != nil {
		return nil, err
	}
	userSpec := cfg.User
	if userSpec == "" {
		userSpec = in.Image.User
	}
	u, err := ResolveUser(in.Rootfs, userSpec, host.GroupAdd)
	if err != nil {
		return nil, err
	}
	cwd := cfg.WorkingDir
	if cwd == "" {
		cwd = in.Image.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	if !filepath.IsAbs(cwd) {
		return nil, errdefs.InvalidParameter(fmt.Errorf("the working directory '%s' is invalid, it needs to be an absolute path", cwd))
	}
	hostname := defaultHostname(cfg, host, in.ID)

	s := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: in.Rootfs, Readonly: host.ReadonlyRootfs},
		Process: &specs.Process{
			Terminal:        cfg.Tty,
			Args:            args,
			Env:             MergeEnv(in.Image.Env, cfg.Env),
			Cwd:             filepath.Clean(cwd),
			User:            u,
			NoNewPrivileges: false,
			OOMScoreAdj:     &host.OomScoreAdj,
		},
		Hostname:    hostname,
		Domainname:  cfg.Domainname,
		Annotations: host.Annotations,
		Linux: &specs.Linux{
			Sysctl:        host.Sysctls,
			MaskedPaths:   defaultMaskedPaths,
			ReadonlyPaths: defaultReadonlyPaths,
			Resources:     &specs.LinuxResources{},
		},
	}
	if host.Umask != nil {
		s.Process.User.Umask = host.Umask
	}
	if cfg.Tty && host.ConsoleSize[0] > 0 && host.ConsoleSize[1] > 0 {
		// The terminal's size from the start: the runtime sets it before
		// the command runs, which reads it at once (the client's resize
		// comes after).
		s.Process.ConsoleSize = &specs.Box{Height: min(host.ConsoleSize[0], 0xffff), Width: min(host.ConsoleSize[1], 0xffff)}
	}
	if hostname != "" && cfg.Tty {
		s.Process.Env = append(s.Process.Env, "TERM=xterm")
	}
	if hostname != "" {
		s.Process.Env = appendIfMissing(s.Process.Env, "HOSTNAME="+hostname)
	}
	if err := setNamespaces(s, host, in); err != nil {
		return nil, err
	}
	if err := setSecurity(s, host, in); err != nil {
		return nil, err
	}
	if err := setMounts(s, cfg, host, in); err != nil {
		return nil, err
	}
	if err := setResources(s, host); err != nil {
		return nil, err
	}
	if host.Init != nil && *host.Init {
		// The init runs the command as its child: "docker-init -- CMD".
		s.Process.Args = append([]string{InitDest, "--"}, s.Process.Args...)
		s.Mounts = append(s.Mounts, specs.Mount{Destination: InitDest, Type: "bind", Source: in.InitPath,
			Options: []string{"bind", "ro", "nosuid", "nodev"}})
	}
	if err := setDevices(s, host); err != nil {
		return nil, err
	}
	for _, ul := range host.Ulimits {
		s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{
			Type: "RLIMIT_" + strings.ToUpper(ul.Name), Hard: uint64(ul.Hard), Soft: uint64(ul.Soft)})
	}
	return s, nil
}

// defaultHostname is the container's host name: the one asked for, else
// on the host's network the host's (as Docker), else the ID's first 12
// characters; none with --uts=host.
func defaultHostname(cfg *containertypes.Config, host *containertypes.HostConfig, id string) string {
	switch {
	case host.UTSMode.IsHost():
		return ""
	case cfg.Hostname != "":
		return cfg.Hostname
	case host.NetworkMode.IsHost():
		h, _ := os.Hostname()
		return h
	}
	return id[:min(12, len(id))]
}

func appendIfMissing(env []string, kv string) []string {
	k, _, _ := strings.Cut(kv, "=")
	for _, e := range env {
		if strings.HasPrefix(e, k+"=") {
			return env
		}
	}
	return append(env, kv)
}

func setNamespaces(s *specs.Spec, host *containertypes.HostConfig, in SpecInput) error {
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	// container:NAME joins the other one's (a path), else a new one.
	if !host.PidMode.IsHost() {
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: in.PidnsPath})
	}
	if !host.IpcMode.IsHost() {
		ns = append(ns, specs.LinuxNamespace{Type: specs.IPCNamespace, Path: in.IpcnsPath})
	}
	// As Docker: a UTS namespace of its own unless --uts=host, also on the
	// host's network (balena's device agent names its host-network
	// services after the device).
	if !host.UTSMode.IsHost() {
		ns = append(ns, specs.LinuxNamespace{Type: specs.UTSNamespace})
	}
	if !host.NetworkMode.IsHost() || in.Config.NetworkDisabled {
		// A bridged container joins the namespace its network sandbox
		// made (NetnsPath), container:NAME the other one's; at create,
		// and for none, a new empty one.
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: in.NetnsPath})
	}
	if host.CgroupnsMode.IsPrivate() {
		ns = append(ns, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	if host.UsernsMode != "" && host.UsernsMode != "host" {
		return errdefs.NotImplemented(fmt.Errorf("user namespace mode %q is not implemented", host.UsernsMode))
	}
	s.Linux.Namespaces = ns
	return nil
}

func normCap(c string) string {
	c = strings.ToUpper(c)
	if c != "ALL" && !strings.HasPrefix(c, "CAP_") {
		c = "CAP_" + c
	}
	return c
}

func setSecurity(s *specs.Spec, host *containertypes.HostConfig, in SpecInput) error {
	caps := map[string]bool{}
	known := map[string]bool{}
	for _, c := range allCaps {
		known[c] = true
	}
	base := defaultCaps
	if host.Privileged {
		base = grantableCaps()
	}
	for _, c := range base {
		caps[c] = true
	}
	for _, c := range host.CapDrop {
		c = normCap(c)
		if c == "CAP_ALL" || c == "ALL" {
			clear(caps)
			continue
		}
		if !known[c] {
			return errdefs.InvalidParameter(fmt.Errorf("invalid capability to drop: %q", c))
		}
		delete(caps, c)
	}
	for _, c := range host.CapAdd {
		c = normCap(c)
		if c == "CAP_ALL" || c == "ALL" {
			for _, a := range grantableCaps() {
				caps[a] = true
			}
			continue
		}
		if !known[c] {
			return errdefs.InvalidParameter(fmt.Errorf("invalid capability to add: %q", c))
		}
		caps[c] = true
	}
	list := make([]string, 0, len(caps))
	for c := range caps {
		list = append(list, c)
	}
	sort.Strings(list)
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: list, Effective: list, Permitted: list}
	if host.Privileged {
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
	}
	if host.MaskedPaths != nil {
		s.Linux.MaskedPaths = host.MaskedPaths
	}
	if host.ReadonlyPaths != nil {
		s.Linux.ReadonlyPaths = host.ReadonlyPaths
	}
	var seccompOpt string
	for _, opt := range host.SecurityOpt {
		k, v, _ := strings.Cut(opt, "=")
		if k == opt && strings.Contains(opt, ":") {
			k, v, _ = strings.Cut(opt, ":") // the old "seccomp:unconfined" form
		}
		switch k {
		case "no-new-privileges":
			s.Process.NoNewPrivileges = v == "" || v == "true"
		case "seccomp":
			if v == "" {
				return errdefs.InvalidParameter(fmt.Errorf("invalid --security-opt: %q: seccomp needs a profile, \"unconfined\" or \"builtin\"", opt))
			}
			seccompOpt = v
		case "apparmor", "label":
			// Neither AppArmor nor SELinux is part of balena-engine; accepted
			// and ignored as Docker does on hosts without them.
		default:
			return errdefs.InvalidParameter(fmt.Errorf("invalid --security-opt: %q", opt))
		}
	}
	var err error
	s.Linux.Seccomp, err = seccompFor(s, host.Privileged, seccompOpt, in.SeccompProfile, in.NoSeccomp)
	return err
}
