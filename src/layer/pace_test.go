package layer

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// The pacer keeps its own descriptor of each finished file until it drops
// the file's pages: the extractor closes its own as soon as the file's
// metadata is set, and a flush through that closed descriptor did nothing
// (small files' pages were never dropped during a pull).
func TestPacerKeepsItsOwnDescriptor(t *testing.T) {
	dir := t.TempDir()
	p := newPacer(64 << 20)
	for i := range 3 {
		f, err := os.Create(filepath.Join(dir, "f"+string(rune('a'+i))))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.copy(f, bytes.NewReader(make([]byte, 10000))); err != nil {
			t.Fatal(err)
		}
		f.Close() // as the extractor does
	}
	if len(p.pending) != 3 {
		t.Fatalf("%d files pending, want 3", len(p.pending))
	}
	for _, f := range p.pending {
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Size != 10000 {
			t.Errorf("pending %s: fstat %v, size %d", f.Name(), err, st.Size)
		}
	}
	p.flush()
	if len(p.pending) != 0 {
		t.Errorf("%d files pending after flush", len(p.pending))
	}
}
