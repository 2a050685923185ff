package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// The root is built with the new mount API: every filesystem is made or
// cloned as a detached mount, given its flags (read-only, nosuid, nodev)
// while still detached, and only then attached into the detached root tree
// at a destination found with RESOLVE_IN_ROOT. Nothing is ever writable
// where it should not be, not even for an instant, and no host path is
// covered while sources are still being looked up.

// Attribute sets used throughout.
const (
	attrSafe = unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
	attrRO   = attrSafe | unix.MOUNT_ATTR_RDONLY
)

// newFS creates a detached mount of a fresh filesystem of type fstype.
func newFS(fstype string, options map[string]string, attrs int) (int, error) {
	fs, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen %s: %w", fstype, err)
	}
	defer unix.Close(fs)
	for k, v := range options {
		if v == "" {
			err = unix.FsconfigSetFlag(fs, k)
		} else {
			err = unix.FsconfigSetString(fs, k, v)
		}
		if err != nil {
			return -1, fmt.Errorf("%s option %s=%s: %w", fstype, k, v, err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, fmt.Errorf("create %s: %w", fstype, err)
	}
	m, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return -1, fmt.Errorf("fsmount %s: %w", fstype, err)
	}
	return m, nil
}

// newTmpfs is a detached tmpfs with the given mode.
func newTmpfs(mode string) (int, error) {
	return newFS("tmpfs", map[string]string{"mode": mode}, attrSafe)
}

// cloneTree makes a detached copy of the mount tree at src (dirfd-relative
// when dirfd is not AT_FDCWD), submounts included, with the attributes set
// recursively and propagation cut, so host mount events stay outside.
func cloneTree(dirfd int, src string, attrs uint64) (int, error) {
	fd, err := unix.OpenTree(dirfd, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return -1, err
	}
	if err := setAttr(fd, attrs, true); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// setAttr sets mount attributes on the mount fd (and its submounts) and
// makes it private.
func setAttr(fd int, attrs uint64, recursive bool) error {
	flags := uint(unix.AT_EMPTY_PATH)
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	a := unix.MountAttr{Attr_set: attrs, Propagation: unix.MS_PRIVATE}
	if err := unix.MountSetattr(fd, "", flags, &a); err != nil {
		return fmt.Errorf("mount_setattr: %w", err)
	}
	return nil
}

// openIn opens p (absolute, as seen inside) beneath root as an O_PATH fd,
// resolving symlinks as if root were /: a symlink in a bound directory can
// never lead a destination out of the sandbox's tree.
func openIn(root int, p string, flags uint64) (int, error) {
	rel := strings.TrimPrefix(path.Clean("/"+p), "/")
	if rel == "" {
		rel = "."
	}
	return unix.Openat2(root, rel, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC | flags,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
}

// ensure returns an O_PATH fd for p beneath root, creating it (and its
// parents, as directories) when missing: a directory if dir, else an empty
// file to bind a file over.
func ensure(root int, p string, dir bool) (int, error) {
	p = path.Clean("/" + p)
	flags := uint64(0)
	if dir {
		flags = unix.O_DIRECTORY
	}
	fd, err := openIn(root, p, flags)
	if err == nil || !errors.Is(err, unix.ENOENT) || p == "/" {
		return fd, err
	}
	parent, err := ensure(root, path.Dir(p), true)
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	// The parent fd is O_PATH; create through its /proc-free path: mkdirat
	// and openat accept O_PATH directory fds.
	name := path.Base(p)
	if dir {
		err = unix.Mkdirat(parent, name, 0o755)
	} else {
		var f int
		f, err = unix.Openat(parent, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o644)
		if err == nil {
			unix.Close(f)
		}
	}
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, fmt.Errorf("create %s: %w", p, err)
	}
	return openIn(root, p, flags)
}

// attach moves the detached mount m onto dst beneath root and closes m.
func attach(root, m int, dst string, dir bool) error {
	defer unix.Close(m)
	t, err := ensure(root, dst, dir)
	if err != nil {
		return fmt.Errorf("mount %s: %w", dst, err)
	}
	defer unix.Close(t)
	if err := unix.MoveMount(m, "", t, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount %s: %w", dst, err)
	}
	return nil
}

// symlinkIn creates the symlink p -> target beneath root.
func symlinkIn(root int, target, p string) error {
	parent, err := ensure(root, path.Dir(path.Clean("/"+p)), true)
	if err != nil {
		return err
	}
	defer unix.Close(parent)
	if err := unix.Symlinkat(target, parent, path.Base(p)); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("symlink %s: %w", p, err)
	}
	return nil
}

// isDir reports whether the host path p (after symlinks) is a directory.
func isDir(p string) (bool, error) {
	st, err := os.Stat(p)
	if err != nil {
		return false, err
	}
	return st.IsDir(), nil
}
