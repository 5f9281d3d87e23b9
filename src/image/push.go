package image

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/registry"
	"github.com/distribution/reference"
	"github.com/klauspost/compress/gzip"
	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

var bucketBlobs = []byte("blobs") // diffID -> []knownBlob

// knownBlob is a compressed form of a layer some registry holds: what a
// push needs to skip or mount an upload.
type knownBlob struct {
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
	MediaType string        `json:"mediaType"`
	Repo      string        `json:"repo"` // normalized repository name, host included
}

func (s *Store) rememberBlob(diffID digest.Digest, b knownBlob) {
	s.db.Update(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(bucketBlobs)
		if err != nil {
			return err
		}
		var list []knownBlob
		if v := bk.Get([]byte(diffID)); v != nil {
			json.Unmarshal(v, &list)
		}
		for _, k := range list {
			if k == b {
				return nil
			}
		}
		list = append(list, b)
		if len(list) > 16 { // the newest few are what matters
			list = list[len(list)-16:]
		}
		v, _ := json.Marshal(list)
		return bk.Put([]byte(diffID), v)
	})
}

func (s *Store) knownBlobs(diffID digest.Digest) []knownBlob {
	var list []knownBlob
	s.db.View(func(tx *bolt.Tx) error {
		if bk := tx.Bucket(bucketBlobs); bk != nil {
			if v := bk.Get([]byte(diffID)); v != nil {
				json.Unmarshal(v, &list)
			}
		}
		return nil
	})
	return list
}

// PushOptions tune a push.
type PushOptions struct {
	Credentials *registry.Credentials
	Progress    Progress
	// Platforms, when given, are those the images pushed must be of
	// (Image.CheckPlatform): an image is kept here for one platform.
	Platforms []ocispec.Platform
}

// Push uploads the image name:tag to its registry (every tag of the
// repository when tag is empty), with Docker's progress messages. Layers
// the registry has are skipped, layers it has in another repository are
// mounted, the others are rebuilt from tar-split, gzipped and streamed up.
func (s *Store) Push(ctx context.Context, reg *registry.Client, name, tag string, opts PushOptions) error {
	n, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid reference format: %w", err))
	}
	if _, ok := n.(reference.Digested); ok {
		return errdefs.InvalidParameter(fmt.Errorf("cannot push a digest reference: %s", name))
	}
	if t, ok := n.(reference.Tagged); ok {
		tag = t.Tag()
	}
	repoName := reference.TrimNamed(n)
	var tags []reference.NamedTagged
	if tag != "" {
		t, _ := reference.WithTag(repoName, tag)
		tags = append(tags, t)
	} else {
		all, err := s.List()
		if err != nil {
			return err
		}
		for _, img := range all {
			for _, rt := range img.RepoTags {
				if rn, err := reference.ParseNormalizedNamed(rt); err == nil && rn.Name() == repoName.Name() {
					tags = append(tags, rn.(reference.NamedTagged))
				}
			}
		}
		sort.Slice(tags, func(i, j int) bool { return tags[i].Tag() < tags[j].Tag() })
	}
	if len(tags) == 0 {
		return errdefs.NotFound(fmt.Errorf("An image does not exist locally with the tag: %s", reference.FamiliarName(repoName))) //lint:ignore ST1005 Docker's wording
	}
	if len(opts.Platforms) > 0 {
		for _, t := range tags {
			if img, err := s.Get(t.String()); err == nil {
				if err := img.CheckPlatform(reference.FamiliarString(t), opts.Platforms); err != nil {
					return err
				}
			}
		}
	}
	p := opts.Progress
	repo := reg.Repository(repoName, opts.Credentials)
	p.send(Message{Status: "The push refers to repository [" + repoName.String() + "]"})
	for _, t := range tags {
		img, err := s.Get(t.String())
		if err != nil {
			return errdefs.NotFound(fmt.Errorf("An image does not exist locally with the tag: %s", reference.FamiliarString(t))) //lint:ignore ST1005 Docker's wording
		}
		if err := s.pushOne(ctx, repo, repoName, t, img, p); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) pushOne(ctx context.Context, repo *registry.Repository, repoName reference.Named, t reference.NamedTagged, img Image, p Progress) error {
	diffIDs := img.Config.RootFS.DiffIDs
	for i := len(diffIDs) - 1; i >= 0; i-- {
		p.send(Message{Status: "Preparing", ID: shortID(diffIDs[i])})
	}
	m := ocispec.Manifest{MediaType: registry.MediaTypeDockerManifest,
		Config: ocispec.Descriptor{MediaType: registry.MediaTypeDockerConfig, Digest: img.ID, Size: int64(len(img.RawConfig))}}
	m.SchemaVersion = 2
	for i := len(diffIDs) - 1; i >= 0; i-- {
		desc, err := s.pushLayer(ctx, repo, repoName, diffIDs[i], img.ChainIDs[i], p)
		if err != nil {
			return fmt.Errorf("push layer %s: %w", diffIDs[i], err)
		}
		m.Layers = append([]ocispec.Descriptor{desc}, m.Layers...)
	}
	raw := img.RawConfig
	cfgOpen := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }
	if err := repo.PushBlob(ctx, m.Config, cfgOpen); err != nil {
		return err
	}
	mb, _ := json.Marshal(m)
	md, err := repo.PushManifest(ctx, t.Tag(), registry.MediaTypeDockerManifest, mb)
	if err != nil {
		return err
	}
	aux, _ := json.Marshal(map[string]any{"Tag": t.Tag(), "Digest": md.String(), "Size": len(mb)})
	rawAux := json.RawMessage(aux)
	p.send(Message{Status: fmt.Sprintf("%s: digest: %s size: %d", t.Tag(), md, len(mb))})
	p.send(Message{Aux: &rawAux})
	if err := s.addRepoDigest(img.ID, repoName.String()+"@"+md.String()); err != nil {
		return err
	}
	s.notify(events.ActionPush, reference.FamiliarString(t), reference.FamiliarString(t))
	return nil
}

func (s *Store) pushLayer(ctx context.Context, repo *registry.Repository, repoName reference.Named, diffID, chainID digest.Digest, p Progress) (ocispec.Descriptor, error) {
	short := shortID(diffID)
	for _, kb := range s.knownBlobs(diffID) {
		desc := ocispec.Descriptor{MediaType: kb.MediaType, Digest: kb.Digest, Size: kb.Size}
		from, err := reference.ParseNormalizedNamed(kb.Repo)
		if err != nil {
			continue
		}
		if ok, _ := repo.BlobExists(ctx, kb.Digest); ok {
			p.send(Message{Status: "Layer already exists", ID: short})
			return desc, nil
		}
		if reference.Domain(from) == reference.Domain(repoName) && from.Name() != repoName.Name() {
			if ok, _ := repo.MountBlob(ctx, kb.Digest, reference.Path(from)); ok {
				p.send(Message{Status: "Mounted from " + reference.Path(from), ID: short})
				s.rememberBlob(diffID, knownBlob{Digest: kb.Digest, Size: kb.Size, MediaType: kb.MediaType, Repo: repoName.Name()})
				return desc, nil
			}
		}
	}
	l, err := s.layers.Get(chainID)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	total, err := l.TarSize()
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	tarStream, err := l.TarStream()
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer tarStream.Close()
	// gzip in a goroutine: the upload reads what it writes.
	pr, pw := io.Pipe()
	c := &counter{progress: p, id: short, total: total, status: "Pushing"}
	go func() {
		zw := gzip.NewWriter(pw)
		_, err := io.Copy(zw, &countingReader{r: tarStream, c: c})
		if err == nil {
			err = zw.Close()
		}
		pw.CloseWithError(err)
	}()
	desc, err := repo.PushBlobStream(ctx, pr)
	pr.CloseWithError(err)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc.MediaType = registry.MediaTypeDockerLayer
	p.send(Message{Status: "Pushed", ID: short})
	s.rememberBlob(diffID, knownBlob{Digest: desc.Digest, Size: desc.Size, MediaType: desc.MediaType, Repo: repoName.Name()})
	return desc, nil
}

func (s *Store) addRepoDigest(id digest.Digest, rd string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketImages)
		v := b.Get([]byte(id))
		if v == nil {
			return nil // deleted meanwhile
		}
		var r record
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		for _, have := range r.RepoDigests {
			if have == rd {
				return nil
			}
		}
		r.RepoDigests = append(r.RepoDigests, rd)
		nv, _ := json.Marshal(r)
		return b.Put([]byte(id), nv)
	})
}
