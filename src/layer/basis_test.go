package layer

import (
	"bytes"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
)

// The basis reads, at every offset, exactly the concatenated tar streams
// of its layers, also from several goroutines at once.
func TestBasisReadsConcatenatedTars(t *testing.T) {
	s := newStore(t)
	a := richLayer(t)
	b := makeTar(t, []entry{
		dir("etc/", 0o755), file("etc/hosts", "127.0.0.1 localhost\n", 0o644),
		file("etc/.wh.xattr", "", 0o644), file("empty", "", 0o644),
		file("data/blob", strings.Repeat("xyz", 70001), 0o600),
	}, 0)
	la, err := ingest(t, s, "", a, a)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := ingest(t, s, la.ChainID, b, gzipped(t, b))
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte{}, a...), b...)
	basis, err := s.OpenBasis([]digest.Digest{la.ChainID, lb.ChainID})
	if err != nil {
		t.Fatal(err)
	}
	defer basis.Close()
	if basis.Size() != int64(len(want)) {
		t.Fatalf("basis size %d, want %d", basis.Size(), len(want))
	}
	got, err := io.ReadAll(io.NewSectionReader(basis, 0, basis.Size()))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("sequential read differs (err %v)", err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(g)))
			buf := make([]byte, 4096)
			for range 2000 {
				off := rng.Int63n(int64(len(want)))
				n := rng.Intn(len(buf)) + 1
				k, err := basis.ReadAt(buf[:n], off)
				end := min(off+int64(n), int64(len(want)))
				if !bytes.Equal(buf[:k], want[off:end]) {
					t.Errorf("ReadAt(%d, %d) differs", n, off)
					return
				}
				if end-off < int64(n) && err != io.EOF {
					t.Errorf("ReadAt past the end: %v, want EOF", err)
					return
				}
				if end-off == int64(n) && err != nil {
					t.Errorf("ReadAt(%d, %d): %v", n, off, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// No scratch file left visible in the store.
	if left, _ := os.ReadDir(s.tmpDir()); len(left) != 0 {
		t.Fatalf("basis left %d entries in tmp/", len(left))
	}
}

// A layer file changed under the store (shorter than its record) is an
// error, not silently different bytes.
func TestBasisShortFile(t *testing.T) {
	s := newStore(t)
	a := makeTar(t, []entry{file("f", strings.Repeat("a", 10000), 0o644)}, 0)
	la, err := ingest(t, s, "", a, a)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(la.Dir(), "f"), 100); err != nil {
		t.Fatal(err)
	}
	basis, err := s.OpenBasis([]digest.Digest{la.ChainID})
	if err != nil {
		t.Fatal(err)
	}
	defer basis.Close()
	_, err = io.ReadAll(io.NewSectionReader(basis, 0, basis.Size()))
	if err == nil || !strings.Contains(err.Error(), "shorter") {
		t.Fatalf("read of a truncated layer file: %v", err)
	}
}
