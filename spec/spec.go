// Package spec holds the one plain description of a sandbox: everything it
// gets, resolved from a profile and flags in the parent, sent once to the
// sandbox's init and never re-parsed there.
package spec

// Spec is everything a sandbox gets. The parent fills it (profiles.Resolve
// merges the profile with the flags); the child only reads it.
type Spec struct {
	Argv []string // the command and its arguments; Argv[0] is looked up in the sandbox's PATH
	Env  []string // the command's whole environment, KEY=VALUE
	Cwd  string   // working directory inside; "" means CallerDir when visible, else /
	// CallerDir is the directory sbx was started in.
	CallerDir string
	// Terminal is set when stdin is sbx's controlling terminal and sbx runs
	// in its foreground: the command then gets the terminal's foreground.
	Terminal bool

	Hostname string
	UID      uint32 // user id seen inside
	GID      uint32 // group id seen inside
	// RunAs, when set, is the user the command (and what sbx enter starts)
	// runs as, where it differs from init's own UID and GID: an image's
	// user in a store that keeps file owners, whose mapping puts the caller
	// at 0 and the subordinate range at 1 and up.
	RunAs *IDs
	// MapUsers is "" (map the caller's own ids only, through uid_map/gid_map)
	// or "auto" (the caller's subordinate ranges too, through newuidmap/newgidmap).
	MapUsers string

	Root   Root
	Mounts []Mount // applied in order after the root is built
	Home   string  // the home directory inside, made a private tmpfs unless a mount covers it
	Sys    string  // "none" (default) or "ro"

	Net Net

	CapAdd     []string // capability names kept (CAP_NET_RAW style); all others are dropped
	NewSession bool     // setsid(): detaches the command from the terminal (no TIOCSTI at all)
	PassFDs    []int    // host fds passed to the command under the same numbers
	Seccomp    Seccomp
	Landlock   Landlock
	Limits     Limits
	StatusFDs  StatusFDs // --info-fd, --json-status-fd

	Name    string // --name, shown by sbx ps
	Profile string // the profile's name, shown by sbx ps
}

// DefaultPath is the PATH of a command whose environment has none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// IDs are a user and group id seen inside.
type IDs struct {
	UID, GID uint32
}

// MountKind says what a Mount entry does.
type MountKind string

const (
	Bind    MountKind = "bind"     // read-write bind of Src at Dst
	ROBind  MountKind = "ro-bind"  // read-only bind, submounts included
	DevBind MountKind = "dev-bind" // bind that keeps device nodes usable
	Tmpfs   MountKind = "tmpfs"    // a fresh tmpfs at Dst
	Hide    MountKind = "hide"     // Dst is covered by an empty read-only tmpfs (or /dev/null for a file)
	Dir     MountKind = "dir"      // an empty directory at Dst
	Symlink MountKind = "symlink"  // a symlink at Dst pointing to Src
)

// Mount is one filesystem entry of the sandbox, bubblewrap-style.
type Mount struct {
	Kind     MountKind
	Src      string
	Dst      string
	Optional bool // a missing Src is skipped instead of being an error
}
