// Command pullbench measures a cold pull of a large image by balena-engine
// and by Debian's Docker (dockerd 20.10) in the same run, from the same
// registry on 127.0.0.1, each onto a fresh ext4 filesystem of its own on a
// loop device (direct I/O, so the backing file adds no page cache). It
// reports the pull time, the peak RSS of the daemon's process tree, the
// bytes written to the block device per byte extracted, and the growth of
// the page cache and of dirty memory during the pull (from /proc/meminfo).
//
//	go run ./src/internal/cmd/pullbench -engine bin/balena-engine -out docs/results/pull-bench.md
//
// Run as root; it drops the page cache between runs. make bench runs it.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/balena-os/balena-engine/src/client"
	"github.com/balena-os/balena-engine/src/internal/mounts"
	"github.com/balena-os/balena-engine/src/internal/testimage"
	"github.com/balena-os/balena-engine/src/internal/testregistry"
	"github.com/balena-os/balena-engine/src/registry"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func main() {
	engine := flag.String("engine", "bin/balena-engine", "the balena-engine binary")
	out := flag.String("out", "", "write the results (markdown) to this file too")
	runs := flag.Int("runs", 3, "pulls per engine (medians are reported)")
	size := flag.Int64("size", 250<<20, "bytes of files in the image")
	pushTo := flag.String("push-only", "", "only build the image and push it to this registry host (for experiments)")
	flag.Parse()
	if *pushTo != "" {
		img, _, err := buildImage(*size)
		if err == nil {
			rc, _ := registry.New(registry.Options{})
			n, _ := reference.ParseNormalizedNamed(*pushTo + "/bench/app")
			err = testimage.Push(context.Background(), rc.Repository(n, nil), "v1", img)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "pullbench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*engine, *out, *runs, *size); err != nil {
		fmt.Fprintln(os.Stderr, "pullbench:", err)
		os.Exit(1)
	}
}

// sources are the host directories the image's layers are made from: real
// files of a Debian system, a mix of libraries, binaries, text and many
// small files, as an application image has.
var sources = []struct {
	dir   string
	share float64
}{
	{"/usr/lib/x86_64-linux-gnu", 0.40},
	{"/usr/share", 0.25},
	{"/usr/lib/python3.11", 0.15},
	{"/usr/bin", 0.20},
}

type imageInfo struct {
	files     int
	bytes     int64 // file content
	tarBytes  int64
	blobBytes int64
	layers    int
}

func buildImage(total int64) (testimage.Image, imageInfo, error) {
	var info imageInfo
	var layers []testimage.Layer
	for _, src := range sources {
		budget := int64(float64(total) * src.share)
		var files []testimage.File
		var used int64
		err := filepath.WalkDir(src.dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || used >= budget {
				return nil
			}
			name := strings.TrimPrefix(p, "/")
			switch {
			case d.IsDir():
				files = append(files, testimage.File{Name: name + "/", Type: '5'})
			case d.Type()&fs.ModeSymlink != 0:
				target, err := os.Readlink(p)
				if err == nil {
					files = append(files, testimage.File{Name: name, Type: '2', Linkname: target})
				}
			case d.Type().IsRegular():
				b, err := os.ReadFile(p)
				if err != nil {
					return nil
				}
				fi, _ := d.Info()
				files = append(files, testimage.File{Name: name, Body: b, Mode: int64(fi.Mode().Perm())})
				used += int64(len(b))
				info.files++
			}
			return nil
		})
		if err != nil {
			return testimage.Image{}, info, err
		}
		// Parent directories of the source itself.
		var parents []testimage.File
		for d := filepath.Dir(src.dir); d != "/"; d = filepath.Dir(d) {
			parents = append([]testimage.File{{Name: strings.TrimPrefix(d, "/") + "/", Type: '5'}}, parents...)
		}
		l := testimage.NewLayer(append(parents, files...)...)
		layers = append(layers, l)
		info.bytes += used
		info.tarBytes += int64(len(l.Tar))
		info.blobBytes += int64(len(l.Blob))
	}
	info.layers = len(layers)
	p := platforms.DefaultSpec()
	img := testimage.New(ocispec.Platform{OS: p.OS, Architecture: p.Architecture}, ocispec.ImageConfig{Cmd: []string{"sh"}}, layers...)
	return img, info, nil
}

type sample struct {
	pull         time.Duration
	peakRSS      int64 // bytes, process tree
	written      int64 // bytes to the block device, sync included
	cacheGrowth  int64
	dirtyGrowth  int64
	writeAmplify float64
	allocated    int64   // growth of the filesystem's used blocks
	overAlloc    float64 // written / allocated
}

func usedBytes(dir string) int64 {
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil {
		return 0
	}
	return int64(st.Blocks-st.Bfree) * int64(st.Bsize)
}

func run(engine, out string, runs int, size int64) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("run as root: it mounts a loop device and drops caches")
	}
	engine, err := filepath.Abs(engine)
	if err != nil {
		return err
	}
	for _, bin := range []string{"dockerd", "docker", "losetup", "mkfs.ext4"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s not found (apt-get install docker.io e2fsprogs mount)", bin)
		}
	}
	work, err := os.MkdirTemp("/var/tmp", "pullbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	fmt.Println("building the image from host files...")
	img, info, err := buildImage(size)
	if err != nil {
		return err
	}
	reg, err := testregistry.Run(filepath.Join(work, "registry"))
	if err != nil {
		return err
	}
	defer reg.Stop()
	rc, _ := registry.New(registry.Options{})
	n, _ := reference.ParseNormalizedNamed(reg.Host + "/bench/app")
	if err := testimage.Push(context.Background(), rc.Repository(n, nil), "v1", img); err != nil {
		return err
	}
	img = testimage.Image{} // let the layers go: memory is measured
	ref := reg.Host + "/bench/app:v1"

	dev, mnt, cleanup, err := loopFS(work)
	if err != nil {
		return err
	}
	defer cleanup()

	results := map[string][]sample{}
	for i := 0; i < runs; i++ {
		for _, e := range []string{"balena-engine", "docker", "balena-engine-fsync"} {
			s, err := pullOnce(e, engine, ref, mnt, dev, work, info)
			if err != nil {
				return fmt.Errorf("%s run %d: %w", e, i+1, err)
			}
			fmt.Printf("%-13s run %d: pull %v, peak RSS %s, written %s (x%.3f of content, x%.3f of space used), page cache +%s, dirty +%s\n", e, i+1,
				s.pull.Round(time.Millisecond), mib(s.peakRSS), mib(s.written), s.writeAmplify, s.overAlloc, mib(s.cacheGrowth), mib(s.dirtyGrowth))
			results[e] = append(results[e], s)
		}
	}
	report := report(results, info, runs, engine)
	fmt.Print(report)
	if out != "" {
		return os.WriteFile(out, []byte(report), 0o644)
	}
	return nil
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func sh(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// loopFS makes an ext4 filesystem on a loop device with direct I/O.
func loopFS(work string) (dev, mnt string, cleanup func(), err error) {
	img := filepath.Join(work, "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		return "", "", nil, err
	}
	if err := os.Truncate(img, 6<<30); err != nil {
		return "", "", nil, err
	}
	dev, err = sh("losetup", "--direct-io=on", "-f", "--show", img)
	if err != nil {
		return "", "", nil, err
	}
	// Inode tables and journal initialised now: ext4's lazy initialisation
	// would otherwise write about 100 MB in the background during the
	// first pull and be counted against it.
	if _, err := sh("mkfs.ext4", "-q", "-E", "lazy_itable_init=0,lazy_journal_init=0", dev); err != nil {
		sh("losetup", "-d", dev)
		return "", "", nil, err
	}
	mnt = filepath.Join(work, "mnt")
	os.MkdirAll(mnt, 0o755)
	if err := syscall.Mount(dev, mnt, "ext4", 0, ""); err != nil {
		sh("losetup", "-d", dev)
		return "", "", nil, err
	}
	return dev, mnt, func() {
		syscall.Unmount(mnt, syscall.MNT_DETACH)
		sh("losetup", "-d", dev)
	}, nil
}

// sectorsWritten reads the device's written sectors from /proc/diskstats.
func sectorsWritten(dev string) (int64, error) {
	b, err := os.ReadFile("/proc/diskstats")
	if err != nil {
		return 0, err
	}
	name := filepath.Base(dev)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 9 && f[2] == name {
			return strconv.ParseInt(f[9], 10, 64)
		}
	}
	return 0, fmt.Errorf("%s not in /proc/diskstats", name)
}

func meminfo() map[string]int64 {
	out := map[string]int64{}
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		fs := strings.Fields(v)
		if len(fs) > 0 {
			n, _ := strconv.ParseInt(fs[0], 10, 64)
			out[k] = n << 10
		}
	}
	return out
}

// treeRSS sums VmRSS over pid and its descendants.
func treeRSS(pid int) int64 {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 {
			pp, _ := strconv.Atoi(fields[1])
			children[pp] = append(children[pp], p)
		}
	}
	var total int64
	var walk func(int)
	walk = func(p int) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
					n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
					total += n << 10
				}
			}
		}
		for _, c := range children[p] {
			walk(c)
		}
	}
	walk(pid)
	return total
}

func pullOnce(which, engine, ref, mnt, dev, work string, info imageInfo) (sample, error) {
	var s sample
	root := filepath.Join(mnt, which)
	os.RemoveAll(root)
	execRoot := filepath.Join(work, "exec-"+which)
	os.RemoveAll(execRoot)
	sock := filepath.Join(work, which+".sock")
	pidfile := filepath.Join(work, which+".pid")
	var cmd *exec.Cmd
	if which == "docker" {
		cmd = exec.Command("dockerd", "--data-root", root, "--exec-root", execRoot, "-H", "unix://"+sock,
			"--pidfile", pidfile, "--bridge=none", "--iptables=false", "--ip6tables=false", "--storage-driver=overlay2")
	} else {
		cfg := filepath.Join(work, "daemon.json")
		os.WriteFile(cfg, []byte("{}"), 0o644)
		sync := "syncfs"
		if which == "balena-engine-fsync" {
			sync = "fsync"
		}
		cmd = exec.Command(engine, "daemon", "--data-root", root, "--exec-root", execRoot, "-H", "unix://"+sock,
			"--pidfile", pidfile, "--config-file", cfg, "--layer-sync", sync, "--bridge=none", "--iptables=false", "--ip-forward=false")
	}
	logf, _ := os.Create(filepath.Join(work, which+".log"))
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	syscall.Sync()
	os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0o200)
	// The registry's blob files are read into the cache before the pull,
	// so that the growth measured is the engine's, not the registry's.
	filepath.WalkDir(filepath.Join(work, "registry"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, err := os.ReadFile(p); err == nil {
				_ = b
			}
		}
		return nil
	})
	if err := cmd.Start(); err != nil {
		return s, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		mounts.DetachUnder(mnt)
		os.RemoveAll(root)
	}()
	c, err := client.New("unix://" + sock)
	if err != nil {
		return s, err
	}
	defer c.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Ping(ctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return s, fmt.Errorf("daemon did not answer: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // let start-up I/O settle
	syscall.Sync()
	base := meminfo()
	used0 := usedBytes(mnt)
	sec0, err := sectorsWritten(dev)
	if err != nil {
		return s, err
	}
	var mu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			m := meminfo()
			rss := treeRSS(cmd.Process.Pid)
			mu.Lock()
			s.cacheGrowth = max(s.cacheGrowth, m["Cached"]-base["Cached"])
			s.dirtyGrowth = max(s.dirtyGrowth, m["Dirty"]-base["Dirty"])
			s.peakRSS = max(s.peakRSS, rss)
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	start := time.Now()
	pull := exec.Command("docker", "pull", "-q", ref)
	pull.Env = append(os.Environ(), "DOCKER_HOST=unix://"+sock, "DOCKER_CONFIG="+work)
	outb, err := pull.CombinedOutput()
	s.pull = time.Since(start)
	close(stop)
	wg.Wait()
	if err != nil {
		return s, fmt.Errorf("docker pull: %v: %s", err, outb)
	}
	syscall.Sync()
	sec1, err := sectorsWritten(dev)
	if err != nil {
		return s, err
	}
	s.written = (sec1 - sec0) * 512
	s.writeAmplify = float64(s.written) / float64(info.bytes)
	s.allocated = usedBytes(mnt) - used0
	if s.allocated > 0 {
		s.overAlloc = float64(s.written) / float64(s.allocated)
	}
	return s, nil
}

func median(xs []float64) float64 {
	s := append([]float64{}, xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func report(res map[string][]sample, info imageInfo, runs int, engine string) string {
	var b strings.Builder
	host, _ := os.Hostname()
	kernel, _ := sh("uname", "-r")
	cpu := ""
	if f, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(f), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	dockerd, _ := sh("dockerd", "--version")
	ours, _ := sh(engine, "--version")
	fmt.Fprintf(&b, "# Pull benchmark\n\nMade by `make bench` (`go run ./src/internal/cmd/pullbench %s`) on %s.\n\n",
		strings.Join(os.Args[1:], " "), time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- machine: %s, %s, %d cores, %s RAM, kernel %s\n", host, cpu, nproc(), mib(meminfo()["MemTotal"]), kernel)
	fmt.Fprintf(&b, "- engines: %s; %s (Debian's docker.io, overlay2)\n", ours, dockerd)
	fmt.Fprintf(&b, "- image: %d layers made from this machine's /usr files, %d files, %s of file content, %s of tar, %s gzip-compressed; served by Debian's docker-registry on 127.0.0.1\n",
		info.layers, info.files, mib(info.bytes), mib(info.tarBytes), mib(info.blobBytes))
	fmt.Fprintf(&b, "- each pull: `docker pull` (the docker CLI) against a freshly started daemon whose data root is an empty ext4 filesystem on a loop device with direct I/O; page cache dropped before; %d runs each, alternating, medians\n", runs)
	b.WriteString("- written: sectors written to that device (`/proc/diskstats`) from just before the pull to after a `sync` that follows it; per byte of file content extracted, and per byte of filesystem space the pull used (`statfs`: blocks, inodes' rounding to 4 KiB, directories), which is the part no engine can avoid\n")
	b.WriteString("- page cache and dirty growth: peaks of `Cached` and `Dirty` in `/proc/meminfo` above their values at the start, sampled every 50 ms during the pull; the registry's blob files are read into the cache beforehand, so their pages are not counted\n")
	b.WriteString("- peak RSS: the daemon and all its child processes, summed, sampled every 50 ms\n\n")
	b.WriteString("| figure | balena-engine | Docker 20.10 | Docker / balena-engine |\n|---|---:|---:|---:|\n")
	get := func(e string, f func(sample) float64) float64 {
		var xs []float64
		for _, s := range res[e] {
			xs = append(xs, f(s))
		}
		return median(xs)
	}
	rows := []struct {
		name string
		f    func(sample) float64
		fmt  func(float64) string
	}{
		{"cold pull time", func(s sample) float64 { return s.pull.Seconds() }, func(v float64) string { return fmt.Sprintf("%.2f s", v) }},
		{"peak RSS of the daemon's processes", func(s sample) float64 { return float64(s.peakRSS) }, func(v float64) string { return mib(int64(v)) }},
		{"bytes written to the device", func(s sample) float64 { return float64(s.written) }, func(v float64) string { return mib(int64(v)) }},
		{"write amplification (written / file content extracted)", func(s sample) float64 { return s.writeAmplify }, func(v float64) string { return fmt.Sprintf("%.3f", v) }},
		{"filesystem space used after the pull", func(s sample) float64 { return float64(s.allocated) }, func(v float64) string { return mib(int64(v)) }},
		{"written / space used (writes beyond what is stored)", func(s sample) float64 { return s.overAlloc }, func(v float64) string { return fmt.Sprintf("%.3f", v) }},
		{"page-cache growth (peak)", func(s sample) float64 { return float64(s.cacheGrowth) }, func(v float64) string { return mib(int64(v)) }},
		{"dirty memory growth (peak)", func(s sample) float64 { return float64(s.dirtyGrowth) }, func(v float64) string { return mib(int64(v)) }},
	}
	for _, r := range rows {
		ours, theirs := get("balena-engine", r.f), get("docker", r.f)
		ratio := "-"
		if ours > 0 {
			ratio = fmt.Sprintf("%.2fx", theirs/ours)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.name, r.fmt(ours), r.fmt(theirs), ratio)
	}
	fs := get("balena-engine-fsync", func(s sample) float64 { return s.pull.Seconds() })
	sfs := get("balena-engine", func(s sample) float64 { return s.pull.Seconds() })
	fmt.Fprintf(&b, "\nDurability: with `--layer-sync fsync` (every file and directory fsynced) the same pull took %.2f s, against %.2f s with the default `syncfs` (one flush of the filesystem per layer): %.2fx; bytes written %s against %s.\n",
		fs, sfs, fs/sfs, mib(int64(get("balena-engine-fsync", func(s sample) float64 { return float64(s.written) }))),
		mib(int64(get("balena-engine", func(s sample) float64 { return float64(s.written) }))))
	b.WriteString("\nEvery run:\n\n| engine | run | pull | peak RSS | written | cache growth | dirty growth |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, e := range []string{"balena-engine", "docker", "balena-engine-fsync"} {
		for i, s := range res[e] {
			fmt.Fprintf(&b, "| %s | %d | %.2f s | %s | %s | %s | %s |\n", e, i+1, s.pull.Seconds(), mib(s.peakRSS), mib(s.written), mib(s.cacheGrowth), mib(s.dirtyGrowth))
		}
	}
	return b.String()
}

func nproc() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}
