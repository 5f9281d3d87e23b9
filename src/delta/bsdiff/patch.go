package bsdiff

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// copyBufSize is the size of Patch's two copy buffers (old bytes, diff or
// extra bytes): every triple, however long, passes through them in pieces.
const copyBufSize = 64 << 10

// Patch applies patch to old, whose length is oldSize, and writes the
// result, which must be newSize bytes long, to out.
//
// old is read only through ReadAt, in pieces of at most 64 KiB, and patch
// is read once, sequentially, to its end: trailing bytes are an error.
// Memory use is bounded whatever the sizes and the patch say, at under
// 2 MiB: three zstd decoders, each with a window of at most 256 KiB (less
// for small streams) and its block buffers; at most 256 KiB of packets
// read but not yet decompressed; and some 200 KiB of buffers (less for
// small outputs). Applying a 16 MiB patch allocates about 1.5 MiB in all.
//
// A patch that is malformed, reads outside old, or makes anything but
// newSize bytes gives an error wrapping ErrCorrupt, as soon as that is
// known; whatever was written to out before stays written. Failures to
// read old or patch (other than patch ending early) or to write out are
// returned wrapped, and do not wrap ErrCorrupt.
func Patch(out io.Writer, old io.ReaderAt, oldSize int64, patch io.Reader, newSize int64) error {
	if oldSize < 0 || newSize < 0 {
		return fmt.Errorf("bsdiff: negative size (old %d, new %d)", oldSize, newSize)
	}
	p := newPatcher(out, old, oldSize, patch, newSize)
	defer p.close()
	return p.run(newSize)
}

func newPatcher(out io.Writer, old io.ReaderAt, oldSize int64, patch io.Reader, newSize int64) *patcher {
	return &patcher{
		old:     old,
		oldSize: oldSize,
		out:     bufio.NewWriterSize(out, int(min(newSize, 32<<10))),
		dm:      &demux{r: bufio.NewReaderSize(patch, 4<<10)}, // packets bypass it
	}
}

func (p *patcher) run(newSize int64) error {
	if err := p.header(newSize); err != nil {
		return err
	}
	if err := p.apply(newSize); err != nil {
		return err
	}
	if err := p.finish(); err != nil {
		return err
	}
	if err := p.out.Flush(); err != nil {
		return fmt.Errorf("bsdiff: writing output: %w", err)
	}
	return nil
}

// patcher is the state of one Patch.
type patcher struct {
	old     io.ReaderAt
	oldSize int64
	oldPos  int64
	out     *bufio.Writer
	written int64

	dm   *demux
	dec  [numStreams]*zstd.Decoder
	ctrl *bufio.Reader // over dec[streamCtrl], for varints

	oldBuf, dataBuf []byte
}

func (p *patcher) close() {
	for _, d := range p.dec {
		if d != nil {
			d.Close()
		}
	}
}

func (p *patcher) header(newSize int64) error {
	var hdr [len(magic) + 1]byte
	if _, err := io.ReadFull(p.dm.r, hdr[:]); err != nil {
		return readErr(err, "the header")
	}
	if string(hdr[:len(magic)]) != magic {
		return fmt.Errorf("%w: no %q magic", ErrCorrupt, magic)
	}
	if hdr[len(magic)] != version {
		return fmt.Errorf("%w: version %d, want %d", ErrCorrupt, hdr[len(magic)], version)
	}
	n, err := readUvarint(p.dm.r)
	if err != nil {
		return readErr(err, "the header")
	}
	if n != uint64(newSize) {
		return fmt.Errorf("%w: it makes %d bytes, want %d", ErrCorrupt, n, newSize)
	}
	return nil
}

// apply runs the triples until newSize bytes are written.
func (p *patcher) apply(newSize int64) error {
	p.oldBuf = make([]byte, min(newSize, copyBufSize))
	p.dataBuf = make([]byte, min(newSize, copyBufSize))
	for s := range p.dec {
		// Decoders read nothing until asked for output, and allocate
		// their buffers only then.
		d, err := zstd.NewReader(streamReader{p.dm, s},
			zstd.WithDecoderConcurrency(1), // synchronous: input is read only as output is
			zstd.WithDecoderMaxWindow(maxWindow),
			zstd.WithDecoderMaxMemory(maxWindow),
			zstd.WithDecoderLowmem(true))
		if err != nil {
			return fmt.Errorf("bsdiff: creating the %s stream's decoder: %w", streamNames[s], err)
		}
		p.dec[s] = d
	}
	p.ctrl = bufio.NewReaderSize(p.dec[streamCtrl], 4<<10)
	diff, extra := p.dec[streamDiff], p.dec[streamExtra]
	for p.written < newSize {
		seek, err := binary.ReadVarint(p.ctrl)
		if err != nil {
			return p.streamErr(streamCtrl, err)
		}
		diffLen, err := binary.ReadUvarint(p.ctrl)
		if err != nil {
			return p.streamErr(streamCtrl, err)
		}
		extraLen, err := binary.ReadUvarint(p.ctrl)
		if err != nil {
			return p.streamErr(streamCtrl, err)
		}
		// Checked one by one, so that no sum can overflow.
		left := uint64(newSize - p.written)
		switch {
		case seek < -p.oldPos || seek > p.oldSize-p.oldPos:
			return fmt.Errorf("%w: at output offset %d, seek %d from old offset %d leaves the old data (%d bytes)", ErrCorrupt, p.written, seek, p.oldPos, p.oldSize)
		case diffLen == 0 && extraLen == 0:
			return fmt.Errorf("%w: at output offset %d, an empty triple", ErrCorrupt, p.written)
		case diffLen > left || extraLen > left-diffLen:
			return fmt.Errorf("%w: at output offset %d, a triple of %d+%d bytes overruns the new size %d", ErrCorrupt, p.written, diffLen, extraLen, newSize)
		case diffLen > uint64(p.oldSize-(p.oldPos+seek)):
			return fmt.Errorf("%w: at output offset %d, %d diff bytes from old offset %d overrun the old data (%d bytes)", ErrCorrupt, p.written, diffLen, p.oldPos+seek, p.oldSize)
		}
		p.oldPos += seek
		if err := p.copyDiff(diff, int64(diffLen)); err != nil {
			return err
		}
		if err := p.copyExtra(extra, int64(extraLen)); err != nil {
			return err
		}
	}
	return nil
}

// copyDiff writes n old bytes plus as many diff bytes.
func (p *patcher) copyDiff(diff io.Reader, n int64) error {
	for n > 0 {
		k := int(min(n, copyBufSize))
		ob, db := p.oldBuf[:k], p.dataBuf[:k]
		if got, err := p.old.ReadAt(ob, p.oldPos); got < k {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("bsdiff: reading %d old bytes at offset %d of %d: %w", k, p.oldPos, p.oldSize, err)
		}
		if _, err := io.ReadFull(diff, db); err != nil {
			return p.streamErr(streamDiff, err)
		}
		for i := range ob {
			ob[i] += db[i]
		}
		if err := p.write(ob); err != nil {
			return err
		}
		p.oldPos += int64(k)
		n -= int64(k)
	}
	return nil
}

// copyExtra writes n extra bytes.
func (p *patcher) copyExtra(extra io.Reader, n int64) error {
	for n > 0 {
		b := p.dataBuf[:min(n, copyBufSize)]
		if _, err := io.ReadFull(extra, b); err != nil {
			return p.streamErr(streamExtra, err)
		}
		if err := p.write(b); err != nil {
			return err
		}
		n -= int64(len(b))
	}
	return nil
}

func (p *patcher) write(b []byte) error {
	if _, err := p.out.Write(b); err != nil {
		return fmt.Errorf("bsdiff: writing output at offset %d: %w", p.written, err)
	}
	p.written += int64(len(b))
	return nil
}

// finish checks that every stream, and then the patch, ends here.
func (p *patcher) finish() error {
	if _, err := p.ctrl.ReadByte(); err != io.EOF {
		if err == nil {
			return fmt.Errorf("%w: the control stream goes on after the last triple", ErrCorrupt)
		}
		return p.streamErr(streamCtrl, err)
	}
	for _, s := range []int{streamDiff, streamExtra} {
		var b [1]byte
		if _, err := io.ReadFull(p.dec[s], b[:]); err != io.EOF {
			if err == nil {
				return fmt.Errorf("%w: the %s stream goes on after the last triple", ErrCorrupt, streamNames[s])
			}
			return p.streamErr(s, err)
		}
	}
	// Each stream ended only at the end marker.
	if _, err := p.dm.r.ReadByte(); err != io.EOF {
		if err == nil {
			return fmt.Errorf("%w: data after the end marker", ErrCorrupt)
		}
		return fmt.Errorf("bsdiff: reading patch: %w", err)
	}
	return nil
}

// streamErr reports a failure to read stream s: the demultiplexer's own
// failure if that is the cause, otherwise the stream's fault.
func (p *patcher) streamErr(s int, err error) error {
	if p.dm.err != nil {
		return p.dm.err
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: the %s stream ends early, at output offset %d", ErrCorrupt, streamNames[s], p.written)
	}
	return fmt.Errorf("%w: %s stream, at output offset %d: %w", ErrCorrupt, streamNames[s], p.written, err)
}

// demux splits the packets of a patch into the three streams. Packets are
// read when a stream needs more than it has; those of other streams wait in
// their queues, up to maxQueued bytes in all.
type demux struct {
	r      *bufio.Reader
	queues [numStreams][]packet
	queued int
	peak   int      // the most queued at once, for tests
	spare  [][]byte // buffers of consumed packets, for reuse
	ended  bool     // the end marker was read
	err    error    // the first failure, which every later read returns
}

// packet is a packet's payload, of which off bytes were consumed.
type packet struct {
	b   []byte
	off int
}

// next reads one packet into its stream's queue, or the end marker.
func (d *demux) next() error {
	tag, err := d.r.ReadByte()
	if err != nil {
		return readErr(err, "a packet")
	}
	if tag == tagEnd {
		d.ended = true
		return nil
	}
	if tag >= numStreams {
		return fmt.Errorf("%w: unknown packet type %d", ErrCorrupt, tag)
	}
	n, err := readUvarint(d.r)
	if err != nil {
		return readErr(err, "a packet")
	}
	if n == 0 || n > maxPacket {
		return fmt.Errorf("%w: a packet of %d bytes (limit %d)", ErrCorrupt, n, maxPacket)
	}
	if d.queued+int(n) > maxQueued {
		return fmt.Errorf("%w: packets of %d bytes wait for their streams (limit %d)", ErrCorrupt, d.queued+int(n), maxQueued)
	}
	var buf []byte
	if k := len(d.spare); k > 0 && cap(d.spare[k-1]) >= int(n) {
		buf, d.spare = d.spare[k-1][:n], d.spare[:k-1]
	} else {
		buf = make([]byte, n)
	}
	if _, err := io.ReadFull(d.r, buf); err != nil {
		return readErr(err, "a packet")
	}
	d.queues[tag] = append(d.queues[tag], packet{b: buf})
	d.queued += int(n)
	d.peak = max(d.peak, d.queued)
	return nil
}

// streamReader is one stream's input, as its zstd decoder reads it.
type streamReader struct {
	d *demux
	s int
}

func (r streamReader) Read(b []byte) (int, error) {
	d := r.d
	for {
		if q := d.queues[r.s]; len(q) > 0 {
			pk := &q[0]
			n := copy(b, pk.b[pk.off:])
			pk.off += n
			d.queued -= n
			if pk.off == len(pk.b) {
				d.spare = append(d.spare, pk.b)
				d.queues[r.s] = q[1:]
			}
			return n, nil
		}
		if d.err != nil {
			return 0, d.err
		}
		if d.ended {
			return 0, io.EOF
		}
		d.err = d.next()
	}
}

var errOverflow = errors.New("varint overflows 64 bits")

// readUvarint is binary.ReadUvarint with an overflow error of our own, so
// that it can be told from the reader's.
func readUvarint(r io.ByteReader) (uint64, error) {
	var v uint64
	for shift := 0; ; shift += 7 {
		b, err := r.ReadByte()
		if err != nil {
			if shift > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if shift == 63 && b > 1 {
			return 0, errOverflow
		}
		v |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return v, nil
		}
	}
}

// readErr describes a failure to read part of the patch: running out of
// patch, or a malformed number, is the patch's fault; anything else the
// reader's.
func readErr(err error, what string) error {
	switch err {
	case io.EOF, io.ErrUnexpectedEOF:
		return fmt.Errorf("%w: truncated in %s", ErrCorrupt, what)
	case errOverflow:
		return fmt.Errorf("%w: %s: %w", ErrCorrupt, what, err)
	}
	return fmt.Errorf("bsdiff: reading %s: %w", what, err)
}
