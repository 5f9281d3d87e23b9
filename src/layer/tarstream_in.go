package layer

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"hash/crc64"
	"io"

	"github.com/vbatts/tar-split/archive/tar"
	"github.com/vbatts/tar-split/tar/storage"
)

// inflater decompresses a layer blob on a goroutine of its own, handing
// the tar stream over in large chunks: the extraction, mostly system calls,
// runs beside it on another core, with one hand-off per chunk rather than
// per read of a header or a small file. The tar stream's digest is taken
// on the reading side, which has the lighter load.
type inflater struct {
	h          hash.Hash
	full, free chan []byte
	quit       chan struct{}
	done       chan struct{}
	buf        []byte // the chunk being read, whole
	cur        []byte // its unread part
	err        error  // the producer's, read after full is closed
	stopped    bool
}

const (
	inflateChunk = 256 << 10
	inflateBufs  = 4
)

var errStopped = errors.New("layer extraction stopped")

// startInflate reads dr (the decompressed blob) to its end, then the rest
// of src (the blob, after the compressed data), so that the blob's digest
// and size cover it all. What is read from the inflater is written to h.
func startInflate(dr, src io.Reader, h hash.Hash) *inflater {
	f := &inflater{
		h:    h,
		full: make(chan []byte, inflateBufs),
		free: make(chan []byte, inflateBufs),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	for range inflateBufs {
		f.free <- make([]byte, inflateChunk)
	}
	go f.run(dr, src)
	return f
}

func (f *inflater) run(dr, src io.Reader) {
	defer close(f.done)
	defer close(f.full)
	for {
		var buf []byte
		select {
		case buf = <-f.free:
		case <-f.quit:
			f.err = errStopped
			return
		}
		n, err := fill(dr, buf[:cap(buf)])
		if n > 0 {
			select {
			case f.full <- buf[:n]:
			case <-f.quit:
				f.err = errStopped
				return
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			f.err = fmt.Errorf("read layer: %w", err)
			return
		}
	}
	// The compressed stream may go on past the end of the compressed data.
	if _, err := io.Copy(io.Discard, src); err != nil {
		f.err = fmt.Errorf("read layer blob: %w", err)
	}
}

// fill reads into b until it is full or r ends (io.EOF, only with n <
// len(b)) or fails.
func fill(r io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (f *inflater) Read(p []byte) (int, error) {
	if len(f.cur) == 0 {
		if f.buf != nil {
			f.free <- f.buf[:cap(f.buf)]
			f.buf = nil
		}
		buf, ok := <-f.full
		if !ok {
			if f.err != nil {
				return 0, f.err
			}
			return 0, io.EOF
		}
		f.h.Write(buf)
		f.buf, f.cur = buf, buf
	}
	n := copy(p, f.cur)
	f.cur = f.cur[n:]
	return n, nil
}

// stop ends the producer and waits for it: after stop, the blob is no
// longer read. It returns the producer's error, if the stream did not end
// cleanly.
func (f *inflater) stop() error {
	if !f.stopped {
		f.stopped = true
		close(f.quit)
		<-f.done
	}
	if f.err == errStopped {
		return nil
	}
	return f.err
}

// crcReader is what the tar-split record keeps of a file's content: its
// CRC-64, as tar-split's own disassembler computes it.
type crcReader struct {
	r io.Reader
	h hash.Hash64
}

func (c *crcReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	return n, err
}

// extract applies the tar stream r with a and records it in packer as
// tar-split does (the raw headers and padding as segments, each file's
// name, size and CRC-64), in one pass and one goroutine: the layer's tar
// can be rebuilt byte for byte from the record and the extracted files.
func extract(ctx context.Context, r io.Reader, a *applier, packer storage.Packer) error {
	tr := tar.NewReader(r)
	tr.RawAccounting = true
	segment := func(b []byte) error {
		if len(b) == 0 {
			return nil
		}
		_, err := packer.AddEntry(storage.Entry{Type: storage.SegmentType, Payload: b})
		return err
	}
	body := &crcReader{r: tr, h: crc64.New(storage.CRCTable)}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			// The end blocks.
			if err := segment(tr.RawBytes()); err != nil {
				return fmt.Errorf("record tar-split: %w", err)
			}
			break
		}
		if err != nil {
			return fmt.Errorf("read layer tar: %w", err)
		}
		if err := segment(tr.RawBytes()); err != nil {
			return fmt.Errorf("record tar-split: %w", err)
		}
		body.h.Reset()
		if err := a.entry(hdr, body); err != nil {
			return err
		}
		// What the extraction did not read belongs to the record too.
		if _, err := io.Copy(io.Discard, body); err != nil {
			return fmt.Errorf("read layer tar: %w", err)
		}
		e := storage.Entry{Type: storage.FileType, Size: hdr.Size}
		if hdr.Size > 0 {
			e.Payload = body.h.Sum(nil)
		}
		e.SetName(hdr.Name)
		if _, err := packer.AddEntry(e); err != nil {
			return fmt.Errorf("record tar-split: %w", err)
		}
		if err := segment(tr.RawBytes()); err != nil {
			return fmt.Errorf("record tar-split: %w", err)
		}
	}
	// Padding after the end blocks belongs to the diffID and the record:
	// kept in bounded segments.
	pad := make([]byte, 64<<10)
	for {
		n, err := r.Read(pad)
		if err := segment(pad[:n]); err != nil {
			return fmt.Errorf("record tar-split: %w", err)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read layer tar: %w", err)
		}
	}
}
