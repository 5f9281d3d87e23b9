package daemon

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "daemon.json")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := ParseConfig([]string{"--config-file", writeFile(t, "{}")}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Hosts, []string{DefaultHost}) || cfg.DataRoot != DefaultDataRoot ||
		cfg.ExecRoot != DefaultExecRoot || cfg.Pidfile != DefaultPidfile || cfg.LogLevel != "info" {
		t.Errorf("unexpected defaults: %+v", cfg)
	}
}

func TestParseConfigFlags(t *testing.T) {
	cfg, err := ParseConfig([]string{
		"-H", "unix:///tmp/a.sock", "--host=fd://", "--data-root", "/tmp/d", "--exec-root=/tmp/e",
		"--pidfile", "/tmp/p.pid", "-D", "--config-file", writeFile(t, "{}"),
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{Hosts: []string{"unix:///tmp/a.sock", "fd://"}, DataRoot: "/tmp/d", ExecRoot: "/tmp/e",
		Pidfile: "/tmp/p.pid", Debug: true, LogLevel: "debug", ConfigFile: cfg.ConfigFile,
		RegistryMirrors: nil, InsecureRegistries: nil,
		MaxConcurrentDownloads: 3, MaxDownloadAttempts: 5, LayerSync: "syncfs", PullIOPriority: "best-effort:7", SeccompProfile: "builtin",
		LogDriver: "json-file", CgroupParent: "/balena-engine",
		Bridge: "balena0", ICC: true, IPMasq: true, IPForward: true, IPTables: true, FirewallBackend: "iptables"}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got %+v\nwant %+v", cfg, want)
	}
}

func TestParseConfigFile(t *testing.T) {
	p := writeFile(t, `{"hosts": ["unix:///tmp/b.sock"], "data-root": "/data/engine", "debug": true,
		"registry-mirrors": ["http://127.0.0.1:5001"], "insecure-registries": ["10.0.0.0/8"], "max-concurrent-downloads": 1,
		"max-download-bandwidth": "2M", "init": true, "init-path": "/bin/sh"}`)
	cfg, err := ParseConfig([]string{"--config-file", p, "--exec-root", "/run/x"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Hosts, []string{"unix:///tmp/b.sock"}) || cfg.DataRoot != "/data/engine" ||
		cfg.ExecRoot != "/run/x" || !cfg.Debug || cfg.LogLevel != "debug" ||
		!reflect.DeepEqual(cfg.RegistryMirrors, []string{"http://127.0.0.1:5001"}) ||
		!reflect.DeepEqual(cfg.InsecureRegistries, []string{"10.0.0.0/8"}) || cfg.MaxConcurrentDownloads != 1 ||
		!cfg.Init || cfg.InitPath != "/bin/sh" {
		t.Errorf("file not merged: %+v", cfg)
	}
	if bw, err := cfg.bandwidth(); bw != 2<<20 || err != nil {
		t.Errorf("bandwidth = %d, %v", bw, err)
	}
}

func TestParseConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		file string
		want string
	}{
		{"unknown flag", []string{"--bogus"}, "{}", "unknown flag: --bogus"},
		{"stray argument", []string{"start"}, "{}", `unexpected argument "start"`},
		{"tcp", []string{"-H", "tcp://0.0.0.0:2375"}, "{}", "tcp:// listeners are not implemented yet"},
		{"no scheme", []string{"-H", "/tmp/x.sock"}, "{}", "want unix:///path/to/socket or fd://"},
		{"relative socket", []string{"-H", "unix://x.sock"}, "{}", "must be absolute"},
		{"bad fd", []string{"-H", "fd://1"}, "{}", "N >= 3"},
		{"bad level", []string{"--log-level", "loud"}, "{}", `invalid log level "loud"`},
		{"unknown key", nil, `{"data-root": "/x", "storage-driver": "aufs", "cluster-store": "1"}`, "don't match any configuration option: cluster-store, storage-driver"},
		{"both", []string{"--data-root", "/a"}, `{"data-root": "/b"}`, "specified both as a flag and in the configuration file: data-root"},
		{"bad json", nil, `{"debug": `, "unexpected end of JSON input"},
		{"wrong type", nil, `{"debug": "yes"}`, "debug: want true or false"},
		{"hosts not a list", nil, `{"hosts": "unix:///x.sock"}`, "hosts: want a list of strings"},
		{"missing named file", []string{"--config-file", "/nonexistent/daemon.json"}, "{}", "no such file or directory"},
		{"zero downloads", []string{"--max-concurrent-downloads", "0"}, "{}", "must be at least 1"},
		{"bad bandwidth", []string{"--max-download-bandwidth", "fast"}, "{}", `invalid max-download-bandwidth "fast"`},
		{"bad sync", []string{"--layer-sync", "never"}, "{}", `invalid layer-sync "never"`},
		{"missing init", []string{"--init-path", "/nonexistent/tini"}, "{}", `invalid init-path "/nonexistent/tini"`},
		{"relative init", nil, `{"init-path": "bin/tini"}`, `invalid init-path "bin/tini"`},
		{"bad io priority", []string{"--pull-io-priority", "urgent"}, "{}", `invalid I/O priority "urgent"`},
		{"attempts not a number", nil, `{"max-download-attempts": "many"}`, "want a whole number"},
		{"config-file in file", nil, `{"config-file": "/x"}`, "don't match any configuration option: config-file"},
		{"unknown log driver", []string{"--log-driver", "gelf"}, "{}", "no log driver named 'gelf'"},
		{"bad log opt", nil, `{"log-driver": "local", "log-opts": {"tag": "x"}}`, "unknown log opt 'tag' for local log driver"},
		{"log opts not an object", nil, `{"log-opts": ["max-size=1m"]}`, "want an object of strings"},
		{"missing seccomp profile", []string{"--seccomp-profile", "/nonexistent/p.json"}, "{}", "opening seccomp profile (/nonexistent/p.json) failed"},
		{"fixed-cidr outside bip", []string{"--bip", "10.114.101.1/24", "--fixed-cidr", "10.114.102.0/25"}, "{}", "must be inside the bip subnet"},
		{"bad bip", nil, `{"bip": "10.0.0.1"}`, `invalid bip "10.0.0.1"`},
		{"bip without bridge", []string{"-b", "none", "--bip", "10.0.0.1/24"}, "{}", "cannot be used with --bridge=none"},
		{"bad pool", nil, `{"default-address-pools": [{"base": "10.10.0.0/16", "size": 8}]}`, "invalid default-address-pool"},
		{"bad firewall backend", []string{"--firewall-backend", "ebtables"}, "{}", `invalid firewall-backend "ebtables": want iptables or nftables`},
		{"bad dns", nil, `{"dns": ["resolver"]}`, `invalid dns "resolver"`},
		{"bad seccomp profile", nil, `{"seccomp-profile": "` + writeFile(t, `{"defaultAction": 7}`) + `"}`, "cannot unmarshal number"},
	}
	for _, c := range cases {
		args := append([]string{"--config-file", writeFile(t, c.file)}, c.args...)
		_, err := ParseConfig(args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to contain %q", c.name, err, c.want)
		}
	}
}

func TestParseConfigLogDriver(t *testing.T) {
	cfg, err := ParseConfig([]string{"--config-file", writeFile(t, `{"log-driver": "local", "log-opts": {"max-size": "5m", "max-file": "3"}}`)}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LogDriver != "local" || !reflect.DeepEqual(cfg.LogOpts, map[string]string{"max-size": "5m", "max-file": "3"}) {
		t.Errorf("log driver %q, options %v", cfg.LogDriver, cfg.LogOpts)
	}
}

func TestParseConfigSeccompProfile(t *testing.T) {
	profile := `{"defaultAction":"SCMP_ACT_ALLOW"}`
	cfg, err := ParseConfig([]string{"--config-file", writeFile(t, "{}"), "--seccomp-profile", writeFile(t, profile)}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.seccompJSON != profile {
		t.Errorf("profile read as %q", cfg.seccompJSON)
	}
}

func TestParseConfigHelp(t *testing.T) {
	var out strings.Builder
	_, err := ParseConfig([]string{"--help"}, &out)
	if !errors.Is(err, pflag.ErrHelp) {
		t.Fatalf("err = %v, want ErrHelp", err)
	}
	for _, f := range []string{"--host", "--data-root", "--exec-root", "--pidfile", "--debug", "--log-level"} {
		if !strings.Contains(out.String(), f) {
			t.Errorf("help does not mention %s:\n%s", f, out.String())
		}
	}
}

func TestCgroupParent(t *testing.T) {
	for in, want := range map[string]string{"engine-test": "/engine-test", "/a/b": "/a/b", "/": "", "/a/../b": "", "..": ""} {
		cfg, err := ParseConfig([]string{"--config-file", writeFile(t, "{}"), "--cgroup-parent", in}, io.Discard)
		switch {
		case want == "" && err == nil:
			t.Errorf("--cgroup-parent %q accepted as %q", in, cfg.CgroupParent)
		case want != "" && (err != nil || cfg.CgroupParent != want):
			t.Errorf("--cgroup-parent %q: %v, %+v", in, err, cfg)
		}
	}
	cfg, err := ParseConfig([]string{"--config-file", writeFile(t, `{"cgroup-parent": "dev"}`)}, io.Discard)
	if err != nil || cfg.CgroupParent != "/dev" {
		t.Errorf("cgroup-parent in daemon.json: %v %+v", err, cfg)
	}
}

// --firewall-backend nftables is accepted, as a flag and in daemon.json.
func TestParseConfigFirewallBackend(t *testing.T) {
	for _, c := range []struct {
		args []string
		file string
	}{
		{[]string{"--firewall-backend", "nftables"}, "{}"},
		{nil, `{"firewall-backend": "nftables"}`},
	} {
		cfg, err := ParseConfig(append([]string{"--config-file", writeFile(t, c.file)}, c.args...), io.Discard)
		if err != nil {
			t.Errorf("%v %s: %v", c.args, c.file, err)
		} else if cfg.FirewallBackend != "nftables" {
			t.Errorf("%v %s: backend %q", c.args, c.file, cfg.FirewallBackend)
		}
	}
}

// balenaOS's networking settings, in daemon.json as dockerd spells them.
func TestParseConfigNetwork(t *testing.T) {
	cfg, err := ParseConfig([]string{"--config-file", writeFile(t, `{"bridge": "balena0", "bip": "10.114.101.1/24", "fixed-cidr": "10.114.101.0/25",
		"dns": ["10.114.102.1"], "dns-opts": ["ndots:1"], "mtu": 1400, "icc": false, "iptables": false,
		"default-address-pools": [{"base": "10.10.0.0/16", "size": 24}]}`)}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Bridge != "balena0" || cfg.net.bip.String() != "10.114.101.1/24" || cfg.net.fixedCIDR.String() != "10.114.101.0/25" ||
		!reflect.DeepEqual(cfg.DNS, []string{"10.114.102.1"}) || !reflect.DeepEqual(cfg.DNSOptions, []string{"ndots:1"}) ||
		cfg.MTU != 1400 || cfg.ICC || cfg.IPTables || !cfg.IPMasq || len(cfg.net.pools) != 1 ||
		cfg.net.pools[0].Base.String() != "10.10.0.0/16" || cfg.net.pools[0].Size != 24 {
		t.Errorf("network settings: %+v", cfg)
	}
}
