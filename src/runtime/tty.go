package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/balena-os/balena-engine/src/errdefs"
)

// consolePair makes the socket over which libcontainer's init sends the
// pseudo-terminal master it creates inside the container.
func consolePair() (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "console-parent"), os.NewFile(uintptr(fds[1]), "console-child"), nil
}

// recvMaster receives the terminal master sent with SCM_RIGHTS.
func recvMaster(sock *os.File) (*os.File, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, 0)
	if err != nil {
		return nil, fmt.Errorf("receive the terminal: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, errors.New("receive the terminal: no file in the message")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, errors.New("receive the terminal: no file in the message")
	}
	// Non-blocking, so that Go's poller waits on it and a read deadline
	// can end its copying (a monitor upgrade stops it that way).
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return nil, fmt.Errorf("receive the terminal: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), string(buf[:n])), nil
}

// rawFD is f's descriptor, left in the poller's non-blocking mode (f.Fd()
// would make it blocking, and read deadlines would stop working).
func rawFD(f *os.File) int {
	fd := -1
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(u uintptr) { fd = int(u) })
	}
	return fd
}

// resize sets a terminal's size.
func resize(master *os.File, h, w uint16) error {
	return unix.IoctlSetWinsize(rawFD(master), unix.TIOCSWINSZ, &unix.Winsize{Row: h, Col: w})
}

func sizeParams(r *http.Request) (uint16, uint16, error) {
	h, err1 := strconv.ParseUint(r.URL.Query().Get("h"), 10, 16)
	w, err2 := strconv.ParseUint(r.URL.Query().Get("w"), 10, 16)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("invalid terminal size h=%q w=%q", r.URL.Query().Get("h"), r.URL.Query().Get("w"))
	}
	return uint16(h), uint16(w), nil
}

// handleResize resizes a container's terminal, or an exec's.
func (m *monitor) handleResize(w http.ResponseWriter, r *http.Request) {
	h, wd, err := sizeParams(r)
	if err != nil {
		fail(w, errdefs.InvalidParameter(err))
		return
	}
	var master *os.File
	if id := r.PathValue("exec"); id != "" {
		m.mu.Lock()
		master = m.execTTYs[id]
		m.mu.Unlock()
	} else if c := m.get(r.PathValue("id")); c != nil {
		c.mu.Lock()
		master = c.master
		c.mu.Unlock()
	}
	if master == nil {
		fail(w, errdefs.Conflict(errors.New("no terminal to resize")))
		return
	}
	if err := resize(master, h, wd); err != nil {
		fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleStdin takes a hijacked connection and feeds what arrives on it to
// the container's input (its terminal, or its stdin pipe). With stdinOnce
// the pipe is closed when the connection's input ends.
func (m *monitor) handleStdin(w http.ResponseWriter, r *http.Request) {
	c := m.get(r.PathValue("id"))
	if c == nil {
		fail(w, errdefs.NotFound(fmt.Errorf("no such container in the monitor: %s", r.PathValue("id"))))
		return
	}
	c.mu.Lock()
	in, once := c.stdin, c.stdinOnce
	c.mu.Unlock()
	if in == nil {
		fail(w, errdefs.Conflict(errors.New("the container has no open input (run it with -i)")))
		return
	}
	conn, brw, ok := upgrade(w)
	if !ok {
		return
	}
	defer conn.Close()
	io.Copy(in, brw)
	if once {
		c.mu.Lock()
		if c.master == nil && c.stdin != nil {
			c.stdin.Close()
			c.stdin = nil
		}
		c.mu.Unlock()
	}
}

// upgrade takes the connection over from the HTTP server and answers
// "101 UPGRADED": from then on it carries the stream. On failure the
// answer has been sent and ok is false.
func upgrade(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, bool) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		fail(w, errors.New("no hijack"))
		return nil, nil, false
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, false
	}
	brw.WriteString("HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	brw.Flush()
	return conn, brw, true
}
