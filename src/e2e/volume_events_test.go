//go:build e2e

package e2e

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A container's volumes are mounted before its start event and unmounted
// before its die event, with Docker's attributes.
func TestE2EVolumeEvents(t *testing.T) {
	_, _, env := withBusybox(t)
	docker := dockerOK(t, env)
	since := strconv.FormatInt(time.Now().Unix(), 10)
	docker("run", "--name", "ve", "--network", "none", "-v", "evvol:/data:ro", "busybox", "true")
	t.Cleanup(func() { run(t, env, "docker", "rm", "-f", "ve") })
	id := docker("inspect", "--format", "{{.Id}}", "ve")
	out := docker("events", "--since", since, "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--format", `{{.Type}}|{{.Action}}|{{.Actor.ID}}|{{index .Actor.Attributes "container"}}|{{index .Actor.Attributes "destination"}}|{{index .Actor.Attributes "read/write"}}|{{index .Actor.Attributes "propagation"}}|{{index .Actor.Attributes "driver"}}`)
	var got []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Split(l, "|")
		if len(f) > 1 && (f[0] == "volume" || f[1] == "start" || f[1] == "die") {
			got = append(got, strings.ReplaceAll(l, id, "ID"))
		}
	}
	want := []string{
		"volume|create|evvol|||||local",
		"volume|mount|evvol|ID|/data|false||local",
		"container|start|ID|||||",
		"volume|unmount|evvol|ID||||local",
		"container|die|ID|||||",
	}
	if !slices.Equal(got, want) {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
