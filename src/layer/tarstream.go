package layer

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/vbatts/tar-split/tar/asm"
	"github.com/vbatts/tar-split/tar/storage"
	"golang.org/x/sys/unix"
)

func tarStream(l Layer) (io.ReadCloser, error) {
	f, err := os.Open(l.tarSplitPath())
	if err != nil {
		return nil, fmt.Errorf("layer %s: tar-split metadata: %w", l.ChainID, err)
	}
	gz, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("layer %s: tar-split metadata: %w", l.ChainID, err)
	}
	rc := asm.NewOutputTarStream(beneathGetter{root: l.Dir()}, storage.NewJSONUnpacker(gz))
	return &multiCloser{ReadCloser: rc, also: []io.Closer{gz, f}}, nil
}

type multiCloser struct {
	io.ReadCloser
	also []io.Closer
}

func (m *multiCloser) Close() error {
	err := m.ReadCloser.Close()
	for _, c := range m.also {
		c.Close()
	}
	return err
}

// beneathGetter opens layer files for tar-split without following any
// symlink: a layer whose tar replaced a file's parent with a symlink
// (legal in a tar) must not make the rebuilt stream read host files.
type beneathGetter struct{ root string }

func (g beneathGetter) Get(name string) (io.ReadCloser, error) {
	rel, err := cleanName(name)
	if err != nil {
		return nil, err
	}
	return openBeneath(g.root, rel)
}

// openBeneath opens root/rel for reading, refusing symlinks at every step.
func openBeneath(root, rel string) (*os.File, error) {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	parts := strings.Split(rel, "/")
	for i, p := range parts {
		flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if i < len(parts)-1 {
			flags |= unix.O_DIRECTORY
		} else {
			flags |= unix.O_NONBLOCK // a FIFO must not hang the open
		}
		next, err := unix.Openat(fd, p, flags, 0)
		unix.Close(fd)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: rel, Err: err}
		}
		fd = next
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("layer file %s is not a regular file", rel)
	}
	return os.NewFile(uintptr(fd), rel), nil
}

// TarSize is the length of the layer's tar stream, from its tar-split
// metadata, without rebuilding it.
func (l Layer) TarSize() (int64, error) {
	var n int64
	err := l.Walk(func(e Entry) error {
		n += int64(len(e.Segment)) + e.Size
		return nil
	})
	return n, err
}

// Entry is one record of a layer's tar stream, in order: either raw tar
// bytes (headers, padding: Segment) or a file's content, named, with its
// size and the CRC-64 (ISO) tar-split recorded of it.
type Entry struct {
	Segment []byte
	Name    string
	Size    int64
	CRC     []byte
}

// Walk calls fn with every record of the layer's tar stream, in order,
// from its tar-split metadata (the files' contents are not read: OpenFile
// reads one).
func (l Layer) Walk(fn func(Entry) error) error {
	f, err := os.Open(l.tarSplitPath())
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("layer %s: tar-split metadata: %w", l.ChainID, err)
	}
	defer gz.Close()
	up := storage.NewJSONUnpacker(gz)
	for {
		e, err := up.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("layer %s: tar-split metadata: %w", l.ChainID, err)
		}
		var out Entry
		switch e.Type {
		case storage.SegmentType:
			if len(e.Payload) == 0 {
				continue // a Segment is never empty: callers tell records apart by it
			}
			out.Segment = e.Payload
		case storage.FileType:
			if out.Name, err = cleanName(e.GetName()); err != nil {
				return err
			}
			out.Size, out.CRC = max(e.Size, 0), e.Payload
		default:
			continue
		}
		if err := fn(out); err != nil {
			return err
		}
	}
}

// OpenFile opens a regular file of the layer for reading, without
// following symlinks.
func (l Layer) OpenFile(name string) (*os.File, error) {
	rel, err := cleanName(name)
	if err != nil {
		return nil, err
	}
	return openBeneath(l.Dir(), rel)
}
