//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// docker cp into a container: what is copied keeps the owners the client's
// tar gives it, or with -a (copyUIDGID) takes the container's user and
// its group, as Docker does; the docker CLI's noOverwriteDirNonDir
// refuses to replace a directory with a file and a file with a directory
// in Docker's words, and without it they are replaced.
func TestE2ECopyOwnersAndOverwrite(t *testing.T) {
	p, _, env := withBusybox(t)
	docker := dockerOK(t, env)
	docker("run", "-d", "--network", "none", "--name", "cpu", "--user", "1234:5678", "busybox", "sleep", "1000")
	docker("run", "-d", "--network", "none", "--name", "cpn", "--user", "nobody", "busybox", "sleep", "1000")
	docker("run", "-d", "--network", "none", "--name", "cpr", "busybox", "sleep", "1000")
	defer run(t, env, "docker", "rm", "-f", "cpu", "cpn", "cpr")
	src := filepath.Join(p.dir, "owned")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "sub", "f"), []byte("x"), 0o644)
	for _, n := range []string{src, filepath.Join(src, "sub"), filepath.Join(src, "sub", "f")} {
		if err := os.Lchown(n, 4321, 8765); err != nil {
			t.Fatal(err)
		}
	}
	owners := func(ctr, dir string) string {
		return docker("exec", "-u", "0", ctr, "sh", "-c", "cd "+dir+" && stat -c '%n %u:%g' owned owned/sub owned/sub/f")
	}
	for _, c := range []struct {
		ctr, flag, want string
	}{
		{"cpu", "", "4321:8765"},     // the tar's owners
		{"cpu", "-a", "1234:5678"},   // the container's user and group
		{"cpn", "-a", "65534:65534"}, // a user by name, its group from /etc/passwd
		{"cpr", "-a", "4321:8765"},   // no user: the tar's owners, as Docker
	} {
		dir := "/tmp/t" + c.flag
		docker("exec", "-u", "0", c.ctr, "mkdir", "-p", dir)
		args := []string{"cp"}
		if c.flag != "" {
			args = append(args, c.flag)
		}
		docker(append(args, src, c.ctr+":"+dir)...)
		want := "owned W\nowned/sub W\nowned/sub/f W"
		if got := owners(c.ctr, dir); got != strings.ReplaceAll(want, "W", c.want) {
			t.Errorf("cp %s into %s: %q, want all %s", c.flag, c.ctr, got, c.want)
		}
	}

	// A tar whose entry would replace a directory with a file, or the
	// other way round.
	docker("exec", "cpr", "sh", "-c", "mkdir -p /tmp/o/adir && echo f > /tmp/o/afile")
	entryTar := func(name string, dir bool) *bytes.Buffer {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		if dir {
			tw.WriteHeader(&tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o755})
		} else {
			tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
			tw.Write([]byte("z"))
		}
		tw.Close()
		return &b
	}
	for _, c := range []struct {
		name string
		dir  bool
		want string
	}{
		{"adir", false, `cannot overwrite directory "adir" with non-directory "/tmp/o"`},
		{"afile", true, `cannot overwrite non-directory "afile" with directory "/tmp/o"`},
	} {
		cmd := exec.Command("docker", "cp", "-", "cpr:/tmp/o")
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdin = entryTar(c.name, c.dir)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		r := result{stderr: stderr.String()}
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		}
		if r.code != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("cp - of %s: %d %q, want %q", c.name, r.code, r.stderr, c.want)
		}
		// Through the API without the option: replaced.
		if code, body := apiCall(t, p, "PUT", "/v1.45/containers/cpr/archive?path=/tmp/o", entryTar(c.name, c.dir).String()); code != 200 {
			t.Errorf("PUT of %s without noOverwriteDirNonDir: %d %s", c.name, code, body)
		}
	}
	if got := docker("exec", "cpr", "sh", "-c", "cat /tmp/o/adir; test -d /tmp/o/afile && echo dir"); got != "zdir" {
		t.Errorf("after the replacements: %q", got)
	}
}
