package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/balena-os/balena-engine/src/container"
	"github.com/balena-os/balena-engine/src/events"
	"github.com/balena-os/balena-engine/src/image"
	"github.com/balena-os/balena-engine/src/layer"
	"github.com/balena-os/balena-engine/src/network"
	"github.com/balena-os/balena-engine/src/network/dns"
	"github.com/balena-os/balena-engine/src/registry"
	"github.com/balena-os/balena-engine/src/runtime"
	"github.com/balena-os/balena-engine/src/version"
	"github.com/balena-os/balena-engine/src/volume"
	containertypes "github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	"golang.org/x/time/rate"
)

// engine holds the daemon's stores.
type engine struct {
	events     *events.Log
	containers *container.Manager
	volumes    *volume.Store
	network    *network.Manager
	db         *bolt.DB
	layers     *layer.Store
	images     *image.Store
	registry   *registry.Client
	pull       image.PullOptions
	rt         *runtime.Client
}

// openEngine opens the metadata database (every transaction is synced to
// disk on commit) and the stores, running their crash recovery.
func openEngine(cfg *Config, log *slog.Logger) (*engine, error) {
	path := filepath.Join(cfg.DataRoot, "engine.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("data root %s is in use by another daemon (%s is locked)", cfg.DataRoot, path)
	}
	if err != nil {
		return nil, fmt.Errorf("open metadata database: %w", err)
	}
	e := &engine{db: db, events: events.New(1000)}
	sync := layer.SyncFS
	if cfg.LayerSync == "fsync" {
		sync = layer.SyncFiles
	}
	prio, _ := layer.ParseIOPriority(cfg.PullIOPriority) // checked with the configuration
	if e.layers, err = layer.Open(filepath.Join(cfg.DataRoot, "layers"), db, layer.Options{Sync: sync, IOPriority: prio}); err != nil {
		db.Close()
		return nil, err
	}
	if e.images, err = image.Open(db, e.layers, log); err != nil {
		db.Close()
		return nil, err
	}
	e.images.Notify = func(action eventtypes.Action, id string, attrs map[string]string) {
		e.events.Publish(eventtypes.ImageEventType, action, id, attrs)
	}
	e.registry, err = registry.New(registry.Options{
		Mirrors:     cfg.RegistryMirrors,
		Insecure:    cfg.InsecureRegistries,
		MaxAttempts: cfg.MaxDownloadAttempts,
		UserAgent:   "balena-engine/" + version.Version,
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		db.Close()
		return nil, err
	}
	rt, there, err := runtime.Connect(context.Background(), filepath.Join(cfg.ExecRoot, "monitor"), self)
	e.rt = rt
	switch {
	case err != nil:
		// Its containers are still followed, by the old binary.
		log.Error("the container monitor could not move to this engine's binary", "err", err)
	case there:
		log.Info("reconnected to the container monitor (live restore)")
	}
	if e.volumes, err = volume.Open(filepath.Join(cfg.DataRoot, "volumes"), db); err != nil {
		db.Close()
		return nil, err
	}
	e.volumes.Notify = func(action, name string, attrs map[string]string) {
		e.events.Publish(eventtypes.VolumeEventType, eventtypes.Action(action), name, attrs)
	}
	seccomp := cfg.SeccompProfile
	if cfg.seccompJSON != "" {
		seccomp = cfg.seccompJSON
	}
	if e.network, err = network.New(network.Options{DB: db, ExecRoot: cfg.ExecRoot, Log: log, Bridge: cfg.Bridge,
		BIP: cfg.net.bip, FixedCIDR: cfg.net.fixedCIDR, IPv6: cfg.IPv6, FixedCIDRv6: cfg.net.fixedCIDRv6, MTU: cfg.MTU, Pools: cfg.net.pools, ICC: cfg.ICC, IPMasq: cfg.IPMasq,
		IPForward: cfg.IPForward, IPTables: cfg.IPTables, FirewallBackend: cfg.FirewallBackend, DNS: cfg.DNS, DNSSearch: cfg.DNSSearch, DNSOptions: cfg.DNSOptions,
		PublishDNS: func(t *dns.Table) error {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return rt.SetDNS(ctx, t)
		}}); err != nil {
		db.Close()
		return nil, fmt.Errorf("networking: %w", err)
	}
	if e.containers, err = container.Open(context.Background(), container.Options{
		Root: filepath.Join(cfg.DataRoot, "containers"), DB: db, Images: e.images, Volumes: e.volumes, Runtime: rt, Log: log,
		Notify: func(action eventtypes.Action, id string, attrs map[string]string) {
			e.events.Publish(eventtypes.ContainerEventType, action, id, attrs)
		},
		DefaultInit: cfg.Init, InitPath: cfg.InitPath,
		DefaultLogConfig: containertypes.LogConfig{Type: cfg.LogDriver, Config: cfg.LogOpts},
		SeccompProfile:   seccomp, CgroupParent: cfg.CgroupParent, Network: e.network,
		CPURealtimePeriod: cfg.CPURealtimePeriod, CPURealtimeRuntime: cfg.CPURealtimeRuntime,
	}); err != nil {
		db.Close()
		return nil, err
	}
	// After the containers were reconciled (ended ones left their
	// sandboxes): the monitor serves the names of those that run.
	e.network.SyncDNS(there)
	e.pull.MaxConcurrent = cfg.MaxConcurrentDownloads
	if bw, _ := cfg.bandwidth(); bw > 0 {
		// A tenth of a second's worth at once keeps the flow smooth.
		e.pull.Limiter = rate.NewLimiter(rate.Limit(bw), int(max(bw/10, 32<<10)))
	}
	return e, nil
}

func (e *engine) close() { e.db.Close() }

// healthy checks what the watchdog vouches for: the API answers /_ping on
// its own socket (the accept loop and the handlers), and the database
// answers a read. A read transaction never waits for a writer, so a long
// pull committing layers on a slow disk does not fail the check; a
// database that is wedged (its file unreadable, its mapping gone) does.
func (e *engine) healthy(ctx context.Context, sock string) error {
	if sock != "" {
		tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}, DisableKeepAlives: true}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://engine/_ping", nil)
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return fmt.Errorf("API: %w", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("API: /_ping answered %s", resp.Status)
		}
	}
	done := make(chan error, 1)
	go func() {
		done <- e.db.View(func(tx *bolt.Tx) error {
			if tx.Size() <= 0 {
				return errors.New("empty database")
			}
			return nil
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("database: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("database: no answer: %w", ctx.Err())
	}
}
