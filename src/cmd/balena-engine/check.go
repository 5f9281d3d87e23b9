package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/balena-os/balena-engine/src/image"
	"github.com/balena-os/balena-engine/src/layer"
	"github.com/spf13/pflag"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// The check role: "balena-engine check [--data-root DIR] [--require REF]...".
// It opens the data root's stores as the daemon does, so their crash
// recovery runs first, then checks the invariant a power cut must not
// break (image.Store.Check): every image whole, every layer rebuilding from
// disk to its diffID, nothing left over. The power-cut trials and the
// crash-state exploration (qemu-tests/, docs/testing.md) run it on every
// state they make; a person can run it on a device whose daemon is
// stopped. It does not touch containers or volumes.
//
// Exit status: 0 when the invariant holds, 1 when it does not (each problem
// on its own line), 2 when the data root cannot be opened or the arguments
// are wrong.
const checkArg = "check"

func checkMain(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("balena-engine check", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	dataRoot := fs.String("data-root", "/var/lib/balena-engine", "the daemon's data root")
	var require []string
	fs.StringArrayVar(&require, "require", nil, "an image (name or ID) that must be present and whole (repeatable)")
	quiet := fs.BoolP("quiet", "q", false, "print only problems and the summary")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "balena-engine check: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	start := time.Now()
	rep, err := checkDataRoot(*dataRoot, require, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "balena-engine check: %v\n", err)
		return 2
	}
	var bytes int64
	for _, img := range rep.Images {
		bytes += img.Bytes
		if !*quiet {
			fmt.Fprintf(stdout, "whole %s %v layers=%d bytes=%d\n", img.ID, img.Tags, img.Layers, img.Bytes)
		}
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(stdout, "PROBLEM %s\n", p)
	}
	fmt.Fprintf(stdout, "check: %d images whole (%d bytes verified), %d problems, %.1f s\n",
		len(rep.Images), bytes, len(rep.Problems), time.Since(start).Seconds())
	if len(rep.Problems) > 0 {
		return 1
	}
	return 0
}

// checkDataRoot opens the stores under dataRoot exactly as the daemon does
// (src/daemon's openEngine: the same database file, the layer store's and
// then the image store's recovery) and checks them. Images named by
// require must be among the whole ones.
func checkDataRoot(dataRoot string, require []string, stderr io.Writer) (image.CheckReport, error) {
	var rep image.CheckReport
	path := filepath.Join(dataRoot, "engine.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return rep, fmt.Errorf("data root %s is in use by a daemon (%s is locked): stop it first", dataRoot, path)
	}
	if err != nil {
		return rep, fmt.Errorf("open metadata database: %w", err)
	}
	defer db.Close()
	// Recovery's warnings (an image dropped for a missing layer) are worth
	// seeing: they say what the crash cost.
	log := slog.New(slog.NewTextHandler(stderr, nil))
	layers, err := layer.Open(filepath.Join(dataRoot, "layers"), db, layer.Options{})
	if err != nil {
		return rep, err
	}
	images, err := image.Open(db, layers, log)
	if err != nil {
		return rep, err
	}
	rep, err = images.Check()
	if err != nil {
		return rep, err
	}
	whole := map[string]bool{}
	for _, img := range rep.Images {
		whole[img.ID.String()] = true
	}
	for _, ref := range require {
		img, err := images.Get(ref)
		switch {
		case err != nil:
			rep.Problems = append(rep.Problems, fmt.Sprintf("required image %s: %v", ref, err))
		case !whole[img.ID.String()]:
			rep.Problems = append(rep.Problems, fmt.Sprintf("required image %s (%s) is not whole", ref, img.ID))
		}
	}
	return rep, nil
}
