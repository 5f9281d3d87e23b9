package bsdiff

import (
	"encoding/binary"
	"errors"
	"fmt"
	"index/suffixarray"
	"math"
	"math/bits"
)

// suffixArray returns the suffix array of data: the start offsets of all its
// suffixes in lexicographic order.
//
// index/suffixarray builds it (with SA-IS, in linear time) but keeps it
// private; its Lookup and FindAllIndex only find exact occurrences, not the
// longest prefix that occurs, which is what bsdiff's scan needs at every
// step. The array does leave the package through Index.Write, so we decode
// that serialization as it is written, without buffering it. The layout is
// the one Index.Read accepts: the length as a varint in a fixed
// binary.MaxVarintLen64 bytes, the data, then chunks of one such fixed-width
// varint (the chunk's size, itself included) followed by uvarint offsets.
// Because that layout is not a documented interface, the decoder checks all
// of it (count, framing, and that the offsets are a permutation) and fails
// rather than return a wrong array.
func suffixArray(data []byte) ([]int32, error) {
	if len(data) > maxInput {
		return nil, fmt.Errorf("bsdiff: %d bytes is too large to index (limit %d)", len(data), maxInput)
	}
	d := &saDecoder{n: len(data), sa: make([]int32, 0, len(data))}
	if err := suffixarray.New(data).Write(d); err != nil {
		return nil, fmt.Errorf("bsdiff: decoding index/suffixarray's serialization: %w", err)
	}
	if err := d.finish(); err != nil {
		return nil, fmt.Errorf("bsdiff: decoding index/suffixarray's serialization: %w", err)
	}
	return d.sa, nil
}

var errSAFormat = errors.New("unexpected layout")

// saDecoder is the io.Writer that Index.Write writes to. It accepts the
// stream split at any points, so it does not depend on how Write
// happens to cut its calls.
type saDecoder struct {
	n  int     // the data's length, known in advance
	sa []int32 // the offsets decoded so far

	hdr    [binary.MaxVarintLen64]byte // a fixed-width varint being collected
	hdrLen int
	state  int // saHeader, saData, saChunkHeader, saChunkBody
	skip   int // data bytes still to skip
	body   int // bytes left in the current chunk's body

	val   uint64 // the uvarint being decoded
	shift uint
}

const (
	saHeader = iota
	saData
	saChunkHeader
	saChunkBody
)

func (d *saDecoder) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		switch d.state {
		case saHeader, saChunkHeader:
			c := copy(d.hdr[d.hdrLen:], p)
			d.hdrLen += c
			p = p[c:]
			if d.hdrLen < len(d.hdr) {
				continue
			}
			d.hdrLen = 0
			v, w := binary.Varint(d.hdr[:])
			if w <= 0 {
				return 0, errSAFormat
			}
			if d.state == saHeader {
				if v != int64(d.n) {
					return 0, fmt.Errorf("%w: length %d, want %d", errSAFormat, v, d.n)
				}
				d.state, d.skip = saData, d.n
				continue
			}
			if v <= int64(len(d.hdr)) || v > math.MaxInt32 {
				return 0, fmt.Errorf("%w: chunk size %d", errSAFormat, v)
			}
			d.state, d.body = saChunkBody, int(v)-len(d.hdr)
		case saData:
			c := min(d.skip, len(p))
			d.skip -= c
			p = p[c:]
			if d.skip == 0 {
				d.state = saChunkHeader
			}
		case saChunkBody:
			c := min(d.body, len(p))
			if err := d.decode(p[:c]); err != nil {
				return 0, err
			}
			d.body -= c
			p = p[c:]
			if d.body == 0 {
				if d.shift != 0 {
					return 0, fmt.Errorf("%w: offset split across chunks", errSAFormat)
				}
				d.state = saChunkHeader
			}
		}
	}
	if d.state == saData && d.skip == 0 {
		d.state = saChunkHeader // empty data: no Write of it may come
	}
	return n, nil
}

// decode appends the uvarints in p, which may begin and end mid-value.
func (d *saDecoder) decode(p []byte) error {
	for _, b := range p {
		if d.shift > 63 {
			return fmt.Errorf("%w: overlong uvarint", errSAFormat)
		}
		d.val |= uint64(b&0x7f) << d.shift
		if b >= 0x80 {
			d.shift += 7
			continue
		}
		if d.val >= uint64(d.n) || len(d.sa) == d.n {
			return fmt.Errorf("%w: offset %d out of range or too many offsets", errSAFormat, d.val)
		}
		d.sa = append(d.sa, int32(d.val))
		d.val, d.shift = 0, 0
		if len(d.sa) == d.n && testHookMem != nil {
			testHookMem() // the index/suffixarray.Index is still live
		}
	}
	return nil
}

// finish checks that the whole array arrived and is a permutation.
func (d *saDecoder) finish() error {
	if d.state != saChunkHeader || d.hdrLen != 0 || len(d.sa) != d.n {
		return fmt.Errorf("%w: %d of %d offsets", errSAFormat, len(d.sa), d.n)
	}
	seen := make([]uint64, (d.n+63)/64)
	for _, v := range d.sa {
		w, b := v/64, uint64(1)<<(v%64)
		if seen[w]&b != 0 {
			return fmt.Errorf("%w: offset %d repeated", errSAFormat, v)
		}
		seen[w] |= b
	}
	return nil
}

// index finds the longest matches of strings in old. Besides the suffix
// array it keeps two things that spare most searches the random reads that
// dominate their cost on large data (a cache miss each): each suffix's first
// four bytes beside its offset, and where the range of suffixes starting
// with each prefix of a few bits starts. For a search in a suffix array of
// n entries that is one or two cache misses rather than 2·log2(n). They
// cost about 4.5 bytes per byte of old.
type index struct {
	old    []byte
	sa     []int32
	keys   []uint32 // keys[i]: old[sa[i]:][:4] big-endian, zero-padded
	bucket []int32  // bucket[v]: the first i with keys[i]>>shift >= v
	shift  uint
	short  [3]int // short[j]: the i of the suffix of length j+1, or -1
}

func newIndex(old []byte) (*index, error) {
	sa, err := suffixArray(old)
	if err != nil {
		return nil, err
	}
	// About 8 suffixes a bucket: their keys share a cache line or two.
	bucketBits := max(8, min(24, bits.Len(uint(len(old)))-4))
	ix := &index{
		old:    old,
		sa:     sa,
		keys:   make([]uint32, len(sa)),
		bucket: make([]int32, 1<<bucketBits+1),
		shift:  uint(32 - bucketBits),
		short:  [3]int{-1, -1, -1},
	}
	v := 0
	for i, p := range sa {
		k := key4(old[p:])
		ix.keys[i] = k
		if j := len(old) - int(p) - 1; j < len(ix.short) {
			ix.short[j] = i
		}
		// Keys are in order: zero padding sorts as suffixes do.
		for ; v <= int(k>>ix.shift); v++ {
			ix.bucket[v] = int32(i)
		}
	}
	for ; v < len(ix.bucket); v++ {
		ix.bucket[v] = int32(len(sa))
	}
	return ix, nil
}

// key4 is the first four bytes of b, big-endian, zero-padded: ordering
// keys orders the strings, except among those that differ only in padding.
func key4(b []byte) uint32 {
	if len(b) >= 4 {
		return binary.BigEndian.Uint32(b)
	}
	var k uint32
	for i, c := range b {
		k |= uint32(c) << (24 - 8*i)
	}
	return k
}

// longestMatch finds the longest prefix of s that occurs in old: it returns
// its length (maybe 0) and the rank of a suffix of old that starts with it,
// whose offset is sa[rank]. Not the offset itself: reading it costs a cache
// miss, and the scan needs few of them.
//
// It binary-searches for where s would sit among the sorted suffixes,
// starting from the bucket of those whose keys share the top bits of s's; the
// longest match is with one of the two suffixes either side of that place.
// The common prefix of s with each bound is kept once known, since every
// suffix between the bounds shares at least the smaller of the two and
// comparisons can skip it: without that, repetitive data costs a full match
// length per probe.
func (ix *index) longestMatch(s []byte) (rank, n int) {
	if len(ix.sa) == 0 || len(s) == 0 {
		return 0, 0
	}
	sKey := key4(s)
	// Invariant: suffixes before lo are < s, from hi on are > s or have s
	// as a prefix. lcpLo and lcpHi are s's common prefixes with sa[lo-1]
	// and sa[hi] if known, else 0; known tells which are.
	lo, hi := int(ix.bucket[sKey>>ix.shift]), int(ix.bucket[sKey>>ix.shift+1])
	lcpLo, lcpHi := 0, 0
	knownLo, knownHi := false, false
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		l, less := ix.compare(m, s, sKey, min(lcpLo, lcpHi))
		if less {
			lo, lcpLo, knownLo = m+1, l, true
		} else {
			hi, lcpHi, knownHi = m, l, true
		}
	}
	if lo > 0 && !knownLo {
		lcpLo, _ = ix.compare(lo-1, s, sKey, 0)
	}
	if hi < len(ix.sa) && !knownHi {
		lcpHi, _ = ix.compare(hi, s, sKey, 0)
	}
	if lo > 0 && (hi == len(ix.sa) || lcpLo > lcpHi) {
		return lo - 1, lcpLo
	}
	return hi, lcpHi // hi < len(sa): one of the two is
}

// compare returns the common prefix of s with the suffix sa[m], which is
// known to be at least k, and whether that suffix sorts before s.
//
// It decides on the keys alone when it can: reading old, and sa too, costs
// a cache miss each on large data, and most probes need neither.
func (ix *index) compare(m int, s []byte, sKey uint32, k int) (lcp int, less bool) {
	if k < 4 {
		l := 4
		if x := ix.keys[m] ^ sKey; x != 0 {
			l = bits.LeadingZeros32(x) / 8
		}
		sufLen := 4 // or more: all that matters here
		for j, i := range ix.short {
			if i == m {
				sufLen = j + 1
			}
		}
		if l = min(l, sufLen, len(s)); l < 4 {
			switch {
			case l == len(s):
				return l, false
			case l == sufLen:
				return l, true
			}
			return l, byte(ix.keys[m]>>(24-8*l)) < s[l]
		}
		k = 4
	}
	suf := ix.old[ix.sa[m]:]
	k += matchLen(suf[k:], s[k:])
	return k, lessAt(suf, s, k)
}

// lessAt tells whether suf sorts before s, given that they agree on their
// first k bytes and no further.
func lessAt(suf, s []byte, k int) bool {
	switch {
	case k == len(s):
		return false // s is a prefix of suf
	case k == len(suf):
		return true // suf is a proper prefix of s
	}
	return suf[k] < s[k]
}

// matchLen is the length of the common prefix of a and b, compared eight
// bytes at a time.
func matchLen(a, b []byte) int {
	n := min(len(a), len(b))
	a, b = a[:n], b[:n]
	i := 0
	for ; i+8 <= n; i += 8 {
		x := binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:])
		if x != 0 {
			return i + bits.TrailingZeros64(x)/8
		}
	}
	for ; i < n && a[i] == b[i]; i++ {
	}
	return i
}
