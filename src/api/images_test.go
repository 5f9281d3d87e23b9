package api

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/balena-os/balena-engine/src/apiversion"
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

// Before API 1.45 Docker's image inspect has Container and an empty
// ContainerConfig (Compose 1.29 reads its Volumes); from 1.45 on neither.
// Before 1.44 VirtualSize too, the Size.
func TestLegacyImageFields(t *testing.T) {
	for _, tc := range []struct {
		version string
		legacy  bool
	}{{"1.24", true}, {"1.38", true}, {"1.44", true}, {"1.45", false}, {"1.52", false}} {
		out := map[string]json.RawMessage{"Id": json.RawMessage(`"sha256:x"`), "Size": json.RawMessage("42")}
		legacyImageFields(out, tc.version)
		if vs, ok := out["VirtualSize"]; ok != (apiversion.Compare(tc.version, "1.44") < 0) || ok && string(vs) != "42" {
			t.Errorf("%s: VirtualSize %s (present %v)", tc.version, vs, ok)
		}
		if _, ok := out["Container"]; ok != tc.legacy {
			t.Errorf("%s: Container present %v, want %v", tc.version, ok, tc.legacy)
		}
		cc, ok := out["ContainerConfig"]
		if ok != tc.legacy {
			t.Errorf("%s: ContainerConfig present %v, want %v", tc.version, ok, tc.legacy)
		}
		if !ok {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(cc, &m); err != nil {
			t.Fatalf("%s: %v: %s", tc.version, err, cc)
		}
		if v, ok := m["Volumes"]; !ok || v != nil {
			t.Errorf("%s: ContainerConfig.Volumes = %v (present %v), want null", tc.version, v, ok)
		}
		if len(m) != 17 {
			t.Errorf("%s: ContainerConfig has %d fields, want Docker's 17: %s", tc.version, len(m), cc)
		}
	}
}

// Docker's strslice: a string or a list (balena's agent sends
// "Entrypoint": "").
func TestStrSlices(t *testing.T) {
	for in, want := range map[string]string{
		`{"Image":"x","Entrypoint":"","Cmd":"sh"}`:    `{"Cmd":["sh"],"Entrypoint":[""],"Image":"x"}`,
		`{"Image":"x","Entrypoint":["a"],"Cmd":null}`: `{"Image":"x","Entrypoint":["a"],"Cmd":null}`,
		`[1,2]`: `[1,2]`,
	} {
		if got := string(strSlices(json.RawMessage(in), "Entrypoint", "Cmd", "Shell")); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

// Query booleans are read as Docker reads them, whatever the case
// (docker-py sends "False", which must not force a removal).
func TestBoolParam(t *testing.T) {
	for v, want := range map[string]bool{"": false, "0": false, "false": false, "False": false, "FALSE": false, "no": false, "none": false,
		"1": true, "true": true, "True": true, "yes": true} {
		r := httptest.NewRequest("GET", "/x?force="+v, nil)
		if got := boolParam(r, "force"); got != want {
			t.Errorf("force=%q: %v, want %v", v, got, want)
		}
	}
}
