package version

import (
	"runtime/debug"
	"testing"
)

func TestVariant(t *testing.T) {
	settings := []debug.BuildSetting{
		{Key: "GOOS", Value: "linux"},
		{Key: "GOARM", Value: "6"},
		{Key: "GO386", Value: "sse2"},
		{Key: "GOAMD64", Value: "v1"},
	}
	for goarch, want := range map[string]string{"arm": "v6", "386": "sse2", "amd64": "v1", "arm64": ""} {
		if got := variant(goarch, settings); got != want {
			t.Errorf("variant(%q) = %q, want %q", goarch, got, want)
		}
	}
}

func TestPlatformAndString(t *testing.T) {
	i := Info{Version: "1.2.3", GitCommit: "abc1234", GoVersion: "go1.26.8", OS: "linux", Arch: "arm", Variant: "v6"}
	if got := i.Platform(); got != "linux/arm/v6" {
		t.Errorf("Platform() = %q", got)
	}
	if got, want := i.String(), "balena-engine version 1.2.3, build abc1234, go1.26.8, linux/arm (v6)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	i = Info{OS: "linux", Arch: "amd64", Variant: "v1"}
	if got := i.Platform(); got != "linux/amd64" {
		t.Errorf("Platform() = %q, want linux/amd64 (no variant outside arm)", got)
	}
}
