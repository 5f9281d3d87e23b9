package api

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/balena-os/balena-engine/src/apiversion"
)

// GET /info as Docker answers: the local volume driver among the plugins,
// IPv4Forwarding as the kernel has it, and before API 1.50 the bridge
// netfilter settings (docker 20.10's info warns when they are missing).
func TestInfoDockerFields(t *testing.T) {
	s, _ := fuzzServer(t)
	b, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	forwarding := strings.TrimSpace(string(b)) == "1"
	for _, v := range []string{"1.24", "1.41", "1.49", "1.50", "1.56"} {
		code, body := request(s, "GET", "/v"+v+"/info", "")
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", v, code, body)
		}
		var in map[string]any
		if err := json.Unmarshal(body, &in); err != nil {
			t.Fatal(err)
		}
		plugins, _ := in["Plugins"].(map[string]any)
		if vol, _ := json.Marshal(plugins["Volume"]); string(vol) != `["local"]` {
			t.Errorf("%s: Plugins.Volume = %s, want [\"local\"]", v, vol)
		}
		if in["IPv4Forwarding"] != forwarding {
			t.Errorf("%s: IPv4Forwarding = %v, want %v (the kernel's)", v, in["IPv4Forwarding"], forwarding)
		}
		for _, k := range []string{"BridgeNfIptables", "BridgeNfIp6tables"} {
			_, has := in[k].(bool)
			if want := apiversion.Compare(v, "1.50") < 0; has != want {
				t.Errorf("%s: %s present %v, want %v", v, k, has, want)
			}
		}
		if in["OSType"] != "linux" || in["Images"] != float64(1) || in["Containers"] != float64(1) {
			t.Errorf("%s: OSType %v Images %v Containers %v", v, in["OSType"], in["Images"], in["Containers"])
		}
	}
}
