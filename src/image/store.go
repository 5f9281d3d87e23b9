// Package image keeps images: their configs, tags and repo digests in the
// metadata database, their layers in the layer store. It pulls images
// (resolve, fetch the config, stream the missing layers into the layer
// store, then record the image and its tags in one transaction) and answers
// the image API's questions.
//
// An image is recorded only after every one of its layers is committed, so
// a crash during a pull leaves the image absent, never partial; on open,
// an image whose layers are not all present is dropped.
package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/layer"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketImages = []byte("images") // image ID -> record
	bucketTags   = []byte("tags")   // "name:tag" -> image ID
)

// record is what the database keeps of an image.
type record struct {
	Config      json.RawMessage `json:"config"` // the config blob, verbatim: its digest is the ID
	RepoDigests []string        `json:"repoDigests,omitempty"`
	Added       time.Time       `json:"added"`
	Parent      digest.Digest   `json:"parent,omitempty"` // the image committed from, as Docker's parent
}

// Image is a stored image.
type Image struct {
	ID          digest.Digest // the config's digest
	Config      dockerspec.DockerOCIImage
	RawConfig   []byte
	RepoTags    []string
	RepoDigests []string
	ChainIDs    []digest.Digest // layer chain, base first
	Added       time.Time
	Parent      digest.Digest // the image it was committed from, if any
}

// Store is the image store.
type Store struct {
	db     *bolt.DB
	layers *layer.Store
	log    *slog.Logger

	mu     sync.Mutex
	pinned map[digest.Digest]int // layers in use by pulls under way: not collected

	// Notify, when set, hears of image events (pull, tag, untag, delete,
	// load, save): the daemon's event log.
	Notify func(action events.Action, id string, attrs map[string]string)
	// InUse, when set, names a container using the image (ID), or "".
	InUse func(imageID string) string
}

func (s *Store) notify(action events.Action, id, name string) {
	if s.Notify == nil {
		return
	}
	attrs := map[string]string{}
	if name != "" {
		attrs["name"] = name
	}
	s.Notify(action, id, attrs)
}

func (s *Store) pin(ids []digest.Digest) {
	s.mu.Lock()
	for _, id := range ids {
		s.pinned[id]++
	}
	s.mu.Unlock()
}

func (s *Store) unpin(ids []digest.Digest) {
	s.mu.Lock()
	for _, id := range ids {
		if s.pinned[id]--; s.pinned[id] <= 0 {
			delete(s.pinned, id)
		}
	}
	s.mu.Unlock()
}

// Open opens the store, dropping images whose layers are not all present
// (the layer store's recovery may have removed a layer a crash left
// unrecorded, which no committed image can reference; this is the guard).
func Open(db *bolt.DB, layers *layer.Store, log *slog.Logger) (*Store, error) {
	s := &Store{db: db, layers: layers, log: log, pinned: map[digest.Digest]int{}}
	// Listed before the update: a read transaction inside a write one can
	// deadlock bbolt when the write grows the file.
	have := map[digest.Digest]bool{}
	all, err := layers.List()
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	for _, l := range all {
		have[l.ChainID] = true
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketImages, bucketTags} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		var broken []digest.Digest
		tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
			img, err := decode(digest.Digest(k), v)
			if err != nil {
				broken = append(broken, digest.Digest(k))
				return nil
			}
			for _, c := range img.ChainIDs {
				if !have[c] {
					broken = append(broken, img.ID)
					break
				}
			}
			return nil
		})
		for _, id := range broken {
			log.Warn("dropping image with missing layers", "id", id)
			if err := deleteImage(tx, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	// Layers of pulls a crash interrupted belong to no image.
	if _, err := s.collectLayers(); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	return s, nil
}

func decode(id digest.Digest, v []byte) (Image, error) {
	var r record
	if err := json.Unmarshal(v, &r); err != nil {
		return Image{}, fmt.Errorf("image %s: corrupt record: %w", id, err)
	}
	img := Image{ID: id, RawConfig: r.Config, RepoDigests: r.RepoDigests, Added: r.Added, Parent: r.Parent}
	if err := json.Unmarshal(r.Config, &img.Config); err != nil {
		return Image{}, fmt.Errorf("image %s: config: %w", id, err)
	}
	img.ChainIDs = chainIDs(img.Config.RootFS.DiffIDs)
	return img, nil
}

func chainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	var parent digest.Digest
	for i, d := range diffIDs {
		parent = layer.ChainID(parent, d)
		out[i] = parent
	}
	return out
}

// deleteImage removes an image and every tag pointing at it.
func deleteImage(tx *bolt.Tx, id digest.Digest) error {
	tags := tx.Bucket(bucketTags)
	var refs [][]byte
	tags.ForEach(func(k, v []byte) error {
		if string(v) == id.String() {
			refs = append(refs, append([]byte{}, k...))
		}
		return nil
	})
	for _, k := range refs {
		if err := tags.Delete(k); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketImages).Delete([]byte(id))
}

// tagsOf lists the tags of each image.
func tagsOf(tx *bolt.Tx) map[digest.Digest][]string {
	out := map[digest.Digest][]string{}
	tx.Bucket(bucketTags).ForEach(func(k, v []byte) error {
		id := digest.Digest(v)
		out[id] = append(out[id], familiar(string(k)))
		return nil
	})
	for _, t := range out {
		sort.Strings(t)
	}
	return out
}

// familiar shortens a normalized reference as Docker shows it
// ("docker.io/library/busybox:latest" -> "busybox:latest").
func familiar(ref string) string {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return reference.FamiliarString(n)
}

// List returns every image, newest first.
func (s *Store) List() ([]Image, error) {
	var out []Image
	err := s.db.View(func(tx *bolt.Tx) error {
		tags := tagsOf(tx)
		return tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
			img, err := decode(digest.Digest(k), v)
			if err != nil {
				return err
			}
			img.RepoTags = tags[img.ID]
			out = append(out, img)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Added.After(out[j].Added) })
	return out, err
}

// ErrNoSuchImage is the not-found error in Docker's words.
func noSuchImage(ref string) error {
	//lint:ignore ST1005 Docker's wording, which clients show and match.
	return errdefs.NotFound(fmt.Errorf("No such image: %s", ref))
}

// Get finds an image by reference (name[:tag], name@digest) or by ID or
// unique ID prefix, as Docker does: a tag wins over an ID prefix.
func (s *Store) Get(refOrID string) (Image, error) {
	var img Image
	err := s.db.View(func(tx *bolt.Tx) error {
		id, err := resolve(tx, refOrID)
		if err != nil {
			return err
		}
		v := tx.Bucket(bucketImages).Get([]byte(id))
		if v == nil {
			return noSuchImage(refOrID)
		}
		if img, err = decode(id, v); err != nil {
			return err
		}
		img.RepoTags = tagsOf(tx)[id]
		return nil
	})
	return img, err
}

func resolve(tx *bolt.Tx, refOrID string) (digest.Digest, error) {
	images := tx.Bucket(bucketImages)
	if d, err := digest.Parse(refOrID); err == nil {
		if images.Get([]byte(d)) != nil {
			return d, nil
		}
		return "", noSuchImage(refOrID)
	}
	if n, err := reference.ParseNormalizedNamed(refOrID); err == nil {
		if dg, ok := n.(reference.Digested); ok {
			var found digest.Digest
			images.ForEach(func(k, v []byte) error {
				var r record
				if json.Unmarshal(v, &r) == nil {
					for _, rd := range r.RepoDigests {
						if rd == reference.TrimNamed(n).String()+"@"+dg.Digest().String() {
							found = digest.Digest(k)
						}
					}
				}
				return nil
			})
			if found != "" {
				return found, nil
			}
			return "", noSuchImage(refOrID)
		}
		if v := tx.Bucket(bucketTags).Get([]byte(reference.TagNameOnly(n).String())); v != nil {
			return digest.Digest(v), nil
		}
	}
	// An ID prefix, with or without "sha256:".
	prefix := strings.TrimPrefix(refOrID, "sha256:")
	if len(prefix) < 1 || strings.Trim(prefix, "0123456789abcdef") != "" {
		return "", noSuchImage(refOrID)
	}
	var match digest.Digest
	n := 0
	c := images.Cursor()
	for k, _ := c.Seek([]byte("sha256:" + prefix)); k != nil && strings.HasPrefix(string(k), "sha256:"+prefix); k, _ = c.Next() {
		match = digest.Digest(k)
		n++
	}
	switch n {
	case 0:
		return "", noSuchImage(refOrID)
	case 1:
		return match, nil
	}
	return "", errdefs.InvalidParameter(fmt.Errorf("ambiguous image ID prefix %q: it matches %d images", refOrID, n))
}

// Descendants is the image refOrID names and those made from it (by
// commit, their parents recorded), and theirs, by ID: Docker's "ancestor"
// container filter.
func (s *Store) Descendants(refOrID string) (map[digest.Digest]bool, error) {
	out := map[digest.Digest]bool{}
	err := s.db.View(func(tx *bolt.Tx) error {
		id, err := resolve(tx, refOrID)
		if err != nil {
			return err
		}
		children := map[digest.Digest][]digest.Digest{}
		tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
			var r record
			if json.Unmarshal(v, &r) == nil && r.Parent != "" {
				children[r.Parent] = append(children[r.Parent], digest.Digest(k))
			}
			return nil
		})
		for todo := []digest.Digest{id}; len(todo) > 0; todo = todo[1:] {
			if !out[todo[0]] {
				out[todo[0]] = true
				todo = append(todo, children[todo[0]]...)
			}
		}
		return nil
	})
	return out, err
}

// ParseTag normalizes a reference to tag with: a name with a tag, no digest.
func ParseTag(ref string) (reference.NamedTagged, error) {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid reference format: %w", err))
	}
	if _, ok := n.(reference.Digested); ok {
		return nil, errdefs.InvalidParameter(errors.New("refusing to create a tag with a digest reference"))
	}
	// "sha256:<64 hex>" would be a tag no lookup finds: it reads as an
	// image ID first. Docker refuses the name altogether.
	if reference.FamiliarName(n) == string(digest.Canonical) {
		return nil, errdefs.InvalidParameter(errors.New("refusing to create an ambiguous tag using digest algorithm as name"))
	}
	nt, ok := reference.TagNameOnly(n).(reference.NamedTagged)
	if !ok {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid reference format: %s", ref))
	}
	return nt, nil
}

// Tag points ref at the image refOrID names.
func (s *Store) Tag(refOrID, ref string) error {
	nt, err := ParseTag(ref)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		id, err := resolve(tx, refOrID)
		if errdefs.KindOf(err) == errdefs.KindNotFound {
			// Docker names the tag it looked for: "nothing:latest".
			if n, perr := reference.ParseNormalizedNamed(refOrID); perr == nil && reference.IsNameOnly(n) {
				return noSuchImage(reference.FamiliarString(reference.TagNameOnly(n)))
			}
		}
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketTags).Put([]byte(nt.String()), []byte(id)); err != nil {
			return err
		}
		s.notify(events.ActionTag, id.String(), reference.FamiliarString(nt))
		return nil
	})
}

// Layer returns one of the store's layers.
func (s *Store) Layer(chainID digest.Digest) (layer.Layer, error) { return s.layers.Get(chainID) }
