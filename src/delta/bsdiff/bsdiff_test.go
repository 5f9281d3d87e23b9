package bsdiff

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// roundTrip diffs old and new, applies the patch and checks the result,
// and that applying kept no more packets than one per stream, as Diff's
// interleaving promises.
func roundTrip(t testing.TB, old, new []byte) []byte {
	t.Helper()
	patch, err := Diff(old, new)
	if err != nil {
		t.Fatalf("Diff: %v", err)
	}
	var out bytes.Buffer
	p := newPatcher(&out, bytes.NewReader(old), int64(len(old)), bytes.NewReader(patch), int64(len(new)))
	defer p.close()
	if err := p.run(int64(len(new))); err != nil {
		t.Fatalf("Patch: %v", err)
	}
	if !bytes.Equal(out.Bytes(), new) {
		t.Fatalf("Patch made %d bytes that differ from the %d of new", out.Len(), len(new))
	}
	if p.dm.peak > numStreams*maxPacket {
		t.Fatalf("Patch kept %d bytes of packets at once", p.dm.peak)
	}
	return patch
}

// randBytes is n bytes from a seeded generator.
func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// program is synthetic machine code: instructions from a small set, with
// little-endian 32-bit addresses.
func program(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	ops := [][]byte{{0x48, 0x8b, 0x05}, {0xe8}, {0x48, 0x89, 0xc7}, {0x0f, 0x85}, {0xc3}, {0x90, 0x90}}
	b := make([]byte, 0, n+16)
	for len(b) < n {
		op := ops[r.IntN(len(ops))]
		b = append(b, op...)
		if len(op) > 1 || op[0] == 0xe8 {
			b = binary.LittleEndian.AppendUint32(b, 0x400000+uint32(r.IntN(1<<20)))
		}
	}
	return b[:n]
}

// relink is prog with some code inserted and deleted and every address
// after the first edit moved, as a rebuild does to a binary.
func relink(prog []byte, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 3))
	out := slices.Clone(prog)
	for i := 0; i+4 <= len(out); i++ {
		if out[i] == 0xe8 {
			v := binary.LittleEndian.Uint32(out[i+1:])
			binary.LittleEndian.PutUint32(out[i+1:], v+0x40)
			i += 4
		}
	}
	for range 1 + len(prog)>>16 {
		at := r.IntN(len(out))
		if r.IntN(2) == 0 {
			out = slices.Insert(out, at, program(r.Uint64(), 1+r.IntN(300))...)
		} else {
			out = slices.Delete(out, at, min(len(out), at+1+r.IntN(300)))
		}
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	text := []byte(strings.Repeat("The quick brown fox jumps over the lazy dog. ", 2000))
	edited := slices.Clone(text)
	copy(edited[1000:], "QUICK")
	edited[50000] = '!'
	prog := program(1, 1<<20)
	var nearCopy [2][]byte // the same but for a byte in 200000
	nearCopy[0] = randBytes(5, 1<<20)
	nearCopy[1] = slices.Clone(nearCopy[0])
	for i := 100000; i < len(nearCopy[1]); i += 200000 {
		nearCopy[1][i]++
	}
	cases := []struct {
		name     string
		old, new []byte
	}{
		{"both empty", nil, nil},
		{"empty old", nil, text},
		{"empty new", text, nil},
		{"identical", text, text},
		{"one byte", []byte{1}, []byte{2}},
		{"small edits", text, edited},
		{"insertion", text, slices.Concat(text[:3000], []byte("inserted here"), text[3000:])},
		{"deletion", text, slices.Concat(text[:3000], text[4000:])},
		{"reordered", text, slices.Concat(text[60000:], text[:60000])},
		{"prefix", text, text[:5000]},
		{"extended", text[:5000], text},
		{"random", randBytes(1, 100000), randBytes(2, 120000)},
		{"random edited", randBytes(1, 100000), slices.Concat(randBytes(1, 100000)[:40000], randBytes(3, 100), randBytes(1, 100000)[40000:])},
		{"zeros", make([]byte, 1<<20), slices.Concat(make([]byte, 500000), []byte{1}, make([]byte, 600000))},
		{"relinked program", prog, relink(prog, 1)},
		// Quadratic in bsdiff as published: minutes rather than a second.
		{"near copies", slices.Concat(nearCopy[0], nearCopy[1]), nearCopy[1]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := roundTrip(t, c.old, c.new)
			t.Logf("old %d, new %d: patch %d bytes", len(c.old), len(c.new), len(p))
		})
	}
}

// largeSize is the size of the largest inputs tests use: what Diff is
// meant for at most.
func largeSize(t *testing.T) int {
	switch {
	case testing.Short():
		t.Skip("large inputs")
	case raceEnabled:
		return 1 << 20
	}
	return 16 << 20
}

func TestRoundTripLarge(t *testing.T) {
	n := largeSize(t)
	// Unrelated data is bsdiff's slowest case: a search at every byte.
	p := roundTrip(t, randBytes(8, n), randBytes(9, n))
	t.Logf("%d bytes of random data, unrelated: patch %d bytes", n, len(p))
}

// TestRealFiles diffs two builds of a small Go program whose string
// constant changed length (so code and data addresses move), and edited Go
// sources, and logs the patch sizes next to those of zstd
// --patch-from and xdelta3 when they are installed.
func TestRealFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Go programs")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	dir := t.TempDir()
	build := func(greeting, out string) []byte {
		t.Helper()
		src := `package main

import (
	"fmt"
	"os"
	"strings"
)

const greeting = "` + greeting + `"

func main() {
	fmt.Println(strings.ToUpper(greeting), len(os.Args))
}
`
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(goTool, "build", "-o", out, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOWORK=off", "GOFLAGS=")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, b)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/hello\n\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	oldBin := build("hello, world", filepath.Join(dir, "old.bin"))
	newBin := build("hello, brave new world of binary deltas", filepath.Join(dir, "new.bin"))
	compareTools(t, "Go binary", dir, oldBin, newBin)

	goroot, err := exec.Command(goTool, "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	// The Go sources of net/http, 1.8 MB of text, with a few per cent of
	// their lines edited.
	sources, err := filepath.Glob(filepath.Join(strings.TrimSpace(string(goroot)), "src", "net", "http", "*.go"))
	if err != nil || len(sources) == 0 {
		t.Skipf("no Go sources to edit: %v", err)
	}
	var text []byte
	for _, name := range sources {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		text = append(text, b...)
	}
	compareTools(t, "edited text", dir, text, editLines(text, 1))
}

// editLines deletes, inserts and changes about 3% of text's lines.
func editLines(text []byte, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 4))
	var out []byte
	for line := range bytes.Lines(text) {
		switch r.IntN(100) {
		case 0:
			continue
		case 1:
			out = append(out, "\t// inserted\n"...)
		case 2:
			line = bytes.ReplaceAll(line, []byte("err"), []byte("e2"))
		}
		out = append(out, line...)
	}
	return out
}

// compareTools round-trips the pair and logs our patch size next to zstd's
// and xdelta3's, where installed.
func compareTools(t *testing.T, name, dir string, old, new []byte) {
	t.Helper()
	ours := len(roundTrip(t, old, new))
	oldPath, newPath, outPath := filepath.Join(dir, "old"), filepath.Join(dir, "new"), filepath.Join(dir, "out")
	if err := os.WriteFile(oldPath, old, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(newPath, new, 0o644); err != nil {
		t.Fatal(err)
	}
	msg := []string{name, "old", itoa(len(old)), "new", itoa(len(new)), "bsdiff", itoa(ours)}
	for _, tool := range [][]string{
		{"zstd", "-q", "-f", "-19", "--long=27", "--patch-from=" + oldPath, newPath, "-o", outPath},
		{"xdelta3", "-f", "-9", "-e", "-s", oldPath, newPath, outPath},
	} {
		if _, err := exec.LookPath(tool[0]); err != nil {
			continue
		}
		if b, err := exec.Command(tool[0], tool[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", tool[0], err, b)
		}
		fi, err := os.Stat(outPath)
		if err != nil {
			t.Fatal(err)
		}
		msg = append(msg, tool[0], itoa(int(fi.Size())))
	}
	t.Log(strings.Join(msg, " "))
}

func itoa(n int) string { return strconv.Itoa(n) }
