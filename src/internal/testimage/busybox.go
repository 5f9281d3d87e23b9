package testimage

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

var fetchMu sync.Mutex

// CacheDir is where foreign packages are kept between test runs.
func CacheDir() string {
	if d := os.Getenv("BALENA_ENGINE_TEST_CACHE"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "balena-engine-test-cache")
}

// BusyboxFor returns a static busybox for a Debian architecture ("armel",
// "arm64", ...): the host's /bin/busybox for the host's own, otherwise
// Debian's busybox-static for that architecture, fetched once with apt
// through a separate package list (no dpkg --add-architecture) and kept in
// CacheDir.
func BusyboxFor(debArch string) (string, error) {
	host, err := exec.Command("dpkg", "--print-architecture").Output()
	if err != nil {
		return "", fmt.Errorf("dpkg --print-architecture: %w", err)
	}
	if strings.TrimSpace(string(host)) == debArch {
		return "/bin/busybox", nil
	}
	fetchMu.Lock()
	defer fetchMu.Unlock()
	dir := filepath.Join(CacheDir(), "busybox-"+debArch)
	bin := filepath.Join(dir, "root", "bin", "busybox")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	for _, d := range []string{"lists/partial", "cache/archives/partial", "deb"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return "", err
		}
	}
	apt := func(args ...string) ([]byte, error) {
		base := []string{"-q", "-o", "APT::Architecture=" + debArch, "-o", "APT::Architectures::=" + debArch,
			"-o", "Dir::State::Lists=" + filepath.Join(dir, "lists"), "-o", "Dir::Cache=" + filepath.Join(dir, "cache"),
			"-o", "APT::Sandbox::User=root"}
		cmd := exec.Command("apt-get", append(base, args...)...)
		cmd.Dir = filepath.Join(dir, "deb")
		return cmd.CombinedOutput()
	}
	// update may complain of one index (a mirror syncing) and still have
	// what we need; the download says whether it does.
	apt("update")
	if out, err := apt("download", "busybox-static"); err != nil {
		return "", fmt.Errorf("apt-get download busybox-static for %s: %v\n%s", debArch, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "deb", "busybox-static_*.deb"))
	if len(debs) == 0 {
		return "", fmt.Errorf("busybox-static for %s: no package downloaded", debArch)
	}
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], filepath.Join(dir, "root")).CombinedOutput(); err != nil {
		return "", fmt.Errorf("dpkg-deb -x: %v\n%s", err, out)
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("busybox-static for %s has no /bin/busybox", debArch)
	}
	return bin, nil
}
