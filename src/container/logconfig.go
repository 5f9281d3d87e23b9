package container

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/logs"
	containertypes "github.com/moby/moby/api/types/container"
)

// The log drivers the engine has. Docker's others (syslog, gelf, fluentd,
// awslogs, splunk, ...) are left out: devices ship logs with an agent of
// their own, or through journald.
const (
	DriverJSONFile = "json-file"
	DriverLocal    = "local"
	DriverJournald = "journald"
	DriverNone     = "none"
)

// LogDrivers lists them, for /info.
var LogDrivers = []string{DriverJSONFile, DriverLocal, DriverJournald, DriverNone}

// logOpts are the options each driver takes.
var logOpts = map[string][]string{
	DriverJSONFile: {"max-size", "max-file", "compress"},
	DriverLocal:    {"max-size", "max-file", "compress"},
	DriverJournald: {"tag"},
	DriverNone:     nil,
}

// LogOptions are a container's log driver and its options, defaults filled.
type LogOptions struct {
	Driver   string
	MaxSize  int64 // bytes per file; 0: no rotation
	MaxFile  int   // files kept, the current one included
	Compress bool  // gzip the rotated files
	Tag      string
}

// LogSettings checks a log configuration against its driver and fills in
// the driver's defaults. "local" is the file driver with Docker's local
// defaults (20 MB files, 5 kept, rotated ones compressed), so logs are
// bounded without options; json-file keeps Docker's unbounded default.
func LogSettings(cfg containertypes.LogConfig) (LogOptions, error) {
	lo := LogOptions{Driver: cfg.Type, MaxFile: 1}
	if lo.Driver == "" {
		lo.Driver = DriverJSONFile
	}
	allowed, ok := logOpts[lo.Driver]
	if !ok {
		return lo, errdefs.InvalidParameter(fmt.Errorf("logger: no log driver named '%s' is registered (balena-engine has %s)", lo.Driver, strings.Join(LogDrivers, ", ")))
	}
	opts := cfg.Config
	for k := range opts {
		if !slices.Contains(allowed, k) {
			return lo, errdefs.InvalidParameter(fmt.Errorf("unknown log opt '%s' for %s log driver", k, lo.Driver))
		}
	}
	if lo.Driver == DriverLocal {
		lo.MaxSize, lo.MaxFile, lo.Compress = 20<<20, 5, true
	}
	if s := opts["max-size"]; s != "" {
		n, err := parseSize(s)
		if err != nil || n <= 0 {
			return lo, errdefs.InvalidParameter(fmt.Errorf("invalid log option max-size %q", s))
		}
		lo.MaxSize = n
	}
	if s := opts["max-file"]; s != "" {
		var n int
		if _, err := fmt.Sscan(s, &n); err != nil || n < 1 {
			return lo, errdefs.InvalidParameter(fmt.Errorf("invalid log option max-file %q", s))
		}
		lo.MaxFile = n
	}
	if s, ok := opts["compress"]; ok {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return lo, errdefs.InvalidParameter(fmt.Errorf("invalid log option compress %q: %w", s, err))
		}
		lo.Compress = b
	}
	if lo.Compress && lo.MaxFile < 2 {
		return lo, errdefs.InvalidParameter(errors.New("compress cannot be true when max-file is less than 2"))
	}
	if t, ok := opts["tag"]; ok {
		if _, err := template.New("tag").Parse(t); err != nil {
			return lo, errdefs.InvalidParameter(fmt.Errorf("invalid log option tag %q: %w", t, err))
		}
		lo.Tag = t
	}
	return lo, nil
}

// mergeLogConfig resolves a container's log configuration against the
// daemon's, as dockerd does: no driver means the daemon's, and the
// daemon's options fill those the container did not set when the drivers
// are the same. The result is recorded, so that inspect shows it and a
// later change of the daemon's default leaves the container as it was.
func mergeLogConfig(c, daemon containertypes.LogConfig) containertypes.LogConfig {
	if daemon.Type == "" {
		daemon.Type = DriverJSONFile
	}
	out := containertypes.LogConfig{Type: c.Type, Config: map[string]string{}}
	if out.Type == "" {
		out.Type = daemon.Type
	}
	for k, v := range c.Config {
		out.Config[k] = v
	}
	if out.Type == daemon.Type {
		for k, v := range daemon.Config {
			if _, ok := out.Config[k]; !ok {
				out.Config[k] = v
			}
		}
	}
	return out
}

// ReadableLogs says whether a container's log can be read back: Docker's
// error for a driver that stores nothing.
func ReadableLogs(c *Container) error {
	if c.HostConfig != nil && c.HostConfig.LogConfig.Type == DriverNone {
		return errdefs.NotImplemented(errors.New("configured logging driver does not support reading"))
	}
	return nil
}

// DefaultLogDriver is the driver of containers that name none.
func (m *Manager) DefaultLogDriver() string {
	if m.opts.DefaultLogConfig.Type == "" {
		return DriverJSONFile
	}
	return m.opts.DefaultLogConfig.Type
}

// tagInfo is what a log tag template can name, as in Docker.
type tagInfo struct {
	ID, FullID, Name, ImageName, ImageID, DaemonName string
}

// journalFields are a container's journal fields, its tag expanded.
func journalFields(c *Container, tagTemplate string) (map[string]string, error) {
	imageID := strings.TrimPrefix(c.Image.String(), "sha256:")
	info := tagInfo{ID: c.ID[:12], FullID: c.ID, Name: c.Name, ImageName: c.ImageName,
		ImageID: imageID[:min(12, len(imageID))], DaemonName: "balena-engine"}
	tag := info.ID
	if tagTemplate != "" {
		t, err := template.New("tag").Parse(tagTemplate)
		if err != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid log option tag %q: %w", tagTemplate, err))
		}
		var sb strings.Builder
		if err := t.Execute(&sb, info); err != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("log option tag %q: %w", tagTemplate, err))
		}
		tag = sb.String()
	}
	return logs.JournalFields(c.ID, c.Name, c.ImageName, tag), nil
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "k"), strings.HasSuffix(s, "K"):
		mult = 1 << 10
	case strings.HasSuffix(s, "m"), strings.HasSuffix(s, "M"):
		mult = 1 << 20
	case strings.HasSuffix(s, "g"), strings.HasSuffix(s, "G"):
		mult = 1 << 30
	}
	if mult > 1 {
		s = s[:len(s)-1]
	}
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		return 0, err
	}
	return n * mult, nil
}
