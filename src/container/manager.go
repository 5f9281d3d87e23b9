package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/image"
	"github.com/balena-os/balena-engine/src/logs"
	"github.com/balena-os/balena-engine/src/runtime"
	"github.com/balena-os/balena-engine/src/volume"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/cgroups"
	libseccomp "github.com/opencontainers/runc/libcontainer/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// Options are everything a Manager is made with. They are given to Open
// whole, before any container is reconciled or restarted, and never change
// afterwards: a restart policy's start at boot sees the same settings as
// any later start.
type Options struct {
	Root    string // <data-root>/containers
	DB      *bolt.DB
	Images  *image.Store
	Volumes *volume.Store
	Runtime *runtime.Client
	Log     *slog.Logger
	// Notify, when set, hears of container events.
	Notify func(action events.Action, id string, attrs map[string]string)
	// DefaultInit runs containers that did not say (no --init=false) with
	// an init, as the daemon's --init does; InitPath, when set, is the
	// executable bound in as that init instead of the engine itself.
	DefaultInit bool
	InitPath    string
	// DefaultLogConfig is the log driver and options of containers that
	// name no driver (the daemon's --log-driver and --log-opt).
	DefaultLogConfig containertypes.LogConfig
	// SeccompProfile is the filter for containers that name none: "" or
	// "builtin", "unconfined", or a profile's JSON text.
	SeccompProfile string
	// CgroupParent holds every container's cgroup ("/balena-engine").
	CgroupParent string
}

// Manager runs the container lifecycle: create, start, stop, kill, wait,
// remove, and the reconciliation with the monitor when the daemon starts.
type Manager struct {
	opts    Options
	root    string
	records recordStore
	images  *image.Store
	vols    *volume.Store
	rt      *runtime.Client
	log     *slog.Logger

	mu           sync.Mutex
	exited       map[string]*exit       // the container's next exit
	restarts     map[string]*time.Timer // restarts waiting out their backoff
	userRestarts map[string]bool        // containers in a docker restart: their exit does not remove them
	updateMu     sync.Mutex             // one docker update at a time
	fsLocks      sync.Map               // container ID → *sync.Mutex, see fsLock
}

// fsLock serialises what mounts a container's overlay: a start, and docker
// cp or export of a stopped container, which mount it for the call; two
// overlays on one upper directory are undefined. It returns the unlock.
func (m *Manager) fsLock(id string) func() {
	v, _ := m.fsLocks.LoadOrStore(id, &sync.Mutex{})
	mu := v.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// exit is a container's next exit: done is closed when it happens, after
// code is set.
type exit struct {
	done chan struct{}
	code int
}

// Open opens the container manager and reconciles every record with what
// the monitor knows: containers that ran on while the daemon was away are
// followed again; those that ended get their real exit status.
func Open(ctx context.Context, o Options) (*Manager, error) {
	root, images, rt, log := o.Root, o.Images, o.Runtime, o.Log
	m := &Manager{opts: o, root: root, records: recordStore{o.DB}, images: images, vols: o.Volumes, rt: rt, log: log, exited: map[string]*exit{}, restarts: map[string]*time.Timer{}, userRestarts: map[string]bool{}}
	if err := m.records.init(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o710); err != nil {
		return nil, err
	}
	// Narrowed if an older engine made it wider (CVE-2021-41091).
	if fi, err := os.Stat(root); err == nil && fi.Mode().Perm()&^0o710 != 0 {
		if err := os.Chmod(root, fi.Mode().Perm()&0o710); err != nil {
			return nil, fmt.Errorf("restrict containers directory: %w", err)
		}
	}
	all, err := m.records.list()
	if err != nil {
		return nil, err
	}
	for _, c := range all {
		if c.State.Status == StatusRestarting {
			// A restart was waiting when the daemon went: do it now.
			c.State.Status = StatusExited
			m.updateOrLog(c.ID, func(r *Container) error { r.State.Status = StatusExited; return nil })
			go m.restart(c.ID, 0)
			continue
		}
		if c.State.Status == StatusPaused {
			c.State.Status = StatusRunning // the monitor says whether it still runs
		}
		if c.State.Status != StatusRunning {
			// Docker starts "always" containers with the daemon, and
			// "unless-stopped" ones unless a user stopped them.
			p := c.HostConfig.RestartPolicy.Name
			if c.State.Status == StatusExited && (p == "always" || (p == "unless-stopped" && !c.ManuallyStopped)) {
				id := c.ID
				m.updateOrLog(id, func(r *Container) error { r.ManuallyStopped = false; return nil })
				go m.restart(id, 0)
			}
			continue
		}
		st, err := rt.State(ctx, c.ID)
		switch {
		case err == nil && st.Running:
			log.Info("container still running", "id", c.ID, "pid", st.Pid)
			go m.follow(c.ID)
			go m.runHealth(c.ID)
		case err == nil:
			m.finish(c.ID, st)
		case errdefs.KindOf(err) == errdefs.KindNotFound:
			// No monitor knows it (the host rebooted: the monitor's state
			// is on a tmpfs): the container is gone, its status with it.
			m.finish(c.ID, runtime.State{ExitCode: 255, FinishedAt: time.Now().UTC(),
				Error: "the container ended while the engine was not running; its exit status is unknown"})
		default:
			// No monitor could be reached or started: the container may
			// well run, so it is not reported ended; follow asks until a
			// monitor answers.
			log.Warn("container monitor unreachable; following the container until it answers", "id", c.ID, "err", err)
			go m.follow(c.ID)
		}
		// One that ended while the engine was away restarts now, as Docker
		// restarts containers when it starts, not after the backoff of its
		// restart count: that count keeps growing over reboots, and a device
		// without a real-time clock cannot tell how long the run lasted.
		if m.cancelRestart(c.ID) {
			go m.restart(c.ID, 0)
		}
	}
	images.InUse = m.imageUser
	return m, nil
}

func (m *Manager) notify(action events.Action, c *Container, extra map[string]string) {
	if m.opts.Notify == nil {
		return
	}
	attrs := map[string]string{"name": c.Name, "image": c.ImageName}
	for k, v := range c.Config.Labels {
		attrs[k] = v
	}
	for k, v := range extra {
		attrs[k] = v
	}
	m.opts.Notify(action, c.ID, attrs)
}

// imageUser names a container that uses an image, for image deletion.
func (m *Manager) imageUser(imageID string) string {
	all, _ := m.records.list()
	for _, c := range all {
		if c.Image.String() == imageID {
			return c.ID
		}
	}
	return ""
}

// Get returns a container by ID, name or ID prefix.
func (m *Manager) Get(ref string) (*Container, error) { return m.records.get(ref) }

// List returns every container, newest first.
func (m *Manager) List() ([]*Container, error) { return m.records.list() }

func (m *Manager) dir(id string) string { return filepath.Join(m.root, id) }

// Create records a container after checking everything that can be
// checked without running it; nothing is left behind if a check fails.
func (m *Manager) Create(ctx context.Context, name string, cfg *containertypes.Config, host *containertypes.HostConfig) (c *Container, warnings []string, err error) {
	if cfg == nil || cfg.Image == "" {
		return nil, nil, errdefs.InvalidParameter(errors.New("config cannot be empty in order to create a container"))
	}
	if host == nil {
		host = &containertypes.HostConfig{}
	}
	if host.NetworkMode == "" || host.NetworkMode == "default" {
		host.NetworkMode = "bridge"
	}
	if name != "" && !validName.MatchString(name) {
		return nil, nil, errdefs.InvalidParameter(fmt.Errorf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)) //lint:ignore ST1005 Docker's wording
	}
	name = strings.TrimPrefix(name, "/")
	img, err := m.images.Get(cfg.Image)
	if err != nil {
		return nil, nil, err
	}
	host.LogConfig = mergeLogConfig(host.LogConfig, m.opts.DefaultLogConfig)
	switch host.CgroupnsMode {
	case "":
		// Docker's defaults, recorded: a cgroup namespace of its own on
		// cgroup v2 (else the container sees the host's whole hierarchy),
		// the host's on v1 (where the runtime binds in the container's own
		// cgroup directories).
		host.CgroupnsMode = containertypes.CgroupnsModeHost
		if cgroups.IsCgroup2UnifiedMode() {
			host.CgroupnsMode = containertypes.CgroupnsModePrivate
		}
	case containertypes.CgroupnsModeHost, containertypes.CgroupnsModePrivate:
	default:
		return nil, nil, errdefs.InvalidParameter(fmt.Errorf("invalid cgroup namespace mode: %s", host.CgroupnsMode))
	}
	if _, err := LogSettings(host.LogConfig); err != nil {
		return nil, nil, err
	}
	if err := checkRestartPolicy(host.RestartPolicy); err != nil {
		return nil, nil, err
	}
	if host.AutoRemove && host.RestartPolicy.Name != "" && host.RestartPolicy.Name != "no" {
		return nil, nil, errdefs.InvalidParameter(errors.New("can't create 'AutoRemove' container with restart policy"))
	}
	id := newID()
	if name == "" {
		name = id[:12]
	}
	// Anonymous volumes: the image's VOLUMEs, and "-v /path", which the
	// docker CLI sends in the config's Volumes.
	anon := map[string]struct{}{}
	for p := range img.Config.Config.Volumes {
		anon[p] = struct{}{}
	}
	for p := range cfg.Volumes {
		anon[p] = struct{}{}
	}
	specHost, vms, err := splitVolumes(host, anon)
	if err != nil {
		return nil, nil, err
	}
	// Everything but the user (resolved against the image's files at
	// start) is checked here, the volumes' places included.
	probe := volumeSpecMounts(vms, func(string) string { return "/" })
	if _, err := Spec(SpecInput{ID: id, Config: cfg, Host: specHost, Image: img.Config.Config, Volumes: probe, SeccompProfile: m.opts.SeccompProfile, NoSeccomp: !libseccomp.Enabled}); err != nil {
		return nil, nil, err
	}
	var made []string // anonymous volumes made here, removed if create fails
	defer func() {
		if err != nil {
			for _, n := range made {
				m.vols.Remove(n, nil)
			}
		}
	}()
	for i := range vms {
		v, verr := m.vols.Create(vms[i].Name, nil, nil)
		if verr != nil {
			err = verr
			return nil, nil, err
		}
		if vms[i].Name == "" {
			made = append(made, v.Name)
		}
		vms[i].Name = v.Name
	}
	args, _ := ResolveCommand(cfg, img.Config.Config)
	if hc := healthConfig(cfg.Healthcheck, img.Config.Config.Healthcheck); hc != nil {
		if _, herr := healthCommand(hc.Test); herr != nil {
			return nil, nil, errdefs.InvalidParameter(herr)
		}
	}
	c = &Container{ID: id, Name: name, Created: time.Now().UTC(), Image: img.ID, ImageName: cfg.Image,
		Config: cfg, HostConfig: host, State: State{Status: StatusCreated}, Path: args[0], Args: args[1:], Volumes: vms,
		LogPath: filepath.Join(m.dir(id), id+"-json.log")}
	for _, d := range []string{"upper", "work", "rootfs"} {
		if err = os.MkdirAll(filepath.Join(m.dir(id), d), 0o700); err != nil {
			os.RemoveAll(m.dir(id))
			return nil, nil, err
		}
	}
	if err = m.records.add(c); err != nil {
		os.RemoveAll(m.dir(id))
		return nil, nil, err
	}
	m.notify(events.ActionCreate, c, nil)
	return c, warnings, nil
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "k"), strings.HasSuffix(s, "K"):
		mult = 1 << 10
	case strings.HasSuffix(s, "m"), strings.HasSuffix(s, "M"):
		mult = 1 << 20
	case strings.HasSuffix(s, "g"), strings.HasSuffix(s, "G"):
		mult = 1 << 30
	}
	if mult > 1 {
		s = s[:len(s)-1]
	}
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		return 0, err
	}
	return n * mult, nil
}

// lowerDirs are the directories of the container's image layers, top first.
func (m *Manager) lowerDirs(c *Container) ([]string, error) {
	img, err := m.images.Get(c.Image.String())
	if err != nil {
		return nil, fmt.Errorf("image of container %s: %w", c.ID, err)
	}
	var lower []string
	for i := len(img.ChainIDs) - 1; i >= 0; i-- {
		l, err := m.images.Layer(img.ChainIDs[i])
		if err != nil {
			return nil, err
		}
		lower = append(lower, l.Dir())
	}
	return lower, nil
}

// mountRootfs mounts the container's overlay: the image's layers, top
// first, under the container's own upper directory.
func (m *Manager) mountRootfs(c *Container) (string, error) {
	lower, err := m.lowerDirs(c)
	if err != nil {
		return "", err
	}
	dir := m.dir(c.ID)
	target := filepath.Join(dir, "rootfs")
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", strings.Join(lower, ":"), filepath.Join(dir, "upper"), filepath.Join(dir, "work"))
	if len(opts) > os.Getpagesize()-1 {
		return "", fmt.Errorf("image %s has too many layers for one overlay mount (%d)", c.Image, len(lower))
	}
	unix.Unmount(target, unix.MNT_DETACH) // a previous run's, if any
	if err := unix.Mount("overlay", target, "overlay", 0, opts); err != nil {
		return "", fmt.Errorf("mount the container's root filesystem: %w", err)
	}
	return target, nil
}

// etcFiles writes the container's /etc/hostname, /etc/hosts and
// /etc/resolv.conf.
func (m *Manager) etcFiles(c *Container, hostname string) (map[string]string, error) {
	dir := m.dir(c.ID)
	files := map[string]string{}
	write := func(name string, b []byte) error {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
		files["/etc/"+name] = p
		return nil
	}
	if !c.HostConfig.NetworkMode.IsHost() {
		if err := write("hostname", []byte(hostname+"\n")); err != nil {
			return nil, err
		}
		hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
		for _, h := range c.HostConfig.ExtraHosts {
			if name, ip, ok := strings.Cut(h, ":"); ok {
				hosts += ip + "\t" + name + "\n"
			}
		}
		if err := write("hosts", []byte(hosts)); err != nil {
			return nil, err
		}
	} else if b, err := os.ReadFile("/etc/hosts"); err == nil {
		if err := write("hosts", b); err != nil {
			return nil, err
		}
	}
	resolv, _ := os.ReadFile("/etc/resolv.conf")
	if err := write("resolv.conf", resolv); err != nil {
		return nil, err
	}
	return files, nil
}

// exitWaiters ends the waits for a container's next exit with its code.
func (m *Manager) exitWaiters(id string, code int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.exited[id]; ok {
		e.code = code
		close(e.done)
		delete(m.exited, id)
	}
}

// updateOrLog changes a record where the caller cannot do better than
// say that the change was lost (the disk is full): the record keeps its
// last state, which the next daemon start reconciles.
func (m *Manager) updateOrLog(id string, fn func(*Container) error) {
	if _, err := m.records.update(id, fn); err != nil && errdefs.KindOf(err) != errdefs.KindNotFound {
		m.log.Error("container record not updated", "id", id, "err", err)
	}
}

// dropExitWait forgets a wait for the next exit that nobody holds any
// more (the container is gone).
func (m *Manager) dropExitWait(id string) {
	if _, err := m.records.get(id); err == nil {
		return // still there: its next exit will close it
	}
	m.mu.Lock()
	delete(m.exited, id)
	m.mu.Unlock()
}

func (m *Manager) nextExit(id string) *exit {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.exited[id]
	if !ok {
		e = &exit{done: make(chan struct{})}
		m.exited[id] = e
	}
	return e
}

// Start runs a created or stopped container. A container that would
// remove itself on exit (run --rm) is removed when it cannot start, as
// Docker does, so that a failed run leaves nothing behind.
func (m *Manager) Start(ctx context.Context, ref string) error {
	c, err := m.records.get(ref)
	if err != nil {
		return err
	}
	err = m.start(ctx, c)
	if err != nil && !errors.Is(err, ErrAlreadyStarted) {
		// Whatever stopped the start, those waiting for this run (docker
		// run waits for the next exit, or removal, and attaches) hear of it.
		m.updateOrLog(c.ID, func(c *Container) error {
			c.State.Error = err.Error()
			c.State.ExitCode = 128
			return nil
		})
		m.exitWaiters(c.ID, 128)
		m.rt.EndAttach(context.Background(), c.ID)
	}
	if err != nil && !errors.Is(err, ErrAlreadyStarted) && c.HostConfig.AutoRemove {
		if rerr := m.Remove(context.Background(), c.ID, true); rerr != nil {
			m.log.Warn("auto-remove after a failed start", "id", c.ID, "err", rerr)
		}
	}
	return err
}

func (m *Manager) start(ctx context.Context, c *Container) error {
	var err error
	unlock := m.fsLock(c.ID)
	defer unlock()
	if c, err = m.records.get(c.ID); err != nil { // as it is now, under the lock
		return err
	}
	if c.State.Status == StatusRunning {
		return ErrAlreadyStarted
	}
	m.cancelRestart(c.ID)
	img, err := m.images.Get(c.Image.String())
	if err != nil {
		return fmt.Errorf("image of container %s: %w", c.ID, err)
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
	hostname := c.Config.Hostname
	if hostname == "" {
		hostname = c.ID[:12]
	}
	etc, err := m.etcFiles(c, hostname)
	if err != nil {
		return err
	}
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
	mountpoints := map[string]string{}
	for _, v := range c.Volumes {
		vol, err := m.vols.Create(v.Name, nil, nil) // recreated if it was removed meanwhile
		if err != nil {
			return err
		}
		mountpoints[v.Name] = vol.Mountpoint
		if !v.NoCopy {
			if err := volume.CopyUp(rootfs, v.Destination, vol.Mountpoint); err != nil {
				return err
			}
		}
	}
	vmounts := volumeSpecMounts(c.Volumes, func(n string) string { return mountpoints[n] })
	s, err := Spec(SpecInput{ID: c.ID, Config: c.Config, Host: specHost, Image: img.Config.Config, Rootfs: rootfs, EtcFiles: etc, Volumes: vmounts, InitPath: initPath, SeccompProfile: m.opts.SeccompProfile, NoSeccomp: !libseccomp.Enabled})
	if err != nil {
		return err
	}
	s.Linux.CgroupsPath = m.cgroupOf(c.ID)
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
	if err != nil {
		return errdefs.Unavailable(fmt.Errorf("failed to start container %s: %w", c.ID[:12], err))
	}
	started = true
	c, err = m.records.update(c.ID, func(c *Container) error {
		c.State = State{Status: StatusRunning, Pid: st.Pid, StartedAt: st.StartedAt, Health: nil}
		c.ManuallyStopped = false
		return nil
	})
	if err != nil {
		return err
	}
	m.notify(events.ActionStart, c, nil)
	go m.follow(c.ID)
	go m.runHealth(c.ID)
	return nil
}

// usesInit says whether a container runs under docker-init (--init, or the
// daemon's --init).
func (m *Manager) usesInit(c *Container) bool {
	if c.HostConfig.Init != nil {
		return *c.HostConfig.Init
	}
	return m.opts.DefaultInit
}

// Attach returns a container's output from now until it ends, in Docker's
// multiplexed frames; before the container starts it waits for the start.
func (m *Manager) Attach(ctx context.Context, ref string) (io.ReadCloser, error) {
	c, err := m.records.get(ref)
	if err != nil {
		return nil, err
	}
	return m.rt.Attach(ctx, c.ID)
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
	c, err := m.records.update(id, func(c *Container) error {
		c.State.Status = StatusExited
		c.State.Pid = 0
		c.State.ExitCode = st.ExitCode
		c.State.OOMKilled = st.OOMKilled
		c.State.Error = st.Error
		c.State.FinishedAt = st.FinishedAt
		return nil
	})
	m.exitWaiters(id, st.ExitCode)
	if err != nil {
		return // removed meanwhile
	}
	if st.OOMKilled {
		m.notify(events.ActionOOM, c, nil)
	}
	m.notify(events.ActionDie, c, map[string]string{"exitCode": fmt.Sprint(st.ExitCode)})
	unix.Unmount(filepath.Join(m.dir(id), "rootfs"), unix.MNT_DETACH)
	m.mu.Lock()
	inRestart := m.userRestarts[id]
	m.mu.Unlock()
	if c.HostConfig.AutoRemove && !inRestart {
		if err := m.Remove(context.Background(), id, false); err != nil {
			m.log.Warn("auto-remove", "id", id, "err", err)
		}
		return
	}
	if delay, ok := m.restartDelay(c); ok {
		m.updateOrLog(id, func(r *Container) error { r.State.Status = StatusRestarting; return nil })
		m.mu.Lock()
		m.restarts[id] = time.AfterFunc(delay, func() { m.restart(id, delay) })
		m.mu.Unlock()
	}
}

// Docker's restart backoff: 100 ms doubling to a minute, back to the start
// once a container has run for 10 s.
const (
	restartBase  = 100 * time.Millisecond
	restartMax   = time.Minute
	restartReset = 10 * time.Second
)

// restartDelay decides whether the policy restarts c, and after how long.
func (m *Manager) restartDelay(c *Container) (time.Duration, bool) {
	p := c.HostConfig.RestartPolicy
	switch p.Name {
	case "always":
	case "unless-stopped":
		if c.ManuallyStopped {
			return 0, false
		}
	case "on-failure":
		if c.State.ExitCode == 0 || (p.MaximumRetryCount > 0 && c.RestartCount >= p.MaximumRetryCount) {
			return 0, false
		}
	default:
		return 0, false
	}
	if c.ManuallyStopped {
		return 0, false
	}
	if c.State.FinishedAt.Sub(c.State.StartedAt) >= restartReset {
		return restartBase, true
	}
	d := restartBase << min(c.RestartCount, 20)
	return min(d, restartMax), true
}

// restart starts a container again for its restart policy.
func (m *Manager) restart(id string, _ time.Duration) {
	m.mu.Lock()
	delete(m.restarts, id)
	m.mu.Unlock()
	c, err := m.records.get(id)
	if err != nil || c.ManuallyStopped || c.State.Status == StatusRunning {
		return
	}
	if _, err := m.records.update(id, func(r *Container) error { r.RestartCount++; return nil }); err != nil {
		return
	}
	if err := m.Start(context.Background(), id); err != nil {
		m.log.Warn("restart by policy failed", "id", id, "err", err)
		m.updateOrLog(id, func(r *Container) error { r.State.Status = StatusExited; return nil })
		return
	}
	m.notify(events.ActionRestart, c, nil)
}

// cancelRestart drops a pending restart; it reports whether there was one.
func (m *Manager) cancelRestart(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.restarts[id]
	if ok && t != nil {
		t.Stop()
	}
	delete(m.restarts, id)
	return ok
}

// Kill sends a signal to a running container.
func (m *Manager) Kill(ctx context.Context, ref string, sig syscall.Signal) error {
	c, err := m.records.get(ref)
	if err != nil {
		return err
	}
	if sig == syscall.SIGKILL {
		m.thawIfPaused(ctx, c)
	}
	if c.State.Status != StatusRunning && c.State.Status != StatusPaused {
		return errdefs.Conflict(fmt.Errorf("cannot kill container: %s: container %s is not running", ref, c.ID))
	}
	if sig != syscall.SIGKILL && c.State.Status == StatusRunning && m.usesInit(c) {
		awaitSignalHandler(c.State.Pid, sig, time.Second)
	}
	if err := m.rt.Signal(ctx, c.ID, sig); err != nil {
		return err
	}
	m.notify(events.ActionKill, c, map[string]string{"signal": fmt.Sprint(int(sig))})
	return nil
}

// Stop sends the stop signal, waits up to timeout, then kills.
func (m *Manager) Stop(ctx context.Context, ref string, timeout *int) error {
	c, err := m.records.get(ref)
	if err != nil {
		return err
	}
	// Registered before the state is read again: an exit in between is
	// then not missed.
	exited := m.nextExit(c.ID).done
	if c, err = m.records.update(c.ID, func(r *Container) error { r.ManuallyStopped = true; return nil }); err != nil {
		return err
	}
	m.thawIfPaused(ctx, c)
	if m.cancelRestart(c.ID) {
		m.updateOrLog(c.ID, func(r *Container) error { r.State.Status = StatusExited; return nil })
		return nil
	}
	if c.State.Status != StatusRunning {
		return ErrNotRunning
	}
	img, _ := m.images.Get(c.Image.String())
	sig := syscall.SIGTERM
	name := c.Config.StopSignal
	if name == "" {
		name = img.Config.Config.StopSignal
	}
	if name != "" {
		s, err := ParseSignal(name)
		if err != nil {
			return err
		}
		sig = s
	}
	wait := 10
	if c.Config.StopTimeout != nil {
		wait = *c.Config.StopTimeout
	}
	if timeout != nil {
		wait = *timeout
	}
	if m.usesInit(c) {
		awaitSignalHandler(c.State.Pid, sig, time.Second)
	}
	if err := m.rt.Signal(ctx, c.ID, sig); err != nil && errdefs.KindOf(err) != errdefs.KindConflict {
		return err
	}
	if wait >= 0 {
		select {
		case <-exited:
			m.notify(events.ActionStop, c, nil)
			return nil
		case <-time.After(time.Duration(wait) * time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := m.rt.Signal(ctx, c.ID, syscall.SIGKILL); err != nil && errdefs.KindOf(err) != errdefs.KindConflict {
		return err
	}
	select {
	case <-exited:
	case <-ctx.Done():
		return ctx.Err()
	}
	m.notify(events.ActionStop, c, nil)
	return nil
}

// Restart stops a container and starts it again. As with Docker, the stop
// does not remove a container run with --rm: removing it while it is
// started again would leave its new process running with no record.
func (m *Manager) Restart(ctx context.Context, ref string, timeout *int) error {
	c, err := m.records.get(ref)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.userRestarts[c.ID] = true
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.userRestarts, c.ID)
		m.mu.Unlock()
	}()
	if err := m.Stop(ctx, c.ID, timeout); err != nil && !errors.Is(err, ErrNotRunning) {
		return err
	}
	if err := m.Start(ctx, c.ID); err != nil && !errors.Is(err, ErrAlreadyStarted) {
		return err
	}
	return nil
}

// ErrNotRunning is stopping a container that is not running (Docker
// answers 304 Not Modified).
var ErrNotRunning = errors.New("container not running")

// Wait blocks until the container is not running (condition
// "not-running"), has next exited ("next-exit"), or is removed
// ("removed"), and returns its exit code.
func (m *Manager) Wait(ctx context.Context, ref, condition string) (int, error) {
	c, err := m.records.get(ref)
	if err != nil {
		return 0, err
	}
	switch condition {
	case "", "not-running":
		if c.State.Status != StatusRunning {
			return c.State.ExitCode, nil
		}
	case "next-exit", "removed":
	default:
		return 0, errdefs.InvalidParameter(fmt.Errorf("invalid condition: %q", condition))
	}
	e := m.nextExit(c.ID)
	select {
	case <-e.done:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if condition == "removed" {
		for {
			if _, err := m.records.get(c.ID); err != nil {
				break
			}
			select {
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
	}
	return e.code, nil
}

// VolumeUsers lists the containers that use a volume.
func (m *Manager) VolumeUsers(name string) []string {
	all, _ := m.records.list()
	var out []string
	for _, c := range all {
		for _, v := range c.Volumes {
			if v.Name == name {
				out = append(out, c.ID)
			}
		}
	}
	return out
}

// Remove deletes a container; a running one only with force. With
// removeVolumes, its anonymous volumes go too, unless another uses them.
func (m *Manager) Remove(ctx context.Context, ref string, force bool, removeVolumes ...bool) error {
	c, err := m.records.get(ref)
	if err != nil {
		return err
	}
	// No start (a restart policy's) may run while the container is
	// removed: it would leave a process running that no record follows.
	unlock := m.fsLock(c.ID)
	locked := true
	defer func() {
		if locked {
			unlock()
		}
	}()
	// The wait for the exit is registered before the state is read: an
	// exit between the two would otherwise be waited for in vain.
	exited := m.nextExit(c.ID).done
	defer m.dropExitWait(c.ID)
	if c, err = m.records.get(c.ID); err != nil { // as it is now, under the lock
		return err
	}
	if m.cancelRestart(c.ID) && !force {
		return errdefs.Conflict(fmt.Errorf("cannot remove container \"/%s\": container is restarting: stop the container before removing or force remove", c.Name))
	}
	if force {
		m.thawIfPaused(ctx, c)
	}
	if c.State.Status == StatusPaused {
		return errdefs.Conflict(fmt.Errorf("cannot remove container \"/%s\": container is paused: unpause and stop the container before removing or force remove", c.Name))
	}
	if c.State.Status == StatusRunning {
		if !force {
			return errdefs.Conflict(fmt.Errorf("cannot remove container \"/%s\": container is running: stop the container before removing or force remove", c.Name))
		}
		// Recorded before the kill: lost on a full disk, the container
		// would come back at the next boot.
		if _, err := m.records.update(c.ID, func(r *Container) error { r.ManuallyStopped = true; return nil }); err != nil {
			return fmt.Errorf("remove container %s: %w", c.ID[:12], err)
		}
		if err := m.rt.Signal(ctx, c.ID, syscall.SIGKILL); err != nil && errdefs.KindOf(err) != errdefs.KindConflict {
			return err
		}
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			return fmt.Errorf("container %s did not die after SIGKILL", c.ID)
		}
	}
	if err := m.rt.Forget(ctx, c.ID); err != nil && errdefs.KindOf(err) != errdefs.KindNotFound {
		return fmt.Errorf("remove container %s: %w", c.ID[:12], err)
	}
	m.rt.EndAttach(ctx, c.ID)
	unix.Unmount(filepath.Join(m.dir(c.ID), "rootfs"), unix.MNT_DETACH)
	if err := m.records.remove(c.ID); err != nil {
		return err
	}
	os.RemoveAll(m.dir(c.ID))
	m.forgetExecsOf(c.ID)
	locked = false
	unlock()
	m.fsLocks.Delete(c.ID)
	if (len(removeVolumes) > 0 && removeVolumes[0]) || c.HostConfig.AutoRemove {
		for _, v := range c.Volumes {
			if v.Anonymous && len(m.VolumeUsers(v.Name)) == 0 {
				m.vols.Remove(v.Name, nil)
			}
		}
	}
	m.notify(events.ActionDestroy, c, nil)
	return nil
}

// Rename gives a container a new name.
func (m *Manager) Rename(ref, name string) error {
	c, err := m.records.get(ref)
	if err != nil {
		return err
	}
	if !validName.MatchString(name) {
		return errdefs.InvalidParameter(fmt.Errorf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)) //lint:ignore ST1005 Docker's wording
	}
	name = strings.TrimPrefix(name, "/")
	if err := m.records.rename(c.ID, name); err != nil {
		return err
	}
	m.notify(events.ActionRename, c, map[string]string{"oldName": "/" + c.Name})
	return nil
}

// checkRestartPolicy rejects a policy the way Docker does.
func checkRestartPolicy(p containertypes.RestartPolicy) error {
	switch p.Name {
	case "", "no", "always", "unless-stopped":
		if p.MaximumRetryCount != 0 {
			return errdefs.InvalidParameter(errors.New("invalid restart policy: maximum retry count can only be used with 'on-failure'"))
		}
	case "on-failure":
		if p.MaximumRetryCount < 0 {
			return errdefs.InvalidParameter(errors.New("invalid restart policy: maximum retry count cannot be negative"))
		}
	default:
		return errdefs.InvalidParameter(fmt.Errorf("invalid restart policy: unknown policy '%s'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'", p.Name))
	}
	return nil
}

// Update changes a container's resources and restart policy, as docker
// update does: the resources given replace those fields, applied to the
// running container's cgroups first and kept for its next starts; a new
// restart policy takes effect at the next exit. Nothing is changed unless
// all of it can be.
func (m *Manager) Update(ctx context.Context, ref string, u *containertypes.UpdateConfig) ([]string, error) {
	m.updateMu.Lock()
	defer m.updateMu.Unlock()
	c, err := m.records.get(ref)
	if err != nil {
		return nil, err
	}
	if c.State.Status == StatusRemoving {
		return nil, errdefs.Conflict(fmt.Errorf("container %s is marked for removal and cannot be \"update\"", c.ID))
	}
	res, err := mergeResources(c.HostConfig.Resources, u.Resources)
	if err != nil {
		return nil, err
	}
	if u.RestartPolicy.Name != "" {
		if err := checkRestartPolicy(u.RestartPolicy); err != nil {
			return nil, err
		}
		if c.HostConfig.AutoRemove && u.RestartPolicy.Name != "no" {
			return nil, errdefs.InvalidParameter(errors.New("Restart policy cannot be updated because AutoRemove is enabled for the container"))
		}
	}
	host := *c.HostConfig
	host.Resources = res
	lr := &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{}}}
	if err := setResources(lr, &host); err != nil {
		return nil, err
	}
	changed := !reflect.DeepEqual(res, c.HostConfig.Resources)
	if changed && (c.State.Status == StatusRunning || c.State.Status == StatusPaused) {
		if err := m.rt.Update(ctx, c.ID, lr.Linux.Resources); err != nil {
			return nil, fmt.Errorf("Cannot update container %s: %w", c.ID, err) //lint:ignore ST1005 Docker's wording
		}
	}
	c, err = m.records.update(c.ID, func(c *Container) error {
		c.HostConfig.Resources = res
		if u.RestartPolicy.Name != "" {
			c.HostConfig.RestartPolicy = u.RestartPolicy
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if u.RestartPolicy.Name == "no" && m.cancelRestart(c.ID) {
		// A restart was waiting out its back-off: the policy no longer asks for it.
		m.updateOrLog(c.ID, func(r *Container) error { r.State.Status = StatusExited; return nil })
	}
	m.notify(events.ActionUpdate, c, nil)
	return nil, nil
}

// Logs reads a container's log. With follow it goes on until the
// container exits or ctx ends.
func (m *Manager) Logs(ctx context.Context, ref string, opts logs.ReadOptions, fn func(logs.Entry) error) error {
	c, err := m.records.get(ref)
	if err != nil {
		return err
	}
	lo, _ := LogSettings(c.HostConfig.LogConfig)
	var stop <-chan struct{}
	if opts.Follow {
		if c.State.Status != StatusRunning {
			opts.Follow = false
		} else {
			stop = m.nextExit(c.ID).done
		}
	}
	if err := ReadableLogs(c); err != nil {
		return err
	}
	if lo.Driver == DriverJournald {
		return logs.ReadJournal(ctx, c.ID, opts, stop, fn)
	}
	return logs.Read(ctx, c.LogPath, lo.MaxFile, opts, stop, fn)
}

// Pause freezes a running container.
func (m *Manager) Pause(ctx context.Context, ref string) error {
	c, err := m.records.get(ref)
	if err != nil {
		return err
	}
	switch c.State.Status {
	case StatusPaused:
		return errdefs.Conflict(fmt.Errorf("container %s is already paused", c.ID))
	case StatusRunning:
	default:
		return errdefs.Conflict(fmt.Errorf("container %s is not running", c.ID))
	}
	if err := m.rt.Pause(ctx, c.ID); err != nil {
		return err
	}
	c, err = m.records.update(c.ID, func(r *Container) error { r.State.Status = StatusPaused; return nil })
	if err == nil {
		m.notify(events.ActionPause, c, nil)
	}
	return err
}

// Unpause thaws a paused container.
func (m *Manager) Unpause(ctx context.Context, ref string) error {
	c, err := m.records.get(ref)
	if err != nil {
		return err
	}
	if c.State.Status != StatusPaused {
		return errdefs.Conflict(fmt.Errorf("container %s is not paused", c.ID))
	}
	if err := m.rt.Resume(ctx, c.ID); err != nil {
		return err
	}
	c, err = m.records.update(c.ID, func(r *Container) error { r.State.Status = StatusRunning; return nil })
	if err == nil {
		m.notify(events.ActionUnPause, c, nil)
	}
	return err
}

// thawIfPaused resumes a paused container so that a signal can end it, as
// Docker does before stop, kill and forced removal.
func (m *Manager) thawIfPaused(ctx context.Context, c *Container) {
	if c.State.Status == StatusPaused {
		if m.rt.Resume(ctx, c.ID) == nil {
			m.updateOrLog(c.ID, func(r *Container) error { r.State.Status = StatusRunning; return nil })
			c.State.Status = StatusRunning
		}
	}
}

// Resize sets the size of a running container's terminal.
func (m *Manager) Resize(ctx context.Context, ref string, h, w uint16) error {
	c, err := m.records.get(ref)
	if err != nil {
		return err
	}
	if c.State.Status != StatusRunning {
		return errdefs.Conflict(fmt.Errorf("container %s is not running", c.ID))
	}
	return m.rt.Resize(ctx, c.ID, h, w)
}

// StdinConn connects to a running container's input, waiting for the
// container to start if it has not yet (docker run attaches first).
func (m *Manager) StdinConn(ctx context.Context, id string) (io.WriteCloser, error) {
	exited := m.nextExit(id).done
	for {
		c, err := m.records.get(id)
		if err != nil {
			return nil, err
		}
		if c.State.Status == StatusRunning {
			return m.rt.Stdin(ctx, c.ID)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-exited:
			return nil, errdefs.Conflict(fmt.Errorf("container %s is not running", c.ID))
		case <-time.After(20 * time.Millisecond):
		}
	}
}
