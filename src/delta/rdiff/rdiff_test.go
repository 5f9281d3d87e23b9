package rdiff

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
)

// The tests here hold our code against librsync's rdiff, an independent
// implementation of the format.

// TestRdiffDeltaOurPatch: deltas made by librsync, applied by Patch.
func TestRdiffDeltaOurPatch(t *testing.T) {
	sawLongLiteral := false
	for _, p := range pairs() {
		if p.blockLen != 0 {
			continue // rdiff's deltas here are always made with 512-byte blocks
		}
		t.Run(p.name, func(t *testing.T) {
			d := rdiffDelta(t, p.basis, p.target)
			if got := applyDelta(t, p.basis, d); !bytes.Equal(got, p.target) {
				t.Fatalf("Patch of rdiff's delta differs from target (%d vs %d bytes)", len(got), len(p.target))
			}
			for _, c := range disassemble(t, d) {
				if c.kind == cmdLiteral && c.n > 64 {
					sawLongLiteral = true
				}
			}
		})
	}
	if !sawLongLiteral {
		t.Error("no rdiff delta had a LITERAL with a length argument")
	}
}

// TestOurDeltaRdiffPatch: deltas made by Delta, applied by librsync.
func TestOurDeltaRdiffPatch(t *testing.T) {
	ops := map[byte]bool{}
	for _, p := range pairs() {
		t.Run(p.name, func(t *testing.T) {
			d := makeDelta(t, p.basis, p.target, p.blockLen)
			if got := rdiffPatch(t, p.basis, d); !bytes.Equal(got, p.target) {
				t.Fatalf("rdiff patch of our delta differs from target (%d vs %d bytes)", len(got), len(p.target))
			}
			for _, c := range disassemble(t, d) {
				ops[c.op] = true
			}
		})
	}
	// The pairs include literal runs over 64 and 65535 bytes.
	for _, op := range []byte{opLiteralN1, opLiteralN1 + 1, opLiteralN1 + 2} {
		if !ops[op] {
			t.Errorf("no delta used opcode 0x%02x", op)
		}
	}
}

// TestSizeVsRdiff checks that our deltas are no larger than librsync's by
// more than a little; they are often smaller, since a match at the end of a
// COPY is preferred and literals are cut in longer pieces.
func TestSizeVsRdiff(t *testing.T) {
	for _, p := range pairs() {
		if p.blockLen != 0 {
			continue
		}
		ours := len(makeDelta(t, p.basis, p.target, 0))
		theirs := len(rdiffDelta(t, p.basis, p.target))
		t.Logf("%-28s target %8d  rdiff %8d  ours %8d", p.name, len(p.target), theirs, ours)
		if ours > theirs+theirs/100+16 {
			t.Errorf("%s: our delta is %d bytes, rdiff's %d", p.name, ours, theirs)
		}
	}
}

// TestEncodingHelpers checks that each command gets its smallest encoding.
func TestEncodingHelpers(t *testing.T) {
	lits := []struct {
		n   int64
		enc string
	}{
		{1, "01"}, {64, "40"}, {65, "41 41"}, {255, "41 ff"}, {256, "42 01 00"},
		{65535, "42 ff ff"}, {65536, "43 00 01 00 00"}, {1 << 32, "44 00 00 00 01 00 00 00 00"},
	}
	for _, l := range lits {
		if got := fmt.Sprintf("% x", appendLiteralCmd(nil, l.n)); got != l.enc {
			t.Errorf("LITERAL(%d) encoded as %s, want %s", l.n, got, l.enc)
		}
	}
	copies := []struct {
		start, n int64
		enc      string
	}{
		{0, 1, "45 00 01"}, {255, 256, "46 ff 01 00"}, {1, 65536, "47 01 00 01 00 00"},
		{2, 1 << 32, "48 02 00 00 00 01 00 00 00 00"}, {256, 255, "49 01 00 ff"},
		{65535, 65535, "4a ff ff ff ff"}, {512, 1 << 20, "4b 02 00 00 10 00 00"},
		{1 << 16, 1, "4d 00 01 00 00 01"}, {1<<32 - 1, 512, "4e ff ff ff ff 02 00"},
		{1 << 32, 7, "51 00 00 00 01 00 00 00 00 07"},
		{1 << 40, 1 << 40, "54 00 00 01 00 00 00 00 00 00 00 01 00 00 00 00 00"},
	}
	for _, c := range copies {
		if got := fmt.Sprintf("% x", appendCopyCmd(nil, c.start, c.n)); got != c.enc {
			t.Errorf("COPY(%d, %d) encoded as %s, want %s", c.start, c.n, got, c.enc)
		}
	}
}

// TestEveryOpcode builds a delta by hand that uses every opcode from 0x01 to
// 0x54, each argument at the width the opcode names, and checks that Patch
// and librsync's rdiff both produce the expected output from it. Copies
// from beyond 2^32 cannot be tried with real files here, but every argument
// width is.
func TestEveryOpcode(t *testing.T) {
	basis := randBytes(42, 70_000)
	var delta, want []byte
	delta = binary.BigEndian.AppendUint32(delta, Magic)
	put := func(v uint64, w int) {
		var b [8]byte
		putInt(b[:w], v, w)
		delta = append(delta, b[:w]...)
	}
	// Values that need the width, when the width allows.
	startFor := map[int]uint64{1: 200, 2: 40_000, 4: 66_000, 8: 66_001}
	lenFor := map[int]uint64{1: 100, 2: 1000, 4: 3000, 8: 3999}
	litFor := map[int]uint64{1: 65, 2: 300, 4: 66_000, 8: 70}

	for op := 1; op <= opCopyN8N8; op++ {
		kind, imm, w1, w2, ok := opArgs(byte(op))
		if !ok {
			t.Fatalf("opcode 0x%02x unknown", op)
		}
		delta = append(delta, byte(op))
		switch kind {
		case cmdLiteral:
			n := uint64(imm)
			if w1 > 0 {
				n = litFor[w1]
				put(n, w1)
			}
			data := randBytes(uint64(op), int(n))
			delta = append(delta, data...)
			want = append(want, data...)
		case cmdCopy:
			start, n := startFor[w1], lenFor[w2]
			put(start, w1)
			put(n, w2)
			want = append(want, basis[start:start+n]...)
		default:
			t.Fatalf("opcode 0x%02x has kind %d", op, kind)
		}
	}
	delta = append(delta, opEnd)

	if got := applyDelta(t, basis, delta); !bytes.Equal(got, want) {
		t.Fatalf("Patch: output differs (%d vs %d bytes)", len(got), len(want))
	}
	if got := rdiffPatch(t, basis, delta); !bytes.Equal(got, want) {
		t.Fatalf("rdiff: output differs (%d vs %d bytes)", len(got), len(want))
	}
	cmds := disassemble(t, delta)
	if len(cmds) != opCopyN8N8+1 {
		t.Fatalf("%d commands, want %d", len(cmds), opCopyN8N8+1)
	}
	for i, c := range cmds[:opCopyN8N8] {
		if int(c.op) != i+1 {
			t.Errorf("command %d has opcode 0x%02x", i, c.op)
		}
	}
}
