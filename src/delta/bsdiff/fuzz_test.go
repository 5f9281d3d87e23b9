package bsdiff

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// fuzzOld is the old data FuzzPatch's patches apply to.
var fuzzOld = []byte(strings.Repeat("old data, old data; ", 15) + "\x00\x01\x02\xff")

// limitWriter fails the test if more than limit bytes come.
type limitWriter struct {
	t     *testing.T
	n     int64
	limit int64
}

func (w *limitWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	if w.n > w.limit {
		w.t.Fatalf("wrote %d bytes, more than the new size %d", w.n, w.limit)
	}
	return len(p), nil
}

func FuzzPatch(f *testing.F) {
	for _, n := range []string{"", "old data", "new data, old data; old data; new", strings.Repeat("x", 500)} {
		p, err := Diff(fuzzOld, []byte(n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p)
	}
	z := func(b []byte) []byte { return zframe(f, b, 1<<10) }
	f.Add(container(10, z(triples(5, 5, 5)), z([]byte{1, 2, 3, 4, 5}), z([]byte("extra"))))
	f.Add(container(10, z(triples(-5, 5, 5)), z(make([]byte, 5)), z([]byte("extra"))))
	f.Add(container(1<<40, z(triples(0, 0, 1<<40)), nil, z(make([]byte, 1<<16))))
	f.Add([]byte("BSDZ\x01\x00\x03"))
	f.Fuzz(func(t *testing.T, patch []byte) {
		// Ask for the size the header declares, if it is small, so that
		// the fuzzer gets past the header.
		newSize := int64(1 << 20)
		if len(patch) > len(magic)+1 {
			if n, k := binary.Uvarint(patch[len(magic)+1:]); k > 0 && n < 1<<20 {
				newSize = int64(n)
			}
		}
		w := &limitWriter{t: t, limit: newSize}
		err := Patch(w, bytes.NewReader(fuzzOld), int64(len(fuzzOld)), bytes.NewReader(patch), newSize)
		if err == nil && w.n != newSize {
			t.Fatalf("succeeded with %d bytes, want %d", w.n, newSize)
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("an error that does not blame the patch: %v", err)
		}
	})
}

func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("hello, world"), []byte("hello, brave new world"))
	f.Add([]byte{}, []byte("from nothing"))
	f.Add([]byte("to nothing"), []byte{})
	f.Add(program(1, 300), relink(program(1, 300), 1))
	f.Add(bytes.Repeat([]byte{0}, 200), bytes.Repeat([]byte{0, 1}, 150))
	f.Fuzz(func(t *testing.T, old, new []byte) {
		// Kept small: the fuzzer minimizes each new input it finds,
		// running this some thousands of times over. Cut, not skipped:
		// a skip is new coverage, whose long input it would minimize too.
		old, new = old[:min(len(old), 1<<10)], new[:min(len(new), 1<<10)]
		roundTrip(t, old, new)
	})
}
