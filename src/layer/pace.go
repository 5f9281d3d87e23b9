package layer

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// pacer writes files so that extraction keeps a bounded amount of dirty and
// cached data: each chunk's writeback is started as soon as it is written,
// and data a window behind is waited for and dropped from the page cache.
// Small files are collected and dropped in batches. Durability is not its
// job (Commit syncs the filesystem); it only keeps memory use flat, so that
// a pull does not evict the running application's page cache.
type pacer struct {
	window  int64 // bytes written ahead of what has been dropped
	buf     []byte
	pending []*os.File // finished files whose pages are not yet dropped
	pendSz  int64
}

const (
	chunkSize      = 1 << 20
	maxPendingOpen = 64 // finished files kept open until their pages drop
)

func newPacer(window int64) *pacer {
	if window < 2*chunkSize {
		window = 2 * chunkSize
	}
	return &pacer{window: window, buf: make([]byte, chunkSize)}
}

// copy writes r to f, pacing writeback. f stays the caller's: what is
// kept for a later flush is a duplicate of its descriptor, so that the
// caller may go on using f (its metadata is set through it) and close it.
func (p *pacer) copy(f *os.File, r io.Reader) (int64, error) {
	fd := int(f.Fd())
	var off, dropped int64
	for {
		n, rerr := io.ReadFull(r, p.buf)
		if n > 0 {
			if _, err := f.Write(p.buf[:n]); err != nil {
				return off, err
			}
			// Start writeback of this chunk now, without waiting.
			unix.SyncFileRange(fd, off, int64(n), unix.SYNC_FILE_RANGE_WRITE)
			off += int64(n)
			if off-dropped > p.window {
				// Wait for the oldest part, then drop it from the cache.
				end := off - p.window/2
				unix.SyncFileRange(fd, dropped, end-dropped,
					unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
				unix.Fadvise(fd, dropped, end-dropped, unix.FADV_DONTNEED)
				dropped = end
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return off, rerr
		}
	}
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		// Its pages are then left to the kernel: pacing is not
		// correctness.
		return off, nil
	}
	p.pending = append(p.pending, os.NewFile(uintptr(dup), f.Name()))
	p.pendSz += off - dropped
	if p.pendSz > p.window || len(p.pending) >= maxPendingOpen {
		p.flush()
	}
	return off, nil
}

// flush waits for the pending files' writeback, drops their pages and
// closes them.
func (p *pacer) flush() {
	for _, f := range p.pending {
		fd := int(f.Fd())
		unix.SyncFileRange(fd, 0, 0,
			unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
		unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED)
		f.Close()
	}
	p.pending = p.pending[:0]
	p.pendSz = 0
}
