package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/balena-os/balena-engine/src/internal/mounts"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// recipe is part of every cache key: change it when the way inputs are
// built changes, so that older inputs are not reused.
const recipe = "deltabench-2"

// pairInput is one image pair: A and B share the base layers (none for the
// Debian root), and each has one layer of its own.
type pairInput struct {
	key   string // in tags: go-default, go-sw, node, debian
	name  string // in the report
	base  []layerFile
	a, b  layerFile
	cfg   ocispec.ImageConfig
	notes []string // markdown lines about what A and B are
	elf   string   // an ELF file of B's layer whose delta is split by section
}

// inputMeta is what a cache entry records beside its layer tars.
type inputMeta struct {
	Built time.Time
	Notes map[string][]string // per pair key
}

// cached returns the cache entry named kind-hash(parts), building it with
// build into a scratch directory first when it is missing.
func cached(cache, kind string, parts []string, build func(dir string, meta *inputMeta) error) (string, *inputMeta, error) {
	h := sha256.New()
	for _, p := range append([]string{recipe}, parts...) {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	dir := filepath.Join(cache, kind+"-"+hex.EncodeToString(h.Sum(nil))[:16])
	var meta inputMeta
	if b, err := os.ReadFile(filepath.Join(dir, "meta.json")); err == nil && json.Unmarshal(b, &meta) == nil {
		fmt.Printf("%s: cached in %s (built %s)\n", kind, dir, meta.Built.Format("2006-01-02 15:04 MST"))
		return dir, &meta, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", nil, err
	}
	os.RemoveAll(dir)
	tmp, err := os.MkdirTemp(cache, kind+"-partial-")
	if err != nil {
		return "", nil, err
	}
	defer removeTree(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", nil, err
	}
	fmt.Printf("%s: building the inputs (once; kept in %s)\n", kind, dir)
	t0 := time.Now()
	meta = inputMeta{Built: time.Now().UTC(), Notes: map[string][]string{}}
	if err := build(tmp, &meta); err != nil {
		return "", nil, fmt.Errorf("%s inputs: %w", kind, err)
	}
	b, _ := json.MarshalIndent(meta, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, "meta.json"), b, 0o644); err != nil {
		return "", nil, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", nil, err
	}
	// Inputs of older recipes or commits are not needed any more.
	old, _ := filepath.Glob(filepath.Join(cache, kind+"-*"))
	for _, o := range old {
		if o != dir {
			removeTree(o)
		}
	}
	fmt.Printf("%s: built in %s\n", kind, time.Since(t0).Round(time.Second))
	return dir, &meta, nil
}

// lockCache takes the cache's lock for the run (one run at a time builds
// and reads the inputs); the caller closes the file to release it.
func lockCache(cache string) (*os.File, error) {
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(cache, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s is in use by another run of the benchmark: %w", cache, err)
	}
	return f, nil
}

// removeTree removes dir after detaching anything still mounted below it
// (mmdebstrap mounts /proc, /sys and /dev into its root while it works):
// never removes through a mount.
func removeTree(dir string) error {
	mounts.DetachUnder(dir)
	if left := mounts.Under(dir); len(left) > 0 {
		return fmt.Errorf("not removing %s: still mounted below it: %v", dir, left)
	}
	return os.RemoveAll(dir)
}

// command runs name with args to completion, its output kept for the
// error; a cancelled ctx sends SIGTERM (then SIGKILL after 30 s).
func command(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		tail := string(out)
		if len(tail) > 4000 {
			tail = "..." + tail[len(tail)-4000:]
		}
		return string(out), fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail)
	}
	return string(out), nil
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// ---- the Go program ----

// goPairs builds this repository's engine (./src/cmd/balena-engine) at two
// commits with the machine's Go, by default flags and with -s -w, each
// binary a layer holding /usr/bin/app.
func goPairs(ctx context.Context, cache, work, repo, oldRev, newRev string) ([]*pairInput, error) {
	resolve := func(rev string) (string, error) {
		out, err := command(ctx, repo, nil, "git", "rev-parse", "--verify", rev+"^{commit}")
		return strings.TrimSpace(out), err
	}
	oldC, err := resolve(oldRev)
	if err != nil {
		return nil, err
	}
	newC, err := resolve(newRev)
	if err != nil {
		return nil, err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	goVer, err := command(ctx, "", nil, goBin, "version")
	if err != nil {
		return nil, err
	}
	goVer = strings.TrimSpace(goVer)
	variants := []struct{ key, name, ldflags string }{
		{"go-default", "Go program, default build", ""},
		{"go-sw", "Go program, -s -w", "-s -w"},
	}
	dir, meta, err := cached(cache, "go", []string{oldC, newC, goVer}, func(out string, meta *inputMeta) error {
		src, err := os.MkdirTemp(work, "go-src-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(src)
		info := map[string]string{}
		for _, side := range []struct{ name, commit string }{{"a", oldC}, {"b", newC}} {
			tree := filepath.Join(src, side.name)
			if err := os.MkdirAll(tree, 0o755); err != nil {
				return err
			}
			// git archive, not a worktree: nothing is added to the
			// repository's own .git.
			if _, err := command(ctx, "", nil, "sh", "-c", `git -C "$1" archive --format=tar "$2" | tar -x -C "$3"`, "sh", repo, side.commit, tree); err != nil {
				return err
			}
			when, err := command(ctx, repo, nil, "git", "log", "-1", "--format=%ct", side.commit)
			if err != nil {
				return err
			}
			secs, _ := strconv.ParseInt(strings.TrimSpace(when), 10, 64)
			subject, _ := command(ctx, repo, nil, "git", "log", "-1", "--format=%h %cI", side.commit)
			info[side.name] = strings.TrimSpace(subject)
			for _, v := range variants {
				bin := filepath.Join(src, side.name+"-"+v.key)
				args := []string{"build", "-trimpath"}
				if v.ldflags != "" {
					args = append(args, "-ldflags="+v.ldflags)
				}
				args = append(args, "-o", bin, "./src/cmd/balena-engine")
				fmt.Printf("  go %s (%s, %s)\n", strings.Join(args, " "), side.name, side.commit[:12])
				// Modules from this machine's module cache only: no
				// download at run time.
				if _, err := command(ctx, tree, []string{"GOFLAGS=-mod=readonly", "GOPROXY=off", "GOTOOLCHAIN=local"}, goBin, args...); err != nil {
					return err
				}
				if err := writeFilesLayer(filepath.Join(out, side.name+"-"+v.key+".tar"), time.Unix(secs, 0).UTC(),
					fileEntry{name: "usr/"}, fileEntry{name: "usr/bin/"}, fileEntry{name: "usr/bin/app", src: bin, mode: 0o755}); err != nil {
					return err
				}
				info[side.name+"-"+v.key] = strconv.FormatInt(fileSize(bin), 10)
			}
		}
		count, _ := command(ctx, repo, nil, "git", "rev-list", "--count", oldC+".."+newC)
		stat, _ := command(ctx, repo, nil, "git", "diff", "--shortstat", oldC, newC, "--", "src")
		for _, v := range variants {
			flags := "default flags"
			if v.ldflags != "" {
				flags = "`-ldflags='" + v.ldflags + "'`"
			}
			meta.Notes[v.key] = []string{
				fmt.Sprintf("this repository's `./src/cmd/balena-engine` built by `go build -trimpath` (%s; no build tags, so not the shipped binary) with %s, one file `/usr/bin/app` in a layer above a busybox layer (Debian's busybox-static) shared by A and B", flags, goVer),
				fmt.Sprintf("A: commit %s, binary %s bytes; B: commit %s, binary %s bytes; %s commits apart (src/: %s)",
					info["a"], info["a-"+v.key], info["b"], info["b-"+v.key], strings.TrimSpace(count), strings.TrimSpace(stat)),
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var pairs []*pairInput
	for _, v := range variants {
		a, err := openLayer(filepath.Join(dir, "a-"+v.key+".tar"))
		if err != nil {
			return nil, err
		}
		b, err := openLayer(filepath.Join(dir, "b-"+v.key+".tar"))
		if err != nil {
			return nil, err
		}
		pairs = append(pairs, &pairInput{key: v.key, name: v.name, a: a, b: b,
			cfg: ocispec.ImageConfig{Entrypoint: []string{"/usr/bin/app"}}, notes: meta.Notes[v.key], elf: "usr/bin/app"})
	}
	return pairs, nil
}

// ---- the Node.js application ----

// The application's direct dependencies: A's versions and B's, all real
// releases on npm. Their own dependencies are what npm resolves for them.
var nodeDeps = []struct{ name, a, b string }{
	{"express", "4.18.2", "4.21.2"},
	{"lodash", "4.17.20", "4.17.21"},
	{"moment", "2.29.4", "2.30.1"},
	{"axios", "1.4.0", "1.9.0"},
	{"debug", "4.3.4", "4.4.1"},
	{"uuid", "9.0.0", "11.1.0"},
	{"winston", "3.9.0", "3.17.0"},
	{"dotenv", "16.1.3", "16.5.0"},
}

const nodeIndex = `'use strict';
require('dotenv').config();
const express = require('express');
const _ = require('lodash');
const moment = require('moment');
const axios = require('axios');
const debug = require('debug')('app');
const { v4: uuidv4 } = require('uuid');
const winston = require('winston');

const log = winston.createLogger({ transports: [new winston.transports.Console()] });
const app = express();
app.get('/', (req, res) => {
  debug('request %s', req.url);
  res.json({ id: uuidv4(), now: moment().toISOString(), keys: _.keys(req.query) });
});
app.get('/proxy', async (req, res) => {
  const r = await axios.get(String(req.query.url || 'http://127.0.0.1/'));
  res.send(r.data);
});
app.listen(process.env.PORT || 8080, () => log.info('listening'));
`

func nodePackageJSON(version string, b bool) []byte {
	deps := map[string]string{}
	for _, d := range nodeDeps {
		if b {
			deps[d.name] = d.b
		} else {
			deps[d.name] = d.a
		}
	}
	j, _ := json.MarshalIndent(map[string]any{
		"name": "bench-app", "version": version, "private": true, "main": "index.js",
		"scripts": map[string]string{"start": "node index.js"}, "dependencies": deps,
	}, "", "  ")
	return append(j, '\n')
}

func nodePair(ctx context.Context, cache, work string) (*pairInput, error) {
	nodeVer, err := command(ctx, "", nil, "node", "--version")
	if err != nil {
		return nil, fmt.Errorf("node.js is needed (apt-get install nodejs npm): %w", err)
	}
	npmVer, err := command(ctx, "", nil, "npm", "--version")
	if err != nil {
		return nil, err
	}
	pkgA, pkgB := nodePackageJSON("1.0.0", false), nodePackageJSON("1.1.0", true)
	dir, meta, err := cached(cache, "node", []string{string(pkgA), string(pkgB), nodeIndex, nodeVer, npmVer}, func(out string, meta *inputMeta) error {
		tmp, err := os.MkdirTemp(work, "node-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		pkgs := map[string]map[string]string{}
		var bytes [2]int64
		for i, side := range []struct {
			name string
			pkg  []byte
		}{{"a", pkgA}, {"b", pkgB}} {
			app := filepath.Join(tmp, side.name, "app")
			if err := os.MkdirAll(app, 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(app, "package.json"), side.pkg, 0o644); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(app, "index.js"), []byte(nodeIndex), 0o644); err != nil {
				return err
			}
			fmt.Printf("  npm install --omit=dev (%s)\n", side.name)
			// No install scripts: nothing of the packages runs here.
			if _, err := command(ctx, app, nil, "npm", "install", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund",
				"--no-update-notifier", "--cache", filepath.Join(tmp, "npm-cache")); err != nil {
				return err
			}
			pkgs[side.name] = nodeModules(filepath.Join(app, "node_modules", ".package-lock.json"))
			filepath.WalkDir(app, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					bytes[i] += fileSize(p)
				}
				return nil
			})
			// npm stamps package files 1985-10-26; directories and the
			// lock files get the clock's time: clamped.
			if err := writeDirLayer(app, filepath.Join(out, side.name+".tar"), layerOptions{prefix: "app", clamp: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
				return err
			}
		}
		var same, changed, added, removed int
		for n, v := range pkgs["b"] {
			switch va, ok := pkgs["a"][n]; {
			case !ok:
				added++
			case va == v:
				same++
			default:
				changed++
			}
		}
		for n := range pkgs["a"] {
			if _, ok := pkgs["b"][n]; !ok {
				removed++
			}
		}
		var direct []string
		for _, d := range nodeDeps {
			direct = append(direct, fmt.Sprintf("%s %s → %s", d.name, d.a, d.b))
		}
		meta.Notes["node"] = []string{
			fmt.Sprintf("`/app` (package.json, index.js, node_modules from `npm install --omit=dev --ignore-scripts`, npm %s, node %s) in a layer above the busybox layer shared by A and B", strings.TrimSpace(npmVer), strings.TrimSpace(nodeVer)),
			"direct dependencies: " + strings.Join(direct, ", "),
			fmt.Sprintf("node_modules: A %d packages (%.1f MiB of files), B %d packages (%.1f MiB); from A to B %d changed version, %d added, %d removed, %d the same",
				len(pkgs["a"]), float64(bytes[0])/(1<<20), len(pkgs["b"]), float64(bytes[1])/(1<<20), changed, added, removed, same),
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	a, b, err := openPair(dir)
	if err != nil {
		return nil, err
	}
	return &pairInput{key: "node", name: "Node.js application", a: a, b: b,
		cfg: ocispec.ImageConfig{WorkingDir: "/app", Cmd: []string{"node", "index.js"}}, notes: meta.Notes["node"]}, nil
}

// nodeModules reads npm's hidden lock file: package path -> version.
func nodeModules(lock string) map[string]string {
	out := map[string]string{}
	b, err := os.ReadFile(lock)
	if err != nil {
		return out
	}
	var l struct {
		Packages map[string]struct{ Version string }
	}
	json.Unmarshal(b, &l)
	for p, v := range l.Packages {
		out[p] = v.Version
	}
	return out
}

// ---- the Debian root ----

// debianIncludes are installed on top of Debian's Essential set. Chosen so
// that, of the 73 packages of the root, nine have newer versions in
// bookworm-updates or bookworm-security (liblzma5, the four PAM packages,
// libpcre2-8-0, perl-base, libzstd1, zlib1g, at the time of writing), and
// the rest (procps, less, libicu72, file, locales, nano and their
// libraries) have none, so that the root is 170 MB. The merged-/usr hook
// keeps usrmerge (and perl with it) out, as debootstrap does.
var debianIncludes = []string{"procps", "less", "libicu72", "file", "locales", "nano"}

// aptMirrors reads the Debian mirrors this machine's apt uses (deb822
// .sources and one-line .list files): the archive and the security one.
func aptMirrors() (archive, security string) {
	archive, security = "http://deb.debian.org/debian", "http://deb.debian.org/debian-security"
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	type src struct{ uris, suites []string }
	var srcs []src
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, stanza := range strings.Split(string(b), "\n\n") {
			var s src
			for _, line := range strings.Split(stanza, "\n") {
				k, v, ok := strings.Cut(line, ":")
				if !ok || strings.HasPrefix(strings.TrimSpace(line), "#") {
					continue
				}
				switch strings.TrimSpace(k) {
				case "URIs":
					s.uris = strings.Fields(v)
				case "Suites":
					s.suites = strings.Fields(v)
				}
			}
			srcs = append(srcs, s)
		}
	}
	lists, _ := filepath.Glob("/etc/apt/sources.list.d/*.list")
	for _, f := range append([]string{"/etc/apt/sources.list"}, lists...) {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) >= 3 && fields[0] == "deb" {
				i := 1
				if strings.HasPrefix(fields[1], "[") {
					for i < len(fields) && !strings.HasSuffix(fields[i], "]") {
						i++
					}
					i++
				}
				if i+1 < len(fields) {
					srcs = append(srcs, src{uris: []string{fields[i]}, suites: []string{fields[i+1]}})
				}
			}
		}
		fh.Close()
	}
	for _, s := range srcs {
		if len(s.uris) == 0 {
			continue
		}
		for _, suite := range s.suites {
			switch suite {
			case "bookworm":
				archive = strings.TrimSuffix(s.uris[0], "/")
			case "bookworm-security":
				security = strings.TrimSuffix(s.uris[0], "/")
			}
		}
	}
	return archive, security
}

type debPackage struct{ name, version string }

func dpkgList(root string) ([]debPackage, error) {
	out, err := exec.Command("dpkg-query", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-W", "-f", "${Package}\t${Version}\n").Output()
	if err != nil {
		return nil, fmt.Errorf("dpkg-query in %s: %w", root, err)
	}
	var l []debPackage
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		n, v, _ := strings.Cut(line, "\t")
		l = append(l, debPackage{n, v})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].name < l[j].name })
	return l, nil
}

func debianPair(ctx context.Context, cache, work string) (*pairInput, error) {
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return nil, errors.New("mmdebstrap not found (apt-get install mmdebstrap)")
	}
	archive, security := aptMirrors()
	sourcesA := []string{"deb " + archive + " bookworm main"}
	sourcesB := append(append([]string{}, sourcesA...), "deb "+archive+" bookworm-updates main", "deb "+security+" bookworm-security main")
	args := []string{"--variant=essential", "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr", "--include=" + strings.Join(debianIncludes, ","), "bookworm"}
	dir, meta, err := cached(cache, "debian", append(append(append([]string{}, args...), sourcesA...), sourcesB...), func(out string, meta *inputMeta) error {
		tmp, err := os.MkdirTemp(work, "debian-")
		if err != nil {
			return err
		}
		defer removeTree(tmp)
		// One time for both roots: what was made during the installs (the
		// dpkg database, ld.so.cache, logs, directories) gets it; the
		// packages' own files keep theirs.
		clamp := time.Now().UTC().Truncate(24 * time.Hour)
		lists := map[string][]debPackage{}
		var sizes [2]int64
		for i, side := range []struct {
			name    string
			sources []string
		}{{"a", sourcesA}, {"b", sourcesB}} {
			root := filepath.Join(tmp, side.name)
			cmdArgs := append(append([]string{"--quiet"}, args...), root)
			cmdArgs = append(cmdArgs, side.sources...)
			fmt.Printf("  mmdebstrap %s\n", strings.Join(cmdArgs, " "))
			_, err := command(ctx, "", []string{"SOURCE_DATE_EPOCH=" + strconv.FormatInt(clamp.Unix(), 10)}, "mmdebstrap", cmdArgs...)
			mounts.DetachUnder(root)
			if err != nil {
				return err
			}
			if lists[side.name], err = dpkgList(root); err != nil {
				return err
			}
			skip := func(rel string) bool { return strings.HasPrefix(rel, "dev/") }
			if err := writeDirLayer(root, filepath.Join(out, side.name+".tar"), layerOptions{clamp: clamp, skip: skip}); err != nil {
				return err
			}
			sizes[i] = fileSize(filepath.Join(out, side.name+".tar"))
			if err := removeTree(root); err != nil {
				return err
			}
		}
		va := map[string]string{}
		for _, p := range lists["a"] {
			va[p.name] = p.version
		}
		var moved []string
		for _, p := range lists["b"] {
			switch old, ok := va[p.name]; {
			case !ok:
				moved = append(moved, fmt.Sprintf("%s (only in B: %s)", p.name, p.version))
			case old != p.version:
				moved = append(moved, fmt.Sprintf("`%s` %s → %s", p.name, old, p.version))
			}
		}
		meta.Notes["debian"] = []string{
			fmt.Sprintf("`mmdebstrap %s DIR` (Debian's Essential set, merged /usr, plus %s), the whole root one layer (no base layer); `/dev` left out; times later than %s 00:00 UTC (the day both roots were built: what the installs wrote) clamped to it",
				strings.Join(args, " "), strings.Join(debianIncludes, ", "), clamp.Format("2006-01-02")),
			fmt.Sprintf("A: `%s`; B: also `%s` and `%s`", sourcesA[0], sourcesB[1], sourcesB[2]),
			fmt.Sprintf("A: %d packages, %.1f MiB of tar; B: %d packages, %.1f MiB of tar; built %s", len(lists["a"]), float64(sizes[0])/(1<<20),
				len(lists["b"]), float64(sizes[1])/(1<<20), time.Now().UTC().Format("2006-01-02")),
			fmt.Sprintf("%d packages with another version in B: %s", len(moved), strings.Join(moved, ", ")),
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	a, b, err := openPair(dir)
	if err != nil {
		return nil, err
	}
	return &pairInput{key: "debian", name: "Debian root", a: a, b: b,
		cfg: ocispec.ImageConfig{Cmd: []string{"bash"}, Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}, notes: meta.Notes["debian"]}, nil
}

// openPair opens the layers a.tar and b.tar a pair's inputs left in dir.
func openPair(dir string) (a, b layerFile, err error) {
	if a, err = openLayer(filepath.Join(dir, "a.tar")); err != nil {
		return a, b, err
	}
	b, err = openLayer(filepath.Join(dir, "b.tar"))
	return a, b, err
}
