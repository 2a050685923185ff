package tests

import (
	"archive/tar"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/sbx-sandbox/sbx/images/imagetest"
)

// overlayDrivers are the two overlay implementations every overlay test runs with.
var overlayDrivers = []string{"kernel", "fuse"}

// busyboxLayer is a small root filesystem: Debian's static busybox and the
// applets the tests use, a passwd with root and app (1000).
func busyboxLayer(t *testing.T) v1.Layer {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("static busybox missing (busybox-static, installed by make setup): %v", err)
	}
	e := []imagetest.Entry{{Name: "bin/", Typ: tar.TypeDir}, {Name: "bin/busybox", Body: string(bb), Mode: 0o755}}
	for _, a := range []string{"sh", "cat", "id", "ls", "touch", "rm", "mkdir", "stat", "echo", "test", "pwd", "env", "cp", "tar", "gzip", "sha256sum", "wc", "find", "mount"} {
		e = append(e, imagetest.Entry{Name: "bin/" + a, Typ: tar.TypeSymlink, Link: "busybox"})
	}
	for _, d := range []string{"proc/", "dev/", "tmp/", "etc/", "root/", "srv/", "var/", "var/cache/"} {
		e = append(e, imagetest.Entry{Name: d, Typ: tar.TypeDir})
	}
	e = append(e,
		imagetest.Entry{Name: "etc/passwd", Body: "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/srv:/bin/sh\n"},
		imagetest.Entry{Name: "etc/group", Body: "root:x:0:\napp:x:1000:\n"},
		imagetest.Entry{Name: "etc/motd", Body: "base motd\n"},
		imagetest.Entry{Name: "var/cache/old", Body: "cached\n"},
	)
	return imagetest.Layer(t, e...)
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
	reg := imagetest.NewRegistry(t)
	ref := reg.Push(t, "t/base:1", imagetest.Image(t, v1.Config{
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
	reg := imagetest.NewRegistry(t)
	ref := reg.Push(t, "t/user:1", imagetest.Image(t, v1.Config{User: "app", Cmd: []string{"/bin/id"}}, busyboxLayer(t)))
	out := mustRun(t, "run", "--store", t.TempDir(), "--image", ref)
	if !strings.HasPrefix(out, "uid=1000(app) gid=1000(app)") {
		t.Fatalf("image user not used: %q", out)
	}
}

func TestSecondImageSharingTheBaseStoresOnlyItsNewLayer(t *testing.T) {
	unprivileged(t)
	reg := imagetest.NewRegistry(t)
	base := busyboxLayer(t)
	app := imagetest.Layer(t, imagetest.Entry{Name: "srv/app", Body: "app\n"})
	baseRef := reg.Push(t, "t/base:1", imagetest.Image(t, v1.Config{Cmd: []string{"/bin/sh"}}, base))
	appRef := reg.Push(t, "t/app:1", imagetest.Image(t, v1.Config{Cmd: []string{"/bin/cat", "/srv/app"}}, base, app))
	store := t.TempDir()
	mustRun(t, "image", "pull", "--store", store, baseRef)
	before := layerDirs(t, store)
	if len(before) != 1 {
		t.Fatalf("base image stored %d layers, want 1", len(before))
	}
	fetchedBefore := len(reg.Served())
	mustRun(t, "image", "pull", "--store", store, appRef)
	after := layerDirs(t, store)
	if len(after) != 2 {
		t.Fatalf("after the second image the store has %d layers, want 2 (the base once)", len(after))
	}
	baseDigest, _ := base.Digest()
	appDigest, _ := app.Digest()
	fetched := reg.Served()[fetchedBefore:]
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
	reg := imagetest.NewRegistry(t)
	base := busyboxLayer(t)
	del := imagetest.Layer(t,
		imagetest.Entry{Name: "etc/.wh.motd"},
		imagetest.Entry{Name: "var/cache/.wh..wh..opq"},
		imagetest.Entry{Name: "var/cache/new", Body: "new\n"},
	)
	ref := reg.Push(t, "t/del:1", imagetest.Image(t, v1.Config{}, base, del))
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
	reg := imagetest.NewRegistry(t)
	ref := reg.Push(t, "t/base:1", imagetest.Image(t, v1.Config{}, busyboxLayer(t)))
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
	img := imagetest.Image(t, v1.Config{Cmd: []string{"/bin/cat", "/etc/motd"}}, busyboxLayer(t))
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
	img := imagetest.Image(t, v1.Config{Cmd: []string{"/bin/cat", "/etc/motd"}}, busyboxLayer(t))
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
func hostileImage(t *testing.T, reg *imagetest.Registry, tag string, entries ...imagetest.Entry) string {
	return reg.Push(t, "t/hostile:"+tag, imagetest.Image(t, v1.Config{}, busyboxLayer(t), imagetest.Layer(t, entries...)))
}

// TestHostileLayersAreRefusedOrNeutralised attacks both kinds of store: one
// whose files are the caller's, one that keeps owners and unpacks as root of
// a user namespace, with capabilities there.
func TestHostileLayersAreRefusedOrNeutralised(t *testing.T) {
	for _, kind := range []string{"", "auto"} {
		t.Run("map-users="+kind, func(t *testing.T) { hostileLayers(t, "--map-users="+kind) })
	}
}

func hostileLayers(t *testing.T, mapUsers string) {
	unprivileged(t)
	reg := imagetest.NewRegistry(t)
	outside := t.TempDir()
	store := t.TempDir()
	var passwd syscall.Stat_t
	if err := syscall.Stat("/etc/passwd", &passwd); err != nil {
		t.Fatal(err)
	}

	// A `..` entry is refused: the pull fails and nothing is written.
	rel, _ := filepath.Rel(filepath.Join(store, "tmp", "x", "fs"), filepath.Join(outside, "dotdot"))
	r := sbx(t, "image", "pull", mapUsers, "--store", store, hostileImage(t, reg, "dotdot", imagetest.Entry{Name: rel, Body: "pwned"}))
	if r.code != 125 || !strings.Contains(r.stderr, "..") {
		t.Fatalf("a layer with a .. entry must be refused: %s", r)
	}

	// An absolute symlink followed by a write through it: the write stays in the layer.
	symRef := hostileImage(t, reg, "symlink",
		imagetest.Entry{Name: "escape", Typ: tar.TypeSymlink, Link: outside},
		imagetest.Entry{Name: "escape/pwned", Body: "pwned"})
	sbx(t, "image", "pull", mapUsers, "--store", store, symRef)

	// A hard link to the host's /etc/passwd is refused.
	r = sbx(t, "image", "pull", mapUsers, "--store", store, hostileImage(t, reg, "hardlink",
		imagetest.Entry{Name: "etc/stolen", Typ: tar.TypeLink, Link: "/etc/passwd"},
		imagetest.Entry{Name: "stolen2", Typ: tar.TypeLink, Link: "../../../../../../../../etc/passwd"}))
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
	reg := imagetest.NewRegistry(t)
	base := busyboxLayer(t)
	ref := reg.Push(t, "t/base:1", imagetest.Image(t, v1.Config{Cmd: []string{"/bin/cat", "/etc/motd"}}, base))
	digest, _ := base.Digest()
	size, _ := base.Size()
	stalled, release := make(chan struct{}, 1), make(chan struct{})
	defer close(release)
	inner := reg.Handler
	stall := true
	reg.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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

func TestStoreWithMapUsersAutoKeepsFileOwners(t *testing.T) {
	unprivileged(t)
	reg := imagetest.NewRegistry(t)
	owned := imagetest.Layer(t,
		imagetest.Entry{Name: "home/", Typ: tar.TypeDir},
		imagetest.Entry{Name: "home/app/", Typ: tar.TypeDir, UID: 1000, GID: 1000},
		imagetest.Entry{Name: "home/app/f", Body: "x", UID: 1000, GID: 1001},
		imagetest.Entry{Name: "far", Body: "x", UID: 70000, GID: 70000},
	)
	ref := reg.Push(t, "t/owned:1", imagetest.Image(t, v1.Config{}, busyboxLayer(t), owned))
	store := t.TempDir()
	r := sbx(t, "image", "pull", "--map-users", "auto", "--store", store, ref)
	if r.code != 0 || !strings.Contains(r.stderr, "70000:70000") {
		t.Fatalf("pull into an owner-keeping store: %s", r)
	}
	out := mustRun(t, "run", "--store", store, "--image", ref, "--", "/bin/stat", "-c", "%u:%g %n", "/home/app", "/home/app/f", "/far", "/bin/busybox")
	want := "1000:1000 /home/app\n1000:1001 /home/app/f\n0:0 /far\n0:0 /bin/busybox\n"
	if out != want {
		t.Fatalf("owners inside:\n%s\nwant:\n%s", out, want)
	}
	// On the host the file belongs to a subordinate id, not to the caller.
	var st syscall.Stat_t
	layers := layerDirs(t, store)
	found := false
	for _, l := range layers {
		if syscall.Lstat(filepath.Join(store, "layers", l, "fs", "home/app/f"), &st) == nil {
			found = true
			if int(st.Uid) == os.Getuid() {
				t.Fatal("the owner was folded to the caller in an owner-keeping store")
			}
		}
	}
	if !found {
		t.Fatal("layer with /home/app/f not found")
	}
	// An image of another user runs as that user, mapped like the store:
	// it owns its files, not root's, and has no capability and no way to
	// signal init, which stays root to start it.
	userRef := reg.Push(t, "t/owned-user:1", imagetest.Image(t, v1.Config{User: "1000:1000"}, busyboxLayer(t), owned))
	out = mustRun(t, "run", "--store", store, "--image", userRef, "--", "/bin/sh", "-c",
		"id -u; id -g; echo y > /home/app/f && cat /home/app/f; grep CapEff /proc/self/status; echo z > /far || echo far-refused; kill -TERM 1 || echo init-refused")
	for _, want := range []string{"1000\n1000\ny\n", "CapEff:\t0000000000000000", "far-refused", "init-refused"} {
		if !strings.Contains(out, want) {
			t.Errorf("image user 1000:1000 in an owner-keeping store: output lacks %q:\n%s", want, out)
		}
	}
	// Removing the images removes files the caller does not own.
	mustRun(t, "image", "rm", "--store", store, ref, userRef)
	if left := layerDirs(t, store); len(left) != 0 {
		t.Fatalf("layers left after rm: %v", left)
	}
	// A store that gave files to the caller does not switch.
	folded := t.TempDir()
	mustRun(t, "image", "pull", "--store", folded, ref)
	if r := sbx(t, "image", "pull", "--map-users", "auto", "--store", folded, ref); r.code != 125 {
		t.Fatalf("a folding store must not start keeping owners: %s", r)
	}
}

func TestImageOfARunningSandboxCannotBeRemoved(t *testing.T) {
	unprivileged(t)
	reg := imagetest.NewRegistry(t)
	ref := reg.Push(t, "t/base:1", imagetest.Image(t, v1.Config{}, busyboxLayer(t)))
	store := t.TempDir()
	mustRun(t, "image", "pull", "--store", store, ref)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := sbxCommand(t, ctx, "run", "--store", store, "--image", ref, "--", "/bin/sh", "-c", "echo started; exec /bin/cat")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	buf := make([]byte, 8)
	if n, _ := io.ReadFull(stdout, buf); string(buf[:n]) != "started\n" {
		t.Fatalf("sandbox did not start: %q", buf[:n])
	}
	r := sbx(t, "image", "rm", "--store", store, ref)
	if r.code != 125 || !strings.Contains(r.stderr, "in use") {
		t.Fatalf("removing the image of a running sandbox must be refused: %s", r)
	}
	if len(layerDirs(t, store)) != 1 {
		t.Fatal("the running sandbox's layer was removed")
	}
	stdin.Close()
	cmd.Wait()
	mustRun(t, "image", "rm", "--store", store, ref)
}

func TestUpperLayerFileHidesTheSamePathBelow(t *testing.T) {
	unprivileged(t)
	reg := imagetest.NewRegistry(t)
	over := imagetest.Layer(t, imagetest.Entry{Name: "etc/motd", Body: "middle\n"})
	top := imagetest.Layer(t, imagetest.Entry{Name: "etc/motd", Body: "top\n"}, imagetest.Entry{Name: "etc/issue", Body: "issue\n"})
	ref := reg.Push(t, "t/stack:1", imagetest.Image(t, v1.Config{}, busyboxLayer(t), over, top))
	store := t.TempDir()
	for _, d := range overlayDrivers {
		out := mustRun(t, "run", "--store", store, "--overlay-driver", d, "--image", ref, "--", "/bin/cat", "/etc/motd", "/etc/issue", "/var/cache/old")
		if out != "top\nissue\ncached\n" {
			t.Fatalf("%s: layers do not stack in order: %q", d, out)
		}
	}
}
