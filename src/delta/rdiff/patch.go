package rdiff

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// copyBufSize bounds Patch's one buffer: every LITERAL and COPY, however
// long, passes through it in pieces.
const copyBufSize = 64 << 10

// deltaReader is what the decoder reads commands from: byte by byte for
// opcodes, in bulk for literal data.
type deltaReader interface {
	io.Reader
	io.ByteReader
}

// Patch applies delta to basis (whose length is basisSize) and writes the
// result to out, returning how many bytes it wrote.
//
// The delta is read up to and including its END command and no further
// when it implements io.ByteReader (a *bufio.Reader, say); otherwise through
// a small buffer of its own that may read past END. Bytes after END are
// ignored, as librsync ignores them. A delta that is malformed, or that
// copies from outside [0, basisSize), gives an error wrapping ErrCorrupt;
// whatever was written before it is not taken back. Memory use is one
// buffer of at most 64 KiB (plus 4 KiB when delta is buffered here),
// whatever lengths the delta claims.
func Patch(out io.Writer, basis io.ReaderAt, basisSize int64, delta io.Reader) (written int64, err error) {
	d := newDecoder(basis, basisSize, delta)
	// The buffer starts small, so short outputs cost little, and grows to
	// copyBufSize while reads fill it.
	buf := make([]byte, 4<<10)
	for {
		n, rerr := d.Read(buf)
		if n > 0 {
			w, werr := out.Write(buf[:n])
			written += int64(w)
			if werr == nil && w < n {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return written, fmt.Errorf("rdiff: writing patched output at offset %d: %w", written, werr)
			}
		}
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
		if n == len(buf) && len(buf) < copyBufSize {
			buf = make([]byte, 2*len(buf))
		}
	}
}

// NewReader returns a reader of the result of applying delta to basis: the
// bytes Patch would write, produced as they are read. Errors are those of
// Patch, returned by Read; io.EOF comes only after the END command. The
// reader keeps no buffer of output: COPY reads from basis straight into the
// caller's slice.
func NewReader(basis io.ReaderAt, basisSize int64, delta io.Reader) io.Reader {
	return newDecoder(basis, basisSize, delta)
}

// decoder is the one implementation of the delta format's reading side;
// NewReader returns it and Patch drives it with its buffer.
type decoder struct {
	src       deltaReader
	basis     io.ReaderAt
	basisSize int64

	off       int64 // delta bytes consumed, for error messages
	gotHeader bool
	done      bool // END seen
	err       error

	litLeft  int64 // literal bytes still to pass through
	litAt    int64 // delta offset of the current LITERAL
	copyPos  int64 // next basis offset of the current COPY
	copyLeft int64
	copyAt   int64 // delta offset of the current COPY
}

func newDecoder(basis io.ReaderAt, basisSize int64, delta io.Reader) *decoder {
	src, ok := delta.(deltaReader)
	if !ok {
		// Small: literal data longer than the buffer bypasses it.
		src = bufio.NewReaderSize(delta, 4<<10)
	}
	d := &decoder{src: src, basis: basis, basisSize: basisSize}
	if basisSize < 0 {
		d.err = fmt.Errorf("rdiff: negative basis size %d", basisSize)
	} else if basis == nil && basisSize > 0 {
		d.err = fmt.Errorf("rdiff: basis of %d bytes without a reader", basisSize)
	}
	return d
}

// Read fills p with patched output, stopping early only at the end or at an
// error.
func (d *decoder) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && d.err == nil {
		switch {
		case d.litLeft > 0:
			m := int(min(int64(len(p)-n), d.litLeft))
			k, err := d.src.Read(p[n : n+m])
			n += k
			d.off += int64(k)
			d.litLeft -= int64(k)
			if err == io.EOF && d.litLeft > 0 {
				d.err = fmt.Errorf("%w: LITERAL at delta offset %d is truncated: %d bytes missing (%w)",
					ErrCorrupt, d.litAt, d.litLeft, io.ErrUnexpectedEOF)
			} else if err != nil && err != io.EOF {
				d.err = fmt.Errorf("rdiff: reading delta at offset %d: %w", d.off, err)
			}
		case d.copyLeft > 0:
			m := int(min(int64(len(p)-n), d.copyLeft))
			k, err := d.basis.ReadAt(p[n:n+m], d.copyPos)
			k = min(k, m)
			n += k
			d.copyPos += int64(k)
			d.copyLeft -= int64(k)
			if k < m {
				if err == nil || err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				d.err = fmt.Errorf("rdiff: reading basis at offset %d for COPY at delta offset %d: %w",
					d.copyPos, d.copyAt, err)
			}
		case d.done:
			if n == 0 {
				return 0, io.EOF
			}
			return n, nil
		default:
			d.err = d.next()
		}
	}
	return n, d.err
}

// next reads the header or the next command and sets up its execution.
func (d *decoder) next() error {
	if !d.gotHeader {
		var b [4]byte
		k, err := io.ReadFull(d.src, b[:])
		d.off += int64(k)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return fmt.Errorf("%w: delta is %d bytes, too short for the magic number (%w)",
				ErrCorrupt, k, io.ErrUnexpectedEOF)
		} else if err != nil {
			return fmt.Errorf("rdiff: reading delta magic: %w", err)
		}
		if m := binary.BigEndian.Uint32(b[:]); m != Magic {
			return fmt.Errorf("%w: bad magic number 0x%08x, want 0x%08x", ErrCorrupt, m, Magic)
		}
		d.gotHeader = true
		return nil
	}

	at := d.off
	op, err := d.src.ReadByte()
	if err == io.EOF {
		return fmt.Errorf("%w: delta ends at offset %d without an END command (%w)",
			ErrCorrupt, at, io.ErrUnexpectedEOF)
	} else if err != nil {
		return fmt.Errorf("rdiff: reading delta at offset %d: %w", at, err)
	}
	d.off++
	kind, imm, w1, w2, ok := opArgs(op)
	if !ok {
		return fmt.Errorf("%w: unknown opcode 0x%02x at delta offset %d", ErrCorrupt, op, at)
	}
	var args [16]byte
	if w1+w2 > 0 {
		k, err := io.ReadFull(d.src, args[:w1+w2])
		d.off += int64(k)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return fmt.Errorf("%w: arguments of opcode 0x%02x at delta offset %d are truncated (%w)",
				ErrCorrupt, op, at, io.ErrUnexpectedEOF)
		} else if err != nil {
			return fmt.Errorf("rdiff: reading delta at offset %d: %w", d.off, err)
		}
	}
	a, b := getInt(args[:w1]), getInt(args[w1:w1+w2])

	switch kind {
	case cmdEnd:
		d.done = true
	case cmdLiteral:
		n := imm
		if w1 > 0 {
			if a > math.MaxInt64 {
				return fmt.Errorf("%w: LITERAL at delta offset %d has negative length %d",
					ErrCorrupt, at, int64(a))
			}
			n = int64(a)
		}
		// librsync refuses empty commands too; accepting them would let a
		// delta be arbitrarily long for no output.
		if n == 0 {
			return fmt.Errorf("%w: LITERAL at delta offset %d has zero length", ErrCorrupt, at)
		}
		d.litLeft, d.litAt = n, at
	case cmdCopy:
		if a > math.MaxInt64 {
			return fmt.Errorf("%w: COPY at delta offset %d has negative start %d", ErrCorrupt, at, int64(a))
		}
		if b > math.MaxInt64 {
			return fmt.Errorf("%w: COPY at delta offset %d has negative length %d", ErrCorrupt, at, int64(b))
		}
		start, n := int64(a), int64(b)
		if n == 0 {
			return fmt.Errorf("%w: COPY at delta offset %d has zero length", ErrCorrupt, at)
		}
		// Written so that start+n cannot overflow.
		if start > d.basisSize || n > d.basisSize-start {
			return fmt.Errorf("%w: COPY(start %d, length %d) at delta offset %d is outside the basis of %d bytes",
				ErrCorrupt, start, n, at, d.basisSize)
		}
		d.copyPos, d.copyLeft, d.copyAt = start, n, at
	}
	return nil
}
