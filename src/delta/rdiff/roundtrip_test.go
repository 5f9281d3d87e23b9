package rdiff

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

// pair is a basis and a target made from it.
type pair struct {
	name           string
	basis, target  []byte
	blockLen       int // 0 for the default
	wantMaxCopies  int // when > 0, the delta may hold at most this many COPYs
	wantMaxLiteral int // when >= 0 with wantMaxCopies, at most this many literal bytes
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// pairs are the inputs of the round-trip tests and of the comparisons with
// librsync.
func pairs() []pair {
	r1 := randBytes(1, 300_000)
	r2 := randBytes(2, 1<<20+77) // not a multiple of 512
	ins := randBytes(3, 70_000)  // longer than a 2-byte LITERAL length
	zero := make([]byte, 512*40)
	edited := bytes.Clone(r2)
	copy(edited[10_000:], randBytes(4, 100))
	copy(edited[600_000:], randBytes(5, 3))
	blockA, blockB := randBytes(6, 512), randBytes(7, 512)
	tarA, tarB := tarPair()
	return []pair{
		{name: "identical", basis: r2, target: r2, wantMaxCopies: 1, wantMaxLiteral: 0},
		{name: "both empty", wantMaxCopies: -1},
		{name: "empty basis", target: r1},
		{name: "empty target", basis: r1, wantMaxCopies: -1},
		{name: "target shorter than a block", basis: r1, target: r1[1000:1300]},
		{name: "small edits", basis: r2, target: edited},
		{name: "insertion shifts alignment", basis: r2, target: cat(r2[:123_457], []byte("x"), r2[123_457:])},
		{name: "deletion shifts alignment", basis: r2, target: cat(r2[:99_999], r2[100_010:])},
		{name: "long insertion", basis: r2, target: cat(r2[:500_000], ins, r2[500_000:])},
		{name: "long literal at end", basis: r1, target: cat(r1, ins)},
		{name: "blocks repeated", basis: cat(blockA, blockB, blockA, blockA, blockB),
			target: cat(blockB, blockA, blockA, blockA, blockA, blockB, blockB, []byte("tail"))},
		{name: "zero runs", basis: cat(r1[:512], zero[:512], r1[:2048], zero, r1[4096:8192]),
			target: cat(zero, zero, r1[:512]), wantMaxCopies: 4, wantMaxLiteral: 0},
		{name: "short last block moved", basis: r2, target: cat(r2[1_000_000:], r2[:1_000_000])},
		{name: "short last block at end", basis: r2, target: cat(r2[:50_000], ins[:10], r2[1<<20:])},
		{name: "block length 1", basis: r1[:3000], target: cat(r1[1000:2000], []byte("new"), r1[:500]), blockLen: 1},
		{name: "block length 7", basis: r1[:30_000], target: cat(r1[1000:20_000], []byte("new"), r1[:5000]), blockLen: 7},
		{name: "block length 4096", basis: r2, target: edited, blockLen: 4096},
		{name: "tar with changed files", basis: tarA, target: tarB},
	}
}

// tarPair makes a tar of a small tree of text-like files and one of the same
// tree with files changed, added and removed, like two image layers.
func tarPair() (before, after []byte) {
	words := strings.Fields("the layer image engine balena device delta block tar file " +
		"container runtime update root filesystem package library header data")
	text := func(seed uint64, n int) []byte {
		r := rand.New(rand.NewPCG(seed, 1))
		var b bytes.Buffer
		for b.Len() < n {
			b.WriteString(words[r.IntN(len(words))])
			if r.IntN(12) == 0 {
				b.WriteByte('\n')
			} else {
				b.WriteByte(' ')
			}
		}
		return b.Bytes()
	}
	type file struct {
		name string
		data []byte
	}
	var files []file
	for i := range 60 {
		files = append(files, file{fmt.Sprintf("usr/share/doc/pkg%02d/README", i), text(uint64(i), 200+i*900)})
	}
	files = append(files, file{"usr/lib/libbig.so", randBytes(99, 200_000)})
	write := func(fs []file) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, f := range fs {
			_ = tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg})
			_, _ = tw.Write(f.data)
		}
		_ = tw.Close()
		return buf.Bytes()
	}
	before = write(files)
	changed := append([]file(nil), files...)
	changed[3].data = append(bytes.Clone(changed[3].data), "one more line\n"...)
	changed[20].data = text(1000, 5000)
	big := bytes.Clone(changed[60].data)
	copy(big[100_000:], "patched")
	changed[60].data = big
	changed = append(changed[:40], changed[41:]...)
	changed = append(changed, file{"usr/share/doc/new/README", text(2000, 3000)})
	return before, write(changed)
}

func TestRoundTrip(t *testing.T) {
	for _, p := range pairs() {
		t.Run(p.name, func(t *testing.T) {
			d := makeDelta(t, p.basis, p.target, p.blockLen)
			if got := applyDelta(t, p.basis, d); !bytes.Equal(got, p.target) {
				t.Fatalf("patched output differs from target (%d vs %d bytes)", len(got), len(p.target))
			}
			got, err := io.ReadAll(NewReader(bytes.NewReader(p.basis), int64(len(p.basis)), bytes.NewReader(d)))
			if err != nil || !bytes.Equal(got, p.target) {
				t.Fatalf("NewReader: %v, equal %v", err, bytes.Equal(got, p.target))
			}
			s := deltaStats(t, d)
			t.Logf("target %d bytes, delta %d bytes: %d COPY (%d bytes), %d LITERAL (%d bytes)",
				len(p.target), len(d), s.copies, s.copyBytes, s.literals, s.literalBytes)
			if p.wantMaxCopies != 0 && s.copies > int64(max(p.wantMaxCopies, 0)) {
				t.Errorf("%d COPY commands, want at most %d", s.copies, p.wantMaxCopies)
			}
			if p.wantMaxCopies != 0 && s.literalBytes > int64(p.wantMaxLiteral) {
				t.Errorf("%d literal bytes, want at most %d", s.literalBytes, p.wantMaxLiteral)
			}
		})
	}
}

func TestEmptyDelta(t *testing.T) {
	d := makeDelta(t, nil, nil, 0)
	if want := []byte{0x72, 0x73, 0x02, 0x36, 0x00}; !bytes.Equal(d, want) {
		t.Fatalf("delta of nothing is % x, want % x", d, want)
	}
}

// TestShiftedMatches checks the rolling search: after an insertion of a
// few bytes every block after it must still be found.
func TestShiftedMatches(t *testing.T) {
	basis := randBytes(10, 512*200)
	target := cat(basis[:512*50+17], []byte("abc"), basis[512*50+17:])
	s := deltaStats(t, makeDelta(t, basis, target, 512))
	// The block holding the insertion point is lost (512 bytes + 3), the
	// rest is copied in two runs.
	if s.copies != 2 || s.literalBytes != 512+3 {
		t.Fatalf("got %+v, want 2 COPYs and 515 literal bytes", s)
	}
}

func TestBlockLenLimits(t *testing.T) {
	for _, bl := range []int{-1, MaxBlockLen + 1} {
		err := Delta(io.Discard, bytes.NewReader(nil), 0, bytes.NewReader(nil), bl)
		if err == nil || !strings.Contains(err.Error(), "block length") {
			t.Errorf("block length %d: got %v, want an error about the block length", bl, err)
		}
	}
	basis := randBytes(1, 5000)
	target := cat(basis[2000:], basis[:2000])
	d := makeDelta(t, basis, target, MaxBlockLen) // the whole basis is one short block
	if got := applyDelta(t, basis, d); !bytes.Equal(got, target) {
		t.Fatal("round trip with the largest block length failed")
	}
}

func TestDeltaErrors(t *testing.T) {
	basis := randBytes(1, 4096)
	// A basis shorter than claimed.
	err := Delta(io.Discard, bytes.NewReader(basis), 8192, bytes.NewReader(basis), 512)
	if err == nil || !strings.Contains(err.Error(), "indexing basis") {
		t.Errorf("short basis: got %v", err)
	}
	// A target that fails.
	err = Delta(io.Discard, bytes.NewReader(basis), 4096, io.MultiReader(bytes.NewReader(basis), errReader{}), 512)
	if err == nil || !strings.Contains(err.Error(), "reading target") {
		t.Errorf("failing target: got %v", err)
	}
	// An output that fails.
	err = Delta(failWriter{}, bytes.NewReader(basis), 4096, bytes.NewReader(randBytes(2, 200_000)), 512)
	if err == nil || !strings.Contains(err.Error(), "writing delta") {
		t.Errorf("failing output: got %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrClosedPipe }

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

// prngAt is a basis of any size made up on demand: byte i depends only on
// i, so it needs no memory and can be read at random.
type prngAt struct{ size int64 }

func (p prngAt) ReadAt(b []byte, off int64) (int, error) {
	if off >= p.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(b)), p.size-off))
	for i := 0; i < n; {
		w := (off + int64(i)) / 8
		var word [8]byte
		binary.LittleEndian.PutUint64(word[:], splitmix(uint64(w)))
		k := copy(b[i:n], word[(off+int64(i))%8:])
		i += k
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// TestLargeStreamed round-trips a target of more than 64 MiB that is never
// held in memory: the basis is computed on demand, the target is a stream of
// basis sections with insertions, and both sides are compared by SHA-256.
// It also checks that Delta's memory does not grow with the target.
func TestLargeStreamed(t *testing.T) {
	if testing.Short() {
		t.Skip("large input")
	}
	const size = 72 << 20
	basis := prngAt{size: size}
	target := func() io.Reader {
		var parts []io.Reader
		var off int64
		for i := 0; off < size; i++ {
			n := min(int64(5<<20)+int64(i)*4099, size-off)
			parts = append(parts, io.NewSectionReader(basis, off, n))
			parts = append(parts, bytes.NewReader(randBytes(uint64(i), 1+i*37)))
			off += n + int64(i%3)*1000 // sometimes skip basis bytes too
		}
		return io.MultiReader(parts...)
	}

	want := sha256.New()
	var delta bytes.Buffer
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := Delta(&delta, basis, size, io.TeeReader(target(), want), 512); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	// The index of 147k blocks is ~5 MiB; the delta itself is small.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("Delta allocated %d MiB for a %d MiB target", alloc>>20, size>>20)
	}
	s := deltaStats(t, delta.Bytes())
	t.Logf("delta %d bytes: %+v", delta.Len(), s)
	if s.copyBytes+s.literalBytes < 64<<20 {
		t.Fatalf("target only %d bytes", s.copyBytes+s.literalBytes)
	}

	got := sha256.New()
	n, err := Patch(got, basis, size, &delta)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatalf("patched output (%d bytes) differs from target", n)
	}
}

// TestReaderShapes feeds target and delta through readers that return
// little at a time or data together with io.EOF.
func TestReaderShapes(t *testing.T) {
	basis := randBytes(1, 300_000)
	target := cat(basis[1000:150_000], randBytes(2, 70_000), basis[150_000:290_001])
	shapes := map[string]func(io.Reader) io.Reader{
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
		"data+EOF": iotest.DataErrReader,
	}
	want := makeDelta(t, basis, target, 512)
	for name, shape := range shapes {
		t.Run(name, func(t *testing.T) {
			var d bytes.Buffer
			if err := Delta(&d, bytes.NewReader(basis), int64(len(basis)), shape(bytes.NewReader(target)), 512); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(d.Bytes(), want) {
				t.Error("delta depends on how the target is read")
			}
			var out bytes.Buffer
			if _, err := Patch(&out, bytes.NewReader(basis), int64(len(basis)), shape(bytes.NewReader(want))); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), target) {
				t.Error("patched output differs")
			}
		})
	}
}

// TestReaderContract runs the standard io.Reader checks on NewReader.
func TestReaderContract(t *testing.T) {
	basis := randBytes(1, 100_000)
	target := cat(basis[5000:60_000], []byte("literal"), basis[:3000])
	d := makeDelta(t, basis, target, 512)
	if err := iotest.TestReader(NewReader(bytes.NewReader(basis), int64(len(basis)), bytes.NewReader(d)), target); err != nil {
		t.Fatal(err)
	}
}

// TestRoller: rolling the hash along gives the hash of each window.
func TestRoller(t *testing.T) {
	data := randBytes(5, 3000)
	for _, bl := range []int{1, 2, 3, 4, 5, 7, 64, 512, 1000} {
		r := newRoller(maphash.MakeSeed(), bl)
		h := r.sum(data[:bl])
		for i := 1; i+bl <= len(data); i++ {
			h = r.rotate(h, data[i-1], data[i-1+bl])
			if want := r.sum(data[i : i+bl]); h != want {
				t.Fatalf("block length %d, offset %d: rolled %x, summed %x", bl, i, h, want)
			}
		}
	}
}
