package cli

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	containertypes "github.com/moby/moby/api/types/container"
	"github.com/spf13/pflag"
)

// createRequest parses run's flags and arguments into the create request.
func createRequest(args ...string) (containertypes.CreateRequest, error) {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var f runFlags
	f.register(fs)
	if err := fs.Parse(append(args, "busybox")); err != nil {
		return containertypes.CreateRequest{}, err
	}
	return f.request(fs, fs.Args())
}

// asJSON is v as the API carries it.
func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// The networking flags make the request the docker CLI sends (the shapes
// were taken from the requests docker 28.2.2 sends for the same flags).
func TestRunNetworkFlags(t *testing.T) {
	cases := []struct {
		args []string
		// the bindings, the exposed ports, the network mode and endpoints
		ports, exposed, mode, endpoints string
	}{
		{[]string{"-p", "8080:80"}, `{"80/tcp":[{"HostIp":"","HostPort":"8080"}]}`, `{"80/tcp":{}}`,
			"default", `{"default":{}}`},
		{[]string{"-p", "53:53/udp", "-p", "53:53"}, `{"53/tcp":[{"HostIp":"","HostPort":"53"}],"53/udp":[{"HostIp":"","HostPort":"53"}]}`,
			`{"53/tcp":{},"53/udp":{}}`, "default", `{"default":{}}`},
		{[]string{"-p", "127.0.0.1:8080:80/TCP"}, `{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"}]}`, `{"80/tcp":{}}`, "default", `{"default":{}}`},
		{[]string{"-p", "[::1]:8080:80", "-p", "[2001:db8::1]::81"},
			`{"80/tcp":[{"HostIp":"::1","HostPort":"8080"}],"81/tcp":[{"HostIp":"2001:db8::1","HostPort":""}]}`, `{"80/tcp":{},"81/tcp":{}}`, "default", `{"default":{}}`},
		// A host range for one port: where the daemon picks it.
		{[]string{"-p", "8000-8010:80"}, `{"80/tcp":[{"HostIp":"","HostPort":"8000-8010"}]}`, `{"80/tcp":{}}`, "default", `{"default":{}}`},
		{[]string{"-p", "9000-9001:90-91/udp"}, `{"90/udp":[{"HostIp":"","HostPort":"9000"}],"91/udp":[{"HostIp":"","HostPort":"9001"}]}`,
			`{"90/udp":{},"91/udp":{}}`, "default", `{"default":{}}`},
		{[]string{"-p", "80", "-p", "0.0.0.0:80:80"}, `{"80/tcp":[{"HostIp":"","HostPort":""},{"HostIp":"0.0.0.0","HostPort":"80"}]}`,
			`{"80/tcp":{}}`, "default", `{"default":{}}`},
		{[]string{"-P", "--expose", "7000-7001", "--expose", "53/udp"}, `{}`, `{"53/udp":{},"7000/tcp":{},"7001/tcp":{}}`, "default", `{"default":{}}`},
		{[]string{"--network", "host"}, `{}`, `null`, "host", `{}`},
		{[]string{"--network", "app"}, `{}`, `null`, "app", `{}`},
		{[]string{"--network", "app", "--network-alias", "api", "--network-alias", "web", "--ip", "10.1.0.5", "--ip6", "2001:db8::5",
			"--mac-address", "92:d0:c6:0a:29:33"}, `{}`, `null`, "app",
			`{"app":{"Aliases":["api","web"],"IPAMConfig":{"IPv4Address":"10.1.0.5","IPv6Address":"2001:db8::5"},"MacAddress":"92:d0:c6:0a:29:33"}}`},
		{[]string{"--network", "app", "--network", "other"}, `{}`, `null`, "app", `{"app":{},"other":{}}`},
	}
	for _, c := range cases {
		req, err := createRequest(c.args...)
		if err != nil {
			t.Errorf("%q: %v", c.args, err)
			continue
		}
		// Only the endpoint fields a client sets (in the order of their names).
		var eps map[string]json.RawMessage
		json.Unmarshal([]byte(asJSON(req.NetworkingConfig.EndpointsConfig)), &eps)
		for name, ep := range eps {
			var m map[string]any
			json.Unmarshal(ep, &m)
			for k, v := range m {
				if v == nil || v == "" || v == 0.0 {
					delete(m, k)
				}
			}
			eps[name] = json.RawMessage(asJSON(m))
		}
		got := []string{asJSON(req.HostConfig.PortBindings), asJSON(req.Config.ExposedPorts), string(req.HostConfig.NetworkMode), asJSON(eps)}
		want := []string{c.ports, c.exposed, c.mode, c.endpoints}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%q: %s, want %s", c.args, got[i], want[i])
			}
		}
		if req.HostConfig.PublishAllPorts != (c.args[0] == "-P") {
			t.Errorf("%q: PublishAllPorts %v", c.args, req.HostConfig.PublishAllPorts)
		}
	}
}

func TestRunHostAndDNSFlags(t *testing.T) {
	req, err := createRequest("-h", "box", "--add-host", "db:10.0.0.5", "--add-host", "v6=[::1]", "--add-host", "gw:host-gateway",
		"--dns", "8.8.8.8", "--dns", "::ffff:1.1.1.1", "--dns-search", "example.com.", "--dns-search", ".", "--dns-option", "ndots:2")
	if err != nil {
		t.Fatal(err)
	}
	h := req.HostConfig
	got := asJSON([]any{req.Config.Hostname, h.ExtraHosts, h.DNS, h.DNSSearch, h.DNSOptions})
	if want := `["box",["db:10.0.0.5","v6:::1","gw:host-gateway"],["8.8.8.8","1.1.1.1"],["example.com","."],["ndots:2"]]`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	// Never null, as Docker sends them.
	req, _ = createRequest()
	if got := asJSON([]any{req.HostConfig.DNS, req.HostConfig.DNSSearch, req.HostConfig.DNSOptions, req.HostConfig.PortBindings}); got != `[[],[],[],{}]` {
		t.Errorf("without flags: %s", got)
	}
}

func TestRunNetworkFlagErrors(t *testing.T) {
	for _, c := range []struct{ args, want string }{
		{"-p abc", "invalid containerPort: abc"},
		{"-p x:80", "invalid hostPort: x"},
		{"-p 1.2.3:80:80", "invalid IP address: 1.2.3"},
		{"-p [::1:80:80", "invalid IP address [::1: address [::1:: missing ']' in address"},
		{"-p 8080:", "no port specified: 8080:<empty>"},
		{"-p 80/xyz", "invalid proto: xyz"},
		{"-p 8000-8002:80-81", "invalid ranges specified for container and host Ports: 80-81 and 8000-8002"},
		{"-p 90-80", "invalid containerPort: 90-80"},
		{"--expose 1:2", "invalid port format for --expose: 1:2"},
		{"--dns foo", `invalid argument "foo" for "--dns" flag: IP address is not correctly formatted: foo`},
		{"--dns-search -bad", `invalid argument "-bad" for "--dns-search" flag: -bad is not a valid domain`},
		{"--add-host foo", `invalid argument "foo" for "--add-host" flag: bad format for add-host: "foo"`},
		{"--add-host a:bad", `invalid argument "a:bad" for "--add-host" flag: invalid IP address in add-host: "bad"`},
		{"--mac-address zz", "zz is not a valid mac address"},
		{"--network-alias a", "network-scoped aliases are only supported for user-defined networks"},
		{"--network app --network app", `network "app" is specified multiple times`},
		{"--network app --network host", "conflicting options: cannot attach both user-defined and non-user-defined network-modes"},
		{"--ip notip", `invalid argument "notip" for "--ip" flag: failed to parse IP: "notip"`},
	} {
		_, err := createRequest(strings.Fields(c.args)...)
		if err == nil || err.Error() != c.want {
			t.Errorf("%s: %v, want %q", c.args, err, c.want)
		}
	}
}

func TestIPAMConfig(t *testing.T) {
	cfg, err := ipamConfig([]string{"10.1.0.0/24", "10.2.0.0/16"}, []string{"10.2.1.0/24"}, []string{"10.1.0.1"}, []string{"router=10.1.0.2", "x=10.2.0.3"})
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"Subnet":"10.1.0.0/24","Gateway":"10.1.0.1","AuxiliaryAddresses":{"router":"10.1.0.2"}},` +
		`{"Subnet":"10.2.0.0/16","IPRange":"10.2.1.0/24","AuxiliaryAddresses":{"x":"10.2.0.3"}}]`
	if got := asJSON(cfg); got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	for _, c := range []struct {
		subnets, ranges, gateways, aux []string
		want                           string
	}{
		{nil, nil, []string{"10.0.0.1"}, nil, "every ip-range or gateway must have a corresponding subnet"},
		{[]string{"10.0.0.0/8", "10.1.0.0/16"}, nil, nil, nil, "multiple overlapping subnet configuration is not supported"},
		{[]string{"nope"}, nil, nil, nil, "invalid subnet: invalid CIDR address: nope"},
		{[]string{"10.0.0.0/24"}, nil, []string{"10.9.0.1"}, nil, "no matching subnet for gateway 10.9.0.1"},
		{[]string{"10.0.0.0/24"}, []string{"10.9.0.0/25"}, nil, nil, "no matching subnet for range 10.9.0.0/25"},
		{[]string{"10.0.0.0/24"}, nil, nil, []string{"a=10.9.0.1"}, "no matching subnet for aux-address 10.9.0.1"},
		{[]string{"10.0.0.0/24", "10.1.0.0/24"}, nil, []string{"10.0.0.1", "10.0.0.2"}, nil,
			"cannot configure multiple gateways (10.0.0.2, 10.0.0.1) for the same subnet (10.0.0.0/24)"},
	} {
		if _, err := ipamConfig(c.subnets, c.ranges, c.gateways, c.aux); err == nil || err.Error() != c.want {
			t.Errorf("%v %v %v %v: %v, want %q", c.subnets, c.ranges, c.gateways, c.aux, err, c.want)
		}
	}
}

// Docker's PORTS column (the cases of the docker CLI's own tests).
func TestDisplayPorts(t *testing.T) {
	ports := func(js string) []containertypes.PortSummary {
		var p []containertypes.PortSummary
		if err := json.Unmarshal([]byte(js), &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for js, want := range map[string]string{
		`[]`:                                  "",
		`[{"PrivatePort":9988,"Type":"tcp"}]`: "9988/tcp",
		`[{"PrivatePort":9988,"Type":"udp"}]`: "9988/udp",
		`[{"IP":"0.0.0.0","PrivatePort":9988,"Type":"tcp"}]`:                                                                                                                       "0.0.0.0:0->9988/tcp",
		`[{"IP":"::","PrivatePort":80,"PublicPort":8080,"Type":"tcp"}]`:                                                                                                            "[::]:8080->80/tcp",
		`[{"IP":"4.3.2.1","PrivatePort":9988,"PublicPort":9988,"Type":"tcp"}]`:                                                                                                     "4.3.2.1:9988->9988/tcp",
		`[{"PrivatePort":9988,"Type":"udp"},{"PrivatePort":9988,"Type":"tcp"}]`:                                                                                                    "9988/tcp, 9988/udp",
		`[{"IP":"1.2.3.4","PublicPort":9998,"PrivatePort":9998,"Type":"udp"},{"IP":"1.2.3.4","PublicPort":9999,"PrivatePort":9999,"Type":"udp"}]`:                                  "1.2.3.4:9998-9999->9998-9999/udp",
		`[{"IP":"1.2.3.4","PublicPort":8887,"PrivatePort":9998,"Type":"udp"},{"IP":"1.2.3.4","PublicPort":8888,"PrivatePort":9999,"Type":"udp"}]`:                                  "1.2.3.4:8887->9998/udp, 1.2.3.4:8888->9999/udp",
		`[{"PrivatePort":6677,"Type":"tcp"},{"PrivatePort":6678,"Type":"tcp"},{"PrivatePort":6680,"Type":"tcp"},{"IP":"0.0.0.0","PrivatePort":80,"PublicPort":8080,"Type":"tcp"}]`: "6677-6678/tcp, 6680/tcp, 0.0.0.0:8080->80/tcp",
	} {
		if got := displayPorts(ports(js)); got != want {
			t.Errorf("%s: %q, want %q", js, got, want)
		}
	}
}

func TestNaturalLess(t *testing.T) {
	for _, c := range [][2]string{{"web2", "web10"}, {"a", "b"}, {"80/tcp", "443/tcp"}, {"x1", "x01"}, {"1a", "a"}, {"web", "web1"}} {
		if !naturalLess(c[0], c[1]) || naturalLess(c[1], c[0]) {
			t.Errorf("%q < %q does not hold", c[0], c[1])
		}
	}
}

// fakeDaemon serves canned answers by "METHOD /path" (the version prefix
// removed) on a unix socket and records the requests; it returns the -H
// value for it.
type fakeDaemon struct {
	mu   sync.Mutex
	reqs []string // "METHOD /path?query body"
}

func (d *fakeDaemon) serve(t *testing.T, answers map[string]string) string {
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.50")
		path := r.URL.Path
		if _, rest, ok := strings.Cut(strings.TrimPrefix(path, "/v1."), "/"); ok && strings.HasPrefix(path, "/v1.") {
			path = "/" + rest
		}
		if path == "/_ping" {
			return
		}
		body, _ := io.ReadAll(r.Body)
		d.mu.Lock()
		d.reqs = append(d.reqs, strings.TrimSpace(r.Method+" "+path+"?"+r.URL.RawQuery+" "+string(body)))
		d.mu.Unlock()
		a, ok := answers[r.Method+" "+path]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			a = `{"message":"network ` + strings.TrimPrefix(path, "/networks/") + ` not found"}`
		}
		w.Write([]byte(a))
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "unix://" + sock
}

const (
	bridgeID  = "1111bbbb2222cccc3333dddd4444eeee5555ffff6666aaaa1111bbbb2222aaaa"
	web10ID   = "aaaa1111bbbb2222cccc3333dddd4444eeee5555ffff6666aaaa1111bbbb2222"
	networks  = `[{"Name":"web10","Id":"` + web10ID + `","Created":"2024-05-06T07:08:09.5Z","Scope":"local","Driver":"bridge","EnableIPv4":true,"Labels":{"b":"2","a":"1"}},` + `{"Name":"bridge","Id":"` + bridgeID + `","Created":"2024-05-06T07:08:09Z","Scope":"local","Driver":"bridge","EnableIPv4":true,"Internal":true},` + `{"Name":"web2","Id":"2222","Created":"2024-05-06T07:08:09Z","Scope":"local","Driver":"bridge"}]`
	web10JSON = `{"Name":"web10","Id":"` + web10ID + `","Labels":{"a":"<1>"}}`
)

// The network commands' output, as the docker CLI prints it (compared with
// docker 28.2.2's for the same answers).
func TestNetworkCommandsOutput(t *testing.T) {
	var d fakeDaemon
	host := d.serve(t, map[string]string{
		"GET /networks":              networks,
		"GET /networks/web10":        web10JSON,
		"DELETE /networks/web10":     "",
		"POST /networks/create":      `{"Id":"` + web10ID + `","Warning":""}`,
		"POST /networks/prune":       `{"NetworksDeleted":["n1","n2"]}`,
		"POST /networks/app/connect": "",
		"GET /containers/web/json": `{"Id":"abc","NetworkSettings":{"Ports":{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"},{"HostIp":"::","HostPort":"8080"}],` +
			`"443/tcp":[{"HostIp":"127.0.0.1","HostPort":"8443"}],"53/udp":[{"HostIp":"0.0.0.0","HostPort":"5353"}],"9000/tcp":null}}}`,
	})
	cases := []struct {
		args      []string
		code      int
		out, errs string
	}{
		{[]string{"network", "ls"}, 0, "NETWORK ID     NAME      DRIVER    SCOPE\n1111bbbb2222   bridge    bridge    local\n" +
			"2222           web2      bridge    local\naaaa1111bbbb   web10     bridge    local\n", ""},
		{[]string{"network", "ls", "-q"}, 0, "1111bbbb2222\n2222\naaaa1111bbbb\n", ""},
		{[]string{"network", "ls", "-q", "--no-trunc"}, 0, bridgeID + "\n2222\n" + web10ID + "\n", ""},
		{[]string{"network", "ls", "--format", "json", "-f", "name=web10"}, 0,
			`{"CreatedAt":"2024-05-06 07:08:09 +0000 UTC","Driver":"bridge","ID":"1111bbbb2222","IPv4":"true","IPv6":"false","Internal":"true","Labels":"","Name":"bridge","Scope":"local"}` + "\n" +
				`{"CreatedAt":"2024-05-06 07:08:09 +0000 UTC","Driver":"bridge","ID":"2222","IPv4":"false","IPv6":"false","Internal":"false","Labels":"","Name":"web2","Scope":"local"}` + "\n" +
				`{"CreatedAt":"2024-05-06 07:08:09.5 +0000 UTC","Driver":"bridge","ID":"aaaa1111bbbb","IPv4":"true","IPv6":"false","Internal":"false","Labels":"a=1,b=2","Name":"web10","Scope":"local"}` + "\n", ""},
		{[]string{"network", "ls", "--format", "table {{.Name}}\t{{.Internal}}\t{{.Labels}}"}, 0,
			"NAME      INTERNAL   LABELS\nbridge    true       \nweb2      false      \nweb10     false      a=1,b=2\n", ""},
		{[]string{"network", "ls", "--format", `{{.Name}}:{{.Label "b"}}`}, 0, "bridge:\nweb2:\nweb10:2\n", ""},
		{[]string{"network", "ls", "extra"}, 125, "", `"balena-engine network ls" accepts no arguments.`},
		{[]string{"network", "inspect", "web10", "nosuch"}, 1,
			"[\n    {\n        \"Name\": \"web10\",\n        \"Id\": \"" + web10ID + "\",\n        \"Labels\": {\n            \"a\": \"<1>\"\n        }\n    }\n]\n",
			"Error response from daemon: network nosuch not found\n"},
		{[]string{"network", "inspect", "-f", "json", "web10"}, 0, "[" + web10JSON + "]\n", ""},
		{[]string{"network", "inspect", "--format", "{{.Name}} {{.Id}}", "web10"}, 0, "web10 " + web10ID + "\n", ""},
		{[]string{"network", "create", "--subnet", "10.1.0.0/24", "app"}, 0, web10ID + "\n", ""},
		{[]string{"network", "create"}, 125, "", `"balena-engine network create" requires exactly 1 argument.`},
		{[]string{"network", "rm", "web10", "nosuch"}, 1, "web10\n", "Error response from daemon: network nosuch not found\nexit status 1\n"},
		{[]string{"network", "rm", "-f", "nosuch", "web10"}, 0, "web10\n", ""},
		{[]string{"network", "prune", "-f", "--filter", "label=a=b"}, 0, "Deleted Networks:\nn1\nn2\n\n", ""},
		{[]string{"network", "connect", "--alias", "x", "--ip", "10.1.0.9", "app", "web"}, 0, "", ""},
		{[]string{"port", "web"}, 0, "53/udp -> 0.0.0.0:5353\n80/tcp -> 0.0.0.0:8080\n80/tcp -> [::]:8080\n443/tcp -> 127.0.0.1:8443\n", ""},
		{[]string{"port", "web", "80"}, 0, "0.0.0.0:8080\n[::]:8080\n", ""},
		{[]string{"port", "web", "53/udp"}, 0, "0.0.0.0:5353\n", ""},
		{[]string{"port", "web", "9000"}, 1, "", "Error: No public port '9000' published for web\n"},
		{[]string{"port", "web", "abc"}, 1, "", "Error: invalid port (abc): strconv.ParseUint: parsing \"abc\": invalid syntax\n"},
		{[]string{"container", "port", "web", "443/tcp"}, 0, "127.0.0.1:8443\n", ""},
	}
	for _, c := range cases {
		code, out, errs := runCLI(t, append([]string{"-H", host}, c.args...)...)
		if code != c.code || out != c.out || !strings.HasPrefix(errs, c.errs) {
			t.Errorf("%q: exit %d\n%s\nstderr %q\nwant exit %d\n%s\nstderr %q", c.args, code, out, errs, c.code, c.out, c.errs)
		}
	}
	// What reached the daemon: Docker's filters and bodies.
	want := []string{
		`GET /networks?filters={"name":{"web10":true}}`,
		`POST /networks/create? {"Name":"app","Driver":"bridge","Scope":"","IPAM":{"Driver":"default","Options":{},"Config":[{"Subnet":"10.1.0.0/24"}]},` +
			`"Internal":false,"Attachable":false,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,"Options":{},"Labels":{}}`,
		`POST /networks/prune?filters={"label":{"a=b":true}}`,
		`POST /networks/app/connect? {"Container":"web","EndpointConfig":{"IPAMConfig":{"IPv4Address":"10.1.0.9"},"Links":null,"Aliases":["x"],"DriverOpts":{},` +
			`"GwPriority":0,"NetworkID":"","EndpointID":"","Gateway":"","IPAddress":"","MacAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}`,
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, w := range want {
		found := false
		for _, r := range d.reqs {
			if q, err := url.QueryUnescape(r); err == nil && q == w {
				found = true
			}
		}
		if !found {
			t.Errorf("no request %s in\n%s", w, strings.Join(d.reqs, "\n"))
		}
	}
}
