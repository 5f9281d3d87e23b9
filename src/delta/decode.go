package delta

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/balena-os/balena-engine/src/delta/bsdiff"
	"github.com/klauspost/compress/zstd"
)

// The engine's own format, version 1 (docs/delta-format.md). A delta layer
// holds one file, EntryName, which is:
//
//	magic "BEDELTA1", uvarint target size, then one zstd stream of commands
//
// Each command is an opcode byte and uvarint arguments:
//
//	0 END
//	1 LITERAL n, then n bytes:            those bytes
//	2 COPY off n:                         basis[off:off+n]
//	3 ADD off n, then n bytes d:          basis[off+i] + d[i], bytewise
//	4 PATCH codec off m n p, then p bytes: n bytes rebuilt by codec from
//	                                       the patch and basis[off:off+m]
//
// The basis is the base image's layer tars concatenated (as for
// balenaEngine's format), so the target tar is rebuilt byte for byte:
// headers and padding too.
const (
	Magic = "BEDELTA1"

	opEnd     = 0
	opLiteral = 1
	opCopy    = 2
	opAdd     = 3
	opPatch   = 4

	CodecZstd   = 1 // one zstd frame made with the base range as raw dictionary
	CodecBsdiff = 2 // package bsdiff's patch

	// Bounds that keep applying within 32 MiB above the idle daemon,
	// whatever the delta says: a patched chunk's output and its base range
	// (a zstd dictionary is held whole), and the outer stream's window.
	MaxChunk     = 2 << 20
	MaxBaseRange = 4 << 20
	MaxPatch     = MaxChunk + MaxChunk/2
	OuterWindow  = 4 << 20
	// innerWindow bounds a zstd patch's window: the base range it may
	// reach back into, then the chunk.
	innerWindow = 8 << 20
)

// ErrCorrupt is wrapped by every error that blames the delta.
var ErrCorrupt = errors.New("corrupt delta")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// DeclaredSize reads the target size a native delta declares, without
// consuming anything of br: the caller can refuse a delta that would not
// fit on the disk before writing a byte of it.
func DeclaredSize(br *bufio.Reader) (int64, error) {
	size, _, err := header(br)
	return size, err
}

// header reads, without consuming them, the magic and the declared size,
// and says how many bytes they take.
func header(br *bufio.Reader) (size int64, n int, err error) {
	head, _ := br.Peek(len(Magic) + binary.MaxVarintLen64)
	if len(head) < len(Magic) || string(head[:len(Magic)]) != Magic {
		return 0, 0, corrupt("not a balena-engine delta (magic %q)", head[:min(len(head), len(Magic))])
	}
	v, k := binary.Uvarint(head[len(Magic):])
	if k <= 0 || v > 1<<62 {
		return 0, 0, corrupt("target size unreadable")
	}
	return int64(v), len(Magic) + k, nil
}

// NewPatchReader returns the target layer's tar stream, rebuilt from the
// delta read from d against basis. Errors (a corrupt delta, a range
// outside the basis, output longer or shorter than the delta declares)
// come from Read; the caller checks the result's digest.
func NewPatchReader(basis io.ReaderAt, basisSize int64, d io.Reader) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(apply(pw, basis, basisSize, d))
	}()
	return pr
}

// apply writes the target of delta d to w.
func apply(w io.Writer, basis io.ReaderAt, basisSize int64, d io.Reader) error {
	br := bufio.NewReader(d)
	size, n, err := header(br)
	if err != nil {
		return err
	}
	br.Discard(n)
	zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(OuterWindow),
		zstd.WithDecoderLowmem(true))
	if err != nil {
		return err
	}
	defer zr.Close()
	a := &applier{r: bufio.NewReaderSize(zr, 64<<10), basis: basis, basisSize: basisSize, left: size,
		out: w, buf: make([]byte, 64<<10)}
	defer func() {
		if a.inner != nil {
			a.inner.Close()
		}
	}()
	for {
		op, err := a.r.ReadByte()
		if err != nil {
			return corrupt("commands end without END: %v", err)
		}
		switch op {
		case opEnd:
			if a.left != 0 {
				return corrupt("END with %d bytes of the declared %d still to come", a.left, size)
			}
			return nil
		case opLiteral:
			n, err := a.length()
			if err != nil {
				return err
			}
			k, err := io.CopyBuffer(w, io.LimitReader(a.r, n), a.buf)
			if err != nil {
				return err
			}
			if k != n {
				return corrupt("LITERAL truncated: %d of %d bytes", k, n)
			}
		case opCopy:
			off, n, err := a.rangeArgs()
			if err != nil {
				return err
			}
			if _, err := io.CopyBuffer(w, io.NewSectionReader(basis, off, n), a.buf); err != nil {
				return fmt.Errorf("delta basis: %w", err)
			}
		case opAdd:
			off, n, err := a.rangeArgs()
			if err != nil {
				return err
			}
			if err := a.add(off, n); err != nil {
				return err
			}
		case opPatch:
			if err := a.patch(); err != nil {
				return err
			}
		default:
			return corrupt("unknown command %d", op)
		}
	}
}

type applier struct {
	r         *bufio.Reader
	basis     io.ReaderAt
	basisSize int64
	left      int64 // output bytes still declared
	out       io.Writer
	buf       []byte
	base      []byte // a patch's base range, reused
	patchBuf  bytes.Buffer
	inner     *zstd.Decoder // reused: its window is allocated once
}

func (a *applier) uvarint(what string) (int64, error) {
	v, err := binary.ReadUvarint(a.r)
	if err != nil {
		return 0, corrupt("%s: %v", what, err)
	}
	if v > 1<<62 {
		return 0, corrupt("%s %d out of range", what, v)
	}
	return int64(v), nil
}

// length reads an output length and charges it against the declared size.
func (a *applier) length() (int64, error) {
	n, err := a.uvarint("length")
	if err != nil {
		return 0, err
	}
	if n > a.left {
		return 0, corrupt("a command writes %d bytes, past the declared size (%d left)", n, a.left)
	}
	a.left -= n
	return n, nil
}

// rangeArgs reads off and n of a basis range, n charged to the output.
func (a *applier) rangeArgs() (int64, int64, error) {
	off, err := a.uvarint("offset")
	if err != nil {
		return 0, 0, err
	}
	n, err := a.length()
	if err != nil {
		return 0, 0, err
	}
	if off > a.basisSize || n > a.basisSize-off {
		return 0, 0, corrupt("range %d+%d outside the basis of %d bytes", off, n, a.basisSize)
	}
	return off, n, nil
}

func (a *applier) add(off, n int64) error {
	half := len(a.buf) / 2
	base, diff := a.buf[:half], a.buf[half:]
	for n > 0 {
		k := int(min(n, int64(half)))
		if _, err := a.basis.ReadAt(base[:k], off); err != nil {
			return fmt.Errorf("delta basis: %w", err)
		}
		if _, err := io.ReadFull(a.r, diff[:k]); err != nil {
			return corrupt("ADD data truncated: %v", err)
		}
		for i := range k {
			diff[i] += base[i]
		}
		if _, err := a.out.Write(diff[:k]); err != nil {
			return err
		}
		off += int64(k)
		n -= int64(k)
	}
	return nil
}

func (a *applier) patch() error {
	codec, err := a.r.ReadByte()
	if err != nil {
		return corrupt("PATCH codec: %v", err)
	}
	off, err := a.uvarint("offset")
	if err != nil {
		return err
	}
	m, err := a.uvarint("base length")
	if err != nil {
		return err
	}
	if m > MaxBaseRange || off > a.basisSize || m > a.basisSize-off {
		return corrupt("PATCH base range %d+%d outside the basis of %d bytes or above %d", off, m, a.basisSize, MaxBaseRange)
	}
	n, err := a.length()
	if err != nil {
		return err
	}
	if n > MaxChunk {
		return corrupt("PATCH of %d bytes, above the %d a chunk may have", n, MaxChunk)
	}
	p, err := a.uvarint("patch length")
	if err != nil {
		return err
	}
	if p > MaxPatch {
		return corrupt("PATCH data of %d bytes, above %d", p, MaxPatch)
	}
	a.patchBuf.Reset()
	if _, err := io.CopyN(&a.patchBuf, a.r, p); err != nil {
		return corrupt("PATCH data truncated: %v", err)
	}
	switch codec {
	case CodecZstd:
		if cap(a.base) < int(m) {
			a.base = make([]byte, m)
		}
		base := a.base[:m]
		if _, err := a.basis.ReadAt(base, off); err != nil {
			return fmt.Errorf("delta basis: %w", err)
		}
		if a.inner == nil {
			if a.inner, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(innerWindow),
				zstd.WithDecoderLowmem(true)); err != nil {
				return err
			}
		}
		dec := a.inner
		if err := dec.ResetWithOptions(&a.patchBuf, zstd.WithDecoderDictRaw(1, base)); err != nil {
			return err
		}
		k, err := io.CopyBuffer(a.out, io.LimitReader(dec, n), a.buf)
		if err != nil {
			return corrupt("PATCH (zstd): %v", err)
		}
		if k != n {
			return corrupt("PATCH (zstd) gave %d bytes, want %d", k, n)
		}
		if x, _ := dec.Read(a.buf[:1]); x != 0 {
			return corrupt("PATCH (zstd) gives more than its %d bytes", n)
		}
		return nil
	case CodecBsdiff:
		if err := bsdiff.Patch(a.out, io.NewSectionReader(a.basis, off, m), m, &a.patchBuf, n); err != nil {
			if errors.Is(err, bsdiff.ErrCorrupt) {
				return corrupt("PATCH (bsdiff): %v", err)
			}
			return err
		}
		return nil
	}
	return corrupt("PATCH with unknown codec %d", codec)
}
