package tests

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// psEntry is one row of sbx ps --json.
type psEntry struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Pid      int      `json:"pid"`
	Command  []string `json:"command"`
	Memory   int64    `json:"memory_bytes"`
	Cgroup   []string `json:"cgroup"`
	StateDir string   `json:"state_dir"`
}

func uniqueName(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// startSandbox starts `sbx run --name name flags -- sh -c script` in the
// background; the test's end kills it.
func startSandbox(t *testing.T, name string, flags []string, script string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	args := append([]string{"run", "--name", name}, flags...)
	cmd := sbxCommand(t, ctx, append(args, "--", "/bin/sh", "-c", script)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		cancel()
	})
	return cmd, &out
}

func ps(t *testing.T) []psEntry {
	t.Helper()
	var es []psEntry
	if err := json.Unmarshal([]byte(mustRun(t, "ps", "--json")), &es); err != nil {
		t.Fatal(err)
	}
	return es
}

func listed(t *testing.T, name string) *psEntry {
	for _, e := range ps(t) {
		if e.Name == name {
			return &e
		}
	}
	return nil
}

// waitListed waits until sbx ps lists the sandbox named name.
func waitListed(t *testing.T, name string) *psEntry {
	t.Helper()
	var e *psEntry
	if !waitFor(10*time.Second, func() bool { e = listed(t, name); return e != nil }) {
		t.Fatalf("sbx ps does not list %s", name)
	}
	return e
}

func TestPsListsARunningSandboxAndNotAFinishedOne(t *testing.T) {
	done := uniqueName("done")
	mustRun(t, "run", "--name", done, "--", "true")
	name := uniqueName("ps")
	cmd, _ := startSandbox(t, name, []string{"--memory", "64M"}, "sleep 60")
	e := waitListed(t, name)
	if strings.Join(e.Command, " ") != "/bin/sh -c sleep 60" || e.Pid <= 0 || e.Memory <= 0 {
		t.Fatalf("sbx ps shows %+v", e)
	}
	if listed(t, done) != nil {
		t.Fatalf("sbx ps lists %s, which has ended", done)
	}
	table := mustRun(t, "ps")
	if !strings.Contains(table, name) || !strings.Contains(table, "MEMORY") {
		t.Fatalf("sbx ps table:\n%s", table)
	}
	mustRun(t, "kill", e.ID[:6])
	cmd.Wait()
	if listed(t, name) != nil {
		t.Fatalf("sbx ps lists %s after it was killed", name)
	}
	if _, err := os.Stat(e.StateDir); !os.IsNotExist(err) {
		t.Fatalf("state directory %s left behind: %v", e.StateDir, err)
	}
}

func TestStaleEntryOfAKilledSupervisorIsCleaned(t *testing.T) {
	name := uniqueName("stale")
	cmd, _ := startSandbox(t, name, []string{"--memory", "64M"}, "sleep 60")
	e := waitListed(t, name)
	// SIGKILL leaves sbx no chance to clean up after itself.
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if listed(t, name) != nil {
		t.Fatalf("sbx ps lists %s after its supervisor was killed", name)
	}
	if _, err := os.Stat(e.StateDir); !os.IsNotExist(err) {
		t.Fatalf("state directory %s left behind: %v", e.StateDir, err)
	}
	for _, d := range e.Cgroup {
		if !waitFor(5*time.Second, func() bool { _, err := os.Stat(d); return os.IsNotExist(err) }) {
			t.Fatalf("cgroup %s of the dead sandbox left behind", d)
		}
	}
	// Its name is free again.
	mustRun(t, "run", "--name", name, "--", "true")
}

func TestNameOfARunningSandboxCannotBeTakenTwice(t *testing.T) {
	name := uniqueName("twice")
	startSandbox(t, name, nil, "sleep 60")
	waitListed(t, name)
	r := sbx(t, "run", "--name", name, "--", "true")
	if r.code != 125 || !strings.Contains(r.stderr, "already has that name") {
		t.Fatalf("second sandbox named %s: %s", name, r)
	}
}

func TestEnterRunsInTheSandboxesNamespacesRootAndFilters(t *testing.T) {
	name := uniqueName("enter")
	// The command records what it is: namespaces, credentials, filters.
	self := `for n in user mnt pid net uts ipc cgroup; do readlink /proc/self/ns/$n; done; grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp|Seccomp_filters):' /proc/self/status; cat /proc/self/cgroup`
	startSandbox(t, name, []string{"--memory", "64M"}, "echo secret > /tmp/inside; ("+self+") > /tmp/cmd-self; sleep 60")
	waitListed(t, name)
	waitFor(5*time.Second, func() bool {
		return sbx(t, "enter", name, "--", "test", "-s", "/tmp/cmd-self").code == 0
	})
	out := mustRun(t, "enter", name, "--", "/bin/sh", "-c", "cat /tmp/inside; ("+self+") > /tmp/enter-self; diff /tmp/cmd-self /tmp/enter-self && echo same")
	if !strings.Contains(out, "secret") {
		t.Fatalf("entered process does not see the sandbox's /tmp: %q", out)
	}
	if !strings.Contains(out, "same") {
		t.Fatalf("entered process differs from the command (namespaces, capabilities, seccomp or cgroup): %q", out)
	}
	// It sees the sandbox's processes and not the host's.
	procs := mustRun(t, "enter", name, "--", "/bin/sh", "-c", "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done")
	if !strings.Contains(procs, "sbx-init") || !strings.Contains(procs, "sleep 60") {
		t.Fatalf("entered process does not see the sandbox's processes:\n%s", procs)
	}
	if strings.Contains(procs, "sbx ps") || strings.Contains(procs, ".test") {
		t.Fatalf("entered process sees host processes:\n%s", procs)
	}
	if got := mustRun(t, "enter", name, "--", "cat", "/proc/1/cmdline"); !strings.HasPrefix(got, "sbx-init") {
		t.Fatalf("pid 1 of the entered process is %q, not the sandbox's init", got)
	}
	// The filter bites: a new user namespace, which the host allows this
	// user (the doctor tests make one), is refused to the entered process.
	if r := sbx(t, "enter", name, "--", "unshare", "--user", "true"); r.code == 0 || !strings.Contains(r.stderr, "not permitted") {
		t.Fatalf("entered process made a user namespace: %s", r)
	}
	hostFile, err := os.CreateTemp("", "sbx-host-*")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(hostFile.Name())
	if r := sbx(t, "enter", name, "--", "test", "-e", hostFile.Name()); r.code == 0 {
		t.Fatalf("entered process sees the host's %s", hostFile.Name())
	}
}

func TestEnterPassesStdinAndExitStatus(t *testing.T) {
	name := uniqueName("stdin")
	startSandbox(t, name, nil, "sleep 60")
	waitListed(t, name)
	r := sbxIn(t, "hello\n", "enter", name, "--", "/bin/sh", "-c", "read x; echo got $x; exit 4")
	if r.code != 4 || r.stdout != "got hello\n" {
		t.Fatalf("want 'got hello' and exit 4: %s", r)
	}
	if r := sbx(t, "enter", name, "--", "no-such-command"); r.code != 127 {
		t.Fatalf("missing command: %s", r)
	}
	if r := sbx(t, "enter", "no-such-sandbox", "--", "true"); r.code != 125 || !strings.Contains(r.stderr, "no running sandbox") {
		t.Fatalf("unknown sandbox: %s", r)
	}
}

func TestKilledEnterTakesItsProcessAlong(t *testing.T) {
	name := uniqueName("enterkill")
	startSandbox(t, name, nil, "sleep 60")
	waitListed(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	enter := sbxCommand(t, ctx, "enter", name, "--", "sleep", "4242")
	if err := enter.Start(); err != nil {
		t.Fatal(err)
	}
	if !waitFor(10*time.Second, func() bool { return len(pgrep("sleep 4242")) > 0 }) {
		t.Fatal("entered sleep never started")
	}
	enter.Process.Signal(syscall.SIGKILL)
	enter.Wait()
	if !waitFor(10*time.Second, func() bool { return len(pgrep("sleep 4242")) == 0 }) {
		t.Fatal("entered process outlived its sbx enter")
	}
}

func TestKillEndsTheSandboxAndSignalReachesTheCommand(t *testing.T) {
	name := uniqueName("kill")
	cmd, _ := startSandbox(t, name, nil, "sleep 4343")
	waitListed(t, name)
	mustRun(t, "kill", name)
	cmd.Wait()
	if cmd.ProcessState.ExitCode() != 137 {
		t.Fatalf("sbx run after sbx kill exited %d, want 137", cmd.ProcessState.ExitCode())
	}
	if pids := pgrep("sleep 4343"); len(pids) != 0 {
		t.Fatalf("sleep still running after sbx kill: %v", pids)
	}

	name = uniqueName("term")
	cmd, out := startSandbox(t, name, nil, "trap 'echo got TERM; exit 7' TERM; while :; do sleep 0.1; done")
	waitListed(t, name)
	mustRun(t, "kill", "--signal", "TERM", name)
	cmd.Wait()
	if cmd.ProcessState.ExitCode() != 7 || !strings.Contains(out.String(), "got TERM") {
		t.Fatalf("sbx kill --signal TERM: exit %d, output %q", cmd.ProcessState.ExitCode(), out)
	}
	if r := sbx(t, "kill", "--signal", "NOPE", name); r.code != 125 {
		t.Fatalf("bad signal name: %s", r)
	}
}

func TestEnterFromATerminalGetsAPtyWithJobControl(t *testing.T) {
	name := uniqueName("entertty")
	startSandbox(t, name, nil, "sleep 60")
	waitListed(t, name)
	m, s := openPty(t)
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := sbxCommand(t, ctx, "enter", name, "--", "/bin/bash", "--norc", "--noprofile", "-i")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s, s, s
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	var out bytes.Buffer
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		io.Copy(&out, m)
	}()
	send := func(line string) {
		m.Write([]byte(line))
		time.Sleep(300 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	send("test -t 0 && echo TTY-$((6*7)); stty size; tty\n")
	send("sleep 50 &\n")
	send("jobs\n")
	send("sleep 40\n")
	send("\x03") // ^C reaches the foreground job through the pty
	send("echo rc-$?\n")
	send("exit 5\n")
	cmd.Wait()
	m.Close()
	<-readDone
	got := out.String()
	for _, want := range []string{"TTY-42", "30 100", "/dev/pts/", "Running", "rc-130"} {
		if !strings.Contains(got, want) {
			t.Errorf("terminal session lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "no job control") {
		t.Errorf("entered bash has no job control:\n%s", got)
	}
	if cmd.ProcessState.ExitCode() != 5 {
		t.Errorf("exit %d, want 5:\n%s", cmd.ProcessState.ExitCode(), got)
	}
}

// enterClient is a minimal sbx enter client: it asks the supervisor
// listening on argv[1] to run echo ESCAPED with its own stdio, and prints
// the answers until the end.
const enterClient = `import array, json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
m = json.dumps({"kind": "exec", "exec": {"argv": ["/bin/echo", "ESCAPED"], "env": [], "cwd": "/"}}).encode()
s.sendmsg([m], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [0, 1, 2]))])
while True:
    b = s.recv(65536)
    print(b.decode())
    if not b or json.loads(b)["kind"] in ("exit", "error"):
        break
`

func TestSandboxCannotEnterAnotherThroughItsControlSocket(t *testing.T) {
	name := uniqueName("victim")
	startSandbox(t, name, nil, "sleep 60")
	e := waitListed(t, name)
	// The attacker's sandbox sees the victim's state directory.
	bind := []string{"--bind", e.StateDir + ":/s"}
	r := run(t, bind, "python3 -c '"+enterClient+"' /s/control.sock")
	if strings.Contains(r.stdout, "ESCAPED") || strings.Contains(r.stderr, "ESCAPED") {
		t.Fatalf("a sandbox ran a command in another sandbox: %s", r)
	}
	if !strings.Contains(r.stdout, "only from outside the sandboxes") {
		t.Fatalf("want the supervisor's refusal: %s", r)
	}
	// The same client from the host is served: the refusal is about where
	// it runs, not about the client.
	py := exec.Command("python3", "-c", enterClient, e.StateDir+"/control.sock")
	out, err := py.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ESCAPED") {
		t.Fatalf("host client: %v\n%s", err, out)
	}
}

func TestPsShowsMemoryInUseWithoutACgroup(t *testing.T) {
	name := uniqueName("mem")
	// 20 MB held in a shell variable, no cgroup: ps adds up the processes.
	startSandbox(t, name, nil, `x=$(head -c 20000000 /dev/zero | tr '\0' a); sleep 60`)
	waitListed(t, name)
	var e *psEntry
	if !waitFor(10*time.Second, func() bool { e = listed(t, name); return e != nil && e.Memory > 20_000_000 }) {
		t.Fatalf("sbx ps shows %+v, want more than 20 MB in use", e)
	}
	if len(e.Cgroup) != 0 {
		t.Fatalf("sandbox without limits has a cgroup: %v", e.Cgroup)
	}
}
