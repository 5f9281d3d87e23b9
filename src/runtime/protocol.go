// Package runtime runs containers. A monitor process (the binary's hidden
// "__monitor" role) is the parent of every container: it starts them with
// runc's libcontainer, holds their stdio, writes their logs and collects
// their exit statuses as a child subreaper. The daemon talks to it over a
// unix socket and can crash, restart or be upgraded while containers run:
// the monitor, and so every container's output and exit status, outlives
// it. One monitor serves all containers, so a container costs a few
// goroutines and pipes rather than a shim process each.
package runtime

import (
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// StartRequest asks the monitor to run a container.
type StartRequest struct {
	ID   string
	Spec *specs.Spec
	// Rootfs is mounted by the daemon; the monitor unmounts it when the
	// container has ended.
	Rootfs string
	// LogDriver is "json-file", "local" (both files at LogPath), "journald"
	// (entries with JournalFields) or "none".
	LogDriver     string
	JournalFields map[string]string
	LogPath       string
	LogMaxSize    int64
	LogMaxFile    int
	// LogCompress gzips rotated log files.
	LogCompress bool
	OpenStdin   bool
	StdinOnce   bool
}

// State is what the monitor knows of a container.
type State struct {
	ID         string
	Running    bool
	Pid        int
	ExitCode   int
	OOMKilled  bool
	StartedAt  time.Time
	FinishedAt time.Time
	Error      string // why it could not start, or how it ended abnormally
}

// ExecRequest asks the monitor to run a process in a running container.
// It is sent as the first line of a hijacked connection; then the daemon
// sends the process's stdin (raw bytes, a half-close ends it) and the
// monitor sends Docker's multiplexed frames of its output, and at the end
// one frame of stream ExitFrame holding an ExecExit in JSON.
type ExecRequest struct {
	ContainerID string
	Args        []string
	Env         []string
	Cwd         string
	UID, GID    uint32
	Groups      []uint32
	Stdin       bool
	Tty         bool
	ConsoleSize [2]uint16 // the terminal's first height and width, when set
	ExecID      string    // to resize its terminal
	// Capabilities, when set, are the process's bounding, permitted and
	// effective sets (docker exec --privileged), instead of the
	// container's.
	Capabilities []string
}

// ExitFrame is the stream byte of the frame that ends an exec.
const ExitFrame = 0x7f

// ExecExit is how an exec ended.
type ExecExit struct {
	ExitCode int
	Pid      int
	Error    string
}
