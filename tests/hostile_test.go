package tests

// Hostile input through the binary: every bad input is exit 125 and one
// line naming the input and the problem, and nothing of a sandbox is left
// behind: no state directory, cgroup, listening socket or layer.

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/sbx-sandbox/sbx/images/imagetest"
)

// privateRuntimeDir gives the test's sbx calls a state directory of their
// own, so that what is left in it is theirs alone.
func privateRuntimeDir(t *testing.T) string {
	d := t.TempDir()
	os.Chmod(d, 0o700)
	t.Setenv("XDG_RUNTIME_DIR", d)
	return filepath.Join(d, "sbx")
}

// stateEntries lists the state directory's entries (none when it is absent).
func stateEntries(root string) []string {
	ents, _ := os.ReadDir(root)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// sandboxCgroups lists the sandbox cgroups under parents.
func sandboxCgroups(parents []string) map[string]bool {
	out := map[string]bool{}
	for _, p := range parents {
		ents, _ := os.ReadDir(p)
		for _, e := range ents {
			if e.IsDir() && strings.HasPrefix(e.Name(), "sbx-") {
				out[filepath.Join(p, e.Name())] = true
			}
		}
	}
	return out
}

// privateCgroupParent makes a cgroup of the test's own under each of the
// hierarchies sbx uses here, for --cgroup-parent: what is left in it was
// left by this test, whatever else runs on the machine.
func privateCgroupParent(t *testing.T) (dirs []string, rel string) {
	name := uniqueName("test")
	for _, p := range cgroupParents(t) {
		d := filepath.Join(p, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatalf("private cgroup: %v", err)
		}
		dirs = append(dirs, d)
		t.Cleanup(func() { os.Remove(d) })
		rel = "/" + filepath.Base(p) + "/" + name
	}
	return dirs, rel
}

// newCgroups are the sandbox cgroups that exist now and did not before.
func newCgroups(parents []string, before map[string]bool) []string {
	var out []string
	for d := range sandboxCgroups(parents) {
		if !before[d] {
			out = append(out, d)
		}
	}
	return out
}

func TestBadInputExits125NamingItAndLeavesNothingBehind(t *testing.T) {
	parents, cgParent := privateCgroupParent(t)
	root := privateRuntimeDir(t)
	port := freePort(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := strconv.Itoa(busy.Addr().(*net.TCPAddr).Port)
	dir := t.TempDir()
	badProfile := filepath.Join(dir, "bad.toml")
	os.WriteFile(badProfile, []byte("[run]\nhostname = 7\n"), 0o644)
	cycle := filepath.Join(dir, "cycle.toml")
	os.WriteFile(cycle, []byte("include = [\"./cycle.toml\"]\n"), 0o644)
	p := strconv.Itoa(port)
	// Every case asks for a cgroup and a published port, so that a failure
	// after either was made would show as a leftover.
	// The bad argument comes last: a later flag would override it.
	with := func(base []string, bad ...string) []string { return append(append([]string(nil), base...), bad...) }
	common := []string{"--memory", "64M", "--pids", "100", "--cgroup-parent", cgParent}
	slirp := with(common, "--net", "slirp", "-p", p+":80")
	for _, c := range []struct {
		args []string
		want string // what the message must name
	}{
		{[]string{"--no-such-flag"}, "--no-such-flag"},
		{with(slirp, "--profile", badProfile), "bad.toml:2"},
		{with(slirp, "--profile", cycle), "cycle"},
		{with(slirp, "--profile", "no-such-profile"), "no-such-profile"},
		{with(slirp, "--bind", "/no/such/dir"), "/no/such/dir"},
		{with(slirp, "--ro-bind", "/etc/passwd:/x", "--tmpfs", "/x/y"), "/x/y"},
		{with(slirp, "--chdir", "/no/such/dir"), "/no/such/dir"},
		{with(slirp, "--cap-add", "CAP_NOPE"), "CAP_NOPE"},
		{with(slirp, "--memory", "lots"), "lots"},
		{with(common, "--net", "slirp", "-p", "0:80"), "0:80"},
		{with(common, "--net", "slirp", "-p", busyPort+":80"), busyPort},
		{with(common, "--net", "slirp", "-p", p+":80", "--allow", "a..b"), "a..b"},
		{with(common, "--net", "slirp", "-p", p+":80", "--dns", "not-an-ip"), "not-an-ip"},
		{with(slirp, "--rootfs", "/no/such/root"), "/no/such/root"},
		{with(slirp, "--image", "Bad::Ref"), "Bad::Ref"},
		{with(slirp, "--pass-fd", "77"), "77"},
		{with(slirp, "--setenv", "NOEQUALS"), "NOEQUALS"},
		{with(slirp, "--uid", "-1"), "-1"},
	} {
		before := sandboxCgroups(parents)
		r := sbx(t, append(append([]string{"run"}, c.args...), "--", "true")...)
		msg := strings.TrimSpace(r.stderr)
		if r.code != 125 || strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "sbx: ") || !strings.Contains(msg, c.want) {
			t.Errorf("%v: want exit 125 and one line naming %q: %s", c.args, c.want, r)
		}
		if e := stateEntries(root); len(e) > 0 {
			t.Errorf("%v: state left behind: %v", c.args, e)
		}
		if left := newCgroups(parents, before); len(left) > 0 {
			t.Errorf("%v: cgroups left behind: %v", c.args, left)
		}
		if l, err := net.Listen("tcp", "127.0.0.1:"+p); err != nil {
			t.Errorf("%v: port %s left listening: %v", c.args, p, err)
		} else {
			l.Close()
		}
	}
}

func TestTruncatedImageArchiveIs125AndLeavesNoLayer(t *testing.T) {
	unprivileged(t)
	img := imagetest.Image(t, v1.Config{Cmd: []string{"/bin/true"}}, busyboxLayer(t))
	archive := filepath.Join(t.TempDir(), "saved.tar")
	tag, _ := name.NewTag("example.org/cut:v1")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(archive)
	for _, size := range []int64{st.Size() / 2, st.Size() - 1024, 100} {
		if err := os.Truncate(archive, size); err != nil {
			t.Fatal(err)
		}
		store := t.TempDir()
		r := sbx(t, "image", "import", "--store", store, archive)
		if r.code != 125 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, archive) {
			t.Errorf("truncated to %d: want 125 and one line naming the archive: %s", size, r)
		}
		ents, _ := os.ReadDir(filepath.Join(store, "layers"))
		for _, e := range ents {
			t.Errorf("truncated to %d: a layer was left in the store: %s", size, e.Name())
		}
		if out := sbx(t, "image", "ls", "--store", store); strings.Contains(out.stdout, "example.org/cut") {
			t.Errorf("truncated to %d: the store lists the image: %s", size, out.stdout)
		}
	}
}
