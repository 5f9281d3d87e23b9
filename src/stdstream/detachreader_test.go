package stdstream

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// The detach sequence ends the input, whole or typed key by key; keys
// that only begin it go on as typed; what follows it is not passed on.
func TestDetachReader(t *testing.T) {
	for _, c := range []struct {
		name, in string
		keys     []byte
		out      string
		detached bool
	}{
		{"default keys", "ls\n\x10\x11rest", nil, "ls\n", true},
		{"no keys in it", "echo hi\n", nil, "echo hi\n", false},
		{"a key alone", "a\x10b", nil, "a\x10b", false},
		{"a key at the end", "ab\x10", nil, "ab\x10", false},
		{"broken, begun again", "\x10\x10\x11", nil, "\x10", true},
		{"own keys", "xyz\x01x", []byte{1, 'x'}, "xyz", true},
		{"own keys broken", "\x01y\x01", []byte{1, 'x'}, "\x01y\x01", false},
		{"one key", "ab", []byte{'b'}, "a", true},
	} {
		for _, oneByOne := range []bool{false, true} {
			var src io.Reader = strings.NewReader(c.in)
			if oneByOne {
				src = iotest.OneByteReader(src) // typed key by key
			}
			d := NewDetachReader(src, c.keys)
			got, err := io.ReadAll(d)
			if string(got) != c.out || d.Detached() != c.detached || (c.detached != errors.Is(err, ErrDetached)) {
				t.Errorf("%s (one by one %v): %q %v detached %v, want %q detached %v", c.name, oneByOne, got, err, d.Detached(), c.out, c.detached)
			}
		}
	}
}
