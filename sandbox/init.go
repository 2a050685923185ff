package sandbox

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/sbx-sandbox/sbx/spec"
)

// IsInit reports whether this process is a sandbox's init: the parent
// re-executes sbx under this name, with the control socket as fd 3.
func IsInit() bool {
	return len(os.Args) == 1 && os.Args[0] == initArg0
}

// Init is the sandbox's PID 1, uid of the new user namespace with all its
// capabilities. It builds the sandbox, gives up everything the command
// must not have, starts the command and stays as its reaper, and returns
// the status init exits with.
func Init() int {
	ctl := conn{os.NewFile(controlFD, "control")}
	m, _, err := ctl.recv()
	if err != nil || m.Kind != kindSpec || m.Spec == nil {
		fmt.Fprintln(os.Stderr, "sbx: this is the sandbox's init; run 'sbx run' instead")
		return 125
	}
	code, err := initSandbox(ctl, m.Spec)
	if err != nil {
		f := &Failure{Code: 125, Err: err}
		errors.As(err, &f)
		ctl.send(msg{Kind: kindError, Error: f.Err.Error(), Code: f.Code})
		return f.Code
	}
	return code
}

func initSandbox(ctl conn, s *spec.Spec) (int, error) {
	// Set-up is a sequence of process-wide kernel state changes; keep it on
	// one thread so per-thread state (the cwd from fchdir in pivot_root) is
	// never observed half-done by another goroutine.
	runtime.LockOSThread()
	if err := unix.CloseRange(controlFD, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return 0, fmt.Errorf("close_range: %w", err)
	}
	if err := enterCgroupNamespace(s); err != nil {
		return 0, err
	}
	if err := setupUTS(s); err != nil {
		return 0, err
	}
	if s.Net.Mode != spec.NetHost {
		if err := loopbackUp(); err != nil {
			return 0, err
		}
	}
	if s.Net.Mode == spec.NetSlirp {
		tap, err := createTap(s.Net)
		if err != nil {
			return 0, err
		}
		err = ctl.send(msg{Kind: kindTap}, tap)
		tap.Close()
		if err != nil {
			return 0, err
		}
		testPause("network")
	}
	// The mounts came from the host through a less privileged user
	// namespace, so the kernel made them slaves: nothing done here
	// propagates back. The root the new tree is stacked on is made private
	// as well, so nothing from the host propagates into the sandbox's /
	// either (every mount of the new tree is private already).
	if err := unix.Mount("", "/", "", unix.MS_PRIVATE, ""); err != nil {
		return 0, explainMountError(fmt.Errorf("make / private: %w", err))
	}
	root, err := buildRoot(s)
	if err != nil {
		return 0, explainMountError(err)
	}
	if err := pivotInto(root, s.Root.Kind == spec.RootHost || s.Root.Kind == ""); err != nil {
		return 0, err
	}
	if err := enterCwd(s); err != nil {
		return 0, err
	}
	// Nothing inside may read init's memory or open its /proc files
	// (/proc/1/exe is the sbx binary of the host).
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return 0, fmt.Errorf("dumpable: %w", err)
	}
	keep, err := capNumbers(s.CapAdd)
	if err != nil {
		return 0, err
	}
	if err := applyRlimits(s.Limits); err != nil {
		return 0, err
	}
	if err := dropCaps(initCaps(s, keep)); err != nil {
		return 0, err
	}
	if err := noNewPrivs(); err != nil {
		return 0, err
	}
	if err := restrictLandlock(s); err != nil {
		return 0, err
	}
	m, _, err := ctl.recv()
	if err != nil || m.Kind != kindSeccomp {
		return 0, fmt.Errorf("no seccomp program from the parent (%v)", err)
	}
	if err := installSeccomp(m.Program); err != nil {
		return 0, err
	}
	return superviseCommand(ctl, s, keep)
}

// enterCwd picks the working directory: --chdir must exist inside; else
// the caller's directory when the sandbox can see it; else /.
func enterCwd(s *spec.Spec) error {
	if s.Cwd != "" {
		if err := unix.Chdir(s.Cwd); err != nil {
			return fmt.Errorf("--chdir %s: %w inside the sandbox: bind it or pick another directory", s.Cwd, err)
		}
		return nil
	}
	if s.CallerDir != "" && unix.Chdir(s.CallerDir) == nil {
		return nil
	}
	return unix.Chdir("/")
}

// explainMountError adds the likely cause when the kernel refuses mounts
// in a user namespace that was created fine (AppArmor's restriction lets
// the namespace exist but strips its capabilities).
func explainMountError(err error) error {
	if errors.Is(err, unix.EPERM) {
		if b, rerr := os.ReadFile("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"); rerr == nil && len(b) > 0 && b[0] == '1' {
			return fmt.Errorf("%v: AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1): run 'sysctl -w kernel.apparmor_restrict_unprivileged_userns=0' as root", err)
		}
	}
	return err
}
