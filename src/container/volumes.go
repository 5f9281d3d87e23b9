package container

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/balena-os/balena-engine/src/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
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
		if m.VolumeOptions != nil && m.VolumeOptions.Subpath != "" {
			// Not ignored: a bind of a path inside a volume that a running
			// container can change needs the mount made from a handle,
			// which the runtime does not do yet.
			return nil, nil, errdefs.NotImplemented(fmt.Errorf("volume-subpath (--mount type=volume,volume-subpath=%s) is not implemented yet", m.VolumeOptions.Subpath))
		}
		vm := VolumeMount{Name: m.Source, Destination: filepath.Clean(m.Target), ReadOnly: m.ReadOnly, Anonymous: m.Source == ""}
		if o := m.VolumeOptions; o != nil {
			vm.NoCopy, vm.Labels = o.NoCopy, o.Labels
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
func volumeSpecMounts(vols []VolumeMount, mountpoint func(name string) string) []specs.Mount {
	var out []specs.Mount
	for _, v := range vols {
		opts := []string{"rbind", "rprivate"}
		if v.ReadOnly {
			ro, _ := readOnly(false, false) // as Docker's, whatever the client's version
			opts = append(opts, ro)
		}
		out = append(out, specs.Mount{Destination: v.Destination, Type: "bind", Source: mountpoint(v.Name), Options: opts})
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
