//go:build e2e

package e2e

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/balena-os/balena-engine/src/internal/testimage"
	"github.com/balena-os/balena-engine/src/internal/testregistry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// docker pull --all-tags (a pull without a tag): every tag the registry
// lists, each with its progress, one status line for the repository at
// the end, as Docker; a repository the registry does not have is an
// error, as is a tag that is not a name (none here).
func TestE2EPullAllTags(t *testing.T) {
	bin := engineBin(t)
	reg := testregistry.Start(t)
	bb := busyboxImage(t)
	other := testimage.New(hostPlatform, ocispec.ImageConfig{Cmd: []string{"sh"}}, testimage.NewLayer(testimage.File{Name: "x", Body: []byte("x")}))
	pushImage(t, reg, "test/tagged:1.0", bb)
	pushImage(t, reg, "test/tagged:1.1", bb)
	pushImage(t, reg, "test/tagged:edge", other)
	pushImage(t, reg, "test/single:latest", bb)
	p := newPaths(t)
	startDaemon(t, exec.Command(bin, p.daemonArgs()...), p.sock)
	env := []string{"DOCKER_HOST=unix://" + p.sock, "DOCKER_CONFIG=" + p.dir}
	repo := reg.Host + "/test/tagged"

	r := run(t, env, "docker", "pull", "--all-tags", repo)
	// The docker CLI prints the reference last, after the status line.
	if r.code != 0 || !strings.HasSuffix(r.stdout, "Status: Downloaded newer image for "+repo+"\n"+repo+"\n") || strings.Count(r.stdout, "Status:") != 1 {
		t.Fatalf("pull --all-tags: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, tag := range []string{"1.0", "1.1", "edge"} {
		if !strings.Contains(r.stdout, tag+": Pulling from test/tagged") {
			t.Errorf("no progress for %s:\n%s", tag, r.stdout)
		}
	}
	out := strings.Fields(run(t, env, "docker", "images", "--format", "{{.Tag}}={{.ID}}", repo).stdout)
	slices.Sort(out)
	short := func(d string) string { return strings.TrimPrefix(d, "sha256:")[:12] }
	want := []string{"1.0=" + short(bb.ConfigDesc.Digest.String()), "1.1=" + short(bb.ConfigDesc.Digest.String()), "edge=" + short(other.ConfigDesc.Digest.String())}
	if !slices.Equal(out, want) {
		t.Errorf("images of %s: %v, want %v", repo, out, want)
	}
	r = run(t, env, "docker", "pull", "-a", repo)
	if r.code != 0 || !strings.HasSuffix(r.stdout, "Status: Image is up to date for "+repo+"\n"+repo+"\n") {
		t.Errorf("second pull --all-tags: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// Our CLI too.
	if r := ours(t, p, "pull", "-a", repo); r.code != 0 || !strings.Contains(r.stdout, "Status: Image is up to date for "+repo+"\n") {
		t.Errorf("our pull -a: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := ours(t, p, "pull", "-a", repo+":1.0"); r.code != 1 || r.stderr != "tag can't be used with --all-tags/-a\n" {
		t.Errorf("our pull -a of a tag: %d %q", r.code, r.stderr)
	}
	// Through the API: fromImage without tag.
	if code, body := apiCall(t, p, "POST", "/v1.45/images/create?fromImage="+reg.Host+"/test/single", ""); code != 200 || !strings.Contains(body, "Downloaded newer image for "+reg.Host+"/test/single") {
		t.Errorf("create?fromImage without tag: %d %s", code, body)
	}
	if code, body := apiCall(t, p, "POST", "/v1.45/images/create?fromImage="+reg.Host+"/test/nothing", ""); code != 404 || !strings.Contains(body, "repository "+reg.Host+"/test/nothing not found") {
		t.Errorf("all tags of a repository not there: %d %s", code, body)
	}
}
