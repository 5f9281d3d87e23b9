package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/api/types/events"
)

func runEvents(ctx context.Context, e *env, args []string) error {
	fs := e.flags("events", "events [OPTIONS]")
	since := fs.String("since", "", "show all events created since timestamp")
	until := fs.String("until", "", "stream events until this timestamp")
	format := fs.String("format", "", "format output using a Go template")
	filter := fs.StringArrayP("filter", "f", nil, "filter output based on conditions provided")
	if err := parse(fs, args); err != nil {
		return err
	}
	q := url.Values{}
	if *since != "" {
		q.Set("since", *since)
	}
	if *until != "" {
		q.Set("until", *until)
	}
	if err := addFilters(q, *filter); err != nil {
		return err
	}
	var f *formatter
	if *format != "" {
		var err error
		if f, err = newFormatter(e.stdout, *format, "", nil); err != nil {
			return err
		}
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	body, err := c.Events(ctx, q)
	if err != nil {
		return err
	}
	defer body.Close()
	dec := json.NewDecoder(body)
	for {
		var m events.Message
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return nil
			}
			return err
		}
		if f != nil {
			if err := f.row(m); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintln(e.stdout, eventLine(m))
	}
}

// eventLine is Docker's default event format.
func eventLine(m events.Message) string {
	ts := time.Unix(0, m.TimeNano).Format("2006-01-02T15:04:05.000000000Z07:00")
	line := fmt.Sprintf("%s %s %s %s", ts, m.Type, m.Action, m.Actor.ID)
	if len(m.Actor.Attributes) > 0 {
		keys := make([]string, 0, len(m.Actor.Attributes))
		for k := range m.Actor.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var kv []string
		for _, k := range keys {
			kv = append(kv, k+"="+m.Actor.Attributes[k])
		}
		line += " (" + strings.Join(kv, ", ") + ")"
	}
	return line
}
