package delta

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc64"
	"io"
	"math/rand"
	"runtime"
	"strings"
	"testing"
)

// memTarget is a target layer held in memory: records and file contents.
type memTarget struct {
	entries []Entry
	files   map[string][]byte
}

func (m *memTarget) add(seg string, name string, body []byte) {
	m.entries = append(m.entries, Entry{Segment: []byte(seg)})
	crc := crc64.Checksum(body, crc64.MakeTable(crc64.ISO))
	var c [8]byte
	binary.BigEndian.PutUint64(c[:], crc)
	m.entries = append(m.entries, Entry{Name: name, Size: int64(len(body)), CRC: c[:]})
	if m.files == nil {
		m.files = map[string][]byte{}
	}
	m.files[name] = body
}

func (m *memTarget) bytes() []byte {
	var b bytes.Buffer
	for _, e := range m.entries {
		b.Write(e.Segment)
		if e.Segment == nil {
			b.Write(m.files[e.Name])
		}
	}
	return b.Bytes()
}

func (m *memTarget) target() Target {
	return Target{Size: int64(len(m.bytes())),
		Walk: func(fn func(Entry) error) error {
			for _, e := range m.entries {
				if err := fn(e); err != nil {
					return err
				}
			}
			return nil
		},
		Open: func(name string) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(m.files[name])), nil },
	}
}

// files lists m's files as a base would: offsets in m.bytes().
func (m *memTarget) baseFiles() []File {
	var out []File
	var off int64
	for _, e := range m.entries {
		if e.Segment != nil {
			off += int64(len(e.Segment))
			continue
		}
		out = append(out, File{Name: e.Name, Off: off, Size: e.Size, CRC: e.CRC})
		off += e.Size
	}
	return out
}

func noise(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func encode(t testing.TB, base, target *memTarget) []byte {
	t.Helper()
	basis := base.bytes()
	var out bytes.Buffer
	if _, err := NewEncoder(bytes.NewReader(basis), int64(len(basis)), base.baseFiles()).Encode(&out, target.target()); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func patch(basis, d []byte) ([]byte, error) {
	return io.ReadAll(NewPatchReader(bytes.NewReader(basis), int64(len(basis)), bytes.NewReader(d)))
}

func pair() (*memTarget, *memTarget) {
	base, target := &memTarget{}, &memTarget{}
	text := bytes.Repeat([]byte("some text of a configuration file\n"), 200)
	bin := noise(1, 3<<20) // above MaxChunk: patched in chunks
	base.add(strings.Repeat("h", 512), "etc/conf", text)
	base.add(strings.Repeat("p", 300)+strings.Repeat("h", 512), "usr/lib/app-1.2/bin", bin)
	base.add(strings.Repeat("q", 512), "same", []byte("unchanged"))
	edited := append([]byte{}, bin...)
	copy(edited[2<<20:], "edited")
	target.add(strings.Repeat("h", 500)+"xx"+strings.Repeat("h", 10), "etc/conf", append(text, "more\n"...))
	target.add(strings.Repeat("p", 300)+strings.Repeat("h", 512), "usr/lib/app-1.3/bin", edited)
	target.add(strings.Repeat("z", 512), "moved/same", []byte("unchanged"))
	target.add(strings.Repeat("n", 512), "new", noise(2, 1000))
	target.entries = append(target.entries, Entry{Segment: make([]byte, 1024)})
	return base, target
}

func TestNativeRoundTrip(t *testing.T) {
	base, target := pair()
	d := encode(t, base, target)
	got, err := patch(base.bytes(), d)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, target.bytes()) {
		t.Fatal("the patched target differs")
	}
	if len(d) > 3000 {
		t.Errorf("delta of %d bytes for a few small changes", len(d))
	}
	// An empty base: everything literal, still exact.
	empty := &memTarget{}
	got, err = patch(nil, encode(t, empty, target))
	if err != nil || !bytes.Equal(got, target.bytes()) {
		t.Fatalf("delta against an empty base: %v", err)
	}
}

func TestNativeHostile(t *testing.T) {
	base, target := pair()
	basis := base.bytes()
	good := encode(t, base, target)
	// commands builds a delta from raw commands, declaring size bytes.
	commands := func(size uint64, cmds ...[]byte) []byte {
		var raw bytes.Buffer
		for _, c := range cmds {
			raw.Write(c)
		}
		return append(binary.AppendUvarint([]byte(Magic), size), zstdFrame(t, raw.Bytes())...)
	}
	uv := func(vs ...uint64) []byte {
		var b []byte
		for _, v := range vs {
			b = binary.AppendUvarint(b, v)
		}
		return b
	}
	op := func(code byte, rest ...[]byte) []byte { return append([]byte{code}, bytes.Join(rest, nil)...) }
	cases := map[string][]byte{
		"bad magic":          []byte("BEDELTA9"),
		"truncated":          good[:len(good)/2],
		"copy outside":       commands(10, op(opCopy, uv(uint64(len(basis))-5, 10)), op(opEnd)),
		"copy overflowing":   commands(10, op(opCopy, uv(1<<62, 1<<62)), op(opEnd)),
		"past declared size": commands(4, op(opLiteral, uv(5), []byte("12345")), op(opEnd)),
		"short of declared":  commands(9, op(opLiteral, uv(5), []byte("12345")), op(opEnd)),
		"no end":             commands(5, op(opLiteral, uv(5), []byte("12345"))),
		"literal truncated":  commands(50, op(opLiteral, uv(50), []byte("12345"))),
		"unknown command":    commands(5, []byte{9}),
		"patch base too big": commands(5, op(opPatch, []byte{CodecZstd}, uv(0, MaxBaseRange+1, 5, 5), []byte("xxxxx")), op(opEnd)),
		"patch too long":     commands(MaxChunk+1, op(opPatch, []byte{CodecZstd}, uv(0, 10, MaxChunk+1, 5), []byte("xxxxx")), op(opEnd)),
		"patch bad codec":    commands(5, op(opPatch, []byte{7}, uv(0, 10, 5, 5), []byte("xxxxx")), op(opEnd)),
		"patch garbage":      commands(5, op(opPatch, []byte{CodecZstd}, uv(0, 10, 5, 5), []byte("xxxxx")), op(opEnd)),
		"bsdiff garbage":     commands(5, op(opPatch, []byte{CodecBsdiff}, uv(0, 10, 5, 5), []byte("xxxxx")), op(opEnd)),
		"huge literal":       commands(1<<62, op(opLiteral, uv(1<<62))),
	}
	for name, d := range cases {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := patch(basis, d)
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Errorf("%s: applied", name)
			continue
		}
		if name != "truncated" && !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want a corrupt-delta error", name, err)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 48<<20 {
			t.Errorf("%s: %d MiB allocated", name, grew>>20)
		}
		t.Logf("%s: %v", name, err)
	}
}

func zstdFrame(t testing.TB, b []byte) []byte {
	var out bytes.Buffer
	if err := compressOuter(&out, b); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func FuzzNativePatch(f *testing.F) {
	base, target := pair()
	basis := base.bytes()[:4096]
	f.Add(encode(f, base, target)[:200])
	f.Add(append(binary.AppendUvarint([]byte(Magic), 3), zstdFrame(f, []byte{opLiteral, 3, 'a', 'b', 'c', opEnd})...))
	f.Add(append(binary.AppendUvarint([]byte(Magic), 10), zstdFrame(f, []byte{opCopy, 0, 10, opEnd})...))
	f.Fuzz(func(t *testing.T, d []byte) {
		out, err := patch(basis, d)
		if err == nil && len(out) > 64<<20 {
			t.Fatalf("%d bytes out of a %d-byte delta", len(out), len(d))
		}
	})
}
