// Package volume keeps named volumes for the local driver: a directory
// per volume under <data-root>/volumes/<name>/_data, recorded in the
// metadata database. Anonymous volumes (an image's VOLUME, or "-v /path")
// are named volumes with a random name, marked so that "rm -v" removes
// them with their container.
package volume

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/randid"
	bolt "go.etcd.io/bbolt"
)

var bucketVolumes = []byte("volumes")

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// Volume is one volume.
type Volume struct {
	Name       string
	Mountpoint string
	CreatedAt  time.Time
	Labels     map[string]string
	Anonymous  bool
}

// Store keeps volumes.
type Store struct {
	root string
	db   *bolt.DB
	// Notify, if set, hears of each volume created and destroyed
	// (Docker's "create" and "destroy" volume events).
	Notify func(action, name string, attrs map[string]string)
}

func (s *Store) notify(action, name string) {
	if s.Notify != nil {
		s.Notify(action, name, map[string]string{"driver": "local"})
	}
}

// Open opens the store; volume directories the database does not record
// (a create a crash cut short) are removed.
func Open(root string, db *bolt.DB) (*Store, error) {
	s := &Store{root: root, db: db}
	if err := mkdirPrivate(root); err != nil {
		return nil, err
	}
	known := map[string]bool{}
	err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketVolumes)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, _ []byte) error {
			known[string(k)] = true
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if !known[e.Name()] {
			os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
	return s, nil
}

// rootMode lets root in, and its group through (CVE-2021-41091: with o+x
// any local user could reach a volume's files, set-uid programs included).
const rootMode = 0o710

// mkdirPrivate creates root at rootMode, or sets an existing one that an
// older engine left wider to rootMode, as dockerd does at start. A mode
// narrower still is the administrator's and is kept.
func mkdirPrivate(root string) error {
	if err := os.MkdirAll(root, rootMode); err != nil {
		return fmt.Errorf("create volumes directory: %w", err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("create volumes directory: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&^rootMode != 0 {
		if err := os.Chmod(root, rootMode); err != nil {
			return fmt.Errorf("restrict volumes directory: %w", err)
		}
	}
	return nil
}

func noSuchVolume(name string) error {
	return errdefs.NotFound(fmt.Errorf("get %s: no such volume", name))
}

// Create makes a volume, or returns the existing one of that name (Docker's
// create is idempotent). An empty name makes an anonymous volume.
func (s *Store) Create(name string, labels, opts map[string]string) (Volume, error) {
	if len(opts) > 0 {
		return Volume{}, errdefs.NotImplemented(errors.New("local volume options (type, device, o) are not implemented yet"))
	}
	anon := name == ""
	if anon {
		name = randid.Hex(32)
	} else if !validName.MatchString(name) {
		return Volume{}, errdefs.InvalidParameter(fmt.Errorf("volume name %q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed", name))
	}
	if v, err := s.Get(name); err == nil {
		return v, nil
	}
	v := Volume{Name: name, Mountpoint: filepath.Join(s.root, name, "_data"), CreatedAt: time.Now().UTC(), Labels: labels, Anonymous: anon}
	if err := os.MkdirAll(v.Mountpoint, 0o755); err != nil {
		return Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	b, _ := json.Marshal(v)
	err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketVolumes).Put([]byte(name), b) })
	if err != nil {
		os.RemoveAll(filepath.Join(s.root, name))
		return Volume{}, err
	}
	s.notify("create", name)
	return v, nil
}

// Get returns a volume.
func (s *Store) Get(name string) (Volume, error) {
	var v Volume
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketVolumes).Get([]byte(name))
		if b == nil {
			return noSuchVolume(name)
		}
		return json.Unmarshal(b, &v)
	})
	return v, err
}

// List returns every volume, by name.
func (s *Store) List() ([]Volume, error) {
	var out []Volume
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketVolumes).ForEach(func(_, b []byte) error {
			var v Volume
			if err := json.Unmarshal(b, &v); err != nil {
				return err
			}
			out = append(out, v)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// Remove deletes a volume that no container uses (users lists those that do).
func (s *Store) Remove(name string, users []string) error {
	if _, err := s.Get(name); err != nil {
		return err
	}
	if len(users) > 0 {
		return errdefs.Conflict(fmt.Errorf("remove %s: volume is in use - %v", name, users))
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketVolumes).Delete([]byte(name)) }); err != nil {
		return err
	}
	s.notify("destroy", name)
	return os.RemoveAll(filepath.Join(s.root, name))
}
