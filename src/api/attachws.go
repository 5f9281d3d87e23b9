package api

import (
	"context"
	"net/http"

	"github.com/balena-os/balena-engine/src/apiversion"
	"golang.org/x/net/websocket"
)

// containerAttachWS is GET /containers/{id}/attach/ws: attach over a
// WebSocket, which browser consoles (Portainer's, for one) use. The output
// is raw, stdout and stderr together, in binary frames from API 1.42 (text
// before, as Docker); what the client sends goes to the container's input
// when it was run with -i. Any origin is accepted: the socket's
// permissions are the access control, as for the rest of the API.
func (s *Server) containerAttachWS(w http.ResponseWriter, r *http.Request) error {
	at, err := s.openAttach(r)
	if err != nil {
		return err
	}
	defer at.close()
	binary := apiversion.Compare(RequestVersion(r.Context()), "1.42") >= 0
	srv := websocket.Server{
		Handshake: func(*websocket.Config, *http.Request) error { return nil },
		Handler: func(ws *websocket.Conn) {
			defer ws.Close()
			if binary {
				ws.PayloadType = websocket.BinaryFrame
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if at.stdin {
				go s.feedStdin(ctx, at.c.ID, ws)
			}
			s.relayOutput(ctx, at.c.ID, at.replay, at.live, func(stream byte, p []byte) error {
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
