//go:build e2e

package e2e

// dockerode, the Node.js SDK balena's device agent uses, and the agent's own
// flows, driven against the engine: the suites under compat/dockerode print
// a line per check (PASS, FAIL or SKIP) and a summary this test parses.
// dockerode comes from the npm registry, installed once from the committed
// package-lock.json into a cache outside the clone
// (${XDG_CACHE_HOME:-$HOME/.cache}/balena-engine-compat/dockerode-HASH).

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/balena-os/balena-engine/src/internal/testregistry"
)

// dockerodeModules installs the suite's node_modules (npm ci, once per
// package-lock.json) and returns their directory, for NODE_PATH.
func dockerodeModules(t *testing.T, dir string) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (apt-get install nodejs npm): the dockerode suite needs it", tool)
		}
	}
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(append(pkg, lock...))
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		cache = filepath.Join(home, ".cache")
	}
	prefix := filepath.Join(cache, "balena-engine-compat", "dockerode-"+hex.EncodeToString(sum[:8]))
	modules := filepath.Join(prefix, "node_modules")
	if _, err := os.Stat(filepath.Join(modules, ".installed")); err == nil {
		return modules
	}
	os.RemoveAll(prefix)
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"package.json": pkg, "package-lock.json": lock} {
		if err := os.WriteFile(filepath.Join(prefix, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund")
	cmd.Dir = prefix
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", prefix, err, out)
	}
	if err := os.WriteFile(filepath.Join(modules, ".installed"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return modules
}

var compatLine = regexp.MustCompile(`^(PASS|FAIL|SKIP) ([^:]+?)(?:: (.*))?$`)

// runCompatSuite runs a suite script with env and fails the test on any
// FAIL line or a missing summary; it logs the counts and skips.
func runCompatSuite(t *testing.T, env []string, modules, script, suite string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Env = append(append(os.Environ(), env...), "NODE_PATH="+modules)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var pass, fail, skip int
	summary := regexp.MustCompile(`^SUMMARY ` + regexp.QuoteMeta(suite) + `: (\d+) passed, (\d+) skipped`)
	var sumLine string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := compatLine.FindStringSubmatch(line); m != nil {
			switch m[1] {
			case "PASS":
				pass++
			case "FAIL":
				fail++
				t.Errorf("%s: %s", suite, line)
			case "SKIP":
				skip++
				t.Logf("%s: %s", suite, line)
			}
		} else if summary.MatchString(line) {
			sumLine = line
		}
	}
	if err != nil {
		t.Errorf("node %s: %v\n%s", script, err, stderr.String())
	}
	if sumLine == "" {
		t.Errorf("node %s: no summary line %q\nstdout:\n%s\nstderr:\n%s", script, "SUMMARY "+suite+": N passed, M skipped", out, stderr.String())
		return
	}
	t.Logf("%s (counted here: %d passed, %d skipped, %d failed)", sumLine, pass, skip, fail)
}

func TestCompatDockerode(t *testing.T) {
	dir, err := filepath.Abs("compat/dockerode")
	if err != nil {
		t.Fatal(err)
	}
	modules := dockerodeModules(t, dir)

	t.Run("sdk", func(t *testing.T) {
		reg := testregistry.Start(t)
		// A fresh image for the pull's progress, and the loaded busybox
		// under a registry name (its layers are there already).
		fresh := pushImage(t, reg, "compat/data:1", bigImage(13, 2, 256<<10))
		existing := pushImage(t, reg, "compat/busybox:1.35", busyboxImage(t))
		p, _, env := withBusybox(t)
		runCompatSuite(t, append(env, "COMPAT_PULL_REF="+fresh, "COMPAT_PULL_EXISTING_REF="+existing, "COMPAT_TMP="+p.dir), modules,
			filepath.Join(dir, "dockerode.js"), "dockerode")
	})

	// The agent's networks need bridges: a daemon in a network namespace
	// of its own.
	t.Run("supervisor", func(t *testing.T) {
		p, _, _, env := withNetDaemon(t)
		runCompatSuite(t, append(env, "COMPAT_TMP="+p.dir), modules,
			filepath.Join(dir, "supervisor.js"), "balena-supervisor")
	})
}
