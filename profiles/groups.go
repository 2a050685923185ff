package profiles

import (
	"sort"

	"golang.org/x/sys/unix"
)

// groups are the named syscall sets a profile can deny as a whole
// (seccomp.deny = ["@mount"]). Names follow systemd's where systemd has one.
// A name missing on this machine's architectures is skipped by the filter,
// so a group may list syscalls of other architectures and old kernels.
var groups = map[string][]string{
	// @mount: making, moving and changing mounts and changing root. A
	// sandboxed process has its mounts built for it and needs none of these.
	"@mount": {"mount", "umount", "umount2", "pivot_root", "chroot", "move_mount",
		"open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr"},
	// @module: loading and unloading kernel modules.
	"@module": {"init_module", "finit_module", "delete_module", "create_module",
		"query_module", "get_kernel_syms"},
	// @reboot: rebooting and loading a new kernel.
	"@reboot": {"reboot", "kexec_load", "kexec_file_load"},
	// @swap: turning swap on and off.
	"@swap": {"swapon", "swapoff"},
	// @raw-io: direct port and PCI I/O.
	"@raw-io": {"ioperm", "iopl", "pciconfig_iobase", "pciconfig_read",
		"pciconfig_write", "s390_pci_mmio_read", "s390_pci_mmio_write"},
	// @clock: setting the system clock (reading it stays allowed; adjtimex
	// is here because it sets too).
	"@clock": {"adjtimex", "clock_adjtime", "clock_adjtime64", "clock_settime",
		"clock_settime64", "settimeofday", "stime"},
	// @debug: looking into or controlling other processes: ptrace, reading
	// and writing another process's memory, comparing its kernel objects,
	// taking its file descriptors, performance counters.
	"@debug": {"ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
		"perf_event_open", "lookup_dcookie", "pidfd_getfd", "process_madvise"},
	// @keyring: the kernel keyring, which is not namespaced.
	"@keyring": {"add_key", "request_key", "keyctl"},
	// @obsolete: syscalls nothing current uses, kept only as attack surface.
	"@obsolete": {"_sysctl", "afs_syscall", "bdflush", "break", "ftime", "getpmsg",
		"gtty", "idle", "lock", "mpx", "nfsservctl", "prof", "profil", "putpmsg",
		"security", "sgetmask", "ssetmask", "stty", "sysfs", "tuxcall", "ulimit",
		"uselib", "ustat", "vserver"},
	// @cpu-emulation: changing the CPU's view of memory and modes (LDT
	// entries, vm86); Wine and DOS emulators need them, nothing else.
	"@cpu-emulation": {"modify_ldt", "subpage_prot", "switch_endian", "vm86", "vm86old"},
	// @privileged-ns: entering or making namespaces after start. clone
	// with CLONE_NEW* flags is denied by rules in the profiles, since a
	// group is names only.
	"@privileged-ns": {"unshare", "setns"},
}

func groupNames() []string {
	var n []string
	for g := range groups {
		n = append(n, g)
	}
	sort.Strings(n)
	return n
}

// Groups returns the named syscall groups and their members, for documentation.
func Groups() map[string][]string {
	out := make(map[string][]string, len(groups))
	for g, m := range groups {
		out[g] = append([]string(nil), m...)
	}
	return out
}

// constants are the names a rule's argument values may use.
var constants = map[string]uint64{
	"CLONE_NEWNS":     unix.CLONE_NEWNS,
	"CLONE_NEWCGROUP": unix.CLONE_NEWCGROUP,
	"CLONE_NEWUTS":    unix.CLONE_NEWUTS,
	"CLONE_NEWIPC":    unix.CLONE_NEWIPC,
	"CLONE_NEWUSER":   unix.CLONE_NEWUSER,
	"CLONE_NEWPID":    unix.CLONE_NEWPID,
	"CLONE_NEWNET":    unix.CLONE_NEWNET,
	"CLONE_NEWTIME":   unix.CLONE_NEWTIME,
	"TIOCSTI":         unix.TIOCSTI,
	"TIOCLINUX":       unix.TIOCLINUX,
	"AF_UNIX":         unix.AF_UNIX,
	"AF_INET":         unix.AF_INET,
	"AF_INET6":        unix.AF_INET6,
	"AF_NETLINK":      unix.AF_NETLINK,
	"AF_PACKET":       unix.AF_PACKET,
	"AF_VSOCK":        unix.AF_VSOCK,
	"AF_BLUETOOTH":    unix.AF_BLUETOOTH,
	"AF_ALG":          unix.AF_ALG,
	"PER_LINUX":       0x0,
	"PER_LINUX32":     0x8,
	"UNAME26":         0x20000,
	"PER_QUERY":       0xffffffff,
}

func constantNames() []string {
	var n []string
	for c := range constants {
		n = append(n, c)
	}
	sort.Strings(n)
	return n
}
