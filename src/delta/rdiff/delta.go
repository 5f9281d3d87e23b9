package rdiff

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// DefaultBlockLen is the block length balenaEngine's deltas use
// (rdiff signature -b 512).
const DefaultBlockLen = 512

// MaxBlockLen bounds blockLen, and with it the memory of the target window.
const MaxBlockLen = 1 << 20

const (
	// maxLiteral is the most data one LITERAL command carries; a longer
	// run of unmatched bytes becomes several commands.
	maxLiteral = 128 << 10
	// maxCopy is the most one COPY command covers: current librsync keeps
	// a copy's length in an int (rs_job.basis_len), so none reaches 2^31.
	maxCopy = 1 << 30
	// readChunk is the least the target window reads at a time.
	readChunk = 64 << 10
	// basisCacheSize is how much basis a run of confirmed contiguous
	// matches reads ahead.
	basisCacheSize = 64 << 10
)

// Delta writes to out an rdiff delta that turns basis (basisSize bytes) into
// target, the way librsync's "rdiff signature -b blockLen" then "rdiff
// delta" do: basis is cut into aligned blocks of blockLen bytes (0 means
// DefaultBlockLen; the last block may be short and, as in librsync, is only
// matched at the end of target), and every target offset is checked for a
// block by a rolling hash, then a strong hash, then a comparison with the
// basis bytes themselves, so a match is never wrong. Basis blocks matched
// one after another become one COPY; where the basis holds the same block
// several times, the one that continues the current COPY is chosen, which
// librsync does not do. Unmatched bytes become LITERAL commands of up to
// 128 KiB. Every command uses its smallest encoding.
//
// basis is read once sequentially to build an index of it, then at random
// only to confirm matches; target is read once, sequentially, through a
// window of about 200 KiB, so neither is ever held whole. The index takes at
// most 38 bytes per full block of basis (0.074 bytes per basis byte with
// 512-byte blocks, 76 MiB per GiB): per block a 4-byte content id, 4 to 8
// bytes of hash buckets and 1 to 2 bytes of filter; per distinct block
// content a 24-byte entry, room for which is reserved for every block. Other
// buffers add about 600 KiB, whatever the size of the target.
func Delta(out io.Writer, basis io.ReaderAt, basisSize int64, target io.Reader, blockLen int) error {
	if blockLen == 0 {
		blockLen = DefaultBlockLen
	}
	if blockLen < 0 || blockLen > MaxBlockLen {
		return fmt.Errorf("rdiff: block length %d outside [1, %d]", blockLen, MaxBlockLen)
	}
	if basisSize < 0 {
		return fmt.Errorf("rdiff: negative basis size %d", basisSize)
	}
	if basis == nil && basisSize > 0 {
		return fmt.Errorf("rdiff: basis of %d bytes without a reader", basisSize)
	}
	ix, err := buildIndex(basis, basisSize, blockLen)
	if err != nil {
		return err
	}
	e := &encoder{
		ix:        ix,
		basis:     basis,
		basisSize: basisSize,
		w:         bufio.NewWriterSize(out, 32<<10),
		// Matches exist only when basisSize >= blockLen.
		cache: make([]byte, 0, min(int64(max(basisCacheSize, blockLen)), basisSize)),
	}
	var magic [4]byte
	binary.BigEndian.PutUint32(magic[:], Magic)
	if err := e.write(magic[:]); err != nil {
		return err
	}
	if err := e.scan(target); err != nil {
		return err
	}
	if err := e.flushCopy(); err != nil {
		return err
	}
	if err := e.write([]byte{opEnd}); err != nil {
		return err
	}
	if err := e.w.Flush(); err != nil {
		return fmt.Errorf("rdiff: writing delta: %w", err)
	}
	return nil
}

type encoder struct {
	ix        *index
	basis     io.ReaderAt
	basisSize int64
	w         *bufio.Writer
	hdr       [maxCmdHeader]byte

	// The COPY being extended, not yet written; copyLen 0 when none.
	copyStart, copyLen int64

	// A window of basis, to confirm matches without a read per block.
	cache    []byte
	cacheOff int64
}

// scan reads target through a window and emits its commands. The window
// holds the pending literal bytes (under maxLiteral), the block being
// hashed and room to read into.
func (e *encoder) scan(target io.Reader) error {
	ix := e.ix
	bl := ix.blockLen
	// The window starts small so that small inputs cost little, and grows
	// up to bufMax, which keeps readChunk free whatever is pending.
	bufMax := maxLiteral + 2*bl + readChunk
	buf := make([]byte, min(bufMax, 4*bl+4096))
	var (
		lit     int // start of the bytes not yet emitted
		pos     int // start of the window being matched
		end     int // end of the data read
		eof     bool
		h       uint64
		hashed  bool // h is the hash of the window at pos
		checked bool // the window at pos was looked up and missed
	)
	search := ix.nblocks > 0
	for {
		if end-pos <= bl && !eof {
			// Keep the pending literal and the window, read more.
			copy(buf, buf[lit:end])
			end -= lit
			pos -= lit
			lit = 0
			if len(buf)-end < len(buf)/2 && len(buf) < bufMax {
				buf = append(buf[:end], make([]byte, min(bufMax, 2*len(buf))-end)...)
			}
			for end < len(buf) {
				n, err := target.Read(buf[end:])
				end += n
				if err == io.EOF {
					eof = true
					break
				}
				if err != nil {
					return fmt.Errorf("rdiff: reading target: %w", err)
				}
			}
			continue
		}
		if end-pos < bl || (!search && eof) {
			break
		}
		if !search {
			// No block to find: all but the last blockLen bytes are
			// literal; those are kept for the short-block check below.
			pos = end - bl
			for pos-lit >= maxLiteral {
				if err := e.literal(buf[lit : lit+maxLiteral]); err != nil {
					return err
				}
				lit += maxLiteral
			}
			continue
		}
		if !hashed {
			h, hashed, checked = ix.roll.sum(buf[pos:pos+bl]), true, false
		}
		if !checked {
			checked = true
			if ix.maybe(h) {
				blk, ok, err := e.match(h, buf[pos:pos+bl])
				if err != nil {
					return err
				}
				if ok {
					if err := e.literal(buf[lit:pos]); err != nil {
						return err
					}
					if err := e.addCopy(blk*int64(bl), int64(bl)); err != nil {
						return err
					}
					pos += bl
					lit = pos
					hashed = false
					continue
				}
			}
		}
		// The window at pos matched nothing: move on by one byte.
		if pos+bl == end {
			break // only at EOF: before it the window keeps a byte spare
		}
		h = ix.roll.rotate(h, buf[pos], buf[pos+bl])
		pos++
		checked = false
		if pos-lit >= maxLiteral {
			if err := e.literal(buf[lit : lit+maxLiteral]); err != nil {
				return err
			}
			lit += maxLiteral
		}
		// Most offsets fail the filter; roll over them without the checks
		// above. The loop leaves the window at pos unchecked.
		for !ix.maybe(h) && pos+bl < end && pos-lit < maxLiteral {
			h = ix.roll.rotate(h, buf[pos], buf[pos+bl])
			pos++
		}
	}
	// Fewer than blockLen bytes are left unscanned (or no basis blocks
	// exist). Like librsync, try the basis's short last block against the
	// end of the target.
	if t := ix.tail; t != nil && end-len(t) >= lit && bytes.Equal(buf[end-len(t):end], t) {
		if err := e.literal(buf[lit : end-len(t)]); err != nil {
			return err
		}
		return e.addCopy(ix.tailPos, int64(len(t)))
	}
	return e.literal(buf[lit:end])
}

// match finds a basis block equal to win, whose rolling hash is h, preferring
// the block that continues the pending COPY.
func (e *encoder) match(h uint64, win []byte) (blk int64, ok bool, err error) {
	ix := e.ix
	id, ok := ix.lookup(h, win)
	if !ok {
		return 0, false, nil
	}
	blk = int64(ix.ents[id].first)
	if next := e.copyStart + e.copyLen; e.copyLen > 0 && next%int64(ix.blockLen) == 0 {
		if nb := next / int64(ix.blockLen); nb < ix.nblocks && ix.ids[nb] == id {
			blk = nb
		}
	}
	b, err := e.basisAt(blk*int64(ix.blockLen), len(win))
	if err != nil {
		return 0, false, err
	}
	return blk, bytes.Equal(b, win), nil
}

// basisAt returns n bytes of basis at off, reading ahead when reads are
// sequential, as they are along a run of matches.
func (e *encoder) basisAt(off int64, n int) ([]byte, error) {
	end := e.cacheOff + int64(len(e.cache))
	if off >= e.cacheOff && off+int64(n) <= end {
		return e.cache[off-e.cacheOff:][:n], nil
	}
	size := int64(n)
	if off == end {
		size = min(int64(cap(e.cache)), e.basisSize-off)
	}
	e.cache, e.cacheOff = e.cache[:size], off
	if err := readFullAt(e.basis, e.cache, off); err != nil {
		e.cache = e.cache[:0]
		return nil, fmt.Errorf("rdiff: confirming a match: %w", err)
	}
	return e.cache[:n], nil
}

func (e *encoder) write(b []byte) error {
	if _, err := e.w.Write(b); err != nil {
		return fmt.Errorf("rdiff: writing delta: %w", err)
	}
	return nil
}

// literal emits b as LITERAL commands, after the pending COPY.
func (e *encoder) literal(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if err := e.flushCopy(); err != nil {
		return err
	}
	for len(b) > 0 {
		n := min(len(b), maxLiteral)
		if err := e.write(appendLiteralCmd(e.hdr[:0], int64(n))); err != nil {
			return err
		}
		if err := e.write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// addCopy extends the pending COPY by n bytes at start when contiguous,
// else emits it and starts another.
func (e *encoder) addCopy(start, n int64) error {
	if e.copyLen > 0 && e.copyStart+e.copyLen == start && e.copyLen+n <= maxCopy {
		e.copyLen += n
		return nil
	}
	if err := e.flushCopy(); err != nil {
		return err
	}
	e.copyStart, e.copyLen = start, n
	return nil
}

func (e *encoder) flushCopy() error {
	if e.copyLen == 0 {
		return nil
	}
	n := e.copyLen
	e.copyLen = 0
	return e.write(appendCopyCmd(e.hdr[:0], e.copyStart, n))
}
