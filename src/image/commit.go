package image

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
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
	tag, err := parseOptionalTag(opts.Ref)
	if err != nil {
		return "", err
	}
	parent, err := s.Get(opts.Parent)
	if err != nil {
		return "", err
	}
	cfg := opts.Config
	if err := applyChanges(&cfg, opts.Changes); err != nil {
		return "", err
	}
	diffID, unpin, err := s.addLayer(ctx, parent.ChainIDs, diff)
	if err != nil {
		return "", fmt.Errorf("commit: %w", err)
	}
	defer unpin()
	now := time.Now().UTC()
	img := dockerspec.DockerOCIImage{Image: ocispec.Image{Created: &now, Author: opts.Author,
		Platform: ocispec.Platform{OS: parent.Config.OS, Architecture: parent.Config.Architecture, Variant: parent.Config.Variant},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: append(append([]digest.Digest{}, parent.Config.RootFS.DiffIDs...), diffID)},
		History: append(append([]ocispec.History{}, parent.Config.History...),
			ocispec.History{Created: &now, Author: opts.Author, CreatedBy: opts.CreatedBy, Comment: opts.Comment})},
		Config: cfg}
	id, err := s.recordMade(img, now, tag, parent.ID)
	if err != nil {
		return "", errdefs.Unavailable(fmt.Errorf("commit: record the image: %w", err))
	}
	return id, nil
}
