// Package ipam picks subnets for networks and addresses for endpoints.
// It holds no state: the network manager keeps what is allocated in its
// database, in the same transaction as the endpoint that uses it, so an
// address is never handed out twice, not even across a power cut.
package ipam

import (
	"errors"
	"fmt"
	"net/netip"
)

// Pool is a range that default subnets are cut from: Base split into
// subnets of prefix length Size, as dockerd's --default-address-pool.
type Pool struct {
	Base netip.Prefix
	Size int
}

// DefaultPools are Docker's, in Docker's order: 172.17-31.0.0/16, then
// 192.168.0.0/16 in /20s.
var DefaultPools = func() []Pool {
	var p []Pool
	for i := 17; i <= 31; i++ {
		p = append(p, Pool{Base: netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i), 0, 0}), 16), Size: 16})
	}
	return append(p, Pool{Base: netip.MustParsePrefix("192.168.0.0/16"), Size: 20})
}()

// ErrNoSubnet is the answer when every default subnet is taken; Docker's
// wording.
var ErrNoSubnet = errors.New("all predefined address pools have been fully subnetted")

// PickSubnet returns the first subnet of the pools, in order, that
// overlaps none of taken (other networks, the host's routes and
// nameservers).
func PickSubnet(pools []Pool, taken []netip.Prefix) (netip.Prefix, error) {
	for _, pool := range pools {
		base := pool.Base.Masked()
		if pool.Size < base.Bits() || pool.Size > base.Addr().BitLen() {
			continue
		}
		n := 1 << min(pool.Size-base.Bits(), 24) // bounded: a /8 in /32s is not walked
		a := base.Addr()
		for range n {
			p := netip.PrefixFrom(a, pool.Size)
			if !overlapsAny(p, taken) {
				return p, nil
			}
			next, ok := addOffset(a, uint64(1)<<(a.BitLen()-pool.Size))
			if !ok {
				break
			}
			a = next
		}
	}
	return netip.Prefix{}, ErrNoSubnet
}

func overlapsAny(p netip.Prefix, taken []netip.Prefix) bool {
	for _, t := range taken {
		if t.IsValid() && p.Overlaps(t) {
			return true
		}
	}
	return false
}

// Overlaps reports which of others p overlaps, for Docker's error.
func Overlaps(p netip.Prefix, others []netip.Prefix) (netip.Prefix, bool) {
	for _, o := range others {
		if o.IsValid() && p.Overlaps(o) {
			return o, true
		}
	}
	return netip.Prefix{}, false
}

// Range is one subnet of a network, as its IPAM configuration gives it.
type Range struct {
	Subnet  netip.Prefix
	IPRange netip.Prefix // where dynamic addresses come from; zero: the whole subnet
	Gateway netip.Addr   // zero: the subnet's first address
	Aux     []netip.Addr // reserved, never handed out
}

// Validate checks a range the way Docker does, with Docker's messages.
func (r Range) Validate() error {
	if !r.Subnet.IsValid() {
		return errors.New("invalid subnet")
	}
	if r.IPRange.IsValid() && (r.IPRange.Bits() < r.Subnet.Bits() || !r.Subnet.Contains(r.IPRange.Addr())) {
		return fmt.Errorf("invalid pool request: Invalid Address: %s is not a sub-range of %s", r.IPRange, r.Subnet)
	}
	if r.Gateway.IsValid() && !r.Subnet.Contains(r.Gateway) {
		return fmt.Errorf("invalid pool request: Invalid Address: %s is not part of %s", r.Gateway, r.Subnet)
	}
	for _, a := range r.Aux {
		if !r.Subnet.Contains(a) {
			return fmt.Errorf("invalid pool request: Invalid Address: %s is not part of %s", a, r.Subnet)
		}
	}
	return nil
}

// DefaultGateway is the subnet's first host address, Docker's choice.
func DefaultGateway(subnet netip.Prefix) netip.Addr {
	return subnet.Masked().Addr().Next()
}

// Allocate returns the first free address of the range (from IPRange if
// set) that is not in use, not the gateway, not reserved, not the
// subnet's network or broadcast address.
func Allocate(r Range, inUse func(netip.Addr) bool) (netip.Addr, error) {
	from := r.Subnet.Masked()
	if r.IPRange.IsValid() {
		from = r.IPRange.Masked()
	}
	gw := r.Gateway
	if !gw.IsValid() {
		gw = DefaultGateway(r.Subnet)
	}
	for a := from.Addr(); from.Contains(a); a = a.Next() {
		if !a.IsValid() {
			break
		}
		if a == gw || r.reserved(a) || inUse(a) || !r.Usable(a) {
			continue
		}
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("no available addresses on this pool (%s)", from)
}

// Usable says whether a is a host address of the subnet: neither its
// network address nor (IPv4) its broadcast address.
func (r Range) Usable(a netip.Addr) bool {
	s := r.Subnet.Masked()
	if !s.Contains(a) || a == s.Addr() {
		return false
	}
	if a.Is4() && s.Bits() < 31 {
		if last, ok := addOffset(s.Addr(), uint64(1)<<(32-s.Bits())-1); ok && a == last {
			return false
		}
	}
	return true
}

func (r Range) reserved(a netip.Addr) bool {
	for _, x := range r.Aux {
		if x == a {
			return true
		}
	}
	return false
}

// addOffset adds n to a, reporting false on overflow.
func addOffset(a netip.Addr, n uint64) (netip.Addr, bool) {
	b := a.AsSlice()
	carry := n
	for i := len(b) - 1; i >= 0 && carry > 0; i-- {
		s := uint64(b[i]) + carry&0xff
		b[i] = byte(s)
		carry = carry>>8 + s>>8
	}
	if carry > 0 {
		return netip.Addr{}, false
	}
	r, _ := netip.AddrFromSlice(b)
	return r, true
}
