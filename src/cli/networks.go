package cli

// The network commands, "port", and the networking flags of "run" and
// "create", as the docker CLI has them.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/balena-os/balena-engine/src/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
	networktypes "github.com/moby/moby/api/types/network"
	"github.com/spf13/pflag"
)

var networkSubcommands = map[string]func(context.Context, *env, []string) error{
	"ls": runNetworkLs, "list": runNetworkLs, "create": runNetworkCreate, "inspect": runNetworkInspect,
	"rm": runNetworkRm, "remove": runNetworkRm, "prune": runNetworkPrune,
	"connect": runNetworkConnect, "disconnect": runNetworkDisconnect,
}

func runNetwork(ctx context.Context, e *env, args []string) error {
	return dispatch(ctx, e, "network", "Manage networks", networkSubcommands, args)
}

// noArgs parses a command's flags and checks that no argument follows.
func noArgs(fs *pflag.FlagSet, args []string) error {
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf(`"balena-engine %s" accepts no arguments.`, fs.Name())}
	}
	return nil
}

// parseSome parses a command's flags and checks that arguments follow.
func parseSome(fs *pflag.FlagSet, args []string) error {
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{fmt.Sprintf(`"balena-engine %s" requires at least 1 argument.`, fs.Name())}
	}
	return nil
}

// networkRow is a network as "network ls" formats it. The fields are in the
// order of the keys of Docker's --format json.
type networkRow struct {
	CreatedAt, Driver, ID, IPv4, IPv6, Internal, Labels, Name, Scope string
	labels                                                           map[string]string
}

// Label is the value of one label, for {{.Label "name"}}.
func (r networkRow) Label(name string) string { return r.labels[name] }

func runNetworkLs(ctx context.Context, e *env, args []string) error {
	fs := e.flags("network ls", "network ls [OPTIONS]")
	quiet := fs.BoolP("quiet", "q", false, "only display network IDs")
	noTrunc := fs.Bool("no-trunc", false, "do not truncate the output")
	format := fs.String("format", "", "format output using a Go template")
	filter := fs.StringArrayP("filter", "f", nil, `provide filter values (e.g. "driver=bridge")`)
	q := url.Values{}
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if err := addFilters(q, *filter); err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	list, err := c.NetworkList(ctx, q)
	if err != nil {
		return err
	}
	sort.Slice(list, func(i, j int) bool { return naturalLess(list[i].Name, list[j].Name) })
	if *quiet && (*format == "" || *format == "table") {
		*format = "{{.ID}}"
	}
	f, err := newFormatter(e.stdout, *format, "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
		map[string]string{"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv4": "IPV4",
			"IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"})
	if err != nil {
		return err
	}
	for _, n := range list {
		r := networkRow{CreatedAt: n.Created.String(), Driver: n.Driver, ID: n.ID, IPv4: strconv.FormatBool(n.EnableIPv4),
			IPv6: strconv.FormatBool(n.EnableIPv6), Internal: strconv.FormatBool(n.Internal), Name: n.Name, Scope: n.Scope, labels: n.Labels}
		var labels []string
		for k, v := range n.Labels {
			labels = append(labels, k+"="+v)
		}
		sort.Strings(labels)
		r.Labels = strings.Join(labels, ",")
		if !*noTrunc {
			r.ID = shortID(r.ID)
		}
		if err := f.row(r); err != nil {
			return err
		}
	}
	return f.flush()
}

// kvMap reads KEY=VALUE flags (a missing value is empty) into a map, never
// nil, as the docker CLI sends them.
func kvMap(list []string) map[string]string {
	m := map[string]string{}
	for _, kv := range list {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func runNetworkCreate(ctx context.Context, e *env, args []string) error {
	fs := e.flags("network create", "network create [OPTIONS] NETWORK")
	var req networktypes.CreateRequest
	ipam := &networktypes.IPAM{}
	fs.StringVarP(&req.Driver, "driver", "d", "bridge", "driver to manage the network")
	opts := fs.StringArrayP("opt", "o", nil, "set driver specific options")
	labels := fs.StringArray("label", nil, "set metadata on a network")
	fs.BoolVar(&req.Internal, "internal", false, "restrict external access to the network")
	ipv4 := fs.Bool("ipv4", true, "enable or disable IPv4 address assignment")
	ipv6 := fs.Bool("ipv6", false, "enable or disable IPv6 address assignment")
	fs.BoolVar(&req.Attachable, "attachable", false, "enable manual container attachment")
	fs.BoolVar(&req.Ingress, "ingress", false, "create swarm routing-mesh network")
	fs.StringVar(&req.Scope, "scope", "", "control the network's scope")
	fs.BoolVar(&req.ConfigOnly, "config-only", false, "create a configuration only network")
	configFrom := fs.String("config-from", "", "the network from which to copy the configuration")
	fs.StringVar(&ipam.Driver, "ipam-driver", "default", "IP address management driver")
	ipamOpts := fs.StringArray("ipam-opt", nil, "set IPAM driver specific options")
	subnets := fs.StringSlice("subnet", nil, "subnet in CIDR format that represents a network segment")
	ranges := fs.StringSlice("ip-range", nil, "allocate container ip from a sub-range")
	gateways := fs.StringSlice("gateway", nil, "IPv4 or IPv6 gateway for the master subnet")
	aux := fs.StringArray("aux-address", nil, "auxiliary IPv4 or IPv6 addresses used by network driver")
	c, err := e.parseConnect(fs, args, 1)
	if err != nil {
		return err
	}
	req.Name = fs.Arg(0)
	if fs.Changed("ipv4") {
		req.EnableIPv4 = ipv4
	}
	if fs.Changed("ipv6") {
		req.EnableIPv6 = ipv6
	}
	if *configFrom != "" {
		req.ConfigFrom = &networktypes.ConfigReference{Network: *configFrom}
	}
	req.Options, req.Labels, ipam.Options = kvMap(*opts), kvMap(*labels), kvMap(*ipamOpts)
	if ipam.Config, err = ipamConfig(*subnets, *ranges, *gateways, *aux); err != nil {
		return err
	}
	req.IPAM = ipam
	resp, err := c.NetworkCreate(ctx, req)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, resp.ID)
	return nil
}

// ipamConfig is a configuration a subnet, with the ranges, gateways and
// auxiliary addresses (NAME=IP) each in its subnet, as the docker CLI makes
// them (with its error messages).
func ipamConfig(subnets, ranges, gateways, aux []string) ([]networktypes.IPAMConfig, error) {
	if len(subnets) < len(ranges) || len(subnets) < len(gateways) {
		return nil, errors.New("every ip-range or gateway must have a corresponding subnet")
	}
	cfg := make([]networktypes.IPAMConfig, len(subnets))
	for i, s := range subnets {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("invalid subnet: invalid CIDR address: %s", s)
		}
		for _, o := range cfg[:i] {
			if o.Subnet.Overlaps(p) {
				return nil, errors.New("multiple overlapping subnet configuration is not supported")
			}
		}
		cfg[i].Subnet = p
	}
	// in is the configuration of the subnet a is in.
	in := func(a netip.Addr, what string) (*networktypes.IPAMConfig, error) {
		for i := range cfg {
			if a.IsValid() && cfg[i].Subnet.Contains(a) {
				return &cfg[i], nil
			}
		}
		return nil, errors.New("no matching subnet for " + what)
	}
	for _, r := range ranges {
		p, err := netip.ParsePrefix(r)
		if err != nil {
			return nil, fmt.Errorf("invalid CIDR address: %s", r)
		}
		c, err := in(p.Addr(), "range "+r)
		if err != nil {
			return nil, err
		}
		if c.IPRange.IsValid() {
			return nil, fmt.Errorf("cannot configure multiple ranges (%s, %s) on the same subnet (%s)", r, c.IPRange, c.Subnet)
		}
		c.IPRange = p
	}
	for _, g := range gateways {
		a, _ := netip.ParseAddr(g)
		c, err := in(a, "gateway "+g)
		if err != nil {
			return nil, err
		}
		if c.Gateway.IsValid() {
			return nil, fmt.Errorf("cannot configure multiple gateways (%s, %s) for the same subnet (%s)", g, c.Gateway, c.Subnet)
		}
		c.Gateway = a
	}
	for _, kv := range aux {
		name, v, _ := strings.Cut(kv, "=")
		a, _ := netip.ParseAddr(v)
		c, err := in(a, "aux-address "+v)
		if err != nil {
			return nil, err
		}
		if c.AuxAddress == nil {
			c.AuxAddress = map[string]netip.Addr{}
		}
		c.AuxAddress[name] = a
	}
	return cfg, nil
}

// inspectEach prints (printObjects) what get finds for each name, then
// the errors for the names it does not find.
func inspectEach(e *env, names []string, format string, get func(string) (json.RawMessage, error)) error {
	var objs []json.RawMessage
	var errs []string
	for _, name := range names {
		raw, err := get(name)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		objs = append(objs, raw)
	}
	if err := printObjects(e, objs, format); err != nil {
		return err
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

func runNetworkInspect(ctx context.Context, e *env, args []string) error {
	fs := e.flags("network inspect", "network inspect [OPTIONS] NETWORK [NETWORK...]")
	format := fs.StringP("format", "f", "", "format output using a Go template")
	if err := parseSome(fs, args); err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	return inspectEach(e, fs.Args(), *format, func(name string) (json.RawMessage, error) { return c.NetworkInspectRaw(ctx, name) })
}

// runNetworkRm removes networks as the docker CLI does: each error on
// stderr as it comes, each removed network's name on stdout.
func runNetworkRm(ctx context.Context, e *env, args []string) error {
	fs := e.flags("network rm", "network rm NETWORK [NETWORK...]")
	force := fs.BoolP("force", "f", false, "do not error if the network does not exist")
	if err := parseSome(fs, args); err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	failed := false
	for _, name := range fs.Args() {
		if err := c.NetworkRemove(ctx, name); err != nil {
			if !*force || errdefs.KindOf(err) != errdefs.KindNotFound {
				fmt.Fprintln(e.stderr, err)
				failed = true
			}
			continue
		}
		fmt.Fprintln(e.stdout, name)
	}
	if failed {
		return errors.New("exit status 1")
	}
	return nil
}

func runNetworkPrune(ctx context.Context, e *env, args []string) error {
	fs := e.flags("network prune", "network prune [OPTIONS]")
	force := fs.BoolP("force", "f", false, "do not prompt for confirmation")
	filter := fs.StringArray("filter", nil, `provide filter values (e.g. "until=<timestamp>")`)
	q := url.Values{}
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if err := addFilters(q, *filter); err != nil {
		return err
	}
	if !*force && !confirm(e, "WARNING! This will remove all custom networks not used by at least one container.") {
		return nil
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	rep, err := c.NetworksPrune(ctx, q)
	if err != nil {
		return err
	}
	section(e, "Deleted Networks:", rep.NetworksDeleted)
	return nil
}

func runNetworkConnect(ctx context.Context, e *env, args []string) error {
	fs := e.flags("network connect", "network connect [OPTIONS] NETWORK CONTAINER")
	ip := fs.IP("ip", nil, `IPv4 address (e.g., "172.30.100.104")`)
	ip6 := fs.IP("ip6", nil, `IPv6 address (e.g., "2001:db8::33")`)
	aliases := fs.StringSlice("alias", []string{}, "add network-scoped alias for the container")
	c, err := e.parseConnect(fs, args, 2)
	if err != nil {
		return err
	}
	v4, _ := netip.AddrFromSlice(*ip)
	v6, _ := netip.AddrFromSlice(*ip6)
	ep := &networktypes.EndpointSettings{Aliases: *aliases, DriverOpts: map[string]string{},
		IPAMConfig: &networktypes.EndpointIPAMConfig{IPv4Address: v4.Unmap(), IPv6Address: v6.Unmap()}}
	return c.NetworkConnect(ctx, fs.Arg(0), networktypes.ConnectRequest{Container: fs.Arg(1), EndpointConfig: ep})
}

func runNetworkDisconnect(ctx context.Context, e *env, args []string) error {
	fs := e.flags("network disconnect", "network disconnect [OPTIONS] NETWORK CONTAINER")
	force := fs.BoolP("force", "f", false, "force the container to disconnect from a network")
	c, err := e.parseConnect(fs, args, 2)
	if err != nil {
		return err
	}
	return c.NetworkDisconnect(ctx, fs.Arg(0), networktypes.DisconnectRequest{Container: fs.Arg(1), Force: *force})
}

// hostAddr is a binding's host address and port, as Docker prints it.
func hostAddr(b networktypes.PortBinding) string {
	ip := ""
	if b.HostIP.IsValid() {
		ip = b.HostIP.String()
	}
	return net.JoinHostPort(ip, b.HostPort)
}

func runPort(ctx context.Context, e *env, args []string) error {
	fs := e.flags("port", "port CONTAINER [PRIVATE_PORT[/PROTO]]")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return usageError{`"balena-engine port" requires at least 1 and at most 2 arguments.`}
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	in, err := c.ContainerInspect(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	var ports networktypes.PortMap
	if in.NetworkSettings != nil {
		ports = in.NetworkSettings.Ports
	}
	var out []string
	if fs.NArg() == 2 {
		num, _, _ := strings.Cut(fs.Arg(1), "/")
		if _, err := strconv.ParseUint(num, 10, 16); err != nil {
			return fmt.Errorf("Error: invalid port (%s): %w", num, err)
		}
		p, err := networktypes.ParsePort(fs.Arg(1))
		if err != nil {
			return err
		}
		if len(ports[p]) == 0 {
			return fmt.Errorf("Error: No public port '%s' published for %s", fs.Arg(1), fs.Arg(0))
		}
		for _, b := range ports[p] {
			out = append(out, hostAddr(b))
		}
	} else {
		for p, bs := range ports {
			for _, b := range bs {
				out = append(out, p.String()+" -> "+hostAddr(b))
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return naturalLess(out[i], out[j]) })
	for _, l := range out {
		fmt.Fprintln(e.stdout, l)
	}
	return nil
}

// displayPorts is the PORTS column of ps as Docker writes it: ports
// published on their own number and the unpublished ones grouped in
// ranges, then the others ("0.0.0.0:8080->80/tcp, 9000-9001/tcp").
func displayPorts(ports []containertypes.PortSummary) string {
	type group struct{ first, last uint16 }
	groups := map[string]*group{}
	var keys, out, mapped []string
	sort.Slice(ports, func(i, j int) bool {
		a, b := ports[i], ports[j]
		switch {
		case a.PrivatePort != b.PrivatePort:
			return a.PrivatePort < b.PrivatePort
		case a.IP != b.IP:
			return a.IP.Less(b.IP)
		case a.PublicPort != b.PublicPort:
			return a.PublicPort < b.PublicPort
		}
		return a.Type < b.Type
	})
	// form is a group as text; key is "TYPE" or "IP/TYPE".
	form := func(key string, g *group) string {
		ip, typ, ok := strings.Cut(key, "/")
		if !ok {
			ip, typ = "", key
		}
		s := strconv.Itoa(int(g.first))
		if g.first != g.last {
			s += "-" + strconv.Itoa(int(g.last))
		}
		if ip != "" {
			s = net.JoinHostPort(ip, s) + "->" + s
		}
		return s + "/" + typ
	}
	for _, p := range ports {
		key := p.Type
		if p.IP.IsValid() {
			if p.PublicPort != p.PrivatePort {
				mapped = append(mapped, fmt.Sprintf("%s->%d/%s", net.JoinHostPort(p.IP.String(), strconv.Itoa(int(p.PublicPort))), p.PrivatePort, p.Type))
				continue
			}
			key = p.IP.String() + "/" + p.Type
		}
		g := groups[key]
		switch {
		case g == nil:
			keys = append(keys, key)
		case p.PrivatePort == g.last+1:
			g.last = p.PrivatePort
			continue
		default:
			out = append(out, form(key, g))
		}
		groups[key] = &group{p.PrivatePort, p.PrivatePort}
	}
	for _, k := range keys {
		out = append(out, form(k, groups[k]))
	}
	return strings.Join(append(out, mapped...), ", ")
}

// naturalLess orders strings with their runs of digits compared as numbers
// ("web2" before "web10"), as the docker CLI sorts names and ports.
func naturalLess(a, b string) bool {
	digit := func(c byte) bool { return '0' <= c && c <= '9' }
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		da, db := digit(a[i]), digit(b[j])
		switch {
		case da != db:
			return da
		case !da:
			if a[i] != b[j] {
				return a[i] < b[j]
			}
			i, j = i+1, j+1
		default:
			// Numbers: without leading zeros the shorter is smaller, then
			// the text decides, then fewer zeros first.
			for ; i < len(a) && a[i] == '0'; i++ {
			}
			for ; j < len(b) && b[j] == '0'; j++ {
			}
			si, sj := i, j
			for ; i < len(a) && digit(a[i]); i++ {
			}
			for ; j < len(b) && digit(b[j]); j++ {
			}
			if na, nb := a[si:i], b[sj:j]; len(na) != len(nb) {
				return len(na) < len(nb)
			} else if na != nb {
				return na < nb
			}
			if si != sj {
				return si < sj
			}
		}
	}
	return len(a) < len(b)
}

// netFlags are the networking flags of "run" and "create".
type netFlags struct {
	networks, aliases, addHosts, dns, dnsSearch, dnsOptions, publish, expose []string
	ip, ip6                                                                  net.IP
	mac                                                                      string
	publishAll                                                               bool
}

func (f *netFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.networks, "network", nil, "connect a container to a network")
	fs.StringArrayVar(&f.aliases, "network-alias", nil, "add network-scoped alias for the container")
	fs.IPVar(&f.ip, "ip", nil, "IPv4 address (e.g., 172.30.100.104)")
	fs.IPVar(&f.ip6, "ip6", nil, "IPv6 address (e.g., 2001:db8::33)")
	fs.StringVar(&f.mac, "mac-address", "", "container MAC address (e.g., 92:d0:c6:0a:29:33)")
	fs.StringArrayVar(&f.addHosts, "add-host", nil, "add a custom host-to-IP mapping (host:ip)")
	fs.StringArrayVar(&f.dns, "dns", nil, "set custom DNS servers")
	fs.StringArrayVar(&f.dnsSearch, "dns-search", nil, "set custom DNS search domains")
	fs.StringArrayVar(&f.dnsOptions, "dns-option", nil, "set DNS options")
	fs.StringArrayVarP(&f.publish, "publish", "p", nil, "publish a container's port(s) to the host")
	fs.BoolVarP(&f.publishAll, "publish-all", "P", false, "publish all exposed ports to random ports")
	fs.StringArrayVar(&f.expose, "expose", nil, "expose a port or a range of ports")
}

// flagError is pflag's message for a bad value.
func flagError(flag, value string, err any) error {
	return usageError{fmt.Sprintf("invalid argument %q for \"--%s\" flag: %v", value, flag, err)}
}

// apply puts the networking flags in req as the docker CLI does: the ports
// published and exposed, /etc/hosts and DNS settings, the network mode and
// the endpoint settings of the first network.
func (f *netFlags) apply(req *containertypes.CreateRequest) error {
	cfg, host := req.Config, req.HostConfig
	mac, err := net.ParseMAC(strings.TrimSpace(f.mac))
	if f.mac != "" && err != nil {
		return usageError{f.mac + " is not a valid mac address"}
	}
	for _, h := range f.addHosts {
		name, ip, ok := strings.Cut(h, "=")
		if !ok {
			name, ip, ok = strings.Cut(h, ":")
		}
		if !ok || name == "" || strings.Contains(name, ":") {
			return flagError("add-host", h, fmt.Sprintf("bad format for add-host: %q", h))
		}
		if len(ip) > 2 && ip[0] == '[' && ip[len(ip)-1] == ']' {
			ip = ip[1 : len(ip)-1]
		}
		if _, err := netip.ParseAddr(ip); err != nil && ip != "host-gateway" {
			return flagError("add-host", h, fmt.Sprintf("invalid IP address in add-host: %q", ip))
		}
		host.ExtraHosts = append(host.ExtraHosts, name+":"+ip)
	}
	host.DNS, host.DNSSearch, host.DNSOptions = []netip.Addr{}, []string{}, append([]string{}, f.dnsOptions...)
	for _, d := range f.dns {
		a, err := netip.ParseAddr(strings.TrimSpace(d))
		if err != nil {
			return flagError("dns", d, "IP address is not correctly formatted: "+d)
		}
		host.DNS = append(host.DNS, a.Unmap())
	}
	for _, d := range f.dnsSearch {
		d = strings.Trim(d, " ")
		if d != "." {
			if d = strings.TrimSuffix(d, "."); !validDomain(d) {
				return flagError("dns-search", d, d+" is not a valid domain")
			}
		}
		host.DNSSearch = append(host.DNSSearch, d)
	}
	host.PortBindings, host.PublishAllPorts = networktypes.PortMap{}, f.publishAll
	exposed := networktypes.PortSet{}
	for _, spec := range f.publish {
		if err := addPortSpec(spec, exposed, host.PortBindings); err != nil {
			return usageError{err.Error()}
		}
	}
	for _, x := range f.expose {
		if strings.Contains(x, ":") {
			return usageError{"invalid port format for --expose: " + x}
		}
		pr, err := networktypes.ParsePortRange(x)
		if err != nil {
			return usageError{fmt.Sprintf("invalid range format for --expose: %s, error: %v", x, err)}
		}
		for p := range pr.All() {
			exposed[p] = struct{}{}
		}
	}
	if len(exposed) > 0 {
		cfg.ExposedPorts = exposed
	}

	mode := containertypes.NetworkMode(networktypes.NetworkDefault)
	if len(f.networks) > 0 {
		mode = containertypes.NetworkMode(f.networks[0])
	}
	host.NetworkMode = mode
	ep := &networktypes.EndpointSettings{Aliases: f.aliases}
	if len(f.aliases) > 0 && !mode.IsUserDefined() {
		return usageError{"network-scoped aliases are only supported for user-defined networks"}
	}
	v4, _ := netip.AddrFromSlice(f.ip.To4())
	v6, _ := netip.AddrFromSlice(f.ip6.To16())
	if v4.IsValid() || v6.IsValid() {
		ep.IPAMConfig = &networktypes.EndpointIPAMConfig{IPv4Address: v4, IPv6Address: v6}
	}
	if f.mac != "" {
		ep.MacAddress = networktypes.HardwareAddr(mac)
	}
	eps := map[string]*networktypes.EndpointSettings{}
	// A single network named without endpoint settings is sent without.
	if len(f.networks) != 1 || ep.Aliases != nil || ep.IPAMConfig != nil || ep.MacAddress != nil {
		eps[string(mode)] = ep
	}
	for i := 1; i < len(f.networks); i++ {
		n := f.networks[i]
		if _, dup := eps[n]; dup {
			return usageError{fmt.Sprintf("network %q is specified multiple times", n)}
		}
		if containertypes.NetworkMode(n).IsUserDefined() != mode.IsUserDefined() {
			return usageError{"conflicting options: cannot attach both user-defined and non-user-defined network-modes"}
		}
		eps[n] = &networktypes.EndpointSettings{}
	}
	req.NetworkingConfig = &networktypes.NetworkingConfig{EndpointsConfig: eps}
	return nil
}

// validDomain says whether d is a domain name for --dns-search.
func validDomain(d string) bool {
	if len(d) >= 255 || !strings.ContainsAny(d, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
		return false
	}
	for _, l := range strings.Split(d, ".") {
		if l == "" || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if c != '-' && !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
				return false
			}
		}
	}
	return true
}

// addPortSpec reads a -p value, [ip:][hostPort:]containerPort[/proto] with
// port ranges and IPv6 addresses in brackets, into the exposed ports and
// their bindings, as Docker's nat.ParsePortSpec does (with its messages).
func addPortSpec(raw string, exposed networktypes.PortSet, bindings networktypes.PortMap) error {
	parts := strings.Split(raw, ":")
	n := len(parts)
	ip, hostPort := "", ""
	switch {
	case n == 2:
		hostPort = parts[0]
	case n > 2:
		ip, hostPort = strings.Join(parts[:n-2], ":"), parts[n-2]
	}
	ctrPort, proto, _ := strings.Cut(parts[n-1], "/")
	if proto == "" {
		proto = "tcp"
	}
	if strings.HasPrefix(ip, "[") {
		h, _, err := net.SplitHostPort(ip + ":")
		if err != nil {
			return fmt.Errorf("invalid IP address %v: %w", ip, err)
		}
		ip = h
	}
	var hostIP netip.Addr
	if ip != "" {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return fmt.Errorf("invalid IP address: %s", ip)
		}
		hostIP = a
	}
	if ctrPort == "" {
		return fmt.Errorf("no port specified: %s<empty>", raw)
	}
	cr, err := networktypes.ParsePortRange(ctrPort)
	if err != nil {
		return fmt.Errorf("invalid containerPort: %s", ctrPort)
	}
	var hr networktypes.PortRange
	if hostPort != "" {
		if hr, err = networktypes.ParsePortRange(hostPort); err != nil || strings.Contains(hostPort, "/") {
			return fmt.Errorf("invalid hostPort: %s", hostPort)
		}
		// A host range for one container port is where to pick one.
		if cr.End()-cr.Start() != hr.End()-hr.Start() && cr.Start() != cr.End() {
			return fmt.Errorf("invalid ranges specified for container and host Ports: %s and %s", ctrPort, hostPort)
		}
	}
	p0, ok := networktypes.PortFrom(cr.Start(), networktypes.IPProtocol(strings.ToLower(proto)))
	if pr := p0.Proto(); !ok || pr != "tcp" && pr != "udp" && pr != "sctp" {
		return fmt.Errorf("invalid proto: %s", proto)
	}
	for i := 0; i <= int(cr.End()-cr.Start()); i++ {
		p, _ := networktypes.PortFrom(cr.Start()+uint16(i), p0.Proto())
		b := networktypes.PortBinding{HostIP: hostIP}
		if hostPort != "" {
			b.HostPort = strconv.Itoa(int(hr.Start()) + i)
			if cr.Start() == cr.End() && hr.Start() != hr.End() {
				b.HostPort += "-" + strconv.Itoa(int(hr.End()))
			}
		}
		exposed[p] = struct{}{}
		bindings[p] = append(bindings[p], b)
	}
	return nil
}
