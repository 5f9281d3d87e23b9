package events

import (
	"fmt"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
)

func TestRingAndSubscribe(t *testing.T) {
	l := New(3)
	start := time.Now()
	for i := 0; i < 5; i++ {
		l.Publish(events.ImageEventType, events.ActionPull, fmt.Sprint(i), nil)
	}
	past, ch, cancel := l.Subscribe(start)
	defer cancel()
	if len(past) != 3 || past[0].Actor.ID != "2" || past[2].Actor.ID != "4" {
		t.Errorf("kept %v, want events 2..4 in order", past)
	}
	if none, _, c := l.Subscribe(time.Time{}); len(none) != 0 {
		t.Errorf("zero since replayed %d events", len(none))
	} else {
		c()
	}
	l.Publish(events.ImageEventType, events.ActionTag, "new", map[string]string{"name": "x:1"})
	select {
	case m := <-ch:
		if m.Action != events.ActionTag || m.Actor.Attributes["name"] != "x:1" || m.Scope != "local" || m.TimeNano == 0 {
			t.Errorf("got %+v", m)
		}
	case <-time.After(time.Second):
		t.Fatal("subscriber got nothing")
	}
	cancel()
	l.Publish(events.ImageEventType, events.ActionTag, "after", nil) // no panic, no block
}

// A subscriber that stops reading holds a bounded queue: publishers never
// wait for it, and what does not fit is dropped for it alone.
func TestStalledSubscriberBounded(t *testing.T) {
	l := New(1000)
	_, stalled, cancelStalled := l.Subscribe(time.Time{})
	defer cancelStalled()
	_, live, cancelLive := l.Subscribe(time.Time{})
	defer cancelLive()
	for i := 0; i < 100_000; i += 200 {
		for j := i; j < i+200; j++ {
			l.Publish(events.ContainerEventType, events.ActionStart, fmt.Sprint(j), nil)
		}
		// One that keeps up misses nothing.
		for j := i; j < i+200; j++ {
			select {
			case m := <-live:
				if m.Actor.ID != fmt.Sprint(j) {
					t.Fatalf("event %d is %q", j, m.Actor.ID)
				}
			default:
				t.Fatalf("event %d missing for a subscriber that keeps up", j)
			}
		}
	}
	if n, c := len(stalled), cap(stalled); n != c || c > 1024 {
		t.Errorf("the stalled subscriber holds %d events (queue of %d)", n, c)
	}
	if m := <-stalled; m.Actor.ID != "0" {
		t.Errorf("the stalled subscriber's first event is %q: it keeps the oldest, then drops", m.Actor.ID)
	}
}
