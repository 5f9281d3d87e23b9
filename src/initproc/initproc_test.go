package initproc

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary plays the init when asked: a subreaper stands in for
// PID 1 of a namespace, so that orphans come to it.
func TestMain(m *testing.M) {
	if os.Getenv("INITPROC_TEST_INIT") == "1" {
		unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
		os.Exit(Main(os.Args[1:], os.Stderr))
	}
	os.Exit(m.Run())
}

func initCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "INITPROC_TEST_INIT=1")
	return cmd
}

func TestExitCode(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"--", "sh", "-c", "exit 7"}, 7},
		{[]string{"true"}, 0},
		{[]string{"sh", "-c", "kill -KILL $$"}, 128 + 9},
		{[]string{"--", "no-such-command-here"}, 127},
		{[]string{"--"}, 1},
	} {
		err := initCmd(c.args...).Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != c.code {
			t.Errorf("%v: exit %d, want %d", c.args, code, c.code)
		}
	}
}

func TestForwardsSignals(t *testing.T) {
	cmd := initCmd("sh", "-c", `trap "exit 42" TERM; echo ready; while :; do sleep 0.05; done`)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		cmd.Process.Kill()
		t.Fatalf("child said %q", line)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 42 {
		t.Errorf("after SIGTERM to the init: %v, want the command's trap (exit 42)", err)
	}
}

func TestReapsOrphans(t *testing.T) {
	// The subshell leaves a short sleep behind; it becomes the init's
	// child and, once it exits, must not stay a zombie.
	cmd := initCmd("sh", "-c", `(sleep 0.05 &); echo ready; sleep 2`)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	bufio.NewReader(out).ReadString('\n')
	time.Sleep(500 * time.Millisecond)
	children, zombies := 0, 0
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(fields[1]); ppid == cmd.Process.Pid {
			children++
			if fields[0] == "Z" {
				zombies++
			}
		}
	}
	if children == 0 {
		t.Fatal("the init has no children: the command is not running under it")
	}
	if zombies != 0 {
		t.Errorf("%d zombie children of the init", zombies)
	}
}
