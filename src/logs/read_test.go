package logs

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

var base = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// writeBigLog writes n entries "line I" straight in json-file's format
// (the Writer's encoding is too slow for a test of this size), the entry
// i at base+i µs, and returns the file's size.
func writeBigLog(t *testing.T, name string, from, n int, gz bool) int64 {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var zw *gzip.Writer
	bw := bufio.NewWriterSize(f, 1<<20)
	w := bufio.NewWriter(bw)
	if gz {
		zw, _ = gzip.NewWriterLevel(bw, gzip.BestSpeed)
		w = bufio.NewWriterSize(zw, 1<<20)
	}
	for i := from; i < from+n; i++ {
		fmt.Fprintf(w, `{"log":"line %d\n","stream":"stdout","time":"%s"}`+"\n", i, base.Add(time.Duration(i)*time.Microsecond).Format(time.RFC3339Nano))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		zw.Close()
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	return fi.Size()
}

// peakHeap runs f and returns by how much the heap grew at most while it
// ran, sampled every millisecond, after a collection before it started.
func peakHeap(f func()) uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	start, peak := ms.HeapAlloc, ms.HeapAlloc
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapAlloc)
			}
		}
	}()
	f()
	close(done)
	wg.Wait()
	runtime.ReadMemStats(&ms)
	peak = max(peak, ms.HeapAlloc)
	return peak - start
}

// The last entries of a log far larger than the memory a read may take
// come from its end: the heap grows by a chunk, not by the file, and the
// whole log streamed does not hold it either.
func TestTailOfLargeLogBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 64 MB log")
	}
	path := filepath.Join(t.TempDir(), "c-json.log")
	const n = 900_000
	size := writeBigLog(t, path, 0, n, false)
	var got []string
	var allocs runtime.MemStats
	runtime.ReadMemStats(&allocs)
	before := allocs.TotalAlloc
	start := time.Now()
	grew := peakHeap(func() { got = collect(t, path, 1, ReadOptions{Tail: 1}) })
	took := time.Since(start)
	runtime.ReadMemStats(&allocs)
	t.Logf("tail 1 of a %d MB log: %v, heap +%d KiB, %d KiB allocated", size>>20, took, grew>>10, (allocs.TotalAlloc-before)>>10)
	if len(got) != 1 || got[0] != fmt.Sprintf("stdout:line %d", n-1) {
		t.Fatalf("tail 1 = %v", got)
	}
	if a := allocs.TotalAlloc - before; a > 1<<20 {
		t.Errorf("tail 1 allocated %d bytes for a %d-byte log", a, size)
	}

	// since/until with a tail: the last entries within the window.
	until := base.Add((n - 100) * time.Microsecond)
	got = collect(t, path, 1, ReadOptions{Tail: 2, Until: until})
	if want := []string{fmt.Sprintf("stdout:line %d", n-101), fmt.Sprintf("stdout:line %d", n-100)}; !slices.Equal(got, want) {
		t.Errorf("tail 2 until entry %d = %v", n-100, got)
	}

	count, last := 0, ""
	grew = peakHeap(func() {
		err := Read(context.Background(), path, 1, ReadOptions{Tail: -1}, nil, func(e Entry) error {
			count, last = count+1, e.Log
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	})
	t.Logf("all of it streamed: heap +%d KiB", grew>>10)
	if count != n || last != fmt.Sprintf("line %d\n", n-1) {
		t.Errorf("streamed %d entries, last %q", count, last)
	}
	if grew > 16<<20 {
		t.Errorf("streaming a %d-byte log grew the heap by %d bytes", size, grew)
	}
}

// A gzipped rotated file is streamed with a ring of the entries wanted.
func TestTailThroughGzipBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a large log")
	}
	path := filepath.Join(t.TempDir(), "c-json.log")
	const n = 400_000
	writeBigLog(t, path+".1.gz", 0, n, true)
	writeBigLog(t, path, n, 1, false)
	var got []string
	grew := peakHeap(func() { got = collect(t, path, 2, ReadOptions{Tail: 3}) })
	t.Logf("tail 3 through %d gzipped entries: heap +%d KiB", n, grew>>10)
	want := []string{fmt.Sprintf("stdout:line %d", n-2), fmt.Sprintf("stdout:line %d", n-1), fmt.Sprintf("stdout:line %d", n)}
	if !slices.Equal(got, want) {
		t.Errorf("tail 3 = %v, want %v", got, want)
	}
	if grew > 16<<20 {
		t.Errorf("the heap grew by %d bytes", grew)
	}
}

// Every tail, through plain and gzipped rotated files, with and without a
// time window, is the end of the whole log read forward.
func TestTailMatchesWholeLog(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("compress=%v", gz), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c-json.log")
			w, err := NewWriter(path, 512, 4, gz)
			if err != nil {
				t.Fatal(err)
			}
			t0 := base
			for i := 0; i < 40; i++ {
				stream := "stdout"
				if i%3 == 0 {
					stream = "stderr"
				}
				if err := w.Write(stream, []byte(fmt.Sprintf("entry %02d\n", i)), t0.Add(time.Duration(i)*time.Second)); err != nil {
					t.Fatal(err)
				}
			}
			w.Close()
			for _, win := range []ReadOptions{{}, {Since: t0.Add(25 * time.Second)}, {Until: t0.Add(33 * time.Second)},
				{Since: t0.Add(26 * time.Second), Until: t0.Add(30 * time.Second)}} {
				win.Tail = -1
				all := collect(t, path, 4, win)
				if len(all) == 0 {
					t.Fatalf("nothing read for %+v", win)
				}
				for n := 0; n <= len(all)+2; n++ {
					win.Tail = n
					got := collect(t, path, 4, win)
					want := all[max(0, len(all)-n):]
					if !slices.Equal(got, want) {
						t.Fatalf("tail %d since %v until %v = %v, want %v", n, win.Since, win.Until, got, want)
					}
				}
			}
		})
	}
}

// Lines that are not entries (a write torn by a power cut or a full disk,
// a line longer than any the writer makes) are skipped; a partial last
// line is not an entry until it is complete.
func TestTornLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	entry := func(s string) string {
		return `{"log":"` + s + `\n","stream":"stdout","time":"2025-01-01T00:00:00Z"}` + "\n"
	}
	long := strings.Repeat("x", maxLineBytes+chunkSize+5) + "\n"
	content := entry("a") + `{"log":"tor` + entry("b") + long + entry("c") + `{"log":"partial`
	if err := os.WriteFile(path, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
	want := []string{"stdout:a", "stdout:b", "stdout:c"}
	if got := collect(t, path, 1, ReadOptions{Tail: -1}); !slices.Equal(got, want) {
		t.Errorf("all: %v", got)
	}
	for n := 0; n <= 4; n++ {
		if got := collect(t, path, 1, ReadOptions{Tail: n}); !slices.Equal(got, want[max(0, 3-n):]) {
			t.Errorf("tail %d: %v", n, got)
		}
	}
}

// follow goes on after a tail from where the tail's file ended.
func TestFollowAfterTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := NewWriter(path, 0, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	lw := &LineWriter{W: w, Stream: "stdout"}
	for i := 0; i < 100; i++ {
		fmt.Fprintf(lw, "old %d\n", i)
	}
	lw.Write([]byte("half ")) // still in the line writer
	stop := make(chan struct{})
	var got []string
	err = Read(context.Background(), path, 1, ReadOptions{Tail: 2, Follow: true}, stop, func(e Entry) error {
		got = append(got, strings.TrimSpace(e.Log))
		if len(got) == 2 {
			// The tail is out: what comes now is followed.
			fmt.Fprintf(lw, "done\n")
			for i := 0; i < 3; i++ {
				fmt.Fprintf(lw, "new %d\n", i)
			}
			close(stop)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"old 98", "old 99", "half done", "new 0", "new 1", "new 2"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
