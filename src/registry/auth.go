package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/balena-os/balena-engine/src/errdefs"
)

// challenge is one parsed WWW-Authenticate header.
type challenge struct {
	scheme string // lower case: "bearer" or "basic"
	params map[string]string
}

// parseChallenges parses WWW-Authenticate values of the form
// `Bearer realm="...",service="...",scope="..."`.
func parseChallenges(values []string) []challenge {
	var out []challenge
	for _, v := range values {
		scheme, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
		ch := challenge{scheme: strings.ToLower(scheme), params: map[string]string{}}
		for rest = strings.TrimSpace(rest); rest != ""; {
			key, after, ok := strings.Cut(rest, "=")
			if !ok {
				break
			}
			key = strings.ToLower(strings.TrimSpace(key))
			var val string
			if strings.HasPrefix(after, `"`) {
				end := 1
				for end < len(after) && (after[end] != '"' || after[end-1] == '\\') {
					end++
				}
				val = strings.ReplaceAll(after[1:min(end, len(after))], `\"`, `"`)
				after = after[min(end+1, len(after)):]
			} else {
				val, after, _ = strings.Cut(after, ",")
				after = "," + after
			}
			ch.params[key] = strings.TrimSpace(val)
			rest = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(after), ","))
		}
		out = append(out, ch)
	}
	return out
}

// authenticate answers a 401's challenges, storing the Authorization value
// to use for host and scope.
func (r *Repository) authenticate(ctx context.Context, client *http.Client, host, scope string, values []string) error {
	for _, ch := range parseChallenges(values) {
		switch ch.scheme {
		case "bearer":
			tok, err := r.fetchToken(ctx, client, host, ch, scope)
			if err != nil {
				return err
			}
			r.c.mu.Lock()
			r.c.tokens[r.tokenKey(host, scope)] = "Bearer " + tok
			r.c.mu.Unlock()
			return nil
		case "basic":
			if r.creds == nil || r.creds.Username == "" {
				return errdefs.Unauthorized(fmt.Errorf("%s requires credentials: log in first", host))
			}
			r.c.mu.Lock()
			r.c.tokens[r.tokenKey(host, scope)] = basicAuth(r.creds.Username, r.creds.Password)
			r.c.mu.Unlock()
			return nil
		}
	}
	return errdefs.Unauthorized(fmt.Errorf("%s: authentication required, with no challenge this client understands", host))
}

// tokenKey is where the client keeps the Authorization value for host and
// scope got with r's credentials: a token one caller's credentials earned
// must not serve another caller, least of all one who sent none.
func (r *Repository) tokenKey(host, scope string) string {
	k := host + " " + scope
	if c := r.creds; c != nil && *c != (Credentials{}) {
		sum := sha256.Sum256([]byte(c.Username + "\x00" + c.Password + "\x00" + c.IdentityToken + "\x00" + c.RegistryToken))
		k += " " + hex.EncodeToString(sum[:])
	}
	return k
}

// fetchToken gets a bearer token from the challenge's realm, as in
// Docker's token authentication: GET with basic credentials when we have
// them, or POST with an OAuth refresh token. A realm on another host than
// the registry (host) is not covered by the registry's being insecure: it
// gets TLS verification unless itself named insecure, and credentials are
// never sent to it over plain HTTP.
func (r *Repository) fetchToken(ctx context.Context, client *http.Client, host string, ch challenge, scope string) (string, error) {
	realm := ch.params["realm"]
	u, err := url.Parse(realm)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("registry token realm %q is not an http(s) URL", realm)
	}
	if u.Host != host {
		named := r.c.namedInsecure(u.Host)
		client = r.c.secure
		if named {
			client = r.c.insecure
		}
		sendsCreds := r.creds != nil && (r.creds.IdentityToken != "" || r.creds.Username != "")
		if u.Scheme == "http" && sendsCreds && !named {
			return "", errdefs.Unauthorized(fmt.Errorf("registry token realm %s is plain HTTP on another host than %s: credentials are not sent there", redact(realm), host))
		}
	}
	if ch.params["scope"] != "" && ch.params["scope"] != scope {
		scope = ch.params["scope"]
	}
	var req *http.Request
	if r.creds != nil && r.creds.IdentityToken != "" {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.creds.IdentityToken},
			"service": {ch.params["service"]}, "scope": {scope}, "client_id": {"balena-engine"}}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, realm, strings.NewReader(form.Encode()))
		if err != nil {
			return "", err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		q := u.Query()
		if s := ch.params["service"]; s != "" {
			q.Set("service", s)
		}
		q.Set("scope", scope)
		u.RawQuery = q.Encode()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return "", err
		}
		if r.creds != nil && r.creds.Username != "" {
			req.Header.Set("Authorization", basicAuth(r.creds.Username, r.creds.Password))
		}
	}
	req.Header.Set("User-Agent", r.c.opts.UserAgent)
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("fetch registry token: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return "", errdefs.Unauthorized(fmt.Errorf("%s: unauthorized: incorrect username or password", u.Host))
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("fetch registry token from %s: HTTP %d", u.Host, resp.StatusCode)
	}
	var body struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return "", fmt.Errorf("registry token response: %w", err)
	}
	if body.Token == "" {
		body.Token = body.AccessToken
	}
	if body.Token == "" {
		return "", errors.New("registry token response carries no token")
	}
	return body.Token, nil
}
