package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/balena-os/balena-engine/src/errdefs"
)

// A monitor moves to a new engine binary (an engine or OS update on a
// device, with applications running) by executing it in its own process:
// the PID stays, and with it the parenthood of every container, so exit
// statuses are collected as before. What the new image needs and cannot
// reopen by path (a terminal's master, a stdin pipe, the lock) is
// inherited, and handover.json, versioned as the records are, says which
// descriptor is what.

// handover is what a re-executing monitor leaves its next image.
type handover struct {
	Version int
	LockFD  int
	Ctrs    map[string]handedFiles
	// Reap are the PIDs of exec'd processes: still children, their
	// connections gone with the old image, to be reaped when they end.
	Reap []int
}

func handoverPath(root string) string { return filepath.Join(root, "handover.json") }

// upgradeRequest asks the monitor to execute a new binary.
type upgradeRequest struct {
	Binary string
}

// handleUpgrade re-executes the monitor as req.Binary. It answers before
// it goes; the daemon waits until the new image answers.
func (m *monitor) handleUpgrade(w http.ResponseWriter, r *http.Request) {
	var req upgradeRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil || !filepath.IsAbs(req.Binary) {
		fail(w, errdefs.InvalidParameter(fmt.Errorf("bad upgrade request: %v", err)))
		return
	}
	if err := unix.Access(req.Binary, unix.X_OK); err != nil {
		fail(w, errdefs.InvalidParameter(fmt.Errorf("new monitor binary %s: %w", req.Binary, err)))
		return
	}
	// From here nothing else changes: no start, exec or forget runs
	// while the state is handed over (their handlers wait for m.mu).
	m.mu.Lock()
	h := handover{Version: StateVersion, LockFD: m.lockFD, Ctrs: map[string]handedFiles{}}
	keep := []int{m.lockFD}
	for id, c := range m.ctrs {
		c.mu.Lock()
		running := c.state.Running
		var hf handedFiles
		if running && c.master != nil {
			if fd, err := unix.Dup(rawFD(c.master)); err == nil {
				hf.Master = fd
				keep = append(keep, fd)
			}
		} else if running && c.stdin != nil {
			if f, ok := c.stdin.(*os.File); ok {
				if fd, err := unix.Dup(rawFD(f)); err == nil {
					hf.Stdin = fd
					keep = append(keep, fd)
				}
			}
		}
		c.mu.Unlock()
		if running {
			h.Ctrs[id] = hf
		}
	}
	h.Reap = m.execPIDs()
	for _, fd := range keep {
		// Inherited across exec: dup's copies have no close-on-exec; the
		// lock's descriptor must lose its own.
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
			m.mu.Unlock()
			fail(w, fmt.Errorf("hand over descriptor %d: %w", fd, err))
			return
		}
	}
	if err := writeJSONFile(handoverPath(m.root), h); err != nil {
		m.mu.Unlock()
		fail(w, fmt.Errorf("write the handover: %w", err))
		return
	}
	// Output read but not yet logged is written now; what the containers
	// write from here on waits in their FIFOs for the next image.
	m.stopOutputs()
	w.WriteHeader(http.StatusAccepted)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	m.log.Info("monitor executing a new binary", "binary", req.Binary, "containers", len(h.Ctrs))
	args := []string{req.Binary, MonitorArg, "--root", m.root}
	err := syscall.Exec(req.Binary, args, os.Environ())
	// Still here: the new binary did not start. This one goes on from
	// its own file, through the same handover.
	m.log.Error("executing the new monitor binary failed; re-executing this one", "err", err)
	err = syscall.Exec("/proc/self/exe", append([]string{"/proc/self/exe"}, args[1:]...), os.Environ())
	m.log.Error("re-executing the monitor failed", "err", err)
	os.Exit(1)
}

// execPIDs lists the exec'd processes; m.mu is held.
func (m *monitor) execPIDs() []int {
	var out []int
	for pid := range m.execs {
		out = append(out, pid)
	}
	return out
}

// stopOutputs ends every container's output copying at once, so that the
// old image writes no half line into a log after the new one has started.
func (m *monitor) stopOutputs() {
	for _, c := range m.ctrs {
		c.mu.Lock()
		outs := c.outputs
		c.mu.Unlock()
		for _, f := range outs {
			f.SetReadDeadline(time.Now())
		}
	}
	// Bounded: an output that cannot be stopped is left to the exec.
	done := make(chan struct{})
	go func() {
		for _, c := range m.ctrs {
			c.copies.Wait()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		m.log.Warn("container output copying did not stop before the upgrade")
	}
}

// readHandover takes the handover a previous image of this process left,
// if any, and removes it.
func readHandover(root string) (*handover, error) {
	p := handoverPath(root)
	var h handover
	err := readJSONFile(p, &h)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	os.Remove(p)
	if err != nil {
		return nil, err
	}
	if h.Version > StateVersion {
		// The lock is still this process's; the rest is not understood.
		return &handover{Version: h.Version, LockFD: h.LockFD}, fmt.Errorf("handover of version %d, newer than this monitor's %d", h.Version, StateVersion)
	}
	return &h, nil
}

// NeedsUpgrade says whether the running monitor executes another file
// than binary (the engine was replaced since the monitor started).
func (c *Client) NeedsUpgrade() bool {
	b, err := os.ReadFile(filepath.Join(c.root, "monitor.pid"))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil || pid <= 0 {
		return false
	}
	var running, ours unix.Stat_t
	if unix.Stat("/proc/"+strconv.Itoa(pid)+"/exe", &running) != nil || unix.Stat(c.binary, &ours) != nil {
		return false
	}
	return running.Dev != ours.Dev || running.Ino != ours.Ino
}

// Upgrade moves the running monitor to this client's binary and waits
// until it answers again. No other monitor is started meanwhile.
func (c *Client) Upgrade(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.callOnce(ctx, http.MethodPost, "/upgrade", upgradeRequest{Binary: c.binary}, nil); err != nil {
		return fmt.Errorf("upgrade the container monitor: %w", err)
	}
	return c.awaitAnswer(ctx, "the upgraded container monitor")
}
