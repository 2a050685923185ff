package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sbx-sandbox/sbx/spec"
)

// mountRoot returns the root filesystem of the kinds other than RootHost
// (an overlay, a rootfs directory, an image's layers) as a detached mount
// (fsmount(2), open_tree(2) OPEN_TREE_CLONE): rootfs.go builds the whole new
// root as a detached tree, attaching /proc, /dev, /tmp and the spec's mounts
// into it with move_mount(2), and never covers a host path, so every host
// path stays resolvable while the root is built. init runs it in the
// sandbox's user and mount namespaces with all capabilities there, before
// pivot_root.
func mountRoot(s *spec.Spec) (*os.File, error) {
	r := s.Root
	var fd int
	var err error
	switch {
	case r.Kind == spec.RootRootfs && !r.Overlay:
		fd, err = cloneTree(unix.AT_FDCWD, r.Dir, attrRO)
		if err != nil {
			err = fmt.Errorf("--rootfs %s: %w", r.Dir, err)
		}
	case r.Kind == spec.RootRootfs, r.Kind == spec.RootOverlay && r.Dir != "":
		fd, err = overlayRoot(s, []string{r.Dir}, ownedByCaller(r.Dir))
	case r.Kind == spec.RootImage:
		// The store's layers belong to the caller.
		fd, err = overlayRoot(s, r.Lowers, true)
	case r.Kind == spec.RootOverlay:
		fd, err = hostOverlay(s)
	default:
		err = fmt.Errorf("root kind %q is not supported", r.Kind)
	}
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "root"), nil
}

// uppers is where the overlays' writes go: a tmpfs that vanishes with the
// sandbox, or the --persist directory.
type uppers struct {
	persist string
	scratch int    // detached tmpfs, when not persisting
	shownAt string // where the scratch tmpfs is attached for fuse-overlayfs
}

func newUppers(r spec.Root) (*uppers, error) {
	if r.Persist != "" {
		return &uppers{persist: r.Persist, scratch: -1}, nil
	}
	t, err := newTmpfs("0755")
	if err != nil {
		return nil, fmt.Errorf("overlay upper tmpfs: %w", err)
	}
	return &uppers{scratch: t}, nil
}

func (u *uppers) close() {
	if u.scratch >= 0 {
		unix.Close(u.scratch)
	}
}

// dirs makes the upper and work directories of the overlay named name (""
// for a whole root) and returns them as paths: host paths under --persist,
// else paths through the scratch tmpfs's descriptor, or, once shown at
// MountDir (fuse-overlayfs resolves its directories with realpath), paths
// under MountDir.
func (u *uppers) dirs(name string) (upper, work string, err error) {
	if u.persist != "" {
		upper = filepath.Join(u.persist, "upper", name)
		work = filepath.Join(u.persist, "work", name)
		for _, d := range []string{upper, work} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return "", "", fmt.Errorf("--persist: %w", err)
			}
		}
		return upper, work, nil
	}
	base := fmt.Sprintf("/proc/self/fd/%d", u.scratch)
	for _, d := range []string{"upper", "work"} {
		if err := os.MkdirAll(filepath.Join(base, d, name), 0o755); err != nil {
			return "", "", fmt.Errorf("overlay upper tmpfs: %w", err)
		}
	}
	if u.shownAt != "" {
		base = u.shownAt
	}
	return filepath.Join(base, "upper", name), filepath.Join(base, "work", name), nil
}

// show attaches a copy of the scratch tmpfs at dir; hide takes it away.
func (u *uppers) show(dir string) error {
	if u.scratch < 0 {
		return nil
	}
	if dir == "" {
		return fmt.Errorf("fuse-overlayfs needs a directory of yours to mount its upper on (mnt/ of the image store): set HOME or XDG_DATA_HOME, or give --store DIR")
	}
	c, err := unix.OpenTree(u.scratch, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("fuse-overlayfs upper: %w", err)
	}
	defer unix.Close(c)
	if err := unix.MoveMount(c, "", unix.AT_FDCWD, dir, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("fuse-overlayfs upper at %s: %w", dir, err)
	}
	return nil
}

func (u *uppers) hide(dir string) {
	if u.scratch >= 0 {
		unix.Unmount(dir, unix.MNT_DETACH)
	}
}

// overlayRoot stacks lowers (top first) with a writable upper and returns
// the detached mount.
func overlayRoot(s *spec.Spec, lowers []string, owned bool) (int, error) {
	u, err := newUppers(s.Root)
	if err != nil {
		return -1, err
	}
	defer u.close()
	return mountOverlay(s, u, lowers, "", owned)
}

// hostOverlay is --overlay without a rootfs: a tmpfs root with each of the
// host's system directories as the lower of its own overlay, so the sandbox
// can change /usr or /etc and the host never sees it.
func hostOverlay(s *spec.Spec) (int, error) {
	u, err := newUppers(s.Root)
	if err != nil {
		return -1, err
	}
	defer u.close()
	root, err := newTmpfs("0755")
	if err != nil {
		return -1, err
	}
	fail := func(err error) (int, error) {
		unix.Close(root)
		return -1, err
	}
	for _, d := range hostSystemDirs {
		st, err := os.Lstat(d)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fail(fmt.Errorf("host %s: %w", d, err))
		}
		if st.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(d)
			if err != nil {
				return fail(fmt.Errorf("host %s: %w", d, err))
			}
			if err := symlinkIn(root, target, d); err != nil {
				return fail(err)
			}
			continue
		}
		if !st.IsDir() {
			continue
		}
		m, err := mountOverlay(s, u, []string{d}, strings.TrimPrefix(d, "/"), false)
		if err != nil {
			return fail(err)
		}
		if err := attach(root, m, d, true); err != nil {
			return fail(err)
		}
	}
	// $HOME exists, empty, as in the default root; it lives and dies with
	// the root's tmpfs.
	if s.Home != "" {
		fd, err := ensure(root, s.Home, true)
		if err != nil {
			return fail(fmt.Errorf("home %s: %w", s.Home, err))
		}
		unix.Close(fd)
	}
	return root, nil
}

// mountOverlay makes one detached overlay with the chosen driver. owned says
// the lowers belong to the caller: the kernel's overlay then gives the full
// semantics at kernel speed; lowers of other users (the host's /usr) are
// only fully writable through fuse-overlayfs, which shows every file as the
// sandbox user's.
func mountOverlay(s *spec.Spec, u *uppers, lowers []string, name string, owned bool) (int, error) {
	kernel := func() (int, error) { return kernelOverlay(u, lowers, name) }
	fuse := func() (int, error) { return fuseOverlay(s, u, lowers, name) }
	want, err := u.driver(s.Root.OverlayDriver)
	if err != nil {
		return -1, err
	}
	var m int
	switch want {
	case "kernel":
		m, err = kernel()
	case "fuse":
		m, err = fuse()
	default:
		first, second := kernel, fuse
		firstName, secondName := "the kernel's overlay", "fuse-overlayfs"
		want, other := "kernel", "fuse"
		if !owned {
			first, second = second, first
			firstName, secondName = secondName, firstName
			want, other = other, want
		}
		m, err1 := first()
		if err1 != nil {
			var err2 error
			if m, err2 = second(); err2 != nil {
				return -1, fmt.Errorf("overlay: neither %s (%v) nor %s (%v) works: the kernel's needs Linux 5.11 or later; fuse-overlayfs needs the fuse-overlayfs package and a /dev/fuse you can open (mode 0666)", firstName, err1, secondName, err2)
			}
			want = other
		}
		return recorded(u, m, want)
	}
	if err != nil {
		return -1, err
	}
	return recorded(u, m, want)
}

// recorded returns the mount m once its driver is recorded.
func recorded(u *uppers, m int, driver string) (int, error) {
	if err := u.record(driver); err != nil {
		unix.Close(m)
		return -1, err
	}
	return m, nil
}

// persistDriverFile records in a --persist directory the driver that wrote
// it: fuse-overlayfs marks opaque directories its own way, which the
// kernel's overlay does not read, so a directory stays with its driver.
const persistDriverFile = "driver"

// driver is the driver to use given the one asked for: a --persist
// directory's own, when it has one.
func (u *uppers) driver(asked string) (string, error) {
	if u.persist == "" {
		return asked, nil
	}
	b, err := os.ReadFile(filepath.Join(u.persist, persistDriverFile))
	if err != nil {
		return asked, nil
	}
	rec := strings.TrimSpace(string(b))
	if rec != "kernel" && rec != "fuse" {
		return asked, nil
	}
	if asked != "" && asked != "auto" && asked != rec {
		return "", fmt.Errorf("--persist %s was written through the %s driver, whose whiteouts and opaque directories the other does not read: use --overlay-driver %s or another directory", u.persist, rec, rec)
	}
	return rec, nil
}

func (u *uppers) record(driver string) error {
	if u.persist == "" {
		return nil
	}
	p := filepath.Join(u.persist, persistDriverFile)
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	if err := os.WriteFile(p, []byte(driver+"\n"), 0o644); err != nil {
		return fmt.Errorf("--persist: %w", err)
	}
	return nil
}

// kernelOverlay mounts the kernel's overlay with userxattr, which is what
// lets a user namespace mount it (Linux 5.11+) and what makes it read the
// unpacker's whiteouts and user.overlay.opaque.
func kernelOverlay(u *uppers, lowers []string, name string) (int, error) {
	upper, work, err := u.dirs(name)
	if err != nil {
		return -1, err
	}
	fs, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("kernel overlay: %w", err)
	}
	defer unix.Close(fs)
	// fsconfig takes strings of at most 256 bytes: every directory goes by
	// a descriptor's short /proc/self/fd path, and the lowers one at a time
	// where the kernel can (lowerdir+, Linux 6.8), joined otherwise.
	paths, closeAll, err := fdPaths(append([]string{upper, work}, lowers...))
	if err != nil {
		return -1, fmt.Errorf("kernel overlay: %w", err)
	}
	defer closeAll()
	for i, o := range []string{"upperdir", "workdir"} {
		if err := unix.FsconfigSetString(fs, o, paths[i]); err != nil {
			return -1, fmt.Errorf("kernel overlay %s: %w%s", o, err, fsLog(fs))
		}
	}
	lowerPaths := paths[2:]
	if err := unix.FsconfigSetString(fs, "lowerdir+", lowerPaths[0]); err == nil {
		for _, p := range lowerPaths[1:] {
			if err := unix.FsconfigSetString(fs, "lowerdir+", p); err != nil {
				return -1, fmt.Errorf("kernel overlay lower layer: %w%s", err, fsLog(fs))
			}
		}
	} else {
		fsLog(fs)
		joined := strings.Join(lowerPaths, ":")
		if len(joined) > 255 {
			return -1, fmt.Errorf("kernel overlay: %d layers are more than this kernel takes in one mount (Linux 6.8 takes any number)", len(lowers))
		}
		if err := unix.FsconfigSetString(fs, "lowerdir", joined); err != nil {
			return -1, fmt.Errorf("kernel overlay lowerdir: %w%s", err, fsLog(fs))
		}
	}
	if err := unix.FsconfigSetFlag(fs, "userxattr"); err != nil {
		return -1, fmt.Errorf("kernel overlay userxattr: %w%s", err, fsLog(fs))
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, fmt.Errorf("kernel overlay: %w%s", err, fsLog(fs))
	}
	m, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, attrSafe)
	if err != nil {
		return -1, fmt.Errorf("kernel overlay: %w", err)
	}
	return m, nil
}

// fdPaths opens each directory and names it by its descriptor.
func fdPaths(dirs []string) ([]string, func(), error) {
	var fds []int
	closeAll := func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	var paths []string
	for _, d := range dirs {
		fd, err := unix.Open(d, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("open %s: %w", d, err)
		}
		fds = append(fds, fd)
		paths = append(paths, fmt.Sprintf("/proc/self/fd/%d", fd))
	}
	return paths, closeAll, nil
}

// fsLog is what the kernel said about a refused filesystem configuration
// (it speaks through the fsopen descriptor, not the kernel log).
func fsLog(fs int) string {
	var msgs []string
	buf := make([]byte, 1024)
	for {
		n, err := unix.Read(fs, buf)
		if err != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	if len(msgs) == 0 {
		return ""
	}
	return " (" + strings.Join(msgs, "; ") + ")"
}

// fuseOverlay mounts a FUSE filesystem served by fuse-overlayfs. init opens
// /dev/fuse and makes the mount itself (detached, like every other mount of
// the root); fuse-overlayfs gets the connection as /dev/fd/N and serves it
// for the sandbox's life. It runs in a mount namespace of its own, copied
// from the host view before pivot_root, so that neither pivot_root nor the
// unmounting of the old root touches the paths it serves from, and it never
// looks anything up through the filesystem it serves.
func fuseOverlay(s *spec.Spec, u *uppers, lowers []string, name string) (int, error) {
	bin := s.Root.FuseOverlayfs
	if bin == "" {
		return -1, fmt.Errorf("fuse-overlayfs not found on the host")
	}
	dev, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return -1, fmt.Errorf("fuse-overlayfs: %w", err)
	}
	defer dev.Close()
	m, err := newFS("fuse", map[string]string{
		"source":              "fuse-overlayfs",
		"fd":                  strconv.Itoa(int(dev.Fd())),
		"rootmode":            "40000",
		"user_id":             strconv.Itoa(os.Getuid()),
		"group_id":            strconv.Itoa(os.Getgid()),
		"allow_other":         "",
		"default_permissions": "",
	}, attrSafe)
	if err != nil {
		return -1, fmt.Errorf("fuse-overlayfs: %w", err)
	}
	if u.scratch >= 0 {
		u.shownAt = s.Root.MountDir
		defer func() { u.shownAt = "" }()
	}
	upper, work, err := u.dirs(name)
	if err != nil {
		unix.Close(m)
		return -1, err
	}
	for _, p := range append([]string{upper, work}, lowers...) {
		if strings.ContainsAny(p, ",:") {
			unix.Close(m)
			return -1, fmt.Errorf("fuse-overlayfs cannot take a directory whose path has ',' or ':' (%s): move it or use --overlay-driver kernel", p)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,squash_to_uid=%d,squash_to_gid=%d",
		strings.Join(lowers, ":"), upper, work, s.UID, s.GID)
	cmd := exec.Command(bin, "-f", "-o", opts, "/dev/fd/3")
	cmd.ExtraFiles = []*os.File{dev}
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	errBuf := &tailBuffer{}
	cmd.Stderr = errBuf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWNS,
		Pdeathsig:  syscall.SIGKILL,
		Setpgid:    true,
	}
	// The daemon's mount namespace is a copy of init's: show it the tmpfs
	// upper at MountDir for the copy, and take it away from init again.
	if err := u.show(s.Root.MountDir); err != nil {
		unix.Close(m)
		return -1, err
	}
	err = cmd.Start()
	u.hide(s.Root.MountDir)
	if err != nil {
		unix.Close(m)
		return -1, fmt.Errorf("fuse-overlayfs: %w", err)
	}
	// The daemon holds the connection now: if it dies, the mount fails
	// with ENOTCONN instead of hanging.
	dev.Close()
	var st unix.Stat_t
	if err := unix.Fstat(m, &st); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return -1, fmt.Errorf("fuse-overlayfs: %w: %s", err, errBuf.String())
	}
	// Left running for the sandbox's life; init reaps it with the rest.
	cmd.Process.Release()
	return m, nil
}

// tailBuffer keeps the start of what a helper writes, for error messages,
// without ever blocking the helper.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	if len(t.b) < 512 {
		t.b = append(t.b, p[:min(len(p), 512-len(t.b))]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return strings.TrimSpace(string(t.b)) }

// ownedByCaller reports whether dir belongs to init's own uid, the caller.
func ownedByCaller(dir string) bool {
	var st unix.Stat_t
	return unix.Stat(dir, &st) == nil && int(st.Uid) == os.Getuid()
}
