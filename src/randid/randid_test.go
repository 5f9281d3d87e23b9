package randid

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestHex(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := Hex(32)
		if len(id) != 64 {
			t.Fatalf("Hex(32) = %q: want 64 characters", id)
		}
		if seen[id] {
			t.Fatalf("%s twice", id)
		}
		seen[id] = true
	}
}

// Each source fills the whole buffer (no zero tail left by a short read).
func TestFillWholeBuffer(t *testing.T) {
	for _, flags := range []int{unix.GRND_INSECURE, unix.GRND_NONBLOCK} {
		b := make([]byte, 4096)
		if !fill(b, flags) {
			t.Logf("flags %#x refused by this kernel", flags)
			continue
		}
		zero := 0
		for _, c := range b[len(b)-64:] {
			if c == 0 {
				zero++
			}
		}
		if zero > 8 {
			t.Errorf("flags %#x: %d zero bytes in the last 64", flags, zero)
		}
	}
}
