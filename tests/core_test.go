package tests

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Point 1: the user namespace and its id mapping.

func TestCallerIDsAreTheSameInsideByDefault(t *testing.T) {
	out := mustSh(t, nil, "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups")
	f := strings.Fields(out)
	uid, gid := strconv.Itoa(os.Getuid()), strconv.Itoa(os.Getgid())
	want := []string{uid, gid, uid, uid, "1", gid, gid, "1", "deny"}
	if strings.Join(f, " ") != strings.Join(want, " ") {
		t.Fatalf("ids and maps inside = %q, want %q", f, want)
	}
}

func TestUIDAndGIDFlagsPickTheIDsSeenInside(t *testing.T) {
	out := mustSh(t, []string{"--uid", "0", "--gid", "0"}, "id -u; id -g; touch /tmp/f; stat -c %u:%g /tmp/f")
	if f := strings.Fields(out); strings.Join(f, " ") != "0 0 0:0" {
		t.Fatalf("with --uid 0 --gid 0: %q, want 0 0 0:0", f)
	}
}

func TestMapUsersAutoMapsTheSubordinateRange(t *testing.T) {
	out := mustSh(t, []string{"--map-users", "auto"}, "id -u; cat /proc/self/uid_map")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if lines[0] != strconv.Itoa(os.Getuid()) {
		t.Fatalf("uid inside %s, want %d", lines[0], os.Getuid())
	}
	total := 0
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		n, _ := strconv.Atoi(f[2])
		total += n
	}
	if len(lines) < 3 || total < 65536 {
		t.Fatalf("uid_map maps %d ids in %d lines, want the caller's id and a subordinate range:\n%s", total, len(lines)-1, out)
	}
	// An id of the range is usable: a file can be given to it.
	mustSh(t, []string{"--map-users", "auto", "--uid", "0", "--cap-add", "CAP_CHOWN"}, "touch /tmp/f && chown 1234:1234 /tmp/f && test $(stat -c %u /tmp/f) = 1234")
}

// Point 2: new namespaces.

func TestSandboxHasItsOwnNamespaces(t *testing.T) {
	kinds := []string{"user", "mnt", "pid", "uts", "ipc", "cgroup", "net"}
	script := ""
	for _, k := range kinds {
		script += "readlink /proc/self/ns/" + k + "; "
	}
	inside := strings.Fields(mustSh(t, nil, script))
	for i, k := range kinds {
		host, err := os.Readlink("/proc/self/ns/" + k)
		if err != nil {
			t.Fatal(err)
		}
		if inside[i] == host {
			t.Errorf("%s namespace is the host's (%s)", k, host)
		}
	}
}

func TestNetHostSharesOnlyTheNetworkNamespace(t *testing.T) {
	inside := strings.Fields(mustSh(t, []string{"--net", "host"}, "readlink /proc/self/ns/net /proc/self/ns/mnt"))
	net, _ := os.Readlink("/proc/self/ns/net")
	mnt, _ := os.Readlink("/proc/self/ns/mnt")
	if inside[0] != net || inside[1] == mnt {
		t.Fatalf("--net host: net %s (host %s), mnt %s (host %s)", inside[0], net, inside[1], mnt)
	}
}

func TestNetNoneHasOnlyLoopbackAndItIsUp(t *testing.T) {
	out := mustSh(t, nil, "tail -n +3 /proc/net/dev | cut -d: -f1; cat /proc/net/if_inet6 2>/dev/null | wc -l")
	if f := strings.Fields(out); len(f) != 2 || f[0] != "lo" {
		t.Fatalf("interfaces inside: %q, want only lo", f)
	}
	// lo is up: a server inside answers on 127.0.0.1.
	mustSh(t, nil, `busybox nc -l -p 7777 -e echo pong & sleep 0.3; test "$(echo | busybox nc 127.0.0.1 7777)" = pong`)
}

func TestHostLoopbackIsUnreachableWithNetNone(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("host\n"))
			c.Close()
		}
	}()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	// The same connection made with --net host reaches the server, so the
	// refusal below is the network namespace's doing.
	if out := mustSh(t, []string{"--net", "host"}, "echo | busybox nc 127.0.0.1 "+port); !strings.Contains(out, "host") {
		t.Fatalf("--net host did not reach the host server: %q", out)
	}
	wantFail(t, nil, "echo | busybox nc -w 2 127.0.0.1 "+port+" | grep host")
}

// Point 3: the new root.

func TestHostSystemIsReadOnlyInside(t *testing.T) {
	for _, p := range []string{"/usr/sbx-probe", "/etc/sbx-probe", "/sbx-probe", "/usr/bin/sbx-probe"} {
		wantFail(t, []string{"--uid", "0"}, "touch "+p)
	}
}

func TestMergedUsrSymlinksStaySymlinks(t *testing.T) {
	for _, d := range []string{"/bin", "/lib", "/sbin"} {
		host, err := os.Readlink(d)
		if err != nil {
			continue // not merged on this host
		}
		if got := strings.TrimSpace(mustSh(t, nil, "readlink "+d)); got != host {
			t.Errorf("%s inside -> %q, host -> %q", d, got, host)
		}
	}
}

func TestHomeIsAnEmptyPrivateTmpfs(t *testing.T) {
	home, _ := os.UserHomeDir()
	probe := home + "/.sbx-probe-" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(probe, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(probe)
	out := mustSh(t, nil, "ls -A "+home+" | wc -l; stat -f -c %T "+home+"; echo x > "+home+"/new && cat "+home+"/new")
	if f := strings.Fields(out); len(f) != 3 || f[0] != "0" || f[1] != "tmpfs" || f[2] != "x" {
		t.Fatalf("home inside: %q, want empty writable tmpfs", f)
	}
	if _, err := os.Stat(home + "/new"); err == nil {
		t.Fatal("a file written in the sandbox's home appeared in the host's")
	}
}

func TestTmpIsPrivate(t *testing.T) {
	f, err := os.CreateTemp("", "sbx-host-")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	defer os.Remove(f.Name())
	wantFail(t, nil, "test -e "+f.Name())
	mustSh(t, nil, "echo hi > /tmp/sbx-inside-probe")
	if _, err := os.Stat("/tmp/sbx-inside-probe"); err == nil {
		t.Fatal("a file written to /tmp inside appeared on the host")
	}
}

func TestDevIsMinimal(t *testing.T) {
	out := mustSh(t, nil, "ls /dev | tr '\\n' ' '; echo; echo hi > /dev/null; head -c 4 /dev/zero | wc -c; readlink /dev/ptmx /dev/fd; test -d /dev/shm && test -w /dev/shm && echo shm")
	for _, want := range []string{"null", "zero", "full", "random", "urandom", "tty", "pts", "ptmx", "shm", "stdin", "stdout", "stderr", "fd", "\n4\n", "pts/ptmx", "/proc/self/fd", "shm"} {
		if !strings.Contains(out, want) {
			t.Errorf("/dev inside lacks %q:\n%s", want, out)
		}
	}
	for _, bad := range []string{"sda", "vda", "mem", "kmsg", "fuse", "net"} {
		if strings.Contains(" "+strings.SplitN(out, "\n", 2)[0]+" ", " "+bad+" ") {
			t.Errorf("/dev inside has the host's %s", bad)
		}
	}
	// A fresh devpts: a pty can be opened inside.
	mustSh(t, nil, "exec 3<>/dev/ptmx && ls /dev/pts | grep -q 0")
}

func TestProcIsTheSandboxesOwnAndSysIsAbsent(t *testing.T) {
	out := mustSh(t, nil, "ls /proc | grep -c '^[0-9]*$'; test -e /sys/kernel && echo sys-present || echo no-sys")
	f := strings.Fields(out)
	if n, _ := strconv.Atoi(f[0]); n > 4 || f[1] != "no-sys" {
		t.Fatalf("inside: %d processes in /proc, %s", n, f[1])
	}
	wantFail(t, []string{"--uid", "0"}, "echo 1 > /proc/sys/kernel/sysrq")
	wantFail(t, []string{"--uid", "0"}, "echo h > /proc/sysrq-trigger")
}

func TestSysRoIsReadOnly(t *testing.T) {
	out := mustSh(t, []string{"--sys", "ro"}, "ls /sys/class/net; grep ' /sys ' /proc/mounts")
	if !strings.Contains(out, "lo") || !strings.Contains(out, " ro,") {
		t.Fatalf("--sys ro: %s", out)
	}
	wantFail(t, []string{"--sys", "ro", "--uid", "0"}, "echo 1 > /sys/kernel/uevent_helper || echo x > /sys/class/net/lo/mtu")
}

func TestBindsReadWriteAndReadOnly(t *testing.T) {
	rw, ro := t.TempDir(), t.TempDir()
	os.WriteFile(ro+"/f", []byte("data"), 0o644)
	mustSh(t, []string{"--bind", rw + ":/work", "--ro-bind", ro + ":/data"}, "echo out > /work/w && cat /data/f")
	if b, _ := os.ReadFile(rw + "/w"); string(b) != "out\n" {
		t.Fatalf("write through --bind: %q", b)
	}
	wantFail(t, []string{"--ro-bind", ro + ":/data"}, "echo x > /data/f")
	wantFail(t, []string{"--ro-bind", ro + ":/data"}, "rm /data/f")
	if b, _ := os.ReadFile(ro + "/f"); string(b) != "data" {
		t.Fatalf("--ro-bind source changed: %q", b)
	}
}

func TestReadOnlyBindCannotBeRemountedWritable(t *testing.T) {
	ro := t.TempDir()
	os.WriteFile(ro+"/f", []byte("data"), 0o644)
	flags := []string{"--ro-bind", ro + ":/data", "--uid", "0"}
	wantFail(t, flags, "mount -o remount,rw,bind /data; echo x > /data/f")
	wantFail(t, flags, "mount -o remount,rw /data; echo x > /data/f")
	wantFail(t, flags, "mount --bind /tmp /data; echo x > /data/f; test -s "+ro+"/f && false")
	if b, _ := os.ReadFile(ro + "/f"); string(b) != "data" {
		t.Fatalf("--ro-bind source changed: %q", b)
	}
}

func TestReadOnlyBindIsReadOnlyAllTheWayDown(t *testing.T) {
	// A read-only bind of a tree that holds a writable bind stays
	// read-only in the submount: --bind first, then --ro-bind of its parent
	// inside, is the other way round; here the submount comes from the host
	// view being recursive: /proc of the sandbox is a submount of nothing,
	// so use the sandbox's own /tmp bound read-only elsewhere.
	dir := t.TempDir()
	os.MkdirAll(dir+"/sub", 0o755)
	flags := []string{"--bind", dir + ":/a", "--ro-bind", "/a:/b"}
	_ = flags
	// Host-side: every submount of /usr (there may be none) is read-only too.
	out := mustSh(t, nil, "awk '$2 ~ \"^/(usr|etc|opt)\" {print $4}' /proc/mounts")
	for _, opts := range strings.Fields(out) {
		if !strings.HasPrefix(opts, "ro,") {
			t.Errorf("a mount under the host system dirs is %s", opts)
		}
	}
}

func TestEveryMountIsNosuidAndNodev(t *testing.T) {
	out := mustSh(t, []string{"--bind", t.TempDir() + ":/w"}, "cat /proc/mounts")
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		opts := "," + f[3] + ","
		if !strings.Contains(opts, ",nosuid,") {
			t.Errorf("mount without nosuid: %s", l)
		}
		isDevNode := strings.HasPrefix(f[1], "/dev/") && f[0] == "devtmpfs"
		if !strings.Contains(opts, ",nodev,") && !isDevNode && f[1] != "/dev" && f[1] != "/dev/pts" {
			t.Errorf("mount without nodev: %s", l)
		}
	}
}

func TestTmpfsFlagMountsAnEmptyWritableDir(t *testing.T) {
	out := mustSh(t, []string{"--tmpfs", "/scratch"}, "echo x > /scratch/f && cat /scratch/f && stat -f -c %T /scratch")
	if strings.Fields(out)[1] != "tmpfs" {
		t.Fatalf("--tmpfs: %q", out)
	}
}

func TestDevBindKeepsDevicesUsable(t *testing.T) {
	mustSh(t, []string{"--dev-bind", "/dev/fuse:/dev/fuse"}, "test -c /dev/fuse && exec 3<>/dev/fuse")
}

func TestMissingBindSourceIsAnError(t *testing.T) {
	r := sbx(t, "run", "--bind", "/no/such/dir", "--", "true")
	if r.code != 125 || !strings.Contains(r.stderr, "/no/such/dir") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("missing bind source: %s", r)
	}
}

func TestOldRootIsGone(t *testing.T) {
	// Nothing of the host beyond the listed directories: no /home of other
	// users, no /root, no /var, no /run, and mountinfo has no trace of the
	// host's root device mounted at /.
	out := mustSh(t, nil, "ls -A /; awk '$5 == \"/\"' /proc/self/mountinfo")
	for _, gone := range []string{"root", "var", "run", "srv", "mnt", "media", "boot"} {
		for _, l := range strings.Fields(out) {
			if l == gone {
				t.Errorf("/%s of the host is visible inside", gone)
			}
		}
	}
	if !strings.Contains(out, " - tmpfs ") {
		t.Errorf("/ inside is not the sandbox's tmpfs:\n%s", out)
	}
}

// Point 4: sbx is PID 1.

func TestSandboxSeesOnlyItsOwnProcesses(t *testing.T) {
	out := mustSh(t, nil, "ps -e -o pid=,comm=")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(strings.TrimSpace(lines[0]), "1 ") {
		t.Fatalf("processes inside:\n%s\nwant init (1), sh and ps", out)
	}
	if strings.Contains(out, "systemd") || strings.Contains(out, "sshd") {
		t.Fatalf("a host process is visible:\n%s", out)
	}
}

func TestExitStatusIsPassedOn(t *testing.T) {
	for script, want := range map[string]int{"exit 0": 0, "exit 7": 7, "exit 125": 125, "kill -9 $$": 137, "kill -TERM $$": 143} {
		if r := run(t, nil, script); r.code != want {
			t.Errorf("sh -c %q: exit %d, want %d (%s)", script, r.code, want, r.stderr)
		}
	}
}

func TestCommandNotFoundIs127AndNotExecutableIs126(t *testing.T) {
	if r := sbx(t, "run", "--", "no-such-command"); r.code != 127 || !strings.Contains(r.stderr, "no-such-command") {
		t.Errorf("missing command: %s", r)
	}
	if r := sbx(t, "run", "--", "/etc/hostname"); r.code != 126 {
		t.Errorf("non-executable command: %s", r)
	}
}

func TestSignalsAreForwardedToTheCommand(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGQUIT} {
		t.Run(sig.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			name := strings.ToUpper(strings.TrimPrefix(unixSigName(sig), "SIG"))
			cmd := sbxCommand(t, ctx, "run", "--", "/bin/sh", "-c", "trap 'echo got "+name+"; exit 3' "+name+"; echo ready; while :; do sleep 0.05; done")
			stdout, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			n, _ := stdout.Read(buf)
			if !strings.Contains(string(buf[:n]), "ready") {
				t.Fatalf("no ready: %q", buf[:n])
			}
			cmd.Process.Signal(sig)
			rest := make([]byte, 64)
			m, _ := stdout.Read(rest)
			err := cmd.Wait()
			if !strings.Contains(string(rest[:m]), "got "+name) || cmd.ProcessState.ExitCode() != 3 {
				t.Fatalf("after %v: output %q, %v", sig, rest[:m], err)
			}
		})
	}
}

func unixSigName(s syscall.Signal) string {
	return map[syscall.Signal]string{syscall.SIGTERM: "TERM", syscall.SIGINT: "INT", syscall.SIGHUP: "HUP",
		syscall.SIGUSR1: "USR1", syscall.SIGUSR2: "USR2", syscall.SIGQUIT: "QUIT"}[s]
}

func TestOrphansAreReaped(t *testing.T) {
	// Each backgrounded subshell's child is orphaned to init when the
	// subshell exits; none may stay a zombie.
	out := mustSh(t, nil, "for i in 1 2 3 4 5; do (sleep 0.1 &); done; sleep 1; ps -e -o stat=,comm=")
	if strings.Contains(out, "Z") {
		t.Fatalf("zombies inside:\n%s", out)
	}
}

func TestProcessesLeftWhenTheCommandExitsAreKilled(t *testing.T) {
	marker := "1003." + strconv.Itoa(os.Getpid())
	mustSh(t, nil, "sleep "+marker+" & exit 0")
	if !waitFor(2*time.Second, func() bool { return len(pgrep("sleep "+marker)) == 0 }) {
		t.Fatal("a background process of the command outlived the sandbox")
	}
}

// Point 5: hostname.

func TestHostnameIsSbxUnlessGiven(t *testing.T) {
	if got := strings.TrimSpace(mustSh(t, nil, "hostname")); got != "sbx" {
		t.Errorf("hostname %q, want sbx", got)
	}
	if got := strings.TrimSpace(mustSh(t, []string{"--hostname", "box1"}, "hostname")); got != "box1" {
		t.Errorf("hostname %q, want box1", got)
	}
}

// Point 6: capabilities and no_new_privs.

func capLine(out, field string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, field+":") {
			return strings.TrimSpace(strings.TrimPrefix(l, field+":"))
		}
	}
	return ""
}

func TestAllCapabilitiesAreDropped(t *testing.T) {
	for _, flags := range [][]string{nil, {"--uid", "0"}} {
		out := mustSh(t, flags, "cat /proc/self/status")
		for _, f := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
			if v := capLine(out, f); v != "0000000000000000" {
				t.Errorf("%v: %s = %s, want none", flags, f, v)
			}
		}
		if capLine(out, "NoNewPrivs") != "1" {
			t.Errorf("%v: NoNewPrivs not set", flags)
		}
	}
}

func TestCapAddKeepsOnlyThatCapability(t *testing.T) {
	out := mustSh(t, []string{"--cap-add", "CAP_NET_RAW"}, "cat /proc/self/status")
	want := fmt.Sprintf("%016x", 1<<13)
	for _, f := range []string{"CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		if v := capLine(out, f); v != want {
			t.Errorf("%s = %s, want %s (CAP_NET_RAW alone)", f, v, want)
		}
	}
	if r := sbx(t, "run", "--cap-add", "CAP_NO_SUCH", "--", "true"); r.code != 125 || !strings.Contains(r.stderr, "CAP_NO_SUCH") {
		t.Errorf("unknown capability: %s", r)
	}
}

func TestSetuidBinaryGainsNothing(t *testing.T) {
	const suid = "/usr/local/libexec/sbx-test/setuid-id"
	out, err := exec.Command(suid, "-u").Output()
	if err != nil || strings.TrimSpace(string(out)) != "0" {
		t.Fatalf("%s outside gives euid %q (%v): the set-up script installs it setuid root", suid, out, err)
	}
	if got := strings.TrimSpace(mustSh(t, []string{"--ro-bind", "/usr/local/libexec/sbx-test"}, suid+" -u")); got != strconv.Itoa(os.Getuid()) {
		t.Fatalf("setuid binary inside runs with euid %s, want the caller's %d", got, os.Getuid())
	}
}

// Point 7: the sandbox dies with its parent.

func TestKillingSbxKillsEverythingInside(t *testing.T) {
	marker := "1002." + strconv.Itoa(os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := sbxCommand(t, ctx, "run", "--", "/bin/sh", "-c", "sleep "+marker+" & sleep "+marker+"1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { return len(pgrep("sleep "+marker)) == 1 && len(pgrep("sleep "+marker+"1")) == 1 }) {
		t.Fatal("the sandboxed sleeps did not start")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if !waitFor(time.Second, func() bool { return len(pgrep("sleep "+marker))+len(pgrep("sleep "+marker+"1")) == 0 }) {
		t.Fatal("sandboxed processes survived SIGKILL of sbx")
	}
}

// Point 8: no descriptor leaks.

func TestOnlyStdioReachesTheCommand(t *testing.T) {
	f, err := os.Open("/etc/hostname")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := sbxCommand(t, ctx, "run", "--", "/bin/ls", "/proc/self/fd")
	cmd.ExtraFiles = []*os.File{f, f, f} // inherited by sbx without close-on-exec, as a careless caller would
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(out)); strings.Join(got, " ") != "0 1 2 3" {
		t.Fatalf("fds inside: %v, want 0 1 2 and ls's own directory fd 3", got)
	}
}

func TestPassFDReachesTheCommandUnderItsNumber(t *testing.T) {
	r, w, _ := os.Pipe()
	w.Write([]byte("through fd\n"))
	w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := sbxCommand(t, ctx, "run", "--pass-fd", "5", "--", "/bin/sh", "-c", "cat <&5; ls /proc/self/fd | tr '\\n' ' '")
	cmd.ExtraFiles = []*os.File{nil, nil, r} // fd 5
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.HasPrefix(string(out), "through fd\n") || !strings.Contains(string(out), " 5 ") {
		t.Fatalf("--pass-fd 5: %q", out)
	}
}

// Point 9: environment and working directory.

func TestEnvironmentIsCleanByDefault(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "/tmp/agent.sock")
	t.Setenv("SBX_SECRET", "s3cret")
	t.Setenv("LC_TIME", "C")
	out := mustSh(t, nil, "env")
	if strings.Contains(out, "SSH_AUTH_SOCK") || strings.Contains(out, "s3cret") {
		t.Errorf("host variables leaked:\n%s", out)
	}
	for _, k := range []string{"PATH=", "HOME=", "LC_TIME=C"} {
		if !strings.Contains(out, k) {
			t.Errorf("%s missing from the clean environment:\n%s", k, out)
		}
	}
	out = mustSh(t, []string{"--keep-env", "--setenv", "A=1", "--unsetenv", "SBX_SECRET"}, "env")
	if !strings.Contains(out, "SSH_AUTH_SOCK=") || !strings.Contains(out, "A=1") || strings.Contains(out, "s3cret") {
		t.Errorf("--keep-env --setenv A=1 --unsetenv SBX_SECRET:\n%s", out)
	}
}

func TestWorkingDirectory(t *testing.T) {
	dir := t.TempDir()
	if got := strings.TrimSpace(mustSh(t, []string{"--chdir", "/tmp"}, "pwd")); got != "/tmp" {
		t.Errorf("--chdir /tmp: %s", got)
	}
	cmd := func(flags ...string) string {
		c := exec.Command(sbxPath(t), append(append([]string{"run"}, flags...), "--", "pwd")...)
		c.Dir = dir
		out, err := c.Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	if got := cmd("--bind", dir); got != dir {
		t.Errorf("caller's directory bound: pwd %s, want %s", got, dir)
	}
	if got := cmd(); got != "/" {
		t.Errorf("caller's directory not visible: pwd %s, want /", got)
	}
	if r := sbx(t, "run", "--chdir", "/nope", "--", "true"); r.code != 125 || !strings.Contains(r.stderr, "/nope") {
		t.Errorf("--chdir to a missing dir: %s", r)
	}
}

// Point 10: pipes and terminals.

func TestPipesWorkWithoutATerminal(t *testing.T) {
	r := sbxIn(t, "hello sandbox\n", "run", "--", "tr", "a-z", "A-Z")
	if r.code != 0 || r.stdout != "HELLO SANDBOX\n" {
		t.Fatalf("pipe through sbx: %s", r)
	}
}

// Errors.

func TestBadFlagExits125WithOneLine(t *testing.T) {
	r := sbx(t, "run", "--no-such-flag", "--", "true")
	if r.code != 125 {
		t.Fatalf("bad flag: %s", r)
	}
	if r := sbx(t, "run"); r.code != 125 || strings.Contains(r.stderr, "goroutine") {
		t.Fatalf("no command: %s", r)
	}
}

func TestDisabledUserNamespacesAreNamed(t *testing.T) {
	// user.max_user_namespaces is per user namespace: lowered to 0 inside
	// one, sbx run there must name it.
	unprivileged(t)
	out, _ := exec.Command("unshare", "--user", "--map-root-user", "/bin/sh", "-c",
		"echo 0 > /proc/sys/user/max_user_namespaces && "+sbxPath(t)+" run -- true; echo exit=$?").CombinedOutput()
	if !strings.Contains(string(out), "user.max_user_namespaces=0") || !strings.Contains(string(out), "exit=125") {
		t.Fatalf("with user.max_user_namespaces=0:\n%s", out)
	}
}
