package sandbox

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sbx-sandbox/sbx/spec"
)

// applyRlimits sets the rlimits init can carry itself (open files, core
// size), inherited by every command it starts. The ones that would starve
// init's own Go runtime (address space, processes, CPU time) are given to
// each command only, by startLimited.
func applyRlimits(l spec.Limits) error {
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

// rlimit is one resource and the value it gets.
type rlimit struct {
	res int
	v   uint64
}

// commandRlimits are the limits applied to each command and not to init.
func commandRlimits(l spec.Limits) []rlimit {
	var rs []rlimit
	for _, r := range []struct {
		res int
		v   *uint64
	}{{unix.RLIMIT_AS, l.AS}, {unix.RLIMIT_NPROC, l.NProc}, {unix.RLIMIT_CPU, l.CPUTime}} {
		if r.v != nil {
			rs = append(rs, rlimit{r.res, *r.v})
		}
	}
	return rs
}

// startLimited runs start (which forks and execs one command and returns
// its pid) so that the command is under the command-only rlimits from its
// first instruction: init lowers its own soft limits for the instant of
// the fork, so the child inherits them, restores them, and then lowers the
// child's hard limits too, so the command cannot raise them back. Init
// keeps its own hard limits, which an unprivileged process could not raise
// again once lowered.
func startLimited(l spec.Limits, start func() (int, error)) (int, error) {
	rs := commandRlimits(l)
	if len(rs) == 0 {
		return start()
	}
	old := make([]unix.Rlimit, len(rs))
	for i, r := range rs {
		if err := unix.Getrlimit(r.res, &old[i]); err != nil {
			return 0, fmt.Errorf("getrlimit: %w", err)
		}
		if r.v > old[i].Max {
			return 0, rlimitError(rlimitFlag(r.res), r.res, r.v, unix.EPERM)
		}
	}
	for i, r := range rs {
		if err := unix.Setrlimit(r.res, &unix.Rlimit{Cur: r.v, Max: old[i].Max}); err != nil {
			restoreRlimits(rs[:i], old)
			return 0, rlimitError(rlimitFlag(r.res), r.res, r.v, err)
		}
	}
	pid, err := start()
	restoreRlimits(rs, old)
	if err != nil {
		return 0, err
	}
	for _, r := range rs {
		lim := unix.Rlimit{Cur: r.v, Max: r.v}
		if err := unix.Prlimit(pid, r.res, &lim, nil); err != nil {
			_ = unix.Kill(pid, unix.SIGKILL)
			return 0, rlimitError(rlimitFlag(r.res), r.res, r.v, err)
		}
	}
	return pid, nil
}

func restoreRlimits(rs []rlimit, old []unix.Rlimit) {
	for i, r := range rs {
		_ = unix.Setrlimit(r.res, &old[i])
	}
}

func rlimitFlag(res int) string {
	switch res {
	case unix.RLIMIT_AS:
		return "--memory (RLIMIT_AS)"
	case unix.RLIMIT_NPROC:
		return "--pids (RLIMIT_NPROC)"
	case unix.RLIMIT_CPU:
		return "--cpu-time"
	}
	return fmt.Sprintf("rlimit %d", res)
}

func rlimitError(flag string, res int, v uint64, err error) error {
	var cur unix.Rlimit
	_ = unix.Getrlimit(res, &cur)
	if err == unix.EPERM || err == unix.EINVAL {
		return fmt.Errorf("%s %d is above the hard limit %d sbx was started with; raise it (ulimit -H) or ask for less", flag, v, cur.Max)
	}
	return fmt.Errorf("%s %d: %w", flag, v, err)
}
