package api

import (
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/balena-os/balena-engine/src/container"
	"github.com/balena-os/balena-engine/src/image"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// commit is POST /commit: an image of a container's image and what the
// container changed, with the container's run settings (those of the
// request's body first, then the container's, then its image's), as
// docker commit makes it.
func (s *Server) commit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var body containertypes.Config
	if err := decodeOptionalBody(r, &body); err != nil {
		return err
	}
	c, err := s.cfg.Containers.Get(q.Get("container"))
	if err != nil {
		return err
	}
	parent, err := s.cfg.Images.Get(c.Image.String())
	if err != nil {
		return err
	}
	ref := ""
	if repo := q.Get("repo"); repo != "" {
		ref = repo
		if tag := q.Get("tag"); tag != "" {
			ref += ":" + tag
		}
	}
	cfg := parent.Config.Config
	overlayConfig(&cfg, c.Config)
	overlayConfig(&cfg, &body)
	pause := q.Get("pause") == "" || boolParam(r, "pause")
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(s.cfg.Containers.DiffTar(r.Context(), c.ID, pause, pw)) }()
	id, err := s.cfg.Images.Commit(r.Context(), pr, image.CommitOptions{Parent: parent.ID.String(), Config: cfg,
		Changes: q["changes"], Ref: ref, Author: q.Get("author"), Comment: q.Get("comment"),
		CreatedBy: strings.Join(append([]string{c.Path}, c.Args...), " ")})
	pr.Close()
	if err != nil {
		return err
	}
	if s.cfg.Events != nil {
		s.cfg.Events.Publish(events.ContainerEventType, events.ActionCommit, c.ID, map[string]string{"name": c.Name, "imageID": id.String(), "comment": q.Get("comment")})
	}
	return writeJSON(w, http.StatusCreated, map[string]string{"Id": id.String()})
}

// overlayConfig sets the image run settings that c sets (non-empty).
func overlayConfig(dst *dockerspec.DockerOCIImageConfig, c *containertypes.Config) {
	if c == nil {
		return
	}
	if c.User != "" {
		dst.User = c.User
	}
	if len(c.ExposedPorts) > 0 {
		if dst.ExposedPorts == nil {
			dst.ExposedPorts = map[string]struct{}{}
		}
		for p := range c.ExposedPorts {
			dst.ExposedPorts[p.String()] = struct{}{}
		}
	}
	if len(c.Env) > 0 {
		dst.Env = container.MergeEnv(dst.Env, c.Env)
	}
	if len(c.Entrypoint) > 0 {
		dst.Entrypoint = slices.Clone(c.Entrypoint)
	}
	if len(c.Cmd) > 0 {
		dst.Cmd = slices.Clone(c.Cmd)
	}
	if len(c.Volumes) > 0 {
		if dst.Volumes == nil {
			dst.Volumes = map[string]struct{}{}
		}
		maps.Copy(dst.Volumes, c.Volumes)
	}
	if c.WorkingDir != "" {
		dst.WorkingDir = c.WorkingDir
	}
	if len(c.Labels) > 0 {
		if dst.Labels == nil {
			dst.Labels = map[string]string{}
		}
		maps.Copy(dst.Labels, c.Labels)
	}
	if c.StopSignal != "" {
		dst.StopSignal = c.StopSignal
	}
	if c.Healthcheck != nil {
		h := *c.Healthcheck
		dst.Healthcheck = &dockerspec.HealthcheckConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries}
	}
	if len(c.OnBuild) > 0 {
		dst.OnBuild = slices.Clone(c.OnBuild)
	}
	if len(c.Shell) > 0 {
		dst.Shell = slices.Clone(c.Shell)
	}
}
