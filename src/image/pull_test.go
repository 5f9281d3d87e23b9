package image

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// A manifest of thousands of layers starts a transfer per allowed
// concurrent one, not a goroutine per layer up front.
func TestPullManyLayersBoundedGoroutines(t *testing.T) {
	e := openEnv(t, t.TempDir(), nil)
	fetching := make(chan struct{}, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, "/blobs/") {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		fetching <- struct{}{}
		<-r.Context().Done() // held until the pull is cancelled
	}))
	defer srv.Close()
	defer srv.CloseClientConnections()
	n, err := reference.ParseNormalizedNamed(strings.TrimPrefix(srv.URL, "http://") + "/many/layers")
	if err != nil {
		t.Fatal(err)
	}
	repo := e.client.Repository(n, nil)

	const layers = 5000
	descs := make([]ocispec.Descriptor, layers)
	diffIDs := make([]digest.Digest, layers)
	for i := range descs {
		descs[i] = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString(fmt.Sprint("blob", i)), Size: 100}
		diffIDs[i] = digest.FromString(fmt.Sprint("diff", i))
	}
	runtime.GC()
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := e.images.fetchLayers(ctx, repo, descs, diffIDs, chainIDs(diffIDs), PullOptions{MaxConcurrent: 3})
		done <- err
	}()
	for i := 0; i < 3; i++ {
		select {
		case <-fetching:
		case err := <-done:
			t.Fatalf("the pull ended before its transfers began: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d transfers began, want 3", i)
		}
	}
	grew := runtime.NumGoroutine() - before
	t.Logf("%d layers, 3 transfers at once: %d more goroutines", layers, grew)
	if grew > 100 {
		t.Errorf("%d goroutines for 3 transfers of a %d-layer image", grew, layers)
	}
	select {
	case <-fetching:
		t.Error("a fourth transfer began")
	default:
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled pull: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled pull did not end")
	}
}
