package api

import (
	"github.com/balena-os/balena-engine/src/apiversion"
	"net/http"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/network"
	eventtypes "github.com/moby/moby/api/types/events"
	networktypes "github.com/moby/moby/api/types/network"
)

func (s *Server) registerNetworks() {
	s.handle("GET /networks", s.networkList)
	s.handle("GET /networks/{id}", s.networkInspect)
	s.handle("POST /networks/create", s.networkCreate)
	s.handle("DELETE /networks/{id}", s.networkRemove)
	s.handle("POST /networks/{id}/connect", s.networkConnect)
	s.handle("POST /networks/{id}/disconnect", s.networkDisconnect)
	s.handle("POST /networks/prune", s.networkPrune)
}

func (s *Server) networkList(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r, "name", "id", "label", "driver", "type", "scope", "dangling")
	if err != nil {
		return err
	}
	nets, err := s.cfg.Networks.List()
	if err != nil {
		return err
	}
	out := []networktypes.Summary{}
	for _, n := range nets {
		typ := "custom"
		if network.Predefined(n) {
			typ = "builtin"
		}
		if !filterContains(f["name"], n.Name) || !filterMatchPrefix(f["id"], n.ID) || !matchLabels(n.Labels, f["label"]) ||
			!filterMatch(f["driver"], n.Driver) || !filterMatch(f["type"], typ) || !filterMatch(f["scope"], n.Scope) {
			continue
		}
		if d, ok := f["dangling"]; ok && len(d) > 0 {
			in, err := s.cfg.Networks.Inspect(n.ID)
			if err != nil {
				return err
			}
			dangling := !network.Predefined(n) && len(in.Containers) == 0 && len(s.cfg.Containers.NetworkUsers(n.ID, n.Name)) == 0
			if (d[0] == "true" || d[0] == "1") != dangling {
				continue
			}
		}
		out = append(out, networktypes.Summary{Network: n.Network})
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) networkInspect(w http.ResponseWriter, r *http.Request) error {
	in, err := s.cfg.Networks.Inspect(r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, in)
}

func (s *Server) networkCreate(w http.ResponseWriter, r *http.Request) error {
	var req networktypes.CreateRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	n, err := s.cfg.Networks.Create(req)
	if err != nil {
		return err
	}
	s.publishNetwork("create", n)
	return writeJSON(w, http.StatusCreated, networktypes.CreateResponse{ID: n.ID, Warning: ""})
}

func (s *Server) publishNetwork(action string, n *network.Network) {
	if s.cfg.Events != nil {
		s.cfg.Events.Publish(eventtypes.NetworkEventType, eventtypes.Action(action), n.ID, map[string]string{"name": n.Name, "type": n.Driver})
	}
}

func (s *Server) networkRemove(w http.ResponseWriter, r *http.Request) error {
	n, err := s.cfg.Networks.Lookup(r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := s.cfg.Networks.Remove(n.ID); err != nil {
		return err
	}
	s.publishNetwork("destroy", n)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) networkConnect(w http.ResponseWriter, r *http.Request) error {
	var req networktypes.ConnectRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	n, err := s.cfg.Networks.Lookup(r.PathValue("id"))
	if err != nil {
		return err
	}
	if req.EndpointConfig != nil && apiversion.Compare(RequestVersion(r.Context()), "1.48") < 0 {
		req.EndpointConfig.GwPriority = 0 // added in 1.48, as Docker
	}
	if err := s.cfg.Containers.Connect(req.Container, n, req.EndpointConfig); err != nil {
		return err
	}
	s.publishNetwork("connect", n)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) networkDisconnect(w http.ResponseWriter, r *http.Request) error {
	var req networktypes.DisconnectRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	n, err := s.cfg.Networks.Lookup(r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := s.cfg.Containers.Disconnect(req.Container, n, req.Force); err != nil {
		return err
	}
	s.publishNetwork("disconnect", n)
	w.WriteHeader(http.StatusOK)
	return nil
}

// networkPrune removes the user-defined networks no container uses, with
// the until and label filters.
func (s *Server) networkPrune(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r, "until", "label", "label!")
	if err != nil {
		return err
	}
	var until time.Time
	if u := f["until"]; len(u) > 0 {
		if until, err = parseEventTime(u[0], time.Now()); err != nil {
			return err
		}
	}
	nets, err := s.cfg.Networks.List()
	if err != nil {
		return err
	}
	out := networktypes.PruneReport{NetworksDeleted: []string{}}
	for _, n := range nets {
		if network.Predefined(n) || (!until.IsZero() && !n.Created.Before(until)) || !pruneLabels(f, n.Labels) {
			continue
		}
		if len(s.cfg.Containers.NetworkUsers(n.ID, n.Name)) > 0 {
			continue
		}
		err := s.cfg.Networks.Remove(n.ID)
		if errdefs.KindOf(err) == errdefs.KindForbidden {
			continue // in use
		}
		if err != nil {
			return err
		}
		s.publishNetwork("destroy", n)
		out.NetworksDeleted = append(out.NetworksDeleted, n.Name)
	}
	return writeJSON(w, http.StatusOK, out)
}
