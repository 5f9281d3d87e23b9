package logs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// A snapshot reads the log as it stood when it was opened, whatever was
// written, rotated, compressed or removed since: an attach's replay ends
// where its live stream begins.
func TestSnapshotEndsWhereItWasTaken(t *testing.T) {
	for _, c := range []struct {
		maxFile int
		gz      bool
	}{{1, false}, {3, false}, {3, true}} {
		t.Run(fmt.Sprintf("max-file=%d,compress=%v", c.maxFile, c.gz), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c-json.log")
			w, err := NewWriter(path, 1024, c.maxFile, c.gz)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			out := &LineWriter{W: w, Stream: "stdout"}
			for i := range 20 {
				fmt.Fprintf(out, "line %03d\n", i)
			}
			fmt.Fprint(out, "partial") // the start of line 20: not in the log yet
			want := collect(t, path, c.maxFile, ReadOptions{Tail: -1})
			s, err := Open(path, c.maxFile)
			if err != nil {
				t.Fatal(err)
			}
			// Enough after the snapshot to rotate every file it holds away.
			for i := range 200 {
				fmt.Fprintf(out, " %03d\n", i)
			}
			var got []string
			if err := s.Read(context.Background(), ReadOptions{Tail: -1}, nil, func(e Entry) error {
				got = append(got, e.Stream+":"+strings.TrimSuffix(e.Log, "\n"))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != strings.Join(want, ",") || len(got) == 0 {
				t.Errorf("snapshot read %v\nwant %v", got, want)
			}
			if last := collect(t, path, c.maxFile, ReadOptions{Tail: 1}); len(last) != 1 || last[0] != "stdout: 199" {
				t.Errorf("the log afterwards ends with %v", last)
			}
		})
	}
}

// A snapshot that is closed unread lets go of its files.
func TestSnapshotClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := NewWriter(path, 100, 3, false)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		w.Write("stdout", []byte(fmt.Sprintf("line %d\n", i)), time.Now())
	}
	w.Close()
	before := openFDs(t)
	s, err := Open(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	if n := openFDs(t); n != before+3 {
		t.Errorf("a snapshot of 3 files holds %d descriptors", n-before)
	}
	s.Close()
	if n := openFDs(t); n != before {
		t.Errorf("%d descriptors left after Close", n-before)
	}
}

func openFDs(t *testing.T) int {
	runtime.GC()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip(err)
	}
	return len(ents)
}

// The journal's replay for an attach: the entries of the writer's epoch
// up to its position, waiting for those journald has not stored yet, and
// none after; entries of other runs all. journalctl is a stand-in here
// (the test machine may have no journal): a script answering the first
// call with what is stored so far and the next, after that cursor, with
// the rest.
func TestReadJournalUpTo(t *testing.T) {
	dir := t.TempDir()
	entry := func(msg, epoch, ord, cursor string) string {
		return fmt.Sprintf(`{"MESSAGE":%q,"PRIORITY":"6","__REALTIME_TIMESTAMP":"1700000000000000","__CURSOR":%q,"CONTAINER_LOG_EPOCH":%q,"CONTAINER_LOG_ORDINAL":%q}`, msg, cursor, epoch, ord)
	}
	first := strings.Join([]string{entry("old run", "E0", "7", "c1"), entry("a", "E1", "1", "c2"), entry("b", "E1", "2", "c3")}, "\n")
	rest := strings.Join([]string{entry("c", "E1", "3", "c4"), entry("after the attach", "E1", "4", "c5")}, "\n")
	script := `#!/bin/sh
echo "$*" >>` + dir + `/calls
case "$*" in
*--after-cursor=c3*) cat <<'EOF2'
` + rest + `
EOF2
;;
*--after-cursor*) ;;
*) cat <<'EOF2'
` + first + `
EOF2
;;
esac
`
	if err := os.WriteFile(filepath.Join(dir, "journalctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	var got []string
	if err := ReadJournalUpTo(context.Background(), "ID", "E1:3", func(e Entry) error {
		got = append(got, strings.TrimSuffix(e.Log, "\n"))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "old run,a,b,c" {
		t.Errorf("replayed %q", got)
	}
	calls, _ := os.ReadFile(filepath.Join(dir, "calls"))
	if !strings.Contains(string(calls), "CONTAINER_ID_FULL=ID") || strings.Count(string(calls), "\n") != 2 {
		t.Errorf("journalctl calls:\n%s", calls)
	}
}
