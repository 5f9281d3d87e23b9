package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/balena-os/balena-engine/src/client"
	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/go-units"
	imagetypes "github.com/moby/moby/api/types/image"
)

func runPull(ctx context.Context, e *env, args []string) error {
	fs := e.flags("pull", "pull [OPTIONS] NAME[:TAG|@DIGEST]")
	platform := fs.String("platform", "", "set platform if server is multi-platform capable")
	quiet := fs.BoolP("quiet", "q", false, "suppress verbose output")
	all := fs.BoolP("all-tags", "a", false, "download all tagged images in the repository")
	if err := parseExact(fs, args, 1); err != nil {
		return err
	}
	n, err := reference.ParseNormalizedNamed(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("invalid reference format: %w", err)
	}
	if *all && !reference.IsNameOnly(n) {
		return errors.New("tag can't be used with --all-tags/-a") // the docker CLI's words
	}
	if reference.IsNameOnly(n) && !*all {
		n = reference.TagNameOnly(n)
		if !*quiet {
			fmt.Fprintln(e.stdout, "Using default tag: latest")
		}
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	body, err := c.ImagePull(ctx, n.String(), *platform, registryAuthFor(n.String()))
	if err != nil {
		return err
	}
	defer body.Close()
	out := e.stdout
	if *quiet {
		out = discard{}
	}
	if err := displayStream(body, out); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, n.String())
	return nil
}

// runDelta is balenaEngine's "image delta": the delta image that takes a
// device from SOURCE to TARGET.
func runDelta(ctx context.Context, e *env, args []string) error {
	fs := e.flags("image delta", "image delta [OPTIONS] SOURCE_IMAGE TARGET_IMAGE")
	tag := fs.StringP("tag", "t", "", "name and optionally a tag in the 'name:tag' format for the delta image")
	format := fs.String("format", "", "delta format: native (the default) or balena (balenaEngine's, for devices that run it)")
	if err := parseExact(fs, args, 2); err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	body, err := c.ImageDelta(ctx, fs.Arg(0), fs.Arg(1), *tag, *format)
	if err != nil {
		return err
	}
	defer body.Close()
	return displayStream(body, e.stdout)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// imageRow is what --format templates of "images" see.
type imageRow struct {
	ID, Repository, Tag, Digest, CreatedSince, CreatedAt, Size string
	Containers                                                 string
}

var imageHeaders = map[string]string{
	"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
	"CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS",
}

func shortImageID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func runImages(ctx context.Context, e *env, args []string) error {
	fs := e.flags("images", "images [OPTIONS] [REPOSITORY[:TAG]]")
	quiet := fs.BoolP("quiet", "q", false, "only show image IDs")
	all := fs.BoolP("all", "a", false, "show all images")
	digests := fs.Bool("digests", false, "show digests")
	noTrunc := fs.Bool("no-trunc", false, "don't truncate output")
	format := fs.String("format", "", "format output using a Go template")
	filter := fs.StringArrayP("filter", "f", nil, "filter output based on conditions provided")
	if err := parse(fs, args); err != nil {
		return err
	}
	_ = all // every image is a top-level image here: no build cache layers
	filters, err := parseFilters(*filter)
	if err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return usageError{`"balena-engine images" requires at most 1 argument.`}
	}
	if fs.NArg() == 1 {
		filters["reference"] = append(filters["reference"], fs.Arg(0))
	}
	q := url.Values{}
	setFilters(q, filters)
	c, err := e.connect()
	if err != nil {
		return err
	}
	imgs, err := c.ImageList(ctx, q)
	if err != nil {
		return err
	}
	if *quiet {
		seen := map[string]bool{}
		for _, img := range imgs {
			id := shortImageID(img.ID)
			if *noTrunc {
				id = img.ID
			}
			if !seen[id] {
				seen[id] = true
				fmt.Fprintln(e.stdout, id)
			}
		}
		return nil
	}
	def := "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	if *digests {
		def = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	}
	f, err := newFormatter(e.stdout, *format, def, imageHeaders)
	if err != nil {
		return err
	}
	for _, img := range imgs {
		for _, row := range imageRows(img, *noTrunc) {
			if err := f.row(row); err != nil {
				return err
			}
		}
	}
	return f.flush()
}

func imageRows(img imagetypes.Summary, noTrunc bool) []imageRow {
	base := imageRow{ID: shortImageID(img.ID), Size: units.HumanSizeWithPrecision(float64(img.Size), 3),
		Digest: "<none>", Containers: "N/A"}
	if noTrunc {
		base.ID = img.ID
	}
	created := time.Unix(img.Created, 0)
	base.CreatedSince = units.HumanDuration(time.Since(created)) + " ago"
	base.CreatedAt = created.Format("2006-01-02 15:04:05 -0700 MST")
	digests := map[string]string{} // repository -> digest
	for _, rd := range img.RepoDigests {
		if n, err := reference.ParseNormalizedNamed(rd); err == nil {
			if c, ok := n.(reference.Canonical); ok {
				digests[reference.FamiliarName(n)] = c.Digest().String()
			}
		}
	}
	var rows []imageRow
	for _, t := range img.RepoTags {
		n, err := reference.ParseNormalizedNamed(t)
		if err != nil {
			continue
		}
		r := base
		r.Repository = reference.FamiliarName(n)
		if nt, ok := n.(reference.Tagged); ok {
			r.Tag = nt.Tag()
		}
		if d, ok := digests[r.Repository]; ok {
			r.Digest = d
		}
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		r := base
		r.Repository, r.Tag = "<none>", "<none>"
		for repo, d := range digests {
			r.Repository, r.Digest = repo, d
			break
		}
		rows = append(rows, r)
	}
	return rows
}

func runRmi(ctx context.Context, e *env, args []string) error {
	fs := e.flags("rmi", "rmi [OPTIONS] IMAGE [IMAGE...]")
	force := fs.BoolP("force", "f", false, "force removal of the image")
	noPrune := fs.Bool("no-prune", false, "do not delete untagged parents")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{`"balena-engine rmi" requires at least 1 argument.`}
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	var errs []string
	for _, name := range fs.Args() {
		res, err := c.ImageRemove(ctx, name, *force, *noPrune)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		for _, r := range res {
			if r.Untagged != "" {
				fmt.Fprintln(e.stdout, "Untagged: "+r.Untagged)
			}
			if r.Deleted != "" {
				fmt.Fprintln(e.stdout, "Deleted: "+r.Deleted)
			}
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

func runTag(ctx context.Context, e *env, args []string) error {
	fs := e.flags("tag", "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]")
	if err := parseExact(fs, args, 2); err != nil {
		return err
	}
	n, err := reference.ParseNormalizedNamed(fs.Arg(1))
	if err != nil {
		return fmt.Errorf("invalid reference format: %w", err)
	}
	tag := ""
	if nt, ok := n.(reference.Tagged); ok {
		tag = nt.Tag()
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	return c.ImageTag(ctx, fs.Arg(0), reference.TrimNamed(n).String(), tag)
}

func runInspect(ctx context.Context, e *env, args []string) error {
	fs := e.flags("inspect", "inspect [OPTIONS] NAME|ID [NAME|ID...]")
	format := fs.StringP("format", "f", "", "format output using a Go template")
	typ := fs.String("type", "", "only inspect objects of the given type (container, image)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{`"balena-engine inspect" requires at least 1 argument.`}
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	return inspectEach(e, fs.Args(), *format, func(name string) (json.RawMessage, error) {
		var raw json.RawMessage
		err := errors.New("unknown type " + *typ)
		if *typ == "" || *typ == "container" {
			raw, err = c.ContainerInspectRaw(ctx, name)
		}
		if (*typ == "" && errdefs.KindOf(err) == errdefs.KindNotFound) || *typ == "image" {
			raw, err = c.ImageInspectRaw(ctx, name)
		}
		if errdefs.KindOf(err) == errdefs.KindNotFound && *typ == "" {
			err = fmt.Errorf("Error: No such object: %s", name)
		}
		return raw, err
	})
}

type historyRow struct {
	ID, CreatedSince, CreatedAt, CreatedBy, Size, Comment string
}

func runHistory(ctx context.Context, e *env, args []string) error {
	fs := e.flags("history", "history [OPTIONS] IMAGE")
	quiet := fs.BoolP("quiet", "q", false, "only show image IDs")
	noTrunc := fs.Bool("no-trunc", false, "don't truncate output")
	format := fs.String("format", "", "format output using a Go template")
	c, err := e.parseConnect(fs, args, 1)
	if err != nil {
		return err
	}
	items, err := c.ImageHistory(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	if *quiet {
		for _, it := range items {
			id := it.ID
			if !*noTrunc && id != "<missing>" {
				id = shortImageID(id)
			}
			fmt.Fprintln(e.stdout, id)
		}
		return nil
	}
	f, err := newFormatter(e.stdout, *format, "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
		map[string]string{"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"})
	if err != nil {
		return err
	}
	for _, it := range items {
		created := time.Unix(it.Created, 0)
		r := historyRow{ID: it.ID, CreatedSince: units.HumanDuration(time.Since(created)) + " ago",
			CreatedAt: created.Format(time.RFC3339), CreatedBy: it.CreatedBy,
			Size: units.HumanSizeWithPrecision(float64(it.Size), 3), Comment: it.Comment}
		if !*noTrunc {
			if r.ID != "<missing>" {
				r.ID = shortImageID(r.ID)
			}
			if len(r.CreatedBy) > 45 {
				r.CreatedBy = r.CreatedBy[:44] + "…"
			}
		}
		if err := f.row(r); err != nil {
			return err
		}
	}
	return f.flush()
}

func runImagePrune(ctx context.Context, e *env, args []string) error {
	fs := e.flags("image", "image prune [OPTIONS]")
	all := fs.BoolP("all", "a", false, "remove all unused images, not just dangling ones")
	force := fs.BoolP("force", "f", false, "do not prompt for confirmation")
	filter := fs.StringArray("filter", nil, `provide filter values (e.g. "label=<key>=<value>")`)
	if err := parse(fs, args); err != nil {
		return err
	}
	if !*force {
		warning := "WARNING! This will remove all dangling images."
		if *all {
			warning = "WARNING! This will remove all images without at least one container associated to them."
		}
		if !confirm(e, warning) {
			return nil
		}
	}
	filters := map[string][]string{}
	for _, f := range *filter {
		k, v, _ := strings.Cut(f, "=")
		filters[k] = append(filters[k], v)
	}
	if *all {
		filters["dangling"] = []string{"false"}
	}
	b, _ := json.Marshal(filters)
	c, err := e.connect()
	if err != nil {
		return err
	}
	rep, err := c.ImagesPrune(ctx, string(b))
	if err != nil {
		return err
	}
	section(e, "Deleted Images:", pruneLines(rep.ImagesDeleted))
	fmt.Fprintln(e.stdout, "Total reclaimed space: "+units.HumanSize(float64(rep.SpaceReclaimed)))
	return nil
}

// pruneLines are a prune's untagged and deleted images, as Docker lists them.
func pruneLines(items []imagetypes.DeleteResponse) []string {
	var lines []string
	for _, d := range items {
		if d.Untagged != "" {
			lines = append(lines, "untagged: "+d.Untagged)
		}
		if d.Deleted != "" {
			lines = append(lines, "deleted: "+d.Deleted)
		}
	}
	return lines
}

// imageSubcommands are "balena-engine image COMMAND".
var imageSubcommands = map[string]func(context.Context, *env, []string) error{
	"ls": runImages, "list": runImages, "pull": runPull, "rm": runRmi, "remove": runRmi,
	"tag": runTag, "inspect": runImageInspect, "history": runHistory, "prune": runImagePrune,
	"save": runSave, "load": runLoad, "import": runImport, "push": runPush,
	"delta": runDelta,
}

func runImage(ctx context.Context, e *env, args []string) error {
	return dispatch(ctx, e, "image", "Manage images", imageSubcommands, args)
}

// dispatch runs "balena-engine GROUP COMMAND" from a group's table.
func dispatch(ctx context.Context, e *env, group, summary string, table map[string]func(context.Context, *env, []string) error, args []string) error {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" {
		names := make([]string, 0, len(table))
		for n := range table {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(e.stdout, "Usage:  balena-engine %s COMMAND\n\n%s\n\nCommands:\n  %s\n", group, summary, strings.Join(names, "\n  "))
		return nil
	}
	run, ok := table[args[0]]
	if !ok {
		return usageError{fmt.Sprintf("balena-engine %s: '%s' is not a balena-engine %s command", group, args[0], group)}
	}
	return run(ctx, e, args[1:])
}

func runSave(ctx context.Context, e *env, args []string) error {
	fs := e.flags("save", "save [OPTIONS] IMAGE [IMAGE...]")
	output := fs.StringP("output", "o", "", "write to a file, instead of STDOUT")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{`"balena-engine save" requires at least 1 argument.`}
	}
	return writeArchive(e, *output, "failed to save image", func(c *client.Client) (io.ReadCloser, error) { return c.ImageSave(ctx, fs.Args()) })
}

// writeArchive fetches an archive from the daemon and writes it out (see
// writeOutput); it refuses to write one to a terminal.
func writeArchive(e *env, output, failure string, fetch func(*client.Client) (io.ReadCloser, error)) error {
	if output == "" && isTerminal(e.stdout) {
		return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	body, err := fetch(c)
	if err != nil {
		return err
	}
	defer body.Close()
	if err := writeOutput(e, output, body); err != nil {
		return fmt.Errorf("%s: %w", failure, err)
	}
	return nil
}

// writeOutput copies an archive to stdout, or to the file named: written
// beside it and renamed, so that a failure leaves no truncated archive
// under the name asked for.
func writeOutput(e *env, output string, body io.Reader) error {
	if output == "" {
		_, err := io.Copy(e.stdout, body)
		return err
	}
	tmp := output + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err = io.Copy(f, body); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, output)
}

func runLoad(ctx context.Context, e *env, args []string) error {
	fs := e.flags("load", "load [OPTIONS]")
	input := fs.StringP("input", "i", "", "read from tar archive file, instead of STDIN")
	quiet := fs.BoolP("quiet", "q", false, "suppress the load output")
	if err := parse(fs, args); err != nil {
		return err
	}
	var in io.Reader = e.stdin
	if *input != "" {
		f, err := os.Open(*input)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	} else if f, ok := e.stdin.(*os.File); ok && isTerminal(f) {
		return errors.New("requested load from stdin, but stdin is empty")
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	body, err := c.ImageLoad(ctx, in, *quiet)
	if err != nil {
		return err
	}
	defer body.Close()
	return displayLoad(body, e.stdout)
}

func runImport(ctx context.Context, e *env, args []string) error {
	fs := e.flags("import", "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]")
	changes := fs.StringArrayP("change", "c", nil, "apply Dockerfile instruction to the created image")
	message := fs.StringP("message", "m", "", "set commit message for imported image")
	platform := fs.String("platform", "", "set platform if server is multi-platform capable")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return usageError{`"balena-engine import" requires at least 1 and at most 2 arguments.`}
	}
	q := url.Values{"message": {*message}, "changes": *changes}
	if *platform != "" {
		q.Set("platform", *platform)
	}
	if fs.NArg() == 2 {
		n, err := reference.ParseNormalizedNamed(fs.Arg(1))
		if err != nil {
			return fmt.Errorf("invalid reference format: %w", err)
		}
		q.Set("repo", reference.TrimNamed(n).String())
		if t, ok := n.(reference.Tagged); ok {
			q.Set("tag", t.Tag())
		}
	}
	src := fs.Arg(0)
	var body io.Reader
	switch {
	case src == "-":
		body = e.stdin
	case strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://"):
	default:
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		body, src = f, "-"
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	out, err := c.ImageImport(ctx, src, body, q)
	if err != nil {
		return err
	}
	defer out.Close()
	return displayStream(out, e.stdout)
}

func runPush(ctx context.Context, e *env, args []string) error {
	fs := e.flags("push", "push [OPTIONS] NAME[:TAG]")
	allTags := fs.BoolP("all-tags", "a", false, "push all tags of an image to the repository")
	quiet := fs.BoolP("quiet", "q", false, "suppress verbose output")
	if err := parseExact(fs, args, 1); err != nil {
		return err
	}
	n, err := reference.ParseNormalizedNamed(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("invalid reference format: %w", err)
	}
	tag := ""
	if t, ok := n.(reference.Tagged); ok {
		if *allTags {
			return usageError{"tag can't be used with --all-tags/-a"}
		}
		tag = t.Tag()
	} else if !*allTags {
		tag = "latest"
		if !*quiet {
			fmt.Fprintln(e.stdout, "Using default tag: latest")
		}
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	body, err := c.ImagePush(ctx, reference.TrimNamed(n).String(), tag, registryAuthFor(n.String()))
	if err != nil {
		return err
	}
	defer body.Close()
	out := e.stdout
	if *quiet {
		out = discard{}
	}
	if err := displayStream(body, out); err != nil {
		return err
	}
	if *quiet {
		fmt.Fprintln(e.stdout, n.String())
	}
	return nil
}

func runImageInspect(ctx context.Context, e *env, args []string) error {
	return runInspect(ctx, e, append([]string{"--type", "image"}, args...))
}

// printObjects prints inspect results: through a --format template each,
// or as a JSON array of the objects as the daemon sent them, indented (or,
// with "json", on one line).
func printObjects(e *env, objs []json.RawMessage, format string) error {
	if format != "" && format != "json" {
		f, err := newFormatter(e.stdout, format, "", nil)
		if err != nil {
			return err
		}
		for _, raw := range objs {
			var v any
			json.Unmarshal(raw, &v)
			if err := f.row(v); err != nil {
				return err
			}
		}
		if len(objs) == 0 {
			fmt.Fprintln(e.stdout) // as Docker's
		}
		return nil
	}
	list := []byte("[")
	for i, raw := range objs {
		if i > 0 {
			list = append(list, ',')
		}
		list = append(list, raw...)
	}
	list = append(list, ']')
	var buf bytes.Buffer
	if format == "json" {
		json.Compact(&buf, list)
	} else {
		json.Indent(&buf, list, "", "    ")
	}
	fmt.Fprintln(e.stdout, buf.String())
	return nil
}
