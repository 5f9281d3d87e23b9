package bsdiff

import (
	"bytes"
	"io"
	"runtime"
	"testing"
)

// benchPair is a 4 MiB synthetic program and a relinked build of it.
func benchPair() (old, new []byte) {
	old = program(11, 4<<20)
	return old, relink(old, 11)
}

func BenchmarkDiff(b *testing.B) {
	pairs := []struct {
		name     string
		old, new []byte
	}{
		{"relinked", nil, nil},
		{"unrelated", randBytes(12, 4<<20), randBytes(13, 4<<20)},
	}
	pairs[0].old, pairs[0].new = benchPair()
	for _, p := range pairs {
		b.Run(p.name, func(b *testing.B) {
			b.SetBytes(int64(len(p.new)))
			var patch []byte
			for b.Loop() {
				var err error
				if patch, err = Diff(p.old, p.new); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(patch)), "patch-bytes")
		})
	}
}

func BenchmarkPatch(b *testing.B) {
	old, new := benchPair()
	patch, err := Diff(old, new)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(new)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Patch(io.Discard, bytes.NewReader(old), int64(len(old)), bytes.NewReader(patch), int64(len(new))); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMemory round-trips a relinked 16 MiB program, measuring Diff's peak
// live heap per input byte (at the points where it peaks) and Patch's
// memory, and checks both against what the documentation says.
func TestMemory(t *testing.T) {
	old := program(21, largeSize(t))
	new := relink(old, 21)
	var ms runtime.MemStats
	// The encoders Diff keeps for reuse, made by its first call.
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	if _, err := Diff(old[:1<<20], new[:1<<20]); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	t.Logf("zstd encoders kept by Diff: %.1f MiB", float64(ms.HeapAlloc-before)/(1<<20))

	var base, peak uint64
	testHookMem = func() {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
	}
	defer func() { testHookMem = nil }()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base, alloc0 := ms.HeapAlloc, ms.TotalAlloc
	patch, err := Diff(old, new)
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&ms)
	in := float64(len(old) + len(new))
	live, total := float64(peak-base), float64(ms.TotalAlloc-alloc0)
	t.Logf("Diff of %d+%d bytes: peak live heap %.1f MiB = %.2f bytes per input byte (%.2f per old byte); %.1f MiB allocated in all (%.2f per input byte); patch %d bytes",
		len(old), len(new), live/(1<<20), live/in, live/float64(len(old)), total/(1<<20), total/in, len(patch))
	if live/float64(len(old)) > 10 {
		t.Errorf("peak live heap of %.2f bytes per old byte; the index should take about 8", live/float64(len(old)))
	}
	testHookMem = nil

	runtime.GC()
	runtime.ReadMemStats(&ms)
	w := &memWriter{}
	if err := Patch(w, bytes.NewReader(old), int64(len(old)), bytes.NewReader(patch), int64(len(new))); err != nil {
		t.Fatal(err)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	growth := int64(max(w.peak, after.HeapAlloc)) - int64(ms.HeapAlloc)
	t.Logf("Patch to %d bytes: heap growth at most %d KiB, %d KiB allocated in all", len(new), growth>>10, (after.TotalAlloc-ms.TotalAlloc)>>10)
	if after.TotalAlloc-ms.TotalAlloc > 4<<20 {
		t.Errorf("Patch allocated %d bytes", after.TotalAlloc-ms.TotalAlloc)
	}
}
