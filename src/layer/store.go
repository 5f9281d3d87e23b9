package layer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

var bucketLayers = []byte("layers")

// SyncMode says how Commit makes a layer's files durable.
type SyncMode int

const (
	// SyncFS flushes the whole filesystem once (syncfs(2)): one journal
	// commit however many files the layer has. The default.
	SyncFS SyncMode = iota
	// SyncFiles fsyncs every file and directory of the layer: less data
	// flushed when other writers share the filesystem, but one journal
	// commit per file.
	SyncFiles
)

// Options tune the store.
type Options struct {
	Sync SyncMode
	// PaceWindow bounds the written-but-not-dropped bytes per extraction
	// (default 4 MiB).
	PaceWindow int64
	// IOPriority is the I/O priority extraction writes with, so that the
	// running application keeps its share of a slow SD card.
	IOPriority IOPriority
}

// Layer is a committed layer. Its directory is read-only from now on: an
// overlayfs lower layer.
type Layer struct {
	ChainID digest.Digest // identity: the layer with all its parents
	DiffID  digest.Digest // digest of the uncompressed tar
	Parent  digest.Digest // chain ID of the layer below; "" for a base layer
	Size    int64         // bytes of file content
	Created time.Time
	dir     string
}

// Dir is the directory holding the layer's files.
func (l Layer) Dir() string { return filepath.Join(l.dir, "diff") }

func (l Layer) tarSplitPath() string { return filepath.Join(l.dir, "tar-split.json.gz") }

type record struct {
	DiffID  digest.Digest `json:"diffID"`
	Parent  digest.Digest `json:"parent,omitempty"`
	Size    int64         `json:"size"`
	Created time.Time     `json:"created"`
}

// Store keeps layers under root: root/tmp holds ingestions, root/sha256/HEX
// the committed layers, each a diff/ directory and its tar-split file.
type Store struct {
	root string
	db   *bolt.DB
	opts Options
}

// Open opens the store and recovers it: whatever a crash left behind
// (ingestions, directories the database does not record) is removed, and a
// record whose directory is gone is dropped.
func Open(root string, db *bolt.DB, opts Options) (*Store, error) {
	if opts.PaceWindow == 0 {
		opts.PaceWindow = 4 << 20
	}
	s := &Store{root: root, db: db, opts: opts}
	for _, d := range []string{s.tmpDir(), s.layersDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("layer store: %w", err)
		}
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketLayers)
		return err
	}); err != nil {
		return nil, fmt.Errorf("layer store: %w", err)
	}
	if err := s.recover(); err != nil {
		return nil, fmt.Errorf("layer store recovery: %w", err)
	}
	return s, nil
}

func (s *Store) tmpDir() string    { return filepath.Join(s.root, "tmp") }
func (s *Store) layersDir() string { return filepath.Join(s.root, "sha256") }

func (s *Store) dirOf(chainID digest.Digest) string {
	return filepath.Join(s.layersDir(), chainID.Encoded())
}

func (s *Store) recover() error {
	tmp, err := os.ReadDir(s.tmpDir())
	if err != nil {
		return err
	}
	for _, e := range tmp {
		if err := os.RemoveAll(filepath.Join(s.tmpDir(), e.Name())); err != nil {
			return err
		}
	}
	known := map[string]bool{}
	var gone []string
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLayers)
		err := b.ForEach(func(k, _ []byte) error {
			id := digest.Digest(k)
			if _, err := os.Stat(s.dirOf(id)); err != nil {
				gone = append(gone, string(k))
				return nil
			}
			known[id.Encoded()] = true
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range gone {
			if err := b.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	dirs, err := os.ReadDir(s.layersDir())
	if err != nil {
		return err
	}
	for _, e := range dirs {
		if !known[e.Name()] {
			if err := os.RemoveAll(filepath.Join(s.layersDir(), e.Name())); err != nil {
				return err
			}
		}
	}
	return syncDir(s.layersDir())
}

// Get returns a committed layer.
func (s *Store) Get(chainID digest.Digest) (Layer, error) {
	var l Layer
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketLayers).Get([]byte(chainID))
		if v == nil {
			return errdefs.NotFound(fmt.Errorf("layer %s: not found", chainID))
		}
		var err error
		l, err = s.decode(chainID, v)
		return err
	})
	return l, err
}

// List returns every committed layer, sorted by chain ID.
func (s *Store) List() ([]Layer, error) {
	var out []Layer
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLayers).ForEach(func(k, v []byte) error {
			l, err := s.decode(digest.Digest(k), v)
			out = append(out, l)
			return err
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ChainID < out[j].ChainID })
	return out, err
}

func (s *Store) decode(chainID digest.Digest, v []byte) (Layer, error) {
	var r record
	if err := json.Unmarshal(v, &r); err != nil {
		return Layer{}, fmt.Errorf("layer %s: corrupt record: %w", chainID, err)
	}
	return Layer{ChainID: chainID, DiffID: r.DiffID, Parent: r.Parent, Size: r.Size,
		Created: r.Created, dir: s.dirOf(chainID)}, nil
}

// Remove deletes a layer: first its record (it stops being visible), then
// its files. The caller knows no image uses it.
func (s *Store) Remove(chainID digest.Digest) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLayers)
		if b.Get([]byte(chainID)) == nil {
			return errdefs.NotFound(fmt.Errorf("layer %s: not found", chainID))
		}
		return b.Delete([]byte(chainID))
	})
	if err != nil {
		return err
	}
	// A crash from here on leaves an unrecorded directory, which Open removes.
	return os.RemoveAll(s.dirOf(chainID))
}

// TarStream rebuilds the layer's original tar stream, byte for byte, from
// its files and tar-split metadata: its digest is the layer's diffID.
func (l Layer) TarStream() (io.ReadCloser, error) {
	return tarStream(l)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// TempFile is a scratch file in the store's filesystem (not /tmp, which is
// memory on many devices), already unlinked: it goes when closed, or with
// a crash.
func (s *Store) TempFile() (*os.File, error) {
	f, err := os.CreateTemp(s.tmpDir(), "scratch-")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	return f, nil
}

// Free is the bytes the store's filesystem has free for it.
func (s *Store) Free() (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(s.root, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
