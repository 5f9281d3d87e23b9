package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// ServeUDP serves queries arriving on c until c is closed, then returns nil
// once the queries in progress are done. Queries answered from the table are
// answered at once; forwarded ones each run in their own goroutine, at most
// MaxInFlight of them (beyond that: SERVFAIL). Malformed queries are dropped.
func (r *Resolver) ServeUDP(c net.PacketConn) error {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	buf := make([]byte, maxMsgSize)
	for {
		n, addr, err := c.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		resp, q, _ := r.prepare(buf[:n], false)
		if q != nil {
			if !r.acquire() {
				resp = q.reply(dnsmessage.RCodeServerFailure, nil, nil)
			} else {
				q.raw = append([]byte(nil), q.raw...) // buf is reused
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer r.release()
					_, _ = c.WriteTo(r.forward(ctx, q), addr)
				}()
				continue
			}
		}
		if resp != nil {
			_, _ = c.WriteTo(resp, addr)
		}
	}
}

// ServeTCP serves connections accepted on l until l is closed, then closes
// the connections still open and returns nil once they are done. Each
// connection may carry several queries, one after the other; it is closed
// after 10 s without one, or on a malformed query. At most 16
// connections per resolver are served at once; more are closed at once.
func (r *Resolver) ServeTCP(l net.Listener) error {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	backoff := 5 * time.Millisecond
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Most likely out of file descriptors: wait and try again.
			r.log("dns: accept: %v", err)
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		select {
		case r.conns <- struct{}{}:
		default:
			c.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-r.conns }()
			defer c.Close()
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			r.serveConn(ctx, c)
		}()
	}
}

func (r *Resolver) serveConn(ctx context.Context, c net.Conn) {
	var lb [2]byte
	for {
		_ = c.SetReadDeadline(time.Now().Add(r.idle))
		if _, err := io.ReadFull(c, lb[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(lb[:]))
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		resp, err := r.Answer(ctx, msg, true)
		if err != nil {
			return
		}
		out := make([]byte, 2+len(resp))
		binary.BigEndian.PutUint16(out, uint16(len(resp)))
		copy(out[2:], resp)
		_ = c.SetWriteDeadline(time.Now().Add(r.idle))
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}
