// Package stdstream is Docker's multiplexed stream, the format of attach,
// exec and logs output when there is no terminal: each frame an 8-byte
// header (stream, three zero bytes, big-endian length), then the payload.
// The daemon writes it, the monitor writes it to the daemon (with a frame
// of its own for an exec's exit), and the client reads it.
package stdstream

import (
	"encoding/binary"
	"errors"
	"io"
	"sync"
)

// Stream numbers in a frame's header.
const (
	Stdin  byte = 0
	Stdout byte = 1
	Stderr byte = 2
)

// Writer writes frames, one at a time from any goroutine. Flush, when set,
// runs after each write, so that a frame reaches the peer at once.
type Writer struct {
	W     io.Writer
	Flush func() error
	mu    sync.Mutex
}

// Frame writes p as one frame of the stream.
func (w *Writer) Frame(stream byte, p []byte) error {
	var hdr [8]byte
	hdr[0] = stream
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(p)))
	return w.write(hdr[:], p)
}

// Raw writes p unframed: a terminal's output is not multiplexed.
func (w *Writer) Raw(p []byte) error { return w.write(p) }

func (w *Writer) write(parts ...[]byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range parts {
		if _, err := w.W.Write(p); err != nil {
			return err
		}
	}
	if w.Flush != nil {
		return w.Flush()
	}
	return nil
}

// To is an io.Writer whose every write is one frame of the stream.
func (w *Writer) To(stream byte) io.Writer { return streamWriter{w, stream} }

type streamWriter struct {
	w      *Writer
	stream byte
}

func (s streamWriter) Write(p []byte) (int, error) {
	if err := s.w.Frame(s.stream, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// smallFrame is the payload size ReadFrame allocates at once: the
// writers' frames are of this order (io.Copy's 32 KiB).
const smallFrame = 64 << 10

// ReadFrame reads one whole frame. A payload larger than smallFrame is
// read as it arrives rather than allocated from its header: a header may
// claim up to 4 GiB, which a 32-bit device cannot even allocate.
func ReadFrame(r io.Reader) (stream byte, p []byte, err error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := int64(binary.BigEndian.Uint32(hdr[4:]))
	if n <= smallFrame {
		p = make([]byte, n)
		if _, err := io.ReadFull(r, p); err != nil {
			return 0, nil, err
		}
		return hdr[0], p, nil
	}
	p, err = io.ReadAll(io.LimitReader(r, n))
	if err != nil {
		return 0, nil, err
	}
	if int64(len(p)) != n {
		return 0, nil, io.ErrUnexpectedEOF
	}
	return hdr[0], p, nil
}

// Demux copies a stream's frames to stdout and stderr until it ends.
func Demux(r io.Reader, stdout, stderr io.Writer) error {
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		w := stdout
		if hdr[0] == Stderr {
			w = stderr
		}
		if _, err := io.CopyN(w, r, int64(binary.BigEndian.Uint32(hdr[4:]))); err != nil {
			return err
		}
	}
}
