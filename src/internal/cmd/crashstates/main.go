// Command crashstates builds the states a disk could be left in by a power
// cut from a write log, and checks each: the crash-state exploration of the
// power-cut tests (qemu-tests/crashstates, docs/testing.md).
//
// The log is QEMU's blklogwrites format (Linux dm-log-writes'): a
// superblock, then per request a one-sector header (sector, sector count,
// flags) followed by the written data. Replaying a prefix of it onto a copy
// of the disk as it was before the logged boot gives the disk at that
// point. A disk with a volatile write cache guarantees only what a flush
// covered, so the states are:
//
//   - flush: every request up to a flush (and the end of the log);
//   - subset: the state at a flush plus a random subset of the writes
//     between it and the next flush (the cache wrote some, dropped the
//     rest, in any order);
//   - prefix: the state at a flush plus the first few of those writes.
//
// Each state is checked as the next boot would see it: mounted (the kernel
// replays the ext4 journal and cleans orphans), unmounted, "e2fsck -fn"
// (must be clean), mounted again and "balena-engine check" run on the data
// root (recovery, then every image whole or absent, nothing left over).
// Images are also checked for durability: an image whole at a flush state
// must be whole in every later state (nothing in the logged boot removes
// images), and the images named by -final-require must be whole at the end.
//
//	crashstates -base base.img -log lw.log -engine bin/balena-engine -work DIR -out OUT.md
//
// Needs root (mount). Mounts are on the host's kernel, not the guest's.
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

// The log's format: drivers/md/dm-log-writes.c, block/blklogwrites.c.
const (
	logMagic      = 0x6a736677736872
	logVersion    = 1
	flagFlush     = 1 << 0
	flagFUA       = 1 << 1
	flagDiscard   = 1 << 2
	flagMark      = 1 << 3
	knownLogFlags = flagFlush | flagFUA | flagDiscard | flagMark
)

// entry is one logged request; data is at dataOff in the log.
type entry struct {
	sector, sectors, flags uint64
	dataOff                int64
}

type writeLog struct {
	f          *os.File
	sectorSize int64
	entries    []entry
}

func readLog(path string) (*writeLog, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var sb [28]byte
	if _, err := f.ReadAt(sb[:], 0); err != nil {
		return nil, fmt.Errorf("log %s: superblock: %w", path, err)
	}
	le := binary.LittleEndian
	if le.Uint64(sb[0:]) != logMagic || le.Uint64(sb[8:]) != logVersion {
		return nil, fmt.Errorf("log %s: not a blklogwrites log (magic %#x, version %d)", path, le.Uint64(sb[0:]), le.Uint64(sb[8:]))
	}
	l := &writeLog{f: f, sectorSize: int64(le.Uint32(sb[24:]))}
	if l.sectorSize < 512 || l.sectorSize&(l.sectorSize-1) != 0 {
		return nil, fmt.Errorf("log %s: sector size %d", path, l.sectorSize)
	}
	// The superblock's count is updated at each flush only: requests
	// after the last flush are read up to the end of the file.
	flushed := le.Uint64(sb[16:])
	off := l.sectorSize
	var h [32]byte
	for off+l.sectorSize <= st.Size() {
		if _, err := f.ReadAt(h[:], off); err != nil {
			return nil, fmt.Errorf("log %s: entry %d: %w", path, len(l.entries), err)
		}
		e := entry{sector: le.Uint64(h[0:]), sectors: le.Uint64(h[8:]), flags: le.Uint64(h[16:]), dataOff: off + l.sectorSize}
		if e.flags&^knownLogFlags != 0 {
			if uint64(len(l.entries)) < flushed {
				return nil, fmt.Errorf("log %s: entry %d: flags %#x", path, len(l.entries), e.flags)
			}
			break // past the last complete entry
		}
		next := e.dataOff
		if e.flags&flagDiscard == 0 {
			next += int64(e.sectors) * l.sectorSize
		}
		if next > st.Size() {
			break // cut short
		}
		l.entries = append(l.entries, e)
		off = next
	}
	if uint64(len(l.entries)) < flushed {
		return nil, fmt.Errorf("log %s: %d entries, the superblock says %d", path, len(l.entries), flushed)
	}
	return l, nil
}

// apply writes entry e to the disk image (a discard becomes zeros: the
// harshest thing a device may return for discarded blocks).
func (l *writeLog) apply(disk *os.File, e entry) error {
	if e.sectors == 0 {
		return nil
	}
	n := int64(e.sectors) * l.sectorSize
	var src io.Reader
	if e.flags&flagDiscard != 0 {
		src = io.LimitReader(zeros{}, n)
	} else {
		src = io.NewSectionReader(l.f, e.dataOff, n)
	}
	w := io.NewOffsetWriter(disk, int64(e.sector)*l.sectorSize)
	if _, err := io.Copy(w, src); err != nil {
		return fmt.Errorf("replay write at sector %d: %w", e.sector, err)
	}
	return nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// state is one crash state to check: the flush state at group g, plus the
// chosen writes of the group after it.
type state struct {
	kind   string // flush, subset, prefix, end
	group  int    // flushes before it
	extra  []int  // entry indexes applied on top
	result string // "" when it passed
	whole  []string
}

func main() {
	base := flag.String("base", "", "the disk image as it was before the logged boot")
	logPath := flag.String("log", "", "the blklogwrites log of that boot")
	engine := flag.String("engine", "bin/balena-engine", "the balena-engine binary (this host's architecture)")
	work := flag.String("work", "", "a directory for the state images and the mount point")
	out := flag.String("out", "", "the results file (markdown)")
	maxStates := flag.Int("max", 1000, "check at most this many states")
	seed := flag.Uint64("seed", uint64(time.Now().UnixNano()), "random seed for the subsets and the sampling")
	require := flag.String("require", "busybox:latest", "comma-separated images that must be whole in every state")
	finalRequire := flag.String("final-require", "", "comma-separated images that must be whole at the end of the log")
	command := flag.String("command", "", "the command line the results file says made it")
	nControls := flag.Int("controls", 5, "negative controls: states with flushed writes dropped, which must fail")
	flag.Parse()
	if *base == "" || *logPath == "" || *work == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "crashstates: -base, -log, -work and -out are required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r := &runner{engine: *engine, work: *work, require: split(*require), finalRequire: split(*finalRequire),
		rnd: rand.New(rand.NewPCG(*seed, 0)), seed: *seed, command: *command, nControls: *nControls}
	if err := r.run(ctx, *base, *logPath, *out, *maxStates); err != nil {
		fmt.Fprintln(os.Stderr, "crashstates:", err)
		os.Exit(1)
	}
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

type runner struct {
	engine, work, command string
	require, finalRequire []string
	rnd                   *rand.Rand
	seed                  uint64
	mnt                   string
	nControls             int
	mounted               bool
}

func (r *runner) run(ctx context.Context, base, logPath, out string, maxStates int) error {
	wl, err := readLog(logPath)
	if err != nil {
		return err
	}
	// groups[g] are the write entries between flush g-1 and flush g; the
	// last group runs to the end of the log (no flush after it).
	var groups [][]int
	cur := []int{}
	var fua, discards, flushes int
	for i, e := range wl.entries {
		if e.flags&flagFUA != 0 {
			fua++
		}
		if e.flags&flagDiscard != 0 {
			discards++
		}
		if e.sectors > 0 {
			cur = append(cur, i)
		}
		// A FUA write is durable by itself: counted as a flush point,
		// which checks fewer states than a stricter model would.
		if e.flags&(flagFlush|flagFUA) != 0 {
			flushes++
			groups = append(groups, cur)
			cur = []int{}
		}
	}
	groups = append(groups, cur)
	if len(cur) > 0 {
		// The end state (all of the log) is the flush state of an empty
		// group after the writes that no flush covered.
		groups = append(groups, []int{})
	}
	states := r.plan(groups, maxStates)
	fmt.Fprintf(os.Stderr, "crashstates: %d log entries, %d flush points, %d groups with writes; checking %d states\n",
		len(wl.entries), flushes, countNonEmpty(groups), len(states))

	if err := os.MkdirAll(r.work, 0o755); err != nil {
		return err
	}
	r.mnt = filepath.Join(r.work, "mnt")
	if err := os.MkdirAll(r.mnt, 0o755); err != nil {
		return err
	}
	defer r.unmount()
	working := filepath.Join(r.work, "working.img")
	if err := run("cp", "--sparse=always", base, working); err != nil {
		return err
	}
	defer os.Remove(working)
	disk, err := os.OpenFile(working, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer disk.Close()

	start := time.Now()
	var durable []string // whole at some checked flush state: must stay whole
	next := 0            // the next state to check
	failed := 0
	for g := 0; g < len(groups) && next < len(states); g++ {
		// Writes of group g go on top of the flush state g (states whose
		// group is g), then the group is applied in full.
		for next < len(states) && states[next].group == g {
			if err := ctx.Err(); err != nil {
				return err
			}
			s := &states[next]
			next++
			if err := r.check(wl, disk, s, g == len(groups)-1, durable); err != nil {
				return err
			}
			if s.result != "" {
				failed++
				fmt.Fprintf(os.Stderr, "crashstates: state %d (%s at flush %d, +%d writes): FAIL %s\n", next, s.kind, s.group, len(s.extra), s.result)
			}
			if s.kind == "flush" && s.result == "" {
				durable = union(durable, s.whole)
			}
			if next%25 == 0 {
				fmt.Fprintf(os.Stderr, "crashstates: %d/%d states checked, %d failed, %.0f s\n", next, len(states), failed, time.Since(start).Seconds())
			}
		}
		for _, i := range groups[g] {
			if err := wl.apply(disk, wl.entries[i]); err != nil {
				return err
			}
		}
	}
	controls, err := r.controls(ctx, wl, base)
	if err != nil {
		return err
	}
	return r.report(out, wl, groups, flushes, fua, discards, states, controls, time.Since(start))
}

// controls makes states no correct disk can produce: the whole log with a
// few large writes, flushed ones, dropped (file data, most likely). They
// must fail, or the checks cannot see lost data: a negative control.
func (r *runner) controls(ctx context.Context, wl *writeLog, base string) ([]state, error) {
	var big []int
	for i, e := range wl.entries {
		if e.flags&flagDiscard == 0 && int64(e.sectors)*wl.sectorSize >= 64<<10 {
			big = append(big, i)
		}
	}
	if len(big) < 3 {
		return nil, nil
	}
	var out []state
	img := filepath.Join(r.work, "control.img")
	defer os.Remove(img)
	for range r.nControls {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		drop := map[int]bool{}
		for _, k := range r.rnd.Perm(len(big))[:3] {
			drop[big[k]] = true
		}
		if err := run("cp", "--sparse=always", base, img); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(img, os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		for i, e := range wl.entries {
			if drop[i] {
				continue
			}
			if err := wl.apply(f, e); err != nil {
				f.Close()
				return nil, err
			}
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
		s := state{kind: "control"}
		r.verify(img, &s, true, nil)
		fmt.Fprintf(os.Stderr, "crashstates: control (3 flushed writes dropped): %s\n", orPass(s.result))
		out = append(out, s)
	}
	return out, nil
}

// shorten keeps a control's verdict and its first problem.
func shorten(s string) string {
	i := strings.Index(s, "PROBLEM ")
	if i < 0 {
		return s
	}
	head, _, _ := strings.Cut(s[:i], ": exit status")
	p := s[i:]
	if j := strings.Index(p, " / "); j >= 0 {
		p = p[:j] + " ..."
	}
	return head + ": " + p
}

func orPass(result string) string {
	if result == "" {
		return "passed (not detected)"
	}
	return "detected: " + result
}

func countNonEmpty(groups [][]int) int {
	n := 0
	for _, g := range groups {
		if len(g) > 0 {
			n++
		}
	}
	return n
}

// plan chooses the states: every flush state (group g's state is the disk
// after flush g-1), then for groups with writes a subset and a prefix
// state, sampled down to maxStates with the first and last flush states
// always kept. Sorted by group, flush state first, for the replay.
func (r *runner) plan(groups [][]int, maxStates int) []state {
	var flushStates, between []state
	for g := range groups {
		kind := "flush"
		if g == len(groups)-1 {
			kind = "end"
		}
		flushStates = append(flushStates, state{kind: kind, group: g})
		w := groups[g]
		if len(w) < 2 {
			continue
		}
		// Every in-order prefix (up to 16 per group), and as many random
		// subsets: the sampling below keeps what the budget allows.
		for j := 1; j < len(w) && j <= 16; j++ {
			between = append(between, state{kind: "prefix", group: g, extra: w[:j]})
		}
		for range 16 {
			var sub []int
			for _, i := range w {
				if r.rnd.IntN(2) == 0 {
					sub = append(sub, i)
				}
			}
			if len(sub) > 0 && len(sub) < len(w) {
				between = append(between, state{kind: "subset", group: g, extra: sub})
			}
		}
	}
	// Half the budget for flush states, the rest for the ones between.
	nf := min(len(flushStates), max(maxStates/2, maxStates-len(between)))
	flushStates = sample(r.rnd, flushStates, nf, true)
	between = sample(r.rnd, between, maxStates-len(flushStates), false)
	all := append(flushStates, between...)
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].group != all[j].group {
			return all[i].group < all[j].group
		}
		return all[i].kind == "flush" || all[i].kind == "end"
	})
	return all
}

// sample keeps n of the states, in order; keepEnds keeps the first and last.
func sample(rnd *rand.Rand, s []state, n int, keepEnds bool) []state {
	if n >= len(s) {
		return s
	}
	if n <= 0 {
		return nil
	}
	idx := rnd.Perm(len(s))
	keep := map[int]bool{}
	if keepEnds {
		keep[0], keep[len(s)-1] = true, true
	}
	for _, i := range idx {
		if len(keep) >= n {
			break
		}
		keep[i] = true
	}
	var out []state
	for i := range s {
		if keep[i] {
			out = append(out, s[i])
		}
	}
	return out
}

func union(a, b []string) []string {
	m := map[string]bool{}
	for _, x := range append(append([]string{}, a...), b...) {
		m[x] = true
	}
	out := make([]string, 0, len(m))
	for x := range m {
		out = append(out, x)
	}
	sort.Strings(out)
	return out
}

// check makes state s from the working disk (the flush state of its
// group) and checks it, setting s.result and s.whole.
func (r *runner) check(wl *writeLog, disk *os.File, s *state, last bool, durable []string) error {
	img := filepath.Join(r.work, "state.img")
	if err := disk.Sync(); err != nil {
		return err
	}
	if err := run("cp", "--sparse=always", disk.Name(), img); err != nil {
		return err
	}
	defer os.Remove(img)
	if len(s.extra) > 0 {
		f, err := os.OpenFile(img, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		for _, i := range s.extra {
			if err := wl.apply(f, wl.entries[i]); err != nil {
				f.Close()
				return err
			}
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	r.verify(img, s, last, durable)
	return nil
}

// verify checks the state image img as the next boot would see it, setting
// s.result ("" when it passes) and s.whole.
func (r *runner) verify(img string, s *state, last bool, durable []string) {
	// 1. What the next boot's mount does: journal replay, orphans.
	if msg := r.mount(img); msg != "" {
		s.result = "mount: " + msg
		return
	}
	r.unmount()
	// 2. The filesystem is consistent after that.
	if out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput(); err != nil {
		s.result = fmt.Sprintf("e2fsck -fn: %v: %s", err, lastLines(string(out), 8))
		return
	}
	// 3. The engine's recovery and invariant.
	if msg := r.mount(img); msg != "" {
		s.result = "second mount: " + msg
		return
	}
	defer r.unmount()
	args := []string{"check", "--data-root", filepath.Join(r.mnt, "root")}
	req := append([]string{}, r.require...)
	req = append(req, durable...)
	if last {
		req = append(req, r.finalRequire...)
	}
	for _, q := range req {
		args = append(args, "--require", q)
	}
	out, err := exec.Command(r.engine, args...).CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "whole ") {
			continue
		}
		// whole sha256:... [name:tag ...] layers=N bytes=N
		if a, b := strings.Index(line, "["), strings.Index(line, "]"); a > 0 && b > a {
			s.whole = append(s.whole, strings.Fields(line[a+1:b])...)
		}
	}
	sort.Strings(s.whole)
	if err != nil {
		s.result = fmt.Sprintf("balena-engine check: %v: %s", err, lastLines(string(out), 8))
	}
}

func (r *runner) mount(img string) string {
	out, err := exec.Command("mount", "-t", "ext4", "-o", "loop", img, r.mnt).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	r.mounted = true
	return ""
}

// unmount detaches the state (mount -o loop frees its loop device).
func (r *runner) unmount() {
	if !r.mounted {
		return
	}
	if out, err := exec.Command("umount", r.mnt).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "crashstates: umount %s: %v: %s\n", r.mnt, err, out)
		return
	}
	r.mounted = false
}

func run(name string, args ...string) error {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}

func (r *runner) report(out string, wl *writeLog, groups [][]int, flushes, fua, discards int, states, controls []state, took time.Duration) error {
	type count struct{ checked, failed int }
	byKind := map[string]*count{}
	wholeSets := map[string]int{}
	var failures []string
	for i, s := range states {
		c := byKind[s.kind]
		if c == nil {
			c = &count{}
			byKind[s.kind] = c
		}
		c.checked++
		if s.result != "" {
			c.failed++
			failures = append(failures, fmt.Sprintf("- state %d (%s after flush %d, +%d writes): %s", i+1, s.kind, s.group, len(s.extra), s.result))
			continue
		}
		key := strings.Join(s.whole, " ")
		if key == "" {
			key = "(none)"
		}
		wholeSets[key]++
	}
	var b strings.Builder
	total, failed := 0, 0
	for _, c := range byKind {
		total += c.checked
		failed += c.failed
	}
	fmt.Fprintf(&b, "# Crash-state exploration\n\n")
	fmt.Fprintf(&b, "Made by `%s` on %s, seed %d, in %.0f s.\n", r.command, time.Now().UTC().Format("2006-01-02"), r.seed, took.Seconds())
	kernel, _ := exec.Command("uname", "-r").Output()
	fmt.Fprintf(&b, "Machine: %d cores; states mounted and checked on the host's kernel %s.\n\n", runtime.NumCPU(), strings.TrimSpace(string(kernel)))
	fmt.Fprintf(&b, "**%d states checked, %d failed.**\n\n", total, failed)
	fmt.Fprintf(&b, "The log: %d requests (%d flushes, %d FUA writes, %d discards), %d groups of writes between flushes,\n",
		len(wl.entries), flushes-fua, fua, discards, countNonEmpty(groups))
	fmt.Fprintf(&b, "%d bytes a sector. Each state: mount (journal replay), unmount, `e2fsck -fn` clean,\n", wl.sectorSize)
	fmt.Fprintf(&b, "mount, `balena-engine check --require %s` plus every image whole at an\n", strings.Join(r.require, ","))
	fmt.Fprintf(&b, "earlier flush state (durability), and at the end of the log %s. See docs/testing.md.\n\n", strings.Join(r.finalRequire, ", "))
	fmt.Fprintf(&b, "| state kind | what it is | checked | failed |\n|---|---|---:|---:|\n")
	for _, k := range []struct{ kind, what string }{
		{"flush", "every request up to a flush"},
		{"subset", "a flush state plus a random subset of the writes before the next flush"},
		{"prefix", "a flush state plus the first writes before the next flush"},
		{"end", "the whole log (after the clean shutdown's last flush, plus anything after it)"},
	} {
		c := byKind[k.kind]
		if c == nil {
			c = &count{}
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d |\n", k.kind, k.what, c.checked, c.failed)
	}
	fmt.Fprintf(&b, "\nImages whole in the passing states (the rest of each state's images absent):\n\n| images whole | states |\n|---|---:|\n")
	keys := make([]string, 0, len(wholeSets))
	for k := range wholeSets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "| %s | %d |\n", k, wholeSets[k])
	}
	if len(failures) > 0 {
		fmt.Fprintf(&b, "\nFailures:\n\n%s\n", strings.Join(failures, "\n"))
	}
	if len(controls) > 0 {
		detected := 0
		for _, c := range controls {
			if c.result != "" {
				detected++
			}
		}
		fmt.Fprintf(&b, "\nNegative control: %d states that no correct disk produces (the whole log with three\n", len(controls))
		fmt.Fprintf(&b, "random writes of 64 KiB or more dropped, flushed ones included): %d detected.\n\n", detected)
		for _, c := range controls {
			fmt.Fprintf(&b, "- %s\n", shorten(orPass(c.result)))
		}
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(out+".tmp", []byte(b.String()), 0o644); err != nil {
		return err
	}
	if err := os.Rename(out+".tmp", out); err != nil {
		return err
	}
	fmt.Print(b.String())
	if failed > 0 {
		return errors.New("some crash states are inconsistent")
	}
	return nil
}
