package fetch

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	stdlog "log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/sbx-sandbox/sbx/images/store"
)

func tarLayer(t *testing.T, files map[string]string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for n, b := range files {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write([]byte(b))
	}
	tw.Close()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func image(t *testing.T, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{Env: []string{"PATH=/bin"}, Cmd: []string{"/bin/sh"}, WorkingDir: "/work"})
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf.OS, cf.Architecture = "linux", HostPlatform().Architecture
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// blobLog is a registry that records which blobs were fetched.
type blobLog struct {
	mu    sync.Mutex
	blobs []string
	h     http.Handler
}

func (b *blobLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
		b.mu.Lock()
		b.blobs = append(b.blobs, r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:])
		b.mu.Unlock()
	}
	b.h.ServeHTTP(w, r)
}

func TestSecondImageFetchesOnlyItsNewLayer(t *testing.T) {
	log := &blobLog{h: registry.New(registry.Logger(stdlog.New(io.Discard, "", 0)))}
	srv := httptest.NewServer(log)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	base := tarLayer(t, map[string]string{"bin/busybox": "elf"})
	app := tarLayer(t, map[string]string{"app/run": "#!/bin/sh"})
	for ref, img := range map[string]v1.Image{host + "/t/base:1": image(t, base), host + "/t/app:1": image(t, base, app)} {
		r, _ := name.ParseReference(ref)
		if err := remote.Write(r, img); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := store.Open(t.TempDir())
	if _, err := Pull(context.Background(), s, host+"/t/base:1", Options{}); err != nil {
		t.Fatal(err)
	}
	log.blobs = nil
	img, err := Pull(context.Background(), s, host+"/t/app:1", Options{})
	if err != nil {
		t.Fatal(err)
	}
	appDigest, _ := app.Digest()
	baseDigest, _ := base.Digest()
	for _, b := range log.blobs {
		if b == baseDigest.String() {
			t.Fatal("the shared base layer was downloaded again")
		}
	}
	found := false
	for _, b := range log.blobs {
		found = found || b == appDigest.String()
	}
	if !found {
		t.Fatalf("new layer not fetched; fetched %v", log.blobs)
	}
	ents, _ := os.ReadDir(filepath.Join(s.Root(), "layers"))
	if len(ents) != 2 || len(img.Layers) != 2 {
		t.Fatalf("store holds %d layers, image lists %d; want 2 and 2", len(ents), len(img.Layers))
	}
	if img.Config.WorkingDir != "/work" || img.Config.Cmd[0] != "/bin/sh" {
		t.Fatalf("config not kept: %+v", img.Config)
	}
}

func TestImportDockerArchiveAndOCILayout(t *testing.T) {
	img := image(t, tarLayer(t, map[string]string{"etc/hostname": "x"}))
	dir := t.TempDir()
	archive := filepath.Join(dir, "save.tar")
	tag, _ := name.NewTag("example.org/saved:v1")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}
	s, _ := store.Open(t.TempDir())
	got, err := Import(context.Background(), s, archive, "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Refs[0] != "example.org/saved:v1" {
		t.Fatalf("imported %+v", got)
	}
	lp, err := layout.Write(filepath.Join(dir, "oci"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	got, err = Import(context.Background(), s, filepath.Join(dir, "oci"), "local/oci:1", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Refs[0] != "docker.io/local/oci:1" {
		t.Fatalf("refs %v", got[0].Refs)
	}
	all, _ := s.Images()
	if len(all) != 1 || len(all[0].Refs) != 2 {
		t.Fatalf("the same image imported twice should be one image with two names: %+v", all)
	}
}

func TestNormalizeSpellsDockerHubOneWay(t *testing.T) {
	for in, want := range map[string]string{
		"alpine":               "docker.io/library/alpine:latest",
		"docker.io/alpine:3":   "docker.io/library/alpine:3",
		"127.0.0.1:5000/a/b:c": "127.0.0.1:5000/a/b:c",
	} {
		if got, err := Normalize(in); err != nil || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
