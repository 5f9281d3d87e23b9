package container

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/runtime"
	"github.com/balena-os/balena-engine/src/stdstream"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// Exec is one "docker exec": created, then started once. Execs live in
// memory only, as in Docker.
type Exec struct {
	ID          string
	ContainerID string
	Config      containertypes.ExecCreateRequest
	DetachKeys  []byte // the detach sequence watched for in its terminal's input
	mu          sync.Mutex
	running     bool
	started     bool
	exitCode    *int
	pid         int
}

// SetConsoleSize sets the terminal's first size (height, width) of an exec
// not yet started: the start request's, which wins over the create's.
func (e *Exec) SetConsoleSize(size *[2]uint) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.started {
		e.Config.ConsoleSize = size
	}
}

// State returns whether the exec runs, its exit code once done, its PID.
func (e *Exec) State() (running bool, exitCode *int, pid int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.running, e.exitCode, e.pid
}

type execStore struct {
	mu    sync.Mutex
	execs map[string]*Exec
}

var execs = execStore{execs: map[string]*Exec{}}

// ExecCreate prepares a command to run in a running container.
func (m *Manager) ExecCreate(ref string, cfg containertypes.ExecCreateRequest) (*Exec, error) {
	c, err := m.records.get(ref)
	if err != nil {
		return nil, err
	}
	if c.State.Status != StatusRunning {
		return nil, errdefs.Conflict(fmt.Errorf("container %s is not running", c.ID))
	}
	if len(cfg.Cmd) == 0 {
		return nil, errdefs.InvalidParameter(errors.New("no exec command specified"))
	}
	keys, err := stdstream.ParseDetachKeys(cfg.DetachKeys)
	if err != nil {
		return nil, fmt.Errorf("Invalid escape keys (%s) provided", cfg.DetachKeys) //lint:ignore ST1005 Docker's wording and status (500)
	}
	e := &Exec{ID: newID(), ContainerID: c.ID, Config: cfg, DetachKeys: keys}
	execs.mu.Lock()
	execs.execs[e.ID] = e
	execs.mu.Unlock()
	m.notify(events.Action(string(events.ActionExecCreate)+": "+strings.Join(cfg.Cmd, " ")), c, map[string]string{"execID": e.ID})
	return e, nil
}

// How long an ended exec's record stays: Docker's clients start an exec,
// then inspect it for its exit code. Once that code has been read, a short
// grace for a second read; never read, a while longer. Then it goes, so
// that a health check every few seconds does not grow memory for ever.
const (
	execKeepAfterRead = 30 * time.Second
	execKeepUnread    = 5 * time.Minute
)

// ExecInspected says that an exec's state was read; an ended exec is
// freed a little later.
func (m *Manager) ExecInspected(e *Exec) {
	e.mu.Lock()
	ended := e.exitCode != nil
	e.mu.Unlock()
	if ended {
		time.AfterFunc(execKeepAfterRead, func() { m.execForget(e.ID) })
	}
}

// execsOf forgets every exec of a container (it is being removed).
func (m *Manager) forgetExecsOf(containerID string) {
	execs.mu.Lock()
	defer execs.mu.Unlock()
	for id, e := range execs.execs {
		if e.ContainerID == containerID {
			delete(execs.execs, id)
		}
	}
}

// ExecCount is how many exec records the engine holds.
func ExecCount() int {
	execs.mu.Lock()
	defer execs.mu.Unlock()
	return len(execs.execs)
}

// ExecGet returns an exec.
func (m *Manager) ExecGet(id string) (*Exec, error) {
	execs.mu.Lock()
	defer execs.mu.Unlock()
	e, ok := execs.execs[id]
	if !ok {
		return nil, errdefs.NotFound(fmt.Errorf("No such exec instance: %s", id)) //lint:ignore ST1005 Docker's wording
	}
	return e, nil
}

// ExecStart runs an exec: stdin (nil for none) feeds the process, frame
// receives its output frames (stream 1 stdout, 2 stderr). It returns the
// exit code.
func (m *Manager) ExecStart(ctx context.Context, id string, stdin io.Reader, frame func(stream byte, p []byte) error) (int, error) {
	e, err := m.ExecGet(id)
	if err != nil {
		return 0, err
	}
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return 0, errdefs.Conflict(fmt.Errorf("exec %s has already been started", id))
	}
	e.started = true
	size := e.Config.ConsoleSize
	e.mu.Unlock()
	c, err := m.records.get(e.ContainerID)
	if err != nil {
		return 0, err
	}
	if c.State.Status != StatusRunning {
		return 0, errdefs.Conflict(fmt.Errorf("container %s is not running", c.ID))
	}
	img, err := m.images.Get(c.Image.String())
	if err != nil {
		return 0, err
	}
	rootfs := filepath.Join(m.dir(c.ID), "rootfs")
	userSpec := e.Config.User
	if userSpec == "" {
		userSpec = c.Config.User
	}
	if userSpec == "" {
		userSpec = img.Config.Config.User
	}
	// As Docker, the container's --group-add applies to its execs too.
	u, err := ResolveUser(rootfs, userSpec, c.HostConfig.GroupAdd)
	if err != nil {
		return 0, err
	}
	cwd := e.Config.WorkingDir
	if cwd == "" {
		cwd = c.Config.WorkingDir
	}
	if cwd == "" {
		cwd = img.Config.Config.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	env := MergeEnv(MergeEnv(img.Config.Config.Env, c.Config.Env), e.Config.Env)
	req := &runtime.ExecRequest{ContainerID: c.ID, Args: e.Config.Cmd, Env: env, Cwd: cwd,
		UID: u.UID, GID: u.GID, Groups: u.AdditionalGids, Stdin: e.Config.AttachStdin && stdin != nil,
		Tty: e.Config.Tty, ExecID: e.ID}
	if size != nil && size[0] > 0 && size[1] > 0 {
		req.ConsoleSize = [2]uint16{uint16(min(size[0], 0xffff)), uint16(min(size[1], 0xffff))}
	}
	if e.Config.Privileged {
		// docker exec --privileged: every capability (that the engine
		// holds), as Docker gives; the container's seccomp profile and
		// no-new-privileges apply as to any exec, as with Docker.
		req.Capabilities = grantableCaps()
	}
	conn, br, err := m.rt.Exec(ctx, req)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	// A caller that gives up (a health probe past its timeout) ends the
	// process too, not only its wait for it.
	stop := context.AfterFunc(ctx, func() {
		m.rt.ExecSignal(context.Background(), e.ID, syscall.SIGKILL)
		conn.SetReadDeadline(time.Now().Add(2 * time.Second)) // should the monitor not answer
	})
	defer stop()
	e.mu.Lock()
	e.running = true
	e.mu.Unlock()
	m.notify(events.Action(string(events.ActionExecStart)+": "+strings.Join(e.Config.Cmd, " ")), c, map[string]string{"execID": e.ID})
	if e.Config.AttachStdin && stdin != nil {
		go func() {
			io.Copy(conn, stdin)
			if cw, ok := conn.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
		}()
	}
	exit, err := readFrames(br, frame)
	code := exit.ExitCode
	if err != nil {
		code = 126
	}
	e.mu.Lock()
	e.running = false
	e.exitCode = &code
	e.pid = exit.Pid
	e.mu.Unlock()
	time.AfterFunc(execKeepUnread, func() { m.execForget(e.ID) })
	m.notify(events.ActionExecDie, c, map[string]string{"execID": e.ID, "exitCode": fmt.Sprint(code)})
	if err == nil && exit.Error != "" {
		err = errors.New(exit.Error)
		if code == 127 || code == 126 {
			err = errdefs.InvalidParameter(err)
		}
	}
	return code, err
}

// readFrames hands output frames to fn until the exit frame.
func readFrames(br *bufio.Reader, fn func(byte, []byte) error) (runtime.ExecExit, error) {
	for {
		stream, p, err := stdstream.ReadFrame(br)
		if err != nil {
			return runtime.ExecExit{}, fmt.Errorf("exec stream: %w", err)
		}
		if stream == runtime.ExitFrame {
			var x runtime.ExecExit
			return x, json.Unmarshal(p, &x)
		}
		if fn != nil {
			if err := fn(stream, p); err != nil {
				return runtime.ExecExit{}, err
			}
		}
	}
}

// ExecDetached records that an exec's client typed its detach keys (an
// "exec_detach" event, as Docker's); the process goes on.
func (m *Manager) ExecDetached(e *Exec) {
	if c, err := m.records.get(e.ContainerID); err == nil {
		m.notify(events.ActionExecDetach, c, map[string]string{"execID": e.ID})
	}
}

// execForget drops an exec the engine ran for itself (a health probe).
func (m *Manager) execForget(id string) {
	execs.mu.Lock()
	delete(execs.execs, id)
	execs.mu.Unlock()
}

// ExecResize sets the size of a running exec's terminal.
func (m *Manager) ExecResize(ctx context.Context, id string, h, w uint16) error {
	e, err := m.ExecGet(id)
	if err != nil {
		return err
	}
	if running, _, _ := e.State(); !running {
		return errdefs.Conflict(fmt.Errorf("exec %s is not running", id))
	}
	return m.rt.ExecResize(ctx, id, h, w)
}
