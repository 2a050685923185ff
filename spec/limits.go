package spec

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Limits are the resource limits of the sandbox. Zero means "not limited".
// The cgroup limits (Memory, MemorySwap, CPUs, Pids, IOWeight) go to the
// sandbox's own cgroup; where no writable cgroup exists they fall back to
// rlimits (Memory -> RLIMIT_AS, Pids -> RLIMIT_NPROC, CPUTime -> RLIMIT_CPU)
// unless Strict is set.
type Limits struct {
	Memory     int64   // bytes of memory (cgroup memory.max / memory.limit_in_bytes)
	MemorySwap int64   // bytes of memory plus swap, docker-style; 0 means no swap beyond Memory, -1 unlimited swap
	CPUs       float64 // CPU bandwidth in CPUs (1.5 = one and a half CPUs)
	Pids       int64   // tasks (processes and threads) in the sandbox
	IOWeight   uint64  // proportional I/O weight, 1..10000 (cgroup v2 io.weight)

	// Strict makes a cgroup limit that cannot be enforced through a cgroup an
	// error instead of a warning with the rlimit fallback.
	Strict bool

	// CgroupParent is the cgroup (a path inside the hierarchy, "/a/b") under
	// which the sandbox's cgroup is made; "" means found automatically.
	CgroupParent string

	// Rlimits set directly (and the fallbacks filled in by the parent).
	NoFile  *uint64 // RLIMIT_NOFILE
	Core    *uint64 // RLIMIT_CORE in bytes
	NProc   *uint64 // RLIMIT_NPROC
	AS      *uint64 // RLIMIT_AS in bytes
	CPUTime *uint64 // RLIMIT_CPU in seconds
}

// Cgroup reports whether any limit needs a cgroup.
func (l Limits) Cgroup() bool {
	return l.Memory != 0 || l.MemorySwap > 0 || l.CPUs != 0 || l.Pids != 0 || l.IOWeight != 0
}

// ParseSize reads a byte count the way docker and podman take it: a number
// with an optional k, m, g or t suffix (powers of 1024, an optional trailing
// "b"), or -1 for unlimited.
func ParseSize(s string) (int64, error) {
	if s == "-1" {
		return -1, nil
	}
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(t, "b")
	mult := float64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k':
			mult = 1 << 10
		case 'm':
			mult = 1 << 20
		case 'g':
			mult = 1 << 30
		case 't':
			mult = 1 << 40
		}
		if mult != 1 {
			t = t[:n-1]
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	// Less than a byte (".1") would be a limit of 0, which means none.
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f*mult < 1 || f*mult > math.MaxInt64 {
		return 0, fmt.Errorf("size %q: expected a positive number with an optional k, m, g or t suffix (e.g. 512m)", s)
	}
	return int64(f * mult), nil
}

// FormatSize writes a byte count the short way people write it: 5M, 1.5G, 300K.
func FormatSize(n int64) string {
	for _, u := range []struct {
		s string
		v int64
	}{{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if n >= u.v {
			if n%u.v == 0 {
				return fmt.Sprintf("%d%s", n/u.v, u.s)
			}
			return strconv.FormatFloat(float64(n)/float64(u.v), 'f', 1, 64) + u.s
		}
	}
	return strconv.FormatInt(n, 10)
}

// StatusFDs are host descriptors the parent writes machine-readable status
// to, as bubblewrap's --info-fd and --json-status-fd; 0 means none.
type StatusFDs struct {
	Info int // one JSON object: child pid and namespace ids, once init runs
	JSON int // JSON lines: the same at start, then the exit status
}
