//go:build e2e

package e2e

// docker-py, as Debian packages it (python3-docker), driving the engine:
// the acceptance suite src/e2e/compat/dockerpy/suite.py run against a
// daemon of its own, with the busybox test image loaded and a local
// registry to pull from (issue #13).

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/balena-os/balena-engine/src/internal/testregistry"
)

// dockerPyPython is the interpreter Debian's python3-docker installs for
// (a pyenv python3 earlier on PATH would not have it).
const dockerPyPython = "/usr/bin/python3"

var dockerPySummary = regexp.MustCompile(`(?m)^SUMMARY docker-py: (\d+) passed, (\d+) skipped, (\d+) failed$`)

func TestCompatDockerPy(t *testing.T) {
	if out, err := exec.Command(dockerPyPython, "-c", "import docker").CombinedOutput(); err != nil {
		t.Fatalf("docker-py is not available to %s (%v: %s): install Debian's python3-docker (apt-get install python3-docker)",
			dockerPyPython, err, strings.TrimSpace(string(out)))
	}
	suite, err := filepath.Abs(filepath.Join("compat", "dockerpy", "suite.py"))
	if err != nil {
		t.Fatal(err)
	}
	reg := testregistry.Start(t)
	// A fresh image to pull with progress, and the test image itself
	// (content the daemon has) under a new name.
	fresh := pushImage(t, reg, "dockerpy/fresh:1.0", bigImage(13, 2, 256<<10))
	bb := pushImage(t, reg, "dockerpy/busybox:1.0", busyboxImage(t))
	_, _, env := withBusybox(t)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// DOCKERPY_CHECKS narrows the run to the checks whose names start
	// with one of its words (for example "events. apiversion.1.24").
	cmd := exec.CommandContext(ctx, dockerPyPython, append([]string{suite}, strings.Fields(os.Getenv("DOCKERPY_CHECKS"))...)...)
	cmd.Env = append(append(os.Environ(), env...),
		"COMPAT_IMAGE=busybox:latest", "COMPAT_REGISTRY_IMAGE="+fresh, "COMPAT_REGISTRY_BUSYBOX="+bb, "PYTHONUNBUFFERED=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	text := out.String()
	t.Logf("docker-py suite output:\n%s", text)
	if ctx.Err() != nil {
		t.Fatalf("docker-py suite did not end within the time limit")
	}
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "FAIL ") {
			t.Errorf("%s", l)
		}
	}
	m := dockerPySummary.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("docker-py suite printed no SUMMARY line (exit: %v)", err)
	}
	t.Logf("docker-py: %s passed, %s skipped, %s failed", m[1], m[2], m[3])
	if m[3] != "0" || err != nil {
		t.Errorf("docker-py suite: %s failed (exit: %v)", m[3], err)
	}
}
