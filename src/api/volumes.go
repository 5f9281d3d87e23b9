package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/balena-os/balena-engine/src/apiversion"
	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/volume"
	volumetypes "github.com/moby/moby/api/types/volume"
)

func (s *Server) registerVolumes() {
	s.handle("POST /volumes/create", s.volumeCreate)
	s.handle("GET /volumes", s.volumeList)
	s.handle("POST /volumes/prune", s.volumePrune)
	s.handle("GET /volumes/{name}", s.volumeInspect)
	s.handle("DELETE /volumes/{name}", s.volumeDelete)
	s.handle("PUT /volumes/{name}", unserved("PUT /volumes/{name}", "1.42", "updating a cluster volume needs swarm mode, which balena-engine does not support"))
}

func volumeJSON(v volume.Volume) volumetypes.Volume {
	labels := v.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return volumetypes.Volume{Name: v.Name, Driver: "local", Mountpoint: v.Mountpoint, Scope: "local",
		CreatedAt: v.CreatedAt.Format(time.RFC3339), Labels: labels, Options: map[string]string{}}
}

func (s *Server) volumeCreate(w http.ResponseWriter, r *http.Request) error {
	var req volumetypes.CreateRequest
	if err := decodeOptionalBody(r, &req); err != nil {
		return err
	}
	if req.Driver != "" && req.Driver != "local" {
		return errdefs.NotImplemented(fmt.Errorf("volume driver %q is not implemented (only local)", req.Driver))
	}
	v, err := s.cfg.Volumes.Create(req.Name, req.Labels, req.DriverOpts)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, volumeJSON(v))
}

func (s *Server) volumeList(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r, "name", "label", "dangling", "driver")
	if err != nil {
		return err
	}
	vols, err := s.cfg.Volumes.List()
	if err != nil {
		return err
	}
	out := volumetypes.ListResponse{Volumes: []volumetypes.Volume{}, Warnings: []string{}}
	for _, v := range vols {
		if !filterContains(f["name"], v.Name) || !matchLabels(v.Labels, f["label"]) || !filterMatch(f["driver"], "local") {
			continue
		}
		if d, ok := f["dangling"]; ok && len(d) > 0 {
			dangling := len(s.cfg.Containers.VolumeUsers(v.Name)) == 0
			if (d[0] == "true" || d[0] == "1") != dangling {
				continue
			}
		}
		out.Volumes = append(out.Volumes, volumeJSON(v))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) volumeInspect(w http.ResponseWriter, r *http.Request) error {
	v, err := s.cfg.Volumes.Get(r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, volumeJSON(v))
}

func (s *Server) volumeDelete(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	err := s.cfg.Volumes.Remove(name, s.cfg.Containers.VolumeUsers(name))
	if errdefs.KindOf(err) == errdefs.KindNotFound && boolParam(r, "force") {
		err = nil
	}
	return noContent(w, err)
}

// volumePrune removes unused anonymous volumes (all unused ones with the
// filter all=true), as Docker 23+ (API 1.42) does; before API 1.42 every
// unused volume, named or not, as Docker did then and still does for
// those clients (docker 20.10's volume prune).
func (s *Server) volumePrune(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r, "label", "label!", "all")
	if err != nil {
		return err
	}
	all, err := f.bool("all", false)
	if err != nil {
		return err
	}
	if apiversion.Compare(RequestVersion(r.Context()), "1.42") < 0 {
		all = true
	}
	vols, err := s.cfg.Volumes.List()
	if err != nil {
		return err
	}
	rep := volumetypes.PruneReport{VolumesDeleted: []string{}}
	for _, v := range vols {
		if (!all && !v.Anonymous) || !pruneLabels(f, v.Labels) || len(s.cfg.Containers.VolumeUsers(v.Name)) > 0 {
			continue
		}
		if err := s.cfg.Volumes.Remove(v.Name, nil); err != nil {
			return err
		}
		rep.VolumesDeleted = append(rep.VolumesDeleted, v.Name)
	}
	return writeJSON(w, http.StatusOK, rep)
}
