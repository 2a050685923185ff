package sandbox

import (
	"fmt"
	"io"
	"os"
	"sort"
	"unsafe"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/sbx-sandbox/sbx/spec"
)

// compileSeccomp turns the profile's filter into a BPF program. The parent
// compiles it while init is still starting up and building the root
// (libseccomp's compilation for three architectures is the slowest step of
// a sandbox's start), and init installs the finished program last.
//
// The filter covers every architecture the kernel runs for this process: on
// x86_64 the i386 (int 0x80) and x32 entry points get the same rules, and
// any other architecture kills the process, so a syscall cannot be made
// through an entry point the rules do not cover. A nil program means no
// filter.
func compileSeccomp(s spec.Seccomp) ([]byte, error) {
	if s.Disabled {
		return nil, nil
	}
	def, err := seccompAction(s.DefaultAction, s.DefaultErrno, s.Log)
	if err != nil {
		return nil, err
	}
	f, err := libseccomp.NewFilter(def)
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	defer f.Release()
	// A binary search on the syscall number instead of a linear chain: every
	// syscall of the command passes through the filter.
	_ = f.SetOptimize(2)
	if err := f.SetBadArchAction(libseccomp.ActKillProcess); err != nil {
		return nil, fmt.Errorf("seccomp: bad-arch action: %w", err)
	}
	arches, err := filterArches()
	if err != nil {
		return nil, err
	}
	for _, a := range arches[1:] {
		if err := f.AddArch(a); err != nil {
			return nil, fmt.Errorf("seccomp: add architecture %s: %w", a, err)
		}
	}
	for _, r := range s.Rules {
		act, err := seccompAction(r.Action, r.Errno, s.Log)
		if err != nil {
			return nil, err
		}
		if act == def {
			continue // libseccomp refuses rules that do what the default does
		}
		condSets, err := seccompConditions(r.Args)
		if err != nil {
			return nil, fmt.Errorf("seccomp: %v: %w", r.Syscalls, err)
		}
		for _, name := range r.Syscalls {
			nr, ok := syscallOnAnyArch(name, arches)
			if !ok {
				continue // not a syscall of this machine: nothing to filter
			}
			for _, conds := range condSets {
				if len(conds) == 0 {
					err = f.AddRule(nr, act)
				} else {
					err = f.AddRuleConditional(nr, act, conds)
				}
				if err != nil {
					return nil, fmt.Errorf("seccomp: rule for %s: %w", name, err)
				}
			}
		}
	}
	return exportBPF(f)
}

// exportBPF returns the filter's BPF program; libseccomp writes it to a file.
func exportBPF(f *libseccomp.ScmpFilter) ([]byte, error) {
	fd, err := unix.MemfdCreate("sbx-seccomp", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("seccomp: memfd: %w", err)
	}
	mf := os.NewFile(uintptr(fd), "sbx-seccomp")
	defer mf.Close()
	if err := f.ExportBPF(mf); err != nil {
		return nil, fmt.Errorf("seccomp: export the filter: %w", err)
	}
	if _, err := mf.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(mf)
}

// installSeccomp loads a compiled program on every thread of init (TSYNC),
// after no_new_privs; everything init starts afterwards inherits it.
func installSeccomp(prog []byte) error {
	if len(prog) == 0 {
		return nil
	}
	const insnSize = 8 // struct sock_filter
	if len(prog)%insnSize != 0 {
		return fmt.Errorf("seccomp: the compiled program has %d bytes, not whole instructions", len(prog))
	}
	fprog := unix.SockFprog{Len: uint16(len(prog) / insnSize), Filter: (*unix.SockFilter)(unsafe.Pointer(&prog[0]))}
	r, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	if e != 0 {
		return fmt.Errorf("seccomp: load the filter: %w", e)
	}
	if r != 0 {
		return fmt.Errorf("seccomp: thread %d could not take the filter", r)
	}
	return nil
}

// filterArches returns the native architecture first, then the others the
// kernel can run for a process of it.
func filterArches() ([]libseccomp.ScmpArch, error) {
	native, err := libseccomp.GetNativeArch()
	if err != nil {
		return nil, fmt.Errorf("seccomp: native architecture: %w", err)
	}
	switch native {
	case libseccomp.ArchAMD64:
		return []libseccomp.ScmpArch{native, libseccomp.ArchX86, libseccomp.ArchX32}, nil
	case libseccomp.ArchARM64:
		return []libseccomp.ScmpArch{native, libseccomp.ArchARM}, nil
	case libseccomp.ArchPPC64LE, libseccomp.ArchPPC64:
		return []libseccomp.ScmpArch{native, libseccomp.ArchPPC}, nil
	case libseccomp.ArchS390X:
		return []libseccomp.ScmpArch{native, libseccomp.ArchS390}, nil
	}
	return []libseccomp.ScmpArch{native}, nil
}

// syscallOnAnyArch resolves name for the filter: libseccomp gives a number
// that it maps per architecture, and a negative "pseudo" number for a name
// it knows only on other architectures. A name none of arches has is
// reported as absent, which is not an error: the syscall cannot be made.
func syscallOnAnyArch(name string, arches []libseccomp.ScmpArch) (libseccomp.ScmpSyscall, bool) {
	nr, err := libseccomp.GetSyscallFromName(name)
	if err != nil {
		return 0, false
	}
	for _, a := range arches {
		if n, err := libseccomp.GetSyscallFromNameByArch(name, a); err == nil && n >= 0 {
			return nr, true
		}
	}
	return 0, false
}

func seccompAction(a spec.SeccompAction, errno int, log bool) (libseccomp.ScmpAction, error) {
	if log && a != spec.ActAllow && a != "" {
		return libseccomp.ActLog, nil
	}
	switch a {
	case spec.ActAllow, "":
		return libseccomp.ActAllow, nil
	case spec.ActErrno:
		if errno <= 0 || errno > 4095 {
			return 0, fmt.Errorf("seccomp: errno %d out of range", errno)
		}
		return libseccomp.ActErrno.SetReturnCode(int16(errno)), nil
	case spec.ActKillProcess:
		return libseccomp.ActKillProcess, nil
	case spec.ActTrap:
		return libseccomp.ActTrap, nil
	case spec.ActLog:
		return libseccomp.ActLog, nil
	}
	return 0, fmt.Errorf("seccomp: unknown action %q", a)
}

var seccompOps = map[string]libseccomp.ScmpCompareOp{
	"==": libseccomp.CompareEqual, "!=": libseccomp.CompareNotEqual,
	"<": libseccomp.CompareLess, "<=": libseccomp.CompareLessOrEqual,
	">": libseccomp.CompareGreater, ">=": libseccomp.CompareGreaterEqual,
}

// seccompConditions turns a rule's conditions into one or more condition
// lists, each added as its own rule (the rule matches when any list does).
// Plain comparisons give one list; "not-in" gives several, since libseccomp
// compares an argument once per rule.
func seccompConditions(args []spec.SeccompArg) ([][]libseccomp.ScmpCondition, error) {
	sets := [][]libseccomp.ScmpCondition{nil}
	for _, a := range args {
		var alts []libseccomp.ScmpCondition
		switch a.Op {
		case "masked-eq":
			c, err := libseccomp.MakeCondition(a.Index, libseccomp.CompareMaskedEqual, a.Mask, a.Value)
			if err != nil {
				return nil, err
			}
			alts = []libseccomp.ScmpCondition{c}
		case "not-in":
			for _, p := range notInPatterns(a.Values) {
				c, err := libseccomp.MakeCondition(a.Index, libseccomp.CompareMaskedEqual, p.mask, p.value)
				if err != nil {
					return nil, err
				}
				alts = append(alts, c)
			}
		default:
			op, ok := seccompOps[a.Op]
			if !ok {
				return nil, fmt.Errorf("unknown comparison %q", a.Op)
			}
			c, err := libseccomp.MakeCondition(a.Index, op, a.Value)
			if err != nil {
				return nil, err
			}
			alts = []libseccomp.ScmpCondition{c}
		}
		var next [][]libseccomp.ScmpCondition
		for _, s := range sets {
			for _, c := range alts {
				next = append(next, append(append([]libseccomp.ScmpCondition(nil), s...), c))
			}
		}
		sets = next
	}
	return sets, nil
}

type maskedValue struct{ mask, value uint64 }

// notInPatterns covers every 32-bit value outside allowed with masked-equal
// patterns (each fixes a prefix of high bits), so "argument not in the set"
// becomes a union of single comparisons. It walks the binary trie of the
// allowed values: every branch off it that no allowed value takes is one
// pattern. The upper 32 bits are left out of every mask because the kernel
// reads int arguments from the low 32 bits only.
func notInPatterns(allowed []uint64) []maskedValue {
	vals := make([]uint64, 0, len(allowed))
	for _, v := range allowed {
		vals = append(vals, v&0xffffffff)
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	var out []maskedValue
	var walk func(prefix uint64, bit int, set []uint64)
	walk = func(prefix uint64, bit int, set []uint64) {
		if bit < 0 {
			return
		}
		var zero, one []uint64
		for _, v := range set {
			if v>>uint(bit)&1 == 0 {
				zero = append(zero, v)
			} else {
				one = append(one, v)
			}
		}
		mask := uint64(0xffffffff) &^ (uint64(1)<<uint(bit) - 1)
		for b, sub := range [][]uint64{zero, one} {
			p := prefix | uint64(b)<<uint(bit)
			if len(sub) == 0 {
				out = append(out, maskedValue{mask, p})
			} else {
				walk(p, bit-1, sub)
			}
		}
	}
	if len(vals) == 0 {
		return []maskedValue{{0, 0}}
	}
	walk(0, 31, vals)
	return out
}
