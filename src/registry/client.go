// Package registry speaks the OCI distribution protocol (Docker's registry
// API v2) over net/http: resolving references, fetching manifests and
// indexes, choosing the platform, fetching blobs with resume, pushing, and
// authenticating (bearer tokens and basic auth). It is written on the OCI
// types rather than containerd's resolver, which would cost about 5 MiB of
// binary for the same protocol.
//
// Hosts named insecure (and loopback hosts, as Docker treats them) are
// tried over HTTPS without certificate checks first, then over plain HTTP.
// Mirrors serve pulls from Docker Hub; pushes always go to the registry.
package registry

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/distribution/reference"
)

// Docker Hub's names.
const (
	hubDomain   = "docker.io"
	hubRegistry = "registry-1.docker.io"
)

// Options configure a Client.
type Options struct {
	// Mirrors are base URLs ("https://mirror.example", "http://127.0.0.1:5001")
	// tried in order before Docker Hub for pulls from it.
	Mirrors []string
	// Insecure are registries ("host:port", "host", or a CIDR) reached
	// without TLS verification, or over plain HTTP.
	Insecure []string
	// MaxAttempts bounds the tries for one blob, first included (default 5).
	MaxAttempts int
	// BackoffBase and BackoffMax shape the exponential wait between tries
	// (defaults 1 s and 30 s).
	BackoffBase, BackoffMax time.Duration
	// StallTimeout aborts (and resumes) a transfer that has made no
	// progress for this long (default 60 s).
	StallTimeout time.Duration
	UserAgent    string
}

// Credentials authenticate to one registry, as Docker's AuthConfig does.
type Credentials struct {
	Username      string
	Password      string
	IdentityToken string // an OAuth refresh token
	RegistryToken string // a bearer token to use as is
}

// Client talks to registries. It is safe for concurrent use.
type Client struct {
	opts     Options
	secure   *http.Client
	insecure *http.Client // TLS verification off, for insecure registries

	mu      sync.Mutex
	schemes map[string]string // host -> "https" or "http", once learnt
	tokens  map[string]string // host + " " + scope -> bearer token
}

// New returns a client.
func New(opts Options) (*Client, error) {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = time.Second
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 30 * time.Second
	}
	if opts.StallTimeout <= 0 {
		opts.StallTimeout = 60 * time.Second
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "balena-engine"
	}
	for _, m := range opts.Mirrors {
		if u, err := url.Parse(m); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid registry mirror %q: want http(s)://host[:port]", m))
		}
	}
	for _, s := range opts.Insecure {
		if strings.Contains(s, "://") {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid insecure registry %q: give host[:port] or a CIDR, without a scheme", s))
		}
	}
	tr := func(insecure bool) *http.Client {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.DisableCompression = true // blobs are compressed already and digested as sent
		t.ResponseHeaderTimeout = opts.StallTimeout
		if insecure {
			t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
		}
		return &http.Client{Transport: t, CheckRedirect: keepAuthOnSameHost}
	}
	return &Client{opts: opts, secure: tr(false), insecure: tr(true),
		schemes: map[string]string{}, tokens: map[string]string{}}, nil
}

// keepAuthOnSameHost drops the Authorization header when a redirect leaves
// the host (blob storage on another host must not see registry tokens).
func keepAuthOnSameHost(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.URL.Host != via[0].URL.Host {
		req.Header.Del("Authorization")
	}
	return nil
}

// isInsecure says whether host may be reached without verified TLS.
func (c *Client) isInsecure(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if h == "localhost" {
		return true
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		return true
	}
	return c.namedInsecure(host)
}

// namedInsecure says whether host is in the insecure registries the
// daemon was given (loopback hosts, implicitly insecure, are not).
func (c *Client) namedInsecure(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	ip := net.ParseIP(h)
	for _, s := range c.opts.Insecure {
		if s == host || s == h {
			return true
		}
		if _, n, err := net.ParseCIDR(s); err == nil && ip != nil && n.Contains(ip) {
			return true
		}
	}
	return false
}

// Repository is one repository, reached with one set of credentials.
type Repository struct {
	c     *Client
	Named reference.Named
	host  string // registry host[:port]
	path  string // repository path on the registry
	creds *Credentials
	// mirrors are the base URLs to try, in order, before host for reads.
	mirrors []*url.URL
}

// Repository returns the repository named by ref (a normalized name).
func (c *Client) Repository(named reference.Named, creds *Credentials) *Repository {
	domain := reference.Domain(named)
	r := &Repository{c: c, Named: named, host: domain, path: reference.Path(named), creds: creds}
	if domain == hubDomain {
		r.host = hubRegistry
		for _, m := range c.opts.Mirrors {
			u, _ := url.Parse(strings.TrimSuffix(m, "/"))
			r.mirrors = append(r.mirrors, u)
		}
	}
	return r
}

// Host is the registry host the repository lives on.
func (r *Repository) Host() string { return r.host }

// Error is an error status from a registry, with the first error code the
// registry gave.
type Error struct {
	Status  int
	Code    string
	Message string
	URL     string
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Code != "" {
		return fmt.Sprintf("%s: %s (%s)", e.URL, msg, strings.ToLower(e.Code))
	}
	return fmt.Sprintf("%s: %s (HTTP %d)", e.URL, msg, e.Status)
}

// request is one registry call; body, when set, returns a fresh reader for
// each try (authentication may replay it).
type request struct {
	method  string
	path    string // after /v2/<repo>, e.g. "/manifests/latest"
	header  http.Header
	body    func() (io.Reader, error)
	length  int64
	push    bool // needs push scope
	mirrors bool // may be served by a mirror
	rawURL  string
}

// do sends req, trying mirrors first when allowed, and handling the auth
// challenge. The caller closes the body of a successful response; an error
// status is returned as an *Error, classified by errdefs.
func (r *Repository) do(ctx context.Context, req request) (*http.Response, error) {
	var lastErr error
	if req.mirrors && req.rawURL == "" {
		for _, m := range r.mirrors {
			resp, err := r.send(ctx, req, m.Scheme, m.Host, m.Path)
			if err == nil {
				return resp, nil
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			lastErr = err
		}
	}
	resp, err := r.sendRegistry(ctx, req)
	if err != nil && lastErr != nil && errdefs.KindOf(err) == errdefs.KindUnknown {
		err = fmt.Errorf("%w (mirror: %v)", err, lastErr)
	}
	return resp, err
}

// sendRegistry sends to the registry itself, learning the scheme of an
// insecure host on first contact.
func (r *Repository) sendRegistry(ctx context.Context, req request) (*http.Response, error) {
	c := r.c
	c.mu.Lock()
	scheme, known := c.schemes[r.host]
	c.mu.Unlock()
	if known || !c.isInsecure(r.host) {
		if scheme == "" {
			scheme = "https"
		}
		return r.send(ctx, req, scheme, r.host, "")
	}
	resp, err := r.send(ctx, req, "https", r.host, "")
	var re *Error
	if err == nil || errors.As(err, &re) {
		c.setScheme(r.host, "https")
		return resp, err
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	resp, err2 := r.send(ctx, req, "http", r.host, "")
	if err2 == nil || errors.As(err2, &re) {
		c.setScheme(r.host, "http")
		return resp, err2
	}
	return nil, fmt.Errorf("%v; over plain HTTP: %w", err, err2)
}

func (c *Client) setScheme(host, scheme string) {
	c.mu.Lock()
	c.schemes[host] = scheme
	c.mu.Unlock()
}

func (r *Repository) send(ctx context.Context, req request, scheme, host, prefix string) (*http.Response, error) {
	u := req.rawURL
	if u == "" {
		u = scheme + "://" + host + prefix + "/v2/" + r.path + req.path
	}
	scope := "repository:" + r.path + ":pull"
	if req.push {
		scope += ",push"
	}
	// A URL the registry handed out (an upload's Location) may be on
	// another host: that host gets neither the registry's Authorization nor
	// an answer to its challenge, and is reached as its own host would be.
	authHost := host
	if req.rawURL != "" {
		pu, err := url.Parse(u)
		if err != nil {
			return nil, fmt.Errorf("registry URL %s: %w", redact(u), err)
		}
		if pu.Host != host {
			authHost = pu.Host
		}
	}
	foreign := authHost != host
	client := r.c.secure
	if r.c.isInsecure(authHost) {
		client = r.c.insecure
	}
	for try := 0; ; try++ {
		hreq, err := http.NewRequestWithContext(ctx, req.method, u, nil)
		if err != nil {
			return nil, err
		}
		if req.body != nil {
			b, err := req.body()
			if err != nil {
				return nil, err
			}
			hreq.Body = io.NopCloser(b)
			hreq.ContentLength = req.length
		}
		for k, v := range req.header {
			hreq.Header[k] = v
		}
		hreq.Header.Set("User-Agent", r.c.opts.UserAgent)
		if auth := r.authorization(host, scope); auth != "" && !foreign {
			hreq.Header.Set("Authorization", auth)
		}
		resp, err := client.Do(hreq)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == http.StatusUnauthorized && try == 0 && !foreign {
			ch := resp.Header.Values("WWW-Authenticate")
			resp.Body.Close()
			if err := r.authenticate(ctx, client, host, scope, ch); err != nil {
				return nil, err
			}
			continue
		}
		if resp.StatusCode >= 400 {
			defer resp.Body.Close()
			return nil, statusError(resp, u)
		}
		return resp, nil
	}
}

func (r *Repository) authorization(host, scope string) string {
	r.c.mu.Lock()
	tok := r.c.tokens[r.tokenKey(host, scope)]
	r.c.mu.Unlock()
	switch {
	case tok != "":
		return tok
	case r.creds != nil && r.creds.RegistryToken != "":
		return "Bearer " + r.creds.RegistryToken
	}
	return ""
}

func statusError(resp *http.Response, u string) error {
	e := &Error{Status: resp.StatusCode, URL: redact(u)}
	var body struct {
		Errors []struct{ Code, Message string }
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &body) == nil && len(body.Errors) > 0 {
		e.Code, e.Message = body.Errors[0].Code, body.Errors[0].Message
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return errdefs.NotFound(e)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return errdefs.Unauthorized(e)
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return errdefs.Unavailable(e)
	}
	return e
}

// redact drops the query (upload URLs carry state tokens) from u.
func redact(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i]
	}
	return u
}

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// Login checks credentials against a registry's /v2/ endpoint, answering
// its challenge as a pull would. host is "host[:port]" ("docker.io" for
// Docker Hub).
func (c *Client) Login(ctx context.Context, host string, creds *Credentials) error {
	if host == "" || host == hubDomain || host == "index.docker.io" {
		host = hubRegistry
	}
	n, err := reference.ParseNormalizedNamed(host + "/login-check")
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid registry %q: %w", host, err))
	}
	r := &Repository{c: c, Named: n, host: host, creds: creds}
	// /v2/ itself, not under a repository: rawURL, with the scheme learnt
	// the same way as for pulls.
	scheme := "https"
	if c.isInsecure(host) {
		scheme = "http"
		if resp, err := r.send(ctx, request{method: http.MethodGet, rawURL: "https://" + host + "/v2/"}, "https", host, ""); err == nil {
			resp.Body.Close()
			return nil
		} else if _, ok := errors.AsType[*Error](err); ok {
			return loginError(host, err)
		}
	}
	resp, err := r.send(ctx, request{method: http.MethodGet, rawURL: scheme + "://" + host + "/v2/"}, scheme, host, "")
	if err != nil {
		return loginError(host, err)
	}
	resp.Body.Close()
	return nil
}

func loginError(host string, err error) error {
	if errdefs.KindOf(err) == errdefs.KindUnauthorized {
		return errdefs.Unauthorized(fmt.Errorf("login attempt to %s failed: %w", host, err))
	}
	return fmt.Errorf("login to %s: %w", host, err)
}
