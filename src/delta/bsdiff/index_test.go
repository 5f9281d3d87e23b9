package bsdiff

import (
	"bytes"
	"index/suffixarray"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// smallAlphabet is n bytes drawn from the first k byte values (zero
// included), which makes long repeats and zero padding likely.
func smallAlphabet(r *rand.Rand, n, k int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.IntN(k))
	}
	return b
}

func TestSuffixArray(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for n := range 300 {
		data := smallAlphabet(r, n, 1+r.IntN(4))
		sa, err := suffixArray(data)
		if err != nil {
			t.Fatal(err)
		}
		if len(sa) != n {
			t.Fatalf("n=%d: %d offsets", n, len(sa))
		}
		for i := 1; i < n; i++ {
			if bytes.Compare(data[sa[i-1]:], data[sa[i]:]) >= 0 {
				t.Fatalf("n=%d: suffixes %d and %d out of order", n, sa[i-1], sa[i])
			}
		}
	}
}

// TestSADecoderSplit feeds index/suffixarray's serialization to the decoder
// one byte at a time, since it must not depend on how Write cuts it.
func TestSADecoderSplit(t *testing.T) {
	data := smallAlphabet(rand.New(rand.NewPCG(2, 2)), 50000, 3)
	want, err := suffixArray(data)
	if err != nil {
		t.Fatal(err)
	}
	var ser bytes.Buffer
	if err := suffixarray.New(data).Write(&ser); err != nil {
		t.Fatal(err)
	}
	d := &saDecoder{n: len(data)}
	for _, b := range ser.Bytes() {
		if _, err := d.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.finish(); err != nil {
		t.Fatal(err)
	}
	if len(d.sa) != len(want) {
		t.Fatalf("%d offsets, want %d", len(d.sa), len(want))
	}
	for i := range want {
		if d.sa[i] != want[i] {
			t.Fatalf("offset %d differs", i)
		}
	}
	// A serialization cut short, or of other data, is refused.
	d = &saDecoder{n: len(data)}
	if _, err := d.Write(ser.Bytes()[:ser.Len()-1]); err == nil {
		if err := d.finish(); err == nil {
			t.Fatal("truncated serialization accepted")
		}
	}
	d = &saDecoder{n: len(data) - 1}
	if _, err := d.Write(ser.Bytes()); err == nil {
		t.Fatal("serialization of the wrong length accepted")
	}
}

func TestLongestMatch(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for range 400 {
		k := 1 + r.IntN(5)
		old := smallAlphabet(r, r.IntN(200), k)
		if r.IntN(4) == 0 {
			old = randBytes(r.Uint64(), r.IntN(2000)) // buckets of all sizes
		}
		ix, err := newIndex(old)
		if err != nil {
			t.Fatal(err)
		}
		for range 20 {
			var s []byte
			if len(old) > 0 && r.IntN(2) == 0 {
				i := r.IntN(len(old))
				s = append(s, old[i:i+r.IntN(len(old)-i+1)]...)
			}
			s = append(s, smallAlphabet(r, r.IntN(6), k)...)
			want := 0
			for p := range old {
				want = max(want, matchLen(old[p:], s))
			}
			rank, n := ix.longestMatch(s)
			if n != want {
				t.Fatalf("old %x, s %x: match of %d, want %d", old, s, n, want)
			}
			if n > 0 && !bytes.Equal(old[ix.sa[rank]:][:n], s[:n]) {
				t.Fatalf("old %x, s %x: rank %d (offset %d) does not match %d bytes", old, s, rank, ix.sa[rank], n)
			}
		}
	}
}

func TestMatchLen(t *testing.T) {
	a := randBytes(4, 100)
	for i := range 101 {
		b := bytes.Clone(a)
		if i < len(b) {
			b[i]++
		}
		for _, n := range []int{0, 1, 7, 8, 9, 50, 100} {
			if got, want := matchLen(a[:n], b), min(i, n); got != want {
				t.Fatalf("difference at %d, len %d: %d, want %d", i, n, got, want)
			}
		}
	}
}

// TestCompress checks compress's pieces: each fits in a packet, and they
// decode, in turn, to the data.
func TestCompress(t *testing.T) {
	for _, data := range [][]byte{
		{1},
		make([]byte, 3<<20),
		randBytes(1, 1<<20),
		program(2, 1<<20),
		bytes.Repeat(randBytes(3, 100<<10), 5),
	} {
		pieces, err := compress(data)
		if err != nil {
			t.Fatal(err)
		}
		var all []byte
		for i, p := range pieces {
			if len(p.data) > maxPacket {
				t.Errorf("piece %d of %d bytes", i, len(p.data))
			}
			if i > 0 && p.start <= pieces[i-1].start && p.start != len(data) {
				t.Errorf("piece %d starts at %d, after %d", i, p.start, pieces[i-1].start)
			}
			all = append(all, p.data...)
		}
		dec, err := zstd.NewReader(nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := dec.DecodeAll(all, nil)
		dec.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d pieces decode to %d bytes (%v), want %d", len(pieces), len(got), err, len(data))
		}
		t.Logf("%d bytes: %d pieces, %d bytes", len(data), len(pieces), len(all))
	}
}
