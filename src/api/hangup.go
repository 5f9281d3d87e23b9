package api

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// waitHangup waits for the client at the other end of conn to be gone for
// good, once it has nothing more to send, and says whether it is. A client
// with no input half-closes its end (docker attach does), so the end of
// its input is no sign; a Unix socket whose peer has closed both ways
// polls as hung up, and that wakes the runtime's poller, so this waits
// without spinning. A TCP peer's close is not told from a half-close
// until a write fails. It returns false when conn is closed here first.
func waitHangup(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	err = rc.Read(func(fd uintptr) bool {
		gone = hungUp(fd)
		return gone
	})
	return err == nil && gone
}

// hungUp says, without waiting, whether fd's peer has closed both ways.
func hungUp(fd uintptr) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0 && fds[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0
}
