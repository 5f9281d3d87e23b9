package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/balena-os/balena-engine/src/client"
	volumetypes "github.com/moby/moby/api/types/volume"
)

var volumeSubcommands = map[string]func(context.Context, *env, []string) error{
	"create": runVolumeCreate, "ls": runVolumeLs, "list": runVolumeLs, "inspect": runVolumeInspect,
	"rm": runVolumeRm, "remove": runVolumeRm, "prune": runVolumePrune,
}

func runVolume(ctx context.Context, e *env, args []string) error {
	return dispatch(ctx, e, "volume", "Manage volumes", volumeSubcommands, args)
}

func runVolumeCreate(ctx context.Context, e *env, args []string) error {
	fs := e.flags("volume", "volume create [OPTIONS] [VOLUME]")
	labels := fs.StringArray("label", nil, "set metadata for a volume")
	driver := fs.StringP("driver", "d", "local", "specify volume driver name")
	opts := fs.StringArrayP("opt", "o", nil, "set driver specific options")
	name := fs.String("name", "", "specify volume name")
	if err := parse(fs, args); err != nil {
		return err
	}
	req := volumetypes.CreateRequest{Name: *name, Driver: *driver}
	if fs.NArg() == 1 {
		req.Name = fs.Arg(0)
	}
	for _, l := range *labels {
		k, v, _ := strings.Cut(l, "=")
		if req.Labels == nil {
			req.Labels = map[string]string{}
		}
		req.Labels[k] = v
	}
	for _, o := range *opts {
		k, v, _ := strings.Cut(o, "=")
		if req.DriverOpts == nil {
			req.DriverOpts = map[string]string{}
		}
		req.DriverOpts[k] = v
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	b, _ := json.Marshal(req)
	resp, err := c.Do(ctx, "POST", "/volumes/create", nil, strings.NewReader(string(b)))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var v volumetypes.Volume
	json.NewDecoder(resp.Body).Decode(&v)
	fmt.Fprintln(e.stdout, v.Name)
	return nil
}

func runVolumeLs(ctx context.Context, e *env, args []string) error {
	fs := e.flags("volume", "volume ls [OPTIONS]")
	quiet := fs.BoolP("quiet", "q", false, "only display volume names")
	format := fs.String("format", "", "format output using a Go template")
	filter := fs.StringArrayP("filter", "f", nil, "provide filter values")
	if err := parse(fs, args); err != nil {
		return err
	}
	q := url.Values{}
	if len(*filter) > 0 {
		m := map[string][]string{}
		for _, f := range *filter {
			k, v, _ := strings.Cut(f, "=")
			m[k] = append(m[k], v)
		}
		b, _ := json.Marshal(m)
		q.Set("filters", string(b))
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	var out volumetypes.ListResponse
	resp, err := c.Do(ctx, "GET", "/volumes", q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return err
	}
	if *quiet {
		for _, v := range out.Volumes {
			fmt.Fprintln(e.stdout, v.Name)
		}
		return nil
	}
	f, err := newFormatter(e.stdout, *format, "table {{.Driver}}\t{{.Name}}", map[string]string{"Driver": "DRIVER", "Name": "VOLUME NAME", "Mountpoint": "MOUNTPOINT"})
	if err != nil {
		return err
	}
	for _, v := range out.Volumes {
		if err := f.row(v); err != nil {
			return err
		}
	}
	return f.flush()
}

func runVolumeInspect(ctx context.Context, e *env, args []string) error {
	fs := e.flags("volume", "volume inspect [OPTIONS] VOLUME [VOLUME...]")
	format := fs.StringP("format", "f", "", "format output using a Go template")
	if err := parse(fs, args); err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	return inspectEach(e, fs.Args(), *format, func(name string) (json.RawMessage, error) {
		resp, err := c.Do(ctx, "GET", "/volumes/"+name, nil, nil)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var raw json.RawMessage
		return raw, json.NewDecoder(resp.Body).Decode(&raw)
	})
}

func runVolumeRm(ctx context.Context, e *env, args []string) error {
	fs := e.flags("volume", "volume rm [OPTIONS] VOLUME [VOLUME...]")
	force := fs.BoolP("force", "f", false, "force the removal of one or more volumes")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{`"balena-engine volume rm" requires at least 1 argument.`}
	}
	return eachContainer(ctx, e, fs.Args(), func(c *client.Client, name string) error {
		resp, err := c.Do(ctx, "DELETE", "/volumes/"+name, url.Values{"force": {fmt.Sprint(*force)}}, nil)
		if err == nil {
			resp.Body.Close()
		}
		return err
	})
}

func runVolumePrune(ctx context.Context, e *env, args []string) error {
	fs := e.flags("volume", "volume prune [OPTIONS]")
	all := fs.BoolP("all", "a", false, "remove all unused volumes, not just anonymous ones")
	force := fs.BoolP("force", "f", false, "do not prompt for confirmation")
	if err := parse(fs, args); err != nil {
		return err
	}
	if !*force {
		return errors.New("volume prune needs --force (-f): no prompt is implemented")
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	q := url.Values{}
	if *all {
		q.Set("filters", `{"all":["true"]}`)
	}
	resp, err := c.Do(ctx, "POST", "/volumes/prune", q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var rep volumetypes.PruneReport
	json.NewDecoder(resp.Body).Decode(&rep)
	if len(rep.VolumesDeleted) > 0 {
		fmt.Fprintln(e.stdout, "Deleted Volumes:")
		for _, v := range rep.VolumesDeleted {
			fmt.Fprintln(e.stdout, v)
		}
	}
	return nil
}
