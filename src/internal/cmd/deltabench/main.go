// Command deltabench measures delta images on real image pairs built here
// (nothing is downloaded at run time beyond Debian's and npm's package
// registries): a Go program built from two commits of this repository's
// source (default build, and -s -w), a Node.js application whose npm
// dependencies move to newer versions, and a Debian root where nine
// packages move to newer versions (bookworm against bookworm with its
// updates and security suites).
//
// For each pair: the plain pull's bytes (B's layers that A lacks, gzipped
// by our push, as the registry stores them), the delta image's bytes in
// balenaEngine's format and in the engine's own (made by "image delta",
// pushed, the registry's layer blob sizes), xdelta3 and zstd
// --patch-from of the changed layer tars for reference, the time to make
// each delta, and the time and the daemon's peak RSS growth to apply it
// (a pull by a fresh daemon that has only A), the result checked to be B.
//
//	go run ./src/internal/cmd/deltabench -engine bin/balena-engine -out docs/results/delta-bench.md
//
// Run as root; make bench-delta runs it. The inputs are built once and
// kept in -cache (/var/cache/balena-engine-bench); delete it to rebuild
// them. Everything the run starts (daemons, the registry) is stopped and
// its files removed when it ends, also on an error or Ctrl-C.
package main

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/balena-os/balena-engine/src/internal/testimage"
	"github.com/balena-os/balena-engine/src/internal/testregistry"
	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

type options struct {
	engine, out, cache, pairs, goOld, goNew string
}

func main() {
	var o options
	flag.StringVar(&o.engine, "engine", "bin/balena-engine", "the balena-engine binary (copied before use)")
	flag.StringVar(&o.out, "out", "", "write the results (markdown) to this file too")
	flag.StringVar(&o.cache, "cache", "/var/cache/balena-engine-bench", "where the built inputs are kept between runs")
	flag.StringVar(&o.pairs, "pairs", "go-default,go-sw,node,debian", "the pairs to measure")
	flag.StringVar(&o.goOld, "go-old", "HEAD~10", "the Go pair's A: a commit of this repository")
	flag.StringVar(&o.goNew, "go-new", "HEAD", "the Go pair's B")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("interrupted (everything it started is stopped and removed): %w", err)
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "deltabench:", err)
		os.Exit(1)
	}
}

var formats = []string{"balena", "native"}

type formatResult struct {
	bytes       int64 // the delta image's layer blobs in the registry
	layers      int
	create      time.Duration
	createRSS   int64 // KiB: the daemon's peak RSS growth while making it
	createAnon  int64 // KiB: its peak anonymous RSS growth, sampled
	applyAnon   int64 // KiB: the same while pulling it
	apply       time.Duration
	applyRSS    int64 // KiB: the daemon's peak RSS growth while pulling it
	rssBefore   int64 // KiB
	engineLine  string
	statsLine   string
	engineSize  int64 // what the engine's summary says the delta is
	enginePlain int64 // what the engine's summary says the plain pull is
	// The delta's layers at B's changed layers (without the empty ones of
	// the layers A has): what the engine's summary counts.
	changedBytes int64
}

type refResult struct {
	bytes    int64
	enc, dec time.Duration
	cmd      string
}

type pairResult struct {
	in                *pairInput
	aTar, bTar        int64 // all layers, tar bytes
	aGzip, bGzip      int64 // all layers, registry blobs
	changedTar, plain int64 // B's layers A lacks: tar bytes, registry blobs
	bID               string
	f                 map[string]*formatResult
	xdelta, zstd      refResult
	perFile           int64 // zstd file by file (perFileZstd)
	perFileN          int
	native            *breakdown // where the native delta's bytes go
	// For an ELF program: what the native delta carries for its
	// compressed DWARF, and for the rest; the DWARF's share of B's file.
	dwarfDelta, otherDelta, dwarfFile, elfSize int64
}

func run(ctx context.Context, o options) error {
	start := time.Now()
	if os.Geteuid() != 0 {
		return fmt.Errorf("run as root: it starts daemons and builds a Debian root with mmdebstrap")
	}
	for _, bin := range []string{"xdelta3", "zstd", "docker-registry", "git", "npm", "mmdebstrap"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s not found (apt-get install xdelta3 zstd docker-registry git npm mmdebstrap)", bin)
		}
	}
	repo, err := command(ctx, "", nil, "git", "rev-parse", "--show-toplevel")
	if err != nil {
		return fmt.Errorf("run from the repository: %w", err)
	}
	repo = strings.TrimSpace(repo)
	commit := repoCommit(ctx, repo)
	want := map[string]bool{}
	for _, p := range strings.Split(o.pairs, ",") {
		want[strings.TrimSpace(p)] = true
	}

	lock, err := lockCache(o.cache)
	if err != nil {
		return err
	}
	defer lock.Close()

	work, err := os.MkdirTemp("/var/tmp", "deltabench-")
	if err != nil {
		return err
	}
	defer func() {
		if err := removeTree(work); err != nil {
			fmt.Fprintln(os.Stderr, "deltabench:", err)
		}
	}()
	// Our own copy of the engine: bin/ may be rebuilt meanwhile.
	engine := filepath.Join(work, "balena-engine")
	if _, err := command(ctx, "", nil, "cp", o.engine, engine); err != nil {
		return err
	}
	cgroup := "/" + filepath.Base(work)
	defer removeCgroups(cgroup)

	// The inputs.
	var pairs []*pairInput
	if want["go-default"] || want["go-sw"] {
		ps, err := goPairs(ctx, o.cache, work, repo, o.goOld, o.goNew)
		if err != nil {
			return err
		}
		for _, p := range ps {
			if want[p.key] {
				pairs = append(pairs, p)
			}
		}
	}
	if want["node"] {
		p, err := nodePair(ctx, o.cache, work)
		if err != nil {
			return err
		}
		pairs = append(pairs, p)
	}
	if want["debian"] {
		p, err := debianPair(ctx, o.cache, work)
		if err != nil {
			return err
		}
		pairs = append(pairs, p)
	}
	if len(pairs) == 0 {
		return fmt.Errorf("no pair selected by -pairs %q", o.pairs)
	}
	// The base layer the Go and Node.js pairs share: Debian's
	// busybox-static as the project's test image has it.
	pl := platforms.DefaultSpec()
	bb, err := testimage.Busybox(ocispec.Platform{OS: pl.OS, Architecture: pl.Architecture}, "/bin/busybox")
	if err != nil {
		return err
	}
	bbPath := filepath.Join(work, "busybox-layer.tar")
	if err := os.WriteFile(bbPath, bb.Layers[0].Tar, 0o644); err != nil {
		return err
	}
	bbLayer, err := openLayer(bbPath)
	if err != nil {
		return err
	}
	for _, p := range pairs {
		if p.key != "debian" {
			p.base = []layerFile{bbLayer}
		}
	}

	reg, err := testregistry.Run(filepath.Join(work, "registry"))
	if err != nil {
		return err
	}
	defer reg.Stop()

	var results []*pairResult
	for _, p := range pairs {
		if err := ctx.Err(); err != nil {
			return err
		}
		fmt.Printf("== %s\n", p.name)
		r, err := measure(ctx, p, engine, work, cgroup, reg.Host)
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		results = append(results, r)
	}
	rep := report(ctx, results, o, repo, commit, engine, time.Since(start))
	fmt.Print(rep)
	if o.out != "" {
		return os.WriteFile(o.out, []byte(rep), 0o644)
	}
	return nil
}

var (
	plainLine = regexp.MustCompile(`Plain pull: (\d+) bytes \(gzip\), delta: (\d+) bytes, ([0-9.]+)x smaller \((\w+) format\)`)
	statsLine = regexp.MustCompile(`Target bytes copied .*`)
)

func measure(ctx context.Context, p *pairInput, engine, work, cgroup, regHost string) (*pairResult, error) {
	r := &pairResult{in: p, f: map[string]*formatResult{}}
	dir := filepath.Join(work, p.key)
	defer removeTree(dir)
	repo := "bench/" + p.key
	ref := func(tag string) string { return regHost + "/" + repo + ":" + tag }
	aImg := newImage(ref("a"), p.cfg, testimage.Epoch, append(append([]layerFile{}, p.base...), p.a)...)
	bImg := newImage(ref("b"), p.cfg, testimage.Epoch.Add(24*time.Hour), append(append([]layerFile{}, p.base...), p.b)...)
	r.aTar, r.bTar, r.bID = aImg.tarBytes(), bImg.tarBytes(), bImg.id.String()
	for i, l := range bImg.layers {
		if i >= len(aImg.layers) || aImg.layers[i].diffID != l.diffID || (i > 0 && aImg.layers[i-1].diffID != bImg.layers[i-1].diffID) {
			r.changedTar += l.size
		}
	}

	// The build side: A and B loaded, pushed, the deltas made and pushed.
	d1, err := startDaemon(engine, filepath.Join(dir, "d1"), filepath.Join(dir, "d1", "data"), cgroup)
	if err != nil {
		return nil, err
	}
	defer d1.stop()
	fmt.Printf("load A and B (%.1f MiB, %.1f MiB of layer tars)\n", float64(r.aTar)/(1<<20), float64(r.bTar)/(1<<20))
	if _, err := d1.cliStdin(ctx, func(w io.Writer) error { return writeArchive(w, aImg, bImg) }, "load", "-q"); err != nil {
		return nil, err
	}
	for _, img := range []image{aImg, bImg} {
		id, err := d1.imageID(ctx, img.tag)
		if err != nil {
			return nil, err
		}
		if id != img.id.String() {
			return nil, fmt.Errorf("loaded %s is %s, want %s", img.tag, id, img.id)
		}
		if _, err := d1.cli(ctx, "push", "-q", img.tag); err != nil {
			return nil, err
		}
	}
	ma, err := manifest(regHost, repo, "a")
	if err != nil {
		return nil, err
	}
	mb, err := manifest(regHost, repo, "b")
	if err != nil {
		return nil, err
	}
	r.aGzip, r.bGzip = layerBytes(ma), layerBytes(mb)
	r.plain = changedBytes(mb, aImg, bImg)
	for _, f := range formats {
		fr := &formatResult{}
		r.f[f] = fr
		before, err := rssWindow(d1.pid())
		if err != nil {
			return nil, err
		}
		fmt.Printf("image delta --format %s\n", f)
		anon := sampleAnon(d1.pid())
		t0 := time.Now()
		out, err := d1.cli(ctx, "image", "delta", "--format", f, "-t", ref("delta-"+f), ref("a"), ref("b"))
		fr.create = time.Since(t0)
		fr.createAnon = anon.end()
		if err != nil {
			return nil, err
		}
		peak, err := statusKiB(d1.pid(), "VmHWM")
		if err != nil {
			return nil, err
		}
		fr.createRSS = peak - before
		if m := plainLine.FindStringSubmatch(out); m != nil {
			fr.engineLine = m[0]
			fr.enginePlain, _ = strconv.ParseInt(m[1], 10, 64)
			fr.engineSize, _ = strconv.ParseInt(m[2], 10, 64)
		} else {
			return nil, fmt.Errorf("image delta printed no \"Plain pull\" line:\n%s", tail(out, 2000))
		}
		fr.statsLine = statsLine.FindString(out)
		fmt.Printf("  %s in %s, peak RSS +%.1f MiB (anonymous +%.1f MiB)\n", fr.engineLine, fr.create.Round(time.Millisecond),
			float64(fr.createRSS)/1024, float64(fr.createAnon)/1024)
		if _, err := d1.cli(ctx, "push", "-q", ref("delta-"+f)); err != nil {
			return nil, err
		}
		m, err := manifest(regHost, repo, "delta-"+f)
		if err != nil {
			return nil, err
		}
		fr.bytes, fr.layers = layerBytes(m), len(m.Layers)
		fr.changedBytes = changedBytes(m, aImg, bImg)
		if f == "native" {
			if r.native, err = analyzeNative(regHost, repo, m, p.b.path, p.elf); err != nil {
				return nil, fmt.Errorf("reading the native delta: %w", err)
			}
			if p.elf != "" {
				for _, fc := range r.native.files {
					if fc.name == p.elf {
						if r.dwarfDelta, r.dwarfFile, r.otherDelta, r.elfSize, err = elfShare(p.b.path, p.elf, fc.spans); err != nil {
							return nil, err
						}
					}
				}
			}
		}
	}
	d1.stop()
	removeTree(filepath.Join(dir, "d1"))

	// The device side: a daemon with only A, restarted before each pull
	// so that its heap is a device's, not the one of the pull of A.
	root := filepath.Join(dir, "d2", "data")
	d2, err := startDaemon(engine, filepath.Join(dir, "d2"), root, cgroup)
	if err != nil {
		return nil, err
	}
	defer func() { d2.stop() }()
	if _, err := d2.cli(ctx, "pull", "-q", ref("a")); err != nil {
		return nil, err
	}
	for _, f := range formats {
		fr := r.f[f]
		d2.stop()
		if d2, err = startDaemon(engine, filepath.Join(dir, "d2"), root, cgroup); err != nil {
			return nil, err
		}
		time.Sleep(time.Second) // start-up settles
		if id, err := d2.imageID(ctx, r.bID); err == nil {
			return nil, fmt.Errorf("image B (%s) is here before the delta pull", id)
		}
		if fr.rssBefore, err = rssWindow(d2.pid()); err != nil {
			return nil, err
		}
		fmt.Printf("pull delta-%s\n", f)
		anon := sampleAnon(d2.pid())
		t0 := time.Now()
		_, err := d2.cli(ctx, "pull", "-q", ref("delta-"+f))
		fr.apply = time.Since(t0)
		fr.applyAnon = anon.end()
		if err != nil {
			return nil, err
		}
		peak, err := statusKiB(d2.pid(), "VmHWM")
		if err != nil {
			return nil, err
		}
		fr.applyRSS = peak - fr.rssBefore
		id, err := d2.imageID(ctx, ref("delta-"+f))
		if err != nil {
			return nil, err
		}
		if id != r.bID {
			return nil, fmt.Errorf("the %s delta pulled gave image %s, want B's %s", f, id, r.bID)
		}
		fmt.Printf("  %s, peak RSS +%.1f MiB (anonymous +%.1f MiB), image %s (B)\n", fr.apply.Round(time.Millisecond), float64(fr.applyRSS)/1024,
			float64(fr.applyAnon)/1024, id[:19])
		if _, err := d2.cli(ctx, "rmi", ref("delta-"+f)); err != nil {
			return nil, err
		}
		if _, err := d2.imageID(ctx, ref("a")); err != nil {
			return nil, fmt.Errorf("image A is gone after removing B: %w", err)
		}
	}
	d2.stop()

	// The references: the changed layer's tar of B against A's.
	refDir := filepath.Join(dir, "ref")
	if err := os.MkdirAll(refDir, 0o755); err != nil {
		return nil, err
	}
	if r.xdelta, err = xdelta(ctx, p.a.path, p.b.path, refDir); err != nil {
		return nil, err
	}
	if r.zstd, err = zstdPatch(ctx, p.a.path, p.b.path, refDir); err != nil {
		return nil, err
	}
	if r.perFile, r.perFileN, err = perFileZstd(ctx, p.a.path, p.b.path, refDir); err != nil {
		return nil, err
	}
	fmt.Printf("  xdelta3 %d bytes (%s), zstd %d bytes (%s), zstd file by file %d bytes (%d files)\n", r.xdelta.bytes, r.xdelta.enc.Round(time.Millisecond),
		r.zstd.bytes, r.zstd.enc.Round(time.Millisecond), r.perFile, r.perFileN)
	return r, nil
}

// changedBytes sums the blob sizes of m's layers at the positions of B's
// layers that a device with A fetches: those where B's chain up to the
// layer is not A's.
func changedBytes(m ocispec.Manifest, a, b image) int64 {
	var n int64
	for i, l := range m.Layers {
		common := i < len(a.layers) && i < len(b.layers)
		for j := 0; common && j <= i; j++ {
			common = a.layers[j].diffID == b.layers[j].diffID
		}
		if !common {
			n += l.Size
		}
	}
	return n
}

// sameFile says whether two files have the same content.
func sameFile(a, b string) (bool, error) {
	sum := func(p string) ([]byte, error) {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		h := sha256.New()
		_, err = io.Copy(h, f)
		return h.Sum(nil), err
	}
	x, err := sum(a)
	if err != nil {
		return false, err
	}
	y, err := sum(b)
	return string(x) == string(y), err
}

// windowLog is the smallest n >= 27 with 2^n covering size bytes.
func windowLog(size int64) int {
	n := 27
	for int64(1)<<n < size {
		n++
	}
	return n
}

func timed(ctx context.Context, name string, args ...string) (time.Duration, error) {
	t0 := time.Now()
	_, err := command(ctx, "", nil, name, args...)
	return time.Since(t0), err
}

func xdelta(ctx context.Context, a, b, dir string) (refResult, error) {
	out, back := filepath.Join(dir, "xdelta3.vcdiff"), filepath.Join(dir, "xdelta3.out")
	// The source window (-B) covers the whole of A (xdelta3's default is
	// 64 MiB): otherwise matches far back are not found.
	win := strconv.FormatInt(max(fileSize(a), 64<<20), 10)
	var r refResult
	var err error
	r.cmd = "xdelta3 -9 -B <size of A, at least 64 MiB> -e -s A.tar B.tar"
	if r.enc, err = timed(ctx, "xdelta3", "-9", "-B", win, "-f", "-e", "-s", a, b, out); err != nil {
		return r, err
	}
	r.bytes = fileSize(out)
	if r.dec, err = timed(ctx, "xdelta3", "-B", win, "-f", "-d", "-s", a, out, back); err != nil {
		return r, err
	}
	if ok, err := sameFile(back, b); err != nil || !ok {
		return r, fmt.Errorf("xdelta3 -d did not give B back (%v)", err)
	}
	os.Remove(back)
	return r, nil
}

func zstdPatch(ctx context.Context, a, b, dir string) (refResult, error) {
	out, back := filepath.Join(dir, "zstd.zst"), filepath.Join(dir, "zstd.out")
	// --long's window must cover A, the dictionary (2^27 at least).
	long := "--long=" + strconv.Itoa(windowLog(max(fileSize(a), fileSize(b))))
	var r refResult
	var err error
	r.cmd = long
	if r.enc, err = timed(ctx, "zstd", "-q", "-f", "-19", long, "--patch-from="+a, b, "-o", out); err != nil {
		return r, err
	}
	r.bytes = fileSize(out)
	if r.dec, err = timed(ctx, "zstd", "-q", "-f", "-d", long, "--patch-from="+a, out, "-o", back); err != nil {
		return r, err
	}
	if ok, err := sameFile(back, b); err != nil || !ok {
		return r, fmt.Errorf("zstd -d --patch-from did not give B back (%v)", err)
	}
	os.Remove(back)
	return r, nil
}
