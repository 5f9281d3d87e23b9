package layer

import (
	"testing"
)

func TestIOPriority(t *testing.T) {
	for in, want := range map[string]IOPriority{"none": 0, "": 0, "idle": 3 << 13, "best-effort:7": 2<<13 | 7, "be:0": 2 << 13} {
		if got, err := ParseIOPriority(in); err != nil || got != want {
			t.Errorf("ParseIOPriority(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"low", "best-effort:8", "be:-1", "realtime:1"} {
		if _, err := ParseIOPriority(bad); err == nil {
			t.Errorf("ParseIOPriority(%q) accepted", bad)
		}
	}
	before, err := ioprioGet()
	if err != nil {
		t.Skipf("ioprio_get: %v", err)
	}
	var inside int
	err = withIOPriority(IOPriority(3<<13), func() error {
		inside, err = ioprioGet()
		return err
	})
	if err != nil || inside != 3<<13 {
		t.Errorf("inside: %d, %v; want idle (%d)", inside, err, 3<<13)
	}
	// withIOPriority restores its thread; this goroutine may be on any
	// thread, but the one we started on must be as before if we are on it.
	if after, _ := ioprioGet(); after != before && after == 3<<13 {
		t.Errorf("priority left at idle")
	}
}
