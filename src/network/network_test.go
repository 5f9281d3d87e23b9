package network

import (
	"net/netip"

	"reflect"
	"strings"
	"testing"

	"github.com/balena-os/balena-engine/src/errdefs"
	networktypes "github.com/moby/moby/api/types/network"
)

func TestResolvConf(t *testing.T) {
	r := resolvConf("# a comment\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch lan example.com\noptions ndots:2 edns0\nsortlist 10.0.0.0\n")
	if !reflect.DeepEqual(r.nameservers, []string{"127.0.0.53", "10.0.0.2"}) || !reflect.DeepEqual(r.search, []string{"lan", "example.com"}) ||
		!reflect.DeepEqual(r.options, []string{"ndots:2", "edns0"}) || len(r.other) != 1 {
		t.Errorf("%+v", r)
	}
}

func TestResolvFor(t *testing.T) {
	m := &Manager{opts: Options{DNS: []string{"10.114.102.1"}}}
	got := m.resolvFor(JoinRequest{DNSSearch: []string{"example.com"}, DNSOptions: []string{"ndots:1"}}, false, readHostResolv())
	if got != "nameserver 10.114.102.1\nsearch example.com\noptions ndots:1\n" {
		t.Errorf("daemon --dns with the container's search and options:\n%s", got)
	}
	// A container's own --dns wins; loopback nameservers are dropped and
	// Docker's fallback takes their place.
	got = m.resolvFor(JoinRequest{DNS: []string{"127.0.0.1"}}, false, readHostResolv())
	if !strings.HasPrefix(got, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n") {
		t.Errorf("loopback only:\n%s", got)
	}
	if ups := m.upstreams(JoinRequest{DNS: []string{"127.0.0.1"}}); !reflect.DeepEqual(ups, []string{"127.0.0.1"}) {
		t.Errorf("the resolver's upstreams keep loopback (reached from the host): %v", ups)
	}
	req := JoinRequest{DNSSearch: []string{"lan"}}
	emb := m.embeddedResolv(req, readHostResolv(), m.upstreams(req))
	if !strings.HasPrefix(emb, "nameserver 127.0.0.11\nsearch lan\noptions ndots:0\n") || !strings.Contains(emb, "# ExtServers: [10.114.102.1]") {
		t.Errorf("embedded:\n%s", emb)
	}
}

func TestParsePortRange(t *testing.T) {
	for _, tc := range []struct {
		in     string
		lo, hi uint16
		ok     bool
	}{{"", 0, 0, true}, {"0", 0, 0, true}, {"8080", 8080, 8080, true}, {"8000-8010", 8000, 8010, true},
		{"8010-8000", 0, 0, false}, {"x", 0, 0, false}, {"70000", 0, 0, false}} {
		lo, hi, err := parsePortRange(tc.in)
		if (err == nil) != tc.ok || lo != tc.lo || hi != tc.hi {
			t.Errorf("%q: %d %d %v", tc.in, lo, hi, err)
		}
	}
}

func TestULASubnet(t *testing.T) {
	s := ulaSubnet("de29fef070fc1190d026cc722e8d49d35638c3fb8b318d1dbc1d6941fa622e79")
	if s.String() != "fdde:29fe:f070::/64" {
		t.Errorf("%s", s)
	}
}

func TestNetworkRanges(t *testing.T) {
	n := &Network{}
	n.EnableIPv6 = false
	n.IPAM.Config = append(n.IPAM.Config,
		ipamConfig("172.20.0.0/16", ""), ipamConfig("fd00:1::/64", "fd00:1::fe"))
	if rs := n.ranges(); len(rs) != 1 || rs[0].Gateway.String() != "172.20.0.1" {
		t.Errorf("v4: %+v", rs)
	}
	if rs := n.ranges6(); len(rs) != 0 {
		t.Errorf("v6 without EnableIPv6: %+v", rs)
	}
	n.EnableIPv6 = true
	if rs := n.ranges6(); len(rs) != 1 || rs[0].Gateway.String() != "fd00:1::fe" {
		t.Errorf("v6: %+v", rs)
	}
}

func ipamConfig(subnet, gw string) networktypes.IPAMConfig {
	c := networktypes.IPAMConfig{Subnet: netip.MustParsePrefix(subnet)}
	if gw != "" {
		c.Gateway = netip.MustParseAddr(gw)
	}
	return c
}

// Docker's reading of a link: "name:alias", "name", inspect's form.
func TestParseLink(t *testing.T) {
	for _, tc := range []struct{ in, name, alias, err string }{
		{"db:database", "db", "database", ""},
		{"db", "db", "db", ""},
		{"/db:/web/database", "db", "database", ""},
		{"", "", "", "empty string specified for links"},
		{"a:b:c", "", "", "bad format for links: a:b:c"},
	} {
		name, alias, err := ParseLink(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || name != tc.name || alias != tc.alias {
			t.Errorf("%q: %q %q %v", tc.in, name, alias, err)
		}
	}
}

// The endpoint settings Docker refuses, in its words, and those the
// engine lacks (501 naming them); what the bridge driver takes.
func TestCheckEndpoint(t *testing.T) {
	user, dflt := &Network{}, &Network{}
	user.Name, dflt.Name, dflt.Default = "app", "bridge", true
	ll := func(s string) *networktypes.EndpointIPAMConfig {
		return &networktypes.EndpointIPAMConfig{LinkLocalIPs: []netip.Addr{netip.MustParseAddr(s)}}
	}
	for _, tc := range []struct {
		n    *Network
		cfg  networktypes.EndpointSettings
		code int
		want string
	}{
		{user, networktypes.EndpointSettings{Links: []string{"db:database"}}, 0, ""},
		{dflt, networktypes.EndpointSettings{Links: []string{"db:database"}}, 400, "links in the endpoint settings are supported on user-defined networks only"},
		{user, networktypes.EndpointSettings{Links: []string{"a:b:c"}}, 400, "bad format for links: a:b:c"},
		{user, networktypes.EndpointSettings{IPAMConfig: ll("169.254.1.2")}, 0, ""},
		{user, networktypes.EndpointSettings{IPAMConfig: ll("fe80::2")}, 0, ""},
		{user, networktypes.EndpointSettings{IPAMConfig: ll("10.0.0.2")}, 400, "invalid link local IP address: 10.0.0.2"},
		{user, networktypes.EndpointSettings{IPAMConfig: ll("0.0.0.0")}, 400, "invalid link-local IP address: 0.0.0.0"},
		{user, networktypes.EndpointSettings{DriverOpts: map[string]string{optEndpointIfname: "foo0",
			optEndpointSysctls: "net.ipv4.conf.IFNAME.forwarding=1,net.ipv6.conf.ifname.disable_ipv6=0"}}, 0, ""},
		{user, networktypes.EndpointSettings{DriverOpts: map[string]string{optEndpointIfname: "a/b"}}, 400, `invalid interface name "a/b"`},
		{user, networktypes.EndpointSettings{DriverOpts: map[string]string{optEndpointSysctls: "net.ipv4.ip_forward=1"}}, 400,
			"unrecognised network interface sysctl 'net.ipv4.ip_forward=1'"},
		{user, networktypes.EndpointSettings{DriverOpts: map[string]string{"com.example.x": "1"}}, 501,
			`endpoint driver option "com.example.x" is not implemented`},
	} {
		err := checkEndpoint(tc.n, &tc.cfg)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%+v: %v", tc.cfg, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || errdefs.HTTPStatus(errdefs.KindOf(err)) != tc.code {
			t.Errorf("%+v: %v, want %d %q", tc.cfg, err, tc.code, tc.want)
		}
	}
	cfg := &networktypes.EndpointSettings{DriverOpts: map[string]string{optEndpointSysctls: "net.ipv4.conf.IFNAME.forwarding=1,net.ipv6.conf.IFNAME.accept_ra=2"},
		IPAMConfig: &networktypes.EndpointIPAMConfig{LinkLocalIPs: []netip.Addr{netip.MustParseAddr("169.254.1.2"), netip.MustParseAddr("fe80::2")}}}
	if got := endpointSysctls(cfg, "eth1"); !reflect.DeepEqual(got, map[string]string{"net/ipv4/conf/eth1/forwarding": "1", "net/ipv6/conf/eth1/accept_ra": "2"}) {
		t.Errorf("sysctls: %v", got)
	}
	if got := linkLocal(cfg); !reflect.DeepEqual(got, []netip.Prefix{netip.MustParsePrefix("169.254.1.2/16"), netip.MustParsePrefix("fe80::2/64")}) {
		t.Errorf("link-local: %v", got)
	}
}
