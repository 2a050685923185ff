package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path"

	"golang.org/x/sys/unix"

	"github.com/sbx-sandbox/sbx/spec"
)

// hostSystemDirs are what a RootHost sandbox sees of the host, read-only,
// as bubblewrap users usually bind them.
var hostSystemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt"}

// buildRoot makes the sandbox's whole root as a detached mount tree and
// returns it. It runs in init, in the sandbox's private mount namespace,
// with every host path still as the caller sees it.
func buildRoot(s *spec.Spec) (int, error) {
	var root int
	var err error
	switch s.Root.Kind {
	case spec.RootHost, "":
		if root, err = newTmpfs("0755"); err != nil {
			return -1, err
		}
		if err := bindHostSystem(root); err != nil {
			unix.Close(root)
			return -1, err
		}
	default:
		f, err := mountRoot(s)
		if err != nil {
			return -1, err
		}
		root = int(f.Fd())
		// The fd now belongs to root; keep f from closing it behind our back.
		if root, err = unix.Dup(root); err != nil {
			f.Close()
			return -1, err
		}
		f.Close()
	}
	fail := func(err error) (int, error) {
		unix.Close(root)
		return -1, err
	}
	if err := mountProc(root); err != nil {
		return fail(err)
	}
	testPause("mounts")
	if err := mountDev(root); err != nil {
		return fail(err)
	}
	if err := mountSys(root, s); err != nil {
		return fail(err)
	}
	if err := mountTmpfsAt(root, "/tmp", "1777"); err != nil {
		return fail(err)
	}
	if s.Home != "" && (s.Root.Kind == spec.RootHost || s.Root.Kind == "") && !mountedAt(s, s.Home) {
		if err := mountTmpfsAt(root, s.Home, "0700"); err != nil {
			return fail(err)
		}
	}
	for _, m := range s.Mounts {
		if err := applyMount(root, m); err != nil {
			return fail(err)
		}
	}
	return root, nil
}

// bindHostSystem binds the host's system directories read-only and keeps
// merged-/usr symlinks (/bin -> usr/bin) as symlinks.
func bindHostSystem(root int) error {
	for _, d := range hostSystemDirs {
		st, err := os.Lstat(d)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("host %s: %w", d, err)
		}
		if st.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(d)
			if err != nil {
				return fmt.Errorf("host %s: %w", d, err)
			}
			if err := symlinkIn(root, target, d); err != nil {
				return err
			}
			continue
		}
		if !st.IsDir() {
			continue
		}
		m, err := cloneTree(unix.AT_FDCWD, d, attrRO)
		if err != nil {
			return fmt.Errorf("bind %s: %w", d, err)
		}
		if err := attach(root, m, d, true); err != nil {
			return err
		}
	}
	return nil
}

// mountedAt reports whether the spec mounts something exactly at p.
func mountedAt(s *spec.Spec, p string) bool {
	for _, m := range s.Mounts {
		if path.Clean(m.Dst) == path.Clean(p) && m.Kind != spec.Symlink {
			return true
		}
	}
	return false
}

func mountTmpfsAt(root int, dst, mode string) error {
	m, err := newTmpfs(mode)
	if err != nil {
		return err
	}
	return attach(root, m, dst, true)
}

// applyMount adds one of the spec's mounts to the tree.
func applyMount(root int, m spec.Mount) error {
	switch m.Kind {
	case spec.Bind, spec.ROBind, spec.DevBind:
		dir, err := isDir(m.Src)
		if err != nil {
			if m.Optional && errors.Is(err, os.ErrNotExist) {
				return nil
			}
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("--%s %s: the source does not exist on the host: create it or fix the path", m.Kind, m.Src)
			}
			return fmt.Errorf("--%s %s: %w", m.Kind, m.Src, err)
		}
		attrs := uint64(attrSafe)
		switch m.Kind {
		case spec.ROBind:
			attrs = attrRO
		case spec.DevBind:
			attrs = unix.MOUNT_ATTR_NOSUID
		}
		t, err := cloneTree(unix.AT_FDCWD, m.Src, attrs)
		if err != nil {
			return fmt.Errorf("--%s %s: %w", m.Kind, m.Src, err)
		}
		return attach(root, t, m.Dst, dir)
	case spec.Tmpfs:
		return mountTmpfsAt(root, m.Dst, "0755")
	case spec.Dir:
		fd, err := ensure(root, m.Dst, true)
		if err != nil {
			return fmt.Errorf("dir %s: %w", m.Dst, err)
		}
		return unix.Close(fd)
	case spec.Symlink:
		return symlinkIn(root, m.Src, m.Dst)
	case spec.Hide:
		return hide(root, m.Dst)
	}
	return fmt.Errorf("mount %s: unknown kind %q", m.Dst, m.Kind)
}

// hide covers p with an empty read-only tmpfs, or a file with an empty
// read-only file, as firejail's blacklist does.
func hide(root int, p string) error {
	fd, err := openIn(root, p, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("hide %s: %w", p, err)
	}
	var st unix.Stat_t
	err = unix.Fstat(fd, &st)
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("hide %s: %w", p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return hideFile(root, p)
	}
	m, err := newFS("tmpfs", map[string]string{"mode": "0000", "size": "4k"}, attrRO|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return err
	}
	return attach(root, m, p, true)
}

// hideFile binds an empty, unreadable file over the file p.
func hideFile(root int, p string) error {
	t, err := newTmpfs("0755")
	if err != nil {
		return err
	}
	f, err := unix.Openat(t, "empty", unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(t)
		return fmt.Errorf("hide %s: %w", p, err)
	}
	unix.Close(f)
	m, err := cloneTree(t, "empty", attrRO|unix.MOUNT_ATTR_NOEXEC)
	unix.Close(t)
	if err != nil {
		return fmt.Errorf("hide %s: %w", p, err)
	}
	return attach(root, m, p, false)
}

// mountProc mounts a fresh /proc for the sandbox's PID namespace. It must
// happen while the host's /proc is still visible in the mount namespace,
// since the kernel only lets a user namespace mount a procfs it could see
// fully anyway. The kernel's knobs stay read-only, as in bubblewrap.
func mountProc(root int) error {
	m, err := newFS("proc", nil, attrSafe|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	if err := attach(root, m, "/proc", true); err != nil {
		return err
	}
	for _, p := range []string{"sys", "sysrq-trigger", "irq", "bus", "fs"} {
		fd, err := openIn(root, "/proc/"+p, 0)
		if err != nil {
			continue
		}
		var st unix.Stat_t
		unix.Fstat(fd, &st)
		unix.Close(fd)
		t, err := cloneTree(root, "proc/"+p, attrRO|unix.MOUNT_ATTR_NOEXEC)
		if err != nil {
			return fmt.Errorf("read-only /proc/%s: %w", p, err)
		}
		if err := attach(root, t, "/proc/"+p, st.Mode&unix.S_IFMT == unix.S_IFDIR); err != nil {
			return err
		}
	}
	return nil
}

// mountSys gives the sandbox /sys only when asked, read-only: a fresh
// sysfs where the sandbox owns its network namespace (it then shows only
// the sandbox's interfaces), else the host's, bound read-only.
func mountSys(root int, s *spec.Spec) error {
	if s.Sys != "ro" {
		return nil
	}
	var m int
	var err error
	if s.Net.Mode != spec.NetHost {
		m, err = newFS("sysfs", nil, attrRO|unix.MOUNT_ATTR_NOEXEC)
	} else {
		m, err = cloneTree(unix.AT_FDCWD, "/sys", attrRO|unix.MOUNT_ATTR_NOEXEC)
	}
	if err != nil {
		return fmt.Errorf("mount /sys: %w", err)
	}
	return attach(root, m, "/sys", true)
}
