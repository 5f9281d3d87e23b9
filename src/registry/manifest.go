package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types of manifests and indexes, Docker's and OCI's.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	maxManifestSize             = 4 << 20
)

var acceptManifests = strings.Join([]string{
	ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
	MediaTypeDockerManifest, MediaTypeDockerManifestList,
}, ", ")

func isIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == MediaTypeDockerManifestList
}

func isManifest(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == MediaTypeDockerManifest
}

// GetManifest fetches a manifest or index by tag or digest. The content is
// checked against the digest when ref is one; the descriptor returned
// carries the digest of the bytes received.
func (r *Repository) GetManifest(ctx context.Context, ref string) (ocispec.Descriptor, []byte, error) {
	resp, err := r.do(ctx, request{method: http.MethodGet, path: "/manifests/" + ref,
		header: http.Header{"Accept": {acceptManifests}}, mirrors: true})
	if err != nil {
		if errdefs.KindOf(err) == errdefs.KindNotFound {
			return ocispec.Descriptor{}, nil, errdefs.NotFound(fmt.Errorf("manifest for %s:%s not found: manifest unknown", r.Named.Name(), ref))
		}
		return ocispec.Descriptor{}, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("read manifest %s: %w", ref, err)
	}
	if len(b) > maxManifestSize {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s is larger than %d bytes", ref, maxManifestSize)
	}
	mt := resp.Header.Get("Content-Type")
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = strings.TrimSpace(mt[:i])
	}
	// Registries sometimes answer with a generic type: trust the document's own.
	var probe struct {
		MediaType     string          `json:"mediaType"`
		SchemaVersion int             `json:"schemaVersion"`
		Manifests     json.RawMessage `json:"manifests"`
		Config        json.RawMessage `json:"config"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s: %w", ref, err)
	}
	if probe.MediaType != "" {
		mt = probe.MediaType
	} else if !isIndex(mt) && !isManifest(mt) {
		switch {
		case probe.Manifests != nil:
			mt = ocispec.MediaTypeImageIndex
		case probe.Config != nil:
			mt = ocispec.MediaTypeImageManifest
		}
	}
	if probe.SchemaVersion == 1 {
		return ocispec.Descriptor{}, nil, errdefs.NotImplemented(fmt.Errorf("manifest %s uses Docker's schema 1, which balena-engine does not support", ref))
	}
	if !isIndex(mt) && !isManifest(mt) {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s has unsupported media type %q", ref, mt)
	}
	got := digest.FromBytes(b)
	if d, err := digest.Parse(ref); err == nil && d != got {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s: content digest mismatch: got %s", ref, got)
	}
	return ocispec.Descriptor{MediaType: mt, Digest: got, Size: int64(len(b))}, b, nil
}

// Resolved is an image manifest chosen for a platform.
type Resolved struct {
	// Digest is what the reference resolved to: an index's digest for a
	// multi-platform image (Docker records this one as the repo digest).
	Digest   digest.Digest
	Desc     ocispec.Descriptor // the image manifest's descriptor
	Manifest ocispec.Manifest
	Raw      []byte
	Platform *ocispec.Platform // from the index, when there was one
}

// Resolve fetches ref (a tagged or digested reference in this repository)
// and, for an index, picks the manifest that suits the platform matcher
// best, with Docker's fallbacks (arm/v7 runs v6 and v5, arm64 runs arm...).
func (r *Repository) Resolve(ctx context.Context, ref reference.Named, want platforms.MatchComparer, wantName string) (Resolved, error) {
	tag := "latest"
	if d, ok := ref.(reference.Digested); ok {
		tag = d.Digest().String()
	} else if t, ok := ref.(reference.Tagged); ok {
		tag = t.Tag()
	}
	desc, raw, err := r.GetManifest(ctx, tag)
	if err != nil {
		return Resolved{}, err
	}
	res := Resolved{Digest: desc.Digest}
	if isIndex(desc.MediaType) {
		var idx ocispec.Index
		if err := json.Unmarshal(raw, &idx); err != nil {
			return Resolved{}, fmt.Errorf("index %s: %w", desc.Digest, err)
		}
		chosen, err := SelectPlatform(idx, want, wantName)
		if err != nil {
			return Resolved{}, err
		}
		res.Platform = chosen.Platform
		mdesc, mraw, err := r.GetManifest(ctx, chosen.Digest.String())
		if err != nil {
			return Resolved{}, err
		}
		if !isManifest(mdesc.MediaType) {
			return Resolved{}, fmt.Errorf("index %s points at %s, which is not an image manifest", desc.Digest, chosen.Digest)
		}
		desc, raw = mdesc, mraw
	}
	if err := json.Unmarshal(raw, &res.Manifest); err != nil {
		return Resolved{}, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	for _, l := range res.Manifest.Layers {
		if l.MediaType == MediaTypeDockerForeignLayer || strings.Contains(l.MediaType, ".nondistributable.") {
			return Resolved{}, errdefs.NotImplemented(fmt.Errorf("image %s has foreign layers, which balena-engine does not fetch", ref))
		}
		if err := l.Digest.Validate(); err != nil {
			return Resolved{}, fmt.Errorf("manifest %s: layer digest: %w", desc.Digest, err)
		}
	}
	if err := res.Manifest.Config.Digest.Validate(); err != nil {
		return Resolved{}, fmt.Errorf("manifest %s: config digest: %w", desc.Digest, err)
	}
	res.Desc, res.Raw = desc, raw
	return res, nil
}

// SelectPlatform picks the index entry best matching want. name is the
// platform as a user would write it, for the error message.
func SelectPlatform(idx ocispec.Index, want platforms.MatchComparer, name string) (ocispec.Descriptor, error) {
	var cands []ocispec.Descriptor
	for _, m := range idx.Manifests {
		if m.Platform == nil || !isManifest(m.MediaType) && m.MediaType != "" {
			continue // attestations and nested indexes carry no platform we run
		}
		if want.Match(*m.Platform) {
			cands = append(cands, m)
		}
	}
	if len(cands) == 0 {
		return ocispec.Descriptor{}, errdefs.NotFound(fmt.Errorf("no matching manifest for %s in the manifest list entries", name))
	}
	sort.SliceStable(cands, func(i, j int) bool { return want.Less(*cands[i].Platform, *cands[j].Platform) })
	return cands[0], nil
}

// GetConfig fetches and checks an image config blob.
func (r *Repository) GetConfig(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
	if desc.Size > maxManifestSize {
		return nil, fmt.Errorf("image config %s is larger than %d bytes", desc.Digest, maxManifestSize)
	}
	rc, err := r.OpenBlob(ctx, desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("image config %s: %w", desc.Digest, err)
	}
	if got := digest.FromBytes(b); got != desc.Digest {
		return nil, fmt.Errorf("image config: digest mismatch: expected %s, got %s", desc.Digest, got)
	}
	return b, nil
}

// Describe fetches what ref resolves to and the platforms it offers: each
// entry of an index, or the platform of a single manifest's config.
func (r *Repository) Describe(ctx context.Context, ref reference.Named) (ocispec.Descriptor, []ocispec.Platform, error) {
	tag := "latest"
	if d, ok := ref.(reference.Digested); ok {
		tag = d.Digest().String()
	} else if t, ok := ref.(reference.Tagged); ok {
		tag = t.Tag()
	}
	desc, raw, err := r.GetManifest(ctx, tag)
	if err != nil {
		return desc, nil, err
	}
	var out []ocispec.Platform
	if isIndex(desc.MediaType) {
		var idx ocispec.Index
		if err := json.Unmarshal(raw, &idx); err != nil {
			return desc, nil, fmt.Errorf("index %s: %w", desc.Digest, err)
		}
		for _, m := range idx.Manifests {
			if m.Platform != nil && m.Platform.OS != "unknown" {
				out = append(out, *m.Platform)
			}
		}
		return desc, out, nil
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return desc, nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	cfg, err := r.GetConfig(ctx, m.Config)
	if err != nil {
		return desc, nil, err
	}
	var p ocispec.Platform
	if err := json.Unmarshal(cfg, &p); err == nil && p.Architecture != "" {
		out = append(out, ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant})
	}
	return desc, out, nil
}
