// Package cli is the command-line client role of balena-engine. It follows
// the docker CLI's command names, flags, output and exit codes for the
// commands a device operator uses, and talks to the daemon through the
// client package. Flags are parsed with pflag; the command table is a plain
// map, which is all cobra would give us at a fifth of its size.
package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/balena-os/balena-engine/src/client"
	"github.com/balena-os/balena-engine/src/version"
	"github.com/spf13/pflag"
)

// DefaultHost is the daemon socket the client uses without -H or DOCKER_HOST.
const DefaultHost = "unix:///var/run/balena-engine.sock"

// Exit codes, as the docker CLI uses them.
const (
	exitError = 1   // the command ran and failed
	exitUsage = 125 // the command line itself is wrong
)

// command is one client command.
type command struct {
	summary string
	// run executes the command; args exclude the command name.
	run func(ctx context.Context, e *env, args []string) error
}

var commands map[string]command

func init() {
	// Filled here rather than in the declaration: the help command reads
	// the table it belongs to.
	commands = map[string]command{
		"version":   {"Show the balena-engine version information", runVersion},
		"help":      {"Show help for a command", runHelp},
		"pull":      {"Download an image from a registry", runPull},
		"push":      {"Upload an image to a registry", runPush},
		"images":    {"List images", runImages},
		"rmi":       {"Remove one or more images", runRmi},
		"tag":       {"Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", runTag},
		"inspect":   {"Return low-level information on images", runInspect},
		"history":   {"Show the history of an image", runHistory},
		"image":     {"Manage images", runImage},
		"save":      {"Save one or more images to a tar archive (streamed to STDOUT by default)", runSave},
		"load":      {"Load an image from a tar archive or STDIN", runLoad},
		"events":    {"Get real time events from the server", runEvents},
		"import":    {"Import the contents from a tarball to create a filesystem image", runImport},
		"run":       {"Create and run a new container from an image", runRun},
		"create":    {"Create a new container", runCreate},
		"start":     {"Start one or more stopped containers", runStart},
		"stop":      {"Stop one or more running containers", runStopLike("stop")},
		"restart":   {"Restart one or more containers", runStopLike("restart")},
		"kill":      {"Kill one or more running containers", runStopLike("kill")},
		"rm":        {"Remove one or more containers", runRm},
		"ps":        {"List containers", runPs},
		"logs":      {"Fetch the logs of a container", runLogs},
		"wait":      {"Block until one or more containers stop, then print their exit codes", runWait},
		"rename":    {"Rename a container", runRename},
		"update":    {"Update configuration of one or more containers", runUpdate},
		"export":    {"Export a container's filesystem as a tar archive", runExport},
		"diff":      {"Inspect changes to files or directories on a container's filesystem", runDiff},
		"container": {"Manage containers", runContainer},
		"volume":    {"Manage volumes", runVolume},
		"network":   {"Manage networks", runNetwork},
		"port":      {"List port mappings or a specific mapping for the container", runPort},
		"system":    {"Manage balena-engine", runSystem},
		"exec":      {"Execute a command in a running container", runExec},
		"pause":     {"Pause all processes within one or more containers", runSimple("pause")},
		"unpause":   {"Unpause all processes within one or more containers", runSimple("unpause")},
		"info":      {"Display system-wide information", runInfo},
		"top":       {"Display the running processes of a container", runTop},
		"stats":     {"Display a live stream of container(s) resource usage statistics", runStats},
		"cp":        {"Copy files/folders between a container and the local filesystem", runCp},
		"attach":    {"Attach local standard input, output, and error streams to a running container", runAttach},
	}
}

// env is what a command runs with.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	host           string
	client         *client.Client
}

// usageError is a mistake on the command line (exit 125).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// Main runs the client with args (without the program name) and returns the
// exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("balena-engine", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SetInterspersed(false) // flags after the command name are the command's
	host := fs.StringP("host", "H", "", "daemon socket to connect to (default "+DefaultHost+", or $DOCKER_HOST)")
	fs.BoolP("debug", "D", false, "enable debug mode")
	fs.StringP("log-level", "l", "info", `set the logging level ("debug", "info", "warn", "error", "fatal")`)
	showVersion := fs.BoolP("version", "v", false, "print version information and quit")
	help := fs.BoolP("help", "h", false, "print usage")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "%v\nSee 'balena-engine --help'.\n", err)
		return exitUsage
	}
	if *showVersion {
		fmt.Fprintln(stdout, version.Get().String())
		return 0
	}
	if *help || fs.NArg() == 0 {
		printUsage(stdout, fs)
		return 0
	}
	name, rest := fs.Arg(0), fs.Args()[1:]
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "balena-engine: '%s' is not a balena-engine command.\nSee 'balena-engine --help'\n", name)
		return exitError
	}

	e := &env{stdin: os.Stdin, stdout: stdout, stderr: stderr, host: *host}
	if e.host == "" {
		e.host = os.Getenv("DOCKER_HOST")
	}
	if e.host == "" {
		e.host = DefaultHost
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := cmd.run(ctx, e, rest)
	if e.client != nil {
		e.client.Close()
	}
	var ue usageError
	var ee containerExit
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, pflag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "%v\nSee 'balena-engine %s --help'.\n", err, name)
		return exitUsage
	default:
		fmt.Fprintln(stderr, err)
		return exitError
	}
}

// connect returns the client for the daemon, made on first use.
func (e *env) connect() (*client.Client, error) {
	if e.client == nil {
		c, err := client.New(e.host)
		if err != nil {
			return nil, err
		}
		e.client = c
	}
	return e.client, nil
}

// confirm asks a yes/no question on the terminal, as docker's prune does.
func confirm(e *env, warning string) bool {
	fmt.Fprint(e.stdout, warning+"\nAre you sure you want to continue? [y/N] ")
	answer, _ := bufio.NewReader(e.stdin).ReadString('\n')
	a := strings.ToLower(strings.TrimSpace(answer))
	return a == "y" || a == "yes"
}

// parseFilters reads --filter NAME=VALUE flags into the API's filters.
func parseFilters(list []string) (map[string][]string, error) {
	m := map[string][]string{}
	for _, f := range list {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, usageError{fmt.Sprintf("bad format of filter (expected name=value): %s", f)}
		}
		m[k] = append(m[k], v)
	}
	return m, nil
}

// addFilters reads --filter NAME=VALUE flags into the query.
func addFilters(q url.Values, list []string) error {
	m, err := parseFilters(list)
	if err == nil {
		setFilters(q, m)
	}
	return err
}

// setFilters puts filters in a query, when there are any, as the docker CLI
// sends them: {"name":{"value":true}}.
func setFilters(q url.Values, m map[string][]string) {
	if len(m) > 0 {
		d := map[string]map[string]bool{}
		for k, vs := range m {
			d[k] = map[string]bool{}
			for _, v := range vs {
				d[k][v] = true
			}
		}
		b, _ := json.Marshal(d)
		q.Set("filters", string(b))
	}
}

// parseExact parses a command's flags and checks that exactly n arguments
// follow them.
func parseExact(fs *pflag.FlagSet, args []string, n int) error {
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != n {
		plural := "s"
		if n == 1 {
			plural = ""
		}
		return usageError{fmt.Sprintf(`"balena-engine %s" requires exactly %d argument%s.`, fs.Name(), n, plural)}
	}
	return nil
}

// parseConnect is parseExact, then a connection to the daemon.
func (e *env) parseConnect(fs *pflag.FlagSet, args []string, n int) (*client.Client, error) {
	if err := parseExact(fs, args, n); err != nil {
		return nil, err
	}
	return e.connect()
}

// flags returns a FlagSet for a command whose errors become usage errors
// and whose --help prints the command's usage. name is the command, or a
// group and its command ("network create").
func (e *env) flags(name, usage string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	group, _, _ := strings.Cut(name, " ")
	fs.Usage = func() {
		fmt.Fprintf(e.stdout, "Usage:  balena-engine %s\n\n%s\n", usage, commands[group].summary)
		if f := fs.FlagUsages(); f != "" {
			fmt.Fprintf(e.stdout, "\nOptions:\n%s", f)
		}
	}
	return fs
}

// parse parses a command's flags, turning errors into usage errors.
// pflag itself prints the usage for --help (and -h where it is not a flag).
func parse(fs *pflag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if errors.Is(err, pflag.ErrHelp) {
		return err
	}
	if err != nil {
		return usageError{err.Error()}
	}
	return nil
}

func printUsage(w io.Writer, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "\nUsage:  balena-engine [OPTIONS] COMMAND\n\nA container engine for embedded and IoT devices\n\nCommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "  %-10s %s\n", "daemon", "Run the balena-engine daemon")
	fmt.Fprintf(w, "\nGlobal Options:\n%s\nRun 'balena-engine COMMAND --help' for more information on a command.\n", fs.FlagUsages())
}

func runHelp(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return Run(e, "--help")
	}
	if _, ok := commands[args[0]]; !ok {
		return usageError{fmt.Sprintf("unknown help topic: %q", args[0])}
	}
	return commands[args[0]].run(ctx, e, []string{"--help"})
}

// Run runs the client in e's streams and reports a non-zero exit as an error.
func Run(e *env, args ...string) error {
	if code := Main(args, e.stdout, e.stderr); code != 0 {
		return fmt.Errorf("exit status %d", code)
	}
	return nil
}
