//go:build e2e

package e2e

// Deltas through the docker CLI (issue #11): made by our CLI's "image
// delta" in both formats, pushed to and pulled from a real
// registry with the base present and absent, saved and loaded, and run.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/balena-os/balena-engine/src/internal/testimage"
	"github.com/balena-os/balena-engine/src/internal/testregistry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestE2EDeltaWithDockerCLI(t *testing.T) {
	reg := testregistry.Start(t)
	for _, format := range []string{"native", "balena"} {
		t.Run(format, func(t *testing.T) { testDeltaWithDockerCLI(t, reg, format) })
	}
}

func testDeltaWithDockerCLI(t *testing.T, reg *testregistry.Registry, format string) {
	bin := engineBin(t)
	bb := busyboxImage(t)
	// v1 and v2 share busybox; their app layers differ by an edit.
	app := bytes.Repeat([]byte("application code, version "), 40000)
	v2app := append(append([]byte{}, app...), []byte("two")...)
	v1 := testimage.New(hostPlatform, ocispec.ImageConfig{Cmd: []string{"cat", "/app/version"}},
		append(bb.Layers, testimage.NewLayer(testimage.File{Name: "app/", Type: '5'},
			testimage.File{Name: "app/code", Body: app}, testimage.File{Name: "app/version", Body: []byte("one\n")}))...)
	v2 := testimage.New(hostPlatform, ocispec.ImageConfig{Cmd: []string{"cat", "/app/version"}},
		append(bb.Layers, testimage.NewLayer(testimage.File{Name: "app/", Type: '5'},
			testimage.File{Name: "app/code", Body: v2app}, testimage.File{Name: "app/version", Body: []byte("two\n")}))...)
	ref1 := pushImage(t, reg, "fleet/app:v1", v1)
	ref2 := pushImage(t, reg, "fleet/app:v2", v2)
	deltaRef := reg.Host + "/fleet/app:delta-v1-v2-" + format
	p := newPaths(t)
	startDaemon(t, exec.Command(bin, p.daemonArgs()...), p.sock)
	env := []string{"DOCKER_HOST=unix://" + p.sock, "DOCKER_CONFIG=" + p.dir}
	docker := dockerOK(t, env)

	docker("pull", ref1)
	docker("pull", ref2)
	r := ours(t, p, "image", "delta", "-t", deltaRef, "--format", format, ref1, ref2)
	if r.code != 0 || !strings.Contains(r.stdout, "Created delta: sha256:") || !strings.Contains(r.stdout, "Successfully tagged "+deltaRef) {
		t.Fatalf("balena-engine image delta: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	docker("push", deltaRef)
	archive := filepath.Join(p.dir, "delta.tar")
	docker("save", "-o", archive, deltaRef)

	// The device: v1 only.
	docker("rmi", ref2, deltaRef)
	r = run(t, env, "docker", "pull", deltaRef)
	if r.code != 0 || !strings.Contains(r.stdout, "Downloaded newer image for "+deltaRef) {
		t.Fatalf("docker pull of the delta: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if id := strings.TrimSpace(docker("image", "inspect", "--format", "{{.Id}}", deltaRef)); id != v2.ConfigDesc.Digest.String() {
		t.Fatalf("the pulled delta is %s, want v2's ID %s", id, v2.ConfigDesc.Digest)
	}
	if out := docker("run", "--rm", "--network", "none", deltaRef); out != "two" {
		t.Errorf("container of the rebuilt image printed %q", out)
	}
	// The same through load.
	docker("rmi", deltaRef)
	if r := run(t, env, "docker", "load", "-i", archive); r.code != 0 || !strings.Contains(r.stdout, "Loaded image: "+deltaRef) {
		t.Fatalf("docker load of the delta: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if id := strings.TrimSpace(docker("image", "inspect", "--format", "{{.Id}}", deltaRef)); id != v2.ConfigDesc.Digest.String() {
		t.Fatalf("the loaded delta is %s, want v2's ID %s", id, v2.ConfigDesc.Digest)
	}

	// Without the base: an error naming it, nothing pulled.
	docker("rmi", deltaRef, ref1)
	r = run(t, env, "docker", "pull", deltaRef)
	if r.code == 0 || !strings.Contains(r.stderr, "delta base image "+v1.ConfigDesc.Digest.String()+" not found") {
		t.Errorf("pull of a delta without its base: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if out := docker("images", "-q"); out != "" {
		t.Errorf("images after the failed pull: %q", out)
	}
	if r := ours(t, p, "image", "delta", ref1, ref2); r.code == 0 || !strings.Contains(r.stderr, "No such image") {
		t.Errorf("delta of missing images: %d %q", r.code, r.stderr)
	}
}

// Applying a delta costs the daemon a bounded amount of memory, whatever
// the layer's size: a 48 MiB file edited every few MiB (so the native
// format patches every chunk) is rebuilt with at most 32 MiB above the
// daemon's resident size before the pull.
func TestE2EDeltaApplyMemory(t *testing.T) {
	reg := testregistry.Start(t)
	bb := busyboxImage(t)
	rng := rand.New(rand.NewPCG(5, 6))
	big := make([]byte, 48<<20)
	for i := range big {
		big[i] = byte(rng.IntN(32)) // compressible, as real files
	}
	edited := append([]byte{}, big...)
	for off := 1 << 20; off < len(edited); off += 3 << 20 {
		copy(edited[off:], fmt.Sprintf("an edit at %d", off))
	}
	mk := func(body []byte) testimage.Image {
		return testimage.New(hostPlatform, ocispec.ImageConfig{Cmd: []string{"true"}},
			append(bb.Layers, testimage.NewLayer(testimage.File{Name: "data/big", Body: body}))...)
	}
	v1, v2 := mk(big), mk(edited)
	ref1 := pushImage(t, reg, "mem/app:v1", v1)
	ref2 := pushImage(t, reg, "mem/app:v2", v2)
	p := newPaths(t)
	d := startDaemon(t, exec.Command(engineBin(t), p.daemonArgs()...), p.sock)
	env := []string{"DOCKER_HOST=unix://" + p.sock, "DOCKER_CONFIG=" + p.dir}
	docker := dockerOK(t, env)
	docker("pull", ref1)
	docker("pull", ref2)
	formats := []string{"native", "balena"}
	for _, format := range formats {
		deltaRef := reg.Host + "/mem/app:delta-" + format
		start := time.Now()
		if r := ours(t, p, "image", "delta", "--format", format, "-t", deltaRef, ref1, ref2); r.code != 0 {
			t.Fatalf("image delta: %s %s", r.stdout, r.stderr)
		}
		t.Logf("%s delta of a 48 MiB layer made in %s", format, time.Since(start).Round(time.Millisecond))
		docker("push", deltaRef)
		docker("rmi", deltaRef)
	}
	docker("rmi", ref2)
	for _, format := range formats {
		// A daemon that has not made a delta nor applied one: its heap
		// is a device's.
		if err := d.stop(t); err != nil {
			t.Fatal(err)
		}
		d = startDaemon(t, exec.Command(engineBin(t), p.daemonArgs()...), p.sock)
		deltaRef := reg.Host + "/mem/app:delta-" + format
		before := rssWindow(t, d.cmd.Process.Pid)
		docker("pull", deltaRef)
		peak := procStatusKiB(t, d.cmd.Process.Pid, "VmHWM")
		t.Logf("%s delta pull of a 48 MiB layer: RSS %d KiB before, peak %d KiB (+%d KiB)", format, before, peak, peak-before)
		if peak-before > 32<<10 {
			t.Errorf("%s delta pull: peak RSS %d KiB above the %d KiB before: more than 32 MiB", format, peak-before, before)
		}
		if id := docker("image", "inspect", "--format", "{{.Id}}", deltaRef); id != v2.ConfigDesc.Digest.String() {
			t.Errorf("%s delta gave %s", format, id)
		}
		docker("rmi", deltaRef)
	}
}
