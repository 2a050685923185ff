package tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// doctorLine returns the line of sbx doctor's report about check.
func doctorLine(out, check string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, check+":") {
			return l
		}
	}
	return ""
}

func TestDoctorSaysThisHostCanRunSandboxes(t *testing.T) {
	r := sbx(t, "doctor")
	if r.code != 0 {
		t.Fatalf("sbx doctor on a host where sbx run works: %s", r)
	}
	for _, c := range []string{"user namespaces", "subuid/subgid", "seccomp", "landlock", "overlay", "/dev/net/tun", "cgroups", "ping", "sbx run"} {
		if doctorLine(r.stdout, c) == "" {
			t.Errorf("no line about %s:\n%s", c, r.stdout)
		}
	}
	for _, c := range []string{"user namespaces", "sbx run"} {
		if l := doctorLine(r.stdout, c); !strings.HasPrefix(l, "ok") {
			t.Errorf("%s: %q", c, l)
		}
	}
	// The test set-up gives the test user a writable cgroup; doctor must find it.
	if l := doctorLine(r.stdout, "cgroups"); !strings.HasPrefix(l, "ok") {
		t.Errorf("cgroups: %q", l)
	}
}

func TestDoctorNamesMaxUserNamespacesBlockingUserNamespaces(t *testing.T) {
	unprivileged(t)
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("needs unshare (util-linux)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// user.max_user_namespaces is per user namespace: a child namespace
	// may lower it for itself and everything below.
	cmd := exec.CommandContext(ctx, unshare, "--user", "--map-root-user", "/bin/sh", "-c",
		`echo 0 > /proc/sys/user/max_user_namespaces && exec "$0" doctor`, sbxPath(t))
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("doctor with user namespaces blocked exited %d:\n%s", cmd.ProcessState.ExitCode(), out)
	}
	l := doctorLine(string(out), "user namespaces")
	if !strings.HasPrefix(l, "FAIL") || !strings.Contains(l, "user.max_user_namespaces=0") || !strings.Contains(l, "fix:") {
		t.Fatalf("user namespaces line: %q\n%s", l, out)
	}
	// The real attempt fails too, and for the same reason.
	if l := doctorLine(string(out), "sbx run"); !strings.HasPrefix(l, "FAIL") || !strings.Contains(l, "max_user_namespaces") {
		t.Fatalf("sbx run line: %q\n%s", l, out)
	}
}

func TestDoctorNamesEachUserNamespaceSysctlOfAFakeProc(t *testing.T) {
	for file, knob := range map[string]string{
		"kernel/unprivileged_userns_clone":             "kernel.unprivileged_userns_clone=0",
		"kernel/apparmor_restrict_unprivileged_userns": "kernel.apparmor_restrict_unprivileged_userns=1",
		"user/max_user_namespaces":                     "user.max_user_namespaces=0",
	} {
		proc := t.TempDir()
		val := knob[strings.Index(knob, "=")+1:]
		p := filepath.Join(proc, "sys", file)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(val+"\n"), 0o644)
		r := sbx(t, "doctor", "--proc", proc)
		if r.code != 1 {
			t.Fatalf("%s: doctor exited %d:\n%s", knob, r.code, r.stdout)
		}
		if l := doctorLine(r.stdout, "user namespaces"); !strings.HasPrefix(l, "FAIL") || !strings.Contains(l, knob) {
			t.Fatalf("%s: user namespaces line %q", knob, l)
		}
	}
}
