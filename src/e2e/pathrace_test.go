//go:build e2e

package e2e

// docker cp and docker export against a container that swaps a directory
// and a symlink to "/" in a loop (CVE-2018-15664): whatever the timing,
// nothing of the host may be read or written.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/balena-os/balena-engine/src/client"
)

// swapperSource exchanges two paths with renameat2(RENAME_EXCHANGE) for
// as long as it runs; busybox has no applet for it.
const swapperSource = `#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE 2
#endif
int main(int argc, char **argv) {
	if (argc != 3) return 2;
	for (;;) {
		if (syscall(SYS_renameat2, AT_FDCWD, argv[1], AT_FDCWD, argv[2], RENAME_EXCHANGE) != 0) {
			perror("renameat2");
			return 1;
		}
	}
}
`

// buildSwapper compiles the swapper as a static binary for the busybox image.
func buildSwapper(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc is needed to build the swapping program")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "swap.c")
	if err := os.WriteFile(src, []byte(swapperSource), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "swap")
	if out, err := exec.Command("gcc", "-static", "-O2", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	return bin
}

func TestE2EPathRace(t *testing.T) {
	const rounds = 1000
	p, _, env := withBusybox(t)
	swapper := buildSwapper(t)

	var rb [8]byte
	rand.Read(rb[:])
	tag := "pathrace-" + hex.EncodeToString(rb[:])
	// The host's marker is at "/"+tag: a container path /w/d/TAG read or
	// written while /w/d is the symlink to "/", if resolved on the host's
	// side, reaches it.
	hostFile := "/" + tag
	hostSecret := "HOST-" + tag + "\n"
	if err := os.WriteFile(hostFile, []byte(hostSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.Remove(hostFile)
		matches, _ := filepath.Glob("/" + tag + "-put-*")
		for _, m := range matches {
			os.Remove(m)
		}
	})

	script := "mkdir -p /w/d && echo inside > /w/d/" + tag + " && ln -s / /w/l && " +
		"while [ ! -x /tmp/swap ]; do sleep 0.1; done; exec /tmp/swap /w/d /w/l"
	if r := run(t, env, "docker", "run", "-d", "--network", "none", "--name", "race", "busybox", "sh", "-c", script); r.code != 0 {
		t.Fatalf("run: %s", r.stderr)
	}
	t.Cleanup(func() { run(t, env, "docker", "rm", "-f", "race") })
	if r := run(t, env, "docker", "cp", swapper, "race:/tmp/swap"); r.code != 0 {
		t.Fatalf("cp of the swapper: %s", r.stderr)
	}
	// The swapper runs once /w/l is sometimes a directory.
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := run(t, env, "docker", "exec", "race", "sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do [ -d /w/l ] && [ ! -L /w/l ] && echo swapping && exit; done")
		if strings.Contains(r.stdout, "swapping") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the swapper did not start: %q %q", r.stdout, r.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}

	c := apiClient(t, p)
	ctx := context.Background()

	// docker cp out: GET /w/d/TAG.
	var got, missing, failed, escapes int
	for i := 0; i < rounds; i++ {
		resp, err := c.Do(ctx, "GET", "/containers/race/archive", url.Values{"path": {"/w/d/" + tag}}, nil)
		if err != nil {
			var re *client.ResponseError
			if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
				missing++ // /w/d was the symlink: the container's own /TAG, which it has not
				continue
			}
			// The stat header and the tar come from one open file, so
			// nothing else is expected; counted and shown if it happens.
			if failed++; failed <= 3 {
				t.Logf("GET %d: %v", i, err)
			}
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			continue // a cut stream: the file changed under the copy
		}
		got++
		if bytes.Contains(body, []byte(hostSecret)) {
			escapes++
		}
	}
	t.Logf("GET: %d archives, %d not found, %d failed otherwise, %d with the host's file", got, missing, failed, escapes)
	if failed > 0 {
		t.Errorf("%d GETs failed other than with 404", failed)
	}
	if escapes > 0 {
		t.Errorf("%d of %d GETs returned the host's %s", escapes, rounds, hostFile)
	}

	// docker cp in: PUT a file into /w/d.
	var put, refused int
	for i := 0; i < rounds; i++ {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		body := []byte("from the test\n")
		name := tag + "-put-" + strconv.Itoa(i)
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write(body)
		tw.Close()
		resp, err := c.DoHeader(ctx, "PUT", "/containers/race/archive", url.Values{"path": {"/w/d"}},
			&buf, http.Header{"Content-Type": {"application/x-tar"}})
		if err != nil {
			// /w/d was the symlink: refused as not a directory, or a
			// parent moved during the extraction.
			if refused++; refused <= 3 {
				t.Logf("PUT %d: %v", i, err)
			}
			continue
		}
		resp.Body.Close()
		put++
	}
	written, _ := filepath.Glob("/" + tag + "-put-*")
	t.Logf("PUT: %d extracted, %d refused, %d written on the host", put, refused, len(written))
	if len(written) > 0 {
		t.Errorf("%d of %d PUTs wrote into the host's /: %v", len(written), rounds, written[:min(len(written), 5)])
	}
	if put == 0 {
		t.Error("no PUT succeeded")
	}

	// docker export walks the whole tree: never into the host's.
	var exportEscapes int
	for i := 0; i < rounds/10; i++ {
		rc, err := c.ContainerExport(ctx, "race")
		if err != nil {
			t.Fatalf("export %d: %v", i, err)
		}
		tr := tar.NewReader(rc)
		for {
			hdr, err := tr.Next()
			if err != nil {
				break
			}
			if strings.HasSuffix(hdr.Name, tag) && hdr.Typeflag == tar.TypeReg {
				b, _ := io.ReadAll(tr)
				if string(b) == hostSecret {
					exportEscapes++
				}
			}
		}
		rc.Close()
	}
	t.Logf("export: %d of %d with the host's file", exportEscapes, rounds/10)
	if exportEscapes > 0 {
		t.Errorf("%d exports held the host's %s", exportEscapes, hostFile)
	}

	// The container is still whole: the swapper ran throughout.
	if r := run(t, env, "docker", "inspect", "--format", "{{.State.Running}}", "race"); strings.TrimSpace(r.stdout) != "true" {
		t.Errorf("the swapper stopped: %q %q", r.stdout, r.stderr)
	}
}
