// Package daemon wires the engine together: it reads the configuration
// (dockerd's flag names and /etc/balena-engine/daemon.json), opens the API
// sockets (unix paths or systemd socket activation), claims the PID file and
// the state directories, serves the API, tells systemd when it is ready, and
// shuts down cleanly on SIGINT or SIGTERM.
//
// Start-up is ordered so that a failure leaves nothing behind: sockets
// first (the most likely to fail on a bad -H), then the PID file, then the
// directories; each step is undone if a later one fails.
package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/balena-os/balena-engine/src/api"
	"github.com/balena-os/balena-engine/src/randid"
	"github.com/balena-os/balena-engine/src/version"
	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
)

// Main runs the daemon role with its arguments and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	cfg, err := ParseConfig(args, stderr)
	if errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "balena-engine daemon: %v\n", err)
		return 2
	}
	log := newLogger(stderr, cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, cfg, log); err != nil {
		log.Error("daemon exited", "err", err)
		fmt.Fprintf(stderr, "balena-engine daemon: %v\n", err)
		return 1
	}
	return 0
}

func newLogger(w io.Writer, level string) *slog.Logger {
	lv := map[string]slog.Level{
		"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn,
		"error": slog.LevelError, "fatal": slog.LevelError + 4,
	}[level]
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lv}))
}

// Run serves until ctx is cancelled or a listener fails.
func Run(ctx context.Context, cfg *Config, log *slog.Logger) error {
	lns, err := openListeners(cfg.Hosts)
	if err != nil {
		return err
	}
	defer func() {
		for _, l := range lns {
			l.Close() // also removes the socket files this process created
		}
	}()

	removePid, err := writePidfile(cfg.Pidfile)
	if err != nil {
		return err
	}
	defer removePid()

	undoData, err := mkdirs(cfg.DataRoot, 0o710)
	if err != nil {
		return fmt.Errorf("create data root: %w", err)
	}
	// One made by an older engine (0711) is narrowed too: containers'
	// files must not be reachable by other users (CVE-2021-41091).
	if err := narrowMode(cfg.DataRoot, 0o710); err != nil {
		undoData()
		return fmt.Errorf("data root: %w", err)
	}
	if _, err := mkdirs(cfg.ExecRoot, 0o700); err != nil {
		undoData()
		return fmt.Errorf("create exec root: %w", err)
	}

	// As dockerd: the OOM killer takes applications before the engine
	// that restarts them (the monitor, started from here, goes lower).
	if err := os.WriteFile("/proc/self/oom_score_adj", []byte("-500"), 0); err != nil {
		log.Warn("cannot lower the daemon's OOM score", "err", err)
	}

	eng, err := openEngine(cfg, log)
	if err != nil {
		undoData()
		return err
	}
	defer eng.close()

	srv := &http.Server{
		Handler: api.New(api.Config{
			Version:       version.Get(),
			KernelVersion: kernelVersion(),
			Log:           log,
			Images:        eng.images,
			Events:        eng.events,
			Containers:    eng.containers,
			Volumes:       eng.volumes,
			Networks:      eng.network,
			DataRoot:      cfg.DataRoot,
			Debug:         cfg.Debug,
			EngineID:      engineID(cfg.DataRoot),
			Registry:      eng.registry,
			Pull:          eng.pull,
		}),
		ReadHeaderTimeout: 30 * time.Second,
	}
	errc := make(chan error, len(lns))
	for _, l := range lns {
		go func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve %s: %w", l.host, err)
			}
		}()
		log.Info("API listen on " + l.Addr().String())
	}
	if _, err := sddaemon.SdNotify(false, sddaemon.SdNotifyReady); err != nil {
		log.Warn("sd_notify READY failed", "err", err)
	}
	var sock string
	for _, l := range lns {
		if a, ok := l.Addr().(*net.UnixAddr); ok && a.Name != "" {
			sock = a.Name
			break
		}
	}
	go watchdog(ctx, log, func(ctx context.Context) error { return eng.healthy(ctx, sock) })
	log.Info("daemon has completed initialization", "version", version.Get().String(),
		"data-root", cfg.DataRoot)

	select {
	case <-ctx.Done():
		log.Info("processing signal, shutting down")
	case err = <-errc:
	}
	sddaemon.SdNotify(false, sddaemon.SdNotifyStopping)
	eng.rt.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil && err == nil {
		err = fmt.Errorf("shut down API server: %w", serr)
	}
	return err
}

// watchdog pets systemd's watchdog at half its interval, when one is set,
// and only after check says the engine answers: a daemon whose API or
// database hangs is restarted by systemd rather than kept alive by a
// timer. Each check has the rest of the interval; one that does not
// finish in time costs this ping, not the next.
func watchdog(ctx context.Context, log *slog.Logger, check func(context.Context) error) {
	interval, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil || interval == 0 {
		return
	}
	petWatchdog(ctx, log, interval, check)
}

func petWatchdog(ctx context.Context, log *slog.Logger, interval time.Duration, check func(context.Context) error) {
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, interval/2)
		err := check(cctx)
		cancel()
		if err != nil {
			log.Warn("health check failed; not pinging systemd's watchdog", "err", err)
			continue
		}
		if _, err := sddaemon.SdNotify(false, sddaemon.SdNotifyWatchdog); err != nil {
			log.Warn("sd_notify WATCHDOG failed", "err", err)
		}
	}
}

// engineID is this engine's identity, made once and kept in the data root.
func engineID(dataRoot string) string {
	p := filepath.Join(dataRoot, "engine-id")
	if b, err := os.ReadFile(p); err == nil && len(bytes.TrimSpace(b)) > 0 {
		return string(bytes.TrimSpace(b))
	}
	var b [16]byte
	randid.Read(b[:])
	id := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
	os.WriteFile(p, []byte(id+"\n"), 0o644)
	return id
}

// mkdirs creates path and its missing parents. The returned function removes
// what it created, for a start-up that fails before anything uses it.
func mkdirs(path string, mode os.FileMode) (undo func(), err error) {
	first := "" // the outermost directory this call creates
	for p := path; ; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil || p == filepath.Dir(p) {
			break
		}
		first = p
	}
	if err := os.MkdirAll(path, mode); err != nil {
		if first != "" {
			os.RemoveAll(first)
		}
		return nil, err
	}
	return func() {
		if first != "" {
			os.RemoveAll(first)
		}
	}, nil
}

// narrowMode takes from dir's permissions what mode does not allow; it
// never widens them.
func narrowMode(dir string, mode os.FileMode) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&^mode != 0 {
		return os.Chmod(dir, perm&mode)
	}
	return nil
}

func kernelVersion() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return strings.TrimRight(string(u.Release[:]), "\x00")
}
