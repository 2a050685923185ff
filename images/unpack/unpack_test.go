package unpack

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sbx-sandbox/sbx/images/imagetest"
)

type entry = imagetest.Entry

func layer(t testing.TB, entries ...entry) []byte { return imagetest.Tar(t, entries...) }

// sandbox returns a layer directory inside a fresh parent that also holds a
// sentinel file, the "outside" a hostile layer would aim at.
func sandbox(t testing.TB) (dir, outside string) {
	t.Helper()
	parent := t.TempDir()
	dir = filepath.Join(parent, "layer")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	outside = filepath.Join(parent, "outside")
	if err := os.WriteFile(outside, []byte("untouched"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { RemoveAll(dir) })
	return dir, outside
}

// parentUnchanged fails unless the layer's parent still holds exactly the
// layer and the untouched sentinel.
func parentUnchanged(t testing.TB, dir, outside string) {
	t.Helper()
	names, err := os.ReadDir(filepath.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 2 {
		t.Fatalf("something was written next to the layer: %v", names)
	}
	b, err := os.ReadFile(outside)
	if err != nil || string(b) != "untouched" {
		t.Fatalf("file outside the layer changed: %q %v", b, err)
	}
}

func TestWhiteoutOfDotDotDeletesNothingOutside(t *testing.T) {
	for _, name := range []string{".wh...", "a/.wh...", "a/b/.wh..."} {
		dir, outside := sandbox(t)
		if err := Layer(bytes.NewReader(layer(t, entry{Name: name})), dir, Options{}); err == nil {
			t.Errorf("whiteout %q accepted", name)
		}
		parentUnchanged(t, dir, outside)
	}
}

func TestDotDotEntryIsRefused(t *testing.T) {
	dir, outside := sandbox(t)
	err := Layer(bytes.NewReader(layer(t, entry{Name: "../outside", Body: "pwned"})), dir, Options{})
	if err == nil {
		t.Fatal("a layer with a .. entry was accepted")
	}
	parentUnchanged(t, dir, outside)
	err = Layer(bytes.NewReader(layer(t, entry{Name: "a/../../outside", Body: "pwned"})), dir, Options{})
	if err == nil {
		t.Fatal("a layer with a nested .. entry was accepted")
	}
	parentUnchanged(t, dir, outside)
}

func TestAbsoluteNameLandsInsideLayer(t *testing.T) {
	dir, outside := sandbox(t)
	if err := Layer(bytes.NewReader(layer(t, entry{Name: outside, Body: "inside"})), dir, Options{}); err != nil {
		t.Fatal(err)
	}
	parentUnchanged(t, dir, outside)
	if b, err := os.ReadFile(filepath.Join(dir, outside)); err != nil || string(b) != "inside" {
		t.Fatalf("absolute entry not rebased into the layer: %q %v", b, err)
	}
}

func TestWriteThroughAbsoluteSymlinkStaysInsideLayer(t *testing.T) {
	dir, outside := sandbox(t)
	parent := filepath.Dir(outside)
	l := layer(t,
		entry{Name: "escape", Typ: tar.TypeSymlink, Link: parent},
		entry{Name: "escape/outside", Body: "pwned"},
	)
	err := Layer(bytes.NewReader(l), dir, Options{})
	parentUnchanged(t, dir, outside)
	if err == nil {
		// Neutralised rather than refused: the write must be inside the layer.
		if b, rerr := os.ReadFile(filepath.Join(dir, parent, "outside")); rerr != nil || string(b) != "pwned" {
			t.Fatalf("write through symlink went nowhere visible: %v", rerr)
		}
	}
	// A relative symlink climbing out is held at the layer root too.
	dir2, outside2 := sandbox(t)
	l = layer(t,
		entry{Name: "up", Typ: tar.TypeSymlink, Link: "../../../../../../../../" + filepath.Dir(outside2)},
		entry{Name: "up/outside", Body: "pwned"},
	)
	Layer(bytes.NewReader(l), dir2, Options{})
	parentUnchanged(t, dir2, outside2)
}

func TestHardLinkOutsideLayerIsRefused(t *testing.T) {
	dir, outside := sandbox(t)
	for _, target := range []string{"/etc/passwd", outside, "../outside"} {
		err := Layer(bytes.NewReader(layer(t, entry{Name: "passwd", Typ: tar.TypeLink, Link: target})), dir, Options{})
		if err == nil {
			t.Fatalf("hard link to %s accepted", target)
		}
		if _, err := os.Lstat(filepath.Join(dir, "passwd")); err == nil {
			t.Fatalf("hard link to %s was created", target)
		}
	}
	parentUnchanged(t, dir, outside)
	var st unix.Stat_t
	if err := unix.Stat(outside, &st); err != nil || st.Nlink != 1 {
		t.Fatalf("outside file gained a link: nlink %d", st.Nlink)
	}
}

func TestHardLinkInsideLayerWorks(t *testing.T) {
	dir, _ := sandbox(t)
	l := layer(t, entry{Name: "bin/busybox", Body: "elf"}, entry{Name: "bin/sh", Typ: tar.TypeLink, Link: "/bin/busybox"})
	if err := Layer(bytes.NewReader(l), dir, Options{}); err != nil {
		t.Fatal(err)
	}
	var a, b unix.Stat_t
	unix.Stat(filepath.Join(dir, "bin/busybox"), &a)
	unix.Stat(filepath.Join(dir, "bin/sh"), &b)
	if a.Ino != b.Ino {
		t.Fatal("hard link not made")
	}
}

func TestWhiteoutsBecomeOverlayWhiteouts(t *testing.T) {
	dir, _ := sandbox(t)
	l := layer(t,
		entry{Name: "etc/.wh.motd", Body: ""},
		entry{Name: "var/cache/.wh..wh..opq", Body: ""},
	)
	if err := Layer(bytes.NewReader(l), dir, Options{}); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(dir, "etc/motd"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Fatalf("whiteout is not a 0/0 character device: mode %o rdev %d", st.Mode, st.Rdev)
	}
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(filepath.Join(dir, "var/cache"), OpaqueXattr, buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Fatalf("opaque directory not marked: %q %v", buf[:n], err)
	}
	for _, n := range []string{"etc/.wh.motd", "var/cache/.wh..wh..opq"} {
		if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
			t.Fatalf("OCI whiteout file %s left in the layer", n)
		}
	}
}

func TestDeviceNodesAreSkippedWithANote(t *testing.T) {
	dir, _ := sandbox(t)
	var notes []string
	l := layer(t, entry{Name: "dev/sda", Typ: tar.TypeBlock, Major: 8}, entry{Name: "dev/mem", Typ: tar.TypeChar, Major: 1, Minor: 1})
	if err := Layer(bytes.NewReader(l), dir, Options{Note: func(s string) { notes = append(notes, s) }}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"dev/sda", "dev/mem"} {
		if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
			t.Fatalf("device node %s was created", n)
		}
	}
	if len(notes) != 2 || !strings.Contains(notes[0], "/dev/sda") {
		t.Fatalf("notes: %q", notes)
	}
}

func TestReadOnlyDirectoryStillReceivesItsEntries(t *testing.T) {
	dir, _ := sandbox(t)
	l := layer(t, entry{Name: "ro", Typ: tar.TypeDir, Mode: 0o555}, entry{Name: "ro/file", Body: "x"})
	if err := Layer(bytes.NewReader(l), dir, Options{}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "ro"))
	if err != nil || st.Mode().Perm() != 0o555 {
		t.Fatalf("ro mode: %v %v", st.Mode(), err)
	}
	if err := RemoveAll(dir); err != nil {
		t.Fatalf("a layer with read-only directories cannot be removed: %v", err)
	}
}

func TestSetIDBitsDroppedWhenOwnershipIsFolded(t *testing.T) {
	dir, _ := sandbox(t)
	if err := Layer(bytes.NewReader(layer(t, entry{Name: "su", Body: "x", Mode: 0o4755})), dir, Options{}); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(filepath.Join(dir, "su"))
	if st.Mode()&os.ModeSetuid != 0 || st.Mode().Perm() != 0o755 {
		t.Fatalf("mode %v", st.Mode())
	}
}

func TestLaterEntryReplacesEarlier(t *testing.T) {
	dir, _ := sandbox(t)
	l := layer(t,
		entry{Name: "a/b", Body: "dir child"},
		entry{Name: "a", Body: "now a file"},
		entry{Name: "c", Body: "one"},
		entry{Name: "c", Typ: tar.TypeSymlink, Link: "a"},
	)
	if err := Layer(bytes.NewReader(l), dir, Options{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a")); string(b) != "now a file" {
		t.Fatalf("a = %q", b)
	}
	if l, _ := os.Readlink(filepath.Join(dir, "c")); l != "a" {
		t.Fatalf("c -> %q", l)
	}
}

func TestZeroFilledFileTakesNoDiskSpace(t *testing.T) {
	dir, _ := sandbox(t)
	body := strings.Repeat("\x00", 8<<20) + "end"
	if err := Layer(bytes.NewReader(layer(t, entry{Name: "big", Body: body})), dir, Options{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "big"))
	if err != nil || string(b) != body {
		t.Fatalf("content changed: %d bytes, %v", len(b), err)
	}
	var st unix.Stat_t
	unix.Stat(filepath.Join(dir, "big"), &st)
	if st.Blocks*512 > 1<<20 {
		t.Fatalf("8 MB of zeros took %d bytes of disk", st.Blocks*512)
	}
}

// FuzzLayer feeds arbitrary archives to the unpacker: it may refuse them,
// but nothing may appear or change outside the layer directory.
func FuzzLayer(f *testing.F) {
	f.Add(layer(f, entry{Name: "../x", Body: "a"}))
	f.Add(layer(f, entry{Name: "l", Typ: tar.TypeSymlink, Link: "/"}, entry{Name: "l/outside", Body: "a"}))
	f.Add(layer(f, entry{Name: "l", Typ: tar.TypeSymlink, Link: "../.."}, entry{Name: "l/x", Typ: tar.TypeLink, Link: "l/outside"}))
	f.Add(layer(f, entry{Name: "d", Typ: tar.TypeDir, Mode: 0o500}, entry{Name: "d/.wh.x"}, entry{Name: "d/.wh..wh..opq"}))
	f.Add(layer(f, entry{Name: "a/b/c", Body: "x"}, entry{Name: "a/b", Typ: tar.TypeLink, Link: "a/b/c"}))
	// A directory swapped for a symlink to outside, then written through;
	// whiteouts naming the parent; a long PAX name that climbs out.
	f.Add(layer(f, entry{Name: "d", Typ: tar.TypeDir, Mode: 0o755}, entry{Name: "d", Typ: tar.TypeSymlink, Link: "../.."}, entry{Name: "d/x", Body: "a"}))
	f.Add(layer(f, entry{Name: ".wh..."}, entry{Name: "a/.wh..."}, entry{Name: ".wh..wh..opq"}))
	f.Add(layer(f, entry{Name: strings.Repeat("a/", 60) + strings.Repeat("../", 70) + "x", Body: "a"}))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir, outside := sandbox(t)
		Layer(bytes.NewReader(data), dir, Options{})
		parentUnchanged(t, dir, outside)
		var st unix.Stat_t
		if err := unix.Stat(outside, &st); err != nil || st.Nlink != 1 {
			t.Fatalf("outside file gained a link")
		}
	})
}
