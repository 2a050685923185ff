package tests

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPty returns a new pseudo-terminal's master and slave.
func openPty(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	ws := &unix.Winsize{Row: 30, Col: 100}
	unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, ws)
	return m, s
}

func TestShellInATerminalHasJobControlAndATTY(t *testing.T) {
	unprivileged(t)
	send, expect, output, wait := ptySession(t, os.Environ(), sbxPath(t), "run", "--setenv", "PS1=$ ", "--", "/bin/bash", "--norc", "--noprofile", "-i")
	expect("$ ")
	send("sleep 100 &\n")
	expect("$ ")
	send("test -t 0 && echo TTY-$((6*7)); stty size\n")
	expect("30 100")
	send("sleep 60\n")
	time.Sleep(500 * time.Millisecond)
	send("\x03") // ^C reaches the foreground job
	expect("$ ")
	send("echo rc-$?\n")
	expect("rc-130")
	send("fg\n")
	expect("sleep 100")
	time.Sleep(500 * time.Millisecond)
	send("\x1a") // ^Z stops it, and bash inside takes the terminal back
	expect("Stopped")
	send("kill -9 %1\n")
	expect("$ ")
	send("exit 4\n")
	code := wait()
	got := output()
	if !strings.Contains(got, "TTY-42") {
		t.Errorf("stdin is not a terminal inside:\n%s", got)
	}
	if strings.Contains(got, "no job control") || strings.Contains(got, "cannot set terminal process group") {
		t.Errorf("bash has no job control:\n%s", got)
	}
	if code != 4 {
		t.Errorf("exit status %d, want 4:\n%s", code, got)
	}
}

// ptyShell runs an interactive bash of the host (not sandboxed) on a new
// pty, as a user's terminal would, and returns a writer and the output so far.
func ptyShell(t *testing.T) (send func(string), expect func(string), output func() string, wait func() int) {
	t.Helper()
	unprivileged(t)
	return ptySession(t, append(os.Environ(), "PS1=$ ", "SBX="+sbxPath(t)), "/bin/bash", "--norc", "--noprofile", "-i")
}

// ptySession runs argv on a new pty as its controlling terminal. send
// types; expect waits until the terminal has shown a text since the last
// send; wait waits for the end and returns the exit status.
func ptySession(t *testing.T, env []string, argv ...string) (send func(string), expect func(string), output func() string, wait func() int) {
	t.Helper()
	m, s := openPty(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s, s, s
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	var mu sync.Mutex
	var out strings.Builder
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			mu.Lock()
			out.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	// expect waits until the terminal has shown want since the last send.
	mark := 0
	send = func(line string) {
		mu.Lock()
		mark = out.Len()
		mu.Unlock()
		m.Write([]byte(line))
	}
	output = func() string {
		mu.Lock()
		defer mu.Unlock()
		return out.String()
	}
	expect = func(want string) {
		t.Helper()
		if !waitFor(15*time.Second, func() bool { return strings.Contains(output()[mark:], want) }) {
			t.Fatalf("the terminal never showed %q:\n%s", want, strings.ReplaceAll(output(), "\r", ""))
		}
	}
	wait = func() int {
		cmd.Wait()
		cancel()
		m.Close()
		return cmd.ProcessState.ExitCode()
	}
	return send, expect, output, wait
}

func TestCtrlZStopsSbxAndFgResumesTheCommand(t *testing.T) {
	send, expect, output, wait := ptyShell(t)
	defer wait()
	expect("$ ")
	send(`"$SBX" run -- /bin/sh -c 'echo ready-$((1+1)); exec cat'` + "\n")
	expect("ready-2")
	send("\x1a") // ^Z: the shell must get the terminal back
	expect("Stopped")
	send("echo shell-$((40+2))\n")
	expect("shell-42")
	send("fg\n")
	expect("fg\r\n")
	// The command gets the terminal back just after sbx continues; give
	// it a moment, then type: cat must read the line (not be stopped by
	// SIGTTIN for reading from a terminal it does not own).
	time.Sleep(time.Second)
	send("hello-from-fg\n")
	expect("hello-from-fg\r\nhello-from-fg") // the terminal's echo, then cat's copy
	send("\x03")
	expect("$ ")
	send("echo rc-$?; exit\n")
	expect("rc-130")
	if n := strings.Count(output(), "Stopped"); n != 1 {
		t.Errorf("sbx stopped %d times, want once:\n%s", n, output())
	}
}
