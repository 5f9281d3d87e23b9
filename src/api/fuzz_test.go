package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/balena-os/balena-engine/src/container"
	"github.com/balena-os/balena-engine/src/image"
	"github.com/balena-os/balena-engine/src/internal/testimage"
	"github.com/balena-os/balena-engine/src/layer"
	"github.com/balena-os/balena-engine/src/network"
	"github.com/balena-os/balena-engine/src/volume"
	"github.com/containerd/platforms"
	containertypes "github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// panicLog keeps what the server logs of a handler's panic, which it
// turns into a 500: the fuzz targets fail with its stack.
type panicLog struct {
	mu     sync.Mutex
	panics []string
}

func (p *panicLog) Enabled(context.Context, slog.Level) bool { return true }
func (p *panicLog) WithAttrs([]slog.Attr) slog.Handler       { return p }
func (p *panicLog) WithGroup(string) slog.Handler            { return p }
func (p *panicLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "handler panic" {
		return nil
	}
	var b strings.Builder
	r.Attrs(func(a slog.Attr) bool { b.WriteString(a.String() + "\n"); return true })
	p.mu.Lock()
	p.panics = append(p.panics, b.String())
	p.mu.Unlock()
	return nil
}

func (p *panicLog) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.panics
	p.panics = nil
	return out
}

// fuzzServer is the API over real stores (no monitor: containers are
// created and updated, never started) with one image, busybox:latest
// (with an Env), and one created container, "target".
func fuzzServer(f testing.TB) (*Server, *panicLog) {
	root := f.TempDir()
	db, err := bolt.Open(filepath.Join(root, "engine.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		f.Fatal(err)
	}
	db.NoSync = true // a fuzzer's store need not survive a power cut
	f.Cleanup(func() { db.Close() })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ls, err := layer.Open(filepath.Join(root, "layers"), db, layer.Options{})
	if err != nil {
		f.Fatal(err)
	}
	is, err := image.Open(db, ls, quiet)
	if err != nil {
		f.Fatal(err)
	}
	host := ocispec.Platform{OS: "linux", Architecture: platforms.DefaultSpec().Architecture, Variant: platforms.DefaultSpec().Variant}
	img := testimage.New(host, ocispec.ImageConfig{Cmd: []string{"sh"}, Env: []string{"PATH=/bin", "IMG=1"}, Volumes: map[string]struct{}{"/data": {}}},
		testimage.NewLayer(testimage.File{Name: "bin/sh", Body: []byte("#!")}))
	var buf bytes.Buffer
	if err := testimage.Archive(&buf, "busybox:latest", img); err != nil {
		f.Fatal(err)
	}
	if err := is.Load(context.Background(), &buf, nil); err != nil {
		f.Fatal(err)
	}
	vs, err := volume.Open(filepath.Join(root, "volumes"), db)
	if err != nil {
		f.Fatal(err)
	}
	// Networking without a device or a rule: the fuzzer must not change
	// the host's network (its API routes are not served here).
	nm, err := network.New(network.Options{DB: db, ExecRoot: filepath.Join(root, "exec"), Log: quiet, Bridge: "none"})
	if err != nil {
		f.Fatal(err)
	}
	cm, err := container.Open(context.Background(), container.Options{Root: filepath.Join(root, "containers"), DB: db, Images: is, Volumes: vs, Log: quiet, Network: nm})
	if err != nil {
		f.Fatal(err)
	}
	pl := &panicLog{}
	s := New(Config{Log: slog.New(pl), Images: is, Containers: cm, Volumes: vs})
	if code, body := call(s, "/containers/create?name=target", []byte(`{"Image":"busybox","HostConfig":{"NetworkMode":"none","Memory":67108864}}`)); code != http.StatusCreated {
		f.Fatalf("create: %d %s", code, body)
	}
	return s, pl
}

func call(s *Server, path string, body []byte) (int, []byte) {
	req := httptest.NewRequest(http.MethodPost, "/v1.41"+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w.Code, w.Body.Bytes()
}

// checkAnswer fails on a panic in the handler and on a status a client's
// request cannot cause: a 500 is the engine's fault (501 names what the
// engine does not do yet).
func checkAnswer(t *testing.T, pl *panicLog, code int, body []byte, ok ...int) {
	t.Helper()
	if p := pl.take(); len(p) != 0 {
		t.Fatalf("handler panic:\n%s", p[0])
	}
	for _, c := range append(ok, http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusNotImplemented) {
		if code == c {
			return
		}
	}
	t.Fatalf("answered %d: %s", code, body)
}

// createSeeds are create bodies as the docker CLI sends them, and odd ones.
var createSeeds = []string{
	`{"Image":"busybox","Cmd":["echo","hi"],"Env":["A=b"],"Labels":{"l":"v"},"Tty":true,"OpenStdin":true,
	  "HostConfig":{"NetworkMode":"none","Binds":["/tmp:/mnt:ro","vol:/v"],"Memory":67108864,"MemorySwap":-1,"NanoCpus":500000000,
	  "PidsLimit":64,"CpusetCpus":"0","RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3},
	  "LogConfig":{"Type":"json-file","Config":{"max-size":"1m","max-file":"2"}},"CapAdd":["NET_ADMIN"],
	  "Ulimits":[{"Name":"nofile","Soft":1024,"Hard":2048}],"Devices":[{"PathOnHost":"/dev/null","PathInContainer":"/dev/n","CgroupPermissions":"rwm"}],
	  "Tmpfs":{"/run":"size=1m"},"Sysctls":{"net.ipv4.ip_forward":"1"},"SecurityOpt":["no-new-privileges"],"ShmSize":1048576}}`,
	`{"Image":"busybox","HostConfig":{"NetworkMode":"none"},"Healthcheck":{"Test":["CMD-SHELL","true"],"Interval":1000000000},"StopSignal":"SIGUSR1","User":"1000:1000","WorkingDir":"/w"}`,
	`{"Image":"busybox","Entrypoint":[],"Cmd":null,"Volumes":{"/anon":{}},"HostConfig":{"NetworkMode":"none","Mounts":[{"Type":"volume","Target":"/m"},{"Type":"tmpfs","Target":"/t"},{"Type":"bind","Source":"/","Target":"/b"}]}}`,
	`{"Image":"busybox","HostConfig":{"NetworkMode":"none","NETWORKHOST","PidMode":"host","IpcMode":"private","CgroupnsMode":"bogus","Privileged":true}}`,
	`{"Image":"busybox","HostConfig":{"NetworkMode":"none","CpuQuota":-5,"CpuPeriod":999,"Memory":1,"BlkioWeight":9999,"OomScoreAdj":5000,"CpusetCpus":"9-1"}}`,
	`{"Image":"busybox","HostConfig":{"NetworkMode":"none","DeviceCgroupRules":["c 1:3 rwm","b *:* x","a"],"SecurityOpt":["seccomp=unconfined","seccomp={}"]}}`,
	`{"Image":"busybox","HostConfig":{"NetworkMode":"none","AutoRemove":true,"RestartPolicy":{"Name":"always"}}}`,
	`{"Image":"nothere"}`, `{"Image":""}`, `{}`, `null`, `{"Image":"busybox"} {"extra":1}`, `[`, ``,
	`{"Image":"busybox","HostConfig":{"NetworkMode":"none","Binds":["::","/a:/b:zz",":/x"],"Tmpfs":{"relative":""},"Devices":[{"PathOnHost":"relative"}]}}`,
	`{"Image":"busybox","HostConfig":{"NetworkMode":"none","LogConfig":{"Type":"local","Config":{"max-size":"-1","compress":"maybe"}}}}`,
}

// FuzzContainerCreate posts fuzzed bodies (and names) to
// /containers/create, through the real decoding and validation into a
// real container manager: no panic, no 500, and a container created must
// be inspectable.
func FuzzContainerCreate(f *testing.F) {
	s, pl := fuzzServer(f)
	for _, b := range createSeeds {
		f.Add([]byte(b), "")
	}
	f.Add([]byte(`{"Image":"busybox","HostConfig":{"NetworkMode":"none"}}`), "target")
	f.Add([]byte(`{"Image":"busybox","HostConfig":{"NetworkMode":"none"}}`), "/a.b-c_d")
	f.Add([]byte(`{"Image":"busybox","HostConfig":{"NetworkMode":"none"}}`), "../x")
	f.Fuzz(func(t *testing.T, body []byte, name string) {
		code, out := call(s, "/containers/create?name="+url.QueryEscape(name), body)
		checkAnswer(t, pl, code, out, http.StatusCreated)
		if code != http.StatusCreated {
			return
		}
		var cr containertypes.CreateResponse
		if err := json.Unmarshal(out, &cr); err != nil || cr.ID == "" {
			t.Fatalf("create answered %s", out)
		}
		req := httptest.NewRequest(http.MethodGet, "/v1.41/containers/"+cr.ID+"/json", nil)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if p := pl.take(); len(p) != 0 || w.Code != http.StatusOK {
			t.Fatalf("inspect of a created container: %d %s %v", w.Code, w.Body.Bytes(), p)
		}
	})
}

// FuzzContainerUpdate posts fuzzed bodies to /containers/target/update:
// no panic, no 500, and after an accepted update the container must
// still be inspectable.
func FuzzContainerUpdate(f *testing.F) {
	s, pl := fuzzServer(f)
	for _, b := range []string{
		`{"Memory":134217728,"MemorySwap":268435456,"NanoCpus":1000000000,"PidsLimit":32,"CpuShares":512}`,
		`{"RestartPolicy":{"Name":"unless-stopped"}}`, `{"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":-1}}`,
		`{"Memory":-1,"MemorySwap":-2,"MemoryReservation":1,"KernelMemory":1}`, `{"CpusetCpus":"0-1","CpusetMems":"0","CpuQuota":1000,"CpuPeriod":100000}`,
		`{"BlkioWeight":10,"BlkioWeightDevice":[{"Path":"/dev/null","Weight":5}],"BlkioDeviceReadBps":[{"Path":"/dev/null","Rate":1}]}`,
		`{"PidsLimit":0}`, `{"PidsLimit":-1}`, `{"Ulimits":[{"Name":"nofile","Soft":1,"Hard":0}]}`, `{"Devices":[{"PathOnHost":"/dev/zero"}]}`,
		`{}`, `null`, `[]`, `{"Memory":1e30}`, ``,
	} {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		code, out := call(s, "/containers/target/update", body)
		checkAnswer(t, pl, code, out, http.StatusOK)
		req := httptest.NewRequest(http.MethodGet, "/v1.41/containers/target/json", nil)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if p := pl.take(); len(p) != 0 || w.Code != http.StatusOK {
			t.Fatalf("inspect after an update answered %d: %d %s %v", code, w.Code, w.Body.Bytes(), p)
		}
	})
}
