package api

import (
	"strings"
	"testing"
	"time"
)

func TestPruneLabels(t *testing.T) {
	labels := map[string]string{"a": "1", "b": "2"}
	for _, c := range []struct {
		f    filters
		want bool
	}{
		{filters{}, true},
		{filters{"label": {"a"}}, true},
		{filters{"label": {"a=1", "b"}}, true},
		{filters{"label": {"a=2"}}, false},
		{filters{"label!": {"a"}}, false},
		{filters{"label!": {"a=2"}}, true},
		{filters{"label!": {"c"}}, true},
		{filters{"label!": {"a", "c"}}, true}, // not every label! matches
		{filters{"label": {"b"}, "label!": {"a=1"}}, false},
	} {
		if got := pruneLabels(c.f, labels); got != c.want {
			t.Errorf("%v: %v, want %v", c.f, got, c.want)
		}
	}
}

func TestUntilFilter(t *testing.T) {
	now := time.Unix(1700000000, 0)
	got, err := untilFilter(filters{"until": {"1h", "1699990000"}}, now, false)
	if err != nil || !got.Equal(time.Unix(1699990000, 0)) {
		t.Errorf("the earliest of two: %v %v", got, err)
	}
	if got, err := untilFilter(filters{}, now, true); err != nil || !got.IsZero() {
		t.Errorf("none: %v %v", got, err)
	}
	if _, err := untilFilter(filters{"until": {"1h", "2h"}}, now, true); err == nil || err.Error() != "more than one until filter specified" {
		t.Errorf("two for a prune: %v", err)
	}
	if _, err := untilFilter(filters{"until": {"yesterday"}}, now, true); err == nil || !strings.HasPrefix(err.Error(), "invalid value for 'until' filter: ") {
		t.Errorf("a bad one: %v", err)
	}
}
