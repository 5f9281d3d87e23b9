package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	containertypes "github.com/moby/moby/api/types/container"
	networktypes "github.com/moby/moby/api/types/network"
)

// The container list's filters on a container's summary, as Docker's
// (daemon/list.go): each value names what matches; several of one
// filter match any, several filters all.
func TestPsFilterMatch(t *testing.T) {
	web := &containertypes.Summary{
		Health: &containertypes.HealthSummary{Status: "healthy"},
		Mounts: []containertypes.MountPoint{{Type: "volume", Name: "data", Destination: "/data"}, {Type: "bind", Source: "/srv", Destination: "/www"}},
		NetworkSettings: &containertypes.NetworkSettingsSummary{Networks: map[string]*networktypes.EndpointSettings{
			"app": {NetworkID: "abcdef0123"}}},
		Ports: []containertypes.PortSummary{{PrivatePort: 80, PublicPort: 8080, Type: "tcp"}, {PrivatePort: 53, Type: "udp"}},
	}
	bare := &containertypes.Summary{}
	for _, tc := range []struct {
		f         filters
		web, bare bool
	}{
		{filters{}, true, true},
		{filters{"health": {"healthy"}}, true, false},
		{filters{"health": {"none"}}, false, true},
		{filters{"health": {"starting", "healthy"}}, true, false},
		{filters{"volume": {"data"}}, true, false},
		{filters{"volume": {"/data"}}, true, false},
		{filters{"volume": {"/srv"}}, true, false},
		{filters{"volume": {"/www"}}, true, false},
		{filters{"volume": {"dat"}}, false, false},
		{filters{"network": {"app"}}, true, false},
		{filters{"network": {"abc"}}, true, false},
		{filters{"network": {"bridge"}}, false, false},
		{filters{"publish": {"8080"}}, true, false},
		{filters{"publish": {"8080/udp"}}, false, false},
		{filters{"publish": {"8000-8100/tcp"}}, true, false},
		{filters{"publish": {"80"}}, false, false},
		{filters{"expose": {"80"}}, true, false},
		{filters{"expose": {"53/udp"}}, true, false},
		{filters{"expose": {"53"}}, false, false},
		{filters{"expose": {"1-79"}}, false, false},
		{filters{"isolation": {"default"}}, true, true},
		{filters{"isolation": {"hyperv"}}, false, false},
		{filters{"is-task": {"false"}}, true, true},
		{filters{"is-task": {"1"}}, false, false},
		{filters{"health": {"healthy"}, "network": {"bridge"}}, false, false},
	} {
		p, err := newPsFilter(tc.f)
		if err != nil {
			t.Fatalf("%v: %v", tc.f, err)
		}
		if got := p.match(web, ""); got != tc.web {
			t.Errorf("%v on web: %v, want %v", tc.f, got, tc.web)
		}
		if got := p.match(bare, "default"); got != tc.bare {
			t.Errorf("%v on bare: %v, want %v", tc.f, got, tc.bare)
		}
	}
}

// Values Docker refuses are refused with its words and status (400, or
// 500 for the port filters, as Docker's unclassified errors); the filters
// Docker serves are no longer refused.
func TestContainerListFilterErrors(t *testing.T) {
	s, _ := fuzzServer(t)
	for filter, want := range map[string]string{
		`{"health":["sick"]}`:          "invalid filter 'health=sick': invalid value for health (sick): must be one of none, starting, healthy, unhealthy",
		`{"publish":["8080:80"]}`:      "filter for 'publish' should not contain ':': 8080:80",
		`{"expose":["x"]}`:             "error while looking up for expose x: invalid start port 'x'",
		`{"is-task":["maybe"]}`:        "invalid filter 'is-task=[maybe]'",
		`{"is-task":["true","false"]}`: "invalid filter 'is-task=[true false]'",
		`{"health":["none"],"volume":["x"],"network":["x"],"isolation":["default"],"is-task":["0"],"publish":["80"],"expose":["80"]}`: "",
	} {
		code, body := request(s, "GET", "/v1.41/containers/json?all=1&filters="+url.QueryEscape(filter), "")
		if want == "" {
			if code != http.StatusOK || string(body) != "[]\n" {
				t.Errorf("%s: %d %s, want 200 []", filter, code, body)
			}
		} else if status := map[bool]int{true: http.StatusInternalServerError, false: http.StatusBadRequest}[strings.Contains(filter, "publish") || strings.Contains(filter, "expose")]; code != status || !strings.Contains(string(body), want) {
			t.Errorf("%s: %d %s, want %d %q", filter, code, body, status, want)
		}
	}
	// The created container has no health check, and the default isolation.
	code, body := request(s, "GET", "/v1.41/containers/json?all=1&filters="+url.QueryEscape(`{"health":["none"],"isolation":["default"],"is-task":["false"]}`), "")
	if code != http.StatusOK || !strings.Contains(string(body), "/target") {
		t.Errorf("health=none: %d %s, want the target", code, body)
	}
}

// ancestor= names an image by name, name:tag, ID or ID prefix, and
// matches the containers of it and of the images committed from it, by
// ID, as Docker; a name that is no image matches nothing.
func TestContainerListAncestor(t *testing.T) {
	s, _ := fuzzServer(t) // "target", of busybox
	if code, body := call(s, "/commit?container=target&repo=child", nil); code != http.StatusCreated {
		t.Fatalf("commit: %d %s", code, body)
	}
	if code, body := call(s, "/containers/create?name=kid", []byte(`{"Image":"child","HostConfig":{"NetworkMode":"none"}}`)); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	_, body := request(s, "GET", "/v1.41/images/busybox/json", "")
	var img struct{ ID string }
	json.Unmarshal(body, &img)
	for ref, want := range map[string]string{
		"busybox":        "/kid /target",
		"busybox:latest": "/kid /target",
		img.ID:           "/kid /target",
		img.ID[7:19]:     "/kid /target",
		"child":          "/kid",
		"nothing":        "",
	} {
		code, body := request(s, "GET", "/v1.41/containers/json?all=1&filters="+url.QueryEscape(`{"ancestor":["`+ref+`"]}`), "")
		var list []struct{ Names []string }
		if err := json.Unmarshal(body, &list); code != http.StatusOK || err != nil {
			t.Fatalf("ancestor=%s: %d %s", ref, code, body)
		}
		var got []string
		for _, c := range list {
			got = append(got, c.Names...)
		}
		slices.Sort(got)
		if strings.Join(got, " ") != want {
			t.Errorf("ancestor=%s: %q, want %q", ref, got, want)
		}
	}
}
