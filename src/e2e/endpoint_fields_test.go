//go:build e2e

package e2e

// The network fields of container create that used to be accepted and
// dropped (issue #13): legacy links, links on user networks, link-local
// addresses, the endpoint driver options, gateway priorities, a
// container-wide MAC address from older clients, networking disabled.

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestE2EEndpointFields(t *testing.T) {
	p, _, _, env := withNetDaemon(t)
	docker := dockerOK(t, env)
	docker("run", "-d", "--name", "db", "busybox", "sleep", "1000")
	dbIP := docker("inspect", "--format", "{{.NetworkSettings.Networks.bridge.IPAddress}}", "db")
	dbHost := docker("inspect", "--format", "{{.Id}}", "db")[:12] // its host name

	// Legacy links on the default bridge: /etc/hosts has the linked
	// container under the alias, its host name and its name; Docker's
	// deprecation warning.
	r := run(t, env, "docker", "run", "--rm", "--name", "web", "--link", "db:database", "busybox", "sh", "-c", "cat /etc/hosts && ping -c 1 -W 2 database >/dev/null && echo reached")
	if want := dbIP + "\tdatabase " + dbHost + " db\n"; r.code != 0 || !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, "reached") {
		t.Errorf("--link db:database: %d %q %q, want the line %q", r.code, r.stdout, r.stderr, want)
	}
	if w := "WARNING: Links on the default bridge network are deprecated and will be removed in a future release. Use a custom network instead."; !strings.Contains(r.stderr, w) {
		t.Errorf("--link: no deprecation warning: %q", r.stderr)
	}
	// The link follows the linked container to a new address: when db
	// starts again elsewhere (its old address taken meanwhile), web's
	// /etc/hosts is rewritten, as Docker rewrites it.
	docker("run", "-d", "--name", "web", "--link", "db:database", "busybox", "sleep", "1000")
	docker("stop", "-t", "0", "db")
	docker("run", "-d", "--name", "squatter", "busybox", "sleep", "1000")
	docker("start", "db")
	newIP := docker("inspect", "--format", "{{.NetworkSettings.Networks.bridge.IPAddress}}", "db")
	if newIP == dbIP {
		t.Errorf("db came back on its old address %s, taken by another container", dbIP)
	}
	if hosts := docker("exec", "web", "cat", "/etc/hosts") + "\n"; !strings.Contains(hosts, newIP+"\tdatabase "+dbHost+" db\n") || strings.Contains(hosts, dbIP+"\tdatabase") {
		t.Errorf("web's /etc/hosts after db moved from %s to %s:\n%s", dbIP, newIP, hosts)
	}
	if out := docker("exec", "web", "ping", "-c", "1", "-W", "2", "database"); !strings.Contains(out, newIP) {
		t.Errorf("web reaches database at: %q, want %s", out, newIP)
	}
	docker("rm", "-f", "web", "squatter")
	docker("create", "--name", "stopped", "busybox", "true")
	for _, c := range []struct{ link, want string }{
		{"stopped:s", "Cannot link to a non running container: /stopped AS /lnk/s"},
		{"nosuch:n", "could not get container for nosuch: No such container: nosuch"},
	} {
		if r := run(t, env, "docker", "run", "--rm", "--name", "lnk", "--link", c.link, "busybox", "true"); r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("--link %s: %d %q, want %q", c.link, r.code, r.stderr, c.want)
		}
		run(t, env, "docker", "rm", "-f", "lnk")
	}

	// On a user network a link is a name only the linking container
	// resolves (the embedded DNS).
	docker("network", "create", "--subnet", "10.77.0.0/24", "app")
	docker("network", "create", "--subnet", "10.78.0.0/24", "alt")
	docker("run", "-d", "--network", "app", "--name", "api", "busybox", "sleep", "1000")
	apiIP := docker("inspect", "--format", "{{.NetworkSettings.Networks.app.IPAddress}}", "api")
	r = run(t, env, "docker", "run", "--rm", "--network", "app", "--link", "api:backend", "busybox", "nslookup", "backend", "127.0.0.11")
	if r.code != 0 || !strings.Contains(r.stdout, apiIP) {
		t.Errorf("--link on a user network: %d %q %q, want %s", r.code, r.stdout, r.stderr, apiIP)
	}
	if r := run(t, env, "docker", "run", "--rm", "--network", "app", "busybox", "nslookup", "backend", "127.0.0.11"); strings.Contains(r.stdout, apiIP) {
		t.Errorf("a container without the link resolves it: %q", r.stdout)
	}

	// --link-local-ip, and the endpoint driver options Docker's bridge
	// takes: the interface's name and its sysctls.
	out := docker("run", "--rm", "--network", "name=app,driver-opt=com.docker.network.endpoint.ifname=app0,driver-opt=com.docker.network.endpoint.sysctls=net.ipv4.conf.IFNAME.log_martians=1",
		"--link-local-ip", "169.254.7.7", "busybox", "sh", "-c", "ip -o addr show app0; cat /proc/sys/net/ipv4/conf/app0/log_martians")
	if !strings.Contains(out, "inet 169.254.7.7/16") || !strings.Contains(out, "inet 10.77.0.") || !strings.HasSuffix(out, "\n1") {
		t.Errorf("ifname, sysctls, link-local address:\n%s", out)
	}
	if r := run(t, env, "docker", "run", "--rm", "--network", "name=app,driver-opt=com.example.opt=1", "busybox", "true"); r.code == 0 ||
		!strings.Contains(r.stderr, `endpoint driver option "com.example.opt" is not implemented`) {
		t.Errorf("an unknown driver option: %d %q", r.code, r.stderr)
	}
	if r := run(t, env, "docker", "run", "--rm", "--network", "app", "--link-local-ip", "10.1.2.3", "busybox", "true"); r.code == 0 ||
		!strings.Contains(r.stderr, "invalid link local IP address: 10.1.2.3") {
		t.Errorf("a link-local address that is not: %d %q", r.code, r.stderr)
	}

	// The gateway: the first network's, unless another has a higher
	// priority; also when one is connected to a running container.
	defaultVia := func(args ...string) string {
		t.Helper()
		out := docker(append(args, "ip", "route")...)
		m := regexp.MustCompile(`default via (\S+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no default route:\n%s", out)
		}
		return m[1]
	}
	if gw := defaultVia("run", "--rm", "--network", "app", "--network", "alt", "busybox"); gw != "10.77.0.1" {
		t.Errorf("default route without priorities via %s, want app's", gw)
	}
	if gw := defaultVia("run", "--rm", "--network", "app", "--network", "name=alt,gw-priority=10", "busybox"); gw != "10.78.0.1" {
		t.Errorf("default route with alt's priority via %s, want alt's", gw)
	}
	docker("run", "-d", "--network", "app", "--name", "gwc", "busybox", "sleep", "1000")
	docker("network", "connect", "--gw-priority", "10", "alt", "gwc")
	if gw := defaultVia("exec", "gwc"); gw != "10.78.0.1" {
		t.Errorf("after connecting alt with priority 10, default route via %s", gw)
	}

	// docker 20.10's --mac-address (API 1.41: Config.MacAddress only).
	const mac = "02:42:0a:4d:00:63"
	body := `{"Image":"busybox","Cmd":["cat","/sys/class/net/eth0/address"],"MacAddress":"` + mac + `","HostConfig":{"NetworkMode":"app"}}`
	if code, out := apiCall(t, p, http.MethodPost, "/v1.41/containers/create?name=mac", body); code != http.StatusCreated {
		t.Fatalf("create at API 1.41 with a MAC address: %d %s", code, out)
	}
	if got := docker("start", "-a", "mac"); got != mac {
		t.Errorf("the MAC address asked for by a 1.41 client: %q", got)
	}
	if code, out := apiCall(t, p, http.MethodPost, "/v1.52/containers/create", body); code != http.StatusBadRequest ||
		!strings.Contains(out, "container-wide MAC address no longer supported") {
		t.Errorf("a container-wide MAC address at API 1.52: %d %s", code, out)
	}
	// The current CLI's --mac-address (the endpoint's).
	r = run(t, env, "docker", "run", "--rm", "--network", "app", "--mac-address", "02:42:0a:4d:00:65", "busybox", "cat", "/sys/class/net/eth0/address")
	if strings.TrimSpace(r.stdout) != "02:42:0a:4d:00:65" || r.stderr != "" {
		t.Errorf("--mac-address: %d %q %q (it sends the endpoint's only: no warning)", r.code, r.stdout, r.stderr)
	}
	if old := filepath.Join(dockerCLI2010Cache, "docker"); fileExists(old) {
		if got := strings.TrimSpace(run(t, env, old, "run", "--rm", "--network", "app", "--mac-address", "02:42:0a:4d:00:64", "busybox", "cat", "/sys/class/net/eth0/address").stdout); got != "02:42:0a:4d:00:64" {
			t.Errorf("docker 20.10 --mac-address: %q", got)
		}
	}

	// NetworkDisabled: a namespace of its own with the loopback only,
	// and no networks in inspect.
	body = `{"Image":"busybox","Cmd":["ls","/sys/class/net"],"NetworkDisabled":true,"HostConfig":{"NetworkMode":"app"}}`
	if code, out := apiCall(t, p, http.MethodPost, "/v1.50/containers/create?name=nonet", body); code != http.StatusCreated {
		t.Fatalf("create with NetworkDisabled: %d %s", code, out)
	}
	if got := docker("start", "-a", "nonet"); got != "lo" {
		t.Errorf("interfaces with networking disabled: %q", got)
	}
	var c struct {
		NetworkSettings struct{ Networks map[string]any }
	}
	inspectJSON(t, env, "nonet", &c)
	if len(c.NetworkSettings.Networks) != 0 {
		t.Errorf("networks of a container with networking disabled: %v", c.NetworkSettings.Networks)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
