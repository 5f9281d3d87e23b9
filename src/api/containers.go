package api

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/balena-os/balena-engine/src/apiversion"
	"github.com/balena-os/balena-engine/src/container"
	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/logs"
	"github.com/balena-os/balena-engine/src/stdstream"
	"github.com/containerd/platforms"
	"github.com/docker/go-units"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	networktypes "github.com/moby/moby/api/types/network"
	"github.com/opencontainers/go-digest"
)

func (s *Server) registerContainers() {
	s.handle("POST /containers/create", s.containerCreate)
	s.handle("GET /containers/json", s.containerList)
	s.handle("POST /containers/prune", s.containerPrune)
	s.handle("POST /containers/{id}/start", s.containerStart)
	s.handle("POST /containers/{id}/stop", s.containerStop)
	s.handle("POST /containers/{id}/restart", s.containerRestart)
	s.handle("POST /containers/{id}/kill", s.containerKill)
	s.handle("POST /containers/{id}/wait", s.containerWait)
	s.handle("POST /containers/{id}/rename", s.containerRename)
	s.handle("POST /containers/{id}/update", s.containerUpdate)
	s.handle("POST /containers/{id}/attach", s.containerAttach)
	s.handle("GET /containers/{id}/attach/ws", s.containerAttachWS)
	s.handle("GET /containers/{id}/top", func(w http.ResponseWriter, r *http.Request) error {
		top, err := s.cfg.Containers.Top(r.Context(), r.PathValue("id"), r.URL.Query().Get("ps_args"))
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, top)
	})
	s.handle("GET /containers/{id}/stats", s.containerStats)
	s.handle("HEAD /containers/{id}/archive", s.archiveStat)
	s.handle("GET /containers/{id}/archive", s.archiveGet)
	s.handle("PUT /containers/{id}/archive", s.archivePut)
	s.handle("GET /containers/{id}/export", s.containerExport)
	s.handle("GET /containers/{id}/changes", func(w http.ResponseWriter, r *http.Request) error {
		ch, err := s.cfg.Containers.Changes(r.PathValue("id"))
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, ch)
	})
	s.handle("POST /containers/{id}/resize", func(w http.ResponseWriter, r *http.Request) error {
		h, wd, err := termSize(r)
		if err != nil {
			return err
		}
		return okStatus(w, s.cfg.Containers.Resize(r.Context(), r.PathValue("id"), h, wd))
	})
	s.handle("POST /containers/{id}/pause", func(w http.ResponseWriter, r *http.Request) error {
		return noContent(w, s.cfg.Containers.Pause(r.Context(), r.PathValue("id")))
	})
	s.handle("POST /containers/{id}/unpause", func(w http.ResponseWriter, r *http.Request) error {
		return noContent(w, s.cfg.Containers.Unpause(r.Context(), r.PathValue("id")))
	})
	s.handle("GET /containers/{id}/json", s.containerInspect)
	s.handle("GET /containers/{id}/logs", s.containerLogs)
	s.handle("DELETE /containers/{id}", s.containerDelete)
}

// maxBody bounds a JSON request body. Docker sets none; a real one (a
// create with its environment, labels and mounts) is a few KiB, and a
// bound keeps a broken or hostile client from making the daemon hold an
// unbounded document.
const maxBody = 4 << 20

// errBodyTooLarge answers 413.
var errBodyTooLarge = fmt.Errorf("request body is larger than the limit of %d bytes", maxBody)

// decodeBody reads a JSON request body of at most maxBody bytes into v,
// answering 400 with Docker's wording when it is missing or malformed, and
// 413 when it is too large.
func decodeBody(r *http.Request, v any) error {
	return decodeJSON(r, v, false)
}

// decodeOptionalBody is decodeBody for a request whose body may be empty.
func decodeOptionalBody(r *http.Request, v any) error {
	return decodeJSON(r, v, true)
}

func decodeJSON(r *http.Request, v any, optional bool) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	err := dec.Decode(v)
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil && dec.More():
		// As Docker: one JSON value, nothing after it.
		return errdefs.InvalidParameter(errors.New("unexpected content after JSON"))
	case err == nil:
		return nil
	case errors.As(err, &tooLarge):
		return errdefs.InvalidParameter(errBodyTooLarge)
	case errors.Is(err, io.EOF) && optional:
		return nil
	case errors.Is(err, io.EOF):
		return errdefs.InvalidParameter(errors.New("invalid JSON: got EOF while reading request body"))
	}
	return errdefs.InvalidParameter(fmt.Errorf("invalid JSON: %w", err))
}

// strSlices turns the given top-level fields of a JSON object from a
// string into a one-element list: Docker's strslice takes both forms, and
// balena's device agent sends "Entrypoint": "" for an image without one
// (which resets the image's entrypoint). Anything else is left as it is.
func strSlices(raw json.RawMessage, keys ...string) json.RawMessage {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return raw
	}
	changed := false
	for _, k := range keys {
		var str string
		if v, ok := obj[k]; ok && len(v) > 0 && v[0] == '"' && json.Unmarshal(v, &str) == nil {
			obj[k], _ = json.Marshal([]string{str})
			changed = true
		}
	}
	if !changed {
		return raw
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return raw
	}
	return out
}

func (s *Server) containerCreate(w http.ResponseWriter, r *http.Request) error {
	var raw json.RawMessage
	if err := decodeBody(r, &raw); err != nil {
		return err
	}
	var req containertypes.CreateRequest
	if err := json.Unmarshal(strSlices(raw, "Entrypoint", "Cmd", "Shell"), &req); err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid JSON: %w", err))
	}
	if req.Config == nil {
		return errdefs.InvalidParameter(errors.New("config cannot be empty in order to create a container"))
	}
	version := RequestVersion(r.Context())
	if err := olderClients(version, &req); err != nil {
		return err
	}
	legacyWarnings, err := legacyFields(raw, version, &req)
	if err != nil {
		return err
	}
	opts := container.CreateOptions{Name: r.URL.Query().Get("name"),
		// Before 1.44 read-only binds were read-only at their top only.
		ReadOnlyNonRecursive: apiversion.Compare(version, "1.44") < 0}
	if p := r.URL.Query().Get("platform"); p != "" && apiversion.Compare(version, "1.41") >= 0 {
		pl, err := platforms.Parse(p)
		if err != nil {
			return errdefs.InvalidParameter(err)
		}
		opts.Platform = &pl
	}
	c, warnings, err := s.cfg.Containers.Create(r.Context(), opts, req.Config, req.HostConfig, req.NetworkingConfig)
	if err != nil {
		return err
	}
	// As Docker: the daemon's warnings, then the request's.
	warnings = append(warnings, legacyWarnings...)
	if warnings == nil {
		warnings = []string{}
	}
	return writeJSON(w, http.StatusCreated, containertypes.CreateResponse{ID: c.ID, Warnings: warnings})
}

// olderClients gives a create request what Docker gives a client of an
// older API version: the defaults it expects, and none of the fields it
// could not have meant (or Docker's 400 where it refuses one).
func olderClients(version string, req *containertypes.CreateRequest) error {
	if req.HostConfig == nil {
		req.HostConfig = &containertypes.HostConfig{}
	}
	host := req.HostConfig
	older := func(v string) bool { return apiversion.Compare(version, v) < 0 }
	for i := range host.Mounts {
		m := &host.Mounts[i]
		if bo := m.BindOptions; bo != nil {
			if older("1.40") {
				bo.NonRecursive = false
			}
			if older("1.42") {
				bo.CreateMountpoint = false
			}
			if older("1.44") && bo.ReadOnlyForceRecursive {
				return errdefs.InvalidParameter(errors.New("BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer"))
			}
		}
		if older("1.45") && m.VolumeOptions != nil && m.VolumeOptions.Subpath != "" {
			return errdefs.InvalidParameter(errors.New("VolumeOptions.Subpath needs API v1.45 or newer"))
		}
		if older("1.42") {
			// Not checked before 1.42: dropped, as Docker drops them.
			if m.Type != mount.TypeVolume {
				m.VolumeOptions = nil
			}
			if m.Type != mount.TypeTmpfs {
				m.TmpfsOptions = nil
			}
			if m.Type != mount.TypeBind {
				m.BindOptions = nil
			}
			continue
		}
		for _, o := range []struct {
			set  bool
			name string
			of   mount.Type
		}{{m.VolumeOptions != nil, "VolumeOptions", mount.TypeVolume}, {m.BindOptions != nil, "BindOptions", mount.TypeBind}, {m.TmpfsOptions != nil, "TmpfsOptions", mount.TypeTmpfs}} {
			if o.set && m.Type != o.of {
				return errdefs.InvalidParameter(fmt.Errorf("%s must not be specified on mount type %q", o.name, m.Type))
			}
		}
	}
	if older("1.40") && host.IpcMode == "" {
		// The default IPC mode was "shareable" then.
		host.IpcMode = containertypes.IPCModeShareable
	}
	if older("1.42") {
		host.ConsoleSize = [2]uint{} // not read on Linux before 1.42
	}
	if older("1.44") && req.Config.Healthcheck != nil {
		req.Config.Healthcheck.StartInterval = 0 // added in 1.44
	}
	if older("1.48") && req.NetworkingConfig != nil {
		for _, ep := range req.NetworkingConfig.EndpointsConfig {
			if ep != nil {
				ep.GwPriority = 0 // added in 1.48
			}
		}
	}
	return nil
}

// legacyFields reads what older clients send in a create body and the API
// types the engine is built on no longer have, so that it is not lost
// without a word. Kernel memory limits (docker 20.10's --kernel-memory,
// --kernel-memory-tcp) cannot be set: libcontainer ignores them (they are
// deprecated since Linux 5.4 and absent from cgroup v2), so they are
// discarded with the warnings Docker gives where the kernel lacks them.
// The container-wide MAC address is the main network's endpoint's.
func legacyFields(raw json.RawMessage, version string, req *containertypes.CreateRequest) ([]string, error) {
	var legacy struct {
		MacAddress string
		HostConfig *struct{ KernelMemory, KernelMemoryTCP int64 }
	}
	_ = json.Unmarshal(raw, &legacy) // the body was decoded already: a bad field here is one of these
	var warnings []string
	if w, err := containerMAC(version, req, legacy.MacAddress); err != nil {
		return nil, err
	} else if w != "" {
		warnings = append(warnings, w)
	}
	if h := legacy.HostConfig; h != nil {
		warnings = append(warnings, kernelMemoryWarnings(h.KernelMemory, h.KernelMemoryTCP, version)...)
	}
	return warnings, nil
}

// kernelMemoryWarnings are Docker's warnings for kernel memory limits,
// which are discarded.
func kernelMemoryWarnings(kmem, kmemTCP int64, version string) []string {
	var warnings []string
	if kmem > 0 {
		warnings = append(warnings, "Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. Limitation discarded.")
	}
	// Docker reads KernelMemoryTCP from API 1.40 on.
	if kmemTCP > 0 && apiversion.Compare(version, "1.40") >= 0 {
		warnings = append(warnings, "Your kernel does not support kernel memory TCP limit capabilities or the cgroup is not mounted. Limitation discarded.")
	}
	return warnings
}

// containerMAC moves a container-wide MAC address (Config.MacAddress,
// docker 20.10's --mac-address) to the main network's endpoint, as Docker
// does: before API 1.44 it is the container's MAC (the endpoints' are
// not read), until 1.52 a deprecated twin of the endpoint's, from 1.52 on
// refused.
func containerMAC(version string, req *containertypes.CreateRequest, mac string) (string, error) {
	host := req.HostConfig
	if mac == "" {
		if apiversion.Compare(version, "1.44") < 0 && req.NetworkingConfig != nil {
			for _, ep := range req.NetworkingConfig.EndpointsConfig {
				if ep != nil {
					ep.MacAddress = nil // the old API would have ignored it
				}
			}
		}
		return "", nil
	}
	if apiversion.Compare(version, "1.52") >= 0 {
		return "", errdefs.InvalidParameter(errors.New("container-wide MAC address no longer supported; use endpoint-specific MAC address instead"))
	}
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return "", errdefs.InvalidParameter(fmt.Errorf("invalid MAC address: %s", mac))
	}
	// Docker's router names the default network as the daemon's first.
	if host.NetworkMode == "" || host.NetworkMode.IsDefault() {
		host.NetworkMode = containertypes.NetworkMode(networktypes.NetworkBridge)
		if nc := req.NetworkingConfig; nc != nil {
			if ep, ok := nc.EndpointsConfig[networktypes.NetworkDefault]; ok {
				delete(nc.EndpointsConfig, networktypes.NetworkDefault)
				nc.EndpointsConfig[networktypes.NetworkBridge] = ep
			}
		}
	}
	mode := host.NetworkMode
	bridged := mode.IsBridge() || mode.IsUserDefined()
	old := apiversion.Compare(version, "1.44") < 0
	if !bridged {
		if old {
			return "", errdefs.InvalidParameter(errors.New("conflicting options: mac-address and the network mode"))
		}
		return "The container-wide MacAddress field is now deprecated. It should be specified in EndpointsConfig instead.", nil
	}
	if req.NetworkingConfig == nil {
		req.NetworkingConfig = &networktypes.NetworkingConfig{}
	}
	eps := req.NetworkingConfig.EndpointsConfig
	var ep *networktypes.EndpointSettings
	switch {
	case len(eps) == 0:
		ep = &networktypes.EndpointSettings{}
		req.NetworkingConfig.EndpointsConfig = map[string]*networktypes.EndpointSettings{mode.NetworkName(): ep}
	case old:
		for _, e := range eps { // one at most before 1.44
			ep = e
		}
	default:
		if ep = eps[mode.NetworkName()]; ep == nil {
			return "", errdefs.InvalidParameter(errors.New("HostConfig.NetworkMode must match the identity of a network in NetworkSettings.Networks"))
		}
	}
	if ep == nil {
		ep = &networktypes.EndpointSettings{}
		for k := range eps {
			eps[k] = ep
		}
	}
	if old {
		ep.MacAddress = networktypes.HardwareAddr(hw)
		return "", nil
	}
	if len(ep.MacAddress) == 0 {
		ep.MacAddress = networktypes.HardwareAddr(hw)
	} else if !slices.Equal(ep.MacAddress, networktypes.HardwareAddr(hw)) {
		return "", errdefs.InvalidParameter(errors.New("the container-wide MAC address must match the endpoint-specific MAC address for the main network, or be left empty"))
	}
	return "The container-wide MacAddress field is now deprecated. It should be specified in EndpointsConfig instead.", nil
}

// containerStart starts a container. Its detachKeys is checked as an
// attach's and has nothing to watch: a start has no stream (Docker does
// not read it either; the docker CLI's start -a gives it to the attach).
func (s *Server) containerStart(w http.ResponseWriter, r *http.Request) error {
	if _, err := detachKeysParam(r.URL.Query().Get("detachKeys")); err != nil {
		return err
	}
	return noContentUnless(w, s.cfg.Containers.Start(r.Context(), r.PathValue("id")), container.ErrAlreadyStarted)
}

// noContentUnless answers 204, or 304 for the error that means there was
// nothing to do (Docker's answer to starting a running container, or
// stopping a stopped one); other errors pass through.
func noContentUnless(w http.ResponseWriter, err, nothingToDo error) error {
	if errors.Is(err, nothingToDo) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	return noContent(w, err)
}

func timeoutParam(r *http.Request) (*int, error) {
	v := r.URL.Query().Get("t")
	if v == "" {
		v = r.URL.Query().Get("timeout")
	}
	if v == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid timeout %q", v))
	}
	return &n, nil
}

// stopSignal is a stop's or restart's signal (docker stop -s). Docker
// reads it from API 1.42 on; it is read at every version here, rather
// than dropped.
func stopSignal(r *http.Request) string {
	return r.URL.Query().Get("signal")
}

func (s *Server) containerStop(w http.ResponseWriter, r *http.Request) error {
	t, err := timeoutParam(r)
	if err != nil {
		return err
	}
	return noContentUnless(w, s.cfg.Containers.Stop(r.Context(), r.PathValue("id"), t, stopSignal(r)), container.ErrNotRunning)
}

func (s *Server) containerRestart(w http.ResponseWriter, r *http.Request) error {
	t, err := timeoutParam(r)
	if err != nil {
		return err
	}
	if err := s.cfg.Containers.Restart(r.Context(), r.PathValue("id"), t, stopSignal(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerKill(w http.ResponseWriter, r *http.Request) error {
	sig := r.URL.Query().Get("signal")
	if sig == "" {
		sig = "SIGKILL"
	}
	n, err := container.ParseSignal(sig)
	if err != nil {
		return err
	}
	if err := s.cfg.Containers.Kill(r.Context(), r.PathValue("id"), n); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// containerWait answers headers at once (the docker CLI waits for them
// before it starts the container), then the body when the condition holds.
func (s *Server) containerWait(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, err := s.cfg.Containers.Get(id); err != nil {
		return err
	}
	cond := r.URL.Query().Get("condition")
	switch cond {
	case "", "not-running", "next-exit", "removed":
	default:
		return errdefs.InvalidParameter(fmt.Errorf("invalid condition: %q", cond))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	code, err := s.cfg.Containers.Wait(r.Context(), id, cond)
	resp := containertypes.WaitResponse{StatusCode: int64(code)}
	if err != nil {
		resp.Error = &containertypes.WaitExitError{Message: err.Error()}
	}
	return json.NewEncoder(w).Encode(resp)
}

func (s *Server) containerUpdate(w http.ResponseWriter, r *http.Request) error {
	var raw json.RawMessage
	if err := decodeBody(r, &raw); err != nil {
		return err
	}
	var u containertypes.UpdateConfig
	if err := json.Unmarshal(raw, &u); err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid JSON: %w", err))
	}
	// The kernel memory limits of older clients, discarded with Docker's
	// warnings as at create.
	var legacy struct{ KernelMemory, KernelMemoryTCP int64 }
	_ = json.Unmarshal(raw, &legacy)
	warnings, err := s.cfg.Containers.Update(r.Context(), r.PathValue("id"), &u)
	if err != nil {
		return err
	}
	warnings = append(kernelMemoryWarnings(legacy.KernelMemory, legacy.KernelMemoryTCP, RequestVersion(r.Context())), warnings...)
	return writeJSON(w, http.StatusOK, containertypes.UpdateResponse{Warnings: warnings})
}

func (s *Server) containerRename(w http.ResponseWriter, r *http.Request) error {
	if err := s.cfg.Containers.Rename(r.PathValue("id"), r.URL.Query().Get("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerDelete(w http.ResponseWriter, r *http.Request) error {
	if boolParam(r, "link") {
		// link=1 removes a link, PARENT/ALIAS, and never the container.
		// The engine makes no links: a link name names nothing (404,
		// see registerMissing), and a container's own name is Docker's
		// "default link name", which Docker refuses so (with 500).
		if _, err := s.cfg.Containers.Get(r.PathValue("id")); err != nil {
			return err
		}
		return errors.New("Conflict, cannot remove the default link name of the container") //lint:ignore ST1005 Docker's wording and status
	}
	if err := s.cfg.Containers.Remove(r.Context(), r.PathValue("id"), boolParam(r, "force"), boolParam(r, "v")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerPrune(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r, "label", "label!", "until")
	if err != nil {
		return err
	}
	all, err := s.cfg.Containers.List()
	if err != nil {
		return err
	}
	until, err := untilFilter(f, time.Now(), true)
	if err != nil {
		return err
	}
	rep := containertypes.PruneReport{ContainersDeleted: []string{}}
	for _, c := range all {
		if c.State.Status == container.StatusRunning || c.State.Status == container.StatusPaused ||
			!pruneLabels(f, c.Config.Labels) || (!until.IsZero() && !c.Created.Before(until)) {
			continue
		}
		size := s.cfg.Containers.SizeRw(c.ID)
		if err := s.cfg.Containers.Remove(r.Context(), c.ID, false); err != nil {
			return err
		}
		rep.ContainersDeleted = append(rep.ContainersDeleted, c.ID)
		rep.SpaceReclaimed += uint64(size)
	}
	return writeJSON(w, http.StatusOK, rep)
}

// statusText is the STATUS column of "docker ps".
func statusText(c *container.Container, now time.Time) string {
	switch c.State.Status {
	case container.StatusRunning:
		return "Up " + units.HumanDuration(now.Sub(c.State.StartedAt)) + container.HealthText(c)
	case container.StatusPaused:
		return "Up " + units.HumanDuration(now.Sub(c.State.StartedAt)) + " (Paused)"
	case container.StatusRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", c.State.ExitCode, units.HumanDuration(now.Sub(c.State.FinishedAt)))
	case container.StatusExited:
		if c.State.FinishedAt.IsZero() {
			return fmt.Sprintf("Exited (%d)", c.State.ExitCode)
		}
		return fmt.Sprintf("Exited (%d) %s ago", c.State.ExitCode, units.HumanDuration(now.Sub(c.State.FinishedAt)))
	}
	return "Created"
}

func (s *Server) containerList(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r, "status", "name", "id", "label", "exited", "ancestor", "since", "before",
		"health", "network", "publish", "expose", "volume", "isolation", "is-task")
	if err != nil {
		return err
	}
	pf, err := newPsFilter(f)
	if err != nil {
		return err
	}
	all := boolParam(r, "all")
	// limit=N: the N most recently created containers, whatever their
	// state (docker ps -n N, -l), as Docker does.
	limit := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("invalid limit %q: %w", v, err))
		}
	}
	// since= and before= name a container: those created after it or
	// before it.
	var since, before time.Time
	for key, t := range map[string]*time.Time{"since": &since, "before": &before} {
		for _, ref := range f[key] {
			c, err := s.cfg.Containers.Get(ref)
			if err != nil {
				return err
			}
			*t = c.Created
		}
	}
	// ancestor: the images named and their descendants, by ID; a name
	// that is no image matches nothing, as Docker.
	var ancestors map[digest.Digest]bool
	if _, ok := f["ancestor"]; ok {
		ancestors = map[digest.Digest]bool{}
		for _, ref := range f["ancestor"] {
			ids, err := s.cfg.Images.Descendants(ref)
			if err != nil {
				s.cfg.Log.Warn("container list: ancestor", "image", ref, "err", err)
			}
			maps.Copy(ancestors, ids)
		}
	}
	list, err := s.cfg.Containers.List()
	if err != nil {
		return err
	}
	now := time.Now()
	size, imageSizes := boolParam(r, "size"), map[string]int64{}
	out := []containertypes.Summary{}
	for _, c := range list { // newest first
		if limit > 0 && len(out) == limit {
			break
		}
		if !all && limit <= 0 && len(f["status"]) == 0 && c.State.Status != container.StatusRunning && c.State.Status != container.StatusPaused {
			continue
		}
		if !filterMatch(f["status"], c.State.Status) || !filterMatchPrefix(f["id"], c.ID) ||
			!nameMatch(f["name"], c.Name) || !filterMatch(f["exited"], strconv.Itoa(c.State.ExitCode)) ||
			(!since.IsZero() && !c.Created.After(since)) || (!before.IsZero() && !c.Created.Before(before)) ||
			!matchLabels(c.Config.Labels, f["label"]) || (ancestors != nil && !ancestors[c.Image]) {
			continue
		}
		if len(f["exited"]) > 0 && c.State.Status != container.StatusExited {
			continue
		}
		sum := s.containerSummary(c, now)
		if !pf.match(&sum, c.HostConfig.Isolation) {
			continue
		}
		if size {
			sum.SizeRw, sum.SizeRootFs = s.containerSizes(c, imageSizes)
		}
		out = append(out, sum)
	}
	return writeJSON(w, http.StatusOK, out)
}

// containerSizes are what size=1 adds to a container's listing and
// inspect (docker ps -s, inspect -s), as Docker counts them: SizeRw, the
// files of its writable layer, and SizeRootFs, those and its image's.
// imageSizes keeps the images' sizes across the containers of one list.
func (s *Server) containerSizes(c *container.Container, imageSizes map[string]int64) (rw, rootfs int64) {
	rw = s.cfg.Containers.SizeRw(c.ID)
	id := c.Image.String()
	is, ok := imageSizes[id]
	if !ok {
		if img, err := s.cfg.Images.Get(id); err == nil {
			is = s.imageSize(img)
		}
		imageSizes[id] = is
	}
	return rw, rw + is
}

// containerSummary is a container as GET /containers/json lists it.
func (s *Server) containerSummary(c *container.Container, now time.Time) containertypes.Summary {
	sum := containertypes.Summary{ID: c.ID, Names: []string{"/" + c.Name}, Image: c.ImageName, ImageID: c.Image.String(),
		Command: strings.Join(append([]string{c.Path}, c.Args...), " "), Created: c.Created.Unix(),
		Labels: c.Config.Labels, State: containertypes.ContainerState(c.State.Status), Status: statusText(c, now),
		Ports: []containertypes.PortSummary{}, Mounts: s.mountPoints(c)}
	sum.HostConfig.NetworkMode = string(c.HostConfig.NetworkMode)
	if s.cfg.Networks != nil {
		ns := s.networkSettings(c)
		sum.NetworkSettings = &containertypes.NetworkSettingsSummary{Networks: ns.Networks}
		for k, bs := range ns.Ports {
			if len(bs) == 0 {
				sum.Ports = append(sum.Ports, containertypes.PortSummary{PrivatePort: k.Num(), Type: string(k.Proto())})
			}
			for _, b := range bs {
				hp, _ := strconv.Atoi(b.HostPort)
				sum.Ports = append(sum.Ports, containertypes.PortSummary{IP: b.HostIP, PrivatePort: k.Num(), PublicPort: uint16(hp), Type: string(k.Proto())})
			}
		}
	}
	if h := c.State.Health; h != nil {
		sum.Health = &containertypes.HealthSummary{Status: h.Status, FailingStreak: h.FailingStreak}
	}
	return sum
}

// networkSettings is a container's NetworkSettings for inspect and the
// list: none for one created with networking disabled, as Docker's.
func (s *Server) networkSettings(c *container.Container) *containertypes.NetworkSettings {
	if c.Config.NetworkDisabled {
		return &containertypes.NetworkSettings{Networks: map[string]*networktypes.EndpointSettings{}, Ports: networktypes.PortMap{}}
	}
	return s.cfg.Networks.Settings(c.ID, c.HostConfig.NetworkMode, c.Networks, c.HostConfig.PortBindings, c.Config.ExposedPorts)
}

// legacyAliases adds to a container's user-defined networks' aliases, as
// Docker's inspect does before API 1.45, the container's short ID and its
// host name (Docker names the short ID in DNSNames since): Compose 1.29
// looks for the short ID there, and without it disconnects every
// container it starts from its network and connects it again.
func legacyAliases(ns *containertypes.NetworkSettings, id, hostname, version string) {
	if ns == nil || apiversion.Compare(version, "1.45") >= 0 {
		return
	}
	short := id[:min(12, len(id))]
	for name, ep := range ns.Networks {
		if ep == nil || !containertypes.NetworkMode(name).IsUserDefined() {
			continue
		}
		for _, a := range []string{short, hostname} {
			if a != "" && !slices.Contains(ep.Aliases, a) {
				ep.Aliases = append(ep.Aliases, a)
			}
		}
	}
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func (s *Server) containerInspect(w http.ResponseWriter, r *http.Request) error {
	c, err := s.cfg.Containers.Get(r.PathValue("id"))
	if err != nil {
		return err
	}
	st := c.State
	resp := containertypes.InspectResponse{
		ID: c.ID, Created: timeString(c.Created), Path: c.Path, Args: c.Args, Image: c.Image.String(),
		Name: "/" + c.Name, RestartCount: c.RestartCount, Driver: "overlay2", Platform: "linux", LogPath: c.LogPath,
		HostConfig: c.HostConfig, Config: inspectConfig(c.Config), Mounts: s.mountPoints(c), ExecIDs: nil,
		State: &containertypes.State{Status: containertypes.ContainerState(st.Status),
			Running: st.Status == container.StatusRunning || st.Status == container.StatusPaused,
			Paused:  st.Status == container.StatusPaused, Restarting: st.Status == container.StatusRestarting,
			Health:    st.Health,
			OOMKilled: st.OOMKilled, Pid: st.Pid, ExitCode: st.ExitCode, Error: st.Error,
			StartedAt: timeString(st.StartedAt), FinishedAt: timeString(st.FinishedAt)},
		NetworkSettings: &containertypes.NetworkSettings{},
	}
	if s.cfg.Networks != nil {
		resp.NetworkSettings = s.networkSettings(c)
		legacyAliases(resp.NetworkSettings, c.ID, c.Config.Hostname, RequestVersion(r.Context()))
	}
	if resp.Args == nil {
		resp.Args = []string{}
	}
	if boolParam(r, "size") {
		rw, rootfs := s.containerSizes(c, map[string]int64{})
		resp.SizeRw, resp.SizeRootFs = &rw, &rootfs
	}
	if apiversion.Compare(RequestVersion(r.Context()), "1.52") < 0 {
		return writeJSON(w, http.StatusOK, struct {
			containertypes.InspectResponse
			NetworkSettings legacyNetworkSettings // hides the embedded one
		}{resp, legacyNetworkSettings{NetworkSettings: resp.NetworkSettings}.fill()})
	}
	return writeJSON(w, http.StatusOK, resp)
}

// legacyNetworkSettings is a container's NetworkSettings as Docker 28
// and older send it, before API 1.52, whatever the network: with the
// default bridge's endpoint at the top level (empty off it) and the
// fields it had long stopped setting, empty.
type legacyNetworkSettings struct {
	*containertypes.NetworkSettings
	Bridge                                       string
	HairpinMode                                  bool
	LinkLocalIPv6Address                         string
	LinkLocalIPv6PrefixLen                       int
	SecondaryIPAddresses, SecondaryIPv6Addresses []struct{}
	EndpointID                                   string
	Gateway, GlobalIPv6Address                   netip.Addr
	GlobalIPv6PrefixLen                          int
	IPAddress                                    netip.Addr
	IPPrefixLen                                  int
	IPv6Gateway                                  netip.Addr
	MacAddress                                   networktypes.HardwareAddr
}

func (l legacyNetworkSettings) fill() legacyNetworkSettings {
	if ep := l.Networks["bridge"]; ep != nil {
		l.EndpointID, l.Gateway, l.IPAddress, l.IPPrefixLen = ep.EndpointID, ep.Gateway, ep.IPAddress, ep.IPPrefixLen
		l.GlobalIPv6Address, l.GlobalIPv6PrefixLen, l.IPv6Gateway, l.MacAddress = ep.GlobalIPv6Address, ep.GlobalIPv6PrefixLen, ep.IPv6Gateway, ep.MacAddress
	}
	return l
}

// rfc3339NanoFixed is Docker's timestamp of a log line: RFC 3339 with
// nanoseconds, always nine digits.
const rfc3339NanoFixed = "2006-01-02T15:04:05.000000000Z07:00"

func streamID(name string) byte {
	if name == "stderr" {
		return 2
	}
	return 1
}

func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	stdout, stderr := boolParam(r, "stdout"), boolParam(r, "stderr")
	if !stdout && !stderr {
		return errdefs.InvalidParameter(errors.New("Bad parameters: you must choose at least one stream")) //lint:ignore ST1005 Docker's wording
	}
	c, err := s.cfg.Containers.Get(r.PathValue("id"))
	if err != nil {
		return err
	}
	now := time.Now()
	opts := logs.ReadOptions{Follow: boolParam(r, "follow"), Tail: -1}
	if opts.Since, err = parseEventTime(q.Get("since"), now); err != nil {
		return err
	}
	if opts.Until, err = parseEventTime(q.Get("until"), now); err != nil {
		return err
	}
	if t := q.Get("tail"); t != "" && t != "all" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return errdefs.InvalidParameter(fmt.Errorf("invalid tail value %q", t))
		}
		opts.Tail = n
	}
	if err := container.ReadableLogs(c); err != nil {
		return err // before the stream's headers, so that the client sees it
	}
	timestamps, details := boolParam(r, "timestamps"), boolParam(r, "details")
	ct := "application/vnd.docker.multiplexed-stream"
	if c.Config.Tty {
		ct = "application/vnd.docker.raw-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	mw := &stdstream.Writer{W: w, Flush: func() error {
		if fl != nil {
			fl.Flush()
		}
		return nil
	}}
	mw.Flush() // the headers go now, before the first line
	err = s.cfg.Containers.Logs(r.Context(), c.ID, opts, func(e logs.Entry) error {
		if (e.Stream == "stdout" && !stdout) || (e.Stream == "stderr" && !stderr) {
			return nil
		}
		line := e.Log
		if details {
			// Docker's details are the attributes its log drivers add
			// (--log-opt labels, env, env-regex), then a space: the
			// engine's drivers add none, so the space alone, as Docker
			// sends for a container without them.
			line = " " + line
		}
		if timestamps {
			line = e.Time.Format(rfc3339NanoFixed) + " " + line
		}
		if c.Config.Tty {
			return mw.Raw([]byte(line))
		}
		return mw.Frame(streamID(e.Stream), []byte(line))
	})
	if err != nil {
		s.cfg.Log.Debug("logs stream ended", "err", err)
	}
	return nil
}

// containerAttach hijacks the connection and streams the container's
// output as the monitor hands it over, from now until the container's
// output ends; for a container not started yet (the docker CLI attaches,
// then starts), from its start. With logs=1 the stored log comes first.
// The client's input goes to the container when it was run with -i.
func (s *Server) containerAttach(w http.ResponseWriter, r *http.Request) error {
	at, err := s.openAttach(r)
	if err != nil {
		return err
	}
	defer at.close()
	conn, in, mw, err := hijackStream(w, r, at.c.Config.Tty)
	if err != nil {
		return err
	}
	defer conn.Close()
	// After the hijack the request's context says nothing useful (a client
	// that half-closes its input is not gone): the output loop ends with
	// the container's output, when writing to the client fails, or when
	// the client's connection is gone, which is noticed as it happens: a
	// client that left a quiet container is not held until its next output.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		detached := false
		if at.stdin {
			detached = s.feedStdin(ctx, at, in)
		} else {
			io.Copy(io.Discard, in)
		}
		// Detached by the client's keys, the client is let go at once.
		if detached || waitHangup(conn) {
			cancel()
			at.stopLive() // ends the wait for the monitor's next frame
		}
	}()
	send := func(stream byte, p []byte) error {
		if !at.wants(stream) {
			return nil
		}
		if at.c.Config.Tty {
			return mw.Raw(p) // a terminal's output is not multiplexed
		}
		return mw.Frame(stream, p)
	}
	s.relayOutput(ctx, at, send)
	return nil
}

// attachment is what an attach (hijacked or WebSocket) starts from.
type attachment struct {
	c                     *container.Container
	stdout, stderr, stdin bool
	detachKeys            []byte               // watched for in the input of a terminal
	replay                bool                 // logs=1
	log                   *container.LogReplay // the log up to the stream, with logs=1 and stream=1
	live                  io.ReadCloser        // the monitor's stream, with stream=1
}

// openAttach reads an attach request and, with stream=1, attaches to the
// monitor before the client hears its answer, so before it can start the
// container: nothing of the run is missed. With logs=1 too, the log's
// replay ends where the stream begins.
func (s *Server) openAttach(r *http.Request) (*attachment, error) {
	keys, err := detachKeysParam(r.URL.Query().Get("detachKeys"))
	if err != nil {
		return nil, err
	}
	c, err := s.cfg.Containers.Get(r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	at := &attachment{c: c, stdout: boolParam(r, "stdout"), stderr: boolParam(r, "stderr"),
		stdin: boolParam(r, "stdin") && c.Config.OpenStdin, replay: boolParam(r, "logs"), detachKeys: keys}
	switch {
	case boolParam(r, "stream") && at.replay:
		at.live, at.log, err = s.cfg.Containers.AttachWithLog(r.Context(), c.ID)
	case boolParam(r, "stream"):
		at.live, err = s.cfg.Containers.Attach(r.Context(), c.ID)
	}
	if err != nil {
		return nil, err
	}
	return at, nil
}

func (at *attachment) wants(stream byte) bool {
	return (stream != stdstream.Stdout || at.stdout) && (stream != stdstream.Stderr || at.stderr)
}

// stopLive ends the live stream (its relay's wait for the next frame).
func (at *attachment) stopLive() {
	if at.live != nil {
		at.live.Close()
	}
}

// close lets go of what the attach holds, once it is over.
func (at *attachment) close() {
	at.stopLive()
	if at.log != nil {
		at.log.Close()
	}
}

// detachKeysParam reads an attach's detachKeys, answering Docker's 400.
func detachKeysParam(v string) ([]byte, error) {
	keys, err := stdstream.ParseDetachKeys(v)
	if err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("Invalid detach keys (%s) provided", v)) //lint:ignore ST1005 Docker's wording
	}
	return keys, nil
}

// feedStdin copies a client's input to the container as soon as it runs,
// and ends the container's input when the client's ends. In a terminal's
// input it watches for the detach keys, as Docker does (not in a pipe's,
// whose bytes are the container's whatever they are): detached says the
// client typed them, and its attach is to end, the container's input
// staying open.
func (s *Server) feedStdin(ctx context.Context, at *attachment, in io.Reader) (detached bool) {
	dst, err := s.cfg.Containers.StdinConn(ctx, at.c.ID)
	if err != nil {
		return false
	}
	defer dst.Close()
	if at.c.Config.Tty {
		dr := stdstream.NewDetachReader(in, at.detachKeys)
		in = dr
		defer func() {
			if detached = dr.Detached(); detached {
				s.cfg.Containers.Detached(at.c.ID)
			}
		}()
	}
	if _, err := io.Copy(dst, in); errors.Is(err, stdstream.ErrDetached) {
		return true
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	return false
}

// relayOutput sends an attached client the container's stored log first
// (with logs), then its live output from the monitor (with stream) until
// that ends or the client is gone.
func (s *Server) relayOutput(ctx context.Context, at *attachment, send func(stream byte, p []byte) error) {
	if at.replay {
		fn := func(e logs.Entry) error { return send(streamID(e.Stream), []byte(e.Log)) }
		var err error
		if at.log != nil {
			err = at.log.Read(ctx, fn)
		} else {
			err = s.cfg.Containers.Logs(ctx, at.c.ID, logs.ReadOptions{Tail: -1}, fn)
		}
		if err != nil && errdefs.KindOf(err) != errdefs.KindNotImplemented {
			return // the client is gone, or the log unreadable: the stream has begun
		}
	}
	live := at.live
	if live == nil {
		return
	}
	for {
		stream, p, err := stdstream.ReadFrame(live)
		if err != nil {
			return // the output has ended
		}
		if err := send(stream, p); err != nil {
			return // the client is gone; closing the monitor's stream detaches
		}
	}
}

// hijackStream takes the connection over for a multiplexed stream, as
// Docker's attach and exec start do: "101 UPGRADED" when the client asked
// to upgrade, else "200 OK". The reader carries what the client sends.
func hijackStream(w http.ResponseWriter, r *http.Request, tty bool) (net.Conn, *bufio.Reader, *stdstream.Writer, error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, nil, nil, errors.New("connection cannot be hijacked")
	}
	// A request body is the request's, never the container's input:
	// dockerode sends its attach options as one, and the stream only
	// starts after the upgrade (as with Docker).
	if r.ContentLength > 0 {
		io.Copy(io.Discard, io.LimitReader(r.Body, min(r.ContentLength, maxBody)))
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return nil, nil, nil, err
	}
	status := "HTTP/1.1 200 OK\r\n"
	if r.Header.Get("Upgrade") != "" {
		status = "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
	}
	ct := "application/vnd.docker.multiplexed-stream"
	if tty {
		ct = "application/vnd.docker.raw-stream"
	}
	fmt.Fprintf(buf, "%sContent-Type: %s\r\n\r\n", status, ct)
	buf.Flush()
	bw := bufio.NewWriter(conn)
	return conn, buf.Reader, &stdstream.Writer{W: bw, Flush: bw.Flush}, nil
}

// noContent answers 204 for a nil error.
func noContent(w http.ResponseWriter, err error) error {
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// mountPoints lists a container's volumes as inspect shows them.
func (s *Server) mountPoints(c *container.Container) []containertypes.MountPoint {
	out := []containertypes.MountPoint{}
	for _, v := range c.Volumes {
		mp := containertypes.MountPoint{Type: "volume", Name: v.Name, Destination: v.Destination, Driver: "local", RW: !v.ReadOnly}
		if s.cfg.Volumes != nil {
			if vol, err := s.cfg.Volumes.Get(v.Name); err == nil {
				mp.Source = vol.Mountpoint
			}
		}
		out = append(out, mp)
	}
	return append(out, container.BindMountPoints(c.HostConfig)...)
}

// termSize reads the h and w parameters of a resize.
func termSize(r *http.Request) (uint16, uint16, error) {
	h, err1 := strconv.ParseUint(r.URL.Query().Get("h"), 10, 16)
	w, err2 := strconv.ParseUint(r.URL.Query().Get("w"), 10, 16)
	if err1 != nil || err2 != nil {
		return 0, 0, errdefs.InvalidParameter(fmt.Errorf("invalid terminal size h=%q w=%q", r.URL.Query().Get("h"), r.URL.Query().Get("w")))
	}
	return uint16(h), uint16(w), nil
}

// okStatus answers 200 for a nil error (Docker's resize answers 200).
func okStatus(w http.ResponseWriter, err error) error {
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// containerStats answers one sample (stream=false; with a previous one a
// second earlier unless one-shot), or a sample a second until the client
// goes or the container stops.
func (s *Server) containerStats(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	stream := r.URL.Query().Get("stream") == "" || boolParam(r, "stream")
	prev, err := s.cfg.Containers.Stats(r.Context(), id)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	fl, _ := w.(http.Flusher)
	if !stream && boolParam(r, "one-shot") {
		return enc.Encode(prev)
	}
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-time.After(time.Second):
		}
		cur, err := s.cfg.Containers.Stats(r.Context(), id)
		if err != nil {
			return nil
		}
		cur.PreCPUStats, cur.PreRead = prev.CPUStats, prev.Read
		if err := enc.Encode(cur); err != nil || !stream {
			return nil
		}
		if fl != nil {
			fl.Flush()
		}
		prev = cur
		if cur.CPUStats.SystemUsage == 0 && cur.MemoryStats.Usage == 0 {
			return nil // stopped
		}
	}
}

func (s *Server) pathStatHeader(w http.ResponseWriter, r *http.Request) (string, error) {
	p := r.URL.Query().Get("path")
	if p == "" {
		return "", errdefs.InvalidParameter(errors.New("path is required"))
	}
	st, err := s.cfg.Containers.StatPath(r.PathValue("id"), p)
	if err != nil {
		return "", err
	}
	b, _ := json.Marshal(st)
	w.Header().Set("X-Docker-Container-Path-Stat", base64.StdEncoding.EncodeToString(b))
	return p, nil
}

// archiveStat is docker cp's HEAD: the path's stat in a header.
func (s *Server) archiveStat(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.pathStatHeader(w, r); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// archiveGet is docker cp from a container: a tar of the path, with the
// stat of the same file in a header.
func (s *Server) archiveGet(w http.ResponseWriter, r *http.Request) error {
	p := r.URL.Query().Get("path")
	if p == "" {
		return errdefs.InvalidParameter(errors.New("path is required"))
	}
	started := false
	err := s.cfg.Containers.ArchivePath(r.Context(), r.PathValue("id"), p, func(st containertypes.PathStat) {
		b, _ := json.Marshal(st)
		w.Header().Set("X-Docker-Container-Path-Stat", base64.StdEncoding.EncodeToString(b))
		w.Header().Set("Content-Type", "application/x-tar")
		w.WriteHeader(http.StatusOK)
		started = true
	}, w)
	if err != nil && !started {
		return err // before the answer: a proper error
	}
	if err != nil {
		s.cfg.Log.Error("archive", "path", p, "err", err)
		panic(http.ErrAbortHandler) // a cut tar must not look whole
	}
	return nil
}

// containerExport streams the container's filesystem as a tar. The status
// is sent with the first bytes, so that an error before them (no such
// container, a failed mount) is a proper error answer.
func (s *Server) containerExport(w http.ResponseWriter, r *http.Request) error {
	lw := &lazyTar{w: w}
	if err := s.cfg.Containers.Export(r.Context(), r.PathValue("id"), lw); err != nil {
		if !lw.started {
			return err
		}
		s.cfg.Log.Error("export", "container", r.PathValue("id"), "err", err)
		panic(http.ErrAbortHandler) // a cut tar must not look whole
	}
	return nil
}

type lazyTar struct {
	w       http.ResponseWriter
	started bool
}

func (l *lazyTar) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.w.Header().Set("Content-Type", "application/x-tar")
		l.w.WriteHeader(http.StatusOK)
	}
	return l.w.Write(p)
}

// archivePut is docker cp into a container: a tar extracted in a directory.
func (s *Server) archivePut(w http.ResponseWriter, r *http.Request) error {
	p := r.URL.Query().Get("path")
	if p == "" {
		return errdefs.InvalidParameter(errors.New("path is required"))
	}
	opts := container.ExtractOptions{CopyUIDGID: boolParam(r, "copyUIDGID"), NoOverwriteDirNonDir: boolParam(r, "noOverwriteDirNonDir")}
	if err := s.cfg.Containers.ExtractTo(r.Context(), r.PathValue("id"), p, r.Body, opts); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// inspectConfig is a container's config as Docker's inspect shows it: an
// entrypoint reset with "" ([""]) is null there (Docker resets it at
// create; balena's device agent compares it with the "" it sent).
func inspectConfig(c *containertypes.Config) *containertypes.Config {
	if c == nil || len(c.Entrypoint) != 1 || c.Entrypoint[0] != "" {
		return c
	}
	out := *c
	out.Entrypoint = nil
	return &out
}
