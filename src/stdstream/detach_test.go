package stdstream

import (
	"bytes"
	"testing"
)

func TestParseDetachKeys(t *testing.T) {
	for in, want := range map[string][]byte{
		"":                     {},
		"ctrl-p,ctrl-q":        {0x10, 0x11},
		"a":                    {'a'},
		"ctrl-@":               {0},
		"ctrl-a,x":             {1, 'x'},
		"ctrl-[,ctrl-\\":       {27, 28},
		"ctrl-],ctrl-^,ctrl-_": {29, 30, 31},
		"DEL,ctrl-z":           {127, 26},
		",":                    nil,
		"ctrl-1":               nil,
		"ctrl-P":               nil,
		"ctrl-":                nil,
		"ab":                   nil,
		"a,,b":                 nil,
		"del":                  nil,
	} {
		got, err := ParseDetachKeys(in)
		if want == nil {
			if err == nil {
				t.Errorf("%q: %v, want an error", in, got)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
}
