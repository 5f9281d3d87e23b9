package delta

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"path"
	"strings"

	"github.com/balena-os/balena-engine/src/delta/bsdiff"
	"github.com/klauspost/compress/zstd"
)

// File is one file entry of the base's tars: where its content starts in
// the basis, its size and the CRC-64 (ISO) of its content.
type File struct {
	Name string
	Off  int64
	Size int64
	CRC  []byte
}

// Entry is one record of a target layer's tar, in order: raw tar bytes
// (Segment), or a file's content (Name, Size, CRC).
type Entry struct {
	Segment []byte
	Name    string
	Size    int64
	CRC     []byte
}

// Target is a target layer as the encoder reads it.
type Target struct {
	Size int64                                    // the tar stream's length
	Walk func(fn func(Entry) error) error         // its records, in order
	Open func(name string) (io.ReadCloser, error) // a file's content
}

// Stats count what a delta layer is made of, in target bytes.
type Stats struct {
	Copied, Added, Patched, Literal int64
	PatchesZstd, PatchesBsdiff      int
}

// Add counts o's bytes and patches in s too.
func (s *Stats) Add(o Stats) {
	s.Copied += o.Copied
	s.Added += o.Added
	s.Patched += o.Patched
	s.Literal += o.Literal
	s.PatchesZstd += o.PatchesZstd
	s.PatchesBsdiff += o.PatchesBsdiff
}

// Encoder makes the engine's deltas against one base.
type Encoder struct {
	basis     io.ReaderAt
	basisSize int64
	files     []File
	byContent map[contentKey]int
	byPath    map[string]int
	byNorm    map[string]int
	byBase    map[string]int
}

type contentKey struct {
	size int64
	crc  string
}

// NewEncoder indexes the base's files: by content (size and CRC), by path,
// by path with its version numbers blurred, and by name alone, so that a
// target file finds its base across renames and version-numbered
// directories.
func NewEncoder(basis io.ReaderAt, basisSize int64, files []File) *Encoder {
	e := &Encoder{basis: basis, basisSize: basisSize, files: files, byContent: map[contentKey]int{},
		byPath: map[string]int{}, byNorm: map[string]int{}, byBase: map[string]int{}}
	for i, f := range files {
		// Later layers win: the file the base image shows.
		e.byPath[f.Name] = i
		if f.Size > 0 {
			e.byContent[contentKey{f.Size, string(f.CRC)}] = i
			e.byNorm[blur(f.Name)] = i
			e.byBase[blur(path.Base(f.Name))] = i
		}
	}
	return e
}

// blur replaces each run of digits by one '#': "python3.11/x.py" and
// "python3.12/x.py" meet, as do "libfoo.so.1.2.3" and "libfoo.so.1.2.4".
func blur(s string) string {
	var b strings.Builder
	digits := false
	for _, r := range s {
		if r >= '0' && r <= '9' {
			if !digits {
				b.WriteByte('#')
			}
			digits = true
			continue
		}
		digits = false
		b.WriteRune(r)
	}
	return b.String()
}

// match finds the base file for a target entry: same content (exact:
// copied), else a similar one to patch against (same path, same path but
// for version numbers, same name), or -1.
func (e *Encoder) match(ent Entry) (int, bool) {
	if ent.Size > 0 {
		if i, ok := e.byContent[contentKey{ent.Size, string(ent.CRC)}]; ok {
			return i, true
		}
	}
	if i, ok := e.byPath[ent.Name]; ok && (ent.Size == 0 || e.files[i].Size > 0) {
		return i, false
	}
	if ent.Size == 0 {
		return -1, false
	}
	if i, ok := e.byNorm[blur(ent.Name)]; ok {
		return i, false
	}
	if i, ok := e.byBase[blur(path.Base(ent.Name))]; ok {
		return i, false
	}
	return -1, false
}

// writer emits commands into the outer zstd stream.
type writer struct {
	w     *bufio.Writer
	stats Stats
	tmp   [binary.MaxVarintLen64]byte
}

func (w *writer) op(code byte, args ...int64) {
	w.w.WriteByte(code)
	w.args(args...)
}

func (w *writer) args(args ...int64) {
	for _, a := range args {
		n := binary.PutUvarint(w.tmp[:], uint64(a))
		w.w.Write(w.tmp[:n])
	}
}

// Encode writes the delta layer's file (EntryName) that rebuilds target
// against the base.
func (e *Encoder) Encode(out io.Writer, t Target) (Stats, error) {
	if _, err := io.WriteString(out, Magic); err != nil {
		return Stats{}, err
	}
	var hdr [binary.MaxVarintLen64]byte
	if _, err := out.Write(hdr[:binary.PutUvarint(hdr[:], uint64(t.Size))]); err != nil {
		return Stats{}, err
	}
	zw, err := newOuterWriter(out)
	if err != nil {
		return Stats{}, err
	}
	w := &writer{w: bufio.NewWriterSize(zw, 64<<10)}
	var pending []byte
	err = t.Walk(func(ent Entry) error {
		if ent.Segment != nil {
			pending = append(pending, ent.Segment...)
			if len(pending) >= MaxChunk {
				e.literal(w, pending)
				pending = pending[:0]
			}
			return nil
		}
		m, same := e.match(ent)
		if err := e.segment(w, pending, m); err != nil {
			return err
		}
		pending = pending[:0]
		if ent.Size == 0 {
			return nil
		}
		switch {
		case same:
			w.op(opCopy, e.files[m].Off, ent.Size)
			w.stats.Copied += ent.Size
			return nil
		case m >= 0:
			return e.patchFile(w, t, ent, e.files[m])
		}
		return e.literalFile(w, t, ent)
	})
	if err == nil {
		err = e.segment(w, pending, -1)
	}
	if err != nil {
		zw.Close()
		return w.stats, err
	}
	w.op(opEnd)
	if err := w.w.Flush(); err != nil {
		return w.stats, err
	}
	return w.stats, zw.Close()
}

func (e *Encoder) literal(w *writer, b []byte) {
	if len(b) == 0 {
		return
	}
	w.op(opLiteral, int64(len(b)))
	w.w.Write(b)
	w.stats.Literal += int64(len(b))
}

// segment emits raw tar bytes (headers and padding) that precede a file:
// as a bytewise difference from the bytes that precede its base file when
// they mostly agree (same header, another size or time), else as they are.
func (e *Encoder) segment(w *writer, seg []byte, m int) error {
	if len(seg) == 0 {
		return nil
	}
	if m < 0 || e.files[m].Off < int64(len(seg)) {
		e.literal(w, seg)
		return nil
	}
	off := e.files[m].Off - int64(len(seg))
	base := make([]byte, len(seg))
	if _, err := e.basis.ReadAt(base, off); err != nil {
		return fmt.Errorf("delta basis: %w", err)
	}
	same := 0
	for i := range seg {
		if seg[i] == base[i] {
			same++
		}
	}
	switch {
	case same == len(seg):
		w.op(opCopy, off, int64(len(seg)))
		w.stats.Copied += int64(len(seg))
	case same >= len(seg)/2:
		w.op(opAdd, off, int64(len(seg)))
		for i := range seg {
			base[i] = seg[i] - base[i]
		}
		w.w.Write(base)
		w.stats.Added += int64(len(seg))
	default:
		e.literal(w, seg)
	}
	return nil
}

func (e *Encoder) literalFile(w *writer, t Target, ent Entry) error {
	f, err := t.Open(ent.Name)
	if err != nil {
		return err
	}
	defer f.Close()
	w.op(opLiteral, ent.Size)
	n, err := io.Copy(w.w, io.LimitReader(f, ent.Size))
	if err != nil {
		return err
	}
	if n != ent.Size {
		return fmt.Errorf("target file %s: %d bytes, its record says %d", ent.Name, n, ent.Size)
	}
	w.stats.Literal += n
	return nil
}

// patchFile emits a changed file in chunks of at most MaxChunk, each
// patched against the range of the base file around the same relative
// position (the whole base file when it is small enough) by the codec that
// gives fewer bytes, or literal when neither helps.
func (e *Encoder) patchFile(w *writer, t Target, ent Entry, base File) error {
	f, err := t.Open(ent.Name)
	if err != nil {
		return err
	}
	defer f.Close()
	chunk := make([]byte, MaxChunk)
	for t0 := int64(0); t0 < ent.Size; {
		n := min(int64(MaxChunk), ent.Size-t0)
		if _, err := io.ReadFull(f, chunk[:n]); err != nil {
			return fmt.Errorf("target file %s: %w", ent.Name, err)
		}
		start, end := int64(0), base.Size
		if base.Size > MaxBaseRange {
			center := int64(float64(t0) * float64(base.Size) / float64(ent.Size))
			start = max(0, min(center-(MaxBaseRange-n)/2, base.Size-MaxBaseRange))
			end = start + MaxBaseRange
		}
		old := make([]byte, end-start)
		if _, err := e.basis.ReadAt(old, base.Off+start); err != nil {
			return fmt.Errorf("delta basis: %w", err)
		}
		codec, p, err := bestPatch(old, chunk[:n])
		if err != nil {
			return fmt.Errorf("patch %s: %w", ent.Name, err)
		}
		if p == nil {
			e.literal(w, chunk[:n])
		} else {
			w.op(opPatch)
			w.w.WriteByte(codec)
			w.args(base.Off+start, int64(len(old)), n, int64(len(p)))
			w.w.Write(p)
			w.stats.Patched += n
			if codec == CodecZstd {
				w.stats.PatchesZstd++
			} else {
				w.stats.PatchesBsdiff++
			}
		}
		t0 += n
	}
	return nil
}

// bestPatch returns the smaller of the zstd and bsdiff patches of new
// against old, or nil when neither is much smaller than new (a literal,
// compressed by the outer stream, then costs no more).
func bestPatch(old, new []byte) (byte, []byte, error) {
	window := max(zstd.MinWindowSize, min(innerWindow, 1<<bits.Len(uint(len(old)+len(new)))))
	var zb bytes.Buffer
	zw, err := zstd.NewWriter(&zb, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithWindowSize(window),
		zstd.WithEncoderConcurrency(1), zstd.WithEncoderDictRaw(1, old))
	if err != nil {
		return 0, nil, err
	}
	zw.Write(new)
	if err := zw.Close(); err != nil {
		return 0, nil, err
	}
	codec, best := byte(CodecZstd), zb.Bytes()
	// bsdiff costs seconds a chunk (a suffix array of old): tried only
	// where it may win, between near-identical data (zstd's patch is then
	// tiny already) and unrelated data (neither helps much).
	if len(best) > len(new)/256 && len(best) < len(new)/2 {
		bp, err := bsdiff.Diff(old, new)
		if err != nil {
			return 0, nil, err
		}
		if len(bp) < len(best) {
			codec, best = CodecBsdiff, bp
		}
	}
	if len(best) > MaxPatch || len(best) >= len(new)*9/10 {
		return 0, nil, nil
	}
	return codec, best, nil
}

// newOuterWriter is the zstd stream the commands go in: a window the
// applier can afford.
func newOuterWriter(w io.Writer) (*zstd.Encoder, error) {
	return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedBestCompression),
		zstd.WithWindowSize(OuterWindow), zstd.WithEncoderConcurrency(1))
}

// compressOuter writes b as the outer zstd stream, as Encode does.
func compressOuter(w io.Writer, b []byte) error {
	zw, err := newOuterWriter(w)
	if err != nil {
		return err
	}
	if _, err := zw.Write(b); err != nil {
		zw.Close()
		return err
	}
	return zw.Close()
}
