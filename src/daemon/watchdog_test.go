package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// notifySocket listens where sd_notify writes and returns the messages.
func notifySocket(t *testing.T) <-chan string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: p, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", p)
	out := make(chan string, 100)
	go func() {
		buf := make([]byte, 256)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			out <- string(buf[:n])
		}
	}()
	return out
}

// The watchdog is pinged only after a check that passed; a failing or
// hanging check costs the ping, and the pings resume when it passes.
func TestWatchdogPingsOnlyWhenHealthy(t *testing.T) {
	msgs := notifySocket(t)
	var healthy atomic.Bool
	var hang atomic.Bool
	checks := make(chan struct{}, 100)
	check := func(ctx context.Context) error {
		checks <- struct{}{}
		if hang.Load() {
			<-ctx.Done() // answers only when its time is up
			return ctx.Err()
		}
		if !healthy.Load() {
			return errors.New("not answering")
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go petWatchdog(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), 40*time.Millisecond, check)
	waitChecks := func(n int) {
		for range n {
			select {
			case <-checks:
			case <-time.After(5 * time.Second):
				t.Fatal("no health check")
			}
		}
	}
	noPing := func(what string) {
		select {
		case m := <-msgs:
			t.Fatalf("%s: pinged (%q)", what, m)
		default:
		}
	}
	waitChecks(3)
	noPing("failing check")
	hang.Store(true)
	waitChecks(3)
	noPing("hanging check")
	hang.Store(false)
	healthy.Store(true)
	select {
	case m := <-msgs:
		if !strings.Contains(m, "WATCHDOG=1") {
			t.Errorf("message %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no ping once the check passed")
	}
}

// The engine's check: the API answers on its socket and the database
// answers a read, even while a long write transaction (a pull committing
// on a slow disk) is open; a hung API fails it within its time.
func TestEngineHealthy(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, "engine.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	e := &engine{db: db}
	sock := filepath.Join(dir, "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var stall atomic.Bool
	release := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if stall.Load() {
			<-release
		}
		w.Write([]byte("OK"))
	})}
	go srv.Serve(l)
	defer srv.Close()
	defer close(release)

	tx, err := db.Begin(true) // a writer that does not finish
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.healthy(ctx, sock); err != nil {
		t.Errorf("healthy engine with a long write open: %v", err)
	}
	stall.Store(true)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if err := e.healthy(ctx2, sock); err == nil || !strings.Contains(err.Error(), "API") {
		t.Errorf("hung API: %v", err)
	}
}
