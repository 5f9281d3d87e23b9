package api

import (
	"fmt"
	"strings"

	"github.com/balena-os/balena-engine/src/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
	networktypes "github.com/moby/moby/api/types/network"
)

// psFilter is the container list's filters that read a container's
// summary (its health, networks, ports, mounts), parsed once per list.
type psFilter struct {
	f               filters
	publish, expose map[string]bool
	task, isTask    bool
}

func newPsFilter(f filters) (*psFilter, error) {
	p := &psFilter{f: f, publish: map[string]bool{}, expose: map[string]bool{}}
	for _, v := range f["health"] {
		switch v {
		case "none", "starting", "healthy", "unhealthy":
		default:
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid filter 'health=%s': invalid value for health (%s): must be one of none, starting, healthy, unhealthy", v, v))
		}
	}
	// Docker's words, and its status: 500 (unclassified errors).
	for key, set := range map[string]map[string]bool{"publish": p.publish, "expose": p.expose} {
		for _, v := range f[key] {
			if strings.Contains(v, ":") {
				return nil, fmt.Errorf("filter for '%s' should not contain ':': %s", key, v)
			}
			pr, err := networktypes.ParsePortRange(v) // "80", "80/udp", "8000-8080/tcp"
			if err != nil {
				return nil, fmt.Errorf("error while looking up for %s %s: %s", key, v, err)
			}
			for port := range pr.All() {
				set[port.String()] = true
			}
		}
	}
	// is-task: Docker's GetBoolOrDefault, one truth value or the other.
	if vs, ok := f["is-task"]; ok {
		no, yes := filterMatch(vs, "0") || filterMatch(vs, "false"), filterMatch(vs, "1") || filterMatch(vs, "true")
		if no == yes {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid filter 'is-task=%s'", vs))
		}
		p.task, p.isTask = true, yes
	}
	return p, nil
}

// match says whether a container's summary passes the filters. isolation
// is its HostConfig's.
func (p *psFilter) match(sum *containertypes.Summary, isolation containertypes.Isolation) bool {
	// No container here is a swarm task.
	if p.task && p.isTask {
		return false
	}
	health := "none"
	if sum.Health != nil && sum.Health.Status != "" {
		health = string(sum.Health.Status)
	}
	if isolation == "" {
		isolation = "default"
	}
	if !filterMatch(p.f["health"], health) || !filterMatch(p.f["isolation"], strings.ToLower(string(isolation))) {
		return false
	}
	if !anyOf(p.f["volume"], func(v string) bool {
		for _, m := range sum.Mounts {
			if m.Destination == v || m.Name == v || (m.Name == "" && m.Source == v) {
				return true
			}
		}
		return false
	}) {
		return false
	}
	if !anyOf(p.f["network"], func(v string) bool {
		if sum.NetworkSettings == nil {
			return false
		}
		for name, ep := range sum.NetworkSettings.Networks {
			if name == v || (ep != nil && ep.NetworkID != "" && strings.HasPrefix(ep.NetworkID, v)) {
				return true
			}
		}
		return false
	}) {
		return false
	}
	if len(p.publish)+len(p.expose) == 0 {
		return true
	}
	for _, port := range sum.Ports {
		if p.publish[fmt.Sprintf("%d/%s", port.PublicPort, port.Type)] || p.expose[fmt.Sprintf("%d/%s", port.PrivatePort, port.Type)] {
			return true
		}
	}
	return false
}
