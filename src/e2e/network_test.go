//go:build e2e

package e2e

// Bridge networking with the real docker CLI: the daemon runs in a
// network namespace of its own (withNetDaemon), so its bridges, veths and
// firewall rules are made there and nothing touches the host's network;
// traffic stays on that namespace's loopback and bridges.

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/balena-os/balena-engine/src/internal/mounts"
)

// netHost is a network namespace a test makes to stand for the host: a
// file under the test's directory it is bound on, so it outlives any
// process (a daemon killed and started again joins the same one).
type netHost string

func newNetHost(t *testing.T, p paths) netHost {
	t.Helper()
	for _, tool := range []string{"unshare", "nsenter", "iptables-restore", "busybox", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	f := filepath.Join(p.dir, "host-netns")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := run(t, nil, "unshare", "--net="+f, "true"); r.code != 0 {
		t.Fatalf("unshare --net=%s: %s", f, r.stderr)
	}
	h := netHost(f)
	if r := h.run(t, "busybox", "ip", "link", "set", "lo", "up"); r.code != 0 {
		t.Fatalf("lo up: %s", r.stderr)
	}
	// As a freshly booted device: forwarding off (a new namespace may
	// inherit the host's setting), so the engine turns it on itself.
	if r := h.run(t, "sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward"); r.code != 0 {
		t.Fatalf("ip_forward: %s", r.stderr)
	}
	return h // unmounted with everything under p.dir (stopMonitor)
}

func (h netHost) prefix() []string { return []string{"nsenter", "--net=" + string(h), "--"} }

// run runs a command in the namespace: "the host" as the daemon's
// containers see it.
func (h netHost) run(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, nil, "nsenter", append([]string{"--net=" + string(h), "--"}, args...)...)
}

// fetch gets a URL with curl from the namespace (busybox 1.35's wget
// crashes with -T).
func (h netHost) fetch(t *testing.T, url string) (string, bool) {
	t.Helper()
	r := h.run(t, "curl", "-sS", "-m", "5", url)
	return r.stdout, r.code == 0
}

// netDaemonArgs turn networking on (the default bridge, the firewall,
// forwarding) over the harness's defaults.
var netDaemonArgs = []string{"--bridge=balena0", "--iptables=true", "--ip-forward=true"}

// withNetDaemon starts a daemon with networking on in a network namespace
// of its own, and loads the busybox image.
func withNetDaemon(t *testing.T, extra ...string) (paths, netHost, *daemonProc, []string) {
	t.Helper()
	bin := engineBin(t)
	p := newPaths(t)
	h := newNetHost(t, p)
	args := append(append(h.prefix(), bin), append(append(p.daemonArgs(), netDaemonArgs...), extra...)...)
	d := startDaemon(t, exec.Command(args[0], args[1:]...), p.sock)
	loadBusybox(t, p, bin)
	return p, h, d, []string{"DOCKER_HOST=unix://" + p.sock, "DOCKER_CONFIG=" + p.dir}
}

func inspectJSON(t *testing.T, env []string, ref string, v any) {
	t.Helper()
	r := run(t, env, "docker", "inspect", ref)
	if r.code != 0 {
		t.Fatalf("inspect %s: %s", ref, r.stderr)
	}
	var list []json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 1 {
		t.Fatalf("inspect %s: %v %s", ref, err, r.stdout)
	}
	if err := json.Unmarshal(list[0], v); err != nil {
		t.Fatal(err)
	}
}

type ctrNet struct {
	NetworkSettings struct {
		Networks map[string]struct {
			IPAddress, Gateway, MacAddress, NetworkID string
			IPPrefixLen                               int
			Aliases                                   []string
		}
		Ports map[string][]struct{ HostIp, HostPort string }
	}
}

func TestE2EBridgeNetworking(t *testing.T) {
	p, h, d, env := withNetDaemon(t)
	dumpMonitorLog(t, p)
	docker := dockerOK(t, env)
	web := `mkdir -p /www && echo "hello from $(hostname)" > /www/index.html && exec httpd -f -p 80 -h /www`
	docker("run", "-d", "--name", "web", "-p", "8080:80", "busybox", "sh", "-c", web)
	var in ctrNet
	inspectJSON(t, env, "web", &in)
	br := in.NetworkSettings.Networks["bridge"]
	if br.IPAddress == "" || br.Gateway == "" || br.IPPrefixLen == 0 || br.MacAddress == "" {
		t.Fatalf("web's bridge endpoint: %+v", br)
	}
	if ps := in.NetworkSettings.Ports["80/tcp"]; len(ps) != 1 || ps[0].HostPort != "8080" || ps[0].HostIp != "0.0.0.0" {
		t.Fatalf("web's ports: %+v", in.NetworkSettings.Ports)
	}
	want := "hello from "
	var body string
	eventually(t, 20*time.Second, "web answers on its address", func() bool {
		body, _ = h.fetch(t, "http://"+br.IPAddress+"/")
		return strings.HasPrefix(body, want)
	})
	// The published port: from "the host's" 127.0.0.1 and own address.
	for _, url := range []string{"http://127.0.0.1:8080/", "http://" + br.Gateway + ":8080/"} {
		if got, ok := h.fetch(t, url); !ok || got != body {
			t.Errorf("%s: %q (%v), want %q", url, got, ok, body)
		}
	}
	// From another container: by address, through the published port
	// on the host's address, and from web itself (hairpin).
	for _, url := range []string{"http://" + br.IPAddress + "/", "http://" + br.Gateway + ":8080/"} {
		if got := docker("run", "--rm", "busybox", "timeout", "5", "wget", "-qO-", url); got+"\n" != body {
			t.Errorf("another container, %s: %q", url, got)
		}
	}
	if got := docker("exec", "web", "timeout", "5", "wget", "-qO-", "http://"+br.Gateway+":8080/"); got+"\n" != body {
		t.Errorf("hairpin: %q", got)
	}
	// The traffic served shows in docker stats' network figures.
	if net := docker("stats", "--no-stream", "--format", "{{.NetIO}}", "web"); strings.HasPrefix(net, "0B /") || !strings.Contains(net, "/") {
		t.Errorf("docker stats NET I/O of a container that served pages: %q", net)
	}
	// The container's /etc files, as Docker writes them.
	hosts := docker("exec", "web", "cat", "/etc/hosts")
	if !strings.Contains(hosts, br.IPAddress+"\t") || !strings.Contains(hosts, "127.0.0.1\tlocalhost") {
		t.Errorf("/etc/hosts:\n%s", hosts)
	}
	if rc := docker("exec", "web", "cat", "/etc/resolv.conf"); strings.Contains(rc, "nameserver 127.") {
		t.Errorf("resolv.conf keeps a loopback nameserver:\n%s", rc)
	}

	// -P picks free ports for the image's and --expose's ports.
	docker("run", "-d", "--name", "auto", "-P", "--expose", "80", "busybox", "sh", "-c", web)
	var auto ctrNet
	inspectJSON(t, env, "auto", &auto)
	ap := auto.NetworkSettings.Ports["80/tcp"]
	if len(ap) != 1 || ap[0].HostPort == "" || ap[0].HostPort == "0" {
		t.Fatalf("-P: %+v", auto.NetworkSettings.Ports)
	}
	eventually(t, 20*time.Second, "the -P port answers", func() bool {
		got, _ := h.fetch(t, "http://127.0.0.1:"+ap[0].HostPort+"/")
		return strings.HasPrefix(got, want)
	})
	if r := run(t, env, "docker", "port", "auto", "80"); !strings.Contains(r.stdout, ":"+ap[0].HostPort) {
		t.Errorf("docker port: %q %q", r.stdout, r.stderr)
	}

	// A port already taken: Docker's error, and nothing left behind.
	linksBefore := h.run(t, "ip", "-o", "link").stdout
	r := run(t, env, "docker", "run", "-d", "--name", "clash", "-p", "8080:80", "busybox", "sleep", "100")
	if r.code == 0 || !strings.Contains(r.stderr, "port is already allocated") {
		t.Fatalf("a taken port: %d %q", r.code, r.stderr)
	}
	if after := h.run(t, "ip", "-o", "link").stdout; strings.Count(after, "\n") != strings.Count(linksBefore, "\n") {
		t.Errorf("a failed start left links:\nbefore %s\nafter %s", linksBefore, after)
	}
	if ents, _ := os.ReadDir(filepath.Join(p.execRoot, "netns")); len(ents) != 2 {
		t.Errorf("network namespaces after a failed start: %d, want 2 (web, auto)", len(ents))
	}

	// User networks: reachable inside, isolated from other networks.
	docker("network", "create", "--subnet", "10.123.0.0/24", "--gateway", "10.123.0.1", "app")
	docker("network", "create", "other")
	docker("run", "-d", "--name", "api", "--network", "app", "--network-alias", "api-alias", "busybox", "sh", "-c", web)
	var api ctrNet
	inspectJSON(t, env, "api", &api)
	apiIP := api.NetworkSettings.Networks["app"].IPAddress
	if !strings.HasPrefix(apiIP, "10.123.0.") || api.NetworkSettings.Networks["app"].Gateway != "10.123.0.1" {
		t.Fatalf("api on app: %+v", api.NetworkSettings.Networks)
	}
	if got := docker("run", "--rm", "--network", "app", "busybox", "timeout", "5", "wget", "-qO-", "http://"+apiIP+"/"); !strings.HasPrefix(got, want) {
		t.Errorf("same network: %q", got)
	}
	for _, net := range []string{"other", "bridge"} {
		// --init: wget as PID 1 would ignore timeout's SIGTERM.
		r := run(t, env, "docker", "run", "--rm", "--init", "--network", net, "busybox", "timeout", "2", "wget", "-qO-", "http://"+apiIP+"/")
		if r.code == 0 {
			t.Errorf("a container on %s reached api on app: %q", net, r.stdout)
		}
	}
	// --network container:api shares api's namespace and files.
	if got := docker("run", "--rm", "--network", "container:api", "busybox", "wget", "-qO-", "http://127.0.0.1/"); !strings.HasPrefix(got, want) {
		t.Errorf("container:api reaching api's server on 127.0.0.1: %q", got)
	}
	if got, apiHost := docker("run", "--rm", "--network", "container:api", "busybox", "hostname"), docker("exec", "api", "hostname"); got != apiHost {
		t.Errorf("container:api's hostname %q, api's %q", got, apiHost)
	}
	if r := run(t, env, "docker", "run", "--rm", "--network", "container:api", "-p", "9999:80", "busybox", "true"); r.code == 0 || !strings.Contains(r.stderr, "conflicting options") {
		t.Errorf("container: with -p: %d %q", r.code, r.stderr)
	}
	docker("create", "--name", "idle", "busybox", "true")
	if r := run(t, env, "docker", "run", "--rm", "--network", "container:idle", "busybox", "true"); r.code == 0 || !strings.Contains(r.stderr, "cannot join network of a non running container") {
		t.Errorf("container: of a stopped one: %d %q", r.code, r.stderr)
	}
	docker("rm", "idle")

	// An internal network has no route out and no masquerading.
	docker("network", "create", "--internal", "sealed")
	if out := docker("run", "--rm", "--network", "sealed", "busybox", "ip", "route"); strings.Contains(out, "default") {
		t.Errorf("internal network has a default route:\n%s", out)
	}

	// The daemon killed and started again: the containers keep their
	// network and their published port, during and after.
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-d.done
	d.done <- nil
	if got, ok := h.fetch(t, "http://127.0.0.1:8080/"); !ok || got != body {
		t.Errorf("published port with the daemon down: %q %v", got, ok)
	}
	args := append(append(h.prefix(), engineBin(t)), append(p.daemonArgs(), netDaemonArgs...)...)
	startDaemon(t, exec.Command(args[0], args[1:]...), p.sock)
	if got, ok := h.fetch(t, "http://127.0.0.1:8080/"); !ok || got != body {
		t.Errorf("published port after the daemon's restart: %q %v", got, ok)
	}
	var again ctrNet
	inspectJSON(t, env, "web", &again)
	if again.NetworkSettings.Networks["bridge"].IPAddress != br.IPAddress {
		t.Errorf("web's address after the restart: %+v", again.NetworkSettings.Networks)
	}

	// Everything removed: no veth, namespace or published-port rule left.
	docker("rm", "-f", "web", "auto", "api", "clash")
	for _, n := range []string{"app", "other", "sealed"} {
		docker("network", "rm", n)
	}
	links := h.run(t, "ip", "-o", "link").stdout
	if strings.Contains(links, "veth") || strings.Contains(links, "br-") {
		t.Errorf("links left:\n%s", links)
	}
	if ents, _ := os.ReadDir(filepath.Join(p.execRoot, "netns")); len(ents) != 0 {
		t.Errorf("network namespaces left: %d", len(ents))
	}
	rules := h.run(t, "iptables-save").stdout
	if strings.Contains(rules, "DNAT") || strings.Contains(rules, "10.123.0.0") {
		t.Errorf("rules left:\n%s", rules)
	}
}

// apiCall sends one request to the daemon's socket, as dockerode does
// (the balena-supervisor: unversioned paths).
func apiCall(t *testing.T, p paths, method, path, body string) (int, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", p.sock)
	}}, Timeout: time.Minute}
	req, err := http.NewRequest(method, "http://engine"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The balena-supervisor's network calls: supervisor0 made with its
// options and IPAM, then inspected back equal (it recreates a network
// whose inspect differs); an app network with labels; a container created
// with NetworkingConfig aliases and connected to a second network before
// it starts. And bad input answered with Docker's status codes, changing
// nothing.
func TestE2ENetworkAPI(t *testing.T) {
	p, h, _, env := withNetDaemon(t)
	sup := `{"Name":"supervisor0","Driver":"bridge","CheckDuplicate":true,"Options":{"com.docker.network.bridge.name":"supervisor0"},` +
		`"IPAM":{"Driver":"default","Config":[{"Subnet":"10.114.104.0/25","Gateway":"10.114.104.1"}]}}`
	if code, body := apiCall(t, p, "POST", "/networks/create", sup); code != http.StatusCreated {
		t.Fatalf("create supervisor0: %d %s", code, body)
	}
	code, body := apiCall(t, p, "GET", "/networks/supervisor0", "")
	var in struct {
		Name, Driver string
		IPAM         struct {
			Driver string
			Config []map[string]string
		}
		Options, Labels map[string]string
		Internal        bool
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &in) != nil {
		t.Fatalf("inspect supervisor0: %d %s", code, body)
	}
	if in.Name != "supervisor0" || in.Driver != "bridge" || in.IPAM.Driver != "default" || len(in.IPAM.Config) != 1 ||
		in.IPAM.Config[0]["Subnet"] != "10.114.104.0/25" || in.IPAM.Config[0]["Gateway"] != "10.114.104.1" || len(in.IPAM.Config[0]) != 2 ||
		len(in.Options) != 1 || in.Options["com.docker.network.bridge.name"] != "supervisor0" {
		t.Errorf("supervisor0 inspected back differs from its request: %s", body)
	}
	// The device is there with the gateway's address.
	if out := h.run(t, "ip", "-o", "addr", "show", "supervisor0").stdout; !strings.Contains(out, "10.114.104.1/25") {
		t.Errorf("supervisor0's device: %q", out)
	}
	app := `{"Name":"1234567_default","Driver":"bridge","Labels":{"io.balena.supervised":"true","io.balena.app-id":"1234567"}}`
	if code, body := apiCall(t, p, "POST", "/networks/create", app); code != http.StatusCreated {
		t.Fatalf("create app network: %d %s", code, body)
	}
	if out := run(t, env, "docker", "network", "ls", "--filter", "label=io.balena.supervised", "--format", "{{.Name}}").stdout; strings.TrimSpace(out) != "1234567_default" {
		t.Errorf("network ls by label: %q", out)
	}
	create := `{"Image":"busybox","Cmd":["sleep","1000"],"HostConfig":{"NetworkMode":"1234567_default"},` +
		`"NetworkingConfig":{"EndpointsConfig":{"1234567_default":{"Aliases":["main"]}}}}`
	if code, body := apiCall(t, p, "POST", "/containers/create?name=main_1", create); code != http.StatusCreated {
		t.Fatalf("create with NetworkingConfig: %d %s", code, body)
	}
	if code, body := apiCall(t, p, "POST", "/networks/supervisor0/connect", `{"Container":"main_1","EndpointConfig":{"Aliases":["sup"]}}`); code != http.StatusOK {
		t.Fatalf("connect before start: %d %s", code, body)
	}
	if code, body := apiCall(t, p, "POST", "/containers/main_1/start", ""); code != http.StatusNoContent {
		t.Fatalf("start: %d %s", code, body)
	}
	var ci ctrNet
	inspectJSON(t, env, "main_1", &ci)
	a, s := ci.NetworkSettings.Networks["1234567_default"], ci.NetworkSettings.Networks["supervisor0"]
	if a.IPAddress == "" || !strings.HasPrefix(s.IPAddress, "10.114.104.") || !slices.Contains(a.Aliases, "main") || !slices.Contains(s.Aliases, "sup") {
		t.Errorf("main_1's networks: %+v", ci.NetworkSettings.Networks)
	}
	if out := run(t, env, "docker", "exec", "main_1", "ip", "-o", "-4", "addr").stdout; !strings.Contains(out, a.IPAddress+"/") || !strings.Contains(out, s.IPAddress+"/25") {
		t.Errorf("main_1's interfaces: %s", out)
	}

	// A running container connected to one more network, and back.
	run(t, env, "docker", "network", "create", "--subnet", "10.66.0.0/24", "late")
	if r := run(t, env, "docker", "network", "connect", "--alias", "late-main", "late", "main_1"); r.code != 0 {
		t.Fatalf("connect a running container: %s", r.stderr)
	}
	if out := run(t, env, "docker", "exec", "main_1", "ip", "-o", "-4", "addr").stdout; !strings.Contains(out, "eth2") || !strings.Contains(out, "10.66.0.") {
		t.Errorf("after connect: %s", out)
	}
	if r := run(t, env, "docker", "network", "disconnect", "late", "main_1"); r.code != 0 {
		t.Fatalf("disconnect a running container: %s", r.stderr)
	}
	if out := run(t, env, "docker", "exec", "main_1", "ip", "-o", "-4", "addr").stdout; strings.Contains(out, "10.66.0.") {
		t.Errorf("after disconnect: %s", out)
	}
	run(t, env, "docker", "network", "rm", "late")

	// Bad input: Docker's codes and messages, and nothing changed.
	before := run(t, env, "docker", "network", "ls", "-q").stdout
	for _, c := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"POST", "/networks/create", `{"Name":"overlap","IPAM":{"Config":[{"Subnet":"10.114.104.0/24"}]}}`, 403, "Pool overlaps"},
		{"POST", "/networks/create", `{"Name":"badcidr","IPAM":{"Config":[{"Subnet":"10.0.0.0/33"}]}}`, 400, ""},
		{"POST", "/networks/create", `{"Name":"gw","IPAM":{"Config":[{"Subnet":"10.77.0.0/24","Gateway":"10.78.0.1"}]}}`, 400, "10.78.0.1"},
		{"POST", "/networks/create", `{"Name":"supervisor0"}`, 409, "already exists"},
		{"POST", "/networks/create", `{"Name":"ov","Driver":"overlay"}`, 501, "not implemented"},
		{"DELETE", "/networks/supervisor0", "", 403, "has active endpoints"},
		{"DELETE", "/networks/bridge", "", 403, "pre-defined network"},
		{"GET", "/networks/nosuch", "", 404, "network nosuch not found"},
		{"POST", "/networks/supervisor0/connect", `{"Container":"main_1"}`, 403, "already exists in network supervisor0"},
		{"POST", "/containers/create?name=badip", `{"Image":"busybox","HostConfig":{"NetworkMode":"supervisor0"},"NetworkingConfig":{"EndpointsConfig":{"supervisor0":{"IPAMConfig":{"IPv4Address":"10.9.9.9"}}}}}`, 400, "10.9.9.9"},
	} {
		code, body := apiCall(t, p, c.method, c.path, c.body)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s %s: %d %s, want %d %q", c.method, c.path, code, body, c.code, c.want)
		}
	}
	if after := run(t, env, "docker", "network", "ls", "-q").stdout; after != before {
		t.Errorf("bad requests changed the networks:\n%s\n%s", before, after)
	}
	// A static address that is taken.
	run(t, env, "docker", "network", "create", "--subnet", "10.55.0.0/24", "static")
	if r := run(t, env, "docker", "run", "-d", "--network", "static", "--ip", "10.55.0.9", "--name", "s1", "busybox", "sleep", "1000"); r.code != 0 {
		t.Fatalf("--ip: %s", r.stderr)
	}
	if r := run(t, env, "docker", "run", "-d", "--network", "static", "--ip", "10.55.0.9", "--name", "s2", "busybox", "sleep", "1000"); r.code == 0 || !strings.Contains(r.stderr, "Address already in use") {
		t.Errorf("a taken --ip: %d %q", r.code, r.stderr)
	}
	run(t, env, "docker", "rm", "-f", "main_1", "s1", "s2")
	if r := run(t, env, "docker", "network", "prune", "-f"); r.code != 0 || !strings.Contains(r.stdout, "supervisor0") {
		t.Errorf("prune: %q %q", r.stdout, r.stderr)
	}
	if out := run(t, env, "docker", "network", "ls", "--format", "{{.Name}}").stdout; strings.Fields(out) == nil || len(strings.Fields(out)) != 3 {
		t.Errorf("after prune: %q", out)
	}
}

// crashEngine ends the daemon, the monitor and every container process
// at once, as a crash of the whole engine (or a power cut, for the
// processes) does.
func crashEngine(t *testing.T, p paths, d *daemonProc, ids ...string) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-d.done
	d.done <- nil
	killMonitor(t, p)
	for _, id := range ids {
		for _, pid := range cgroupProcs(p, id) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		eventually(t, 10*time.Second, "the container's processes gone", func() bool { return len(cgroupProcs(p, id)) == 0 })
	}
}

// The engine's kernel state after faults: a crash leaves namespaces,
// veths and rules of containers that no longer run, which the next start
// removes; a power cut loses every bridge, rule and namespace while the
// database keeps them, and the next start rebuilds the networks and the
// rules, and the restarted containers answer on their published ports.
func TestE2ENetworkFaults(t *testing.T) {
	p, h, d, env := withNetDaemon(t)
	dumpMonitorLog(t, p)
	docker := dockerOK(t, env)
	docker("network", "create", "--subnet", "10.77.0.0/24", "app")
	web := `mkdir -p /www && echo "hello from web" > /www/index.html && exec httpd -f -p 80 -h /www`
	always := docker("run", "-d", "--restart", "always", "--name", "web", "--network", "app", "-p", "8080:80", "busybox", "sh", "-c", web)
	once := docker("run", "-d", "--name", "once", "-p", "8081:80", "busybox", "sh", "-c", web)
	answers := func(port string) bool {
		got, ok := h.fetch(t, "http://127.0.0.1:"+port+"/")
		return ok && got == "hello from web\n"
	}
	eventually(t, 20*time.Second, "web answers", func() bool { return answers("8080") && answers("8081") })
	start := func() {
		args := append(append(h.prefix(), engineBin(t)), append(p.daemonArgs(), netDaemonArgs...)...)
		d = startDaemon(t, exec.Command(args[0], args[1:]...), p.sock)
	}
	countVeths := func() int { return strings.Count(h.run(t, "ip", "-o", "link").stdout, "veth") }

	// A crash of everything, the kernel's state kept: once's sandbox is
	// removed (it does not run again), web's is made anew.
	crashEngine(t, p, d, always, once)
	start()
	eventually(t, 20*time.Second, "web back", func() bool { return answers("8080") })
	if n := countVeths(); n != 1 {
		t.Errorf("veths after the crash: %d, want 1 (web's)\n%s", n, h.run(t, "ip", "-o", "link").stdout)
	}
	if ents, _ := os.ReadDir(filepath.Join(p.execRoot, "netns")); len(ents) != 1 {
		t.Errorf("namespaces after the crash: %d, want 1", len(ents))
	}
	if rules := h.run(t, "iptables-save", "-t", "nat").stdout; strings.Contains(rules, "--dport 8081") {
		t.Errorf("once's published port survived the crash:\n%s", rules)
	}

	// A power cut: processes, devices, rules and the exec root's tmpfs
	// all gone; the database kept.
	crashEngine(t, p, d, always)
	mounts.DetachUnder(p.execRoot)
	if err := os.RemoveAll(p.execRoot); err != nil {
		t.Fatal(err)
	}
	for _, dev := range strings.Fields(h.run(t, "sh", "-c", `ip -o link | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -v '^lo$'`).stdout) {
		h.run(t, "ip", "link", "del", dev)
	}
	for _, table := range []string{"filter", "nat"} {
		h.run(t, "iptables", "-t", table, "-F")
		h.run(t, "iptables", "-t", table, "-X")
	}
	h.run(t, "iptables", "-P", "FORWARD", "ACCEPT")
	h.run(t, "sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward")
	start()
	eventually(t, 20*time.Second, "web back after the power cut", func() bool { return answers("8080") })
	if out := h.run(t, "ip", "-o", "addr", "show").stdout; !strings.Contains(out, "10.77.0.1/24") || !strings.Contains(out, "balena0") {
		t.Errorf("bridges after the power cut:\n%s", out)
	}
	if rules := h.run(t, "iptables-save").stdout; !strings.Contains(rules, "-s 10.77.0.0/24 ! -o br-") || !strings.Contains(rules, "-j DOCKER-USER") ||
		!strings.Contains(rules, ":FORWARD DROP") {
		t.Errorf("rules after the power cut:\n%s", rules)
	}
	docker("rm", "-f", "web", "once")
	docker("network", "rm", "app")
}

// --firewall-backend nftables: the same published port through nft's
// table of the engine's own, and nothing in iptables.
func TestE2ENFTablesBackend(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed")
	}
	_, h, _, env := withNetDaemon(t, "--firewall-backend", "nftables")
	docker := dockerOK(t, env)
	web := `mkdir -p /www && echo "hello from web" > /www/index.html && exec httpd -f -p 80 -h /www`
	docker("run", "-d", "--name", "web", "-p", "8080:80", "busybox", "sh", "-c", web)
	var in ctrNet
	inspectJSON(t, env, "web", &in)
	gw := in.NetworkSettings.Networks["bridge"].Gateway
	eventually(t, 20*time.Second, "the published port answers", func() bool {
		got, ok := h.fetch(t, "http://127.0.0.1:8080/")
		return ok && got == "hello from web\n"
	})
	if got := docker("run", "--rm", "busybox", "wget", "-qO-", "http://"+gw+":8080/"); got != "hello from web" {
		t.Errorf("from another container: %q", got)
	}
	if out := h.run(t, "nft", "list", "table", "ip", "docker-bridges").stdout; !strings.Contains(out, "dport 8080 dnat") {
		t.Errorf("nft table:\n%s", out)
	}
	if out := h.run(t, "iptables-save").stdout; strings.Contains(out, "DOCKER") {
		t.Errorf("iptables rules with the nftables backend:\n%s", out)
	}
	docker("rm", "-f", "web")
	if out := h.run(t, "nft", "list", "table", "ip", "docker-bridges").stdout; strings.Contains(out, "dnat") {
		t.Errorf("the removed container's port is still in the table:\n%s", out)
	}
}

// IPv6 on a user network: addresses from the given subnet (or a unique
// local /64 when none is given), a static --ip6, names answering AAAA,
// traffic between containers over IPv6, and inspect's IPv6 fields; and on
// the default bridge with the daemon's --ipv6 --fixed-cidr-v6.
func TestE2EIPv6(t *testing.T) {
	_, h, _, env := withNetDaemon(t, "--ipv6", "--fixed-cidr-v6", "fd00:b::/64")
	docker := dockerOK(t, env)
	if out := docker("run", "--rm", "busybox", "ip", "-6", "addr", "show", "eth0"); !strings.Contains(out, "fd00:b::") {
		t.Errorf("a default bridge container's IPv6 addresses:\n%s", out)
	}
	// A published port answers on the host's IPv6 addresses too.
	pub := `mkdir -p /www && echo "published" > /www/index.html && exec httpd -f -p 80 -h /www`
	docker("run", "-d", "--name", "pub", "-p", "8080:80", "busybox", "sh", "-c", pub)
	eventually(t, 20*time.Second, "the published port over IPv6", func() bool {
		r := h.run(t, "curl", "-gsS", "-m", "5", "http://[fd00:b::1]:8080/")
		return r.code == 0 && r.stdout == "published\n"
	})
	if out := docker("port", "pub", "80"); !strings.Contains(out, "0.0.0.0:8080") || !strings.Contains(out, "[::]:8080") {
		t.Errorf("docker port over both families: %q", out)
	}
	docker("rm", "-f", "pub")
	docker("network", "create", "--ipv6", "--subnet", "fd00:dead:beef::/64", "six")
	web := `mkdir -p /www && echo "hello over v6" > /www/index.html && exec httpd -f -p 80 -h /www`
	docker("run", "-d", "--name", "web6", "--network", "six", "--ip6", "fd00:dead:beef::80", "busybox", "sh", "-c", web)
	var in struct {
		NetworkSettings struct {
			Networks map[string]struct {
				IPAddress, GlobalIPv6Address, IPv6Gateway string
				GlobalIPv6PrefixLen                       int
			}
		}
	}
	inspectJSON(t, env, "web6", &in)
	if e := in.NetworkSettings.Networks["six"]; e.GlobalIPv6Address != "fd00:dead:beef::80" || e.GlobalIPv6PrefixLen != 64 || e.IPv6Gateway != "fd00:dead:beef::1" || e.IPAddress == "" {
		t.Fatalf("web6's endpoint: %+v", e)
	}
	if got := docker("run", "--rm", "--network", "six", "busybox", "wget", "-qO-", "http://[fd00:dead:beef::80]/"); got != "hello over v6" {
		t.Errorf("over IPv6 by address: %q", got)
	}
	if out := docker("run", "--rm", "--network", "six", "busybox", "nslookup", "-type=AAAA", "web6", "127.0.0.11"); !strings.Contains(out, "fd00:dead:beef::80") {
		t.Errorf("AAAA of web6:\n%s", out)
	}
	if out := docker("network", "inspect", "six", "-f", "{{.EnableIPv6}} {{range .Containers}}{{.IPv6Address}}{{end}}"); out != "true fd00:dead:beef::80/64" {
		t.Errorf("network inspect: %q", out)
	}
	// Without a subnet: a unique local /64 of the network's own.
	docker("network", "create", "--ipv6", "auto6")
	if out := docker("network", "inspect", "auto6", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}"); !strings.Contains(out, "::/64") || !strings.HasPrefix(strings.Fields(out)[1], "fd") {
		t.Errorf("auto6's subnets: %q", out)
	}
	// A static IPv6 address outside the subnet, or taken.
	if r := run(t, env, "docker", "run", "--rm", "--network", "six", "--ip6", "fd00:1::5", "busybox", "true"); r.code == 0 {
		t.Error("an --ip6 outside the subnet was accepted")
	}
	if r := run(t, env, "docker", "run", "--rm", "--network", "six", "--ip6", "fd00:dead:beef::80", "busybox", "true"); r.code == 0 || !strings.Contains(r.stderr, "Address already in use") {
		t.Errorf("a taken --ip6: %d %q", r.code, r.stderr)
	}
	docker("rm", "-f", "web6")
	docker("network", "rm", "six", "auto6")
}
