//go:build e2e

package e2e

// What the scripted compat suites (the docker CLI's, Compose's) share:
// checks run one by one, each printing a PASS, SKIP (a named engine gap)
// or FAIL line, then a SUMMARY line that a reader of the log can check.

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// checkFailed ends a check early (panicked, recovered by run). A check is
// skipped only as a named gap, never by itself.
type checkFailed struct{ why string }

type checkTime struct {
	name string
	d    time.Duration
}

func (c checkTime) String() string {
	return fmt.Sprintf("%s %s", c.name, c.d.Round(10*time.Millisecond))
}

// suiteLog is one run of a suite: "docker-cli 28.2.2", "compose 5.6.0".
type suiteLog struct {
	t        *testing.T
	suite    string            // "docker-cli", "compose"
	version  string            // the client's version
	gaps     map[string]string // check name (or NAME@KEY) -> the engine gap
	gapsName string            // the gaps table, named in a stale entry's note

	pass, skip, fail int
	out              strings.Builder // every line printed
	times            []checkTime
}

// println prints a line of the suite's output as it comes, and keeps it.
func (s *suiteLog) println(line string) {
	fmt.Println(line)
	s.out.WriteString(line + "\n")
}

// run runs one check and prints its line; gapKey, when not "", names a
// more specific gap entry (NAME@gapKey) looked up first. It says whether
// the check failed.
func (s *suiteLog) run(name, gapKey string, fn func()) bool {
	began := time.Now()
	defer func() { s.times = append(s.times, checkTime{name, time.Since(began)}) }()
	status, why := "PASS", ""
	func() {
		defer func() {
			switch r := recover().(type) {
			case nil:
			case checkFailed:
				status, why = "FAIL", r.why
			default:
				status, why = "FAIL", fmt.Sprintf("panic: %v", r)
			}
		}()
		fn()
	}()
	gap, isGap := s.gaps[name+"@"+gapKey]
	if !isGap {
		gap, isGap = s.gaps[name]
	}
	switch {
	case status == "FAIL" && isGap:
		status, why = "SKIP", "engine gap: "+gap+" [seen: "+why+"]"
	case status == "PASS" && isGap:
		s.println("# " + name + " passes: its " + s.gapsName + " entry may be stale")
	}
	line := status + " " + name
	if why != "" {
		line += ": " + strings.Join(strings.Fields(why), " ")
	}
	s.println(line)
	switch status {
	case "PASS":
		s.pass++
	case "SKIP":
		s.skip++
	case "FAIL":
		s.fail++
		s.t.Errorf("%s %s: %s", s.suite, s.version, line)
	}
	return status == "FAIL"
}

// finish prints the SUMMARY line, checks the output as a reader of the
// log would (one summary line, whose counts are the result lines', and no
// FAIL) and logs the slowest checks.
func (s *suiteLog) finish(summary *regexp.Regexp, began time.Time) {
	s.println(fmt.Sprintf("SUMMARY %s %s: %d passed, %d skipped, %d failed", s.suite, s.version, s.pass, s.skip, s.fail))
	counts := map[string]int{}
	var summaries [][]string
	for _, l := range strings.Split(s.out.String(), "\n") {
		if m := compatLine.FindStringSubmatch(l); m != nil {
			counts[m[1]]++
		} else if m := summary.FindStringSubmatch(l); m != nil {
			summaries = append(summaries, m)
		}
	}
	if len(summaries) != 1 || summaries[0][1] != s.version {
		s.t.Fatalf("%s %s: want one SUMMARY line for it, found %q", s.suite, s.version, summaries)
	}
	m := summaries[0]
	if got := fmt.Sprintf("%d %d %d", counts["PASS"], counts["SKIP"], counts["FAIL"]); got != m[2]+" "+m[3]+" "+m[4] {
		s.t.Errorf("%s %s: the summary says %s passed, %s skipped, %s failed; the lines %s", s.suite, s.version, m[2], m[3], m[4], got)
	}
	if m[4] != "0" {
		s.t.Errorf("%s %s: %s checks failed", s.suite, s.version, m[4])
	}
	slices.SortFunc(s.times, func(a, b checkTime) int { return int(b.d - a.d) })
	s.t.Logf("%s %s: %s; slowest checks: %v", s.suite, s.version, time.Since(began).Round(100*time.Millisecond), s.times[:min(5, len(s.times))])
}

// failf ends the check as failed.
func (s *suiteLog) failf(format string, args ...any) {
	panic(checkFailed{fmt.Sprintf(format, args...)})
}

func (s *suiteLog) expect(cond bool, format string, args ...any) {
	if !cond {
		s.failf(format, args...)
	}
}

func (s *suiteLog) eq(got, want, what string) {
	if got != want {
		s.failf("%s = %q, want %q", what, got, want)
	}
}

func (s *suiteLog) contains(got, want, what string) {
	if !strings.Contains(got, want) {
		s.failf("%s = %q, want it to contain %q", what, got, want)
	}
}
