// Command sbx runs a command in a rootless sandbox.
package main

import (
	"fmt"
	"os"

	"github.com/alecthomas/kong"

	"github.com/sbx-sandbox/sbx/images/subids"
	"github.com/sbx-sandbox/sbx/profiles"
	"github.com/sbx-sandbox/sbx/sandbox"
	"github.com/sbx-sandbox/sbx/spec"
)

// CLI is the whole command line; each command is one struct with a Run method.
type CLI struct {
	Run     RunCmd     `cmd:"" help:"Run a command in a sandbox."`
	Profile ProfileCmd `cmd:"" help:"List, show and check profiles."`
	Ps      PsCmd      `cmd:"" help:"List the running sandboxes."`
	Enter   EnterCmd   `cmd:"" help:"Run a command (default: your shell) inside a running sandbox."`
	Kill    KillCmd    `cmd:"" help:"Send a signal to a running sandbox."`
	Doctor  DoctorCmd  `cmd:"" help:"Check what this host lets sbx do, and how to fix what it does not."`
	Image   ImageCmd   `cmd:"" help:"Pull, import, list and remove container images."`
}

func main() {
	// The sandbox's init is this same binary, re-executed inside the new namespaces.
	if sandbox.IsInit() {
		os.Exit(sandbox.Init())
	}
	if subids.IsHelper() {
		os.Exit(subids.Helper())
	}
	var cli CLI
	parser, err := newParser(&cli, func(code int) {
		if code != 0 {
			code = 125
		}
		os.Exit(code)
	})
	if err != nil {
		fatal(err)
	}
	ctx, err := parser.Parse(os.Args[1:])
	if err != nil {
		fatal(err)
	}
	if err := ctx.Run(); err != nil {
		fatal(err)
	}
}

// newParser is sbx's command line; exit is called after --help, or with a
// non-zero code after a usage error kong reports itself.
func newParser(cli *CLI, exit func(int), opts ...kong.Option) (*kong.Kong, error) {
	return kong.New(cli, append([]kong.Option{
		kong.Name("sbx"),
		kong.Description("A rootless sandbox runner: bubblewrap's isolation, profiles, images and user-mode networking in one binary."),
		kong.UsageOnError(),
		kong.Exit(exit),
	}, opts...)...)
}

// fatal reports one of sbx's own failures the way every such failure is
// reported: one line, exit 125.
func fatal(err error) {
	fmt.Fprintf(os.Stderr, "sbx: %v\n", err)
	os.Exit(125)
}

// RunCmd is `sbx run`: a profile, with every flag given laid over it.
type RunCmd struct {
	Profile      string   `name:"profile" placeholder:"NAME|FILE" help:"Profile to start from (default: default); see sbx profile list."`
	SeccompLog   bool     `name:"seccomp-log" help:"Log the syscalls the profile denies instead of denying them (to write a profile)."`
	SeccompAllow []string `name:"seccomp-allow" placeholder:"SYSCALL|@GROUP" help:"Take a syscall or group out of the profile's seccomp denials."`
	SeccompDeny  []string `name:"seccomp-deny" placeholder:"SYSCALL|@GROUP" help:"Deny a syscall or group too, with the profile's errno."`
	NoSeccomp    bool     `name:"no-seccomp" help:"Run without the syscall filter."`
	NoLandlock   bool     `name:"no-landlock" help:"Run without the Landlock layer."`
	Hide         []string `name:"hide" placeholder:"PATH" help:"Cover a path with an empty read-only directory (or file)."`
	Dir          []string `name:"dir" placeholder:"PATH" help:"Make an empty directory."`
	Symlink      []string `name:"symlink" placeholder:"TARGET:LINK" help:"Make a symlink LINK pointing to TARGET."`
	UID          *uint32  `name:"uid" help:"User id seen inside (default: your own)."`
	GID          *uint32  `name:"gid" help:"Group id seen inside (default: your own)."`
	MapUsers     string   `name:"map-users" enum:",self,auto" default:"" help:"auto: map your whole subordinate id range (/etc/subuid, /etc/subgid) through newuidmap/newgidmap."`
	Net          string   `name:"net" enum:",none,host,slirp,slirp4netns,pasta" default:"" help:"Network: none (a new namespace with only loopback), host (share the host's), slirp (its own namespace, reaching out through sbx's built-in user-mode network), or slirp4netns where installed. Default: the profile's."`
	Sys          string   `name:"sys" enum:",none,ro" default:"" help:"/sys: none, or ro (read-only). Default: the profile's."`
	Bind         []string `name:"bind" placeholder:"SRC[:DST]" help:"Bind a host path read-write."`
	ROBind       []string `name:"ro-bind" placeholder:"SRC[:DST]" help:"Bind a host path read-only (submounts too)."`
	DevBind      []string `name:"dev-bind" placeholder:"SRC[:DST]" help:"Bind a host path with device nodes usable."`
	Tmpfs        []string `name:"tmpfs" placeholder:"DIR" help:"Mount a fresh tmpfs."`
	Hostname     string   `name:"hostname" help:"Hostname inside (default: the profile's, sbx)."`
	CapAdd       []string `name:"cap-add" placeholder:"CAP" help:"Keep this capability (e.g. CAP_NET_RAW); all others are dropped."`
	PassFD       []int    `name:"pass-fd" placeholder:"N" help:"Pass this file descriptor to the command."`
	Setenv       []string `name:"setenv" placeholder:"K=V" help:"Set an environment variable."`
	Unsetenv     []string `name:"unsetenv" placeholder:"K" help:"Remove an environment variable."`
	PassEnv      []string `name:"pass-env" placeholder:"K" help:"Keep this variable from your environment (a clean one keeps only a few)."`
	KeepEnv      bool     `name:"keep-env" help:"Keep the whole environment instead of a clean one."`
	Chdir        string   `name:"chdir" placeholder:"DIR" help:"Working directory inside (default: yours when visible, else /)."`
	NewSession   bool     `name:"new-session" help:"Start the command in a new session, detached from the terminal."`
	NetFlags     `embed:""`
	LimitFlags   `embed:""`
	RootFlags    `embed:""`
	AppFlags     `embed:""`
	Command      []string `arg:"" optional:"" passthrough:"partial" name:"command" help:"The command and its arguments (with --image, default: the image's)."`
}

func (r *RunCmd) Run() error {
	s, err := r.spec()
	if err != nil {
		return err
	}
	os.Exit(sandbox.Run(s))
	return nil
}

// spec resolves the profile and lays the flags over it.
func (r *RunCmd) spec() (*spec.Spec, error) {
	argv := r.Command
	if len(argv) > 0 && argv[0] == "--" {
		argv = argv[1:]
	}
	if len(argv) == 0 && r.Image == "" {
		return nil, fmt.Errorf("no command given: use sbx run [flags] -- CMD [ARGS...]")
	}
	flags := profiles.Flags{
		UID: r.UID, GID: r.GID, MapUsers: r.MapUsers, Net: r.Net, Sys: r.Sys,
		Bind: r.Bind, ROBind: r.ROBind, DevBind: r.DevBind, Tmpfs: r.Tmpfs,
		Hostname: r.Hostname, CapAdd: r.CapAdd, PassFD: r.PassFD,
		Setenv: r.Setenv, Unsetenv: r.Unsetenv, PassEnv: r.PassEnv, KeepEnv: r.KeepEnv,
		Chdir: r.Chdir, NewSession: r.NewSession, SeccompLog: r.SeccompLog,
		SeccompAllow: r.SeccompAllow, SeccompDeny: r.SeccompDeny, NoSeccomp: r.NoSeccomp, NoLandlock: r.NoLandlock,
		Hide: r.Hide, Dir: r.Dir, Symlink: r.Symlink,
	}
	r.AppFlags.into(&flags)
	s, err := profiles.Resolve(r.Profile, flags, argv)
	if err != nil {
		return nil, err
	}
	if err := r.NetFlags.apply(&s.Net); err != nil {
		return nil, err
	}
	if err := r.LimitFlags.apply(s); err != nil {
		return nil, err
	}
	if err := r.applyRoot(s); err != nil {
		return nil, err
	}
	return s, nil
}

// ProfileCmd is `sbx profile`.
type ProfileCmd struct {
	List   ProfileListCmd   `cmd:"" help:"List the profiles: name, source, description."`
	Show   ProfileShowCmd   `cmd:"" help:"Print a profile fully resolved (includes applied) as TOML."`
	Check  ProfileCheckCmd  `cmd:"" help:"Check profile files; exit 125 listing every problem."`
	Groups ProfileGroupsCmd `cmd:"" help:"List the seccomp syscall groups and their syscalls."`
}

type ProfileListCmd struct{}

func (ProfileListCmd) Run() error { return profiles.PrintList(os.Stdout) }

type ProfileShowCmd struct {
	Name string `arg:"" help:"Profile name or file."`
}

func (c ProfileShowCmd) Run() error { return profiles.PrintShow(os.Stdout, c.Name) }

type ProfileCheckCmd struct {
	Files []string `arg:"" help:"Profile files."`
}

func (c ProfileCheckCmd) Run() error { return profiles.RunCheck(os.Stderr, c.Files) }

type ProfileGroupsCmd struct{}

func (ProfileGroupsCmd) Run() error { return profiles.PrintGroups(os.Stdout) }
