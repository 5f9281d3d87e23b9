//go:build e2e

package e2e

// Name resolution on user networks: containers resolve each other by
// name, alias, short ID and name.network through the engine's resolver
// at 127.0.0.11, which the container monitor serves, so names keep
// resolving while the daemon is down. Other names go to the upstream
// resolver, here one the test runs itself in the daemon's namespace: no
// query leaves it.

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/balena-os/balena-engine/src/network/netns"
	"golang.org/x/net/dns/dnsmessage"
)

// upstream serves one name's address on 127.0.0.1:53 in the namespace h,
// and answers NXDOMAIN for other names; it counts the queries it got.
func upstream(t *testing.T, h netHost, name string, a [4]byte) *atomic.Int64 {
	t.Helper()
	var c net.PacketConn
	if err := netns.Do(string(h), func() (err error) { c, err = net.ListenPacket("udp4", "127.0.0.1:53"); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	count := new(atomic.Int64)
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			hdr, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			count.Add(1)
			rh := dnsmessage.Header{ID: hdr.ID, Response: true, RecursionAvailable: true, RCode: dnsmessage.RCodeNameError}
			known := strings.EqualFold(q.Name.String(), name+".")
			found := known && q.Type == dnsmessage.TypeA
			if known {
				rh.RCode = dnsmessage.RCodeSuccess // the name exists: no error for its other types
			}
			b := dnsmessage.NewBuilder(nil, rh)
			b.StartQuestions()
			b.Question(q)
			if found {
				b.StartAnswers()
				b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: a})
			}
			out, err := b.Finish()
			if err == nil {
				c.WriteTo(out, from)
			}
		}
	}()
	return count
}

func TestE2ENameResolution(t *testing.T) {
	p, h, d, env := withNetDaemon(t, "--dns", "127.0.0.1")
	dumpMonitorLog(t, p)
	queries := upstream(t, h, "outside.example", [4]byte{192, 0, 2, 7})
	docker := dockerOK(t, env)
	docker("network", "create", "app")
	docker("network", "create", "other")
	web := `mkdir -p /www && echo "hello from web" > /www/index.html && exec httpd -f -p 80 -h /www`
	id := docker("run", "-d", "--name", "web", "--network", "app", "--network-alias", "www", "busybox", "sh", "-c", web)
	var in ctrNet
	inspectJSON(t, env, "web", &in)
	ip := in.NetworkSettings.Networks["app"].IPAddress
	for _, name := range []string{"web", "www", id[:12], "web.app", "WEB"} {
		if got := docker("run", "--rm", "--network", "app", "busybox", "wget", "-qO-", "http://"+name+"/"); got != "hello from web" {
			t.Errorf("by %s: %q", name, got)
		}
	}
	rc := docker("run", "--rm", "--network", "app", "busybox", "cat", "/etc/resolv.conf")
	if !strings.Contains(rc, "nameserver 127.0.0.11") || !strings.Contains(rc, "ndots:0") {
		t.Errorf("resolv.conf on a user network:\n%s", rc)
	}
	// PTR, as Docker answers it.
	if out := docker("run", "--rm", "--network", "app", "busybox", "nslookup", ip, "127.0.0.11"); !strings.Contains(out, "web.app") {
		t.Errorf("PTR of %s:\n%s", ip, out)
	}
	// Another network does not see it; the default bridge has no
	// resolver at all (its resolv.conf is the host's).
	if r := run(t, env, "docker", "run", "--rm", "--network", "other", "busybox", "nslookup", "web", "127.0.0.11"); r.code == 0 && strings.Contains(r.stdout, ip) {
		t.Errorf("a container on other resolved web:\n%s", r.stdout)
	}
	if rc := docker("run", "--rm", "busybox", "cat", "/etc/resolv.conf"); strings.Contains(rc, "127.0.0.11") {
		t.Errorf("the default bridge got the resolver:\n%s", rc)
	}
	// Other names are forwarded to the upstream (--dns).
	before := queries.Load()
	if out := docker("run", "--rm", "--network", "app", "busybox", "nslookup", "outside.example", "127.0.0.11"); !strings.Contains(out, "192.0.2.7") {
		t.Errorf("forwarded name:\n%s", out)
	}
	if queries.Load() == before {
		t.Error("the upstream got no query")
	}

	// While the daemon is down, and after the monitor's loss, a running
	// container still resolves: asked from its own namespace.
	docker("run", "-d", "--name", "client", "--network", "app", "busybox", "sleep", "100000")
	var cl struct{ State struct{ Pid int } }
	inspectJSON(t, env, "client", &cl)
	lookup := func(what string) {
		t.Helper()
		var out string
		eventually(t, 10*time.Second, "web resolves "+what, func() bool {
			r := run(t, nil, "nsenter", "--net=/proc/"+fmt.Sprint(cl.State.Pid)+"/ns/net", "busybox", "nslookup", "web", "127.0.0.11")
			out = r.stdout
			return r.code == 0 && strings.Contains(out, ip)
		})
	}
	lookup("with the daemon up")
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-d.done
	d.done <- nil
	lookup("with the daemon down")
	killMonitor(t, p)
	args := append(append(h.prefix(), engineBin(t)), append(append(p.daemonArgs(), netDaemonArgs...), "--dns", "127.0.0.1")...)
	startDaemon(t, exec.Command(args[0], args[1:]...), p.sock)
	lookup("after the monitor's loss and the daemon's restart")

	// A container that ends takes its names with it.
	docker("rm", "-f", "web")
	if r := run(t, env, "docker", "exec", "client", "nslookup", "web", "127.0.0.11"); r.code == 0 && strings.Contains(r.stdout, ip) {
		t.Errorf("web resolves after its removal:\n%s", r.stdout)
	}
	docker("rm", "-f", "client")
	docker("network", "rm", "app", "other")
}
