package rdiff

import (
	"bytes"
	"crypto/sha256"
	"hash"
	"io"
	"testing"
)

// countWriter counts and hashes what it is given.
type countWriter struct {
	n int64
	h hash.Hash
}

func (w *countWriter) Write(b []byte) (int, error) {
	w.n += int64(len(b))
	return w.h.Write(b)
}

// FuzzPatch feeds arbitrary deltas to the decoder against a small basis:
// it must not panic, its output is bounded by what the delta can claim,
// and Patch and NewReader agree.
func FuzzPatch(f *testing.F) {
	basis := randBytes(1, 300)
	target := cat(basis[100:250], []byte("new bytes"), basis[:90])
	var d bytes.Buffer
	if err := Delta(&d, bytes.NewReader(basis), int64(len(basis)), bytes.NewReader(target), 16); err != nil {
		f.Fatal(err)
	}
	f.Add(d.Bytes())
	f.Add(dlt(0))
	f.Add(dlt(0x03, 'a', 'b', 'c', 0x46, 0, 0x01, 0x2c, 0x41, 2, 'x', 'y', 0))
	f.Add(append(append(dlt(0x54), be(0, 8)...), be(300, 8)...))
	f.Add(append(dlt(0x44), be(1<<62, 8)...))
	f.Add(dlt(0x55))

	f.Fuzz(func(t *testing.T, delta []byte) {
		out := &countWriter{h: sha256.New()}
		n, err := Patch(out, bytes.NewReader(basis), int64(len(basis)), bytes.NewReader(delta))
		if n != out.n {
			t.Fatalf("Patch reported %d bytes, wrote %d", n, out.n)
		}
		// Each command byte yields at most one COPY of the whole basis;
		// literal data is at most the delta itself.
		if bound := int64(len(delta)) * int64(len(basis)+1); n > bound {
			t.Fatalf("%d bytes out of a %d-byte delta", n, len(delta))
		}
		viaReader := &countWriter{h: sha256.New()}
		_, rerr := io.Copy(viaReader, NewReader(bytes.NewReader(basis), int64(len(basis)), bytes.NewReader(delta)))
		if (err == nil) != (rerr == nil) || (err != nil && err.Error() != rerr.Error()) {
			t.Fatalf("Patch: %v; NewReader: %v", err, rerr)
		}
		if !bytes.Equal(out.h.Sum(nil), viaReader.h.Sum(nil)) {
			t.Fatal("Patch and NewReader produced different bytes")
		}
	})
}

// FuzzRoundTrip: whatever the basis, target and block length, Delta then
// Patch gives back the target.
func FuzzRoundTrip(f *testing.F) {
	// Seeds are short: the fuzzer's minimization of an input is quadratic
	// in its length.
	r := randBytes(3, 200)
	f.Add(r, r, uint16(31))
	f.Add(r, cat(r[10:90], []byte("inserted"), r[100:]), uint16(15))
	f.Add(r[:100], cat(r[50:100], r[:50], r[:50]), uint16(6))
	f.Add(r[:99], cat(r[:60], r[90:99]), uint16(29)) // the short last block at the end
	f.Add([]byte{}, []byte("no basis"), uint16(0))
	f.Add(bytes.Repeat([]byte{0}, 100), bytes.Repeat([]byte{0}, 150), uint16(9))

	f.Fuzz(func(t *testing.T, basis, target []byte, bl uint16) {
		blockLen := int(bl%256) + 1
		var d bytes.Buffer
		if err := Delta(&d, bytes.NewReader(basis), int64(len(basis)), bytes.NewReader(target), blockLen); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if _, err := Patch(&out, bytes.NewReader(basis), int64(len(basis)), &d); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), target) {
			t.Fatalf("round trip with block length %d changed the target", blockLen)
		}
	})
}
