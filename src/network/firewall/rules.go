package firewall

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Network is one bridge network as the firewall sees it.
type Network struct {
	Bridge     string       // the bridge device, e.g. "balena0" or "br-0123456789ab"
	Subnet     netip.Prefix // e.g. 172.17.0.0/16; an IPv6 subnet gets no IPv4 masquerading
	Masquerade bool         // --ip-masq / com.docker.network.bridge.enable_ip_masquerade
	ICC        bool         // inter-container connectivity on this bridge (com.docker.network.bridge.enable_icc)
	Internal   bool         // no traffic in or out of the bridge except between its members
}

// Port is one published port. Ports with an IPv6 host or container address
// are skipped (IPv4 only for now), and so are ports on internal networks.
type Port struct {
	Proto         string     // "tcp" or "udp"
	HostIP        netip.Addr // zero value (invalid) = all addresses (0.0.0.0)
	HostPort      uint16
	ContainerIP   netip.Addr
	ContainerPort uint16
	Bridge        string // the bridge the container is on
}

// State is the complete desired configuration.
type State struct {
	Networks []Network
	Ports    []Port
}

const (
	tFilter = "filter"
	tNat    = "nat"

	chainDocker     = "DOCKER"
	chainUser       = "DOCKER-USER"
	chainForward    = "DOCKER-FORWARD"
	chainIsolation1 = "DOCKER-ISOLATION-STAGE-1"
	chainIsolation2 = "DOCKER-ISOLATION-STAGE-2"
	chainPostroute  = "DOCKER-POSTROUTING"
)

// tables are the tables touched, in the order they are restored.
var tables = []string{tFilter, tNat}

// ownChains are the chains whose whole contents the engine owns, per table.
// DOCKER-USER is not one: it is created but never flushed.
var ownChains = map[string][]string{
	tFilter: {chainDocker, chainForward, chainIsolation1, chainIsolation2},
	tNat:    {chainDocker, chainPostroute},
}

func isOwnChain(table, chain string) bool {
	return slices.Contains(ownChains[table], chain)
}

// builtinRule is a rule in a chain the engine does not own. Rule is the text
// iptables-save prints after "-A <chain> ".
type builtinRule struct {
	Table string `json:"table"`
	Chain string `json:"chain"`
	Rule  string `json:"rule"`
}

func (r builtinRule) String() string {
	return fmt.Sprintf("-t %s -A %s %s", r.Table, r.Chain, r.Rule)
}

// builtinSpec is a wanted rule in a built-in chain and where it goes.
type builtinSpec struct {
	builtinRule
	// top puts the rule above everything else in the chain except the
	// wanted rules listed before it; otherwise it is appended.
	top bool
}

// builtinRules are the jumps into the engine's chains. They do not depend
// on the state: with no network they lead to empty chains.
var builtinRules = []builtinSpec{
	{builtinRule{tFilter, "FORWARD", "-j " + chainUser}, true},
	{builtinRule{tFilter, "FORWARD", "-j " + chainForward}, true},
	{builtinRule{tNat, "PREROUTING", "-m addrtype --dst-type LOCAL -j " + chainDocker}, false},
	{builtinRule{tNat, "OUTPUT", "-m addrtype --dst-type LOCAL -j " + chainDocker}, false},
	{builtinRule{tNat, "POSTROUTING", "-j " + chainPostroute}, false},
}

// ruleset is the rendered desired state: for each table, the full contents
// of every own chain (rule text after "-A <chain> ").
type ruleset map[string]map[string][]string

// key is a canonical text of the rules, to tell cheaply whether anything
// changed since the last Apply.
func (rs ruleset) key() string {
	var b strings.Builder
	for _, t := range tables {
		b.WriteString("*" + t + "\n")
		for _, c := range ownChains[t] {
			for _, r := range rs[t][c] {
				b.WriteString("-A " + c + " " + r + "\n")
			}
		}
	}
	for _, r := range builtinRules {
		b.WriteString(r.String() + "\n")
	}
	return b.String()
}

// port is a validated IPv4 Port.
type port struct {
	proto         string
	hostIP        netip.Addr // invalid = all addresses
	hostPort      uint16
	ctrIP         netip.Addr
	ctrPort       uint16
	bridge        string
	wildcardLater int // 0 for a specific host address, 1 for all: specific DNATs go first
}

// render validates s and turns it into the rules of the engine's chains.
// The result does not depend on the order of s's slices.
func render(s State) (ruleset, error) {
	nets := slices.Clone(s.Networks)
	internal := make(map[string]bool, len(nets))
	for _, n := range nets {
		if err := checkIfname(n.Bridge); err != nil {
			return nil, fmt.Errorf("network %q: %w", n.Bridge, err)
		}
		if _, dup := internal[n.Bridge]; dup {
			return nil, fmt.Errorf("network %q: bridge listed twice", n.Bridge)
		}
		if !n.Subnet.IsValid() {
			return nil, fmt.Errorf("network %q: invalid subnet %v", n.Bridge, n.Subnet)
		}
		internal[n.Bridge] = n.Internal
	}
	slices.SortFunc(nets, func(a, b Network) int { return strings.Compare(a.Bridge, b.Bridge) })

	var ports []port
	for _, p := range s.Ports {
		q, ok, err := checkPort(p, internal)
		if err != nil {
			return nil, fmt.Errorf("port %s/%d -> %v:%d: %w", p.Proto, p.HostPort, p.ContainerIP, p.ContainerPort, err)
		}
		if ok {
			ports = append(ports, q)
		}
	}
	slices.SortFunc(ports, func(a, b port) int {
		return cmp.Or(
			strings.Compare(a.proto, b.proto),
			cmp.Compare(a.hostPort, b.hostPort),
			cmp.Compare(a.wildcardLater, b.wildcardLater),
			a.hostIP.Compare(b.hostIP),
			a.ctrIP.Compare(b.ctrIP),
			cmp.Compare(a.ctrPort, b.ctrPort),
			strings.Compare(a.bridge, b.bridge),
		)
	})
	ports = slices.Compact(ports)

	rs := ruleset{tFilter: {}, tNat: {}}
	f, nat := rs[tFilter], rs[tNat]
	// addOnce skips a rule already in the chain: two host ports mapped to
	// one container port want the same accept and hairpin rule.
	addOnce := func(m map[string][]string, chain, rule string) {
		if !slices.Contains(m[chain], rule) {
			m[chain] = append(m[chain], rule)
		}
	}

	// DOCKER-FORWARD: replies first, then isolation, then what each bridge
	// lets in and out.
	for _, n := range nets {
		if !n.Internal {
			f[chainForward] = append(f[chainForward], "-o "+n.Bridge+" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
		}
	}
	if len(nets) > 0 {
		f[chainForward] = append(f[chainForward], "-j "+chainIsolation1)
	}
	for _, n := range nets {
		br := n.Bridge
		if !n.Internal {
			f[chainForward] = append(f[chainForward], "-o "+br+" -j "+chainDocker, "-i "+br+" ! -o "+br+" -j ACCEPT")
		}
		verdict := "ACCEPT"
		if !n.ICC {
			verdict = "DROP"
		}
		f[chainForward] = append(f[chainForward], "-i "+br+" -o "+br+" -j "+verdict)
	}

	// Isolation: internal bridges are sealed first; traffic from one
	// bridge to another then reaches published ports only (DOCKER) and is
	// otherwise dropped.
	for _, n := range nets {
		if n.Internal {
			f[chainIsolation1] = append(f[chainIsolation1],
				"-i "+n.Bridge+" ! -o "+n.Bridge+" -j DROP",
				"! -i "+n.Bridge+" -o "+n.Bridge+" -j DROP")
		}
	}
	for _, n := range nets {
		if n.Internal {
			continue
		}
		br := n.Bridge
		f[chainIsolation1] = append(f[chainIsolation1], "-i "+br+" ! -o "+br+" -j "+chainIsolation2)
		if len(f[chainIsolation2]) == 0 {
			f[chainIsolation2] = append(f[chainIsolation2], "-j "+chainDocker)
		}
		f[chainIsolation2] = append(f[chainIsolation2], "-o "+br+" -j DROP")
		nat[chainPostroute] = append(nat[chainPostroute], "-o "+br+" -m addrtype --src-type LOCAL -j MASQUERADE")
		if n.Masquerade && n.Subnet.Addr().Is4() {
			nat[chainPostroute] = append(nat[chainPostroute], "-s "+n.Subnet.Masked().String()+" ! -o "+br+" -j MASQUERADE")
		}
	}

	for _, p := range ports {
		match := "-p " + p.proto + " -m " + p.proto + " --dport "
		ctr := p.ctrIP.String() + "/32"
		addOnce(f, chainDocker, "-d "+ctr+" ! -i "+p.bridge+" -o "+p.bridge+" "+match+strconv.Itoa(int(p.ctrPort))+" -j ACCEPT")
		dnat := match + strconv.Itoa(int(p.hostPort)) + " -j DNAT --to-destination " +
			p.ctrIP.String() + ":" + strconv.Itoa(int(p.ctrPort))
		if p.hostIP.IsValid() {
			dnat = "-d " + p.hostIP.String() + "/32 " + dnat
		}
		addOnce(nat, chainDocker, dnat)
		addOnce(nat, chainPostroute, "-s "+ctr+" -d "+ctr+" "+match+strconv.Itoa(int(p.ctrPort))+" -j MASQUERADE")
	}
	return rs, nil
}

// checkPort validates p; ok is false for a port this package leaves alone
// (IPv6, or on an internal network).
func checkPort(p Port, internal map[string]bool) (q port, ok bool, err error) {
	q.proto = strings.ToLower(p.Proto)
	if q.proto != "tcp" && q.proto != "udp" {
		return q, false, fmt.Errorf("unsupported protocol %q", p.Proto)
	}
	if p.HostPort == 0 || p.ContainerPort == 0 {
		return q, false, fmt.Errorf("port 0")
	}
	isInternal, known := internal[p.Bridge]
	if !known {
		return q, false, fmt.Errorf("bridge %q is not one of the state's networks", p.Bridge)
	}
	if !p.ContainerIP.IsValid() {
		return q, false, fmt.Errorf("no container address")
	}
	q.ctrIP = p.ContainerIP.Unmap()
	q.hostIP = p.HostIP.Unmap()
	if q.hostIP.IsValid() && q.hostIP.IsUnspecified() && q.hostIP.Is4() {
		q.hostIP = netip.Addr{}
	}
	if !q.hostIP.IsValid() {
		q.wildcardLater = 1
	}
	if q.ctrIP.Is6() || q.hostIP.Is6() || isInternal {
		return q, false, nil
	}
	q.hostPort, q.ctrPort, q.bridge = p.HostPort, p.ContainerPort, p.Bridge
	return q, true, nil
}

// checkIfname accepts the interface names the engine makes, and refuses
// anything iptables would read as more than a plain name ("+" is a wildcard,
// a leading "-" or "!" an option) or Linux would refuse.
func checkIfname(name string) error {
	if name == "" || len(name) > 15 || name == "." || name == ".." || name[0] == '-' {
		return fmt.Errorf("invalid bridge name")
	}
	for _, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return fmt.Errorf("invalid bridge name")
		}
	}
	return nil
}
