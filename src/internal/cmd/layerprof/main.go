// Command layerprof applies layer blobs (gzip, zstd or plain tars, as a
// registry serves them) into a fresh layer store, the way a pull does after
// the download, and writes Go CPU and block profiles of it: where the time
// of an extraction goes, without the network. docs/images.md quotes it.
//
//	go run ./src/internal/cmd/layerprof -root /mnt/x/store -cpuprofile cpu.out layer1.tar.gz layer2.tar.gz
//
// The layers are applied one after another, each on top of the last, and
// committed (synced) as a pull commits them.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/balena-os/balena-engine/src/layer"
	bolt "go.etcd.io/bbolt"
)

func main() {
	root := flag.String("root", "", "an empty directory for the layer store (on the filesystem to measure)")
	cpu := flag.String("cpuprofile", "", "write a CPU profile here")
	block := flag.String("blockprofile", "", "write a block profile here")
	parallel := flag.Bool("parallel", false, "apply the layers at the same time, as a pull does")
	flag.Parse()
	if *root == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: layerprof -root DIR [-cpuprofile F] [-blockprofile F] BLOB...")
		os.Exit(2)
	}
	if err := run(*root, *cpu, *block, *parallel, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "layerprof:", err)
		os.Exit(1)
	}
}

func run(root, cpu, block string, parallel bool, blobs []string) error {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return err
	}
	db, err := bolt.Open(filepath.Join(root, "db"), 0o600, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	s, err := layer.Open(filepath.Join(root, "layers"), db, layer.Options{})
	if err != nil {
		return err
	}
	if cpu != "" {
		f, err := os.Create(cpu)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if block != "" {
		runtime.SetBlockProfileRate(1)
		defer func() {
			f, err := os.Create(block)
			if err == nil {
				pprof.Lookup("block").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	errs := make(chan error, len(blobs))
	apply := func(b string) error {
		f, err := os.Open(b)
		if err != nil {
			return err
		}
		defer f.Close()
		// Unknown diffIDs: each layer is a base layer of its own, which
		// costs the same to extract.
		in, err := s.Ingest("", "")
		if err != nil {
			return err
		}
		defer in.Abort()
		if err := in.Apply(context.Background(), f, "", -1); err != nil {
			return fmt.Errorf("%s: %w", b, err)
		}
		_, err = in.Commit()
		return err
	}
	for _, b := range blobs {
		if parallel {
			go func() { errs <- apply(b) }()
		} else if err := apply(b); err != nil {
			return err
		}
	}
	if parallel {
		for range blobs {
			if err := <-errs; err != nil {
				return err
			}
		}
	}
	var ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpuTime := time.Duration(syscall.TimevalToNsec(ru1.Utime)-syscall.TimevalToNsec(ru0.Utime)) +
		time.Duration(syscall.TimevalToNsec(ru1.Stime)-syscall.TimevalToNsec(ru0.Stime))
	fmt.Printf("applied %d layers in %v, CPU %v (user %v, system %v)\n", len(blobs), time.Since(start).Round(time.Millisecond),
		cpuTime.Round(time.Millisecond),
		time.Duration(syscall.TimevalToNsec(ru1.Utime)-syscall.TimevalToNsec(ru0.Utime)).Round(time.Millisecond),
		time.Duration(syscall.TimevalToNsec(ru1.Stime)-syscall.TimevalToNsec(ru0.Stime)).Round(time.Millisecond))
	return nil
}
