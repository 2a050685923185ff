package spec

// Seccomp is the syscall filter, fully resolved by the parent: groups are
// expanded to syscall names and every action is explicit, so init only has
// to translate it into BPF.
type Seccomp struct {
	Disabled bool
	// DefaultAction is what a syscall no rule names gets; "" means allow
	// (the built-in profiles are deny lists, which keeps the Go runtime of
	// init, which lives under the same filter, working).
	DefaultAction SeccompAction
	DefaultErrno  int // the errno of DefaultAction "errno"
	// Log turns every denying action (errno, kill-process, trap) into log,
	// so a profile can be written by watching the kernel log.
	Log   bool
	Rules []SeccompRule
}

// SeccompAction is what the filter does with a matching syscall.
type SeccompAction string

const (
	ActAllow       SeccompAction = "allow"
	ActErrno       SeccompAction = "errno"        // fail with SeccompRule.Errno
	ActKillProcess SeccompAction = "kill-process" // SIGSYS to the whole process, uncatchable
	ActTrap        SeccompAction = "trap"         // a catchable SIGSYS
	ActLog         SeccompAction = "log"          // allowed, and logged by the kernel
)

// SeccompRule applies Action to the named syscalls when every Args condition holds.
type SeccompRule struct {
	Syscalls []string // names; a name this kernel's architectures lack is skipped
	Action   SeccompAction
	Errno    int // for ActErrno
	Args     []SeccompArg
}

// SeccompArg is one condition on a syscall argument, compared as the kernel
// passes it (64 bits).
type SeccompArg struct {
	Index uint   // 0..5
	Op    string // "==", "!=", "<", "<=", ">", ">=", "masked-eq" (Value == arg & Mask), "not-in"
	Value uint64
	Mask  uint64 // for "masked-eq"
	// Values is the set for "not-in": the condition holds when the low 32
	// bits of the argument (what the kernel reads of an int argument) are
	// none of them.
	Values []uint64
}

// Landlock is the second, independent layer over the filesystem: the
// command can reach only the paths the spec's mounts make visible, with the
// same read-only/read-write split, where the kernel has Landlock.
type Landlock struct {
	Disabled  bool
	ReadOnly  []string // extra paths inside the sandbox readable (and executable)
	ReadWrite []string // extra paths inside the sandbox fully usable
}
