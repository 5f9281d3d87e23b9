package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// OpenBlob returns a reader for a blob. A broken or stalled transfer is
// resumed with an HTTP Range request after a capped exponential backoff;
// it gives up after MaxAttempts tries in a row that brought no data, or
// when ctx ends. The caller checks the digest (the layer store does as it
// extracts), so a resumed stream is verified like any other.
func (r *Repository) OpenBlob(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	b := &blobReader{r: r, ctx: ctx, desc: desc}
	if err := b.open(); err != nil {
		return nil, err
	}
	return b, nil
}

type blobReader struct {
	r    *Repository
	ctx  context.Context
	desc ocispec.Descriptor

	mu     sync.Mutex // guards body and cancel against the stall timer
	body   io.ReadCloser
	cancel context.CancelFunc
	stall  *time.Timer

	off      int64 // bytes delivered
	failures int   // failed tries in a row without progress
	err      error // sticky
}

// retryable says whether an error may pass with another try.
func retryable(err error) bool {
	switch errdefs.KindOf(err) {
	case errdefs.KindNotFound, errdefs.KindUnauthorized, errdefs.KindInvalidParameter, errdefs.KindNotImplemented:
		return false
	}
	var re *Error
	if errors.As(err, &re) && re.Status < 500 && re.Status != http.StatusTooManyRequests {
		return false
	}
	return true
}

func (b *blobReader) backoff() error {
	d := b.r.c.opts.BackoffBase << min(b.failures-1, 20)
	if d > b.r.c.opts.BackoffMax || d <= 0 {
		d = b.r.c.opts.BackoffMax
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-b.ctx.Done():
		return b.ctx.Err()
	case <-t.C:
		return nil
	}
}

// open (re)starts the transfer at b.off.
func (b *blobReader) open() error {
	for {
		rctx, cancel := context.WithCancel(b.ctx)
		hdr := http.Header{}
		if b.off > 0 {
			hdr.Set("Range", fmt.Sprintf("bytes=%d-", b.off))
		}
		resp, err := b.r.do(rctx, request{method: http.MethodGet, path: "/blobs/" + b.desc.Digest.String(),
			header: hdr, mirrors: true})
		if err == nil && b.off > 0 && resp.StatusCode == http.StatusOK {
			// The server ignored the range: skip what we already have.
			if _, err = io.CopyN(io.Discard, resp.Body, b.off); err != nil {
				resp.Body.Close()
			}
		}
		if err == nil {
			b.mu.Lock()
			b.body, b.cancel = resp.Body, cancel
			b.stall = time.AfterFunc(b.r.c.opts.StallTimeout, cancel)
			b.mu.Unlock()
			return nil
		}
		cancel()
		if b.ctx.Err() != nil {
			return b.ctx.Err()
		}
		b.failures++
		if errdefs.KindOf(err) == errdefs.KindNotFound {
			return errdefs.NotFound(fmt.Errorf("blob %s not found in %s: %w", b.desc.Digest, b.r.Named.Name(), err))
		}
		if !retryable(err) || b.failures >= b.r.c.opts.MaxAttempts {
			return fmt.Errorf("fetch blob %s (after %d attempts): %w", b.desc.Digest, b.failures, err)
		}
		if err := b.backoff(); err != nil {
			return err
		}
	}
}

func (b *blobReader) closeBody() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stall != nil {
		b.stall.Stop()
	}
	if b.body != nil {
		b.body.Close()
		b.cancel()
		b.body = nil
	}
}

func (b *blobReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	for {
		if b.desc.Size > 0 && b.off >= b.desc.Size {
			return 0, b.end()
		}
		if b.desc.Size > 0 && int64(len(p)) > b.desc.Size-b.off {
			p = p[:b.desc.Size-b.off]
		}
		if b.body == nil {
			if err := b.open(); err != nil {
				b.err = err
				return 0, err
			}
		}
		n, err := b.body.Read(p)
		if n > 0 {
			b.off += int64(n)
			b.failures = 0
			b.stall.Reset(b.r.c.opts.StallTimeout)
		}
		if err == nil {
			return n, nil
		}
		if err == io.EOF && (b.desc.Size <= 0 || b.off >= b.desc.Size) {
			b.closeBody()
			b.err = io.EOF
			return n, io.EOF
		}
		// Broken, stalled (the timer cancelled the request) or short:
		// resume from b.off.
		b.closeBody()
		if b.ctx.Err() != nil {
			b.err = b.ctx.Err()
			return n, b.err
		}
		if n == 0 {
			b.failures++
		}
		if b.failures >= b.r.c.opts.MaxAttempts {
			b.err = fmt.Errorf("fetch blob %s: %w (giving up after %d attempts at byte %d)", b.desc.Digest, err, b.failures, b.off)
			return n, b.err
		}
		if n > 0 {
			return n, nil // hand over what arrived; resume on the next Read
		}
		if err := b.backoff(); err != nil {
			b.err = err
			return 0, err
		}
	}
}

// end checks, once the declared size is in, that the stream stops there:
// a registry (or a proxy) that goes on is refused, rather than read for as
// long as it sends.
func (b *blobReader) end() error {
	b.err = io.EOF
	if b.body != nil {
		var one [1]byte
		for {
			n, err := b.body.Read(one[:])
			if n > 0 {
				b.err = fmt.Errorf("fetch blob %s: longer than its declared size of %d bytes", b.desc.Digest, b.desc.Size)
				break
			}
			if err != nil {
				break // the end, or a break after it: every byte declared is in
			}
		}
	}
	b.closeBody()
	return b.err
}

func (b *blobReader) Close() error {
	b.closeBody()
	if b.err == nil {
		b.err = errors.New("blob reader closed")
	}
	return nil
}
