package rdiff

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"runtime"
	"strings"
	"testing"
)

// dlt builds a delta: the magic then the given bytes.
func dlt(b ...byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, Magic), b...)
}

func be(v uint64, w int) []byte {
	b := make([]byte, w)
	putInt(b, v, w)
	return b
}

func TestHostileDeltas(t *testing.T) {
	basis := randBytes(7, 1000)
	cases := []struct {
		name, want string
		delta      []byte
		unexpected bool // the error also wraps io.ErrUnexpectedEOF
	}{
		{"empty", "too short for the magic", nil, true},
		{"short magic", "too short for the magic", []byte{0x72, 0x73}, true},
		{"bad magic", "bad magic number 0x72730136", []byte{0x72, 0x73, 0x01, 0x36, 0}, false},
		{"missing END", "without an END", dlt(0x02, 'h', 'i'), true},
		{"missing END after COPY", "without an END", dlt(0x45, 0, 10), true},
		{"unknown opcode 0x55", "unknown opcode 0x55", dlt(0x55, 0), false},
		{"unknown opcode 0xff", "unknown opcode 0xff at delta offset 6", dlt(0x01, 'x', 0xff), false},
		{"truncated immediate literal", "LITERAL at delta offset 4 is truncated: 3 bytes missing", dlt(0x05, 'a', 'b'), true},
		{"truncated literal data", "LITERAL at delta offset 4 is truncated", append(dlt(0x42, 0x01, 0x00), make([]byte, 200)...), true},
		{"truncated literal length", "arguments of opcode 0x42 at delta offset 4 are truncated", dlt(0x42, 0x01), true},
		{"truncated copy arguments", "arguments of opcode 0x54 at delta offset 4 are truncated", dlt(0x54, 0, 0, 0, 0, 0, 0, 0, 0, 0), true},
		{"zero-length literal", "LITERAL at delta offset 4 has zero length", dlt(0x41, 0, 0), false},
		{"zero-length copy", "COPY at delta offset 4 has zero length", dlt(0x45, 1, 0, 0), false},
		{"negative literal length", "LITERAL at delta offset 4 has negative length", append(dlt(0x44), be(1<<63, 8)...), false},
		{"negative copy start", "COPY at delta offset 4 has negative start", append(append(dlt(0x51), be(math.MaxUint64, 8)...), 1, 0), false},
		{"negative copy length", "COPY at delta offset 4 has negative length", append(dlt(0x48, 0), be(1<<63+5, 8)...), false},
		{"copy start past basis", "COPY(start 1000, length 1)", dlt(0x49, 0x03, 0xe8, 1, 0), false},
		{"copy end past basis", "COPY(start 999, length 2) at delta offset 4 is outside the basis of 1000 bytes", dlt(0x49, 0x03, 0xe7, 2, 0), false},
		{"copy start+length overflows", "is outside the basis", append(append(dlt(0x54), be(math.MaxInt64-1, 8)...), be(10, 8)...), false},
		{"copy after good commands", "COPY(start 0, length 1001) at delta offset 10", dlt(0x02, 'o', 'k', 0x45, 0, 1, 0x4a, 0, 0, 0x03, 0xe9, 0), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			check := func(how string, err error) {
				t.Helper()
				if err == nil {
					t.Fatalf("%s: no error", how)
				}
				if !strings.Contains(err.Error(), c.want) {
					t.Errorf("%s: error %q does not mention %q", how, err, c.want)
				}
				if !errors.Is(err, ErrCorrupt) {
					t.Errorf("%s: error %q does not wrap ErrCorrupt", how, err)
				}
				if errors.Is(err, io.ErrUnexpectedEOF) != c.unexpected {
					t.Errorf("%s: error %q: wraps io.ErrUnexpectedEOF is %v", how, err, !c.unexpected)
				}
			}
			_, err := Patch(io.Discard, bytes.NewReader(basis), int64(len(basis)), bytes.NewReader(c.delta))
			check("Patch", err)
			r := NewReader(bytes.NewReader(basis), int64(len(basis)), bytes.NewReader(c.delta))
			_, err = io.ReadAll(r)
			check("NewReader", err)
			// The error sticks.
			if _, err2 := r.Read(make([]byte, 10)); err2 != err {
				t.Errorf("second Read: %v, want %v", err2, err)
			}
		})
	}
}

// TestOutputBeforeError: what precedes a bad command is still produced.
func TestOutputBeforeError(t *testing.T) {
	var out bytes.Buffer
	n, err := Patch(&out, bytes.NewReader(nil), 0, bytes.NewReader(dlt(0x03, 'a', 'b', 'c', 0x60)))
	if err == nil || n != 3 || out.String() != "abc" {
		t.Fatalf("got %d %q %v", n, out.String(), err)
	}
}

// TestAfterEnd: the decoder stops at END, as librsync does. Bytes after it
// are ignored, and a delta given as an io.ByteReader is not read past END.
func TestAfterEnd(t *testing.T) {
	delta := append(dlt(0x02, 'o', 'k', 0x00), "trailing bytes"...)
	var out bytes.Buffer
	if _, err := Patch(&out, bytes.NewReader(nil), 0, bytes.NewReader(delta)); err != nil || out.String() != "ok" {
		t.Fatalf("Patch: %q, %v", out.String(), err)
	}
	br := bufio.NewReader(bytes.NewReader(delta))
	got, err := io.ReadAll(NewReader(bytes.NewReader(nil), 0, br))
	if err != nil || string(got) != "ok" {
		t.Fatalf("NewReader: %q, %v", got, err)
	}
	if rest, _ := io.ReadAll(br); string(rest) != "trailing bytes" {
		t.Fatalf("left unread after END: %q", rest)
	}
	// And rdiff agrees.
	if got := rdiffPatch(t, nil, delta); string(got) != "ok" {
		t.Fatalf("rdiff: %q", got)
	}
}

func TestBadBasis(t *testing.T) {
	_, err := Patch(io.Discard, bytes.NewReader(nil), -1, bytes.NewReader(dlt(0)))
	if err == nil || !strings.Contains(err.Error(), "negative basis size") {
		t.Errorf("negative basis size: %v", err)
	}
	// A basis shorter than its claimed size.
	_, err = Patch(io.Discard, bytes.NewReader(make([]byte, 10)), 100, bytes.NewReader(dlt(0x45, 5, 20, 0)))
	if err == nil || !strings.Contains(err.Error(), "reading basis at offset 10 for COPY at delta offset 4") ||
		!errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short basis: %v", err)
	}
	if errors.Is(err, ErrCorrupt) {
		t.Errorf("short basis blamed on the delta: %v", err)
	}
}

func TestWriteError(t *testing.T) {
	_, err := Patch(failWriter{}, bytes.NewReader(nil), 0, bytes.NewReader(dlt(0x01, 'x', 0)))
	if !errors.Is(err, io.ErrClosedPipe) || !strings.Contains(err.Error(), "writing patched output") {
		t.Fatalf("got %v", err)
	}
}

// zeroAt is a basis of any size that is all zeros.
type zeroAt struct{}

func (zeroAt) ReadAt(b []byte, off int64) (int, error) {
	clear(b)
	return len(b), nil
}

// limitWriter fails once more than n bytes were written.
type limitWriter struct{ n int64 }

func (w *limitWriter) Write(b []byte) (int, error) {
	if int64(len(b)) > w.n {
		return 0, errors.New("enough")
	}
	w.n -= int64(len(b))
	return len(b), nil
}

// heapGrowth runs f and returns how many bytes it allocated.
func heapGrowth(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestHugeLengthsDoNotAllocate: lengths near 2^62 are streamed through the
// fixed buffer, not allocated.
func TestHugeLengthsDoNotAllocate(t *testing.T) {
	huge := uint64(1) << 62
	literal := append(append(dlt(0x44), be(huge, 8)...), make([]byte, 1<<20)...)
	copyCmd := append(append(dlt(0x54), be(0, 8)...), be(huge, 8)...)

	var err error
	grew := heapGrowth(func() {
		_, err = Patch(io.Discard, bytes.NewReader(nil), 0, bytes.NewReader(literal))
	})
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("2^62-byte literal: %v", err)
	}
	if grew > 512<<10 {
		t.Errorf("a 2^62-byte LITERAL made Patch allocate %d bytes", grew)
	}

	grew = heapGrowth(func() {
		_, err = Patch(&limitWriter{n: 8 << 20}, zeroAt{}, math.MaxInt64, bytes.NewReader(copyCmd))
	})
	if err == nil || !strings.Contains(err.Error(), "enough") {
		t.Fatalf("2^62-byte copy: %v", err)
	}
	if grew > 512<<10 {
		t.Errorf("a 2^62-byte COPY made Patch allocate %d bytes", grew)
	}

	grew = heapGrowth(func() {
		r := NewReader(zeroAt{}, math.MaxInt64, bytes.NewReader(copyCmd))
		_, err = io.CopyN(io.Discard, r, 8<<20)
	})
	if err != nil {
		t.Fatal(err)
	}
	if grew > 512<<10 {
		t.Errorf("reading 8 MiB of a 2^62-byte COPY allocated %d bytes", grew)
	}

	allocs := testing.AllocsPerRun(10, func() {
		_, _ = Patch(io.Discard, bytes.NewReader(nil), 0, bytes.NewReader(literal))
	})
	// Buffers and the error message, a few dozen at most (the race
	// detector's build makes a few more: 18 seen); none depend on the
	// length, which would mean billions.
	if allocs > 64 {
		t.Errorf("Patch of a 2^62-byte LITERAL made %v allocations", allocs)
	}
}
