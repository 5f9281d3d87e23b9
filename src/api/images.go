package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/balena-os/balena-engine/src/apiversion"
	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/image"
	"github.com/balena-os/balena-engine/src/registry"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	imagetypes "github.com/moby/moby/api/types/image"
	registrytypes "github.com/moby/moby/api/types/registry"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func (s *Server) registerImages() {
	s.handle("POST /images/create", s.imagesCreate)
	s.handle("GET /images/json", s.imagesList)
	s.handle("POST /images/prune", s.imagesPrune)
	s.handle("POST /images/load", s.imagesLoad)
	s.handle("POST /images/delta", s.imagesDelta)
	s.handle("GET /distribution/", s.distributionInspect)
	s.handle("POST /auth", s.auth)
	s.handle("GET /images/get", func(w http.ResponseWriter, r *http.Request) error {
		return s.imagesSave(w, r, r.URL.Query()["names"])
	})
	// Names hold slashes, so the operations on one image are told apart by
	// the path's last element.
	s.handle("/images/", s.imageOp)
}

func (s *Server) imageOp(w http.ResponseWriter, r *http.Request) error {
	rest := strings.TrimPrefix(r.URL.Path, "/images/")
	op := path.Base(rest)
	name := strings.TrimSuffix(rest, "/"+op)
	switch {
	case r.Method == http.MethodGet && op == "json" && name != rest:
		return s.imageInspect(w, r, name)
	case r.Method == http.MethodGet && op == "history" && name != rest:
		return s.imageHistory(w, r, name)
	case r.Method == http.MethodPost && op == "tag" && name != rest:
		return s.imageTag(w, r, name)
	case r.Method == http.MethodGet && op == "get" && name != rest:
		return s.imagesSave(w, r, []string{name})
	case r.Method == http.MethodDelete:
		return s.imageDelete(w, r, rest)
	case r.Method == http.MethodPost && op == "push" && name != rest:
		return s.imagePush(w, r, name)
	case r.Method == http.MethodGet && op == "attestations" && name != rest:
		return unserved("GET /images/{name}/attestations", "1.55", "the image store keeps no attestations")(w, r)
	case r.Method == http.MethodGet && rest == "search":
		return errdefs.NotImplemented(fmt.Errorf("not implemented: balena-engine does not serve %s %s yet", r.Method, r.URL.Path))
	}
	return errdefs.NotFound(errors.New("page not found"))
}

// streamWriter writes progress messages as JSON lines, flushing each, and
// remembers whether anything was sent: until then an error can still be
// an HTTP status.
type streamWriter struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	started bool
}

func (sw *streamWriter) send(m image.Message) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if !sw.started {
		sw.w.Header().Set("Content-Type", "application/json")
		sw.w.WriteHeader(http.StatusOK)
		sw.started = true
	}
	json.NewEncoder(sw.w).Encode(m)
	if f, ok := sw.w.(http.Flusher); ok {
		f.Flush()
	}
}

// finish ends a stream: an error before anything was sent is returned (the
// caller answers with its status); after, it goes into the stream.
func (sw *streamWriter) finish(err error) error {
	if err == nil {
		return nil
	}
	sw.mu.Lock()
	started := sw.started
	sw.mu.Unlock()
	if !started {
		return err
	}
	sw.send(image.ErrorMessage(err))
	return nil
}

// registryAuth decodes X-Registry-Auth: base64url JSON of Docker's
// AuthConfig.
func registryAuth(r *http.Request) (*registry.Credentials, error) {
	h := r.Header.Get("X-Registry-Auth")
	if h == "" {
		return nil, nil
	}
	var b []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.RawURLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err = enc.DecodeString(h); err == nil {
			break
		}
	}
	if err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid X-Registry-Auth header: %w", err))
	}
	var ac registrytypes.AuthConfig
	if err := json.Unmarshal(b, &ac); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid X-Registry-Auth header: %w", err))
	}
	if ac.Username == "" && ac.Auth != "" {
		if dec, err := base64.StdEncoding.DecodeString(ac.Auth); err == nil {
			ac.Username, ac.Password, _ = strings.Cut(string(dec), ":")
		}
	}
	return &registry.Credentials{Username: ac.Username, Password: ac.Password,
		IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken}, nil
}

func (s *Server) imagesCreate(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if q.Get("fromSrc") != "" {
		return s.imagesImport(w, r)
	}
	from := q.Get("fromImage")
	if from == "" {
		return errdefs.InvalidParameter(errors.New("fromImage or fromSrc is required"))
	}
	ref := from
	if tag := q.Get("tag"); tag != "" {
		if strings.Contains(tag, ":") {
			ref += "@" + tag // a digest
		} else {
			ref += ":" + tag
		}
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid reference format: %w", err))
	}
	opts := s.cfg.Pull
	if p := q.Get("platform"); p != "" {
		pl, err := platforms.Parse(p)
		if err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("invalid platform %q: %w", p, err))
		}
		opts.Platform = &ocispec.Platform{OS: pl.OS, Architecture: pl.Architecture, Variant: pl.Variant}
	}
	creds, err := registryAuth(r)
	if err != nil {
		return err
	}
	opts.Credentials = creds
	sw := &streamWriter{w: w}
	opts.Progress = sw.send
	if reference.IsNameOnly(named) {
		// No tag (docker pull --all-tags): every tag, as Docker.
		return sw.finish(s.pullAllTags(r.Context(), named, opts))
	}
	_, err = s.cfg.Images.Pull(r.Context(), s.cfg.Registry, ref, opts)
	return sw.finish(err)
}

// pullAllTags pulls every tag of a repository, in the order its registry
// lists them, as Docker does for a pull without a tag: each tag's
// progress, a tag not found (not for this platform) passed over, and one
// status line at the end for the repository.
func (s *Server) pullAllTags(ctx context.Context, named reference.Named, opts image.PullOptions) error {
	tags, err := s.cfg.Registry.Repository(named, opts.Credentials).Tags(ctx)
	if err != nil {
		return err
	}
	send := opts.Progress
	newer := false
	opts.Progress = func(m image.Message) {
		if status, ok := strings.CutPrefix(m.Status, "Status: "); ok {
			newer = newer || strings.HasPrefix(status, "Downloaded newer image")
			return // one for the repository, at the end
		}
		send(m)
	}
	for _, tag := range tags {
		tagged, err := reference.WithTag(named, tag)
		if err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("tag %q of %s: %w", tag, reference.FamiliarName(named), err))
		}
		_, err = s.cfg.Images.Pull(ctx, s.cfg.Registry, tagged.String(), opts)
		if errdefs.KindOf(err) == errdefs.KindNotFound {
			s.cfg.Log.Warn("pull of every tag: a tag passed over", "ref", tagged.String(), "err", err)
			continue
		}
		if err != nil {
			return err
		}
	}
	status := "Status: Image is up to date for "
	if newer {
		status = "Status: Downloaded newer image for "
	}
	send(image.Message{Status: status + reference.FamiliarName(named)})
	return nil
}

func (s *Server) imagesList(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r, "dangling", "reference", "label", "before", "since", "until")
	if err != nil {
		return err
	}
	version := RequestVersion(r.Context())
	if v := r.URL.Query().Get("filter"); v != "" && apiversion.Compare(version, "1.41") < 0 {
		f["reference"] = append(f["reference"], v) // the old clients' glob of names
	}
	dangling, err := f.bool("dangling", false)
	if err != nil {
		return err
	}
	_, danglingSet := f["dangling"]
	// As Docker: images created before the oldest image "before" names
	// and before "until", after the newest image "since" names.
	before, err := untilFilter(f, time.Now(), false)
	if err != nil {
		return err
	}
	var since time.Time
	for key, vs := range map[string][]string{"before": f["before"], "since": f["since"]} {
		for _, ref := range vs {
			img, err := s.cfg.Images.Get(ref)
			if err != nil {
				return err
			}
			if c := img.Config.Created; c != nil {
				switch {
				case key == "before" && (before.IsZero() || c.Before(before)):
					before = *c
				case key == "since" && c.After(since):
					since = *c
				}
			}
		}
	}
	imgs, err := s.cfg.Images.List()
	if err != nil {
		return err
	}
	ctrs, err := s.cfg.Containers.List()
	if err != nil {
		return err
	}
	users := map[string]int64{} // image ID -> containers, counted from API 1.51 as Docker
	for _, c := range ctrs {
		users[c.Image.String()]++
	}
	// shared-size (API 1.42): counted over every image, listed or not.
	var layerSize map[digest.Digest]int64
	var layerImages map[digest.Digest]int
	if boolParam(r, "shared-size") && apiversion.Compare(version, "1.42") >= 0 {
		layerSize, layerImages = s.layerShares(imgs)
	}
	// As Docker: a nameless image others were committed from is an
	// intermediate one, listed only with all.
	parents := map[digest.Digest]bool{}
	for _, img := range imgs {
		parents[img.Parent] = true
	}
	all := boolParam(r, "all")
	out := []imagetypes.Summary{}
	for _, img := range imgs {
		if !all && len(img.RepoTags) == 0 && len(img.RepoDigests) == 0 && parents[img.ID] {
			continue
		}
		if danglingSet && dangling != (len(img.RepoTags) == 0) {
			continue
		}
		if c := img.Config.Created; (!before.IsZero() && (c == nil || !c.Before(before))) || (!since.IsZero() && (c == nil || !c.After(since))) {
			continue
		}
		if !matchLabels(img.Config.Config.Labels, f["label"]) {
			continue
		}
		tags := img.RepoTags
		if pats := f["reference"]; len(pats) > 0 {
			tags = matchReferences(tags, pats)
			if len(tags) == 0 {
				continue
			}
		}
		sum := s.imageSummary(img, tags)
		if apiversion.Compare(version, "1.51") >= 0 {
			sum.Containers = users[img.ID.String()]
		}
		if layerSize != nil {
			sum.SharedSize = sharedSize(img, layerSize, layerImages)
		}
		if len(sum.RepoTags)+len(sum.RepoDigests) == 0 && apiversion.Compare(version, "1.43") < 0 {
			sum.RepoTags, sum.RepoDigests = []string{"<none>:<none>"}, []string{"<none>@<none>"}
		}
		out = append(out, sum)
	}
	return writeJSON(w, http.StatusOK, versionedSummaries(out, version))
}

// virtualSized is an image listed as Docker lists it before API 1.44:
// with VirtualSize, which it made equal to Size in 1.43.
type virtualSized struct {
	imagetypes.Summary
	VirtualSize int64
}

// versionedSummaries is an image list (or df's) in the request version's
// shape.
func versionedSummaries(list []imagetypes.Summary, version string) any {
	if list == nil || apiversion.Compare(version, "1.44") >= 0 {
		return list
	}
	out := make([]virtualSized, len(list))
	for i, sum := range list {
		out[i] = virtualSized{sum, sum.Size}
	}
	return out
}

// imageSummary is an image as GET /images/json lists it (with the given
// tags: a reference filter lists only those matching).
func (s *Server) imageSummary(img image.Image, tags []string) imagetypes.Summary {
	sum := imagetypes.Summary{
		ID: img.ID.String(), RepoTags: orEmpty(tags), RepoDigests: orEmpty(img.RepoDigests),
		Labels: img.Config.Config.Labels, Size: s.imageSize(img), Containers: -1, SharedSize: -1,
		ParentID: img.Parent.String(),
	}
	if img.Config.Created != nil {
		sum.Created = img.Config.Created.Unix()
	}
	return sum
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func matchLabels(labels map[string]string, want []string) bool {
	for _, l := range want {
		k, v, hasV := strings.Cut(l, "=")
		got, ok := labels[k]
		if !ok || (hasV && got != v) {
			return false
		}
	}
	return true
}

// matchReferences keeps the tags matching any pattern, as Docker's
// "reference" filter does: a pattern matches the familiar name with or
// without its tag (path.Match syntax).
func matchReferences(tags, pats []string) []string {
	var out []string
	for _, t := range tags {
		n, err := reference.ParseNormalizedNamed(t)
		if err != nil {
			continue
		}
		for _, p := range pats {
			full, _ := path.Match(p, reference.FamiliarString(n))
			name, _ := path.Match(p, reference.FamiliarName(n))
			if full || name {
				out = append(out, t)
				break
			}
		}
	}
	return out
}

func (s *Server) imageSize(img image.Image) int64 {
	var size int64
	for _, c := range img.ChainIDs {
		if l, err := s.cfg.Images.Layer(c); err == nil {
			size += l.Size
		}
	}
	return size
}

// platformParams reads platform queries (key: platform, or platforms for
// image delete): Docker's JSON form ({"os":
// "linux","architecture":"arm64"}, both required), or "os/arch[/variant]".
// Before version since, Docker has no such parameter, and none is read.
func platformParams(r *http.Request, key, since string) ([]ocispec.Platform, error) {
	if apiversion.Compare(RequestVersion(r.Context()), since) < 0 {
		return nil, nil
	}
	var out []ocispec.Platform
	for _, v := range r.URL.Query()[key] {
		if v == "" {
			continue
		}
		var pl ocispec.Platform
		if err := json.Unmarshal([]byte(v), &pl); err != nil || pl.OS == "" || pl.Architecture == "" {
			if !strings.HasPrefix(strings.TrimSpace(v), "{") {
				pl, err = platforms.Parse(v)
			} else if err == nil {
				err = errors.New("both OS and Architecture must be provided")
			}
			if err != nil {
				return nil, errdefs.InvalidParameter(fmt.Errorf("invalid platform %q: %w", v, err))
			}
		}
		out = append(out, pl)
	}
	return out, nil
}

// platformImage is the image name names, refused in Docker's words unless
// it is of a platform the request's platform query names (since API
// version since).
func (s *Server) platformImage(r *http.Request, name, since string) (image.Image, error) {
	want, err := platformParams(r, "platform", since)
	if err != nil {
		return image.Image{}, err
	}
	img, err := s.cfg.Images.Get(name)
	if err != nil {
		return image.Image{}, err
	}
	return img, img.CheckPlatform(name, want)
}

func (s *Server) imageInspect(w http.ResponseWriter, r *http.Request, name string) error {
	// manifests (API 1.48) lists an image index's manifests, which Docker
	// fills only from the containerd image store; here, as in Docker's
	// own store, an image is kept for one platform and none is listed.
	if apiversion.Compare(RequestVersion(r.Context()), "1.49") >= 0 && boolParam(r, "manifests") && r.URL.Query().Get("platform") != "" {
		return errdefs.InvalidParameter(errors.New("conflicting options: manifests and platform options cannot both be set"))
	}
	img, err := s.platformImage(r, name, "1.49")
	if err != nil {
		return err
	}
	c := img.Config
	resp := imagetypes.InspectResponse{
		ID: img.ID.String(), RepoTags: orEmpty(img.RepoTags), RepoDigests: orEmpty(img.RepoDigests),
		Author: c.Author, Config: &c.Config, Architecture: c.Architecture, Variant: c.Variant, Os: c.OS,
		OsVersion: c.OSVersion, Size: s.imageSize(img),
		RootFS: imagetypes.RootFS{Type: "layers"},
	}
	if c.Created != nil {
		resp.Created = c.Created.UTC().Format(time.RFC3339Nano)
	}
	for _, d := range c.RootFS.DiffIDs {
		resp.RootFS.Layers = append(resp.RootFS.Layers, d.String())
	}
	b, err := json.Marshal(resp)
	if err != nil {
		return err
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal(b, &out); err != nil {
		return err
	}
	version := RequestVersion(r.Context())
	if out["Config"], err = imageConfigFields(out["Config"], version); err != nil {
		return err
	}
	legacyImageFields(out, version)
	// The image committed from: Docker sends it empty before API 1.52.
	if img.Parent != "" || apiversion.Compare(version, "1.52") < 0 {
		out["Parent"], _ = json.Marshal(img.Parent.String())
	}
	return writeJSON(w, http.StatusOK, out)
}

// emptyContainerConfig is Docker's ContainerConfig of an image no
// container was committed to: a container config, every field empty.
const emptyContainerConfig = `{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,` +
	`"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"",` +
	`"Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}`

// legacyImageFields adds to an image inspect what Docker sends before API
// 1.45: Container and ContainerConfig, empty (Compose 1.29 reads
// ContainerConfig.Volumes when it recreates a container, and fails on
// its absence); and before 1.44 VirtualSize, equal to Size.
func legacyImageFields(out map[string]json.RawMessage, version string) {
	if apiversion.Compare(version, "1.44") < 0 {
		out["VirtualSize"] = out["Size"]
	}
	if apiversion.Compare(version, "1.45") < 0 {
		out["Container"] = json.RawMessage(`""`)
		out["ContainerConfig"] = json.RawMessage(emptyContainerConfig)
	}
}

// imageConfigFields adds the fields of an image's Config that the OCI
// form leaves out when empty and Docker sends anyway (clients index them:
// docker-py's image.attrs["Config"]["Entrypoint"]), and before API 1.50
// the container-only fields Docker sent, always empty.
func imageConfigFields(cfg json.RawMessage, version string) (json.RawMessage, error) {
	fields := map[string]json.RawMessage{}
	if len(cfg) > 0 && string(cfg) != "null" {
		if err := json.Unmarshal(cfg, &fields); err != nil {
			return nil, err
		}
	}
	set := func(key, empty string) {
		if _, ok := fields[key]; !ok {
			fields[key] = json.RawMessage(empty)
		}
	}
	for _, k := range []string{"User", "WorkingDir", "StopSignal"} {
		set(k, `""`)
	}
	for _, k := range []string{"Env", "Cmd", "Entrypoint", "Volumes", "OnBuild", "Labels"} {
		set(k, "null")
	}
	if apiversion.Compare(version, "1.50") < 0 {
		for _, k := range []string{"Hostname", "Domainname", "Image"} {
			set(k, `""`)
		}
		for _, k := range []string{"AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin", "StdinOnce"} {
			set(k, "false")
		}
	}
	return json.Marshal(fields)
}

func (s *Server) imageHistory(w http.ResponseWriter, r *http.Request, name string) error {
	img, err := s.platformImage(r, name, "1.48")
	if err != nil {
		return err
	}
	var out []imagetypes.HistoryResponseItem
	layerIdx := 0
	for _, h := range img.Config.History {
		item := imagetypes.HistoryResponseItem{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment, Tags: []string{}}
		if h.Created != nil {
			item.Created = h.Created.Unix()
		}
		if !h.EmptyLayer && layerIdx < len(img.ChainIDs) {
			if l, err := s.cfg.Images.Layer(img.ChainIDs[layerIdx]); err == nil {
				item.Size = l.Size
			}
			layerIdx++
		}
		out = append(out, item)
	}
	// Newest first, the image itself on top.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if len(out) > 0 {
		out[0].ID = img.ID.String()
		out[0].Tags = orEmpty(img.RepoTags)
	}
	if out == nil {
		out = []imagetypes.HistoryResponseItem{}
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) imageTag(w http.ResponseWriter, r *http.Request, name string) error {
	repo, tag := r.URL.Query().Get("repo"), r.URL.Query().Get("tag")
	if repo == "" {
		return errdefs.InvalidParameter(errors.New("repo is required"))
	}
	ref := repo
	if tag != "" {
		ref += ":" + tag
	}
	if err := s.cfg.Images.Tag(name, ref); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *Server) imageDelete(w http.ResponseWriter, r *http.Request, name string) error {
	// platforms (API 1.50): images here are of one platform each, so the
	// image goes only when it is of the one asked for; Docker's image
	// store without containerd takes one platform at most, as here.
	want, err := platformParams(r, "platforms", "1.50")
	if err != nil {
		return err
	}
	if len(want) > 1 {
		return errdefs.InvalidParameter(errors.New("multiple platforms are not supported"))
	}
	if len(want) == 1 {
		img, err := s.cfg.Images.Get(name)
		if err != nil {
			return err
		}
		if err := img.CheckPlatform(name, want); err != nil {
			return err
		}
	}
	res, err := s.cfg.Images.Delete(name, boolParam(r, "force"), !boolParam(r, "noprune"))
	if err != nil {
		return err
	}
	out := make([]imagetypes.DeleteResponse, 0, len(res))
	for _, d := range res {
		out = append(out, imagetypes.DeleteResponse{Untagged: d.Untagged, Deleted: d.Deleted})
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) imagesPrune(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r, "dangling", "label", "label!", "until")
	if err != nil {
		return err
	}
	danglingOnly, err := f.bool("dangling", true)
	if err != nil {
		return err
	}
	// As Docker: images created until then (no creation time: kept).
	until, err := untilFilter(f, time.Now(), true)
	if err != nil {
		return err
	}
	imgs, err := s.cfg.Images.List()
	if err != nil {
		return err
	}
	resp := imagetypes.PruneReport{ImagesDeleted: []imagetypes.DeleteResponse{}}
	for _, img := range imgs {
		if danglingOnly && len(img.RepoTags) > 0 {
			continue
		}
		if !pruneLabels(f, img.Config.Config.Labels) || (!until.IsZero() && (img.Config.Created == nil || img.Config.Created.After(until))) {
			continue
		}
		// An image a container uses stays as it is, tags and all, as
		// Docker leaves it (a forced delete would untag it).
		if s.cfg.Images.InUse != nil && s.cfg.Images.InUse(img.ID.String()) != "" {
			continue
		}
		size := s.imageSize(img)
		res, err := s.cfg.Images.Delete(img.ID.String(), true, true)
		if err != nil {
			return err
		}
		for _, d := range res {
			resp.ImagesDeleted = append(resp.ImagesDeleted, imagetypes.DeleteResponse{Untagged: d.Untagged, Deleted: d.Deleted})
		}
		resp.SpaceReclaimed += uint64(size)
	}
	if s.cfg.Events != nil {
		s.cfg.Events.Publish(events.ImageEventType, events.ActionPrune, "",
			map[string]string{"reclaimed": fmt.Sprint(resp.SpaceReclaimed)})
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (s *Server) imagesLoad(w http.ResponseWriter, r *http.Request) error {
	want, err := platformParams(r, "platform", "1.48")
	if err != nil {
		return err
	}
	sw := &streamWriter{w: w}
	err = s.cfg.Images.LoadPlatforms(r.Context(), r.Body, sw.send, want)
	if err == nil && !sw.started {
		sw.send(image.Message{}) // an empty body would confuse clients
	}
	return sw.finish(err)
}

// imagesDelta is balenaEngine's POST /images/delta?src=A&dest=B[&t=TAG]
// [&format=balena]: a progress stream ending in "Created delta: ID".
func (s *Server) imagesDelta(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	src, dest := q.Get("src"), q.Get("dest")
	if src == "" || dest == "" {
		return errdefs.InvalidParameter(errors.New("src and dest are required: the images the delta goes from and to"))
	}
	// Errors found before the first line answer with a status.
	for _, n := range []string{src, dest} {
		if _, err := s.cfg.Images.Get(n); err != nil {
			return err
		}
	}
	sw := &streamWriter{w: w}
	_, err := s.cfg.Images.CreateDelta(r.Context(), src, dest, image.DeltaOptions{Tag: q.Get("t"), Format: q.Get("format"), Progress: sw.send})
	return sw.finish(err)
}

func (s *Server) imagesSave(w http.ResponseWriter, r *http.Request, names []string) error {
	if len(names) == 0 {
		return errdefs.InvalidParameter(errors.New("no image names given"))
	}
	// platform= (API 1.48, JSON or "os/arch[/variant]"): the images kept
	// here are of one platform each, which must be among those asked for.
	// Every name must resolve before the first byte: errors after that can
	// only cut the stream.
	for _, n := range names {
		if _, err := s.platformImage(r, n, "1.48"); err != nil {
			return err
		}
	}
	w.Header().Set("Content-Type", "application/x-tar")
	err := s.cfg.Images.Save(r.Context(), w, names)
	if err != nil {
		s.cfg.Log.Error("save images", "names", names, "err", err)
		panic(http.ErrAbortHandler) // the client must not take a cut stream for a whole one
	}
	return nil
}

// imagesImport is POST /images/create?fromSrc=: a root filesystem tarball
// from the request body ("-") or an http(s) URL.
func (s *Server) imagesImport(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	src := q.Get("fromSrc")
	body := io.Reader(r.Body)
	if src != "-" {
		u, err := url.Parse(src)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return errdefs.InvalidParameter(fmt.Errorf("invalid fromSrc %q: want - (the request body) or an http(s) URL", src))
		}
		rc, err := image.OpenImportURL(r.Context(), src, image.MaxImportURLSize)
		if err != nil {
			return err
		}
		defer rc.Close()
		body = rc
	}
	ref := q.Get("repo")
	if t := q.Get("tag"); ref != "" && t != "" {
		ref += ":" + t
	}
	opts := image.ImportOptions{Ref: ref, Message: q.Get("message"), Changes: q["changes"], Source: src}
	if p := q.Get("platform"); p != "" {
		pl, err := platforms.Parse(p)
		if err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("invalid platform %q: %w", p, err))
		}
		opts.Platform = &pl
	}
	id, err := s.cfg.Images.Import(r.Context(), body, opts)
	if err != nil {
		return err
	}
	sw := &streamWriter{w: w}
	sw.send(image.Message{Status: id.String()})
	return nil
}

// distributionInspect is GET /distribution/{name}/json: what the registry
// holds for a reference, without pulling it.
func (s *Server) distributionInspect(w http.ResponseWriter, r *http.Request) error {
	name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/distribution/"), "/json")
	n, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid reference format: %w", err))
	}
	n = reference.TagNameOnly(n)
	creds, err := registryAuth(r)
	if err != nil {
		return err
	}
	desc, plats, err := s.cfg.Registry.Repository(n, creds).Describe(r.Context(), n)
	if err != nil {
		return err
	}
	if plats == nil {
		plats = []ocispec.Platform{}
	}
	return writeJSON(w, http.StatusOK, registrytypes.DistributionInspect{Descriptor: desc, Platforms: plats})
}

func (s *Server) imagePush(w http.ResponseWriter, r *http.Request, name string) error {
	creds, err := registryAuth(r)
	if err != nil {
		return err
	}
	want, err := platformParams(r, "platform", "1.46")
	if err != nil {
		return err
	}
	sw := &streamWriter{w: w}
	err = s.cfg.Images.Push(r.Context(), s.cfg.Registry, name, r.URL.Query().Get("tag"),
		image.PushOptions{Credentials: creds, Progress: sw.send, Platforms: want})
	return sw.finish(err)
}

// auth is POST /auth: check credentials against a registry, as "docker
// login" asks. The client stores them; the daemon keeps nothing.
func (s *Server) auth(w http.ResponseWriter, r *http.Request) error {
	var ac registrytypes.AuthConfig
	if err := decodeBody(r, &ac); err != nil {
		return err
	}
	if ac.Username == "" && ac.Auth != "" {
		if dec, err := base64.StdEncoding.DecodeString(ac.Auth); err == nil {
			ac.Username, ac.Password, _ = strings.Cut(string(dec), ":")
		}
	}
	host := ac.ServerAddress
	for _, p := range []string{"https://", "http://"} {
		host = strings.TrimPrefix(host, p)
	}
	host = strings.TrimSuffix(strings.TrimSuffix(host, "/v1/"), "/")
	creds := &registry.Credentials{Username: ac.Username, Password: ac.Password, IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken}
	if err := s.cfg.Registry.Login(r.Context(), host, creds); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, registrytypes.AuthResponse{Status: "Login Succeeded"})
}
