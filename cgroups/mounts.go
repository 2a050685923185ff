package cgroups

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Hierarchy is one mounted cgroup hierarchy: the unified (v2) one, or a v1
// one with its controllers.
type Hierarchy struct {
	Version     int      // 1 or 2
	Mountpoint  string   // where it is mounted, e.g. /sys/fs/cgroup/memory
	Root        string   // the cgroup the mount shows at its top (not "/" inside a cgroup namespace)
	Controllers []string // v1: the controllers bound to it (memory, pids, ...); v2: filled from cgroup.controllers
}

// Has reports whether the hierarchy carries controller c.
func (h Hierarchy) Has(c string) bool {
	for _, x := range h.Controllers {
		if x == c {
			return true
		}
	}
	return false
}

// Dir is the directory of cgroup path p ("/a/b", as /proc/PID/cgroup shows
// it) in this hierarchy, or "" when the mount does not show that cgroup.
//
// Inside a cgroup namespace the kernel shows cgroups above the namespace's
// root as "/../x": those are not under the mount at all.
func (h Hierarchy) Dir(p string) string {
	if !strings.HasPrefix(p, "/") || filepath.Clean(p) != p && filepath.Clean(p)+"/" != p {
		return ""
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return ""
		}
	}
	rel, ok := strings.CutPrefix(p, h.Root)
	if !ok || (rel != "" && !strings.HasPrefix(rel, "/") && h.Root != "/") {
		return ""
	}
	return filepath.Join(h.Mountpoint, rel)
}

// parseMountinfo finds the cgroup hierarchies in a mountinfo file. Where a
// hierarchy is mounted twice the first mount wins.
func parseMountinfo(r io.Reader) ([]Hierarchy, error) {
	var hs []Hierarchy
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// 35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		var h Hierarchy
		switch g[0] {
		case "cgroup2":
			h = Hierarchy{Version: 2}
		case "cgroup":
			h = Hierarchy{Version: 1}
			for _, o := range strings.Split(g[2], ",") {
				switch {
				case o == "rw" || o == "ro" || strings.Contains(o, "="):
					// name=systemd hierarchies carry no controller
				case o == "clone_children" || o == "noprefix" || o == "xattr" || o == "cpuset_v2_mode" || o == "favordynmods":
				default:
					h.Controllers = append(h.Controllers, o)
				}
			}
		default:
			continue
		}
		h.Root, h.Mountpoint = unescape(f[3]), unescape(f[4])
		// The kernel writes absolute paths; anything else is no mount.
		if seen[f[2]] || !strings.HasPrefix(h.Mountpoint, "/") || !strings.HasPrefix(h.Root, "/") {
			continue
		}
		seen[f[2]] = true
		hs = append(hs, h)
	}
	return hs, sc.Err()
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var n int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &n); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseProcCgroup reads /proc/PID/cgroup: for v1 controllers their cgroup
// path, and under the key "" the unified (v2) path.
func parseProcCgroup(r io.Reader) (map[string]string, error) {
	m := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// 4:memory:/a/b   or   0::/a/b
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			m[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			m[c] = parts[2]
		}
	}
	return m, sc.Err()
}

// System is what the running kernel shows of cgroups to this process.
type System struct {
	Hierarchies []Hierarchy
	Own         map[string]string // this process's cgroup per controller, "" = unified
}

// Discover reads the mounted hierarchies and this process's own cgroups.
func Discover() (*System, error) {
	mi, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer mi.Close()
	hs, err := parseMountinfo(mi)
	if err != nil {
		return nil, fmt.Errorf("read /proc/self/mountinfo: %w", err)
	}
	pc, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	defer pc.Close()
	own, err := parseProcCgroup(pc)
	if err != nil {
		return nil, fmt.Errorf("read /proc/self/cgroup: %w", err)
	}
	for i := range hs {
		if hs[i].Version == 2 {
			hs[i].Controllers = readControllers(hs[i].Mountpoint)
		}
	}
	return &System{Hierarchies: hs, Own: own}, nil
}

// Unified returns the cgroup v2 hierarchy, if one is mounted.
func (s *System) Unified() (Hierarchy, bool) {
	for _, h := range s.Hierarchies {
		if h.Version == 2 {
			return h, true
		}
	}
	return Hierarchy{}, false
}

// V1 returns the v1 hierarchy that carries controller c, if one is mounted.
func (s *System) V1(c string) (Hierarchy, bool) {
	for _, h := range s.Hierarchies {
		if h.Version == 1 && h.Has(c) {
			return h, true
		}
	}
	return Hierarchy{}, false
}

// Mode names the layout for humans: "v2", "v1", "hybrid" or "none".
func (s *System) Mode() string {
	_, v2 := s.Unified()
	v1 := false
	for _, h := range s.Hierarchies {
		if h.Version == 1 && len(h.Controllers) > 0 {
			v1 = true
		}
	}
	switch {
	case v1 && v2:
		return "hybrid"
	case v1:
		return "v1"
	case v2:
		return "v2"
	}
	return "none"
}

func readControllers(dir string) []string {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

// Writable says where a sandbox's memory and pids cgroup would go for
// user, or why nowhere; it creates nothing.
func (s *System) Writable(user string) (where, why string) {
	if h, ok := s.Unified(); ok && h.Has("memory") && h.Has("pids") {
		if own, ok := s.Own[""]; ok {
			pdir := h.Dir(filepath.Dir(own))
			if pdir != "" && accessW(filepath.Join(pdir, "cgroup.procs")) {
				return pdir + " (cgroup v2, delegated)", ""
			}
			why = filepath.Dir(own) + " is not delegated"
		}
		if _, err := busAddress(); err == nil {
			return "a systemd transient scope (cgroup v2, user bus)", ""
		}
	}
	var dirs, missing []string
	for _, c := range []string{"memory", "pids"} {
		h, ok := s.V1(c)
		if !ok {
			missing = append(missing, c)
			continue
		}
		found := ""
		for _, p := range (&System{Own: s.Own}).v1Candidates(Options{User: user}, c) {
			if d := h.Dir(p); d != "" && accessW(d) {
				found = d
				break
			}
		}
		if found == "" {
			missing = append(missing, c)
		} else {
			dirs = append(dirs, found)
		}
	}
	if len(missing) == 0 {
		return strings.Join(dirs, ", ") + " (cgroup v1)", ""
	}
	if why != "" {
		why += "; "
	}
	return "", why + "no writable cgroup v1 " + strings.Join(missing, ", ")
}

func accessW(p string) bool {
	return unix.Access(p, unix.W_OK) == nil
}

// SweepLeftovers removes the sandbox cgroups (sbx-*) in the places sbx
// makes them for user that are empty, older than minAge (a younger one may
// be about to receive its sandbox) and not in inUse.
func SweepLeftovers(user string, inUse map[string]bool, minAge time.Duration) {
	s, err := Discover()
	if err != nil {
		return
	}
	var parents []string
	for _, h := range s.Hierarchies {
		switch {
		case h.Version == 2:
			if own, ok := s.Own[""]; ok {
				parents = append(parents, h.Dir(filepath.Dir(own)))
			}
		case len(h.Controllers) > 0:
			for _, p := range s.v1Candidates(Options{User: user}, h.Controllers[0]) {
				parents = append(parents, h.Dir(p))
			}
		}
	}
	for _, p := range parents {
		if p == "" || !accessW(p) {
			continue
		}
		dirs, _ := filepath.Glob(filepath.Join(p, "sbx-*"))
		for _, d := range dirs {
			fi, err := os.Stat(d)
			if err != nil || !fi.IsDir() || inUse[d] || time.Since(fi.ModTime()) < minAge {
				continue
			}
			if b, err := os.ReadFile(filepath.Join(d, "cgroup.procs")); err == nil && len(strings.TrimSpace(string(b))) == 0 {
				unix.Rmdir(d)
			}
		}
	}
}
