package container

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker's refusals at create (400 with its words).
func TestCheckSettings(t *testing.T) {
	for _, tc := range []struct {
		cfg  containertypes.Config
		host containertypes.HostConfig
		want string
	}{
		{containertypes.Config{Env: []string{"A=1", "=x"}}, containertypes.HostConfig{}, "invalid environment variable: =x"},
		{containertypes.Config{Env: []string{""}}, containertypes.HostConfig{}, "invalid environment variable: "},
		{containertypes.Config{}, containertypes.HostConfig{PidMode: "bogus"}, "invalid PID mode: bogus"},
		{containertypes.Config{}, containertypes.HostConfig{IpcMode: "bogus"}, "invalid IPC mode: bogus"},
		{containertypes.Config{}, containertypes.HostConfig{UTSMode: "bogus"}, "invalid UTS mode: bogus"},
		{containertypes.Config{}, containertypes.HostConfig{OomScoreAdj: 1001}, "range for oom score adj is [-1000, 1000]"},
		{containertypes.Config{}, containertypes.HostConfig{ShmSize: -1}, "SHM size can not be less than 0"},
		{containertypes.Config{}, containertypes.HostConfig{Resources: containertypes.Resources{CPUShares: -2}}, "invalid CPU shares (-2)"},
		{containertypes.Config{}, containertypes.HostConfig{Resources: containertypes.Resources{Memory: -5}}, "cannot be negative"},
		{containertypes.Config{Env: []string{"A=", "B"}}, containertypes.HostConfig{PidMode: "host", IpcMode: "private", UTSMode: "host", OomScoreAdj: -1000,
			Resources: containertypes.Resources{CPUQuota: -1}}, ""},
	} {
		err := checkSettings(&tc.cfg, &tc.host)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%+v: %v", tc, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || errdefs.KindOf(err) != errdefs.KindInvalidParameter {
			t.Errorf("want %q, got %v", tc.want, err)
		}
	}
}

// Docker's bounds of a health check's durations, at create.
func TestCheckHealthConfig(t *testing.T) {
	for _, tc := range []struct {
		h    containertypes.HealthConfig
		want string
	}{
		{containertypes.HealthConfig{Interval: time.Microsecond}, "Interval in Healthcheck cannot be less than 1ms"},
		{containertypes.HealthConfig{Timeout: time.Microsecond}, "Timeout in Healthcheck cannot be less than 1ms"},
		{containertypes.HealthConfig{StartPeriod: time.Microsecond}, "StartPeriod in Healthcheck cannot be less than 1ms"},
		{containertypes.HealthConfig{StartInterval: time.Microsecond}, "StartInterval in Healthcheck cannot be less than 1ms"},
		{containertypes.HealthConfig{Retries: -1}, "Retries in Healthcheck cannot be negative"},
		{containertypes.HealthConfig{Interval: time.Millisecond, StartInterval: time.Second}, ""},
	} {
		err := checkHealthConfig(&tc.h)
		if (err == nil) != (tc.want == "") || (err != nil && err.Error() != tc.want) {
			t.Errorf("%+v: %v, want %q", tc.h, err, tc.want)
		}
	}
}

// Probes come every start interval during the start period until the
// container is healthy (Docker's default start interval is 5 s), else
// every interval; the container's settings override the image's.
func TestHealthIntervals(t *testing.T) {
	hc := healthConfig(&containertypes.HealthConfig{StartInterval: time.Second, StartPeriod: time.Minute},
		&containertypes.HealthConfig{Test: []string{"CMD", "true"}, Interval: time.Hour, StartInterval: 2 * time.Second})
	for _, tc := range []struct {
		since  time.Duration
		status containertypes.HealthStatus
		want   time.Duration
	}{
		{0, containertypes.Starting, time.Second},
		{59 * time.Second, containertypes.Starting, time.Second},
		{time.Minute, containertypes.Starting, time.Hour},
		{time.Second, containertypes.Healthy, time.Hour},
		{time.Second, containertypes.Unhealthy, time.Hour},
	} {
		if got := nextProbe(hc, tc.since, tc.status); got != tc.want {
			t.Errorf("%v after the start, %s: next probe in %v, want %v", tc.since, tc.status, got, tc.want)
		}
	}
	hc = healthConfig(nil, &containertypes.HealthConfig{Test: []string{"CMD", "true"}, StartPeriod: time.Minute})
	if hc.StartInterval != 5*time.Second || hc.Interval != 30*time.Second || nextProbe(hc, 0, containertypes.Starting) != 5*time.Second {
		t.Errorf("defaults: %+v", hc)
	}
}

// Docker's matching of an image's platform with the one asked for.
func TestPlatformMatches(t *testing.T) {
	p := func(os, arch, variant string) ocispec.Platform {
		return ocispec.Platform{OS: os, Architecture: arch, Variant: variant}
	}
	for _, tc := range []struct {
		want, have ocispec.Platform
		match      bool
	}{
		{p("linux", "amd64", ""), p("linux", "amd64", ""), true},
		{p("linux", "arm64", ""), p("linux", "amd64", ""), false},
		{p("linux", "arm", "v7"), p("linux", "arm", "v6"), true}, // armv6 runs on armv7
		{p("linux", "arm", "v6"), p("linux", "arm", "v7"), false},
		{p("linux", "arm", "v7"), p("linux", "arm", ""), true}, // an image without a variant
		{p("linux", "arm64", "v8"), p("linux", "arm64", ""), true},
		{p("windows", "amd64", ""), p("linux", "amd64", ""), false},
	} {
		if got := platformMatches(tc.want, tc.have); got != tc.match {
			t.Errorf("want %v, image %v: %v", tc.want, tc.have, got)
		}
	}
}

// Docker records the request's environment, then the image's entries it
// does not override; without any, the image's.
func TestImageEnv(t *testing.T) {
	img := []string{"PATH=/bin", "A=image", "B=image"}
	for _, tc := range []struct{ req, want []string }{
		{nil, img},
		{[]string{"A=req", "C"}, []string{"A=req", "C", "PATH=/bin", "B=image"}},
		{[]string{"PATH=/x", "A", "B="}, []string{"PATH=/x", "A", "B="}},
	} {
		if got := imageEnv(tc.req, img); !slices.Equal(got, tc.want) {
			t.Errorf("%q: %q, want %q", tc.req, got, tc.want)
		}
	}
	if got := imageEnv([]string{"A=1"}, nil); !slices.Equal(got, []string{"A=1"}) {
		t.Errorf("no image env: %q", got)
	}
}
