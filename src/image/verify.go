package image

import (
	"fmt"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// CheckedImage is one image as Check found it.
type CheckedImage struct {
	ID     digest.Digest
	Tags   []string
	Layers int
	Bytes  int64 // file content of its layers
}

// CheckReport is what Check found: the images that are whole, and every
// problem (an empty Problems is the invariant holding).
type CheckReport struct {
	Images   []CheckedImage
	Problems []string
}

// Check verifies the stores against the crash-safety invariant, after
// Open's recovery: every image is whole (each of its layers is recorded,
// sits on its parent as the config's diffIDs say, and rebuilds from disk to
// its diffID, see layer.Layer.Verify), every tag names an image, and
// nothing else is left (no ingestion, no unrecorded layer directory, no
// layer that no image uses). It reads every layer's files, so it takes the
// time of reading the images once. A problem is reported, not repaired.
func (s *Store) Check() (CheckReport, error) {
	var rep CheckReport
	problem := func(format string, args ...any) { rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...)) }
	imgs, err := s.List()
	if err != nil {
		return rep, fmt.Errorf("check images: %w", err)
	}
	verified := map[digest.Digest]error{}
	for _, img := range imgs {
		ci := CheckedImage{ID: img.ID, Tags: img.RepoTags, Layers: len(img.ChainIDs)}
		whole := true
		var parent digest.Digest
		for i, c := range img.ChainIDs {
			l, err := s.layers.Get(c)
			if err != nil {
				problem("image %s: layer %d: %v", img.ID, i, err)
				whole = false
				break
			}
			if l.DiffID != img.Config.RootFS.DiffIDs[i] || l.Parent != parent {
				problem("image %s: layer %d (%s): diffID %s on parent %q, the config says %s on %q",
					img.ID, i, c, l.DiffID, l.Parent, img.Config.RootFS.DiffIDs[i], parent)
				whole = false
			}
			parent = c
			verr, done := verified[c]
			if !done {
				verr = l.Verify()
				verified[c] = verr
			}
			if verr != nil {
				problem("image %s: %v", img.ID, verr)
				whole = false
			}
			ci.Bytes += l.Size
		}
		if whole {
			rep.Images = append(rep.Images, ci)
		}
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		images := tx.Bucket(bucketImages)
		return tx.Bucket(bucketTags).ForEach(func(k, v []byte) error {
			if images.Get(v) == nil {
				problem("tag %s names image %s, which is not recorded", k, v)
			}
			return nil
		})
	})
	if err != nil {
		return rep, fmt.Errorf("check tags: %w", err)
	}
	all, err := s.layers.List()
	if err != nil {
		return rep, fmt.Errorf("check layers: %w", err)
	}
	for _, l := range all {
		if _, used := verified[l.ChainID]; !used {
			problem("layer %s: no image uses it", l.ChainID)
		}
	}
	left, err := s.layers.Leftovers()
	if err != nil {
		return rep, fmt.Errorf("check layers: %w", err)
	}
	rep.Problems = append(rep.Problems, left...)
	return rep, nil
}
