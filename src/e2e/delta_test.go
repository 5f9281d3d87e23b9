//go:build e2e

package e2e

// Deltas through the docker CLI (issue #11): made by our CLI's "image
// delta" (balenaEngine's format), pushed to and pulled from a real
// registry with the base present and absent, saved and loaded, and run.

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/balena-os/balena-engine/src/internal/testimage"
	"github.com/balena-os/balena-engine/src/internal/testregistry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestE2EDeltaWithDockerCLI(t *testing.T) {
	bin := engineBin(t)
	reg := testregistry.Start(t)
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
	deltaRef := reg.Host + "/fleet/app:delta-v1-v2"
	p := newPaths(t)
	startDaemon(t, exec.Command(bin, p.daemonArgs()...), p.sock)
	env := []string{"DOCKER_HOST=unix://" + p.sock, "DOCKER_CONFIG=" + p.dir}
	docker := dockerOK(t, env)

	docker("pull", ref1)
	docker("pull", ref2)
	r := ours(t, p, "image", "delta", "-t", deltaRef, ref1, ref2)
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
