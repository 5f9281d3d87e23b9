package runtime

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// MonitorArg is the first argument that selects the monitor role.
const MonitorArg = "__monitor"

// Client is the daemon's connection to the monitor.
type Client struct {
	root   string
	binary string
	http   *http.Client
	mu     sync.Mutex // serialises starting the monitor
	closed bool       // the daemon is shutting down: start no monitor
}

// Close stops the client from starting monitors: a daemon shutting down
// leaves the monitor it has, and starts none that nobody would stop.
func (c *Client) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
}

// Closed says whether Close was called.
func (c *Client) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func newClient(root, binary string) *Client {
	sock := filepath.Join(root, SocketName)
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	return &Client{root: root, binary: binary, http: &http.Client{Transport: tr}}
}

// Binary is the engine's executable, which also serves as a container's
// docker-init.
func (c *Client) Binary() string { return c.binary }

// Connect returns a client for the monitor whose state is in root, and
// whether a monitor is there now. A monitor that answers is kept: that is
// how containers live through a daemon restart; if it runs another binary
// than this daemon's (the engine was updated), it is moved to this one in
// place (Upgrade). None is started here: the first container starts it
// (Start), so that an engine with no container running costs one process.
func Connect(ctx context.Context, root, binary string) (*Client, bool, error) {
	c := newClient(root, binary)
	if _, err := c.List(ctx); err != nil {
		return c, false, nil
	}
	if c.NeedsUpgrade() {
		return c, true, c.Upgrade(ctx)
	}
	return c, true, nil
}

// ensure starts the monitor if none answers.
func (c *Client) ensure(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.List(ctx); err == nil {
		return nil
	}
	if c.closed {
		return errdefs.Unavailable(errors.New("the engine is shutting down: no container monitor is started"))
	}
	if err := os.MkdirAll(c.root, 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(c.root, "monitor.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(c.binary, MonitorArg, "--root", c.root)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own session: a signal to the daemon's process group (Ctrl-C)
	// does not reach it, and it outlives the daemon.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the container monitor: %w", err)
	}
	go cmd.Wait() // reap it if it ends while this daemon runs
	return c.awaitAnswer(ctx, "the container monitor")
}

// awaitAnswer waits a bounded time for the monitor to answer.
func (c *Client) awaitAnswer(ctx context.Context, what string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := c.List(ctx); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer (see %s)", what, filepath.Join(c.root, "monitor.log"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// call asks the monitor. Where no monitor answers (it was killed: the OOM
// killer, a bug), one is started, which takes back the containers the
// last one left (recoverState), and the call is made again.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	err := c.callOnce(ctx, method, path, in, out)
	if !monitorAbsent(err) {
		return err
	}
	if eerr := c.ensure(ctx); eerr != nil {
		return eerr
	}
	return c.callOnce(ctx, method, path, in, out)
}

// dial connects to the monitor for a hijacked stream (attach, exec,
// stdin), starting one where none answers.
func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	sock := filepath.Join(c.root, SocketName)
	conn, err := d.DialContext(ctx, "unix", sock)
	if monitorAbsent(err) {
		if err := c.ensure(ctx); err != nil {
			return nil, err
		}
		conn, err = d.DialContext(ctx, "unix", sock)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errMonitor, err)
	}
	return conn, nil
}

// monitorAbsent says whether err means that no monitor listens on the
// socket (rather than that one answered, or broke off a call).
func monitorAbsent(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)
}

// MonitorLost says whether err means that the call found no monitor or
// lost it before the answer: the call may be made again, and will reach
// the next one.
func MonitorLost(err error) bool {
	return errors.Is(err, errMonitor)
}

var errMonitor = errors.New("container monitor")

func (c *Client) callOnce(ctx context.Context, method, path string, in, out any) error {
	var body *bytes.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	var req *http.Request
	var err error
	if body != nil {
		req, err = http.NewRequestWithContext(ctx, method, "http://monitor"+path, body)
	} else {
		req, err = http.NewRequestWithContext(ctx, method, "http://monitor"+path, nil)
	}
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %w", errMonitor, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		var e struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&e)
		return errdefs.FromHTTPStatus(resp.StatusCode, errors.New(e.Error))
	}
	if out != nil && resp.StatusCode != http.StatusNoContent {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// Start runs a container and returns its state once its process runs,
// starting the monitor first if none runs.
func (c *Client) Start(ctx context.Context, req *StartRequest) (State, error) {
	if err := c.ensure(ctx); err != nil {
		return State{}, err
	}
	var st State
	return st, c.call(ctx, http.MethodPost, "/start", req, &st)
}

// State returns a container's state.
func (c *Client) State(ctx context.Context, id string) (State, error) {
	var st State
	return st, c.call(ctx, http.MethodGet, "/state/"+id, nil, &st)
}

// Wait blocks until the container has ended and returns its final state.
func (c *Client) Wait(ctx context.Context, id string) (State, error) {
	var st State
	return st, c.call(ctx, http.MethodGet, "/wait/"+id, nil, &st)
}

// Signal sends a signal to the container's init process.
func (c *Client) Signal(ctx context.Context, id string, sig syscall.Signal) error {
	return c.call(ctx, http.MethodPost, "/signal/"+id+"?signal="+strconv.Itoa(int(sig)), nil, nil)
}

// Forget drops an ended container from the monitor.
func (c *Client) Forget(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodPost, "/forget/"+id, nil, nil)
}

// List returns every container the monitor knows. It starts no monitor.
func (c *Client) List(ctx context.Context) ([]State, error) {
	var out []State
	return out, c.callOnce(ctx, http.MethodGet, "/list", nil, &out)
}

// Pause freezes a container's processes.
func (c *Client) Pause(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodPost, "/pause/"+id, nil, nil)
}

// Update sets a running container's cgroup limits to res, in full.
func (c *Client) Update(ctx context.Context, id string, res *specs.LinuxResources) error {
	return c.call(ctx, http.MethodPost, "/update/"+id, res, nil)
}

// Resume thaws a paused container.
func (c *Client) Resume(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodPost, "/resume/"+id, nil, nil)
}

// Resize sets the size of a container's terminal.
func (c *Client) Resize(ctx context.Context, id string, h, w uint16) error {
	return c.call(ctx, http.MethodPost, fmt.Sprintf("/resize/%s?h=%d&w=%d", id, h, w), nil, nil)
}

// ExecResize sets the size of an exec's terminal.
func (c *Client) ExecResize(ctx context.Context, execID string, h, w uint16) error {
	return c.call(ctx, http.MethodPost, fmt.Sprintf("/exec-resize/%s?h=%d&w=%d", execID, h, w), nil, nil)
}

// Stdin returns a connection whose writes reach the container's input
// (its terminal, or its stdin pipe); CloseWrite ends a stdin-once input.
func (c *Client) Stdin(ctx context.Context, id string) (net.Conn, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(conn, "POST /stdin/%s HTTP/1.1\r\nHost: monitor\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n", id)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("container monitor: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		var e struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&e)
		conn.Close()
		return nil, errdefs.Conflict(errors.New(e.Error))
	}
	return conn, nil
}

// Stats returns a running container's cgroup statistics.
func (c *Client) Stats(ctx context.Context, id string) (*cgroups.Stats, error) {
	var st cgroups.Stats
	return &st, c.call(ctx, http.MethodGet, "/stats/"+id, nil, &st)
}

// Processes returns the host PIDs of a running container's processes.
func (c *Client) Processes(ctx context.Context, id string) ([]int, error) {
	var pids []int
	return pids, c.call(ctx, http.MethodGet, "/processes/"+id, nil, &pids)
}
