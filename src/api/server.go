// Package api serves the Docker Engine API over HTTP. It owns routing, API
// version negotiation (a "/v1.xx" path prefix, within the range apiversion
// names) and Docker's JSON error format, with status codes from errdefs'
// table. Handlers are thin: they decode a request, call the engine, and
// encode the answer in Docker's shapes (github.com/moby/moby/api/types).
//
// Every Docker route the engine does not have yet answers 501 with a message
// that names it, so a client learns what is missing instead of seeing a 404.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"

	"github.com/balena-os/balena-engine/src/apiversion"
	"github.com/balena-os/balena-engine/src/container"
	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/events"
	"github.com/balena-os/balena-engine/src/image"
	"github.com/balena-os/balena-engine/src/network"
	"github.com/balena-os/balena-engine/src/registry"
	"github.com/balena-os/balena-engine/src/version"
	"github.com/balena-os/balena-engine/src/volume"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/common"
)

// Config is what the API server needs from the daemon.
type Config struct {
	Version       version.Info
	KernelVersion string
	Log           *slog.Logger

	DataRoot string // for /info
	Debug    bool
	EngineID string

	// The engine's parts. A nil one leaves its routes answering 501.
	Events     *events.Log
	Images     *image.Store
	Containers *container.Manager
	Volumes    *volume.Store
	Networks   *network.Manager
	Registry   *registry.Client
	Pull       image.PullOptions // defaults for pulls: concurrency, bandwidth
}

// Server is an http.Handler for the Docker Engine API.
type Server struct {
	cfg Config
	mux *http.ServeMux
}

// bgContext is the context of work that outlives its request (a detached
// exec): it ends with the process.
func (s *Server) bgContext() context.Context { return context.Background() }

// handlerFunc is a handler that returns its error instead of writing it, so
// that every error takes the same path to the client.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// New returns the API handler.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	s.handle("GET /_ping", s.ping) // GET patterns match HEAD too
	s.handle("GET /version", s.version)
	if cfg.Images != nil {
		s.registerImages()
	}
	if cfg.Events != nil {
		s.handle("GET /events", s.eventsStream)
	}
	if cfg.Containers != nil {
		s.registerContainers()
		s.registerExec()
		s.handle("GET /info", s.info)
	}
	if cfg.Volumes != nil && cfg.Containers != nil {
		s.registerVolumes()
	}
	if cfg.Containers != nil && cfg.Images != nil {
		s.handle("POST /commit", s.commit)
	}
	if cfg.Volumes != nil && cfg.Containers != nil && cfg.Images != nil {
		s.handle("GET /system/df", s.systemDF)
		// "docker system prune" prunes the build cache too. The engine has
		// no builder, so there is nothing to delete: an empty report, not
		// an error that would stop the prune of what does exist.
		s.handle("POST /build/prune", func(w http.ResponseWriter, _ *http.Request) error {
			return writeJSON(w, http.StatusOK, build.CachePruneReport{CachesDeleted: []string{}})
		})
	}
	if cfg.Networks != nil && cfg.Containers != nil {
		s.registerNetworks()
	}
	registerMissing(s)
	// Unknown paths and known paths with the wrong method both answer 404
	// "page not found", as Docker's router does.
	s.handle("/", func(http.ResponseWriter, *http.Request) error {
		return errdefs.NotFound(errors.New("page not found"))
	})
	return s
}

func (s *Server) handle(pattern string, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			// A bug in one handler answers 500 and is logged with its
			// stack, instead of dropping the client's connection.
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.cfg.Log.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				s.writeError(w, r, fmt.Errorf("internal error: %v", v))
			}
		}()
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

type ctxKey struct{}

// RequestVersion is the API version the client asked for (the path prefix),
// or apiversion.Max when it gave none.
func RequestVersion(ctx context.Context) string {
	if v, ok := ctx.Value(ctxKey{}).(string); ok {
		return v
	}
	return apiversion.Max
}

// ServeHTTP checks and strips the version prefix, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Server", fmt.Sprintf("balena-engine/%s (%s)", s.cfg.Version.Version, runtime.GOOS))
	h.Set("Api-Version", apiversion.Max)
	h.Set("Ostype", runtime.GOOS)
	h.Set("Docker-Experimental", "false")

	ver, rest := splitVersion(r.URL.Path)
	s.cfg.Log.Debug("API request", "method", r.Method, "path", r.URL.Path)
	if ver != "" {
		if apiversion.Compare(ver, apiversion.Min) < 0 {
			s.writeError(w, r, errdefs.InvalidParameter(fmt.Errorf(
				"client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", ver, apiversion.Min)))
			return
		}
		if apiversion.Compare(ver, apiversion.Max) > 0 {
			s.writeError(w, r, errdefs.InvalidParameter(fmt.Errorf(
				"client version %s is too new. Maximum supported API version is %s", ver, apiversion.Max)))
			return
		}
		r2 := r.Clone(context.WithValue(r.Context(), ctxKey{}, ver))
		r2.URL.Path = rest
		r2.URL.RawPath = ""
		r = r2
	}
	s.mux.ServeHTTP(w, r)
}

// StatusCode is the HTTP status Docker answers err with: errdefs' for its
// kind, but 413 for a request body over the bound, an invalid parameter with
// a status of its own.
func StatusCode(err error) int {
	if errors.Is(err, errBodyTooLarge) {
		return http.StatusRequestEntityTooLarge
	}
	return errdefs.HTTPStatus(errdefs.KindOf(err))
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := StatusCode(err)
	if code >= 500 && code != http.StatusNotImplemented {
		s.cfg.Log.Error("API error", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	} else {
		s.cfg.Log.Debug("API error", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	}
	writeJSON(w, code, common.ErrorResponse{Message: err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	return json.NewEncoder(w).Encode(v)
}
