// Command bigimage builds a multi-layer image of made-up files and pushes it
// to a registry, for the power-cut trials (qemu-tests/powercut): the pull
// of the busybox test image is over too soon for a kill to land in it, so
// these images are big enough, and in enough layers, for a pull under TCG
// to take several seconds. With -edit, every file but the base layer's has
// a few bytes changed every 64 KiB: the next version of the same image,
// the target of a delta.
//
//	go run ./src/internal/cmd/bigimage -push 127.0.0.1:5000/big1:latest -size 24MiB -layers 3 -seed 1
//
// The first layer depends only on -size and -layers, not on -seed, so
// images pushed with different seeds share their base layer (a pull then
// skips it, as a real update would). Half of the files are random bytes
// (gzip cannot shrink them: the transfer is as long as the extraction),
// half repeated text. Everything is deterministic: the same flags give the
// same digests.
package main

import (
	"archive/tar"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"

	"github.com/balena-os/balena-engine/src/internal/testimage"
	"github.com/balena-os/balena-engine/src/registry"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func main() {
	push := flag.String("push", "", "push the image to this reference (host/repo:tag)")
	size := flag.String("size", "24MiB", "bytes of file content in all layers together (suffix KiB or MiB)")
	layers := flag.Int("layers", 3, "number of layers")
	seed := flag.Uint64("seed", 1, "seed of every layer but the first")
	platform := flag.String("platform", platforms.DefaultString(), "platform the image claims")
	edit := flag.Bool("edit", false, "change a few bytes every 64 KiB of every file above the base layer")
	flag.Parse()
	if err := run(*push, *size, *layers, *seed, *platform, *edit); err != nil {
		fmt.Fprintln(os.Stderr, "bigimage:", err)
		os.Exit(1)
	}
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "MiB"):
		mult, s = 1<<20, strings.TrimSuffix(s, "MiB")
	case strings.HasSuffix(s, "KiB"):
		mult, s = 1<<10, strings.TrimSuffix(s, "KiB")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want a positive number of bytes, KiB or MiB", s)
	}
	return n * mult, nil
}

func run(push, sizeFlag string, nLayers int, seed uint64, platform string, edit bool) error {
	if push == "" {
		return fmt.Errorf("nothing to do: give -push")
	}
	if nLayers < 1 {
		return fmt.Errorf("-layers %d: want at least 1", nLayers)
	}
	size, err := parseSize(sizeFlag)
	if err != nil {
		return err
	}
	p, err := platforms.Parse(platform)
	if err != nil {
		return err
	}
	var ls []testimage.Layer
	var blobBytes int64
	for i := range nLayers {
		s := seed
		if i == 0 {
			s = 0 // the shared base layer
		}
		l := makeLayer(i, s, size/int64(nLayers), edit && i > 0)
		blobBytes += int64(len(l.Blob))
		ls = append(ls, l)
	}
	img := testimage.New(ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant},
		ocispec.ImageConfig{Cmd: []string{"sh"}}, ls...)
	n, err := reference.ParseNormalizedNamed(push)
	if err != nil {
		return err
	}
	n = reference.TagNameOnly(n)
	c, err := registry.New(registry.Options{})
	if err != nil {
		return err
	}
	if err := testimage.Push(context.Background(), c.Repository(reference.TrimNamed(n), nil), n.(reference.Tagged).Tag(), img); err != nil {
		return fmt.Errorf("push %s: %w", n, err)
	}
	fmt.Printf("%s %s layers=%d blobs=%d\n", n, img.ManifestDesc.Digest, nLayers, blobBytes)
	return nil
}

// makeLayer builds layer i from seed: directories of files from 4 KiB to
// 2 MiB, alternately random and repeated text, with a symlink and an empty
// directory (which the layer check must find on disk too).
func makeLayer(i int, seed uint64, budget int64, edit bool) testimage.Layer {
	r := rand.New(rand.NewChaCha8(seedBytes(seed, i)))
	dir := fmt.Sprintf("data/layer%d-%d/", i, seed)
	files := []testimage.File{
		{Name: "data/", Type: tar.TypeDir},
		{Name: dir, Type: tar.TypeDir},
		{Name: dir + "empty/", Type: tar.TypeDir, Mode: 0o750},
		{Name: dir + "link", Type: tar.TypeSymlink, Linkname: "f0"},
	}
	var used int64
	for n := 0; used < budget; n++ {
		sz := min(int64(4<<10)+r.Int64N(2<<20), budget-used)
		body := make([]byte, sz)
		if n%2 == 0 {
			for j := range body {
				body[j] = byte(r.Uint32())
			}
		} else {
			line := []byte(fmt.Sprintf("layer %d seed %d file %d: some compressible text\n", i, seed, n))
			for j := range body {
				body[j] = line[j%len(line)]
			}
		}
		if edit {
			for off := 1000; off < len(body); off += 64 << 10 {
				copy(body[off:], "edited")
			}
		}
		files = append(files, testimage.File{Name: fmt.Sprintf("%sf%d", dir, n), Body: body, Mode: 0o644})
		used += sz
	}
	return testimage.NewLayer(files...)
}

func seedBytes(seed uint64, i int) [32]byte {
	var b [32]byte
	copy(b[:], fmt.Sprintf("bigimage %d %d", seed, i))
	return b
}
