package api

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/balena-os/balena-engine/src/container"
)

func TestSameOrigin(t *testing.T) {
	for _, tc := range []struct {
		origin, host string
		ok           bool
	}{
		{"", "engine", true}, // not a browser
		{"http://engine", "engine", true},
		{"http://engine:80", "engine", true},
		{"https://engine", "engine:443", true},
		{"http://Engine:2375", "engine:2375", true},
		{"http://[::1]", "[::1]:80", true},
		{"http://evil.example", "engine", false},
		{"http://engine:8080", "engine", false},
		{"https://engine", "engine", false}, // 443 is not 80
		{"null", "engine", false},           // a sandboxed page or a file
		{"file://", "engine", false},
	} {
		r, _ := http.NewRequest("GET", "http://"+tc.host+"/containers/x/attach/ws", nil)
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if err := sameOrigin(r); (err == nil) != tc.ok {
			t.Errorf("origin %q, host %q: %v, want ok %v", tc.origin, tc.host, err, tc.ok)
		}
	}
}

// A page of another origin gets 403 before anything of the container is
// touched.
func TestAttachWSCrossOrigin(t *testing.T) {
	s := New(Config{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Containers: &container.Manager{}})
	ts := httptest.NewServer(s)
	defer ts.Close()
	req, _ := http.NewRequest("GET", ts.URL+"/v1.45/containers/x/attach/ws?stream=1&stdin=1", nil)
	req.Header.Set("Origin", "http://evil.example")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 512)
	n, _ := resp.Body.Read(buf)
	b.Write(buf[:n])
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(b.String(), "cross-origin") {
		t.Errorf("cross-origin attach: %d %s", resp.StatusCode, b.String())
	}
}
