package image

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// CommitOptions describe an image made from a container (docker commit).
type CommitOptions struct {
	Parent    string                          // the container's image (ID)
	Config    dockerspec.DockerOCIImageConfig // the new image's run settings
	Changes   []string                        // Dockerfile instructions applied to Config
	Ref       string                          // "repo[:tag]" to name it, or ""
	Author    string
	Comment   string
	CreatedBy string // the history's line: the container's command
}

// Commit makes an image of the parent image's layers and one more, read
// from diff (a layer tar of what the container changed), and returns its
// ID. The layer is extracted as it arrives, as a pulled one is.
func (s *Store) Commit(ctx context.Context, diff io.Reader, opts CommitOptions) (digest.Digest, error) {
	var tag reference.NamedTagged
	if opts.Ref != "" {
		t, err := ParseTag(opts.Ref)
		if err != nil {
			return "", err
		}
		tag = t
	}
	parent, err := s.Get(opts.Parent)
	if err != nil {
		return "", err
	}
	cfg := opts.Config
	if err := applyChanges(&cfg, opts.Changes); err != nil {
		return "", err
	}
	var top digest.Digest
	if n := len(parent.ChainIDs); n > 0 {
		top = parent.ChainIDs[n-1]
	}
	in, err := s.layers.Ingest(top, "")
	if err != nil {
		return "", err
	}
	defer in.Abort()
	if err := in.Apply(ctx, diff, "", -1); err != nil {
		return "", fmt.Errorf("commit: %w", err)
	}
	in.SetParent(top) // the stream told the diffID; now the chain ID
	chain := append(append([]digest.Digest{}, parent.ChainIDs...), in.ChainID())
	s.pin(chain)
	defer s.unpin(chain)
	if _, err := s.layers.Get(in.ChainID()); err != nil {
		if _, err := in.Commit(); err != nil {
			return "", err
		}
	}
	now := time.Now().UTC()
	img := dockerspec.DockerOCIImage{Image: ocispec.Image{Created: &now, Author: opts.Author,
		Platform: ocispec.Platform{OS: parent.Config.OS, Architecture: parent.Config.Architecture, Variant: parent.Config.Variant},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: append(append([]digest.Digest{}, parent.Config.RootFS.DiffIDs...), in.DiffID())},
		History: append(append([]ocispec.History{}, parent.Config.History...),
			ocispec.History{Created: &now, Author: opts.Author, CreatedBy: opts.CreatedBy, Comment: opts.Comment})},
		Config: cfg}
	id, err := s.recordMade(img, now, tag)
	if err != nil {
		return "", errdefs.Unavailable(fmt.Errorf("commit: record the image: %w", err))
	}
	return id, nil
}
