package store

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ResolveUser turns an image's User ("1000", "1000:1000", "app", "app:staff",
// "" for root) into ids, reading /etc/passwd and /etc/group from the top-most
// layer that has them, as the image's merged root would show them.
func (s *Store) ResolveUser(img Image, user string) (uid, gid uint32, err error) {
	if user == "" {
		return 0, 0, nil
	}
	u, g, hasGroup := strings.Cut(user, ":")
	var primary uint32
	uid, primary, err = s.lookupID(img, "etc/passwd", u, true)
	if err != nil {
		return 0, 0, err
	}
	gid = primary
	if hasGroup {
		if gid, _, err = s.lookupID(img, "etc/group", g, false); err != nil {
			return 0, 0, err
		}
	}
	return uid, gid, nil
}

// lookupID resolves a name or number in a passwd-style file. For passwd it
// also returns the user's primary group (the number's own value when the
// user has no entry).
func (s *Store) lookupID(img Image, file, name string, passwd bool) (id, group uint32, err error) {
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		id = uint32(n)
		if !passwd {
			return id, id, nil
		}
		// A numeric user's group is its passwd entry's, else 0 as in docker.
		group = 0
		if f, ok := s.topFile(img, file); ok {
			if fields, ok := findEntry(f, func(f []string) bool { return f[2] == name }); ok {
				if g, err := strconv.ParseUint(fields[3], 10, 32); err == nil {
					group = uint32(g)
				}
			}
		}
		return id, group, nil
	}
	f, ok := s.topFile(img, file)
	if !ok {
		return 0, 0, fmt.Errorf("image user %q: the image has no /%s", name, file)
	}
	fields, ok := findEntry(f, func(f []string) bool { return f[0] == name })
	if !ok {
		return 0, 0, fmt.Errorf("image user %q: not in the image's /%s", name, file)
	}
	n, err := strconv.ParseUint(fields[2], 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("image user %q: bad /%s entry", name, file)
	}
	if passwd {
		g, err := strconv.ParseUint(fields[3], 10, 32)
		if err != nil {
			return 0, 0, fmt.Errorf("image user %q: bad /%s entry", name, file)
		}
		return uint32(n), uint32(g), nil
	}
	return uint32(n), uint32(n), nil
}

// topFile opens rel in the highest layer that holds it as a regular file,
// resolving it inside the layer so a symlinked /etc cannot point at the host.
func (s *Store) topFile(img Image, rel string) (*os.File, bool) {
	for i := len(img.Layers) - 1; i >= 0; i-- {
		dir, err := s.LayerDir(img.Layers[i])
		if err != nil {
			continue
		}
		root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		fd, err := unix.Openat2(root, rel, &unix.OpenHow{
			Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW,
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
		})
		unix.Close(root)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return nil, false
		}
		f := os.NewFile(uintptr(fd), rel)
		if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
			f.Close()
			return nil, false // a whiteout or something else hides it
		}
		return f, true
	}
	return nil, false
}

func findEntry(f *os.File, match func([]string) bool) ([]string, bool) {
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= 4 && match(fields) {
			return fields, true
		}
	}
	return nil, false
}
