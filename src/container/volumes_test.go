package container

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/balena-os/balena-engine/src/volume"

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

// A run's volumes are told of as Docker's mount and unmount events, with
// its attributes: the container, the driver; at mount the destination,
// read/write and propagation (empty: Docker sets one on binds only).
func TestVolumeEvents(t *testing.T) {
	var got []string
	m := &Manager{vols: &volume.Store{Notify: func(action, name string, attrs map[string]string) {
		got = append(got, fmt.Sprintf("%s %s %v", action, name, attrs))
	}}}
	c := &Container{ID: "abc", Volumes: []VolumeMount{{Name: "data", Destination: "/data"}, {Name: "ro", Destination: "/ro", ReadOnly: true}}}
	m.volumeEvents(c, "mount")
	m.volumeEvents(c, "unmount")
	want := []string{
		"mount data map[container:abc destination:/data driver:local propagation: read/write:true]",
		"mount ro map[container:abc destination:/ro driver:local propagation: read/write:false]",
		"unmount data map[container:abc driver:local]",
		"unmount ro map[container:abc driver:local]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
	(&Manager{}).volumeEvents(c, "mount") // no store: nothing to tell
}
