package api

import (
	"io"
	"net/http"

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
		ProcessConfig: &containertypes.ExecProcessConfig{Entrypoint: e.Config.Cmd[0], Arguments: args, User: e.Config.User},
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
	var stdin io.Reader
	if e.Config.AttachStdin {
		stdin = in
	}
	_, err = s.cfg.Containers.ExecStart(r.Context(), id, stdin, func(stream byte, p []byte) error {
		if (stream == 1 && !e.Config.AttachStdout) || (stream == 2 && !e.Config.AttachStderr) {
			return nil
		}
		if req.Tty {
			return mw.Raw(p)
		}
		return mw.Frame(stream, p)
	})
	if err != nil {
		// The stream has begun: the error goes to stderr, as Docker does
		// for an exec that cannot start.
		mw.Frame(2, []byte(err.Error()+"\n"))
	}
	return nil
}
