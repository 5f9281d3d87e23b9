package container

import (
	"reflect"
	"strings"
	"testing"

	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

// Inspect's Mounts lists binds beside volumes (balena's device agent and
// Compose compare them with what they asked for).
func TestBindMountPoints(t *testing.T) {
	host := &containertypes.HostConfig{
		Binds: []string{"/srv/data:/data", "/etc/x:/x:ro,rshared", "named:/vol", "/anon"},
		Mounts: []mount.Mount{
			{Type: mount.TypeBind, Source: "/opt", Target: "/opt", ReadOnly: true, BindOptions: &mount.BindOptions{Propagation: mount.PropagationSlave}},
			{Type: mount.TypeTmpfs, Target: "/run"},
			{Type: mount.TypeVolume, Source: "v2", Target: "/v2"},
		},
	}
	got := BindMountPoints(host)
	want := []containertypes.MountPoint{
		{Type: mount.TypeBind, Source: "/srv/data", Destination: "/data", RW: true, Propagation: mount.PropagationRPrivate},
		{Type: mount.TypeBind, Source: "/etc/x", Destination: "/x", Mode: "ro,rshared", RW: false, Propagation: mount.PropagationRShared},
		{Type: mount.TypeBind, Source: "/opt", Destination: "/opt", RW: false, Propagation: mount.PropagationSlave},
		{Type: mount.TypeTmpfs, Destination: "/run", RW: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

// A volume's subpath is refused by name rather than ignored (the whole
// volume would be mounted instead).
func TestVolumeSubpathRefused(t *testing.T) {
	host := &containertypes.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: "v", Target: "/v",
		VolumeOptions: &mount.VolumeOptions{Subpath: "sub"}}}}
	if _, _, err := splitVolumes(host, nil); err == nil || !strings.Contains(err.Error(), "volume-subpath") {
		t.Errorf("subpath: %v", err)
	}
}
