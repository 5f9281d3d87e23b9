// Package network owns the engine's networks: the default bridge,
// user-defined bridge networks, the predefined host and none networks,
// the address allocation, each container's network namespace with its
// veth endpoints (its sandbox), the /etc files that go with them, and the
// firewall rules that publish ports without a proxy process.
//
// The container code asks for a sandbox (Join) when a container starts and
// gives it back (Leave) when it ends; nothing else of networking is its
// business. Everything the manager creates in the kernel is recorded in
// the database first, so a daemon that crashed, or a device that lost
// power, rebuilds what is missing and removes what is left over at the
// next start (New, then Reconcile).
package network

import (
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"sync"

	"github.com/balena-os/balena-engine/src/network/dns"
	"github.com/balena-os/balena-engine/src/network/firewall"
	"github.com/balena-os/balena-engine/src/network/ipam"
	bolt "go.etcd.io/bbolt"
)

// Options are the daemon's network settings, dockerd's flags.
type Options struct {
	DB       *bolt.DB
	ExecRoot string // <exec-root>/netns holds the namespaces (a tmpfs)
	Log      *slog.Logger
	// Bridge is the default bridge's device (-b); "none" disables the
	// default bridge network.
	Bridge string
	// BIP is the default bridge's address and prefix (--bip); FixedCIDR
	// limits its containers' addresses (--fixed-cidr).
	BIP       netip.Prefix
	FixedCIDR netip.Prefix
	// IPv6 gives the default bridge IPv6 (--ipv6), from FixedCIDRv6
	// (--fixed-cidr-v6) or a unique local /64 of its own.
	IPv6        bool
	FixedCIDRv6 netip.Prefix
	MTU         int
	// Pools are where subnets of networks without one come from
	// (--default-address-pool); nil: Docker's.
	Pools      []ipam.Pool
	ICC        bool // --icc
	IPMasq     bool // --ip-masq
	IPForward  bool // --ip-forward
	IPTables   bool // --iptables
	DNS        []string
	DNSSearch  []string
	DNSOptions []string
	// Firewall, when IPTables is set; nil makes the one FirewallBackend
	// names.
	Firewall firewall.Firewall
	// FirewallBackend is --firewall-backend: "iptables" (also "") or
	// "nftables".
	FirewallBackend string
	// PublishDNS hands the name resolution table to whatever serves it
	// in the containers' namespaces (the container monitor, which
	// outlives the daemon); nil: names are not served.
	PublishDNS func(*dns.Table) error
}

// DefaultBridge is the default bridge's device, balenaEngine's name.
const DefaultBridge = "balena0"

// Names and drivers of the predefined networks.
const (
	NameBridge = "bridge"
	NameHost   = "host"
	NameNone   = "none"

	DriverBridge = "bridge"
	DriverHost   = "host"
	DriverNull   = "null"
)

// Manager keeps the networks and the containers' sandboxes.
type Manager struct {
	opts Options
	db   *bolt.DB
	log  *slog.Logger
	fw   firewall.Firewall

	// mu serialises every change: an address is chosen and recorded in
	// one critical section, and the firewall is applied from the records.
	mu sync.Mutex
}

var (
	bucketNetworks  = []byte("networks")
	bucketSandboxes = []byte("sandboxes")
)

// New opens the networks, making the predefined ones on first use, and
// brings the kernel in line with the records: every bridge network's
// device exists with its address, and the firewall holds the rules of
// every recorded network and published port.
func New(opts Options) (*Manager, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Bridge == "" {
		opts.Bridge = DefaultBridge
	}
	if opts.Pools == nil {
		opts.Pools = ipam.DefaultPools
	}
	m := &Manager{opts: opts, db: opts.DB, log: opts.Log}
	if err := m.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketNetworks, bucketSandboxes} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("network store: %w", err)
	}
	if opts.IPTables {
		m.fw = opts.Firewall
		if m.fw == nil {
			fw, err := firewall.New(firewall.Options{Backend: opts.FirewallBackend, StateDir: filepath.Join(opts.ExecRoot, "firewall")})
			if err != nil {
				return nil, err
			}
			m.fw = fw
		}
	}
	if err := m.predefine(); err != nil {
		return nil, err
	}
	if err := m.restore(); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Manager) netnsPath(containerID string) string {
	return filepath.Join(m.opts.ExecRoot, "netns", containerID)
}

// IPTablesEnabled says whether the engine manages the firewall.
func (m *Manager) IPTablesEnabled() bool { return m.fw != nil }
