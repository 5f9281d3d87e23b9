package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

func human(b int64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	default:
		return fmt.Sprintf("%d B", b)
	}
}

func secs(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

func ratio(a, b int64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", float64(a)/float64(b))
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}

func firstLine(ctx context.Context, name string, args ...string) string {
	out, err := command(ctx, "", nil, name, args...)
	if err != nil {
		return name + " (version unknown)"
	}
	l, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	return strings.TrimSpace(l)
}

// nativeStats reads the engine's "Target bytes copied C, adjusted A,
// patched P (Z zstd, B bsdiff), literal L" line.
func nativeStats(line string) (copied, added, patched, literal int64, ok bool) {
	var z, b int64
	n, _ := fmt.Sscanf(line, "Target bytes copied %d, adjusted %d, patched %d (%d zstd, %d bsdiff), literal %d", &copied, &added, &patched, &z, &b, &literal)
	return copied, added, patched, literal, n == 6
}

// repoCommit names the repository's commit, "-dirty" when the tree has
// changes.
func repoCommit(ctx context.Context, repo string) string {
	commit := firstLine(ctx, "git", "-C", repo, "rev-parse", "--short=12", "HEAD")
	if _, err := command(ctx, repo, nil, "git", "diff", "--quiet", "HEAD"); err != nil {
		commit += "-dirty"
	}
	return commit
}

func report(ctx context.Context, results []*pairResult, o options, repo, commit, engine string, took time.Duration) string {
	var b strings.Builder
	arch := firstLine(ctx, "uname", "-m")
	kernel := firstLine(ctx, "uname", "-r")
	var mem int64
	if m, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(m), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				mem, _ = strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			}
		}
	}
	fmt.Fprintf(&b, "# Delta benchmark\n\nMade by `make bench-delta` (`go run ./src/internal/cmd/deltabench %s`) on %s; the run took %s.\n\n",
		strings.Join(os.Args[1:], " "), time.Now().UTC().Format("2006-01-02 15:04 MST"), took.Round(time.Second))
	fmt.Fprintf(&b, "- machine: %s, %s, %d cores, %.1f GiB RAM, kernel %s (shared with other work: times are indicative)\n",
		arch, cpuModel(), runtime.NumCPU(), float64(mem)/(1<<20), kernel)
	fmt.Fprintf(&b, "- commit %s (when the run started); engine: %s\n", commit, firstLine(ctx, engine, "--version"))
	fmt.Fprintf(&b, "- tools: %s; node %s, npm %s; %s; %s; %s\n", strings.TrimPrefix(firstLine(ctx, "go", "version"), "go version "), firstLine(ctx, "node", "--version"),
		firstLine(ctx, "npm", "--version"), firstLine(ctx, "mmdebstrap", "--version"), xdeltaVersion(ctx),
		zstdVersion(ctx))
	b.WriteString("- each pair is two images A and B built here (below); a daemon of the benchmark (temporary data root) loads both, pushes them to a local registry (Debian's docker-registry on 127.0.0.1) and makes each delta with `balena-engine image delta --format balena|native -t TAG A B`, which it pushes too\n")
	b.WriteString("- plain pull: the registry's blob sizes of B's layers that A lacks, gzipped by our push (Go's gzip, default level); delta: the registry's blob sizes of all the delta image's layers (an unchanged layer is an empty tar in a delta: a few dozen bytes); neither counts manifests and configs (under 3 KiB)\n")
	b.WriteString("- make: the wall time of `image delta` (the CLI's whole request), and the daemon's peak RSS growth during it (VmHWM after, reset by `clear_refs` before, minus VmRSS before)\n")
	b.WriteString("- apply: `balena-engine pull` of the delta image by a daemon that has only A, restarted just before (a device's heap, not the one of A's pull); wall time of the pull and the daemon's peak RSS growth as above; the image pulled is checked to have B's ID, then removed\n")
	var longs []string
	for _, r := range results {
		longs = append(longs, fmt.Sprintf("`%s` for the %s", r.zstd.cmd, r.in.name))
	}
	fmt.Fprintf(&b, "- references, of the changed layer's tar with A's as the source: `xdelta3 -9 -B <size of A, at least 64 MiB> -e -s A.tar B.tar` (its default secondary compression, lzma) and `zstd -19 --long=N --patch-from=A.tar B.tar` (N the smallest, at least 27, with 2^N covering the larger tar: %s); raw output sizes (a delta layer is gzipped by the push, these are not); each decoded and checked to give B's tar back. And zstd file by file: each file of B that differs from A's at the same path as `zstd -19 --patch-from=A's-file B's-file`, each file A lacks as `zstd -19`, summed: what patching file by file, without history across files, reaches with zstd\n\n", strings.Join(longs, ", "))
	b.WriteString("## Bytes a device fetches\n\n")
	b.WriteString("| pair | B's changed layer (tar) | plain pull (gzip) | balena format | native format | xdelta3 | zstd --patch-from | zstd file by file |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | **%s** | %s | %s | %s (%s) |\n", r.in.name, human(r.changedTar), human(r.plain),
			human(r.f["balena"].bytes), human(r.f["native"].bytes), human(r.xdelta.bytes), human(r.zstd.bytes), human(r.perFile), plural(r.perFileN, "file"))
	}
	b.WriteString("\n## Ratios\n\nThe goal for the native format: at least 3x smaller than balenaEngine's on every pair.\n\n")
	b.WriteString("| pair | plain / native | plain / balena | balena / native | goal (≥ 3x) | xdelta3 / native | zstd / native |\n|---|---:|---:|---:|---|---:|---:|\n")
	for _, r := range results {
		nat, bal := r.f["native"].bytes, r.f["balena"].bytes
		goal := "met"
		if nat*3 > bal {
			goal = "**not met**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", r.in.name, ratio(r.plain, nat), ratio(r.plain, bal), ratio(bal, nat), goal,
			ratio(r.xdelta.bytes, nat), ratio(r.zstd.bytes, nat))
	}
	b.WriteString("\n## Time and memory\n\n")
	b.WriteString("| pair | make: balena | make: native | apply: balena | apply: native | apply peak RSS: balena | apply peak RSS: native | make peak RSS: balena | make peak RSS: native | xdelta3 encode / decode | zstd encode / decode |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		bal, nat := r.f["balena"], r.f["native"]
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | +%s | +%s | +%s | +%s | %s / %s | %s / %s |\n", r.in.name,
			secs(bal.create), secs(nat.create), secs(bal.apply), secs(nat.apply),
			human(bal.applyRSS<<10), human(nat.applyRSS<<10), human(bal.createRSS<<10), human(nat.createRSS<<10),
			secs(r.xdelta.enc), secs(r.xdelta.dec), secs(r.zstd.enc), secs(r.zstd.dec))
	}
	b.WriteString("\nThe same peaks counting only anonymous memory (`RssAnon` of `/proc/PID/status`, sampled every 20 ms, so a shorter peak can be missed), make / apply: ")
	var anon []string
	for _, r := range results {
		anon = append(anon, fmt.Sprintf("%s: balena +%s / +%s, native +%s / +%s", r.in.name, human(r.f["balena"].createAnon<<10), human(r.f["balena"].applyAnon<<10),
			human(r.f["native"].createAnon<<10), human(r.f["native"].applyAnon<<10)))
	}
	b.WriteString(strings.Join(anon, "; ") + ".\n")
	b.WriteString("\nThe daemon's RSS before each apply: ")
	var before []string
	for _, r := range results {
		before = append(before, fmt.Sprintf("%s %s (balena), %s (native)", r.in.name, human(r.f["balena"].rssBefore<<10), human(r.f["native"].rssBefore<<10)))
	}
	b.WriteString(strings.Join(before, "; ") + ".\n")

	b.WriteString("\n## How the native format rebuilt B's changed layer\n\nFrom the engine's own summary of `image delta --format native`: bytes of B's tar copied from A's, adjusted (ADD of a few differing bytes: tar headers), patched (zstd with the base file as dictionary, or bsdiff) and literal (no similar base file).\n\n")
	b.WriteString("| pair | tar bytes | copied | adjusted | patched | literal | engine's summary |\n|---|---:|---:|---:|---:|---:|---|\n")
	for _, r := range results {
		nat := r.f["native"]
		c, a, p, l, ok := nativeStats(nat.statsLine)
		if !ok {
			fmt.Fprintf(&b, "| %s | %s | | | | | %s |\n", r.in.name, human(r.changedTar), nat.statsLine)
			continue
		}
		pct := func(x int64) string {
			return fmt.Sprintf("%s (%.1f %%)", human(x), 100*float64(x)/float64(max(r.changedTar, 1)))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", r.in.name, human(r.changedTar), pct(c), pct(a), pct(p), pct(l), strings.TrimPrefix(nat.statsLine, "Target bytes "))
	}

	b.WriteString("\n## Where the native delta's bytes go\n\nThe native delta layers read back from the registry (gunzipped, the `delta` file's commands decompressed) by the benchmark's own reader of [the format](../delta-format.md), each command attributed to the entry of B's tar it writes. A PATCH carries a zstd frame or a bsdiff patch, already compressed: the outer zstd stream gains nothing on it; LITERAL and ADD data are compressed by it.\n\n")
	b.WriteString("| pair | delta file | commands uncompressed | COPY | ADD (data) | LITERAL (data) | PATCH zstd (patches) | PATCH bsdiff (patches) | entries patched |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		bd := r.native
		if bd == nil {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d (%s) | %d (%s) | %d (%s) | %d (%s) | %d |\n", r.in.name, human(bd.deltaFile), human(bd.commands),
			bd.count[opCopy], bd.count[opAdd], human(bd.payload[opAdd]), bd.count[opLiteral], human(bd.payload[opLiteral]),
			bd.nZstd, human(bd.patchZstd), bd.nBsd, human(bd.patchBsdiff), bd.patchedFiles)
	}
	for _, r := range results {
		bd := r.native
		if bd == nil {
			continue
		}
		fmt.Fprintf(&b, "\n%s: the entries the native delta spends most on (bytes the commands carry, before the outer compression)\n\n| entry of B | size | delta bytes | commands |\n|---|---:|---:|---|\n", r.in.name)
		for _, f := range bd.top(10) {
			var kinds []string
			for _, k := range opNames {
				if n := f.kinds[k]; n > 0 {
					kinds = append(kinds, fmt.Sprintf("%d %s", n, k))
				}
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", f.name, human(f.size), human(f.payload), strings.Join(kinds, ", "))
		}
	}

	b.WriteString("\n## Exact bytes\n\n")
	b.WriteString("| pair | A: layers (tar) | A: gzip | B: layers (tar) | B: gzip | plain pull | balena | native | xdelta3 | zstd | zstd file by file | engine's own \"Plain pull\" lines |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range results {
		var lines []string
		for _, f := range formats {
			l := r.f[f].engineLine
			if r.f[f].engineSize != r.f[f].changedBytes || r.f[f].enginePlain != r.plain {
				l += " (**differs from the registry's sizes**)"
			}
			lines = append(lines, l)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %s |\n", r.in.name, r.aTar, r.aGzip, r.bTar, r.bGzip, r.plain,
			r.f["balena"].bytes, r.f["native"].bytes, r.xdelta.bytes, r.zstd.bytes, r.perFile, strings.Join(lines, "; "))
	}

	b.WriteString("\n## The pairs\n\nBuilt once by the benchmark and kept in `" + o.cache + "` (delete it to rebuild); nothing is downloaded at run time but Debian's and npm's packages.\n")
	for _, r := range results {
		fmt.Fprintf(&b, "\n### %s\n\n", r.in.name)
		for _, n := range r.in.notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
		fmt.Fprintf(&b, "- images: A %s, %s of tar (%s gzip); B %s, %s of tar (%s gzip); B's ID %s\n",
			plural(len(r.in.base)+1, "layer"), human(r.aTar), human(r.aGzip), plural(len(r.in.base)+1, "layer"), human(r.bTar), human(r.bGzip), r.bID)
	}

	b.WriteString("\n## The goal\n\n")
	var short []string
	for _, r := range results {
		if r.f["native"].bytes*3 > r.f["balena"].bytes {
			short = append(short, r.in.name)
		}
	}
	if len(short) == 0 {
		b.WriteString("The native format is at least 3x smaller than balenaEngine's on every pair.\n")
	} else {
		fmt.Fprintf(&b, "The native format is not 3x smaller than balenaEngine's on: %s. What the figures above say of why:\n", strings.Join(short, ", "))
	}
	for _, r := range results {
		if r.f["native"].bytes*3 <= r.f["balena"].bytes {
			continue
		}
		b.WriteString(why(r, results))
	}
	return b.String()
}

func xdeltaVersion(ctx context.Context) string {
	f := strings.Fields(firstLine(ctx, "xdelta3", "-V")) // "Xdelta version 3.0.11, Copyright ..."
	if len(f) >= 3 {
		return "xdelta3 " + strings.TrimSuffix(f[2], ",")
	}
	return "xdelta3"
}

// why explains, from the measurements, where a pair's native delta falls
// short of 3x under balenaEngine's.
func why(r *pairResult, all []*pairResult) string {
	var b strings.Builder
	bal, nat := r.f["balena"].bytes, r.f["native"].bytes
	fmt.Fprintf(&b, "\n- **%s**: balena / native %s. ", r.in.name, ratio(bal, nat))
	best := min(r.zstd.bytes, r.xdelta.bytes)
	fmt.Fprintf(&b, "The general-purpose references on B's whole tar with the whole of A as history reach balena / zstd %s and balena / xdelta3 %s",
		ratio(bal, r.zstd.bytes), ratio(bal, r.xdelta.bytes))
	if best*3 > bal {
		b.WriteString(": no delta of these two tars tried here is 3x under balenaEngine's either. ")
	} else {
		fmt.Fprintf(&b, ": a delta %s under balenaEngine's exists here, the native format does not find it (it is %s larger than the best reference). ",
			ratio(bal, best), ratio(nat, best))
	}
	if bd := r.native; bd != nil && bd.commands > 0 {
		patches := bd.patchZstd + bd.patchBsdiff
		fmt.Fprintf(&b, "Of its commands' %s (uncompressed), %s are %s (%d zstd, %d bsdiff) of %s, already compressed, and %s literal data. ",
			human(bd.commands), human(patches), plural(bd.nZstd+bd.nBsd, "patch"), bd.nZstd, bd.nBsd, plural(bd.patchedFiles, "entry"), human(bd.payload[opLiteral]))
		if r.elfSize > 0 {
			fmt.Fprintf(&b, "B's binary holds %s of compressed DWARF (%.0f %% of its %s), which the delta carries as %s (%.0f %% of its commands' payload; the rest of the binary: %s). ",
				human(r.dwarfFile), 100*float64(r.dwarfFile)/float64(r.elfSize), human(r.elfSize), human(r.dwarfDelta),
				100*float64(r.dwarfDelta)/float64(max(r.dwarfDelta+r.otherDelta, 1)), human(r.otherDelta))
			b.WriteString("Compressed data changes throughout when anything in what it compresses moves, so neither this delta nor any other finds much in A to reuse for it")
			for _, o := range all {
				if o != r && o.elfSize > 0 && o.dwarfFile == 0 {
					fmt.Fprintf(&b, "; the same commits built with `-s -w` (%s, no DWARF) give a native delta of %s, balena / native %s", o.in.name, human(o.f["native"].bytes), ratio(o.f["balena"].bytes, o.f["native"].bytes))
				}
			}
			b.WriteString(".")
		} else if bd.patchedFiles > 0 {
			fmt.Fprintf(&b, "Each changed file is patched against one base file (at its path, or its name with digits blurred), each patch a zstd frame of its own: on average %s per patched entry. ",
				human(patches/int64(bd.patchedFiles)))
			b.WriteString("What a file shares with other files of A or with the other files of B (copies of a library's code in several of its builds, a module moved to another package) is not used, nor does one patch's history help the next; a single stream over the whole tar, as zstd --patch-from makes, uses both. ")
			fmt.Fprintf(&b, "zstd itself, file by file, needs %s for the %s that are new or differ (%s more than in one stream, %s of the native delta): patching file by file, even with zstd's best, ends %s under balenaEngine's here.",
				human(r.perFile), plural(r.perFileN, "file"), ratio(r.perFile, r.zstd.bytes), ratio(r.perFile, nat), ratio(bal, r.perFile))
		}
	}
	b.WriteString("\n")
	return b.String()
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	switch {
	case strings.HasSuffix(what, "ch"):
		what += "es"
	case strings.HasSuffix(what, "y"):
		what = strings.TrimSuffix(what, "y") + "ies"
	default:
		what += "s"
	}
	return fmt.Sprintf("%d %s", n, what)
}

func zstdVersion(ctx context.Context) string {
	for _, f := range strings.Fields(firstLine(ctx, "zstd", "--version")) { // "*** Zstandard CLI (64-bit) v1.5.4, by Yann Collet ***"
		if strings.HasPrefix(f, "v") && strings.Contains(f, ".") {
			return "zstd " + strings.TrimSuffix(f, ",")
		}
	}
	return "zstd"
}
