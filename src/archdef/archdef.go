// Package archdef reads the architecture definitions in the repository's
// arch/ directory: one KEY=VALUE file per architecture, the single place
// that says how each device architecture is built (Go and C settings),
// packaged (Yocto, Buildroot) and emulated (qemu-user, qemu-system). The
// shell tools source the same files; this package serves the Go tests and
// harnesses.
package archdef

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// Arch is one architecture. Empty fields mean "none" (for example no
// QEMU system emulation for armv5, or no qemu-user for native ones).
type Arch struct {
	Name            string `conf:"NAME"`
	Platform        string `conf:"PLATFORM"` // OCI platform, with the ARM variant
	GOARCH          string `conf:"GOARCH"`
	GOARM           string `conf:"GOARM"`
	GO386           string `conf:"GO386"`
	GOAMD64         string `conf:"GOAMD64"`
	DebianArch      string `conf:"DEBIAN_ARCH"`
	CC              string `conf:"CC"`
	CCPackage       string `conf:"CC_PACKAGE"`
	LibcPackage     string `conf:"LIBC_PACKAGE"`
	YoctoTargetArch string `conf:"YOCTO_TARGET_ARCH"`
	YoctoTune       string `conf:"YOCTO_TUNE"`
	BR2Arch         string `conf:"BR2_ARCH"`
	BR2CPU          string `conf:"BR2_CPU"`
	QEMUUser        string `conf:"QEMU_USER"` // empty: runs natively on x86_64
	QEMUUserCPU     string `conf:"QEMU_USER_CPU"`
	QEMUSystem      string `conf:"QEMU_SYSTEM"` // empty: no kernel boots it in QEMU
	QEMUMachine     string `conf:"QEMU_MACHINE"`
	QEMUCPU         string `conf:"QEMU_CPU"`
	KernelPackage   string `conf:"KERNEL_PACKAGE"`
	// Used by qemu-tests/ to boot the guest.
	QEMUGuest     string `conf:"QEMU_GUEST"` // boot this architecture's guest instead (armv5: armv7)
	QEMUConsole   string `conf:"QEMU_CONSOLE"`
	QEMUMemory    string `conf:"QEMU_MEMORY"` // MiB
	QEMUDisk      string `conf:"QEMU_DISK"`   // virtio or sd
	QEMUModules   string `conf:"QEMU_MODULES"`
	QEMUDTB       string `conf:"QEMU_DTB"`
	QEMUDTBDelete string `conf:"QEMU_DTB_DELETE"`
	QEMUArgs      string `conf:"QEMU_ARGS"` // more QEMU options for this machine
}

// required are the keys that may not be empty.
var required = []string{"NAME", "PLATFORM", "GOARCH", "DEBIAN_ARCH", "CC", "CC_PACKAGE",
	"LIBC_PACKAGE", "YOCTO_TARGET_ARCH", "YOCTO_TUNE", "BR2_ARCH", "BR2_CPU"}

// Parse reads one definition. Every key of Arch must appear exactly once
// (an empty value says "none" explicitly); unknown keys are errors, so a
// typo cannot silently drop a fact.
func Parse(r io.Reader) (Arch, error) {
	var a Arch
	v := reflect.ValueOf(&a).Elem()
	fields := map[string]reflect.Value{}
	for i := 0; i < v.NumField(); i++ {
		fields[v.Type().Field(i).Tag.Get("conf")] = v.Field(i)
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return a, fmt.Errorf("line %d: want KEY=VALUE, got %q", n, line)
		}
		f, known := fields[key]
		if !known {
			return a, fmt.Errorf("line %d: unknown key %s", n, key)
		}
		if seen[key] {
			return a, fmt.Errorf("line %d: %s given twice", n, key)
		}
		seen[key] = true
		if strings.HasPrefix(val, `"`) {
			uq, err := strconv.Unquote(val)
			if err != nil {
				return a, fmt.Errorf("line %d: %s: %w", n, key, err)
			}
			val = uq
		} else if strings.ContainsAny(val, " \t'$`\\") {
			return a, fmt.Errorf("line %d: %s: quote values with spaces or shell characters", n, key)
		}
		f.SetString(val)
	}
	if err := sc.Err(); err != nil {
		return a, err
	}
	for key := range fields {
		if !seen[key] {
			return a, fmt.Errorf("missing key %s (write %s= for none)", key, key)
		}
	}
	for _, key := range required {
		if fields[key].String() == "" {
			return a, fmt.Errorf("%s must not be empty", key)
		}
	}
	if a.QEMUUser != "" && a.QEMUUserCPU == "" {
		return a, fmt.Errorf("QEMU_USER is set but QEMU_USER_CPU is empty: the CPU is what enforces the instruction set")
	}
	return a, nil
}

// Load reads dir/NAME.conf.
func Load(dir, name string) (Arch, error) {
	f, err := os.Open(filepath.Join(dir, name+".conf"))
	if err != nil {
		return Arch{}, err
	}
	defer f.Close()
	a, err := Parse(f)
	if err != nil {
		return a, fmt.Errorf("%s: %w", f.Name(), err)
	}
	if a.Name != name {
		return a, fmt.Errorf("%s: NAME is %q, want the file's name %q", f.Name(), a.Name, name)
	}
	return a, nil
}

// LoadAll reads every definition in dir, sorted by name.
func LoadAll(dir string) ([]Arch, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.conf"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no architecture definitions in %s", dir)
	}
	sort.Strings(paths)
	var out []Arch
	for _, p := range paths {
		a, err := Load(dir, strings.TrimSuffix(filepath.Base(p), ".conf"))
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// Command runs bin under a's CPU: under qemu-user with the CPU arch/
// names, or natively where a has no qemu-user (i386 and x86_64 on an
// x86_64 build machine).
func (a Arch) Command(bin string, args ...string) *exec.Cmd {
	if a.QEMUUser == "" {
		return exec.Command(bin, args...)
	}
	return exec.Command(a.QEMUUser, append([]string{"-cpu", a.QEMUUserCPU, bin}, args...)...)
}

// NativeRefused reports whether err (from running a Command) says that
// this machine's kernel does not execute the binary's format at all: some
// x86_64 build machines refuse every 32-bit x86 executable ("exec format
// error"), and qemu-i386 cannot stand in (it crashes on Go binaries).
// Such a binary is proven in its QEMU guest instead (qemu-tests/run).
func (a Arch) NativeRefused(err error) bool {
	return a.QEMUUser == "" && errors.Is(err, syscall.ENOEXEC)
}

// NativeRefusedNote is what a test says when it leaves a binary to the
// guest for that reason.
func (a Arch) NativeRefusedNote() string {
	return fmt.Sprintf("this kernel refuses %s executables (exec format error): the %s binaries run in the %s QEMU guest instead (make qemu-test ARCH=%s, part of make test)",
		a.Name, a.Name, a.Name, a.Name)
}
