package image

import (
	"encoding/json"
	"fmt"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// DeleteResult is one line of an image deletion, as Docker reports it.
type DeleteResult struct {
	Untagged string
	Deleted  string
}

// Delete removes a reference, and the image when nothing else names it,
// with Docker's rules. By name: that tag goes, and with it the digest
// references of the same repository when no other tag of it remains; the
// image goes when no name is left. By ID: the image goes with all its
// names when they are of one repository and at most one tag, otherwise only
// with force; an image others were committed from is never deleted by ID,
// and by name loses only the name. With prune (Docker's default, unless
// noprune), the image's parents go after it while each is nameless, has
// no other child and no container: Docker's pruning of untagged parents.
// Layers no other image uses are removed after the images' records are
// gone.
func (s *Store) Delete(refOrID string, force, prune bool) ([]DeleteResult, error) {
	var out []DeleteResult
	removedImage := false
	var imgID digest.Digest
	// Which container uses the image (or a parent) is asked outside the
	// write transaction: the container store reads the same database.
	user := ""
	used := map[digest.Digest]bool{}
	if s.InUse != nil {
		var chain []digest.Digest
		s.db.View(func(tx *bolt.Tx) error {
			id, _ := resolve(tx, refOrID)
			for ; id != "" && len(chain) < 1000; id = parentOf(tx, id) {
				chain = append(chain, id)
			}
			return nil
		})
		for i, id := range chain {
			if u := s.InUse(id.String()); i == 0 {
				user = u
			} else if u != "" {
				used[id] = true
				break // pruning stops there
			}
		}
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		id, err := resolve(tx, refOrID)
		if err != nil {
			return err
		}
		imgID = id
		v := tx.Bucket(bucketImages).Get([]byte(id))
		var r record
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		refs := namesOf(tx, id, r)
		untag := func(n reference.Named) error {
			if _, ok := n.(reference.Canonical); ok {
				var rest []string
				for _, rd := range r.RepoDigests {
					if rd != n.String() {
						rest = append(rest, rd)
					}
				}
				r.RepoDigests = rest
			} else if err := tx.Bucket(bucketTags).Delete([]byte(n.String())); err != nil {
				return err
			}
			out = append(out, DeleteResult{Untagged: reference.FamiliarString(n)})
			return nil
		}
		var remaining []reference.Named
		var byRef reference.Named
		if !isIDPrefix(tx, refOrID, id) {
			n, _ := reference.ParseNormalizedNamed(refOrID)
			if _, ok := n.(reference.Canonical); !ok {
				n = reference.TagNameOnly(n)
			}
			byRef = n
			if err := untag(n); err != nil {
				return err
			}
			_, byDigest := n.(reference.Canonical)
			sameRepoTag := false
			for _, o := range refs {
				if _, c := o.(reference.Canonical); !c && o.Name() == n.Name() && o.String() != n.String() {
					sameRepoTag = true
				}
			}
			for _, o := range refs {
				if o.String() == n.String() {
					continue
				}
				if _, c := o.(reference.Canonical); c && !byDigest && !sameRepoTag && o.Name() == n.Name() {
					if err := untag(o); err != nil {
						return err
					}
					continue
				}
				remaining = append(remaining, o)
			}
		} else {
			if hasChildren(tx, id) {
				return errdefs.Conflict(fmt.Errorf("conflict: unable to delete %s (cannot be forced) - image has dependent child images", shortID(id)))
			}
			if !force && !singleReference(refs) {
				return errdefs.Conflict(fmt.Errorf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", shortID(id)))
			}
			for _, o := range refs {
				if err := untag(o); err != nil {
					return err
				}
			}
		}
		if user != "" && len(remaining) == 0 && !force && byRef != nil {
			return errdefs.Conflict(fmt.Errorf("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s",
				reference.FamiliarString(byRef), user[:min(12, len(user))], shortID(id)))
		}
		if user != "" && len(remaining) == 0 && !force {
			return errdefs.Conflict(fmt.Errorf("conflict: unable to delete %s (must be forced) - image is being used by container %s", shortID(id), user[:min(12, len(user))]))
		}
		if len(remaining) > 0 || user != "" || hasChildren(tx, id) {
			// Names go; an image a container uses, or others were
			// committed from, stays, nameless.
			nv, _ := json.Marshal(r)
			return tx.Bucket(bucketImages).Put([]byte(id), nv)
		}
		if err := deleteImage(tx, id); err != nil {
			return err
		}
		out = append(out, DeleteResult{Deleted: id.String()})
		removedImage = true
		for p := r.Parent; prune && p != "" && !used[p]; {
			v := tx.Bucket(bucketImages).Get([]byte(p))
			var pr record
			if v == nil || json.Unmarshal(v, &pr) != nil || len(namesOf(tx, p, pr)) > 0 || hasChildren(tx, p) {
				break
			}
			if err := deleteImage(tx, p); err != nil {
				return err
			}
			out = append(out, DeleteResult{Deleted: p.String()})
			p = pr.Parent
		}
		return nil
	})
	if err != nil {
		return out, err
	}
	for _, r := range out {
		if r.Untagged != "" {
			s.notify(events.ActionUnTag, imgID.String(), r.Untagged)
		}
		if r.Deleted != "" {
			s.notify(events.ActionDelete, r.Deleted, r.Deleted)
		}
	}
	if !removedImage {
		return out, nil
	}
	deleted, err := s.collectLayers()
	for _, c := range deleted {
		out = append(out, DeleteResult{Deleted: c.String()})
	}
	return out, err
}

// parentOf is the image id was committed from, if any.
func parentOf(tx *bolt.Tx, id digest.Digest) digest.Digest {
	var r record
	if v := tx.Bucket(bucketImages).Get([]byte(id)); v == nil || json.Unmarshal(v, &r) != nil {
		return ""
	}
	return r.Parent
}

// hasChildren says whether an image was committed from id.
func hasChildren(tx *bolt.Tx, id digest.Digest) bool {
	found := false
	tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
		var r record
		if !found && json.Unmarshal(v, &r) == nil && r.Parent == id {
			found = true
		}
		return nil
	})
	return found
}

// namesOf lists an image's tags and digest references.
func namesOf(tx *bolt.Tx, id digest.Digest, r record) []reference.Named {
	var out []reference.Named
	tx.Bucket(bucketTags).ForEach(func(k, v []byte) error {
		if digest.Digest(v) == id {
			if n, err := reference.ParseNormalizedNamed(string(k)); err == nil {
				out = append(out, n)
			}
		}
		return nil
	})
	for _, rd := range r.RepoDigests {
		if n, err := reference.ParseNormalizedNamed(rd); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// singleReference: at most one tag, and every name in one repository.
func singleReference(refs []reference.Named) bool {
	tags := 0
	for _, r := range refs {
		if _, c := r.(reference.Canonical); !c {
			tags++
		}
		if r.Name() != refs[0].Name() {
			return false
		}
	}
	return tags <= 1
}

// isIDPrefix says whether refOrID named the image by its ID rather than by
// a name (a bare hex string is both; a tag wins, as in resolve).
func isIDPrefix(tx *bolt.Tx, refOrID string, id digest.Digest) bool {
	if _, err := digest.Parse(refOrID); err == nil {
		return true
	}
	n, err := reference.ParseNormalizedNamed(refOrID)
	if err != nil {
		return true
	}
	if _, ok := n.(reference.Digested); ok {
		return false
	}
	return tx.Bucket(bucketTags).Get([]byte(reference.TagNameOnly(n).String())) == nil
}

func shortID(id digest.Digest) string {
	e := id.Encoded()
	if len(e) > 12 {
		e = e[:12]
	}
	return e
}

// collectLayers removes the layers no image uses any more. It returns the
// chain IDs removed.
func (s *Store) collectLayers() ([]digest.Digest, error) {
	s.mu.Lock() // pulls cannot pin while we decide
	defer s.mu.Unlock()
	used := map[digest.Digest]bool{}
	for id := range s.pinned {
		used[id] = true
	}
	imgs, err := s.List()
	if err != nil {
		return nil, err
	}
	for _, img := range imgs {
		for _, c := range img.ChainIDs {
			used[c] = true
		}
	}
	all, err := s.layers.List()
	if err != nil {
		return nil, err
	}
	var removed []digest.Digest
	for _, l := range all {
		if used[l.ChainID] {
			continue
		}
		if err := s.layers.Remove(l.ChainID); err != nil {
			return removed, fmt.Errorf("remove layer %s: %w", l.ChainID, err)
		}
		removed = append(removed, l.ChainID)
	}
	return removed, nil
}
