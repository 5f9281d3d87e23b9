//go:build e2e

package e2e

import (
	"os"
	"strings"
	"testing"
)

// --mount type=volume,volume-subpath=x binds that part of the volume, as
// Docker; a missing one, or one whose symlinks lead out of the volume, is
// refused at start with Docker's words; nothing stays mounted after.
func TestE2EVolumeSubpath(t *testing.T) {
	_, _, env := withBusybox(t)
	docker := dockerOK(t, env)
	docker("run", "--rm", "--network", "none", "-v", "sv:/v", "busybox", "sh", "-c", "mkdir -p /v/a && echo hi > /v/a/f && ln -s ../../.. /v/out")
	if got := docker("run", "--rm", "--network", "none", "--mount", "type=volume,src=sv,dst=/s,volume-subpath=a", "busybox", "cat", "/s/f"); got != "hi" {
		t.Errorf("the subpath's file: %q, want hi", got)
	}
	if got := docker("run", "--rm", "--network", "none", "--mount", "type=volume,src=sv,dst=/s/f,volume-subpath=a/f,readonly", "busybox", "sh", "-c", "cat /s/f; echo x > /s/f || echo ro"); got != "hi\nro" {
		t.Errorf("a file subpath, read-only: %q", got)
	}
	// The CLI's 127 for an error naming "no such file or directory", as
	// with Docker's same words.
	for _, tc := range []struct {
		sub  string
		code int
		want string
	}{
		{"missing", 127, "cannot access path "},
		{"out", 125, "path concatenation escapes the base directory"},
		{"../x", 125, "subpath must be a relative path within the volume"},
	} {
		r := run(t, env, "docker", "run", "--rm", "--network", "none", "--mount", "type=volume,src=sv,dst=/s,volume-subpath="+tc.sub, "busybox", "true")
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("volume-subpath=%s: %d %q, want %d %q", tc.sub, r.code, r.stderr, tc.code, tc.want)
		}
	}
	if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), "/subpaths/") {
		t.Errorf("subpath binds left:\n%s", b)
	}
}
