// Package randid makes random identifiers (container, volume and engine
// IDs, temporary names) without waiting for the kernel's random number
// generator to be seeded. crypto/rand blocks until then, and on a device's
// first boot that can be seconds (QEMU's x86 and raspi0 guests: 1.3 to
// 6.5 s) or, on old kernels without a jitter entropy source, minutes: the
// daemon would not answer meanwhile. Identifiers need to be unique, not
// secret, so the kernel's best effort is enough.
package randid

import (
	"encoding/hex"
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// Read fills b with random bytes and never waits for the kernel's
// generator to be seeded.
func Read(b []byte) {
	if fill(b, unix.GRND_INSECURE) { // Linux 5.6 and later
		return
	}
	if fill(b, unix.GRND_NONBLOCK) { // seeded already
		return
	}
	// Older kernels before seeding: /dev/urandom never blocks.
	f, err := os.Open("/dev/urandom")
	if err == nil {
		defer f.Close()
		if _, err = f.Read(b); err == nil {
			return
		}
	}
	panic("randid: no source of random bytes: " + err.Error())
}

// fill reads len(b) bytes with getrandom(2) and the given flags; false
// when the kernel refuses them (unknown flag, or not seeded yet).
func fill(b []byte, flags int) bool {
	for n := 0; n < len(b); {
		m, err := unix.Getrandom(b[n:], flags)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false
		}
		n += m
	}
	return true
}

// Hex returns n random bytes in hexadecimal (2n characters).
func Hex(n int) string {
	b := make([]byte, n)
	Read(b)
	return hex.EncodeToString(b)
}
