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
