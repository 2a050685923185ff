package sandbox

import (
	"fmt"
	"os"

	"github.com/landlock-lsm/go-landlock/landlock"

	"github.com/sbx-sandbox/sbx/spec"
)

// restrictLandlock enforces the sandbox's filesystem rules a second time,
// with Landlock, so a mistake in the mount set-up does not open the host.
// It runs in init after pivot_root, so every path is the sandbox's own, and
// it derives the rules from the spec, not from what got mounted: what the
// spec says is read-only stays read-only even if a mount came out writable.
// Best effort: with an older Landlock ABI the rules it cannot express are
// left to the mounts, and without Landlock sbx runs as it would anyway.
func restrictLandlock(s *spec.Spec) error {
	if s.Landlock.Disabled {
		return nil
	}
	ro, rw, dev := landlockPaths(s)
	var rules []landlock.Rule
	// Listing / itself, not what is under it: each top-level directory
	// comes with its own rule.
	rules = append(rules, landlock.PathAccess(landlock.AccessFSSet(accessReadDir), "/"))
	// Refer (moving files between directories) is a directory right: a
	// rule on a file that has it is refused by the kernel.
	addRules := func(paths []string, dir, file func(...string) landlock.FSRule, write, ioctl bool) {
		for _, p := range paths {
			st, err := os.Stat(p)
			if err != nil {
				continue // not in this sandbox (an optional mount that was skipped)
			}
			r := file(p)
			if st.IsDir() {
				r = dir(p)
				if write {
					r = r.WithRefer()
				}
			}
			r = r.WithResolveUnix()
			if ioctl {
				r = r.WithIoctlDev()
			}
			rules = append(rules, r)
		}
	}
	addRules(ro, landlock.RODirs, landlock.ROFiles, false, false)
	addRules(rw, landlock.RWDirs, landlock.RWFiles, true, false)
	addRules(dev, landlock.RWDirs, landlock.RWFiles, true, true)
	if err := landlock.V11.BestEffort().RestrictPaths(rules...); err != nil {
		return fmt.Errorf("landlock: %w", err)
	}
	return nil
}

// accessReadDir is LANDLOCK_ACCESS_FS_READ_DIR.
const accessReadDir = 1 << 3

// landlockPaths sorts the sandbox's paths into read-only, read-write, and
// read-write with device ioctls, mirroring rootfs.go and the spec's mounts.
func landlockPaths(s *spec.Spec) (ro, rw, dev []string) {
	switch s.Root.Kind {
	case spec.RootHost, "":
		ro = append(ro, hostSystemDirs...)
		if s.Home != "" {
			rw = append(rw, s.Home)
		}
	default:
		if s.Root.Overlay || s.Root.Kind == spec.RootOverlay {
			rw = append(rw, "/")
		} else {
			ro = append(ro, "/")
		}
	}
	rw = append(rw, "/tmp", "/proc")
	dev = append(dev, "/dev")
	if s.Sys == "ro" {
		ro = append(ro, "/sys")
	}
	for _, m := range s.Mounts {
		switch m.Kind {
		case spec.Bind, spec.Tmpfs:
			rw = append(rw, m.Dst)
		case spec.DevBind:
			dev = append(dev, m.Dst)
		case spec.ROBind, spec.Hide, spec.Dir:
			ro = append(ro, m.Dst)
		}
	}
	ro = append(ro, s.Landlock.ReadOnly...)
	rw = append(rw, s.Landlock.ReadWrite...)
	return ro, rw, dev
}
