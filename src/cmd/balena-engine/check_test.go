package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/balena-os/balena-engine/src/image"
	"github.com/balena-os/balena-engine/src/internal/testimage"
	"github.com/balena-os/balena-engine/src/layer"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

func TestCheckRole(t *testing.T) {
	r, args, err := selectRole([]string{"balena-engine", "check", "--data-root", "/d"})
	if err != nil || r != roleCheck || strings.Join(args, " ") != "--data-root /d" {
		t.Fatalf("selectRole = %v %q %v", r, args, err)
	}
	// Only as the first argument, as "daemon".
	if r, _, _ := selectRole([]string{"balena-engine", "images", "check"}); r != roleClient {
		t.Fatalf("\"images check\" selected role %v", r)
	}
}

// loadImage puts a small image into a fresh data root, as "load" would.
func loadImage(t *testing.T, root, tag string) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(root, "engine.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ls, err := layer.Open(filepath.Join(root, "layers"), db, layer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	is, err := image.Open(db, ls, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	img := testimage.New(ocispec.Platform{OS: "linux", Architecture: "amd64"}, ocispec.ImageConfig{},
		testimage.NewLayer(testimage.File{Name: "etc/", Type: '5'}, testimage.File{Name: "etc/data", Body: []byte("payload")}))
	var buf bytes.Buffer
	if err := testimage.Archive(&buf, tag, img); err != nil {
		t.Fatal(err)
	}
	if err := is.Load(context.Background(), &buf, nil); err != nil {
		t.Fatal(err)
	}
}

func runCheck(args ...string) (int, string) {
	var out bytes.Buffer
	code := checkMain(args, &out, &out)
	return code, out.String()
}

func TestCheckMain(t *testing.T) {
	root := t.TempDir()
	if code, out := runCheck("--data-root", root); code != 0 || !strings.Contains(out, "0 images whole") {
		t.Fatalf("empty data root: %d %s", code, out)
	}
	if code, out := runCheck("--data-root", root, "--require", "busybox"); code != 1 || !strings.Contains(out, "required image busybox") {
		t.Fatalf("missing required image: %d %s", code, out)
	}
	loadImage(t, root, "app:1")
	// What a crash can leave: an ingestion under way. Recovery removes it
	// before the check, as at daemon start.
	if err := os.MkdirAll(filepath.Join(root, "layers", "tmp", "0011223344556677", "diff"), 0o700); err != nil {
		t.Fatal(err)
	}
	if code, out := runCheck("--data-root", root, "--require", "app:1"); code != 0 || !strings.Contains(out, "1 images whole") {
		t.Fatalf("loaded image: %d %s", code, out)
	}
	if tmp, _ := os.ReadDir(filepath.Join(root, "layers", "tmp")); len(tmp) != 0 {
		t.Errorf("recovery did not run: %v", tmp)
	}
	// Damage the layer's file: the image is no longer whole.
	files, _ := filepath.Glob(filepath.Join(root, "layers", "sha256", "*", "diff", "etc", "data"))
	if len(files) != 1 {
		t.Fatalf("layer file: %v", files)
	}
	if err := os.WriteFile(files[0], []byte("PAYLOAD"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := runCheck("--data-root", root, "--require", "app:1"); code != 1 || !strings.Contains(out, "PROBLEM") ||
		!strings.Contains(out, "not whole") {
		t.Fatalf("damaged layer: %d %s", code, out)
	}
	if code, _ := runCheck("--data-root", root, "extra"); code != 2 {
		t.Fatalf("extra argument: exit %d", code)
	}
}
