package logs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/klauspost/compress/gzip"
)

// ReadOptions select what Read returns.
type ReadOptions struct {
	Since, Until time.Time // zero: unbounded
	Tail         int       // the last N entries; -1 for all
	Follow       bool      // keep reading as the log grows, until ctx ends or the log closes
}

func (o ReadOptions) selects(e Entry) bool {
	return (o.Since.IsZero() || !e.Time.Before(o.Since)) && (o.Until.IsZero() || !e.Time.After(o.Until))
}

// maxLineBytes bounds one stored line. The writer cuts lines at 16 KiB,
// which JSON escaping can make six times longer; anything longer is not
// a line the writer made (a torn write) and is skipped.
const maxLineBytes = 1 << 20

// chunkSize is how much of a file is read at a time, either way.
const chunkSize = 64 << 10

// Read sends the selected entries to fn, oldest first. With Follow it
// goes on with new entries, across rotations, until ctx is done or stop
// is closed (the container exited).
//
// Memory does not grow with the log: all entries are streamed from the
// oldest file on, and the last N are found by reading the newest file
// backwards from its end, going to older files only while N entries have
// not been found. A gzipped file cannot be read backwards, so it is
// streamed keeping the last entries wanted in a ring. Either way what is
// held is the N entries and a chunk.
func Read(ctx context.Context, path string, maxFile int, opts ReadOptions, stop <-chan struct{}, fn func(Entry) error) error {
	s, err := Open(path, maxFile)
	if err != nil {
		return err
	}
	return s.Read(ctx, opts, stop, fn)
}

// Snapshot is a log as it stood when opened: its files are held open, so
// that rotations since (renamed, compressed, replaced files) take nothing
// from it, and without Follow a read ends where the log ended then. An
// attach with logs=1 takes one while the container's output waits, so
// that its replay ends exactly where the live stream begins.
type Snapshot struct {
	path    string
	cur     *os.File // nil if there was no current file
	curSize int64
	older   []*rotated // newest first
}

// Open takes a snapshot of the log at path. Read consumes it.
func Open(path string, maxFile int) (*Snapshot, error) {
	// The current file first: a rotated file with the same inode, renamed
	// since, is then not read twice.
	s := &Snapshot{path: path}
	cur, err := os.Open(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read log: %w", err)
	}
	var curIno uint64
	if cur != nil {
		fi, err := cur.Stat()
		if err != nil {
			cur.Close()
			return nil, fmt.Errorf("read log: %w", err)
		}
		s.cur, s.curSize, curIno = cur, fi.Size(), statIno(fi)
	}
	for i := 1; i < maxFile; i++ {
		r, err := openRotated(path + "." + strconv.Itoa(i))
		if err != nil {
			s.Close()
			return nil, err
		}
		if r == nil {
			continue
		}
		if !r.gz && cur != nil && r.ino == curIno {
			r.f.Close()
			continue
		}
		s.older = append(s.older, r)
	}
	return s, nil
}

// Close lets go of the snapshot's files (Read does it).
func (s *Snapshot) Close() {
	if s.cur != nil {
		s.cur.Close()
		s.cur = nil
	}
	for _, r := range s.older {
		r.f.Close()
	}
	s.older = nil
}

// Read sends the snapshot's selected entries to fn, as the package's Read
// does, and closes it.
func (s *Snapshot) Read(ctx context.Context, opts ReadOptions, stop <-chan struct{}, fn func(Entry) error) error {
	defer s.Close()
	path, cur := s.path, s.cur
	var off int64 // where following starts in the current file
	var err error
	if opts.Tail < 0 {
		emit := func(e Entry) error {
			if opts.selects(e) {
				return fn(e)
			}
			return nil
		}
		for i := len(s.older) - 1; i >= 0; i-- {
			if err := s.older[i].forward(emit); err != nil {
				return err
			}
		}
		if cur != nil {
			end := s.curSize
			if opts.Follow {
				end = 1 << 62 // following goes on from wherever this ends
			}
			if off, err = scanEntries(io.NewSectionReader(cur, 0, end), path, 0, emit); err != nil {
				return err
			}
		}
	} else {
		if off, err = tail(path, cur, s.curSize, s.older, opts, fn); err != nil {
			return err
		}
	}
	if !opts.Follow {
		return nil
	}
	s.cur = nil // follow closes it
	return follow(ctx, path, cur, off, opts, stop, fn)
}

// tail sends the last opts.Tail selected entries, oldest first, and
// returns the offset after the last whole line of the current file.
func tail(path string, cur *os.File, curSize int64, older []*rotated, opts ReadOptions, fn func(Entry) error) (int64, error) {
	var got []Entry // newest first
	var end int64
	if cur != nil {
		bs, err := newBackScanner(cur, curSize)
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", path, err)
		}
		end = bs.end
		if err := bs.collect(&got, opts); err != nil {
			return 0, fmt.Errorf("read %s: %w", path, err)
		}
	}
	for _, r := range older {
		if len(got) >= opts.Tail {
			break
		}
		if err := r.collect(&got, opts); err != nil {
			return 0, err
		}
	}
	for i := len(got) - 1; i >= 0; i-- {
		if err := fn(got[i]); err != nil {
			return 0, err
		}
	}
	return end, nil
}

// rotated is an older file of a log, plain or gzipped.
type rotated struct {
	name string
	f    *os.File
	gz   bool
	ino  uint64
	size int64
}

// openRotated opens FILE.N or, failing that, FILE.N.gz; nil if neither is.
func openRotated(name string) (*rotated, error) {
	for _, gz := range []bool{false, true} {
		n := name
		if gz {
			n += ".gz"
		}
		f, err := os.Open(n)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read log: %w", err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("read log: %w", err)
		}
		return &rotated{name: n, f: f, gz: gz, ino: statIno(fi), size: fi.Size()}, nil
	}
	return nil, nil
}

// reader is the file's content, uncompressed.
func (r *rotated) reader() (io.Reader, error) {
	if !r.gz {
		return io.NewSectionReader(r.f, 0, r.size), nil
	}
	zr, err := gzip.NewReader(r.f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", r.name, err)
	}
	return zr, nil
}

func (r *rotated) forward(fn func(Entry) error) error {
	src, err := r.reader()
	if err != nil {
		return err
	}
	_, err = scanEntries(src, r.name, 0, fn)
	return err
}

// collect adds the file's last selected entries to got (newest first)
// until it holds opts.Tail.
func (r *rotated) collect(got *[]Entry, opts ReadOptions) error {
	if !r.gz {
		bs, err := newBackScanner(r.f, r.size)
		if err != nil {
			return fmt.Errorf("read %s: %w", r.name, err)
		}
		if err := bs.collect(got, opts); err != nil {
			return fmt.Errorf("read %s: %w", r.name, err)
		}
		return nil
	}
	// Forward through the file, keeping the last `want` entries in a ring.
	want := opts.Tail - len(*got)
	ring := make([]Entry, 0, min(want, 1024))
	next := 0 // the oldest once the ring is full
	err := r.forward(func(e Entry) error {
		switch {
		case !opts.selects(e):
		case len(ring) < want:
			ring = append(ring, e)
		default:
			ring[next] = e
			next = (next + 1) % want
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(ring) - 1; i >= 0; i-- {
		*got = append(*got, ring[(next+i)%len(ring)])
	}
	return nil
}

// decodeLine reads one stored line; false for a line that is not an entry,
// which readers skip. A write torn by a power cut or a full disk leaves a
// partial entry that the next one continues on the same line: that next
// entry is recovered from where it starts.
func decodeLine(line []byte, e *Entry) bool {
	*e = Entry{}
	if json.Unmarshal(line, e) == nil {
		return true
	}
	if i := bytes.LastIndex(line, entryStart); i > 0 {
		*e = Entry{}
		return json.Unmarshal(line[i:], e) == nil
	}
	return false
}

// entryStart is how the writer begins every line.
var entryStart = []byte(`{"log":`)

// scanEntries hands fn the entries of the whole lines of src, which starts
// at offset in its file, and returns the offset after the last whole line:
// a partial last line is read once it is complete.
func scanEntries(src io.Reader, name string, offset int64, fn func(Entry) error) (int64, error) {
	br := bufio.NewReaderSize(src, chunkSize)
	var long []byte // a line longer than the buffer, gathered
	pending := 0    // its length so far
	for {
		chunk, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			if pending+len(chunk) <= maxLineBytes {
				long = append(long, chunk...)
			}
			pending += len(chunk)
			continue
		}
		if err == io.EOF {
			return offset, nil
		}
		if err != nil {
			return offset, fmt.Errorf("read %s: %w", name, err)
		}
		line, n := chunk, pending+len(chunk)
		if pending > 0 {
			long = append(long, chunk...)
			line = long
		}
		long, pending = long[:0], 0
		offset += int64(n)
		var e Entry
		if n <= maxLineBytes && decodeLine(line, &e) {
			if err := fn(e); err != nil {
				return offset, err
			}
		}
	}
}

// backScanner reads a file's lines from its end backwards, holding one
// chunk and the line being gathered.
type backScanner struct {
	r   io.ReaderAt
	pos int64  // the file offset of buf[0]
	buf []byte // not yet returned; ends with a line's '\n' or is empty
	end int64  // the offset after the file's last whole line
}

func newBackScanner(r io.ReaderAt, size int64) (*backScanner, error) {
	b := &backScanner{r: r, pos: size}
	// A partial last line is not an entry yet.
	if err := b.seekLineEnd(); err != nil {
		return nil, err
	}
	b.end = b.pos + int64(len(b.buf))
	return b, nil
}

// fill prepends the chunk before buf.
func (b *backScanner) fill() error {
	n := min(int64(chunkSize), b.pos)
	nb := make([]byte, int(n)+len(b.buf))
	if _, err := b.r.ReadAt(nb[:n], b.pos-n); err != nil {
		return err
	}
	copy(nb[n:], b.buf)
	b.buf, b.pos = nb, b.pos-n
	return nil
}

// seekLineEnd drops what follows buf's last '\n', reading back for one
// as needed.
func (b *backScanner) seekLineEnd() error {
	for {
		if i := bytes.LastIndexByte(b.buf, '\n'); i >= 0 {
			b.buf = b.buf[:i+1]
			return nil
		}
		b.buf = nil
		if b.pos == 0 {
			return nil
		}
		if err := b.fill(); err != nil {
			return err
		}
	}
}

// prev returns the line before those returned, without its '\n'; io.EOF
// at the start of the file. The line is valid until the next call.
func (b *backScanner) prev() ([]byte, error) {
	for {
		if len(b.buf) == 0 {
			if b.pos == 0 {
				return nil, io.EOF
			}
			if err := b.fill(); err != nil {
				return nil, err
			}
			continue
		}
		body := b.buf[:len(b.buf)-1]
		if i := bytes.LastIndexByte(body, '\n'); i >= 0 {
			b.buf = b.buf[:i+1]
			return body[i+1:], nil
		}
		if b.pos == 0 {
			b.buf = nil
			return body, nil
		}
		if len(body) > maxLineBytes {
			// Not a line the writer made: skip it, back to the previous '\n'.
			b.buf = nil
			if err := b.seekLineEnd(); err != nil {
				return nil, err
			}
			continue
		}
		if err := b.fill(); err != nil {
			return nil, err
		}
	}
}

// collect adds the selected entries, newest first, to got until it holds
// opts.Tail or the file's start is reached.
func (b *backScanner) collect(got *[]Entry, opts ReadOptions) error {
	for len(*got) < opts.Tail {
		line, err := b.prev()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		var e Entry
		if decodeLine(line, &e) && opts.selects(e) {
			*got = append(*got, e)
		}
	}
	return nil
}

// follow sends the entries written from off on in f (the current file,
// or nil if there was none) and in the files that replace it as the log
// rotates. The file followed is held open: its inode cannot be reused by
// the next file (which would hide a rotation, as when the rotated file is
// compressed and removed), and what was left in it is read from the open
// file.
func follow(ctx context.Context, path string, f *os.File, off int64, opts ReadOptions, stop <-chan struct{}, fn func(Entry) error) error {
	var ino uint64
	if f != nil {
		if fi, err := f.Stat(); err == nil {
			ino = statIno(fi)
		}
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	errUntil := errors.New("until reached")
	emit := func(e Entry) error {
		if !opts.Until.IsZero() && e.Time.After(opts.Until) {
			return errUntil
		}
		return fn(e)
	}
	readNew := func() error {
		if f == nil {
			return nil
		}
		n, err := scanEntries(io.NewSectionReader(f, off, 1<<62), path, off, emit)
		off = n
		return err
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := readNew(); err != nil {
			if err == errUntil {
				return nil
			}
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-stop:
			// One last look for lines written just before the exit.
			if err := readNew(); err != nil && err != errUntil {
				return err
			}
			return nil
		case <-tick.C:
		}
		if cur := inode(path); f == nil || cur != ino {
			// Rotated: read what was left in the old file.
			if err := readNew(); err != nil {
				if err == errUntil {
					return nil
				}
				return err
			}
			if f != nil {
				f.Close()
			}
			f, ino, off = nil, 0, 0
			if nf, err := os.Open(path); err == nil {
				if fi, err := nf.Stat(); err == nil {
					f, ino = nf, statIno(fi)
				} else {
					nf.Close()
				}
			}
		}
	}
}

func inode(path string) uint64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return statIno(fi)
}
