package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
)

// A prune at API 1.42 and later removes unused anonymous volumes only
// (all unused ones with the filter all=true); before 1.42 every unused
// volume, as Docker (docker 20.10's volume prune removes named ones).
func TestVolumePruneByAPIVersion(t *testing.T) {
	s, _ := fuzzServer(t) // "target" uses an anonymous volume (the image's /data)
	create := func(name string) {
		t.Helper()
		if code, body := request(s, "POST", "/v1.41/volumes/create", `{"Name":"`+name+`"}`); code != http.StatusCreated {
			t.Fatalf("create %s: %d %s", name, code, body)
		}
	}
	prune := func(path string) []string {
		t.Helper()
		code, body := request(s, "POST", path, "")
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", path, code, body)
		}
		var rep struct{ VolumesDeleted []string }
		if err := json.Unmarshal(body, &rep); err != nil {
			t.Fatal(err)
		}
		slices.Sort(rep.VolumesDeleted)
		return rep.VolumesDeleted
	}
	create("named")
	for _, path := range []string{"/v1.42/volumes/prune", "/v1.56/volumes/prune", "/volumes/prune"} {
		if got := prune(path); len(got) != 0 {
			t.Errorf("%s removed %v, want nothing (named volumes stay)", path, got)
		}
	}
	if got := prune("/v1.41/volumes/prune"); !slices.Equal(got, []string{"named"}) {
		t.Errorf("/v1.41/volumes/prune removed %v, want [named]", got)
	}
	create("named2")
	if got := prune(`/v1.50/volumes/prune?filters={"all":["true"]}`); !slices.Equal(got, []string{"named2"}) {
		t.Errorf("prune all=true at 1.50 removed %v, want [named2]", got)
	}
	create("named3")
	if got := prune("/v1.24/volumes/prune"); !slices.Equal(got, []string{"named3"}) {
		t.Errorf("/v1.24/volumes/prune removed %v, want [named3]", got)
	}
}
