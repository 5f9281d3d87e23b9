package layer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/randid"
	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	"github.com/vbatts/tar-split/tar/storage"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// Ingestion is a layer being written. It has no read side: Commit returns
// the readable Layer, Abort throws it away.
type Ingestion struct {
	s       *Store
	dir     string // tmp/<random>, renamed into place by Commit
	chainID digest.Digest
	parent  digest.Digest
	diffID  digest.Digest
	size    int64
	applied bool
	closed  bool
}

// commitMu serialises commits, so two pulls of the same layer cannot both
// rename into place.
var commitMu sync.Mutex

// crashHook, when set by a test, is called at each step of Commit.
var crashHook func(step string)

func hook(step string) {
	if crashHook != nil {
		crashHook(step)
	}
}

// ChainID is the identity of the layer diffID on top of the chain parent.
func ChainID(parent, diffID digest.Digest) digest.Digest {
	if parent == "" {
		return diffID
	}
	return identity.ChainID([]digest.Digest{parent, diffID})
}

// Ingest starts a layer with the given diffID on top of parent (a chain ID,
// "" for a base layer). With diffID "", the layer's digest is learnt from
// the stream and the caller must check it (DiffID) and place the layer
// (SetParent) before Commit: for archives, whose layers arrive before the
// config that lists them.
func (s *Store) Ingest(parent, diffID digest.Digest) (*Ingestion, error) {
	if diffID != "" {
		if err := diffID.Validate(); err != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("layer diffID %q: %w", diffID, err))
		}
	}
	dir := filepath.Join(s.tmpDir(), randid.Hex(8))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Mkdir(filepath.Join(dir, "diff"), 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	in := &Ingestion{s: s, dir: dir, parent: parent, diffID: diffID}
	if diffID != "" {
		in.chainID = ChainID(parent, diffID)
	}
	return in, nil
}

// DiffID is the layer's diffID: the one given to Ingest, or after Apply the
// one computed from the stream.
func (in *Ingestion) DiffID() digest.Digest { return in.diffID }

// SetParent places the layer on top of parent before Commit.
func (in *Ingestion) SetParent(parent digest.Digest) {
	in.parent = parent
	if in.diffID != "" {
		in.chainID = ChainID(parent, in.diffID)
	}
}

// ChainID is the chain ID the layer will have.
func (in *Ingestion) ChainID() digest.Digest { return in.chainID }

// DigestError is a blob or layer whose content does not match its digest.
type DigestError struct {
	What     string // "blob" or "layer"
	Expected digest.Digest
	Actual   digest.Digest
}

func (e *DigestError) Error() string {
	return fmt.Sprintf("%s digest mismatch: expected %s, got %s", e.What, e.Expected, e.Actual)
}

// Apply extracts the layer from r, a layer blob as a registry serves it
// (gzip, zstd or plain tar). blob and blobSize, when known ("" and -1 if
// not), are checked against the bytes read; the uncompressed stream is
// checked against the diffID. On any error the ingestion is aborted.
func (in *Ingestion) Apply(ctx context.Context, r io.Reader, blob digest.Digest, blobSize int64) (err error) {
	defer func() {
		if err != nil {
			in.Abort()
		}
	}()
	if in.applied || in.closed {
		return errors.New("layer ingestion already applied or closed")
	}
	cr := &countingReader{r: r}
	var blobDigester digest.Digester
	src := io.Reader(cr)
	if blob != "" {
		if err := blob.Validate(); err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("blob digest %q: %w", blob, err))
		}
		blobDigester = blob.Algorithm().Digester()
		src = io.TeeReader(cr, blobDigester.Hash())
	}
	dr, err := decompress(src)
	if err != nil {
		return err
	}
	defer dr.Close()
	algo := digest.Canonical
	if in.diffID != "" {
		algo = in.diffID.Algorithm()
	}
	diffDigester := algo.Digester()
	inf := startInflate(dr, src, diffDigester.Hash())
	defer inf.stop()

	tsFile, err := os.OpenFile(filepath.Join(in.dir, "tar-split.json.gz"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer tsFile.Close()
	gz := gzip.NewWriter(tsFile)

	p := newPacer(in.s.opts.PaceWindow)
	a, err := newApplier(filepath.Join(in.dir, "diff"), p)
	if err != nil {
		return err
	}
	defer a.close()
	err = withIOPriority(in.s.opts.IOPriority, func() error {
		defer p.flush()
		return extract(ctx, inf, a, storage.NewJSONPacker(gz))
	})
	if err != nil {
		return err
	}
	// The inflater has read the blob to its end.
	if err := inf.stop(); err != nil {
		return err
	}
	if blobSize >= 0 && cr.n != blobSize {
		return fmt.Errorf("layer blob %s: size %d, expected %d", blob, cr.n, blobSize)
	}
	if blobDigester != nil && blobDigester.Digest() != blob {
		return &DigestError{What: "blob", Expected: blob, Actual: blobDigester.Digest()}
	}
	if got := diffDigester.Digest(); in.diffID == "" {
		in.diffID = got
		in.chainID = ChainID(in.parent, got)
	} else if got != in.diffID {
		return &DigestError{What: "layer", Expected: in.diffID, Actual: got}
	}
	if err := a.finish(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	if err := tsFile.Close(); err != nil {
		return err
	}
	in.size = a.size
	in.applied = true
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Abort removes the ingestion. It is safe to call more than once, and after
// Commit (then it does nothing).
func (in *Ingestion) Abort() {
	if in.closed {
		return
	}
	in.closed = true
	os.RemoveAll(in.dir)
}

// Commit makes the applied layer durable and visible, and returns it. If the
// store already has the layer (another pull committed it first), the
// ingestion is dropped and the existing layer returned.
func (in *Ingestion) Commit() (Layer, error) {
	if !in.applied || in.closed {
		return Layer{}, errors.New("commit of a layer ingestion that was not applied")
	}
	s := in.s
	if err := withIOPriority(s.opts.IOPriority, func() error { return s.makeDurable(in.dir) }); err != nil {
		in.Abort()
		return Layer{}, fmt.Errorf("commit layer %s: %w", in.chainID, err)
	}
	hook("synced")

	commitMu.Lock()
	defer commitMu.Unlock()
	if l, err := s.Get(in.chainID); err == nil {
		in.Abort()
		return l, nil
	}
	dest := s.dirOf(in.chainID)
	if err := os.Rename(in.dir, dest); err != nil {
		in.Abort()
		return Layer{}, fmt.Errorf("commit layer %s: %w", in.chainID, err)
	}
	in.closed = true
	hook("renamed")
	if err := syncDir(s.layersDir()); err != nil {
		os.RemoveAll(dest)
		return Layer{}, fmt.Errorf("commit layer %s: %w", in.chainID, err)
	}
	hook("dir-synced")
	rec := record{DiffID: in.diffID, Parent: in.parent, Size: in.size, Created: time.Now().UTC()}
	v, _ := json.Marshal(rec)
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLayers).Put([]byte(in.chainID), v)
	})
	if err != nil {
		os.RemoveAll(dest)
		return Layer{}, fmt.Errorf("commit layer %s: record: %w", in.chainID, err)
	}
	hook("recorded")
	return s.decode(in.chainID, v)
}

// makeDurable flushes everything under dir to stable storage.
func (s *Store) makeDurable(dir string) error {
	if s.opts.Sync == SyncFS {
		d, err := os.Open(dir)
		if err != nil {
			return err
		}
		defer d.Close()
		if err := unix.Syncfs(int(d.Fd())); err != nil {
			return fmt.Errorf("syncfs: %w", err)
		}
		return nil
	}
	return filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.Type().IsRegular() && !e.IsDir() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := f.Sync(); err != nil {
			return fmt.Errorf("fsync %s: %w", p, err)
		}
		return nil
	})
}

// OpenFile opens a regular file of an applied ingestion for reading,
// without following symlinks: a delta layer's patch, read before the
// ingestion is thrown away.
func (in *Ingestion) OpenFile(name string) (*os.File, error) {
	if !in.applied || in.closed {
		return nil, errors.New("read from a layer ingestion that was not applied")
	}
	rel, err := cleanName(name)
	if err != nil {
		return nil, err
	}
	return openBeneath(filepath.Join(in.dir, "diff"), rel)
}
