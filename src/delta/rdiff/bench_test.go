package rdiff

import (
	"bytes"
	"io"
	"testing"
)

const benchSize = 16 << 20

// benchPair is 16 MiB of basis and a target with a small edit, an
// insertion and a deletion every 256 KiB or so.
func benchPair() (basis, target []byte) {
	basis = randBytes(1, benchSize)
	var b bytes.Buffer
	for off := 0; off < benchSize; {
		n := min(256<<10, benchSize-off)
		chunk := bytes.Clone(basis[off : off+n])
		copy(chunk[1000:], "edited")
		b.Write(chunk[:n/2])
		b.Write(randBytes(uint64(off), 100))
		b.Write(chunk[n/2+50:])
		off += n
	}
	return basis, b.Bytes()
}

func BenchmarkDelta(b *testing.B) {
	basis, similar := benchPair()
	b.Run("similar", func(b *testing.B) { benchDelta(b, basis, similar) })
	b.Run("unrelated", func(b *testing.B) { benchDelta(b, basis, randBytes(2, benchSize)) })
}

func benchDelta(b *testing.B, basis, target []byte) {
	b.SetBytes(int64(len(target)))
	var size int
	var out bytes.Buffer
	for b.Loop() {
		out.Reset()
		if err := Delta(&out, bytes.NewReader(basis), int64(len(basis)), bytes.NewReader(target), 512); err != nil {
			b.Fatal(err)
		}
		size = out.Len()
	}
	b.ReportMetric(float64(size), "delta-bytes")
}

func BenchmarkPatch(b *testing.B) {
	basis, target := benchPair()
	var d bytes.Buffer
	if err := Delta(&d, bytes.NewReader(basis), benchSize, bytes.NewReader(target), 512); err != nil {
		b.Fatal(err)
	}
	b.Run("similar", func(b *testing.B) { benchPatch(b, basis, d.Bytes(), int64(len(target))) })
	var lit bytes.Buffer
	if err := Delta(&lit, bytes.NewReader(nil), 0, bytes.NewReader(target), 512); err != nil {
		b.Fatal(err)
	}
	b.Run("literal", func(b *testing.B) { benchPatch(b, nil, lit.Bytes(), int64(len(target))) })
}

func benchPatch(b *testing.B, basis, delta []byte, size int64) {
	b.SetBytes(size)
	for b.Loop() {
		n, err := Patch(io.Discard, bytes.NewReader(basis), int64(len(basis)), bytes.NewReader(delta))
		if err != nil || n != size {
			b.Fatal(n, err)
		}
	}
}
