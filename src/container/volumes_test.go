package container

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/balena-os/balena-engine/src/errdefs"
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

// --mount's volume-subpath: relative, in a named volume, else Docker's
// 400s at create.
func TestSplitVolumesSubpath(t *testing.T) {
	for sub, want := range map[string]string{
		"a/b":   "",
		"../x":  "subpath must be a relative path within the volume",
		"/etc":  "subpath must be a relative path within the volume",
		"anon:": "must not set Subpath when using anonymous volumes",
	} {
		src := "v"
		if sub == "anon:" {
			src, sub = "", "x"
		}
		host := &containertypes.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: src, Target: "/t", VolumeOptions: &mount.VolumeOptions{Subpath: sub}}}}
		_, vols, err := splitVolumes(host, nil)
		switch {
		case want == "" && (err != nil || len(vols) != 1 || vols[0].Subpath != sub):
			t.Errorf("%s: %v %+v", sub, err, vols)
		case want != "" && (err == nil || err.Error() != `invalid mount config for type "volume": `+want || errdefs.KindOf(err) != errdefs.KindInvalidParameter):
			t.Errorf("%s: %v, want %q", sub, err, want)
		}
	}
}

// A subpath is bound from inside the volume: a file or a directory, by a
// symlink that stays inside; a missing one and one whose symlinks lead
// out are Docker's errors, and nothing is left mounted.
func TestBindSubpath(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("mounts need root")
	}
	vol, dir := t.TempDir(), filepath.Join(t.TempDir(), "subpaths")
	os.MkdirAll(filepath.Join(vol, "a/b"), 0o755)
	os.WriteFile(filepath.Join(vol, "a/b/f"), []byte("x"), 0o644)
	os.Symlink("a/b", filepath.Join(vol, "in"))
	os.Symlink("../../..", filepath.Join(vol, "out"))
	os.Mkdir(dir, 0o700)
	for i, tc := range []struct {
		sub, file, want string
		kind            errdefs.Kind
	}{
		{"a/b", "f", "", 0},
		{"in", "f", "", 0},
		{"a/b/f", "", "", 0},
		{"missing", "", "cannot access path " + filepath.Join(vol, "missing") + ": lstat", errdefs.KindNotFound},
		{"out", "", "path concatenation escapes the base directory, base: " + vol + ", subpath: out", errdefs.KindInvalidParameter},
	} {
		dst := filepath.Join(dir, strconv.Itoa(i))
		err := bindSubpath(vol, tc.sub, dst)
		if tc.want != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) || errdefs.KindOf(err) != tc.kind {
				t.Errorf("%s: %v, want %q", tc.sub, err, tc.want)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.sub, err)
		}
		if b, err := os.ReadFile(filepath.Join(dst, tc.file)); err != nil || string(b) != "x" {
			t.Errorf("%s: read %q %v through the bind", tc.sub, b, err)
		}
	}
	if !unbindSubpaths(dir) {
		t.Fatal("subpaths still mounted")
	}
	if _, err := os.Stat(filepath.Join(vol, "a/b/f")); err != nil {
		t.Errorf("the volume's file after the unbind: %v", err)
	}
}
