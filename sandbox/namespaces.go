package sandbox

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sbx-sandbox/sbx/spec"
	"github.com/sbx-sandbox/sbx/userns"
)

// cloneFlags are the namespaces every sandbox gets: the user namespace
// first (the kernel creates it before the others, so it owns them), then
// mount, PID, UTS, IPC and cgroup always, and network unless shared.
func cloneFlags(s *spec.Spec) uintptr {
	f := uintptr(unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID |
		unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWCGROUP)
	if s.Net.Mode != spec.NetHost {
		f |= unix.CLONE_NEWNET
	}
	return f
}

// initAttr is how init is cloned. Init keeps every capability of its user
// namespace through exec as ambient capabilities (its uid inside need not
// be 0), dies with the parent, and sits in a process group of its own so
// that the terminal's signals reach the command once, not twice.
func initAttr(s *spec.Spec, maps userns.Maps) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{
		Cloneflags:  cloneFlags(s),
		AmbientCaps: allCaps(),
		Pdeathsig:   syscall.SIGKILL,
		Setpgid:     true,
	}
	if !maps.Helper {
		a.UidMappings = userns.SysProcIDMaps(maps.UIDs)
		a.GidMappings = userns.SysProcIDMaps(maps.GIDs)
		a.GidMappingsEnableSetgroups = false
	}
	return a
}

// lastCap is the highest capability number this kernel knows.
func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return n
		}
	}
	return unix.CAP_LAST_CAP
}

func allCaps() []uintptr {
	n := lastCap()
	caps := make([]uintptr, 0, n+1)
	for c := 0; c <= n; c++ {
		caps = append(caps, uintptr(c))
	}
	return caps
}

// explainCloneError turns the kernel's refusal to create the namespaces
// into the host setting to change.
func explainCloneError(err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EINVAL) {
		if d := userns.Diagnose("/proc/sys"); d != nil {
			return d
		}
		if errors.Is(err, unix.ENOSPC) {
			return fmt.Errorf("cannot create a user namespace: %v: too many namespaces exist, raise user.max_user_namespaces", err)
		}
	}
	return fmt.Errorf("cannot create the sandbox's namespaces: %w: run 'sbx doctor' to see what the host allows", err)
}

// setupUTS names the sandbox's host.
func setupUTS(s *spec.Spec) error {
	name := s.Hostname
	if name == "" {
		name = "sbx"
	}
	if err := unix.Sethostname([]byte(name)); err != nil {
		return fmt.Errorf("sethostname %q: %w", name, err)
	}
	return nil
}

// loopbackUp brings lo up in the sandbox's own network namespace; a new
// namespace starts with it down, and much software expects 127.0.0.1.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback: get flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback: up: %w", err)
	}
	return nil
}
