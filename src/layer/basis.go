package layer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"

	"github.com/opencontainers/go-digest"
)

// Basis is the concatenation of layers' tar streams, byte for byte as
// TarStream rebuilds them, readable at any offset without being written
// out: what balenaEngine's deltas are computed against. The tar headers
// and padding are kept in an unlinked spill file (a few hundred bytes per
// entry: small, but too many for memory on a device with a large image),
// the file contents are read from the layers' directories.
type Basis struct {
	spill *os.File
	parts []basisPart
	size  int64

	files []BasisFile

	mu    sync.Mutex
	open  map[int]*openFile // open layer files by part, a few at most
	order []int             // open files, oldest first
}

// BasisFile is one file entry of the basis's tars, in order: where its
// content starts in the basis (just after its header), its size and the
// CRC-64 (ISO) of its content as tar-split recorded it.
type BasisFile struct {
	Name string
	Off  int64
	Size int64
	CRC  []byte
}

// openFile is a layer file kept open, closed once evicted and unused.
type openFile struct {
	f       *os.File
	refs    int
	evicted bool
}

// basisPart is a run of the basis: tar metadata in the spill file, or the
// content of one layer file.
type basisPart struct {
	off  int64 // where the run starts in the basis
	n    int64
	seg  int64 // offset in the spill file; -1 for a file
	root string
	name string
}

// maxBasisFiles bounds the layer files a Basis keeps open.
const maxBasisFiles = 8

// OpenBasis opens the basis of the layers with the given chain IDs, in
// order. The layers must stay in place while it is open: the caller pins
// them.
func (s *Store) OpenBasis(chain []digest.Digest) (*Basis, error) {
	f, err := s.TempFile()
	if err != nil {
		return nil, fmt.Errorf("delta basis: %w", err)
	}
	b := &Basis{spill: f, open: map[int]*openFile{}}
	for _, id := range chain {
		l, err := s.Get(id)
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("delta basis: %w", err)
		}
		if err := b.add(l); err != nil {
			b.Close()
			return nil, fmt.Errorf("delta basis: layer %s: %w", id, err)
		}
	}
	return b, nil
}

func (b *Basis) add(l Layer) error {
	spillEnd, err := b.spill.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	return l.Walk(func(e Entry) error {
		if e.Segment != nil {
			if _, err := b.spill.Write(e.Segment); err != nil {
				return err
			}
			n := int64(len(e.Segment))
			// Runs of metadata next to each other become one part.
			if k := len(b.parts) - 1; k >= 0 && b.parts[k].seg >= 0 && b.parts[k].seg+b.parts[k].n == spillEnd {
				b.parts[k].n += n
			} else {
				b.parts = append(b.parts, basisPart{off: b.size, n: n, seg: spillEnd})
			}
			spillEnd += n
			b.size += n
			return nil
		}
		b.files = append(b.files, BasisFile{Name: e.Name, Off: b.size, Size: e.Size, CRC: e.CRC})
		if e.Size > 0 {
			b.parts = append(b.parts, basisPart{off: b.size, n: e.Size, seg: -1, root: l.Dir(), name: e.Name})
			b.size += e.Size
		}
		return nil
	})
}

// Files lists the file entries of the basis's tars, in order.
func (b *Basis) Files() []BasisFile { return b.files }

// Size is the basis's length in bytes.
func (b *Basis) Size() int64 { return b.size }

// ReadAt reads the basis at off, as io.ReaderAt; safe for concurrent use.
func (b *Basis) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("delta basis: negative offset")
	}
	read := 0
	i := sort.Search(len(b.parts), func(i int) bool { return b.parts[i].off+b.parts[i].n > off })
	for read < len(p) && i < len(b.parts) {
		part := b.parts[i]
		in := off - part.off
		want := min(int64(len(p)-read), part.n-in)
		var n int
		var err error
		if part.seg >= 0 {
			n, err = b.spill.ReadAt(p[read:read+int(want)], part.seg+in)
		} else {
			var of *openFile
			if of, err = b.acquire(i); err == nil {
				n, err = of.f.ReadAt(p[read:read+int(want)], in)
				b.release(of)
			}
		}
		read += n
		off += int64(n)
		if int64(n) < want {
			if err == nil || err == io.EOF {
				err = fmt.Errorf("delta basis: %s is shorter than its layer's record", part.name)
			}
			return read, err
		}
		i++
	}
	if read < len(p) {
		return read, io.EOF
	}
	return read, nil
}

// acquire returns the open layer file of part i, opening it (without
// following symlinks) if it is not among the few kept open.
func (b *Basis) acquire(i int) (*openFile, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if of, ok := b.open[i]; ok {
		of.refs++
		return of, nil
	}
	if b.open == nil {
		return nil, errors.New("delta basis: closed")
	}
	f, err := openBeneath(b.parts[i].root, b.parts[i].name)
	if err != nil {
		return nil, fmt.Errorf("delta basis: %w", err)
	}
	if len(b.order) >= maxBasisFiles {
		old := b.open[b.order[0]]
		delete(b.open, b.order[0])
		b.order = b.order[1:]
		old.evicted = true
		if old.refs == 0 {
			old.f.Close()
		}
	}
	of := &openFile{f: f, refs: 1}
	b.open[i] = of
	b.order = append(b.order, i)
	return of, nil
}

func (b *Basis) release(of *openFile) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if of.refs--; of.refs == 0 && of.evicted {
		of.f.Close()
	}
}

// Close releases the basis.
func (b *Basis) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, of := range b.open {
		of.evicted = true
		if of.refs == 0 {
			of.f.Close()
		}
	}
	b.open = nil
	return b.spill.Close()
}
