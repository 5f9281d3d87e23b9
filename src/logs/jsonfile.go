// Package logs stores container output in Docker's json-file format: one
// JSON object per line ({"log","stream","time"}), rotated by size into
// FILE, FILE.1, ... FILE.N-1 so that logs cannot fill the disk, and reads it
// back for "docker logs" (tail, since/until, follow across rotation).
package logs

import (
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
		// Removed, not truncated: a reader holding the file (a follower,
		// an attach's snapshot) still reads what it held, and sees a new
		// inode at the name.
		if err := os.Remove(w.path); err != nil {
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

// Pending is the start of a line not yet written: output sent on to
// attachers that the log has not got yet.
func (lw *LineWriter) Pending() []byte { return lw.buf }

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
