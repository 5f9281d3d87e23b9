package ipam

import (
	"net/netip"
	"testing"
)

func TestPickSubnet(t *testing.T) {
	p := netip.MustParsePrefix
	for _, tc := range []struct {
		taken []netip.Prefix
		want  string
	}{
		{nil, "172.17.0.0/16"},
		{[]netip.Prefix{p("172.17.0.0/16")}, "172.18.0.0/16"},
		{[]netip.Prefix{p("172.17.5.0/24"), p("172.18.0.1/32")}, "172.19.0.0/16"},
		{[]netip.Prefix{p("172.16.0.0/12")}, "192.168.0.0/20"},
		{[]netip.Prefix{p("172.16.0.0/12"), p("192.168.0.0/20"), p("192.168.17.0/24")}, "192.168.32.0/20"},
	} {
		got, err := PickSubnet(DefaultPools, tc.taken)
		if err != nil || got.String() != tc.want {
			t.Errorf("taken %v: %v %v, want %s", tc.taken, got, err, tc.want)
		}
	}
	if _, err := PickSubnet(DefaultPools, []netip.Prefix{p("0.0.0.0/0")}); err != ErrNoSubnet {
		t.Errorf("everything taken: %v", err)
	}
	// A custom pool, as --default-address-pool base=10.10.0.0/16,size=24.
	got, err := PickSubnet([]Pool{{p("10.10.0.0/16"), 24}}, []netip.Prefix{p("10.10.0.0/24")})
	if err != nil || got.String() != "10.10.1.0/24" {
		t.Errorf("custom pool: %v %v", got, err)
	}
}

func TestAllocate(t *testing.T) {
	used := map[netip.Addr]bool{}
	inUse := func(a netip.Addr) bool { return used[a] }
	r := Range{Subnet: netip.MustParsePrefix("10.114.104.0/30")}
	a, err := Allocate(r, inUse)
	if err != nil || a.String() != "10.114.104.2" {
		t.Fatalf("first: %v %v", a, err)
	}
	used[a] = true
	// .3 is the broadcast address, .1 the gateway: the /30 is full.
	if a, err := Allocate(r, inUse); err == nil {
		t.Fatalf("full /30 gave %v", a)
	}
	r = Range{Subnet: netip.MustParsePrefix("172.20.0.0/16"), IPRange: netip.MustParsePrefix("172.20.5.0/24"),
		Gateway: netip.MustParsePrefix("172.20.5.0/32").Addr(), Aux: []netip.Addr{netip.MustParseAddr("172.20.5.1")}}
	if a, err := Allocate(r, inUse); err != nil || a.String() != "172.20.5.2" {
		t.Fatalf("ip-range with aux: %v %v", a, err)
	}
}

func TestValidate(t *testing.T) {
	p, a := netip.MustParsePrefix, netip.MustParseAddr
	for _, tc := range []struct {
		r  Range
		ok bool
	}{
		{Range{Subnet: p("10.0.0.0/24"), Gateway: a("10.0.0.1")}, true},
		{Range{Subnet: p("10.0.0.0/24"), Gateway: a("10.0.1.1")}, false},
		{Range{Subnet: p("10.0.0.0/24"), IPRange: p("10.0.0.128/25")}, true},
		{Range{Subnet: p("10.0.0.0/24"), IPRange: p("10.0.0.0/16")}, false},
		{Range{Subnet: p("10.0.0.0/24"), Aux: []netip.Addr{a("10.9.0.1")}}, false},
	} {
		if err := tc.r.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc.r, err)
		}
	}
}
