package tests

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// probeSource makes one syscall per argument through the 64-bit entry
// point (syscall) and the i386 one (int 0x80), every argument -1 unless
// given, and prints the errno of each: "NAME ERRNO64 ERRNO32" (0 for
// success, - for an entry point the syscall does not have). "tty" as an
// argument instead tries TIOCSTI and TIOCLINUX on fd 0, both ways, and
// TIOCSTI with bits set above the 32 the kernel reads.
const probeSource = `
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <sys/mman.h>

static void *thread(void *arg) { return arg; }

static long sys64(long nr, long a0, long a1, long a2, long a3, long a4, long a5) {
	long ret;
	register long r10 __asm__("r10") = a3;
	register long r8 __asm__("r8") = a4;
	register long r9 __asm__("r9") = a5;
	__asm__ volatile ("syscall" : "=a"(ret) : "a"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
	return ret;
}

static long sys32(long nr, long a0, long a1, long a2, long a3, long a4) {
	long ret;
	__asm__ volatile ("int $0x80" : "=a"(ret) : "a"(nr), "b"(a0), "c"(a1), "d"(a2), "S"(a3), "D"(a4) : "memory");
	return ret;
}

static long err(long r) { return (r < 0 && r > -4096) ? -r : 0; }

int main(int argc, char **argv) {
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "thread") == 0) {
			pthread_t t;
			void *out = 0;
			int e = pthread_create(&t, 0, thread, (void *)42);
			if (e == 0) pthread_join(t, &out);
			printf("thread %d %ld\n", e, (long)out);
			continue;
		}
		if (strcmp(argv[i], "netlink") == 0) {
			/* i386 can also reach socket() through socketcall(), whose
			   arguments sit in memory below 4 GiB. */
			unsigned int *a = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
			a[0] = 16; a[1] = 3; a[2] = 0; /* AF_NETLINK, SOCK_RAW, 0 */
			printf("socket %ld %ld\n", err(sys64(41, 16, 3, 0, 0, 0, 0)), err(sys32(359, 16, 3, 0, 0, 0)));
			printf("socketcall - %ld\n", err(sys32(102, 1, (long)a, 0, 0, 0)));
			continue;
		}
		if (strcmp(argv[i], "tty") == 0) {
			char c = ' ';
			printf("isatty %d\n", isatty(0));
			printf("TIOCSTI %ld %ld\n", err(sys64(16, 0, 0x5412, (long)&c, 0, 0, 0)), err(sys32(54, 0, 0x5412, (long)&c, 0, 0)));
			printf("TIOCSTI-high %ld -\n", err(sys64(16, 0, 0x100005412L, (long)&c, 0, 0, 0)));
			char sub = 0;
			printf("TIOCLINUX %ld %ld\n", err(sys64(16, 0, 0x541C, (long)&sub, 0, 0, 0)), err(sys32(54, 0, 0x541C, (long)&sub, 0, 0)));
			continue;
		}
		/* NAME:NR64:NR32:ARG0, a number -1 when the entry point lacks it */
		char name[64];
		long nr64, nr32, a0;
		if (sscanf(argv[i], "%63[^:]:%ld:%ld:%li", name, &nr64, &nr32, &a0) != 4) {
			fprintf(stderr, "bad argument %s\n", argv[i]);
			return 2;
		}
		printf("%s", name);
		if (nr64 >= 0) printf(" %ld", err(sys64(nr64, a0, -1, -1, -1, -1, -1))); else printf(" -");
		if (nr32 >= 0) printf(" %ld", err(sys32(nr32, a0, -1, -1, -1, -1))); else printf(" -");
		printf("\n");
		fflush(stdout);
	}
	return 0;
}
`

// buildProbe compiles the probe, statically, into a directory the sandbox
// gets read-only at /probe.
func buildProbe(t *testing.T) string {
	t.Helper()
	if runtime.GOARCH != "amd64" {
		t.Skip("the probe is x86_64 assembly")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "probe.c")
	if err := os.WriteFile(src, []byte(probeSource), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("gcc", "-static", "-O1", "-pthread", "-o", filepath.Join(dir, "probe"), src).CombinedOutput()
	if err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// syscallNumbers reads the kernel headers' syscall numbers of one ABI.
func syscallNumbers(t *testing.T, abi string) map[string]int {
	t.Helper()
	f, err := os.Open("/usr/include/x86_64-linux-gnu/asm/unistd_" + abi + ".h")
	if err != nil {
		t.Fatalf("syscall numbers: %v (the linux-libc-dev package has them)", err)
	}
	defer f.Close()
	re := regexp.MustCompile(`^#define __NR_(\w+) (\d+)$`)
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			out[m[1]], _ = strconv.Atoi(m[2])
		}
	}
	return out
}

// refused is the default profile's promise: what Docker's default profile
// refuses an unprivileged container, and more, with EPERM. Each is called
// with -1 in every argument (personality with a persona it may not take),
// which an unfiltered kernel answers with EFAULT, EBADF, EINVAL and the
// like; the poisoned run below proves the filter is what answers.
var refused = []string{"acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "delete_module",
	"finit_module", "init_module", "ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl",
	"lookup_dcookie", "mount", "move_mount", "open_tree", "fsopen", "fsmount", "fspick", "fsconfig",
	"mount_setattr", "name_to_handle_at", "open_by_handle_at", "perf_event_open", "pivot_root",
	"process_vm_readv", "process_vm_writev", "ptrace", "quotactl", "reboot", "request_key", "setns",
	"settimeofday", "swapon", "swapoff", "syslog", "umount", "umount2", "unshare", "uselib",
	"userfaultfd", "create_module", "get_kernel_syms", "query_module", "nfsservctl", "sysfs", "ustat",
	"vm86", "vm86old", "stime", "mbind", "set_mempolicy", "move_pages", "migrate_pages", "chroot",
	"vhangup", "io_uring_setup", "io_uring_enter", "io_uring_register", "modify_ldt", "adjtimex",
	"pidfd_getfd", "fanotify_init", "quotactl_fd", "clone", "personality:0x0400000"}

// probeArgs turns names into the probe's NAME:NR64:NR32:ARG0 arguments.
func probeArgs(t *testing.T, names []string) []string {
	n64, n32 := syscallNumbers(t, "64"), syscallNumbers(t, "32")
	var args []string
	for _, n := range names {
		name, arg, _ := strings.Cut(n, ":")
		if arg == "" {
			arg = "-1"
		}
		a, b := -1, -1
		if v, ok := n64[name]; ok {
			a = v
		}
		if v, ok := n32[name]; ok {
			b = v
		}
		if a < 0 && b < 0 {
			t.Fatalf("%s: no such syscall on x86_64 or i386", name)
		}
		args = append(args, fmt.Sprintf("%s:%d:%d:%s", name, a, b, arg))
	}
	return args
}

// errnos runs the probe in a sandbox and returns name -> [errno64, errno32].
func errnos(t *testing.T, probe string, flags []string, probeArgs []string) map[string][2]string {
	t.Helper()
	args := append([]string{"run", "--ro-bind", probe + ":/probe"}, flags...)
	args = append(append(args, "--", "/probe/probe"), probeArgs...)
	r := sbx(t, args...)
	if r.code != 0 {
		t.Fatalf("probe: %s", r)
	}
	out := map[string][2]string{}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 {
			out[f[0]] = [2]string{f[1], f[2]}
		}
	}
	return out
}

func errnoName(s string) string {
	n, err := strconv.Atoi(s)
	if err != nil || n == 0 {
		return s
	}
	return unix.ErrnoName(unix.Errno(n))
}

// poisonProfile is the default profile with the deny errno changed to one
// no kernel path returns for these calls: seeing it proves the filter, not
// the kernel's own checks, refused the call.
func poisonProfile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "poison.toml")
	if err := os.WriteFile(p, []byte("include = [\"default\"]\n[seccomp]\nerrno = \"EHWPOISON\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultProfileRefusesDockerRefusedSyscallsWithEPERMOnBothEntryPoints(t *testing.T) {
	unprivileged(t)
	probe := buildProbe(t)
	args := probeArgs(t, refused)
	for _, c := range []struct {
		flags []string
		want  string
	}{{nil, "EPERM"}, {[]string{"--profile", poisonProfile(t)}, "EHWPOISON"}} {
		got := errnos(t, probe, c.flags, args)
		for _, n := range refused {
			name, _, _ := strings.Cut(n, ":")
			e, ok := got[name]
			if !ok {
				t.Errorf("%v: %s: no result", c.flags, name)
				continue
			}
			for i, abi := range []string{"64-bit syscall", "32-bit int 0x80"} {
				if e[i] != "-" && errnoName(e[i]) != c.want {
					t.Errorf("%v: %s through the %s: %s, want %s", c.flags, name, abi, errnoName(e[i]), c.want)
				}
			}
		}
	}
}

func TestClone3FailsAsNotImplementedSoLibcFallsBackToFilteredClone(t *testing.T) {
	unprivileged(t)
	probe := buildProbe(t)
	got := errnos(t, probe, nil, probeArgs(t, []string{"clone3"}))
	if e := got["clone3"]; errnoName(e[0]) != "ENOSYS" || errnoName(e[1]) != "ENOSYS" {
		t.Fatalf("clone3: %v, want ENOSYS both ways", e)
	}
	// And threads, which glibc makes with clone3 first, still start.
	r := sbx(t, "run", "--ro-bind", probe+":/probe", "--", "/probe/probe", "thread")
	if r.code != 0 || r.stdout != "thread 0 42\n" {
		t.Fatalf("pthread_create under the filter: %s", r)
	}
}

func TestUsualPersonasAndTheQueryStayAllowed(t *testing.T) {
	unprivileged(t)
	probe := buildProbe(t)
	got := errnos(t, probe, nil, probeArgs(t, []string{"personality:0xffffffff"}))
	if e := got["personality"]; e[0] != "0" || e[1] != "0" {
		t.Fatalf("personality(0xffffffff): %v, want success both ways", e)
	}
	if out := mustSh(t, nil, "setarch linux32 uname -m"); strings.TrimSpace(out) != "i686" {
		t.Fatalf("setarch linux32: %q", out)
	}
}

// ptyPair opens a new pseudo-terminal and returns its master and slave.
func ptyPair(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

func TestTIOCSTICannotTypeIntoTheTerminal(t *testing.T) {
	unprivileged(t)
	probe := buildProbe(t)
	for _, c := range []struct {
		flags []string
		want  string
	}{{nil, "EPERM"}, {[]string{"--profile", poisonProfile(t)}, "EHWPOISON"}} {
		_, slave := ptyPair(t)
		cmd := sbxCommand(t, t.Context(), append(append([]string{"run", "--ro-bind", probe + ":/probe"}, c.flags...), "--", "/probe/probe", "tty")...)
		cmd.Stdin = slave
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("probe: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "isatty 1") {
			t.Fatalf("stdin is not a terminal inside: %s", out)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n")[1:] {
			f := strings.Fields(line)
			for i, e := range f[1:] {
				if e != "-" && errnoName(e) != c.want {
					t.Errorf("%v: %s through entry point %d: %s, want %s", c.flags, f[0], i, errnoName(e), c.want)
				}
			}
		}
	}
}

func TestSeccompLogLetsDeniedSyscallsThrough(t *testing.T) {
	wantFail(t, nil, "unshare -U true")
	mustSh(t, []string{"--seccomp-log"}, "unshare -U true")
}

func TestStrictProfileRefusesNetlinkSocketsOnEveryEntryPoint(t *testing.T) {
	r := wantFail(t, []string{"--profile", "strict"}, "ip link show")
	if !strings.Contains(r.stderr, "not supported") && !strings.Contains(r.stderr, "Address family") {
		t.Fatalf("ip link under strict: %s", r)
	}
	mustSh(t, nil, "ip link show lo >/dev/null")
	probe := buildProbe(t)
	for _, c := range []struct {
		flags []string
		want  string
	}{{[]string{"--profile", "strict"}, "EAFNOSUPPORT"}, {nil, "0"}} {
		got := errnos(t, probe, c.flags, []string{"netlink"})
		for _, call := range []string{"socket", "socketcall"} {
			for i, e := range got[call] {
				if e != "-" && errnoName(e) != c.want {
					t.Errorf("%v: %s through entry point %d: %s, want %s", c.flags, call, i, errnoName(e), c.want)
				}
			}
		}
	}
}

func TestSeccompFlagsAllowAndDenyOnTopOfTheProfile(t *testing.T) {
	mustSh(t, []string{"--seccomp-allow", "unshare"}, "unshare -U true")
	wantFail(t, []string{"--seccomp-deny", "uname"}, "uname")
	mustSh(t, nil, "uname >/dev/null")
	if r := run(t, []string{"--seccomp-allow", "getpid"}, "true"); r.code != 125 || !strings.Contains(r.stderr, "--seccomp-allow \"getpid\" removes nothing") {
		t.Fatalf("allowing what no profile denies: %s", r)
	}
	if out := mustSh(t, []string{"--no-seccomp"}, "grep Seccomp: /proc/self/status"); !strings.Contains(out, "0") {
		t.Fatalf("--no-seccomp: %q", out)
	}
}

func TestSeccompRuleActionsAndArgumentConditions(t *testing.T) {
	dir := t.TempDir()
	profile := func(name, rule string) string {
		p := filepath.Join(dir, name+".toml")
		if err := os.WriteFile(p, []byte("include = [\"default\"]\n[[seccomp.rule]]\n"+rule+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		name, rule string
		code       int
		stderr     string
	}{
		{"kill", `syscalls = ["uname"]` + "\naction = \"kill-process\"", 128 + 31, ""},
		{"trap", `syscalls = ["uname"]` + "\naction = \"trap\"", 128 + 31, ""},
		{"errno", `syscalls = ["uname"]` + "\naction = \"errno\"\nerrno = \"EACCES\"", 1, "Permission denied"},
		{"log", `syscalls = ["uname"]` + "\naction = \"log\"", 0, ""},
		// Only AF_INET6 sockets: an AF_INET one is made and its connection
		// refused, the AF_INET6 one is never made.
		{"cond", `syscalls = ["socket"]` + "\naction = \"errno\"\nerrno = \"EACCES\"\nargs = [{arg = 0, op = \"==\", value = \"AF_INET6\"}]", 1, "socket: Permission denied"},
	} {
		r := sbx(t, "run", "--profile", profile(c.name, c.rule), "--", "uname")
		if c.name == "cond" {
			r = sbx(t, "run", "--profile", profile(c.name, c.rule), "--", "bash", "-c", "echo >/dev/tcp/127.0.0.1/1; echo >/dev/tcp/::1/1")
			if strings.Count(r.stderr, "Connection refused") != 2 { // bash says it twice for the AF_INET one
				t.Errorf("cond: the AF_INET socket was refused too: %s", r)
			}
		}
		if r.code != c.code || !strings.Contains(r.stderr, c.stderr) {
			t.Errorf("%s: %s; want exit %d and %q on stderr", c.name, r, c.code, c.stderr)
		}
	}
}
