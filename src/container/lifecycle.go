package container

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/logs"
	"github.com/balena-os/balena-engine/src/network"
	"github.com/balena-os/balena-engine/src/runtime"
	"github.com/balena-os/balena-engine/src/volume"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	libseccomp "github.com/opencontainers/runc/libcontainer/seccomp"
	"golang.org/x/sys/unix"
)

// Start runs a created or stopped container. A container that would
// remove itself on exit (run --rm) is removed when it cannot start, as
// Docker does, so that a failed run leaves nothing behind.
func (m *Manager) Start(ctx context.Context, ref string) error {
	return m.startAs(ctx, ref, false)
}

// errStoppedByUser ends a restart policy's start that a user's stop came
// before: the stop wins.
var errStoppedByUser = errors.New("stopped by a user since its exit")

// startAs is Start, for a user or (byPolicy) for a restart policy.
func (m *Manager) startAs(ctx context.Context, ref string, byPolicy bool) error {
	c, err := m.records.get(ref)
	if err != nil {
		return err
	}
	err = m.start(ctx, c, byPolicy)
	if errors.Is(err, errStoppedByUser) {
		m.transitionOrLog(c.ID, evRestartCancelled, outcome{})
		return err
	}
	// Refused before anything was tried (a paused container): the run it
	// has goes on.
	failed := err != nil && !errors.Is(err, ErrAlreadyStarted) && !refused(err)
	if failed {
		// Whatever stopped the start, those waiting for this run (docker
		// run waits for the next exit, or removal, and attaches) hear of it.
		code := startExitCode(err)
		now, _ := m.transitionOrLog(c.ID, evStartFailed, outcome{ExitCode: code, Error: err.Error()})
		m.exitWaiters(c.ID, code)
		m.rt.EndAttach(context.Background(), c.ID)
		// The monitor was lost during a restart policy's start, and the
		// next one ended the half-started container: that is not the
		// container's failure, and its policy goes on.
		if byPolicy && runtime.MonitorLost(err) && now != nil {
			m.scheduleRestart(now)
			return err
		}
	}
	if failed && c.HostConfig.AutoRemove {
		if rerr := m.Remove(context.Background(), c.ID, true); rerr != nil {
			m.log.Warn("auto-remove after a failed start", "id", c.ID, "err", rerr)
		}
	}
	return err
}

func (m *Manager) start(ctx context.Context, c *Container, byPolicy bool) error {
	var err error
	unlock := m.fsLock(c.ID)
	defer unlock()
	if c, err = m.records.get(c.ID); err != nil { // as it is now, under the lock
		return err
	}
	// A stop takes the same lock to mark the container stopped: either
	// it came first and this restart does not happen, or it finds the
	// container running and stops it.
	if byPolicy && c.ManuallyStopped {
		return errStoppedByUser
	}
	if c.State.Status == StatusRunning {
		return ErrAlreadyStarted
	}
	if _, err := nextStatus(c.State.Status, evStart); err != nil {
		return err
	}
	m.cancelRestart(c.ID)
	img, err := m.images.Get(c.Image.String())
	if err != nil {
		return fmt.Errorf("image of container %s: %w", c.ID, err)
	}
	pidns, ipcns, shm, err := m.sharedNamespaces(c)
	if err != nil {
		return err
	}
	rootfs, err := m.mountRootfs(c)
	if err != nil {
		return err
	}
	started := false
	defer func() {
		if !started {
			unix.Unmount(rootfs, unix.MNT_DETACH)
		}
	}()
	if c.HostConfig.IpcMode.IsShareable() {
		if shm, err = m.mountShm(c); err != nil {
			return err
		}
		defer func() {
			if !started {
				unix.Unmount(shm, unix.MNT_DETACH)
			}
		}()
	}
	hostname := defaultHostname(c.Config, c.HostConfig, c.ID)
	cfg := c.Config
	var sb *network.Sandbox
	join := network.JoinRequest{ContainerID: c.ID, Name: c.Name, Hostname: hostname, Domainname: c.Config.Domainname,
		Mode: c.HostConfig.NetworkMode, Endpoints: c.Networks, PortBindings: c.HostConfig.PortBindings, Exposed: c.Config.ExposedPorts,
		PublishAll: c.HostConfig.PublishAllPorts, ExtraHosts: c.HostConfig.ExtraHosts, DNS: addrStrings(c.HostConfig.DNS), DNSSearch: c.HostConfig.DNSSearch,
		DNSOptions: c.HostConfig.DNSOptions, Dir: m.dir(c.ID)}
	links, linked, err := m.linkHosts(c)
	if err != nil {
		return err
	}
	join.ExtraHosts, join.Links = append(slices.Clone(join.ExtraHosts), links...), linked
	if c.Config.NetworkDisabled {
		// As Docker: no network at all, a namespace of its own with
		// its loopback only.
		join.Mode, join.Endpoints, join.PortBindings, join.Exposed, join.PublishAll = "none", nil, nil, nil, false
	}
	if c.HostConfig.NetworkMode.IsContainer() && !c.Config.NetworkDisabled {
		if sb, hostname, err = m.sharedSandbox(c); err != nil {
			return err
		}
		shared := *c.Config
		shared.Hostname = hostname
		cfg = &shared
	} else if sb, err = m.opts.Network.Join(join); err != nil {
		return err
	}
	defer func() {
		if !started {
			m.opts.Network.Leave(c.ID)
		}
	}()
	etc := sb.Files
	specHost, _, err := splitVolumes(c.HostConfig, nil)
	if err != nil {
		return err
	}
	if specHost.Init == nil && m.opts.DefaultInit {
		yes := true
		specHost.Init = &yes
	}
	initPath := m.opts.InitPath
	if initPath == "" {
		initPath = m.rt.Binary()
	}
	sources := make([]string, len(c.Volumes))
	subpaths := filepath.Join(m.dir(c.ID), "subpaths")
	if !unbindSubpaths(subpaths) { // a previous run's, if any
		return fmt.Errorf("volume subpaths of a previous run are still mounted in %s", subpaths)
	}
	defer func() {
		if !started {
			unbindSubpaths(subpaths)
		}
	}()
	for i, v := range c.Volumes {
		vol, err := m.vols.Create(v.Name, v.Labels, v.DriverOptions) // recreated if it was removed meanwhile
		if err != nil {
			return err
		}
		sources[i] = vol.Mountpoint
		if v.Subpath != "" {
			sources[i] = filepath.Join(subpaths, strconv.Itoa(i))
			if err := os.MkdirAll(subpaths, 0o700); err != nil {
				return err
			}
			if err := bindSubpath(vol.Mountpoint, v.Subpath, sources[i]); err != nil {
				return err
			}
		}
		// A file's subpath takes no copy-up, as Docker's (directories only).
		if fi, err := os.Stat(sources[i]); !v.NoCopy && (err != nil || fi.IsDir()) {
			if err := volume.CopyUp(rootfs, v.Destination, sources[i]); err != nil {
				return err
			}
		}
	}
	vmounts := volumeSpecMounts(c.Volumes, func(i int) string { return sources[i] })
	s, err := Spec(SpecInput{ID: c.ID, Config: cfg, Host: specHost, Image: img.Config.Config, Rootfs: rootfs, EtcFiles: etc, Volumes: vmounts, InitPath: initPath, SeccompProfile: m.opts.SeccompProfile, NoSeccomp: !libseccomp.Enabled, NetnsPath: sb.NetnsPath,
		PidnsPath: pidns, IpcnsPath: ipcns, ShmPath: shm, ReadOnlyNonRecursive: c.ReadOnlyNonRecursive})
	if err != nil {
		return err
	}
	s.Linux.CgroupsPath = m.cgroupOf(c)
	if err := realtimeBudget(filepath.Dir(s.Linux.CgroupsPath), m.opts.CPURealtimePeriod, m.opts.CPURealtimeRuntime); err != nil {
		return err
	}
	lo, err := LogSettings(c.HostConfig.LogConfig)
	if err != nil {
		return err
	}
	req := &runtime.StartRequest{ID: c.ID, Spec: s, Rootfs: rootfs, LogDriver: lo.Driver, LogPath: c.LogPath,
		LogMaxSize: lo.MaxSize, LogMaxFile: lo.MaxFile, LogCompress: lo.Compress, OpenStdin: c.Config.OpenStdin, StdinOnce: c.Config.StdinOnce}
	if lo.Driver == DriverJournald {
		if !logs.JournalAvailable() {
			return errdefs.Unavailable(errors.New("failed to initialize logging driver: journald is not enabled on this host"))
		}
		if req.JournalFields, err = journalFields(c, lo.Tag); err != nil {
			return err
		}
	}
	st, err := m.rt.Start(ctx, req)
	if err != nil && runtime.MonitorLost(err) {
		// The monitor went during the start: the next one may have taken
		// the container back, running. Then it started, and is followed.
		if now, serr := m.stateAfterLoss(c.ID); serr == nil && now.Running {
			m.log.Warn("the container monitor was lost while starting a container; the next one took it back", "id", c.ID)
			st, err = now, nil
		}
	}
	if err != nil {
		return startFailure(c.ID, c.Path, err)
	}
	started = true
	m.volumeEvents(c, "mount")
	// A container with a health check is "starting" from its start on,
	// never without a Health for a moment (clients read it at once).
	hasHealth := healthConfig(c.Config.Healthcheck, img.Config.Config.Healthcheck) != nil
	c, err = m.transition(c.ID, evStart, outcome{Pid: st.Pid, StartedAt: st.StartedAt}, func(c *Container) {
		c.ManuallyStopped = false
		if hasHealth {
			c.State.Health = &containertypes.Health{Status: containertypes.Starting}
		}
	})
	if err != nil {
		return err
	}
	m.notify(events.ActionStart, c, nil)
	m.updateLinkers(c)
	go m.follow(c.ID)
	go m.runHealth(c.ID)
	return nil
}

// ErrAlreadyStarted is the answer to starting a running container (Docker
// answers 304 Not Modified).
var ErrAlreadyStarted = errors.New("container already started")

// follow waits for a running container to end and records how it ended.
//
// The monitor's end (the OOM killer, a bug) does not end the container:
// the wait is made again, which starts the next monitor, and that one
// takes the container back or, if it ended meanwhile, says so. Only the
// monitor, which ends what it cannot follow, says that a container has
// ended: never an error on the way to it.
func (m *Manager) follow(id string) {
	delay := 10 * time.Millisecond
	for {
		st, err := m.rt.Wait(context.Background(), id)
		switch {
		case err == nil:
			m.finish(id, st)
			return
		case errdefs.KindOf(err) == errdefs.KindNotFound:
			// No monitor knows it: the host restarted (the monitor's
			// state is on a tmpfs), and the container with it.
			m.finish(id, runtime.State{ExitCode: 255, FinishedAt: time.Now().UTC(),
				Error: "the container ended while the engine was not running; its exit status is unknown"})
			return
		}
		if _, gone := m.records.get(id); gone != nil || m.rt.Closed() {
			return // removed meanwhile, or the daemon is going
		}
		m.log.Warn("lost the container monitor while following a container; asking again", "id", id, "err", err)
		time.Sleep(delay)
		delay = min(2*delay, time.Second)
	}
}

func (m *Manager) finish(id string, st runtime.State) {
	// As Docker: what the run held (its root filesystem's mount, its
	// network sandbox) is let go before the container is recorded exited
	// and those waiting hear of it. A start that follows at once (docker
	// restart's, or a client's that waited for the exit) would otherwise
	// find the old sandbox in its way ("already has a network sandbox"),
	// or have its new mount taken away. Only while the record says the
	// run goes on: nothing else starts the container meanwhile.
	if c, err := m.records.get(id); err == nil && exitAllowed(c.State.Status) {
		unix.Unmount(filepath.Join(m.dir(id), "rootfs"), unix.MNT_DETACH)
		unix.Unmount(m.shmDir(id), unix.MNT_DETACH)
		if err := m.opts.Network.Leave(id); err != nil {
			m.log.Warn("network sandbox of an exited container", "id", id, "err", err)
		}
		unbindSubpaths(filepath.Join(m.dir(id), "subpaths"))
		m.volumeEvents(c, "unmount")
	}
	c, err := m.transitionOrLog(id, evExit, outcome{ExitCode: st.ExitCode, OOMKilled: st.OOMKilled, Error: st.Error, FinishedAt: st.FinishedAt})
	if err == nil {
		// Before the waiters hear: a stop's "stop" event, a restart's
		// "start", come after "die", as Docker's.
		if st.OOMKilled {
			m.notify(events.ActionOOM, c, nil)
		}
		m.notify(events.ActionDie, c, map[string]string{"exitCode": fmt.Sprint(st.ExitCode)})
	}
	m.exitWaiters(id, st.ExitCode)
	if err != nil {
		return // removed meanwhile, or not running (logged)
	}
	m.mu.Lock()
	inRestart := m.userRestarts[id]
	m.mu.Unlock()
	if c.HostConfig.AutoRemove && !inRestart {
		if err := m.Remove(context.Background(), id, false); err != nil {
			m.log.Warn("auto-remove", "id", id, "err", err)
		}
		return
	}
	m.scheduleRestart(c)
}

// exitAllowed says whether a container of status may exit: its run goes
// on (running or paused).
func exitAllowed(status string) bool {
	_, err := nextStatus(status, evExit)
	return err == nil
}

// scheduleRestart arms c's restart policy, if it restarts c.
func (m *Manager) scheduleRestart(c *Container) {
	id := c.ID
	delay, ok := m.restartDelay(c)
	if !ok {
		return
	}
	// Held from the record's change to the timer's registration: a stop
	// in between would find the status restarting and no restart to
	// cancel, and leave it so for the whole back-off.
	m.mu.Lock()
	defer m.mu.Unlock()
	stopped := false
	_, err := m.records.update(id, func(r *Container) error {
		if r.ManuallyStopped { // a user's stop since the exit
			stopped = true
			return nil
		}
		return r.State.transition(evRestartScheduled, outcome{})
	})
	if err != nil && errdefs.KindOf(err) != errdefs.KindNotFound {
		m.log.Error("container state not changed", "id", id, "event", string(evRestartScheduled), "err", err)
	}
	// Started meanwhile, or stopped: no restart. A record that could not
	// be written does not keep the policy from restarting it.
	if stopped || refused(err) {
		return
	}
	m.restarts[id] = time.AfterFunc(delay, func() { m.restart(id, delay) })
}

func addrStrings(as []netip.Addr) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

// startError is a start the runtime refused, with the exit code Docker
// records for it.
type startError struct {
	code int
	err  error
}

func (e *startError) Error() string { return e.err.Error() }
func (e *startError) Unwrap() error { return e.err }

// startFailure classifies a failed start as Docker does: the command
// (cmd) not found (127), not executable (126) or a mount of a file onto a
// directory or the reverse (127) are the request's fault (400); anything
// else is the engine's (503, exit code 128).
func startFailure(id, cmd string, err error) error {
	msg := strings.ToLower(err.Error())
	wrapped := fmt.Errorf("failed to start container %s: %w", id[:12], err)
	switch {
	case strings.Contains(msg, strings.ToLower(cmd)) &&
		(strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory")):
		return &startError{127, errdefs.InvalidParameter(wrapped)}
	case strings.Contains(msg, "permission denied"):
		return &startError{126, errdefs.InvalidParameter(wrapped)}
	case strings.Contains(msg, "not a directory"):
		return &startError{127, errdefs.InvalidParameter(fmt.Errorf("%w: Are you trying to mount a directory onto a file (or vice-versa)? Check if the specified host path exists and is the expected type", wrapped))}
	}
	return &startError{128, errdefs.Unavailable(wrapped)}
}

// startExitCode is the exit code recorded for a failed start.
func startExitCode(err error) int {
	var se *startError
	if errors.As(err, &se) {
		return se.code
	}
	return 128
}

// stateAfterLoss asks for a container's state once a monitor is there
// again after the last one was lost. A new monitor answers only once it
// has taken back or ended every container (a start it caught half-way
// included, whose processes it kills), so a start is not recorded failed
// while its processes still run; a call that reaches the dying monitor is
// made again, for up to 10 s.
func (m *Manager) stateAfterLoss(id string) (runtime.State, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := m.rt.State(context.Background(), id)
		if err == nil || !runtime.MonitorLost(err) || time.Now().After(deadline) {
			return st, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
