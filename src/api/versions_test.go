package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/balena-os/balena-engine/src/apiversion"
)

// What clients see change with the API version, checked at the oldest
// version served, a middle one and the newest: each field Docker sends
// only before (or from) some version.
func TestPerVersion(t *testing.T) {
	s, _ := fuzzServer(t)
	get := func(t *testing.T, path string, out any) {
		t.Helper()
		code, body := request(s, "GET", path, "")
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", path, code, body)
		}
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s: %v: %s", path, err, body)
		}
	}
	// has fails unless m has each key exactly when want says so.
	has := func(t *testing.T, what string, m map[string]any, want bool, keys ...string) {
		t.Helper()
		for _, k := range keys {
			if _, ok := m[k]; ok != want {
				t.Errorf("%s: %s present %v, want %v", what, k, ok, want)
			}
		}
	}
	for _, v := range []string{apiversion.Min, "1.41", apiversion.Max} {
		t.Run(v, func(t *testing.T) {
			before := func(since string) bool { return apiversion.Compare(v, since) < 0 }
			p := "/v" + v

			var img map[string]any
			get(t, p+"/images/busybox/json", &img)
			has(t, "image inspect", img, before("1.44"), "VirtualSize")
			if before("1.44") && img["VirtualSize"] != img["Size"] {
				t.Errorf("image inspect: VirtualSize %v, Size %v", img["VirtualSize"], img["Size"])
			}
			has(t, "image inspect", img, before("1.45"), "Container", "ContainerConfig")
			has(t, "image Config", img["Config"].(map[string]any), before("1.50"), "Hostname", "AttachStdout")

			var list []map[string]any
			get(t, p+"/images/json", &list)
			if len(list) != 1 {
				t.Fatalf("images: %v", list)
			}
			has(t, "image list", list[0], before("1.44"), "VirtualSize")
			has(t, "image inspect", img, before("1.52"), "Parent") // busybox has none
			if c := list[0]["Containers"]; (c == -1.0) != before("1.51") {
				t.Errorf("image list: Containers %v (counted from 1.51)", c)
			}
			// filter: a glob of names, read before 1.41 only.
			var filtered []map[string]any
			get(t, p+"/images/json?filter=nothing*", &filtered)
			if (len(filtered) == 0) != before("1.41") {
				t.Errorf("images?filter=nothing*: %d images", len(filtered))
			}
			if before("1.44") && list[0]["VirtualSize"] != img["Size"] {
				t.Errorf("image list: VirtualSize %v, want the Size %v", list[0]["VirtualSize"], img["Size"])
			}

			var df map[string]any
			get(t, p+"/system/df", &df)
			has(t, "df", df, before("1.52"), "Images", "LayersSize")
			if imgs, _ := df["Images"].([]any); before("1.52") && len(imgs) == 1 {
				has(t, "df image", imgs[0].(map[string]any), before("1.44"), "VirtualSize")
			} else if before("1.52") {
				t.Errorf("df: Images %v", df["Images"])
			}

			// Network none: the legacy fields are there, empty.
			var c struct {
				Config          struct{ Env []string }
				NetworkSettings map[string]any
			}
			get(t, p+"/containers/target/json", &c)
			legacy := []string{"Bridge", "HairpinMode", "LinkLocalIPv6Address", "LinkLocalIPv6PrefixLen", "SecondaryIPAddresses",
				"SecondaryIPv6Addresses", "EndpointID", "Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen", "IPAddress",
				"IPPrefixLen", "IPv6Gateway", "MacAddress"}
			has(t, "NetworkSettings", c.NetworkSettings, before("1.52"), legacy...)
			has(t, "NetworkSettings", c.NetworkSettings, true, "SandboxID", "SandboxKey", "Ports", "Networks")
			if before("1.52") && (c.NetworkSettings["IPAddress"] != "" || c.NetworkSettings["IPPrefixLen"] != float64(0)) {
				t.Errorf("NetworkSettings off the bridge: %v", c.NetworkSettings)
			}
			if !slices.Equal(c.Config.Env, []string{"PATH=/bin", "IMG=1"}) {
				t.Errorf("Config.Env without one in the request: %q, want the image's", c.Config.Env)
			}

			for _, r := range []struct{ method, path, since string }{
				{"GET", "/images/busybox/attestations", "1.55"},
				{"PUT", "/volumes/x", "1.42"},
			} {
				code, body := request(s, r.method, p+r.path, "{}")
				want, msg := http.StatusNotImplemented, "balena-engine does not serve "+r.method
				if before(r.since) {
					want, msg = http.StatusBadRequest, "requires minimum API version "+r.since
				}
				if code != want || !strings.Contains(string(body), msg) {
					t.Errorf("%s %s: %d %s, want %d %q", r.method, r.path, code, body, want, msg)
				}
			}
		})
	}
}
