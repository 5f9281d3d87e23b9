package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The native format's commands (docs/delta-format.md), read here
// independently of the engine's decoder to see where a delta's bytes go.
const (
	opEnd = iota
	opLiteral
	opCopy
	opAdd
	opPatch
)

var opNames = [...]string{"END", "LITERAL", "COPY", "ADD", "PATCH"}

// fileCost is what the delta spends on one entry of the target tar (its
// header and padding before it, and its content).
type fileCost struct {
	name    string
	size    int64 // the entry's content
	payload int64 // bytes the commands carry for it (literal, ADD, patch)
	kinds   map[string]int
	start   int64  // offset of its content in the tar
	spans   []span // its commands, when asked for (see breakdown.detail)
}

// span is a command's share of an entry's content.
type span struct{ off, n, carried int64 }

// breakdown is where a native delta's bytes go.
type breakdown struct {
	deltaFile    int64 // the "delta" file: magic, size, the compressed commands
	commands     int64 // the commands uncompressed
	count        [5]int
	output       [5]int64 // target bytes each kind of command made
	payload      [5]int64 // bytes each kind carries (LITERAL and ADD data, PATCH patches)
	patchZstd    int64
	patchBsdiff  int64
	nZstd, nBsd  int
	files        []*fileCost
	patchedFiles int
	detail       string // the entry whose commands are kept as spans
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// tarEntries indexes a layer tar: each entry with the offset its region
// (padding of the previous entry, its headers, its content) ends at.
func tarEntries(path string) ([]*fileCost, []int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	cr := &countingReader{r: bufio.NewReaderSize(f, 1<<20)}
	tr := tar.NewReader(cr)
	var files []*fileCost
	var ends []int64
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		files = append(files, &fileCost{name: h.Name, size: h.Size, kinds: map[string]int{}, start: cr.n})
		ends = append(ends, cr.n+h.Size)
	}
	// The end blocks and anything after the last entry.
	files = append(files, &fileCost{name: "(end of archive)", kinds: map[string]int{}})
	ends = append(ends, 1<<62)
	return files, ends, nil
}

// analyzeNative fetches the native delta's layers from the registry and
// attributes their commands to the entries of B's changed layer tar.
// The commands of the entry named detail are kept as spans.
func analyzeNative(regHost, repo string, m ocispec.Manifest, bTar, detail string) (*breakdown, error) {
	files, ends, err := tarEntries(bTar)
	if err != nil {
		return nil, err
	}
	bd := &breakdown{files: files, detail: detail}
	found := false
	for _, l := range m.Layers {
		resp, err := http.Get("http://" + regHost + "/v2/" + repo + "/blobs/" + l.Digest.String())
		if err != nil {
			return nil, err
		}
		err = func() error {
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("blob %s: %s", l.Digest, resp.Status)
			}
			zr, err := gzip.NewReader(resp.Body)
			if err != nil {
				return err
			}
			tr := tar.NewReader(zr)
			for {
				h, err := tr.Next()
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return err
				}
				if h.Name != "delta" {
					continue
				}
				found = true
				bd.deltaFile += h.Size
				if err := bd.read(tr, ends); err != nil {
					return err
				}
			}
		}()
		if err != nil {
			return nil, err
		}
	}
	if !found {
		return nil, fmt.Errorf("no delta file in the native delta's layers")
	}
	for _, f := range bd.files {
		if f.kinds["PATCH"] > 0 {
			bd.patchedFiles++
		}
	}
	return bd, nil
}

func (bd *breakdown) read(r io.Reader, ends []int64) error {
	br := bufio.NewReader(r)
	magic := make([]byte, 8)
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != "BEDELTA1" {
		return fmt.Errorf("not a native delta (%q)", magic)
	}
	if _, err := binary.ReadUvarint(br); err != nil {
		return err
	}
	zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20))
	if err != nil {
		return err
	}
	defer zr.Close()
	cr := &countingReader{r: zr}
	cmds := bufio.NewReaderSize(cr, 1<<16)
	uv := func() (int64, error) {
		v, err := binary.ReadUvarint(cmds)
		return int64(v), err
	}
	var out int64 // offset in the target tar
	entry := 0
	for {
		op, err := cmds.ReadByte()
		if err != nil {
			return fmt.Errorf("commands end without END: %w", err)
		}
		var n, carried int64
		switch op {
		case opEnd:
			bd.count[opEnd]++
			bd.commands += cr.n - int64(cmds.Buffered())
			return nil
		case opLiteral:
			if n, err = uv(); err != nil {
				return err
			}
			carried = n
		case opCopy, opAdd:
			if _, err = uv(); err != nil {
				return err
			}
			if n, err = uv(); err != nil {
				return err
			}
			if op == opAdd {
				carried = n
			}
		case opPatch:
			codec, err := cmds.ReadByte()
			if err != nil {
				return err
			}
			var args [4]int64
			for i := range args {
				if args[i], err = uv(); err != nil {
					return err
				}
			}
			n, carried = args[2], args[3]
			if codec == 1 {
				bd.patchZstd += carried
				bd.nZstd++
			} else {
				bd.patchBsdiff += carried
				bd.nBsd++
			}
		default:
			return fmt.Errorf("unknown command %d", op)
		}
		if _, err := io.CopyN(io.Discard, cmds, carried); err != nil {
			return err
		}
		bd.count[op]++
		bd.output[op] += n
		bd.payload[op] += carried
		for entry < len(ends)-1 && out >= ends[entry] {
			entry++
		}
		f := bd.files[entry]
		if f.name == bd.detail && out >= f.start {
			f.spans = append(f.spans, span{off: out - f.start, n: n, carried: carried})
		}
		f.payload += carried
		f.kinds[opNames[op]]++
		out += n
	}
}

// top returns the entries the delta spends most on.
func (bd *breakdown) top(k int) []*fileCost {
	fs := append([]*fileCost{}, bd.files...)
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].payload > fs[j].payload })
	if len(fs) > k {
		fs = fs[:k]
	}
	return fs
}

// elfShare splits what the delta carries for an ELF file by the file's
// sections: the compressed DWARF (.debug_* with SHF_COMPRESSED, or
// .zdebug_*), the rest of the debug sections, and everything else. A
// command over several sections is shared in proportion to its overlap.
func elfShare(tarPath, name string, spans []span) (dwarfZ, dwarfZFile, other, size int64, err error) {
	f, err := os.Open(tarPath)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer f.Close()
	tr := tar.NewReader(bufio.NewReader(f))
	var body []byte
	for {
		h, err := tr.Next()
		if err != nil {
			return 0, 0, 0, 0, fmt.Errorf("%s not in %s: %w", name, tarPath, err)
		}
		if h.Name == name {
			if body, err = io.ReadAll(tr); err != nil {
				return 0, 0, 0, 0, err
			}
			break
		}
	}
	ef, err := elf.NewFile(bytes.NewReader(body))
	if err != nil {
		return 0, 0, 0, 0, err
	}
	type rng struct{ lo, hi int64 }
	var z []rng
	for _, s := range ef.Sections {
		if s.Type == elf.SHT_NOBITS {
			continue
		}
		if strings.HasPrefix(s.Name, ".zdebug") || (strings.HasPrefix(s.Name, ".debug") && s.Flags&elf.SHF_COMPRESSED != 0) {
			z = append(z, rng{int64(s.Offset), int64(s.Offset + s.FileSize)})
			dwarfZFile += int64(s.FileSize)
		}
	}
	for _, sp := range spans {
		if sp.n == 0 {
			continue
		}
		var in int64
		for _, r := range z {
			lo, hi := max(r.lo, sp.off), min(r.hi, sp.off+sp.n)
			if hi > lo {
				in += hi - lo
			}
		}
		share := sp.carried * in / sp.n
		dwarfZ += share
		other += sp.carried - share
	}
	return dwarfZ, dwarfZFile, other, int64(len(body)), nil
}

// perFileZstd is what zstd makes of B's changed layer one file at a time:
// each regular file whose content differs from A's file at the same path
// as `zstd -19 --patch-from` of that file, each file A lacks compressed
// alone (`zstd -19`), unchanged files nothing. It separates what a delta
// gains from one stream over the whole tar (history across files) from
// what patching file by file can reach.
func perFileZstd(ctx context.Context, aTar, bTar, dir string) (total int64, files int, err error) {
	type loc struct{ off, size int64 }
	index := func(p string) (map[string]loc, error) {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		cr := &countingReader{r: bufio.NewReaderSize(f, 1<<20)}
		tr := tar.NewReader(cr)
		m := map[string]loc{}
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return m, nil
			}
			if err != nil {
				return nil, err
			}
			if h.Typeflag == tar.TypeReg {
				m[h.Name] = loc{cr.n, h.Size}
			}
		}
	}
	ai, err := index(aTar)
	if err != nil {
		return 0, 0, err
	}
	bi, err := index(bTar)
	if err != nil {
		return 0, 0, err
	}
	af, err := os.Open(aTar)
	if err != nil {
		return 0, 0, err
	}
	defer af.Close()
	bf, err := os.Open(bTar)
	if err != nil {
		return 0, 0, err
	}
	defer bf.Close()
	read := func(f *os.File, l loc) ([]byte, error) {
		b := make([]byte, l.size)
		_, err := f.ReadAt(b, l.off)
		return b, err
	}
	src, dst, out := filepath.Join(dir, "pf-a"), filepath.Join(dir, "pf-b"), filepath.Join(dir, "pf.zst")
	defer os.Remove(src)
	defer os.Remove(dst)
	defer os.Remove(out)
	names := make([]string, 0, len(bi))
	for n := range bi {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		b, err := read(bf, bi[name])
		if err != nil {
			return 0, 0, err
		}
		args := []string{"-q", "-f", "-19"}
		if l, ok := ai[name]; ok {
			a, err := read(af, l)
			if err != nil {
				return 0, 0, err
			}
			if bytes.Equal(a, b) {
				continue
			}
			if err := os.WriteFile(src, a, 0o600); err != nil {
				return 0, 0, err
			}
			args = append(args, "--long="+strconv.Itoa(windowLog(max(l.size, bi[name].size))), "--patch-from="+src)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			return 0, 0, err
		}
		if _, err := command(ctx, "", nil, "zstd", append(args, dst, "-o", out)...); err != nil {
			return 0, 0, err
		}
		total += fileSize(out)
		files++
	}
	return total, files, nil
}
