package tests

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// busyboxRootfs makes an unpacked root filesystem owned by the test user.
func busyboxRootfs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"bin", "proc", "dev", "tmp", "etc"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("static busybox missing (busybox-static, installed by make setup): %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "cat", "test", "touch", "echo", "rm"} {
		os.Symlink("busybox", filepath.Join(dir, "bin", a))
	}
	os.WriteFile(filepath.Join(dir, "etc/motd"), []byte("rootfs motd\n"), 0o644)
	return dir
}

func TestHostOverlayWritesAreGoneOnTheNextRun(t *testing.T) {
	for _, d := range overlayDrivers {
		t.Run(d, func(t *testing.T) {
			flags := []string{"--overlay", "--overlay-driver", d}
			mustSh(t, flags, "echo x > /etc/sbx-overlay-test && cat /etc/sbx-overlay-test && touch /usr/sbx-overlay-test")
			wantFail(t, flags, "test -e /etc/sbx-overlay-test || test -e /usr/sbx-overlay-test")
			for _, p := range []string{"/etc/sbx-overlay-test", "/usr/sbx-overlay-test"} {
				if _, err := os.Lstat(p); err == nil {
					t.Fatalf("an overlay write reached the host: %s", p)
				}
			}
		})
	}
}

func TestPersistKeepsOverlayWritesForTheNextRun(t *testing.T) {
	for _, d := range overlayDrivers {
		t.Run(d, func(t *testing.T) {
			persist := filepath.Join(t.TempDir(), "state")
			flags := []string{"--overlay", "--overlay-driver", d, "--persist", persist}
			mustSh(t, flags, "echo kept > /etc/sbx-persist-test && rm /etc/hostname")
			if out := mustSh(t, flags, "cat /etc/sbx-persist-test; test -e /etc/hostname || echo deleted"); out != "kept\ndeleted\n" {
				t.Fatalf("--persist did not keep the writes: %q", out)
			}
			wantFail(t, []string{"--overlay", "--overlay-driver", d}, "test -e /etc/sbx-persist-test")
			if _, err := os.Stat("/etc/sbx-persist-test"); err == nil {
				t.Fatal("a persisted overlay write reached the host")
			}
			if _, err := os.Stat("/etc/hostname"); err != nil {
				t.Fatalf("an overlay deletion reached the host: %v", err)
			}
			// The other driver would misread the directory: refused; auto keeps its driver.
			other := map[string]string{"kernel": "fuse", "fuse": "kernel"}[d]
			if r := run(t, []string{"--overlay", "--overlay-driver", other, "--persist", persist}, "true"); r.code != 125 {
				t.Fatalf("a --persist directory of the %s driver used with the %s driver: %s", d, other, r)
			}
			if out := mustSh(t, []string{"--overlay", "--persist", persist}, "cat /etc/sbx-persist-test"); out != "kept\n" {
				t.Fatalf("auto with a %s --persist directory: %q", d, out)
			}
		})
	}
}

func TestFuseOverlayMakesTheHostsFilesWritable(t *testing.T) {
	out := mustSh(t, []string{"--overlay", "--overlay-driver", "fuse"}, "echo changed >> /etc/hostname && tail -1 /etc/hostname; mkdir -p /usr/local/sbx-new && echo ok")
	if out != "changed\nok\n" {
		t.Fatalf("host files not writable through fuse-overlayfs: %q", out)
	}
	b, _ := os.ReadFile("/etc/hostname")
	if strings.Contains(string(b), "changed") {
		t.Fatal("the write reached the host's /etc/hostname")
	}
}

func TestRootfsIsReadOnlyUnlessOverlaid(t *testing.T) {
	unprivileged(t)
	root := busyboxRootfs(t)
	r := sbx(t, "run", "--rootfs", root, "--", "/bin/sh", "-c", "cat /etc/motd; touch /new")
	if r.code == 0 || r.stdout != "rootfs motd\n" {
		t.Fatalf("a --rootfs without --overlay must be read-only: %s", r)
	}
	for _, d := range overlayDrivers {
		mustRun(t, "run", "--rootfs", root, "--overlay", "--overlay-driver", d, "--", "/bin/sh", "-c", "echo x > /new && rm /etc/motd")
		if _, err := os.Stat(filepath.Join(root, "new")); err == nil {
			t.Fatalf("%s: an overlay write reached the rootfs", d)
		}
		if _, err := os.Stat(filepath.Join(root, "etc/motd")); err != nil {
			t.Fatalf("%s: an overlay deletion reached the rootfs", d)
		}
	}
}

// sbxWithoutFuse runs sbx with a PATH where fuse-overlayfs cannot be found.
func sbxWithoutFuse(t *testing.T, args ...string) (int, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := sbxCommand(t, ctx, args...)
	cmd.Env = append(os.Environ(), "PATH=/nonexistent")
	out, _ := cmd.CombinedOutput()
	return cmd.ProcessState.ExitCode(), strings.Split(strings.TrimSpace(string(out)), "\n")
}

func TestMissingFuseOverlayfsIsOneClearError(t *testing.T) {
	code, lines := sbxWithoutFuse(t, "run", "--overlay", "--overlay-driver", "fuse", "--", "/bin/true")
	if code != 125 || len(lines) != 1 || !strings.Contains(lines[0], "fuse-overlayfs") {
		t.Fatalf("want exit 125 and one line naming fuse-overlayfs, got %d: %q", code, lines)
	}
}

func TestNeitherOverlayDriverIsOneErrorNamingBoth(t *testing.T) {
	// procfs cannot be an overlay lower, and fuse-overlayfs is not on PATH.
	code, lines := sbxWithoutFuse(t, "run", "--rootfs", "/proc", "--overlay", "--", "/bin/true")
	if code != 125 || len(lines) != 1 || !strings.Contains(lines[0], "fuse-overlayfs") || !strings.Contains(lines[0], "kernel's overlay") {
		t.Fatalf("want exit 125 and one line naming both drivers, got %d: %q", code, lines)
	}
}

// TestFuseHelperIsOutOfTheCommandsReach attacks the fuse-overlayfs helper,
// which runs in a mount namespace that still sees the host's tree: the
// command must not reach that tree through /proc/PID/root, nor read the
// helper's memory or environment.
func TestFuseHelperIsOutOfTheCommandsReach(t *testing.T) {
	out := mustSh(t, []string{"--overlay", "--overlay-driver", "fuse"}, `
		n=0
		for p in /proc/[0-9]*; do
			case "$(tr '\0' '\n' < $p/cmdline | head -n1)" in */fuse-overlayfs) ;; *) continue ;; esac
			n=$((n+1))
			ls $p/root/ >/dev/null 2>&1 && echo "reached $p/root"
			cat $p/environ >/dev/null 2>&1 && echo "read $p/environ"
			head -c1 $p/mem >/dev/null 2>&1 && echo "read $p/mem"
		done
		echo "helpers: $n"`)
	if strings.Contains(out, "reached") || strings.Contains(out, "read ") || strings.Contains(out, "helpers: 0") {
		t.Fatalf("the fuse-overlayfs helper is within the command's reach (or absent): %q", out)
	}
}

func TestHostOverlayHasAnEmptyWritableHomeOfItsOwn(t *testing.T) {
	home, _ := os.UserHomeDir()
	marker := filepath.Join(home, ".sbx-overlay-home-test")
	os.WriteFile(marker, []byte("host"), 0o600)
	defer os.Remove(marker)
	out := mustSh(t, []string{"--overlay"}, `test -e "$HOME/.sbx-overlay-home-test" && echo host-visible; touch "$HOME/new" && echo writable`)
	if out != "writable\n" {
		t.Fatalf("home in an overlay root: %q", out)
	}
}

func TestReadOnlyRootfsWithoutMountPointsIsOneClearError(t *testing.T) {
	unprivileged(t)
	root := busyboxRootfs(t)
	os.Remove(filepath.Join(root, "proc"))
	r := sbx(t, "run", "--rootfs", root, "--", "/bin/true")
	if r.code != 125 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, "--overlay") {
		t.Fatalf("want one line suggesting --overlay, exit 125: %s", r)
	}
	mustRun(t, "run", "--rootfs", root, "--overlay", "--", "/bin/test", "-d", "/proc/self")
}
