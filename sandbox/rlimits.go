package sandbox

import (
	"fmt"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sbx-sandbox/sbx/spec"
)

// applyRlimits sets the rlimits init can carry itself (open files, core
// size), inherited by every command it starts. The ones that would starve
// init's own Go runtime (address space, processes, CPU time) are given to
// each command only (see limitedArgv); for them it prepares the sbx copy
// that sets them, while Landlock still lets init read its own binary.
func applyRlimits(l spec.Limits) error {
	if len(limitArgs(l)) > 0 {
		if err := prepareRlimitExec(); err != nil {
			return err
		}
	}
	for _, r := range []struct {
		flag string
		res  int
		v    *uint64
	}{{"--nofile", unix.RLIMIT_NOFILE, l.NoFile}, {"--core", unix.RLIMIT_CORE, l.Core}} {
		if r.v == nil {
			continue
		}
		// syscall.Setrlimit, not unix's: Go restores the RLIMIT_NOFILE it
		// found at start-up in every child unless told of a change this way.
		if err := syscall.Setrlimit(r.res, &syscall.Rlimit{Cur: *r.v, Max: *r.v}); err != nil {
			return rlimitError(r.flag, r.res, *r.v, err)
		}
	}
	return nil
}

// rlimitExecArg0 marks sbx re-executed as the step between init and a
// command that gets command-only rlimits.
const rlimitExecArg0 = "sbx-rlimits"

// commandRlimits are the rlimits given to each command and not to init.
var commandRlimits = []struct {
	name string
	res  int
	get  func(spec.Limits) *uint64
}{
	{"AS", unix.RLIMIT_AS, func(l spec.Limits) *uint64 { return l.AS }},
	{"NPROC", unix.RLIMIT_NPROC, func(l spec.Limits) *uint64 { return l.NProc }},
	{"CPU", unix.RLIMIT_CPU, func(l spec.Limits) *uint64 { return l.CPUTime }},
}

// rlimitExecFD holds, in init, a sealed in-memory copy of the sbx binary
// that the rlimit step is executed from. Not the binary itself: it lies
// outside the sandbox's tree, where Landlock forbids executing it; a
// memfd lives on an internal filesystem Landlock does not restrict.
const rlimitExecFD = 255

// prepareRlimitExec copies init's own binary into a sealed memfd at rlimitExecFD.
func prepareRlimitExec() error {
	fd, err := unix.MemfdCreate("sbx", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return fmt.Errorf("rlimits: memfd: %w", err)
	}
	mem := os.NewFile(uintptr(fd), "sbx")
	defer mem.Close()
	self, err := os.Open("/proc/self/exe")
	if err != nil {
		return fmt.Errorf("rlimits: %w", err)
	}
	defer self.Close()
	st, err := self.Stat()
	if err != nil {
		return fmt.Errorf("rlimits: %w", err)
	}
	// sendfile: copy_file_range refuses to cross into the memfd's filesystem.
	for left := st.Size(); left > 0; {
		n, err := unix.Sendfile(fd, int(self.Fd()), nil, int(min(left, 1<<30)))
		if err != nil {
			return fmt.Errorf("rlimits: copy sbx: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("rlimits: copy sbx: short copy")
		}
		left -= int64(n)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		return fmt.Errorf("rlimits: seal: %w", err)
	}
	if err := unix.Dup3(fd, rlimitExecFD, unix.O_CLOEXEC); err != nil {
		return fmt.Errorf("rlimits: %w", err)
	}
	return nil
}

// limitArgs are the command-only rlimits as the rlimit step takes them.
func limitArgs(l spec.Limits) []string {
	var lims []string
	for _, r := range commandRlimits {
		if v := r.get(l); v != nil {
			lims = append(lims, r.name+"="+strconv.FormatUint(*v, 10))
		}
	}
	return lims
}

// limitedArgv is what init executes to start the command path with argv
// under the command-only rlimits. Init cannot lower them on itself (its Go
// runtime needs address space and threads, and an unprivileged process
// never gets a lowered hard limit back), and setting them on the child
// after it started leaves it a moment to raise them. So the child first
// executes sbx (the copy at rlimitExecFD), which sets them, hard and soft,
// and then executes the command: it never runs an instruction without them.
func limitedArgv(l spec.Limits, path string, argv []string) (string, []string) {
	lims := limitArgs(l)
	if len(lims) == 0 {
		return path, argv
	}
	args := append([]string{rlimitExecArg0}, lims...)
	return "/proc/self/fd/" + strconv.Itoa(rlimitExecFD), append(append(args, "--", path), argv...)
}

func rlimitError(flag string, res int, v uint64, err error) error {
	var cur unix.Rlimit
	_ = unix.Getrlimit(res, &cur)
	if err == unix.EPERM || err == unix.EINVAL {
		return fmt.Errorf("%s %d is above the hard limit %d sbx was started with; raise it (ulimit -H) or ask for less", flag, v, cur.Max)
	}
	return fmt.Errorf("%s %d: %w", flag, v, err)
}
