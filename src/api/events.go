package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/moby/moby/api/types/events"
)

// parseEventTime reads since/until: a Unix time with optional fraction
// ("1700000000.5"), an RFC 3339 time, or a duration before now ("10m").
func parseEventTime(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if sec, frac, ok := strings.Cut(v, "."); ok || strings.Trim(v, "0123456789") == "" {
		s, err := strconv.ParseInt(sec, 10, 64)
		if err == nil {
			var ns int64
			if ok {
				frac = (frac + "000000000")[:9]
				ns, err = strconv.ParseInt(frac, 10, 64)
			}
			if err == nil {
				return time.Unix(s, ns), nil
			}
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	return time.Time{}, errdefs.InvalidParameter(fmt.Errorf("invalid time %q: want a Unix timestamp, an RFC 3339 time or a duration", v))
}

func eventMatches(f filters, m events.Message) bool {
	in := func(key, val string) bool {
		vs, ok := f[key]
		if !ok {
			return true
		}
		for _, v := range vs {
			if v == val || (key == "event" && strings.HasPrefix(string(m.Action), v+":")) {
				return true
			}
		}
		return false
	}
	name := m.Actor.Attributes["name"]
	matchesImage := func() bool {
		vs, ok := f["image"]
		if !ok {
			return true
		}
		for _, v := range vs {
			if v == m.Actor.ID || v == name || v == m.Actor.Attributes["image"] ||
				strings.TrimSuffix(name, ":latest") == v {
				return true
			}
		}
		return false
	}
	// As dockerd: container=, daemon=, volume= and network= match an
	// actor's ID or name, whole or by prefix, whatever the event's type.
	byName := func(key string) bool {
		vs, ok := f[key]
		if !ok {
			return true
		}
		for _, v := range vs {
			if strings.HasPrefix(m.Actor.ID, v) || (name != "" && strings.HasPrefix(name, v)) {
				return true
			}
		}
		return false
	}
	return in("type", string(m.Type)) && in("event", string(m.Action)) && in("scope", m.Scope) &&
		byName("daemon") && byName("container") && byName("volume") && byName("network") &&
		matchesImage() && matchLabels(m.Actor.Attributes, f["label"])
}

func (s *Server) eventsStream(w http.ResponseWriter, r *http.Request) error {
	now := time.Now()
	since, err := parseEventTime(r.URL.Query().Get("since"), now)
	if err != nil {
		return err
	}
	until, err := parseEventTime(r.URL.Query().Get("until"), now)
	if err != nil {
		return err
	}
	if !since.IsZero() && !until.IsZero() && until.Before(since) {
		return errdefs.InvalidParameter(errors.New("since time must be before until time"))
	}
	f, err := parseFilters(r, "type", "event", "image", "container", "label", "scope", "daemon", "volume", "network")
	if err != nil {
		return err
	}
	past, live, cancel := s.cfg.Events.Subscribe(since)
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	flush := func() {
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
	}
	flush()
	emit := func(m events.Message) bool {
		if !until.IsZero() && m.TimeNano > until.UnixNano() {
			return false
		}
		if eventMatches(f, m) {
			enc.Encode(withLegacyFields(m))
			flush()
		}
		return true
	}
	for _, m := range past {
		if !emit(m) {
			return nil
		}
	}
	var stop <-chan time.Time
	if !until.IsZero() {
		if !until.After(now) {
			return nil
		}
		t := time.NewTimer(until.Sub(now))
		defer t.Stop()
		stop = t.C
	}
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-stop:
			return nil
		case m := <-live:
			if !emit(m) {
				return nil
			}
		}
	}
}

// legacyMessage is an event as Docker sent it before API 1.52, with the
// fields that predate Type, Action and Actor. They are sent at every
// version: balena's device agent (dockerode, no pinned version) reads
// status, id and from, and newer clients ignore them.
type legacyMessage struct {
	Status string `json:"status,omitempty"`
	ID     string `json:"id,omitempty"`
	From   string `json:"from,omitempty"`
	events.Message
}

// withLegacyFields fills them as dockerd did: for container events the
// action, the container's ID and its image; for image events the action
// and the image; none for other types.
func withLegacyFields(m events.Message) legacyMessage {
	l := legacyMessage{Message: m}
	switch m.Type {
	case events.ContainerEventType:
		l.Status, l.ID, l.From = string(m.Action), m.Actor.ID, m.Actor.Attributes["image"]
	case events.ImageEventType:
		l.Status, l.ID = string(m.Action), m.Actor.ID
	}
	return l
}
