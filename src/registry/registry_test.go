package registry

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/internal/testimage"
	"github.com/balena-os/balena-engine/src/internal/testregistry"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/crypto/bcrypt"
)

func fastOptions() Options {
	return Options{MaxAttempts: 4, BackoffBase: 5 * time.Millisecond, BackoffMax: 20 * time.Millisecond, StallTimeout: 300 * time.Millisecond}
}

func repo(t *testing.T, c *Client, name string, creds *Credentials) *Repository {
	t.Helper()
	n, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		t.Fatal(err)
	}
	return c.Repository(n, creds)
}

func named(t *testing.T, s string) reference.Named {
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		t.Fatal(err)
	}
	return reference.TagNameOnly(n)
}

// bigImage has one layer large enough for a transfer to be cut in the middle.
func bigImage(t *testing.T) testimage.Image {
	body := make([]byte, 3<<20)
	for i := range body {
		body[i] = byte(i*7 + i/4096) // compresses poorly enough to stay large
	}
	return testimage.New(ocispec.Platform{OS: "linux", Architecture: "amd64"}, ocispec.ImageConfig{},
		testimage.NewLayer(testimage.File{Name: "big", Body: body}))
}

func readBlob(t *testing.T, r *Repository, desc ocispec.Descriptor) ([]byte, error) {
	rc, err := r.OpenBlob(context.Background(), desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestPushResolveFetch(t *testing.T) {
	reg := testregistry.Start(t)
	c, _ := New(fastOptions())
	ctx := context.Background()
	img, err := testimage.Busybox(ocispec.Platform{OS: "linux", Architecture: "amd64"}, "/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	r := repo(t, c, reg.Host+"/test/busybox", nil)
	if err := testimage.Push(ctx, r, "1.0", img); err != nil {
		t.Fatal(err)
	}
	res, err := r.Resolve(ctx, named(t, reg.Host+"/test/busybox:1.0"), platforms.Only(img.Platform), "linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != img.ManifestDesc.Digest || res.Desc.Digest != img.ManifestDesc.Digest {
		t.Errorf("resolved %s, want %s", res.Digest, img.ManifestDesc.Digest)
	}
	cfg, err := r.GetConfig(ctx, res.Manifest.Config)
	if err != nil || digest.FromBytes(cfg) != img.ConfigDesc.Digest {
		t.Errorf("config: %v", err)
	}
	b, err := readBlob(t, r, res.Manifest.Layers[0])
	if err != nil || digest.FromBytes(b) != img.Layers[0].Digest() {
		t.Errorf("layer blob: %v", err)
	}
	// By digest too.
	byDigest, err := reference.WithDigest(reference.TrimNamed(named(t, reg.Host+"/test/busybox")), img.ManifestDesc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := r.Resolve(ctx, byDigest, platforms.Only(img.Platform), "linux/amd64"); err != nil || res.Digest != img.ManifestDesc.Digest {
		t.Errorf("resolve by digest: %v", err)
	}
	// Unknown tag and unknown repository: not found, in Docker's words.
	_, err = r.Resolve(ctx, named(t, reg.Host+"/test/busybox:nope"), platforms.Only(img.Platform), "linux/amd64")
	if errdefs.KindOf(err) != errdefs.KindNotFound || !strings.Contains(err.Error(), "manifest unknown") {
		t.Errorf("unknown tag: %v", err)
	}
	desc, plats, err := r.Describe(ctx, named(t, reg.Host+"/test/busybox:1.0"))
	if err != nil || desc.Digest != img.ManifestDesc.Digest || len(plats) != 1 || plats[0].Architecture != "amd64" {
		t.Errorf("Describe(manifest) = %v %v %v", desc, plats, err)
	}
	if ok, err := r.BlobExists(ctx, img.Layers[0].Digest()); !ok || err != nil {
		t.Errorf("BlobExists = %v, %v", ok, err)
	}
}

func TestMultiArchSelection(t *testing.T) {
	reg := testregistry.Start(t)
	c, _ := New(fastOptions())
	ctx := context.Background()
	mk := func(p string) testimage.Image {
		pl, err := platforms.Parse(p)
		if err != nil {
			t.Fatal(err)
		}
		return testimage.New(pl, ocispec.ImageConfig{}, testimage.NewLayer(testimage.File{Name: "platform", Body: []byte(p)}))
	}
	all := []testimage.Image{mk("linux/amd64"), mk("linux/386"), mk("linux/arm64/v8"), mk("linux/arm/v7"), mk("linux/arm/v6"), mk("linux/arm/v5")}
	r := repo(t, c, reg.Host+"/multi", nil)
	if err := testimage.Push(ctx, r, "all", all...); err != nil {
		t.Fatal(err)
	}
	desc, plats, err := r.Describe(ctx, named(t, reg.Host+"/multi:all"))
	if err != nil || len(plats) != 6 || desc.MediaType != MediaTypeDockerManifestList {
		t.Errorf("Describe(index) = %v %v %v", desc, plats, err)
	}
	// Only v5 and v7 for arm, no arm64: the fallbacks.
	if err := testimage.Push(ctx, r, "sparse", all[0], all[3], all[5]); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ tag, engine, want string }{
		{"all", "linux/amd64", "linux/amd64"},
		{"all", "linux/386", "linux/386"},
		{"all", "linux/arm64", "linux/arm64/v8"},
		{"all", "linux/arm/v7", "linux/arm/v7"},
		{"all", "linux/arm/v6", "linux/arm/v6"},
		{"all", "linux/arm/v5", "linux/arm/v5"},
		{"sparse", "linux/arm/v6", "linux/arm/v5"}, // v6 runs v5
		{"sparse", "linux/arm64", "linux/arm/v7"},  // arm64 runs 32-bit arm
		{"sparse", "linux/arm/v7", "linux/arm/v7"}, // v7 preferred over v5
		{"sparse", "linux/386", ""},                // nothing fits
		{"sparse", "linux/arm/v5", "linux/arm/v5"},
	}
	for _, tc := range cases {
		p, _ := platforms.Parse(tc.engine)
		res, err := r.Resolve(ctx, named(t, reg.Host+"/multi:"+tc.tag), platforms.Only(p), tc.engine)
		if tc.want == "" {
			if err == nil || !strings.Contains(err.Error(), "no matching manifest for "+tc.engine+" in the manifest list entries") {
				t.Errorf("%s on %s: err = %v, want no matching manifest", tc.tag, tc.engine, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s on %s: %v", tc.tag, tc.engine, err)
			continue
		}
		b, err := readBlob(t, r, res.Manifest.Layers[0])
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		content, _ := io.ReadAll(zr)
		if got := platforms.Format(*res.Platform); got != tc.want || !bytes.Contains(content, []byte(tc.want)) {
			t.Errorf("%s on %s chose %s, want %s", tc.tag, tc.engine, got, tc.want)
		}
	}
}

// faultProxy sits in front of a registry and breaks blob transfers.
type faultProxy struct {
	srv      *httptest.Server
	cutAfter int64        // cut each blob response after this many bytes, while cuts > 0
	cuts     atomic.Int32 // cuts left
	fail500  atomic.Int32 // blob requests left to answer 500
	stall    atomic.Int32 // blob responses left to stall in the middle
	blobReqs atomic.Int32
	ranged   atomic.Int32 // blob requests that carried a Range header
}

func newFaultProxy(t *testing.T, registryHost string) *faultProxy {
	f := &faultProxy{}
	target, _ := url.Parse("http://" + registryHost)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		if strings.Contains(resp.Request.URL.Path, "/blobs/sha256:") && resp.Request.Method == http.MethodGet {
			if f.cuts.Add(-1) >= 0 {
				resp.Body = &cutReader{rc: resp.Body, left: f.cutAfter}
			} else if f.stall.Add(-1) >= 0 {
				resp.Body = &stallReader{rc: resp.Body, left: f.cutAfter, done: resp.Request.Context().Done()}
			}
		}
		return nil
	}
	rp.ErrorLog = log.New(io.Discard, "", 0)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/blobs/sha256:") && r.Method == http.MethodGet {
			f.blobReqs.Add(1)
			if r.Header.Get("Range") != "" {
				f.ranged.Add(1)
			}
			if f.fail500.Add(-1) >= 0 {
				http.Error(w, `{"errors":[{"code":"UNKNOWN","message":"injected failure"}]}`, 500)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *faultProxy) host() string { return strings.TrimPrefix(f.srv.URL, "http://") }

type cutReader struct {
	rc   io.ReadCloser
	left int64
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errors.New("injected connection drop")
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.rc.Read(p)
	c.left -= int64(n)
	return n, err
}
func (c *cutReader) Close() error { return c.rc.Close() }

type stallReader struct {
	rc   io.ReadCloser
	left int64
	done <-chan struct{}
}

func (s *stallReader) Read(p []byte) (int, error) {
	if s.left <= 0 {
		<-s.done // hold the connection open, sending nothing
		return 0, errors.New("client went away")
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, err := s.rc.Read(p)
	s.left -= int64(n)
	return n, err
}
func (s *stallReader) Close() error { return s.rc.Close() }

func pushBig(t *testing.T, reg *testregistry.Registry) testimage.Image {
	img := bigImage(t)
	c, _ := New(fastOptions())
	if err := testimage.Push(context.Background(), repo(t, c, reg.Host+"/big", nil), "latest", img); err != nil {
		t.Fatal(err)
	}
	return img
}

func TestBlobResume(t *testing.T) {
	reg := testregistry.Start(t)
	img := pushBig(t, reg)
	layer := ocispec.Descriptor{Digest: img.Layers[0].Digest(), Size: int64(len(img.Layers[0].Blob))}

	t.Run("dropped twice", func(t *testing.T) {
		f := newFaultProxy(t, reg.Host)
		f.cutAfter = layer.Size / 3
		f.cuts.Store(2)
		c, _ := New(fastOptions())
		b, err := readBlob(t, repo(t, c, f.host()+"/big", nil), layer)
		if err != nil || digest.FromBytes(b) != layer.Digest {
			t.Fatalf("resumed blob: %v (digest ok: %v)", err, err == nil && digest.FromBytes(b) == layer.Digest)
		}
		if f.blobReqs.Load() != 3 || f.ranged.Load() != 2 {
			t.Errorf("%d requests, %d with Range; want 3 and 2", f.blobReqs.Load(), f.ranged.Load())
		}
	})
	t.Run("500s then success", func(t *testing.T) {
		f := newFaultProxy(t, reg.Host)
		f.fail500.Store(3)
		c, _ := New(fastOptions())
		b, err := readBlob(t, repo(t, c, f.host()+"/big", nil), layer)
		if err != nil || digest.FromBytes(b) != layer.Digest {
			t.Fatalf("after 500s: %v", err)
		}
	})
	t.Run("500s forever", func(t *testing.T) {
		f := newFaultProxy(t, reg.Host)
		f.fail500.Store(1000)
		c, _ := New(fastOptions())
		_, err := readBlob(t, repo(t, c, f.host()+"/big", nil), layer)
		if err == nil || !strings.Contains(err.Error(), "after 4 attempts") || !strings.Contains(err.Error(), "injected failure") {
			t.Errorf("err = %v", err)
		}
		if n := f.blobReqs.Load(); n != 4 {
			t.Errorf("%d requests, want MaxAttempts=4", n)
		}
	})
	t.Run("stall", func(t *testing.T) {
		f := newFaultProxy(t, reg.Host)
		f.cutAfter = layer.Size / 2
		f.stall.Store(1)
		c, _ := New(fastOptions())
		b, err := readBlob(t, repo(t, c, f.host()+"/big", nil), layer)
		if err != nil || digest.FromBytes(b) != layer.Digest {
			t.Fatalf("after a stall: %v", err)
		}
		if f.ranged.Load() != 1 {
			t.Errorf("%d ranged requests, want 1", f.ranged.Load())
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		f := newFaultProxy(t, reg.Host)
		f.fail500.Store(1000)
		opts := fastOptions()
		opts.MaxAttempts, opts.BackoffBase, opts.BackoffMax = 1000, time.Hour, time.Hour
		c, _ := New(opts)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := repo(t, c, f.host()+"/big", nil).OpenBlob(ctx, layer)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("missing blob", func(t *testing.T) {
		c, _ := New(fastOptions())
		_, err := readBlob(t, repo(t, c, reg.Host+"/big", nil), ocispec.Descriptor{Digest: digest.FromString("nothing"), Size: 7})
		if errdefs.KindOf(err) != errdefs.KindNotFound {
			t.Errorf("err = %v, want not found", err)
		}
	})
}

func TestBasicAuth(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	os.WriteFile(htpasswd, []byte("alice:"+string(hash)+"\n"), 0o600)
	reg := testregistry.Start(t, testregistry.WithHtpasswd(htpasswd))
	ctx := context.Background()
	img := bigImage(t)

	c, _ := New(fastOptions())
	err = testimage.Push(ctx, repo(t, c, reg.Host+"/private", nil), "v1", img)
	if errdefs.KindOf(err) != errdefs.KindUnauthorized {
		t.Errorf("push without credentials: %v", err)
	}
	wrong := &Credentials{Username: "alice", Password: "wrong"}
	err = testimage.Push(ctx, repo(t, c, reg.Host+"/private", wrong), "v1", img)
	if errdefs.KindOf(err) != errdefs.KindUnauthorized {
		t.Errorf("push with a wrong password: %v", err)
	}
	right := &Credentials{Username: "alice", Password: "s3cret"}
	c2, _ := New(fastOptions())
	if err := testimage.Push(ctx, repo(t, c2, reg.Host+"/private", right), "v1", img); err != nil {
		t.Fatalf("push with credentials: %v", err)
	}
	c3, _ := New(fastOptions())
	res, err := repo(t, c3, reg.Host+"/private", right).Resolve(ctx, named(t, reg.Host+"/private:v1"), platforms.Only(img.Platform), "linux/amd64")
	if err != nil || res.Digest != img.ManifestDesc.Digest {
		t.Errorf("pull with credentials: %v", err)
	}
}

// The token flow against a token server of our own: the registry image in
// Debian has no token issuer, so this checks the protocol steps.
func TestBearerToken(t *testing.T) {
	var tokenReqs atomic.Int32
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/token":
			tokenReqs.Add(1)
			u, p, ok := r.BasicAuth()
			if !ok || u != "bob" || p != "pw" || r.URL.Query().Get("scope") != "repository:team/app:pull" ||
				r.URL.Query().Get("service") != "test-registry" {
				w.WriteHeader(401)
				return
			}
			fmt.Fprint(w, `{"token":"tok-123"}`)
		case r.Header.Get("Authorization") != "Bearer tok-123":
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="test-registry",scope="repository:team/app:pull"`, srv.URL))
			w.WriteHeader(401)
		default:
			w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
			fmt.Fprint(w, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2},"layers":[]}`)
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	c, _ := New(fastOptions())
	r := repo(t, c, host+"/team/app", &Credentials{Username: "bob", Password: "pw"})
	for i := 0; i < 2; i++ {
		if _, _, err := r.GetManifest(context.Background(), "latest"); err != nil {
			t.Fatal(err)
		}
	}
	if tokenReqs.Load() != 1 {
		t.Errorf("%d token requests, want 1 (the token is cached)", tokenReqs.Load())
	}
	r = repo(t, c, host+"/team/app", &Credentials{Username: "bob", Password: "bad"})
	c2, _ := New(fastOptions())
	r.c = c2
	if _, _, err := r.GetManifest(context.Background(), "latest"); errdefs.KindOf(err) != errdefs.KindUnauthorized {
		t.Errorf("bad password: %v", err)
	}
}

func TestParseChallenges(t *testing.T) {
	chs := parseChallenges([]string{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"`, `Basic realm="x y"`})
	if len(chs) != 2 || chs[0].scheme != "bearer" || chs[0].params["realm"] != "https://auth.docker.io/token" ||
		chs[0].params["service"] != "registry.docker.io" || chs[0].params["scope"] != "repository:library/busybox:pull" ||
		chs[1].scheme != "basic" || chs[1].params["realm"] != "x y" {
		t.Errorf("parsed %+v", chs)
	}
}

func TestMirror(t *testing.T) {
	mirror := testregistry.Start(t)
	ctx := context.Background()
	img := bigImage(t)
	c, _ := New(fastOptions())
	// The mirror holds Docker Hub's library/busybox.
	if err := testimage.Push(ctx, repo(t, c, mirror.Host+"/library/busybox", nil), "latest", img); err != nil {
		t.Fatal(err)
	}
	opts := fastOptions()
	opts.Mirrors = []string{"http://" + mirror.Host}
	mc, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	r := repo(t, mc, "busybox", nil)
	if r.Host() != hubRegistry {
		t.Errorf("host = %s", r.Host())
	}
	res, err := r.Resolve(ctx, named(t, "busybox"), platforms.Only(img.Platform), "linux/amd64")
	if err != nil || res.Digest != img.ManifestDesc.Digest {
		t.Fatalf("pull through the mirror: %v", err)
	}
	if _, err := New(Options{Mirrors: []string{"ftp://x"}}); err == nil {
		t.Error("bad mirror URL accepted")
	}
	if _, err := New(Options{Insecure: []string{"http://x:5000"}}); err == nil {
		t.Error("insecure registry with a scheme accepted")
	}
}

// A token realm on another host than an insecure (here loopback) registry
// is reached with TLS verification, and never over plain HTTP with
// credentials.
func TestTokenRealmOnAnotherHost(t *testing.T) {
	var tokenReqs atomic.Int32
	token := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenReqs.Add(1)
		fmt.Fprint(w, `{"token":"tok"}`)
	})
	tlsRealm := httptest.NewTLSServer(token) // a certificate nobody trusts
	defer tlsRealm.Close()
	plainRealm := httptest.NewServer(token)
	defer plainRealm.Close()
	var realm string
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="reg"`, realm))
			w.WriteHeader(401)
			return
		}
		w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
		fmt.Fprint(w, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2},"layers":[]}`)
	}))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	bob := &Credentials{Username: "bob", Password: "pw"}
	ctx := context.Background()

	realm = tlsRealm.URL
	c, _ := New(fastOptions())
	if _, _, err := repo(t, c, host+"/team/app", bob).GetManifest(ctx, "latest"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("realm with an untrusted certificate on another host: %v", err)
	}
	// Named insecure itself, it may be reached so.
	c, _ = New(Options{Insecure: []string{strings.TrimPrefix(tlsRealm.URL, "https://")}})
	if _, _, err := repo(t, c, host+"/team/app", bob).GetManifest(ctx, "latest"); err != nil {
		t.Errorf("realm named insecure: %v", err)
	}

	realm = plainRealm.URL
	before := tokenReqs.Load()
	c, _ = New(fastOptions())
	if _, _, err := repo(t, c, host+"/team/app", bob).GetManifest(ctx, "latest"); err == nil || !strings.Contains(err.Error(), "credentials are not sent there") {
		t.Errorf("plain HTTP realm on another host, with credentials: %v", err)
	}
	if tokenReqs.Load() != before {
		t.Error("credentials went to a plain HTTP realm on another host")
	}
	if _, _, err := repo(t, c, host+"/team/app", nil).GetManifest(ctx, "latest"); err != nil {
		t.Errorf("plain HTTP realm on another host, anonymous: %v", err)
	}
}

// An upload Location on another host gets no Authorization of the
// registry's.
func TestUploadLocationOnAnotherHost(t *testing.T) {
	var storageAuth atomic.Value
	storageAuth.Store("")
	var puts atomic.Int32
	storage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		storageAuth.Store(r.Header.Get("Authorization"))
		puts.Add(1)
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
	}))
	defer storage.Close()
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="reg"`)
			w.WriteHeader(401)
			return
		}
		switch r.Method {
		case http.MethodHead:
			w.WriteHeader(404)
		case http.MethodPost:
			w.Header().Set("Location", storage.URL+"/upload/1?state=x")
			w.WriteHeader(http.StatusAccepted)
		default:
			w.WriteHeader(400)
		}
	}))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	c, _ := New(fastOptions())
	r := repo(t, c, host+"/private", &Credentials{Username: "alice", Password: "s3cret"})
	blob := []byte("hello")
	desc := ocispec.Descriptor{Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	err := r.PushBlob(context.Background(), desc, func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blob)), nil })
	if err != nil {
		t.Fatal(err)
	}
	if puts.Load() != 1 {
		t.Errorf("%d requests to the upload host, want 1", puts.Load())
	}
	if a := storageAuth.Load().(string); a != "" {
		t.Errorf("the upload host got Authorization %q", a)
	}
}

// A token got with one caller's credentials is not used for a caller who
// sent none.
func TestTokenNotSharedAcrossCredentials(t *testing.T) {
	var anonTokenReqs atomic.Int32
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/token":
			if u, p, ok := r.BasicAuth(); ok && u == "bob" && p == "pw" {
				fmt.Fprint(w, `{"token":"tok-bob"}`)
				return
			}
			anonTokenReqs.Add(1)
			fmt.Fprint(w, `{"token":"tok-anonymous"}`)
		case r.Header.Get("Authorization") == "Bearer tok-bob":
			w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
			fmt.Fprint(w, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2},"layers":[]}`)
		default:
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="reg"`, srv.URL))
			w.WriteHeader(401)
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	c, _ := New(fastOptions())
	ctx := context.Background()
	if _, _, err := repo(t, c, host+"/team/private", &Credentials{Username: "bob", Password: "pw"}).GetManifest(ctx, "latest"); err != nil {
		t.Fatal(err)
	}
	_, _, err := repo(t, c, host+"/team/private", nil).GetManifest(ctx, "latest")
	if errdefs.KindOf(err) != errdefs.KindUnauthorized {
		t.Errorf("a caller without credentials: %v, want unauthorized", err)
	}
	if anonTokenReqs.Load() != 1 {
		t.Errorf("%d anonymous token requests, want 1", anonTokenReqs.Load())
	}
	_, _, err = repo(t, c, host+"/team/private", &Credentials{Username: "bob", Password: "other"}).GetManifest(ctx, "latest")
	if errdefs.KindOf(err) != errdefs.KindUnauthorized {
		t.Errorf("a caller with other credentials: %v, want unauthorized", err)
	}
}

// A repository's tags, from the real registry (Debian's pages no tag
// list: TestNextPage reads the Link header of those that do).
func TestTags(t *testing.T) {
	reg := testregistry.Start(t)
	c, _ := New(fastOptions())
	ctx := context.Background()
	img, err := testimage.Busybox(ocispec.Platform{OS: "linux", Architecture: "amd64"}, "/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	r := repo(t, c, reg.Host+"/test/tags", nil)
	for _, tag := range []string{"v1", "v2", "v3"} {
		if err := testimage.Push(ctx, r, tag, img); err != nil {
			t.Fatal(err)
		}
	}
	tags, err := r.Tags(ctx)
	if err != nil || strings.Join(tags, ",") != "v1,v2,v3" {
		t.Errorf("tags: %v %v", tags, err)
	}
	_, err = repo(t, c, reg.Host+"/test/nothing", nil).Tags(ctx)
	if errdefs.KindOf(err) != errdefs.KindNotFound || !strings.Contains(err.Error(), "repository 127.0.0.1") {
		t.Errorf("tags of a repository not there: %v", err)
	}
}

func TestNextPage(t *testing.T) {
	req, _ := http.NewRequest("GET", "https://r.example/v2/a/tags/list?n=2", nil)
	for link, want := range map[string]string{
		`</v2/a/tags/list?last=b&n=2>; rel="next"`:                 "https://r.example/v2/a/tags/list?last=b&n=2",
		`<https://other.example/v2/a/tags/list?last=b>;rel="next"`: "https://other.example/v2/a/tags/list?last=b",
		`</x>; rel="prev", </y>; rel="next"`:                       "https://r.example/y",
		``:                                                         "",
	} {
		resp := &http.Response{Request: req, Header: http.Header{}}
		if link != "" {
			resp.Header.Set("Link", link)
		}
		if got := nextPage(resp); got != want {
			t.Errorf("%s: %q, want %q", link, got, want)
		}
	}
}
