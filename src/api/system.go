package api

import (
	"net/http"
	"runtime"

	"github.com/balena-os/balena-engine/src/apiversion"
	"github.com/moby/moby/api/types/system"
)

// ping answers GET and HEAD /_ping. Clients read the negotiation headers set
// in ServeHTTP; the body is "OK".
func (s *Server) ping(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Swarm", "inactive")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		return nil
	}
	_, err := w.Write([]byte("OK"))
	return err
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) error {
	v := s.cfg.Version
	return writeJSON(w, http.StatusOK, balenaVersion{Engine: "balena-engine", VersionResponse: system.VersionResponse{
		Platform: system.PlatformInfo{Name: "balenaEngine"},
		Components: []system.ComponentVersion{{
			Name:    "Engine",
			Version: v.Version,
			Details: map[string]string{
				"ApiVersion":    apiversion.Max,
				"MinAPIVersion": apiversion.Min,
				"GitCommit":     v.GitCommit,
				"GoVersion":     v.GoVersion,
				"Os":            v.OS,
				"Arch":          v.Arch,
				"KernelVersion": s.cfg.KernelVersion,
				"BuildTime":     v.BuildTime,
				"Experimental":  "false",
			},
		}},
		Version:       v.Version,
		APIVersion:    apiversion.Max,
		MinAPIVersion: apiversion.Min,
		GitCommit:     v.GitCommit,
		GoVersion:     v.GoVersion,
		Os:            runtime.GOOS,
		Arch:          v.Arch,
		KernelVersion: s.cfg.KernelVersion,
		BuildTime:     v.BuildTime,
	}})
}

// balenaVersion is /version with balenaEngine's Engine field, which
// balena's docker-progress reads to follow a pull by its "Total" line.
type balenaVersion struct {
	Engine string
	system.VersionResponse
}
