package rdiff

import (
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"math/bits"
)

// index finds the aligned basis blocks that a target window may equal. It
// holds hashes, never basis bytes (but the short last block): per distinct
// full block a 24-byte entry; per block a 4-byte content id, a bucket head of
// 4 to 8 bytes (the bucket array is a power of two below twice the block
// count) and 1 to 2 bytes of filter. Identical blocks (tar padding, zeroed
// regions) share one entry, so bucket chains stay short however repetitive
// the basis is.
type index struct {
	blockLen int
	nblocks  int64  // full blocks
	tail     []byte // the short last block, nil when the basis is whole blocks
	tailPos  int64

	roll  roller
	seed  maphash.Seed
	ents  []entry
	heads []uint32 // bucket -> entry index + 1, 0 when empty
	shift uint     // bucket of weak hash h is (h*fib) >> shift

	// filter is a Bloom filter of the entries' rolling hashes, two bits in
	// one word per hash, so most offsets cost one memory read.
	filter []uint64
	fshift uint // word of hash h is filterMix(h) >> fshift

	ids []uint32 // full block -> entry index, to extend a COPY into the next block

	runID, runStart, runLen uint32 // the run of identical blocks being indexed
}

// entry is one distinct block content.
type entry struct {
	strong uint64 // maphash of the block
	weak   uint32 // top half of the rolling hash; the bucket holds the rest
	next   uint32 // next entry in the bucket, index + 1
	// first is where a COPY of this content starts: the start of the
	// longest run of blocks with this content, so that a target with the
	// same run (zero padding, say) becomes one COPY, not one per block.
	first uint32
	run   uint32 // length of that run in blocks
}

const (
	fib  = 0x9e3779b97f4a7c15 // odd multipliers that spread a hash over the top bits
	fib2 = 0xc2b2ae3d27d4eb4f
)

// roller is a polynomial rolling hash over a window of blockLen bytes,
// modulo 2^64, with a random odd multiplier per call so that inputs cannot be
// made to collide on purpose.
type roller struct {
	mul, mul2, mul3, mul4 uint64
	outMul                uint64 // mul^(blockLen-1): the weight of the byte leaving the window
}

func newRoller(seed maphash.Seed, blockLen int) roller {
	m := maphash.String(seed, "rdiff rolling multiplier") | 1
	r := roller{mul: m, mul2: m * m, mul3: m * m * m, mul4: m * m * m * m, outMul: 1}
	for range blockLen - 1 {
		r.outMul *= m
	}
	return r
}

// sum hashes b from scratch: sum of b[i]*mul^(len(b)-1-i). Four bytes per
// step keep the multiplications off one long dependency chain.
func (r roller) sum(b []byte) uint64 {
	var h uint64
	for len(b)%4 != 0 {
		h = h*r.mul + uint64(b[0])
		b = b[1:]
	}
	for ; len(b) >= 4; b = b[4:] {
		h = h*r.mul4 + uint64(b[0])*r.mul3 + uint64(b[1])*r.mul2 + uint64(b[2])*r.mul + uint64(b[3])
	}
	return h
}

// rotate drops out from the front of the window and appends in.
func (r roller) rotate(h uint64, out, in byte) uint64 {
	return (h-uint64(out)*r.outMul)*r.mul + uint64(in)
}

// indexChunk is how much basis the index pass reads at a time.
const indexChunk = 256 << 10

// buildIndex hashes every block of basis in one sequential pass.
func buildIndex(basis io.ReaderAt, size int64, blockLen int) (*index, error) {
	nblocks := size / int64(blockLen)
	if nblocks >= math.MaxUint32 {
		return nil, fmt.Errorf("rdiff: basis of %d bytes has too many blocks of %d bytes", size, blockLen)
	}
	seed := maphash.MakeSeed()
	ix := &index{
		blockLen: blockLen,
		nblocks:  nblocks,
		roll:     newRoller(seed, blockLen),
		seed:     seed,
		ids:      make([]uint32, nblocks),
	}
	nb := 1
	if nblocks > 1 {
		nb = 1 << bits.Len64(uint64(nblocks-1))
	}
	ix.heads = make([]uint32, nb)
	ix.shift = uint(64 - bits.TrailingZeros(uint(nb)))
	nbits := max(64, 8*nb)
	ix.filter = make([]uint64, nbits/64)
	ix.fshift = uint(64 - bits.TrailingZeros(uint(nbits/64)))
	// Capacity for every block to be distinct, so the slice is never
	// copied while growing; pages never written are never touched.
	ix.ents = make([]entry, 0, nblocks)

	chunk := int(min(int64(max(indexChunk/blockLen, 1)), nblocks)) * blockLen
	buf := make([]byte, chunk)
	for off := int64(0); off < nblocks*int64(blockLen); {
		n := int(min(int64(chunk), nblocks*int64(blockLen)-off))
		if err := readFullAt(basis, buf[:n], off); err != nil {
			return nil, fmt.Errorf("rdiff: indexing basis: %w", err)
		}
		for b := 0; b < n; b += blockLen {
			ix.add((off+int64(b))/int64(blockLen), buf[b:b+blockLen])
		}
		off += int64(n)
	}
	if t := size - nblocks*int64(blockLen); t > 0 {
		ix.tail = make([]byte, t)
		ix.tailPos = size - t
		if err := readFullAt(basis, ix.tail, ix.tailPos); err != nil {
			return nil, fmt.Errorf("rdiff: indexing basis: %w", err)
		}
	}
	return ix, nil
}

// add records full block blk, sharing the entry of an identical block.
func (ix *index) add(blk int64, b []byte) {
	h := ix.roll.sum(b)
	s := maphash.Bytes(ix.seed, b)
	id, ok := ix.find(h, s)
	if !ok {
		bucket := (h * fib) >> ix.shift
		ix.ents = append(ix.ents, entry{strong: s, weak: uint32(h >> 32), next: ix.heads[bucket]})
		ix.heads[bucket] = uint32(len(ix.ents))
		id = uint32(len(ix.ents) - 1)
		word, mask := ix.filterBits(h)
		ix.filter[word] |= mask
	}
	ix.ids[blk] = id
	if blk > 0 && id == ix.runID && int64(ix.runStart)+int64(ix.runLen) == blk {
		ix.runLen++
	} else {
		ix.runID, ix.runStart, ix.runLen = id, uint32(blk), 1
	}
	if e := &ix.ents[id]; ix.runLen > e.run {
		e.first, e.run = ix.runStart, ix.runLen
	}
}

// filterBits returns the filter word and the two bits of hash h.
func (ix *index) filterBits(h uint64) (word uint64, mask uint64) {
	f := (h ^ h>>32) * fib2
	f ^= f >> 29
	return f >> ix.fshift, 1<<(f&63) | 1<<(f>>6&63)
}

// maybe is the filter test: false means no block has rolling hash h.
func (ix *index) maybe(h uint64) bool {
	word, mask := ix.filterBits(h)
	return ix.filter[word]&mask == mask
}

// lookup returns the entry whose weak and strong hashes are those of win.
func (ix *index) lookup(h uint64, win []byte) (id uint32, ok bool) {
	w := uint32(h >> 32)
	for e := ix.heads[(h*fib)>>ix.shift]; e != 0; e = ix.ents[e-1].next {
		if ix.ents[e-1].weak == w {
			return ix.find(h, maphash.Bytes(ix.seed, win))
		}
	}
	return 0, false
}

// find returns the entry with rolling hash h and strong hash s.
func (ix *index) find(h, s uint64) (id uint32, ok bool) {
	w := uint32(h >> 32)
	for e := ix.heads[(h*fib)>>ix.shift]; e != 0; e = ix.ents[e-1].next {
		if en := &ix.ents[e-1]; en.weak == w && en.strong == s {
			return e - 1, true
		}
	}
	return 0, false
}

// readFullAt reads len(b) bytes at off, calling a short basis an error.
func readFullAt(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("reading %d bytes at basis offset %d: got %d: %w", len(b), off, n, err)
}
