package sandbox

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// devNodes are the host device nodes every sandbox gets, as in bubblewrap's --dev.
var devNodes = []string{"null", "zero", "full", "random", "urandom", "tty"}

// mountDev builds a minimal /dev: the harmless nodes bound from the host
// (a user namespace cannot mknod), a private devpts with its own ptmx, a
// private /dev/shm, and the usual links into /proc/self/fd.
func mountDev(root int) error {
	dev, err := newFS("tmpfs", map[string]string{"mode": "0755"}, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return fmt.Errorf("mount /dev: %w", err)
	}
	if err := attach(root, dev, "/dev", true); err != nil {
		return err
	}
	for _, n := range devNodes {
		m, err := cloneTree(unix.AT_FDCWD, "/dev/"+n, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC)
		if err != nil {
			return fmt.Errorf("bind /dev/%s: %w", n, err)
		}
		if err := attach(root, m, "/dev/"+n, false); err != nil {
			return err
		}
	}
	pts, err := newFS("devpts", map[string]string{"newinstance": "", "ptmxmode": "0666", "mode": "0620"}, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return fmt.Errorf("mount /dev/pts: %w", err)
	}
	if err := attach(root, pts, "/dev/pts", true); err != nil {
		return err
	}
	shm, err := newTmpfs("1777")
	if err != nil {
		return err
	}
	if err := attach(root, shm, "/dev/shm", true); err != nil {
		return err
	}
	for link, target := range map[string]string{
		"/dev/ptmx":   "pts/ptmx",
		"/dev/fd":     "/proc/self/fd",
		"/dev/stdin":  "/proc/self/fd/0",
		"/dev/stdout": "/proc/self/fd/1",
		"/dev/stderr": "/proc/self/fd/2",
		"/dev/core":   "/proc/kcore",
	} {
		if err := symlinkIn(root, target, link); err != nil {
			return err
		}
	}
	return nil
}
