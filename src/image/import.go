package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// ImportOptions describe an imported image.
type ImportOptions struct {
	Ref      string // "repo[:tag]" to name it, or ""
	Message  string // the history comment
	Changes  []string
	Platform *ocispec.Platform // nil: the engine's
	Source   string            // for the default comment: "-" or a URL
}

// Import makes a one-layer image from a root filesystem tarball (plain,
// gzip or zstd), as "docker import" does, and returns its ID.
func (s *Store) Import(ctx context.Context, r io.Reader, opts ImportOptions) (digest.Digest, error) {
	var tag reference.NamedTagged
	if opts.Ref != "" {
		t, err := ParseTag(opts.Ref)
		if err != nil {
			return "", err
		}
		tag = t
	}
	p := platforms.DefaultSpec()
	if opts.Platform != nil {
		p = platforms.Normalize(*opts.Platform)
	}
	now := time.Now().UTC()
	cfg := dockerspec.DockerOCIImage{Image: ocispec.Image{Created: &now, Platform: ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}}}
	if err := applyChanges(&cfg.Config, opts.Changes); err != nil {
		return "", err
	}
	in, err := s.layers.Ingest("", "")
	if err != nil {
		return "", err
	}
	defer in.Abort()
	if err := in.Apply(ctx, r, "", -1); err != nil {
		return "", errdefs.InvalidParameter(fmt.Errorf("import: %w", err))
	}
	diffID := in.DiffID()
	chain := []digest.Digest{diffID}
	s.pin(chain)
	defer s.unpin(chain)
	if _, err := s.layers.Get(diffID); err != nil {
		if _, err := in.Commit(); err != nil {
			return "", err
		}
	}
	comment := opts.Message
	if comment == "" {
		comment = "Imported from " + opts.Source
	}
	cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: chain}
	cfg.History = []ocispec.History{{Created: &now, Comment: comment}}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	id := digest.FromBytes(raw)
	err = s.db.Update(func(tx *bolt.Tx) error {
		v, _ := json.Marshal(record{Config: raw, Added: now})
		if err := tx.Bucket(bucketImages).Put([]byte(id), v); err != nil {
			return err
		}
		if tag != nil {
			return tx.Bucket(bucketTags).Put([]byte(tag.String()), []byte(id))
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	name := ""
	if tag != nil {
		name = reference.FamiliarString(tag)
	}
	s.notify(events.ActionImport, id.String(), name)
	return id, nil
}
