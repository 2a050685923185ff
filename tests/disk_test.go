package tests

// A full disk: under an overlay's persistent upper directory, and under
// an image store. The set-up script mounts a 32 MiB tmpfs the test user
// owns for these tests.

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/sbx-sandbox/sbx/images/imagetest"
	"github.com/sbx-sandbox/sbx/images/unpack"
)

const smallFS = "/var/lib/sbx-test/small"

// smallDir is a fresh directory on the small filesystem.
func smallDir(t *testing.T) string {
	t.Helper()
	unprivileged(t)
	if _, err := os.Stat(smallFS); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s: %v (the set-up script mounts it)", smallFS, err)
		}
		t.Skipf("%s: %v (make setup mounts it)", smallFS, err)
	}
	d, err := os.MkdirTemp(smallFS, "disk-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unpack.RemoveAll(d) })
	return d
}

func TestFullOverlayUpperIsENOSPCForTheCommandAndThePersistDirStaysUsable(t *testing.T) {
	for _, driver := range []string{"kernel", "fuse"} {
		persist := filepath.Join(smallDir(t), "p")
		flags := []string{"--overlay", "--overlay-driver", driver, "--persist", persist}
		out := mustSh(t, flags, "echo kept > /etc/kept; dd if=/dev/zero of=/opt/big bs=1M count=64 2>&1; echo dd=$?")
		if !strings.Contains(out, "No space left") || !strings.Contains(out, "dd=1") {
			t.Fatalf("%s: filling the upper: %q, want dd to fail with ENOSPC", driver, out)
		}
		// The next run sees the writes that fitted and can free the space.
		out = mustSh(t, flags, "cat /etc/kept; rm /opt/big && echo freed; echo again > /etc/again && cat /etc/again")
		if out != "kept\nfreed\nagain\n" {
			t.Fatalf("%s: the run after a full upper: %q", driver, out)
		}
	}
}

func TestFullImageStoreIsAClearErrorAndTheStoreStaysConsistent(t *testing.T) {
	store := filepath.Join(smallDir(t), "store")
	// 40 MB that no compression shrinks: more than the filesystem holds.
	big := make([]byte, 40<<20)
	rand.Read(big)
	dir := t.TempDir()
	save := func(ref string, img v1.Image) string {
		p := filepath.Join(dir, strings.NewReplacer("/", "_", ":", "_").Replace(ref)+".tar")
		tag, _ := name.NewTag(ref)
		if err := tarball.WriteToFile(p, tag, img); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := busyboxLayer(t)
	huge := save("example.org/huge:v1", imagetest.Image(t, v1.Config{}, base, imagetest.Layer(t, imagetest.Entry{Name: "big", Body: string(big)})))
	small := save("example.org/small:v1", imagetest.Image(t, v1.Config{Cmd: []string{"/bin/cat", "/etc/motd"}}, base))

	r := sbx(t, "image", "import", "--store", store, huge)
	// Progress lines come first (plain lines off a terminal); sbx's own
	// failure is one line.
	var failures []string
	for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if strings.HasPrefix(l, "sbx: ") {
			failures = append(failures, l)
		}
	}
	if r.code != 125 || len(failures) != 1 || !strings.Contains(failures[0], "no space left") {
		t.Fatalf("import into a full store: want exit 125 and one line saying the disk is full: %s", r)
	}
	if out := mustRun(t, "image", "ls", "--store", store); strings.Contains(out, "huge") {
		t.Fatalf("the store lists the image that did not fit:\n%s", out)
	}
	if r := sbx(t, "run", "--store", store, "--image", "example.org/huge:v1", "--", "true"); r.code == 0 {
		t.Fatalf("an image that did not fit runs: %s", r)
	}
	// Whatever fitted is whole or gone: a smaller image sharing the base
	// layer imports and runs in the same store.
	mustRun(t, "image", "import", "--store", store, small)
	if out := mustRun(t, "run", "--store", store, "--image", "example.org/small:v1"); out != "base motd\n" {
		t.Fatalf("the image imported after the full disk: %q", out)
	}
}
