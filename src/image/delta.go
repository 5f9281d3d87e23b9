package image

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/balena-os/balena-engine/src/delta"
	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/layer"
	"github.com/balena-os/balena-engine/src/registry"
	"github.com/distribution/reference"
	"github.com/docker/go-units"
	"github.com/klauspost/compress/gzip"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
)

// deltaTarget is a delta image's target as the store sees it.
type deltaTarget struct {
	info  delta.Info
	cfg   dockerspec.DockerOCIImage
	chain []digest.Digest
	base  Image
}

// openDelta checks a delta image against the store: the target parsed and
// matching the delta's layer count, and the base present. done is true
// when the target is already here (nothing to apply).
func (s *Store) openDelta(info delta.Info, deltaLayers int) (t deltaTarget, done bool, err error) {
	t.info = info
	if _, err := s.Get(info.TargetID.String()); err == nil {
		return t, true, nil
	}
	if err := json.Unmarshal(info.Target, &t.cfg); err != nil {
		return t, false, errdefs.InvalidParameter(fmt.Errorf("delta image: target config: %w", err))
	}
	if n := len(t.cfg.RootFS.DiffIDs); n != deltaLayers {
		return t, false, errdefs.InvalidParameter(fmt.Errorf("delta image: the target has %d layers, the delta %d", n, deltaLayers))
	}
	t.chain = chainIDs(t.cfg.RootFS.DiffIDs)
	base, err := s.Get(info.Base.String())
	if err != nil {
		if errdefs.KindOf(err) == errdefs.KindNotFound {
			return t, false, errdefs.NotFound(fmt.Errorf("delta base image %s not found: the delta rebuilds image %s from it, pull or load the base first", info.Base, info.TargetID))
		}
		return t, false, err
	}
	t.base = base
	return t, false, nil
}

// patchLayer rebuilds layer i of the target from the balena delta held in
// the applied ingestion d, against the base's layers, and commits it.
func (s *Store) patchLayer(ctx context.Context, t deltaTarget, basis *layer.Basis, i int, d *layer.Ingestion) error {
	f, err := d.OpenFile(delta.EntryName)
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("delta layer %d: no %q entry: %w", i, delta.EntryName, err))
	}
	defer f.Close()
	var parent digest.Digest
	if i > 0 {
		parent = t.chain[i-1]
	}
	out, err := s.layers.Ingest(parent, t.cfg.RootFS.DiffIDs[i])
	if err != nil {
		return err
	}
	defer out.Abort()
	br := bufio.NewReaderSize(f, 64<<10)
	if t.info.Format == delta.FormatNative {
		// A delta declares what it makes: one that could not fit is
		// refused before it fills the disk.
		size, err := delta.DeclaredSize(br)
		if err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("delta layer %d: %w", i, err))
		}
		if free, err := s.layers.Free(); err == nil && size > free {
			return fmt.Errorf("delta layer %d makes a layer of %d bytes, more than the %d free in the data root", i, size, free)
		}
	}
	patched := delta.Patch(t.info.Format, basis, basis.Size(), br)
	if err := out.Apply(ctx, patched, "", -1); err != nil {
		var de *layer.DigestError
		if errors.As(err, &de) {
			return errdefs.InvalidParameter(fmt.Errorf("delta layer %d does not rebuild the target's layer: %w", i, err))
		}
		return fmt.Errorf("delta layer %d: %w", i, err)
	}
	_, err = out.Commit()
	return err
}

// pullDelta pulls a delta image: the target image ends up in the store,
// under its own ID and tagged with the pulled name, as if pulled whole. The
// delta's layers are fetched only where the store lacks the target's.
func (s *Store) pullDelta(ctx context.Context, repo *registry.Repository, n reference.Named,
	res registry.Resolved, info delta.Info, opts PullOptions) (Image, error) {
	p := opts.Progress
	t, done, err := s.openDelta(info, len(res.Manifest.Layers))
	if err != nil {
		return Image{}, err
	}
	if !done {
		if err := s.applyDelta(ctx, t, func(ctx context.Context, i int) (*layer.Ingestion, func(), error) {
			desc := res.Manifest.Layers[i]
			d, err := s.fetchBlob(ctx, repo, desc, "", "", shortID(desc.Digest), nil, opts)
			if err != nil {
				return nil, nil, err
			}
			return d, d.Abort, nil
		}, p); err != nil {
			return Image{}, err
		}
	}
	// A delta has no repo digest of its target: none is recorded.
	return s.finishPull(n, info.TargetID, info.Target, "", res.Digest, !done, p)
}

// applyDelta rebuilds every layer of the target the store lacks, one after
// the other, each from its delta layer (got by fetch, applied but not
// committed; release is called once it is read). A failure leaves no layer of the target behind.
func (s *Store) applyDelta(ctx context.Context, t deltaTarget, fetch func(context.Context, int) (*layer.Ingestion, func(), error), p Progress) (err error) {
	pinned := append(append([]digest.Digest{}, t.chain...), t.base.ChainIDs...)
	s.pin(pinned)
	defer func() {
		s.unpin(pinned)
		if err != nil {
			s.collectLayers()
		}
	}()
	basis, err := s.layers.OpenBasis(t.base.ChainIDs)
	if err != nil {
		return err
	}
	defer basis.Close()
	for i, c := range t.chain {
		short := shortID(t.cfg.RootFS.DiffIDs[i])
		if _, err := s.layers.Get(c); err == nil {
			p.send(Message{Status: "Already exists", ID: short})
			continue
		}
		d, release, err := fetch(ctx, i)
		if err != nil {
			return err
		}
		p.send(Message{Status: "Applying delta", ID: short})
		err = s.patchLayer(ctx, t, basis, i, d)
		release()
		if err != nil {
			return err
		}
		p.send(Message{Status: "Pull complete", ID: short})
	}
	return nil
}

// deltaOf reads a config's delta labels.
func deltaOf(cfg dockerspec.DockerOCIImage) (delta.Info, bool, error) {
	info, ok, err := delta.FromLabels(cfg.Config.Labels)
	if err != nil {
		err = errdefs.InvalidParameter(err)
	}
	return info, ok, err
}

// DeltaOptions tune CreateDelta.
type DeltaOptions struct {
	Tag      string // name the delta image gets; "" for none
	Format   string // delta.FormatNative (the default) or delta.FormatBalena
	Progress Progress
}

// CreateDelta makes the delta image that rebuilds dest from src, records
// it and returns its ID. Each layer of dest is, in the delta, an empty layer
// where dest's chain up to it is src's, else a layer holding the delta of
// its tar against all of src's layer tars, in the format asked for.
func (s *Store) CreateDelta(ctx context.Context, src, dest string, opts DeltaOptions) (digest.Digest, error) {
	p := opts.Progress
	format := opts.Format
	switch format {
	case "":
		format = delta.FormatNative
	case delta.FormatNative, delta.FormatBalena:
	default:
		return "", errdefs.InvalidParameter(fmt.Errorf("unknown delta format %q: balena-engine makes %q (its own) and %q (balenaEngine's) deltas",
			opts.Format, delta.FormatNative, delta.FormatBalena))
	}
	var tag reference.NamedTagged
	if opts.Tag != "" {
		var err error
		if tag, err = ParseTag(opts.Tag); err != nil {
			return "", err
		}
	}
	a, err := s.Get(src)
	if err != nil {
		return "", err
	}
	b, err := s.Get(dest)
	if err != nil {
		return "", err
	}
	pinned := append(append([]digest.Digest{}, a.ChainIDs...), b.ChainIDs...)
	s.pin(pinned)
	defer s.unpin(pinned)
	basis, err := s.layers.OpenBasis(a.ChainIDs)
	if err != nil {
		return "", err
	}
	defer basis.Close()
	compute := func(w io.Writer, tl layer.Layer, c *counter) error {
		ts, err := tl.TarStream()
		if err != nil {
			return err
		}
		defer ts.Close()
		return delta.BalenaDelta(w, basis, basis.Size(), &ctxReader{ctx: ctx, r: &countingReader{r: ts, c: c}})
	}
	var stats delta.Stats
	if format == delta.FormatNative {
		var files []delta.File
		for _, f := range basis.Files() {
			files = append(files, delta.File(f))
		}
		enc := delta.NewEncoder(basis, basis.Size(), files)
		compute = func(w io.Writer, tl layer.Layer, c *counter) error {
			st, err := enc.Encode(w, nativeTarget(ctx, tl, c))
			stats.Add(st)
			return err
		}
	}

	var deltaChain, deltaDiffIDs []digest.Digest
	defer func() { s.unpin(deltaChain) }()
	var small, plain int64
	for i, diffID := range b.Config.RootFS.DiffIDs {
		short := shortID(diffID)
		common := i < len(a.ChainIDs) && a.ChainIDs[i] == b.ChainIDs[i]
		var parent digest.Digest
		if i > 0 {
			parent = deltaChain[i-1]
		}
		var l layer.Layer
		if common {
			l, err = s.ingestTar(ctx, parent, delta.WriteEmptyLayer)
			p.send(Message{Status: "Skipping common layer", ID: short})
		} else {
			var d, g int64
			l, d, g, err = s.deltaLayer(ctx, parent, b.ChainIDs[i], &counter{progress: p, id: short, status: "Computing delta"}, compute)
			small += d
			plain += g
			p.send(Message{Status: "Delta complete", ID: short})
		}
		if err != nil {
			s.unpin(deltaChain)
			deltaChain = nil
			s.collectLayers()
			return "", err
		}
		s.pin([]digest.Digest{l.ChainID})
		deltaChain = append(deltaChain, l.ChainID)
		deltaDiffIDs = append(deltaDiffIDs, l.DiffID)
	}
	info := delta.Info{Format: format, Base: a.ID, Target: b.RawConfig, TargetID: b.ID}
	raw, err := delta.Config(info, b.Config.OS, b.Config.Architecture, b.Config.Variant, deltaDiffIDs, time.Now())
	if err != nil {
		return "", err
	}
	id := digest.FromBytes(raw)
	var n reference.Named
	if tag != nil {
		n = tag
	}
	if err := s.record(id, raw, n, ""); err != nil {
		return "", err
	}
	// balenaEngine's summary line, then the pull's bytes: the changed
	// layers against the delta layers, gzipped as a push sends them.
	ratio := func(a, b int64) float64 {
		if b == 0 {
			return 1
		}
		return float64(a) / float64(b)
	}
	p.send(Message{Status: fmt.Sprintf("Normal size: %s, Delta size: %s, %.2fx improvement",
		units.HumanSize(float64(plain)), units.HumanSize(float64(small)), ratio(plain, small))})
	p.send(Message{Status: fmt.Sprintf("Plain pull: %d bytes (gzip), delta: %d bytes, %.2fx smaller (%s format)", plain, small, ratio(plain, small), format)})
	if format == delta.FormatNative {
		p.send(Message{Status: fmt.Sprintf("Target bytes copied %d, adjusted %d, patched %d (%d zstd, %d bsdiff), literal %d",
			stats.Copied, stats.Added, stats.Patched, stats.PatchesZstd, stats.PatchesBsdiff, stats.Literal)})
	}
	p.send(Message{Status: "Created delta: " + id.String()})
	if tag != nil {
		s.notify(events.ActionTag, id.String(), reference.FamiliarString(tag))
		p.send(Message{Status: "Successfully tagged " + reference.FamiliarString(tag)})
	}
	return id, nil
}

// nativeTarget is a target layer as the native encoder reads it: its
// records from tar-split, its files from its directory, progress reported
// to c as the records go by.
func nativeTarget(ctx context.Context, tl layer.Layer, c *counter) delta.Target {
	return delta.Target{
		Size: c.total,
		Walk: func(fn func(delta.Entry) error) error {
			return tl.Walk(func(e layer.Entry) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := fn(delta.Entry(e)); err != nil {
					return err
				}
				c.add(len(e.Segment) + int(e.Size))
				return nil
			})
		},
		Open: func(name string) (io.ReadCloser, error) { return tl.OpenFile(name) },
	}
}

// ingestTar commits the layer tar that write produces on top of parent.
func (s *Store) ingestTar(ctx context.Context, parent digest.Digest, write func(io.Writer) error) (layer.Layer, error) {
	in, err := s.layers.Ingest(parent, "")
	if err != nil {
		return layer.Layer{}, err
	}
	defer in.Abort()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(write(pw)) }()
	err = in.Apply(ctx, pr, "", -1)
	pr.CloseWithError(errors.New("layer ingestion ended"))
	if err != nil {
		return layer.Layer{}, err
	}
	return in.Commit()
}

// deltaLayer computes the delta of the target layer into a scratch file
// (compute reports its progress through the layer's tar to c), then
// commits the delta layer that holds it. It returns the layer, the
// target tar's size, the delta's, and the target's size gzipped.
func (s *Store) deltaLayer(ctx context.Context, parent digest.Digest, target digest.Digest, c *counter,
	compute func(io.Writer, layer.Layer, *counter) error) (l layer.Layer, deltaSize, gzSize int64, err error) {
	tl, err := s.layers.Get(target)
	if err != nil {
		return l, 0, 0, err
	}
	if c.total, err = tl.TarSize(); err != nil {
		return l, 0, 0, err
	}
	if gzSize, err = s.gzipSize(tl); err != nil {
		return l, 0, 0, err
	}
	tmp, err := s.layers.TempFile()
	if err != nil {
		return l, 0, 0, err
	}
	defer tmp.Close()
	w := bufio.NewWriterSize(tmp, 64<<10)
	if err := compute(w, tl, c); err != nil {
		return l, 0, 0, fmt.Errorf("delta of layer %s: %w", tl.DiffID, err)
	}
	if err := w.Flush(); err != nil {
		return l, 0, 0, err
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return l, 0, 0, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return l, 0, 0, err
	}
	l, err = s.ingestTar(ctx, parent, func(w io.Writer) error {
		return delta.WriteLayer(w, bufio.NewReaderSize(tmp, 64<<10), size)
	})
	if err != nil {
		return l, 0, 0, err
	}
	// What a pull of the delta layer fetches: gzipped as a push sends it.
	deltaSize, err = s.gzipSize(l)
	return l, deltaSize, gzSize, err
}

// gzipSize is the size of the layer's blob as a pull fetches it: the one
// a pull or push recorded, else its tar gzipped as a push would.
func (s *Store) gzipSize(l layer.Layer) (int64, error) {
	if known := s.knownBlobs(l.DiffID); len(known) > 0 {
		return known[0].Size, nil
	}
	ts, err := l.TarStream()
	if err != nil {
		return 0, err
	}
	defer ts.Close()
	cw := &countWriter{}
	zw := gzip.NewWriter(cw)
	if _, err := io.Copy(zw, ts); err != nil {
		return 0, err
	}
	return cw.n, zw.Close()
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// ctxReader ends a long read when ctx is done (the client went away).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
