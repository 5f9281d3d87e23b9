package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
)

// filters is the "filters" query parameter: a map from a filter name to
// its values. Docker's clients send {"name":["v1","v2"]} (and old ones
// {"name":{"v1":true}}); both are accepted.
type filters map[string][]string

func parseFilters(r *http.Request, allowed ...string) (filters, error) {
	raw := r.URL.Query().Get("filters")
	if raw == "" {
		return filters{}, nil
	}
	var list map[string][]string
	if err := json.Unmarshal([]byte(raw), &list); err != nil {
		var old map[string]map[string]bool
		if err2 := json.Unmarshal([]byte(raw), &old); err2 != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid filter: %w", err))
		}
		list = map[string][]string{}
		for k, vs := range old {
			for v, on := range vs {
				if on {
					list[k] = append(list[k], v)
				}
			}
		}
	}
	for k := range list {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid filter '%s'", k))
		}
	}
	return list, nil
}

// bool reads a boolean filter: unset is def; "true"/"1" and "false"/"0".
func (f filters) bool(name string, def bool) (bool, error) {
	vs := f[name]
	if len(vs) == 0 {
		return def, nil
	}
	switch vs[0] {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, errdefs.InvalidParameter(fmt.Errorf("invalid filter '%s=%s'", name, vs[0]))
}

// boolParam reads a boolean query parameter as Docker does: "", "0",
// "no", "false", "none" are false, anything else true.
func boolParam(r *http.Request, name string) bool {
	// As Docker, whatever the case: docker-py sends Python's "False".
	switch strings.ToLower(strings.TrimSpace(r.URL.Query().Get(name))) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}

// anyOf says whether no value is wanted (the filter is not given) or one
// of them matches.
func anyOf(want []string, match func(string) bool) bool {
	if len(want) == 0 {
		return true
	}
	for _, x := range want {
		if match(x) {
			return true
		}
	}
	return false
}

// filterMatch: v is one of the values wanted.
func filterMatch(want []string, v string) bool {
	return anyOf(want, func(x string) bool { return x == v })
}

// filterMatchPrefix: v starts with one of them (IDs).
func filterMatchPrefix(want []string, v string) bool {
	return anyOf(want, func(x string) bool { return strings.HasPrefix(v, x) })
}

// filterContains: v contains one of them (names, with or without "/").
func filterContains(want []string, v string) bool {
	return anyOf(want, func(x string) bool { return strings.Contains(v, strings.TrimPrefix(x, "/")) })
}

// nameMatch is Docker's name= filter for containers: a regular
// expression matched against the name with and without its leading "/"
// (so "^web$" and "^/web$" both find web). An invalid expression
// matches nothing, as Docker.
func nameMatch(want []string, name string) bool {
	return anyOf(want, func(x string) bool {
		re, err := regexp.Compile(x)
		return err == nil && (re.MatchString("/"+name) || re.MatchString(name))
	})
}

// pruneLabels is the prunes' label filters, as Docker's: every "label"
// matches, and not every "label!" does.
func pruneLabels(f filters, labels map[string]string) bool {
	return matchLabels(labels, f["label"]) && (len(f["label!"]) == 0 || !matchLabels(labels, f["label!"]))
}

// untilFilter reads an until filter (a timestamp, or a duration before
// now) as Docker's prunes and image list do; prunes take one at most.
func untilFilter(f filters, now time.Time, one bool) (time.Time, error) {
	var until time.Time
	if one && len(f["until"]) > 1 {
		return until, errdefs.InvalidParameter(errors.New("more than one until filter specified"))
	}
	for _, v := range f["until"] {
		t, err := parseEventTime(v, now)
		if err != nil {
			return until, errdefs.InvalidParameter(fmt.Errorf("invalid value for 'until' filter: %v", err))
		}
		if until.IsZero() || t.Before(until) {
			until = t // several: the earliest, as Docker ANDs them
		}
	}
	return until, nil
}
