package errdefs

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

func TestKindOf(t *testing.T) {
	base := fs.ErrNotExist
	err := fmt.Errorf("image busybox: %w", NotFound(base))
	if KindOf(err) != KindNotFound {
		t.Fatalf("KindOf(%v) = %v, want KindNotFound", err, KindOf(err))
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Error("classified error no longer unwraps to its cause")
	}
	if err.Error() != "image busybox: file does not exist" {
		t.Errorf("message changed: %q", err.Error())
	}
	if KindOf(base) != KindUnknown {
		t.Error("unclassified error has a kind")
	}
	if NotFound(nil) != nil {
		t.Error("NotFound(nil) != nil")
	}
	// The outermost classification wins: a caller may reclassify.
	if k := KindOf(Conflict(InvalidParameter(base))); k != KindConflict {
		t.Errorf("KindOf(Conflict(InvalidParameter)) = %v", k)
	}
}
