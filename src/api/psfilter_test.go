package api

import (
	"net/http"
	"net/url"
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

// Values Docker refuses are refused with its words and a 400; the
// filters Docker serves are no longer refused.
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
		} else if code != http.StatusBadRequest || !strings.Contains(string(body), want) {
			t.Errorf("%s: %d %s, want 400 %q", filter, code, body, want)
		}
	}
	// The created container has no health check, and the default isolation.
	code, body := request(s, "GET", "/v1.41/containers/json?all=1&filters="+url.QueryEscape(`{"health":["none"],"isolation":["default"],"is-task":["false"]}`), "")
	if code != http.StatusOK || !strings.Contains(string(body), "/target") {
		t.Errorf("health=none: %d %s, want the target", code, body)
	}
}
