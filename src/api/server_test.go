package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/balena-os/balena-engine/src/apiversion"
	"github.com/balena-os/balena-engine/src/version"
	"github.com/moby/moby/api/types/system"
)

func testServer(t *testing.T) *httptest.Server {
	t.Helper()
	s := New(Config{
		Version:       version.Info{Version: "9.9.9", GitCommit: "c0ffee", GoVersion: "go1.26", OS: "linux", Arch: "arm", Variant: "v7"},
		KernelVersion: "6.1.0-test",
		Log:           slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts
}

func do(t *testing.T, ts *httptest.Server, method, path string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestPing(t *testing.T) {
	ts := testServer(t)
	for _, path := range []string{"/_ping", "/v1.24/_ping", "/v1.56/_ping"} {
		resp, body := do(t, ts, "GET", path)
		if resp.StatusCode != 200 || body != "OK" {
			t.Errorf("GET %s = %d %q, want 200 OK", path, resp.StatusCode, body)
		}
		if got := resp.Header.Get("Api-Version"); got != apiversion.Max {
			t.Errorf("GET %s: Api-Version = %q, want %q", path, got, apiversion.Max)
		}
		if got := resp.Header.Get("Ostype"); got != "linux" {
			t.Errorf("GET %s: Ostype = %q", path, got)
		}
	}
	resp, body := do(t, ts, "HEAD", "/_ping")
	if resp.StatusCode != 200 || body != "" || resp.Header.Get("Api-Version") != apiversion.Max {
		t.Errorf("HEAD /_ping = %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

func TestVersion(t *testing.T) {
	ts := testServer(t)
	resp, body := do(t, ts, "GET", "/v1.44/version")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var v system.VersionResponse
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	if v.Version != "9.9.9" || v.APIVersion != apiversion.Max || v.MinAPIVersion != apiversion.Min ||
		v.GitCommit != "c0ffee" || v.Arch != "arm" || v.KernelVersion != "6.1.0-test" {
		t.Errorf("unexpected version response: %+v", v)
	}
	if len(v.Components) != 1 || v.Components[0].Name != "Engine" || v.Components[0].Details["ApiVersion"] != apiversion.Max {
		t.Errorf("unexpected components: %+v", v.Components)
	}
	// balenaEngine's field, by which balena's docker-progress knows it.
	var engine struct{ Engine string }
	if json.Unmarshal([]byte(body), &engine); engine.Engine != "balena-engine" {
		t.Errorf("Engine = %q, want balena-engine", engine.Engine)
	}
}

func TestErrors(t *testing.T) {
	ts := testServer(t)
	cases := []struct {
		method, path string
		code         int
		msg          string
	}{
		{"GET", "/v1.23/version", 400, "client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"},
		{"GET", "/v1.57/version", 400, "client version 1.57 is too new. Maximum supported API version is 1.56"},
		{"GET", "/v2.0/_ping", 400, "client version 2.0 is too new"},
		{"GET", "/nonsense", 404, "page not found"},
		{"GET", "/vx.1/_ping", 404, "page not found"},
		{"POST", "/_ping", 404, "page not found"},
		{"DELETE", "/version", 404, "page not found"},
		{"GET", "/v1.50/containers/json", 501, "not implemented: balena-engine does not serve GET /containers/json yet"},
		{"POST", "/images/create", 501, "not implemented"},
		{"GET", "/v1.44/swarm", 501, "balena-engine does not support swarm mode"},
		{"POST", "/build", 501, "no BuildKit"},
		{"GET", "/plugins/foo/json", 404, `plugin "foo" not found`},
		{"POST", "/plugins/pull", 501, "does not support plugins"},
	}
	for _, c := range cases {
		resp, body := do(t, ts, c.method, c.path)
		if resp.StatusCode != c.code {
			t.Errorf("%s %s = %d, want %d (%s)", c.method, c.path, resp.StatusCode, c.code, body)
			continue
		}
		var e struct{ Message string }
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			t.Errorf("%s %s: error body is not Docker's JSON: %q", c.method, c.path, body)
			continue
		}
		if !strings.Contains(e.Message, c.msg) {
			t.Errorf("%s %s: message %q does not contain %q", c.method, c.path, e.Message, c.msg)
		}
	}
	// No plugin is installed: an empty list, not an error.
	if resp, body := do(t, ts, "GET", "/plugins"); resp.StatusCode != 200 || strings.TrimSpace(body) != "[]" {
		t.Errorf("GET /plugins = %d %q", resp.StatusCode, body)
	}
}

func TestSplitVersion(t *testing.T) {
	cases := []struct{ in, ver, rest string }{
		{"/v1.44/version", "1.44", "/version"},
		{"/version", "", "/version"},
		{"/v1.44", "", "/v1.44"},
		{"/v/_ping", "", "/v/_ping"},
		{"/volumes/x", "", "/volumes/x"},
		{"/v1.44/images/library/busybox/json", "1.44", "/images/library/busybox/json"},
	}
	for _, c := range cases {
		ver, rest := splitVersion(c.in)
		if ver != c.ver || rest != c.rest {
			t.Errorf("splitVersion(%q) = %q, %q; want %q, %q", c.in, ver, rest, c.ver, c.rest)
		}
	}
}
