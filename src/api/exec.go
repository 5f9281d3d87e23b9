package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"

	"github.com/balena-os/balena-engine/src/apiversion"
	"github.com/balena-os/balena-engine/src/stdstream"
	containertypes "github.com/moby/moby/api/types/container"
)

func (s *Server) registerExec() {
	s.handle("POST /containers/{id}/exec", s.execCreate)
	s.handle("POST /exec/{id}/start", s.execStart)
	s.handle("GET /exec/{id}/json", s.execInspect)
	s.handle("POST /exec/{id}/resize", func(w http.ResponseWriter, r *http.Request) error {
		h, wd, err := termSize(r)
		if err != nil {
			return err
		}
		return okStatus(w, s.cfg.Containers.ExecResize(r.Context(), r.PathValue("id"), h, wd))
	})
}

func (s *Server) execCreate(w http.ResponseWriter, r *http.Request) error {
	var req containertypes.ExecCreateRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if apiversion.Compare(RequestVersion(r.Context()), "1.42") < 0 {
		req.ConsoleSize = nil // as Docker: not read before 1.42
	}
	e, err := s.cfg.Containers.ExecCreate(r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, containertypes.ExecCreateResponse{ID: e.ID})
}

func (s *Server) execInspect(w http.ResponseWriter, r *http.Request) error {
	e, err := s.cfg.Containers.ExecGet(r.PathValue("id"))
	if err != nil {
		return err
	}
	running, code, pid := e.State()
	s.cfg.Containers.ExecInspected(e)
	args := []string{}
	if len(e.Config.Cmd) > 1 {
		args = e.Config.Cmd[1:]
	}
	return writeJSON(w, http.StatusOK, containertypes.ExecInspectResponse{
		ID: e.ID, Running: running, ExitCode: code, ContainerID: e.ContainerID, Pid: pid,
		OpenStdin: e.Config.AttachStdin, OpenStdout: e.Config.AttachStdout, OpenStderr: e.Config.AttachStderr,
		DetachKeys: e.DetachKeys,
		ProcessConfig: &containertypes.ExecProcessConfig{Tty: e.Config.Tty, Entrypoint: e.Config.Cmd[0], Arguments: args, User: e.Config.User,
			Privileged: &e.Config.Privileged},
	})
}

// execStart runs the exec: detached, it answers at once; attached, it
// hijacks the connection for stdin one way and Docker's multiplexed output
// the other.
func (s *Server) execStart(w http.ResponseWriter, r *http.Request) error {
	var req containertypes.ExecStartRequest
	if r.ContentLength != 0 {
		if err := decodeOptionalBody(r, &req); err != nil {
			return err
		}
	}
	id := r.PathValue("id")
	e, err := s.cfg.Containers.ExecGet(id)
	if err != nil {
		return err
	}
	if req.ConsoleSize != nil && apiversion.Compare(RequestVersion(r.Context()), "1.42") >= 0 {
		e.SetConsoleSize(req.ConsoleSize)
	}
	if req.Detach {
		go s.cfg.Containers.ExecStart(s.bgContext(), id, nil, nil)
		w.WriteHeader(http.StatusOK)
		return nil
	}
	// As Docker, the start request's Tty decides the framing, whatever the
	// exec was created with: a client that asks for no TTY here
	// (dockerode's default) demultiplexes, and gets frames.
	conn, in, mw, err := hijackStream(w, r, req.Tty)
	if err != nil {
		return err
	}
	defer conn.Close()
	// A terminal's input is watched for the detach keys, as Docker does:
	// then the client is let go. The process goes on, its output read and
	// dropped until it ends, once its client is gone, by its keys or not
	// (the docker CLI watches for them too, and just leaves), as Docker's
	// execs do: nor does its client's going end it (the request's context
	// is not the process's).
	var detached, gone atomic.Bool
	var stdin io.Reader
	if e.Config.AttachStdin {
		stdin = in
		if e.Config.Tty {
			stdin = &detachWatch{r: stdstream.NewDetachReader(in, e.DetachKeys), onDetach: func() {
				detached.Store(true)
				conn.Close()
				s.cfg.Containers.ExecDetached(e)
			}}
		}
	}
	_, err = s.cfg.Containers.ExecStart(context.WithoutCancel(r.Context()), id, stdin, func(stream byte, p []byte) error {
		if (stream == 1 && !e.Config.AttachStdout) || (stream == 2 && !e.Config.AttachStderr) || gone.Load() || detached.Load() {
			return nil
		}
		var err error
		if req.Tty {
			err = mw.Raw(p)
		} else {
			err = mw.Frame(stream, p)
		}
		if err != nil {
			gone.Store(true)
		}
		return nil
	})
	if detached.Load() || gone.Load() {
		return nil
	}
	if err != nil {
		// The stream has begun: the error goes to stderr, as Docker does
		// for an exec that cannot start.
		mw.Frame(2, []byte(err.Error()+"\n"))
	}
	return nil
}

// detachWatch calls onDetach, once, when the input it reads holds the
// detach keys, and then ends as input does.
type detachWatch struct {
	r        *stdstream.DetachReader
	onDetach func()
}

func (d *detachWatch) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if errors.Is(err, stdstream.ErrDetached) {
		d.onDetach()
		return n, io.EOF // the exec's input stays open: see its ExecStart
	}
	return n, err
}
