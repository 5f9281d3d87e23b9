package container

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/balena-os/balena-engine/src/errdefs"
)

// A missing path is Docker's not-found error, naming the container as the
// client named it (docker cp prints it).
func TestOpenInNotFound(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o644)
	root, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, p := range []string{"/nothing", "/file/below", "/no/such/dir/"} {
		_, err := openIn(root, p, "cpc")
		if errdefs.KindOf(err) != errdefs.KindNotFound || err.Error() != "Could not find the file "+p+" in container cpc" {
			t.Errorf("openIn(%s): %v (kind %v)", p, err, errdefs.KindOf(err))
		}
	}
	h, err := openIn(root, "/file", "cpc")
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
}
