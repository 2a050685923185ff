package profiles

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/sbx-sandbox/sbx/spec"
	"golang.org/x/sys/unix"
)

// testLoader looks in two directories of the test's own, then the built-ins.
func testLoader(t *testing.T) (*Loader, string, string) {
	t.Helper()
	user, system := t.TempDir(), t.TempDir()
	sub, err := fs.Sub(builtinFS, "builtin")
	if err != nil {
		t.Fatal(err)
	}
	return &Loader{Dirs: []string{user, system}, Builtin: sub,
		Vars: Vars{"HOME": "/home/u", "PWD": "/work/proj", "UID": "1000", "GID": "1000", "XDG_DATA_HOME": "/home/u/.local/share", "XDG_CACHE_HOME": "/home/u/.cache"}}, user, system
}

func write(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// wantProblem loads text and wants exactly the problems' lines, each
// message containing its fragment.
func wantProblem(t *testing.T, text string, line int, fragment string) {
	t.Helper()
	l, dir, _ := testLoader(t)
	p := write(t, dir, "broken.toml", text)
	_, _, err := l.Load(p)
	if err == nil {
		t.Fatalf("profile loaded; want a problem at line %d containing %q", line, fragment)
	}
	msg := err.Error()
	want := p + ":" + itoa(line) + ": "
	if !strings.Contains(msg, want) || !strings.Contains(msg, fragment) {
		t.Fatalf("got %q\nwant it to contain %q and %q", msg, want, fragment)
	}
}

func itoa(n int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(n)) }

func fmtInt(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return fmtInt(n/10) + string(rune('0'+n%10))
}

func TestUnknownKeyIsReportedWithItsLine(t *testing.T) {
	wantProblem(t, "description = \"x\"\n\n[filesystem]\nroot = \"host\"\nro_bindd = [\"/x\"]\n", 5, `unknown key "filesystem.ro_bindd"`)
	wantProblem(t, "[network]\nmode = \"none\"\n[nework]\nmode = \"host\"\n", 4, `unknown key "nework.mode"`)
}

func TestWrongTypeIsReportedWithItsLine(t *testing.T) {
	wantProblem(t, "[run]\nhostname = \"h\"\nnew_session = \"yes\"\n", 3, "new_session")
	wantProblem(t, "[filesystem]\nbind = \"/x\"\n", 2, "bind")
}

func TestUnknownSyscallIsReportedWithItsLine(t *testing.T) {
	wantProblem(t, "[seccomp]\n\ndeny = [\"mount\", \"mountt\"]\n", 3, `unknown syscall "mountt"`)
	wantProblem(t, "[seccomp]\ndeny = [\"@mounts\"]\n", 2, `unknown syscall group "@mounts"`)
	wantProblem(t, "[[seccomp.rule]]\nsyscalls = [\"clonee\"]\naction = \"errno\"\n", 2, `unknown syscall "clonee"`)
}

func TestUnknownNamesAndImpossibleValuesAreReportedWithTheirLines(t *testing.T) {
	wantProblem(t, "[capabilities]\nadd = [\"CAP_NET_RAWW\"]\n", 2, `unknown capability "CAP_NET_RAWW"`)
	wantProblem(t, "[seccomp]\nerrno = \"EPERMM\"\n", 2, `unknown errno "EPERMM"`)
	wantProblem(t, "[network]\nmode = \"bridge\"\n", 2, `"bridge" is not one of none, host, slirp`)
	wantProblem(t, "[run]\npass_fds = [1]\n", 2, "0, 1 and 2 are always passed")
	wantProblem(t, "[run]\nuid = -1\n", 2, "uid")
	wantProblem(t, "[filesystem]\nbind = [\"${HOEM}/x\"]\n", 2, "unknown variable ${HOEM}")
	wantProblem(t, "[filesystem]\nro_bind = [\"/a:relative\"]\n", 2, "DST an absolute path")
	wantProblem(t, "[[seccomp.rule]]\nsyscalls = [\"ioctl\"]\naction = \"errno\"\nargs = [{arg = 7, op = \"==\", value = 1}]\n", 1, "arguments 0 to 5")
	wantProblem(t, "[[seccomp.rule]]\nsyscalls = [\"ioctl\"]\naction = \"errno\"\nargs = [{arg = 1, op = \"==\", value = \"TIOCSTII\"}]\n", 4, "TIOCSTII")
	wantProblem(t, "[limits]\nmemory = \"lots\"\n", 2, "expected a size")
	wantProblem(t, "[limits]\nio_weight = 0\n", 2, "1 to 10000")
	wantProblem(t, "description = \"x\"\nthis is not toml\n", 2, "")
}

func TestIncludeCycleIsAnErrorNamingTheCycle(t *testing.T) {
	l, dir, _ := testLoader(t)
	a := write(t, dir, "a.toml", "description = \"a\"\ninclude = [\"b\"]\n")
	b := write(t, dir, "b.toml", "include = [\"c\"]\n")
	c := write(t, dir, "c.toml", "\n\ninclude = [\"default\", \"a\"]\n")
	_, _, err := l.Load("a")
	if err == nil {
		t.Fatal("a cycle a -> b -> c -> a loaded")
	}
	want := c + ":3: include cycle: " + a + " -> " + b + " -> " + c + " -> " + a
	if err.Error() != want {
		t.Fatalf("got  %q\nwant %q", err, want)
	}
}

func TestShowOutputPassesCheckAndMeansTheSame(t *testing.T) {
	l, dir, _ := testLoader(t)
	for _, name := range []string{"default", "build", "browser", "strict", "offline-shell"} {
		p, src, err := l.Load(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out, err := Show(p, src)
		if err != nil {
			t.Fatal(err)
		}
		f := write(t, dir, "shown-"+name+".toml", string(out))
		if ps := l.Check(f); len(ps) > 0 {
			t.Fatalf("%s: profile show output fails check:\n%v\n%s", name, ps, out)
		}
		again, _, err := l.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		s1, err1 := l.Spec(p)
		s2, err2 := l.Spec(again)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: %v %v", name, err1, err2)
		}
		if !reflect.DeepEqual(s1, s2) {
			t.Fatalf("%s: shown profile resolves differently:\n%+v\n%+v", name, s1, s2)
		}
	}
}

func TestIncludingProfileWinsOverIncluded(t *testing.T) {
	l, dir, _ := testLoader(t)
	write(t, dir, "base.toml", "[run]\nhostname = \"base\"\nnew_session = true\n[network]\nmode = \"host\"\n")
	write(t, dir, "top.toml", "include = [\"base\"]\n[run]\nhostname = \"top\"\n")
	s := loadSpec(t, l, "top")
	if s.Hostname != "top" || !s.NewSession || s.Net.Mode != spec.NetHost {
		t.Fatalf("hostname %q new_session %v net %q: want top, true (inherited), host (inherited)", s.Hostname, s.NewSession, s.Net.Mode)
	}
}

func TestListsMergeAndBangRemovesAnInheritedEntry(t *testing.T) {
	l, dir, _ := testLoader(t)
	write(t, dir, "base.toml", `
[filesystem]
ro_bind = ["/a", "/b", "/src:/c"]
tmpfs = ["/t"]
[capabilities]
add = ["CAP_NET_RAW", "CAP_CHOWN"]
[env]
unset = ["A", "B"]
`)
	write(t, dir, "top.toml", `include = ["base"]
[filesystem]
ro_bind = ["!/b", "/d"]
bind = ["/other:/c"]
tmpfs = ["!/t"]
[capabilities]
add = ["!CAP_CHOWN", "sys_ptrace"]
[env]
unset = ["!A", "C"]
`)
	p, _, err := l.Load("top")
	if err != nil {
		t.Fatal(err)
	}
	got := func(es []Entry) []string {
		var s []string
		for _, e := range es {
			s = append(s, string(e))
		}
		return s
	}
	if g := got(p.Filesystem.ROBind); !slices.Equal(g, []string{"/a", "/d"}) {
		t.Errorf("ro_bind %v, want [/a /d]: /b removed, /c replaced by the bind", g)
	}
	if g := got(p.Filesystem.Bind); !slices.Equal(g, []string{"/other:/c"}) {
		t.Errorf("bind %v, want [/other:/c]", g)
	}
	if len(p.Filesystem.Tmpfs) != 0 {
		t.Errorf("tmpfs %v, want none", p.Filesystem.Tmpfs)
	}
	if g := p.Capabilities.Add; !slices.Equal(g, []Cap{"CAP_NET_RAW", "CAP_SYS_PTRACE"}) {
		t.Errorf("caps %v", g)
	}
	if g := got(p.Env.Unset); !slices.Equal(g, []string{"B", "C"}) {
		t.Errorf("env.unset %v", g)
	}
}

func TestRemovingWhatNoIncludedProfileHasIsAnError(t *testing.T) {
	l, dir, _ := testLoader(t)
	p := write(t, dir, "top.toml", "include = [\"default\"]\n[filesystem]\n\nro_bind = [\"!/nothere\"]\n")
	_, _, err := l.Load(p)
	if err == nil || !strings.Contains(err.Error(), p+":4: filesystem.ro_bind: \"!/nothere\" removes nothing") {
		t.Fatalf("got %v", err)
	}
	p = write(t, dir, "top2.toml", "include = [\"default\"]\n[seccomp]\ndeny = [\"!reboott\"]\n")
	if _, _, err = l.Load(p); err == nil || !strings.Contains(err.Error(), "unknown syscall \"reboott\"") {
		t.Fatalf("got %v", err)
	}
	p = write(t, dir, "top3.toml", "include = [\"default\"]\n[seccomp]\ndeny = [\"!getpid\"]\n")
	if _, _, err = l.Load(p); err == nil || !strings.Contains(err.Error(), "removes nothing") {
		t.Fatalf("got %v", err)
	}
}

// denied returns the syscalls a spec fails unconditionally with errno.
func denied(s *spec.Spec, errno int) map[string]bool {
	out := map[string]bool{}
	for _, r := range s.Seccomp.Rules {
		if r.Action == spec.ActErrno && r.Errno == errno && len(r.Args) == 0 {
			for _, n := range r.Syscalls {
				out[n] = true
			}
		}
	}
	return out
}

func ruled(s *spec.Spec, name string) int {
	n := 0
	for _, r := range s.Seccomp.Rules {
		if slices.Contains(r.Syscalls, name) {
			n++
		}
	}
	return n
}

func TestRemovingOneMemberOfAnInheritedGroupKeepsTheOthers(t *testing.T) {
	l, dir, _ := testLoader(t)
	write(t, dir, "dbg.toml", "include = [\"default\"]\n[seccomp]\ndeny = [\"!ptrace\"]\n")
	s := loadSpec(t, l, "dbg")
	d := denied(s, 1)
	if d["ptrace"] || !d["process_vm_readv"] || !d["kcmp"] || !d["mount"] {
		t.Fatalf("ptrace denied %v, process_vm_readv %v, kcmp %v, mount %v: want only ptrace allowed", d["ptrace"], d["process_vm_readv"], d["kcmp"], d["mount"])
	}
}

func TestARuleForASyscallReplacesWhatIncludedProfilesSayOfIt(t *testing.T) {
	l, dir, _ := testLoader(t)
	write(t, dir, "ns.toml", `include = ["default"]
[[seccomp.rule]]
syscalls = ["unshare"]
action = "errno"
args = [{arg = 0, op = "masked-eq", mask = "CLONE_NEWUSER", value = "CLONE_NEWUSER"}]
`)
	s := loadSpec(t, l, "ns")
	if denied(s, 1)["unshare"] || ruled(s, "unshare") != 1 || !denied(s, 1)["setns"] {
		t.Fatalf("unshare must be ruled only by the including profile's rule, setns still denied: %+v", s.Seccomp.Rules)
	}
}

func TestBrowserProfileAllowsTheBrowsersNamespacesButNotSetnsOrMounts(t *testing.T) {
	l, _, _ := testLoader(t)
	s := loadSpec(t, l, "browser")
	d := denied(s, 1)
	if d["unshare"] || d["clone"] || d["chroot"] || !d["setns"] || !d["ptrace"] || !d["mount"] {
		t.Fatalf("browser seccomp: %+v", s.Seccomp.Rules)
	}
	// Each namespace flag a rule refuses, for clone and unshare.
	refused := func(call string, flag uint64) bool {
		for _, r := range s.Seccomp.Rules {
			if r.Action == spec.ActErrno && slices.Contains(r.Syscalls, call) && len(r.Args) == 1 &&
				r.Args[0].Op == "masked-eq" && r.Args[0].Mask&flag != 0 && r.Args[0].Value&flag != 0 {
				return true
			}
		}
		return false
	}
	for _, call := range []string{"clone", "unshare"} {
		for _, f := range []uint64{unix.CLONE_NEWUSER, unix.CLONE_NEWPID, unix.CLONE_NEWNET, unix.CLONE_NEWIPC} {
			if refused(call, f) {
				t.Errorf("browser refuses %s with %#x: the browsers' sandboxes need it", call, f)
			}
		}
		for _, f := range []uint64{unix.CLONE_NEWNS, unix.CLONE_NEWUTS, unix.CLONE_NEWCGROUP} {
			if !refused(call, f) {
				t.Errorf("browser allows %s with %#x, which no browser needs", call, f)
			}
		}
	}
	if !refused("unshare", unix.CLONE_NEWTIME) {
		t.Errorf("browser allows unshare(CLONE_NEWTIME)")
	}
}

// dockerRefused is what Docker's default seccomp profile refuses an
// unprivileged container, by name.
var dockerRefused = []string{"acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "delete_module",
	"finit_module", "init_module", "ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl",
	"lookup_dcookie", "mount", "move_mount", "open_tree", "fsopen", "fsmount", "fspick", "fsconfig",
	"mount_setattr", "name_to_handle_at", "open_by_handle_at", "perf_event_open", "pivot_root",
	"process_vm_readv", "process_vm_writev", "ptrace", "quotactl", "reboot", "request_key", "setns",
	"settimeofday", "swapon", "swapoff", "syslog", "umount", "umount2", "unshare", "uselib", "userfaultfd",
	"create_module", "get_kernel_syms", "query_module", "nfsservctl", "_sysctl", "sysfs", "ustat",
	"vm86", "vm86old", "stime", "mbind", "set_mempolicy", "move_pages", "chroot", "vhangup",
	"io_uring_setup", "io_uring_enter", "io_uring_register"}

func TestDefaultProfileDeniesWhatDockerRefusesWithEPERM(t *testing.T) {
	l, _, _ := testLoader(t)
	s := loadSpec(t, l, "default")
	d := denied(s, 1)
	for _, n := range dockerRefused {
		if !d[n] {
			t.Errorf("default does not deny %s with EPERM", n)
		}
	}
	for _, n := range []string{"clone", "personality", "ioctl", "clone3"} {
		if ruled(s, n) == 0 {
			t.Errorf("default has no rule for %s", n)
		}
	}
}

func TestEveryGroupMemberIsASyscallName(t *testing.T) {
	for g, members := range groups {
		for _, m := range members {
			if err := checkSyscall(m); err != nil {
				t.Errorf("%s: %v", g, err)
			}
		}
	}
}

func TestLookupOrderIsPathThenUserThenSystemThenBuiltin(t *testing.T) {
	l, user, system := testLoader(t)
	write(t, system, "strict.toml", "description = \"system strict\"\n")
	write(t, system, "mine.toml", "description = \"system mine\"\n")
	write(t, user, "mine.toml", "description = \"user mine\"\n")
	other := t.TempDir()
	path := write(t, other, "mine.toml", "description = \"path mine\"\n")
	for ref, want := range map[string]string{
		"mine": "user mine", path: "path mine", "strict": "system strict",
		"default": "No network, host system read-only, private home and /tmp",
	} {
		p, _, err := l.Load(ref)
		if err != nil {
			t.Fatal(err)
		}
		if *p.Description != want {
			t.Errorf("%s found %q, want %q", ref, *p.Description, want)
		}
	}
}

func TestAUserProfileCanIncludeTheBuiltinOfItsOwnName(t *testing.T) {
	l, user, _ := testLoader(t)
	write(t, user, "default.toml", "include = [\"default\"]\n[run]\nhostname = \"mine\"\n")
	p, src, err := l.Load("default")
	if err != nil {
		t.Fatal(err)
	}
	if src.Builtin() || *p.Run.Hostname != "mine" || len(p.Seccomp.Deny) == 0 {
		t.Fatalf("src %s hostname %s deny %v: want the user's default over the built-in", src.Path, *p.Run.Hostname, p.Seccomp.Deny)
	}
}

func TestFlagsAreALayerOverTheProfile(t *testing.T) {
	l, _, _ := testLoader(t)
	p, _, err := l.Load("build")
	if err != nil {
		t.Fatal(err)
	}
	uid := uint32(0)
	top, err := Flags{UID: &uid, Net: "host", Hostname: "h", ROBind: []string{"/work/proj"}, CapAdd: []string{"net_raw"}, SeccompLog: true}.Profile()
	if err != nil {
		t.Fatal(err)
	}
	p, problems := merge(p, top, l.Vars)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	s, err := l.Spec(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []spec.Mount{{Kind: spec.ROBind, Src: "/work/proj", Dst: "/work/proj"}}
	if s.UID != 0 || s.Net.Mode != spec.NetHost || s.Hostname != "h" || !reflect.DeepEqual(s.Mounts, want) ||
		!slices.Equal(s.CapAdd, []string{"CAP_NET_RAW"}) || !s.Seccomp.Log || s.Cwd != "/work/proj" {
		t.Fatalf("spec %+v", s)
	}
	if _, err := (Flags{CapAdd: []string{"CAP_NOPE"}}).Profile(); err == nil || !strings.Contains(err.Error(), "--cap-add") {
		t.Fatalf("bad --cap-add: %v", err)
	}
}

func TestMountsAreOrderedParentsFirst(t *testing.T) {
	l, dir, _ := testLoader(t)
	write(t, dir, "m.toml", "[filesystem]\ntmpfs = [\"/a/b/c\"]\nro_bind = [\"/x:/a\"]\nbind = [\"/y:/a/b\"]\n")
	s := loadSpec(t, l, "m")
	var dsts []string
	for _, m := range s.Mounts {
		dsts = append(dsts, m.Dst)
	}
	if !slices.Equal(dsts, []string{"/a", "/a/b", "/a/b/c"}) {
		t.Fatalf("mount order %v", dsts)
	}
}

func TestSettingsThisBuildCannotApplyAreRefused(t *testing.T) {
	l, dir, _ := testLoader(t)
	write(t, dir, "img.toml", "[filesystem]\nimage = \"alpine\"\n")
	write(t, dir, "egress.toml", "[network]\nallow = [\"example.org:443\"]\n")
	write(t, dir, "swap.toml", "[limits]\nmemory_swap = \"1g\"\n")
	for name, want := range map[string]string{"img": "filesystem.image: an image is picked with --image", "egress": `network.allow: needs network.mode = "slirp"`,
		"swap": "limits.memory_swap needs limits.memory"} {
		p, _, err := l.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Spec(p); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: got %v, want %q", name, err, want)
		}
	}
}

func TestNetworkSectionBecomesTheUserModeNetworkSpec(t *testing.T) {
	l, dir, _ := testLoader(t)
	write(t, dir, "net.toml", `[network]
mode = "slirp"
ports = ["8080:80", "127.0.0.1:5353:53/udp"]
allow = ["*.example.org:443", "udp:53"]
deny = ["10.0.0.0/8"]
ipv6 = true
dns = ["9.9.9.9"]
`)
	write(t, dir, "net2.toml", "include = [\"net\"]\n[network]\nallow = [\"!udp:53\"]\n")
	s := loadSpec(t, l, "net2")
	n := s.Net
	if n.Mode != spec.NetSlirp || len(n.Ports) != 2 || n.Ports[1].Proto != "udp" || n.Ports[0].HostPort != 8080 ||
		!slices.Equal(n.Allow, []string{"*.example.org:443"}) || !slices.Equal(n.Deny, []string{"10.0.0.0/8"}) ||
		!n.IPv6 || !slices.Equal(n.DNS, []string{"9.9.9.9"}) {
		t.Fatalf("net spec %+v", n)
	}
	wantProblem(t, "[network]\nmode = \"slirp\"\nports = [\"80\"]\n", 3, "network.ports")
	wantProblem(t, "[network]\nmode = \"slirp\"\n\ndeny = [\"tcp:\"]\n", 4, "network.deny")
}

func TestLimitsSectionBecomesTheSpecsLimits(t *testing.T) {
	l, dir, _ := testLoader(t)
	write(t, dir, "lim.toml", "[limits]\nmemory = \"512m\"\nmemory_swap = \"-1\"\ncpus = 1.5\npids = 64\nnofile = 256\ncore = \"0\"\nstrict = true\n")
	s := loadSpec(t, l, "lim")
	m := s.Limits
	if m.Memory != 512<<20 || m.MemorySwap != -1 || m.CPUs != 1.5 || m.Pids != 64 || m.NoFile == nil || *m.NoFile != 256 ||
		m.Core == nil || *m.Core != 0 || !m.Strict || m.NProc != nil {
		t.Fatalf("limits %+v", m)
	}
}

func TestOverlayOnTheHostRootIsTheOverlayRootKindAsWithTheFlag(t *testing.T) {
	l, dir, _ := testLoader(t)
	write(t, dir, "ov.toml", "include = [\"default\"]\n[filesystem]\noverlay = true\npersist = \"~/keep\"\n")
	s := loadSpec(t, l, "ov")
	if s.Root.Kind != spec.RootOverlay || s.Root.Persist != "/home/u/keep" {
		t.Fatalf("root %+v", s.Root)
	}
}

func TestAProfileWithoutIncludeStartsFromDefaultAndEmptyIncludeFromNothing(t *testing.T) {
	l, dir, _ := testLoader(t)
	write(t, dir, "implicit.toml", "[filesystem]\nbind = [\"/srv\"]\n")
	write(t, dir, "bare.toml", "include = []\n[filesystem]\nbind = [\"/srv\"]\n")
	for name, wantDenied := range map[string]bool{"implicit": true, "bare": false} {
		p, _, err := l.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		s, err := l.Spec(p)
		if err != nil {
			t.Fatal(err)
		}
		if denied(s, 1)["mount"] != wantDenied {
			t.Errorf("%s: mount denied %v, want %v", name, denied(s, 1)["mount"], wantDenied)
		}
	}
}

func TestPlusMakesABindsSourceDirectory(t *testing.T) {
	l, dir, _ := testLoader(t)
	src := filepath.Join(t.TempDir(), "state", "deep")
	write(t, dir, "plus.toml", "[filesystem]\nbind = [\"+"+src+":/state\"]\n")
	s := loadSpec(t, l, "plus")
	if st, err := os.Stat(src); err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
		t.Fatalf("source %s: %v %v", src, st, err)
	}
	if s.Mounts[0].Src != src || s.Mounts[0].Dst != "/state" {
		t.Fatalf("mount %+v", s.Mounts[0])
	}
	wantProblem(t, "[filesystem]\ntmpfs = [\"+/x\"]\n", 2, "+ (make the source directory) is for bind and ro_bind")
}

// loadSpec loads the profile ref and turns it into a spec, failing the
// test on any problem.
func loadSpec(t *testing.T, l *Loader, ref string) *spec.Spec {
	t.Helper()
	p, _, err := l.Load(ref)
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Spec(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
