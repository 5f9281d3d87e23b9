// Package delta holds the formats of delta images: images in any registry
// whose layers rebuild a target image's layers from a base image the device
// already has. Today that is balenaEngine's format (librsync's rdiff deltas
// of each changed layer tar against all the base's layer tars, package
// rdiff), which fleets receive from balena's delta servers.
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

// EntryName is the one file of a balena delta layer: the rdiff delta.
const EntryName = "delta"

// BlockLen is the block length of balenaEngine's signatures.
const BlockLen = 512

// Info is what a delta image's labels say.
type Info struct {
	Base     digest.Digest // the base image's ID
	Target   []byte        // the target image's config, verbatim
	TargetID digest.Digest // its digest: the target image's ID
}

// FromLabels reads a delta image's labels; ok is false for an ordinary
// image.
func FromLabels(labels map[string]string) (info Info, ok bool, err error) {
	cfg, hasCfg := labels[LabelConfig]
	base, hasBase := labels[LabelBase]
	if !hasCfg && !hasBase {
		return Info{}, false, nil
	}
	if !hasCfg || !hasBase {
		return Info{}, true, fmt.Errorf("delta image: it has the label %s without %s", pick(hasCfg, LabelConfig, LabelBase), pick(hasCfg, LabelBase, LabelConfig))
	}
	d, err := digest.Parse(base)
	if err != nil {
		return Info{}, true, fmt.Errorf("delta image: base image %q: %w", base, err)
	}
	if !json.Valid([]byte(cfg)) {
		return Info{}, true, errors.New("delta image: the target config in " + LabelConfig + " is not JSON")
	}
	return Info{Base: d, Target: []byte(cfg), TargetID: digest.FromString(cfg)}, true, nil
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
	return json.Marshal(c)
}

// BalenaPatch returns the target layer's tar stream, from the rdiff delta
// read from d applied to basis. Reading it verifies nothing: the caller
// checks the result's digest against the target's diffID.
func BalenaPatch(basis io.ReaderAt, basisSize int64, d io.Reader) io.Reader {
	return rdiff.NewReader(basis, basisSize, d)
}

// BalenaDelta writes the rdiff delta of target against basis, as
// balenaEngine computes it.
func BalenaDelta(w io.Writer, basis io.ReaderAt, basisSize int64, target io.Reader) error {
	return rdiff.Delta(w, basis, basisSize, target, BlockLen)
}

// WriteBalenaLayer writes a balena delta layer: a tar holding the delta
// (size bytes read from d) as its one entry, as balenaEngine writes it.
func WriteBalenaLayer(w io.Writer, d io.Reader, size int64) error {
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
