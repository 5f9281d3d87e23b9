//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/balena-os/balena-engine/src/internal/testregistry"
	"github.com/containerd/platforms"
)

// --platform of image inspect, history, push, save and load, with the
// docker CLI: an image is kept here for one platform; asked for it, as
// without; asked for another, Docker's 404.
func TestE2EImagePlatformParams(t *testing.T) {
	p, _, env := withBusybox(t)
	docker := dockerOK(t, env)
	reg := testregistry.Start(t)
	mine := platforms.Format(platforms.Normalize(hostPlatform))
	other := "linux/s390x"
	if hostPlatform.Architecture == "s390x" {
		other = "linux/arm64"
	}
	notHere := "image with reference busybox was found but does not provide the specified platform (" + other + ")"
	archive := filepath.Join(p.dir, "bb.tar")
	docker("tag", "busybox", reg.Host+"/test/plat:1")
	for _, c := range []struct {
		args []string
		want string // in the error, or "" for success
	}{
		{[]string{"image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", "--platform", mine, "busybox"}, ""},
		{[]string{"image", "inspect", "--platform", other, "busybox"}, notHere},
		{[]string{"history", "--platform", mine, "busybox"}, ""},
		{[]string{"history", "--platform", other, "busybox"}, notHere},
		{[]string{"save", "--platform", mine, "-o", archive, "busybox"}, ""},
		{[]string{"save", "--platform", other, "-o", archive + ".x", "busybox"}, notHere},
		{[]string{"push", "--platform", other, reg.Host + "/test/plat:1"}, "image with reference " + reg.Host + "/test/plat:1 was found but does not provide the specified platform (" + other + ")"},
		{[]string{"push", "--platform", mine, reg.Host + "/test/plat:1"}, ""},
		{[]string{"load", "--platform", other, "-i", archive}, "requested platform(s) ([" + other + "]) not found: image busybox:latest is " + mine},
		{[]string{"load", "--platform", mine, "-i", archive}, ""},
	} {
		r := run(t, env, "docker", c.args...)
		switch {
		case c.want == "" && r.code != 0:
			t.Errorf("docker %v: %d %q", c.args, r.code, r.stderr)
		case c.want != "" && (r.code == 0 || !strings.Contains(r.stderr, c.want)):
			t.Errorf("docker %v: %d %q, want %q", c.args, r.code, r.stderr, c.want)
		}
	}
	if _, err := os.Stat(archive + ".x"); err == nil {
		t.Error("save of another platform wrote an archive")
	}
	// The push of this machine's platform reached the registry.
	if r := run(t, nil, "curl", "-sf", "http://"+reg.Host+"/v2/test/plat/tags/list"); !strings.Contains(r.stdout, `"1"`) {
		t.Errorf("registry tags after the push: %q", r.stdout)
	}
	// Docker's JSON form through the API, and its 400 for a half one.
	if code, body := apiCall(t, p, "GET", `/v1.49/images/busybox/json?platform={"os":"linux","architecture":"`+hostPlatform.Architecture+`"}`, ""); code != 200 {
		t.Errorf("inspect with a JSON platform: %d %s", code, body)
	}
	if code, body := apiCall(t, p, "GET", `/v1.49/images/busybox/json?platform={"os":"linux"}`, ""); code != 400 || !strings.Contains(body, "both OS and Architecture must be provided") {
		t.Errorf("inspect with half a platform: %d %s", code, body)
	}
}
