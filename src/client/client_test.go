package client

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/balena-os/balena-engine/src/api"
	"github.com/balena-os/balena-engine/src/apiversion"
	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/version"
)

// serve runs handler on a unix socket and returns a client for it.
func serve(t *testing.T, handler http.Handler) *Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	c, err := New("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestAgainstOwnServer(t *testing.T) {
	c := serve(t, api.New(api.Config{
		Version: version.Info{Version: "1.0.0", OS: "linux", Arch: "amd64"},
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}))
	ctx := context.Background()
	v, err := c.ServerVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != "1.0.0" || v.APIVersion != apiversion.Max {
		t.Errorf("ServerVersion = %+v", v)
	}
	_, err = c.Do(ctx, "GET", "/containers/json", nil, nil)
	if errdefs.KindOf(err) != errdefs.KindNotImplemented || !strings.HasPrefix(err.Error(), "Error response from daemon: not implemented") {
		t.Errorf("GET /containers/json: err = %v (kind %v)", err, errdefs.KindOf(err))
	}
}

func TestNegotiatesDown(t *testing.T) {
	var paths []string
	c := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		w.Header().Set("Api-Version", "1.41")
		w.Write([]byte(`{"Version":"old"}`))
	}))
	if _, err := c.ServerVersion(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(paths) != 2 || paths[0] != "/_ping" || paths[1] != "/v1.41/version" {
		t.Errorf("requests = %v, want /_ping then /v1.41/version", paths)
	}
}

func TestConnectError(t *testing.T) {
	c, err := New("unix://" + filepath.Join(t.TempDir(), "nobody.sock"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ServerVersion(context.Background())
	var ce *ConnectError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "Is the balena-engine daemon running?") {
		t.Errorf("err = %v, want a ConnectError", err)
	}
}

func TestNewRejectsBadHosts(t *testing.T) {
	for _, h := range []string{"", "/var/run/x.sock", "ssh://host", "unix://"} {
		if _, err := New(h); err == nil {
			t.Errorf("New(%q) accepted", h)
		}
	}
}
