package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/balena-os/balena-engine/src/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const defaultShmSize = 64 << 20

func setMounts(s *specs.Spec, cfg *containertypes.Config, host *containertypes.HostConfig, in SpecInput) error {
	shm := host.ShmSize
	if shm == 0 {
		shm = defaultShmSize
	}
	sysOpts := []string{"nosuid", "noexec", "nodev", "ro"}
	cgroupOpts := []string{"ro", "nosuid", "noexec", "nodev"}
	if host.Privileged {
		sysOpts = []string{"nosuid", "noexec", "nodev"}
	}
	ms := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: cgroupOpts},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
	}
	switch {
	case host.IpcMode.IsNone():
		// As Docker: no /dev/shm at all.
	case in.ShmPath != "":
		// A shareable IPC namespace's /dev/shm is a tmpfs on the host that
		// the containers sharing the namespace bind (as Docker's).
		ms = append(ms, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: in.ShmPath, Options: []string{"rbind", "nosuid", "noexec", "nodev", "rprivate"}})
	default:
		ms = append(ms, specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", fmt.Sprintf("size=%d", shm)}})
	}
	user := map[string]specs.Mount{} // destination -> the user's mount, which wins
	add := func(m specs.Mount) error {
		if !filepath.IsAbs(m.Destination) {
			return errdefs.InvalidParameter(fmt.Errorf("invalid mount config: the mount destination %q is not an absolute path", m.Destination))
		}
		m.Destination = filepath.Clean(m.Destination)
		if m.Destination == "/" {
			return errdefs.InvalidParameter(errors.New("invalid mount config: the mount destination cannot be /"))
		}
		if _, dup := user[m.Destination]; dup {
			return errdefs.InvalidParameter(fmt.Errorf("duplicate mount point: %s", m.Destination))
		}
		user[m.Destination] = m
		return nil
	}
	for _, b := range host.Binds {
		m, err := parseBind(b, in.ReadOnlyNonRecursive)
		if err != nil {
			return err
		}
		if err := add(m); err != nil {
			return err
		}
	}
	for _, mt := range host.Mounts {
		m, err := fromMount(mt, in.ReadOnlyNonRecursive)
		if err != nil {
			return err
		}
		if err := add(m); err != nil {
			return err
		}
	}
	for _, m := range in.Volumes {
		if err := add(m); err != nil {
			return err
		}
	}
	for dst, opts := range host.Tmpfs {
		o := []string{"nosuid", "nodev", "noexec"}
		if opts != "" {
			o = append(o, strings.Split(opts, ",")...)
		}
		if err := add(specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: o}); err != nil {
			return err
		}
	}
	for dst, src := range in.EtcFiles {
		if _, taken := user[dst]; taken {
			continue // a user's bind of /etc/hosts wins
		}
		ms = append(ms, specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"rbind", "rprivate"}})
	}
	// The user's mounts replace defaults at the same place.
	var out []specs.Mount
	for _, m := range ms {
		if _, taken := user[m.Destination]; !taken {
			out = append(out, m)
		}
	}
	dsts := make([]string, 0, len(user))
	for d := range user {
		dsts = append(dsts, d)
	}
	sort.Strings(dsts)
	for _, d := range dsts {
		out = append(out, user[d])
	}
	// Parents before children.
	sort.SliceStable(out, func(i, j int) bool {
		return strings.Count(out[i].Destination, "/") < strings.Count(out[j].Destination, "/")
	})
	s.Mounts = out
	return nil
}

// rroSupported says whether the kernel can make a mount read-only with
// every mount below it (mount_setattr, Linux 5.12), which runc's "rro"
// needs; nil if it can. A call without a file descriptor is refused with
// EBADF where the system call exists.
var rroSupported = sync.OnceValue(func() error {
	if err := unix.MountSetattr(-1, "", unix.AT_EMPTY_PATH, &unix.MountAttr{}); errors.Is(err, unix.ENOSYS) {
		return fmt.Errorf("rro is not supported: failed to call mount_setattr: %w (kernel is older than 5.12?)", err)
	}
	return nil
})

// readOnly is the option that makes a bind read-only, as Docker's from API
// 1.44 on: with every mount below it ("rro") where the kernel can, else at
// its top only ("ro"). nonRecursive asks for the top only (Docker's
// default for older clients), force for all or an error.
func readOnly(nonRecursive, force bool) (string, error) {
	if nonRecursive {
		if force {
			return "", errdefs.InvalidParameter(errors.New("mount options conflict: ReadOnlyNonRecursive && ReadOnlyForceRecursive"))
		}
		return "ro", nil
	}
	if err := rroSupported(); err != nil {
		if force {
			return "", errdefs.InvalidParameter(err)
		}
		return "ro", nil
	}
	return "rro", nil
}

// parseBind reads -v SRC:DST[:OPTS]. A SRC that is not an absolute path
// names a volume, which needs the volume store (not implemented yet).
// roNonRecursive makes ":ro" read-only at the bind's top only.
func parseBind(b string, roNonRecursive bool) (specs.Mount, error) {
	parts := strings.Split(b, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return specs.Mount{}, errdefs.InvalidParameter(fmt.Errorf("invalid volume specification: '%s'", b))
	}
	src, dst := parts[0], parts[1]
	if !filepath.IsAbs(src) {
		// Volumes are resolved to mounts by the manager (splitVolumes)
		// before a spec is made.
		return specs.Mount{}, errdefs.InvalidParameter(fmt.Errorf("invalid volume specification: '%s': volume %q was not resolved", b, src))
	}
	opts := []string{"rbind"}
	prop := "rprivate"
	if len(parts) == 3 {
		for _, o := range strings.Split(parts[2], ",") {
			switch o {
			case "ro":
				ro, _ := readOnly(roNonRecursive, false)
				opts = append(opts, ro)
			case "rw":
				opts = append(opts, o)
			case "z", "Z", "nocopy", "consistent", "cached", "delegated":
			case "shared", "rshared", "slave", "rslave", "private", "rprivate":
				prop = o
			default:
				return specs.Mount{}, errdefs.InvalidParameter(fmt.Errorf("invalid mode: %s", o))
			}
		}
	}
	if _, err := os.Stat(src); err != nil {
		// Docker creates a missing -v source as a directory.
		if !os.IsNotExist(err) {
			return specs.Mount{}, err
		}
		if err := os.MkdirAll(src, 0o755); err != nil {
			return specs.Mount{}, fmt.Errorf("create bind source %s: %w", src, err)
		}
	}
	return specs.Mount{Destination: dst, Type: "bind", Source: filepath.Clean(src), Options: append(opts, prop)}, nil
}

// fromMount reads --mount type=bind and type=tmpfs. roNonRecursive makes
// a read-only bind read-only at its top only, unless it asks otherwise.
func fromMount(m mount.Mount, roNonRecursive bool) (specs.Mount, error) {
	switch m.Type {
	case mount.TypeBind:
		bo := m.BindOptions
		if bo == nil {
			bo = &mount.BindOptions{}
		}
		if !filepath.IsAbs(m.Source) {
			return specs.Mount{}, errdefs.InvalidParameter(fmt.Errorf("invalid mount config for type \"bind\": invalid mount path: '%s' mount path must be absolute", m.Source))
		}
		if _, err := os.Stat(m.Source); err != nil {
			if !bo.CreateMountpoint || !os.IsNotExist(err) {
				return specs.Mount{}, errdefs.InvalidParameter(fmt.Errorf("invalid mount config for type \"bind\": bind source path does not exist: %s", m.Source))
			}
			// bind-create-src: made a directory, as Docker makes it.
			if err := os.MkdirAll(m.Source, 0o755); err != nil {
				return specs.Mount{}, fmt.Errorf("create bind source %s: %w", m.Source, err)
			}
		}
		mode := "rbind"
		if bo.NonRecursive {
			mode = "bind" // bind-recursive=disabled: without the mounts below the source
		}
		opts := []string{mode, "rprivate"}
		if bo.Propagation != "" {
			opts[1] = string(bo.Propagation)
		}
		switch {
		case m.ReadOnly:
			ro, err := readOnly(bo.ReadOnlyNonRecursive || (roNonRecursive && !bo.ReadOnlyForceRecursive), bo.ReadOnlyForceRecursive)
			if err != nil {
				return specs.Mount{}, err
			}
			opts = append(opts, ro)
		case bo.ReadOnlyNonRecursive:
			return specs.Mount{}, errdefs.InvalidParameter(errors.New("options conflict: Writable && ReadOnlyNonRecursive"))
		case bo.ReadOnlyForceRecursive:
			return specs.Mount{}, errdefs.InvalidParameter(errors.New("options conflict: Writable && ReadOnlyForceRecursive"))
		}
		return specs.Mount{Destination: m.Target, Type: "bind", Source: m.Source, Options: opts}, nil
	case mount.TypeTmpfs:
		opts := []string{"nosuid", "nodev", "noexec"}
		if m.TmpfsOptions != nil {
			if m.TmpfsOptions.SizeBytes > 0 {
				opts = append(opts, fmt.Sprintf("size=%d", m.TmpfsOptions.SizeBytes))
			}
			if m.TmpfsOptions.Mode != 0 {
				opts = append(opts, fmt.Sprintf("mode=%o", m.TmpfsOptions.Mode.Perm()))
			}
		}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		if m.TmpfsOptions != nil {
			// Docker takes these two only; "exec" undoes the default
			// "noexec" (the runtime reads options in order).
			for _, o := range m.TmpfsOptions.Options {
				if len(o) < 1 || len(o) > 2 {
					return specs.Mount{}, errdefs.InvalidParameter(errors.New(`invalid mount config for type "tmpfs": invalid option array length`))
				}
				if o[0] != "exec" && o[0] != "noexec" {
					return specs.Mount{}, errdefs.InvalidParameter(fmt.Errorf(`invalid mount config for type "tmpfs": invalid option: %s`, o[0]))
				}
				opts = append(opts, strings.Join(o, "="))
			}
		}
		return specs.Mount{Destination: m.Target, Type: "tmpfs", Source: "tmpfs", Options: opts}, nil
	case mount.TypeVolume:
		return specs.Mount{}, errdefs.InvalidParameter(errors.New("invalid mount config: volume mounts are resolved before the spec is made"))
	}
	return specs.Mount{}, errdefs.InvalidParameter(fmt.Errorf("invalid mount config: mount type %q is not supported", m.Type))
}
