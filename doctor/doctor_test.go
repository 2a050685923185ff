package doctor

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeProc writes sysctl values (name -> value) under a fresh procfs root.
func fakeProc(t *testing.T, sysctls map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, v := range sysctls {
		p := filepath.Join(root, "sys", strings.ReplaceAll(name, ".", "/"))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestEachSysctlThatBlocksUserNamespacesIsNamedWithItsFix(t *testing.T) {
	for knob, v := range map[string]string{
		"kernel.unprivileged_userns_clone":             "0",
		"user.max_user_namespaces":                     "0",
		"kernel.apparmor_restrict_unprivileged_userns": "1",
	} {
		c := userNamespaces(Host{Proc: fakeProc(t, map[string]string{knob: v})})
		if c.Status != Fail || !strings.Contains(c.Detail, knob+"="+v) || !strings.Contains(c.Fix, knob) {
			t.Errorf("%s=%s: %+v", knob, v, c)
		}
	}
	open := fakeProc(t, map[string]string{"kernel.unprivileged_userns_clone": "1", "user.max_user_namespaces": "1000", "kernel.apparmor_restrict_unprivileged_userns": "0"})
	if c := userNamespaces(Host{Proc: open}); c.Status != OK {
		t.Errorf("open sysctls: %+v", c)
	}
}

func TestPingGroupRangeMustHoldTheCallersGroup(t *testing.T) {
	gid := os.Getgid()
	in := pingGroupRange(Host{Proc: fakeProc(t, map[string]string{"net.ipv4.ping_group_range": fmt.Sprintf("0\t%d", gid+1)})})
	out := pingGroupRange(Host{Proc: fakeProc(t, map[string]string{"net.ipv4.ping_group_range": "1\t0"})})
	if in.Status != OK || out.Status != Warn || !strings.Contains(out.Fix, "ping_group_range") {
		t.Fatalf("in range: %+v; disabled: %+v", in, out)
	}
}

func TestOverlayInAUserNamespaceNeedsLinux511(t *testing.T) {
	for rel, want := range map[string]bool{"5.10.0-28-amd64": false, "5.11.0": true, "6.18.44-fc": true, "4.19": false} {
		h := Host{Proc: fakeProc(t, map[string]string{"kernel.osrelease": rel})}
		if got := kernelAtLeast(h, 5, 11); got != want {
			t.Errorf("%s: %v, want %v", rel, got, want)
		}
	}
}

func TestMissingSeccompIsAFailureAndPrintSaysSo(t *testing.T) {
	h := Host{Proc: fakeProc(t, nil)}
	c := seccomp(h)
	if c.Status != Fail {
		t.Fatalf("no seccomp sysctls: %+v", c)
	}
	var b strings.Builder
	if Print(&b, []Check{{Name: "a", Status: OK, Detail: "fine"}, c}) {
		t.Fatal("Print reported success with a failed check")
	}
	if lines := strings.Split(strings.TrimSpace(b.String()), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], "FAIL") || !strings.Contains(lines[1], "fix: ") {
		t.Fatalf("report:\n%s", b.String())
	}
}
