package client

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The client side (this package and the CLI) shares the executable with the
// daemon but must not depend on it: a change to the server must not be able
// to break, or bloat the build of, the client. This is the list of the
// engine's packages the client side may link; a new one belongs here only if
// it is not part of the server.
var clientSide = []string{
	"apiversion", "cli", "client", "errdefs", "stdstream", "treepack", "version",
}

func TestClientLinksNoServerPackage(t *testing.T) {
	const src = "github.com/balena-os/balena-engine/src/"
	goBin, err := exec.LookPath("go") // go test puts its own first in PATH
	if err != nil {
		t.Skip("no go command to list the dependencies with")
	}
	out, err := exec.Command(goBin, "list", "-deps", src+"cli", src+"client").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	seen := 0
	for _, p := range strings.Fields(string(out)) {
		name, ok := strings.CutPrefix(p, src)
		if !ok {
			continue
		}
		seen++
		if !slices.Contains(clientSide, name) {
			t.Errorf("the client side links %s, which is not in clientSide", p)
		}
	}
	if seen == 0 {
		t.Fatalf("go list named none of the engine's packages:\n%s", out)
	}
}
