package bsdiff

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// zframe compresses b into one zstd frame with the given window.
func zframe(t testing.TB, b []byte, window int) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithWindowSize(window), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enc.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// triples encodes control triples given as seek, diffLen, extraLen, ...;
// lengths are uint64 bit patterns so that huge ones can be written.
func triples(v ...int64) []byte {
	var b []byte
	for i := 0; i+2 < len(v); i += 3 {
		b = binary.AppendVarint(b, v[i])
		b = binary.AppendUvarint(b, uint64(v[i+1]))
		b = binary.AppendUvarint(b, uint64(v[i+2]))
	}
	return b
}

// container wraps compressed streams (nil: absent) into a patch, each
// stream's packets in turn.
func container(newSize uint64, ctrl, diff, extra []byte) []byte {
	p := append([]byte(magic+"\x01"), binary.AppendUvarint(nil, newSize)...)
	for s, data := range [][]byte{ctrl, diff, extra} {
		p = appendPackets(p, s, data)
	}
	return append(p, tagEnd)
}

func appendPackets(p []byte, stream int, data []byte) []byte {
	for len(data) > 0 {
		n := min(len(data), maxPacket)
		p = append(p, byte(stream))
		p = binary.AppendUvarint(p, uint64(n))
		p = append(p, data[:n]...)
		data = data[n:]
	}
	return p
}

func apply(old, patch []byte, newSize int64) ([]byte, error) {
	var out bytes.Buffer
	err := Patch(&out, bytes.NewReader(old), int64(len(old)), bytes.NewReader(patch), newSize)
	return out.Bytes(), err
}

func TestHostile(t *testing.T) {
	old := []byte(strings.Repeat("0123456789", 10)) // 100 bytes
	z := func(b []byte) []byte { return zframe(t, b, 1<<10) }
	valid := container(15, z(triples(10, 5, 10)), z(make([]byte, 5)), z([]byte("abcdefghij")))
	if got, err := apply(old, valid, 15); err != nil || string(got) != "01234abcdefghij" {
		t.Fatalf("the valid base case: %q, %v", got, err)
	}
	bigWindow := func() []byte {
		b := zframe(t, make([]byte, 2*maxWindow), 8*maxWindow)
		return container(uint64(2*maxWindow), z(triples(0, 0, 2*maxWindow)), nil, b)
	}()
	badZstd := z([]byte("abcdefghij"))
	badZstd[len(badZstd)/2] ^= 0xff

	cases := []struct {
		name    string
		patch   []byte
		newSize int64
		want    string // in the error
	}{
		{"empty", nil, 0, "truncated"},
		{"bad magic", append([]byte("BSDX\x01\x00"), tagEnd), 0, "magic"},
		{"bad version", append([]byte("BSDZ\x02\x00"), tagEnd), 0, "version"},
		{"size mismatch", valid, 16, "makes 15 bytes, want 16"},
		{"overlong size", append([]byte("BSDZ\x01"), bytes.Repeat([]byte{0xff}, 11)...), 0, "overflows"},
		{"seek before old", container(1, z(triples(-1, 1, 0)), z([]byte{0}), nil), 1, "leaves the old data"},
		{"seek past old", container(1, z(triples(101, 0, 1)), nil, z([]byte{0})), 1, "leaves the old data"},
		{"seek far back", container(1, z(triples(-1<<63, 1, 0)), z([]byte{0}), nil), 1, "leaves the old data"},
		{"diff past old", container(20, z(triples(90, 20, 0)), z(make([]byte, 20)), nil), 20, "overrun the old data"},
		{"diff longer than new", container(10, z(triples(0, 11, 0)), z(make([]byte, 11)), nil), 10, "overruns the new size"},
		{"extra longer than new", container(10, z(triples(0, 5, 6)), z(make([]byte, 5)), z(make([]byte, 6))), 10, "overruns the new size"},
		{"lengths that overflow", container(10, z(triples(0, 5, -1)), z(make([]byte, 5)), nil), 10, "overruns the new size"},
		{"huge diff", container(10, z(triples(0, 1<<62, 0)), nil, nil), 10, "overruns the new size"},
		{"empty triple", container(10, z(triples(0, 0, 0)), nil, nil), 10, "empty triple"},
		{"no triples", container(10, nil, nil, nil), 10, "control stream ends early"},
		{"control cut mid-triple", container(10, z(triples(0, 5, 5)[:2]), nil, nil), 10, "control stream ends early"},
		{"diff stream short", container(10, z(triples(0, 10, 0)), z(make([]byte, 9)), nil), 10, "diff stream ends early"},
		{"extra stream short", container(10, z(triples(0, 0, 10)), nil, z(make([]byte, 9))), 10, "extra stream ends early"},
		{"extra stream absent", container(10, z(triples(0, 0, 10)), nil, nil), 10, "extra stream ends early"},
		{"control goes on", container(10, z(triples(0, 0, 10, 0, 0, 1)), nil, z(make([]byte, 10))), 10, "control stream goes on"},
		{"diff goes on", container(10, z(triples(0, 10, 0)), z(make([]byte, 11)), nil), 10, "diff stream goes on"},
		{"extra goes on", container(10, z(triples(0, 0, 10)), nil, z(make([]byte, 11))), 10, "extra stream goes on"},
		{"trailing byte", append(bytes.Clone(valid), 0), 15, "after the end marker"},
		{"trailing packet", appendPackets(bytes.Clone(valid), streamExtra, []byte{1}), 15, "after the end marker"},
		{"no end marker", valid[:len(valid)-1], 15, "truncated"},
		{"unknown packet", append(bytes.Clone(valid[:6]), 9, 1, 0), 15, "unknown packet type 9"},
		{"empty packet", append(bytes.Clone(valid[:6]), streamCtrl, 0), 15, "a packet of 0 bytes"},
		{"oversized packet", binary.AppendUvarint(append(bytes.Clone(valid[:6]), streamCtrl), maxPacket+1), 15, "a packet of 65537 bytes"},
		{"packet cut short", append(bytes.Clone(valid[:6]), streamCtrl, 10, 1, 2), 15, "truncated"},
		{"packets far ahead", func() []byte {
			p := []byte("BSDZ\x01\x0f")
			for range maxQueued/maxPacket + 1 {
				p = appendPackets(p, streamExtra, make([]byte, maxPacket))
			}
			return appendPackets(p, streamCtrl, z(triples(10, 5, 10)))
		}(), 15, "wait for their streams"},
		{"window too large", bigWindow, 2 * maxWindow, "extra stream"},
		{"corrupt zstd", container(10, z(triples(0, 0, 10)), nil, badZstd), 10, "extra stream"},
		{"not zstd", container(10, z(triples(0, 0, 10)), nil, []byte("plain text, not zstd")), 10, "extra stream"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := apply(old, c.patch, c.newSize)
			if err == nil {
				t.Fatalf("no error; made %d bytes", len(out))
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("error %q does not wrap ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if int64(len(out)) > c.newSize {
				t.Errorf("made %d bytes, more than %d", len(out), c.newSize)
			}
		})
	}
}

// TestTruncated cuts a real patch at every length: all must fail as
// corrupt, none may panic.
func TestTruncated(t *testing.T) {
	prog := program(5, 200<<10)
	next := relink(prog, 5)
	patch, err := Diff(prog, next)
	if err != nil {
		t.Fatal(err)
	}
	step := 1
	if testing.Short() {
		step = 7
	}
	for n := 0; n < len(patch); n += step {
		_, err := apply(prog, patch[:n], int64(len(next)))
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut at %d of %d: %v", n, len(patch), err)
		}
	}
}

// TestBadArguments covers what is the caller's fault, not the patch's.
func TestBadArguments(t *testing.T) {
	old := []byte("some old data")
	patch, err := Diff(old, []byte("some new data"))
	if err != nil {
		t.Fatal(err)
	}
	if err := Patch(io.Discard, bytes.NewReader(old), -1, bytes.NewReader(patch), 13); err == nil {
		t.Error("negative old size accepted")
	}
	if err := Patch(io.Discard, bytes.NewReader(old), 13, bytes.NewReader(patch), -1); err == nil {
		t.Error("negative new size accepted")
	}
	// old shorter than it is said to be.
	err = Patch(io.Discard, bytes.NewReader(old[:3]), 13, bytes.NewReader(patch), 13)
	if err == nil || errors.Is(err, ErrCorrupt) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short old: %v", err)
	}
	// Failures to write and to read the patch come back as they are.
	errW := errors.New("disk full")
	err = Patch(failWriter{errW}, bytes.NewReader(old), 13, bytes.NewReader(patch), 13)
	if !errors.Is(err, errW) || errors.Is(err, ErrCorrupt) {
		t.Errorf("failing writer: %v", err)
	}
	errR := errors.New("connection reset")
	err = Patch(io.Discard, bytes.NewReader(old), 13, io.MultiReader(bytes.NewReader(patch[:len(patch)-3]), failReader{errR}), 13)
	if !errors.Is(err, errR) || errors.Is(err, ErrCorrupt) {
		t.Errorf("failing patch reader: %v", err)
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

type failReader struct{ err error }

func (r failReader) Read([]byte) (int, error) { return 0, r.err }

// zeroReaderAt is an old file of any size, all zeros, that takes no memory.
type zeroReaderAt struct{}

func (zeroReaderAt) ReadAt(p []byte, _ int64) (int, error) {
	clear(p)
	return len(p), nil
}

// memWriter discards what it is given but samples the heap every few MiB,
// and fails once limit bytes have come.
type memWriter struct {
	n, limit, next int64
	peak           uint64
}

func (w *memWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	if w.n >= w.next {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		w.peak = max(w.peak, ms.HeapAlloc)
		w.next += 8 << 20
	}
	if w.limit > 0 && w.n >= w.limit {
		return len(p), errLimit
	}
	return len(p), nil
}

var errLimit = errors.New("output limit reached")

// zeros is a zstd frame of n zero bytes: a decompression bomb, a few KiB
// that inflate without end.
func zeros(t testing.TB, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithWindowSize(maxWindow), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for ; n > 0; n -= len(chunk) {
		if _, err := enc.Write(chunk[:min(n, len(chunk))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestBoundedMemory applies patches that declare 2^40 bytes of output and
// feed it from decompression bombs: memory must not grow with either, while
// the patch fails (its bomb runs out) or the writer cuts it off.
func TestBoundedMemory(t *testing.T) {
	const huge = 1 << 40
	bomb := zeros(t, 64<<20)
	t.Logf("a %d-byte frame of 64 MiB", len(bomb))
	cases := []struct {
		name  string
		patch []byte
		limit int64
		want  error
	}{
		{"extra bomb runs out", container(huge, zframe(t, triples(0, 0, huge), 1<<10), nil, bomb), 0, ErrCorrupt},
		{"diff bomb cut off", container(huge, zframe(t, triples(0, huge, 0), 1<<10), bomb, nil), 48 << 20, errLimit},
		{"bomb past a small output", container(10, zframe(t, triples(0, 0, 10), 1<<10), nil, bomb), 0, ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			w := &memWriter{limit: c.limit}
			err := Patch(w, zeroReaderAt{}, huge, bytes.NewReader(c.patch), readSize(c.patch))
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			w.peak = max(w.peak, after.HeapAlloc)
			growth := int64(w.peak) - int64(before.HeapAlloc)
			allocated := after.TotalAlloc - before.TotalAlloc
			t.Logf("%v after %d bytes; heap growth %d KiB, allocated %d KiB", err, w.n, growth>>10, allocated>>10)
			if growth > 8<<20 || allocated > 16<<20 {
				t.Errorf("heap grew by %d bytes, %d allocated", growth, allocated)
			}
		})
	}
}

// readSize is the new size a patch's header declares.
func readSize(patch []byte) int64 {
	n, _ := binary.Uvarint(patch[len(magic)+1:])
	return int64(n)
}
