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
	f       *os.File
	size    int64
}

// NewWriter opens (appending to) the log at path.
func NewWriter(path string, maxSize int64, maxFile int) (*Writer, error) {
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
	return &Writer{path: path, maxSize: maxSize, maxFile: maxFile, f: f, size: fi.Size()}, nil
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
		os.Remove(w.path + "." + strconv.Itoa(w.maxFile-1))
		for i := w.maxFile - 2; i >= 1; i-- {
			os.Rename(w.path+"."+strconv.Itoa(i), w.path+"."+strconv.Itoa(i+1))
		}
		if err := os.Rename(w.path, w.path+".1"); err != nil {
			return err
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

// LineWriter turns a byte stream into log entries: a line per newline,
// and long lines cut at 16 KiB as Docker does.
type LineWriter struct {
	W      *Writer
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
	// Follow: poll the file from the offset read; a file shorter than the
	// offset (or a new inode) means it rotated, so start it from the top.
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
			// Rotated: what was left in the old file is now FILE.1.
			if es, _, err := readFile(path+".1", off); err == nil {
				for _, e := range es {
					if err := fn(e); err != nil {
						return err
					}
				}
			}
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
func readFile(path string, offset int64) ([]Entry, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, offset, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, offset, err
	}
	r := bufio.NewReaderSize(f, 64<<10)
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
