package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/balena-os/balena-engine/src/errdefs"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// splitVolumes takes the volume entries out of a host config (named and
// anonymous "-v", --mount type=volume) and adds the image's VOLUMEs not
// covered by another mount. It returns the config without them and the
// volumes to mount; names are still to be created.
func splitVolumes(host *containertypes.HostConfig, imageVolumes map[string]struct{}) (*containertypes.HostConfig, []VolumeMount, error) {
	h := *host
	h.Binds, h.Mounts = nil, nil
	var vols []VolumeMount
	taken := map[string]bool{}
	for _, b := range host.Binds {
		parts := strings.Split(b, ":")
		switch {
		case len(parts) == 1 && filepath.IsAbs(parts[0]):
			vols = append(vols, VolumeMount{Destination: filepath.Clean(parts[0]), Anonymous: true})
		case len(parts) >= 2 && parts[0] != "" && !filepath.IsAbs(parts[0]) && !strings.HasPrefix(parts[0], "."):
			vm := VolumeMount{Name: parts[0], Destination: filepath.Clean(parts[1])}
			if len(parts) == 3 {
				for _, o := range strings.Split(parts[2], ",") {
					switch o {
					case "ro":
						vm.ReadOnly = true
					case "rw", "z", "Z":
					case "nocopy":
						vm.NoCopy = true
					default:
						return nil, nil, errdefs.InvalidParameter(fmt.Errorf("invalid mode: %s", o))
					}
				}
			}
			if !filepath.IsAbs(parts[1]) {
				return nil, nil, errdefs.InvalidParameter(fmt.Errorf("invalid volume specification: '%s': the destination must be an absolute path", b))
			}
			vols = append(vols, vm)
		default:
			h.Binds = append(h.Binds, b)
			if len(parts) >= 2 {
				taken[filepath.Clean(parts[1])] = true
			}
			continue
		}
		taken[vols[len(vols)-1].Destination] = true
	}
	for _, m := range host.Mounts {
		if m.Type != mount.TypeVolume {
			h.Mounts = append(h.Mounts, m)
			taken[filepath.Clean(m.Target)] = true
			continue
		}
		if !filepath.IsAbs(m.Target) {
			return nil, nil, errdefs.InvalidParameter(fmt.Errorf("invalid mount config for type \"volume\": invalid mount path: '%s' mount path must be absolute", m.Target))
		}
		if m.VolumeOptions != nil && m.VolumeOptions.DriverConfig != nil && m.VolumeOptions.DriverConfig.Name != "" && m.VolumeOptions.DriverConfig.Name != "local" {
			return nil, nil, errdefs.NotImplemented(fmt.Errorf("volume driver %q is not implemented (only local)", m.VolumeOptions.DriverConfig.Name))
		}
		vm := VolumeMount{Name: m.Source, Destination: filepath.Clean(m.Target), ReadOnly: m.ReadOnly, Anonymous: m.Source == ""}
		if o := m.VolumeOptions; o != nil {
			if o.Subpath != "" && (vm.Anonymous || !filepath.IsLocal(o.Subpath)) {
				why := "subpath must be a relative path within the volume"
				if vm.Anonymous {
					why = "must not set Subpath when using anonymous volumes"
				}
				return nil, nil, errdefs.InvalidParameter(fmt.Errorf("invalid mount config for type \"volume\": %s", why))
			}
			vm.NoCopy, vm.Labels, vm.Subpath = o.NoCopy, o.Labels, o.Subpath
			if o.DriverConfig != nil {
				vm.DriverOptions = o.DriverConfig.Options
			}
		}
		vols = append(vols, vm)
		taken[vm.Destination] = true
	}
	for d := range host.Tmpfs {
		taken[filepath.Clean(d)] = true
	}
	var imgVols []string
	for p := range imageVolumes {
		imgVols = append(imgVols, filepath.Clean(p))
	}
	sort.Strings(imgVols)
	for _, p := range imgVols {
		if !taken[p] {
			vols = append(vols, VolumeMount{Destination: p, Anonymous: true})
		}
	}
	if host.VolumeDriver != "" && host.VolumeDriver != "local" {
		return nil, nil, errdefs.NotImplemented(fmt.Errorf("volume driver %q is not implemented (only local)", host.VolumeDriver))
	}
	if len(host.VolumesFrom) > 0 {
		return nil, nil, errdefs.NotImplemented(fmt.Errorf("--volumes-from is not implemented yet"))
	}
	return &h, vols, nil
}

// volumeSpecMounts are the bind mounts of a container's volumes.
func volumeSpecMounts(vols []VolumeMount, mountpoint func(i int) string) []specs.Mount {
	var out []specs.Mount
	for i, v := range vols {
		opts := []string{"rbind", "rprivate"}
		if v.ReadOnly {
			ro, _ := readOnly(false, false) // as Docker's, whatever the client's version
			opts = append(opts, ro)
		}
		out = append(out, specs.Mount{Destination: v.Destination, Type: "bind", Source: mountpoint(i), Options: opts})
	}
	return out
}

// BindMountPoints are the container's bind and tmpfs mounts ("-v
// /host:/ctr[:mode]" and --mount type=bind|tmpfs) as inspect's Mounts
// lists them beside its volumes, in Docker's form: the mode string as
// given, RW, and the propagation (rprivate unless asked) of binds.
func BindMountPoints(host *containertypes.HostConfig) []containertypes.MountPoint {
	h, _, err := splitVolumes(host, nil)
	if err != nil {
		return nil
	}
	var out []containertypes.MountPoint
	for _, b := range h.Binds {
		parts := strings.Split(b, ":")
		if len(parts) < 2 {
			continue
		}
		mp := containertypes.MountPoint{Type: mount.TypeBind, Source: parts[0], Destination: filepath.Clean(parts[1]),
			RW: true, Propagation: mount.PropagationRPrivate}
		if len(parts) == 3 {
			mp.Mode = parts[2]
			for _, o := range strings.Split(parts[2], ",") {
				switch o {
				case "ro":
					mp.RW = false
				case "shared", "rshared", "slave", "rslave", "private", "rprivate":
					mp.Propagation = mount.Propagation(o)
				}
			}
		}
		out = append(out, mp)
	}
	for _, m := range h.Mounts {
		switch m.Type {
		case mount.TypeBind:
			mp := containertypes.MountPoint{Type: mount.TypeBind, Source: m.Source, Destination: m.Target,
				RW: !m.ReadOnly, Propagation: mount.PropagationRPrivate}
			if m.BindOptions != nil && m.BindOptions.Propagation != "" {
				mp.Propagation = m.BindOptions.Propagation
			}
			out = append(out, mp)
		case mount.TypeTmpfs:
			out = append(out, containertypes.MountPoint{Type: mount.TypeTmpfs, Destination: m.Target, RW: !m.ReadOnly})
		}
	}
	return out
}

// volumeEvents tells of a run's named and anonymous volumes, as Docker's
// "mount" (at the start, before "start") and "unmount" (at the exit,
// before "die") volume events, with Docker's attributes.
func (m *Manager) volumeEvents(c *Container, action string) {
	if m.vols == nil || m.vols.Notify == nil {
		return
	}
	for _, v := range c.Volumes {
		attrs := map[string]string{"driver": "local", "container": c.ID}
		if action == "mount" {
			// Docker sets a propagation on binds only.
			attrs["destination"], attrs["read/write"], attrs["propagation"] = v.Destination, strconv.FormatBool(!v.ReadOnly), ""
		}
		m.vols.Notify(action, v.Name, attrs)
	}
}

// bindSubpath binds a volume's subpath (--mount's volume-subpath) at dst,
// a mount point it makes, as Docker: the path, its symlinks resolved,
// must be in the volume (else Docker's errors), and the bind is made from
// a handle opened inside the volume, so that a container swapping a
// symlink in meanwhile cannot lead it out.
func bindSubpath(volPath, sub, dst string) error {
	base, err := filepath.EvalSymlinks(volPath)
	if err != nil {
		return err
	}
	full := filepath.Join(base, sub)
	res, err := filepath.EvalSymlinks(full)
	if errors.Is(err, os.ErrNotExist) {
		return errdefs.NotFound(fmt.Errorf("cannot access path %s: %w", full, err))
	} else if err != nil {
		return fmt.Errorf("error while resolving symlinks in combined path %q: %w", full, err)
	}
	rel, err := filepath.Rel(base, res)
	if err != nil || !filepath.IsLocal(rel) {
		return errdefs.InvalidParameter(fmt.Errorf("path concatenation escapes the base directory, base: %s, subpath: %s", base, sub))
	}
	h, err := pathrs.OpenInRoot(base, rel)
	if err != nil {
		return err
	}
	defer h.Close()
	if st, serr := h.Stat(); serr == nil && st.IsDir() {
		err = os.Mkdir(dst, 0o700)
	} else {
		err = os.WriteFile(dst, nil, 0o600)
	}
	if err != nil {
		return err
	}
	return unix.Mount(fmt.Sprintf("/proc/self/fd/%d", h.Fd()), dst, "", unix.MS_BIND, "")
}

// unbindSubpaths undoes bindSubpath's mounts under dir; it says whether
// they are gone (only then may the container's directory be removed:
// never the volume's files through a bind left).
func unbindSubpaths(dir string) bool {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		unix.Unmount(p, unix.MNT_DETACH)
		os.Remove(p) // not RemoveAll: a bind still there keeps its files
	}
	os.Remove(dir)
	_, err := os.Stat(dir)
	return errors.Is(err, os.ErrNotExist)
}
