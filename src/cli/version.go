package cli

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/balena-os/balena-engine/src/apiversion"
	"github.com/balena-os/balena-engine/src/version"
)

// runVersion prints the client's version and, when the daemon answers, the
// server's. Like the docker CLI it exits non-zero when the daemon cannot be
// reached, after printing the client part.
func runVersion(ctx context.Context, e *env, args []string) error {
	fs := e.flags("version", "version [OPTIONS]")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{`"balena-engine version" accepts no arguments.`}
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	apiVersion, connErr := c.APIVersion(ctx)
	if connErr != nil {
		apiVersion = apiversion.Max
	}
	v := version.Get()
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 1, ' ', 0)
	fmt.Fprintln(tw, "Client:")
	row(tw, " Version:", v.Version)
	row(tw, " API version:", apiVersion)
	row(tw, " Go version:", v.GoVersion)
	row(tw, " Git commit:", v.GitCommit)
	row(tw, " Built:", v.BuildTime)
	row(tw, " OS/Arch:", v.Platform())
	if connErr != nil {
		tw.Flush()
		return connErr
	}
	sv, err := c.ServerVersion(ctx)
	if err != nil {
		tw.Flush()
		return err
	}
	fmt.Fprintln(tw, "")
	fmt.Fprintf(tw, "Server: %s\n", sv.Platform.Name)
	for _, comp := range sv.Components {
		fmt.Fprintf(tw, " %s:\n", comp.Name)
		row(tw, "  Version:", comp.Version)
		if d := comp.Details; d != nil {
			api := d["ApiVersion"]
			if d["MinAPIVersion"] != "" {
				api += " (minimum version " + d["MinAPIVersion"] + ")"
			}
			row(tw, "  API version:", api)
			row(tw, "  Go version:", d["GoVersion"])
			row(tw, "  Git commit:", d["GitCommit"])
			row(tw, "  Built:", d["BuildTime"])
			row(tw, "  OS/Arch:", d["Os"]+"/"+d["Arch"])
			row(tw, "  Kernel version:", d["KernelVersion"])
			row(tw, "  Experimental:", d["Experimental"])
		}
	}
	return tw.Flush()
}

func row(w io.Writer, label, value string) {
	if value == "" {
		value = "-"
	}
	fmt.Fprintf(w, "%s\t%s\n", label, value)
}
