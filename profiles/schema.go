// Package profiles reads sbx's TOML profiles: it finds them (a path, the
// user's and the system's profile directories, the built-in ones), checks
// them strictly, applies their includes and turns the result, with the
// command line's flags on top, into a spec.Spec.
package profiles

// Profile is one profile file as written. Scalars are pointers so that an
// including profile overrides only what it sets; lists merge (see merge.go).
// Every `sbx run` flag has a key here and every key a flag.
type Profile struct {
	Description  *string      `toml:"description,omitempty"`
	Include      []string     `toml:"include,omitempty"`
	Run          Run          `toml:"run,omitempty"`
	Env          Env          `toml:"env,omitempty"`
	Filesystem   Filesystem   `toml:"filesystem,omitempty"`
	Network      Network      `toml:"network,omitempty"`
	Capabilities Capabilities `toml:"capabilities,omitempty"`
	Seccomp      Seccomp      `toml:"seccomp,omitempty"`
	Landlock     Landlock     `toml:"landlock,omitempty"`
	Limits       Limits       `toml:"limits,omitempty"`
	Desktop      Desktop      `toml:"desktop,omitempty"`
}

// Run holds the process-level settings (--hostname, --uid, --gid,
// --map-users, --chdir, --new-session, --pass-fd).
type Run struct {
	Hostname   *string   `toml:"hostname,omitempty"`
	UID        *uint32   `toml:"uid,omitempty"`
	GID        *uint32   `toml:"gid,omitempty"`
	MapUsers   *MapUsers `toml:"map_users,omitempty"` // "self" or "auto"
	Chdir      *string   `toml:"chdir,omitempty"`
	NewSession *bool     `toml:"new_session,omitempty"`
	PassFDs    []int     `toml:"pass_fds,omitempty"` // replaces, does not merge
}

// Env is the command's environment (--keep-env, --setenv, --unsetenv, --pass-env).
type Env struct {
	Keep  *bool             `toml:"keep,omitempty"`
	Set   map[string]string `toml:"set,omitempty"` // merges key by key
	Unset []Entry           `toml:"unset,omitempty"`
	Pass  []Entry           `toml:"pass,omitempty"` // names kept from the caller's environment when set there
}

// Filesystem is the sandbox's root and the mounts on it (--bind, --ro-bind,
// --dev-bind, --tmpfs, --sys, and the root kind flags). Mount entries are
// "[?]SRC[:DST]" (tmpfs, hide and dir: "[?]DST"; symlink: "TARGET:LINK");
// "?" makes a missing source skipped, "!DST" removes an inherited entry.
type Filesystem struct {
	Root          *RootKind      `toml:"root,omitempty"` // host, overlay, rootfs, image
	Rootfs        *string        `toml:"rootfs,omitempty"`
	Image         *string        `toml:"image,omitempty"`
	Overlay       *bool          `toml:"overlay,omitempty"`
	Persist       *string        `toml:"persist,omitempty"`
	OverlayDriver *OverlayDriver `toml:"overlay_driver,omitempty"` // auto, kernel, fuse
	Sys           *SysMode       `toml:"sys,omitempty"`            // none, ro
	Bind          []Entry        `toml:"bind,omitempty"`
	ROBind        []Entry        `toml:"ro_bind,omitempty"`
	DevBind       []Entry        `toml:"dev_bind,omitempty"`
	Tmpfs         []Entry        `toml:"tmpfs,omitempty"`
	Hide          []Entry        `toml:"hide,omitempty"`
	Dir           []Entry        `toml:"dir,omitempty"`
	Symlink       []Entry        `toml:"symlink,omitempty"`
	Home          *string        `toml:"home,omitempty"`  // a directory kept as the home (--home), or "tmpfs"
	Cache         []Entry        `toml:"cache,omitempty"` // build caches kept between runs (--cache): go, npm, ...
}

// Network is --net and, with a user-mode network, the flags of slirp: -p,
// --allow, --deny, --allow-host-loopback, --ipv6, --net-log, --dns.
type Network struct {
	Mode              *NetMode `toml:"mode,omitempty"`                // none, host, slirp, slirp4netns, pasta
	Ports             []Entry  `toml:"ports,omitempty"`               // "[HOSTIP:]HOSTPORT:PORT[/tcp|udp]"
	Allow             []Entry  `toml:"allow,omitempty"`               // egress rules: with any, only what they match
	Deny              []Entry  `toml:"deny,omitempty"`                // egress rules that always win
	AllowHostLoopback *bool    `toml:"allow_host_loopback,omitempty"` // the gateway leads to the host's 127.0.0.1
	IPv6              *bool    `toml:"ipv6,omitempty"`
	Log               *string  `toml:"log,omitempty"` // file every network decision is appended to
	DNS               []string `toml:"dns,omitempty"` // "IP[:PORT]"; replaces, does not merge
}

// Capabilities is --cap-add.
type Capabilities struct {
	Add []Cap `toml:"add,omitempty"`
}

// Seccomp is the syscall filter. deny lists syscalls and @groups that fail
// with errno; rules give any action and argument conditions. "!NAME" in
// deny removes NAME (or a @group's members) from what the included profiles
// deny, in their deny lists and their rules alike.
type Seccomp struct {
	Enabled       *bool     `toml:"enabled,omitempty"`
	DefaultAction *Action   `toml:"default_action,omitempty"`
	Errno         *Errno    `toml:"errno,omitempty"` // of deny, and of rules that name none
	Log           *bool     `toml:"log,omitempty"`   // --seccomp-log
	Deny          []Syscall `toml:"deny,omitempty"`
	Rule          []Rule    `toml:"rule,omitempty"`
}

// Rule is one [[seccomp.rule]].
type Rule struct {
	Syscalls []Syscall `toml:"syscalls"`
	Action   Action    `toml:"action"`
	Errno    *Errno    `toml:"errno,omitempty"`
	Args     []Arg     `toml:"args,omitempty"`
}

// Arg is one argument condition of a rule: {arg = 0, op = "masked-eq",
// mask = "CLONE_NEWUSER", value = "CLONE_NEWUSER"}.
type Arg struct {
	Arg    uint    `toml:"arg"`
	Op     Op      `toml:"op"`
	Value  *Value  `toml:"value,omitempty"`
	Mask   *Value  `toml:"mask,omitempty"`
	Values []Value `toml:"values,omitempty"`
}

// Landlock is the second filesystem layer; the paths come from the mounts,
// read_only and read_write add paths inside the sandbox.
type Landlock struct {
	Enabled   *bool   `toml:"enabled,omitempty"`
	ReadOnly  []Entry `toml:"read_only,omitempty"`
	ReadWrite []Entry `toml:"read_write,omitempty"`
}

// Limits are the resource limits (--memory, --memory-swap, --cpus, --pids,
// --io-weight, --limits strict, --cgroup-parent, --nofile, --core,
// --cpu-time). Sizes are written like 512m or 2g.
type Limits struct {
	Memory       *string  `toml:"memory,omitempty"`
	MemorySwap   *string  `toml:"memory_swap,omitempty"` // memory plus swap; "-1" unlimited swap
	CPUs         *float64 `toml:"cpus,omitempty"`
	Pids         *int64   `toml:"pids,omitempty"`
	IOWeight     *uint64  `toml:"io_weight,omitempty"` // 1 to 10000
	Strict       *bool    `toml:"strict,omitempty"`    // fail instead of falling back to rlimits
	CgroupParent *string  `toml:"cgroup_parent,omitempty"`
	NoFile       *uint64  `toml:"nofile,omitempty"`
	NProc        *uint64  `toml:"nproc,omitempty"`
	Core         *string  `toml:"core,omitempty"`     // a size, 0 for none
	CPUTime      *uint64  `toml:"cpu_time,omitempty"` // seconds
}
