//go:build e2e

package e2e

// Our client's network commands, port publishing and "port", each
// compared with what the docker CLI makes of the same daemon (in a network
// namespace of its own: withNetDaemon).

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestE2ECLINetwork(t *testing.T) {
	p, h, _, env := withNetDaemon(t)
	dumpMonitorLog(t, p)
	docker := dockerOK(t, env)
	oursOK := func(args ...string) string {
		t.Helper()
		r := ours(t, p, args...)
		if r.code != 0 {
			t.Fatalf("ours %v: %d %s", args, r.code, r.stderr)
		}
		return strings.TrimSpace(r.stdout)
	}
	// same runs a command with both clients: the same exit code, output
	// and errors; it returns ours.
	same := func(args ...string) result {
		t.Helper()
		o, d := ours(t, p, args...), run(t, env, "docker", args...)
		if o.code != d.code || o.stdout != d.stdout || o.stderr != d.stderr {
			t.Errorf("%v:\nours   %d %q %q\ndocker %d %q %q", args, o.code, o.stdout, o.stderr, d.code, d.stdout, d.stderr)
		}
		return o
	}

	id := oursOK("network", "create", "--subnet", "10.123.0.0/24", "--gateway", "10.123.0.1", "--ip-range", "10.123.0.128/25",
		"--aux-address", "router=10.123.0.2", "--label", "app=web", "-o", "com.docker.network.bridge.name=br-app", "app")
	if len(id) != 64 {
		t.Fatalf("network create printed %q, want the ID", id)
	}
	docker("network", "create", "--internal", "other")
	if ls := same("network", "ls").stdout; !strings.HasPrefix(ls, "NETWORK ID     NAME      DRIVER    SCOPE\n") || !strings.Contains(ls, id[:12]+"   app       bridge    local\n") {
		t.Errorf("network ls:\n%s", ls)
	}
	same("network", "ls", "-q")
	same("network", "ls", "--no-trunc")
	same("network", "ls", "--format", "json")
	same("network", "ls", "--format", "table {{.Name}}\t{{.Internal}}\t{{.Labels}}")
	if out := same("network", "ls", "-f", "label=app=web", "--format", "{{.ID}} {{.Name}}").stdout; out != id[:12]+" app\n" {
		t.Errorf("network ls by label: %q", out)
	}
	// inspect: the daemon's JSON as docker prints it, with what create sent.
	var in []struct {
		Name, Id string
		IPAM     struct {
			Config []struct {
				Subnet, IPRange, Gateway string
				AuxiliaryAddresses       map[string]string
			}
		}
		Options, Labels map[string]string
	}
	if err := json.Unmarshal([]byte(same("network", "inspect", "app").stdout), &in); err != nil || len(in) != 1 {
		t.Fatalf("network inspect: %v %+v", err, in)
	}
	if c := in[0].IPAM.Config; in[0].Id != id || len(c) != 1 || c[0].Subnet != "10.123.0.0/24" || c[0].IPRange != "10.123.0.128/25" ||
		c[0].Gateway != "10.123.0.1" || c[0].AuxiliaryAddresses["router"] != "10.123.0.2" ||
		in[0].Labels["app"] != "web" || in[0].Options["com.docker.network.bridge.name"] != "br-app" {
		t.Errorf("network inspect: %+v", in[0])
	}
	same("network", "inspect", "-f", "{{.Name}} {{.Id}} {{range .IPAM.Config}}{{.Subnet}}{{end}}", "app", "other")
	same("network", "inspect", "-f", "json", "other")
	same("network", "inspect", "app", "nosuch")

	// A published port: port, ps, and a fetch through it from "the host".
	web := `mkdir -p /www && echo "hello from $(hostname)" > /www/index.html && exec httpd -f -p 80 -h /www`
	oursOK("run", "-d", "-p", "8080:80", "--name", "web", "busybox", "sh", "-c", web)
	if out := same("port", "web").stdout; out != "80/tcp -> 0.0.0.0:8080\n" {
		t.Errorf("port web: %q", out)
	}
	same("port", "web", "80/tcp")
	same("port", "web", "81")
	if out := same("ps", "--format", "{{.Names}} {{.Ports}}").stdout; out != "web 0.0.0.0:8080->80/tcp\n" {
		t.Errorf("ps: %q", out)
	}
	if out := oursOK("ps"); !strings.Contains(out, "   0.0.0.0:8080->80/tcp   web") {
		t.Errorf("ps table:\n%s", out)
	}
	eventually(t, 20*time.Second, "web answers on the published port", func() bool {
		got, _ := h.fetch(t, "http://127.0.0.1:8080/")
		return strings.HasPrefix(got, "hello from ")
	})

	// A user network: an alias and a static address, then connect and
	// disconnect.
	oursOK("run", "-d", "--network", "app", "--network-alias", "api", "--ip", "10.123.0.200", "--name", "api", "busybox", "sh", "-c", web)
	var api ctrNet
	inspectJSON(t, env, "api", &api)
	if n := api.NetworkSettings.Networks["app"]; n.IPAddress != "10.123.0.200" || !slices.Contains(n.Aliases, "api") {
		t.Errorf("api on app: %+v", api.NetworkSettings.Networks)
	}
	if got := oursOK("run", "--rm", "--network", "app", "busybox", "timeout", "5", "wget", "-qO-", "http://api/"); !strings.HasPrefix(got, "hello from ") {
		t.Errorf("the alias from the network: %q", got)
	}
	if r := ours(t, p, "network", "connect", "--alias", "web-app", "--ip", "10.123.0.201", "app", "web"); r.code != 0 || r.stdout != "" {
		t.Fatalf("network connect: %d %q %q", r.code, r.stdout, r.stderr)
	}
	var w ctrNet
	inspectJSON(t, env, "web", &w)
	if n := w.NetworkSettings.Networks["app"]; n.IPAddress != "10.123.0.201" || !slices.Contains(n.Aliases, "web-app") {
		t.Errorf("web after connect: %+v", w.NetworkSettings.Networks)
	}
	same("network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{.IPv4Address}} {{end}}", "app")
	same("network", "connect", "app", "web") // already connected: the daemon's error
	if r := ours(t, p, "network", "disconnect", "app", "web"); r.code != 0 || r.stdout != "" {
		t.Fatalf("network disconnect: %d %q %q", r.code, r.stdout, r.stderr)
	}
	var after ctrNet
	inspectJSON(t, env, "web", &after)
	if _, ok := after.NetworkSettings.Networks["app"]; ok || len(after.NetworkSettings.Networks) != 1 {
		t.Errorf("web after disconnect: %+v", after.NetworkSettings.Networks)
	}
	same("network", "disconnect", "app", "web")

	// rm: a network in use is refused, several are removed by name.
	same("network", "rm", "app")
	docker("network", "create", "n1")
	docker("network", "create", "n2")
	if r := ours(t, p, "network", "rm", "n1", "nosuch", "n2"); r.code != 1 || r.stdout != "n1\nn2\n" ||
		r.stderr != "Error response from daemon: network nosuch not found\nexit status 1\n" {
		t.Errorf("network rm: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := ours(t, p, "network", "rm", "-f", "nosuch"); r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Errorf("network rm -f: %d %q %q", r.code, r.stdout, r.stderr)
	}

	// prune asks first, as docker does; declined, nothing goes.
	r := oursWithStdin(t, p, strings.NewReader("n\n"), "network", "prune")
	if r.code != 0 || r.stdout != "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] " {
		t.Errorf("declined prune: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(oursOK("network", "ls"), " other ") {
		t.Fatal("a declined prune removed a network")
	}
	// Both clients' prune: the unused network goes, app (in use) stays.
	want := "Deleted Networks:\nother\n\n"
	if r := ours(t, p, "network", "prune", "-f"); r.code != 0 || r.stdout != want {
		t.Errorf("network prune -f: %d %q %q", r.code, r.stdout, r.stderr)
	}
	docker("network", "create", "other")
	if d := run(t, env, "docker", "network", "prune", "-f"); d.stdout != want {
		t.Errorf("docker network prune -f: %q", d.stdout)
	}
	same("network", "prune", "-f", "--filter", "label=nothing")

	oursOK("rm", "-f", "web", "api")
	if out := oursOK("network", "rm", "app"); out != "app" {
		t.Errorf("network rm app: %q", out)
	}
	if out := same("network", "ls", "--format", "{{.Name}}").stdout; out != "bridge\nhost\nnone\n" {
		t.Errorf("networks left: %q", out)
	}
}

// The create requests of the networking flags, ours and the docker CLI's,
// taken by a server that answers nothing else: the same ports, bindings,
// hosts, DNS settings, network mode and endpoints.
func TestE2ECLINetworkFlagsAsDocker(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	bodies := make(chan []byte, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.50")
		if strings.HasSuffix(r.URL.Path, "/containers/create") {
			b, _ := io.ReadAll(r.Body)
			bodies <- b
		}
		if !strings.HasSuffix(r.URL.Path, "/_ping") {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"message":"taken"}`)
		}
	})}
	go srv.Serve(l)
	defer srv.Close()
	// shape is the networking part of a create request.
	shape := func(client string, args []string) string {
		t.Helper()
		r := run(t, nil, client, append(append([]string{"-H", "unix://" + sock, "create"}, args...), "busybox")...)
		var b []byte
		select {
		case b = <-bodies:
		default:
			t.Fatalf("%s %v sent no create: %s", client, args, r.stderr)
		}
		var req struct {
			Hostname         string
			ExposedPorts     any
			HostConfig       map[string]any
			NetworkingConfig any
		}
		if err := json.Unmarshal(b, &req); err != nil {
			t.Fatal(err)
		}
		h := map[string]any{}
		for _, k := range []string{"NetworkMode", "PortBindings", "PublishAllPorts", "ExtraHosts", "Dns", "DnsSearch", "DnsOptions"} {
			h[k] = req.HostConfig[k]
		}
		out, _ := json.Marshal([]any{req.Hostname, req.ExposedPorts, h, req.NetworkingConfig})
		return string(out)
	}
	for _, args := range [][]string{
		{"-p", "8080:80", "-p", "127.0.0.1:9000-9001:90-91/udp", "-p", "[::1]:53:53/udp", "-p", "7000-7010:70", "-p", "81",
			"--expose", "5000-5001", "--expose", "6000/udp", "-P"},
		{"-h", "box", "--add-host", "db:10.0.0.5", "--add-host", "v6=[::1]", "--dns", "8.8.8.8", "--dns-search", "example.com", "--dns-option", "ndots:2"},
		{"--network", "app", "--network-alias", "a1", "--network-alias", "a2", "--ip", "10.1.0.5", "--ip6", "2001:db8::5", "--mac-address", "92:d0:c6:0a:29:33"},
		{"--network", "app"},
		{"--network", "app", "--network", "other"},
		{"--network", "none"},
	} {
		if o, d := shape(engineBin(t), args), shape("docker", args); o != d {
			t.Errorf("%q:\nours   %s\ndocker %s", args, o, d)
		}
	}
}
