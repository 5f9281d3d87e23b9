package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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
	tag, err := parseOptionalTag(opts.Ref)
	if err != nil {
		return "", err
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
	diffID, unpin, err := s.addLayer(ctx, nil, r)
	if err != nil {
		if !errors.Is(err, errLayerStore) {
			err = errdefs.InvalidParameter(fmt.Errorf("import: %w", err))
		}
		return "", err
	}
	defer unpin()
	comment := opts.Message
	if comment == "" {
		comment = "Imported from " + opts.Source
	}
	cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}}
	cfg.History = []ocispec.History{{Created: &now, Comment: comment}}
	id, err := s.recordMade(cfg, now, tag, "")
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

// MaxImportURLSize bounds what an import reads from a URL: a server that
// sends without end (or a mistyped URL to something huge) must not fill
// the data root, where the engine and every container keep their files.
const MaxImportURLSize = 8 << 30

// OpenImportURL fetches the tarball of an import from an http(s) URL,
// refusing one larger than limit bytes: at once when the server declares
// its length, otherwise at the first byte beyond.
func OpenImportURL(ctx context.Context, src string, limit int64) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("import from %s: %w", src, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("import from %s: HTTP %d", src, resp.StatusCode)
	}
	if resp.ContentLength > limit {
		resp.Body.Close()
		return nil, errdefs.InvalidParameter(tooLarge(src, limit))
	}
	return &boundedBody{rc: resp.Body, left: limit, limit: limit, src: src}, nil
}

func tooLarge(src string, limit int64) error {
	return fmt.Errorf("import from %s: the source is larger than the %d bytes allowed", src, limit)
}

// boundedBody fails a read that would go past its bound.
type boundedBody struct {
	rc    io.ReadCloser
	left  int64 // bytes still allowed
	limit int64
	src   string
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, errdefs.InvalidParameter(tooLarge(b.src, b.limit))
	}
	// One byte more than allowed tells a source at its bound from a larger one.
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n - 1, errdefs.InvalidParameter(tooLarge(b.src, b.limit))
	}
	return n, err
}

func (b *boundedBody) Close() error { return b.rc.Close() }

// recordMade records an image made here (imported or committed), and its
// tag if any, and returns its ID.
func (s *Store) recordMade(cfg dockerspec.DockerOCIImage, now time.Time, tag reference.NamedTagged, parent digest.Digest) (digest.Digest, error) {
	raw, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	id := digest.FromBytes(raw)
	err = s.db.Update(func(tx *bolt.Tx) error {
		v, _ := json.Marshal(record{Config: raw, Added: now, Parent: parent})
		if err := tx.Bucket(bucketImages).Put([]byte(id), v); err != nil {
			return err
		}
		if tag != nil {
			return tx.Bucket(bucketTags).Put([]byte(tag.String()), []byte(id))
		}
		return nil
	})
	return id, err
}

// parseOptionalTag is ParseTag of a reference that may be absent ("").
func parseOptionalTag(ref string) (reference.NamedTagged, error) {
	if ref == "" {
		return nil, nil
	}
	return ParseTag(ref)
}

// errLayerStore marks addLayer's failures that are the store's, not the
// stream's.
var errLayerStore = errors.New("layer store")

// addLayer extracts one layer from r on top of the chain parents (chain
// IDs, base first; none for a base layer), commits it unless the store
// has it already, and returns its diffID; the chain with it is pinned
// against removal until unpin.
func (s *Store) addLayer(ctx context.Context, parents []digest.Digest, r io.Reader) (diffID digest.Digest, unpin func(), err error) {
	var top digest.Digest
	if n := len(parents); n > 0 {
		top = parents[n-1]
	}
	in, err := s.layers.Ingest(top, "")
	if err != nil {
		return "", nil, fmt.Errorf("%w: %w", errLayerStore, err)
	}
	defer in.Abort()
	if err := in.Apply(ctx, r, "", -1); err != nil {
		return "", nil, err
	}
	in.SetParent(top) // the stream told the diffID; now the chain ID
	chain := append(append([]digest.Digest{}, parents...), in.ChainID())
	s.pin(chain)
	if _, err := s.layers.Get(in.ChainID()); err != nil {
		if _, err := in.Commit(); err != nil {
			s.unpin(chain)
			return "", nil, fmt.Errorf("%w: %w", errLayerStore, err)
		}
	}
	return in.DiffID(), func() { s.unpin(chain) }, nil
}
