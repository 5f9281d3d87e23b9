package api

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/balena-os/balena-engine/src/apiversion"
	"github.com/balena-os/balena-engine/src/errdefs"
	"golang.org/x/net/websocket"
)

// containerAttachWS is GET /containers/{id}/attach/ws: attach over a
// WebSocket, which browser consoles (Portainer's, for one) use. The output
// is raw, stdout and stderr together, in binary frames from API 1.42 (text
// before, as Docker); what the client sends goes to the container's input
// when it was run with -i. A browser page of another origin is refused
// (see sameOrigin).
func (s *Server) containerAttachWS(w http.ResponseWriter, r *http.Request) error {
	if err := sameOrigin(r); err != nil {
		return err
	}
	at, err := s.openAttach(r)
	if err != nil {
		return err
	}
	defer at.close()
	binary := apiversion.Compare(RequestVersion(r.Context()), "1.42") >= 0
	srv := websocket.Server{
		Handshake: func(*websocket.Config, *http.Request) error { return nil }, // checked above
		Handler: func(ws *websocket.Conn) {
			defer ws.Close()
			if binary {
				ws.PayloadType = websocket.BinaryFrame
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if at.stdin {
				go func() {
					if s.feedStdin(ctx, at, ws) {
						ws.Close() // detached: the client is let go
						at.stopLive()
					}
				}()
			}
			s.relayOutput(ctx, at, func(stream byte, p []byte) error {
				if !at.wants(stream) {
					return nil
				}
				_, err := ws.Write(p)
				return err
			})
		},
	}
	srv.ServeHTTP(w, r)
	return nil
}

// sameOrigin refuses a WebSocket handshake a browser makes for a page of
// another origin than the API's: WebSockets are not subject to CORS, so
// without it any web page a user of a forwarded API socket visits could
// attach to (and type into) containers. Browsers always send Origin; a
// client that sends none is not a browser and is let through, as one that
// names the host it connects to is.
func sameOrigin(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if err == nil && u.Host != "" && strings.EqualFold(hostPort(u.Host, u.Scheme), hostPort(r.Host, scheme)) {
		return nil
	}
	return errdefs.Forbidden(fmt.Errorf("cross-origin WebSocket attach refused: origin %q does not match host %q", origin, r.Host))
}

// hostPort is host with the scheme's default port made explicit.
func hostPort(host, scheme string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	port := "80"
	if scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}
