package image

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/balena-os/balena-engine/src/delta"
	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/layer"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// Archives are Docker's "docker save" format: an OCI image layout
// (blobs/sha256/..., index.json) with Docker's manifest.json beside it,
// which both Docker 20.10 and current Docker load. Load also takes the
// older layout (<id>/layer.tar, <hex>.json) and plain OCI layouts.

const (
	maxArchiveMeta   = 4 << 20  // one JSON file of an archive
	maxArchiveMemory = 64 << 20 // all of them
	annotationName   = "io.containerd.image.name"
)

type archiveManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// Save writes the named images (references or IDs) as one archive.
func (s *Store) Save(ctx context.Context, w io.Writer, names []string) error {
	type entry struct {
		img  Image
		tags []string
	}
	var entries []entry
	for _, name := range names {
		img, err := s.Get(name)
		if err != nil {
			return err
		}
		var tags []string
		// An image named by its ID ("sha256:HEX", or a prefix of HEX) has
		// no tag in the archive.
		byID := strings.HasPrefix(img.ID.String(), name) || strings.HasPrefix(img.ID.Encoded(), name)
		if n, err := reference.ParseNormalizedNamed(name); err == nil && !byID {
			if _, ok := n.(reference.Digested); !ok {
				tags = append(tags, reference.FamiliarString(reference.TagNameOnly(n)))
			}
		}
		entries = append(entries, entry{img, tags})
	}
	tw := tar.NewWriter(w)
	written := map[string]bool{}
	// Entries carry their image's creation time, as Docker's (the files
	// of the archive as a whole, the newest image's): the same images
	// always give the same archive.
	mtime, newest := time.Unix(0, 0), time.Unix(0, 0)
	for _, e := range entries {
		if c := e.img.Config.Created; c != nil && c.After(newest) {
			newest = *c
		}
	}
	put := func(name string, size int64, content func(io.Writer) error) error {
		if written[name] {
			return nil
		}
		written[name] = true
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o444, Size: size, ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		return content(tw)
	}
	putBytes := func(name string, b []byte) error {
		return put(name, int64(len(b)), func(w io.Writer) error { _, err := w.Write(b); return err })
	}
	blobPath := func(d digest.Digest) string { return "blobs/" + d.Algorithm().String() + "/" + d.Encoded() }

	var manifests []archiveManifest
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	idx.SchemaVersion = 2
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
			Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: e.img.ID, Size: int64(len(e.img.RawConfig))}}
		m.SchemaVersion = 2
		mtime = time.Unix(0, 0)
		if e.img.Config.Created != nil {
			mtime = *e.img.Config.Created
		}
		am := archiveManifest{Config: blobPath(e.img.ID), RepoTags: e.tags}
		if err := putBytes(blobPath(e.img.ID), e.img.RawConfig); err != nil {
			return err
		}
		for i, c := range e.img.ChainIDs {
			l, err := s.layers.Get(c)
			if err != nil {
				return err
			}
			size, err := l.TarSize()
			if err != nil {
				return err
			}
			diffID := e.img.Config.RootFS.DiffIDs[i]
			err = put(blobPath(diffID), size, func(w io.Writer) error {
				rc, err := l.TarStream()
				if err != nil {
					return err
				}
				defer rc.Close()
				n, err := io.Copy(w, rc)
				if err == nil && n != size {
					err = fmt.Errorf("layer %s: rebuilt %d bytes, expected %d", c, n, size)
				}
				return err
			})
			if err != nil {
				return fmt.Errorf("save layer %s: %w", diffID, err)
			}
			am.Layers = append(am.Layers, blobPath(diffID))
			m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: diffID, Size: size})
		}
		mb, _ := json.Marshal(m)
		md := digest.FromBytes(mb)
		if err := putBytes(blobPath(md), mb); err != nil {
			return err
		}
		p := ocispec.Platform{OS: e.img.Config.OS, Architecture: e.img.Config.Architecture, Variant: e.img.Config.Variant}
		desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(mb)), Platform: &p}
		if len(e.tags) == 0 {
			idx.Manifests = append(idx.Manifests, desc)
		}
		for _, t := range e.tags {
			d := desc
			n, _ := reference.ParseNormalizedNamed(t)
			d.Annotations = map[string]string{annotationName: n.String(), ocispec.AnnotationRefName: n.(reference.Tagged).Tag()}
			idx.Manifests = append(idx.Manifests, d)
		}
		manifests = append(manifests, am)
	}
	for _, e := range entries {
		name := ""
		if len(e.tags) > 0 {
			name = e.tags[0]
		}
		s.notify(events.ActionSave, e.img.ID.String(), name)
	}
	mtime = newest
	ib, _ := json.Marshal(idx)
	mb, _ := json.Marshal(manifests)
	if err := putBytes("index.json", ib); err != nil {
		return err
	}
	if err := putBytes(ocispec.ImageLayoutFile, []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := putBytes("manifest.json", mb); err != nil {
		return err
	}
	return tw.Close()
}

// loader holds what an archive brought, by path.
type loader struct {
	s       *Store
	meta    map[string][]byte
	links   map[string]string
	layers  map[string]*layer.Ingestion
	placed  map[string]digest.Digest // path -> chain ID it was committed as
	memUsed int64
	want    []ocispec.Platform // docker load --platform; none: the engine's own
}

// matcher chooses among an index's images: the platforms wanted, else the
// engine's own.
func (ld *loader) matcher() (platforms.MatchComparer, string) {
	if len(ld.want) == 0 {
		return platforms.Default(), platforms.DefaultString()
	}
	names := make([]string, len(ld.want))
	for i, w := range ld.want {
		names[i] = platforms.FormatAll(w)
	}
	return platforms.Any(ld.want...), strings.Join(names, ", ")
}

// checkPlatforms refuses, before anything is recorded, an archive with an
// image of none of the platforms wanted, as Docker refuses it.
func (ld *loader) checkPlatforms(imgs []archiveManifest) error {
	if len(ld.want) == 0 {
		return nil
	}
	for _, am := range imgs {
		raw, ok := ld.meta[ld.resolve(am.Config)]
		if !ok {
			continue // place says what is wrong with it
		}
		var img Image
		if err := json.Unmarshal(raw, &img.Config); err != nil {
			continue
		}
		name := strings.Join(am.RepoTags, ", ")
		if name == "" {
			name = digest.FromBytes(raw).String()
		}
		if err := img.CheckPlatform(name, ld.want); err != nil {
			_, names := ld.matcher()
			return errdefs.NotFound(fmt.Errorf("requested platform(s) ([%s]) not found: image %s is %s", names, name, platforms.FormatAll(img.Platform())))
		}
	}
	return nil
}

// Load reads an archive, extracting layers as they arrive (no copy of the
// archive is written), then records each image it describes. It reports
// "Loaded image: NAME" (or "Loaded image ID: ID") for each.
func (s *Store) Load(ctx context.Context, r io.Reader, progress Progress) error {
	return s.LoadPlatforms(ctx, r, progress, nil)
}

// LoadPlatforms is Load of the platforms wanted (docker load --platform):
// from an index, the image of the best of them rather than the engine's
// own; and every image of the archive must be of one of them, or nothing
// is recorded (Docker's error).
func (s *Store) LoadPlatforms(ctx context.Context, r io.Reader, progress Progress, want []ocispec.Platform) error {
	ld := &loader{s: s, meta: map[string][]byte{}, links: map[string]string{},
		layers: map[string]*layer.Ingestion{}, placed: map[string]digest.Digest{}, want: want}
	defer func() {
		for _, in := range ld.layers {
			in.Abort() // the committed ones ignore it
		}
	}()
	if err := ld.read(ctx, r); err != nil {
		return err
	}
	imgs, err := ld.describe()
	if err != nil {
		return err
	}
	if err := ld.checkPlatforms(imgs); err != nil {
		return err
	}
	var chains []digest.Digest
	defer func() { s.unpin(chains) }()
	// An image that fails after its layers were placed (a bad tag) leaves
	// none of them behind.
	fail := func(err error) error {
		s.unpin(chains)
		chains = nil
		s.collectLayers()
		return err
	}
	for _, am := range imgs {
		chain, raw, err := ld.place(ctx, am)
		chains = append(chains, chain...)
		if err != nil {
			return fail(err)
		}
		id, err := ld.record(am, raw)
		if err != nil {
			return fail(err)
		}
		if len(am.RepoTags) == 0 {
			s.notify(events.ActionLoad, id.String(), "")
			progress.send(Message{Stream: "Loaded image ID: " + id.String() + "\n"})
		}
		for _, t := range am.RepoTags {
			s.notify(events.ActionLoad, id.String(), t)
			progress.send(Message{Stream: "Loaded image: " + t + "\n"})
		}
	}
	return nil
}

func cleanArchivePath(name string) (string, error) {
	c := path.Clean(strings.TrimPrefix(name, "./"))
	if strings.HasPrefix(c, "/") || c == ".." || strings.HasPrefix(c, "../") {
		return "", errdefs.InvalidParameter(fmt.Errorf("invalid archive: entry %q leaves the archive", name))
	}
	return c, nil
}

func (ld *loader) read(ctx context.Context, r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("invalid archive: %w", err))
		}
		name, err := cleanArchivePath(hdr.Name)
		if err != nil {
			return err
		}
		switch hdr.Typeflag {
		case tar.TypeSymlink:
			// Old archives link repeated layers to their first copy.
			ld.links[name] = path.Join(path.Dir(name), hdr.Linkname)
			continue
		case tar.TypeReg:
		default:
			continue
		}
		br := bufio.NewReaderSize(tr, 512)
		first, _ := br.Peek(1)
		base := path.Base(name)
		isMeta := hdr.Size <= maxArchiveMeta && (len(first) == 0 || first[0] == '{' || first[0] == '[' ||
			base == "VERSION" || base == "repositories" || base == ocispec.ImageLayoutFile || strings.HasSuffix(name, ".json"))
		if isMeta {
			if ld.memUsed += hdr.Size; ld.memUsed > maxArchiveMemory {
				return errdefs.InvalidParameter(fmt.Errorf("invalid archive: more than %d bytes of metadata", maxArchiveMemory))
			}
			b, err := io.ReadAll(br)
			if err != nil {
				return fmt.Errorf("read archive: %w", err)
			}
			ld.meta[name] = b
			continue
		}
		in, err := ld.s.layers.Ingest("", "")
		if err != nil {
			return err
		}
		ld.layers[name] = in
		var blob digest.Digest
		if d, err := digest.Parse(strings.Replace(strings.TrimPrefix(name, "blobs/"), "/", ":", 1)); err == nil {
			blob = d // an OCI blob: its path is its digest
		}
		if err := in.Apply(ctx, br, blob, hdr.Size); err != nil {
			var he *layer.HostileError
			var de *layer.DigestError
			if errors.As(err, &he) || errors.As(err, &de) {
				err = errdefs.InvalidParameter(err)
			}
			return fmt.Errorf("load %s: %w", name, err)
		}
	}
}

func (ld *loader) resolve(p string) string {
	for i := 0; i < 10; i++ {
		t, ok := ld.links[p]
		if !ok {
			break
		}
		p = t
	}
	return p
}

// describe lists the archive's images, from manifest.json, or else from an
// OCI index (the platform this engine runs, when there are several).
func (ld *loader) describe() ([]archiveManifest, error) {
	if b, ok := ld.meta["manifest.json"]; ok {
		var ms []archiveManifest
		if err := json.Unmarshal(b, &ms); err != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid archive: manifest.json: %w", err))
		}
		return ms, nil
	}
	b, ok := ld.meta["index.json"]
	if !ok {
		return nil, errdefs.InvalidParameter(errors.New("invalid archive: it has neither manifest.json nor index.json"))
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid archive: index.json: %w", err))
	}
	var out []archiveManifest
	for _, d := range idx.Manifests {
		am, err := ld.fromDescriptor(d, 0)
		if err != nil {
			return nil, err
		}
		name := d.Annotations[annotationName]
		if name == "" {
			name = d.Annotations[ocispec.AnnotationRefName]
		}
		if n, err := reference.ParseNormalizedNamed(name); err == nil && name != "" {
			am.RepoTags = []string{reference.FamiliarString(reference.TagNameOnly(n))}
		}
		out = append(out, am)
	}
	return out, nil
}

func blobPathOf(d digest.Digest) string { return "blobs/" + d.Algorithm().String() + "/" + d.Encoded() }

func (ld *loader) fromDescriptor(d ocispec.Descriptor, depth int) (archiveManifest, error) {
	b, ok := ld.meta[blobPathOf(d.Digest)]
	if !ok || digest.FromBytes(b) != d.Digest {
		return archiveManifest{}, errdefs.InvalidParameter(fmt.Errorf("invalid archive: manifest %s missing or damaged", d.Digest))
	}
	if d.MediaType == ocispec.MediaTypeImageIndex || d.MediaType == "application/vnd.docker.distribution.manifest.list.v2+json" {
		if depth > 2 {
			return archiveManifest{}, errdefs.InvalidParameter(errors.New("invalid archive: indexes nested too deep"))
		}
		var idx ocispec.Index
		if err := json.Unmarshal(b, &idx); err != nil {
			return archiveManifest{}, errdefs.InvalidParameter(fmt.Errorf("invalid archive: index %s: %w", d.Digest, err))
		}
		want, wantName := ld.matcher()
		var candidates []ocispec.Descriptor
		for _, m := range idx.Manifests {
			if m.Platform != nil && want.Match(*m.Platform) {
				if _, ok := ld.meta[blobPathOf(m.Digest)]; ok {
					candidates = append(candidates, m)
				}
			}
		}
		if len(candidates) == 0 {
			if len(ld.want) > 0 {
				return archiveManifest{}, errdefs.NotFound(fmt.Errorf("requested platform(s) ([%s]) not found: archive index %s has no image for them", wantName, d.Digest))
			}
			return archiveManifest{}, errdefs.NotFound(fmt.Errorf("archive index %s has no image for %s", d.Digest, wantName))
		}
		best := candidates[0]
		for _, c := range candidates[1:] {
			if want.Less(*c.Platform, *best.Platform) {
				best = c
			}
		}
		return ld.fromDescriptor(best, depth+1)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return archiveManifest{}, errdefs.InvalidParameter(fmt.Errorf("invalid archive: manifest %s: %w", d.Digest, err))
	}
	am := archiveManifest{Config: blobPathOf(m.Config.Digest)}
	for _, l := range m.Layers {
		am.Layers = append(am.Layers, blobPathOf(l.Digest))
	}
	return am, nil
}

// place commits the image's layers in order, returning the chain and the
// config to record: a delta image's target, rebuilt from its base.
func (ld *loader) place(ctx context.Context, am archiveManifest) ([]digest.Digest, []byte, error) {
	cfgPath := ld.resolve(am.Config)
	raw, ok := ld.meta[cfgPath]
	if !ok {
		return nil, nil, errdefs.InvalidParameter(fmt.Errorf("invalid archive: config %s missing", am.Config))
	}
	if want, err := digest.Parse("sha256:" + strings.TrimSuffix(path.Base(cfgPath), ".json")); err == nil && digest.FromBytes(raw) != want {
		return nil, nil, errdefs.InvalidParameter(fmt.Errorf("invalid archive: config %s does not match its digest", am.Config))
	}
	var cfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, nil, errdefs.InvalidParameter(fmt.Errorf("invalid archive: config %s: %w", am.Config, err))
	}
	diffIDs := cfg.RootFS.DiffIDs
	if len(diffIDs) != len(am.Layers) {
		return nil, nil, errdefs.InvalidParameter(fmt.Errorf("invalid archive: config %s lists %d layers, the manifest %d", am.Config, len(diffIDs), len(am.Layers)))
	}
	if info, isDelta, err := deltaOf(cfg); isDelta {
		if err != nil {
			return nil, nil, err
		}
		return ld.placeDelta(ctx, am, diffIDs, info)
	}
	chain := chainIDs(diffIDs)
	ld.s.pin(chain)
	for i := range am.Layers {
		if _, err := ld.s.layers.Get(chain[i]); err == nil {
			continue
		}
		lp, in, err := ld.extracted(am, i, diffIDs[i])
		if err != nil {
			return chain, nil, err
		}
		if c, used := ld.placed[lp]; used && c != chain[i] {
			return chain, nil, errdefs.NotImplemented(fmt.Errorf("archive uses layer %s at two places in different chains, which balena-engine does not load", lp))
		}
		var parent digest.Digest
		if i > 0 {
			parent = chain[i-1]
		}
		in.SetParent(parent)
		if _, err := in.Commit(); err != nil {
			return chain, nil, err
		}
		ld.placed[lp] = chain[i]
	}
	return chain, raw, nil
}

// extracted is the ingestion of the image's layer i, which must have the
// diffID the config gives it, and its path in the archive.
func (ld *loader) extracted(am archiveManifest, i int, diffID digest.Digest) (string, *layer.Ingestion, error) {
	lp := ld.resolve(am.Layers[i])
	in, ok := ld.layers[lp]
	if !ok {
		return lp, nil, errdefs.InvalidParameter(fmt.Errorf("invalid archive: layer %s missing", am.Layers[i]))
	}
	if in.DiffID() != diffID {
		return lp, nil, errdefs.InvalidParameter(fmt.Errorf("invalid archive: layer %s has digest %s, the config expects %s", lp, in.DiffID(), diffID))
	}
	return lp, in, nil
}

// placeDelta rebuilds a delta image's target from its base and the delta
// layers the archive brought (extracted, not committed).
func (ld *loader) placeDelta(ctx context.Context, am archiveManifest, diffIDs []digest.Digest, info delta.Info) ([]digest.Digest, []byte, error) {
	t, done, err := ld.s.openDelta(info, len(am.Layers))
	if err != nil || done {
		return nil, info.Target, err
	}
	fetch := func(_ context.Context, i int) (*layer.Ingestion, func(), error) {
		_, in, err := ld.extracted(am, i, diffIDs[i])
		return in, func() {}, err
	}
	// Pinned until the image is recorded, as the layers of any image.
	ld.s.pin(t.chain)
	if err := ld.s.applyDelta(ctx, t, fetch, nil); err != nil {
		return t.chain, nil, err
	}
	return t.chain, info.Target, nil
}

func (ld *loader) record(am archiveManifest, raw []byte) (digest.Digest, error) {
	id := digest.FromBytes(raw)
	var tags []string
	for _, t := range am.RepoTags {
		nt, err := ParseTag(t)
		if err != nil {
			return "", err
		}
		tags = append(tags, nt.String())
	}
	return id, ld.s.db.Update(func(tx *bolt.Tx) error {
		images := tx.Bucket(bucketImages)
		if images.Get([]byte(id)) == nil {
			v, _ := json.Marshal(record{Config: raw, Added: time.Now().UTC()})
			if err := images.Put([]byte(id), v); err != nil {
				return err
			}
		}
		for _, t := range tags {
			if err := tx.Bucket(bucketTags).Put([]byte(t), []byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
}
