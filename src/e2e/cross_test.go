//go:build cross

package e2e

// The cross-built binaries (make cross) are checked here: each is static,
// for the right machine, and prints its version under the CPU of its own
// architecture (qemu-user with the CPU from arch/, or natively; where this
// kernel refuses a native one, its QEMU guest in make test runs it). And the
// emulated CPUs really do enforce the instruction set: an ARM binary built
// for a newer CPU must die on an older one, or the passing runs prove
// nothing.

import (
	"bytes"
	"debug/elf"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/balena-os/balena-engine/src/archdef"
)

func crossSetup(t *testing.T) (string, []archdef.Arch) {
	bindir, archDir := os.Getenv("BALENA_ENGINE_BINDIR"), os.Getenv("ARCH_DIR")
	if bindir == "" || archDir == "" {
		t.Fatal("BALENA_ENGINE_BINDIR and ARCH_DIR must be set (run 'make cross-check')")
	}
	arches, err := archdef.LoadAll(archDir)
	if err != nil {
		t.Fatal(err)
	}
	return bindir, arches
}

// runAs runs bin under arch a's CPU.
func runAs(a archdef.Arch, bin string, args ...string) (string, error) {
	cmd := a.Command(bin, args...)
	// The client role is chosen by name; the binary is called balena-engine.
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix:///nonexistent/balena-engine.sock")
	err := cmd.Run()
	return out.String(), err
}

var elfMachine = map[string]elf.Machine{
	"arm": elf.EM_ARM, "arm64": elf.EM_AARCH64, "386": elf.EM_386, "amd64": elf.EM_X86_64,
}

func TestCrossBinaries(t *testing.T) {
	bindir, arches := crossSetup(t)
	for _, a := range arches {
		t.Run(a.Name, func(t *testing.T) {
			bin := filepath.Join(bindir, a.Name, "balena-engine")
			f, err := elf.Open(bin)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Machine != elfMachine[a.GOARCH] {
				t.Errorf("ELF machine %v, want %v", f.Machine, elfMachine[a.GOARCH])
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Error("dynamically linked (has an ELF interpreter)")
				}
			}

			out, err := runAs(a, bin, "--version")
			if a.NativeRefused(err) {
				t.Skip(a.NativeRefusedNote())
			}
			if err != nil {
				t.Fatalf("--version under %s %s: %v\n%s", a.QEMUUser, a.QEMUUserCPU, err, out)
			}
			want := "linux/" + a.GOARCH
			if a.GOARM != "" {
				want += " (v" + a.GOARM + ")"
			}
			if !strings.HasPrefix(out, "balena-engine version ") || !strings.Contains(out, want) {
				t.Errorf("--version = %q, want it to name %q", out, want)
			}
			t.Logf("%s: %s", a.Name, strings.TrimSpace(out))

			// The version command prints the client part, then fails
			// because no daemon answers.
			out, err = runAs(a, bin, "version")
			if err == nil || !strings.Contains(out, "OS/Arch:") || !strings.Contains(out, a.Platform) ||
				!strings.Contains(out, "Cannot connect to the balena-engine daemon") {
				t.Errorf("version without a daemon: err = %v, output:\n%s", err, out)
			}
		})
	}
}

func TestCrossCPUEnforcement(t *testing.T) {
	bindir, arches := crossSetup(t)
	checked := 0
	for _, older := range arches {
		for _, newer := range arches {
			if older.GOARCH != "arm" || newer.GOARCH != "arm" || newer.GOARM <= older.GOARM {
				continue
			}
			bin := filepath.Join(bindir, newer.Name, "balena-engine")
			out, err := runAs(older, bin, "--version")
			if err == nil {
				t.Errorf("the %s binary ran under %s's CPU (%s): the emulated CPU does not enforce the instruction set\n%s",
					newer.Name, older.Name, older.QEMUUserCPU, out)
			}
			checked++
		}
	}
	if checked < 3 {
		t.Errorf("only %d ARM pairs checked; the arch table should give armv5<armv6<armv7", checked)
	}
}
