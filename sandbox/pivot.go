package sandbox

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// pivotInto makes the detached tree root the root of the mount namespace
// and detaches the old root entirely, so nothing of the host is reachable
// through it: the tree is stacked on /, pivot_root(".", ".") swaps them,
// and the old root, now on top, is lazily unmounted. Never chroot: a
// chroot leaves the old root one escape away.
func pivotInto(root int, readOnly bool) error {
	if err := unix.MoveMount(root, "", unix.AT_FDCWD, "/", unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("attach the new root: %w", err)
	}
	if err := unix.Fchdir(root); err != nil {
		return fmt.Errorf("enter the new root: %w", err)
	}
	unix.Close(root)
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	if readOnly {
		// The root tmpfs itself is only a frame for the mounts in it.
		a := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(unix.AT_FDCWD, "/", 0, &a); err != nil {
			return fmt.Errorf("read-only /: %w", err)
		}
	}
	return nil
}
