//go:build e2e

package e2e

import (
	"encoding/json"
	"net/url"
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

// Images committed from images: Docker's parent rules. An image with
// children is never deleted by ID and by name loses only the name (listed
// then only with -a); deleting the child prunes its nameless parents
// unless --no-prune. The list's shared-size and container counts, and
// delete's platforms.
func TestE2EImageParentsAndSharedSize(t *testing.T) {
	p, _, env := withBusybox(t)
	docker := dockerOK(t, env)
	docker("create", "--network", "none", "--name", "base", "busybox", "true")
	// commit makes a chain: name:1 from busybox, name:2 from name:1.
	chain := func(name string) (first, second string) {
		t.Helper()
		first = docker("commit", "base", name+":1")
		docker("create", "--network", "none", "--name", "mid", name+":1", "true")
		second = docker("commit", "mid", name+":2")
		docker("rm", "mid")
		return first, second
	}
	exists := func(id string) bool {
		return run(t, env, "docker", "image", "inspect", id).code == 0
	}
	p1, p2 := chain("p")
	if got := docker("image", "inspect", "--format", "{{.Parent}}", p2); got != p1 {
		t.Errorf("p:2's parent %q, want %q", got, p1)
	}
	if r := run(t, env, "docker", "rmi", "-f", p1); r.code == 0 || !strings.Contains(r.stderr, "image has dependent child images") {
		t.Errorf("rmi -f of a parent by ID: %d %q", r.code, r.stderr)
	}
	if out := docker("rmi", "p:1"); out != "Untagged: p:1" || !exists(p1) {
		t.Errorf("rmi p:1 with a child: %q (image kept: %v)", out, exists(p1))
	}
	if all, plain := docker("images", "-a", "-q", "--no-trunc"), docker("images", "-q", "--no-trunc"); !strings.Contains(all, p1) || strings.Contains(plain, p1) {
		t.Errorf("the intermediate image: in images -a %v, in images %v", strings.Contains(all, p1), strings.Contains(plain, p1))
	}
	out := docker("rmi", "p:2")
	if !strings.Contains(out, "Deleted: "+p2) || !strings.Contains(out, "Deleted: "+p1) || exists(p1) {
		t.Errorf("rmi p:2 did not prune its nameless parent: %q", out)
	}

	q1, q2 := chain("q")
	docker("rmi", "q:1")
	if out := docker("rmi", "--no-prune", "q:2"); strings.Contains(out, q1) || !exists(q1) || exists(q2) {
		t.Errorf("rmi --no-prune q:2: %q (parent kept: %v)", out, exists(q1))
	}

	// shared-size: busybox's layers are all q1's too; base uses busybox.
	type summary struct {
		ID               string
		RepoTags         []string
		Size, SharedSize int64
		Containers       int64
	}
	list := func(version, q string) map[string]summary {
		t.Helper()
		code, body := apiCall(t, p, "GET", "/v"+version+"/images/json?all=1&"+q, "")
		var l []summary
		if err := json.Unmarshal([]byte(body), &l); code != 200 || err != nil {
			t.Fatalf("images/json?%s: %d %s", q, code, body)
		}
		m := map[string]summary{}
		for _, s := range l {
			m[s.ID] = s
		}
		return m
	}
	bb := docker("image", "inspect", "--format", "{{.Id}}", "busybox")
	// Containers is counted from API 1.51, as Docker counts it.
	with, without, old := list("1.51", "shared-size=1"), list("1.51", ""), list("1.45", "shared-size=1")
	if s := with[bb]; s.SharedSize != s.Size || s.Size <= 0 || s.Containers != 1 {
		t.Errorf("busybox with shared-size: %+v, want SharedSize = Size and 1 container", s)
	}
	if s := with[q1]; s.SharedSize != with[bb].Size || s.Containers != 0 {
		t.Errorf("q1 with shared-size: %+v, want SharedSize %d (busybox's layers)", s, with[bb].Size)
	}
	if s := without[bb]; s.SharedSize != -1 || s.Containers != 1 {
		t.Errorf("busybox without shared-size: %+v, want SharedSize -1", s)
	}
	if s := old[bb]; s.SharedSize != s.Size || s.Containers != -1 {
		t.Errorf("busybox at API 1.45: %+v, want SharedSize = Size, Containers -1", s)
	}

	// platforms (API 1.50): one at most, and the image's own.
	arm := url.QueryEscape(`{"os":"linux","architecture":"arm64"}`)
	if code, body := apiCall(t, p, "DELETE", "/v1.50/images/"+q1+"?platforms="+arm, ""); code != 404 || !strings.Contains(body, "does not provide the specified platform") || !exists(q1) {
		t.Errorf("delete for another platform: %d %s", code, body)
	}
	if code, body := apiCall(t, p, "DELETE", "/v1.50/images/"+q1+"?platforms="+arm+"&platforms=linux/amd64", ""); code != 400 || !strings.Contains(body, "multiple platforms are not supported") {
		t.Errorf("delete for two platforms: %d %s", code, body)
	}
	own := url.QueryEscape(`{"os":"linux","architecture":"` + docker("image", "inspect", "--format", "{{.Architecture}}", q1) + `"}`)
	if code, body := apiCall(t, p, "DELETE", "/v1.50/images/"+q1+"?platforms="+own, ""); code != 200 || exists(q1) {
		t.Errorf("delete for its own platform: %d %s", code, body)
	}
}
