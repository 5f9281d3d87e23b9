package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/common"
)

// endless is a JSON document that never ends: a string of x's.
type endless struct{ started bool }

func (e *endless) Read(p []byte) (int, error) {
	n := 0
	if !e.started {
		n = copy(p, `{"Image":"`)
		e.started = true
	}
	for i := n; i < len(p); i++ {
		p[i] = 'x'
	}
	return len(p), nil
}

// A JSON request body is read up to a bound: a larger one is refused with
// 413 after at most that much, however long the client goes on.
func TestRequestBodyBounded(t *testing.T) {
	s := &Server{cfg: Config{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, mux: http.NewServeMux()}
	s.handle("POST /containers/create", func(w http.ResponseWriter, r *http.Request) error {
		var v map[string]any
		if err := decodeBody(r, &v); err != nil {
			return err
		}
		return writeJSON(w, http.StatusCreated, v)
	})
	ts := httptest.NewServer(s)
	defer ts.Close()
	post := func(body io.Reader) (int, string) {
		t.Helper()
		resp, err := http.Post(ts.URL+"/containers/create", "application/json", body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e common.ErrorResponse
		b, _ := io.ReadAll(resp.Body)
		json.Unmarshal(b, &e)
		return resp.StatusCode, e.Message
	}
	if code, msg := post(strings.NewReader(`{"Image":"` + strings.Repeat("x", maxBody-100) + `"}`)); code != http.StatusCreated {
		t.Errorf("a body just under the bound: %d %q", code, msg)
	}

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	code, msg := post(io.LimitReader(&endless{}, 256<<20))
	runtime.ReadMemStats(&ms)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(msg, "request body is larger than the limit of 4194304 bytes") {
		t.Errorf("a 256 MiB body: %d %q", code, msg)
	}
	// The client's side reads its own body in chunks too: what was
	// allocated is the bound and buffers, not the body.
	t.Logf("a 256 MiB body: %d %q, %d MiB allocated", code, msg, (ms.TotalAlloc-before)>>20)
	if a := ms.TotalAlloc - before; a > 32<<20 {
		t.Errorf("a 256 MiB body allocated %d MiB", a>>20)
	}

	if code, msg := post(strings.NewReader("")); code != http.StatusBadRequest || msg != "invalid JSON: got EOF while reading request body" {
		t.Errorf("no body: %d %q", code, msg)
	}
	if code, msg := post(strings.NewReader("{")); code != http.StatusBadRequest || !strings.HasPrefix(msg, "invalid JSON: ") {
		t.Errorf("a broken body: %d %q", code, msg)
	}
	if code, msg := post(strings.NewReader(`{"Image":"x"} {"Image":"y"}`)); code != http.StatusBadRequest || msg != "unexpected content after JSON" {
		t.Errorf("two JSON values: %d %q", code, msg)
	}
}
