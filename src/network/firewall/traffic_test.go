package firewall

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// helperEnv turns the test binary into the server in a container.
const helperEnv = "BALENA_FIREWALL_TEST_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		serve()
	}
	os.Exit(m.Run())
}

// serve answers every TCP connection on ports 80 and 81 and every UDP
// datagram on port 53, over IPv4 and IPv6, with the address it came from,
// until stdin closes.
func serve() {
	must := func(err error) {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	for _, fam := range []string{"4", "6"} {
		for _, p := range []string{":80", ":81"} {
			l, err := net.Listen("tcp"+fam, p)
			must(err)
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
					io.WriteString(c, host)
					c.Close()
				}
			}()
		}
		u, err := net.ListenPacket("udp"+fam, ":53")
		must(err)
		go func() {
			buf := make([]byte, 64)
			for {
				_, from, err := u.ReadFrom(buf)
				if err != nil {
					return
				}
				host, _, _ := net.SplitHostPort(from.String())
				u.WriteTo([]byte(host), from)
			}
		}()
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// dial connects and returns what the server said: the address it saw.
func dial(proto, addr string, timeout time.Duration) (string, error) {
	c, err := net.DialTimeout(proto, addr, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if proto == "udp" {
		if _, err := c.Write([]byte("?")); err != nil {
			return "", err
		}
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		return string(buf[:n]), err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

func sh(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func sysctl(t *testing.T, path, value string) {
	t.Helper()
	if err := os.WriteFile("/proc/sys/net/"+path, []byte(value), 0o644); err != nil {
		t.Fatal(err)
	}
}

// addAddrs gives dev the addresses, IPv6 ones without duplicate address
// detection, which would keep them unusable for a while.
func addAddrs(t *testing.T, ip []string, dev string, addrs []netip.Prefix) {
	t.Helper()
	for _, a := range addrs {
		args := append(ip, "addr", "add", a.String(), "dev", dev)
		if a.Addr().Is6() {
			args = append(args, "nodad")
		}
		sh(t, args...)
	}
}

// addBridge makes a bridge with the gateway addresses, up.
func addBridge(t *testing.T, name string, gws ...netip.Prefix) {
	t.Helper()
	sh(t, "ip", "link", "add", name, "type", "bridge")
	addAddrs(t, []string{"ip"}, name, gws)
	sh(t, "ip", "link", "set", name, "up")
	sysctl(t, "ipv4/conf/"+name+"/route_localnet", "1")
}

// childEnv is the environment for the test binary run again: a race-enabled
// binary otherwise waits a second at exit.
func childEnv() []string {
	return append(os.Environ(), "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
}

// container is a helper serving in a namespace of its own, on bridge br.
type container struct{ pid int }

// startContainer starts a container on bridge br with the addresses, the
// first of each subnet the gateway.
func startContainer(t *testing.T, name, br string, addrs ...netip.Prefix) container {
	t.Helper()
	cmd := exec.Command("unshare", "--net", os.Args[0])
	cmd.Env = append(childEnv(), helperEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	// unshare execs the helper in place: the pid is the helper's.
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("container %s: %q %v", name, line, err)
	}
	c := container{cmd.Process.Pid}
	veth := "vh-" + name
	sh(t, "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", strconv.Itoa(c.pid))
	sh(t, "ip", "link", "set", veth, "master", br, "up")
	// As the engine does for --userland-proxy=false: with br_netfilter, a
	// container's connection to its own published port is DNATed on the
	// bridge and leaves through the port it came in by.
	sh(t, "ip", "link", "set", veth, "type", "bridge_slave", "hairpin", "on")
	in := []string{"nsenter", "--net=/proc/" + strconv.Itoa(c.pid) + "/ns/net", "ip"}
	sh(t, append(in, "link", "set", "lo", "up")...)
	addAddrs(t, in, "eth0", addrs)
	sh(t, append(in, "link", "set", "eth0", "up")...)
	for _, a := range addrs {
		sh(t, append(in, "route", "add", "default", "via", a.Masked().Addr().Next().String())...)
	}
	return c
}

// dial connects from inside the container, on a thread moved into its
// network namespace for the while.
func (c container) dial(proto, addr string, timeout time.Duration) (string, error) {
	type result struct {
		got string
		err error
	}
	done := make(chan result)
	go func() {
		// The thread is not unlocked: if moving it back failed, it must
		// die with this goroutine rather than serve others in the wrong
		// namespace; on success, unlock it.
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			done <- result{err: err}
			return
		}
		defer self.Close()
		target, err := os.Open("/proc/" + strconv.Itoa(c.pid) + "/ns/net")
		if err != nil {
			done <- result{err: err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{err: err}
			return
		}
		got, err := dial(proto, addr, timeout)
		if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- result{got, err}
	}()
	r := <-done
	return r.got, r.err
}

// TestTraffic sends packets through the rules, over IPv4 and IPv6: bridges
// and "containers" (network namespaces joined by veths) inside the test's
// own namespace, the test binary serving and dialling in them. Each engine
// network has both families; br-x is not the engine's and stands for the
// world outside, with a host ext on it.
func TestTraffic(t *testing.T) {
	forEachFirewall(t, func(t *testing.T, newFW func(*testing.T) Firewall) {
		for _, p := range []string{"ip", "nsenter"} {
			if _, err := exec.LookPath(p); err != nil {
				t.Skipf("%s not found", p)
			}
		}
		sysctl(t, "ipv4/ip_forward", "1")
		sysctl(t, "ipv6/conf/all/forwarding", "1")
		sh(t, "ip", "link", "set", "lo", "up")
		// addrs are the addresses of host h on bridge n: 172.30.n.h/24 and
		// fd30:n::h/64.
		addrs := func(n, h int) []netip.Prefix {
			return []netip.Prefix{
				netip.MustParsePrefix(fmt.Sprintf("172.30.%d.%d/24", n, h)),
				netip.MustParsePrefix(fmt.Sprintf("fd30:%d::%d/64", n, h)),
			}
		}
		var nets []Network
		for _, b := range []struct {
			n  int
			br string
		}{{1, "br-a"}, {2, "br-b"}, {3, "br-i"}, {9, "br-x"}} {
			addBridge(t, b.br, addrs(b.n, 1)...)
			a := addrs(b.n, 0)
			nets = append(nets, Network{Bridge: b.br, Subnet: a[ipv4].Masked(), Subnet6: a[ipv6].Masked(), Masquerade: true, ICC: true, Internal: b.br == "br-i"})
		}
		c1 := startContainer(t, "c1", "br-a", addrs(1, 2)...)
		c2 := startContainer(t, "c2", "br-b", addrs(2, 2)...)
		c3 := startContainer(t, "c3", "br-i", addrs(3, 2)...)
		ext := startContainer(t, "ext", "br-x", addrs(9, 2)...)

		// Each port twice, to the container's IPv4 and IPv6 address.
		var ports []Port
		for _, a := range addrs(1, 2) {
			ports = append(ports, Port{Proto: "tcp", HostPort: 8080, ContainerIP: a.Addr(), ContainerPort: 80, Bridge: "br-a"},
				Port{Proto: "udp", HostPort: 5353, ContainerIP: a.Addr(), ContainerPort: 53, Bridge: "br-a"})
		}
		f := newFW(t)
		if err := f.Apply(State{Networks: nets[:3], Ports: ports}); err != nil { // not br-x
			t.Fatal(err)
		}

		const ok, blocked = 10 * time.Second, 500 * time.Millisecond
		type from func(string, string, time.Duration) (string, error)
		reach := func(what, proto, addr string, from from, wantSrc string) {
			t.Helper()
			got, err := from(proto, addr, ok)
			if err != nil || got != wantSrc {
				t.Errorf("%s (%s %s): got %q, %v; want an answer to %s", what, proto, addr, got, err, wantSrc)
			}
		}
		unreachable := func(what, proto, addr string, from from) {
			t.Helper()
			if got, err := from(proto, addr, blocked); err == nil {
				t.Errorf("%s (%s %s): reached, answer %q", what, proto, addr, got)
			}
		}

		// From the host's loopback: OUTPUT DNAT, then the LOCAL
		// masquerade. Not over IPv6, which has no route_localnet: ::1 is
		// left to the host's own listeners (there are none here).
		reach("host to 127.0.0.1", "tcp", "127.0.0.1:8080", dial, "172.30.1.1")
		reach("host to 127.0.0.1", "udp", "127.0.0.1:5353", dial, "172.30.1.1")
		unreachable("host to ::1", "tcp", "[::1]:8080", dial)
		for fam := range nFamilies {
			// at is host h on bridge n's address with port p; src its
			// address as a server prints it.
			at := func(n, h, p int) string { return netip.AddrPortFrom(addrs(n, h)[fam].Addr(), uint16(p)).String() }
			src := func(n, h int) string { return addrs(n, h)[fam].Addr().String() }
			// From the host to its own address on a bridge.
			reach("host to its address", "tcp", at(2, 1, 8080), dial, src(1, 1))
			// A container to its own published port: hairpin.
			reach("hairpin", "tcp", at(1, 1, 8080), c1.dial, src(1, 1))
			// From another bridge through the host's address: PREROUTING
			// DNAT, then across the isolation to the published port.
			reach("other bridge, published", "tcp", at(2, 1, 8080), c2.dial, src(1, 1))
			reach("other bridge, published", "udp", at(2, 1, 5353), c2.dial, src(1, 1))
			// From outside to a published port, not masqueraded; and from
			// a container out, masqueraded.
			reach("outside, published", "tcp", at(9, 1, 8080), ext.dial, src(9, 2))
			reach("masquerade out", "tcp", at(9, 2, 80), c1.dial, src(9, 1))
			// Another bridge's unpublished port: isolated. An internal
			// network reaches nothing outside it, published or not.
			unreachable("other bridge, unpublished", "tcp", at(1, 2, 81), c2.dial)
			unreachable("internal, published", "tcp", at(3, 1, 8080), c3.dial)
			unreachable("internal, direct", "tcp", at(1, 2, 81), c3.dial)
			unreachable("internal, out", "tcp", at(9, 2, 80), c3.dial)
			unreachable("into internal", "tcp", at(3, 2, 80), c1.dial)
		}
		// Clear takes the published ports away.
		if err := f.Clear(); err != nil {
			t.Fatal(err)
		}
		unreachable("after Clear", "tcp", "127.0.0.1:8080", dial)
		unreachable("after Clear", "tcp", "[fd30:2::1]:8080", c2.dial)
	})
}
