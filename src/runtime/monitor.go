package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/logs"
	"github.com/balena-os/balena-engine/src/stdstream"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	_ "github.com/opencontainers/cgroups/devices" // device cgroup rules need it registered
)

// SocketName is the monitor's socket in its root directory.
const SocketName = "monitor.sock"

type monitor struct {
	root     string
	log      *slog.Logger
	mu       sync.Mutex
	ctrs     map[string]*ctr
	execTTYs map[string]*os.File    // exec ID -> its terminal master
	execs    map[int]bool           // PIDs of exec'd processes
	execIDs  map[string]int         // exec ID -> PID, to signal it
	pending  map[string][]*attacher // attachers waiting for a container to start
	lockFD   int                    // holds the lock that makes this the one monitor
	dns      *dnsHost
	// epochs are the journal epochs (logs.Journal.Epoch) that containers'
	// next runs take: an attach that cut before the start has promised
	// its daemon that the replay leaves that epoch's entries out.
	epochs map[string]string
}

type ctr struct {
	mu        sync.Mutex
	state     State
	c         *libcontainer.Container
	done      chan struct{} // closed when the container has ended
	stdin     io.WriteCloser
	stdinOnce bool
	master    *os.File // the terminal, for a container run with -t
	rootfs    string
	attachers []*attacher
	ended     bool       // its output has ended: endAttach has run
	outputs   []*os.File // what supervise reads the output from
	partials  []*logs.LineWriter
	copies    sync.WaitGroup // supervise's output copies
	// outMu is held while a chunk of output goes to the log and on to the
	// attachers, and by an attach that cuts (see handleAttach): that
	// attach joins between two chunks, when the log holds exactly the
	// output before it but for the lines still pending.
	outMu sync.Mutex
	lines []lineOut // under outMu
	log   logSink   // under outMu once set
	epoch string    // its journal entries' CONTAINER_LOG_EPOCH
}

// lineOut is a stream's line writer, whose pending part of a line an
// attach that cuts is sent first.
type lineOut struct {
	stream byte
	w      *logs.LineWriter
}

// MonitorMain is the monitor role. It serves until SIGTERM or SIGINT.
func MonitorMain(args []string) int {
	fs := flag.NewFlagSet("monitor", flag.ContinueOnError)
	root := fs.String("root", "", "the monitor's state directory")
	if err := fs.Parse(args); err != nil || *root == "" {
		fmt.Fprintln(os.Stderr, "balena-engine monitor: --root is required")
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("role", "monitor")
	// Orphaned container processes come to us, not to PID 1, so that we
	// collect the statuses of containers whose init we did not fork.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		log.Error("cannot become a subreaper", "err", err)
		return 1
	}
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)
	if err := os.MkdirAll(filepath.Join(*root, "state"), 0o700); err != nil {
		log.Error("state directory", "err", err)
		return 1
	}
	// Containers are what the engine must keep: on a device short of
	// memory the kernel's OOM killer takes anything before this process
	// (containerd's shims use the same value).
	if err := os.WriteFile("/proc/self/oom_score_adj", []byte("-999"), 0); err != nil {
		log.Warn("cannot lower the monitor's OOM score", "err", err)
	}
	m := &monitor{root: *root, log: log, ctrs: map[string]*ctr{}, execTTYs: map[string]*os.File{}, execs: map[int]bool{}, execIDs: map[string]int{}, pending: map[string][]*attacher{}, epochs: map[string]string{}}
	// A previous image of this process (an upgrade) may have left the
	// lock and the containers' descriptors.
	h, herr := readHandover(*root)
	if herr != nil {
		log.Error("handover from the previous monitor binary; taking containers back without it", "err", herr)
	}
	var err error
	if h != nil && h.LockFD > 0 {
		m.lockFD = h.LockFD
		unix.CloseOnExec(m.lockFD)
		for _, pid := range h.Reap {
			go func() {
				var ws unix.WaitStatus
				unix.Wait4(pid, &ws, 0, nil)
			}()
		}
	} else if m.lockFD, err = lockMonitor(*root); err != nil {
		log.Error("lock", "err", err)
		return 1
	}
	var handed map[string]handedFiles
	if h != nil && herr == nil {
		handed = h.Ctrs
	}
	m.recoverState(handed)
	m.dns = &dnsHost{path: dnsTablePath(*root), servers: map[string]*dnsServer{}, log: log.Warn}
	m.dns.load()
	sock := filepath.Join(*root, SocketName)
	os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		log.Error("listen", "err", err)
		return 1
	}
	os.Chmod(sock, 0o600)
	// The PID file is how an operator (or a test) finds the monitor: it
	// outlives the daemon on purpose.
	os.WriteFile(filepath.Join(*root, "monitor.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /start", m.handleStart)
	mux.HandleFunc("GET /state/{id}", m.handleState)
	mux.HandleFunc("GET /wait/{id}", m.handleWait)
	mux.HandleFunc("POST /signal/{id}", m.handleSignal)
	mux.HandleFunc("POST /forget/{id}", m.handleForget)
	mux.HandleFunc("GET /list", m.handleList)
	mux.HandleFunc("POST /exec", m.handleExec)
	mux.HandleFunc("POST /pause/{id}", m.handleFreeze(true))
	mux.HandleFunc("POST /resize/{id}", m.handleResize)
	mux.HandleFunc("POST /exec-resize/{exec}", m.handleResize)
	mux.HandleFunc("POST /stdin/{id}", m.handleStdin)
	mux.HandleFunc("GET /stats/{id}", m.handleStats)
	mux.HandleFunc("GET /processes/{id}", m.handleProcesses)
	mux.HandleFunc("POST /resume/{id}", m.handleFreeze(false))
	mux.HandleFunc("POST /update/{id}", m.handleUpdate)
	mux.HandleFunc("POST /attach/{id}", m.handleAttach)
	mux.HandleFunc("POST /end-attach/{id}", m.handleEndAttach)
	mux.HandleFunc("POST /upgrade", m.handleUpgrade)
	mux.HandleFunc("POST /exec-signal/{exec}", m.handleExecSignal)
	mux.HandleFunc("POST /dns", m.handleDNS)
	srv := &http.Server{Handler: mux}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	log.Info("monitor serving", "socket", sock, "pid", os.Getpid())
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("serve", "err", err)
		return 1
	}
	return 0
}

// lockMonitor takes the lock that makes one monitor at a time: a second
// one (the daemon thought this one dead) waits for it a while rather than
// follow the same containers twice, then gives up. The kernel drops the
// lock with the process that holds it; an upgrade hands it on.
func lockMonitor(root string) (int, error) {
	fd, err := unix.Open(filepath.Join(root, "monitor.lock"), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return -1, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return fd, nil
		}
		if err != unix.EWOULDBLOCK || time.Now().After(deadline) {
			unix.Close(fd)
			return -1, fmt.Errorf("another container monitor holds %s: %w", filepath.Join(root, "monitor.lock"), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// fail answers err with the status code of its kind: the same table
// (errdefs) the daemon's client reads it back with.
func fail(w http.ResponseWriter, err error) {
	writeJSON(w, errdefs.HTTPStatus(errdefs.KindOf(err)), map[string]string{"error": err.Error()})
}

func (m *monitor) get(id string) *ctr {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ctrs[id]
}

var rlimitTypes = map[string]int{
	"RLIMIT_CPU": unix.RLIMIT_CPU, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_DATA": unix.RLIMIT_DATA,
	"RLIMIT_STACK": unix.RLIMIT_STACK, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK,
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
}

// process maps the spec's process onto libcontainer's, as runc does.
func process(p *specs.Process) (*libcontainer.Process, error) {
	lp := &libcontainer.Process{Args: p.Args, Env: p.Env, UID: int(p.User.UID), GID: int(p.User.GID), Cwd: p.Cwd,
		NoNewPrivileges: &p.NoNewPrivileges, Init: true}
	if p.ConsoleSize != nil {
		lp.ConsoleHeight, lp.ConsoleWidth = uint16(min(p.ConsoleSize.Height, 0xffff)), uint16(min(p.ConsoleSize.Width, 0xffff))
	}
	if p.Capabilities != nil {
		lp.Capabilities = &configs.Capabilities{Bounding: p.Capabilities.Bounding, Effective: p.Capabilities.Effective,
			Inheritable: p.Capabilities.Inheritable, Permitted: p.Capabilities.Permitted, Ambient: p.Capabilities.Ambient}
	}
	for _, g := range p.User.AdditionalGids {
		lp.AdditionalGroups = append(lp.AdditionalGroups, int(g))
	}
	for _, rl := range p.Rlimits {
		t, ok := rlimitTypes[rl.Type]
		if !ok {
			return nil, fmt.Errorf("invalid ulimit %s", strings.ToLower(strings.TrimPrefix(rl.Type, "RLIMIT_")))
		}
		lp.Rlimits = append(lp.Rlimits, configs.Rlimit{Type: t, Hard: rl.Hard, Soft: rl.Soft})
	}
	return lp, nil
}

// decodeStart reads and checks a start request. The ID names directories
// the monitor removes and creates: one path element, never "..".
func decodeStart(r io.Reader, req *StartRequest) error {
	err := json.NewDecoder(io.LimitReader(r, 16<<20)).Decode(req)
	switch {
	case err != nil:
		return errdefs.InvalidParameter(fmt.Errorf("bad start request: %w", err))
	case req.Spec == nil || req.Spec.Process == nil:
		return errdefs.InvalidParameter(errors.New("bad start request: no spec or no process in it"))
	case req.ID == "" || req.ID == "." || req.ID == ".." || strings.ContainsAny(req.ID, "/\x00"):
		return errdefs.InvalidParameter(fmt.Errorf("bad start request: invalid container ID %q", req.ID))
	}
	return nil
}

func (m *monitor) handleStart(w http.ResponseWriter, r *http.Request) {
	var req StartRequest
	if err := decodeStart(r.Body, &req); err != nil {
		fail(w, err)
		return
	}
	m.mu.Lock()
	if old, ok := m.ctrs[req.ID]; ok {
		running := true // or starting
		select {
		case <-old.done:
			running = false
		default:
		}
		if running {
			m.mu.Unlock()
			fail(w, errdefs.Conflict(fmt.Errorf("container %s is already running", req.ID)))
			return
		}
	}
	c := &ctr{state: State{ID: req.ID}, done: make(chan struct{}), rootfs: req.Rootfs, epoch: m.epochs[req.ID]}
	delete(m.epochs, req.ID)
	if c.epoch == "" {
		c.epoch = logs.NewEpoch()
	}
	m.ctrs[req.ID] = c
	m.mu.Unlock()
	if err := m.start(c, &req); err != nil {
		c.mu.Lock()
		c.state.Error = err.Error()
		c.state.ExitCode = 128
		c.state.FinishedAt = time.Now().UTC()
		c.mu.Unlock()
		close(c.done)
		c.endAttach()
		unix.Unmount(req.Rootfs, unix.MNT_DETACH)
		os.RemoveAll(m.ctrDir(req.ID))
		fail(w, err)
		return
	}
	c.mu.Lock()
	st := c.state
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, st)
}

func (m *monitor) start(c *ctr, req *StartRequest) error {
	m.takePending(c, req.ID)
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{CgroupName: req.ID, Spec: req.Spec, NoNewKeyring: false})
	if err != nil {
		return fmt.Errorf("container config: %w", err)
	}
	// The limits go into the container's config too, not only its first
	// process's: libcontainer gives an exec those (as Docker's execs get
	// the container's --ulimit), and the monitor's own limits otherwise.
	if req.Spec.Process != nil {
		lp, err := process(req.Spec.Process)
		if err != nil {
			return err
		}
		cfg.Rlimits = lp.Rlimits
	}
	stateDir := filepath.Join(m.root, "state")
	os.RemoveAll(filepath.Join(stateDir, req.ID)) // a previous run's
	dir := m.ctrDir(req.ID)
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// The record exists before the container does: a monitor that dies
	// in between leaves the next one a container to end, not an unknown
	// one running.
	rec := record{Version: StateVersion, Req: *req}
	rec.Req.Spec = nil
	if req.Spec.Linux != nil {
		rec.Cgroup = req.Spec.Linux.CgroupsPath
	}
	if err := writeJSONFile(filepath.Join(dir, "record.json"), rec); err != nil {
		return fmt.Errorf("container record: %w", err)
	}
	lc, err := libcontainer.Create(stateDir, req.ID, cfg)
	if err != nil {
		return fmt.Errorf("create container: %w", err)
	}
	p, err := process(req.Spec.Process)
	if err != nil {
		lc.Destroy()
		return err
	}
	lw, err := openLog(req, c.epoch)
	if err != nil {
		lc.Destroy()
		return fmt.Errorf("open log: %w", err)
	}
	var outR, errR *os.File
	if req.Spec.Process.Terminal {
		parent, child, err := consolePair()
		if err != nil {
			lw.Close()
			lc.Destroy()
			return err
		}
		p.ConsoleSocket = child
		if err := lc.Run(p); err != nil {
			parent.Close()
			child.Close()
			lw.Close()
			lc.Destroy()
			return fmt.Errorf("start container process: %w", err)
		}
		child.Close()
		master, err := recvMaster(parent)
		parent.Close()
		if err != nil {
			lc.Signal(syscall.SIGKILL)
			lw.Close()
			return err
		}
		c.master, outR = master, master
		c.stdin = master
		c.stdinOnce = req.StdinOnce
	} else {
		readers, writers, err := outputFIFOs(dir)
		if err != nil {
			lw.Close()
			lc.Destroy()
			return err
		}
		outR, errR = readers[0], readers[1]
		var inR *os.File
		if req.OpenStdin {
			var inW *os.File
			inR, inW, err = os.Pipe()
			c.stdin, c.stdinOnce = inW, req.StdinOnce
		} else {
			inR, err = os.Open(os.DevNull)
		}
		if err != nil {
			for _, f := range append(readers[:], writers[:]...) {
				f.Close()
			}
			lw.Close()
			lc.Destroy()
			return fmt.Errorf("container's stdin: %w", err)
		}
		p.Stdin, p.Stdout, p.Stderr = inR, writers[0], writers[1]
		err = lc.Run(p)
		// The container holds its ends now (or never will).
		for _, f := range []*os.File{writers[0], writers[1], inR} {
			f.Close()
		}
		if err != nil {
			outR.Close()
			errR.Close()
			lw.Close()
			lc.Destroy()
			return fmt.Errorf("start container process: %w", err)
		}
	}
	pid, _ := p.Pid()
	c.mu.Lock()
	c.c = lc
	c.state.Running = true
	c.state.Pid = pid
	c.state.StartedAt = time.Now().UTC()
	c.mu.Unlock()
	rec.Pid, rec.StartedAt = pid, c.state.StartedAt
	rec.PidStart, _ = procStart(pid)
	if err := writeJSONFile(filepath.Join(dir, "record.json"), rec); err != nil {
		m.log.Warn("container record", "id", req.ID, "err", err)
	}
	m.log.Info("container started", "id", req.ID, "pid", pid)
	m.supervise(c, outR, errR, lw, func() (int, string) {
		ps, werr := p.Wait()
		return exitCode(ps, werr), ""
	})
	return nil
}

// supervise copies a running container's output to its log and its
// attachers, and when wait says it has ended, records how (once every
// byte of its output is logged) and frees what it held. wait returns the
// exit code, and an error text where the status is not the process's own.
func (m *monitor) supervise(c *ctr, outR, errR *os.File, lw logSink, wait func() (int, string)) {
	id := c.state.ID
	copies := &c.copies
	c.outMu.Lock()
	c.log = lw
	c.outMu.Unlock()
	for _, s := range []struct {
		r    *os.File
		name string
	}{{outR, "stdout"}, {errR, "stderr"}} {
		if s.r == nil {
			continue // a terminal has one output
		}
		c.mu.Lock()
		c.outputs = append(c.outputs, s.r)
		c.mu.Unlock()
		copies.Add(1)
		go func() {
			defer copies.Done()
			defer s.r.Close()
			defer m.recoverPanic(id, "output "+s.name)
			lwr := &logs.LineWriter{W: lw, Stream: s.name}
			sid := stdstream.Stdout
			if s.name == "stderr" {
				sid = stdstream.Stderr
			}
			c.outMu.Lock()
			c.lines = append(c.lines, lineOut{sid, lwr})
			c.outMu.Unlock()
			buf := make([]byte, 32<<10)
			for {
				n, err := s.r.Read(buf)
				if n > 0 {
					c.outMu.Lock()
					lwr.Write(buf[:n])
					c.broadcast(sid, buf[:n])
					c.outMu.Unlock()
				}
				if err != nil {
					if errors.Is(err, os.ErrDeadlineExceeded) {
						c.outMu.Lock()
						lwr.Flush() // an upgrade stops the copy
						c.outMu.Unlock()
						return
					}
					break
				}
			}
			// A last line without a newline is logged once both
			// streams have ended, after every whole line of the other:
			// it was the last thing written.
			c.mu.Lock()
			c.partials = append(c.partials, lwr)
			c.mu.Unlock()
		}()
	}
	go func() {
		code, errText := 255, "the container monitor failed while following the container"
		oom := false
		// Whatever happens here, the container's end is recorded and
		// its waiters hear of it.
		defer func() {
			c.mu.Lock()
			c.state.Running = false
			c.state.ExitCode = code
			c.state.Error = errText
			c.state.OOMKilled = oom
			c.state.FinishedAt = time.Now().UTC()
			if c.stdin != nil && c.master == nil {
				c.stdin.Close()
			}
			c.stdin, c.master = nil, nil
			c.mu.Unlock()
			m.log.Info("container exited", "id", id, "code", code)
			m.persist(c)
			close(c.done)
		}()
		defer m.recoverPanic(id, "exit")
		code, errText = wait()
		copies.Wait() // every byte logged before the exit is reported
		c.mu.Lock()
		partials := c.partials
		c.partials = nil
		c.mu.Unlock()
		c.outMu.Lock()
		for _, p := range partials {
			p.Flush()
		}
		c.lines = nil
		c.outMu.Unlock()
		c.endAttach()
		lw.Close()
		c.mu.Lock()
		lc := c.c
		c.mu.Unlock()
		if lc != nil {
			oom = oomKilled(lc)
			// Destroy also ends what is left in the cgroup (a container
			// sharing the host's PID namespace keeps its other
			// processes when its init ends).
			lc.Destroy()
		}
		unix.Unmount(c.rootfs, unix.MNT_DETACH)
	}()
}

// recoverPanic, deferred in a container's goroutine, keeps a bug in the
// handling of one container from taking down the monitor and with it
// every other container's supervision.
func (m *monitor) recoverPanic(id, what string) {
	if r := recover(); r != nil {
		m.log.Error("panic in a container's goroutine", "id", id, "goroutine", what, "panic", r, "stack", string(debug.Stack()))
	}
}

// logSink is where a container's output is stored.
type logSink interface {
	logs.EntryWriter
	Close() error
}

type noClose struct{ logs.EntryWriter }

func (noClose) Close() error { return nil }

// openLog opens the store of the container's log driver; a journal's
// entries take the epoch given (a random one if none).
func openLog(req *StartRequest, epoch string) (logSink, error) {
	switch req.LogDriver {
	case "none":
		return noClose{logs.Discard{}}, nil
	case "journald":
		return noClose{&logs.Journal{Fields: req.JournalFields, Epoch: epoch}}, nil
	}
	return logs.NewWriter(req.LogPath, req.LogMaxSize, req.LogMaxFile, req.LogCompress)
}

// oomKilled reads the kernel's OOM-kill counter of the container's memory
// cgroup ("oom_kill N": memory.oom_control on cgroup v1, memory.events on
// v2) before the cgroup goes.
func oomKilled(lc *libcontainer.Container) bool {
	st, err := lc.State()
	if err != nil {
		return false
	}
	var files []string
	if p := st.CgroupPaths["memory"]; p != "" {
		files = append(files, filepath.Join(p, "memory.oom_control"))
	}
	if p := st.CgroupPaths[""]; p != "" {
		files = append(files, filepath.Join(p, "memory.events"))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if n, ok := strings.CutPrefix(line, "oom_kill "); ok && strings.TrimSpace(n) != "0" {
				return true
			}
		}
	}
	return false
}

// persist writes a container's final state, for a daemon that was away
// (and for the next monitor, should this one go first), then drops its
// running record.
func (m *monitor) persist(c *ctr) {
	c.mu.Lock()
	st := c.state
	c.mu.Unlock()
	dir := m.ctrDir(st.ID)
	if err := writeJSONFile(filepath.Join(dir, "exit.json"), st); err != nil {
		m.log.Warn("container exit record", "id", st.ID, "err", err)
	}
	os.Remove(filepath.Join(dir, "record.json"))
	os.Remove(filepath.Join(dir, "stdout"))
	os.Remove(filepath.Join(dir, "stderr"))
}

func (m *monitor) handleState(w http.ResponseWriter, r *http.Request) {
	c := m.get(r.PathValue("id"))
	if c == nil {
		fail(w, errdefs.NotFound(fmt.Errorf("no such container in the monitor: %s", r.PathValue("id"))))
		return
	}
	c.mu.Lock()
	st := c.state
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, st)
}

func (m *monitor) handleWait(w http.ResponseWriter, r *http.Request) {
	c := m.get(r.PathValue("id"))
	if c == nil {
		fail(w, errdefs.NotFound(fmt.Errorf("no such container in the monitor: %s", r.PathValue("id"))))
		return
	}
	select {
	case <-c.done:
	case <-r.Context().Done():
		return
	}
	m.handleState(w, r)
}

func (m *monitor) handleSignal(w http.ResponseWriter, r *http.Request) {
	c := m.get(r.PathValue("id"))
	if c == nil {
		fail(w, errdefs.NotFound(fmt.Errorf("no such container in the monitor: %s", r.PathValue("id"))))
		return
	}
	sig, err := strconv.Atoi(r.URL.Query().Get("signal"))
	if err != nil || sig <= 0 || sig > 64 {
		fail(w, errdefs.InvalidParameter(fmt.Errorf("invalid signal %q", r.URL.Query().Get("signal"))))
		return
	}
	c.mu.Lock()
	lc, running := c.c, c.state.Running
	c.mu.Unlock()
	if !running || lc == nil {
		fail(w, errdefs.Conflict(fmt.Errorf("container %s is not running", r.PathValue("id"))))
		return
	}
	if err := lc.Signal(syscall.Signal(sig)); err != nil {
		if errors.Is(err, libcontainer.ErrNotRunning) {
			// Its init has just ended; the exit is on its way.
			fail(w, errdefs.Conflict(fmt.Errorf("container %s is not running", r.PathValue("id"))))
			return
		}
		fail(w, fmt.Errorf("signal container: %w", err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (m *monitor) handleForget(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	m.mu.Lock()
	c := m.ctrs[id]
	if c != nil {
		select {
		case <-c.done:
		default: // running, or starting
			m.mu.Unlock()
			fail(w, errdefs.Conflict(fmt.Errorf("container %s is running", id)))
			return
		}
		delete(m.ctrs, id)
	}
	delete(m.epochs, id)
	m.mu.Unlock()
	os.RemoveAll(m.ctrDir(id))
	w.WriteHeader(http.StatusNoContent)
}

func (m *monitor) handleList(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	var out []State
	for _, c := range m.ctrs {
		c.mu.Lock()
		out = append(out, c.state)
		c.mu.Unlock()
	}
	m.mu.Unlock()
	if out == nil {
		out = []State{}
	}
	writeJSON(w, http.StatusOK, out)
}

// handleFreeze pauses (freezes the cgroup) or resumes a container.
func (m *monitor) handleFreeze(pause bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		lc := m.running(w, r.PathValue("id"))
		if lc == nil {
			return
		}
		var err error
		if pause {
			err = lc.Pause()
		} else {
			err = lc.Resume()
		}
		if err != nil {
			fail(w, errdefs.Conflict(err))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// running returns the libcontainer container of a running container, or
// answers the error itself.
func (m *monitor) running(w http.ResponseWriter, id string) *libcontainer.Container {
	c := m.get(id)
	if c == nil {
		fail(w, errdefs.NotFound(fmt.Errorf("no such container in the monitor: %s", id)))
		return nil
	}
	c.mu.Lock()
	lc, running := c.c, c.state.Running
	c.mu.Unlock()
	if !running || lc == nil {
		fail(w, errdefs.Conflict(fmt.Errorf("container %s is not running", id)))
		return nil
	}
	return lc
}

// handleUpdate sets a running container's cgroup limits to the resources
// given (the whole set, not a difference). Device rules stay as they were.
func (m *monitor) handleUpdate(w http.ResponseWriter, r *http.Request) {
	lc := m.running(w, r.PathValue("id"))
	if lc == nil {
		return
	}
	var res specs.LinuxResources
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&res); err != nil {
		fail(w, errdefs.InvalidParameter(fmt.Errorf("resources: %w", err)))
		return
	}
	cg, err := specconv.CreateCgroupConfig(&specconv.CreateOpts{CgroupName: r.PathValue("id"), Spec: &specs.Spec{Linux: &specs.Linux{Resources: &res}}}, nil)
	if err != nil {
		fail(w, errdefs.InvalidParameter(err))
		return
	}
	cfg := lc.Config()
	next := *cfg.Cgroups
	nr := *cg.Resources
	nr.Devices, nr.SkipDevices = cfg.Cgroups.Resources.Devices, cfg.Cgroups.Resources.SkipDevices
	next.Resources = &nr
	cfg.Cgroups = &next
	if err := lc.Set(cfg); err != nil {
		fail(w, errdefs.Conflict(fmt.Errorf("set the container's cgroup limits: %w", err)))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleStats answers the container's cgroup statistics.
func (m *monitor) handleStats(w http.ResponseWriter, r *http.Request) {
	lc := m.running(w, r.PathValue("id"))
	if lc == nil {
		return
	}
	st, err := lc.Stats()
	if err != nil || st.CgroupStats == nil {
		fail(w, fmt.Errorf("container stats: %v", err))
		return
	}
	writeJSON(w, http.StatusOK, st.CgroupStats)
}

// handleProcesses answers the host PIDs of the container's processes.
func (m *monitor) handleProcesses(w http.ResponseWriter, r *http.Request) {
	lc := m.running(w, r.PathValue("id"))
	if lc == nil {
		return
	}
	pids, err := lc.Processes()
	if err != nil {
		fail(w, fmt.Errorf("container processes: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, pids)
}
