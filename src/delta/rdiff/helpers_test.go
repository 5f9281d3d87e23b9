package rdiff

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// command is one decoded delta command, for tests that look at what an
// encoder chose.
type command struct {
	op       byte
	kind     cmdKind
	start, n int64
}

func (c command) String() string {
	switch c.kind {
	case cmdLiteral:
		return fmt.Sprintf("0x%02x LITERAL(%d)", c.op, c.n)
	case cmdCopy:
		return fmt.Sprintf("0x%02x COPY(%d, %d)", c.op, c.start, c.n)
	}
	return "END"
}

// disassemble lists the commands of delta, using the decoder's own command
// parsing with a basis of unbounded size.
func disassemble(t testing.TB, delta []byte) []command {
	t.Helper()
	d := newDecoder(nil, 1<<62, bytes.NewReader(delta))
	if err := d.next(); err != nil {
		t.Fatalf("delta header: %v", err)
	}
	var cmds []command
	for !d.done {
		at := d.off
		if err := d.next(); err != nil {
			t.Fatalf("command %d: %v", len(cmds), err)
		}
		c := command{op: delta[at]}
		switch {
		case d.done:
			c.kind = cmdEnd
		case d.litLeft > 0:
			c.kind, c.n = cmdLiteral, d.litLeft
			if _, err := io.CopyN(io.Discard, d.src, d.litLeft); err != nil {
				t.Fatalf("literal %d: %v", len(cmds), err)
			}
			d.off += d.litLeft
			d.litLeft = 0
		default:
			c.kind, c.start, c.n = cmdCopy, d.copyPos, d.copyLeft
			d.copyLeft = 0
		}
		cmds = append(cmds, c)
	}
	return cmds
}

// stats sums a delta's commands.
type stats struct {
	literals, literalBytes, copies, copyBytes int64
}

func deltaStats(t testing.TB, delta []byte) stats {
	var s stats
	for _, c := range disassemble(t, delta) {
		switch c.kind {
		case cmdLiteral:
			s.literals++
			s.literalBytes += c.n
		case cmdCopy:
			s.copies++
			s.copyBytes += c.n
		}
	}
	return s
}

// makeDelta runs our encoder over in-memory inputs.
func makeDelta(t testing.TB, basis, target []byte, blockLen int) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := Delta(&out, bytes.NewReader(basis), int64(len(basis)), bytes.NewReader(target), blockLen); err != nil {
		t.Fatalf("Delta: %v", err)
	}
	return out.Bytes()
}

// applyDelta runs our decoder over in-memory inputs.
func applyDelta(t testing.TB, basis, delta []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	n, err := Patch(&out, bytes.NewReader(basis), int64(len(basis)), bytes.NewReader(delta))
	if err != nil {
		t.Fatalf("Patch: %v", err)
	}
	if n != int64(out.Len()) {
		t.Fatalf("Patch reported %d bytes, wrote %d", n, out.Len())
	}
	return out.Bytes()
}

// randBytes returns n bytes from a seeded PRNG.
func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], r.Uint64())
		copy(b[i:], w[:])
	}
	return b
}

// rdiffPath finds Debian's rdiff, the independent implementation the format
// tests compare against; CI installs it, so its absence is a failure.
func rdiffPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("rdiff")
	if err != nil {
		t.Fatalf("rdiff not installed (apt-get install rdiff): %v", err)
	}
	return p
}

func runRdiff(t testing.TB, args ...string) {
	t.Helper()
	cmd := exec.Command(rdiffPath(t), args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rdiff %q: %v\n%s", args, err, out)
	}
}

// rdiffDelta makes a delta with librsync the way balenaEngine does.
func rdiffDelta(t testing.TB, basis, target []byte) []byte {
	t.Helper()
	dir := t.TempDir()
	b, tg := filepath.Join(dir, "basis"), filepath.Join(dir, "target")
	sig, d := filepath.Join(dir, "sig"), filepath.Join(dir, "delta")
	writeFile(t, b, basis)
	writeFile(t, tg, target)
	runRdiff(t, "signature", "-b", "512", "-S", "32", "-H", "blake2", b, sig)
	runRdiff(t, "delta", sig, tg, d)
	return readFile(t, d)
}

// rdiffPatch applies a delta with librsync.
func rdiffPatch(t testing.TB, basis, delta []byte) []byte {
	t.Helper()
	dir := t.TempDir()
	b, d, o := filepath.Join(dir, "basis"), filepath.Join(dir, "delta"), filepath.Join(dir, "out")
	writeFile(t, b, basis)
	writeFile(t, d, delta)
	runRdiff(t, "patch", b, d, o)
	return readFile(t, o)
}

func writeFile(t testing.TB, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
