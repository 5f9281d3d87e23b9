package container

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"github.com/balena-os/balena-engine/src/errdefs"
	"golang.org/x/sys/unix"
)

// ParseSignal reads "SIGTERM", "TERM", "term" or "15".
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, errdefs.InvalidParameter(fmt.Errorf("invalid signal: %s", s))
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, errdefs.InvalidParameter(fmt.Errorf("invalid signal: %s", s))
}
