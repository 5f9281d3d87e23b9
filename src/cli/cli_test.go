package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb strings.Builder
	code := Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestMainUsageAndErrors(t *testing.T) {
	nobody := "unix://" + filepath.Join(t.TempDir(), "nobody.sock")
	cases := []struct {
		args       []string
		code       int
		out, errIn string
	}{
		{nil, 0, "Usage:  balena-engine [OPTIONS] COMMAND", ""},
		{[]string{"--help"}, 0, "version    Show the balena-engine version information", ""},
		{[]string{"--version"}, 0, "balena-engine version ", ""},
		{[]string{"-v"}, 0, "balena-engine version ", ""},
		{[]string{"nope"}, 1, "", "balena-engine: 'nope' is not a balena-engine command.\nSee 'balena-engine --help'"},
		{[]string{"--nope"}, 125, "", "unknown flag: --nope"},
		{[]string{"version", "--nope"}, 125, "", "unknown flag: --nope\nSee 'balena-engine version --help'."},
		{[]string{"version", "--help"}, 0, "Usage:  balena-engine version [OPTIONS]", ""},
		{[]string{"help", "version"}, 0, "Usage:  balena-engine version [OPTIONS]", ""},
		{[]string{"help", "nope"}, 125, "", `unknown help topic: "nope"`},
		{[]string{"-H", nobody, "version"}, 1, "Client:\n Version:", "Cannot connect to the balena-engine daemon at " + nobody},
		{[]string{"-H", "ssh://x", "version"}, 1, "", `invalid host "ssh://x"`},
	}
	for _, c := range cases {
		code, out, errs := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(out, c.out) || !strings.Contains(errs, c.errIn) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
				c.args, code, out, errs, c.code, c.out, c.errIn)
		}
	}
}

func TestDockerHostEnv(t *testing.T) {
	sock := "unix://" + filepath.Join(t.TempDir(), "env.sock")
	t.Setenv("DOCKER_HOST", sock)
	_, _, errs := runCLI(t, "version")
	if !strings.Contains(errs, sock) {
		t.Errorf("DOCKER_HOST not used: %q", errs)
	}
	// -H wins over the environment.
	flag := "unix://" + filepath.Join(t.TempDir(), "flag.sock")
	_, _, errs = runCLI(t, "-H", flag, "version")
	if !strings.Contains(errs, flag) {
		t.Errorf("-H did not win over DOCKER_HOST: %q", errs)
	}
}

// --help prints a command's usage once (pflag prints it; parse must not
// print it again).
func TestHelpOnce(t *testing.T) {
	for _, args := range [][]string{{"diff", "--help"}, {"cp", "--help"}, {"top", "-h"}, {"container", "attach", "--help"}, {"system", "info", "--help"}} {
		code, out, _ := runCLI(t, args...)
		if code != 0 || strings.Count(out, "Usage:") != 1 {
			t.Errorf("%q: exit %d, usage printed %d times:\n%s", args, code, strings.Count(out, "Usage:"), out)
		}
	}
}
