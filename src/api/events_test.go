package api

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/balena-os/balena-engine/src/events"
	eventtypes "github.com/moby/moby/api/types/events"
)

func TestEventsStream(t *testing.T) {
	log, ts := eventsServer(t)
	start := time.Now()
	log.Publish(eventtypes.ImageEventType, eventtypes.ActionPull, "busybox:latest", map[string]string{"name": "busybox:latest"})
	log.Publish(eventtypes.ImageEventType, eventtypes.ActionTag, "sha256:abc", map[string]string{"name": "mine:1"})
	log.Publish(eventtypes.ContainerEventType, eventtypes.ActionStart, "c1", map[string]string{"image": "busybox"})

	get := func(q url.Values) []eventtypes.Message {
		t.Helper()
		resp, err := http.Get(ts.URL + "/v1.44/events?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		var out []eventtypes.Message
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var m eventtypes.Message
			json.Unmarshal(sc.Bytes(), &m)
			out = append(out, m)
		}
		return out
	}
	since := fmt.Sprintf("%d.%09d", start.Unix(), start.Nanosecond())
	until := fmt.Sprint(time.Now().Add(time.Second).Unix())
	all := get(url.Values{"since": {since}, "until": {until}})
	if len(all) != 3 {
		t.Fatalf("%d events, want 3", len(all))
	}
	imgs := get(url.Values{"since": {since}, "until": {until}, "filters": {`{"type":["image"]}`}})
	if len(imgs) != 2 || imgs[0].Action != eventtypes.ActionPull || imgs[1].Actor.Attributes["name"] != "mine:1" {
		t.Errorf("type=image: %+v", imgs)
	}
	byImage := get(url.Values{"since": {since}, "until": {until}, "filters": {`{"image":["busybox"]}`}})
	if len(byImage) != 2 { // the pull (busybox:latest) and the container of image busybox
		t.Errorf("image=busybox: %+v", byImage)
	}
	tags := get(url.Values{"since": {since}, "until": {until}, "filters": {`{"event":["tag"]}`}})
	if len(tags) != 1 {
		t.Errorf("event=tag: %+v", tags)
	}

	// Live: an event published after the request arrives.
	go func() {
		time.Sleep(200 * time.Millisecond)
		log.Publish(eventtypes.ImageEventType, eventtypes.ActionDelete, "sha256:def", nil)
	}()
	live := get(url.Values{"until": {fmt.Sprint(time.Now().Add(1500 * time.Millisecond).Unix())}, "filters": {`{"event":["delete"]}`}})
	if len(live) != 1 || live[0].Actor.ID != "sha256:def" {
		t.Errorf("live: %+v", live)
	}

	resp, _ := http.Get(ts.URL + "/events?since=yesterday-ish")
	if resp.StatusCode != 400 {
		t.Errorf("bad since: %d", resp.StatusCode)
	}
	resp, _ = http.Get(ts.URL + "/events?filters=" + url.QueryEscape(`{"colour":["red"]}`))
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 400 || !strings.Contains(string(b), "invalid filter 'colour'") {
		t.Errorf("bad filter: %d %s", resp.StatusCode, b)
	}
}

func TestParseEventTime(t *testing.T) {
	now := time.Unix(1700000000, 0)
	cases := map[string]time.Time{
		"1700000000":           time.Unix(1700000000, 0),
		"1700000000.5":         time.Unix(1700000000, 500000000),
		"2023-11-14T22:13:20Z": time.Unix(1700000000, 0),
		"10m":                  now.Add(-10 * time.Minute),
		"":                     {},
	}
	for in, want := range cases {
		got, err := parseEventTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseEventTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

// container=, daemon=, volume= and network= are applied as dockerd does:
// an actor's ID or name, whole or by prefix, whatever the event's type.
func TestEventFiltersByName(t *testing.T) {
	ctr := eventtypes.Message{Type: eventtypes.ContainerEventType, Action: eventtypes.ActionStart,
		Actor: eventtypes.Actor{ID: "0123abcd", Attributes: map[string]string{"name": "web", "image": "busybox"}}, Scope: "local"}
	vol := eventtypes.Message{Type: eventtypes.VolumeEventType, Action: eventtypes.ActionCreate,
		Actor: eventtypes.Actor{ID: "data", Attributes: map[string]string{"driver": "local"}}, Scope: "local"}
	dmn := eventtypes.Message{Type: eventtypes.DaemonEventType, Action: eventtypes.ActionReload,
		Actor: eventtypes.Actor{ID: "e1e2", Attributes: map[string]string{"name": "device"}}, Scope: "local"}
	for _, tc := range []struct {
		f    filters
		m    eventtypes.Message
		want bool
	}{
		{filters{"container": {"web"}}, ctr, true},
		{filters{"container": {"0123abcd"}}, ctr, true},
		{filters{"container": {"0123"}}, ctr, true},
		{filters{"container": {"db"}}, ctr, false},
		{filters{"container": {"db", "we"}}, ctr, true},
		{filters{"container": {"web"}}, vol, false},
		{filters{"volume": {"data"}}, vol, true},
		{filters{"volume": {"logs"}}, vol, false},
		{filters{"volume": {"data"}}, ctr, false},
		{filters{"daemon": {"device"}}, dmn, true},
		{filters{"daemon": {"e1e2"}}, dmn, true},
		{filters{"daemon": {"other"}}, dmn, false},
		{filters{"network": {"bridge"}}, ctr, false},
		{filters{"container": {"web"}, "event": {"start"}}, ctr, true},
		{filters{"container": {"web"}, "event": {"stop"}}, ctr, false},
	} {
		if got := eventMatches(tc.f, tc.m); got != tc.want {
			t.Errorf("%v on %s %s: %v, want %v", tc.f, tc.m.Type, tc.m.Actor.ID, got, tc.want)
		}
	}
}

// The balena-supervisor reads status, id and from, on unversioned paths
// and at every version.
func TestEventsLegacyFields(t *testing.T) {
	log, ts := eventsServer(t)
	start := time.Now()
	log.Publish(eventtypes.ContainerEventType, eventtypes.ActionDie, "c1", map[string]string{"image": "busybox", "exitCode": "3"})
	log.Publish(eventtypes.ImageEventType, eventtypes.ActionTag, "sha256:abc", map[string]string{"name": "mine:1"})
	log.Publish(eventtypes.NetworkEventType, eventtypes.ActionCreate, "n1", map[string]string{"name": "net"})
	q := url.Values{"since": {fmt.Sprintf("%d.%09d", start.Unix(), start.Nanosecond())}, "until": {fmt.Sprint(time.Now().Add(time.Second).Unix())}}
	for _, prefix := range []string{"", "/v1.24", "/v1.52"} {
		resp, err := http.Get(ts.URL + prefix + "/events?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		var got []map[string]any
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatal(err)
			}
			got = append(got, m)
		}
		resp.Body.Close()
		if len(got) != 3 {
			t.Fatalf("%s: %d events, want 3", prefix, len(got))
		}
		if c := got[0]; c["status"] != "die" || c["id"] != "c1" || c["from"] != "busybox" || c["Action"] != "die" {
			t.Errorf("%s: container event %v", prefix, c)
		}
		if i := got[1]; i["status"] != "tag" || i["id"] != "sha256:abc" || i["from"] != nil {
			t.Errorf("%s: image event %v", prefix, i)
		}
		if n := got[2]; n["status"] != nil || n["id"] != nil || n["Type"] != "network" {
			t.Errorf("%s: network event %v", prefix, n)
		}
	}
}

// eventsServer is an API server with only an event log.
func eventsServer(t *testing.T) (*events.Log, *httptest.Server) {
	log := events.New(100)
	ts := httptest.NewServer(New(Config{Events: log, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	t.Cleanup(ts.Close)
	return log, ts
}
