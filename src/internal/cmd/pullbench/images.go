package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/balena-os/balena-engine/src/internal/testimage"
	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// benchImage is one of the images the benchmark pulls.
type benchImage struct {
	key   string // repository name under bench/, and the report's heading
	title string
	about string // how it was made, for the report
	info  imageInfo
	blobs []ocispec.Descriptor // the manifest's layers, for the floor
}

// The many-small-files image: a Debian root made by mmdebstrap from
// Debian's packages (Python, Perl, documentation, manual pages, locale
// sources, time zones, vim's runtime), kept in the cache once built.
const (
	debianSuite    = "bookworm"
	debianPackages = "python3,python3-babel,python3-pygments,python3-docutils,python3-setuptools,python3-jinja2,perl,manpages,manpages-dev,vim-runtime,locales,tzdata,git,ca-certificates,libicu72"
)

// debianRoot returns the root tar, building it into cache first if needed.
func debianRoot(cache string) (string, string, error) {
	recipe := "mmdebstrap --variant=essential --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr --include=" + debianPackages + " --skip=output/dev " + debianSuite
	dir := filepath.Join(cache, "pullbench-debian-"+digest.FromString(recipe).Encoded()[:16])
	out := filepath.Join(dir, "root.tar")
	if _, err := os.Stat(out); err == nil {
		return out, recipe, nil
	}
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return "", "", fmt.Errorf("mmdebstrap not found (apt-get install mmdebstrap)")
	}
	fmt.Fprintln(os.Stderr, "building the Debian root with mmdebstrap (once; kept in "+dir+")...")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", "", err
	}
	tmp, err := os.MkdirTemp(cache, "pullbench-debian-partial-")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(tmp)
	args := append(strings.Fields(recipe)[1:], filepath.Join(tmp, "root.tar"))
	if b, err := exec.Command("mmdebstrap", args...).CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("mmdebstrap: %v: %s", err, tail(string(b), 3000))
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", "", err
	}
	return out, recipe, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// smallImage splits the Debian root into three layers, as an image built
// from a base and two install steps would be: /usr/share, the Python
// library, and the rest (the first layer). With every > 1 it keeps only
// every Nth regular file (all directories and symlinks, and the hard links
// to the files kept), a smaller image of the same shape for slow guests.
// The image claims platform (its files are this machine's whatever it
// says).
func smallImage(cache string, every int, platform ocispec.Platform) (testimage.Image, string, error) {
	root, recipe, err := debianRoot(cache)
	if err != nil {
		return testimage.Image{}, "", err
	}
	f, err := os.Open(root)
	if err != nil {
		return testimage.Image{}, "", err
	}
	defer f.Close()
	var bufs [3]bytes.Buffer
	var tws [3]*tar.Writer
	for i := range tws {
		tws[i] = tar.NewWriter(&bufs[i])
	}
	layerOf := func(name string) int {
		name = strings.TrimPrefix(name, "./")
		switch {
		case strings.HasPrefix(name, "usr/share/"):
			return 1
		case strings.HasPrefix(name, "usr/lib/python3"):
			return 2
		}
		return 0
	}
	tr := tar.NewReader(f)
	regular := 0
	dropped := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return testimage.Image{}, "", fmt.Errorf("%s: %w", root, err)
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			regular++
			if (regular-1)%every != 0 {
				dropped[hdr.Name] = true
				continue
			}
		case tar.TypeLink:
			if dropped[hdr.Linkname] {
				continue
			}
		}
		i := layerOf(hdr.Name)
		if hdr.Typeflag == tar.TypeLink && layerOf(hdr.Linkname) != i {
			// A hard link across layers cannot be: a copy instead.
			return testimage.Image{}, "", fmt.Errorf("%s: hard link %s -> %s across layers", root, hdr.Name, hdr.Linkname)
		}
		if err := tws[i].WriteHeader(hdr); err != nil {
			return testimage.Image{}, "", err
		}
		if _, err := io.Copy(tws[i], tr); err != nil {
			return testimage.Image{}, "", err
		}
	}
	var layers []testimage.Layer
	for i := range tws {
		if err := tws[i].Close(); err != nil {
			return testimage.Image{}, "", err
		}
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz) // the default level, as docker push uses
		zw.Write(bufs[i].Bytes())
		zw.Close()
		t := bufs[i].Bytes()
		layers = append(layers, testimage.Layer{Tar: t, Blob: gz.Bytes(), DiffID: digest.FromBytes(t)})
	}
	about := "a Debian root made by `" + recipe + " root.tar` from Debian's packages (the cache keeps it), in 3 layers: `/usr/share`, `/usr/lib/python3*`, the rest"
	if every > 1 {
		about += fmt.Sprintf("; every %s regular file of it only (`-every %d`: all directories and symlinks, and the hard links to the files kept)", ordinal(every), every)
	}
	return testimage.New(platform, ocispec.ImageConfig{Cmd: []string{"sh"}}, layers...), about, nil
}

func ordinal(n int) string {
	suffix := "th"
	switch {
	case n%100 >= 11 && n%100 <= 13:
	case n%10 == 1:
		suffix = "st"
	case n%10 == 2:
		suffix = "nd"
	case n%10 == 3:
		suffix = "rd"
	}
	return fmt.Sprintf("%d%s", n, suffix)
}

// describe reads an image back from the registry: its layers and what
// they hold.
func describe(regHost, repo string) (imageInfo, []ocispec.Descriptor, error) {
	var info imageInfo
	req, _ := http.NewRequest("GET", "http://"+regHost+"/v2/"+repo+"/manifests/v1", nil)
	req.Header.Set("Accept", testimage.MediaTypeManifest)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return info, nil, err
	}
	defer resp.Body.Close()
	var m ocispec.Manifest
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return info, nil, fmt.Errorf("manifest of %s: %w", repo, err)
	}
	for _, l := range m.Layers {
		rc, err := openBlob(context.Background(), regHost, repo, l.Digest)
		if err != nil {
			return info, nil, err
		}
		zr, err := gzip.NewReader(rc)
		if err != nil {
			rc.Close()
			return info, nil, err
		}
		cr := &countReader{r: zr}
		tr := tar.NewReader(cr)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				rc.Close()
				return info, nil, err
			}
			if hdr.Typeflag == tar.TypeReg {
				info.files++
				info.bytes += hdr.Size
			}
		}
		io.Copy(io.Discard, cr)
		rc.Close()
		info.tarBytes += cr.n
		info.blobBytes += l.Size
	}
	info.layers = len(m.Layers)
	return info, m.Layers, nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func openBlob(ctx context.Context, regHost, repo string, d digest.Digest) (io.ReadCloser, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+regHost+"/v2/"+repo+"/blobs/"+d.String(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("blob %s: %s", d, resp.Status)
	}
	return resp.Body, nil
}
