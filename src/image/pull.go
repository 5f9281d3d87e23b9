package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/layer"
	"github.com/balena-os/balena-engine/src/registry"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/time/rate"
)

// PullOptions tune one pull.
type PullOptions struct {
	// Platform to pull; nil for the engine's own (with the CPU's ARM variant).
	Platform    *ocispec.Platform
	Credentials *registry.Credentials
	Progress    Progress
	// MaxConcurrent layers are fetched at once (default 3).
	MaxConcurrent int
	// Limiter, when set, caps the download bandwidth (bytes per second),
	// shared by every transfer that uses it.
	Limiter *rate.Limiter
}

// Pull fetches ref from its registry and records it. Layers the store has
// (by chain ID) are not fetched again; the missing ones are streamed into
// the layer store, several at a time. The image and its tag are recorded in
// one transaction once every layer is committed.
func (s *Store) Pull(ctx context.Context, reg *registry.Client, ref string, opts PullOptions) (Image, error) {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return Image{}, errdefs.InvalidParameter(fmt.Errorf("invalid reference format: %w", err))
	}
	n = reference.TagNameOnly(n)
	p := opts.Progress
	explicit := opts.Platform != nil
	want := platforms.DefaultSpec()
	if explicit {
		want = platforms.Normalize(*opts.Platform)
	}
	repo := reg.Repository(n, opts.Credentials)
	what := "latest"
	if t, ok := n.(reference.Tagged); ok {
		what = t.Tag()
	} else if d, ok := n.(reference.Digested); ok {
		what = d.Digest().String()
	}
	res, err := repo.Resolve(ctx, n, platforms.Only(want), platforms.Format(want))
	if err != nil {
		return Image{}, err
	}
	// Only now: until the first message, an API caller can still answer
	// with an error status instead of an error inside the stream.
	p.send(Message{Status: "Pulling from " + reference.Path(n), ID: what})
	raw, err := repo.GetConfig(ctx, res.Manifest.Config)
	if err != nil {
		return Image{}, err
	}
	var cfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return Image{}, fmt.Errorf("image config %s: %w", res.Manifest.Config.Digest, err)
	}
	if info, isDelta, err := deltaOf(cfg); isDelta {
		if err != nil {
			return Image{}, err
		}
		return s.pullDelta(ctx, repo, n, res, info, opts)
	}
	if len(cfg.RootFS.DiffIDs) != len(res.Manifest.Layers) {
		return Image{}, fmt.Errorf("image %s: the config lists %d layers, the manifest %d", n, len(cfg.RootFS.DiffIDs), len(res.Manifest.Layers))
	}
	if got := (ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}); explicit && !platforms.Only(want).Match(got) {
		return Image{}, errdefs.NotFound(fmt.Errorf("image with reference %s was found but does not match the specified platform: wanted %s, actual: %s",
			reference.FamiliarString(n), platforms.Format(want), platforms.Format(got)))
	}
	id := res.Manifest.Config.Digest
	chain := chainIDs(cfg.RootFS.DiffIDs)
	s.pin(chain)
	defer s.unpin(chain)

	fetched, err := s.fetchLayers(ctx, repo, res.Manifest.Layers, cfg.RootFS.DiffIDs, chain, opts)
	if err != nil {
		// Layers this pull committed belong to no image: remove them, so
		// that a failed pull leaves nothing behind.
		s.unpin(chain)
		s.collectLayers()
		s.pin(chain) // balances the deferred unpin
		return Image{}, err
	}
	repoDigest := reference.TrimNamed(n).String() + "@" + res.Digest.String()
	return s.finishPull(n, id, raw, repoDigest, res.Digest, fetched > 0, p)
}

// finishPull records the pulled image under the name and reports it as
// Docker does: "up to date" only when nothing was fetched and the name
// already meant this image (a new or moved tag is news even with every
// layer here).
func (s *Store) finishPull(n reference.Named, id digest.Digest, raw []byte, repoDigest string, manifest digest.Digest,
	fetched bool, p Progress) (Image, error) {
	before, berr := s.Get(n.String())
	moved := berr != nil || before.ID != id
	if err := s.record(id, raw, n, repoDigest); err != nil {
		return Image{}, err
	}
	s.notify(events.ActionPull, reference.FamiliarString(n), reference.FamiliarString(n))
	p.send(Message{Status: "Digest: " + manifest.String()})
	status := "Image is up to date for "
	if fetched || moved {
		status = "Downloaded newer image for "
	}
	p.send(Message{Status: "Status: " + status + reference.FamiliarString(n)})
	return s.Get(id.String())
}

// fetchLayers streams the missing layers into the layer store, at most
// MaxConcurrent at a time, and returns how many it fetched. The first error
// cancels the others. A worker per transfer takes the layers in turn, not a
// goroutine per layer: a manifest may list thousands.
func (s *Store) fetchLayers(ctx context.Context, repo *registry.Repository, descs []ocispec.Descriptor,
	diffIDs, chain []digest.Digest, opts PullOptions) (int, error) {
	p := opts.Progress
	conc := opts.MaxConcurrent
	if conc <= 0 {
		conc = 3
	}
	var todo []int
	for i, desc := range descs {
		short := shortID(desc.Digest)
		if _, err := s.layers.Get(chain[i]); err == nil {
			p.send(Message{Status: "Already exists", ID: short})
			continue
		}
		p.send(Message{Status: "Pulling fs layer", ID: short})
		todo = append(todo, i)
	}
	// balenaEngine's "Total" line: the bytes of all the missing layers
	// together, which balena's docker-progress (the device agent's pull
	// progress) reads instead of the per-layer lines when /version says
	// Engine "balena-engine".
	total := &counter{progress: p, id: "Total", bare: true}
	for _, i := range todo {
		total.total += descs[i].Size
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var first error
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil || errors.Is(first, context.Canceled) {
			first = err
		}
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(conc, len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				var parent digest.Digest
				if i > 0 {
					parent = chain[i-1]
				}
				if err := s.fetchLayer(ctx, repo, descs[i], parent, diffIDs[i], shortID(descs[i].Digest), total, opts); err != nil {
					fail(err)
					cancel()
				}
			}
		}()
	}
feed:
	for _, i := range todo {
		select {
		case next <- i:
		case <-ctx.Done():
			fail(ctx.Err())
			break feed
		}
	}
	close(next)
	wg.Wait()
	return len(todo), first
}

func (s *Store) fetchLayer(ctx context.Context, repo *registry.Repository, desc ocispec.Descriptor,
	parent, diffID digest.Digest, short string, total *counter, opts PullOptions) error {
	in, err := s.fetchBlob(ctx, repo, desc, parent, diffID, short, total, opts)
	if err != nil {
		return err
	}
	defer in.Abort()
	if _, err := in.Commit(); err != nil {
		return err
	}
	opts.Progress.send(Message{Status: "Pull complete", ID: short})
	s.rememberBlob(diffID, knownBlob{Digest: desc.Digest, Size: desc.Size, MediaType: desc.MediaType, Repo: repo.Named.Name()})
	return nil
}

// fetchBlob streams a layer blob into a new ingestion (diffID "" when the
// layer's digest is not known), applied but not committed.
func (s *Store) fetchBlob(ctx context.Context, repo *registry.Repository, desc ocispec.Descriptor,
	parent, diffID digest.Digest, short string, total *counter, opts PullOptions) (*layer.Ingestion, error) {
	p := opts.Progress
	in, err := s.layers.Ingest(parent, diffID)
	if err != nil {
		return nil, err
	}
	rc, err := repo.OpenBlob(ctx, desc)
	if err != nil {
		in.Abort()
		return nil, err
	}
	defer rc.Close()
	c := &counter{progress: p, id: short, total: desc.Size}
	var r io.Reader = &countingReader{r: rc, c: c, total: total}
	if opts.Limiter != nil {
		r = &limitedReader{ctx: ctx, r: r, l: opts.Limiter}
	}
	if err := in.Apply(ctx, r, desc.Digest, desc.Size); err != nil {
		return nil, fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	p.send(Message{Status: "Verifying Checksum", ID: short})
	p.send(Message{Status: "Download complete", ID: short})
	return in, nil
}

type countingReader struct {
	r     io.Reader
	c     *counter
	total *counter // all the pull's layers; may be nil
}

func (cr *countingReader) Read(b []byte) (int, error) {
	n, err := cr.r.Read(b)
	if n > 0 {
		cr.c.add(n)
		if cr.total != nil {
			cr.total.add(n)
		}
	}
	return n, err
}

// limitedReader waits for tokens before handing bytes over, so that the
// bytes per second across every reader sharing l stay under its rate.
type limitedReader struct {
	ctx context.Context
	r   io.Reader
	l   *rate.Limiter
}

func (lr *limitedReader) Read(b []byte) (int, error) {
	if burst := lr.l.Burst(); len(b) > burst {
		b = b[:burst]
	}
	n, err := lr.r.Read(b)
	if n > 0 {
		if werr := lr.l.WaitN(lr.ctx, n); werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}

// record stores the image and names it, in one transaction.
func (s *Store) record(id digest.Digest, raw []byte, n reference.Named, repoDigest string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		images := tx.Bucket(bucketImages)
		r := record{Config: raw, Added: time.Now().UTC()}
		if v := images.Get([]byte(id)); v != nil {
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
		}
		has := false
		for _, rd := range r.RepoDigests {
			has = has || rd == repoDigest
		}
		if !has && repoDigest != "" {
			r.RepoDigests = append(r.RepoDigests, repoDigest)
		}
		v, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := images.Put([]byte(id), v); err != nil {
			return err
		}
		if t, ok := n.(reference.NamedTagged); ok {
			if _, isDigest := n.(reference.Digested); !isDigest {
				return tx.Bucket(bucketTags).Put([]byte(t.String()), []byte(id))
			}
		}
		return nil
	})
}
