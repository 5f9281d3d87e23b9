package layer

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// The crash tests run ingestions in a child process (this test binary,
// re-executed) and SIGKILL it at each commit step and at random moments of
// extraction, then reopen the store and check the invariant. SIGKILL loses
// the process, not the page cache: real power cuts are the QEMU tests' job.

const childEnv = "LAYER_CRASH_CHILD"

func TestMain(m *testing.M) {
	if root := os.Getenv(childEnv); root != "" {
		os.Exit(crashChild(root, os.Getenv("LAYER_CRASH_STEP"), digest.Digest(os.Getenv("LAYER_CRASH_DIFFID"))))
	}
	os.Exit(m.Run())
}

func crashChild(root, step string, diffID digest.Digest) int {
	db, err := bolt.Open(filepath.Join(root, "meta.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	s, err := Open(filepath.Join(root, "layers"), db, Options{PaceWindow: 2 << 20})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	crashHook = func(at string) {
		if at == step {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
	blob, err := os.Open(filepath.Join(root, "blob"))
	if err != nil {
		return 3
	}
	os.Stdout.WriteString("start\n") // the parent times its kill from here
	in, err := s.Ingest("", diffID)
	if err != nil {
		return 3
	}
	if err := in.Apply(context.Background(), blob, "", -1); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 4
	}
	if _, err := in.Commit(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 4
	}
	return 0
}

// checkInvariant: every visible layer rebuilds to its diffID from disk;
// nothing else is on disk.
func checkInvariant(t *testing.T, root string) []Layer {
	t.Helper()
	s, db := openStore(t, root)
	defer db.Close()
	all, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range all {
		rc, err := l.TarStream()
		if err != nil {
			t.Fatalf("visible layer %s cannot be read: %v", l.ChainID, err)
		}
		d := digest.Canonical.Digester()
		_, err = io.Copy(d.Hash(), rc)
		rc.Close()
		if err != nil || d.Digest() != l.DiffID {
			t.Fatalf("visible layer %s rebuilds to %s (%v), want %s", l.ChainID, d.Digest(), err, l.DiffID)
		}
	}
	if tmp, _ := os.ReadDir(s.tmpDir()); len(tmp) != 0 {
		t.Fatalf("tmp not empty after reopen: %v", tmp)
	}
	if dirs, _ := os.ReadDir(s.layersDir()); len(dirs) != len(all) {
		t.Fatalf("%d layer directories for %d recorded layers", len(dirs), len(all))
	}
	return all
}

// runChild runs one ingestion in a child; with killAfter > 0 it is killed
// that long after the ingestion starts. It returns the child's state and
// how long the ingestion ran.
func runChild(t *testing.T, root, step string, diffID digest.Digest, killAfter time.Duration) (*os.ProcessState, time.Duration) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+root, "LAYER_CRASH_STEP="+step, "LAYER_CRASH_DIFFID="+diffID.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 6)
	io.ReadFull(out, line)
	start := time.Now()
	if killAfter > 0 {
		timer := time.AfterFunc(killAfter, func() { cmd.Process.Kill() })
		defer timer.Stop()
	}
	io.Copy(io.Discard, out)
	cmd.Wait()
	return cmd.ProcessState, time.Since(start)
}

func TestCrashAtEachCommitStep(t *testing.T) {
	raw := richLayer(t)
	diffID := digest.FromBytes(raw)
	for _, step := range []string{"synced", "renamed", "dir-synced", "recorded"} {
		t.Run(step, func(t *testing.T) {
			root := t.TempDir()
			os.WriteFile(filepath.Join(root, "blob"), gzipped(t, raw), 0o644)
			ps, _ := runChild(t, root, step, diffID, 0)
			if ws, ok := ps.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child was not killed at %s: %v", step, ps)
			}
			all := checkInvariant(t, root)
			// Before the record the layer must be absent; after it, present.
			if want := map[string]int{"recorded": 1}[step]; len(all) != want {
				t.Errorf("killed at %s: %d layers visible, want %d", step, len(all), want)
			}
		})
	}
}

func TestCrashAtRandomMoments(t *testing.T) {
	raw := richLayer(t)
	blob := gzipped(t, raw)
	diffID := digest.FromBytes(raw)
	// How long an uninterrupted run takes here sets the range of kill times.
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "blob"), blob, 0o644)
	ps, full := runChild(t, root, "", diffID, 0)
	if !ps.Success() {
		t.Fatalf("uninterrupted child failed: %v", ps)
	}
	if len(checkInvariant(t, root)) != 1 {
		t.Fatal("uninterrupted ingestion did not commit")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	killed := 0
	for i := 0; i < 20; i++ {
		root := t.TempDir()
		os.WriteFile(filepath.Join(root, "blob"), blob, 0o644)
		// Up to 20% past the usual end, so that some runs finish.
		ps, _ := runChild(t, root, "", diffID, 1+time.Duration(rng.Int64N(int64(full)*6/5)))
		if !ps.Success() {
			killed++
		}
		all := checkInvariant(t, root)
		// A run killed after the record may show the layer; one that
		// finished must.
		if ps.Success() && len(all) != 1 {
			t.Errorf("run %d: child finished but %d layers visible", i, len(all))
		}
	}
	t.Logf("%d of 20 runs killed before finishing (full run %v)", killed, full)
}
