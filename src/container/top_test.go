package container

import (
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/balena-os/balena-engine/src/errdefs"
)

// ps's lines are kept for the PIDs asked for, found by the header's PID
// column wherever it is; a thread line ("-") goes with its process's.
func TestParsePS(t *testing.T) {
	out := "USER PID %CPU COMMAND\nroot 1 0.0 init\n" +
		"root 7 0.0 sleep 1000\nroot - 0.0 -\nroot 9 0.0 sh -c x\nroot - 0.0 -\n\n"
	top, err := parsePS(out, []int{7})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"root", "7", "0.0", "sleep 1000"}, {"root", "-", "0.0", "-"}}
	if !slices.Equal(top.Titles, []string{"USER", "PID", "%CPU", "COMMAND"}) || len(top.Processes) != 2 ||
		!slices.Equal(top.Processes[0], want[0]) || !slices.Equal(top.Processes[1], want[1]) {
		t.Errorf("parsePS: %q %q, want %q", top.Titles, top.Processes, want)
	}
	if _, err := parsePS("USER COMMAND\nroot x\n", []int{7}); err == nil || err.Error() != "Couldn't find PID field in ps output" {
		t.Errorf("no PID column: %v", err)
	}
	if _, err := parsePS("PID CMD\nx y\n", []int{7}); err == nil || !strings.HasPrefix(err.Error(), "Unexpected pid 'x'") {
		t.Errorf("a bad PID: %v", err)
	}
}

// Renaming a PID column is refused, as Docker: its rows could not be
// told apart.
func TestValidatePSArgs(t *testing.T) {
	for args, want := range map[string]string{
		"-o pid,comm":        "",
		"-ef":                "",
		"-o pid= -o x=PID":   `specifying "x=PID" is not allowed`,
		"-o pid= -o pid=PID": "",
	} {
		err := validatePSArgs(args)
		if (err == nil) != (want == "") || (err != nil && (err.Error() != want || errdefs.KindOf(err) != errdefs.KindUnknown)) { // Docker's 500
			t.Errorf("%q: %v, want %q", args, err, want)
		}
	}
}

// The host's ps runs with the arguments, its rows kept for the PIDs;
// without ps on the host, Docker's error.
func TestHostPS(t *testing.T) {
	me := os.Getpid()
	top, err := hostPS(context.Background(), "-o pid,comm", []int{me})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(top.Titles, []string{"PID", "COMMAND"}) || len(top.Processes) != 1 || top.Processes[0][0] != strconv.Itoa(me) {
		t.Errorf("ps -o pid,comm: %q %q", top.Titles, top.Processes)
	}
	if _, err := hostPS(context.Background(), "--nosuchoption", []int{me}); err == nil || !strings.HasPrefix(err.Error(), "ps: ") {
		t.Errorf("a bad option: %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := hostPS(context.Background(), "aux", []int{me}); err == nil || err.Error() != `ps: exec: "ps": executable file not found in $PATH` {
		t.Errorf("no ps: %v", err)
	}
}
