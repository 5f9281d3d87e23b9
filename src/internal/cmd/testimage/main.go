// Command testimage builds the project's busybox test image from Debian's
// busybox-static and pushes it to a registry, for demos and benchmarks:
//
//	go run ./src/internal/cmd/testimage -push 127.0.0.1:5000/busybox:latest
//	go run ./src/internal/cmd/testimage -o busybox.tar -tag busybox:latest
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/balena-os/balena-engine/src/internal/testimage"
	"github.com/balena-os/balena-engine/src/registry"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func main() {
	push := flag.String("push", "", "push the image to this reference (host/repo:tag)")
	out := flag.String("o", "", "write the image as a \"docker save\" archive to this file")
	tag := flag.String("tag", "busybox:latest", "the name the archive gives the image")
	busybox := flag.String("busybox", "/bin/busybox", "static busybox binary to build from")
	platform := flag.String("platform", platforms.DefaultString(), "platform the image claims")
	flag.Parse()
	if err := run(*push, *out, *tag, *busybox, *platform); err != nil {
		fmt.Fprintln(os.Stderr, "testimage:", err)
		os.Exit(1)
	}
}

func run(push, out, tag, busybox, platform string) error {
	if push == "" && out == "" {
		return fmt.Errorf("nothing to do: give -push or -o")
	}
	p, err := platforms.Parse(platform)
	if err != nil {
		return err
	}
	img, err := testimage.Busybox(ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}, busybox)
	if err != nil {
		return err
	}
	if out != "" {
		if err := writeArchive(out, tag, img); err != nil {
			return err
		}
		if push == "" {
			return nil
		}
	}
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
		return err
	}
	fmt.Printf("%s %s\n", n, img.ManifestDesc.Digest)
	return nil
}

func writeArchive(path, tag string, img testimage.Image) error {
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return err
	}
	if err := testimage.Archive(f, tag, img); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}
