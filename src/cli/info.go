package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/balena-os/balena-engine/src/version"
	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/system"
)

// runInfo prints GET /info as "docker info" does: the client's part, then
// the server's, the daemon's warnings on stderr; or the Info through a
// --format template.
func runInfo(ctx context.Context, e *env, args []string) error {
	fs := e.flags("info", "info [OPTIONS]")
	format := fs.StringP("format", "f", "", "format output using a Go template ('json' for JSON)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{`"balena-engine info" accepts no arguments.`}
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	if *format != "" {
		info, err := c.Info(ctx)
		if err != nil {
			return err
		}
		if *format == "json" {
			*format = "{{json .}}"
		}
		f, err := newFormatter(e.stdout, *format, "", nil)
		if err != nil {
			return err
		}
		return f.row(info)
	}
	fmt.Fprintf(e.stdout, "Client:\n Version:    %s\n Context:    default\n\nServer:\n", version.Get().Version)
	info, err := c.Info(ctx)
	if err != nil {
		return err
	}
	printInfo(e.stdout, &info)
	if len(info.Warnings) > 0 {
		fmt.Fprintln(e.stderr, strings.Join(info.Warnings, "\n"))
	}
	return nil
}

// printInfo writes the server part of "docker info", in its order and
// with its labels.
func printInfo(w io.Writer, in *system.Info) {
	p := func(label string, v any) { fmt.Fprintln(w, " "+label+":", v) }
	// Docker leaves out a line whose value is empty.
	pNonEmpty := func(label, v string) {
		if v != "" {
			p(label, v)
		}
	}
	p("Containers", in.Containers)
	p(" Running", in.ContainersRunning)
	p(" Paused", in.ContainersPaused)
	p(" Stopped", in.ContainersStopped)
	p("Images", in.Images)
	pNonEmpty("Server Version", in.ServerVersion)
	pNonEmpty("Storage Driver", in.Driver)
	for _, kv := range in.DriverStatus {
		fmt.Fprintf(w, "  %s: %s\n", kv[0], kv[1])
	}
	pNonEmpty("Logging Driver", in.LoggingDriver)
	pNonEmpty("Cgroup Driver", in.CgroupDriver)
	pNonEmpty("Cgroup Version", in.CgroupVersion)
	fmt.Fprintln(w, " Plugins:")
	p(" Volume", strings.Join(in.Plugins.Volume, " "))
	p(" Network", strings.Join(in.Plugins.Network, " "))
	if len(in.Plugins.Authorization) > 0 {
		p(" Authorization", strings.Join(in.Plugins.Authorization, " "))
	}
	p(" Log", strings.Join(in.Plugins.Log, " "))
	p("Swarm", in.Swarm.LocalNodeState)
	if len(in.Runtimes) > 0 {
		names := make([]string, 0, len(in.Runtimes))
		for n := range in.Runtimes {
			names = append(names, n)
		}
		sort.Strings(names)
		p("Runtimes", strings.Join(names, " "))
		p("Default Runtime", in.DefaultRuntime)
	}
	if in.OSType == "linux" {
		p("Init Binary", in.InitBinary)
		for _, ci := range []struct {
			name   string
			commit system.Commit
		}{{"containerd", in.ContainerdCommit}, {"runc", in.RuncCommit}, {"init", in.InitCommit}} {
			fmt.Fprintf(w, " %s version: %s\n", ci.name, ci.commit.ID)
		}
		if len(in.SecurityOptions) > 0 {
			fmt.Fprintln(w, " Security Options:")
			for _, o := range in.SecurityOptions {
				name, profile := securityOption(o)
				fmt.Fprintln(w, "  "+name)
				if profile != "" {
					fmt.Fprintln(w, "   Profile:", profile)
				}
			}
		}
	}
	pNonEmpty("Kernel Version", in.KernelVersion)
	pNonEmpty("Operating System", in.OperatingSystem)
	pNonEmpty("OSType", in.OSType)
	pNonEmpty("Architecture", in.Architecture)
	p("CPUs", in.NCPU)
	p("Total Memory", units.BytesSize(float64(in.MemTotal)))
	pNonEmpty("Name", in.Name)
	pNonEmpty("ID", in.ID)
	p("Docker Root Dir", in.DockerRootDir)
	p("Debug Mode", in.Debug)
	if in.Debug {
		p(" File Descriptors", in.NFd)
		p(" Goroutines", in.NGoroutines)
		p(" System Time", in.SystemTime)
		p(" EventsListeners", in.NEventsListener)
	}
	pNonEmpty("HTTP Proxy", in.HTTPProxy)
	pNonEmpty("HTTPS Proxy", in.HTTPSProxy)
	pNonEmpty("No Proxy", in.NoProxy)
	if len(in.Labels) > 0 {
		fmt.Fprintln(w, " Labels:")
		for _, l := range in.Labels {
			fmt.Fprintln(w, "  "+l)
		}
	}
	p("Experimental", in.ExperimentalBuild)
	if rc := in.RegistryConfig; rc != nil && len(rc.InsecureRegistryCIDRs) > 0 {
		fmt.Fprintln(w, " Insecure Registries:")
		for _, cidr := range rc.InsecureRegistryCIDRs {
			fmt.Fprintln(w, "  "+cidr.String())
		}
	}
	if rc := in.RegistryConfig; rc != nil && len(rc.Mirrors) > 0 {
		fmt.Fprintln(w, " Registry Mirrors:")
		for _, m := range rc.Mirrors {
			fmt.Fprintln(w, "  "+m)
		}
	}
	p("Live Restore Enabled", in.LiveRestoreEnabled)
	pNonEmpty("Product License", in.ProductLicense)
	fmt.Fprintln(w)
}

// securityOption reads one of /info's SecurityOptions, "name=seccomp,
// profile=builtin" (API 1.24 and later) or a bare name (older daemons),
// into the name and profile "docker info" shows.
func securityOption(o string) (name, profile string) {
	if !strings.Contains(o, "=") {
		return o, ""
	}
	for _, kv := range strings.Split(o, ",") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "name":
			name = v
		case "profile":
			profile = v
		}
	}
	return name, profile
}
