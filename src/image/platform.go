package image

import (
	"fmt"
	"strings"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Platform is the platform an image is for, from its config.
func (img Image) Platform() ocispec.Platform {
	return ocispec.Platform{OS: img.Config.OS, Architecture: img.Config.Architecture, Variant: img.Config.Variant}
}

// CheckPlatform answers Docker's error when the image kept under ref (an
// image is kept here for one platform) is not of any of the platforms
// wanted: the platform query of image inspect, history, push, save and
// load. None wanted: no check.
func (img Image) CheckPlatform(ref string, want []ocispec.Platform) error {
	if len(want) == 0 {
		return nil
	}
	have := img.Platform()
	var names []string
	for _, w := range want {
		if platforms.OnlyStrict(w).Match(have) {
			return nil
		}
		names = append(names, platforms.FormatAll(w))
	}
	return errdefs.NotFound(fmt.Errorf("image with reference %s was found but does not provide the specified platform (%s)", ref, strings.Join(names, ", ")))
}
