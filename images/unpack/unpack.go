// Package unpack extracts one image layer, a tar stream, into a directory as
// an unprivileged user, so that the directory can serve as an overlay lower.
//
// A layer comes from a registry or an archive nobody vetted, so every entry
// is resolved inside the layer directory as if it were the root (openat2
// RESOLVE_IN_ROOT): `..` entries are refused, absolute names and symlinks are
// taken relative to the layer, hard links must point at a file already
// unpacked in the same layer. Device nodes are skipped (an unprivileged user
// cannot make them, and a sandbox has no use for an image's devices). OCI
// whiteouts become the form both the kernel's overlay (mounted with
// userxattr) and fuse-overlayfs read: a 0/0 character device for a deleted
// name, which the kernel lets anyone create, and the user.overlay.opaque
// xattr for an opaque directory.
package unpack

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// OpaqueXattr marks a directory whose lower layers are hidden; it is the name
// the kernel's overlay reads when mounted with userxattr, and fuse-overlayfs
// reads it too.
const OpaqueXattr = "user.overlay.opaque"

const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// Options says how ownership is treated and where notes go.
type Options struct {
	// Chown keeps the archive's owners. Only meaningful when the caller runs
	// in a user namespace that maps them (a subordinate id range); otherwise
	// every file belongs to the caller and set-id bits are dropped.
	Chown bool
	// Note receives one line for each thing the layer asked for and did not
	// get (device nodes, extended attributes). Nil discards them.
	Note func(string)
}

// Layer extracts the tar stream r into dir, an existing empty directory.
// An error means the layer is unusable and dir should be thrown away.
func Layer(r io.Reader, dir string, opt Options) error {
	root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open layer directory %s: %w", dir, err)
	}
	defer unix.Close(root)
	x := &extractor{root: root, opt: opt, dirs: map[string]*tar.Header{}}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read layer: %w", err)
		}
		if err := x.entry(hdr, tr); err != nil {
			return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
		}
	}
	return x.finishDirs()
}

type extractor struct {
	root       int
	opt        Options
	dirs       map[string]*tar.Header // final metadata, applied once all entries are in
	xattrNoted bool
	foldNoted  bool
}

func (x *extractor) note(format string, args ...any) {
	if x.opt.Note != nil {
		x.opt.Note(fmt.Sprintf(format, args...))
	}
}

// CleanName turns an archive name into a path relative to the layer root.
// Absolute names are taken relative to the layer (as a container sees them);
// a `..` component is refused rather than guessed at.
func CleanName(name string) (string, error) {
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", fmt.Errorf("name leaves the layer (contains ..)")
		}
	}
	p := path.Clean("/" + name)
	return strings.TrimPrefix(p, "/"), nil
}

func (x *extractor) entry(hdr *tar.Header, body io.Reader) error {
	name, err := CleanName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "" {
		// The layer root itself ("./"): its directory is ours, keep it as made.
		return nil
	}
	if len(hdr.PAXRecords) > 0 && !x.xattrNoted {
		for k := range hdr.PAXRecords {
			if strings.HasPrefix(k, "SCHILY.xattr.") {
				x.xattrNoted = true
				x.note("extended attributes in the layer are not kept")
				break
			}
		}
	}
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")

	if strings.HasPrefix(base, whiteoutPrefix) {
		return x.whiteout(dir, base)
	}

	parent, err := x.mkdirAll(dir)
	if err != nil {
		return err
	}
	defer unix.Close(parent)

	if err := x.clear(parent, base, hdr.Typeflag == tar.TypeDir); err != nil {
		return err
	}
	mode := uint32(hdr.Mode) & 0o7777
	if !x.opt.Chown {
		mode &^= unix.S_ISUID | unix.S_ISGID
	}

	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(parent, base, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("mkdir: %w", err)
		}
		x.dirs[name] = hdr
		return nil
	case tar.TypeReg:
		if err := x.regular(parent, base, body, mode); err != nil {
			return err
		}
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, parent, base); err != nil {
			return fmt.Errorf("symlink: %w", err)
		}
	case tar.TypeLink:
		if err := x.hardlink(parent, base, hdr.Linkname); err != nil {
			return err
		}
		return nil // the link shares the target's metadata
	case tar.TypeChar, tar.TypeBlock:
		if hdr.Typeflag == tar.TypeChar && hdr.Devmajor == 0 && hdr.Devminor == 0 {
			// Already an overlay whiteout (a layer exported from an overlay).
			return mkWhiteout(parent, base)
		}
		x.note("skipped device node /%s", name)
		return nil
	case tar.TypeFifo:
		if err := unix.Mknodat(parent, base, unix.S_IFIFO|mode, 0); err != nil {
			return fmt.Errorf("mkfifo: %w", err)
		}
	case tar.TypeXGlobalHeader:
		return nil
	default:
		x.note("skipped /%s of unknown type %q", name, hdr.Typeflag)
		return nil
	}
	return x.meta(parent, base, hdr, mode)
}

func (x *extractor) regular(parent int, base string, body io.Reader, mode uint32) error {
	fd, err := unix.Openat(parent, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	f := os.NewFile(uintptr(fd), base)
	defer f.Close()
	if err := copySparse(f, body); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// copySparse writes r to f leaving holes where r has blocks of zeros, so a
// layer's sparse or zero-filled files (a tar can describe terabytes of
// holes in a few bytes) do not fill the disk.
func copySparse(f *os.File, r io.Reader) error {
	buf := make([]byte, 64<<10)
	var off int64
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			chunk := buf[:n]
			if !allZero(chunk) {
				if _, werr := f.WriteAt(chunk, off); werr != nil {
					return werr
				}
			}
			off += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return f.Truncate(off)
		}
		if err != nil {
			return err
		}
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// hardlink links base to an already unpacked file of this layer. The target's
// directory is resolved in the layer root and its last component is never
// followed, so the link cannot reach a file outside the layer.
func (x *extractor) hardlink(parent int, base, linkname string) error {
	target, err := CleanName(linkname)
	if err != nil {
		return fmt.Errorf("hard link target: %w", err)
	}
	if target == "" {
		return fmt.Errorf("hard link to the layer root")
	}
	tdir, tbase := path.Split(target)
	tfd, err := x.open(strings.TrimSuffix(tdir, "/"))
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", linkname, err)
	}
	defer unix.Close(tfd)
	var st unix.Stat_t
	if err := unix.Fstatat(tfd, tbase, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("hard link target %q is not in the layer: %w", linkname, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("hard link target %q is a directory", linkname)
	}
	if err := unix.Linkat(tfd, tbase, parent, base, 0); err != nil {
		return fmt.Errorf("hard link: %w", err)
	}
	return nil
}

// whiteout records a deletion from the layers below.
func (x *extractor) whiteout(dir, base string) error {
	parent, err := x.mkdirAll(dir)
	if err != nil {
		return err
	}
	defer unix.Close(parent)
	if base == whiteoutOpaque {
		fd, err := unix.Openat(parent, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.Fsetxattr(fd, OpaqueXattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("mark opaque directory (the store's filesystem needs user xattrs): %w", err)
		}
		return nil
	}
	gone := strings.TrimPrefix(base, whiteoutPrefix)
	// ".wh..." would delete the layer's parent directory: the store.
	if gone == "" || gone == "." || gone == ".." || strings.HasPrefix(gone, whiteoutPrefix) {
		return fmt.Errorf("bad whiteout name")
	}
	if err := x.clear(parent, gone, false); err != nil {
		return err
	}
	return mkWhiteout(parent, gone)
}

func mkWhiteout(parent int, name string) error {
	if err := unix.Mknodat(parent, name, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("make whiteout: %w", err)
	}
	return nil
}

// meta gives a non-directory its owner, mode and times.
func (x *extractor) meta(parent int, base string, hdr *tar.Header, mode uint32) error {
	if x.opt.Chown {
		err := unix.Fchownat(parent, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW)
		if errors.Is(err, unix.EINVAL) {
			// An owner beyond the mapped range: the file becomes root's.
			if !x.foldNoted {
				x.foldNoted = true
				x.note("owners beyond your subordinate id range (%d:%d of /%s) became root", hdr.Uid, hdr.Gid, hdr.Name)
			}
			err = unix.Fchownat(parent, base, 0, 0, unix.AT_SYMLINK_NOFOLLOW)
		}
		if err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if hdr.Typeflag != tar.TypeSymlink {
		if err := unix.Fchmodat(parent, base, mode, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	return setTimes(parent, base, hdr)
}

func setTimes(parent int, base string, hdr *tar.Header) error {
	at := hdr.AccessTime
	if at.IsZero() {
		at = hdr.ModTime
	}
	ts := []unix.Timespec{timespec(at), timespec(hdr.ModTime)}
	if err := unix.UtimesNanoAt(parent, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

func timespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{Sec: 0, Nsec: unix.UTIME_OMIT}
	}
	return unix.NsecToTimespec(t.UnixNano())
}

// finishDirs applies directory modes and times last, deepest first, so a
// read-only directory still received its entries and its mtime stays.
func (x *extractor) finishDirs() error {
	names := make([]string, 0, len(x.dirs))
	for n := range x.dirs {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return strings.Count(names[i], "/") > strings.Count(names[j], "/") })
	for _, name := range names {
		hdr := x.dirs[name]
		dir, base := path.Split(name)
		parent, err := x.open(strings.TrimSuffix(dir, "/"))
		if err != nil {
			return fmt.Errorf("directory %q: %w", name, err)
		}
		var st unix.Stat_t
		if err := unix.Fstatat(parent, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			// Replaced by a later entry of another type.
			unix.Close(parent)
			continue
		}
		mode := uint32(hdr.Mode) & 0o7777
		if !x.opt.Chown {
			mode &^= unix.S_ISUID | unix.S_ISGID
		}
		err = x.meta(parent, base, hdr, mode)
		unix.Close(parent)
		if err != nil {
			return fmt.Errorf("directory %q: %w", name, err)
		}
	}
	return nil
}

// open resolves rel (a cleaned relative path) as a directory inside the layer.
func (x *extractor) open(rel string) (int, error) {
	if rel == "" {
		rel = "."
	}
	return unix.Openat2(x.root, rel, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	})
}

// mkdirAll returns a descriptor of rel inside the layer, creating missing
// directories. Each prefix is resolved from the layer root, so a symlink met
// on the way is followed the way the container would follow it: inside.
func (x *extractor) mkdirAll(rel string) (int, error) {
	fd, err := x.open(rel)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	cur := ""
	for _, c := range strings.Split(rel, "/") {
		next := path.Join(cur, c)
		fd, err := x.open(next)
		if errors.Is(err, unix.ENOENT) {
			parent, perr := x.open(cur)
			if perr != nil {
				return -1, perr
			}
			err = unix.Mkdirat(parent, c, 0o755)
			unix.Close(parent)
			if err != nil {
				return -1, fmt.Errorf("mkdir %s: %w", next, err)
			}
			fd, err = x.open(next)
		}
		if err != nil {
			return -1, fmt.Errorf("directory %s: %w", next, err)
		}
		unix.Close(fd)
		cur = next
	}
	return x.open(rel)
}

// clear removes what an earlier entry left at parent/base, unless both it and
// the new entry are directories (then the directory is kept and merged).
func (x *extractor) clear(parent int, base string, newIsDir bool) error {
	var st unix.Stat_t
	err := unix.Fstatat(parent, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if newIsDir {
			return nil
		}
		return RemoveAt(parent, base)
	}
	return unix.Unlinkat(parent, base, 0)
}

// RemoveAt removes parent/name and everything below it without following
// symlinks, making directories writable on the way (layers may hold
// read-only directories).
func RemoveAt(parent int, name string) error {
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return fmt.Errorf("remove %q: not a name in its directory", name)
	}
	err := unix.Unlinkat(parent, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	_ = unix.Fchmodat(parent, name, 0o700, 0)
	fd, err := unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(fd), name)
	for {
		names, rerr := d.Readdirnames(256)
		for _, n := range names {
			if err := RemoveAt(fd, n); err != nil {
				d.Close()
				return err
			}
		}
		if rerr != nil {
			break
		}
	}
	d.Close()
	return unix.Unlinkat(parent, name, unix.AT_REMOVEDIR)
}

// RemoveAll removes a whole unpacked tree, read-only directories included.
func RemoveAll(dir string) error {
	dir = path.Clean(dir)
	parent, err := unix.Open(path.Dir(dir), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	defer unix.Close(parent)
	if err := RemoveAt(parent, path.Base(dir)); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}
