package api

import (
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"

	"github.com/balena-os/balena-engine/src/apiversion"
	"github.com/balena-os/balena-engine/src/errdefs"
)

// notYet lists the Docker API areas the engine will serve but does not yet.
// Each answers 501 naming the request, so clients fail clearly.
var notYet = []string{
	"/containers", "/exec", "/images", "/networks", "/volumes",
	"/info", "/events", "/system", "/auth", "/distribution",
}

// leftOut lists the areas balena-engine leaves out on purpose, with the
// reason a user gets.
var leftOut = map[string]string{
	"/build":    "balena-engine does not include a builder (no BuildKit): build images elsewhere, then pull or load them",
	"/session":  "balena-engine does not include a builder (no BuildKit): build images elsewhere, then pull or load them",
	"/grpc":     "balena-engine does not include a builder (no BuildKit): build images elsewhere, then pull or load them",
	"/swarm":    "balena-engine does not support swarm mode",
	"/nodes":    "balena-engine does not support swarm mode",
	"/services": "balena-engine does not support swarm mode",
	"/tasks":    "balena-engine does not support swarm mode",
	"/secrets":  "balena-engine does not support swarm mode",
	"/configs":  "balena-engine does not support swarm mode",
	"/plugins":  "balena-engine does not support plugins",
}

func registerMissing(s *Server) {
	for _, prefix := range notYet {
		if ((prefix == "/images" || prefix == "/distribution" || prefix == "/auth") && s.cfg.Images != nil) ||
			(prefix == "/events" && s.cfg.Events != nil) || ((prefix == "/exec" || prefix == "/info") && s.cfg.Containers != nil) ||
			(prefix == "/volumes" && s.cfg.Volumes != nil) || (prefix == "/networks" && s.cfg.Networks != nil) {
			continue
		}
		if prefix == "/containers" && s.cfg.Containers != nil {
			// What the specific patterns did not take: checkpoints, left
			// out (501), or a container reference with a slash in it,
			// which names no container (404): a DELETE's is all of the
			// rest (docker rm --link PARENT/ALIAS; the engine has no
			// links).
			h := func(_ http.ResponseWriter, r *http.Request) error {
				rest := strings.TrimPrefix(r.URL.Path, "/containers/")
				op := path.Base(rest)
				if op == "checkpoints" || strings.Contains(rest, "/checkpoints/") {
					return errdefs.NotImplemented(errors.New("balena-engine does not support checkpoints (it is built without CRIU)"))
				}
				name := strings.TrimSuffix(rest, "/"+op)
				if r.Method == http.MethodDelete {
					name = rest
				}
				return errdefs.NotFound(fmt.Errorf("No such container: %s", name)) //lint:ignore ST1005 Docker's wording
			}
			s.handle("/containers/", h)
			continue
		}
		h := func(_ http.ResponseWriter, r *http.Request) error {
			return errdefs.NotImplemented(fmt.Errorf("not implemented: balena-engine does not serve %s %s yet", r.Method, r.URL.Path))
		}
		s.handle(prefix, h)
		s.handle(prefix+"/", h)
	}
	// No plugin is ever installed, so listing and looking one up answer
	// as Docker with none: clients that probe every object type (docker
	// inspect NAME) go on to the next one instead of failing.
	s.handle("GET /plugins", func(w http.ResponseWriter, _ *http.Request) error {
		return writeJSON(w, http.StatusOK, []struct{}{})
	})
	s.handle("GET /plugins/{name}/json", func(_ http.ResponseWriter, r *http.Request) error {
		return errdefs.NotFound(fmt.Errorf("plugin %q not found", r.PathValue("name")))
	})
	for prefix, msg := range leftOut {
		err := errdefs.NotImplemented(errors.New(msg))
		h := func(http.ResponseWriter, *http.Request) error { return err }
		s.handle(prefix, h)
		s.handle(prefix+"/", h)
	}
}

// unserved answers a route Docker has since API version since, and the
// engine does not serve: before since as Docker does (400), then 501
// naming it and why.
func unserved(route, since, why string) handlerFunc {
	return func(_ http.ResponseWriter, r *http.Request) error {
		if apiversion.Compare(RequestVersion(r.Context()), since) < 0 {
			return errdefs.InvalidParameter(fmt.Errorf("%s requires minimum API version %s", route, since))
		}
		return errdefs.NotImplemented(fmt.Errorf("not implemented: balena-engine does not serve %s (%s)", route, why))
	}
}
