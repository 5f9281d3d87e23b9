package cli

import (
	"context"
	"errors"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/balena-os/balena-engine/src/client"
	"github.com/balena-os/balena-engine/src/stdstream"

	"golang.org/x/sys/unix"
)

// terminal is the client's local terminal while it is attached to a
// container's (-t): in raw mode, so that keys go to the container as
// typed (Ctrl-C included) and its output is shown as it comes.
type terminal struct {
	fd  int
	old *unix.Termios
}

// localTerminal returns the terminal f is (the client's stdin or
// stdout), if it is one.
func localTerminal(f any) (*terminal, bool) {
	file, ok := f.(*os.File)
	if !ok {
		return nil, false
	}
	fd := int(file.Fd())
	if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err != nil {
		return nil, false
	}
	return &terminal{fd: fd}, true
}

// raw puts the terminal in raw mode (cfmakeraw's settings); restore undoes it.
func (t *terminal) raw() error {
	old, err := unix.IoctlGetTermios(t.fd, unix.TCGETS)
	if err != nil {
		return err
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(t.fd, unix.TCSETS, &raw); err != nil {
		return err
	}
	t.old = old
	return nil
}

func (t *terminal) restore() {
	if t.old != nil {
		unix.IoctlSetTermios(t.fd, unix.TCSETS, t.old)
		t.old = nil
	}
}

// followSize sends the terminal's size now and whenever it changes
// (SIGWINCH), until ctx ends.
func (t *terminal) followSize(ctx context.Context, resize func(h, w uint16)) {
	send := func() {
		if ws, err := unix.IoctlGetWinsize(t.fd, unix.TIOCGWINSZ); err == nil && ws.Row > 0 {
			resize(ws.Row, ws.Col)
		}
	}
	send()
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				send()
			}
		}
	}()
}

// rawInput puts the client's terminal in raw mode for an interactive -t
// session and returns what undoes it; without a terminal it does nothing.
func (e *env) rawInput() func() {
	t, ok := localTerminal(e.stdin)
	if !ok || t.raw() != nil {
		return func() {}
	}
	return t.restore
}

// attachIO connects a hijacked attach or exec stream to the client's
// stdio until the output ends: input (when asked) is copied in and then
// closed; a terminal's output is raw, and the local terminal's size is
// sent to it now and on every change; other output is demultiplexed.
func (e *env) attachIO(ctx context.Context, conn *client.HijackedConn, tty, input bool, resize func(h, w uint16)) error {
	if tty {
		if t, ok := localTerminal(e.stdout); ok {
			t.followSize(ctx, resize)
		}
	}
	// A terminal's input is watched for Ctrl-P Ctrl-Q, as by the docker
	// CLI (and the daemon): they detach, leaving the container running.
	detached := make(chan struct{})
	if input {
		go func() {
			in := io.Reader(e.stdin)
			var dr *stdstream.DetachReader
			if tty {
				dr = stdstream.NewDetachReader(in, nil)
				in = dr
			}
			io.Copy(conn, in)
			if dr != nil && dr.Detached() {
				close(detached)
				conn.Close()
				return
			}
			conn.CloseWrite()
		}()
	}
	var err error
	if tty {
		_, err = io.Copy(e.stdout, conn)
	} else {
		err = stdstream.Demux(conn, e.stdout, e.stderr)
	}
	select {
	case <-detached:
		return stdstream.ErrDetached
	default:
		return err
	}
}

// checkTTYInput refuses -it when the input is not a terminal, as the
// docker CLI does.
func (e *env) checkTTYInput(tty, interactive bool) error {
	if tty && interactive {
		if _, ok := localTerminal(e.stdin); !ok {
			return errors.New("the input device is not a TTY")
		}
	}
	return nil
}

// sizeQuery is the h and w of a resize request.
func sizeQuery(h, w uint16) url.Values {
	return url.Values{"h": {strconv.Itoa(int(h))}, "w": {strconv.Itoa(int(w))}}
}
