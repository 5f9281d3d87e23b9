package firewall

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Network is one bridge network as the firewall sees it. It has a subnet of
// one address family or of both; each family's rules cover the networks
// that have a subnet of it, as Docker's do, so an IPv4-only network gets no
// IPv6 rules and an IPv6-only one no IPv4 rules.
type Network struct {
	Bridge string // the bridge device, e.g. "balena0" or "br-0123456789ab"
	// Subnet is the IPv4 subnet, e.g. 172.17.0.0/16; zero for an
	// IPv6-only network. An IPv6 prefix here is read as Subnet6 when that
	// is zero.
	Subnet netip.Prefix
	// Subnet6 is the IPv6 subnet, e.g. fd00:17::/64; zero (the default)
	// means the network has no IPv6.
	Subnet6    netip.Prefix
	Masquerade bool // --ip-masq / com.docker.network.bridge.enable_ip_masquerade, for both subnets (NAT66 for IPv6, Docker's default)
	ICC        bool // inter-container connectivity on this bridge (com.docker.network.bridge.enable_icc)
	Internal   bool // no traffic in or out of the bridge except between its members
}

// subnet is n's subnet of family fam; zero when it has none.
func (n Network) subnet(fam family) netip.Prefix {
	if fam == ipv6 {
		return n.Subnet6
	}
	return n.Subnet
}

// Port is one published port of one address family, its ContainerIP's. A
// port published on all the host's addresses of a container with an IPv4
// and an IPv6 address is two Ports, one to each address (as Docker binds
// 0.0.0.0 and ::), each with HostIP zero or its family's unspecified
// address. Skipped without an error, as they need Docker's userland proxy,
// which the engine does not run: a HostIP of the other family than
// ContainerIP, and the HostIP ::1 (IPv6 has no route_localnet: the kernel
// sends no packet from ::1 into a bridge). Ports on internal networks are
// skipped too.
type Port struct {
	Proto         string     // "tcp" or "udp"
	HostIP        netip.Addr // zero value (invalid), 0.0.0.0 or :: = all the host's addresses of the port's family
	HostPort      uint16
	ContainerIP   netip.Addr // IPv4 or IPv6; the network must have a subnet of its family
	ContainerPort uint16
	Bridge        string // the bridge the container is on
}

// Link is a legacy link (--link on the default bridge) on a bridge whose
// containers may not otherwise talk to each other (ICC off): From may
// reach To's exposed port, as Docker opens it. Replies pass as any
// connection's do. On a bridge with ICC on it adds nothing.
type Link struct {
	Bridge   string
	From, To netip.Addr // of one family
	Proto    string     // "tcp" or "udp"
	Port     uint16
}

// State is the complete desired configuration.
type State struct {
	Networks []Network
	Ports    []Port
	Links    []Link
}

// family is an address family: each has rules, programs and tables of its
// own.
type family int

const (
	ipv4 family = iota
	ipv6
	nFamilies
)

// families are what differs between the families' rules beyond the
// addresses.
var families = [nFamilies]struct {
	name string // in messages
	nft  string // nft's table family and address keyword
	// notLoopback is what the jump to the DNAT rules from the host's own
	// connections (the OUTPUT hook) starts with: IPv6 leaves ::1 alone,
	// since no packet from it reaches a bridge (see Port); a host process
	// listening there is reached as without the engine.
	notLoopback, nftNotLoopback string
}{
	ipv4: {"IPv4", "ip", "", ""},
	ipv6: {"IPv6", "ip6", "! -d ::1/128 ", "ip6 daddr != ::1 "},
}

// linkLocal6 are the IPv6 link-local addresses, which the DNAT rules leave
// alone as Docker's do: a reply to one cannot be routed back through
// another link.
var linkLocal6 = netip.MustParsePrefix("fe80::/10")

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

// chain is one of the engine's own chains, whose rules build works out.
type chain int

const (
	cPublished   chain = iota // accepts to published ports
	cForward                  // what goes through a bridge; reached from the forward hook
	cIsolation1               // between bridges, stage 1
	cIsolation2               // between bridges, stage 2
	cDNAT                     // published ports; reached for local destinations
	cPostrouting              // masquerading; reached from the postrouting hook
	nChains
)

// chains are the names of the chains: their iptables table and name, and
// their name in the nftables table (see nftables.go). Within each iptables
// table, this order is ownChains'.
var chains = [nChains]struct{ table, ipt, nft string }{
	cPublished:   {tFilter, chainDocker, "filter-published"},
	cForward:     {tFilter, chainForward, "filter-FORWARD"},
	cIsolation1:  {tFilter, chainIsolation1, "filter-isolation-1"},
	cIsolation2:  {tFilter, chainIsolation2, "filter-isolation-2"},
	cDNAT:        {tNat, chainDocker, "nat-prerouting-and-output"},
	cPostrouting: {tNat, chainPostroute, "nat-POSTROUTING"},
}

// chainRules are the rules of every chain, in order.
type chainRules [nChains][]rule

// ownChains are the iptables chains whose whole contents the engine owns,
// per table. DOCKER-USER is not one: it is created but never flushed.
var ownChains = func() map[string][]string {
	m := map[string][]string{}
	for _, c := range chains {
		m[c.table] = append(m[c.table], c.ipt)
	}
	return m
}()

// verdict is what a rule does with a packet it matches.
type verdict int

const (
	accept verdict = iota
	drop
	masquerade
	dnatTo // to rule.to
	jump   // to rule.target, returning at its end
)

// rule is one rule of the engine's chains; every field left at its zero
// value matches anything.
type rule struct {
	src, dst      netip.Prefix
	notSrc        bool   // src is negated
	in, out       string // input and output interface
	notIn, notOut bool   // in and out are negated
	proto         string // "tcp" or "udp", with dport
	dport         uint16
	replies       bool // a connection's replies and related packets (conntrack)
	srcLocal      bool // a source address of the host
	verdict       verdict
	target        chain
	to            netip.AddrPort
}

// syntax is how a backend writes the parts of a rule, in the order rule.write
// writes them.
type syntax struct {
	src, notSrc, dst       string // before an address
	bareHost               bool   // a single address is written without its length
	in, notIn, out, notOut string // before an interface name
	quote                  string // around an interface name
	proto                  string // before a destination port, "{}" the protocol
	replies, srcLocal      string
	verdicts               [jump + 1]string // dnatTo's is followed by the address, jump's by the chain
	chain                  func(chain) string
}

// iptablesSyntax is iptables-save's: a rule in this syntax is compared with
// the kernel's as text.
var iptablesSyntax = syntax{
	src: "-s ", notSrc: "! -s ", dst: "-d ",
	in: "-i ", notIn: "! -i ", out: "-o ", notOut: "! -o ",
	proto:    "-p {} -m {} --dport ",
	replies:  "-m conntrack --ctstate RELATED,ESTABLISHED",
	srcLocal: "-m addrtype --src-type LOCAL",
	verdicts: [...]string{accept: "-j ACCEPT", drop: "-j DROP", masquerade: "-j MASQUERADE", dnatTo: "-j DNAT --to-destination ", jump: "-j "},
	chain:    func(c chain) string { return chains[c].ipt },
}

// nftSyntax is nft's, as nft lists it, per family.
var nftSyntax = func() (sx [nFamilies]syntax) {
	for fam, f := range families {
		sx[fam] = syntax{
			src: f.nft + " saddr ", notSrc: f.nft + " saddr != ", dst: f.nft + " daddr ", bareHost: true,
			in: "iifname ", notIn: "iifname != ", out: "oifname ", notOut: "oifname != ", quote: `"`,
			proto:    "{} dport ",
			replies:  "ct state established,related",
			srcLocal: "fib saddr type local",
			verdicts: [...]string{accept: "accept", drop: "drop", masquerade: "masquerade", dnatTo: "dnat to ", jump: "jump "},
			chain:    func(c chain) string { return chains[c].nft },
		}
	}
	return sx
}()

// write writes r in sx.
func (r rule) write(sx *syntax) string {
	var parts []string
	addr := func(before string, p netip.Prefix) {
		if p.IsValid() {
			a := p.String()
			if sx.bareHost && p.IsSingleIP() {
				a = p.Addr().String()
			}
			parts = append(parts, before+a)
		}
	}
	iface := func(name string, not bool, before, notBefore string) {
		if name == "" {
			return
		}
		if not {
			before = notBefore
		}
		parts = append(parts, before+sx.quote+name+sx.quote)
	}
	if r.notSrc {
		addr(sx.notSrc, r.src)
	} else {
		addr(sx.src, r.src)
	}
	addr(sx.dst, r.dst)
	iface(r.in, r.notIn, sx.in, sx.notIn)
	iface(r.out, r.notOut, sx.out, sx.notOut)
	if r.proto != "" {
		parts = append(parts, strings.ReplaceAll(sx.proto, "{}", r.proto)+strconv.Itoa(int(r.dport)))
	}
	if r.replies {
		parts = append(parts, sx.replies)
	}
	if r.srcLocal {
		parts = append(parts, sx.srcLocal)
	}
	v := sx.verdicts[r.verdict]
	switch r.verdict {
	case dnatTo:
		v += r.to.String()
	case jump:
		v += sx.chain(r.target)
	}
	return strings.Join(append(parts, v), " ")
}

// iptables is r as iptables-save prints it after "-A <chain> ".
func (r rule) iptables() string { return r.write(&iptablesSyntax) }

// nft is r in nft's language for a table of family fam, as nft lists it.
func (r rule) nft(fam family) string { return r.write(&nftSyntax[fam]) }

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

// builtinRules are the jumps into the engine's chains, per family. They do
// not depend on the state: with no network they lead to empty chains.
var builtinRules = func() (b [nFamilies][]builtinSpec) {
	for fam, f := range families {
		b[fam] = []builtinSpec{
			{builtinRule{tFilter, "FORWARD", "-j " + chainUser}, true},
			{builtinRule{tFilter, "FORWARD", "-j " + chainForward}, true},
			{builtinRule{tNat, "PREROUTING", "-m addrtype --dst-type LOCAL -j " + chainDocker}, false},
			{builtinRule{tNat, "OUTPUT", f.notLoopback + "-m addrtype --dst-type LOCAL -j " + chainDocker}, false},
			{builtinRule{tNat, "POSTROUTING", "-j " + chainPostroute}, false},
		}
	}
	return b
}()

// ruleset is the rendered desired state: for each table, the full contents
// of every own chain (rule text after "-A <chain> ").
type ruleset map[string]map[string][]string

// key is a canonical text of the rules, to tell cheaply whether anything
// changed since the last Apply of their family.
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
	return b.String()
}

// port is a validated Port; ctrIP's family is the port's.
type port struct {
	proto         string
	hostIP        netip.Addr // invalid = all addresses
	hostPort      uint16
	ctrIP         netip.Addr
	ctrPort       uint16
	bridge        string
	wildcardLater int // 0 for a specific host address, 1 for all: specific DNATs go first
}

// build validates s and turns it into the rules of the engine's chains, per
// family, as both backends print them. uses6 tells whether any network has
// IPv6; when none has, the IPv6 family is not used at all (IPv4 always is,
// if only for its empty chains). The result does not depend on the order of
// s's slices. (It sorts pointers: sorting structs would add a copy of the
// sort code per struct type to the binary.)
func build(s State) (c [nFamilies]chainRules, uses6 bool, err error) {
	nets := make([]*Network, 0, len(s.Networks))
	byBridge := make(map[string]*Network, len(s.Networks))
	for _, n := range s.Networks {
		if err := checkIfname(n.Bridge); err != nil {
			return c, false, fmt.Errorf("network %q: %w", n.Bridge, err)
		}
		if _, dup := byBridge[n.Bridge]; dup {
			return c, false, fmt.Errorf("network %q: bridge listed twice", n.Bridge)
		}
		if n.Subnet.Addr().Is6() && !n.Subnet6.IsValid() {
			n.Subnet, n.Subnet6 = netip.Prefix{}, n.Subnet
		}
		if !n.Subnet.IsValid() && !n.Subnet6.IsValid() || n.Subnet.IsValid() && !n.Subnet.Addr().Is4() ||
			n.Subnet6.IsValid() && (!n.Subnet6.Addr().Is6() || n.Subnet6.Addr().Is4In6()) {
			return c, false, fmt.Errorf("network %q: invalid subnets %v (IPv4) and %v (IPv6)", n.Bridge, n.Subnet, n.Subnet6)
		}
		n.Subnet, n.Subnet6 = n.Subnet.Masked(), n.Subnet6.Masked()
		uses6 = uses6 || n.Subnet6.IsValid()
		byBridge[n.Bridge] = &n
		nets = append(nets, &n)
	}
	slices.SortFunc(nets, func(a, b *Network) int { return strings.Compare(a.Bridge, b.Bridge) })

	var ports []*port
	for _, p := range s.Ports {
		q, ok, err := checkPort(p, byBridge)
		if err != nil {
			return c, false, fmt.Errorf("port %s/%d -> %v:%d: %w", p.Proto, p.HostPort, p.ContainerIP, p.ContainerPort, err)
		}
		if ok {
			ports = append(ports, &q)
		}
	}
	slices.SortFunc(ports, func(a, b *port) int {
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
	ports = slices.CompactFunc(ports, func(a, b *port) bool { return *a == *b })

	// Pointers: sorting them shares the sort's code with the ports'.
	var links []*Link
	for _, l := range s.Links {
		n := byBridge[l.Bridge]
		if n == nil || !l.From.IsValid() || l.From.Is4() != l.To.Is4() || (l.Proto != "tcp" && l.Proto != "udp") {
			return c, false, fmt.Errorf("link %v -> %v %s/%d on %q: no such bridge, or not one family", l.From, l.To, l.Proto, l.Port, l.Bridge)
		}
		if !n.ICC {
			links = append(links, &l)
		}
	}
	slices.SortFunc(links, func(a, b *Link) int {
		return cmp.Or(strings.Compare(a.Bridge, b.Bridge), a.From.Compare(b.From), a.To.Compare(b.To),
			strings.Compare(a.Proto, b.Proto), cmp.Compare(a.Port, b.Port))
	})
	links = slices.CompactFunc(links, func(a, b *Link) bool { return *a == *b })

	for fam := range nFamilies {
		var fnets []*Network
		var fports []*port
		for _, n := range nets {
			if n.subnet(fam).IsValid() {
				fnets = append(fnets, n)
			}
		}
		for _, p := range ports {
			if p.ctrIP.Is6() == (fam == ipv6) {
				fports = append(fports, p)
			}
		}
		var flinks []*Link
		for _, l := range links {
			if l.To.Is6() == (fam == ipv6) {
				flinks = append(flinks, l)
			}
		}
		c[fam] = buildFamily(fam, fnets, fports, flinks)
	}
	return c, uses6, nil
}

// buildFamily works out the rules of family fam for its networks and ports,
// in build's order.
func buildFamily(fam family, nets []*Network, ports []*port, links []*Link) chainRules {
	var c chainRules
	add := func(ch chain, rs ...rule) { c[ch] = append(c[ch], rs...) }
	// addOnce skips a rule already in the chain: two host ports mapped to
	// one container port want the same accept and hairpin rule.
	addOnce := func(ch chain, r rule) {
		if !slices.Contains(c[ch], r) {
			add(ch, r)
		}
	}

	// The forward chain: replies first, then isolation, then what each
	// bridge lets in and out.
	for _, n := range nets {
		if !n.Internal {
			add(cForward, rule{out: n.Bridge, replies: true, verdict: accept})
		}
	}
	if len(nets) > 0 {
		add(cForward, rule{verdict: jump, target: cIsolation1})
	}
	for _, n := range nets {
		br := n.Bridge
		if !n.Internal {
			add(cForward, rule{out: br, verdict: jump, target: cPublished},
				rule{in: br, out: br, notOut: true, verdict: accept})
		}
		icc := rule{in: br, out: br, verdict: accept}
		if !n.ICC {
			icc.verdict = drop
			for _, l := range links {
				if l.Bridge == br {
					add(cForward, rule{in: br, out: br, src: netip.PrefixFrom(l.From, l.From.BitLen()),
						dst: netip.PrefixFrom(l.To, l.To.BitLen()), proto: l.Proto, dport: l.Port, verdict: accept})
				}
			}
		}
		add(cForward, icc)
	}

	// Isolation: internal bridges are sealed first; traffic from one
	// bridge to another then reaches published ports only and is otherwise
	// dropped.
	for _, n := range nets {
		if n.Internal {
			add(cIsolation1, rule{in: n.Bridge, out: n.Bridge, notOut: true, verdict: drop},
				rule{in: n.Bridge, notIn: true, out: n.Bridge, verdict: drop})
		}
	}
	for _, n := range nets {
		if n.Internal {
			continue
		}
		br := n.Bridge
		add(cIsolation1, rule{in: br, out: br, notOut: true, verdict: jump, target: cIsolation2})
		if len(c[cIsolation2]) == 0 {
			add(cIsolation2, rule{verdict: jump, target: cPublished})
		}
		add(cIsolation2, rule{out: br, verdict: drop})
		add(cPostrouting, rule{out: br, srcLocal: true, verdict: masquerade})
		if n.Masquerade {
			add(cPostrouting, rule{src: n.subnet(fam), out: br, notOut: true, verdict: masquerade})
		}
	}

	for _, p := range ports {
		ctr := netip.PrefixFrom(p.ctrIP, p.ctrIP.BitLen())
		addOnce(cPublished, rule{dst: ctr, in: p.bridge, notIn: true, out: p.bridge, proto: p.proto, dport: p.ctrPort, verdict: accept})
		dnat := rule{proto: p.proto, dport: p.hostPort, verdict: dnatTo, to: netip.AddrPortFrom(p.ctrIP, p.ctrPort)}
		if fam == ipv6 {
			dnat.src, dnat.notSrc = linkLocal6, true
		}
		if p.hostIP.IsValid() {
			dnat.dst = netip.PrefixFrom(p.hostIP, p.hostIP.BitLen())
		}
		addOnce(cDNAT, dnat)
		addOnce(cPostrouting, rule{src: ctr, dst: ctr, proto: p.proto, dport: p.ctrPort, verdict: masquerade})
	}
	return c
}

// render is build printed for iptables: per family, the full contents of
// every own chain, per table. The IPv6 ruleset is nil when the IPv6 family
// is not used.
func render(s State) ([nFamilies]ruleset, error) {
	var rs [nFamilies]ruleset
	c, uses6, err := build(s)
	if err != nil {
		return rs, err
	}
	for fam := range nFamilies {
		if fam == ipv6 && !uses6 {
			break
		}
		rs[fam] = ruleset{tFilter: {}, tNat: {}}
		for ch, rules := range c[fam] {
			name := chains[ch]
			for _, r := range rules {
				rs[fam][name.table][name.ipt] = append(rs[fam][name.table][name.ipt], r.iptables())
			}
		}
	}
	return rs, nil
}

// checkPort validates p against the networks; ok is false for a port this
// package leaves alone (see Port).
func checkPort(p Port, nets map[string]*Network) (q port, ok bool, err error) {
	q.proto = strings.ToLower(p.Proto)
	if q.proto != "tcp" && q.proto != "udp" {
		return q, false, fmt.Errorf("unsupported protocol %q", p.Proto)
	}
	if p.HostPort == 0 || p.ContainerPort == 0 {
		return q, false, fmt.Errorf("port 0")
	}
	n, known := nets[p.Bridge]
	if !known {
		return q, false, fmt.Errorf("bridge %q is not one of the state's networks", p.Bridge)
	}
	if !p.ContainerIP.IsValid() {
		return q, false, fmt.Errorf("no container address")
	}
	q.ctrIP = p.ContainerIP.Unmap()
	q.hostIP = p.HostIP.Unmap()
	if q.ctrIP.Zone() != "" || q.hostIP.Zone() != "" {
		return q, false, fmt.Errorf("an address with a zone")
	}
	fam := ipv4
	if q.ctrIP.Is6() {
		fam = ipv6
	}
	if !n.subnet(fam).IsValid() {
		return q, false, fmt.Errorf("network %q has no %s subnet", p.Bridge, families[fam].name)
	}
	sameFamily := q.hostIP.Is6() == q.ctrIP.Is6()
	if q.hostIP.IsUnspecified() && sameFamily {
		q.hostIP = netip.Addr{}
	}
	if !q.hostIP.IsValid() {
		q.wildcardLater = 1
	} else if !sameFamily || q.hostIP == netip.IPv6Loopback() {
		return q, false, nil
	}
	if n.Internal {
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
