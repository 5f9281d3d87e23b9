package network

import (
	"strings"
	"testing"

	"github.com/balena-os/balena-engine/src/errdefs"
)

func TestCheckOptions(t *testing.T) {
	for _, c := range []struct {
		key, value string
		kind       errdefs.Kind
		msg        string
	}{
		{optBridgeName, "br-x", errdefs.KindUnknown, ""},
		{optMTU, "1400", errdefs.KindUnknown, ""},
		{optMTU, "big", errdefs.KindInvalidParameter, "failed to parse com.docker.network.driver.mtu value: big"},
		{optICC, "false", errdefs.KindUnknown, ""},
		{optMasq, "maybe", errdefs.KindInvalidParameter, "failed to parse com.docker.network.bridge.enable_ip_masquerade value: maybe"},
		{optHostBinding, "127.0.0.1", errdefs.KindUnknown, ""},
		{optHostBinding, "localhost", errdefs.KindInvalidParameter, "(nil ip)"},
		{optIfacePrefix, "ext", errdefs.KindUnknown, ""},
		{optEnableIPv6, "true", errdefs.KindUnknown, ""},
		{optGwMode4, "nat", errdefs.KindUnknown, ""},
		{optGwMode4, "routed", errdefs.KindNotImplemented, "network option com.docker.network.bridge.gateway_mode_ipv4=routed is not implemented"},
		{optGwMode6, "wormhole", errdefs.KindInvalidParameter, "(unknown gateway mode wormhole)"},
		{optInhibit4, "false", errdefs.KindUnknown, ""},
		{optInhibit4, "true", errdefs.KindNotImplemented, "inhibit_ipv4=true is not implemented"},
		{optDefault, "true", errdefs.KindNotImplemented, "default_bridge=true is not implemented"},
		{optTrusted, "", errdefs.KindUnknown, ""},
		{optTrusted, "eth1:eth2", errdefs.KindNotImplemented, "trusted_host_interfaces=eth1:eth2 is not implemented"},
		{optHostIPv4, "192.0.2.1", errdefs.KindNotImplemented, "host_ipv4=192.0.2.1 is not implemented"},
		{"com.docker.network.bridge.enable_icc_typo", "true", errdefs.KindInvalidParameter, `network option "com.docker.network.bridge.enable_icc_typo" is not an option of the bridge driver`},
		{"parent", "eth0", errdefs.KindInvalidParameter, `network option "parent" is not an option of the bridge driver`},
	} {
		err := checkOptions(map[string]string{c.key: c.value})
		if c.msg == "" {
			if err != nil {
				t.Errorf("%s=%s: %v", c.key, c.value, err)
			}
			continue
		}
		if err == nil || errdefs.KindOf(err) != c.kind || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s=%s: %v (%v), want %v %q", c.key, c.value, err, errdefs.KindOf(err), c.kind, c.msg)
		}
	}
}

func TestFreeIfName(t *testing.T) {
	taken := map[string]bool{"eth0": true, "ext0": true, "eth2": true}
	for prefix, want := range map[string]string{"eth": "eth1", "ext": "ext1", "lan": "lan0"} {
		if got := freeIfName(taken, prefix); got != want {
			t.Errorf("%s: %s, want %s", prefix, got, want)
		}
	}
}
