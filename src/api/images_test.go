package api

import (
	"encoding/json"
	"testing"
)

func TestImageConfigFields(t *testing.T) {
	for _, tc := range []struct {
		version string
		legacy  bool
	}{{"1.41", true}, {"1.49", true}, {"1.50", false}, {"1.52", false}} {
		out, err := imageConfigFields(json.RawMessage(`{"Cmd":["sh"],"Env":["A=b"]}`), tc.version)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"User", "Entrypoint", "Volumes", "StopSignal", "WorkingDir", "OnBuild", "Labels"} {
			if _, ok := m[k]; !ok {
				t.Errorf("%s: Config.%s missing: %s", tc.version, k, out)
			}
		}
		if c, _ := m["Cmd"].([]any); len(c) != 1 || c[0] != "sh" {
			t.Errorf("%s: Cmd lost: %s", tc.version, out)
		}
		if _, ok := m["Hostname"]; ok != tc.legacy {
			t.Errorf("%s: Hostname present %v, want %v", tc.version, ok, tc.legacy)
		}
	}
	// An image without a config at all still gets the fields.
	if out, err := imageConfigFields(nil, "1.52"); err != nil || string(out) == "null" {
		t.Errorf("no config: %s %v", out, err)
	}
}
