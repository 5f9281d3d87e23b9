package network

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// writeEtc writes the container's /etc/hostname, /etc/hosts and
// /etc/resolv.conf into req.Dir, as Docker writes them, and returns the
// container paths with the files to bind over them. A container on the
// host's network gets the host's /etc/hosts and resolv.conf.
func (m *Manager) writeEtc(req JoinRequest, sb *sandbox, nets []*Network) (map[string]string, error) {
	files := map[string]string{}
	write := func(name, content string) error {
		p := filepath.Join(req.Dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
		files["/etc/"+name] = p
		return nil
	}
	host := req.Mode.IsHost()
	if req.Hostname != "" {
		if err := write("hostname", req.Hostname+"\n"); err != nil {
			return nil, err
		}
	}
	var hosts string
	if host {
		b, _ := os.ReadFile("/etc/hosts")
		hosts = string(b)
	} else {
		hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
			"fe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
	}
	for _, h := range req.ExtraHosts {
		name, ip, ok := strings.Cut(h, ":")
		if !ok {
			name, ip, ok = strings.Cut(h, "=")
		}
		if !ok {
			continue
		}
		if ip == "host-gateway" {
			ip = m.hostGateway()
		}
		hosts += ip + "\t" + name + "\n"
	}
	if sb != nil && len(sb.Endpoints) > 0 {
		names := req.Hostname
		if req.Domainname != "" {
			names = req.Hostname + "." + req.Domainname + " " + req.Hostname
		}
		hosts += sb.Endpoints[0].Addr.Addr().String() + "\t" + names + "\n"
		if a6 := sb.Endpoints[0].Addr6; a6.IsValid() {
			hosts += a6.Addr().String() + "\t" + names + "\n"
		}
	}
	if err := write("hosts", hosts); err != nil {
		return nil, err
	}
	hostConf := readHostResolv() // once: the files below read it
	resolvConf := m.resolvFor(req, host, hostConf)
	if sb != nil && sb.resolved() {
		resolvConf = m.embeddedResolv(req, hostConf, sb.Upstreams)
	}
	if err := write("resolv.conf", resolvConf); err != nil {
		return nil, err
	}
	return files, nil
}

// hostGateway is the address host-gateway in --add-host stands for: the
// default bridge's gateway, as Docker's default.
func (m *Manager) hostGateway() string {
	if n, err := m.Lookup(NameBridge); err == nil {
		if rs := n.ranges(); len(rs) > 0 {
			return rs[0].Gateway.String()
		}
	}
	return "127.0.0.1"
}

// resolv is a parsed resolv.conf: what Docker keeps of the host's.
type resolv struct {
	nameservers []string
	search      []string
	options     []string
	other       []string
}

func readHostResolv() string {
	// systemd-resolved's stub (127.0.0.53) is useless in a container;
	// its list of the real servers is what Docker reads instead.
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return ""
	}
	if strings.Contains(string(b), "127.0.0.53") {
		if b2, err := os.ReadFile("/run/systemd/resolve/resolv.conf"); err == nil {
			return string(b2)
		}
	}
	return string(b)
}

func resolvConf(s string) resolv {
	var r resolv
	for _, l := range strings.Split(s, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) > 1 {
				r.nameservers = append(r.nameservers, f[1])
			}
		case "search", "domain":
			r.search = f[1:]
		case "options":
			r.options = append(r.options, f[1:]...)
		default:
			r.other = append(r.other, l)
		}
	}
	return r
}

// pick is the container's setting, else the daemon's, else the host's.
func pick(ctr, daemon, host []string) []string {
	if len(ctr) > 0 {
		return ctr
	}
	if len(daemon) > 0 {
		return daemon
	}
	return host
}

// String is r as a resolv.conf.
func (r resolv) String() string {
	var b strings.Builder
	for _, ns := range r.nameservers {
		b.WriteString("nameserver " + ns + "\n")
	}
	if len(r.search) > 0 && !(len(r.search) == 1 && r.search[0] == ".") {
		b.WriteString("search " + strings.Join(r.search, " ") + "\n")
	}
	if len(r.options) > 0 {
		b.WriteString("options " + strings.Join(r.options, " ") + "\n")
	}
	return b.String()
}

// resolvFor is a container's resolv.conf: its --dns settings over the
// daemon's over the host's (hostConf), with the host's loopback
// nameservers dropped (they are not reachable from the container's
// namespace) and Google's as Docker's fallback when none is left.
func (m *Manager) resolvFor(req JoinRequest, host bool, hostConf string) string {
	if host && len(req.DNS) == 0 && len(req.DNSSearch) == 0 && len(req.DNSOptions) == 0 {
		return hostConf
	}
	r := resolvConf(hostConf)
	r.nameservers = pick(req.DNS, m.opts.DNS, r.nameservers)
	r.search = pick(req.DNSSearch, m.opts.DNSSearch, r.search)
	r.options = pick(req.DNSOptions, m.opts.DNSOptions, r.options)
	if !host {
		r.nameservers = slices.DeleteFunc(slices.Clone(r.nameservers), func(ns string) bool {
			a, err := netip.ParseAddr(ns)
			return err == nil && a.IsLoopback()
		})
		if len(r.nameservers) == 0 {
			r.nameservers = []string{"8.8.8.8", "8.8.4.4"}
		}
	}
	return r.String()
}

// embeddedResolv is the resolv.conf of a container on a user network:
// the engine's resolver, which answers the network's names and forwards
// the rest to upstreams, as Docker writes it.
func (m *Manager) embeddedResolv(req JoinRequest, hostConf string, upstreams []string) string {
	r := resolvConf(hostConf)
	r.nameservers = []string{"127.0.0.11"}
	r.search = pick(req.DNSSearch, m.opts.DNSSearch, r.search)
	r.options = append([]string{"ndots:0"}, pick(req.DNSOptions, m.opts.DNSOptions, r.options)...)
	return r.String() + "\n# ExtServers: [" + strings.Join(upstreams, " ") + "]\n"
}

// upstreams are where the resolver at 127.0.0.11 forwards names it does
// not know: the container's --dns, else the daemon's, else the host's.
// They are reached from the host's namespace (the monitor's), so the
// host's own loopback resolver (systemd-resolved) works too.
func (m *Manager) upstreams(req JoinRequest) []string {
	if len(req.DNS) > 0 {
		return req.DNS
	}
	if len(m.opts.DNS) > 0 {
		return m.opts.DNS
	}
	ns := resolvConf(readHostResolv()).nameservers
	if len(ns) == 0 {
		ns = []string{"8.8.8.8", "8.8.4.4"}
	}
	return ns
}
