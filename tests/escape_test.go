package tests

// The escape battery: what the most trusted sandboxes promise (bubblewrap's
// and firejail's advisories, runc's CVEs, gVisor's threat model), tried as
// attacks from inside the default profile's sandbox. Each test is named for
// the attack it proves impossible. The attacks are one C program,
// testdata/attack.c, built static and bound read-only at /attack; each
// attempt prints "blocked NAME ERRNO" or "ESCAPED NAME DETAIL". Where the
// host lets the same attack work outside sbx, the test runs it there too,
// so a refusal inside is sbx's doing and not a broken attack.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var (
	attackOnce sync.Once
	attackDir  string
	attackErr  error
)

// attackBinary builds testdata/attack.c once per test binary into a
// directory every user can read; the sandbox gets it at /attack.
func attackBinary(t *testing.T) string {
	t.Helper()
	unprivileged(t)
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skip("the attack program is built for x86_64 and arm64")
	}
	attackOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sbx-attack-")
		if err != nil {
			attackErr = err
			return
		}
		out, err := exec.Command("gcc", "-static", "-O1", "-o", filepath.Join(dir, "attack"), "testdata/attack.c").CombinedOutput()
		if err != nil {
			attackErr = &buildError{err, string(out)}
			return
		}
		attackErr = os.Chmod(dir, 0o755)
		attackDir = dir
	})
	if attackErr != nil {
		t.Fatalf("build the attack program: %v", attackErr)
	}
	return attackDir
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// attempts is what one run of the attack program reported.
type attempts struct {
	out     string
	blocked map[string]string // name -> errno
	escaped []string
}

func parseAttempts(out string) attempts {
	a := attempts{out: out, blocked: map[string]string{}}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 2 && f[0] == "blocked":
			a.blocked[f[1]] = strings.Join(f[2:], " ")
		case len(f) >= 2 && f[0] == "ESCAPED":
			a.escaped = append(a.escaped, l)
		}
	}
	return a
}

// attackIn runs `attack MODE ARGS...` in a sandbox with flags (the default
// profile unless they say otherwise) and fails the test on any ESCAPED
// line, or when one of the attempts named in want did not run.
func attackIn(t *testing.T, flags []string, want []string, mode string, args ...string) attempts {
	t.Helper()
	dir := attackBinary(t)
	argv := append([]string{"run", "--ro-bind", dir + ":/attack"}, flags...)
	argv = append(append(argv, "--", "/attack/attack", mode), args...)
	r := sbx(t, argv...)
	a := parseAttempts(r.stdout)
	if r.code != 0 || !strings.Contains(r.stdout, "\ndone ") && !strings.HasPrefix(r.stdout, "done ") {
		t.Fatalf("attack %s %v did not run to its end: %s", mode, flags, r)
	}
	for _, e := range a.escaped {
		t.Errorf("attack %s %v WORKED: %s", mode, flags, e)
	}
	for _, w := range want {
		if _, ok := a.blocked[w]; !ok && !t.Failed() {
			t.Errorf("attack %s %v: attempt %s did not run:\n%s", mode, flags, w, r.stdout)
		}
	}
	return a
}

// attackOnHost runs the same attack outside sbx, as the test user.
func attackOnHost(t *testing.T, mode string, args ...string) attempts {
	t.Helper()
	out, err := exec.Command(filepath.Join(attackBinary(t), "attack"), append([]string{mode}, args...)...).Output()
	if err != nil {
		t.Fatalf("attack %s on the host: %v\n%s", mode, err, out)
	}
	return parseAttempts(string(out))
}

// wantEscapedOnHost is the control: the attack named works outside sbx.
func wantEscapedOnHost(t *testing.T, a attempts, names ...string) {
	t.Helper()
	for _, n := range names {
		found := false
		for _, e := range a.escaped {
			found = found || strings.HasPrefix(e, "ESCAPED "+n+" ")
		}
		if !found {
			t.Fatalf("control: %s does not work on the host either, so refusing it inside proves nothing:\n%s", n, a.out)
		}
	}
}

// bare is the default profile without seccomp and Landlock: the
// namespaces, mounts and dropped capabilities alone. Filesystem attacks
// run against it too, so that each layer holds by itself.
func bare(t *testing.T) []string {
	p := filepath.Join(t.TempDir(), "bare.toml")
	os.WriteFile(p, []byte("include = [\"default\"]\n[seccomp]\nenabled = false\n[landlock]\nenabled = false\n"), 0o644)
	os.Chmod(filepath.Dir(p), 0o755)
	return []string{"--profile", p}
}

// layers are the profiles every filesystem attack is tried against.
func layers(t *testing.T) map[string][]string {
	return map[string][]string{"default": nil, "mounts alone": bare(t)}
}

// hostTarget starts `attack target` on the host: a process with a secret
// in its memory that any process of the user may trace. It returns its
// pid and the secret's address.
func hostTarget(t *testing.T) (int, string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(attackBinary(t), "attack"), "target")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	buf := make([]byte, 64)
	n, _ := stdout.Read(buf)
	f := strings.Fields(string(buf[:n]))
	if len(f) != 2 {
		t.Fatalf("target: %q", buf[:n])
	}
	return cmd.Process.Pid, f[1]
}

// readOnlyFile makes a directory holding a file f with known content, the
// source of a --ro-bind; check reports any change to it.
func readOnlyFile(t *testing.T) (dir string, check func()) {
	dir = t.TempDir()
	os.Chmod(dir, 0o755)
	f := filepath.Join(dir, "f")
	os.WriteFile(f, []byte("data\n"), 0o644)
	return dir, func() {
		t.Helper()
		b, err := os.ReadFile(f)
		st, serr := os.Stat(f)
		if err != nil || string(b) != "data\n" || serr != nil || st.Mode().Perm() != 0o644 {
			t.Fatalf("the read-only bind's source changed: %q %v, mode %v", b, err, st.Mode())
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Fatalf("the read-only bind's source gained entries: %v", ents)
		}
	}
}

// writeAttack tries one group of write attacks on a --ro-bind against
// every layer.
func writeAttack(t *testing.T, group string, want ...string) {
	for name, flags := range layers(t) {
		ro, check := readOnlyFile(t)
		rw := t.TempDir()
		f := append([]string{"--ro-bind", ro + ":/data", "--bind", rw + ":/w"}, flags...)
		t.Logf("%s: %s", name, strings.Join(f, " "))
		attackIn(t, f, want, "write", "/data/f", "/w", group)
		check()
	}
}

// ---- processes -----------------------------------------------------------

func TestEscapeCannotSeeOrSignalHostProcesses(t *testing.T) {
	marker := "sbx-escape-" + strconv.Itoa(os.Getpid())
	sleeper := exec.Command("/bin/sh", "-c", "exec -a "+marker+" sleep 60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()
	pid := strconv.Itoa(sleeper.Process.Pid)
	// Control: on the host the same attempts find and signal it (kill 0).
	host := attackOnHost(t, "pidns", pid, "no-such-marker")
	wantEscapedOnHost(t, host, "proc-entry", "kill-0")
	attackIn(t, nil, []string{"proc-entry", "kill-0", "kill-KILL", "pidfd_open", "scan-proc"}, "pidns", pid, marker, "killall")
	// kill(-1, SIGKILL) inside reached nothing outside either.
	if err := sleeper.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the host process did not survive the sandbox: %v", err)
	}
}

func TestEscapeCannotPtraceHostProcess(t *testing.T) {
	pid, _ := hostTarget(t)
	for name, flags := range layers(t) {
		t.Log(name)
		attackIn(t, flags, []string{"ptrace-attach-host", "ptrace-seize-host", "ptrace-attach-init", "ptrace-seize-init"}, "ptrace", strconv.Itoa(pid))
	}
	st, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if !strings.Contains(string(st), "TracerPid:\t0\n") {
		t.Fatalf("the host process is being traced:\n%s", st)
	}
}

func TestEscapeCannotReadHostProcessMemory(t *testing.T) {
	pid, addr := hostTarget(t)
	host := attackOnHost(t, "memory", strconv.Itoa(pid), addr)
	wantEscapedOnHost(t, host, "process_vm_readv-host", "proc-mem-host")
	for name, flags := range layers(t) {
		t.Log(name)
		attackIn(t, flags, []string{"process_vm_readv-host", "proc-mem-host", "process_vm_readv-init", "proc-mem-init"}, "memory", strconv.Itoa(pid), addr)
	}
}

// ---- read-only binds -------------------------------------------------------

func TestEscapeCannotWriteReadOnlyBindDirectly(t *testing.T) {
	writeAttack(t, "direct", "open-append", "open-rdwr", "truncate", "chmod", "utimensat", "rename", "unlink")
}

func TestEscapeCannotRemountReadOnlyBindWritable(t *testing.T) {
	writeAttack(t, "mounts", "remount-rw", "remount-rw-fs", "mount_setattr-rw", "umount", "after-mounts")
}

func TestEscapeCannotMountOrBindOverReadOnlyBind(t *testing.T) {
	writeAttack(t, "mounts", "bind-over", "mount-tmpfs", "open_tree-clone", "fsopen")
}

func TestEscapeCannotWriteReadOnlyBindThroughPlantedLinks(t *testing.T) {
	writeAttack(t, "links", "hardlink", "write-symlink")
}

func TestEscapeCannotWriteReadOnlyBindThroughProcSelfRoot(t *testing.T) {
	writeAttack(t, "proc", "proc-self-root", "proc-init-root", "reopen-fd", "reopen-opath")
}

func TestEscapeCannotWriteReadOnlyBindFromANestedUserNamespace(t *testing.T) {
	// Under the default profile unshare is refused; without seccomp it
	// works, and the mounts the new namespace inherits must stay locked.
	ro, check := readOnlyFile(t)
	a := attackIn(t, append([]string{"--ro-bind", ro + ":/data", "--bind", t.TempDir() + ":/w"}, bare(t)...),
		[]string{"nested-remount-rw", "nested-mount_setattr-rw", "nested-write"}, "write", "/data/f", "/w", "nested")
	if !strings.Contains(a.out, "step unshare-user-mnt ok") {
		t.Fatalf("without seccomp, a new user namespace should be possible (the attack needs it):\n%s", a.out)
	}
	attackIn(t, []string{"--ro-bind", ro + ":/data", "--bind", t.TempDir() + ":/w"}, nil, "write", "/data/f", "/w", "nested")
	check()
}

func TestEscapeCannotRedirectAMountThroughASymlinkPlantedInAWritableBind(t *testing.T) {
	// Run 1 plants /w/sub -> a host directory outside everything the
	// sandbox was given; run 2 mounts a tmpfs at /w/sub/x. sbx resolves
	// mount destinations inside the sandbox's root, so nothing is created
	// on the host.
	rw, outside := t.TempDir(), t.TempDir()
	mustSh(t, []string{"--bind", rw + ":/w"}, "ln -s "+outside+" /w/sub && ln -s ../../../../../.."+outside+" /w/rel")
	for _, dst := range []string{"/w/sub/x", "/w/rel/x"} {
		r := run(t, []string{"--bind", rw + ":/w", "--tmpfs", dst}, "true")
		t.Logf("%s: %s", dst, r)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("a mount destination followed a planted symlink out of the sandbox: %s now holds %v", outside, ents)
	}
}

// ---- the sbx binary --------------------------------------------------------

// ownedSbx is a copy of sbx that the test user owns and may write, so that
// only the sandbox stands between an attacker and the binary (runc's
// CVE-2019-5736 overwrote a root-owned binary the container could reach).
func ownedSbx(t *testing.T) (path string, sum func() [32]byte) {
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	path = filepath.Join(dir, "sbx")
	src, err := os.Open(sbxPath(t))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	sum = func() [32]byte {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(b)
	}
	return path, sum
}

func TestEscapeCannotOverwriteSbxThroughProcExe(t *testing.T) {
	bin, sum := ownedSbx(t)
	before := sum()
	t.Setenv("SBX_BIN", bin)
	for name, flags := range layers(t) {
		t.Log(name)
		// /proc/1/exe is the host's sbx: init is PID 1.
		attackIn(t, flags, []string{"write-exe-1", "opath-exe-1", "write-self-exe"}, "exe")
		// And through the rlimit step, a second sbx process inside.
		attackIn(t, append([]string{"--nofile", "512"}, flags...), []string{"write-exe-1", "opath-exe-1"}, "exe")
	}
	if sum() != before {
		t.Fatal("the sbx binary on the host was changed from inside the sandbox")
	}
}

// ---- the host's filesystem -------------------------------------------------

func TestEscapeCannotReachHostThroughInheritedFD(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "secret"), []byte("host"), 0o600)
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	root, _ := os.Open("/")
	defer root.Close()
	argv := []string{"run", "--ro-bind", attackBinary(t) + ":/attack", "--", "/attack/attack", "fds", "secret"}
	cmd := sbxCommand(t, t.Context(), argv...)
	// Open without close-on-exec in sbx, as a careless caller leaves them.
	cmd.ExtraFiles = []*os.File{d, root, d, root}
	out, err := cmd.Output()
	a := parseAttempts(string(out))
	if err != nil || len(a.escaped) > 0 || a.blocked["inherited-fd"] == "" {
		t.Fatalf("inherited descriptors (%v):\n%s", err, out)
	}
}

func TestEscapeCannotReachHostThroughOldRootOrInitsCwd(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("host"), 0o644)
	os.Chmod(dir, 0o755)
	for name, flags := range layers(t) {
		t.Log(name)
		attackIn(t, flags, []string{"direct", "dotdot", "/proc/1/cwd", "/proc/1/root", "/proc/self/root", "oldroot", "chroot", "pivot_root"}, "root", secret)
	}
}

func TestEscapeCannotOpenHostFilesByHandle(t *testing.T) {
	// The "shocker" attack on Docker (2014): a handle to the root inode of
	// the filesystem /etc lives on, opened through the bound /etc.
	for name, flags := range layers(t) {
		t.Log(name)
		attackIn(t, flags, []string{"open_by_handle_at"}, "handle", "/etc")
	}
}

func TestEscapeCannotEnterNamespacesThroughTheirFiles(t *testing.T) {
	// Init's are the only other namespace files in sight (PID 1 is sbx,
	// non-dumpable); the host's are not visible at all.
	for name, flags := range layers(t) {
		t.Log(name)
		attackIn(t, flags, []string{"setns-1-mnt", "setns-1-user", "setns-1-pid", "setns-1-net"}, "nsfiles")
	}
}

// ---- privileges ------------------------------------------------------------

func TestEscapeCannotGainRootThroughSetuidBinary(t *testing.T) {
	const suid = "/usr/local/libexec/sbx-test/setuid-id"
	if out, err := exec.Command(suid, "-u").Output(); err != nil || strings.TrimSpace(string(out)) != "0" {
		t.Fatalf("control: %s gives euid %q on the host (%v); the set-up script installs it setuid root", suid, out, err)
	}
	for name, flags := range layers(t) {
		got := strings.TrimSpace(mustSh(t, append([]string{"--ro-bind", filepath.Dir(suid)}, flags...), suid+" -u; "+suid+" -g"))
		if got != strconv.Itoa(os.Getuid())+"\n"+strconv.Itoa(os.Getgid()) {
			t.Fatalf("%s: the setuid binary ran with euid/egid %q", name, got)
		}
	}
}

func TestEscapeCannotGainCapabilitiesThroughFileCapabilities(t *testing.T) {
	const fcap = "/usr/local/libexec/sbx-test/fcap-cat"
	out, err := exec.Command(fcap, "/proc/self/status").Output()
	if err != nil || capLine(string(out), "CapEff") == "0000000000000000" {
		t.Fatalf("control: %s has no effective capabilities on the host (%v); the set-up script gives it some with setcap", fcap, err)
	}
	for name, flags := range layers(t) {
		for _, extra := range [][]string{nil, {"--uid", "0"}, {"--map-users", "auto", "--uid", "0"}} {
			f := append(append([]string{"--ro-bind", filepath.Dir(fcap)}, extra...), flags...)
			got := mustSh(t, f, fcap+" /proc/self/status")
			for _, c := range []string{"CapInh", "CapPrm", "CapEff", "CapAmb"} {
				if v := capLine(got, c); v != "0000000000000000" {
					t.Errorf("%s %v: a file-capability binary runs with %s %s", name, extra, c, v)
				}
			}
		}
	}
}

func TestEscapeCannotGainPrivilegesThroughANewUserNamespace(t *testing.T) {
	// Outside, the test user may make one: the kernel allows it here.
	if out, err := exec.Command("unshare", "--user", "--map-root-user", "true").CombinedOutput(); err != nil {
		t.Fatalf("control: unshare --user on the host: %v %s", err, out)
	}
	a := attackIn(t, nil, []string{"unshare-user", "clone-newuser"}, "privs")
	if a.blocked["unshare-user"] != "EPERM" {
		t.Fatalf("unshare(CLONE_NEWUSER): %s, want EPERM from the filter", a.blocked["unshare-user"])
	}
	wantFail(t, nil, "unshare --user --map-root-user true")
}

func TestEscapeCannotUseTheKernelKeyring(t *testing.T) {
	// The session keyring is inherited across exec: the host's keys would
	// be in reach. Outside, the same calls work.
	wantEscapedOnHost(t, attackOnHost(t, "privs"), "keyctl-session", "add_key")
	attackIn(t, nil, []string{"keyctl-session", "keyctl-user", "add_key", "request_key", "keyctl-join"}, "privs")
}

// ---- the terminal ----------------------------------------------------------

func TestEscapeCannotPushKeystrokesIntoTheTerminal(t *testing.T) {
	dir := attackBinary(t)
	// pending is what waits in the terminal's input queue, typed by
	// someone: the next thing the user's shell would read and run.
	pending := func(slave *os.File) string {
		fd := int(slave.Fd())
		n, err := unix.IoctlGetInt(fd, unix.TIOCINQ)
		if err != nil || n <= 0 {
			return ""
		}
		buf := make([]byte, n)
		m, _ := unix.Read(fd, buf)
		return string(buf[:max(m, 0)])
	}
	tryOn := func(argv0 string, args ...string) (string, string) {
		master, slave := ptyPair(t)
		_ = master
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, argv0, args...)
		cmd.Stdin = slave
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		// The terminal is the controlling terminal, as in a user's shell.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\n%s", argv0, err, out.String())
		}
		return out.String(), pending(slave)
	}
	// Control: the host lets a process type into its own terminal.
	if out, typed := tryOn(filepath.Join(dir, "attack"), "tty"); !strings.Contains(typed, "echo PWNED") {
		t.Fatalf("control: TIOCSTI on the host did not type (is dev.tty.legacy_tiocsti 0?): %q\n%s", typed, out)
	}
	unprivileged(t)
	out, typed := tryOn(sbxPath(t), "run", "--ro-bind", dir+":/attack", "--", "/attack/attack", "tty")
	a := parseAttempts(out)
	if typed != "" || len(a.escaped) > 0 || a.blocked["TIOCSTI"] == "" || a.blocked["TIOCLINUX"] == "" {
		t.Fatalf("keystrokes %q reached the terminal:\n%s", typed, out)
	}
	// The same through sbx enter from a terminal.
	name := uniqueName("tty")
	startSandbox(t, name, []string{"--ro-bind", dir + ":/attack"}, "sleep 60")
	waitListed(t, name)
	out, typed = tryOn(sbxPath(t), "enter", name, "--", "/attack/attack", "tty")
	if a := parseAttempts(out); typed != "" || len(a.escaped) > 0 || !strings.Contains(out, "done 0") {
		t.Fatalf("sbx enter: keystrokes %q reached the terminal:\n%s", typed, out)
	}
}

// ---- the network -----------------------------------------------------------

func TestEscapeCannotConnectToHostAbstractSocketsOrLoopback(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	port := tcp.Addr().(*net.TCPAddr).Port
	if l6, err := net.Listen("tcp6", "[::1]:"+strconv.Itoa(port)); err == nil {
		defer l6.Close()
	}
	name := "sbx-escape-" + strconv.Itoa(os.Getpid())
	abs, err := net.Listen("unix", "@"+name)
	if err != nil {
		t.Fatal(err)
	}
	defer abs.Close()
	p := strconv.Itoa(port)
	// Control: sharing the host's network, the same attack connects.
	dir := attackBinary(t)
	r := sbx(t, "run", "--net", "host", "--ro-bind", dir+":/attack", "--", "/attack/attack", "net", p, name)
	wantEscapedOnHost(t, parseAttempts(r.stdout), "tcp-127.0.0.1", "abstract-unix")
	for _, flags := range [][]string{nil, {"--net", "slirp"}} {
		attackIn(t, flags, []string{"tcp-127.0.0.1", "tcp-::1", "abstract-unix"}, "net", p, name)
	}
}

// ---- the kernel ------------------------------------------------------------

func TestEscapeCannotLoadKernelModules(t *testing.T) {
	attackIn(t, nil, []string{"init_module", "finit_module", "delete_module", "kexec_load"}, "kernel", "modules")
}

func TestEscapeCannotRebootSwapOrDoRawIO(t *testing.T) {
	attackIn(t, []string{"--uid", "0"}, []string{"reboot", "swapon", "acct", "iopl", "ioperm"}, "kernel", "reboot")
}

func TestEscapeCannotChangeTheClock(t *testing.T) {
	attackIn(t, []string{"--uid", "0"}, []string{"clock_settime", "settimeofday", "adjtimex"}, "kernel", "clock")
}

func TestEscapeCannotUseBPF(t *testing.T) {
	attackIn(t, nil, []string{"bpf-map-create"}, "kernel", "bpf")
}

func TestEscapeCannotUsePerfEventOpen(t *testing.T) {
	// The host allows a process to profile itself (perf_event_paranoid 2).
	host := attackOnHost(t, "kernel", "perf")
	if len(host.escaped) == 0 {
		t.Logf("perf_event_open is refused on the host too: %s", host.out)
	}
	attackIn(t, nil, []string{"perf_event_open"}, "kernel", "perf")
}

func TestEscapeCannotUseUserfaultfd(t *testing.T) {
	host := attackOnHost(t, "kernel", "userfaultfd")
	if len(host.escaped) == 0 {
		t.Logf("userfaultfd is refused on the host too: %s", host.out)
	}
	attackIn(t, nil, []string{"userfaultfd"}, "kernel", "userfaultfd")
}

// knobs are the host-wide kernel settings a sandbox must not write.
var knobs = []string{
	"/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe", "/proc/sys/vm/drop_caches",
	"/proc/sys/kernel/hostname", "/proc/sys/net/ipv4/ip_forward", "/proc/sysrq-trigger",
	"/proc/sys/fs/binfmt_misc/register", "/sys/kernel/uevent_helper", "/sys/kernel/mm/transparent_hugepage/enabled",
	"/sys/class/net/lo/mtu", "/sys/power/state", "/sys/fs/cgroup/cgroup.procs",
}

func TestEscapeCannotWriteProcSysSysOrSysrqTrigger(t *testing.T) {
	before, _ := os.ReadFile("/proc/sys/kernel/core_pattern")
	for name, flags := range layers(t) {
		for _, extra := range [][]string{{"--sys", "ro"}, {"--sys", "ro", "--uid", "0"}, {"--sys", "ro", "--net", "host", "--uid", "0"}} {
			t.Logf("%s %v", name, extra)
			attackIn(t, append(extra, flags...), []string{"/proc/sys/kernel/core_pattern", "/proc/sysrq-trigger", "/sys/kernel/uevent_helper"}, "knobs", knobs...)
		}
	}
	if after, _ := os.ReadFile("/proc/sys/kernel/core_pattern"); !bytes.Equal(before, after) {
		t.Fatalf("core_pattern changed: %q -> %q", before, after)
	}
}

// ---- cgroups and limits ----------------------------------------------------

// cgroupParents are the directories sbx makes its sandboxes' cgroups in on
// this host, learnt from a running sandbox's entry in sbx ps.
func cgroupParents(t *testing.T) []string {
	t.Helper()
	name := uniqueName("cgparent")
	cmd, _ := startSandbox(t, name, []string{"--memory", "64M", "--pids", "64"}, "sleep 60")
	e := waitListed(t, name)
	mustRun(t, "kill", name)
	cmd.Wait()
	if len(e.Cgroup) == 0 {
		t.Fatalf("a sandbox with --memory has no cgroup on this host: %+v", e)
	}
	var ps []string
	for _, d := range e.Cgroup {
		ps = append(ps, filepath.Dir(d))
	}
	return ps
}

func TestEscapeCannotLeaveItsCgroupOrRaiseItsLimits(t *testing.T) {
	// The test user owns the parent cgroups (that is what delegation
	// means), so only the sandbox keeps the command from moving itself
	// there or raising its own cgroup's limits. The proof is in the end:
	// after every attempt, 200 MB still cannot be had under --memory 64M.
	var targets []string
	for _, p := range cgroupParents(t) {
		targets = append(targets, p+"/cgroup.procs", p+"/tasks", filepath.Dir(p)+"/cgroup.procs",
			p+"/sbx-*/memory.limit_in_bytes", p+"/sbx-*/memory.max", p+"/sbx-*/memory.memsw.limit_in_bytes",
			p+"/sbx-*/pids.max", p+"/sbx-*/cgroup.procs")
	}
	dir := attackBinary(t)
	script := "/attack/attack cgroup " + strings.Join(targets, " ") + "; exec /attack/attack alloc 200"
	if out := mustSh(t, []string{"--ro-bind", dir + ":/attack"}, "/attack/attack alloc 200"); !strings.Contains(out, "allocated 200") {
		t.Fatalf("control: 200 MB without a limit: %q", out)
	}
	for name, flags := range layers(t) {
		for _, extra := range [][]string{{"--sys", "ro", "--net", "host"}, {"--sys", "ro"}, nil} {
			f := append(append([]string{"--ro-bind", dir + ":/attack", "--memory", "64M", "--pids", "64"}, extra...), flags...)
			r := run(t, f, script)
			a := parseAttempts(r.stdout)
			for _, e := range a.escaped {
				t.Errorf("%s %v: %s", name, extra, e)
			}
			for _, w := range []string{"raise-nofile", "oom_score_adj", "mount-cgroup2", "mount-cgroup-memory", targets[0]} {
				if _, ok := a.blocked[w]; !ok {
					t.Errorf("%s %v: attempt %s did not run: %s", name, extra, w, r)
				}
			}
			if strings.Contains(r.stdout, "allocated 200") || r.code != 137 {
				t.Fatalf("%s %v: the memory limit no longer holds after the attacks: %s", name, extra, r)
			}
		}
	}
}

func TestEscapeCannotOverwriteSbxThroughAnEnteredProcess(t *testing.T) {
	// runc's CVE-2019-5736 in full: the sandbox plants a program whose
	// interpreter is /proc/self/exe; when sbx enter starts it, the kernel
	// runs sbx's own binary inside the sandbox, and a watcher grabs it
	// through /proc/PID/exe to write it once it is no longer running.
	// Under the default profile Landlock refuses to execute the host's
	// binary at all; without it, the watcher does grab it, and the write
	// still fails: the sandbox's own supervisor and init run that very
	// file for as long as the sandbox lives (ETXTBSY), and nothing of the
	// sandbox outlives them.
	bin, sum := ownedSbx(t)
	before := sum()
	t.Setenv("SBX_BIN", bin)
	var st unix.Stat_t
	if err := unix.Stat(bin, &st); err != nil {
		t.Fatal(err)
	}
	rw := t.TempDir()
	os.Chmod(rw, 0o755)
	os.WriteFile(filepath.Join(rw, "evil"), []byte("#!/proc/self/exe\n"), 0o755)
	dir := attackBinary(t)
	for lname, flags := range layers(t) {
		name := uniqueName("exe")
		f := append([]string{"--bind", rw + ":/w", "--ro-bind", dir + ":/attack"}, flags...)
		cmd, out := startSandbox(t, name, f, "/attack/attack exewatch "+strconv.FormatUint(st.Dev, 10)+" "+strconv.FormatUint(st.Ino, 10)+" 2")
		waitListed(t, name)
		time.Sleep(200 * time.Millisecond)
		for i := 0; i < 5; i++ {
			r := sbx(t, "enter", name, "--", "/w/evil")
			t.Logf("enter: %d %s", r.code, strings.TrimSpace(r.stderr))
		}
		cmd.Wait()
		a := parseAttempts(out.String())
		if len(a.escaped) > 0 || a.blocked["reopen-grabbed-exe"] == "" {
			t.Fatalf("%s: %s", lname, out)
		}
		t.Logf("%s: %s", lname, strings.TrimSpace(out.String()))
	}
	if sum() != before {
		t.Fatal("the sbx binary on the host was changed from inside the sandbox")
	}
}

func TestEscapeCannotBreakOutThroughAnEnteredProcess(t *testing.T) {
	// sbx enter starts a process beside the command: it must be held
	// exactly as the command is, whatever it tries.
	dir := attackBinary(t)
	pid, addr := hostTarget(t)
	name := uniqueName("enter")
	startSandbox(t, name, []string{"--ro-bind", dir + ":/attack", "--memory", "64M"}, "sleep 60")
	waitListed(t, name)
	for _, c := range []struct {
		want []string
		args []string
	}{
		{[]string{"ptrace-attach-host", "ptrace-attach-init"}, []string{"ptrace", strconv.Itoa(pid)}},
		{[]string{"process_vm_readv-host", "proc-mem-init"}, []string{"memory", strconv.Itoa(pid), addr}},
		{[]string{"unshare-user", "keyctl-session"}, []string{"privs"}},
		{[]string{"setns-1-mnt", "setns-1-user"}, []string{"nsfiles"}},
		{[]string{"write-exe-1", "opath-exe-1"}, []string{"exe"}},
		{[]string{"init_module", "kexec_load"}, []string{"kernel", "modules"}},
		{[]string{"raise-nofile", "mount-cgroup2", "unshare-cgroup"}, []string{"cgroup"}},
	} {
		r := sbx(t, append([]string{"enter", name, "--", "/attack/attack"}, c.args...)...)
		a := parseAttempts(r.stdout)
		if r.code != 0 || len(a.escaped) > 0 {
			t.Errorf("entered %v: %s", c.args, r)
		}
		for _, w := range c.want {
			if _, ok := a.blocked[w]; !ok {
				t.Errorf("entered %v: attempt %s did not run: %s", c.args, w, r)
			}
		}
	}
	// And the memory limit holds for it.
	if r := sbx(t, "enter", name, "--", "/attack/attack", "alloc", "200"); r.code == 0 || strings.Contains(r.stdout, "allocated 200") {
		t.Fatalf("an entered process got 200 MB under --memory 64M: %s", r)
	}
}
