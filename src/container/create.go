package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	networktypes "github.com/moby/moby/api/types/network"
	"github.com/opencontainers/cgroups"
	libseccomp "github.com/opencontainers/runc/libcontainer/seccomp"
)

// Create records a container after checking everything that can be
// checked without running it; nothing is left behind if a check fails.
func (m *Manager) Create(ctx context.Context, name string, cfg *containertypes.Config, host *containertypes.HostConfig, netcfg *networktypes.NetworkingConfig) (c *Container, warnings []string, err error) {
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
	if err := m.opts.Network.CheckCreate(host.NetworkMode, eps); err != nil {
		return nil, nil, err
	}
	if host.NetworkMode.IsContainer() {
		if err := m.checkContainerNetwork(cfg, host); err != nil {
			return nil, nil, err
		}
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
		Config: cfg, HostConfig: host, Path: args[0], Args: args[1:], Volumes: vms,
		LogPath: filepath.Join(m.dir(id), id+"-json.log"), Networks: eps}
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
