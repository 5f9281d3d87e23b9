// Package testregistry runs a real distribution registry (Debian's
// docker-registry) on 127.0.0.1 for tests, with its storage in a temporary
// directory, and stops it when the test ends.
package testregistry

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Registry is a running registry.
type Registry struct {
	Host string // 127.0.0.1:PORT
	Dir  string // its storage
	cmd  *exec.Cmd
	log  *os.File
}

// Option changes the registry's configuration.
type Option func(*config)

type config struct {
	htpasswd string // path of an htpasswd file: basic auth
	proxy    string // upstream URL: a pull-through mirror
}

// WithHtpasswd makes the registry ask for basic auth checked against an
// htpasswd file (bcrypt entries).
func WithHtpasswd(path string) Option { return func(c *config) { c.htpasswd = path } }

// WithProxy makes the registry a pull-through cache of upstream.
func WithProxy(upstream string) Option { return func(c *config) { c.proxy = upstream } }

// Start starts a registry for a test and stops it when the test ends.
func Start(t testing.TB, opts ...Option) *Registry {
	t.Helper()
	r, err := Run(t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

// Run starts a registry keeping its data in dir and waits until it
// answers. The caller calls Stop.
func Run(dir string, opts ...Option) (*Registry, error) {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		return nil, fmt.Errorf("docker-registry is not installed (apt-get install docker-registry; .ci/run does)")
	}
	var c config
	for _, o := range opts {
		o(&c)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &Registry{Host: "127.0.0.1:" + strconv.Itoa(port), Dir: dir}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(dir, "data"), r.Host)
	if c.htpasswd != "" {
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: test-realm\n    path: %s\n", c.htpasswd)
	}
	if c.proxy != "" {
		cfg += fmt.Sprintf("proxy:\n  remoteurl: %s\n", c.proxy)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	r.log, err = os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		return nil, err
	}
	r.cmd = exec.Command(bin, "serve", cfgPath)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		r.log.Close()
		return nil, err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + r.Host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 || resp.StatusCode == 401 {
				return r, nil
			}
		}
		if time.Now().After(deadline) {
			r.Stop()
			b, _ := os.ReadFile(r.log.Name())
			return nil, fmt.Errorf("registry did not answer on %s: %v\n%s", r.Host, err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the registry and waits for it.
func (r *Registry) Stop() {
	r.cmd.Process.Kill()
	r.cmd.Wait()
	r.log.Close()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
