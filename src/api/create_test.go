package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/balena-os/balena-engine/src/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
)

// createAt posts a create body at an API version; it answers the status,
// the error message or the warnings, and the new container's ID.
func createAt(t *testing.T, s *Server, version, body string) (code int, message string, warnings []string, id string) {
	t.Helper()
	code, out := request(s, http.MethodPost, "/v"+version+"/containers/create", body)
	var resp struct {
		ID       string
		Warnings []string
		Message  string `json:"message"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("create answered %d %s", code, out)
	}
	return code, resp.Message, resp.Warnings, resp.ID
}

// containerCount is how many containers the server has.
func containerCount(t *testing.T, s *Server) int {
	t.Helper()
	_, body := request(s, http.MethodGet, "/v1.41/containers/json?all=1", "")
	var list []any
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	return len(list)
}

// A field the engine cannot honour is never dropped without a word: it
// is refused at create, with Docker's status and words where Docker
// refuses it (400) and a 501 naming it where the engine lacks a feature,
// and nothing is left behind.
func TestCreateRefusesWhatItCannotHonour(t *testing.T) {
	s, _ := fuzzServer(t)
	before := containerCount(t, s)
	for _, tc := range []struct {
		host string
		code int
		want string
	}{
		{`"Isolation":"hyperv"`, 400, "invalid isolation (hyperv): linux only supports 'default'"},
		{`"Runtime":"kata"`, 400, "unknown or invalid runtime name: kata"},
		{`"IOMaximumBandwidth":1048576`, 400, "invalid option: QoS maximum bandwidth configuration is not supported on linux"},
		{`"IOMaximumIOps":10`, 400, "invalid option: QoS maximum IOPs configuration is not supported on linux"},
		{`"CpuCount":2`, 400, "invalid option: CPU count is not supported on linux"},
		{`"StorageOpt":{"foo":"bar"}`, 400, "Unknown option foo"},
		{`"DeviceRequests":[{"Driver":"","Count":-1,"Capabilities":[["gpu"]]}]`, 400, `could not select device driver "" with capabilities: [[gpu]]`},
		{`"DeviceRequests":[{"Driver":"cdi","DeviceIDs":["vendor.com/device=gpu0"]}]`, 400, `could not select device driver "cdi" with capabilities: []`},
		{`"Cgroup":"container:target"`, 501, `Cgroup "container:target" (running in another container's cgroup) is not implemented`},
		{`"CpuRealtimePeriod":1000,"CpuRealtimeRuntime":2000`, 400, ""}, // v1: runtime above the period; v2: no real-time scheduler
		{`"BlkioDeviceReadBps":[{"Path":"/dev/null","Rate":1}]`, 400, "/dev/null is not a block device"},
	} {
		code, msg, _, _ := createAt(t, s, "1.50", `{"Image":"busybox","HostConfig":{"NetworkMode":"none",`+tc.host+`}}`)
		if code != tc.code || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %d %q, want %d %q", tc.host, code, msg, tc.code, tc.want)
		}
	}
	if after := containerCount(t, s); after != before {
		t.Errorf("refused creates left containers: %d, were %d", after, before)
	}
}

// Fields Docker itself discards on Linux come back as Docker's warnings
// in the create response (the docker CLI prints each as "WARNING: ...");
// the docker CLI's defaults bring none.
func TestCreateWarnings(t *testing.T) {
	s, _ := fuzzServer(t)
	for _, tc := range []struct {
		version, body string
		want          []string
	}{
		// What the docker CLI always sends, as it sends it.
		{"1.50", `{"Image":"busybox","HostConfig":{"NetworkMode":"none","MemorySwappiness":-1,"OomKillDisable":false,"CpuPercent":0,"CpuCount":0,
			"Isolation":"","Runtime":"","ConsoleSize":[0,0],"CgroupParent":"","BlkioWeightDevice":[],"DeviceRequests":null}}`, nil},
		{"1.50", `{"Image":"busybox","HostConfig":{"NetworkMode":"none","CpuPercent":50}}`, []string{"linux does not support CPU percent. Percent discarded."}},
		{"1.50", `{"Image":"busybox","HostConfig":{"NetworkMode":"host","PortBindings":{"80/tcp":[{"HostPort":"8080"}]}}}`, []string{"Published ports are discarded when using host network mode"}},
		// docker 20.10's --kernel-memory and --kernel-memory-tcp: fields
		// the API types no longer have, read from the body.
		{"1.41", `{"Image":"busybox","HostConfig":{"NetworkMode":"none","KernelMemory":67108864,"KernelMemoryTCP":67108864}}`, []string{
			"Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. Limitation discarded.",
			"Your kernel does not support kernel memory TCP limit capabilities or the cgroup is not mounted. Limitation discarded."}},
		// Before API 1.40 Docker does not read KernelMemoryTCP.
		{"1.39", `{"Image":"busybox","HostConfig":{"NetworkMode":"none","KernelMemoryTCP":67108864}}`, nil},
		{"1.41", `{"Image":"busybox","HostConfig":{"NetworkMode":"none","KernelMemory":0}}`, nil},
	} {
		code, msg, warnings, id := createAt(t, s, tc.version, tc.body)
		if code != http.StatusCreated {
			t.Errorf("%s: %d %s", tc.body, code, msg)
			continue
		}
		if !slices.Equal(warnings, tc.want) || warnings == nil {
			t.Errorf("%s: warnings %q, want %q (a list, never null)", tc.body, warnings, tc.want)
		}
		if code, body := request(s, http.MethodGet, "/v1.50/containers/"+id+"/json", ""); code != http.StatusOK {
			t.Errorf("inspect: %d %s", code, body)
		} else if strings.Contains(string(body), `"MemorySwappiness":-1`) {
			t.Errorf("-1 (not given) is kept as a swappiness: %s", body)
		}
	}
}

// hostConfigOf is a created container's HostConfig as inspect shows it.
func hostConfigOf(t *testing.T, s *Server, id string) map[string]any {
	t.Helper()
	code, body := request(s, http.MethodGet, "/v1.50/containers/"+id+"/json", "")
	if code != http.StatusOK {
		t.Fatalf("inspect: %d %s", code, body)
	}
	var c struct{ HostConfig map[string]any }
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	return c.HostConfig
}

// Docker's defaults for clients of older API versions: before 1.40 the
// IPC namespace is shareable unless asked otherwise.
func TestCreateOlderClientDefaults(t *testing.T) {
	s, _ := fuzzServer(t)
	for _, tc := range []struct {
		version, ipc, want string
	}{
		{"1.39", "", "shareable"}, {"1.39", "private", "private"}, {"1.40", "", "private"}, {"1.50", "", "private"},
	} {
		code, msg, _, id := createAt(t, s, tc.version, `{"Image":"busybox","HostConfig":{"NetworkMode":"none","IpcMode":"`+tc.ipc+`"}}`)
		if code != http.StatusCreated {
			t.Fatalf("%s: %d %s", tc.version, code, msg)
		}
		if got := hostConfigOf(t, s, id)["IpcMode"]; got != tc.want {
			t.Errorf("API %s, IpcMode %q: %v, want %s", tc.version, tc.ipc, got, tc.want)
		}
	}
}

// Healthcheck.StartInterval came with API 1.44: older clients' is
// ignored, as Docker ignores it; a value under Docker's minimum is 400.
func TestCreateHealthStartInterval(t *testing.T) {
	s, _ := fuzzServer(t)
	body := `{"Image":"busybox","Healthcheck":{"Test":["CMD","true"],"StartInterval":2000000000},"HostConfig":{"NetworkMode":"none"}}`
	for version, want := range map[string]float64{"1.43": 0, "1.44": 2e9} {
		code, msg, _, id := createAt(t, s, version, body)
		if code != http.StatusCreated {
			t.Fatalf("%s: %d %s", version, code, msg)
		}
		_, out := request(s, http.MethodGet, "/v1.50/containers/"+id+"/json", "")
		var c struct {
			Config struct {
				Healthcheck struct{ StartInterval float64 }
			}
		}
		json.Unmarshal(out, &c)
		if got := c.Config.Healthcheck.StartInterval; got != want {
			t.Errorf("API %s: StartInterval %v, want %v", version, got, want)
		}
	}
	code, msg, _, _ := createAt(t, s, "1.44", `{"Image":"busybox","Healthcheck":{"Test":["CMD","true"],"StartInterval":1000},"HostConfig":{"NetworkMode":"none"}}`)
	if code != http.StatusBadRequest || msg != "StartInterval in Healthcheck cannot be less than 1ms" {
		t.Errorf("a start interval of 1µs: %d %q", code, msg)
	}
}

// --mount's options by API version, as Docker reads them: another type's
// options refused from 1.42 on (dropped before), ReadOnlyForceRecursive
// refused before 1.44, a volume's Subpath before 1.45; a volume's labels
// given to the volume made, its driver options refused (no local volume
// options yet).
func TestCreateMountOptions(t *testing.T) {
	s, _ := fuzzServer(t)
	for _, tc := range []struct {
		version, mounts string
		code            int
		want            string
	}{
		{"1.42", `{"Type":"tmpfs","Target":"/t","BindOptions":{"NonRecursive":true}}`, 400, `BindOptions must not be specified on mount type "tmpfs"`},
		{"1.42", `{"Type":"bind","Source":"/","Target":"/b","TmpfsOptions":{"SizeBytes":1}}`, 400, `TmpfsOptions must not be specified on mount type "bind"`},
		{"1.42", `{"Type":"tmpfs","Target":"/t","VolumeOptions":{"NoCopy":true}}`, 400, `VolumeOptions must not be specified on mount type "tmpfs"`},
		{"1.41", `{"Type":"tmpfs","Target":"/t","BindOptions":{"NonRecursive":true}}`, 201, ""},
		{"1.43", `{"Type":"bind","Source":"/","Target":"/b","ReadOnly":true,"BindOptions":{"ReadOnlyForceRecursive":true}}`, 400, "BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer"},
		{"1.44", `{"Type":"volume","Source":"opted","Target":"/v","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"tmpfs"}}}}`, 501,
			"local volume options (type, device, o) are not implemented yet"},
		{"1.44", `{"Type":"volume","Source":"labelled","Target":"/v","VolumeOptions":{"Labels":{"a":"b"}}}`, 201, ""},
		{"1.44", `{"Type":"volume","Source":"sub","Target":"/v","VolumeOptions":{"Subpath":"x"}}`, 400, "VolumeOptions.Subpath needs API v1.45 or newer"},
		{"1.45", `{"Type":"volume","Source":"sub","Target":"/v","VolumeOptions":{"Subpath":"x"}}`, 201, ""},
		{"1.45", `{"Type":"volume","Source":"sub","Target":"/v","VolumeOptions":{"Subpath":"../x"}}`, 400,
			`invalid mount config for type "volume": subpath must be a relative path within the volume`},
	} {
		code, msg, _, _ := createAt(t, s, tc.version, `{"Image":"busybox","HostConfig":{"NetworkMode":"none","Mounts":[`+tc.mounts+`]}}`)
		if code != tc.code || msg != tc.want {
			t.Errorf("API %s, %s: %d %q, want %d %q", tc.version, tc.mounts, code, msg, tc.code, tc.want)
		}
	}
	code, body := request(s, http.MethodGet, "/v1.44/volumes/labelled", "")
	var v struct{ Labels map[string]string }
	if json.Unmarshal(body, &v); code != http.StatusOK || v.Labels["a"] != "b" {
		t.Errorf("the volume made: %d %s", code, body)
	}
	if code, _ := request(s, http.MethodGet, "/v1.44/volumes/opted", ""); code != http.StatusNotFound {
		t.Errorf("a refused create made its volume: %d", code)
	}
}

// create's platform query (API 1.41 on): a local image of another
// platform is Docker's 404, which makes the docker CLI pull the one asked
// for and create again.
func TestCreatePlatform(t *testing.T) {
	s, _ := fuzzServer(t)
	other := "linux/arm64"
	if runtime.GOARCH == "arm64" {
		other = "linux/amd64"
	}
	here := "linux/" + runtime.GOARCH
	body := `{"Image":"busybox","HostConfig":{"NetworkMode":"none"}}`
	for _, tc := range []struct {
		version, platform string
		code              int
		want              string
	}{
		{"1.41", other, 404, "image with reference busybox was found but its platform (" + here + ") does not match the specified platform (" + other + ")"},
		{"1.41", here, 201, ""},
		{"1.41", "linux", 201, ""},
		{"1.41", "linux/mips64/x/y", 400, ""},
		{"1.40", other, 201, ""}, // not read before 1.41
	} {
		code, out := request(s, http.MethodPost, "/v"+tc.version+"/containers/create?platform="+url.QueryEscape(tc.platform), body)
		var resp struct{ Message string }
		json.Unmarshal(out, &resp)
		if code != tc.code || !strings.Contains(resp.Message, tc.want) {
			t.Errorf("API %s, platform %s: %d %s, want %d %q", tc.version, tc.platform, code, out, tc.code, tc.want)
		}
	}
}

// A container-wide MAC address (Config.MacAddress) as Docker's router
// takes it: before API 1.44 the main network's endpoint's (its own MAC
// not read), until 1.52 a deprecated twin of it (with a warning), from
// 1.52 on refused.
func TestContainerMAC(t *testing.T) {
	const mac, other = "02:42:ac:11:00:99", "02:42:ac:11:00:98"
	const deprecated = "The container-wide MacAddress field is now deprecated. It should be specified in EndpointsConfig instead."
	for _, tc := range []struct {
		version, mac, mode, body   string // body: the EndpointsConfig
		net, wantMAC, warning, err string
	}{
		{"1.41", mac, "", `{}`, "bridge", mac, "", ""},
		{"1.41", mac, "default", `{"default":{}}`, "bridge", mac, "", ""},
		{"1.41", mac, "app", `{"app":{"Aliases":["x"]}}`, "app", mac, "", ""},
		{"1.41", "", "app", `{"app":{"MacAddress":"` + other + `"}}`, "app", "", "", ""}, // not read before 1.44
		{"1.41", mac, "none", `{}`, "", "", "", "conflicting options: mac-address and the network mode"},
		{"1.41", "xx", "app", `{}`, "", "", "", "invalid MAC address: xx"},
		{"1.44", mac, "app", `{"app":{}}`, "app", mac, deprecated, ""},
		{"1.50", mac, "app", `{"app":{"MacAddress":"` + mac + `"}}`, "app", mac, deprecated, ""},
		{"1.50", mac, "app", `{"app":{"MacAddress":"` + other + `"}}`, "", "", "", "the container-wide MAC address must match the endpoint-specific MAC address for the main network, or be left empty"},
		{"1.50", mac, "app", `{"other":{}}`, "", "", "", "HostConfig.NetworkMode must match the identity of a network in NetworkSettings.Networks"},
		{"1.50", mac, "host", `{}`, "", "", deprecated, ""},
		{"1.50", "", "app", `{"app":{"MacAddress":"` + other + `"}}`, "app", other, "", ""},
		{"1.52", mac, "app", `{"app":{}}`, "", "", "", "container-wide MAC address no longer supported; use endpoint-specific MAC address instead"},
	} {
		var req containertypes.CreateRequest
		body := `{"Image":"busybox","HostConfig":{"NetworkMode":"` + tc.mode + `"},"NetworkingConfig":{"EndpointsConfig":` + tc.body + `}}`
		if err := json.Unmarshal([]byte(body), &req); err != nil {
			t.Fatal(err)
		}
		warning, err := containerMAC(tc.version, &req, tc.mac)
		name := tc.version + " " + tc.mac + " " + tc.mode + " " + tc.body
		if tc.err != "" {
			if err == nil || err.Error() != tc.err || errdefs.KindOf(err) != errdefs.KindInvalidParameter {
				t.Errorf("%s: %v, want 400 %q", name, err, tc.err)
			}
			continue
		}
		if err != nil || warning != tc.warning {
			t.Errorf("%s: %v %q, want the warning %q", name, err, warning, tc.warning)
			continue
		}
		if tc.net == "" {
			continue
		}
		ep := req.NetworkingConfig.EndpointsConfig[tc.net]
		if ep == nil || ep.MacAddress.String() != tc.wantMAC {
			t.Errorf("%s: endpoint %s: %+v, want the MAC %q", name, tc.net, ep, tc.wantMAC)
		}
	}
}

// --link as Docker checks it at create: with the host's or another
// container's network it is a conflict, and so with none (no network to
// link on: Docker keeps them and they do nothing); on the default bridge
// the container named must exist.
func TestCreateLinks(t *testing.T) {
	s, _ := fuzzServer(t)
	for _, tc := range []struct{ mode, links, want string }{
		{"host", `["target:t"]`, "conflicting options: host type networking can't be used with links. This would result in undefined behavior"},
		{"container:target", `["target:t"]`, "conflicting options: container type network can't be used with links. This would result in undefined behavior"},
		{"none", `["target:t"]`, "conflicting options: none type networking can't be used with links. This would result in undefined behavior"},
		{"bridge", `["nosuch:t"]`, "could not get container for nosuch: No such container: nosuch"},
		{"bridge", `["a:b:c"]`, "bad format for links: a:b:c"},
	} {
		code, msg, _, _ := createAt(t, s, "1.50", `{"Image":"busybox","HostConfig":{"NetworkMode":"`+tc.mode+`","Links":`+tc.links+`}}`)
		if code != http.StatusBadRequest || msg != tc.want {
			t.Errorf("%s %s: %d %q, want 400 %q", tc.mode, tc.links, code, msg, tc.want)
		}
	}
}
