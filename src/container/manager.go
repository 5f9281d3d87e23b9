package container

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/image"
	"github.com/balena-os/balena-engine/src/network"
	"github.com/balena-os/balena-engine/src/runtime"
	"github.com/balena-os/balena-engine/src/volume"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	bolt "go.etcd.io/bbolt"
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
	// CPURealtimePeriod and CPURealtimeRuntime (µs), when set, are the
	// real-time budget given on cgroup v1 to each cgroup from the root
	// down to a container's parent at its start, as dockerd's
	// --cpu-rt-period and --cpu-rt-runtime: a container's own real-time
	// limits need its parent to have one.
	CPURealtimePeriod, CPURealtimeRuntime int64
	// Network gives containers their network sandboxes.
	Network *network.Manager
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

// updateOrLog changes a record where the caller cannot do better than
// say that the change was lost (the disk is full): the record keeps its
// last state, which the next daemon start reconciles.
func (m *Manager) updateOrLog(id string, fn func(*Container) error) {
	if _, err := m.records.update(id, fn); err != nil && errdefs.KindOf(err) != errdefs.KindNotFound {
		m.log.Error("container record not updated", "id", id, "err", err)
	}
}

// usesInit says whether a container runs under docker-init (--init, or the
// daemon's --init).
func (m *Manager) usesInit(c *Container) bool {
	if c.HostConfig.Init != nil {
		return *c.HostConfig.Init
	}
	return m.opts.DefaultInit
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
