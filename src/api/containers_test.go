package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	containertypes "github.com/moby/moby/api/types/container"
	networktypes "github.com/moby/moby/api/types/network"
)

// request sends a request to s, the path with its version prefix if any.
func request(s *Server, method, path, body string) (int, []byte) {
	req := httptest.NewRequest(method, path, bytes.NewReader([]byte(body)))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w.Code, w.Body.Bytes()
}

// limit=N lists the N most recently created containers, whatever their
// state, as Docker does (docker ps -l sends limit=1, -n N limit=N).
func TestContainerListLimit(t *testing.T) {
	s, _ := fuzzServer(t) // one created container, "target"
	for _, name := range []string{"second", "third"} {
		if code, body := call(s, "/containers/create?name="+name, []byte(`{"Image":"busybox","HostConfig":{"NetworkMode":"none"}}`)); code != http.StatusCreated {
			t.Fatalf("create %s: %d %s", name, code, body)
		}
	}
	names := func(query string) string {
		t.Helper()
		code, body := request(s, "GET", "/v1.41/containers/json"+query, "")
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", query, code, body)
		}
		var list []struct{ Names []string }
		if err := json.Unmarshal(body, &list); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range list {
			out = append(out, strings.Join(c.Names, ","))
		}
		return strings.Join(out, " ")
	}
	for query, want := range map[string]string{
		"":                "", // none is running
		"?all=1":          "/third /second /target",
		"?limit=1":        "/third",
		"?limit=2":        "/third /second",
		"?limit=2&all=1":  "/third /second",
		"?limit=9":        "/third /second /target",
		"?limit=0":        "",
		"?limit=-1&all=1": "/third /second /target",
		"?limit=1&filters=" + `%7B%22name%22%3A%5B%22second%22%5D%7D`: "/second",
	} {
		if got := names(query); got != want {
			t.Errorf("GET /containers/json%s: %q, want %q", query, got, want)
		}
	}
	if code, body := request(s, "GET", "/v1.41/containers/json?limit=x", ""); code != http.StatusBadRequest {
		t.Errorf("limit=x: %d %s, want 400", code, body)
	}
}

// size=1 adds SizeRw and SizeRootFs (the image's size and the writable
// layer's) to a container's listing and inspect, as Docker does (docker
// ps -s, inspect -s); without it they are left out.
func TestContainerSizes(t *testing.T) {
	s, _ := fuzzServer(t)
	imgSize := func() float64 {
		_, body := request(s, "GET", "/v1.41/images/busybox/json", "")
		var img struct{ Size float64 }
		json.Unmarshal(body, &img)
		return img.Size
	}()
	if imgSize <= 0 {
		t.Fatalf("the image's size: %v", imgSize)
	}
	for _, path := range []string{"/v1.41/containers/json?all=1", "/v1.41/containers/target/json"} {
		for _, size := range []bool{false, true} {
			p := path
			if size {
				p += map[bool]string{true: "&", false: "?"}[strings.Contains(p, "?")] + "size=1"
			}
			code, body := request(s, "GET", p, "")
			if code != http.StatusOK {
				t.Fatalf("%s: %d %s", p, code, body)
			}
			var c map[string]any
			if body[0] == '[' {
				var list []map[string]any
				if err := json.Unmarshal(body, &list); err != nil || len(list) != 1 {
					t.Fatalf("%s: %v %s", p, err, body)
				}
				c = list[0]
			} else if err := json.Unmarshal(body, &c); err != nil {
				t.Fatal(err)
			}
			rw, hasRw := c["SizeRw"]
			rootfs, hasRootfs := c["SizeRootFs"]
			if !size {
				if hasRw || hasRootfs {
					t.Errorf("%s: SizeRw %v SizeRootFs %v, want neither", p, rw, rootfs)
				}
				continue
			}
			// A created container's writable layer is empty (a list's
			// SizeRw, as Docker's, omits a zero).
			if (rw != float64(0) && !(rw == nil && body[0] == '[')) || rootfs != imgSize {
				t.Errorf("%s: SizeRw %v SizeRootFs %v, want 0 and %v", p, rw, rootfs, imgSize)
			}
		}
	}
}

// Before API 1.45 Docker's inspect lists a container's short ID and host
// name among its aliases on user-defined networks (Compose 1.29 looks for
// the short ID); from 1.45 on it does not, nor on the predefined networks.
func TestLegacyAliases(t *testing.T) {
	id := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	settings := func() *containertypes.NetworkSettings {
		return &containertypes.NetworkSettings{Networks: map[string]*networktypes.EndpointSettings{
			"compat_app": {Aliases: []string{"web", "compat-web-1"}},
			"other":      {},
			"bridge":     {},
			"host":       {},
			"none":       nil,
		}}
	}
	for _, tc := range []struct {
		version, hostname string
		want              map[string][]string
	}{
		{"1.41", "", map[string][]string{"compat_app": {"web", "compat-web-1", "0123456789ab"}, "other": {"0123456789ab"}}},
		{"1.44", "box", map[string][]string{"compat_app": {"web", "compat-web-1", "0123456789ab", "box"}, "other": {"0123456789ab", "box"}}},
		{"1.44", "0123456789ab", map[string][]string{"compat_app": {"web", "compat-web-1", "0123456789ab"}, "other": {"0123456789ab"}}},
		{"1.45", "box", map[string][]string{"compat_app": {"web", "compat-web-1"}}},
	} {
		ns := settings()
		legacyAliases(ns, id, tc.hostname, tc.version)
		for name, ep := range ns.Networks {
			var got []string
			if ep != nil {
				got = ep.Aliases
			}
			if !slices.Equal(got, tc.want[name]) {
				t.Errorf("%s, hostname %q: %s's aliases %q, want %q", tc.version, tc.hostname, name, got, tc.want[name])
			}
		}
	}
	legacyAliases(nil, id, "", "1.41") // no settings: nothing to do
}

// Before API 1.52 a container's default bridge endpoint is repeated at the
// top of its NetworkSettings.
func TestLegacyNetworkSettingsBridge(t *testing.T) {
	var ep networktypes.EndpointSettings
	if err := json.Unmarshal([]byte(`{"EndpointID":"e1","Gateway":"172.17.0.1","IPAddress":"172.17.0.2","IPPrefixLen":16,`+
		`"MacAddress":"02:42:ac:11:00:02","GlobalIPv6Address":"fd00::2","GlobalIPv6PrefixLen":64,"IPv6Gateway":"fd00::1"}`), &ep); err != nil {
		t.Fatal(err)
	}
	ns := &containertypes.NetworkSettings{Networks: map[string]*networktypes.EndpointSettings{"bridge": &ep, "app": {EndpointID: "e2"}}}
	b, err := json.Marshal(legacyNetworkSettings{NetworkSettings: ns}.fill())
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"EndpointID": "e1", "Gateway": "172.17.0.1", "IPAddress": "172.17.0.2", "IPPrefixLen": float64(16),
		"MacAddress": "02:42:ac:11:00:02", "GlobalIPv6Address": "fd00::2", "GlobalIPv6PrefixLen": float64(64), "IPv6Gateway": "fd00::1", "Bridge": ""} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	if n, _ := got["Networks"].(map[string]any); len(n) != 2 {
		t.Errorf("Networks: %v", got["Networks"])
	}
}
