package dns

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// All traffic in these tests stays on 127.0.0.1: the upstreams are servers
// the tests start themselves.

func mkQuery(t testing.TB, id uint16, name string, typ dnsmessage.Type, edns int) []byte {
	t.Helper()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, RecursionDesired: true})
	_ = b.StartQuestions()
	if err := b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET}); err != nil {
		t.Fatal(err)
	}
	if edns > 0 {
		_ = b.StartAdditionals()
		var h dnsmessage.ResourceHeader
		_ = h.SetEDNS0(edns, dnsmessage.RCodeSuccess, false)
		_ = b.OPTResource(h, dnsmessage.OPTResource{})
	}
	m, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func parse(t testing.TB, b []byte) dnsmessage.Message {
	t.Helper()
	var m dnsmessage.Message
	if err := m.Unpack(b); err != nil {
		t.Fatalf("unpacking response: %v", err)
	}
	return m
}

// ask sends one query through Answer and checks the basics of the response.
func ask(t *testing.T, r *Resolver, name string, typ dnsmessage.Type, tcp bool) dnsmessage.Message {
	t.Helper()
	const id = 0x4d2
	b, err := r.Answer(context.Background(), mkQuery(t, id, name, typ, 0), tcp)
	if err != nil {
		t.Fatalf("%s %v: %v", name, typ, err)
	}
	m := parse(t, b)
	if m.ID != id || !m.Response || len(m.Questions) != 1 || m.Questions[0].Name.String() != name {
		t.Fatalf("%s %v: bad response header/question: %+v", name, typ, m.Header)
	}
	return m
}

// answers renders the answer section as strings: addresses, PTR/MX targets.
func answers(m dnsmessage.Message) []string {
	var l []string
	for _, a := range m.Answers {
		switch b := a.Body.(type) {
		case *dnsmessage.AResource:
			l = append(l, netip.AddrFrom4(b.A).String())
		case *dnsmessage.AAAAResource:
			l = append(l, netip.AddrFrom16(b.AAAA).String())
		case *dnsmessage.PTRResource:
			l = append(l, b.PTR.String())
		case *dnsmessage.MXResource:
			l = append(l, "MX "+b.MX.String())
		default:
			l = append(l, a.Header.Type.String())
		}
	}
	return l
}

type seenQ struct {
	name string
	tcp  bool
}

// upstream is a test DNS server serving UDP and TCP on one 127.0.0.1 port.
type upstream struct {
	addr string
	seen chan seenQ
}

type handler func(q dnsmessage.Message) *dnsmessage.Message

func startUpstream(t *testing.T, h handler) *upstream {
	t.Helper()
	var pc net.PacketConn
	var ln net.Listener
	for i := 0; pc == nil; i++ {
		p, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", p.LocalAddr().String())
		if err != nil {
			p.Close()
			if i == 20 {
				t.Fatal(err)
			}
			continue
		}
		pc, ln = p, l
	}
	u := &upstream{addr: pc.LocalAddr().String(), seen: make(chan seenQ, 1000)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	respond := func(b []byte, tcp bool) []byte {
		var m dnsmessage.Message
		if m.Unpack(b) != nil || len(m.Questions) != 1 {
			return nil
		}
		u.seen <- seenQ{m.Questions[0].Name.String(), tcp}
		resp := h(m)
		if resp == nil {
			return nil
		}
		out, err := resp.Pack()
		if err != nil {
			return nil
		}
		return out
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		buf := make([]byte, 65535)
		for {
			n, a, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			b := slices.Clone(buf[:n])
			wg.Add(1)
			go func() {
				defer wg.Done()
				if out := respond(b, false); out != nil {
					_, _ = pc.WriteTo(out, a)
				}
			}()
		}
	}()
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				defer context.AfterFunc(ctx, func() { c.Close() })()
				for {
					b, err := readFramed(c)
					if err != nil {
						return
					}
					out := respond(b, true)
					if out == nil || writeFramed(c, out) != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { cancel(); pc.Close(); ln.Close(); wg.Wait() })
	return u
}

// drain returns the queries the upstream has received so far.
func (u *upstream) drain() []seenQ {
	var l []seenQ
	for {
		select {
		case q := <-u.seen:
			l = append(l, q)
		default:
			return l
		}
	}
}

func reply(q dnsmessage.Message, rc dnsmessage.RCode) *dnsmessage.Message {
	return &dnsmessage.Message{
		Header:    dnsmessage.Header{ID: q.ID, Response: true, RecursionDesired: q.RecursionDesired, RecursionAvailable: true, RCode: rc},
		Questions: q.Questions,
	}
}

// answerWith answers A queries with ip, MX and PTR with fixed names, and
// everything else with no data.
func answerWith(ip string) handler {
	return func(q dnsmessage.Message) *dnsmessage.Message {
		r := reply(q, dnsmessage.RCodeSuccess)
		qq := q.Questions[0]
		h := dnsmessage.ResourceHeader{Name: qq.Name, Class: qq.Class, TTL: 60}
		switch qq.Type {
		case dnsmessage.TypeA:
			r.Answers = []dnsmessage.Resource{{Header: h, Body: &dnsmessage.AResource{A: netip.MustParseAddr(ip).As4()}}}
		case dnsmessage.TypeMX:
			r.Answers = []dnsmessage.Resource{{Header: h, Body: &dnsmessage.MXResource{Pref: 10, MX: dnsmessage.MustNewName("mail.example.")}}}
		case dnsmessage.TypePTR:
			r.Answers = []dnsmessage.Resource{{Header: h, Body: &dnsmessage.PTRResource{PTR: dnsmessage.MustNewName("upstream.example.")}}}
		}
		return r
	}
}

// closedAddr is a 127.0.0.1 port nothing listens on.
func closedAddr(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := pc.LocalAddr().String()
	pc.Close()
	return a
}

// blackhole is a 127.0.0.1 UDP port that never answers.
func blackhole(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}

func testTable(ups ...string) *Table {
	return &Table{
		Sandboxes: []Sandbox{
			{ID: "sb", Networks: []string{"n1", "n2"}, Upstreams: ups},
			{ID: "other", Networks: []string{"n3"}, Upstreams: ups},
		},
		Entries: []Entry{
			{Network: "n1", NetworkName: "front", Names: []string{"web", "www", "0123456789ab"}, Addr: netip.MustParseAddr("10.0.1.2")},
			{Network: "n2", NetworkName: "back", Names: []string{"web"}, Addr: netip.MustParseAddr("10.0.2.2")},
			{Network: "n2", NetworkName: "back", Names: []string{"db"}, Addr: netip.MustParseAddr("10.0.2.3")},
			{Network: "n2", NetworkName: "back", Names: []string{"db"}, Addr: netip.MustParseAddr("fd00::3")},
			{Network: "n3", NetworkName: "hidden", Names: []string{"secret"}, Addr: netip.MustParseAddr("10.0.3.4")},
		},
	}
}

func TestTableLookup(t *testing.T) {
	up := startUpstream(t, answerWith("198.51.100.7"))
	r := NewResolver("sb", Options{Timeout: 2 * time.Second})
	r.SetTable(testTable(up.addr))

	A, AAAA, PTR, MX := dnsmessage.TypeA, dnsmessage.TypeAAAA, dnsmessage.TypePTR, dnsmessage.TypeMX
	for _, c := range []struct {
		name string
		typ  dnsmessage.Type
		want []string
		fwd  bool
	}{
		{"web.", A, []string{"10.0.1.2", "10.0.2.2"}, false},
		{"WWW.", A, []string{"10.0.1.2"}, false},
		{"0123456789AB.", A, []string{"10.0.1.2"}, false},
		{"web.front.", A, []string{"10.0.1.2"}, false},
		{"Web.BACK.", A, []string{"10.0.2.2"}, false},
		{"web.", AAAA, nil, false}, // IPv4 only: NOERROR, no data, not forwarded
		{"db.", AAAA, []string{"fd00::3"}, false},
		{"db.back.", A, []string{"10.0.2.3"}, false},
		{"web.", MX, nil, false}, // a local name is never forwarded
		{"2.1.0.10.in-addr.arpa.", PTR, []string{"web.front."}, false},
		{"3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", PTR, []string{"db.back."}, false},
		// Not ours: forwarded.
		{"secret.", A, []string{"198.51.100.7"}, true},
		{"www.hidden.", A, []string{"198.51.100.7"}, true},
		{"4.3.0.10.in-addr.arpa.", PTR, []string{"upstream.example."}, true},
		{"9.9.9.10.in-addr.arpa.", PTR, []string{"upstream.example."}, true},
	} {
		m := ask(t, r, c.name, c.typ, false)
		if got := answers(m); m.RCode != dnsmessage.RCodeSuccess || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s %v: got %v %v, want %v", c.name, c.typ, m.RCode, got, c.want)
		}
		if !m.RecursionAvailable || m.Authoritative {
			t.Errorf("%s %v: RA=%v AA=%v, want RA=true AA=false", c.name, c.typ, m.RecursionAvailable, m.Authoritative)
		}
		for _, a := range m.Answers {
			if want := map[bool]uint32{false: 600, true: 60}[c.fwd]; a.Header.TTL != want {
				t.Errorf("%s %v: TTL %d, want %d", c.name, c.typ, a.Header.TTL, want)
			}
		}
	}
	var fwd []string
	for _, q := range up.drain() {
		fwd = append(fwd, q.name)
	}
	want := []string{"secret.", "www.hidden.", "4.3.0.10.in-addr.arpa.", "9.9.9.10.in-addr.arpa."}
	if !reflect.DeepEqual(fwd, want) {
		t.Errorf("forwarded %v, want %v", fwd, want)
	}

	// The other sandbox sees its own network only.
	o := NewResolver("other", Options{})
	o.SetTable(testTable(up.addr))
	if got := answers(ask(t, o, "secret.", A, false)); !reflect.DeepEqual(got, []string{"10.0.3.4"}) {
		t.Errorf("other: secret = %v", got)
	}
	// A sandbox missing from the table resolves nothing and has no upstream.
	u := NewResolver("gone", Options{})
	u.SetTable(testTable(up.addr))
	if m := ask(t, u, "web.", A, false); m.RCode != dnsmessage.RCodeServerFailure {
		t.Errorf("unknown sandbox: %v", m.RCode)
	}
}

func TestUpstreamParsing(t *testing.T) {
	r := NewResolver("sb", Options{})
	r.SetTable(&Table{Sandboxes: []Sandbox{{ID: "sb", Upstreams: []string{"192.0.2.1", "[2001:db8::1]:5353", "2001:db8::2", "bogus", "127.0.0.11:53", "192.0.2.3:54"}}}})
	want := []string{"192.0.2.1:53", "[2001:db8::1]:5353", "[2001:db8::2]:53", "192.0.2.3:54"}
	if got := r.view.Load().ups; !reflect.DeepEqual(got, want) {
		t.Errorf("upstreams %v, want %v", got, want)
	}
}

func TestTableJSON(t *testing.T) {
	tb := testTable("192.0.2.1")
	b, err := json.Marshal(tb)
	if err != nil {
		t.Fatal(err)
	}
	var back Table
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, tb) {
		t.Errorf("round trip changed the table:\n%s", b)
	}
}

func TestMalformed(t *testing.T) {
	r := NewResolver("sb", Options{})
	r.SetTable(testTable())
	ctx := context.Background()
	q := mkQuery(t, 7, "web.", dnsmessage.TypeA, 0)
	resp := slices.Clone(q)
	resp[2] |= 0x80
	for _, b := range [][]byte{nil, {1, 2, 3}, q[:11], q[:len(q)-3], resp} {
		if out, err := r.Answer(ctx, b, false); err == nil {
			t.Errorf("%x: got %x, want an error", b, out)
		}
	}
	for _, qd := range []uint16{0, 2} {
		b := slices.Clone(q)
		binary.BigEndian.PutUint16(b[4:], qd)
		out, err := r.Answer(ctx, b, false)
		if err != nil {
			t.Fatal(err)
		}
		if m := parse(t, out); m.RCode != dnsmessage.RCodeFormatError || m.ID != 7 {
			t.Errorf("QDCOUNT %d: %v", qd, m.Header)
		}
	}
}

func TestForward(t *testing.T) {
	up := startUpstream(t, answerWith("198.51.100.7"))
	up2 := startUpstream(t, answerWith("198.51.100.8"))
	fail := startUpstream(t, func(q dnsmessage.Message) *dnsmessage.Message { return reply(q, dnsmessage.RCodeServerFailure) })
	ctx := context.Background()

	t.Run("relayed", func(t *testing.T) {
		r := NewResolver("sb", Options{})
		r.SetTable(testTable(up.addr))
		b, err := r.Answer(ctx, mkQuery(t, 0xbeef, "example.test.", dnsmessage.TypeA, 0), false)
		if err != nil {
			t.Fatal(err)
		}
		m := parse(t, b)
		if m.ID != 0xbeef || !reflect.DeepEqual(answers(m), []string{"198.51.100.7"}) || m.Answers[0].Header.TTL != 60 {
			t.Errorf("got %+v %v", m.Header, answers(m))
		}
		if m := ask(t, r, "example.test.", dnsmessage.TypeMX, false); !reflect.DeepEqual(answers(m), []string{"MX mail.example."}) {
			t.Errorf("MX: %v", answers(m))
		}
		if m := ask(t, r, "tcp.test.", dnsmessage.TypeA, true); !reflect.DeepEqual(answers(m), []string{"198.51.100.7"}) {
			t.Errorf("TCP: %v", answers(m))
		}
		got := up.drain()
		want := []seenQ{{"example.test.", false}, {"example.test.", false}, {"tcp.test.", true}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("upstream saw %v, want %v", got, want)
		}
	})

	t.Run("next upstream", func(t *testing.T) {
		for name, first := range map[string]string{"closed": closedAddr(t), "servfail": fail.addr, "silent": blackhole(t)} {
			r := NewResolver("sb", Options{Timeout: 300 * time.Millisecond})
			r.SetTable(testTable(first, up2.addr))
			if m := ask(t, r, "example.test.", dnsmessage.TypeA, false); !reflect.DeepEqual(answers(m), []string{"198.51.100.8"}) {
				t.Errorf("%s first: %v %v", name, m.RCode, answers(m))
			}
		}
	})

	t.Run("all down", func(t *testing.T) {
		const timeout = 300 * time.Millisecond
		for name, ups := range map[string][]string{
			"none":   nil,
			"closed": {closedAddr(t), closedAddr(t)},
			"silent": {blackhole(t), blackhole(t), blackhole(t), blackhole(t)},
		} {
			var logged atomic.Int32
			r := NewResolver("sb", Options{Timeout: timeout, Logf: func(string, ...any) { logged.Add(1) }})
			r.SetTable(testTable(ups...))
			start := time.Now()
			m := ask(t, r, "example.test.", dnsmessage.TypeA, false)
			if m.RCode != dnsmessage.RCodeServerFailure {
				t.Errorf("%s: %v", name, m.RCode)
			}
			// The whole budget is 3 timeouts, however many upstreams.
			if d := time.Since(start); d > budgetFactor*timeout+time.Second {
				t.Errorf("%s: took %v", name, d)
			}
			if logged.Load() != 1 {
				t.Errorf("%s: logged %d times, want once", name, logged.Load())
			}
		}
	})
}

func TestMaxInFlight(t *testing.T) {
	release := make(chan struct{})
	slow := startUpstream(t, func(q dnsmessage.Message) *dnsmessage.Message {
		<-release
		return answerWith("198.51.100.9")(q)
	})
	defer close(release) // before the upstream's cleanup
	r := NewResolver("sb", Options{MaxInFlight: 2, Timeout: 20 * time.Second})
	r.SetTable(testTable(slow.addr))

	done := make(chan dnsmessage.Message, 2)
	for _, n := range []string{"slow1.test.", "slow2.test."} {
		go func() {
			b, err := r.Answer(context.Background(), mkQuery(t, 1, n, dnsmessage.TypeA, 0), false)
			if err != nil {
				t.Error(err)
			}
			var m dnsmessage.Message
			_ = m.Unpack(b)
			done <- m
		}()
	}
	for range 2 { // both are held by the upstream
		select {
		case <-slow.seen:
		case <-time.After(10 * time.Second):
			t.Fatal("upstream did not get the queries")
		}
	}
	start := time.Now()
	if m := ask(t, r, "slow3.test.", dnsmessage.TypeA, false); m.RCode != dnsmessage.RCodeServerFailure {
		t.Errorf("third forwarded query: %v, want SERVFAIL", m.RCode)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("SERVFAIL took %v", d)
	}
	if got := answers(ask(t, r, "web.", dnsmessage.TypeA, false)); len(got) != 2 {
		t.Errorf("table answer while slots are full: %v", got)
	}
	if q := slow.drain(); len(q) != 0 {
		t.Errorf("forwarded beyond the bound: %v", q)
	}
	release <- struct{}{} // let one through, then the slot is free again
	if m := <-done; !reflect.DeepEqual(answers(m), []string{"198.51.100.9"}) {
		t.Errorf("held query: %v %v", m.RCode, answers(m))
	}
	release <- struct{}{}
	<-done
}

// serve runs r on fresh 127.0.0.1 sockets until the test ends, and checks
// that both servers then return nil.
func serve(t *testing.T, r *Resolver) (udpAddr, tcpAddr string) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	go func() { errs <- r.ServeUDP(pc) }()
	go func() { errs <- r.ServeTCP(ln) }()
	t.Cleanup(func() {
		pc.Close()
		ln.Close()
		for range 2 {
			select {
			case err := <-errs:
				if err != nil {
					t.Errorf("serve returned %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("server did not stop")
			}
		}
	})
	return pc.LocalAddr().String(), ln.Addr().String()
}

func readFramed(c net.Conn) ([]byte, error) {
	var lb [2]byte
	if _, err := io.ReadFull(c, lb[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint16(lb[:]))
	_, err := io.ReadFull(c, b)
	return b, err
}

func writeFramed(c net.Conn, b []byte) error {
	_, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...))
	return err
}

func udpAsk(t *testing.T, addr string, q []byte) ([]byte, error) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write(q); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	return buf[:n], err
}

func tcpConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

func bigTable(ups ...string) *Table {
	tb := testTable(ups...)
	for i := range 200 {
		tb.Entries = append(tb.Entries, Entry{Network: "n1", NetworkName: "front", Names: []string{"many"}, Addr: netip.AddrFrom4([4]byte{10, 9, byte(i / 100), byte(i % 100)})})
	}
	return tb
}

func TestServe(t *testing.T) {
	up := startUpstream(t, answerWith("198.51.100.7"))
	r := NewResolver("sb", Options{Timeout: 2 * time.Second})
	r.SetTable(bigTable(up.addr))
	udpAddr, tcpAddr := serve(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("go resolver", func(t *testing.T) {
		gr := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			if strings.HasPrefix(network, "udp") {
				return d.DialContext(ctx, "udp", udpAddr)
			}
			return d.DialContext(ctx, "tcp", tcpAddr)
		}}
		ips, err := gr.LookupNetIP(ctx, "ip4", "web.")
		if err != nil || len(ips) != 2 {
			t.Errorf("web: %v %v", ips, err)
		}
		names, err := gr.LookupAddr(ctx, "10.0.2.3")
		if err != nil || !reflect.DeepEqual(names, []string{"db.back."}) {
			t.Errorf("PTR: %v %v", names, err)
		}
		// Truncated over UDP: the Go resolver retries over TCP.
		ips, err = gr.LookupNetIP(ctx, "ip4", "many.")
		if err != nil || len(ips) != 200 {
			t.Errorf("many: %d addresses, %v", len(ips), err)
		}
		ips, err = gr.LookupNetIP(ctx, "ip4", "elsewhere.test.")
		if err != nil || len(ips) != 1 || ips[0].String() != "198.51.100.7" {
			t.Errorf("forwarded: %v %v", ips, err)
		}
	})

	t.Run("udp truncation", func(t *testing.T) {
		b, err := udpAsk(t, udpAddr, mkQuery(t, 9, "many.", dnsmessage.TypeA, 0))
		if err != nil {
			t.Fatal(err)
		}
		m := parse(t, b)
		if !m.Truncated || len(b) > 512 || len(m.Answers) == 0 || len(m.Answers) >= 200 || m.ID != 9 {
			t.Errorf("no EDNS0: TC=%v, %d bytes, %d answers", m.Truncated, len(b), len(m.Answers))
		}
		b, err = udpAsk(t, udpAddr, mkQuery(t, 10, "many.", dnsmessage.TypeA, 1232))
		if err != nil {
			t.Fatal(err)
		}
		if m = parse(t, b); !m.Truncated || len(b) > 1232 || len(m.Answers) < 60 {
			t.Errorf("EDNS0 1232: TC=%v, %d bytes, %d answers", m.Truncated, len(b), len(m.Answers))
		}
		b, err = udpAsk(t, udpAddr, mkQuery(t, 11, "many.", dnsmessage.TypeA, 4096))
		if err != nil {
			t.Fatal(err)
		}
		if m = parse(t, b); m.Truncated || len(m.Answers) != 200 || len(m.Additionals) != 1 {
			t.Errorf("EDNS0 4096: TC=%v, %d answers, %d additionals", m.Truncated, len(m.Answers), len(m.Additionals))
		}
	})

	t.Run("tcp", func(t *testing.T) {
		c := tcpConn(t, tcpAddr)
		// Two queries written back to back on one connection.
		var both []byte
		for i, n := range []string{"many.", "web."} {
			q := mkQuery(t, uint16(i+1), n, dnsmessage.TypeA, 0)
			both = append(binary.BigEndian.AppendUint16(both, uint16(len(q))), q...)
		}
		if _, err := c.Write(both); err != nil {
			t.Fatal(err)
		}
		for _, want := range []struct {
			id uint16
			n  int
		}{{1, 200}, {2, 2}} {
			b, err := readFramed(c)
			if err != nil {
				t.Fatal(err)
			}
			if m := parse(t, b); m.ID != want.id || m.Truncated || len(m.Answers) != want.n {
				t.Errorf("query %d: TC=%v, %d answers", m.ID, m.Truncated, len(m.Answers))
			}
		}
		// A malformed query closes the connection.
		if err := writeFramed(c, []byte{1, 2, 3}); err != nil {
			t.Fatal(err)
		}
		if _, err := readFramed(c); err == nil {
			t.Error("connection still open after a malformed query")
		}
	})

	t.Run("udp malformed dropped", func(t *testing.T) {
		c, err := net.Dial("udp", udpAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Write([]byte{1, 2, 3})
		_, _ = c.Write(mkQuery(t, 42, "web.", dnsmessage.TypeA, 0))
		buf := make([]byte, 512)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if m := parse(t, buf[:n]); m.ID != 42 { // the first reply is for the good query
			t.Errorf("got reply %d", m.ID)
		}
	})
}

func TestTCPLimits(t *testing.T) {
	// Idle connections are closed.
	r := NewResolver("sb", Options{})
	r.idle = 300 * time.Millisecond
	r.SetTable(testTable())
	_, tcpAddr := serve(t, r)
	c := tcpConn(t, tcpAddr)
	start := time.Now()
	if _, err := readFramed(c); err == nil {
		t.Fatal("read from an idle connection succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("idle connection closed after %v", d)
	}

	// At most maxTCPConns at once.
	r = NewResolver("sb", Options{})
	r.SetTable(testTable())
	_, tcpAddr = serve(t, r)
	var conns []net.Conn
	query := func(c net.Conn) error {
		if err := writeFramed(c, mkQuery(t, 3, "web.", dnsmessage.TypeA, 0)); err != nil {
			return err
		}
		_, err := readFramed(c)
		return err
	}
	for range maxTCPConns {
		c := tcpConn(t, tcpAddr)
		if err := query(c); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	if err := query(tcpConn(t, tcpAddr)); err == nil {
		t.Errorf("connection %d served", maxTCPConns+1)
	}
	// Closing one frees a slot (asynchronously: retry until a deadline).
	conns[0].Close()
	deadline := time.Now().Add(10 * time.Second)
	for query(tcpConn(t, tcpAddr)) != nil {
		if time.Now().After(deadline) {
			t.Fatal("slot not freed")
		}
	}
}

func TestSetTableConcurrent(t *testing.T) {
	r := NewResolver("sb", Options{})
	mk := func(a string) *Table {
		return &Table{
			Sandboxes: []Sandbox{{ID: "sb", Networks: []string{"n"}}},
			Entries:   []Entry{{Network: "n", NetworkName: "net", Names: []string{"web"}, Addr: netip.MustParseAddr(a)}},
		}
	}
	tables := []*Table{mk("10.0.0.1"), mk("10.0.0.2")}
	r.SetTable(tables[0])
	udpAddr, _ := serve(t, r)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // bounded, and yielding so that GOMAXPROCS=1 is not starved
		defer wg.Done()
		for i := range 2000 {
			r.SetTable(tables[i%2])
			runtime.Gosched()
		}
	}()
	seen := map[string]bool{}
	c, err := net.Dial("udp", udpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 512)
	for i := range 300 {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(mkQuery(t, uint16(i), "web.", dnsmessage.TypeA, 0)); err != nil {
			t.Fatal(err)
		}
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		m := parse(t, buf[:n])
		got := answers(m)
		if m.ID != uint16(i) || len(got) != 1 {
			t.Fatalf("query %d: id %d, %v", i, m.ID, got)
		}
		seen[got[0]] = true
	}
	wg.Wait()
	for a := range seen {
		if a != "10.0.0.1" && a != "10.0.0.2" {
			t.Errorf("unexpected answer %s", a)
		}
	}
}

func FuzzAnswer(f *testing.F) {
	f.Add(mkQuery(f, 1, "web.", dnsmessage.TypeA, 0))
	f.Add(mkQuery(f, 2, "many.", dnsmessage.TypeA, 1232))
	f.Add(mkQuery(f, 3, "2.1.0.10.in-addr.arpa.", dnsmessage.TypePTR, 0))
	f.Add(mkQuery(f, 4, "3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", dnsmessage.TypePTR, 0))
	f.Add(mkQuery(f, 5, "elsewhere.test.", dnsmessage.TypeMX, 0))
	f.Add([]byte{0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0xff})
	r := NewResolver("sb", Options{}) // no upstreams: forwarding fails at once
	r.SetTable(bigTable())
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, tcp := range []bool{false, true} {
			out, err := r.Answer(context.Background(), b, tcp)
			if err != nil {
				continue
			}
			var p dnsmessage.Parser
			h, err := p.Start(out)
			if err != nil || !h.Response || len(b) < 2 || h.ID != binary.BigEndian.Uint16(b) {
				t.Fatalf("bad response %x to %x: %v", out, b, err)
			}
			if !tcp && len(out) > 65535 {
				t.Fatalf("response of %d bytes", len(out))
			}
		}
	})
}

// A link's alias resolves, in the linking sandbox only, to the target's
// addresses on the link's network (not on the sandbox's other networks);
// a link to a container not there resolves to nothing of ours.
func TestLinks(t *testing.T) {
	up := startUpstream(t, answerWith("198.51.100.7"))
	tbl := testTable(up.addr)
	tbl.Sandboxes[0].Links = []Link{{Network: "n2", Alias: "database", Target: "DB"}, {Network: "n2", Alias: "site", Target: "web"},
		{Network: "n1", Alias: "gone", Target: "nothere"}}
	r := NewResolver("sb", Options{Timeout: 2 * time.Second})
	r.SetTable(tbl)
	A, AAAA := dnsmessage.TypeA, dnsmessage.TypeAAAA
	for _, c := range []struct {
		name string
		typ  dnsmessage.Type
		want []string
	}{
		{"database.", A, []string{"10.0.2.3"}},
		{"database.", AAAA, []string{"fd00::3"}},
		{"SITE.", A, []string{"10.0.2.2"}}, // web's n2 address only
		{"gone.", A, []string{"198.51.100.7"}},
	} {
		if got := answers(ask(t, r, c.name, c.typ, false)); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s %v: %v, want %v", c.name, c.typ, got, c.want)
		}
	}
	o := NewResolver("other", Options{Timeout: 2 * time.Second})
	o.SetTable(tbl)
	if got := answers(ask(t, o, "database.", A, false)); !reflect.DeepEqual(got, []string{"198.51.100.7"}) {
		t.Errorf("another sandbox resolves the link: %v", got)
	}
}
