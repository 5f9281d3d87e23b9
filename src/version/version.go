// Package version holds the identity of this build of balena-engine. The
// Makefile stamps Version, GitCommit and BuildTime in at link time with
// -ldflags -X; the target (GOOS, GOARCH, GOARM, GO386) is read from the
// build information the Go linker records, so it cannot disagree with the
// binary it describes.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set with -ldflags "-X github.com/balena-os/balena-engine/src/version.Version=...".
var (
	Version   = "0.0.0-dev"
	GitCommit = "unknown"
	BuildTime = "" // RFC 3339, from the commit time so builds are reproducible
)

// Info describes one build.
type Info struct {
	Version   string
	GitCommit string
	BuildTime string
	GoVersion string
	OS        string
	Arch      string
	// Variant is the CPU variant Go was built for: "v5", "v6", "v7" for
	// GOARCH=arm, "sse2"/"softfloat" for 386, the GOAMD64 level for amd64.
	Variant string
}

// Get returns the identity of the running binary.
func Get() Info {
	i := Info{
		Version:   Version,
		GitCommit: GitCommit,
		BuildTime: BuildTime,
		GoVersion: runtime.Version(),
		OS:        runtime.GOOS,
		Arch:      runtime.GOARCH,
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		i.Variant = variant(runtime.GOARCH, bi.Settings)
	}
	return i
}

func variant(goarch string, settings []debug.BuildSetting) string {
	key := map[string]string{"arm": "GOARM", "386": "GO386", "amd64": "GOAMD64"}[goarch]
	for _, s := range settings {
		if key != "" && s.Key == key {
			if goarch == "arm" {
				return "v" + s.Value
			}
			return s.Value
		}
	}
	return ""
}

// Platform is the OCI-style platform string, with the ARM variant
// ("linux/arm/v6") because it decides which image variant a device can run.
func (i Info) Platform() string {
	p := i.OS + "/" + i.Arch
	if i.Arch == "arm" && i.Variant != "" {
		p += "/" + i.Variant
	}
	return p
}

// String is the one-line form printed by "balena-engine --version".
func (i Info) String() string {
	arch := i.OS + "/" + i.Arch
	if i.Variant != "" {
		arch += " (" + i.Variant + ")"
	}
	return fmt.Sprintf("balena-engine version %s, build %s, %s, %s", i.Version, i.GitCommit, i.GoVersion, arch)
}
