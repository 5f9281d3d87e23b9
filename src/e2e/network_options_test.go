//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"
)

// Bridge driver options: the default host address of published ports
// (host_binding_ipv4) and the containers' interface prefix are applied;
// options with a non-default value the engine does not do answer 501,
// values Docker cannot read and options the bridge driver does not have
// 400, all naming the option.
func TestE2ENetworkOptions(t *testing.T) {
	_, h, _, env := withNetDaemon(t)
	docker := dockerOK(t, env)
	docker("network", "create", "-o", "com.docker.network.bridge.host_binding_ipv4=127.0.0.1",
		"-o", "com.docker.network.container_iface_prefix=lan", "-o", "com.docker.network.bridge.gateway_mode_ipv4=nat", "hb")
	docker("network", "create", "plain")
	docker("run", "-d", "--name", "web", "--network", "hb", "-p", "8080:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
	defer run(t, env, "docker", "rm", "-f", "web")
	if got := docker("port", "web"); got != "80/tcp -> 127.0.0.1:8080" {
		t.Errorf("port: %q", got)
	}
	eventually(t, 20*time.Second, "web answering on 127.0.0.1:8080", func() bool {
		_, ok := h.fetch(t, "http://127.0.0.1:8080/hostname")
		return ok
	})
	gw := docker("network", "inspect", "--format", "{{(index .IPAM.Config 0).Gateway}}", "hb")
	if out, ok := h.fetch(t, "http://"+gw+":8080/hostname"); ok {
		t.Errorf("published on %s too: %q", gw, out)
	}
	docker("network", "connect", "plain", "web")
	if links := docker("exec", "web", "ip", "-o", "link"); !strings.Contains(links, " lan0@") || !strings.Contains(links, " eth0@") {
		t.Errorf("the container's interfaces:\n%s", links)
	}
	for _, c := range []struct {
		opt, want string
	}{
		{"com.docker.network.bridge.gateway_mode_ipv4=routed", "network option com.docker.network.bridge.gateway_mode_ipv4=routed is not implemented"},
		{"com.docker.network.bridge.inhibit_ipv4=true", "network option com.docker.network.bridge.inhibit_ipv4=true is not implemented"},
		{"com.docker.network.bridge.enable_icc=maybe", "failed to parse com.docker.network.bridge.enable_icc value: maybe"},
		{"parent=eth0", `network option "parent" is not an option of the bridge driver`},
	} {
		if r := run(t, env, "docker", "network", "create", "-o", c.opt, "refused"); r.code != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("network create -o %s: %d %q, want %q", c.opt, r.code, r.stderr, c.want)
		}
	}
	if r := run(t, env, "docker", "network", "ls", "-q", "--filter", "name=refused"); strings.TrimSpace(r.stdout) != "" {
		t.Errorf("a refused network was made: %q", r.stdout)
	}
}
