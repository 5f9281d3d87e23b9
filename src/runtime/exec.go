package runtime

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/stdstream"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

// handleExec runs a process in a container over a hijacked connection.
func (m *monitor) handleExec(w http.ResponseWriter, r *http.Request) {
	conn, brw, ok := upgrade(w)
	if !ok {
		return
	}
	defer conn.Close()
	bw := bufio.NewWriter(conn)
	fw := &stdstream.Writer{W: bw, Flush: bw.Flush}
	finish := func(x ExecExit) {
		b, _ := json.Marshal(x)
		fw.Frame(ExitFrame, b)
	}
	line, err := brw.ReadBytes('\n')
	var req ExecRequest
	if err != nil || json.Unmarshal(line, &req) != nil {
		finish(ExecExit{ExitCode: 126, Error: "bad exec request"})
		return
	}
	c := m.get(req.ContainerID)
	if c == nil {
		finish(ExecExit{ExitCode: 126, Error: fmt.Sprintf("container %s is not running", req.ContainerID)})
		return
	}
	c.mu.Lock()
	lc, running := c.c, c.state.Running
	c.mu.Unlock()
	if !running || lc == nil {
		finish(ExecExit{ExitCode: 126, Error: fmt.Sprintf("container %s is not running", req.ContainerID)})
		return
	}
	p := &libcontainer.Process{Args: req.Args, Env: req.Env, Cwd: req.Cwd, UID: int(req.UID), GID: int(req.GID)}
	if req.Capabilities != nil {
		// As Docker's privileged exec: no inheritable or ambient ones;
		// the container's seccomp filter and no-new-privileges stay.
		p.Capabilities = &configs.Capabilities{Bounding: req.Capabilities, Permitted: req.Capabilities, Effective: req.Capabilities}
	}
	for _, g := range req.Groups {
		p.AdditionalGroups = append(p.AdditionalGroups, int(g))
	}
	var outR, errR, master *os.File
	var inW io.WriteCloser
	if req.Tty {
		parent, child, err := consolePair()
		if err != nil {
			finish(ExecExit{ExitCode: 126, Error: err.Error()})
			return
		}
		p.ConsoleSocket = child
		p.ConsoleHeight, p.ConsoleWidth = req.ConsoleSize[0], req.ConsoleSize[1]
		err = lc.Run(p)
		child.Close()
		if err != nil {
			parent.Close()
			finish(ExecExit{ExitCode: execStartCode(err), Error: err.Error()})
			return
		}
		master, err = recvMaster(parent)
		parent.Close()
		if err != nil {
			finish(ExecExit{ExitCode: 126, Error: err.Error()})
			return
		}
		outR, inW = master, master
		m.mu.Lock()
		m.execTTYs[req.ExecID] = master
		m.mu.Unlock()
		defer func() {
			m.mu.Lock()
			delete(m.execTTYs, req.ExecID)
			m.mu.Unlock()
		}()
	} else {
		var outW, errW, inR *os.File
		var err error
		if outR, outW, err = os.Pipe(); err == nil {
			if errR, errW, err = os.Pipe(); err == nil {
				if req.Stdin {
					var w *os.File
					inR, w, err = os.Pipe()
					inW = w
				} else {
					inR, err = os.Open(os.DevNull)
				}
			}
		}
		if err != nil {
			for _, f := range []*os.File{outR, outW, errR, errW} {
				if f != nil {
					f.Close()
				}
			}
			finish(ExecExit{ExitCode: 126, Error: fmt.Sprintf("exec's pipes: %v", err)})
			return
		}
		p.Stdin = inR
		defer inR.Close()
		p.Stdout, p.Stderr = outW, errW
		if err := lc.Run(p); err != nil {
			outW.Close()
			errW.Close()
			outR.Close()
			errR.Close()
			finish(ExecExit{ExitCode: execStartCode(err), Error: err.Error()})
			return
		}
		outW.Close()
		errW.Close()
	}
	pid, _ := p.Pid()
	m.mu.Lock()
	m.execs[pid] = true
	if req.ExecID != "" {
		m.execIDs[req.ExecID] = pid
	}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.execs, pid)
		delete(m.execIDs, req.ExecID)
		m.mu.Unlock()
	}()
	if inW != nil && req.Stdin {
		// The daemon's stdin, until it half-closes or goes.
		go func() {
			io.Copy(inW, brw)
			if master == nil {
				inW.Close()
			}
		}()
	}
	var copies sync.WaitGroup
	for _, s := range []struct {
		r  *os.File
		id byte
	}{{outR, 1}, {errR, 2}} {
		if s.r == nil {
			continue
		}
		copies.Add(1)
		go func() {
			defer copies.Done()
			io.Copy(fw.To(s.id), s.r)
			s.r.Close()
		}()
	}
	ps, werr := p.Wait()
	copies.Wait()
	finish(ExecExit{ExitCode: exitCode(ps, werr), Pid: pid})
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

// Exec runs a process in a running container. The returned connection
// carries the process's stdin one way (CloseWrite ends it) and its output
// frames the other, ended by an ExitFrame.
func (c *Client) Exec(ctx context.Context, req *ExecRequest) (net.Conn, *bufio.Reader, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	b, _ := json.Marshal(req)
	fmt.Fprintf(conn, "POST /exec HTTP/1.1\r\nHost: monitor\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("container monitor: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		conn.Close()
		return nil, nil, fmt.Errorf("container monitor: exec answered %s", resp.Status)
	}
	if _, err := conn.Write(append(b, '\n')); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, br, nil
}

// exitCode is a process's exit code as Docker reports it: its exit
// status, or 128 plus the signal that killed it; 255 if it cannot be known.
func exitCode(ps *os.ProcessState, waitErr error) int {
	if ps == nil {
		if waitErr != nil {
			return 255
		}
		return 0
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
		switch {
		case ws.Exited():
			return ws.ExitStatus()
		case ws.Signaled():
			return 128 + int(ws.Signal())
		}
	}
	return 255
}

// execStartCode is the exit code of an exec that could not start: 127 for
// a command not found, 126 otherwise, as Docker reports them.
func execStartCode(err error) int {
	if errors.Is(err, os.ErrNotExist) || containsAny(err.Error(), "executable file not found", "no such file or directory") {
		return 127
	}
	return 126
}

// handleExecSignal signals a running exec'd process.
func (m *monitor) handleExecSignal(w http.ResponseWriter, r *http.Request) {
	sig, err := strconv.Atoi(r.URL.Query().Get("signal"))
	if err != nil || sig <= 0 || sig > 64 {
		fail(w, errdefs.InvalidParameter(fmt.Errorf("invalid signal %q", r.URL.Query().Get("signal"))))
		return
	}
	m.mu.Lock()
	pid, ok := m.execIDs[r.PathValue("exec")]
	m.mu.Unlock()
	if !ok {
		fail(w, errdefs.NotFound(fmt.Errorf("no running exec %s", r.PathValue("exec"))))
		return
	}
	if err := unix.Kill(pid, syscall.Signal(sig)); err != nil {
		fail(w, errdefs.Conflict(fmt.Errorf("signal exec %s: %w", r.PathValue("exec"), err)))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ExecSignal sends a signal to a running exec'd process.
func (c *Client) ExecSignal(ctx context.Context, execID string, sig syscall.Signal) error {
	return c.call(ctx, http.MethodPost, "/exec-signal/"+execID+"?signal="+strconv.Itoa(int(sig)), nil, nil)
}
