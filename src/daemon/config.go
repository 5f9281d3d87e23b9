package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/balena-os/balena-engine/src/container"
	"github.com/balena-os/balena-engine/src/layer"
	"github.com/balena-os/balena-engine/src/network"
	"github.com/balena-os/balena-engine/src/network/ipam"
	"github.com/docker/go-units"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/spf13/pflag"
)

// Defaults, as balenaEngine installs them on devices.
const (
	DefaultHost       = "unix:///var/run/balena-engine.sock"
	DefaultDataRoot   = "/var/lib/balena-engine"
	DefaultExecRoot   = "/var/run/balena-engine"
	DefaultPidfile    = "/var/run/balena-engine.pid"
	DefaultConfigFile = "/etc/balena-engine/daemon.json"
)

// Config is the daemon's configuration: flags (dockerd's names) merged with
// the configuration file.
type Config struct {
	Hosts      []string
	DataRoot   string
	ExecRoot   string
	Pidfile    string
	Debug      bool
	LogLevel   string
	ConfigFile string

	// Pulls.
	RegistryMirrors        []string
	InsecureRegistries     []string
	MaxConcurrentDownloads int
	MaxDownloadAttempts    int
	MaxDownloadBandwidth   string // bytes per second, with units ("2M"); "" for no limit
	LayerSync              string // "syncfs" or "fsync"
	PullIOPriority         string // "none", "idle", "best-effort:N"

	// Containers.
	Init     bool   // run containers with an init unless they say otherwise
	InitPath string // the init to bind in; "" for the engine's own docker-init
	// LogDriver and LogOpts are the log configuration of containers that
	// name no driver.
	LogDriver string
	LogOpts   map[string]string
	// SeccompProfile is "builtin", "unconfined" or a profile's path;
	// normalize reads the file into seccompJSON.
	SeccompProfile string
	seccompJSON    string
	// CgroupParent is the cgroup under which each container gets its own
	// (dockerd's --cgroup-parent for the cgroupfs driver).
	CgroupParent string
	// CPURealtimePeriod and CPURealtimeRuntime (µs): the real-time budget
	// of the containers' parent cgroup (dockerd's --cpu-rt-period and
	// --cpu-rt-runtime; cgroup v1).
	CPURealtimePeriod, CPURealtimeRuntime int64

	// Networking, dockerd's flags.
	Bridge          string // -b: the default bridge's device; "none" disables it
	BIP             string
	FixedCIDR       string
	IPv6            bool
	FixedCIDRv6     string
	AddressPools    []string // "base=172.30.0.0/16,size=24"
	MTU             int
	ICC             bool
	IPMasq          bool
	IPForward       bool
	IPTables        bool
	DNS             []string
	DNSSearch       []string
	DNSOptions      []string
	FirewallBackend string
	net             netSettings // parsed by normalize
}

// netSettings are the networking flags, parsed.
type netSettings struct {
	bip, fixedCIDR, fixedCIDRv6 netip.Prefix
	pools                       []ipam.Pool
}

var logLevels = []string{"debug", "info", "warn", "error", "fatal"}

func newFlagSet(cfg *Config, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet("balena-engine daemon", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	fs.StringSliceVarP(&cfg.Hosts, "host", "H", nil, "daemon socket(s) to listen on: unix:///path or fd:// (systemd socket activation)")
	fs.StringVar(&cfg.DataRoot, "data-root", DefaultDataRoot, "root directory of persistent state")
	fs.StringVar(&cfg.ExecRoot, "exec-root", DefaultExecRoot, "root directory of run-time state")
	fs.StringVarP(&cfg.Pidfile, "pidfile", "p", DefaultPidfile, "path to the daemon's PID file")
	fs.BoolVarP(&cfg.Debug, "debug", "D", false, "enable debug mode")
	fs.StringVarP(&cfg.LogLevel, "log-level", "l", "info", "log level: "+strings.Join(logLevels, ", "))
	fs.StringVar(&cfg.ConfigFile, "config-file", DefaultConfigFile, "daemon configuration file (JSON)")
	fs.StringSliceVar(&cfg.RegistryMirrors, "registry-mirror", nil, "preferred registry mirror for Docker Hub (http(s)://host[:port])")
	fs.StringSliceVar(&cfg.InsecureRegistries, "insecure-registry", nil, "registry (host[:port] or CIDR) reached without TLS verification")
	fs.IntVar(&cfg.MaxConcurrentDownloads, "max-concurrent-downloads", 3, "layers downloaded at once per pull")
	fs.IntVar(&cfg.MaxDownloadAttempts, "max-download-attempts", 5, "tries in a row without progress before a layer download fails")
	fs.StringVar(&cfg.MaxDownloadBandwidth, "max-download-bandwidth", "", "cap on download bandwidth for all pulls together, in bytes per second (\"512k\", \"2M\"); empty for none")
	fs.StringVar(&cfg.PullIOPriority, "pull-io-priority", "best-effort:7", "I/O priority of layer extraction: none, idle or best-effort:0-7 (7 lowest)")
	fs.BoolVar(&cfg.Init, "init", false, "run an init in containers to forward signals and reap processes (a container's --init=false overrides)")
	fs.StringVar(&cfg.InitPath, "init-path", "", "path to the init bound into containers; default: the engine's own docker-init")
	fs.StringVar(&cfg.LogDriver, "log-driver", container.DriverJSONFile, "log driver of containers that name none: "+strings.Join(container.LogDrivers, ", "))
	fs.StringToStringVar(&cfg.LogOpts, "log-opt", nil, "log driver options of containers that name no driver (key=value)")
	fs.StringVar(&cfg.SeccompProfile, "seccomp-profile", container.SeccompBuiltin, "seccomp profile for containers that name none: builtin (Docker's default), unconfined, or the path of a JSON profile")
	fs.StringVar(&cfg.CgroupParent, "cgroup-parent", "/balena-engine", "parent cgroup of every container's cgroup")
	fs.Int64Var(&cfg.CPURealtimePeriod, "cpu-rt-period", 0, "real-time period of the containers' parent cgroup, in microseconds (cgroup v1)")
	fs.Int64Var(&cfg.CPURealtimeRuntime, "cpu-rt-runtime", 0, "real-time runtime of the containers' parent cgroup, in microseconds (cgroup v1; containers' --cpu-rt-runtime needs it)")
	fs.StringVarP(&cfg.Bridge, "bridge", "b", network.DefaultBridge, "the default bridge network's device (made if missing); \"none\" disables the default bridge")
	fs.StringVar(&cfg.BIP, "bip", "", "the default bridge's address and prefix (e.g. 10.114.101.1/24)")
	fs.StringVar(&cfg.FixedCIDR, "fixed-cidr", "", "the range the default bridge's containers get addresses from (inside --bip's subnet)")
	fs.BoolVar(&cfg.IPv6, "ipv6", false, "give the default bridge IPv6")
	fs.StringVar(&cfg.FixedCIDRv6, "fixed-cidr-v6", "", "the default bridge's IPv6 subnet (with --ipv6; default: a unique local /64)")
	fs.StringArrayVar(&cfg.AddressPools, "default-address-pool", nil, "where networks without a subnet get one: base=CIDR,size=N (Docker's pools by default)")
	fs.IntVar(&cfg.MTU, "mtu", 0, "MTU of the default bridge's containers (0: the kernel's, 1500)")
	fs.BoolVar(&cfg.ICC, "icc", true, "let containers on the default bridge talk to each other")
	fs.BoolVar(&cfg.IPMasq, "ip-masq", true, "masquerade the default bridge's traffic to the outside")
	fs.BoolVar(&cfg.IPForward, "ip-forward", true, "turn on the kernel's IPv4 forwarding")
	fs.BoolVar(&cfg.IPTables, "iptables", true, "manage the firewall rules for networks and published ports")
	fs.StringSliceVar(&cfg.DNS, "dns", nil, "nameservers for containers")
	fs.StringSliceVar(&cfg.DNSSearch, "dns-search", nil, "DNS search domains for containers")
	fs.StringSliceVar(&cfg.DNSOptions, "dns-opt", nil, "resolv.conf options for containers")
	fs.StringVar(&cfg.FirewallBackend, "firewall-backend", "iptables", "firewall backend: iptables (legacy or nf_tables, whichever iptables-restore is installed) or nftables (nft, table ip docker-bridges)")
	fs.StringVar(&cfg.LayerSync, "layer-sync", "syncfs", "how a pulled layer is made durable: syncfs (one filesystem flush) or fsync (every file)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: balena-engine daemon [OPTIONS]\n\nA container engine for embedded and IoT devices.\n\nOptions:\n%s", fs.FlagUsages())
	}
	return fs
}

// ParseConfig parses the daemon's arguments, then merges the configuration
// file. As with dockerd, a setting given both as a flag and in the file, or a
// key in the file that names no setting, is an error rather than a silent
// choice. It returns pflag.ErrHelp when help was asked for.
func ParseConfig(args []string, stderr io.Writer) (*Config, error) {
	cfg := &Config{}
	fs := newFlagSet(cfg, stderr)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: the daemon takes only flags (see 'balena-engine daemon --help')", fs.Arg(0))
	}
	if err := mergeFile(fs, cfg.ConfigFile, fs.Changed("config-file")); err != nil {
		return nil, err
	}
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// fileKeyToFlag maps the configuration file's keys to flag names where they
// differ (dockerd's file says "hosts" for -H).
var fileKeyToFlag = map[string]string{
	"hosts":                 "host",
	"registry-mirrors":      "registry-mirror",
	"insecure-registries":   "insecure-registry",
	"log-opts":              "log-opt",
	"dns-opts":              "dns-opt",
	"default-address-pools": "default-address-pool",
}

func mergeFile(fs *pflag.FlagSet, path string, explicit bool) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unable to configure the daemon with file %s: %w", path, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("unable to configure the daemon with file %s: %w", path, err)
	}
	var unknown, both []string
	for key := range raw {
		name := key
		if n, ok := fileKeyToFlag[key]; ok {
			name = n
		}
		f := fs.Lookup(name)
		switch {
		case f == nil || name == "config-file":
			unknown = append(unknown, key)
		case f.Changed:
			both = append(both, key)
		}
	}
	sort.Strings(unknown)
	sort.Strings(both)
	if len(unknown) > 0 {
		return fmt.Errorf("unable to configure the daemon with file %s: the following directives don't match any configuration option: %s", path, strings.Join(unknown, ", "))
	}
	if len(both) > 0 {
		return fmt.Errorf("unable to configure the daemon with file %s: the following directives are specified both as a flag and in the configuration file: %s", path, strings.Join(both, ", "))
	}
	for key, val := range raw {
		name := key
		if n, ok := fileKeyToFlag[key]; ok {
			name = n
		}
		if err := setFromJSON(fs.Lookup(name), val); err != nil {
			return fmt.Errorf("unable to configure the daemon with file %s: %s: %w", path, key, err)
		}
	}
	return nil
}

// setFromJSON sets a flag from a JSON value of the flag's own type.
func setFromJSON(f *pflag.Flag, val json.RawMessage) error {
	if f.Name == "default-address-pool" {
		// daemon.json gives objects: [{"base": "10.10.0.0/16", "size": 24}].
		var pools []struct {
			Base string
			Size int
		}
		if err := json.Unmarshal(val, &pools); err != nil {
			return fmt.Errorf("want a list of {\"base\": CIDR, \"size\": N}: %w", err)
		}
		for _, p := range pools {
			if err := f.Value.Set(fmt.Sprintf("base=%s,size=%d", p.Base, p.Size)); err != nil {
				return err
			}
		}
		return nil
	}
	switch f.Value.Type() {
	case "stringSlice", "stringArray":
		var list []string
		if err := json.Unmarshal(val, &list); err != nil {
			return fmt.Errorf("want a list of strings: %w", err)
		}
		for _, s := range list {
			if err := f.Value.Set(s); err != nil {
				return err
			}
		}
		return nil
	case "stringToString":
		var m map[string]string
		if err := json.Unmarshal(val, &m); err != nil {
			return fmt.Errorf("want an object of strings: %w", err)
		}
		for k, v := range m {
			if err := f.Value.Set(k + "=" + v); err != nil {
				return err
			}
		}
		return nil
	case "int":
		var n int
		if err := json.Unmarshal(val, &n); err != nil {
			return fmt.Errorf("want a whole number: %w", err)
		}
		return f.Value.Set(fmt.Sprint(n))
	case "bool":
		var b bool
		if err := json.Unmarshal(val, &b); err != nil {
			return fmt.Errorf("want true or false: %w", err)
		}
		return f.Value.Set(fmt.Sprint(b))
	default:
		var s string
		if err := json.Unmarshal(val, &s); err != nil {
			return fmt.Errorf("want a string: %w", err)
		}
		return f.Value.Set(s)
	}
}

func (c *Config) normalize() error {
	if len(c.Hosts) == 0 {
		c.Hosts = []string{DefaultHost}
	}
	for _, h := range c.Hosts {
		if _, err := parseHost(h); err != nil {
			return err
		}
	}
	if c.Debug {
		c.LogLevel = "debug"
	}
	ok := false
	for _, l := range logLevels {
		ok = ok || c.LogLevel == l
	}
	if !ok {
		return fmt.Errorf("invalid log level %q: want one of %s", c.LogLevel, strings.Join(logLevels, ", "))
	}
	if c.MaxConcurrentDownloads < 1 {
		return fmt.Errorf("invalid max-concurrent-downloads %d: must be at least 1", c.MaxConcurrentDownloads)
	}
	if c.MaxDownloadAttempts < 1 {
		return fmt.Errorf("invalid max-download-attempts %d: must be at least 1", c.MaxDownloadAttempts)
	}
	if _, err := c.bandwidth(); err != nil {
		return err
	}
	if _, err := layer.ParseIOPriority(c.PullIOPriority); err != nil {
		return err
	}
	if !strings.HasPrefix(c.CgroupParent, "/") {
		c.CgroupParent = "/" + c.CgroupParent
	}
	if c.CgroupParent == "/" || slices.Contains(strings.Split(c.CgroupParent, "/"), "..") {
		return fmt.Errorf("invalid cgroup-parent %q: want a cgroup below the root, with no .. in it", c.CgroupParent)
	}
	if c.InitPath != "" {
		if fi, err := os.Stat(c.InitPath); err != nil || !filepath.IsAbs(c.InitPath) || !fi.Mode().IsRegular() {
			return fmt.Errorf("invalid init-path %q: want the absolute path of an executable file", c.InitPath)
		}
	}
	if _, err := container.LogSettings(containertypes.LogConfig{Type: c.LogDriver, Config: c.LogOpts}); err != nil {
		return fmt.Errorf("log driver: %w", err)
	}
	switch c.SeccompProfile {
	case container.SeccompBuiltin, container.SeccompUnconfined:
	default:
		data, err := os.ReadFile(c.SeccompProfile)
		if err != nil {
			return fmt.Errorf("opening seccomp profile (%s) failed: %w", c.SeccompProfile, err)
		}
		if err := container.CheckSeccompProfile(string(data)); err != nil {
			return fmt.Errorf("seccomp profile %s: %w", c.SeccompProfile, err)
		}
		c.seccompJSON = string(data)
	}
	if err := c.normalizeNet(); err != nil {
		return err
	}
	if c.LayerSync != "syncfs" && c.LayerSync != "fsync" {
		return fmt.Errorf("invalid layer-sync %q: want syncfs or fsync", c.LayerSync)
	}
	for _, p := range []*string{&c.DataRoot, &c.ExecRoot, &c.Pidfile} {
		if *p == "" {
			return errors.New("--data-root, --exec-root and --pidfile must not be empty")
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	return nil
}

// bandwidth is MaxDownloadBandwidth in bytes per second, 0 for no limit.
func (c *Config) bandwidth() (int64, error) {
	if c.MaxDownloadBandwidth == "" || c.MaxDownloadBandwidth == "0" {
		return 0, nil
	}
	n, err := units.RAMInBytes(c.MaxDownloadBandwidth)
	if err != nil || n < 1024 {
		return 0, fmt.Errorf("invalid max-download-bandwidth %q: want bytes per second, at least 1k (\"512k\", \"2M\")", c.MaxDownloadBandwidth)
	}
	return n, nil
}

// normalizeNet parses and checks the networking flags, with dockerd's
// rules: --fixed-cidr inside --bip's subnet, pools as base=CIDR,size=N.
func (c *Config) normalizeNet() error {
	var err error
	if c.BIP != "" {
		if c.net.bip, err = netip.ParsePrefix(c.BIP); err != nil || !c.net.bip.Addr().Is4() {
			return fmt.Errorf("invalid bip %q: want an IPv4 address with its prefix length, e.g. 10.114.101.1/24", c.BIP)
		}
	}
	if c.FixedCIDR != "" {
		if c.net.fixedCIDR, err = netip.ParsePrefix(c.FixedCIDR); err != nil || !c.net.fixedCIDR.Addr().Is4() {
			return fmt.Errorf("invalid fixed-cidr %q: want an IPv4 subnet", c.FixedCIDR)
		}
		if c.net.bip.IsValid() && (!c.net.bip.Masked().Contains(c.net.fixedCIDR.Addr()) || c.net.fixedCIDR.Bits() < c.net.bip.Bits()) {
			return fmt.Errorf("invalid fixed-cidr %s: it must be inside the bip subnet %s", c.FixedCIDR, c.net.bip.Masked())
		}
	}
	if c.FixedCIDRv6 != "" {
		if c.net.fixedCIDRv6, err = netip.ParsePrefix(c.FixedCIDRv6); err != nil || !c.net.fixedCIDRv6.Addr().Is6() || c.net.fixedCIDRv6.Bits() > 120 {
			return fmt.Errorf("invalid fixed-cidr-v6 %q: want an IPv6 subnet", c.FixedCIDRv6)
		}
		if !c.IPv6 {
			return errors.New("--fixed-cidr-v6 needs --ipv6")
		}
	}
	for _, p := range c.AddressPools {
		var pool ipam.Pool
		for _, kv := range strings.Split(p, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
			switch k {
			case "base":
				pool.Base, err = netip.ParsePrefix(v)
			case "size":
				pool.Size, err = strconv.Atoi(v)
			default:
				err = fmt.Errorf("unknown key %q", k)
			}
			if err != nil {
				return fmt.Errorf("invalid default-address-pool %q: %w", p, err)
			}
		}
		if !pool.Base.IsValid() || pool.Size < pool.Base.Bits() || pool.Size > 32 || !pool.Base.Addr().Is4() {
			return fmt.Errorf("invalid default-address-pool %q: want base=IPv4 CIDR,size=N with N between its prefix length and 32", p)
		}
		c.net.pools = append(c.net.pools, pool)
	}
	if c.MTU != 0 && (c.MTU < 68 || c.MTU > 65535) {
		return fmt.Errorf("invalid mtu %d", c.MTU)
	}
	if c.Bridge == "" {
		c.Bridge = network.DefaultBridge
	}
	if c.Bridge != "none" && (len(c.Bridge) > 15 || strings.ContainsAny(c.Bridge, "/ ")) {
		return fmt.Errorf("invalid bridge name %q", c.Bridge)
	}
	if c.Bridge == "none" && (c.BIP != "" || c.FixedCIDR != "") {
		return errors.New("--bip and --fixed-cidr need the default bridge: they cannot be used with --bridge=none")
	}
	for _, d := range c.DNS {
		if _, err := netip.ParseAddr(d); err != nil {
			return fmt.Errorf("invalid dns %q: want an IP address", d)
		}
	}
	switch c.FirewallBackend {
	case "iptables", "nftables":
	default:
		return fmt.Errorf("invalid firewall-backend %q: want iptables or nftables", c.FirewallBackend)
	}
	return nil
}
