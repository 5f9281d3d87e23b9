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

	"github.com/balena-os/balena-engine/src/logs"
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
	// held, for an attach that cuts and waits for a start, is closed when
	// its daemon has its snapshot: the start waits for it.
	held chan struct{}
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
	c.attachers, c.ended = nil, true
	c.mu.Unlock()
	for _, a := range list {
		a.end()
	}
}

// cutHold bounds how long an attach that cuts holds the container's
// output for the daemon's word: the daemon opens its log snapshot at
// once, so only a daemon that died meanwhile makes it wait this long.
const cutHold = 10 * time.Second

// handleAttach streams a container's output from now until it ends. For a
// container that is not running yet (the docker CLI attaches before it
// starts), the attacher waits for the next start and so misses nothing
// of it. The attach is registered before the 101 answer, so that a start
// the daemon sends after that answer is seen.
//
// With ?cut=1 (an attach with logs=1, which replays the log first), the
// attach joins the output between two chunks and holds it, and a start,
// until the daemon sends a byte: meanwhile the daemon takes its snapshot
// of the log, which then holds exactly the lines before the stream. The
// stream begins with what the log lacks of the output before: the start
// of a line still without its newline.
func (m *monitor) handleAttach(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	cut := r.URL.Query().Get("cut") != ""
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
	held := m.join(id, a, cut)
	waiting := a.held // set before a was registered, never changed
	release := func() {
		if held != nil {
			held.outMu.Unlock()
			held = nil
		}
		if waiting != nil {
			close(waiting)
			waiting = nil
		}
	}
	defer release()

	a.mu.Lock()
	brw.WriteString("HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n")
	if cut {
		// Where a journal's replay ends (its entries reach the journal
		// later than this).
		brw.WriteString("Log-Position: " + m.logPosition(id, held) + "\r\n")
	}
	brw.WriteString("\r\n")
	brw.Flush()
	if held != nil {
		for _, l := range held.lines {
			if p := l.w.Pending(); len(p) > 0 {
				a.out.Frame(l.stream, p)
			}
		}
	}
	a.mu.Unlock()
	if cut {
		// The daemon's byte (or its going) says its snapshot is taken.
		conn.SetReadDeadline(time.Now().Add(cutHold))
		brw.ReadByte()
		conn.SetReadDeadline(time.Time{})
		release()
	}

	// The daemon sends nothing more; its closing the connection (its
	// client went away) ends the attach early.
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

// logPosition is where a journal's replay ends for an attach that cut:
// the running container's writer's position (held; none of its entries
// if it is starting), or, before a start, the next run's epoch and none
// of its entries.
func (m *monitor) logPosition(id string, held *ctr) string {
	if held != nil {
		if nc, ok := held.log.(noClose); ok {
			if j, ok := nc.EntryWriter.(*logs.Journal); ok {
				return j.Position()
			}
		}
		return held.epoch + ":0" // its log is not open yet
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.epochs[id]
	if e == "" {
		e = logs.NewEpoch()
		m.epochs[id] = e
	}
	return e + ":0"
}

// join registers an attacher with a container that runs or is starting,
// or else with those waiting for its next start. With cut, the output of
// a running container is held (held is the container, its outMu locked),
// or the attacher holds that next start until it is released.
func (m *monitor) join(id string, a *attacher, cut bool) (held *ctr) {
	for {
		m.mu.Lock()
		c := m.ctrs[id]
		m.mu.Unlock()
		if c != nil && cut {
			// Not under m.mu: a chunk of output may wait on a slow
			// attacher, and the monitor must not wait with it.
			c.outMu.Lock()
		}
		m.mu.Lock()
		if m.ctrs[id] != c { // started again meanwhile
			m.mu.Unlock()
			if c != nil && cut {
				c.outMu.Unlock()
			}
			continue
		}
		live := false
		if c != nil {
			select {
			case <-c.done:
			default:
				c.mu.Lock()
				if !c.ended { // running, or starting
					live = true
					c.attachers = append(c.attachers, a)
				}
				c.mu.Unlock()
			}
		}
		if !live {
			if cut {
				a.held = make(chan struct{})
			}
			m.pending[id] = append(m.pending[id], a)
		}
		m.mu.Unlock()
		if c != nil && cut && !live {
			c.outMu.Unlock()
		}
		if live && cut {
			return c
		}
		return nil
	}
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

// takePending hands the attachers waiting for a container's start to it,
// once those that cut have been released (their daemon has its log
// snapshot, which must not have this start's output).
func (m *monitor) takePending(c *ctr, id string) {
	m.mu.Lock()
	list := m.pending[id]
	delete(m.pending, id)
	var holds []chan struct{}
	for _, a := range list {
		if a.held != nil {
			holds = append(holds, a.held)
		}
	}
	m.mu.Unlock()
	for _, h := range holds {
		select {
		case <-h:
		case <-time.After(cutHold):
		}
	}
	c.mu.Lock()
	c.attachers = append(c.attachers, list...)
	c.mu.Unlock()
}

// Attach returns a container's output from now until it ends, as Docker's
// multiplexed frames (a terminal's output is stream 1). Called before the
// container starts, it waits for the start and misses nothing.
func (c *Client) Attach(ctx context.Context, id string) (net.Conn, error) {
	conn, _, err := c.attach(ctx, id, "")
	return conn, err
}

// AttachCut is Attach for a caller that replays the container's log
// first. The container's output (or its next start) waits until release
// is called, which the caller does once it has taken its snapshot of the
// log (logs.Open): the log then holds exactly the lines before the
// stream, and the stream begins with the rest, first the start of a line
// the log has not got yet. Until then nothing should be read from the
// stream. A journal stores entries later than they are sent: pos is
// where its replay ends (logs.ReadJournalUpTo).
func (c *Client) AttachCut(ctx context.Context, id string) (conn net.Conn, pos string, release func(), err error) {
	var h http.Header
	conn, h, err = c.attach(ctx, id, "?cut=1")
	if err != nil {
		return nil, "", nil, err
	}
	var once sync.Once
	return conn, h.Get("Log-Position"), func() { once.Do(func() { conn.Write([]byte{1}) }) }, nil
}

func (c *Client) attach(ctx context.Context, id, query string) (net.Conn, http.Header, error) {
	if err := c.ensure(ctx); err != nil {
		return nil, nil, err
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(conn, "POST /attach/%s%s HTTP/1.1\r\nHost: monitor\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n", id, query)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("container monitor: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		conn.Close()
		return nil, nil, fmt.Errorf("container monitor: attach answered %s", resp.Status)
	}
	return &bufferedConn{Conn: conn, r: br}, resp.Header, nil
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
