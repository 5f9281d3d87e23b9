package network

import (
	"encoding/json"
	"fmt"
	"net/netip"

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
func (n *Network) ranges() []ipam.Range {
	var out []ipam.Range
	for _, c := range n.IPAM.Config {
		if !c.Subnet.IsValid() || !c.Subnet.Addr().Is4() {
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
	return firewall.Network{Bridge: n.Device, Subnet: rs[0].Subnet.Masked(), Masquerade: optBool(n.Options, optMasq, true),
		ICC: optBool(n.Options, optICC, true), Internal: n.Internal}, true
}

// sandbox is a container's network namespace and its endpoints.
type sandbox struct {
	ContainerID string
	Name        string
	Netns       string // "" for host and none
	Endpoints   []endpoint
	Ports       []port
}

// endpoint is one network's interface in a sandbox.
type endpoint struct {
	NetworkID  string
	EndpointID string
	IfName     string // in the container
	Veth       string // on the host
	Addr       netip.Prefix
	Gateway    netip.Addr
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
	for _, n := range nets {
		if fn, ok := n.fwNetwork(); ok {
			st.Networks = append(st.Networks, fn)
		}
	}
	sbs, err := m.allSandboxes(tx)
	if err != nil {
		return st, err
	}
	for _, s := range sbs {
		for _, p := range s.Ports {
			st.Ports = append(st.Ports, p.Rule)
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
