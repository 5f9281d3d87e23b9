package registry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// BlobExists asks the registry whether it has a blob.
func (r *Repository) BlobExists(ctx context.Context, d digest.Digest) (bool, error) {
	resp, err := r.do(ctx, request{method: http.MethodHead, path: "/blobs/" + d.String(), push: true})
	if errdefs.KindOf(err) == errdefs.KindNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return true, nil
}

// PushBlob uploads a blob in one request (the monolithic upload of the
// distribution protocol), unless the registry has it already. open returns
// the content; it may be called again if authentication replays the upload.
func (r *Repository) PushBlob(ctx context.Context, desc ocispec.Descriptor, open func() (io.ReadCloser, error)) error {
	if ok, err := r.BlobExists(ctx, desc.Digest); err != nil {
		return fmt.Errorf("push blob %s: %w", desc.Digest, err)
	} else if ok {
		return nil
	}
	resp, err := r.do(ctx, request{method: http.MethodPost, path: "/blobs/uploads/", push: true,
		body: func() (io.Reader, error) { return http.NoBody, nil }})
	if err != nil {
		return fmt.Errorf("push blob %s: start upload: %w", desc.Digest, err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		return fmt.Errorf("push blob %s: upload location: %w", desc.Digest, err)
	}
	q := loc.Query()
	q.Set("digest", desc.Digest.String())
	loc.RawQuery = q.Encode()
	var cur io.ReadCloser
	defer func() {
		if cur != nil {
			cur.Close()
		}
	}()
	resp, err = r.do(ctx, request{method: http.MethodPut, rawURL: loc.String(), push: true, length: desc.Size,
		header: http.Header{"Content-Type": {"application/octet-stream"}},
		body: func() (io.Reader, error) {
			if cur != nil {
				cur.Close()
			}
			cur, err = open()
			return cur, err
		}})
	if err != nil {
		return fmt.Errorf("push blob %s: %w", desc.Digest, err)
	}
	resp.Body.Close()
	return nil
}

// PushManifest uploads a manifest or index under ref (a tag or digest)
// and returns its digest.
func (r *Repository) PushManifest(ctx context.Context, ref, mediaType string, raw []byte) (digest.Digest, error) {
	resp, err := r.do(ctx, request{method: http.MethodPut, path: "/manifests/" + url.PathEscape(ref), push: true,
		length: int64(len(raw)), header: http.Header{"Content-Type": {mediaType}},
		body: func() (io.Reader, error) { return bytes.NewReader(raw), nil }})
	if err != nil {
		return "", fmt.Errorf("push manifest %s:%s: %w", r.Named.Name(), ref, err)
	}
	resp.Body.Close()
	return digest.FromBytes(raw), nil
}

// MountBlob asks the registry to link a blob it holds in another
// repository (from, a path on the same registry) into this one, so that it
// need not be uploaded. It reports whether the registry did.
func (r *Repository) MountBlob(ctx context.Context, d digest.Digest, from string) (bool, error) {
	q := url.Values{"mount": {d.String()}, "from": {from}}
	resp, err := r.do(ctx, request{method: http.MethodPost, path: "/blobs/uploads/?" + q.Encode(), push: true,
		body: func() (io.Reader, error) { return http.NoBody, nil }})
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusCreated {
		return true, nil
	}
	// 202: the registry opened an upload instead; leave it to expire.
	return false, nil
}

// PushBlobStream uploads a blob whose digest is not known in advance: the
// content streams to the registry in one PATCH while it is digested, and
// the final PUT names the digest. Nothing is written to disk.
func (r *Repository) PushBlobStream(ctx context.Context, content io.Reader) (ocispec.Descriptor, error) {
	resp, err := r.do(ctx, request{method: http.MethodPost, path: "/blobs/uploads/", push: true,
		body: func() (io.Reader, error) { return http.NoBody, nil }})
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("push blob: start upload: %w", err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("push blob: upload location: %w", err)
	}
	dg := digest.Canonical.Digester()
	counted := &countWriter{}
	tee := io.TeeReader(content, io.MultiWriter(dg.Hash(), counted))
	used := false
	resp, err = r.do(ctx, request{method: http.MethodPatch, rawURL: loc.String(), push: true, length: -1,
		header: http.Header{"Content-Type": {"application/octet-stream"}},
		body: func() (io.Reader, error) {
			if used {
				return nil, fmt.Errorf("push blob: the registry asked to send the stream again")
			}
			used = true
			return tee, nil
		}})
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("push blob: upload: %w", err)
	}
	resp.Body.Close()
	if loc, err = resp.Location(); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("push blob: upload location: %w", err)
	}
	desc := ocispec.Descriptor{Digest: dg.Digest(), Size: counted.n}
	q := loc.Query()
	q.Set("digest", desc.Digest.String())
	loc.RawQuery = q.Encode()
	resp, err = r.do(ctx, request{method: http.MethodPut, rawURL: loc.String(), push: true, length: 0,
		body: func() (io.Reader, error) { return http.NoBody, nil }})
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("push blob %s: commit: %w", desc.Digest, err)
	}
	resp.Body.Close()
	return desc, nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}
