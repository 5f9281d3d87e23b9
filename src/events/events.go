// Package events keeps the engine's recent events and streams new ones to
// subscribers, for the /events API. The log is a bounded ring in memory:
// events are a live view, not a record (Docker keeps 1000 too).
package events

import (
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
)

// Log is the event log. The zero value is not usable; use New.
type Log struct {
	mu   sync.Mutex
	ring []events.Message
	next int // where the next event goes once the ring is full
	subs map[chan events.Message]struct{}
}

// New returns a log keeping the last capacity events.
func New(capacity int) *Log {
	return &Log{ring: make([]events.Message, 0, capacity), subs: map[chan events.Message]struct{}{}}
}

// Publish records an event and hands it to every subscriber. A subscriber
// that does not keep up loses events rather than stalling the engine.
func (l *Log) Publish(typ events.Type, action events.Action, id string, attrs map[string]string) {
	now := time.Now()
	m := events.Message{Type: typ, Action: action, Actor: events.Actor{ID: id, Attributes: attrs},
		Scope: "local", Time: now.Unix(), TimeNano: now.UnixNano()}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ring) < cap(l.ring) {
		l.ring = append(l.ring, m)
	} else {
		l.ring[l.next] = m
		l.next = (l.next + 1) % len(l.ring)
	}
	for ch := range l.subs {
		select {
		case ch <- m:
		default:
		}
	}
}

// Subscribe returns the kept events at or after since (none for a zero
// since), and a channel of the events that follow, until cancel.
func (l *Log) Subscribe(since time.Time) (past []events.Message, ch <-chan events.Message, cancel func()) {
	c := make(chan events.Message, 256)
	l.mu.Lock()
	if !since.IsZero() {
		n := len(l.ring)
		for i := 0; i < n; i++ {
			m := l.ring[(l.next+i)%n]
			if m.TimeNano >= since.UnixNano() {
				past = append(past, m)
			}
		}
	}
	l.subs[c] = struct{}{}
	l.mu.Unlock()
	return past, c, func() {
		l.mu.Lock()
		delete(l.subs, c)
		l.mu.Unlock()
	}
}
