package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/containerd/platforms"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	networktypes "github.com/moby/moby/api/types/network"
	"github.com/opencontainers/cgroups"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	libseccomp "github.com/opencontainers/runc/libcontainer/seccomp"
	"golang.org/x/sys/unix"
)

// CreateOptions are what a create request gives besides the container's
// configuration.
type CreateOptions struct {
	Name string
	// Platform, when set, is the platform the image must be of (create's
	// platform query).
	Platform *ocispec.Platform
	// ReadOnlyNonRecursive makes read-only binds read-only at their top
	// only, as Docker does for clients before API 1.44.
	ReadOnlyNonRecursive bool
}

// Create records a container after checking everything that can be
// checked without running it; nothing is left behind if a check fails.
func (m *Manager) Create(ctx context.Context, opts CreateOptions, cfg *containertypes.Config, host *containertypes.HostConfig, netcfg *networktypes.NetworkingConfig) (c *Container, warnings []string, err error) {
	name := opts.Name
	if cfg == nil || cfg.Image == "" {
		return nil, nil, errdefs.InvalidParameter(errors.New("config cannot be empty in order to create a container"))
	}
	if host == nil {
		host = &containertypes.HostConfig{}
	}
	asked := host.NetworkMode
	if host.NetworkMode == "" || host.NetworkMode == "default" {
		host.NetworkMode = "bridge"
	}
	var eps map[string]*networktypes.EndpointSettings
	if netcfg != nil && len(netcfg.EndpointsConfig) > 0 {
		eps = map[string]*networktypes.EndpointSettings{}
		for k, v := range netcfg.EndpointsConfig {
			// The docker CLI names the network as the mode did: "default".
			if k == "default" || (k == string(asked) && asked != "") {
				k = string(host.NetworkMode)
			}
			if v != nil {
				eps[k] = v
			}
		}
	}
	linkWarnings, err := m.checkLinks(host, &eps)
	if err != nil {
		return nil, nil, err
	}
	if err := m.opts.Network.CheckCreate(host.NetworkMode, eps); err != nil {
		return nil, nil, err
	}
	if host.NetworkMode.IsContainer() {
		if err := m.checkContainerNetwork(cfg, host); err != nil {
			return nil, nil, err
		}
	}
	if host.PidsLimit != nil && *host.PidsLimit <= 0 {
		host.PidsLimit = nil // as Docker: 0 and -1 are no limit, shown as null
	}
	if host.UTSMode.IsHost() && cfg.Hostname != "" {
		return nil, nil, errdefs.InvalidParameter(errors.New("conflicting options: hostname and the UTS mode"))
	}
	if name != "" && !validName.MatchString(name) {
		return nil, nil, errdefs.InvalidParameter(fmt.Errorf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)) //lint:ignore ST1005 Docker's wording
	}
	name = strings.TrimPrefix(name, "/")
	img, err := m.images.Get(cfg.Image)
	if err != nil {
		return nil, nil, err
	}
	if p := opts.Platform; p != nil {
		have := ocispec.Platform{OS: img.Config.OS, Architecture: img.Config.Architecture, Variant: img.Config.Variant}
		if !platformMatches(*p, have) {
			// 404, as Docker: the docker CLI then pulls the image for
			// the platform asked for, and creates again.
			return nil, nil, errdefs.NotFound(fmt.Errorf("image with reference %s was found but its platform (%s) does not match the specified platform (%s)",
				cfg.Image, platforms.FormatAll(have), platforms.FormatAll(*p)))
		}
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
	if err := checkSettings(cfg, host); err != nil {
		return nil, nil, err
	}
	mergeImageConfig(cfg, img.Config.Config)
	if err := checkStorageOpt(m.root, host.StorageOpt); err != nil {
		return nil, nil, err
	}
	if warnings, err = adaptResources(&host.Resources, hostCgroups(), usesBFQ); err != nil {
		return nil, nil, err
	}
	if host.NetworkMode.IsHost() && len(host.PortBindings) > 0 {
		warnings = append(warnings, "Published ports are discarded when using host network mode")
	}
	warnings = append(warnings, linkWarnings...)
	// Docker's defaults, recorded so that inspect shows them: a private
	// IPC namespace, the masked and read-only /proc paths (none when
	// privileged).
	if host.IpcMode == "" {
		host.IpcMode = containertypes.IPCModePrivate
	}
	if host.MaskedPaths == nil && !host.Privileged {
		host.MaskedPaths = slices.Clone(defaultMaskedPaths)
	}
	if host.ReadonlyPaths == nil && !host.Privileged {
		host.ReadonlyPaths = slices.Clone(defaultReadonlyPaths)
	}
	if host.AutoRemove && host.RestartPolicy.Name != "" && host.RestartPolicy.Name != "no" {
		return nil, nil, errdefs.InvalidParameter(errors.New("can't create 'AutoRemove' container with restart policy"))
	}
	id := newID()
	if name == "" {
		name = id[:12]
	}
	if cfg.Hostname == "" {
		// Recorded as Docker records it, inspect shows it: the host's
		// name on its network, else the ID's first 12 characters.
		cfg.Hostname = id[:12]
		if host.NetworkMode.IsHost() {
			cfg.Hostname, _ = os.Hostname()
		}
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
	probe := volumeSpecMounts(vms, func(int) string { return "/" })
	if _, err := Spec(SpecInput{ID: id, Config: cfg, Host: specHost, Image: img.Config.Config, Volumes: probe, SeccompProfile: m.opts.SeccompProfile, NoSeccomp: !libseccomp.Enabled,
		ReadOnlyNonRecursive: opts.ReadOnlyNonRecursive}); err != nil {
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
		v, verr := m.vols.Create(vms[i].Name, vms[i].Labels, vms[i].DriverOptions)
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
		Config: cfg, HostConfig: host, Path: args[0], Args: args[1:], Volumes: vms,
		LogPath: filepath.Join(m.dir(id), id+"-json.log"), Networks: eps, ReadOnlyNonRecursive: opts.ReadOnlyNonRecursive}
	if err = c.State.transition(evCreate, outcome{}); err != nil {
		return nil, nil, err
	}
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

// platformMatches says whether an image of platform have runs as want, as
// Docker decides it: the platform or one it runs (an armv6 image on
// armv7), or, for an image that names no variant, the same OS and
// architecture.
func platformMatches(want, have ocispec.Platform) bool {
	if platforms.Only(want).Match(have) {
		return true
	}
	if have.Variant != "" {
		return false
	}
	w, h := platforms.Normalize(want), platforms.Normalize(have)
	return w.OS == h.OS && w.Architecture == h.Architecture
}

// mergeImageConfig completes a container's config with its image's, as
// Docker's create does and inspect then shows: the user, working
// directory, stop signal, command and entrypoint the request leaves out,
// the image's exposed ports, labels, volumes and environment variables
// that the request does not override, its health check's unset fields.
func mergeImageConfig(cfg *containertypes.Config, img dockerspec.DockerOCIImageConfig) {
	cfg.Env = imageEnv(cfg.Env, img.Env)
	for _, f := range []struct {
		dst *string
		src string
	}{{&cfg.User, img.User}, {&cfg.WorkingDir, img.WorkingDir}, {&cfg.StopSignal, img.StopSignal}} {
		if *f.dst == "" {
			*f.dst = f.src
		}
	}
	for p := range img.ExposedPorts {
		if port, err := networktypes.ParsePort(p); err == nil {
			if cfg.ExposedPorts == nil {
				cfg.ExposedPorts = networktypes.PortSet{}
			}
			cfg.ExposedPorts[port] = struct{}{}
		}
	}
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	for k, v := range img.Labels {
		if _, ok := cfg.Labels[k]; !ok {
			cfg.Labels[k] = v
		}
	}
	for p := range img.Volumes {
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		cfg.Volumes[p] = struct{}{}
	}
	// As Docker: an entrypoint given keeps the image's command out; an
	// empty one given ("--entrypoint ''") keeps the image's entrypoint out.
	if len(cfg.Entrypoint) == 0 {
		if len(cfg.Cmd) == 0 {
			cfg.Cmd = img.Cmd
		}
		if cfg.Entrypoint == nil {
			cfg.Entrypoint = img.Entrypoint
		}
	}
	if h := img.Healthcheck; h != nil {
		if cfg.Healthcheck == nil {
			cfg.Healthcheck = &containertypes.HealthConfig{}
		}
		c := cfg.Healthcheck
		if len(c.Test) == 0 {
			c.Test = h.Test
		}
		for _, f := range []struct {
			dst *time.Duration
			src time.Duration
		}{
			{&c.Interval, h.Interval}, {&c.Timeout, h.Timeout}, {&c.StartPeriod, h.StartPeriod}, {&c.StartInterval, h.StartInterval}} {
			if *f.dst == 0 {
				*f.dst = f.src
			}
		}
		if c.Retries == 0 {
			c.Retries = h.Retries
		}
	}
}

// imageEnv is a container's environment as Docker records it at create,
// and inspect shows it: the request's entries, then the image's that
// none of them overrides.
func imageEnv(req, img []string) []string {
	if len(req) == 0 {
		return slices.Clone(img)
	}
	out := slices.Clip(req)
	for _, kv := range img {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.ContainsFunc(req, func(e string) bool { ek, _, _ := strings.Cut(e, "="); return ek == k }) {
			out = append(out, kv)
		}
	}
	return out
}

// checkSettings refuses, with Docker's words and 400, the values Docker
// refuses at create that nothing else here would catch.
func checkSettings(cfg *containertypes.Config, host *containertypes.HostConfig) error {
	for _, e := range cfg.Env {
		if k, _, _ := strings.Cut(e, "="); k == "" {
			return errdefs.InvalidParameter(fmt.Errorf("invalid environment variable: %s", e))
		}
	}
	if err := checkHealthConfig(cfg.Healthcheck); err != nil {
		return errdefs.InvalidParameter(err)
	}
	switch {
	case !host.PidMode.Valid():
		return errdefs.InvalidParameter(fmt.Errorf("invalid PID mode: %v", host.PidMode))
	case !host.IpcMode.Valid():
		return errdefs.InvalidParameter(fmt.Errorf("invalid IPC mode: %v", host.IpcMode))
	case !host.UTSMode.Valid():
		return errdefs.InvalidParameter(fmt.Errorf("invalid UTS mode: %v", host.UTSMode))
	case host.OomScoreAdj < -1000 || host.OomScoreAdj > 1000:
		return errdefs.InvalidParameter(fmt.Errorf("invalid value %d, range for oom score adj is [-1000, 1000]", host.OomScoreAdj))
	case host.ShmSize < 0:
		return errdefs.InvalidParameter(errors.New("SHM size can not be less than 0"))
	case host.CPUShares < 0:
		return errdefs.InvalidParameter(fmt.Errorf("invalid CPU shares (%d): value must be a positive integer", host.CPUShares))
	case host.Memory < 0 || host.MemoryReservation < 0 || host.NanoCPUs < 0 || host.CPUQuota < 0 && host.CPUQuota != -1 || host.CPUPeriod < 0:
		return errdefs.InvalidParameter(errors.New("invalid resource value: memory, memory reservation, CPUs, CPU quota and CPU period cannot be negative"))
	// Docker's answers on Linux, where these are Windows' (its runconfig's
	// words, which a create request meets first).
	case !host.Isolation.IsValid():
		return errdefs.InvalidParameter(fmt.Errorf("invalid isolation (%s): linux only supports 'default'", host.Isolation))
	case host.IOMaximumBandwidth != 0:
		return errdefs.InvalidParameter(errors.New("invalid option: QoS maximum bandwidth configuration is not supported on linux"))
	case host.IOMaximumIOps != 0:
		return errdefs.InvalidParameter(errors.New("invalid option: QoS maximum IOPs configuration is not supported on linux"))
	case host.CPUCount != 0:
		// Docker on Linux drops it without a word; refused in the words
		// of its other Windows-only resources.
		return errdefs.InvalidParameter(errors.New("invalid option: CPU count is not supported on linux"))
	}
	switch host.Runtime {
	// The engine runs every container with its own libcontainer: runc,
	// under either of the names Docker knows it by.
	case "", "runc", "io.containerd.runc.v2":
	default:
		return errdefs.InvalidParameter(fmt.Errorf("unknown or invalid runtime name: %s", host.Runtime))
	}
	if host.Cgroup != "" {
		if !host.Cgroup.IsContainer() || host.Cgroup.Container() == "" {
			return errdefs.InvalidParameter(fmt.Errorf("invalid cgroup spec %q: want container:NAME", host.Cgroup))
		}
		return errdefs.NotImplemented(fmt.Errorf("Cgroup %q (running in another container's cgroup) is not implemented", host.Cgroup)) //lint:ignore ST1005 the field's name
	}
	// No device driver is part of the engine (no NVIDIA or AMD hook, no
	// CDI): Docker's answer where none matches.
	if len(host.DeviceRequests) > 0 {
		d := host.DeviceRequests[0]
		return errdefs.InvalidParameter(fmt.Errorf("could not select device driver %q with capabilities: %v", d.Driver, d.Capabilities))
	}
	return nil
}

// checkStorageOpt answers --storage-opt as Docker's overlay2 driver does
// where the data root is not xfs with project quotas: "size" cannot be
// honoured and any other option is unknown. On xfs the size could be, but
// the engine sets no quotas: 501.
func checkStorageOpt(dataRoot string, opts map[string]string) error {
	if len(opts) == 0 {
		return nil
	}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, strings.ToLower(k))
	}
	slices.Sort(keys)
	if _, ok := opts["size"]; ok {
		var st unix.Statfs_t
		if unix.Statfs(dataRoot, &st) == nil && st.Type == unix.XFS_SUPER_MAGIC {
			return errdefs.NotImplemented(errors.New("--storage-opt size (an xfs project quota on the container's layer) is not implemented"))
		}
		return errors.New("--storage-opt is supported only for overlay over xfs with 'pquota' mount option") // Docker's status too: 500
	}
	return errdefs.InvalidParameter(fmt.Errorf("Unknown option %s", keys[0])) //lint:ignore ST1005 Docker's wording
}
