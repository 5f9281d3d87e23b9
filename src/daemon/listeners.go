package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
)

// host is a parsed -H value.
type host struct {
	proto string // "unix" or "fd"
	addr  string // socket path; for fd, the descriptor number or "" for all
}

func (h host) String() string { return h.proto + "://" + h.addr }

// parseHost accepts dockerd's unix:// and fd:// forms. TCP needs TLS to be
// safe on a device and is not implemented yet; it is refused clearly.
func parseHost(s string) (host, error) {
	proto, addr, ok := strings.Cut(s, "://")
	if !ok {
		return host{}, fmt.Errorf("invalid host %q: want unix:///path/to/socket or fd://", s)
	}
	switch proto {
	case "unix":
		if addr == "" {
			addr = strings.TrimPrefix(DefaultHost, "unix://")
		}
		if !strings.HasPrefix(addr, "/") {
			return host{}, fmt.Errorf("invalid host %q: the socket path must be absolute", s)
		}
	case "fd":
		if addr != "" {
			if n, err := strconv.Atoi(addr); err != nil || n < 3 {
				return host{}, fmt.Errorf("invalid host %q: want fd:// or fd://N with N >= 3", s)
			}
		}
	case "tcp":
		return host{}, fmt.Errorf("invalid host %q: tcp:// listeners are not implemented yet (balena-engine listens on unix:// and fd://)", s)
	default:
		return host{}, fmt.Errorf("invalid host %q: unsupported protocol %q", s, proto)
	}
	return host{proto: proto, addr: addr}, nil
}

// apiListener is one listening socket and the -H value it came from.
type apiListener struct {
	net.Listener
	host string
}

// openListeners opens every host, or none: on error the ones already open
// are closed (and their socket files removed) before it returns.
func openListeners(hosts []string) (lns []apiListener, err error) {
	defer func() {
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			lns = nil
		}
	}()
	var activated []net.Listener // systemd's sockets, taken once
	for _, s := range hosts {
		h, err := parseHost(s)
		if err != nil {
			return lns, err
		}
		switch h.proto {
		case "unix":
			l, err := listenUnix(h.addr)
			if err != nil {
				return lns, err
			}
			lns = append(lns, apiListener{l, s})
		case "fd":
			if activated == nil {
				if activated, err = activation.Listeners(); err != nil {
					return lns, fmt.Errorf("socket activation: %w", err)
				}
			}
			got, err := pickActivated(activated, h.addr)
			if err != nil {
				return lns, err
			}
			for _, l := range got {
				lns = append(lns, apiListener{l, s})
			}
		}
	}
	return lns, nil
}

// pickActivated selects the listeners an fd:// host names. Index i of the
// activation list is file descriptor 3+i.
func pickActivated(activated []net.Listener, fd string) ([]net.Listener, error) {
	var out []net.Listener
	for i, l := range activated {
		if l != nil && (fd == "" || fd == strconv.Itoa(3+i)) {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		if fd == "" {
			return nil, errors.New("no sockets found via socket activation: make sure the service was started by systemd with a socket unit")
		}
		return nil, fmt.Errorf("socket activation: file descriptor %s is not a listening socket passed by systemd", fd)
	}
	return out, nil
}

// chown is os.Chown; tests look at the socket through it.
var chown = os.Chown

// listenUnix listens on path. A stale socket file left by a crash is
// replaced, but one that a live process answers on is not stolen, and a
// path that is not a socket is never removed.
func listenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("can't listen on %s: the path exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("can't listen on %s: another daemon is already listening there", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("can't remove stale socket: %w", err)
		}
	}
	// The socket is made under umask 0777, so mode 0000, and opened up to
	// its final mode once its owner is right: with the usual umask it would
	// exist for a moment open to every local user (dockerd does the same).
	// The umask is the process's; nothing else creates files this early.
	mask := syscall.Umask(0o777)
	l, err := net.Listen("unix", path)
	syscall.Umask(mask)
	if err != nil {
		return nil, fmt.Errorf("can't create API socket: %w", err)
	}
	// Root and the balena-engine group may use the API, as with Docker's
	// docker group; without that group the socket stays root's alone.
	gid := 0
	if g, err := user.LookupGroup("balena-engine"); err == nil {
		gid, _ = strconv.Atoi(g.Gid)
	}
	if err := chown(path, 0, gid); err != nil {
		l.Close()
		return nil, fmt.Errorf("can't set owner of %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("can't set mode of %s: %w", path, err)
	}
	return l, nil
}
