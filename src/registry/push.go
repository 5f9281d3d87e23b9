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
