package tests

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	stdlog "log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// overlayDrivers are the two overlay implementations every overlay test runs with.
var overlayDrivers = []string{"kernel", "fuse"}

// tarEntry is one member of a test layer.
type tarEntry struct {
	name, link, body string
	typ              byte
	mode             int64
}

func layerOf(t *testing.T, entries ...tarEntry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
			if typ == tar.TypeDir {
				mode = 0o755
			}
		}
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: typ, Mode: mode}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// busyboxLayer is a small root filesystem: Debian's static busybox and the
// applets the tests use, a passwd with root and app (1000).
func busyboxLayer(t *testing.T) v1.Layer {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("static busybox missing (busybox-static, installed by make setup): %v", err)
	}
	e := []tarEntry{{name: "bin/", typ: tar.TypeDir}, {name: "bin/busybox", body: string(bb), mode: 0o755}}
	for _, a := range []string{"sh", "cat", "id", "ls", "touch", "rm", "mkdir", "stat", "echo", "test", "pwd", "env", "cp", "tar", "gzip", "sha256sum", "wc", "find", "mount"} {
		e = append(e, tarEntry{name: "bin/" + a, typ: tar.TypeSymlink, link: "busybox"})
	}
	for _, d := range []string{"proc/", "dev/", "tmp/", "etc/", "root/", "srv/", "var/", "var/cache/"} {
		e = append(e, tarEntry{name: d, typ: tar.TypeDir})
	}
	e = append(e,
		tarEntry{name: "etc/passwd", body: "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/srv:/bin/sh\n"},
		tarEntry{name: "etc/group", body: "root:x:0:\napp:x:1000:\n"},
		tarEntry{name: "etc/motd", body: "base motd\n"},
		tarEntry{name: "var/cache/old", body: "cached\n"},
	)
	return layerOf(t, e...)
}

func imageOf(t *testing.T, cfg v1.Config, layers ...v1.Layer) v1.Image {
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

// testRegistry is a registry on loopback that logs the blobs it serves.
type testRegistry struct {
	host  string
	mu    sync.Mutex
	blobs []string
	h     http.Handler
}

func newRegistry(t *testing.T) *testRegistry {
	r := &testRegistry{h: registry.New(registry.Logger(stdlog.New(io.Discard, "", 0)))}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	r.host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

func (r *testRegistry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/") {
		r.mu.Lock()
		r.blobs = append(r.blobs, req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:])
		r.mu.Unlock()
	}
	r.h.ServeHTTP(w, req)
}

func (r *testRegistry) served() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.blobs...)
}

// push stores img as repo:tag and returns the reference.
func (r *testRegistry) push(t *testing.T, repoTag string, img v1.Image) string {
	t.Helper()
	ref := r.host + "/" + repoTag
	n, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(n, img); err != nil {
		t.Fatal(err)
	}
	return ref
}

func layerDirs(t *testing.T, store string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(store, "layers"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestPulledImageRunsWithItsConfig(t *testing.T) {
	unprivileged(t)
	reg := newRegistry(t)
	ref := reg.push(t, "t/base:1", imageOf(t, v1.Config{
		Env:        []string{"PATH=/bin", "GREETING=from-the-image"},
		WorkingDir: "/srv",
		Cmd:        []string{"/bin/sh", "-c", "echo $GREETING; pwd; id -u"},
	}, busyboxLayer(t)))
	store := t.TempDir()
	mustRun(t, "image", "pull", "--store", store, ref)
	for _, d := range overlayDrivers {
		out := mustRun(t, "run", "--store", store, "--overlay-driver", d, "--image", ref)
		if out != "from-the-image\n/srv\n0\n" {
			t.Fatalf("%s: image config not used: %q", d, out)
		}
	}
	// Flags override the image: the command, the directory, the user.
	out := mustRun(t, "run", "--store", store, "--image", ref, "--chdir", "/tmp", "--uid", "1000", "--", "/bin/sh", "-c", "pwd; id -u")
	if out != "/tmp\n1000\n" {
		t.Fatalf("flags did not override the image: %q", out)
	}
	ls := mustRun(t, "image", "ls", "--store", store)
	if !strings.Contains(ls, ref) || !strings.Contains(ls, "sha256:") {
		t.Fatalf("image ls: %q", ls)
	}
}

func TestImageUserNameIsResolvedFromItsPasswd(t *testing.T) {
	unprivileged(t)
	reg := newRegistry(t)
	ref := reg.push(t, "t/user:1", imageOf(t, v1.Config{User: "app", Cmd: []string{"/bin/id"}}, busyboxLayer(t)))
	out := mustRun(t, "run", "--store", t.TempDir(), "--image", ref)
	if !strings.HasPrefix(out, "uid=1000(app) gid=1000(app)") {
		t.Fatalf("image user not used: %q", out)
	}
}

func TestSecondImageSharingTheBaseStoresOnlyItsNewLayer(t *testing.T) {
	unprivileged(t)
	reg := newRegistry(t)
	base := busyboxLayer(t)
	app := layerOf(t, tarEntry{name: "srv/app", body: "app\n"})
	baseRef := reg.push(t, "t/base:1", imageOf(t, v1.Config{Cmd: []string{"/bin/sh"}}, base))
	appRef := reg.push(t, "t/app:1", imageOf(t, v1.Config{Cmd: []string{"/bin/cat", "/srv/app"}}, base, app))
	store := t.TempDir()
	mustRun(t, "image", "pull", "--store", store, baseRef)
	before := layerDirs(t, store)
	if len(before) != 1 {
		t.Fatalf("base image stored %d layers, want 1", len(before))
	}
	fetchedBefore := len(reg.served())
	mustRun(t, "image", "pull", "--store", store, appRef)
	after := layerDirs(t, store)
	if len(after) != 2 {
		t.Fatalf("after the second image the store has %d layers, want 2 (the base once)", len(after))
	}
	baseDigest, _ := base.Digest()
	appDigest, _ := app.Digest()
	fetched := reg.served()[fetchedBefore:]
	for _, b := range fetched {
		if b == baseDigest.String() {
			t.Fatal("the shared base layer was downloaded again")
		}
	}
	if !strings.Contains(strings.Join(fetched, " "), appDigest.String()) {
		t.Fatalf("the new layer was not fetched: %v", fetched)
	}
	if out := mustRun(t, "run", "--store", store, "--image", appRef); out != "app\n" {
		t.Fatalf("app image: %q", out)
	}
	// Removing the app image frees only its own layer; the base still runs.
	mustRun(t, "image", "rm", "--store", store, appRef)
	if left := layerDirs(t, store); len(left) != 1 || left[0] != before[0] {
		t.Fatalf("after rm the store has %v, want only the base %v", left, before)
	}
	mustRun(t, "run", "--store", store, "--image", baseRef, "--", "/bin/test", "-x", "/bin/busybox")
	if r := sbx(t, "run", "--store", store, "--image", appRef+"-gone", "--", "/bin/true"); r.code != 125 {
		t.Fatalf("a missing image must fail with 125: %s", r)
	}
}

func TestWhiteoutsOfAnUpperLayerHideLowerFiles(t *testing.T) {
	unprivileged(t)
	reg := newRegistry(t)
	base := busyboxLayer(t)
	del := layerOf(t,
		tarEntry{name: "etc/.wh.motd"},
		tarEntry{name: "var/cache/.wh..wh..opq"},
		tarEntry{name: "var/cache/new", body: "new\n"},
	)
	ref := reg.push(t, "t/del:1", imageOf(t, v1.Config{}, base, del))
	store := t.TempDir()
	for _, d := range overlayDrivers {
		out := mustRun(t, "run", "--store", store, "--overlay-driver", d, "--image", ref, "--",
			"/bin/sh", "-c", "test -e /etc/motd && echo motd; ls /var/cache; test -e /etc/passwd && echo passwd")
		if out != "new\npasswd\n" {
			t.Fatalf("%s: whiteouts not honoured: %q", d, out)
		}
	}
}

func TestImageWritesAreGoneOnTheNextRun(t *testing.T) {
	unprivileged(t)
	reg := newRegistry(t)
	ref := reg.push(t, "t/base:1", imageOf(t, v1.Config{}, busyboxLayer(t)))
	store := t.TempDir()
	for _, d := range overlayDrivers {
		mustRun(t, "run", "--store", store, "--overlay-driver", d, "--image", ref, "--", "/bin/sh", "-c", "echo x > /etc/written && rm /etc/motd")
		out := mustRun(t, "run", "--store", store, "--overlay-driver", d, "--image", ref, "--", "/bin/sh", "-c", "test -e /etc/written && echo written; cat /etc/motd")
		if out != "base motd\n" {
			t.Fatalf("%s: a run's writes reached the next run or the layer: %q", d, out)
		}
	}
	persist := filepath.Join(t.TempDir(), "state")
	mustRun(t, "run", "--store", store, "--persist", persist, "--image", ref, "--", "/bin/sh", "-c", "echo kept > /etc/written")
	if out := mustRun(t, "run", "--store", store, "--persist", persist, "--image", ref, "--", "/bin/cat", "/etc/written"); out != "kept\n" {
		t.Fatalf("--persist lost the write: %q", out)
	}
}

func TestImportedDockerArchiveRuns(t *testing.T) {
	unprivileged(t)
	img := imageOf(t, v1.Config{Cmd: []string{"/bin/cat", "/etc/motd"}}, busyboxLayer(t))
	archive := filepath.Join(t.TempDir(), "saved.tar")
	tag, _ := name.NewTag("example.org/saved:v1")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}
	store := t.TempDir()
	mustRun(t, "image", "import", "--store", store, archive)
	if out := mustRun(t, "run", "--store", store, "--image", "example.org/saved:v1"); out != "base motd\n" {
		t.Fatalf("imported image: %q", out)
	}
}

func TestImportedOCILayoutTarRuns(t *testing.T) {
	unprivileged(t)
	img := imageOf(t, v1.Config{Cmd: []string{"/bin/cat", "/etc/motd"}}, busyboxLayer(t))
	dir := filepath.Join(t.TempDir(), "oci")
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v2"})); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "oci.tar")
	if out, err := exec.Command("tar", "-C", dir, "-cf", archive, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	store := t.TempDir()
	mustRun(t, "image", "import", "--store", store, "--ref", "example.org/oci:v2", archive)
	if out := mustRun(t, "run", "--store", store, "--image", "example.org/oci:v2"); out != "base motd\n" {
		t.Fatalf("imported OCI layout: %q", out)
	}
}

// hostileImage pushes an image whose second layer is the given entries.
func hostileImage(t *testing.T, reg *testRegistry, tag string, entries ...tarEntry) string {
	return reg.push(t, "t/hostile:"+tag, imageOf(t, v1.Config{}, busyboxLayer(t), layerOf(t, entries...)))
}

func TestHostileLayersAreRefusedOrNeutralised(t *testing.T) {
	unprivileged(t)
	reg := newRegistry(t)
	outside := t.TempDir()
	store := t.TempDir()
	var passwd syscall.Stat_t
	if err := syscall.Stat("/etc/passwd", &passwd); err != nil {
		t.Fatal(err)
	}

	// A `..` entry is refused: the pull fails and nothing is written.
	rel, _ := filepath.Rel(filepath.Join(store, "tmp", "x", "fs"), filepath.Join(outside, "dotdot"))
	r := sbx(t, "image", "pull", "--store", store, hostileImage(t, reg, "dotdot", tarEntry{name: rel, body: "pwned"}))
	if r.code != 125 || !strings.Contains(r.stderr, "..") {
		t.Fatalf("a layer with a .. entry must be refused: %s", r)
	}

	// An absolute symlink followed by a write through it: the write stays in the layer.
	symRef := hostileImage(t, reg, "symlink",
		tarEntry{name: "escape", typ: tar.TypeSymlink, link: outside},
		tarEntry{name: "escape/pwned", body: "pwned"})
	sbx(t, "image", "pull", "--store", store, symRef)

	// A hard link to the host's /etc/passwd is refused.
	r = sbx(t, "image", "pull", "--store", store, hostileImage(t, reg, "hardlink",
		tarEntry{name: "etc/stolen", typ: tar.TypeLink, link: "/etc/passwd"},
		tarEntry{name: "stolen2", typ: tar.TypeLink, link: "../../../../../../../../etc/passwd"}))
	if r.code != 125 {
		t.Fatalf("a hard link to the host's /etc/passwd must be refused: %s", r)
	}

	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("a hostile layer wrote outside the store: %v", ents)
	}
	var after syscall.Stat_t
	syscall.Stat("/etc/passwd", &after)
	if after.Nlink != passwd.Nlink {
		t.Fatalf("/etc/passwd gained a link: %d -> %d", passwd.Nlink, after.Nlink)
	}
	// Refused layers leave nothing half-written behind.
	if ents, _ := os.ReadDir(filepath.Join(store, "tmp")); len(ents) != 0 {
		t.Fatalf("temporary layers left behind: %v", ents)
	}
	for _, l := range layerDirs(t, store) {
		if _, err := os.Stat(filepath.Join(store, "layers", l, "fs", "stolen2")); err == nil {
			t.Fatal("the refused hard-link layer is in the store")
		}
	}
}

// stallingWriter passes a response through until half of it is written,
// then tells the test and waits.
type stallingWriter struct {
	http.ResponseWriter
	left    int
	stalled chan<- struct{}
	release <-chan struct{}
}

func (w *stallingWriter) Write(b []byte) (int, error) {
	if w.left <= 0 {
		return len(b), nil
	}
	if len(b) > w.left {
		b = b[:w.left]
	}
	n, err := w.ResponseWriter.Write(b)
	w.left -= n
	if w.left <= 0 {
		w.ResponseWriter.(http.Flusher).Flush()
		w.stalled <- struct{}{}
		<-w.release
	}
	return n, err
}

func TestKilledPullLeavesNoLayerAndTheNextPullWorks(t *testing.T) {
	unprivileged(t)
	reg := newRegistry(t)
	base := busyboxLayer(t)
	ref := reg.push(t, "t/base:1", imageOf(t, v1.Config{Cmd: []string{"/bin/cat", "/etc/motd"}}, base))
	digest, _ := base.Digest()
	size, _ := base.Size()
	stalled, release := make(chan struct{}, 1), make(chan struct{})
	defer close(release)
	inner := reg.h
	stall := true
	reg.h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if stall && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, digest.String()) {
			stall = false
			w = &stallingWriter{ResponseWriter: w, left: int(size / 2), stalled: stalled, release: release}
		}
		inner.ServeHTTP(w, r)
	})
	store := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := sbxCommand(t, ctx, "image", "pull", "--store", store, ref)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stalled:
	case <-ctx.Done():
		t.Fatal("the pull never reached the layer")
	}
	cmd.Process.Kill()
	cmd.Wait()
	if l := layerDirs(t, store); len(l) != 0 {
		t.Fatalf("a killed pull left layers in the store: %v", l)
	}
	if r := sbx(t, "run", "--store", store, "--image", "sha256:"+strings.Repeat("0", 12), "--", "/bin/true"); r.code != 125 {
		t.Fatalf("nothing usable may be in the store: %s", r)
	}
	mustRun(t, "image", "pull", "--store", store, ref)
	if out := mustRun(t, "run", "--store", store, "--image", ref); out != "base motd\n" {
		t.Fatalf("after the killed pull: %q", out)
	}
	if ents, _ := os.ReadDir(filepath.Join(store, "tmp")); len(ents) != 0 {
		t.Fatalf("the next pull did not sweep the killed pull's litter: %v", ents)
	}
}
