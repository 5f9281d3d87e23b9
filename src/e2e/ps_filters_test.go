//go:build e2e

package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// The container list's filters Docker serves (daemon/list.go): health,
// network, publish, expose, volume, isolation, is-task, ancestor, on
// real containers.
func TestE2EPsFilters(t *testing.T) {
	_, _, _, env := withNetDaemon(t)
	docker := dockerOK(t, env)
	docker("network", "create", "pfnet")
	netID := docker("network", "inspect", "--format", "{{.Id}}", "pfnet")
	docker("run", "-d", "--name", "pa", "--network", "pfnet", "-p", "18080:80", "--expose", "90", "-v", "pfvol:/data",
		"--health-cmd", "true", "--health-interval", "200ms", "busybox", "sleep", "1000")
	docker("run", "-d", "--name", "pb", "--network", "none", "-v", "/tmp:/hosttmp", "busybox", "sleep", "1000")
	t.Cleanup(func() { run(t, env, "docker", "rm", "-f", "pa", "pb") })
	eventually(t, 20*time.Second, "pa healthy", func() bool {
		return docker("inspect", "--format", "{{.State.Health.Status}}", "pa") == "healthy"
	})
	for filter, want := range map[string]string{
		"health=healthy":       "pa",
		"health=none":          "pb",
		"health=unhealthy":     "",
		"network=pfnet":        "pa",
		"network=" + netID[:6]: "pa",
		"network=none":         "pb",
		"publish=18080":        "pa",
		"publish=18000-18100":  "pa",
		"publish=18080/udp":    "",
		"publish=80":           "",
		"expose=80/tcp":        "pa",
		"expose=90":            "pa",
		"volume=pfvol":         "pa",
		"volume=/data":         "pa",
		"volume=/tmp":          "pb",
		"volume=/hosttmp":      "pb",
		"isolation=default":    "pa pb",
		"is-task=false":        "pa pb",
		"is-task=true":         "",
	} {
		l := strings.Fields(docker("ps", "--filter", filter, "--format", "{{.Names}}"))
		slices.Sort(l)
		if got := strings.Join(l, " "); got != want {
			t.Errorf("ps --filter %s: %q, want %q", filter, got, want)
		}
	}
	// ancestor: the image by any of its names or its ID, and the images
	// committed from it.
	docker("commit", "pb", "pfchild")
	docker("run", "-d", "--name", "pc", "--network", "none", "pfchild", "sleep", "1000")
	t.Cleanup(func() { run(t, env, "docker", "rm", "-f", "pc") })
	bbID := docker("image", "inspect", "--format", "{{.Id}}", "busybox")
	for filter, want := range map[string]string{
		"ancestor=busybox":        "pa pb pc",
		"ancestor=busybox:latest": "pa pb pc",
		"ancestor=" + bbID[7:19]:  "pa pb pc",
		"ancestor=pfchild":        "pc",
		"ancestor=nothing":        "",
	} {
		l := strings.Fields(docker("ps", "--filter", filter, "--format", "{{.Names}}"))
		slices.Sort(l)
		if got := strings.Join(l, " "); got != want {
			t.Errorf("ps --filter %s: %q, want %q", filter, got, want)
		}
	}
	for filter, want := range map[string]string{
		"health=sick":   "invalid filter 'health=sick'",
		"publish=80:80": "filter for 'publish' should not contain ':': 80:80",
		"is-task=maybe": "invalid filter 'is-task=[maybe]'",
	} {
		if r := run(t, env, "docker", "ps", "--filter", filter); r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("ps --filter %s: %d %q, want %q", filter, r.code, r.stderr, want)
		}
	}
}
