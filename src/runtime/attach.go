package runtime

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/balena-os/balena-engine/src/stdstream"
)

// An attacher receives a container's output as it is produced, in
// Docker's multiplexed frames, over a connection the daemon opened (one
// per "docker attach" or attached "docker run"). Output goes to attachers
// straight from the container's pipes, not through its log: prompts
// without a newline arrive at once, and a container whose log driver
// stores nothing ("none", "journald") can still be attached to.
type attacher struct {
	mu   sync.Mutex
	conn net.Conn
	out  *stdstream.Writer
	dead bool
	done chan struct{} // closed when the container's output has ended
	once sync.Once
}

// attachWriteTimeout bounds how long a container's output waits for an
// attacher that does not read (a hung daemon): then that attacher is
// dropped and the container goes on.
const attachWriteTimeout = 30 * time.Second

func (a *attacher) frame(stream byte, p []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.dead {
		return
	}
	a.conn.SetWriteDeadline(time.Now().Add(attachWriteTimeout))
	if err := a.out.Frame(stream, p); err != nil {
		a.dead = true
		a.conn.Close()
	}
}

func (a *attacher) end() { a.once.Do(func() { close(a.done) }) }

// broadcast sends a chunk of output to the container's attachers. The
// container's output waits for them, as with Docker.
func (c *ctr) broadcast(stream byte, p []byte) {
	c.mu.Lock()
	list := append([]*attacher(nil), c.attachers...)
	c.mu.Unlock()
	for _, a := range list {
		a.frame(stream, p)
	}
}

// endAttach ends every attach of a container whose output has ended (or
// that could not start).
func (c *ctr) endAttach() {
	c.mu.Lock()
	list := c.attachers
	c.attachers = nil
	c.mu.Unlock()
	for _, a := range list {
		a.end()
	}
}

// handleAttach streams a container's output from now until it ends. For a
// container that is not running yet (the docker CLI attaches before it
// starts), the attacher waits for the next start and so misses nothing
// of it. The attach is registered before the 101 answer, so that a start
// the daemon sends after that answer is seen.
func (m *monitor) handleAttach(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	hj, ok := w.(http.Hijacker)
	if !ok {
		fail(w, fmt.Errorf("no hijack"))
		return
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	bw := bufio.NewWriter(conn)
	a := &attacher{conn: conn, out: &stdstream.Writer{W: bw, Flush: bw.Flush}, done: make(chan struct{})}
	m.mu.Lock()
	c := m.ctrs[id]
	live := false
	if c != nil {
		select {
		case <-c.done:
		default:
			live = true // running, or starting
		}
	}
	if live {
		c.mu.Lock()
		c.attachers = append(c.attachers, a)
		c.mu.Unlock()
	} else {
		m.pending[id] = append(m.pending[id], a)
	}
	m.mu.Unlock()

	a.mu.Lock()
	brw.WriteString("HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	brw.Flush()
	a.mu.Unlock()

	// The daemon sends nothing; its closing the connection (its client
	// went away) ends the attach early.
	gone := make(chan struct{})
	go func() {
		io.Copy(io.Discard, brw)
		close(gone)
	}()
	select {
	case <-a.done:
		a.mu.Lock()
		bw.Flush()
		a.mu.Unlock()
	case <-gone:
	}
	m.detach(id, a)
}

// detach forgets an attacher, wherever it waits.
func (m *monitor) detach(id string, a *attacher) {
	remove := func(list []*attacher) []*attacher {
		out := list[:0]
		for _, x := range list {
			if x != a {
				out = append(out, x)
			}
		}
		return out
	}
	m.mu.Lock()
	if p := remove(m.pending[id]); len(p) > 0 {
		m.pending[id] = p
	} else {
		delete(m.pending, id)
	}
	c := m.ctrs[id]
	m.mu.Unlock()
	if c != nil {
		c.mu.Lock()
		c.attachers = remove(c.attachers)
		c.mu.Unlock()
	}
}

// handleEndAttach ends the attaches waiting for a container that will not
// start after all (the daemon refused the start, or removed it).
func (m *monitor) handleEndAttach(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	m.mu.Lock()
	list := m.pending[id]
	delete(m.pending, id)
	m.mu.Unlock()
	for _, a := range list {
		a.end()
	}
	w.WriteHeader(http.StatusNoContent)
}

// takePending hands the attachers waiting for a container's start to it.
func (m *monitor) takePending(c *ctr, id string) {
	m.mu.Lock()
	list := m.pending[id]
	delete(m.pending, id)
	m.mu.Unlock()
	c.mu.Lock()
	c.attachers = append(c.attachers, list...)
	c.mu.Unlock()
}

// Attach returns a container's output from now until it ends, as Docker's
// multiplexed frames (a terminal's output is stream 1). Called before the
// container starts, it waits for the start and misses nothing.
func (c *Client) Attach(ctx context.Context, id string) (net.Conn, error) {
	if err := c.ensure(ctx); err != nil {
		return nil, err
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(conn, "POST /attach/%s HTTP/1.1\r\nHost: monitor\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n", id)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("container monitor: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		conn.Close()
		return nil, fmt.Errorf("container monitor: attach answered %s", resp.Status)
	}
	return &bufferedConn{Conn: conn, r: br}, nil
}

// EndAttach ends the attaches waiting for a container to start.
func (c *Client) EndAttach(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodPost, "/end-attach/"+id, nil, nil)
}

// bufferedConn reads what the response reader already buffered first.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }
