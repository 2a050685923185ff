// Package userns computes a sandbox's id mappings and installs the ones
// that need privileged helpers (newuidmap/newgidmap for subordinate ranges).
package userns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"github.com/rootless-containers/rootlesskit/v3/pkg/parent/idtools"
)

// Mapping is one line of a uid_map or gid_map: Size ids from Inside map to Outside.
type Mapping struct {
	Inside, Outside, Size int
}

// Maps is the whole id mapping of a sandbox.
type Maps struct {
	UIDs, GIDs []Mapping
	// Helper is true when the maps need newuidmap/newgidmap: the kernel only
	// lets an unprivileged process map its own single id.
	Helper bool
}

// Own maps the caller's uid and gid to uid and gid inside, nothing else:
// what an unprivileged process may write to uid_map and gid_map itself.
func Own(uid, gid uint32) Maps {
	return Maps{
		UIDs: []Mapping{{Inside: int(uid), Outside: os.Getuid(), Size: 1}},
		GIDs: []Mapping{{Inside: int(gid), Outside: os.Getgid(), Size: 1}},
	}
}

// Auto maps the caller's own ids to uid and gid inside and fills every other
// id inside, from 0 up, with the caller's subordinate ranges, as podman's
// keep-id does: files the user owns stay the user's, and programs that
// switch users (package managers, image contents) find ids to switch to.
func Auto(uid, gid uint32) (Maps, error) {
	name := ""
	if u, err := user.LookupId(strconv.Itoa(os.Getuid())); err == nil {
		name = u.Username
	}
	subU, subG, err := idtools.GetSubIDRanges(os.Getuid(), name)
	if err != nil {
		return Maps{}, fmt.Errorf("--map-users auto: %v: add a range to /etc/subuid and /etc/subgid (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s)", err, name)
	}
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		if _, err := exec.LookPath(tool); err != nil {
			return Maps{}, fmt.Errorf("--map-users auto needs %s: install the uidmap package", tool)
		}
	}
	return Maps{
		UIDs:   keepID(int(uid), os.Getuid(), subU),
		GIDs:   keepID(int(gid), os.Getgid(), subG),
		Helper: true,
	}, nil
}

// keepID places own at inside and the subordinate ranges around it.
func keepID(inside, own int, sub []idtools.SubIDRange) []Mapping {
	m := []Mapping{{Inside: inside, Outside: own, Size: 1}}
	next := 0
	for _, r := range sub {
		start, length := r.Start, r.Length
		for length > 0 {
			if next == inside {
				next++
			}
			n := length
			if next < inside && next+n > inside {
				n = inside - next
			}
			m = append(m, Mapping{Inside: next, Outside: start, Size: n})
			next += n
			start += n
			length -= n
		}
	}
	return m
}

// Install writes the maps of process pid with newuidmap and newgidmap.
// It is only needed for Helper maps; Own maps are written by the kernel's
// clone path in the parent.
func (m Maps) Install(pid int) error {
	if err := runHelper("newuidmap", pid, m.UIDs); err != nil {
		return err
	}
	return runHelper("newgidmap", pid, m.GIDs)
}

func runHelper(tool string, pid int, maps []Mapping) error {
	args := []string{strconv.Itoa(pid)}
	for _, l := range maps {
		args = append(args, strconv.Itoa(l.Inside), strconv.Itoa(l.Outside), strconv.Itoa(l.Size))
	}
	out, err := exec.Command(tool, args...).CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("%s: %s: check /etc/subuid, /etc/subgid and that %s is setuid root", tool, msg, tool)
	}
	return nil
}

// SysProcIDMaps converts maps to the form os/exec writes itself.
func SysProcIDMaps(ms []Mapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(ms))
	for i, m := range ms {
		out[i] = syscall.SysProcIDMap{ContainerID: m.Inside, HostID: m.Outside, Size: m.Size}
	}
	return out
}

// Diagnose names the host setting that keeps unprivileged user namespaces
// from being created, reading sysctls below procSys (normally /proc/sys).
// It returns nil when none of the known settings is to blame.
func Diagnose(procSys string) error {
	read := func(name string) (string, bool) {
		b, err := os.ReadFile(procSys + "/" + name)
		if err != nil {
			return "", false
		}
		return strings.TrimSpace(string(b)), true
	}
	if v, ok := read("kernel/unprivileged_userns_clone"); ok && v == "0" {
		return errors.New("unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0): run 'sysctl -w kernel.unprivileged_userns_clone=1' as root")
	}
	if v, ok := read("user/max_user_namespaces"); ok && v == "0" {
		return errors.New("user namespaces are disabled (user.max_user_namespaces=0): run 'sysctl -w user.max_user_namespaces=15000' as root")
	}
	if v, ok := read("kernel/apparmor_restrict_unprivileged_userns"); ok && v == "1" {
		return errors.New("AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1): run 'sysctl -w kernel.apparmor_restrict_unprivileged_userns=0' as root, or give sbx an AppArmor profile with 'userns,'")
	}
	return nil
}
