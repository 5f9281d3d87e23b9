package netns

import (
	"os"
	"strings"
	"testing"
)

type mountEntry struct {
	point    string
	optional []string // shared:N, master:N, ...
}

// mounts reads this process's mount table.
func mounts(t *testing.T) []mountEntry {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []mountEntry
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) < 7 {
			continue
		}
		e := mountEntry{point: unescapeMountinfo(f[4])}
		for _, o := range f[6:] {
			if o == "-" {
				break
			}
			e.optional = append(e.optional, o)
		}
		out = append(out, e)
	}
	return out
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, ok := octal(s[i+1 : i+4]); ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func octal(s string) (byte, bool) {
	if len(s) != 3 {
		return 0, false
	}
	var v int
	for _, c := range s {
		if c < '0' || c > '7' {
			return 0, false
		}
		v = v*8 + int(c-'0')
	}
	return byte(v), v < 256
}

func isMounted(t *testing.T, path string) bool {
	t.Helper()
	for _, m := range mounts(t) {
		if m.point == path {
			return true
		}
	}
	return false
}
