// Package delta holds the formats of delta images: images in any registry
// whose layers rebuild a target image's layers from a base image the device
// already has. Two formats: balenaEngine's (librsync's rdiff deltas of each
// changed layer tar against all the base's layer tars, package rdiff),
// which fleets receive from balena's delta servers, and the engine's own
// (per file: copied from the base, patched against a similar base file
// with zstd or bsdiff, or literal; docs/delta-format.md).
//
// A delta image names its base and carries the target's config in two
// labels of its own config, so that the engine that pulls it ends with the
// target image under the target's ID, as if it had pulled it whole.
package delta

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/balena-os/balena-engine/src/delta/rdiff"
	"github.com/opencontainers/go-digest"
)

// The labels of balenaEngine's delta images.
const (
	LabelBase   = "io.resin.delta.base"   // the base image's ID
	LabelConfig = "io.resin.delta.config" // the target image's config, verbatim
)

// The labels of the engine's own delta images: the same meaning, other
// names, so that an engine that knows only balenaEngine's format does not
// take one for its own.
const (
	LabelNativeBase    = "io.balena-engine.delta.base"
	LabelNativeConfig  = "io.balena-engine.delta.config"
	LabelNativeVersion = "io.balena-engine.delta.version" // "1"
)

// The formats, as the API's format parameter names them.
const (
	FormatNative = "native" // the engine's own, the default
	FormatBalena = "balena" // balenaEngine's
)

// EntryName is the one file of a balena delta layer: the rdiff delta.
const EntryName = "delta"

// BlockLen is the block length of balenaEngine's signatures.
const BlockLen = 512

// Info is what a delta image's labels say.
type Info struct {
	Format   string
	Base     digest.Digest // the base image's ID
	Target   []byte        // the target image's config, verbatim
	TargetID digest.Digest // its digest: the target image's ID
}

// FromLabels reads a delta image's labels; ok is false for an ordinary
// image.
func FromLabels(labels map[string]string) (info Info, ok bool, err error) {
	format, labelBase, labelConfig := FormatBalena, LabelBase, LabelConfig
	if v, native := labels[LabelNativeVersion]; native {
		if v != "1" {
			return Info{}, true, fmt.Errorf("delta image: format version %q: this engine applies version 1", v)
		}
		format, labelBase, labelConfig = FormatNative, LabelNativeBase, LabelNativeConfig
	}
	cfg, hasCfg := labels[labelConfig]
	base, hasBase := labels[labelBase]
	if !hasCfg && !hasBase && format == FormatBalena {
		return Info{}, false, nil
	}
	if !hasCfg || !hasBase {
		return Info{}, true, fmt.Errorf("delta image: it has the label %s without %s", pick(hasCfg, labelConfig, labelBase), pick(hasCfg, labelBase, labelConfig))
	}
	d, err := digest.Parse(base)
	if err != nil {
		return Info{}, true, fmt.Errorf("delta image: base image %q: %w", base, err)
	}
	if !json.Valid([]byte(cfg)) {
		return Info{}, true, errors.New("delta image: the target config in " + LabelConfig + " is not JSON")
	}
	return Info{Format: format, Base: d, Target: []byte(cfg), TargetID: digest.FromString(cfg)}, true, nil
}

func pick(c bool, a, b string) string {
	if c {
		return a
	}
	return b
}

// Config is a delta image's config: the labels, the delta layers, and the
// target's platform (registries show it; engines applying the delta read
// only the labels).
func Config(info Info, os, arch, variant string, diffIDs []digest.Digest, created time.Time) ([]byte, error) {
	type rootfs struct {
		Type    string          `json:"type"`
		DiffIDs []digest.Digest `json:"diff_ids"`
	}
	c := struct {
		Created      time.Time `json:"created"`
		Architecture string    `json:"architecture,omitempty"`
		Variant      string    `json:"variant,omitempty"`
		OS           string    `json:"os,omitempty"`
		Config       struct {
			Labels map[string]string
		} `json:"config"`
		RootFS rootfs `json:"rootfs"`
	}{Created: created.UTC(), Architecture: arch, Variant: variant, OS: os,
		RootFS: rootfs{Type: "layers", DiffIDs: diffIDs}}
	c.Config.Labels = map[string]string{LabelBase: info.Base.String(), LabelConfig: string(info.Target)}
	if info.Format == FormatNative {
		c.Config.Labels = map[string]string{LabelNativeBase: info.Base.String(), LabelNativeConfig: string(info.Target), LabelNativeVersion: "1"}
	}
	return json.Marshal(c)
}

// Patch returns the target layer's tar stream, from the delta read from d
// (a delta layer's EntryName file, in format) applied to basis. Reading it
// verifies nothing: the caller checks the result's digest against the
// target's diffID.
func Patch(format string, basis io.ReaderAt, basisSize int64, d io.Reader) io.Reader {
	if format == FormatNative {
		return NewPatchReader(basis, basisSize, d)
	}
	return rdiff.NewReader(basis, basisSize, d)
}

// BalenaDelta writes the rdiff delta of target against basis, as
// balenaEngine computes it.
func BalenaDelta(w io.Writer, basis io.ReaderAt, basisSize int64, target io.Reader) error {
	return rdiff.Delta(w, basis, basisSize, target, BlockLen)
}

// WriteLayer writes a delta layer: a tar holding the delta (size bytes
// read from d) as its one entry, as balenaEngine writes it.
func WriteLayer(w io.Writer, d io.Reader, size int64) error {
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Name: EntryName, Mode: 0o600, Size: size, Format: tar.FormatUSTAR}); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, d, size); err != nil {
		return fmt.Errorf("delta layer: %w", err)
	}
	return tw.Close()
}

// WriteEmptyLayer writes the layer a delta has where the target shares the
// base's layer: a tar with no entry.
func WriteEmptyLayer(w io.Writer) error { return tar.NewWriter(w).Close() }
