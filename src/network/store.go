package network

import (
	"encoding/json"
	"fmt"
	"net/netip"

	"github.com/balena-os/balena-engine/src/network/dns"
	"github.com/balena-os/balena-engine/src/network/firewall"
	"github.com/balena-os/balena-engine/src/network/ipam"
	networktypes "github.com/moby/moby/api/types/network"
	bolt "go.etcd.io/bbolt"
)

// Network is a network's record: what inspect shows (the request as it
// was sent, so that a client comparing its request with the answer finds
// them equal) and the device that carries it.
type Network struct {
	networktypes.Network
	Device  string // the bridge; "" for host and none
	Default bool   // the default bridge network
}

// ranges are the network's IPv4 subnets, as allocation sees them.
func (n *Network) ranges() []ipam.Range { return n.rangesOf(false) }

// ranges6 are its IPv6 subnets; none unless IPv6 is enabled.
func (n *Network) ranges6() []ipam.Range {
	if !n.EnableIPv6 {
		return nil
	}
	return n.rangesOf(true)
}

func (n *Network) rangesOf(v6 bool) []ipam.Range {
	var out []ipam.Range
	for _, c := range n.IPAM.Config {
		if !c.Subnet.IsValid() || c.Subnet.Addr().Is6() != v6 {
			continue
		}
		r := ipam.Range{Subnet: c.Subnet, IPRange: c.IPRange, Gateway: c.Gateway}
		if !r.Gateway.IsValid() {
			r.Gateway = ipam.DefaultGateway(c.Subnet)
		}
		for _, a := range c.AuxAddress {
			r.Aux = append(r.Aux, a)
		}
		out = append(out, r)
	}
	return out
}

// fwNetwork is the network as the firewall sees it.
func (n *Network) fwNetwork() (firewall.Network, bool) {
	rs := n.ranges()
	if n.Device == "" || len(rs) == 0 {
		return firewall.Network{}, false
	}
	fn := firewall.Network{Bridge: n.Device, Subnet: rs[0].Subnet.Masked(), Masquerade: optBool(n.Options, optMasq, true),
		ICC: optBool(n.Options, optICC, true), Internal: n.Internal}
	if r6 := n.ranges6(); len(r6) > 0 {
		fn.Subnet6 = r6[0].Subnet.Masked()
	}
	return fn, true
}

// sandbox is a container's network namespace and its endpoints.
type sandbox struct {
	ContainerID string
	Name        string
	Netns       string // "" for host and none
	Endpoints   []endpoint
	Ports       []port
	Links       []LegacyLink `json:",omitempty"`
	// Upstreams are the nameservers its resolver at 127.0.0.11 forwards
	// to, for a container on a user network.
	Upstreams []string `json:",omitempty"`
}

// resolved says whether the sandbox has an endpoint on a user network:
// its names are served at 127.0.0.11.
func (s *sandbox) resolved() bool { return len(s.Upstreams) > 0 }

// endpoint is one network's interface in a sandbox.
type endpoint struct {
	NetworkID  string
	EndpointID string
	IfName     string // in the container
	Veth       string // on the host
	Addr       netip.Prefix
	Gateway    netip.Addr
	Addr6      netip.Prefix `json:",omitzero"` // on a network with IPv6
	Gateway6   netip.Addr   `json:",omitzero"`
	MAC        string
	Aliases    []string
	DNSNames   []string
	Config     *networktypes.EndpointSettings // as the user gave it
}

// port is one published port: the container port as the user wrote it
// and the host binding it got.
type port struct {
	Container string // "80/tcp"
	HostIP    netip.Addr
	HostPort  uint16
	Rule      firewall.Port
}

func putJSON(tx *bolt.Tx, bucket []byte, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put([]byte(key), b)
}

func (m *Manager) allNetworks(tx *bolt.Tx) ([]*Network, error) {
	var out []*Network
	err := tx.Bucket(bucketNetworks).ForEach(func(k, v []byte) error {
		var n Network
		if err := json.Unmarshal(v, &n); err != nil {
			return fmt.Errorf("network record %s: %w", k, err)
		}
		out = append(out, &n)
		return nil
	})
	return out, err
}

func (m *Manager) allSandboxes(tx *bolt.Tx) ([]*sandbox, error) {
	var out []*sandbox
	err := tx.Bucket(bucketSandboxes).ForEach(func(k, v []byte) error {
		var s sandbox
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("sandbox record %s: %w", k, err)
		}
		out = append(out, &s)
		return nil
	})
	return out, err
}

func (m *Manager) getSandbox(tx *bolt.Tx, id string) (*sandbox, error) {
	b := tx.Bucket(bucketSandboxes).Get([]byte(id))
	if b == nil {
		return nil, nil
	}
	var s sandbox
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("sandbox record %s: %w", id, err)
	}
	return &s, nil
}

// firewallState is every recorded network and published port.
func (m *Manager) firewallState(tx *bolt.Tx) (firewall.State, error) {
	var st firewall.State
	nets, err := m.allNetworks(tx)
	if err != nil {
		return st, err
	}
	var bridge *Network // the default one: legacy links are there
	for _, n := range nets {
		if fn, ok := n.fwNetwork(); ok {
			st.Networks = append(st.Networks, fn)
			if n.Default {
				bridge = n
			}
		}
	}
	sbs, err := m.allSandboxes(tx)
	if err != nil {
		return st, err
	}
	onBridge := map[string]*endpoint{} // container ID -> its default bridge endpoint
	for _, s := range sbs {
		for _, p := range s.Ports {
			st.Ports = append(st.Ports, p.Rule)
		}
		for i, e := range s.Endpoints {
			if bridge != nil && e.NetworkID == bridge.ID {
				onBridge[s.ContainerID] = &s.Endpoints[i]
			}
		}
	}
	for _, s := range sbs {
		from := onBridge[s.ContainerID]
		for _, l := range s.Links {
			to := onBridge[l.ContainerID]
			if from == nil || to == nil {
				continue // not both on the bridge (the other one stopped)
			}
			for p := range l.Exposed {
				if p.Proto() != "tcp" && p.Proto() != "udp" {
					continue
				}
				st.Links = append(st.Links, firewall.Link{Bridge: bridge.Device, From: from.Addr.Addr(), To: to.Addr.Addr(), Proto: string(p.Proto()), Port: p.Num()})
				if from.Addr6.IsValid() && to.Addr6.IsValid() {
					st.Links = append(st.Links, firewall.Link{Bridge: bridge.Device, From: from.Addr6.Addr(), To: to.Addr6.Addr(), Proto: string(p.Proto()), Port: p.Num()})
				}
			}
		}
	}
	return st, nil
}

// applyFirewall makes the firewall match the records; a no-op without
// --iptables.
func (m *Manager) applyFirewall() error {
	if m.fw == nil {
		return nil
	}
	var st firewall.State
	if err := m.db.View(func(tx *bolt.Tx) (err error) { st, err = m.firewallState(tx); return err }); err != nil {
		return err
	}
	return m.fw.Apply(st)
}

// dnsTable is every sandbox on a user network, with the names of every
// endpoint on one.
func (m *Manager) dnsTable(tx *bolt.Tx) (*dns.Table, error) {
	t := &dns.Table{Sandboxes: []dns.Sandbox{}, Entries: []dns.Entry{}}
	sbs, err := m.allSandboxes(tx)
	if err != nil {
		return nil, err
	}
	nets, err := m.allNetworks(tx)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, n := range nets {
		if !n.Default {
			names[n.ID] = n.Name
		}
	}
	for _, s := range sbs {
		var on []string
		for _, e := range s.Endpoints {
			if name, ok := names[e.NetworkID]; ok {
				on = append(on, e.NetworkID)
				t.Entries = append(t.Entries, dns.Entry{Network: e.NetworkID, NetworkName: name, Names: e.DNSNames, Addr: e.Addr.Addr()})
				if e.Addr6.IsValid() {
					t.Entries = append(t.Entries, dns.Entry{Network: e.NetworkID, NetworkName: name, Names: e.DNSNames, Addr: e.Addr6.Addr()})
				}
			}
		}
		if len(on) > 0 && s.resolved() {
			var links []dns.Link
			for _, e := range s.Endpoints {
				if _, user := names[e.NetworkID]; user && e.Config != nil {
					for _, l := range e.Config.Links {
						if target, alias, err := ParseLink(l); err == nil {
							links = append(links, dns.Link{Network: e.NetworkID, Alias: alias, Target: target})
						}
					}
				}
			}
			t.Sandboxes = append(t.Sandboxes, dns.Sandbox{ID: s.ContainerID, Netns: s.Netns, Networks: on, Upstreams: s.Upstreams, Links: links})
		}
	}
	return t, nil
}

// publishDNS hands the current table on; force also hands an empty one
// (a daemon start, where the server may still hold names of containers
// that ended while the daemon was away).
func (m *Manager) publishDNS(force bool) error {
	if m.opts.PublishDNS == nil {
		return nil
	}
	var t *dns.Table
	if err := m.db.View(func(tx *bolt.Tx) (err error) { t, err = m.dnsTable(tx); return err }); err != nil {
		return err
	}
	if len(t.Sandboxes) == 0 && !force {
		return nil
	}
	return m.opts.PublishDNS(t)
}

// SyncDNS hands the table on at the daemon's start, after the sandboxes
// of ended containers were dropped; force when a monitor was found
// running (it may serve names that are gone).
func (m *Manager) SyncDNS(force bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.publishDNS(force); err != nil {
		m.log.Warn("container name resolution", "err", err)
	}
}
