package logs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func collect(t *testing.T, path string, maxFile int, opts ReadOptions) []string {
	t.Helper()
	var out []string
	err := Read(context.Background(), path, maxFile, opts, nil, func(e Entry) error {
		out = append(out, e.Stream+":"+strings.TrimSuffix(e.Log, "\n"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWriteReadRotate(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("compress=%v", gz), func(t *testing.T) { testWriteReadRotate(t, gz) })
	}
}

func testWriteReadRotate(t *testing.T, gz bool) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := NewWriter(path, 1024, 3, gz)
	if err != nil {
		t.Fatal(err)
	}
	out := &LineWriter{W: w, Stream: "stdout"}
	for i := 0; i < 200; i++ {
		fmt.Fprintf(out, "line %03d\n", i)
	}
	errw := &LineWriter{W: w, Stream: "stderr"}
	errw.Write([]byte("partial"))
	errw.Flush()
	w.Close()

	var total int64
	files, _ := filepath.Glob(path + "*")
	for _, f := range files {
		fi, _ := os.Stat(f)
		total += fi.Size()
	}
	if len(files) != 3 || total > 3*1024 {
		t.Errorf("%d files, %d bytes: rotation does not bound the log to max-size x max-file", len(files), total)
	}
	if zipped, _ := filepath.Glob(path + ".*.gz"); gz != (len(zipped) == 2) {
		t.Errorf("compress=%v, gzipped rotated files: %v", gz, zipped)
	}
	got := collect(t, path, 3, ReadOptions{Tail: -1})
	if got[len(got)-1] != "stderr:partial" || got[len(got)-2] != "stdout:line 199" {
		t.Errorf("last entries: %v", got[len(got)-3:])
	}
	// Entries come in order, with none missing in what was kept.
	for i := 1; i < len(got)-1; i++ {
		var a, b int
		fmt.Sscanf(got[i-1], "stdout:line %d", &a)
		fmt.Sscanf(got[i], "stdout:line %d", &b)
		if b != a+1 {
			t.Fatalf("gap between %q and %q", got[i-1], got[i])
		}
	}
	if tail := collect(t, path, 3, ReadOptions{Tail: 2}); len(tail) != 2 || tail[0] != "stdout:line 199" {
		t.Errorf("tail 2 = %v", tail)
	}
	if none := collect(t, path, 3, ReadOptions{Tail: -1, Since: time.Now().Add(time.Hour)}); len(none) != 0 {
		t.Errorf("since the future: %v", none)
	}
}

func TestFollowAcrossRotation(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("compress=%v", gz), func(t *testing.T) { testFollowAcrossRotation(t, gz) })
	}
}

func testFollowAcrossRotation(t *testing.T, gz bool) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	// Each file holds about 30 lines: several rotations, each slower than
	// the reader's poll.
	w, err := NewWriter(path, 2048, 2, gz)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	go func() {
		time.Sleep(50 * time.Millisecond) // the reader is following by now
		lw := &LineWriter{W: w, Stream: "stdout"}
		for i := 0; i < 60; i++ {
			fmt.Fprintf(lw, "n%02d\n", i)
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(150 * time.Millisecond)
		close(stop)
	}()
	var got []string
	err = Read(context.Background(), path, 2, ReadOptions{Tail: -1, Follow: true}, stop, func(e Entry) error {
		got = append(got, strings.TrimSpace(e.Log))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 60 || got[0] != "n00" || got[59] != "n59" || w.size == 0 {
		t.Errorf("followed %d lines: %v", len(got), got)
	}
}
