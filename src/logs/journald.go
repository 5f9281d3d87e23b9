package logs

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/balena-os/balena-engine/src/randid"
	"github.com/coreos/go-systemd/v22/journal"
)

// Journal is the "journald" driver: each line goes to the systemd journal
// with Docker's fields (CONTAINER_ID, CONTAINER_ID_FULL, CONTAINER_NAME,
// CONTAINER_TAG, IMAGE_NAME, SYSLOG_IDENTIFIER), stdout at priority info
// and stderr at err, so that journalctl and Docker's tools find them.
// Each entry also has Docker's CONTAINER_LOG_EPOCH (the writer's, random)
// and CONTAINER_LOG_ORDINAL (1, 2, ...): journald stores entries when it
// gets to them, and these tell a reader which entries came before a
// point it was given (Position) and whether it has them all yet.
type Journal struct {
	Fields map[string]string
	// Epoch is the writer's CONTAINER_LOG_EPOCH: random unless set
	// before the first entry.
	Epoch   string
	ordinal atomic.Uint64
	once    sync.Once
}

// Docker's fields that order a writer's entries.
const (
	fieldEpoch   = "CONTAINER_LOG_EPOCH"
	fieldOrdinal = "CONTAINER_LOG_ORDINAL"
)

func (j *Journal) init() {
	j.once.Do(func() {
		if j.Epoch == "" {
			j.Epoch = NewEpoch()
		}
	})
}

// NewEpoch is a new writer's CONTAINER_LOG_EPOCH.
func NewEpoch() string { return randid.Hex(16) }

// Position is where the journal's writer is: EPOCH:ORDINAL of the last
// entry sent, for ReadJournalUpTo.
func (j *Journal) Position() string {
	j.init()
	return j.Epoch + ":" + strconv.FormatUint(j.ordinal.Load(), 10)
}

// JournalFields are the fields Docker's journald driver gives a
// container's entries; tag is SYSLOG_IDENTIFIER and CONTAINER_TAG
// (Docker's default: the short ID).
func JournalFields(id, name, image, tag string) map[string]string {
	short := id[:min(12, len(id))]
	if tag == "" {
		tag = short
	}
	return map[string]string{
		"CONTAINER_ID": short, "CONTAINER_ID_FULL": id, "CONTAINER_NAME": strings.TrimPrefix(name, "/"),
		"CONTAINER_TAG": tag, "IMAGE_NAME": image, "SYSLOG_IDENTIFIER": tag,
	}
}

// JournalAvailable says whether journald's socket answers.
func JournalAvailable() bool { return journal.Enabled() }

func (j *Journal) Write(stream string, line []byte, _ time.Time) error {
	pri := journal.PriInfo
	if stream == "stderr" {
		pri = journal.PriErr
	}
	msg, full := strings.CutSuffix(string(line), "\n")
	j.init()
	vars := make(map[string]string, len(j.Fields)+3)
	for k, v := range j.Fields {
		vars[k] = v
	}
	if !full { // a line cut at 16 KiB, or the last one without a newline
		vars["CONTAINER_PARTIAL_MESSAGE"] = "true"
	}
	vars[fieldEpoch] = j.Epoch
	vars[fieldOrdinal] = strconv.FormatUint(j.ordinal.Add(1), 10)
	return journal.Send(msg, pri, vars)
}

// journalEntry is a line of "journalctl -o json".
type journalEntry struct {
	Message  json.RawMessage `json:"MESSAGE"` // a string, or an array of bytes when not UTF-8
	Priority string          `json:"PRIORITY"`
	Partial  string          `json:"CONTAINER_PARTIAL_MESSAGE"`
	Realtime string          `json:"__REALTIME_TIMESTAMP"` // µs since the epoch
	Cursor   string          `json:"__CURSOR"`
	Epoch    string          `json:"CONTAINER_LOG_EPOCH"`
	Ordinal  string          `json:"CONTAINER_LOG_ORDINAL"`
}

func (e *journalEntry) entry() (Entry, error) {
	var msg string
	if err := json.Unmarshal(e.Message, &msg); err != nil {
		var raw []byte
		var nums []int
		if err := json.Unmarshal(e.Message, &nums); err != nil {
			return Entry{}, fmt.Errorf("journal MESSAGE %s: %w", e.Message, err)
		}
		for _, n := range nums {
			raw = append(raw, byte(n))
		}
		msg = string(raw)
	}
	if e.Partial != "true" {
		msg += "\n"
	}
	us, _ := strconv.ParseInt(e.Realtime, 10, 64)
	stream := "stdout"
	if e.Priority == strconv.Itoa(int(journal.PriErr)) {
		stream = "stderr"
	}
	return Entry{Log: msg, Stream: stream, Time: time.UnixMicro(us).UTC()}, nil
}

// ReadJournalUpTo sends a container's entries from the journal, oldest
// first, up to the writer's position pos (Journal.Position): the entries
// of its epoch after that ordinal are left out, and those up to it that
// journald has not stored yet are waited for, a little while.
func ReadJournalUpTo(ctx context.Context, id, pos string, fn func(Entry) error) error {
	epoch, ord, _ := strings.Cut(pos, ":")
	upTo, _ := strconv.ParseUint(ord, 10, 64)
	var seen uint64 // the epoch's last ordinal read
	cursor := ""
	pass := func(je *journalEntry, e Entry) error {
		if je.Epoch == epoch {
			n, _ := strconv.ParseUint(je.Ordinal, 10, 64)
			if n > upTo {
				return nil
			}
			seen = max(seen, n)
		}
		return fn(e)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		args := []string{"--no-pager", "-q", "-o", "json", "--output-fields=MESSAGE,PRIORITY,CONTAINER_PARTIAL_MESSAGE," + fieldEpoch + "," + fieldOrdinal}
		if cursor != "" {
			args = append(args, "--after-cursor="+cursor)
		}
		c, err := journalctlEntries(ctx, append(args, "CONTAINER_ID_FULL="+id), pass)
		if c != "" {
			cursor = c
		}
		if err != nil || seen >= upTo || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(50 * time.Millisecond): // journald is still storing them
		}
	}
}

// ReadJournal reads a container's entries back from the journal through
// journalctl (which is where the journal's readers live; the engine links
// no libsystemd), with the same options as Read. Following ends when stop
// is closed, after the entries written until then.
func ReadJournal(ctx context.Context, id string, opts ReadOptions, stop <-chan struct{}, fn func(Entry) error) error {
	args := []string{"--no-pager", "-q", "-o", "json", "--output-fields=MESSAGE,PRIORITY,CONTAINER_PARTIAL_MESSAGE"}
	if !opts.Since.IsZero() {
		args = append(args, "--since=@"+unixSeconds(opts.Since))
	}
	if !opts.Until.IsZero() {
		args = append(args, "--until=@"+unixSeconds(opts.Until))
	}
	if opts.Tail >= 0 {
		args = append(args, "--lines="+strconv.Itoa(opts.Tail))
	}
	match := "CONTAINER_ID_FULL=" + id
	var last string
	if opts.Follow {
		// Where the journal ends now: following goes on from there even
		// when tail or since selected nothing of what is already there.
		last, _ = journalctl(ctx, []string{"--no-pager", "-q", "-o", "json", "--output-fields=MESSAGE", "--lines=1", match},
			func(Entry) error { return nil })
	}
	cursor, err := journalctl(ctx, append(args, match), fn)
	if err != nil || !opts.Follow {
		return err
	}
	if cursor == "" {
		cursor = last
	}
	// Follow: poll for what came after the last entry until the container
	// has stopped, then once more for what it wrote before stopping.
	// journalctl --follow would hold a process per reader; a poll costs one
	// short process a quarter second.
	after := func() error {
		a := []string{"--no-pager", "-q", "-o", "json", "--output-fields=MESSAGE,PRIORITY,CONTAINER_PARTIAL_MESSAGE"}
		if cursor != "" {
			a = append(a, "--after-cursor="+cursor)
		} else if !opts.Since.IsZero() {
			a = append(a, "--since=@"+unixSeconds(opts.Since))
		}
		c, err := journalctl(ctx, append(a, match), fn)
		if c != "" {
			cursor = c
		}
		return err
	}
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-stop:
			time.Sleep(100 * time.Millisecond) // journald may still be storing the last lines
			return after()
		case <-t.C:
			if err := after(); err != nil {
				return err
			}
		}
	}
}

func unixSeconds(t time.Time) string {
	return strconv.FormatInt(t.Unix(), 10)
}

// journalctl runs journalctl with args, hands each entry to fn, and
// returns the last entry's cursor.
func journalctl(ctx context.Context, args []string, fn func(Entry) error) (string, error) {
	return journalctlEntries(ctx, args, func(_ *journalEntry, e Entry) error { return fn(e) })
}

// journalctlEntries is journalctl handing fn the journal's fields too.
func journalctlEntries(ctx context.Context, args []string, fn func(*journalEntry, Entry) error) (string, error) {
	cmd := exec.CommandContext(ctx, "journalctl", args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("read the journal: %w", err)
	}
	var cursor string
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	var ferr error
	for sc.Scan() {
		var je journalEntry
		if err := json.Unmarshal(sc.Bytes(), &je); err != nil {
			continue
		}
		cursor = je.Cursor
		e, err := je.entry()
		if err != nil {
			continue // not one of ours: a field missing
		}
		if ferr = fn(&je, e); ferr != nil {
			break
		}
	}
	if ferr != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return cursor, ferr
	}
	if err := cmd.Wait(); err != nil && ctx.Err() == nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return cursor, fmt.Errorf("journalctl: %s", strings.TrimSpace(stderr.String()))
		}
		return cursor, err
	}
	return cursor, nil
}
