// Package client is a thin client for the Docker Engine API, written on the
// API types (github.com/moby/moby/api/types) rather than Docker's Go client,
// which would pull OpenTelemetry into the binary. It negotiates the API
// version with a ping, as Docker's client does, and turns error responses
// into errdefs-classified errors carrying the daemon's message.
package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/balena-os/balena-engine/src/apiversion"
	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/moby/moby/api/types/common"
	"github.com/moby/moby/api/types/system"
)

// Client talks to one daemon.
type Client struct {
	host string // as given, for messages
	base string // scheme and authority for request URLs
	http *http.Client
	dial func(ctx context.Context) (net.Conn, error) // a raw connection, for hijacked streams

	once    sync.Once
	version string // negotiated API version
	verErr  error
}

// New returns a client for host: unix:///path or tcp://addr:port (plain HTTP).
func New(host string) (*Client, error) {
	proto, addr, ok := strings.Cut(host, "://")
	if !ok || addr == "" {
		return nil, fmt.Errorf("invalid host %q: want unix:///path/to/socket or tcp://host:port", host)
	}
	tr := &http.Transport{DisableCompression: true}
	c := &Client{host: host, http: &http.Client{Transport: tr}}
	switch proto {
	case "unix":
		// The authority is a placeholder: the dialer ignores it.
		c.base = "http://api.balena-engine"
		c.dial = func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", addr)
		}
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) { return c.dial(ctx) }
	case "tcp":
		c.base = "http://" + addr
		c.dial = func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}
	default:
		return nil, fmt.Errorf("invalid host %q: unsupported protocol %q", host, proto)
	}
	return c, nil
}

// Host is the daemon address this client was made for.
func (c *Client) Host() string { return c.host }

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Ping is what GET /_ping tells about the daemon.
type Ping struct {
	APIVersion string
	OSType     string
}

// Ping asks the daemon for its API version. It does not negotiate.
func (c *Client) Ping(ctx context.Context) (Ping, error) {
	resp, err := c.send(ctx, http.MethodGet, "/_ping", nil, nil, nil)
	if err != nil {
		return Ping{}, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return Ping{APIVersion: resp.Header.Get("Api-Version"), OSType: resp.Header.Get("Ostype")}, nil
}

// APIVersion negotiates once and returns the version used for requests: the
// older of the daemon's and this client's newest.
func (c *Client) APIVersion(ctx context.Context) (string, error) {
	c.once.Do(func() {
		p, err := c.Ping(ctx)
		if err != nil {
			c.verErr = err
			return
		}
		c.version = apiversion.Max
		if p.APIVersion != "" && apiversion.Compare(p.APIVersion, c.version) < 0 {
			c.version = p.APIVersion
		}
	})
	return c.version, c.verErr
}

// ServerVersion is GET /version.
func (c *Client) ServerVersion(ctx context.Context) (system.VersionResponse, error) {
	var v system.VersionResponse
	err := c.getJSON(ctx, "/version", nil, &v)
	return v, err
}

// Info is GET /info.
func (c *Client) Info(ctx context.Context) (system.Info, error) {
	var v system.Info
	err := c.getJSON(ctx, "/info", nil, &v)
	return v, err
}

func (c *Client) getJSON(ctx context.Context, path string, query url.Values, out any) error {
	resp, err := c.Do(ctx, http.MethodGet, path, query, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode response of GET %s: %w", path, err)
	}
	return nil
}

// Do sends a request under the negotiated version prefix. A response with an
// error status is returned as an error; otherwise the caller closes the body.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body io.Reader) (*http.Response, error) {
	return c.DoHeader(ctx, method, path, query, body, nil)
}

// DoHeader is Do with extra request headers.
func (c *Client) DoHeader(ctx context.Context, method, path string, query url.Values, body io.Reader, hdr http.Header) (*http.Response, error) {
	v, err := c.APIVersion(ctx)
	if err != nil {
		return nil, err
	}
	return c.send(ctx, method, "/v"+v+path, query, body, hdr)
}

func (c *Client) send(ctx context.Context, method, path string, query url.Values, body io.Reader, hdr http.Header) (*http.Response, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if body != nil && hdr.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &ConnectError{Host: c.host, Err: err}
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, responseError(resp)
	}
	return resp, nil
}

// ConnectError means the daemon could not be reached at all.
type ConnectError struct {
	Host string
	Err  error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("Cannot connect to the balena-engine daemon at %s. Is the balena-engine daemon running?", e.Host)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// ResponseError is an error status from the daemon, with its message.
type ResponseError struct {
	StatusCode int
	Message    string
}

func (e *ResponseError) Error() string { return "Error response from daemon: " + e.Message }

func responseError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	msg := strings.TrimSpace(string(b))
	var e common.ErrorResponse
	if json.Unmarshal(b, &e) == nil && e.Message != "" {
		msg = e.Message
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return errdefs.FromHTTPStatus(resp.StatusCode, &ResponseError{StatusCode: resp.StatusCode, Message: msg})
}
