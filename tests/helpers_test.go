// Package tests drives the built sbx binary as an unprivileged user, the
// way people use it, against the real kernel.
package tests

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// result is what one sbx invocation did.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return "exit " + strconv.Itoa(r.code) + "\nstdout: " + r.stdout + "\nstderr: " + r.stderr
}

// sbxPath is the binary under test: $SBX_BIN, else the one `make` builds.
func sbxPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SBX_BIN"); p != "" {
		return p
	}
	p, err := filepath.Abs("../sbx")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no sbx binary at %s: run make first, or make test", p)
	}
	return p
}

// unprivileged stops a test that would prove nothing as root: sbx is for
// unprivileged users, and root would pass checks a user must fail.
func unprivileged(t testing.TB) {
	t.Helper()
	if os.Getuid() == 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("integration tests must run as an unprivileged user: use make test")
		}
		t.Skip("integration tests run as an unprivileged user: use make test")
	}
}

// sbxCommand prepares an sbx invocation with stdin from /dev/null.
func sbxCommand(t testing.TB, ctx context.Context, args ...string) *exec.Cmd {
	t.Helper()
	unprivileged(t)
	cmd := exec.CommandContext(ctx, sbxPath(t), args...)
	cmd.Stdin = nil
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// sbx runs sbx with args to completion (60 s at most) and returns what it did.
func sbx(t testing.TB, args ...string) result {
	t.Helper()
	return sbxIn(t, "", args...)
}

// sbxIn runs sbx with the given stdin text.
func sbxIn(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	return invocation{stdin: stdin}.run(t, args...)
}

// invocation is how sbx is run: its environment (nil: the test's), its
// working directory, its stdin text and its time limit (60 s if zero).
type invocation struct {
	env   []string
	dir   string
	stdin string
	limit time.Duration
}

// run runs sbx with args to completion and returns what it did; a command
// killed by signal N counts as exit 128+N, as a shell reports it.
func (o invocation) run(t testing.TB, args ...string) result {
	t.Helper()
	limit := o.limit
	if limit == 0 {
		limit = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := sbxCommand(t, ctx, args...)
	cmd.Env, cmd.Dir = o.env, o.dir
	if o.stdin != "" {
		cmd.Stdin = strings.NewReader(o.stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				r.code = 128 + int(ws.Signal())
			}
		} else {
			t.Fatalf("sbx %v: %v", args, err)
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("sbx %v: still running after %v\n%s", args, limit, r)
	}
	return r
}

// mustRun runs sbx and fails the test unless it exits 0; it returns stdout.
func mustRun(t testing.TB, args ...string) string {
	t.Helper()
	r := sbx(t, args...)
	if r.code != 0 {
		t.Fatalf("sbx %s: %s", strings.Join(args, " "), r)
	}
	return r.stdout
}

// run is `sbx run [flags...] -- sh -c script`.
func run(t testing.TB, flags []string, script string) result {
	t.Helper()
	args := append([]string{"run"}, flags...)
	args = append(args, "--", "/bin/sh", "-c", script)
	return sbx(t, args...)
}

// mustSh runs script in a default sandbox and returns its stdout.
func mustSh(t testing.TB, flags []string, script string) string {
	t.Helper()
	r := run(t, flags, script)
	if r.code != 0 {
		t.Fatalf("sbx run %v -- sh -c %q: %s", flags, script, r)
	}
	return r.stdout
}

// wantFail checks that a sandboxed script fails, i.e. the attack it makes
// did not work; it returns the result for further checks.
func wantFail(t testing.TB, flags []string, script string) result {
	t.Helper()
	r := run(t, flags, script)
	if r.code == 0 {
		t.Fatalf("sbx run %v -- sh -c %q succeeded, it must not: %s", flags, script, r)
	}
	return r
}

// waitFor polls cond every 20 ms until it is true or d has passed.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

// pgrep returns the pids of the test user's processes whose command line is exactly cmdline.
func pgrep(cmdline string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid := 0
		for _, c := range e.Name() {
			if c < '0' || c > '9' {
				pid = -1
				break
			}
			pid = pid*10 + int(c-'0')
		}
		if pid <= 0 {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		if strings.TrimRight(strings.ReplaceAll(string(b), "\x00", " "), " ") == cmdline {
			pids = append(pids, pid)
		}
	}
	return pids
}
