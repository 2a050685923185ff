package sandbox

import (
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
	"kernel.org/pub/linux/libs/security/libcap/psx"

	"github.com/sbx-sandbox/sbx/spec"
)

func capName(c int) string {
	if n := spec.CapName(c); n != "" {
		return n
	}
	return fmt.Sprintf("capability %d", c)
}

// capNumbers resolves names, failing on the first unknown one.
func capNumbers(names []string) ([]uintptr, error) {
	out := make([]uintptr, 0, len(names))
	for _, name := range names {
		n, _, ok := spec.CapNumber(name)
		if !ok {
			return nil, fmt.Errorf("--cap-add %s: unknown capability: see capabilities(7) for the names", name)
		}
		out = append(out, uintptr(n))
	}
	return out, nil
}

// dropCaps leaves init with only the kept capabilities, in all five sets.
// Capabilities are per thread: effective, permitted, inheritable and
// ambient are set on every OS thread of the Go runtime at once through
// psx. The bounding set only matters at execve, and init executes the
// command (and anything sbx enter starts) only from the thread that runs
// set-up, locked to its goroutine, so it is dropped there: one plain prctl
// per capability instead of a signal to every thread for each.
func dropCaps(keep []uintptr) error {
	kept := map[uintptr]bool{}
	for _, c := range keep {
		kept[c] = true
	}
	last := lastCap()
	if _, _, e := psx.Syscall6(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0); e != 0 {
		return fmt.Errorf("clear ambient capabilities: %w", e)
	}
	for c := 0; c <= last; c++ {
		if kept[uintptr(c)] {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			return fmt.Errorf("drop %s from the bounding set: %w", capName(c), err)
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	for c := range kept {
		data[c/32].Effective |= 1 << (c % 32)
		data[c/32].Permitted |= 1 << (c % 32)
		data[c/32].Inheritable |= 1 << (c % 32)
	}
	if _, _, e := psx.Syscall3(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); e != 0 {
		return fmt.Errorf("capset: %w", e)
	}
	if _, _, e := psx.Syscall6(unix.SYS_PRCTL, unix.PR_SET_KEEPCAPS, 0, 0, 0, 0, 0); e != 0 {
		return fmt.Errorf("keepcaps: %w", e)
	}
	return nil
}

// initCaps are the capabilities init keeps for itself: the command's, and
// when the command runs as another user than init (spec.RunAs), what it
// takes to start it as that user and still signal and kill it. The
// command, of another uid and without these, can neither ptrace nor
// signal init.
func initCaps(s *spec.Spec, keep []uintptr) []uintptr {
	if s.RunAs == nil {
		return keep
	}
	return append(append([]uintptr(nil), keep...), unix.CAP_SETUID, unix.CAP_SETGID, unix.CAP_KILL)
}

// commandCredential switches the command to spec.RunAs, without the
// caller's supplementary groups, which mean nothing to an image's user.
func commandCredential(s *spec.Spec) *syscall.Credential {
	if s.RunAs == nil {
		return nil
	}
	return &syscall.Credential{Uid: s.RunAs.UID, Gid: s.RunAs.GID, Groups: []uint32{}}
}

// noNewPrivs makes setuid binaries and file capabilities inert for init
// and everything it starts.
func noNewPrivs() error {
	if _, _, e := psx.Syscall6(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0); e != 0 {
		return fmt.Errorf("no_new_privs: %w", e)
	}
	return nil
}
