package container

import (
	"reflect"
	"strings"
	"testing"

	containertypes "github.com/moby/moby/api/types/container"
)

func TestLogSettings(t *testing.T) {
	cases := []struct {
		cfg  containertypes.LogConfig
		want LogOptions
		err  string
	}{
		{containertypes.LogConfig{}, LogOptions{Driver: DriverJSONFile, MaxFile: 1}, ""},
		{containertypes.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "1m", "max-file": "3", "compress": "true"}},
			LogOptions{Driver: DriverJSONFile, MaxSize: 1 << 20, MaxFile: 3, Compress: true}, ""},
		// local is bounded without options, as Docker's is.
		{containertypes.LogConfig{Type: "local"}, LogOptions{Driver: DriverLocal, MaxSize: 20 << 20, MaxFile: 5, Compress: true}, ""},
		{containertypes.LogConfig{Type: "local", Config: map[string]string{"max-file": "1", "compress": "false"}},
			LogOptions{Driver: DriverLocal, MaxSize: 20 << 20, MaxFile: 1}, ""},
		{containertypes.LogConfig{Type: "local", Config: map[string]string{"max-file": "1"}}, LogOptions{}, "compress cannot be true"},
		{containertypes.LogConfig{Type: "journald", Config: map[string]string{"tag": "{{.Name}}"}}, LogOptions{Driver: DriverJournald, MaxFile: 1, Tag: "{{.Name}}"}, ""},
		{containertypes.LogConfig{Type: "journald", Config: map[string]string{"tag": "{{.Name"}}, LogOptions{}, "invalid log option tag"},
		{containertypes.LogConfig{Type: "journald", Config: map[string]string{"max-size": "1m"}}, LogOptions{}, "unknown log opt 'max-size' for journald log driver"},
		{containertypes.LogConfig{Type: "none"}, LogOptions{Driver: DriverNone, MaxFile: 1}, ""},
		{containertypes.LogConfig{Type: "none", Config: map[string]string{"tag": "x"}}, LogOptions{}, "unknown log opt 'tag' for none log driver"},
		{containertypes.LogConfig{Type: "syslog"}, LogOptions{}, "no log driver named 'syslog' is registered"},
		{containertypes.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "-1"}}, LogOptions{}, "invalid log option max-size"},
	}
	for _, c := range cases {
		got, err := LogSettings(c.cfg)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%+v: err %v, want %q", c.cfg, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%+v: %+v, %v; want %+v", c.cfg, got, err, c.want)
		}
	}
}

func TestJournalFieldsTag(t *testing.T) {
	c := &Container{ID: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", Name: "web", ImageName: "busybox"}
	f, err := journalFields(c, "")
	if err != nil || f["SYSLOG_IDENTIFIER"] != "0123456789ab" || f["CONTAINER_ID_FULL"] != c.ID || f["CONTAINER_NAME"] != "web" {
		t.Errorf("default tag: %v, %v", f, err)
	}
	f, err = journalFields(c, "app-{{.Name}}-{{.ImageName}}")
	if err != nil || f["SYSLOG_IDENTIFIER"] != "app-web-busybox" || f["CONTAINER_TAG"] != "app-web-busybox" {
		t.Errorf("template tag: %v, %v", f, err)
	}
}

func TestMergeLogConfig(t *testing.T) {
	daemon := containertypes.LogConfig{Type: "local", Config: map[string]string{"max-size": "1m", "max-file": "2"}}
	cases := []struct{ in, want containertypes.LogConfig }{
		{containertypes.LogConfig{}, containertypes.LogConfig{Type: "local", Config: map[string]string{"max-size": "1m", "max-file": "2"}}},
		{containertypes.LogConfig{Config: map[string]string{"max-file": "3"}}, containertypes.LogConfig{Type: "local", Config: map[string]string{"max-size": "1m", "max-file": "3"}}},
		// Another driver takes none of the daemon's options.
		{containertypes.LogConfig{Type: "json-file"}, containertypes.LogConfig{Type: "json-file", Config: map[string]string{}}},
	}
	for _, c := range cases {
		if got := mergeLogConfig(c.in, daemon); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%+v: %+v, want %+v", c.in, got, c.want)
		}
	}
	if got := mergeLogConfig(containertypes.LogConfig{}, containertypes.LogConfig{}); got.Type != "json-file" {
		t.Errorf("no daemon default: %+v", got)
	}
}
