package container

import (
	"fmt"
	goruntime "runtime"
	"slices"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/moby/profiles/seccomp"
	libseccomp "github.com/opencontainers/runc/libcontainer/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Seccomp profile names the daemon and --security-opt understand besides a
// profile's JSON text (Docker's names).
const (
	SeccompBuiltin    = "builtin"
	SeccompUnconfined = "unconfined"
)

// The built-in profile leaves out the x32 ABI that Docker's lists for
// amd64: each ABI in a filter adds its own copy of every rule, which
// libseccomp compiles in each container's init at every start (x32 alone
// cost about 12 ms of a 120 ms "docker run" here), and x32 binaries are
// practically absent from images. A process using it gets SIGSYS; a
// profile of one's own (--security-opt or the daemon's --seccomp-profile)
// may list it again.

// compatArches are the system-call ABIs a filter must also cover for an
// engine of each 32-bit architecture. Docker's profile lists them only for
// the 64-bit engines; a 32-bit engine on a 64-bit kernel (a Raspberry Pi
// with a 64-bit kernel and a 32-bit OS) may run a 64-bit image, whose
// every system call would otherwise kill it with SIGSYS.
var compatArches = map[string][]specs.Arch{
	"386": {specs.ArchX86, specs.ArchX86_64, specs.ArchX32},
	"arm": {specs.ArchARM, specs.ArchAARCH64},
}

// seccompFor returns the filter for a container whose spec s already has
// its capabilities (the default profile allows more calls to a container
// with more capabilities, as Docker's does). opt is the container's
// --security-opt seccomp= value ("" for none), daemon the daemon's
// profile ("" or "builtin", "unconfined", or JSON). Privileged containers
// run unfiltered, as with Docker. An engine built without seccomp (the
// build tag; `go test` binaries) runs the default unfiltered and refuses
// other profiles, as dockerd on a kernel without seccomp does.
func seccompFor(s *specs.Spec, privileged bool, opt, daemon string, unsupported bool) (*specs.LinuxSeccomp, error) {
	if opt == SeccompUnconfined || privileged {
		return nil, nil
	}
	if unsupported {
		if opt != "" && opt != SeccompBuiltin {
			return nil, errdefs.NotImplemented(fmt.Errorf("seccomp is not compiled into this engine, cannot run a custom seccomp profile"))
		}
		return nil, nil
	}
	var (
		profile *specs.LinuxSeccomp
		err     error
	)
	builtin := false
	switch {
	case opt == SeccompBuiltin:
		profile, err = seccomp.GetDefaultProfile(s)
		builtin = true
	case opt != "":
		if profile, err = seccomp.LoadProfile(opt, s); err != nil {
			return nil, errdefs.InvalidParameter(err)
		}
	case daemon == SeccompUnconfined:
		return nil, nil
	case daemon == "" || daemon == SeccompBuiltin:
		profile, err = seccomp.GetDefaultProfile(s)
		builtin = true
	default:
		profile, err = seccomp.LoadProfile(daemon, s)
	}
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	addCompatArches(profile, goruntime.GOARCH)
	if builtin {
		profile.Architectures = slices.DeleteFunc(profile.Architectures, func(a specs.Arch) bool { return a == specs.ArchX32 })
	}
	return profile, nil
}

// addCompatArches gives a profile that names no architectures (Docker's
// has none for 32-bit engines) those an engine built for goarch needs.
func addCompatArches(p *specs.LinuxSeccomp, goarch string) {
	if p != nil && len(p.Architectures) == 0 {
		// A copy: the caller filters the list in place, which on the
		// shared slice would leave an empty architecture behind for every
		// later container (the i386 engine then started none).
		p.Architectures = slices.Clone(compatArches[goarch])
	}
}

// SecurityOptions is what /info lists of the engine's defaults, in
// Docker's form ("name=seccomp,profile=builtin").
func (m *Manager) SecurityOptions() []string {
	if !libseccomp.Enabled {
		return nil
	}
	profile := m.opts.SeccompProfile
	switch profile {
	case "", SeccompBuiltin:
		profile = SeccompBuiltin
	case SeccompUnconfined:
	default:
		profile = "custom"
	}
	return []string{"name=seccomp,profile=" + profile}
}

// CheckSeccompProfile says whether a daemon profile (a name or JSON text)
// can be used, so that a bad one stops the daemon at start rather than
// every container later.
func CheckSeccompProfile(profile string) error {
	if profile == "" || profile == SeccompBuiltin || profile == SeccompUnconfined {
		return nil
	}
	s := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: defaultCaps}}}
	_, err := seccomp.LoadProfile(profile, s)
	return err
}
