// Package dns is the embedded DNS server that containers on user-defined
// networks reach at 127.0.0.11:53 inside their own network namespace. It
// answers A, AAAA and PTR queries for the names of the containers on the
// networks the asking container is on, and forwards every other query to that
// container's upstream resolvers (the host's, or those given with --dns).
//
// Everything the server answers from is a plain, serialisable Table. The
// daemon writes it, but the long-lived container monitor persists it (as JSON)
// and runs one Server per container namespace, so that containers keep
// resolving each other while the daemon is stopped or being upgraded. The
// package therefore holds no reference to daemon state: swap a new Table in
// with SetTable whenever the daemon reports a change.
//
// Opening the sockets inside the namespace is the caller's job: the Resolver
// is handed a net.PacketConn and a net.Listener.
package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Table is everything the servers answer from: written by the daemon,
// persisted by the monitor as JSON.
type Table struct {
	Sandboxes []Sandbox
	Entries   []Entry
}

// Sandbox is one container's namespace and what it may resolve.
type Sandbox struct {
	ID        string   // container ID
	Netns     string   // path of its network namespace (used by the monitor, not by this package)
	Networks  []string // IDs of the user networks it is on: it resolves names of containers on these only
	Upstreams []string // "ip" or "ip:port" of resolvers to forward other names to; port 53 if none
	Search    []string // not used for answering; informational
	// Links are its endpoints' links (--link on a user network): names
	// that only it resolves, to another container on that network.
	Links []Link `json:",omitempty"`
}

// Link makes Alias, in one sandbox, a name of the container named Target
// on the network with ID Network.
type Link struct {
	Network, Alias, Target string
}

// Entry is one container's address on one network and the names it answers
// to there.
type Entry struct {
	Network     string     // network ID
	NetworkName string     // for "name.network" and PTR answers
	Names       []string   // container name, aliases, short ID (12 hex chars)
	Addr        netip.Addr // IPv4 or IPv6
}

// Options tune a Resolver. The zero value is usable.
type Options struct {
	// Timeout bounds one upstream exchange; 0 means 3s. A forwarded query
	// as a whole is bounded by 3×Timeout, however many upstreams there are.
	Timeout time.Duration
	// MaxInFlight bounds the forwarded queries in progress at once for this
	// resolver; 0 means 100. Beyond it a query is answered SERVFAIL at once.
	MaxInFlight int
	// Dial reaches upstreams ("udp" or "tcp"); nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Logf, if set, receives forwarding failures.
	Logf func(format string, args ...any)
}

const (
	ttl          = 600
	maxTCPConns  = 16
	ednsSize     = 1232 // the UDP size advertised in our own OPT records
	minUDPSize   = 512
	maxMsgSize   = 65535
	budgetFactor = 3                // a forwarded query's whole budget, in Timeouts
	idleTimeout  = 10 * time.Second // TCP connections without a query are closed
)

var errMalformed = errors.New("dns: malformed query")

// Resolver answers for one sandbox. It is safe for concurrent use; SetTable
// swaps the data atomically.
type Resolver struct {
	id      string
	timeout time.Duration
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	logf    func(format string, args ...any)
	fwd     chan struct{} // forwarding slots
	conns   chan struct{} // TCP connection slots
	idle    time.Duration // idleTimeout; tests shorten it
	view    atomic.Pointer[view]
}

// view is the part of a Table that one sandbox sees, indexed for lookups.
type view struct {
	names map[string][]netip.Addr        // lower-case name without trailing dot → addresses in table order
	ptr   map[netip.Addr]dnsmessage.Name // address → "<first name>.<network name>."
	ups   []string                       // "ip:port"
}

// NewResolver returns a resolver for the sandbox with the given ID. Until
// SetTable is called it resolves nothing locally and has no upstreams.
func NewResolver(sandboxID string, opts Options) *Resolver {
	r := &Resolver{id: sandboxID, timeout: opts.Timeout, dial: opts.Dial, logf: opts.Logf, idle: idleTimeout}
	if r.timeout <= 0 {
		r.timeout = 3 * time.Second
	}
	if r.dial == nil {
		var d net.Dialer
		r.dial = d.DialContext
	}
	n := opts.MaxInFlight
	if n <= 0 {
		n = 100
	}
	r.fwd = make(chan struct{}, n)
	r.conns = make(chan struct{}, maxTCPConns)
	r.SetTable(nil)
	return r
}

func (r *Resolver) log(format string, args ...any) {
	if r.logf != nil {
		r.logf(format, args...)
	}
}

// SetTable replaces the data the resolver answers from. The table is not
// retained: later changes to t have no effect until SetTable is called again.
func (r *Resolver) SetTable(t *Table) {
	v := &view{names: map[string][]netip.Addr{}, ptr: map[netip.Addr]dnsmessage.Name{}}
	defer r.view.Store(v)
	if t == nil {
		return
	}
	var sb *Sandbox
	for i := range t.Sandboxes {
		if t.Sandboxes[i].ID == r.id {
			sb = &t.Sandboxes[i]
			break
		}
	}
	if sb == nil {
		return
	}
	for _, u := range sb.Upstreams {
		ap, err := netip.ParseAddrPort(u)
		if err != nil {
			a, err := netip.ParseAddr(strings.Trim(u, "[]"))
			if err != nil {
				r.log("dns: ignoring upstream %q: not an address", u)
				continue
			}
			ap = netip.AddrPortFrom(a, 53)
		}
		if ap == netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 11}), 53) {
			continue // ourselves: forwarding there would loop
		}
		v.ups = append(v.ups, ap.String())
	}
	for _, e := range t.Entries {
		if !contains(sb.Networks, e.Network) {
			continue
		}
		a := e.Addr.Unmap()
		nw := normName(e.NetworkName)
		for _, n := range e.Names {
			if n = normName(n); n == "" {
				continue
			}
			v.add(n, a)
			if nw != "" {
				v.add(n+"."+nw, a)
			}
		}
		for _, l := range sb.Links {
			if l.Network == e.Network && containsName(e.Names, l.Target) {
				v.add(normName(l.Alias), a)
			}
		}
		if _, dup := v.ptr[a]; !dup && a.IsValid() && len(e.Names) > 0 {
			s := strings.TrimSuffix(e.Names[0], ".")
			if e.NetworkName != "" {
				s += "." + strings.TrimSuffix(e.NetworkName, ".")
			}
			if name, err := dnsmessage.NewName(s + "."); err == nil {
				v.ptr[a] = name
			}
		}
	}
}

// containsName says whether names has name, as DNS compares them.
func containsName(names []string, name string) bool {
	name = normName(name)
	for _, n := range names {
		if normName(n) == name {
			return true
		}
	}
	return false
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// add records that name is local, and a (if valid) one of its addresses.
func (v *view) add(name string, a netip.Addr) {
	l := v.names[name]
	if a.IsValid() && !containsAddr(l, a) {
		l = append(l, a)
	}
	v.names[name] = l
}

func containsAddr(l []netip.Addr, a netip.Addr) bool {
	for _, x := range l {
		if x == a {
			return true
		}
	}
	return false
}

// normName lower-cases ASCII letters (DNS is case-insensitive for ASCII
// only) and drops a trailing dot.
func normName(s string) string {
	s = strings.TrimSuffix(s, ".")
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// query is a parsed query that is to be answered.
type query struct {
	raw   []byte
	hdr   dnsmessage.Header
	q     dnsmessage.Question
	limit int  // largest response the client takes
	edns  bool // the query had an OPT record
	tcp   bool
	v     *view
}

// Answer handles one query message and returns the response message. Over
// UDP (tcp false) the response is truncated, with TC set, to the client's
// limit: 512 bytes or the UDP size it advertised with EDNS0. A malformed
// query returns an error: drop it (UDP) or close the connection (TCP).
func (r *Resolver) Answer(ctx context.Context, query []byte, tcp bool) ([]byte, error) {
	resp, q, err := r.prepare(query, tcp)
	if q == nil {
		return resp, err
	}
	if !r.acquire() {
		return q.reply(dnsmessage.RCodeServerFailure, nil, nil), nil
	}
	defer r.release()
	return r.forward(ctx, q), nil
}

func (r *Resolver) acquire() bool {
	select {
	case r.fwd <- struct{}{}:
		return true
	default:
		return false
	}
}

func (r *Resolver) release() { <-r.fwd }

// prepare parses raw and answers it from the table if it can. It returns
// either a response, or a query to forward, or an error for malformed input.
func (r *Resolver) prepare(raw []byte, tcp bool) ([]byte, *query, error) {
	var p dnsmessage.Parser
	h, err := p.Start(raw)
	if err != nil || h.Response {
		return nil, nil, errMalformed
	}
	q := &query{raw: raw, hdr: h, limit: minUDPSize, tcp: tcp, v: r.view.Load()}
	if tcp {
		q.limit = maxMsgSize
	}
	if binary.BigEndian.Uint16(raw[4:6]) != 1 {
		return q.reply(dnsmessage.RCodeFormatError, nil, nil), nil, nil
	}
	if q.q, err = p.Question(); err != nil {
		return nil, nil, errMalformed
	}
	if p.SkipAllQuestions() == nil && p.SkipAllAnswers() == nil && p.SkipAllAuthorities() == nil {
		for {
			rh, err := p.AdditionalHeader()
			if err != nil {
				break
			}
			if rh.Type == dnsmessage.TypeOPT {
				q.edns = true
				if !tcp && int(rh.Class) > q.limit {
					q.limit = min(int(rh.Class), maxMsgSize)
				}
			}
			if p.SkipAdditional() != nil {
				break
			}
		}
	}
	if h.OpCode != 0 {
		return q.reply(dnsmessage.RCodeNotImplemented, nil, nil), nil, nil
	}
	if q.q.Class != dnsmessage.ClassINET {
		return nil, q, nil
	}
	name := normName(q.q.Name.String())
	switch q.q.Type {
	case dnsmessage.TypePTR:
		if a, ok := parseReverse(name); ok {
			if n, ok := q.v.ptr[a]; ok {
				return q.reply(dnsmessage.RCodeSuccess, nil, &n), nil, nil
			}
		}
	case dnsmessage.TypeA, dnsmessage.TypeAAAA:
		if addrs, ok := q.v.names[name]; ok {
			var l []netip.Addr
			for _, a := range addrs {
				if a.Is4() == (q.q.Type == dnsmessage.TypeA) {
					l = append(l, a)
				}
			}
			return q.reply(dnsmessage.RCodeSuccess, l, nil), nil, nil
		}
	}
	if _, ok := q.v.names[name]; ok {
		// A local name, of a type we hold nothing of: NODATA rather than
		// leaking container names to the upstreams.
		return q.reply(dnsmessage.RCodeSuccess, nil, nil), nil, nil
	}
	return nil, q, nil
}

// parseReverse parses a lower-case in-addr.arpa or ip6.arpa name (without
// trailing dot) into an address.
func parseReverse(name string) (netip.Addr, bool) {
	if s, ok := strings.CutSuffix(name, ".in-addr.arpa"); ok {
		l := strings.Split(s, ".")
		if len(l) != 4 {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(l[3] + "." + l[2] + "." + l[1] + "." + l[0])
		return a, err == nil
	}
	s, ok := strings.CutSuffix(name, ".ip6.arpa")
	if !ok || len(s) != 63 {
		return netip.Addr{}, false
	}
	var b [16]byte
	for i := 0; i < 32; i++ {
		c := s[2*i]
		if i < 31 && s[2*i+1] != '.' {
			return netip.Addr{}, false
		}
		var n byte
		switch {
		case '0' <= c && c <= '9':
			n = c - '0'
		case 'a' <= c && c <= 'f':
			n = c - 'a' + 10
		default:
			return netip.Addr{}, false
		}
		j := 31 - i // nibble index from the most significant
		b[j/2] |= n << (4 * (1 - j%2))
	}
	return netip.AddrFrom16(b), true
}

// reply builds a response to q with addrs (A or AAAA) or ptr as answers,
// dropping answers and setting TC if it does not fit the client's limit.
func (q *query) reply(rc dnsmessage.RCode, addrs []netip.Addr, ptr *dnsmessage.Name) []byte {
	msg, err := q.build(rc, addrs, ptr, false)
	if err != nil {
		msg, _ = q.build(dnsmessage.RCodeServerFailure, nil, nil, false)
	}
	if len(msg) <= q.limit {
		return msg
	}
	// Largest number of answers that fits; each build is cheap.
	lo, hi := 0, len(addrs)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if m, _ := q.build(rc, addrs[:mid], nil, true); len(m) <= q.limit {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	msg, _ = q.build(rc, addrs[:lo], nil, true)
	return msg
}

func (q *query) build(rc dnsmessage.RCode, addrs []netip.Addr, ptr *dnsmessage.Name, tc bool) ([]byte, error) {
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), dnsmessage.Header{
		ID:                 q.hdr.ID,
		Response:           true,
		OpCode:             q.hdr.OpCode,
		Truncated:          tc,
		RecursionDesired:   q.hdr.RecursionDesired,
		RecursionAvailable: true,
		RCode:              rc,
	})
	b.EnableCompression()
	if rc == dnsmessage.RCodeFormatError {
		return b.Finish()
	}
	_ = b.StartQuestions()
	if err := b.Question(q.q); err != nil {
		return nil, err
	}
	_ = b.StartAnswers()
	h := dnsmessage.ResourceHeader{Name: q.q.Name, Class: dnsmessage.ClassINET, TTL: ttl}
	for _, a := range addrs {
		var err error
		if a.Is4() {
			err = b.AResource(h, dnsmessage.AResource{A: a.As4()})
		} else {
			err = b.AAAAResource(h, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
		if err != nil {
			return nil, err
		}
	}
	if ptr != nil {
		if err := b.PTRResource(h, dnsmessage.PTRResource{PTR: *ptr}); err != nil {
			return nil, err
		}
	}
	if q.edns {
		_ = b.StartAdditionals()
		var oh dnsmessage.ResourceHeader
		_ = oh.SetEDNS0(ednsSize, dnsmessage.RCodeSuccess, false)
		if err := b.OPTResource(oh, dnsmessage.OPTResource{}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

// forward relays q to the upstreams in order and returns the first usable
// answer, or SERVFAIL.
func (r *Resolver) forward(ctx context.Context, q *query) []byte {
	ctx, cancel := context.WithTimeout(ctx, budgetFactor*r.timeout)
	defer cancel()
	var last error = errors.New("no upstream")
	for _, up := range q.v.ups {
		if ctx.Err() != nil {
			last = ctx.Err()
			break
		}
		resp, err := r.exchange(ctx, up, q)
		if err != nil {
			last = err
			continue
		}
		// Like Docker: SERVFAIL and REFUSED may be one upstream's trouble.
		rc := dnsmessage.RCode(resp[3] & 0xf)
		if rc == dnsmessage.RCodeServerFailure || rc == dnsmessage.RCodeRefused {
			last = errors.New("upstream " + up + " answered " + rc.String())
			continue
		}
		if len(resp) > q.limit {
			// The upstream ignored the client's limit: send only the
			// header and question, with TC set, so it retries over TCP.
			if m, err := q.build(rc, nil, nil, true); err == nil {
				return m
			}
		}
		return resp
	}
	r.log("dns: forwarding %s for %s failed: %v", q.q.Name.String(), r.id, last)
	return q.reply(dnsmessage.RCodeServerFailure, nil, nil)
}

// exchange sends q's raw message to one upstream, over TCP if the client
// used TCP, and returns its answer.
func (r *Resolver) exchange(ctx context.Context, addr string, q *query) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	network := "udp"
	if q.tcp {
		network = "tcp"
	}
	c, err := r.dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if q.tcp {
		msg := make([]byte, 2+len(q.raw))
		binary.BigEndian.PutUint16(msg, uint16(len(q.raw)))
		copy(msg[2:], q.raw)
		if _, err := c.Write(msg); err != nil {
			return nil, err
		}
		var lb [2]byte
		if _, err := io.ReadFull(c, lb[:]); err != nil {
			return nil, err
		}
		resp := make([]byte, binary.BigEndian.Uint16(lb[:]))
		if _, err := io.ReadFull(c, resp); err != nil {
			return nil, err
		}
		if !q.isReply(resp) {
			return nil, errors.New("not a reply to the query")
		}
		return resp, nil
	}
	if _, err := c.Write(q.raw); err != nil {
		return nil, err
	}
	// One byte more than the client takes: a longer answer is then seen.
	buf := make([]byte, q.limit+1)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		if q.isReply(buf[:n]) {
			return buf[:n], nil
		}
		// Stale or spoofed: keep waiting for ours.
	}
}

func (q *query) isReply(m []byte) bool {
	return len(m) >= 12 && m[0] == q.raw[0] && m[1] == q.raw[1] && m[2]&0x80 != 0
}
