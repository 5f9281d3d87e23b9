package registry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// A blob stream that goes on past its declared size is refused once that
// size is in, not read for as long as the registry sends.
func TestBlobLongerThanDeclared(t *testing.T) {
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, "/blobs/") {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		chunk := []byte(strings.Repeat("z", 32<<10))
		for sent.Load() < 1<<30 { // endless, as far as the client can tell
			n, err := w.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	c, _ := New(fastOptions())
	r := repo(t, c, strings.TrimPrefix(srv.URL, "http://")+"/lib/app", nil)
	const size = 100 << 10
	body := []byte(strings.Repeat("z", size))
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(body), Size: size}

	rc, err := r.OpenBlob(context.Background(), desc)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, rc)
	rc.Close()
	if err == nil || !strings.Contains(err.Error(), "longer than its declared size of 102400 bytes") {
		t.Errorf("read %d bytes, err %v", n, err)
	}
	if n != size {
		t.Errorf("handed over %d bytes of a blob declared as %d", n, size)
	}
	srv.CloseClientConnections()
	if s := sent.Load(); s > 16<<20 {
		t.Errorf("the registry could send %d MiB", s>>20)
	}

	// The declared size exactly: read whole.
	exact := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(body)
	}))
	defer exact.Close()
	r = repo(t, c, strings.TrimPrefix(exact.URL, "http://")+"/lib/app", nil)
	if got, err := readBlob(t, r, desc); err != nil || len(got) != size {
		t.Errorf("a blob of its declared size: %d bytes, %v", len(got), err)
	}
}
