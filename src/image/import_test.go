package image

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/balena-os/balena-engine/src/errdefs"
)

// An import from a URL reads no more than its bound, whether the server
// declares a length or streams without end.
func TestOpenImportURLBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		chunk := strings.Repeat("x", 100)
		if r.URL.Path == "/declared" {
			w.Header().Set("Content-Length", strconv.Itoa(n))
			io.WriteString(w, strings.Repeat("x", n))
			return
		}
		for i := 0; n == 0 || i < n; i += len(chunk) { // n == 0: without end
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	const limit = 1000

	if _, err := OpenImportURL(ctx, srv.URL+"/declared?n=1001", limit); errdefs.KindOf(err) != errdefs.KindInvalidParameter ||
		!strings.Contains(err.Error(), "larger than the 1000 bytes allowed") {
		t.Errorf("declared length over the bound: %v", err)
	}
	for _, path := range []string{"/declared?n=1000", "/streamed?n=1000"} {
		rc, err := OpenImportURL(ctx, srv.URL+path, limit)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || len(b) != limit {
			t.Errorf("%s, at the bound: %d bytes, %v", path, len(b), err)
		}
	}
	rc, err := OpenImportURL(ctx, srv.URL+"/endless", limit)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if errdefs.KindOf(err) != errdefs.KindInvalidParameter || !strings.Contains(err.Error(), "larger than the 1000 bytes allowed") {
		t.Errorf("endless source: %v", err)
	}
	if len(b) > limit {
		t.Errorf("read %d bytes past a bound of %d", len(b), limit)
	}
}
