package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"github.com/balena-os/balena-engine/src/network/dns"
	"github.com/balena-os/balena-engine/src/network/netns"
)

// The monitor serves the containers' name resolution (Docker's embedded
// DNS at 127.0.0.11): it outlives the daemon, so names keep resolving
// while the daemon restarts or is upgraded. The daemon sends the whole
// table after each change (SetDNS); the monitor keeps it in dns.json and
// serves it again after its own restart.

// DNSAddr is where a container's resolver listens, in its own namespace.
const DNSAddr = "127.0.0.11:53"

// dnsHost holds one resolver per container namespace.
type dnsHost struct {
	mu      sync.Mutex
	path    string
	servers map[string]*dnsServer // sandbox (container) ID
	log     func(msg string, args ...any)
}

type dnsServer struct {
	netns string
	res   *dns.Resolver
	udp   net.PacketConn
	tcp   net.Listener
}

func (s *dnsServer) close() {
	s.udp.Close()
	s.tcp.Close()
}

// apply serves t: a resolver for each sandbox that has none, the new
// table for all, and the sockets of sandboxes no longer in it closed
// (they would keep the namespace alive).
func (h *dnsHost) apply(t *dns.Table) {
	h.mu.Lock()
	defer h.mu.Unlock()
	keep := map[string]bool{}
	for _, sb := range t.Sandboxes {
		keep[sb.ID] = true
		if s := h.servers[sb.ID]; s != nil && s.netns == sb.Netns {
			continue
		} else if s != nil {
			s.close()
			delete(h.servers, sb.ID)
		}
		s, err := listenDNS(sb.ID, sb.Netns)
		if err != nil {
			h.log("container name resolution", "id", sb.ID, "err", err)
			continue
		}
		h.servers[sb.ID] = s
		go s.res.ServeUDP(s.udp)
		go s.res.ServeTCP(s.tcp)
	}
	for id, s := range h.servers {
		if !keep[id] {
			s.close()
			delete(h.servers, id)
		}
	}
	for _, s := range h.servers {
		s.res.SetTable(t)
	}
}

// listenDNS opens the resolver's sockets inside the container's
// namespace: they stay bound there whatever thread serves them.
func listenDNS(id, nsPath string) (*dnsServer, error) {
	s := &dnsServer{netns: nsPath, res: dns.NewResolver(id, dns.Options{})}
	err := netns.Do(nsPath, func() error {
		var err error
		if s.udp, err = net.ListenPacket("udp4", DNSAddr); err != nil {
			return err
		}
		if s.tcp, err = net.Listen("tcp4", DNSAddr); err != nil {
			s.udp.Close()
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s in %s: %w", DNSAddr, nsPath, err)
	}
	return s, nil
}

// load serves the table a previous monitor kept, if any.
func (h *dnsHost) load() {
	var t dns.Table
	if err := readJSONFile(h.path, &t); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			h.log("container name resolution table", "err", err)
		}
		return
	}
	h.apply(&t)
}

func (m *monitor) handleDNS(w http.ResponseWriter, r *http.Request) {
	var t dns.Table
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20)).Decode(&t); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// Kept before it is served: a monitor that dies now serves it again.
	if err := writeJSONFile(m.dns.path, &t); err != nil {
		fail(w, fmt.Errorf("name resolution table: %w", err))
		return
	}
	m.dns.apply(&t)
	w.WriteHeader(http.StatusNoContent)
}

// SetDNS gives the monitor the containers' name resolution table.
func (c *Client) SetDNS(ctx context.Context, t *dns.Table) error {
	return c.call(ctx, http.MethodPost, "/dns", t, nil)
}

func dnsTablePath(root string) string { return filepath.Join(root, "dns.json") }
