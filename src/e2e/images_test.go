//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/balena-os/balena-engine/src/client"
	"github.com/balena-os/balena-engine/src/image"
	"github.com/balena-os/balena-engine/src/internal/testimage"
	"github.com/balena-os/balena-engine/src/internal/testregistry"
	"github.com/balena-os/balena-engine/src/layer"
	"github.com/balena-os/balena-engine/src/registry"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sys/unix"
)

var hostPlatform = ocispec.Platform{OS: "linux", Architecture: platforms.DefaultSpec().Architecture}

func pushImage(t *testing.T, reg *testregistry.Registry, ref string, img testimage.Image) string {
	t.Helper()
	c, err := registry.New(registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := reference.ParseNormalizedNamed(reg.Host + "/" + ref)
	if err != nil {
		t.Fatal(err)
	}
	n = reference.TagNameOnly(n)
	if err := testimage.Push(context.Background(), c.Repository(reference.TrimNamed(n), nil), n.(reference.Tagged).Tag(), img); err != nil {
		t.Fatal(err)
	}
	return reference.FamiliarString(n)
}

func busyboxImage(t *testing.T) testimage.Image {
	img, err := testimage.Busybox(hostPlatform, "/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// bigImage has layers layers of size bytes each, poorly compressible.
func bigImage(seed uint64, layers, size int) testimage.Image {
	rng := rand.New(rand.NewPCG(seed, 7))
	var ls []testimage.Layer
	for i := 0; i < layers; i++ {
		b := make([]byte, size)
		for j := range b {
			b[j] = byte(rng.IntN(64)) // some redundancy, as real files have
		}
		ls = append(ls, testimage.NewLayer(testimage.File{Name: fmt.Sprintf("data/%d", i), Body: b}))
	}
	return testimage.New(hostPlatform, ocispec.ImageConfig{Cmd: []string{"sh"}}, ls...)
}

func TestE2EImagesWithDockerCLI(t *testing.T) {
	bin := engineBin(t)
	reg := testregistry.Start(t)
	bb := busyboxImage(t)
	ref := pushImage(t, reg, "test/busybox:1.35", bb)
	p := newPaths(t)
	startDaemon(t, exec.Command(bin, p.daemonArgs()...), p.sock)
	env := []string{"DOCKER_HOST=unix://" + p.sock, "DOCKER_CONFIG=" + p.dir}
	start := time.Now()

	r := run(t, env, "docker", "pull", ref)
	if r.code != 0 || !strings.Contains(r.stdout, "Status: Downloaded newer image for "+ref) ||
		!strings.Contains(r.stdout, "Digest: "+bb.ManifestDesc.Digest.String()) {
		t.Fatalf("docker pull: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, env, "docker", "pull", ref)
	if !strings.Contains(r.stdout, "Status: Image is up to date for "+ref) {
		t.Errorf("second pull: %s", r.stdout)
	}
	id := bb.ConfigDesc.Digest.String()
	r = run(t, env, "docker", "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", "--no-trunc")
	if want := ref + " " + id + "\n"; r.stdout != want {
		t.Errorf("docker images = %q, want %q", r.stdout, want)
	}
	r = run(t, env, "docker", "image", "inspect", ref, "--format", "{{.Id}} {{.Os}}/{{.Architecture}} {{index .RootFS.Layers 0}} {{index .RepoDigests 0}}")
	want := fmt.Sprintf("%s linux/%s %s %s/test/busybox@%s\n", id, hostPlatform.Architecture, bb.Layers[0].DiffID, reg.Host, bb.ManifestDesc.Digest)
	if r.stdout != want {
		t.Errorf("docker image inspect = %q, want %q (%s)", r.stdout, want, r.stderr)
	}
	// Our CLI sees the same.
	ours := run(t, nil, bin, "-H", "unix://"+p.sock, "inspect", "--format", "{{.Id}} {{.Os}}/{{.Architecture}} {{index .RootFS.Layers 0}} {{index .RepoDigests 0}}", ref)
	if ours.stdout != want {
		t.Errorf("balena-engine inspect = %q, want %q (%s)", ours.stdout, want, ours.stderr)
	}
	if r := run(t, env, "docker", "tag", ref, "mine/bb:v1"); r.code != 0 {
		t.Errorf("docker tag: %s", r.stderr)
	}
	r = run(t, nil, bin, "-H", "unix://"+p.sock, "images", "--format", "{{.Repository}}:{{.Tag}}")
	if r.stdout != "mine/bb:v1\n"+ref+"\n" && r.stdout != ref+"\nmine/bb:v1\n" {
		t.Errorf("balena-engine images = %q", r.stdout)
	}
	// Save and load round trip through the docker CLI.
	archive := filepath.Join(p.dir, "saved.tar")
	if r := run(t, env, "docker", "save", "-o", archive, ref); r.code != 0 {
		t.Fatalf("docker save: %s", r.stderr)
	}
	if r := run(t, env, "docker", "rmi", "mine/bb:v1", ref); r.code != 0 {
		t.Fatalf("docker rmi: %s", r.stderr)
	}
	r = run(t, env, "docker", "load", "-i", archive)
	if r.code != 0 || r.stdout != "Loaded image: "+ref+"\n" {
		t.Fatalf("docker load: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := run(t, env, "docker", "images", "-q", "--no-trunc"); r.stdout != id+"\n" {
		t.Errorf("after load: %q", r.stdout)
	}
	run(t, env, "docker", "tag", ref, "mine/bb:v1")
	r = run(t, env, "docker", "history", "--format", "{{.CreatedBy}}", ref)
	if r.stdout != "testimage layer 0\n" {
		t.Errorf("docker history = %q (%s)", r.stdout, r.stderr)
	}
	r = run(t, env, "docker", "rmi", "nothing:here")
	if r.code == 0 || !strings.Contains(r.stderr, "No such image: nothing:here") {
		t.Errorf("docker rmi unknown: %d %q", r.code, r.stderr)
	}
	r = run(t, env, "docker", "pull", reg.Host+"/test/missing:1")
	if r.code == 0 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("docker pull of a missing image: %d %q", r.code, r.stderr)
	}
	r = run(t, nil, bin, "-H", "unix://"+p.sock, "rmi", "mine/bb:v1", ref)
	if r.code != 0 || !strings.Contains(r.stdout, "Untagged: mine/bb:v1") || !strings.Contains(r.stdout, "Deleted: "+id) {
		t.Errorf("balena-engine rmi: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, env, "docker", "images", "-q")
	if r.stdout != "" {
		t.Errorf("images left: %q", r.stdout)
	}
	// The image events, as the docker CLI and ours read them.
	until := fmt.Sprint(time.Now().Add(time.Second).Unix())
	r = run(t, env, "docker", "events", "--since", fmt.Sprint(start.Unix()), "--until", until,
		"--filter", "type=image", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
	for _, want := range []string{"pull " + ref, "tag mine/bb:v1", "save " + ref, "untag " + ref, "delete " + id, "load " + ref} {
		if !strings.Contains(r.stdout, want+"\n") {
			t.Errorf("docker events lack %q:\n%s%s", want, r.stdout, r.stderr)
		}
	}
	ours = run(t, nil, bin, "-H", "unix://"+p.sock, "events", "--since", fmt.Sprint(start.Unix()), "--until", until, "--filter", "event=pull")
	if strings.Count(ours.stdout, " image pull "+ref+" (name="+ref+")") != 2 {
		t.Errorf("balena-engine events:\n%s%s", ours.stdout, ours.stderr)
	}
	// Our own pull, with its progress output.
	r = run(t, nil, bin, "-H", "unix://"+p.sock, "pull", ref)
	if r.code != 0 || !strings.HasSuffix(r.stdout, "Status: Downloaded newer image for "+ref+"\n"+reg.Host+"/test/busybox:1.35\n") {
		t.Errorf("balena-engine pull: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// Push with the docker CLI to a second registry, pull it back from there.
	other := testregistry.Start(t)
	copyRef := other.Host + "/copied/busybox:2"
	run(t, env, "docker", "tag", ref, copyRef)
	r = run(t, env, "docker", "push", copyRef)
	if r.code != 0 || !strings.Contains(r.stdout, "Pushed") || !strings.Contains(r.stdout, "2: digest: sha256:") {
		t.Errorf("docker push: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	run(t, env, "docker", "rmi", copyRef, ref)
	r = run(t, env, "docker", "pull", copyRef)
	if r.code != 0 {
		t.Errorf("pull of the pushed image: %s", r.stderr)
	}
	if r := run(t, env, "docker", "images", "-q", "--no-trunc"); r.stdout != id+"\n" {
		t.Errorf("pushed and pulled back: %q, want %s", r.stdout, id)
	}
	if _, err := os.ReadDir(filepath.Join(p.dataRoot, "layers", "sha256")); err != nil {
		t.Errorf("layer store not under the data root: %v", err)
	}
}

func TestE2ELoadTestArchive(t *testing.T) {
	bin := engineBin(t)
	p := newPaths(t)
	startDaemon(t, exec.Command(bin, p.daemonArgs()...), p.sock)
	archive := filepath.Join(p.dir, "busybox.tar")
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	bb := busyboxImage(t)
	if err := testimage.Archive(f, "busybox:latest", bb); err != nil {
		t.Fatal(err)
	}
	f.Close()
	r := run(t, nil, bin, "-H", "unix://"+p.sock, "load", "-i", archive)
	if r.code != 0 || r.stdout != "Loaded image: busybox:latest\n" {
		t.Fatalf("load: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = run(t, []string{"DOCKER_HOST=unix://" + p.sock, "DOCKER_CONFIG=" + p.dir}, "docker", "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", "--no-trunc")
	if want := "busybox:latest " + bb.ConfigDesc.Digest.String() + "\n"; r.stdout != want {
		t.Errorf("docker images = %q, want %q", r.stdout, want)
	}
	// A damaged archive: a clear error, nothing loaded.
	os.WriteFile(archive, []byte("not an archive"), 0o644)
	r = run(t, nil, bin, "-H", "unix://"+p.sock, "load", "-i", archive)
	if r.code == 0 || !strings.Contains(r.stderr, "invalid archive") {
		t.Errorf("load of garbage: %d %q", r.code, r.stderr)
	}
}

func TestE2EImportAndDistribution(t *testing.T) {
	bin := engineBin(t)
	reg := testregistry.Start(t)
	bb := busyboxImage(t)
	ref := pushImage(t, reg, "dist/busybox:1", bb)
	p := newPaths(t)
	startDaemon(t, exec.Command(bin, p.daemonArgs()...), p.sock)
	env := []string{"DOCKER_HOST=unix://" + p.sock, "DOCKER_CONFIG=" + p.dir}

	tarball := filepath.Join(p.dir, "rootfs.tar.gz")
	os.WriteFile(tarball, bb.Layers[0].Blob, 0o644)
	r := run(t, env, "docker", "import", "-c", `CMD ["sh"]`, "-m", "from a tarball", tarball, "imported:v1")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "sha256:") {
		t.Fatalf("docker import: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = run(t, env, "docker", "image", "inspect", "imported:v1", "--format", "{{json .Config.Cmd}} {{index .RootFS.Layers 0}}")
	if want := `["sh"] ` + bb.Layers[0].DiffID.String() + "\n"; r.stdout != want {
		t.Errorf("imported image: %q, want %q", r.stdout, want)
	}
	r = run(t, env, "docker", "history", "--format", "{{.Comment}}", "imported:v1")
	if r.stdout != "from a tarball\n" {
		t.Errorf("history comment %q", r.stdout)
	}

	c := apiClient(t, p)
	resp, err := c.Do(context.Background(), "GET", "/distribution/"+ref+"/json", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var di struct {
		Descriptor ocispec.Descriptor
		Platforms  []ocispec.Platform
	}
	json.NewDecoder(resp.Body).Decode(&di)
	if di.Descriptor.Digest != bb.ManifestDesc.Digest || len(di.Platforms) != 1 {
		t.Errorf("distribution inspect = %+v", di)
	}
	if _, err := c.Do(context.Background(), "GET", "/distribution/"+reg.Host+"/nothing:1/json", nil, nil); err == nil ||
		!strings.Contains(err.Error(), "not found") {
		t.Errorf("distribution inspect of a missing image: %v", err)
	}
}

// docker login against a registry that wants basic auth, then push and
// pull with the credentials the docker CLI stored.
func TestE2ELoginPushPullPrivate(t *testing.T) {
	bin := engineBin(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	htpasswd := filepath.Join(dir, "htpasswd")
	os.WriteFile(htpasswd, []byte("alice:"+string(hash)+"\n"), 0o600)
	reg := testregistry.Start(t, testregistry.WithHtpasswd(htpasswd))
	p := newPaths(t)
	startDaemon(t, exec.Command(bin, p.daemonArgs()...), p.sock)
	env := []string{"DOCKER_HOST=unix://" + p.sock, "DOCKER_CONFIG=" + p.dir}
	archive := filepath.Join(p.dir, "bb.tar")
	f, _ := os.Create(archive)
	testimage.Archive(f, "busybox:latest", busyboxImage(t))
	f.Close()
	run(t, env, "docker", "load", "-i", archive)
	private := reg.Host + "/private/busybox:1"
	run(t, env, "docker", "tag", "busybox", private)

	r := run(t, env, "docker", "push", private)
	if r.code == 0 || !strings.Contains(r.stderr+r.stdout, "credentials") {
		t.Errorf("push without login: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = run(t, env, "docker", "login", "-u", "alice", "-p", "wrong", reg.Host)
	if r.code == 0 || !strings.Contains(r.stderr, "login attempt to "+reg.Host+" failed") {
		t.Errorf("login with a wrong password: %d %q", r.code, r.stderr)
	}
	r = run(t, env, "docker", "login", "-u", "alice", "-p", "s3cret", reg.Host)
	if r.code != 0 || !strings.Contains(r.stdout, "Login Succeeded") {
		t.Fatalf("docker login: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := run(t, env, "docker", "push", private); r.code != 0 {
		t.Fatalf("push after login: %q %q", r.stdout, r.stderr)
	}
	run(t, env, "docker", "rmi", private, "busybox")
	// Our CLI reads the credentials the docker CLI stored.
	if r := run(t, []string{"DOCKER_CONFIG=" + p.dir}, bin, "-H", "unix://"+p.sock, "pull", private); r.code != 0 {
		t.Errorf("balena-engine pull of a private image: %q %q", r.stdout, r.stderr)
	}
}

func TestE2EDiskFullKeepsServing(t *testing.T) {
	bin := engineBin(t)
	reg := testregistry.Start(t)
	big := pushImage(t, reg, "big:1", bigImage(1, 1, 8<<20))
	small := pushImage(t, reg, "busybox:1", busyboxImage(t))
	p := newPaths(t)
	if err := os.MkdirAll(p.dataRoot, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", p.dataRoot, "tmpfs", 0, "size=6m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(p.dataRoot, unix.MNT_DETACH) })
	startDaemon(t, exec.Command(bin, p.daemonArgs()...), p.sock)
	env := []string{"DOCKER_HOST=unix://" + p.sock, "DOCKER_CONFIG=" + p.dir}
	r := run(t, env, "docker", "pull", big)
	if r.code == 0 || !strings.Contains(r.stderr+r.stdout, "no space left on device") {
		t.Errorf("pull onto a full disk: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, env, "docker", "images", "-q"); r.stdout != "" || r.code != 0 {
		t.Errorf("after the failed pull: %q %q", r.stdout, r.stderr)
	}
	if tmp, _ := os.ReadDir(filepath.Join(p.dataRoot, "layers", "tmp")); len(tmp) != 0 {
		t.Errorf("ingestions left: %v", tmp)
	}
	if r := run(t, env, "docker", "pull", small); r.code != 0 {
		t.Errorf("the daemon stopped serving pulls after a full disk: %s", r.stderr)
	}
}

// verifyStore opens a stopped daemon's data root and checks the invariant:
// every image whole (each layer rebuilt from disk to its diffID), nothing
// half-pulled left. It returns the images.
func verifyStore(t *testing.T, dataRoot string) []image.Image {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dataRoot, "engine.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ls, err := layer.Open(filepath.Join(dataRoot, "layers"), db, layer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	is, err := image.Open(db, ls, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := is.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		for i, c := range img.ChainIDs {
			l, err := ls.Get(c)
			if err != nil {
				t.Fatalf("image %s lacks layer %d: %v", img.ID, i, err)
			}
			rc, err := l.TarStream()
			if err != nil {
				t.Fatal(err)
			}
			d := digest.Canonical.Digester()
			io.Copy(d.Hash(), rc)
			rc.Close()
			if d.Digest() != img.Config.RootFS.DiffIDs[i] {
				t.Fatalf("image %s layer %d rebuilds to %s, want %s", img.ID, i, d.Digest(), img.Config.RootFS.DiffIDs[i])
			}
		}
	}
	if tmp, _ := os.ReadDir(filepath.Join(dataRoot, "layers", "tmp")); len(tmp) != 0 {
		t.Fatalf("ingestions left after recovery: %v", tmp)
	}
	all, _ := ls.List()
	used := map[digest.Digest]bool{}
	for _, img := range imgs {
		for _, c := range img.ChainIDs {
			used[c] = true
		}
	}
	for _, l := range all {
		if !used[l.ChainID] {
			t.Fatalf("layer %s belongs to no image after recovery", l.ChainID)
		}
	}
	return imgs
}

// Kill the daemon with SIGKILL at random moments of a pull, start it
// again, and check the store each time.
func TestE2ECrashDuringPull(t *testing.T) {
	bin := engineBin(t)
	reg := testregistry.Start(t)
	img := bigImage(2, 4, 2<<20)
	ref := pushImage(t, reg, "crash/big:1", img)
	p := newPaths(t)
	args := append(p.daemonArgs(), "--max-download-bandwidth", "8M", "--max-concurrent-downloads", "2")

	// One undisturbed pull sets the time range for the kills.
	d := startDaemon(t, exec.Command(bin, args...), p.sock)
	c, err := client.New("unix://" + p.sock)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	pullOnce := func() error {
		body, err := c.ImagePull(context.Background(), ref, "", "")
		if err != nil {
			return err
		}
		defer body.Close()
		b, _ := io.ReadAll(body)
		if strings.Contains(string(b), `"error"`) {
			return fmt.Errorf("%s", b)
		}
		return nil
	}
	if err := pullOnce(); err != nil {
		t.Fatal(err)
	}
	full := time.Since(start)
	c.Close()
	d.stop(t)
	if imgs := verifyStore(t, p.dataRoot); len(imgs) != 1 {
		t.Fatalf("undisturbed pull: %d images", len(imgs))
	}
	rng := rand.New(rand.NewPCG(3, 4))
	whole, absent := 0, 0
	for i := 0; i < 8; i++ {
		os.RemoveAll(p.dataRoot)
		d := startDaemon(t, exec.Command(bin, args...), p.sock)
		c, _ := client.New("unix://" + p.sock)
		go pullOnce()
		// Part of the scenario: the kill at a random moment of the pull
		// (some after its end).
		time.Sleep(time.Duration(rng.Int64N(int64(full) * 13 / 10)))
		d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.done
		d.done <- nil
		c.Close()
		os.Remove(p.sock)
		os.Remove(p.pidfile)
		imgs := verifyStore(t, p.dataRoot)
		if len(imgs) == 1 {
			whole++
		} else {
			absent++
		}
		// The daemon starts again on what was left and can finish the job.
		d = startDaemon(t, exec.Command(bin, args...), p.sock)
		c, _ = client.New("unix://" + p.sock)
		if err := pullOnce(); err != nil {
			t.Fatalf("pull after a crash: %v", err)
		}
		c.Close()
		d.stop(t)
		if imgs := verifyStore(t, p.dataRoot); len(imgs) != 1 {
			t.Fatalf("after the second pull: %d images", len(imgs))
		}
	}
	t.Logf("killed 8 pulls (undisturbed %v): %d left the image whole, %d absent", full, whole, absent)
}
