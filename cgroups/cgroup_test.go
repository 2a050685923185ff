package cgroups

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const hybridMountinfo = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 /sub /sys/fs/cgroup/uni\040fied rw,relatime - cgroup2 cgroup2 rw,nsdelegate
42 31 0:36 / /mnt/pids-again rw,relatime - cgroup cgroup rw,pids
`

func TestParseMountinfoFindsEveryHierarchyOnce(t *testing.T) {
	hs, err := parseMountinfo(strings.NewReader(hybridMountinfo))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range hs {
		got = append(got, fmt.Sprintf("v%d %s %s %v", h.Version, h.Mountpoint, h.Root, h.Controllers))
	}
	want := []string{
		"v1 /sys/fs/cgroup/cpu,cpuacct / [cpu cpuacct]",
		"v1 /sys/fs/cgroup/memory / [memory]",
		"v1 /sys/fs/cgroup/pids / [pids]",
		"v1 /sys/fs/cgroup/systemd / []",
		"v2 /sys/fs/cgroup/uni fied /sub []",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseProcCgroupSplitsJoinedControllers(t *testing.T) {
	m, err := parseProcCgroup(strings.NewReader("4:memory:/a/b\n2:cpu,cpuacct:/c\n1:name=systemd:/s\n0::/user.slice/x.scope\n"))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"memory": "/a/b", "cpu": "/c", "cpuacct": "/c", "": "/user.slice/x.scope"} {
		if m[k] != v {
			t.Errorf("%q: got %q, want %q", k, m[k], v)
		}
	}
}

func TestHierarchyDirRefusesCgroupsOutsideTheMount(t *testing.T) {
	h := Hierarchy{Mountpoint: "/m", Root: "/sub"}
	for p, want := range map[string]string{"/sub": "/m", "/sub/a": "/m/a", "/subway": "", "/other": ""} {
		if got := h.Dir(p); got != want {
			t.Errorf("Dir(%q) = %q, want %q", p, got, want)
		}
	}
	if got := (Hierarchy{Mountpoint: "/m", Root: "/"}).Dir("/a/b"); got != "/m/a/b" {
		t.Errorf("root mount: got %q", got)
	}
}

func TestSwapDefaultsToNoneBeyondMemory(t *testing.T) {
	for _, c := range []struct {
		r    Resources
		want string
	}{
		{Resources{Memory: 5 << 20}, "0"},
		{Resources{Memory: 5 << 20, MemorySwap: 8 << 20}, fmt.Sprint(3 << 20)},
		{Resources{Memory: 5 << 20, MemorySwap: -1}, "max"},
	} {
		if got := swapBeyond(c.r); got != c.want {
			t.Errorf("%+v: got %s, want %s", c.r, got, c.want)
		}
	}
}

// writableV1Memory returns the memory hierarchy when this test may make
// cgroups in it (root on a v1 or hybrid machine).
func writableV1Memory(t *testing.T) *System {
	t.Helper()
	sys, err := Discover()
	if err != nil {
		t.Fatal(err)
	}
	h, ok := sys.V1("memory")
	if !ok {
		t.Skip("no cgroup v1 memory hierarchy here")
	}
	if d := h.Dir(sys.Own["memory"]); d == "" || os.Getuid() != 0 {
		t.Skip("needs root to make a cgroup in the v1 memory hierarchy")
	}
	return sys
}

func TestV1MemoryLimitKillsAllocatorAndIsReportedAsOOM(t *testing.T) {
	sys := writableV1Memory(t)
	name := fmt.Sprintf("sbx-unit-%d", os.Getpid())
	cg, err := sys.Create(Options{Name: name, Res: Resources{Memory: 5 << 20, Pids: 64}, NoSystemd: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Remove()
	if cg.Version != 1 || cg.Dirs["memory"] == "" || cg.Dirs["pids"] == "" {
		t.Fatalf("unexpected cgroup %+v", cg)
	}
	b, _ := os.ReadFile(filepath.Join(cg.Dirs["memory"], "memory.limit_in_bytes"))
	if strings.TrimSpace(string(b)) != fmt.Sprint(5<<20) {
		t.Fatalf("memory.limit_in_bytes = %s", b)
	}
	// The shell waits on stdin until it is inside the cgroup, then keeps
	// 50M in a variable.
	cmd := exec.Command("/bin/sh", "-c", `read go; x=$(head -c 50000000 /dev/zero | tr '\0' a); echo survived ${#x}`)
	in, _ := cmd.StdinPipe()
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := cg.Enter(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	in.Write([]byte("go\n"))
	in.Close()
	err = cmd.Wait()
	if strings.Contains(out.String(), "survived") {
		t.Fatalf("allocation of 50M survived a 5M limit: %s", out.String())
	}
	if !cg.OOMKilled() {
		t.Fatalf("no OOM kill recorded (wait: %v)", err)
	}
	if cg.MemoryCurrent() < 0 {
		t.Fatal("memory in use not readable")
	}
	cg.Remove()
	for _, d := range cg.Dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Fatalf("%s still exists after Remove: %v", d, err)
		}
	}
}

func TestNoWritableHierarchyIsANoCgroupError(t *testing.T) {
	sys := &System{Hierarchies: []Hierarchy{{Version: 1, Mountpoint: "/proc/self", Root: "/", Controllers: []string{"memory"}}}, Own: map[string]string{"memory": "/nonexistent"}}
	_, err := sys.Create(Options{Name: "x", User: "nobody-here", Res: Resources{Memory: 1 << 20}, NoSystemd: true})
	if _, ok := err.(*NoCgroupError); !ok {
		t.Fatalf("got %v, want a NoCgroupError", err)
	}
}

// This host has no cgroup v2 controllers to try the v2 path on; a plain
// directory laid out like a delegated v2 subtree checks what sbx writes
// there and where (the kernel's reading of it is not tested here).
func TestV2PathWritesLimitsInUnifiedFormatsUnderTheParentOfOwnCgroup(t *testing.T) {
	root := t.TempDir()
	parent := filepath.Join(root, "user.slice", "app.slice")
	if err := os.MkdirAll(filepath.Join(parent, "shell.scope"), 0o755); err != nil {
		t.Fatal(err)
	}
	for f, v := range map[string]string{"cgroup.procs": "", "cgroup.subtree_control": "memory pids\n"} {
		os.WriteFile(filepath.Join(parent, f), []byte(v), 0o644)
	}
	sys := &System{
		Hierarchies: []Hierarchy{{Version: 2, Mountpoint: root, Root: "/", Controllers: []string{"cpu", "io", "memory", "pids"}}},
		Own:         map[string]string{"": "/user.slice/app.slice/shell.scope"},
	}
	cg, err := sys.Create(Options{Name: "sbx-x", NoSystemd: true, Res: Resources{Memory: 5 << 20, CPUs: 1.5, Pids: 32, IOWeight: 200}})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "sbx-x")
	if cg.Version != 2 || cg.Dirs[""] != dir {
		t.Fatalf("cgroup %+v, want v2 in %s", cg, dir)
	}
	// Files that exist in a real cgroup were created here, mode 0.
	if err := cg.Enter(4242); err != nil {
		t.Fatal(err)
	}
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			os.Chmod(p, 0o644)
		}
		return nil
	})
	for f, want := range map[string]string{
		"memory.max": "5242880", "memory.swap.max": "0", "cpu.max": "150000 100000",
		"pids.max": "32", "io.weight": "default 200",
	} {
		if b, _ := os.ReadFile(filepath.Join(dir, f)); string(b) != want {
			t.Errorf("%s = %q, want %q", f, b, want)
		}
	}
	// The controllers the parent lacked were asked for, and only those.
	if b, _ := os.ReadFile(filepath.Join(parent, "cgroup.subtree_control")); string(b) != "+cpu +io" {
		t.Errorf("cgroup.subtree_control got %q, want +cpu +io", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs")); string(b) != "4242" {
		t.Errorf("cgroup.procs = %q", b)
	}
}

func TestHierarchyDirRefusesPathsAboveTheNamespaceRoot(t *testing.T) {
	h := Hierarchy{Mountpoint: "/sys/fs/cgroup/memory", Root: "/"}
	for _, p := range []string{"/../../sbx-u/sbx-1", "/a/../../b", "a/b", "/a//b/./c"} {
		if got := h.Dir(p); got != "" {
			t.Errorf("Dir(%q) = %q, want none", p, got)
		}
	}
}

// FuzzHierarchyDir: whatever /proc/self/mountinfo and /proc/self/cgroup
// say, a cgroup's directory is inside its hierarchy's mount.
func FuzzHierarchyDir(f *testing.F) {
	f.Add(hybridMountinfo, "4:memory:/a/b\n0::/user.slice/x.scope\n")
	f.Add("41 31 0:38 /sub /m rw - cgroup2 cgroup2 rw\n", "0::/../../x\n")
	f.Fuzz(func(t *testing.T, mountinfo, procCgroup string) {
		hs, _ := parseMountinfo(strings.NewReader(mountinfo))
		own, _ := parseProcCgroup(strings.NewReader(procCgroup))
		for _, h := range hs {
			if h.Version != 1 && h.Version != 2 {
				t.Fatalf("version %d", h.Version)
			}
			for _, p := range own {
				d := h.Dir(p)
				if d == "" {
					continue
				}
				mp := filepath.Clean(h.Mountpoint)
				if d != mp && !strings.HasPrefix(d, strings.TrimSuffix(mp, "/")+"/") {
					t.Fatalf("Dir(%q) = %q escapes the mount %q", p, d, h.Mountpoint)
				}
			}
		}
	})
}
