// Package imagetest builds layers, images and a loopback registry for the
// tests of the images packages and of sbx itself: every image test needs
// them, and each building its own would drift.
package imagetest

import (
	"archive/tar"
	"bytes"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Entry is one member of a test layer; Typ 0 is a regular file, Mode 0 the
// usual 0644 (0755 for a directory).
type Entry struct {
	Name, Link, Body string
	Typ              byte
	Mode             int64
	Major, Minor     int64
	UID, GID         int
}

// Tar is the layer's uncompressed tar.
func Tar(t testing.TB, entries ...Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.Typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.Mode
		if mode == 0 {
			mode = 0o644
			if typ == tar.TypeDir {
				mode = 0o755
			}
		}
		hdr := &tar.Header{Name: e.Name, Linkname: e.Link, Typeflag: typ, Mode: mode, Devmajor: e.Major, Devminor: e.Minor, Uid: e.UID, Gid: e.GID}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.Body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.Body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Layer is the entries as an image layer.
func Layer(t testing.TB, entries ...Entry) v1.Layer {
	t.Helper()
	data := Tar(t, entries...)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Image stacks layers (bottom first) under cfg, for the host's platform.
func Image(t testing.TB, cfg v1.Config, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config = "linux", runtime.GOARCH, cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Registry is a registry on loopback that records the blobs it serves.
type Registry struct {
	Host string
	// Handler serves the requests; a test may wrap it.
	Handler http.Handler
	mu      sync.Mutex
	blobs   []string
}

// NewRegistry starts a registry for the test's life.
func NewRegistry(t testing.TB) *Registry {
	r := &Registry{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	r.Host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/") {
		r.mu.Lock()
		r.blobs = append(r.blobs, req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:])
		r.mu.Unlock()
	}
	r.Handler.ServeHTTP(w, req)
}

// Served lists the digests of the blobs fetched so far, in order.
func (r *Registry) Served() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.blobs...)
}

// Push stores img as repoTag ("team/app:1") and returns its full reference.
func (r *Registry) Push(t testing.TB, repoTag string, img v1.Image) string {
	t.Helper()
	ref := r.Host + "/" + repoTag
	n, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(n, img); err != nil {
		t.Fatal(err)
	}
	return ref
}
