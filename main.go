// Command sbx runs a command in a rootless sandbox.
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/sbx-sandbox/sbx/sandbox"
	"github.com/sbx-sandbox/sbx/spec"
)

// CLI is the whole command line; each command is one struct with a Run method.
type CLI struct {
	Run RunCmd `cmd:"" help:"Run a command in a sandbox."`
}

func main() {
	// The sandbox's init is this same binary, re-executed inside the new namespaces.
	if sandbox.IsInit() {
		os.Exit(sandbox.Init())
	}
	var cli CLI
	parser, err := kong.New(&cli,
		kong.Name("sbx"),
		kong.Description("A rootless sandbox runner: bubblewrap's isolation, profiles, images and user-mode networking in one binary."),
		kong.UsageOnError(),
		kong.Exit(func(code int) {
			if code != 0 {
				code = 125
			}
			os.Exit(code)
		}),
	)
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

// fatal reports one of sbx's own failures the way every such failure is
// reported: one line, exit 125.
func fatal(err error) {
	fmt.Fprintf(os.Stderr, "sbx: %v\n", err)
	os.Exit(125)
}

// RunCmd is `sbx run`: every flag maps onto one field of spec.Spec.
type RunCmd struct {
	UID        *uint32  `name:"uid" help:"User id seen inside (default: your own)."`
	GID        *uint32  `name:"gid" help:"Group id seen inside (default: your own)."`
	MapUsers   string   `name:"map-users" enum:",auto" default:"" help:"auto: map your whole subordinate id range (/etc/subuid, /etc/subgid) through newuidmap/newgidmap."`
	Net        string   `name:"net" enum:"none,host" default:"none" help:"Network: none (a new namespace with only loopback) or host (share the host's)."`
	Sys        string   `name:"sys" enum:"none,ro" default:"none" help:"/sys: none, or ro (read-only)."`
	Bind       []string `name:"bind" placeholder:"SRC[:DST]" help:"Bind a host path read-write."`
	ROBind     []string `name:"ro-bind" placeholder:"SRC[:DST]" help:"Bind a host path read-only (submounts too)."`
	DevBind    []string `name:"dev-bind" placeholder:"SRC[:DST]" help:"Bind a host path with device nodes usable."`
	Tmpfs      []string `name:"tmpfs" placeholder:"DIR" help:"Mount a fresh tmpfs."`
	Hostname   string   `name:"hostname" default:"sbx" help:"Hostname inside."`
	CapAdd     []string `name:"cap-add" placeholder:"CAP" help:"Keep this capability (e.g. CAP_NET_RAW); all others are dropped."`
	PassFD     []int    `name:"pass-fd" placeholder:"N" help:"Pass this file descriptor to the command."`
	Setenv     []string `name:"setenv" placeholder:"K=V" help:"Set an environment variable."`
	Unsetenv   []string `name:"unsetenv" placeholder:"K" help:"Remove an environment variable."`
	KeepEnv    bool     `name:"keep-env" help:"Keep the whole environment instead of a clean one."`
	Chdir      string   `name:"chdir" placeholder:"DIR" help:"Working directory inside (default: yours when visible, else /)."`
	NewSession bool     `name:"new-session" help:"Start the command in a new session, detached from the terminal."`
	Command    []string `arg:"" passthrough:"partial" name:"command" help:"The command and its arguments."`
}

func (r *RunCmd) Run() error {
	s, err := r.spec()
	if err != nil {
		return err
	}
	os.Exit(sandbox.Run(s))
	return nil
}

// spec turns the flags into the sandbox's Spec.
func (r *RunCmd) spec() (*spec.Spec, error) {
	argv := r.Command
	if len(argv) > 0 && argv[0] == "--" {
		argv = argv[1:]
	}
	s := &spec.Spec{
		Argv:       argv,
		Hostname:   r.Hostname,
		UID:        uint32(os.Getuid()),
		GID:        uint32(os.Getgid()),
		MapUsers:   r.MapUsers,
		Root:       spec.Root{Kind: spec.RootHost},
		Sys:        r.Sys,
		Net:        spec.Net{Mode: spec.NetMode(r.Net)},
		CapAdd:     r.CapAdd,
		NewSession: r.NewSession,
		PassFDs:    r.PassFD,
		Cwd:        r.Chdir,
	}
	if len(s.Argv) == 0 {
		return nil, fmt.Errorf("no command given: use sbx run [flags] -- CMD [ARGS...]")
	}
	if r.UID != nil {
		s.UID = *r.UID
	}
	if r.GID != nil {
		s.GID = *r.GID
	}
	s.Home, _ = os.UserHomeDir()
	for _, m := range []struct {
		kind spec.MountKind
		args []string
	}{{spec.Bind, r.Bind}, {spec.ROBind, r.ROBind}, {spec.DevBind, r.DevBind}} {
		for _, a := range m.args {
			src, dst, ok := strings.Cut(a, ":")
			if !ok {
				dst = src
			}
			if src == "" || dst == "" {
				return nil, fmt.Errorf("--%s %q: expected SRC[:DST]", m.kind, a)
			}
			s.Mounts = append(s.Mounts, spec.Mount{Kind: m.kind, Src: src, Dst: dst})
		}
	}
	for _, d := range r.Tmpfs {
		s.Mounts = append(s.Mounts, spec.Mount{Kind: spec.Tmpfs, Dst: d})
	}
	env, err := sandbox.Environment(os.Environ(), r.KeepEnv, r.Setenv, r.Unsetenv)
	if err != nil {
		return nil, err
	}
	s.Env = env
	return s, nil
}
