package container

import (
	"slices"
	"testing"

	"github.com/balena-os/balena-engine/src/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// allowed reports whether the filter lets the call through without
// conditions on its arguments.
func allowed(p *specs.LinuxSeccomp, call string) bool {
	for _, sc := range p.Syscalls {
		if sc.Action == specs.ActAllow && len(sc.Args) == 0 && slices.Contains(sc.Names, call) {
			return true
		}
	}
	return false
}

func TestSeccompDefault(t *testing.T) {
	s, err := spec(t, containertypes.Config{}, containertypes.HostConfig{})
	if err != nil {
		t.Fatal(err)
	}
	p := s.Linux.Seccomp
	if p == nil {
		t.Fatal("no seccomp filter by default")
	}
	if p.DefaultAction != specs.ActErrno || !slices.Contains(p.Architectures, specs.ArchX86_64) ||
		!slices.Contains(p.Architectures, specs.ArchX86) || slices.Contains(p.Architectures, specs.ArchX32) {
		t.Errorf("default action %s, architectures %v", p.DefaultAction, p.Architectures)
	}
	if !allowed(p, "read") || allowed(p, "mount") || allowed(p, "keyctl") {
		t.Errorf("default profile: read %v, mount %v, keyctl %v", allowed(p, "read"), allowed(p, "mount"), allowed(p, "keyctl"))
	}
	// A capability opens the calls Docker's profile ties to it.
	s, err = spec(t, containertypes.Config{}, containertypes.HostConfig{CapAdd: []string{"SYS_ADMIN"}})
	if err != nil {
		t.Fatal(err)
	}
	if !allowed(s.Linux.Seccomp, "mount") {
		t.Error("CAP_SYS_ADMIN does not allow mount")
	}
}

func TestSeccompChoice(t *testing.T) {
	custom := `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod"],"action":"SCMP_ACT_ERRNO"}]}`
	cases := []struct {
		name, opt, daemon string
		privileged        bool
		want              string // "none", "default" or "custom"
	}{
		{"default", "", "", false, "default"},
		{"daemon builtin", "", SeccompBuiltin, false, "default"},
		{"unconfined", SeccompUnconfined, "", false, "none"},
		{"privileged", "", "", true, "none"},
		{"privileged with a profile", custom, "", true, "none"},
		{"daemon unconfined", "", SeccompUnconfined, false, "none"},
		{"container builtin over daemon unconfined", SeccompBuiltin, SeccompUnconfined, false, "default"},
		{"container profile", custom, "", false, "custom"},
		{"daemon profile", "", custom, false, "custom"},
		{"container over daemon", SeccompUnconfined, custom, false, "none"},
	}
	for _, c := range cases {
		host := containertypes.HostConfig{Privileged: c.privileged}
		if c.opt != "" {
			host.SecurityOpt = []string{"seccomp=" + c.opt}
		}
		s, err := spec(t, containertypes.Config{}, host)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		// spec() uses no daemon profile: recompute with this case's.
		p, err := seccompFor(s, c.privileged, c.opt, c.daemon, false)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := "none"
		switch {
		case p == nil:
		case p.DefaultAction == specs.ActAllow:
			got = "custom"
		default:
			got = "default"
		}
		if got != c.want {
			t.Errorf("%s: got %s filter, want %s", c.name, got, c.want)
		}
	}
}

func TestSeccompUnsupported(t *testing.T) {
	s, err := spec(t, containertypes.Config{}, containertypes.HostConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := seccompFor(s, false, "", "", true); p != nil || err != nil {
		t.Errorf("default without seccomp: %v, %v", p, err)
	}
	if _, err := seccompFor(s, false, `{"defaultAction":"SCMP_ACT_ALLOW"}`, "", true); errdefs.KindOf(err) != errdefs.KindNotImplemented {
		t.Errorf("custom profile without seccomp: %v", err)
	}
}

// A 32-bit engine's filter must cover the 64-bit ABI of the same CPU
// family, or a 64-bit image on a 64-bit kernel dies at its first call.
func TestSeccompCompatArches(t *testing.T) {
	for goarch, want := range map[string][]specs.Arch{
		"arm":   {specs.ArchARM, specs.ArchAARCH64},
		"386":   {specs.ArchX86, specs.ArchX86_64, specs.ArchX32},
		"amd64": nil,
	} {
		p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}
		addCompatArches(p, goarch)
		if !slices.Equal(p.Architectures, want) {
			t.Errorf("%s: architectures %v, want %v", goarch, p.Architectures, want)
		}
	}
	// The profile's list is the profile's own: filtering it (x32 out of
	// the built-in profile) must leave the table for the next container.
	before := slices.Clone(compatArches["386"])
	for range 2 {
		p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}
		addCompatArches(p, "386")
		p.Architectures = slices.DeleteFunc(p.Architectures, func(a specs.Arch) bool { return a == specs.ArchX32 })
		if slices.Contains(p.Architectures, "") {
			t.Errorf("an empty architecture in %q", p.Architectures)
		}
	}
	if !slices.Equal(compatArches["386"], before) {
		t.Errorf("the 386 table changed to %q", compatArches["386"])
	}
	p := &specs.LinuxSeccomp{Architectures: []specs.Arch{specs.ArchARM}}
	addCompatArches(p, "arm")
	if len(p.Architectures) != 1 {
		t.Errorf("a profile's own architectures were replaced: %v", p.Architectures)
	}
}

func TestCheckSeccompProfile(t *testing.T) {
	for _, ok := range []string{"", SeccompBuiltin, SeccompUnconfined, `{"defaultAction":"SCMP_ACT_ALLOW"}`} {
		if err := CheckSeccompProfile(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	if err := CheckSeccompProfile(`{"defaultAction":`); err == nil {
		t.Error("truncated JSON accepted")
	}
}
