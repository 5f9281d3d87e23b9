package stdstream

import (
	"errors"
	"io"
	"strings"
)

// DefaultDetachKeys is Docker's detach sequence, Ctrl-P Ctrl-Q.
var DefaultDetachKeys = []byte{0x10, 0x11}

// ctrlKeys are the names of the control characters 0 to 31 in Docker's
// detach key format.
const ctrlKeys = "@abcdefghijklmnopqrstuvwxyz[\\]^_"

// ParseDetachKeys reads a detach sequence in Docker's format (docker
// attach --detach-keys, the detachKeys query, exec's DetachKeys): keys
// separated by commas, each one character, "ctrl-" and one of @, a to z,
// [, \, ], ^, _, or "DEL". Empty is Docker's default, and none here.
func ParseDetachKeys(s string) ([]byte, error) {
	keys := []byte{} // none given: DefaultDetachKeys, where they are watched for
	if s == "" {
		return keys, nil
	}
	for _, k := range strings.Split(s, ",") {
		switch name, ctrl := strings.CutPrefix(k, "ctrl-"); {
		case len(k) == 1:
			keys = append(keys, k[0])
		case ctrl && len(name) == 1 && strings.IndexByte(ctrlKeys, name[0]) >= 0:
			keys = append(keys, byte(strings.IndexByte(ctrlKeys, name[0])))
		case k == "DEL":
			keys = append(keys, 127)
		default:
			return nil, errors.New("unknown key " + k)
		}
	}
	return keys, nil
}

// ErrDetached ends the input of a client that typed its detach sequence.
var ErrDetached = errors.New("read escape sequence")

// DetachReader passes a client's input through until it holds the detach
// sequence, which it keeps from the container: then it answers
// ErrDetached. Keys that begin the sequence are held back until the
// sequence is whole, or broken, when they go on as typed, as Docker's
// daemon does.
type DetachReader struct {
	r        io.Reader
	keys     []byte
	matched  int    // how many of keys the input ends with, held back
	out      []byte // input to hand on
	buf      []byte
	err      error // the input's end, once out is handed on
	detached bool
}

// Detached says whether the input held the detach sequence.
func (d *DetachReader) Detached() bool { return d.detached }

// NewDetachReader watches r for keys (DefaultDetachKeys if none).
func NewDetachReader(r io.Reader, keys []byte) *DetachReader {
	if len(keys) == 0 {
		keys = DefaultDetachKeys
	}
	return &DetachReader{r: r, keys: keys, buf: make([]byte, 32<<10)}
}

func (d *DetachReader) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		switch {
		case d.detached:
			return 0, ErrDetached
		case d.err != nil:
			return 0, d.err
		}
		n, err := d.r.Read(d.buf)
		for _, b := range d.buf[:n] {
			if b == d.keys[d.matched] {
				if d.matched++; d.matched == len(d.keys) {
					d.detached = true // what follows it is not the container's
					break
				}
				continue
			}
			// Not the sequence after all: what was held goes on, and
			// this key may begin the sequence again.
			d.out = append(d.out, d.keys[:d.matched]...)
			d.matched = 0
			if b == d.keys[0] {
				d.matched = 1
			} else {
				d.out = append(d.out, b)
			}
		}
		if err != nil && !d.detached {
			d.out = append(d.out, d.keys[:d.matched]...)
			d.matched, d.err = 0, err
		}
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}
