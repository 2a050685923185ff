package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sbx-sandbox/sbx/cgroups"
	"github.com/sbx-sandbox/sbx/spec"
)

// cgroup is the sandbox's own cgroup, created by the parent before init runs.
type cgroup struct {
	cg     *cgroups.Cgroup
	memory int64 // the memory limit, for the message when it kills the command
}

// newCgroup creates the sandbox's cgroup when limits ask for one. A nil
// cgroup and nil error mean no cgroup is needed. Limits no writable cgroup
// can enforce fall back to rlimits in s.Limits (with one warning line), or
// are an error under --limits strict.
func newCgroup(s *spec.Spec) (*cgroup, error) {
	l := &s.Limits
	if !l.Cgroup() {
		return nil, nil
	}
	name, err := cgroupName()
	if err != nil {
		return nil, err
	}
	opts := cgroups.Options{
		Name:   name,
		Parent: l.CgroupParent,
		Res:    cgroups.Resources{Memory: l.Memory, MemorySwap: l.MemorySwap, CPUs: l.CPUs, Pids: l.Pids, IOWeight: l.IOWeight},
	}
	if u, err := user.Current(); err == nil {
		opts.User = u.Username
	}
	cg, err := cgroups.Create(opts)
	var unsupported []string
	reason := ""
	var nc *cgroups.NoCgroupError
	switch {
	case errors.As(err, &nc):
		unsupported, reason = askedLimits(*l), nc.Reason
	case err != nil:
		return nil, fmt.Errorf("cgroup: %w", err)
	default:
		unsupported = cg.Unsupported
		if len(unsupported) > 0 {
			reason = "the writable cgroup lacks their controllers"
		}
	}
	if len(unsupported) > 0 {
		if l.Strict {
			cg.Remove()
			return nil, fmt.Errorf("--limits strict: no writable cgroup enforces %s (%s); run sbx doctor for the fix, or drop --limits strict to fall back to rlimits", strings.Join(unsupported, ", "), reason)
		}
		fmt.Fprintf(os.Stderr, "sbx: warning: no writable cgroup for %s (%s); %s\n", strings.Join(unsupported, ", "), reason, fallBack(l, unsupported))
	}
	if cg == nil {
		return nil, nil
	}
	return &cgroup{cg: cg, memory: l.Memory}, nil
}

// cgroupName is unique per sandbox, so two sandboxes never share a cgroup.
func cgroupName() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("cgroup name: %w", err)
	}
	return "sbx-" + hex.EncodeToString(b), nil
}

func askedLimits(l spec.Limits) []string {
	var a []string
	if l.Memory != 0 || l.MemorySwap > 0 {
		a = append(a, cgroups.LimitMemory)
	}
	if l.CPUs != 0 {
		a = append(a, cgroups.LimitCPUs)
	}
	if l.Pids != 0 {
		a = append(a, cgroups.LimitPids)
	}
	if l.IOWeight != 0 {
		a = append(a, cgroups.LimitIOWeight)
	}
	return a
}

// fallBack turns the limits no cgroup enforces into the rlimits closest to
// them, and says in words what the sandbox gets instead.
func fallBack(l *spec.Limits, unsupported []string) string {
	var got, lost []string
	for _, u := range unsupported {
		switch u {
		case cgroups.LimitMemory:
			if l.Memory > 0 {
				v := uint64(l.Memory)
				l.AS = &v
				got = append(got, "RLIMIT_AS="+spec.FormatSize(l.Memory))
			}
		case cgroups.LimitPids:
			if l.Pids > 0 {
				v := uint64(l.Pids)
				l.NProc = &v
				got = append(got, fmt.Sprintf("RLIMIT_NPROC=%d", l.Pids))
			}
		default:
			lost = append(lost, "--"+u)
		}
	}
	var parts []string
	if len(got) > 0 {
		parts = append(parts, "using "+strings.Join(got, ", "))
	}
	if len(lost) > 0 {
		parts = append(parts, strings.Join(lost, ", ")+" not enforced")
	}
	return strings.Join(parts, "; ") + " (sbx doctor shows how to get a cgroup)"
}

// enter moves pid (init, before it runs anything of the sandbox) into the cgroup.
func (c *cgroup) enter(pid int) error {
	if c == nil {
		return nil
	}
	return c.cg.Enter(pid)
}

// remove deletes the cgroup once the sandbox has ended.
func (c *cgroup) remove() {
	if c != nil {
		c.cg.Remove()
	}
}

// exitMessage explains an exit status the memory limit caused, or is "".
// It is asked after the sandbox ended and before remove.
func (c *cgroup) exitMessage(status int) string {
	if c == nil || c.memory <= 0 || status != 128+9 || !c.cg.OOMKilled() {
		return ""
	}
	return fmt.Sprintf("memory limit %s reached, the command was killed", spec.FormatSize(c.memory))
}

// dirs are the cgroup's directories, recorded in the sandbox's state for sbx ps.
func (c *cgroup) state() *cgroups.Cgroup {
	if c == nil {
		return nil
	}
	return c.cg
}

// enterCgroupNamespace gives init's thread (the one that forks every
// command) a new cgroup namespace rooted at the sandbox's cgroup: the
// namespace made at clone time is rooted where init started, before the
// parent moved it, and would show the host's cgroup paths.
func enterCgroupNamespace(s *spec.Spec) error {
	if !s.Limits.Cgroup() {
		return nil
	}
	if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
		return fmt.Errorf("cgroup namespace: %w", err)
	}
	return nil
}
