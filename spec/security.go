package spec

// Seccomp is the compiled-in-the-parent description of the syscall filter.
type Seccomp struct {
	Disabled bool
}

// Landlock lists the filesystem access the command keeps where the kernel has Landlock.
type Landlock struct {
	Disabled bool
}
