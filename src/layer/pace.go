package layer

import (
	"errors"
	"io"

	"golang.org/x/sys/unix"
)

// pacer writes files so that extraction keeps a bounded amount of dirty and
// cached data, counted in bytes across files rather than per file: a large
// file's writeback is started chunk by chunk and its data a window behind
// is waited for and dropped from the page cache; finished files are handed
// over and dropped in batches, each batch's writeback started once and
// waited for, and its pages dropped, by a goroutine of the pacer's while
// the next batch is written, so a small file costs the extraction no wait
// at all. Durability is not its job (Commit syncs the filesystem);
// it keeps memory use flat, so that a pull does not evict the running
// application's page cache.
type pacer struct {
	window int64 // bytes written ahead of what has been dropped
	buf    []byte
	// fresh files' writeback is not started yet; started ones' is. Both
	// hold descriptors the pacer owns and closes.
	fresh   []pendingFile
	freshSz int64
	// Started batches go to the dropper; at most one waits while it
	// drops another, which bounds what is in the cache to about three
	// batches.
	drops chan []pendingFile
	idle  chan struct{} // closed when the dropper has ended
}

type pendingFile struct {
	fd   int
	from int64 // the part before it was dropped already
	size int64
}

const (
	chunkSize = 1 << 20
	// Finished files kept open, per list, until their pages drop: at most
	// twice this per extraction.
	maxPendingOpen = 128
)

func newPacer(window int64) *pacer {
	if window < 2*chunkSize {
		window = 2 * chunkSize
	}
	return &pacer{window: window, buf: make([]byte, chunkSize)}
}

// copy writes r to the regular file fd, pacing writeback within the file.
// It returns the bytes written and how many of the first were already
// dropped from the cache (to be passed to done).
func (p *pacer) copy(fd int, r io.Reader) (n, dropped int64, err error) {
	for {
		m, rerr := io.ReadFull(r, p.buf)
		if m > 0 {
			if err := writeAll(fd, p.buf[:m]); err != nil {
				return n, dropped, err
			}
			if n == 0 && m < len(p.buf) {
				// A small file: its writeback starts with its
				// batch's.
				return int64(m), 0, nil
			}
			// Start writeback of this chunk now, without waiting.
			unix.SyncFileRange(fd, n, int64(m), unix.SYNC_FILE_RANGE_WRITE)
			n += int64(m)
			if n-dropped > p.window {
				// Wait for the oldest part, then drop it from the cache.
				end := n - p.window/2
				unix.SyncFileRange(fd, dropped, end-dropped,
					unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
				unix.Fadvise(fd, dropped, end-dropped, unix.FADV_DONTNEED)
				dropped = end
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			return n, dropped, nil
		}
		if rerr != nil {
			return n, dropped, rerr
		}
	}
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// done hands a finished file's descriptor to the pacer, which closes it
// once the file's pages are dropped. size and dropped are copy's results.
func (p *pacer) done(fd int, size, dropped int64) {
	if size <= dropped {
		unix.Close(fd)
		return
	}
	p.fresh = append(p.fresh, pendingFile{fd: fd, from: dropped, size: size})
	p.freshSz += size - dropped
	// A batch is a few hundred small files: one writeback start and one
	// wait per file, no more, and none of them waits alone.
	if p.freshSz < p.window/4 && len(p.fresh) < maxPendingOpen {
		return
	}
	p.startBatch()
}

// startBatch starts the fresh batch's writeback and hands it to the
// dropper, which waits for it and drops it.
func (p *pacer) startBatch() {
	if len(p.fresh) == 0 {
		return
	}
	for _, f := range p.fresh {
		unix.SyncFileRange(f.fd, f.from, 0, unix.SYNC_FILE_RANGE_WRITE)
	}
	if p.drops == nil {
		p.drops, p.idle = make(chan []pendingFile, 1), make(chan struct{})
		go dropper(p.drops, p.idle)
	}
	p.drops <- p.fresh
	p.fresh, p.freshSz = make([]pendingFile, 0, len(p.fresh)), 0
}

// dropper waits for each batch's writeback, drops its pages and closes
// its files.
func dropper(drops <-chan []pendingFile, done chan<- struct{}) {
	defer close(done)
	for batch := range drops {
		for _, f := range batch {
			unix.SyncFileRange(f.fd, f.from, 0,
				unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
			unix.Fadvise(f.fd, f.from, 0, unix.FADV_DONTNEED)
			unix.Close(f.fd)
		}
	}
}

// flush drops every file handed over, and waits until that is done.
func (p *pacer) flush() {
	p.startBatch()
	if p.drops != nil {
		close(p.drops)
		<-p.idle
		p.drops, p.idle = nil, nil
	}
}
