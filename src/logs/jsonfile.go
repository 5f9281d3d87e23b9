// Package logs stores container output in Docker's json-file format: one
// JSON object per line ({"log","stream","time"}), rotated by size into
// FILE, FILE.1, ... FILE.N-1 so that logs cannot fill the disk, and reads it
// back for "docker logs" (tail, since/until, follow across rotation).
package logs

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
)

// Entry is one log line.
type Entry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// Writer appends entries to a json-file log, rotating it.
type Writer struct {
	mu      sync.Mutex
	path    string
	maxSize int64 // bytes per file; 0 for no rotation
	maxFile int   // files kept, the current one included
	gz      bool  // rotated files are gzipped: FILE.1.gz ...
	f       *os.File
	size    int64
}

// NewWriter opens (appending to) the log at path. With compress, rotated
// files are gzipped, as Docker's json-file does with compress=true.
func NewWriter(path string, maxSize int64, maxFile int, compress bool) (*Writer, error) {
	if maxFile < 1 {
		maxFile = 1
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Writer{path: path, maxSize: maxSize, maxFile: maxFile, gz: compress, f: f, size: fi.Size()}, nil
}

// Write records one line of a stream ("stdout" or "stderr").
func (w *Writer) Write(stream string, line []byte, t time.Time) error {
	b, err := json.Marshal(Entry{Log: string(line), Stream: stream, Time: t.UTC()})
	if err != nil {
		return err
	}
	b = append(b, '\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return errors.New("log closed")
	}
	if w.maxSize > 0 && w.size > 0 && w.size+int64(len(b)) > w.maxSize {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(b)
	w.size += int64(n)
	return err
}

// rotate shifts FILE.i to FILE.i+1, dropping the oldest, and starts FILE.
func (w *Writer) rotate() error {
	w.f.Close()
	if w.maxFile == 1 {
		if err := os.Truncate(w.path, 0); err != nil {
			return err
		}
	} else {
		// Plain and gzipped names both: compress may have been switched.
		for _, ext := range []string{"", ".gz"} {
			os.Remove(w.path + "." + strconv.Itoa(w.maxFile-1) + ext)
			for i := w.maxFile - 2; i >= 1; i-- {
				os.Rename(w.path+"."+strconv.Itoa(i)+ext, w.path+"."+strconv.Itoa(i+1)+ext)
			}
		}
		if err := os.Rename(w.path, w.path+".1"); err != nil {
			return err
		}
		if w.gz {
			if err := gzipFile(w.path + ".1"); err != nil {
				return fmt.Errorf("compress rotated log: %w", err)
			}
		}
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		w.f = nil
		return err
	}
	w.f, w.size = f, 0
	return nil
}

// gzipFile replaces path by path.gz: written aside and renamed, so that a
// reader sees one or the other, whole.
func gzipFile(path string) error {
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := path + ".gz.tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	zw, _ := gzip.NewWriterLevel(out, gzip.BestSpeed) // the container waits on it
	_, err = io.Copy(zw, in)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path+".gz")
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Remove(path)
}

// Close closes the log.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// EntryWriter stores log entries: a json-file Writer, the journal, or
// nothing (the "none" driver).
type EntryWriter interface {
	Write(stream string, line []byte, t time.Time) error
}

// Discard is the "none" driver: it stores nothing.
type Discard struct{}

func (Discard) Write(string, []byte, time.Time) error { return nil }

// LineWriter turns a byte stream into log entries: a line per newline,
// and long lines cut at 16 KiB as Docker does.
type LineWriter struct {
	W      EntryWriter
	Stream string
	buf    []byte
}

const maxLine = 16 << 10

func (lw *LineWriter) Write(p []byte) (int, error) {
	lw.buf = append(lw.buf, p...)
	for {
		i := indexByte(lw.buf, '\n')
		if i < 0 && len(lw.buf) < maxLine {
			return len(p), nil
		}
		end := i + 1
		if i < 0 {
			end = maxLine
		}
		if err := lw.W.Write(lw.Stream, lw.buf[:end], time.Now()); err != nil {
			return len(p), err
		}
		lw.buf = lw.buf[end:]
	}
}

// Flush writes a last, unterminated line.
func (lw *LineWriter) Flush() error {
	if len(lw.buf) == 0 {
		return nil
	}
	err := lw.W.Write(lw.Stream, lw.buf, time.Now())
	lw.buf = nil
	return err
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// ReadOptions select what Read returns.
type ReadOptions struct {
	Since, Until time.Time // zero: unbounded
	Tail         int       // the last N entries; -1 for all
	Follow       bool      // keep reading as the log grows, until ctx ends or the log closes
}

// Read sends the selected entries to fn, oldest first. With Follow it
// goes on with new entries, across rotations, until ctx is done or stop
// is closed (the container exited).
func Read(ctx context.Context, path string, maxFile int, opts ReadOptions, stop <-chan struct{}, fn func(Entry) error) error {
	var all []Entry
	for i := maxFile - 1; i >= 1; i-- {
		es, _, err := readFile(path+"."+strconv.Itoa(i), 0)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		all = append(all, es...)
	}
	es, off, err := readFile(path, 0)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	all = append(all, es...)
	var sel []Entry
	for _, e := range all {
		if (!opts.Since.IsZero() && e.Time.Before(opts.Since)) || (!opts.Until.IsZero() && e.Time.After(opts.Until)) {
			continue
		}
		sel = append(sel, e)
	}
	if opts.Tail >= 0 && len(sel) > opts.Tail {
		sel = sel[len(sel)-opts.Tail:]
	}
	for _, e := range sel {
		if err := fn(e); err != nil {
			return err
		}
	}
	if !opts.Follow {
		return nil
	}
	// Follow: poll the file from the offset read; a new inode at path
	// means it rotated, so start that one from the top. The file followed
	// is held open: its inode cannot be reused by the next file (which
	// would hide a rotation, as when the rotated file is compressed and
	// removed), and what was left in it is read from the open file.
	hold, _ := os.Open(path)
	defer func() {
		if hold != nil {
			hold.Close()
		}
	}()
	ino := inode(path)
	for {
		es, n, err := readFile(path, off)
		if err == nil {
			for _, e := range es {
				if !opts.Until.IsZero() && e.Time.After(opts.Until) {
					return nil
				}
				if err := fn(e); err != nil {
					return err
				}
			}
			off = n
		}
		select {
		case <-ctx.Done():
			return nil
		case <-stop:
			// One last look for lines written just before the exit.
			if es, _, err := readFile(path, off); err == nil {
				for _, e := range es {
					if err := fn(e); err != nil {
						return err
					}
				}
			}
			return nil
		case <-time.After(100 * time.Millisecond):
		}
		if cur := inode(path); cur != ino {
			// Rotated: read what was left in the old file.
			if hold != nil {
				if es, _, err := readEntries(hold, path, off); err == nil {
					for _, e := range es {
						if err := fn(e); err != nil {
							return err
						}
					}
				}
				hold.Close()
			}
			hold, _ = os.Open(path)
			ino, off = cur, 0
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

// readFile reads the whole entries from offset on and returns the offset
// after the last whole line.
// A rotated file may have been gzipped (FILE.N.gz); offset is then in the
// uncompressed content.
func readFile(path string, offset int64) ([]Entry, int64, error) {
	f, err := os.Open(path)
	if err == nil {
		defer f.Close()
		return readEntries(f, path, offset)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, offset, err
	}
	if f, err = os.Open(path + ".gz"); err != nil {
		return nil, offset, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, offset, fmt.Errorf("read %s.gz: %w", path, err)
	}
	if _, err := io.CopyN(io.Discard, zr, offset); err != nil {
		return nil, offset, err
	}
	return decodeEntries(zr, path, offset)
}

// readEntries reads the whole entries of an open log file from offset on.
func readEntries(f *os.File, path string, offset int64) ([]Entry, int64, error) {
	return decodeEntries(io.NewSectionReader(f, offset, 1<<62), path, offset)
}

func decodeEntries(src io.Reader, path string, offset int64) ([]Entry, int64, error) {
	r := bufio.NewReaderSize(src, 64<<10)
	var out []Entry
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			break // a partial last line is read next time
		}
		offset += int64(len(line))
		var e Entry
		if json.Unmarshal(line, &e) != nil {
			return out, offset, fmt.Errorf("corrupt log line in %s", path)
		}
		out = append(out, e)
	}
	return out, offset, nil
}
