package cli

import (
	"context"
	"errors"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/balena-os/balena-engine/src/client"
	"github.com/balena-os/balena-engine/src/stdstream"
	containertypes "github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

// runAttach connects the client's stdio to a running container's, as
// "docker attach" does, until the container's output ends; the exit code
// is then the container's.
func runAttach(ctx context.Context, e *env, args []string) error {
	fs := e.flags("attach", "attach [OPTIONS] CONTAINER")
	noStdin := fs.Bool("no-stdin", false, "do not attach STDIN")
	sigProxy := fs.Bool("sig-proxy", true, "proxy all received signals to the process")
	c, err := e.parseConnect(fs, args, 1)
	if err != nil {
		return err
	}
	id := fs.Arg(0)
	ctr, err := c.ContainerInspect(ctx, id)
	if err != nil {
		return err
	}
	if err := attachable(ctr); err != nil {
		return err
	}
	tty := ctr.Config != nil && ctr.Config.Tty
	input := !*noStdin && ctr.Config != nil && ctr.Config.OpenStdin
	if err := e.checkTTYInput(tty, input); err != nil {
		return err
	}
	// With signals proxied, an interrupt goes to the container and the
	// session goes on until its output ends: it must not end with the
	// command's context, which the first Ctrl-C cancels.
	proxy := *sigProxy && !tty
	sctx := ctx
	if proxy {
		sctx = context.WithoutCancel(ctx)
	}
	sctx, cancel := context.WithCancel(sctx)
	defer cancel()
	if proxy {
		stop := proxySignals(sctx, c, ctr.ID)
		defer stop()
	}
	// Asked before the attach, so that an exit right after it is seen.
	wait, err := c.ContainerWait(sctx, ctr.ID, "not-running")
	if err != nil {
		return err
	}
	q := url.Values{"stream": {"1"}, "stdout": {"1"}, "stderr": {"1"}}
	if input {
		q.Set("stdin", "1")
	}
	conn, err := c.ContainerAttach(sctx, ctr.ID, q)
	if err != nil {
		return err
	}
	defer conn.Close()
	if tty && input {
		defer e.rawInput()()
	}
	done := make(chan error, 1)
	go func() {
		done <- e.attachIO(sctx, conn, tty, input, func(h, w uint16) {
			c.ContainerPost(sctx, ctr.ID, "resize", sizeQuery(h, w))
		})
	}()
	select {
	case err := <-done:
		if errors.Is(err, stdstream.ErrDetached) {
			return err // as the docker CLI: "read escape sequence", 1
		}
	case <-sctx.Done():
		return nil // interrupted, signals not proxied: detach
	}
	codes := make(chan int, 1)
	errs := make(chan error, 1)
	go func() {
		code, err := wait()
		if err != nil {
			errs <- err
			return
		}
		codes <- code
	}()
	select {
	case code := <-codes:
		if code != 0 {
			return containerExit{code}
		}
		return nil
	case err := <-errs:
		return err
	case <-sctx.Done():
		return nil
	}
}

// attachable refuses what "docker attach" refuses, in its words.
func attachable(ctr containertypes.InspectResponse) error {
	st := ctr.State
	switch {
	case st == nil || !st.Running:
		//lint:ignore ST1005 Docker's wording
		return errors.New("You cannot attach to a stopped container, start it first")
	case st.Paused:
		//lint:ignore ST1005 Docker's wording
		return errors.New("You cannot attach to a paused container, unpause it first")
	case st.Restarting:
		//lint:ignore ST1005 Docker's wording
		return errors.New("You cannot attach to a restarting container, wait until it is running")
	}
	return nil
}

// proxiedSignals are the signals "attach" passes on to the container
// (--sig-proxy): those a person sends a foreground program.
var proxiedSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// proxySignals sends the container each proxied signal the client gets,
// until the returned function is called.
func proxySignals(ctx context.Context, c *client.Client, id string) func() {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, proxiedSignals...)
	quit := make(chan struct{})
	go func() {
		for {
			select {
			case <-quit:
				return
			case s := <-ch:
				sig, ok := s.(syscall.Signal)
				if !ok {
					continue
				}
				kctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				c.ContainerPost(kctx, id, "kill", url.Values{"signal": {unix.SignalName(sig)}})
				cancel()
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(quit)
	}
}
