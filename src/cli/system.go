package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/build"
	containertypes "github.com/moby/moby/api/types/container"
	imagetypes "github.com/moby/moby/api/types/image"
	networktypes "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/system"
	volumetypes "github.com/moby/moby/api/types/volume"
)

var systemSubcommands = map[string]func(context.Context, *env, []string) error{
	"df": runSystemDF, "prune": runSystemPrune, "info": runInfo,
}

func runSystem(ctx context.Context, e *env, args []string) error {
	return dispatch(ctx, e, "system", "Manage balena-engine", systemSubcommands, args)
}

// dfRow is a line of "system df", with the names --format templates use.
type dfRow struct {
	Type, TotalCount, Active, Size, Reclaimable string
}

func runSystemDF(ctx context.Context, e *env, args []string) error {
	fs := e.flags("system", "system df [OPTIONS]")
	verbose := fs.BoolP("verbose", "v", false, "show detailed information on space usage")
	format := fs.String("format", "", "format output using a Go template")
	if err := parse(fs, args); err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	q := url.Values{}
	if *verbose {
		q.Set("verbose", "1")
	}
	resp, err := c.Do(ctx, "GET", "/system/df", q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var du system.DiskUsage
	if err := json.NewDecoder(resp.Body).Decode(&du); err != nil {
		return fmt.Errorf("decode /system/df: %w", err)
	}
	img, ctr, vol, bc := du.ImageUsage, du.ContainerUsage, du.VolumeUsage, du.BuildCacheUsage
	if img == nil {
		img = &imagetypes.DiskUsage{}
	}
	if ctr == nil {
		ctr = &containertypes.DiskUsage{}
	}
	if vol == nil {
		vol = &volumetypes.DiskUsage{}
	}
	if bc == nil {
		bc = &build.DiskUsage{}
	}
	if *verbose && *format == "" {
		return dfVerbose(e, img, ctr, vol)
	}
	f, err := newFormatter(e.stdout, *format, "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
		map[string]string{"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"})
	if err != nil {
		return err
	}
	for _, r := range []struct {
		name                  string
		total, active         int64
		size, reclaim         int64
		showReclaimPercentage bool
	}{
		{"Images", img.TotalCount, img.ActiveCount, img.TotalSize, img.Reclaimable, true},
		{"Containers", ctr.TotalCount, ctr.ActiveCount, ctr.TotalSize, ctr.Reclaimable, true},
		{"Local Volumes", vol.TotalCount, vol.ActiveCount, vol.TotalSize, vol.Reclaimable, true},
		{"Build Cache", bc.TotalCount, bc.ActiveCount, bc.TotalSize, bc.Reclaimable, false},
	} {
		reclaim := units.HumanSize(float64(r.reclaim))
		if r.showReclaimPercentage && r.size > 0 {
			reclaim += fmt.Sprintf(" (%d%%)", r.reclaim*100/r.size)
		} else if r.showReclaimPercentage {
			reclaim += " (0%)"
		}
		if err := f.row(dfRow{r.name, fmt.Sprint(r.total), fmt.Sprint(r.active), units.HumanSize(float64(r.size)), reclaim}); err != nil {
			return err
		}
	}
	return f.flush()
}

// dfVerbose prints "system df -v": a table per kind of object.
func dfVerbose(e *env, img *imagetypes.DiskUsage, ctr *containertypes.DiskUsage, vol *volumetypes.DiskUsage) error {
	fmt.Fprintln(e.stdout, "Images space usage:")
	fmt.Fprintln(e.stdout)
	f, _ := newFormatter(e.stdout, "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}", "",
		map[string]string{"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Size": "SIZE", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "Containers": "CONTAINERS"})
	for _, i := range img.Items {
		repo, tag := "<none>", "<none>"
		if len(i.RepoTags) > 0 {
			if n := strings.LastIndex(i.RepoTags[0], ":"); n > 0 {
				repo, tag = i.RepoTags[0][:n], i.RepoTags[0][n+1:]
			}
		}
		f.row(map[string]string{"Repository": repo, "Tag": tag, "ID": shortID(i.ID), "Size": units.HumanSize(float64(i.Size)),
			"SharedSize": units.HumanSize(float64(i.SharedSize)), "UniqueSize": units.HumanSize(float64(i.Size - i.SharedSize)),
			"Containers": fmt.Sprint(i.Containers)})
	}
	f.flush()
	fmt.Fprintln(e.stdout, "\nContainers space usage:")
	fmt.Fprintln(e.stdout)
	f, _ = newFormatter(e.stdout, "table {{.ID}}\t{{.Image}}\t{{.Size}}\t{{.Status}}\t{{.Names}}", "",
		map[string]string{"ID": "CONTAINER ID", "Image": "IMAGE", "Size": "SIZE", "Status": "STATUS", "Names": "NAMES"})
	for _, c := range ctr.Items {
		f.row(map[string]string{"ID": shortID(c.ID), "Image": c.Image, "Size": units.HumanSize(float64(c.SizeRw)),
			"Status": c.Status, "Names": strings.TrimPrefix(strings.Join(c.Names, ","), "/")})
	}
	f.flush()
	fmt.Fprintln(e.stdout, "\nLocal Volumes space usage:")
	fmt.Fprintln(e.stdout)
	f, _ = newFormatter(e.stdout, "table {{.Name}}\t{{.Links}}\t{{.Size}}", "",
		map[string]string{"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"})
	for _, v := range vol.Items {
		links, size := "-", "N/A"
		if v.UsageData != nil {
			links, size = fmt.Sprint(v.UsageData.RefCount), units.HumanSize(float64(v.UsageData.Size))
		}
		f.row(map[string]string{"Name": v.Name, "Links": links, "Size": size})
	}
	f.flush()
	fmt.Fprintln(e.stdout, "\nBuild cache usage: 0B")
	return nil
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	return id[:min(12, len(id))]
}

// runSystemPrune removes what nothing uses, in Docker's order: stopped
// containers, networks no container uses, with --volumes
// anonymous volumes no container uses, dangling images (all unused ones
// with -a), (the build cache: there is no builder).
func runSystemPrune(ctx context.Context, e *env, args []string) error {
	fs := e.flags("system", "system prune [OPTIONS]")
	all := fs.BoolP("all", "a", false, "remove all unused images, not just dangling ones")
	force := fs.BoolP("force", "f", false, "do not prompt for confirmation")
	volumes := fs.Bool("volumes", false, "prune anonymous volumes")
	if err := parse(fs, args); err != nil {
		return err
	}
	if !*force {
		warning := "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n"
		if *volumes {
			warning += "  - all anonymous volumes not used by at least one container\n"
		}
		if *all {
			warning += "  - all images without at least one container associated to them"
		} else {
			warning += "  - all dangling images"
		}
		if !confirm(e, warning) {
			return nil
		}
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	post := func(path string, filters string, v any) error {
		q := url.Values{}
		if filters != "" {
			q.Set("filters", filters)
		}
		resp, err := c.Do(ctx, "POST", path, q, nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(v)
	}
	var total uint64
	var cr containertypes.PruneReport
	if err := post("/containers/prune", "", &cr); err != nil {
		return err
	}
	section(e, "Deleted Containers:", cr.ContainersDeleted)
	total += cr.SpaceReclaimed
	var nr networktypes.PruneReport
	if err := post("/networks/prune", "", &nr); err != nil {
		return err
	}
	section(e, "Deleted Networks:", nr.NetworksDeleted)
	if *volumes {
		var vr volumetypes.PruneReport
		if err := post("/volumes/prune", "", &vr); err != nil {
			return err
		}
		section(e, "Deleted Volumes:", vr.VolumesDeleted)
		total += vr.SpaceReclaimed
	}
	filters := `{"dangling":["true"]}`
	if *all {
		filters = `{"dangling":["false"]}`
	}
	rep, err := c.ImagesPrune(ctx, filters)
	if err != nil {
		return err
	}
	section(e, "Deleted Images:", pruneLines(rep.ImagesDeleted))
	total += rep.SpaceReclaimed
	fmt.Fprintln(e.stdout, "Total reclaimed space: "+units.HumanSize(float64(total)))
	return nil
}

// section prints a heading, its lines and a blank line, if there are lines.
func section(e *env, heading string, lines []string) {
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(e.stdout, heading)
	for _, l := range lines {
		fmt.Fprintln(e.stdout, l)
	}
	fmt.Fprintln(e.stdout)
}
