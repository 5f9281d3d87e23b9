package archdef

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// repoArch is the repository's arch/ directory.
func repoArch(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "arch")
}

// The repository's own definitions: all six, each consistent with itself.
func TestRepositoryDefinitions(t *testing.T) {
	all, err := LoadAll(repoArch(t))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range all {
		names = append(names, a.Name)
		// The platform must agree with the Go settings.
		want := "linux/" + a.GOARCH
		if a.GOARCH == "arm" {
			want += "/v" + a.GOARM
		}
		if a.Platform != want {
			t.Errorf("%s: PLATFORM %s disagrees with GOARCH/GOARM (%s)", a.Name, a.Platform, want)
		}
		if a.GOARCH == "arm" && a.GOARM == "" {
			t.Errorf("%s: GOARCH=arm needs GOARM", a.Name)
		}
		if a.GOARCH == "386" && a.GO386 != "sse2" {
			t.Errorf("%s: Go's 386 port needs GO386=sse2", a.Name)
		}
		if a.GOARCH != "amd64" && a.GOARCH != "386" && a.QEMUUser == "" {
			t.Errorf("%s: a foreign architecture needs QEMU_USER to be checked here", a.Name)
		}
		if (a.QEMUSystem == "") != (a.KernelPackage == "") {
			t.Errorf("%s: QEMU_SYSTEM and KERNEL_PACKAGE must be both set or both empty", a.Name)
		}
	}
	if got := strings.Join(names, " "); got != "aarch64 armv5 armv6 armv7 i386 x86_64" {
		t.Errorf("architectures = %s", got)
	}
}

func TestParseErrors(t *testing.T) {
	good, err := Load(repoArch(t), "armv6")
	if err != nil {
		t.Fatal(err)
	}
	if good.QEMUUserCPU != "arm1176" || good.GOARM != "6" || good.CC != "arm-linux-gnueabi-gcc" {
		t.Errorf("armv6 = %+v", good)
	}
	base := "NAME=x\nPLATFORM=linux/amd64\nGOARCH=amd64\nGOARM=\nGO386=\nGOAMD64=v1\nDEBIAN_ARCH=amd64\nCC=cc\nCC_PACKAGE=gcc\n" +
		"LIBC_PACKAGE=libc6-dev\nYOCTO_TARGET_ARCH=x86_64\nYOCTO_TUNE=core2-64\nBR2_ARCH=BR2_x86_64\nBR2_CPU=BR2_x86_x86_64\n" +
		"QEMU_USER=\nQEMU_USER_CPU=\nQEMU_SYSTEM=\nQEMU_MACHINE=\nQEMU_CPU=\nKERNEL_PACKAGE=\n" +
		"QEMU_GUEST=\nQEMU_CONSOLE=\nQEMU_MEMORY=\nQEMU_DISK=\nQEMU_MODULES=\nQEMU_DTB=\nQEMU_DTB_DELETE=\nQEMU_ARGS=\n"
	if _, err := Parse(strings.NewReader(base)); err != nil {
		t.Fatalf("base definition rejected: %v", err)
	}
	cases := map[string]string{
		"unknown key":   base + "GOMIPS=softfloat\n",
		"duplicate":     base + "CC=gcc\n",
		"missing":       strings.Replace(base, "QEMU_CPU=\n", "", 1),
		"empty needed":  strings.Replace(base, "CC=cc", "CC=", 1),
		"no equals":     base + "oops\n",
		"unquoted":      strings.Replace(base, "YOCTO_TUNE=core2-64", "YOCTO_TUNE=core2 64", 1),
		"cpu-less qemu": strings.Replace(base, "QEMU_USER=\n", "QEMU_USER=qemu-x86_64\n", 1),
	}
	for name, text := range cases {
		if _, err := Parse(strings.NewReader(text)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	q, err := Parse(strings.NewReader(strings.Replace(base, "YOCTO_TUNE=core2-64", `YOCTO_TUNE="core2 64"`, 1)))
	if err != nil || q.YoctoTune != "core2 64" {
		t.Errorf("quoted value: %q, %v", q.YoctoTune, err)
	}
}

// A file the kernel has no loader for fails as a refused 32-bit x86
// binary does on a kernel without IA-32 emulation: that, and only that,
// counts as refused, and only where the architecture runs natively.
func TestNativeRefused(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "noformat")
	if err := os.WriteFile(bin, []byte("\x7fELF\x09\x09not a loadable format"), 0o755); err != nil {
		t.Fatal(err)
	}
	native := Arch{Name: "i386"}
	err := native.Command(bin).Run()
	if !native.NativeRefused(err) {
		t.Errorf("an unloadable file: %v, not seen as refused", err)
	}
	emulated := Arch{Name: "armv7", QEMUUser: "qemu-arm-static", QEMUUserCPU: "cortex-a15"}
	if emulated.NativeRefused(err) {
		t.Error("an emulated architecture counted as refused natively")
	}
	if err := native.Command("/bin/false").Run(); err == nil || native.NativeRefused(err) {
		t.Errorf("a failing program: %v, counted as refused", err)
	}
	if err := native.Command(filepath.Join(dir, "missing")).Run(); err == nil || native.NativeRefused(err) {
		t.Errorf("a missing program: %v, counted as refused", err)
	}
}
