package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// alloc50M keeps 50 MB in a shell variable, the zine's experiment: a
// memory limit must stop it before it says so.
const alloc50M = `x=$(head -c 50000000 /dev/zero | tr '\0' a); echo allocated ${#x}`

// noCgroupParent points sbx at a cgroup the test user cannot write (the
// root of every hierarchy), as on a host without a delegated cgroup.
var noCgroupParent = []string{"--cgroup-parent", "/"}

func TestMemoryLimitKillsA50MAllocationThroughTheCgroup(t *testing.T) {
	r := run(t, []string{"--memory", "5M"}, alloc50M)
	if strings.Contains(r.stdout, "allocated") {
		t.Fatalf("50M allocation survived --memory 5M: %s", r)
	}
	if r.code != 137 || !strings.Contains(r.stderr, "sbx: memory limit 5M reached, the command was killed") {
		t.Fatalf("want exit 137 and the memory limit message: %s", r)
	}
	if strings.Contains(r.stderr, "warning") {
		t.Fatalf("the limit fell back to rlimits on a host with a writable cgroup: %s", r)
	}
	// The same allocation under a roomy limit succeeds: it was the limit.
	if out := mustSh(t, []string{"--memory", "300M"}, alloc50M); !strings.Contains(out, "allocated 50000000") {
		t.Fatalf("50M allocation under --memory 300M: %q", out)
	}
}

func TestMemoryLimitFallsBackToRlimitWithoutWritableCgroup(t *testing.T) {
	r := run(t, append([]string{"--memory", "5M"}, noCgroupParent...), alloc50M)
	if r.code == 0 || strings.Contains(r.stdout, "allocated") {
		t.Fatalf("50M allocation survived --memory 5M without a cgroup: %s", r)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if !strings.HasPrefix(lines[0], "sbx: warning: no writable cgroup for memory") || !strings.Contains(lines[0], "RLIMIT_AS=5M") {
		t.Fatalf("want one warning line naming the fallback: %s", r)
	}
	out := mustSh(t, append([]string{"--memory", "5M"}, noCgroupParent...), "ulimit -v; ulimit -Hv")
	if f := strings.Fields(out); len(f) != 2 || f[0] != "5120" || f[1] != "5120" {
		t.Fatalf("RLIMIT_AS inside = %q, want 5120 5120 (KiB, soft and hard)", out)
	}
	if out := mustSh(t, append([]string{"--memory", "500M"}, noCgroupParent...), alloc50M); !strings.Contains(out, "allocated 50000000") {
		t.Fatalf("50M allocation under RLIMIT_AS 500M: %q", out)
	}
}

func TestLimitsStrictRefusesRlimitFallback(t *testing.T) {
	r := sbx(t, append(append([]string{"run", "--limits", "strict", "--memory", "5M"}, noCgroupParent...), "--", "true")...)
	if r.code != 125 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, "--limits strict") {
		t.Fatalf("want exit 125 with one line: %s", r)
	}
}

// forkLoop starts 200 sleeping children, bounded however the limit fares.
const forkLoop = `i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done; echo started $i`

func TestPidsLimitStopsAForkBomb(t *testing.T) {
	for _, flags := range [][]string{{"--pids", "32"}, append([]string{"--pids", "32"}, noCgroupParent...)} {
		r := run(t, flags, forkLoop)
		if strings.Contains(r.stdout, "started 200") || r.code == 0 {
			t.Fatalf("%v: 200 processes started: %s", flags, r)
		}
		if !strings.Contains(r.stderr, "fork") {
			t.Fatalf("%v: want fork to fail: %s", flags, r)
		}
	}
	if out := mustSh(t, []string{"--pids", "400"}, forkLoop); !strings.Contains(out, "started 200") {
		t.Fatalf("--pids 400: %q", out)
	}
}

func TestCPUAndNofileLimitsReachTheCommand(t *testing.T) {
	out := mustSh(t, []string{"--cpus", "0.5", "--nofile", "77", "--core", "0", "--cpu-time", "9"}, "ulimit -n; ulimit -c; ulimit -t")
	if f := strings.Fields(out); strings.Join(f, " ") != "77 0 9" {
		t.Fatalf("rlimits inside = %q, want 77 0 9", out)
	}
}

func TestCgroupHasTheLimitsAndIsGoneAfterTheSandboxEnds(t *testing.T) {
	name := uniqueName("cgroup")
	cmd, _ := startSandbox(t, name, []string{"--memory", "64M", "--pids", "64", "--cpus", "0.5"}, "sleep 60")
	e := waitListed(t, name)
	if len(e.Cgroup) == 0 {
		t.Fatalf("sandbox with --memory has no cgroup: %+v", e)
	}
	want := map[string]string{
		"memory.max": "67108864", "memory.limit_in_bytes": "67108864", // v2, v1
		"pids.max": "64", "cpu.max": "50000 100000", "cpu.cfs_quota_us": "50000",
	}
	found := map[string]bool{}
	for _, d := range e.Cgroup {
		if _, err := os.Stat(filepath.Join(d, "cgroup.procs")); err != nil {
			t.Fatalf("cgroup %s of a running sandbox: %v", d, err)
		}
		for f, v := range want {
			if b, err := os.ReadFile(filepath.Join(d, f)); err == nil {
				if got := strings.TrimSpace(string(b)); got != v {
					t.Errorf("%s/%s = %s, want %s", d, f, got, v)
				}
				found[strings.SplitN(f, ".", 2)[0]] = true
			}
		}
	}
	if !found["memory"] || !found["pids"] || !found["cpu"] {
		t.Fatalf("limits missing from the cgroup %v: found %v", e.Cgroup, found)
	}
	mustRun(t, "kill", name)
	cmd.Wait()
	for _, d := range e.Cgroup {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Fatalf("cgroup %s still there after the sandbox ended: %v", d, err)
		}
	}
}

func TestStatusFDsReportChildPidNamespacesAndExit(t *testing.T) {
	dir := t.TempDir()
	info, _ := os.Create(filepath.Join(dir, "info"))
	status, _ := os.Create(filepath.Join(dir, "status"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := sbxCommand(t, ctx, "run", "--info-fd", "3", "--json-status-fd", "4", "--", "sh", "-c", "exit 3")
	cmd.ExtraFiles = []*os.File{info, status}
	err := cmd.Run()
	info.Close()
	status.Close()
	if cmd.ProcessState.ExitCode() != 3 {
		t.Fatalf("exit %v", err)
	}
	var in map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, "info"))
	if err := json.Unmarshal(b, &in); err != nil || in["child-pid"] == nil || in["pid-namespace"] == nil || in["user-namespace"] == nil {
		t.Fatalf("--info-fd wrote %q (%v)", b, err)
	}
	f, _ := os.Open(filepath.Join(dir, "status"))
	defer f.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("--json-status-fd line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 || lines[0]["child-pid"] == nil || lines[1]["exit-code"] != float64(3) {
		t.Fatalf("--json-status-fd wrote %v, want a start line and {exit-code: 3}", lines)
	}
}

func TestLeftoverCgroupWithoutASandboxIsSwept(t *testing.T) {
	name := uniqueName("sweep")
	cmd, _ := startSandbox(t, name, []string{"--memory", "64M"}, "sleep 60")
	e := waitListed(t, name)
	if len(e.Cgroup) == 0 {
		t.Fatalf("no cgroup: %+v", e)
	}
	parent := filepath.Dir(e.Cgroup[0])
	mustRun(t, "kill", name)
	cmd.Wait()
	// As an sbx killed between making its cgroup and registering its
	// sandbox leaves one: empty, and recorded nowhere.
	old, young := filepath.Join(parent, uniqueName("sbx-old")), filepath.Join(parent, uniqueName("sbx-young"))
	for _, d := range []string{old, young} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	defer syscall.Rmdir(young)
	past := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "ps")
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Fatalf("leftover cgroup %s not swept: %v", old, err)
	}
	if _, err := os.Stat(young); err != nil {
		t.Fatalf("a cgroup made a moment ago (its sandbox may be starting) was swept: %v", err)
	}
}
