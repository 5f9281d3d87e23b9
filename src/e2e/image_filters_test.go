//go:build e2e

package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// The image list's before, since and until filters, the image prune's
// until, and label! in the image, container and volume prunes, as
// Docker applies them.
func TestE2EImageFiltersAndPrunes(t *testing.T) {
	p, _, env := withBusybox(t)
	docker := dockerOK(t, env)
	docker("create", "--network", "none", "--name", "base", "busybox", "true")
	docker("commit", "base", "f1:a")
	between := time.Now().UTC().Format(time.RFC3339Nano)
	docker("commit", "--change", "LABEL keep=yes", "base", "f1:b")
	images := func(filter string) []string {
		t.Helper()
		out := strings.Fields(docker("images", "--filter", filter, "--format", "{{.Repository}}:{{.Tag}}"))
		slices.Sort(out)
		return out
	}
	for filter, want := range map[string]string{
		"before=f1:b":      "busybox:latest f1:a",
		"since=f1:a":       "f1:b",
		"since=busybox":    "f1:a f1:b",
		"until=" + between: "busybox:latest f1:a",
	} {
		if got := strings.Join(images(filter), " "); got != want {
			t.Errorf("images --filter %s: %q, want %q", filter, got, want)
		}
	}
	for _, c := range []struct {
		q, want string
		code    int
	}{
		{`{"before":["nothing"]}`, "No such image: nothing", 404},
		{`{"until":["yesterday"]}`, "invalid value for 'until' filter", 400},
	} {
		if code, body := apiCall(t, p, "GET", "/v1.45/images/json?filters="+c.q, ""); code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("images?filters=%s: %d %s", c.q, code, body)
		}
	}

	// Prune until: f1:a goes (unused, made before), f1:b stays; busybox,
	// which base uses, stays whatever its age.
	docker("image", "prune", "-a", "-f", "--filter", "until="+between)
	if got := strings.Join(images("reference=*"), " "); got != "busybox:latest f1:b" {
		t.Errorf("after prune until: %q", got)
	}
	if code, body := apiCall(t, p, "POST", `/v1.45/images/prune?filters={"until":["1h","2h"]}`, ""); code != 400 || !strings.Contains(body, "more than one until filter specified") {
		t.Errorf("prune with two until: %d %s", code, body)
	}
	// label!: what has the label stays.
	docker("commit", "base", "f1:c")
	docker("image", "prune", "-a", "-f", "--filter", "label!=keep=yes")
	if got := strings.Join(images("reference=*"), " "); got != "busybox:latest f1:b" {
		t.Errorf("after prune label!=keep=yes: %q", got)
	}
	docker("create", "--network", "none", "--label", "keep", "--name", "kept", "busybox", "true")
	docker("create", "--network", "none", "--name", "gone", "busybox", "true")
	docker("container", "prune", "-f", "--filter", "label!=keep")
	if got := docker("ps", "-a", "--format", "{{.Names}}", "--filter", "name=kept", "--filter", "name=gone"); got != "kept" {
		t.Errorf("after container prune label!=keep: %q", got)
	}
	docker("volume", "create", "--label", "keep", "vkept")
	docker("volume", "create", "vgone")
	docker("volume", "prune", "-a", "-f", "--filter", "label!=keep")
	if got := docker("volume", "ls", "-q"); got != "vkept" {
		t.Errorf("after volume prune label!=keep: %q", got)
	}
}
