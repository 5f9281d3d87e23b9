package container

import (
	"errors"
	"fmt"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
)

// Status values, as Docker names them.
const (
	StatusCreated    = "created"
	StatusRunning    = "running"
	StatusExited     = "exited"
	StatusRemoving   = "removing" // never recorded: a record goes in one transaction
	StatusRestarting = "restarting"
	StatusPaused     = "paused"
)

// State is a container's run state. Only State.transition changes it, so
// that the status and the fields that go with it change together and only
// as transitions allows.
type State struct {
	Status     string
	Pid        int
	ExitCode   int
	OOMKilled  bool
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time
	Health     *containertypes.Health `json:",omitempty"`
}

// event is what moves a container from one status to another.
type event string

const (
	evCreate           event = "create"
	evStart            event = "start"
	evStartFailed      event = "start-failed"
	evExit             event = "exit"
	evPause            event = "pause"
	evUnpause          event = "unpause"
	evRestartScheduled event = "restart-scheduled"
	evRestartCancelled event = "restart-cancelled"
	evRemove           event = "remove"
)

// statusGone is the "status" of a container before create and after
// remove: it has no record.
const statusGone = ""

// transitions are every allowed change of status; docs/containers.md
// shows the same table.
var transitions = []struct {
	from string
	ev   event
	to   string
}{
	{statusGone, evCreate, StatusCreated},
	{StatusCreated, evStart, StatusRunning},
	{StatusExited, evStart, StatusRunning},
	{StatusRestarting, evStart, StatusRunning}, // a restart policy's start, or a user's during the back-off
	{StatusCreated, evStartFailed, StatusCreated},
	{StatusExited, evStartFailed, StatusExited},
	{StatusRestarting, evStartFailed, StatusExited}, // no restart is waiting any more
	{StatusRunning, evExit, StatusExited},
	{StatusPaused, evExit, StatusExited}, // killed while frozen, or ended while the engine was away
	{StatusRunning, evPause, StatusPaused},
	{StatusPaused, evUnpause, StatusRunning},
	{StatusExited, evRestartScheduled, StatusRestarting},
	{StatusRestarting, evRestartCancelled, StatusExited},
	{StatusCreated, evRemove, statusGone},
	{StatusExited, evRemove, statusGone},
	{StatusRestarting, evRemove, statusGone}, // forced: the pending restart is cancelled first
}

// nextStatus is the status that ev leads to from from, or a Conflict.
func nextStatus(from string, ev event) (string, error) {
	for _, t := range transitions {
		if t.from == from && t.ev == ev {
			return t.to, nil
		}
	}
	return "", errdefs.Conflict(&transitionError{From: from, Event: ev})
}

// transitionError is a transition that the table does not allow.
type transitionError struct {
	From  string
	Event event
}

func (e *transitionError) Error() string {
	if e.From == StatusPaused && e.Event == evStart {
		return "cannot start a paused container, try unpause instead" // Docker's wording
	}
	from := e.From
	if from == statusGone {
		from = "not created"
	}
	return fmt.Sprintf("cannot %s a container that is %s", e.Event, from)
}

// refused says whether err is a transition the table does not allow.
func refused(err error) bool {
	var te *transitionError
	return errors.As(err, &te)
}

// outcome is what an event brings besides the status: the process of a
// start; the end of an exit or of a failed start.
type outcome struct {
	Pid        int
	StartedAt  time.Time
	ExitCode   int
	OOMKilled  bool
	Error      string
	FinishedAt time.Time
}

// transition applies ev to s, with the fields that go with it, if the
// table allows it; s is left as it was otherwise.
func (s *State) transition(ev event, o outcome) error {
	to, err := nextStatus(s.Status, ev)
	if err != nil {
		return err
	}
	switch ev {
	case evStart:
		// A new run: nothing of the last one (exit code, error, health)
		// is left.
		*s = State{Pid: o.Pid, StartedAt: o.StartedAt}
	case evStartFailed:
		s.Error = o.Error
		s.ExitCode = o.ExitCode
	case evExit:
		s.Pid = 0
		s.ExitCode = o.ExitCode
		s.OOMKilled = o.OOMKilled
		s.Error = o.Error
		s.FinishedAt = o.FinishedAt
	}
	s.Status = to
	return nil
}

// transition moves a container's record by ev, in one transaction with
// what also (if not nil) changes besides its state. A transition the
// table refuses is a Conflict and changes nothing.
func (m *Manager) transition(id string, ev event, o outcome, also func(*Container)) (*Container, error) {
	return m.records.update(id, func(c *Container) error {
		if err := c.State.transition(ev, o); err != nil {
			return err
		}
		if also != nil {
			also(c)
		}
		return nil
	})
}

// transitionOrLog is transition where the caller cannot do better than
// say that it failed: a refused transition, or a record that could not be
// written (the disk is full), which keeps its last state for the next
// daemon start to reconcile. A removed container is no failure.
func (m *Manager) transitionOrLog(id string, ev event, o outcome) (*Container, error) {
	c, err := m.transition(id, ev, o, nil)
	if err != nil && errdefs.KindOf(err) != errdefs.KindNotFound {
		m.log.Error("container state not changed", "id", id, "event", string(ev), "err", err)
	}
	return c, err
}
