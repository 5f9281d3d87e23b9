// Command pullbench measures cold pulls of three images by balena-engine
// and by Debian's Docker (dockerd 20.10) in the same run, from the same
// registry on 127.0.0.1, each onto a fresh ext4 filesystem of its own on a
// loop device (direct I/O, so the backing file adds no page cache), against
// the floor: the same blobs fetched, decompressed by gzip and extracted by
// GNU tar, with no sync, and that followed by one sync. The images: a mix
// of this machine's /usr files, a Debian root of many small files (made by
// mmdebstrap, cached), and made-up files of 4 KiB to 2 MiB (bigimage). It
// reports the pull time, the CPU time, the peak RSS of the daemon's process
// tree, the bytes written to the block device per byte extracted, and the
// growth of the page cache and of dirty memory during the pull (from
// /proc/meminfo).
//
//	go run ./src/internal/cmd/pullbench -engine bin/balena-engine -out docs/results/pull-bench.md
//
// Run as root; it drops the page cache between runs. make bench runs it.
//
// With -push-only HOST it only builds the images of -images and pushes
// them to the registry at HOST (bench/NAME:v1), printing their layers'
// digests: make bench-devices (qemu-tests/pullbench-devices) pushes the
// small image so, with -platform naming the QEMU guest's platform and
// -every N keeping every Nth file of the Debian root.
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
	"runtime"
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
	size := flag.Int64("size", 250<<20, "bytes of files in the mixed image")
	pushTo := flag.String("push-only", "", "only build the images of -images and push each to this registry host as bench/NAME:v1, printing what they hold and their layers' digests (for the QEMU guests' benchmark and experiments)")
	images := flag.String("images", "mixed,small,large", "the images to pull: mixed (/usr files), small (a Debian root), large (files of 4 KiB to 2 MiB)")
	cache := flag.String("cache", "/var/cache/balena-engine-bench", "where the Debian root is kept between runs")
	platform := flag.String("platform", platforms.DefaultString(), "the platform the images claim (their content is this machine's files whatever it says: for -push-only to another architecture's guest)")
	every := flag.Int("every", 1, "the small image keeps every Nth regular file of the Debian root (1: all), for slow guests")
	flag.Parse()
	p, err := platforms.Parse(*platform)
	if err == nil && *every < 1 {
		err = fmt.Errorf("-every %d: want at least 1", *every)
	}
	if err == nil {
		opts := imageOptions{size: *size, cache: *cache, every: *every,
			platform: ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}}
		if *pushTo != "" {
			err = pushOnly(*pushTo, strings.Split(*images, ","), opts)
		} else {
			err = run(*engine, *out, *runs, strings.Split(*images, ","), opts)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pullbench:", err)
		os.Exit(1)
	}
}

// imageOptions are how the images are built.
type imageOptions struct {
	size     int64 // the mixed image's file content
	cache    string
	every    int // the small image's sampling of the Debian root's files
	platform ocispec.Platform
}

// pushOnly builds the images and pushes them to regHost, as run would,
// and prints for each a line "image REF platform=P layers=N files=N
// content=BYTES tar=BYTES blobs=BYTES", one "layer DIGEST BYTES" line per
// layer in the manifest's order, and "about TEXT" (how it was made).
func pushOnly(regHost string, which []string, opts imageOptions) error {
	imgs, err := pushImages(regHost, which, opts)
	if err != nil {
		return err
	}
	for _, bi := range imgs {
		i := bi.info
		fmt.Printf("image %s/bench/%s:v1 platform=%s layers=%d files=%d content=%d tar=%d blobs=%d\n",
			regHost, bi.key, platforms.Format(opts.platform), i.layers, i.files, i.bytes, i.tarBytes, i.blobBytes)
		for _, d := range bi.blobs {
			fmt.Printf("layer %s %d\n", d.Digest, d.Size)
		}
		fmt.Printf("about %s\n", bi.about)
	}
	return nil
}

// pushImages builds the images named by which and pushes each to regHost
// as bench/NAME:v1, then reads each back from the registry (describe).
func pushImages(regHost string, which []string, opts imageOptions) ([]*benchImage, error) {
	rc, _ := registry.New(registry.Options{})
	push := func(key string, img testimage.Image) error {
		n, _ := reference.ParseNormalizedNamed(regHost + "/bench/" + key)
		return testimage.Push(context.Background(), rc.Repository(n, nil), "v1", img)
	}
	var imgs []*benchImage
	for _, key := range which {
		bi := &benchImage{key: key}
		switch key {
		case "mixed":
			fmt.Fprintln(os.Stderr, "building the mixed image from host files...")
			img, _, err := buildImage(opts.size, opts.platform)
			if err == nil {
				err = push(key, img)
			}
			if err != nil {
				return nil, err
			}
			bi.title = "mixed: this machine's /usr files"
			bi.about = "4 layers made from this machine's `/usr/lib/x86_64-linux-gnu`, `/usr/share`, `/usr/lib/python3.11` and `/usr/bin` (libraries, binaries, text, small files), gzip level 1"
		case "small":
			img, about, err := smallImage(opts.cache, opts.every, opts.platform)
			if err == nil {
				err = push(key, img)
			}
			if err != nil {
				return nil, err
			}
			bi.title, bi.about = "small: a Debian root, many small files", about+", gzip's default level"
		case "large":
			fmt.Fprintln(os.Stderr, "building the large image (bigimage)...")
			if b, err := exec.Command("go", "run", "./src/internal/cmd/bigimage", "-push", regHost+"/bench/large:v1", "-size", "256MiB", "-layers", "4",
				"-platform", platforms.Format(opts.platform)).CombinedOutput(); err != nil {
				return nil, fmt.Errorf("bigimage: %v: %s", err, b)
			}
			bi.title = "large: made-up files of 4 KiB to 2 MiB"
			bi.about = "`src/internal/cmd/bigimage -size 256MiB -layers 4`: files of 4 KiB to 2 MiB, half random bytes (incompressible), half repeated text, gzip level 1"
		default:
			return nil, fmt.Errorf("unknown image %q (mixed, small, large)", key)
		}
		var err error
		if bi.info, bi.blobs, err = describe(regHost, "bench/"+key); err != nil {
			return nil, err
		}
		imgs = append(imgs, bi)
	}
	return imgs, nil
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

func buildImage(total int64, platform ocispec.Platform) (testimage.Image, imageInfo, error) {
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
	img := testimage.New(platform, ocispec.ImageConfig{Cmd: []string{"sh"}}, layers...)
	return img, info, nil
}

type sample struct {
	pull         time.Duration
	sync         time.Duration // the floor's: the sync after it
	cpu          time.Duration // user + system, the daemon's and its children's
	peakRSS      int64         // bytes, process tree
	written      int64         // bytes to the block device, sync included
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

func run(engine, out string, runs int, which []string, opts imageOptions) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("run as root: it mounts a loop device and drops caches")
	}
	engine, err := filepath.Abs(engine)
	if err != nil {
		return err
	}
	for _, bin := range []string{"dockerd", "docker", "losetup", "mkfs.ext4", "gzip", "tar"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s not found (apt-get install docker.io e2fsprogs mount gzip tar)", bin)
		}
	}
	work, err := os.MkdirTemp("/var/tmp", "pullbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	reg, err := testregistry.Run(filepath.Join(work, "registry"))
	if err != nil {
		return err
	}
	defer reg.Stop()
	imgs, err := pushImages(reg.Host, which, opts)
	if err != nil {
		return err
	}
	runtime.GC() // the built layers are gone: memory is measured

	dev, mnt, cleanup, err := loopFS(work)
	if err != nil {
		return err
	}
	defer cleanup()

	results := map[string]map[string][]sample{}
	for i := 0; i < runs; i++ {
		for _, bi := range imgs {
			if results[bi.key] == nil {
				results[bi.key] = map[string][]sample{}
			}
			variants := []string{"floor", "balena-engine", "docker"}
			if bi.key == "mixed" {
				variants = append(variants, "balena-engine-fsync")
			}
			for _, e := range variants {
				var s sample
				var err error
				if e == "floor" {
					s, err = floorOnce(reg.Host, bi, mnt, dev, work)
				} else {
					s, err = pullOnce(e, engine, reg.Host+"/bench/"+bi.key+":v1", mnt, dev, work, bi.info)
				}
				if err != nil {
					return fmt.Errorf("%s, %s, run %d: %w", bi.key, e, i+1, err)
				}
				fmt.Printf("%-6s %-19s run %d: pull %v (+ sync %v), CPU %v, peak RSS %s, written %s (x%.3f of content), page cache +%s, dirty +%s\n", bi.key, e, i+1,
					s.pull.Round(time.Millisecond), s.sync.Round(time.Millisecond), s.cpu.Round(time.Millisecond), mib(s.peakRSS), mib(s.written), s.writeAmplify, mib(s.cacheGrowth), mib(s.dirtyGrowth))
				results[bi.key][e] = append(results[bi.key][e], s)
			}
		}
	}
	report := report(results, imgs, runs, engine)
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

// coldStart syncs, drops the page cache and reads the registry's blob
// files and the programs that take part (bins) back into it, so that the
// growth measured is the puller's data, not the registry's files or the
// pages of a 40 MB docker CLI loaded during the pull.
func coldStart(work string, bins ...string) {
	syscall.Sync()
	os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0o200)
	read := func(p string) {
		if b, err := os.ReadFile(p); err == nil {
			_ = b
		}
	}
	filepath.WalkDir(filepath.Join(work, "registry"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			read(p)
		}
		return nil
	})
	for _, b := range bins {
		if p, err := exec.LookPath(b); err == nil {
			read(p)
		}
	}
}

// measure runs do (a pull, or the floor's extraction) and measures it:
// time, the page cache's and dirty memory's growth, the peak RSS of pid's
// process tree (pid 0: none), the bytes written to dev up to a sync after
// it. Before the final sync, afterDo runs (the floor's own sync, timed).
func measure(mnt, dev string, info imageInfo, cg *memCgroup, pid int, do func() error, afterDo func(*sample)) (sample, error) {
	var s sample
	syscall.Sync()
	cache0, dirty0 := cg.stat()
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
			cache, dirty := cg.stat()
			var rss int64
			if pid > 0 {
				rss = treeRSS(pid)
			}
			mu.Lock()
			s.cacheGrowth = max(s.cacheGrowth, cache-cache0)
			s.dirtyGrowth = max(s.dirtyGrowth, dirty-dirty0)
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
	err = do()
	s.pull = time.Since(start)
	close(stop)
	wg.Wait()
	if err != nil {
		return s, err
	}
	if afterDo != nil {
		afterDo(&s)
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

// cpuTime is the user and system time of pid and of its children it has
// waited for (dockerd extracts in a child, docker-untar).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	st := string(b)
	f := strings.Fields(st[strings.LastIndexByte(st, ')')+1:])
	var ticks int64
	for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
		if i < len(f) {
			n, _ := strconv.ParseInt(f[i], 10, 64)
			ticks += n
		}
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

// floorOnce is the floor: each layer blob fetched over HTTP from the same
// registry and piped through gzip -dc into GNU tar, three layers at a time
// as the engines pull, each into a directory of its own; no sync, then one
// sync, timed apart.
func floorOnce(regHost string, bi *benchImage, mnt, dev, work string) (sample, error) {
	root := filepath.Join(mnt, "floor")
	os.RemoveAll(root)
	defer os.RemoveAll(root)
	coldStart(work, "gzip", "tar")
	cg, err := newMemCgroup(fmt.Sprintf("pullbench-%d-floor", os.Getpid()))
	if err != nil {
		return sample{}, err
	}
	defer cg.remove()
	var cpu time.Duration
	var mu sync.Mutex
	extract := func(i int, d ocispec.Descriptor) error {
		dir := filepath.Join(root, strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		body, err := openBlob(context.Background(), regHost, "bench/"+bi.key, d.Digest)
		if err != nil {
			return err
		}
		defer body.Close()
		gz := exec.Command("gzip", "-dc")
		gz.Stdin = body
		tr := exec.Command("tar", "-x", "--numeric-owner", "-C", dir)
		pipe, err := gz.StdoutPipe()
		if err != nil {
			return err
		}
		tr.Stdin = pipe
		cg.wrap(gz)
		cg.wrap(tr)
		var gzErr, trErr strings.Builder
		gz.Stderr, tr.Stderr = &gzErr, &trErr
		if err := tr.Start(); err != nil {
			return err
		}
		if err := gz.Start(); err != nil {
			tr.Process.Kill()
			tr.Wait()
			return err
		}
		e1, e2 := gz.Wait(), tr.Wait()
		mu.Lock()
		for _, c := range []*exec.Cmd{gz, tr} {
			cpu += c.ProcessState.UserTime() + c.ProcessState.SystemTime()
		}
		mu.Unlock()
		if e1 != nil || e2 != nil {
			return fmt.Errorf("gzip -dc | tar -x: %v %v: %s %s", e1, e2, gzErr.String(), trErr.String())
		}
		return nil
	}
	do := func() error {
		sem := make(chan struct{}, 3)
		errs := make(chan error, len(bi.blobs))
		for i, d := range bi.blobs {
			go func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				errs <- extract(i, d)
			}()
		}
		var first error
		for range bi.blobs {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	s, err := measure(mnt, dev, bi.info, cg, 0, do, func(s *sample) {
		t := time.Now()
		syscall.Sync()
		s.sync = time.Since(t)
	})
	s.cpu = cpu
	return s, err
}

func pullOnce(which, engine, ref, mnt, dev, work string, info imageInfo) (sample, error) {
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
	coldStart(work, "docker", cmd.Path)
	cg, err := newMemCgroup(fmt.Sprintf("pullbench-%d-%s", os.Getpid(), which))
	if err != nil {
		return sample{}, err
	}
	defer cg.remove()
	cg.wrap(cmd)
	if err := cmd.Start(); err != nil {
		return sample{}, err
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
		return sample{}, err
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
			return sample{}, fmt.Errorf("daemon did not answer: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // let start-up I/O settle
	cpu0 := cpuTime(cmd.Process.Pid)
	s, err := measure(mnt, dev, info, cg, cmd.Process.Pid, func() error {
		pull := exec.Command("docker", "pull", "-q", ref)
		pull.Env = append(os.Environ(), "DOCKER_HOST=unix://"+sock, "DOCKER_CONFIG="+work)
		if outb, err := pull.CombinedOutput(); err != nil {
			return fmt.Errorf("docker pull: %v: %s", err, outb)
		}
		return nil
	}, nil)
	s.cpu = cpuTime(cmd.Process.Pid) - cpu0
	return s, err
}

func median(xs []float64) float64 {
	s := append([]float64{}, xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func report(res map[string]map[string][]sample, imgs []*benchImage, runs int, engine string) string {
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
	tarv, _ := sh("tar", "--version")
	tarv, _, _ = strings.Cut(tarv, "\n")
	fmt.Fprintf(&b, "# Pull benchmark\n\nMade by `make bench` (`go run ./src/internal/cmd/pullbench %s`) on %s.\n\n",
		strings.Join(os.Args[1:], " "), time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- machine: %s, %s, %d cores, %s RAM, kernel %s\n", host, cpu, nproc(), mib(meminfo()["MemTotal"]), kernel)
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		// Other work on the machine slows every puller of a run alike,
		// not the ratios, but it is said.
		fmt.Fprintf(&b, "- load average at the end (1, 5, 15 min): %s\n", strings.Join(strings.Fields(string(la))[:3], ", "))
	}
	fmt.Fprintf(&b, "- engines: %s; %s (Debian's docker.io, overlay2)\n", ours, dockerd)
	fmt.Fprintf(&b, "- floor: each layer blob fetched over HTTP from the same registry, `gzip -dc | tar -x --numeric-owner` (%s), three layers at a time, each into a directory of its own, no sync; *floor + sync* adds one `sync` after it\n", tarv)
	fmt.Fprintf(&b, "- each pull: `docker pull` (the docker CLI) against a freshly started daemon whose data root is an empty ext4 filesystem on a loop device with direct I/O; the floor extracts onto the same filesystem; page cache dropped before; %d runs each, alternating, medians\n", runs)
	b.WriteString("- every puller (the daemons, gzip and tar) runs at nice -10, so that other work on the machine disturbs them less and alike\n")
	b.WriteString("- CPU time: user + system of the daemon and of the children it waited for (Docker extracts in a child, `docker-untar`); of gzip and tar for the floor\n")
	b.WriteString("- written: sectors written to that device (`/proc/diskstats`) from just before the pull to after a `sync` that follows it, per byte of file content extracted\n")
	b.WriteString("- page cache and dirty growth: peaks of the page cache and dirty pages charged to a memory cgroup holding only the puller (the daemon and its children; gzip and tar for the floor: `memory.stat`'s `file` and `file_dirty` on cgroup v2, `total_cache` and `total_dirty` on v1) above their values at the start, sampled every 50 ms, so that nothing else the machine does is counted; the programs are read into the cache beforehand\n")
	b.WriteString("- peak RSS: the daemon and all its child processes, summed, sampled every 50 ms\n")
	b.WriteString("- goals (issue #14): each pull at most 1.5x its floor + sync, and at least 1.5x faster than Docker 20.10\n\n")
	secs := func(v float64) string { return fmt.Sprintf("%.2f s", v) }
	for _, bi := range imgs {
		r := res[bi.key]
		get := func(e string, f func(sample) float64) float64 {
			var xs []float64
			for _, s := range r[e] {
				xs = append(xs, f(s))
			}
			if len(xs) == 0 {
				return 0
			}
			return median(xs)
		}
		info := bi.info
		fmt.Fprintf(&b, "## %s\n\n%s: %d layers, %d files, %s of file content, %s of tar, %s compressed.\n\n",
			bi.title, bi.about, info.layers, info.files, mib(info.bytes), mib(info.tarBytes), mib(info.blobBytes))
		floor := get("floor", func(s sample) float64 { return s.pull.Seconds() })
		floorSync := get("floor", func(s sample) float64 { return (s.pull + s.sync).Seconds() })
		ourT := get("balena-engine", func(s sample) float64 { return s.pull.Seconds() })
		dockT := get("docker", func(s sample) float64 { return s.pull.Seconds() })
		b.WriteString("| figure | floor (no sync) | floor + sync | balena-engine | Docker 20.10 |\n|---|---:|---:|---:|---:|\n")
		fmt.Fprintf(&b, "| pull time | %s | %s | %s | %s |\n", secs(floor), secs(floorSync), secs(ourT), secs(dockT))
		rows := []struct {
			name string
			f    func(sample) float64
			fmt  func(float64) string
		}{
			{"CPU time (user + system)", func(s sample) float64 { return s.cpu.Seconds() }, secs},
			{"peak RSS of the daemon's processes", func(s sample) float64 { return float64(s.peakRSS) }, func(v float64) string { return mib(int64(v)) }},
			{"page-cache growth (peak)", func(s sample) float64 { return float64(s.cacheGrowth) }, func(v float64) string { return mib(int64(v)) }},
			{"dirty memory growth (peak)", func(s sample) float64 { return float64(s.dirtyGrowth) }, func(v float64) string { return mib(int64(v)) }},
			{"written per byte of file content", func(s sample) float64 { return s.writeAmplify }, func(v float64) string { return fmt.Sprintf("%.3f", v) }},
		}
		for _, row := range rows {
			fl := row.fmt(get("floor", row.f))
			if row.name == "peak RSS of the daemon's processes" {
				fl = "-"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", row.name, fl, fl, row.fmt(get("balena-engine", row.f)), row.fmt(get("docker", row.f)))
		}
		verdict := func(ok bool) string {
			if ok {
				return "met"
			}
			return "**not met**"
		}
		fmt.Fprintf(&b, "\nbalena-engine / (floor + sync): **%.2fx** (goal at most 1.5x: %s); Docker / balena-engine: **%.2fx** (goal at least 1.5x: %s); balena-engine / floor without sync: %.2fx.\n",
			ourT/floorSync, verdict(ourT <= 1.5*floorSync), dockT/ourT, verdict(dockT >= 1.5*ourT), ourT/floor)
		if len(r["balena-engine-fsync"]) > 0 {
			fs := get("balena-engine-fsync", func(s sample) float64 { return s.pull.Seconds() })
			fmt.Fprintf(&b, "\nDurability: with `--layer-sync fsync` (every file and directory fsynced) the same pull took %.2f s, against %.2f s with the default `syncfs` (one flush of the filesystem per layer): %.2fx.\n", fs, ourT, fs/ourT)
		}
		b.WriteString("\nEvery run:\n\n| puller | run | time | CPU | peak RSS | written | cache growth | dirty growth |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, e := range []string{"floor", "balena-engine", "docker", "balena-engine-fsync"} {
			for i, s := range r[e] {
				t := secs(s.pull.Seconds())
				if e == "floor" {
					t += fmt.Sprintf(" + sync %.2f s", s.sync.Seconds())
				}
				fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s |\n", e, i+1, t, secs(s.cpu.Seconds()), mib(s.peakRSS), mib(s.written), mib(s.cacheGrowth), mib(s.dirtyGrowth))
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func nproc() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}
