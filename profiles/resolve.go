package profiles

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/sbx-sandbox/sbx/slirp"
	"github.com/sbx-sandbox/sbx/spec"
)

// DefaultProfile is what `sbx run` uses without --profile.
const DefaultProfile = "default"

// Flags are the `sbx run` flags that shape the sandbox. They are the top
// layer over the profile: each one set overrides or adds to it, exactly as
// an including profile would.
type Flags struct {
	UID, GID   *uint32
	MapUsers   string // "" when not given
	Net        string
	Sys        string
	Bind       []string
	ROBind     []string
	DevBind    []string
	Tmpfs      []string
	Hostname   string
	CapAdd     []string
	PassFD     []int
	Setenv     []string
	Unsetenv   []string
	PassEnv    []string
	KeepEnv    bool
	Chdir      string
	NewSession bool
	SeccompLog bool

	SeccompAllow []string // names and @groups taken out of the denials ("!NAME")
	SeccompDeny  []string
	NoSeccomp    bool
	NoLandlock   bool
	Hide         []string
	Dir          []string
	Symlink      []string
	// The session: a kept home, build caches, the desktop's sockets.
	Home                      string
	Cache                     []string
	X11                       string
	Wayland, Audio, GPU, DBus *bool
}

// Profile turns the flags into a profile layer; a bad value is an error
// naming the flag.
func (f Flags) Profile() (*Profile, error) {
	p := &Profile{}
	var errs []error
	text := func(flag, v string, dst interface{ UnmarshalText([]byte) error }) {
		if err := dst.UnmarshalText([]byte(v)); err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", flag, err))
		}
	}
	p.Run.UID, p.Run.GID = f.UID, f.GID
	if f.MapUsers != "" {
		p.Run.MapUsers = new(MapUsers)
		text("map-users", f.MapUsers, p.Run.MapUsers)
	}
	if f.Net != "" {
		p.Network.Mode = new(NetMode)
		text("net", f.Net, p.Network.Mode)
	}
	if f.Sys != "" {
		p.Filesystem.Sys = new(SysMode)
		text("sys", f.Sys, p.Filesystem.Sys)
	}
	entries := func(flag string, vs []string) []Entry {
		var out []Entry
		for _, v := range vs {
			var e Entry
			text(flag, v, &e)
			out = append(out, e)
		}
		return out
	}
	p.Filesystem.Bind = entries("bind", f.Bind)
	p.Filesystem.ROBind = entries("ro-bind", f.ROBind)
	p.Filesystem.DevBind = entries("dev-bind", f.DevBind)
	p.Filesystem.Tmpfs = entries("tmpfs", f.Tmpfs)
	if f.Hostname != "" {
		p.Run.Hostname = &f.Hostname
	}
	for _, c := range f.CapAdd {
		var cp Cap
		text("cap-add", c, &cp)
		p.Capabilities.Add = append(p.Capabilities.Add, cp)
	}
	p.Run.PassFDs = f.PassFD
	for _, kv := range f.Setenv {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			errs = append(errs, fmt.Errorf("--setenv %q: expected KEY=VALUE", kv))
			continue
		}
		if p.Env.Set == nil {
			p.Env.Set = map[string]string{}
		}
		p.Env.Set[k] = v
	}
	p.Env.Unset = entries("unsetenv", f.Unsetenv)
	p.Env.Pass = entries("pass-env", f.PassEnv)
	if f.KeepEnv {
		p.Env.Keep = &f.KeepEnv
	}
	if f.Chdir != "" {
		p.Run.Chdir = &f.Chdir
	}
	if f.NewSession {
		p.Run.NewSession = &f.NewSession
	}
	if f.SeccompLog {
		p.Seccomp.Log = &f.SeccompLog
	}
	for _, v := range f.SeccompDeny {
		var sc Syscall
		text("seccomp-deny", v, &sc)
		p.Seccomp.Deny = append(p.Seccomp.Deny, sc)
	}
	for _, v := range f.SeccompAllow {
		var sc Syscall
		text("seccomp-allow", "!"+v, &sc)
		p.Seccomp.Deny = append(p.Seccomp.Deny, sc)
	}
	off := false
	if f.NoSeccomp {
		p.Seccomp.Enabled = &off
	}
	if f.NoLandlock {
		p.Landlock.Enabled = &off
	}
	p.Filesystem.Hide = entries("hide", f.Hide)
	p.Filesystem.Dir = entries("dir", f.Dir)
	p.Filesystem.Symlink = entries("symlink", f.Symlink)
	if f.Home != "" {
		p.Filesystem.Home = &f.Home
	}
	p.Filesystem.Cache = entries("cache", f.Cache)
	if f.X11 != "" {
		p.Desktop.X11 = new(X11Mode)
		text("x11", f.X11, p.Desktop.X11)
	}
	p.Desktop.Wayland, p.Desktop.Audio, p.Desktop.GPU, p.Desktop.DBus = f.Wayland, f.Audio, f.GPU, f.DBus
	// One line, as every failure of sbx run: the first problem.
	switch len(errs) {
	case 0:
	case 1:
		return nil, errs[0]
	default:
		return nil, fmt.Errorf("%w (and %d more)", errs[0], len(errs)-1)
	}
	if ps := check("command line", nil, p); len(ps) > 0 {
		return nil, errors.New(flagNames.Replace(ps[0].Msg))
	}
	return p, nil
}

// Resolve finds the profile ref (a name or a path; "" is the default
// profile), lays the flags over it and returns the sandbox's Spec for argv.
func Resolve(ref string, flags Flags, argv []string) (*spec.Spec, error) {
	l := NewLoader()
	l.Prepare = true
	if ref == "" {
		ref = DefaultProfile
	}
	p, src, err := l.Load(ref)
	if err != nil {
		return nil, oneLine(err)
	}
	top, err := flags.Profile()
	if err != nil {
		return nil, err
	}
	p, problems := merge(p, top, l.Vars)
	if len(problems) > 0 {
		return nil, fmt.Errorf("flags: %s", flagNames.Replace(problems[0]))
	}
	s, err := l.Spec(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.Path, err)
	}
	s.Argv = argv
	s.Profile = src.Name
	return s, nil
}

// Spec turns a resolved profile into a spec.Spec: variables expanded,
// relative sources made absolute, groups expanded, names made numbers.
func (l *Loader) Spec(p *Profile) (*spec.Spec, error) {
	v := l.Vars
	s := &spec.Spec{
		Hostname: deref(p.Run.Hostname, "sbx"),
		UID:      uint32(os.Getuid()),
		GID:      uint32(os.Getgid()),
		Sys:      string(deref(p.Filesystem.Sys, "none")),
		Net:      spec.Net{Mode: spec.NetMode(deref(p.Network.Mode, "none"))},
		Home:     v["HOME"],
	}
	if p.Run.UID != nil {
		s.UID = *p.Run.UID
	}
	if p.Run.GID != nil {
		s.GID = *p.Run.GID
	}
	if m := deref(p.Run.MapUsers, "self"); m == "auto" {
		s.MapUsers = "auto"
	}
	if p.Run.Chdir != nil {
		d, err := v.expand(*p.Run.Chdir)
		if err != nil {
			return nil, fmt.Errorf("run.chdir: %w", err)
		}
		s.Cwd = d
	}
	s.NewSession = deref(p.Run.NewSession, false)
	s.PassFDs = slices.Clone(p.Run.PassFDs)
	for _, c := range p.Capabilities.Add {
		s.CapAdd = append(s.CapAdd, string(c))
	}
	if err := l.fsSpec(p, s); err != nil {
		return nil, err
	}
	if err := l.netSpec(p.Network, &s.Net); err != nil {
		return nil, err
	}
	set, err := l.sessionSpec(p, s)
	if err != nil {
		return nil, err
	}
	if err := notYet(p); err != nil {
		return nil, err
	}
	if err := limitsSpec(p.Limits, &s.Limits); err != nil {
		return nil, err
	}
	var unset []string
	for _, e := range p.Env.Pass {
		if val, ok := os.LookupEnv(e.Body()); ok {
			set = append(set, e.Body()+"="+val)
		}
	}
	var own []string
	for k, val := range p.Env.Set {
		own = append(own, k+"="+val)
	}
	sort.Strings(own)
	set = append(set, own...) // the profile's own env.set wins
	for _, e := range p.Env.Unset {
		unset = append(unset, e.Body())
	}
	env, err := environment(os.Environ(), deref(p.Env.Keep, false), set, unset)
	if err != nil {
		return nil, err
	}
	s.Env = env
	sc, err := seccompSpec(p.Seccomp)
	if err != nil {
		return nil, err
	}
	s.Seccomp = sc
	s.Landlock.Disabled = !deref(p.Landlock.Enabled, true)
	for _, l := range []struct {
		from []Entry
		to   *[]string
	}{{p.Landlock.ReadOnly, &s.Landlock.ReadOnly}, {p.Landlock.ReadWrite, &s.Landlock.ReadWrite}} {
		for _, e := range l.from {
			path, err := v.expand(e.Body())
			if err != nil {
				if e.Optional() {
					continue
				}
				return nil, fmt.Errorf("landlock: %w", err)
			}
			*l.to = append(*l.to, path)
		}
	}
	return s, nil
}

// flagNames turns the profile keys of a problem with the flags into the flags.
var flagNames = strings.NewReplacer("seccomp.deny: \"!", "--seccomp-allow \"", "seccomp.deny", "--seccomp-deny",
	"filesystem.ro_bind", "--ro-bind", "filesystem.dev_bind", "--dev-bind", "filesystem.", "--",
	"capabilities.add", "--cap-add", "env.unset", "--unsetenv", "env.set", "--setenv", "env.pass", "--pass-env",
	"run.chdir", "--chdir", "run.pass_fds", "--pass-fd", "run.hostname", "--hostname", "run.uid", "--uid", "run.gid", "--gid")

// oneLine keeps sbx run's failure to one line: the first problem, and
// where to see the rest.
func oneLine(err error) error {
	var ps Problems
	if errors.As(err, &ps) && len(ps) > 1 {
		return fmt.Errorf("%v (and %d more: sbx profile check %s)", ps[0], len(ps)-1, ps[0].File)
	}
	return err
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// notYet refuses settings this build cannot take from a profile: ignoring
// one would give less isolation than the profile promises.
func notYet(p *Profile) error {
	if p.Filesystem.Image != nil {
		return fmt.Errorf("filesystem.image: an image is picked with --image, not in a profile yet")
	}
	return nil
}

// limitsSpec fills the resource limits; the sandbox decides between the
// cgroup and the rlimit fallbacks.
func limitsSpec(l Limits, s *spec.Limits) error {
	var err error
	if l.Memory != nil {
		if s.Memory, err = spec.ParseSize(*l.Memory); err != nil {
			return fmt.Errorf("limits.memory: %w", err)
		}
	}
	if l.MemorySwap != nil {
		if s.Memory == 0 {
			return fmt.Errorf("limits.memory_swap needs limits.memory: it is memory plus swap")
		}
		if s.MemorySwap, err = spec.ParseSize(*l.MemorySwap); err != nil {
			return fmt.Errorf("limits.memory_swap: %w", err)
		}
		if s.MemorySwap > 0 && s.MemorySwap < s.Memory {
			return fmt.Errorf("limits.memory_swap %s is below limits.memory %s: it counts memory plus swap", *l.MemorySwap, *l.Memory)
		}
	}
	s.CPUs = deref(l.CPUs, 0)
	s.Pids = deref(l.Pids, 0)
	s.IOWeight = deref(l.IOWeight, 0)
	s.Strict = deref(l.Strict, false)
	s.CgroupParent = deref(l.CgroupParent, "")
	s.NoFile, s.NProc, s.CPUTime = l.NoFile, l.NProc, l.CPUTime
	if l.Core != nil {
		v := uint64(0)
		if *l.Core != "0" {
			n, err := spec.ParseSize(*l.Core)
			if err != nil {
				return fmt.Errorf("limits.core: %w", err)
			}
			v = uint64(n)
			if n < 0 {
				v = ^uint64(0)
			}
		}
		s.Core = &v
	}
	return nil
}

// fsSpec fills the root and the mounts. Mounts are ordered by the depth of
// their destination (stable otherwise), so a mount never hides one beneath it
// whichever list or layer each came from.
func (l *Loader) fsSpec(p *Profile, s *spec.Spec) error {
	v := l.Vars
	f := p.Filesystem
	s.Root = spec.Root{Kind: spec.RootKind(deref(f.Root, "host")), OverlayDriver: string(deref(f.OverlayDriver, "auto"))}
	s.Root.Overlay = deref(f.Overlay, false)
	if s.Root.Overlay && s.Root.Kind == spec.RootHost {
		// As --overlay does: the host's system made writable through an overlay.
		s.Root.Kind, s.Root.Overlay = spec.RootOverlay, false
	}
	for _, d := range []struct {
		key  string
		from *string
		to   *string
	}{{"filesystem.rootfs", f.Rootfs, &s.Root.Dir}, {"filesystem.persist", f.Persist, &s.Root.Persist}} {
		if d.from != nil {
			path, err := v.expand(*d.from)
			if err != nil {
				return fmt.Errorf("%s: %w", d.key, err)
			}
			*d.to = absolute(path, v)
		}
	}
	if s.Root.Kind == spec.RootRootfs && s.Root.Dir == "" {
		return fmt.Errorf("filesystem.root = \"rootfs\" needs filesystem.rootfs = DIR")
	}
	kinds := map[string]spec.MountKind{"bind": spec.Bind, "ro_bind": spec.ROBind, "dev_bind": spec.DevBind,
		"tmpfs": spec.Tmpfs, "hide": spec.Hide, "dir": spec.Dir, "symlink": spec.Symlink}
	for _, ml := range f.mountLists() {
		for _, e := range *ml.entries {
			m := spec.Mount{Kind: kinds[ml.name], Optional: e.Optional()}
			src, dst, two := strings.Cut(e.Body(), ":")
			if !ml.hasSource {
				src, dst, two = "", e.Body(), true
			}
			var err error
			if src != "" {
				if src, err = v.expand(src); err != nil {
					if e.Optional() {
						continue
					}
					return fmt.Errorf("filesystem.%s: %w", ml.name, err)
				}
				if ml.name != "symlink" {
					src = absolute(src, v)
				}
				if e.Create() {
					if err := os.MkdirAll(src, 0o700); err != nil {
						return fmt.Errorf("filesystem.%s: %q: %w", ml.name, string(e), err)
					}
				}
			}
			if !two {
				dst = src
			} else if dst, err = v.expand(dst); err != nil {
				if e.Optional() {
					continue
				}
				return fmt.Errorf("filesystem.%s: %w", ml.name, err)
			}
			if !filepath.IsAbs(dst) {
				return fmt.Errorf("filesystem.%s: %q: the destination %q is not absolute", ml.name, string(e), dst)
			}
			m.Src, m.Dst = src, filepath.Clean(dst)
			if err := guardWorkingDir(ml.name, string(e), m.Src, v["HOME"]); err != nil {
				return err
			}
			s.Mounts = append(s.Mounts, m)
		}
	}
	sort.SliceStable(s.Mounts, func(i, j int) bool { return depth(s.Mounts[i].Dst) < depth(s.Mounts[j].Dst) })
	return nil
}

// guardWorkingDir refuses a profile's read-write bind of the working
// directory (${PWD}, as the build profile has) when that directory is /,
// the home directory or one that holds it: started from there, an
// untrusted build would get ~/.ssh and the rest of the home writable. A
// bind of the home spelled out on the command line is the user's choice.
func guardWorkingDir(list, entry, src, home string) error {
	if list != "bind" || !strings.Contains(entry, "${PWD}") || home == "" {
		return nil
	}
	home = filepath.Clean(home)
	if src == "/" || src == home || strings.HasPrefix(home, src+"/") {
		return fmt.Errorf("filesystem.bind %q: the working directory %s is your home directory or holds it, and would be writable in the sandbox: cd into the project's directory first", entry, src)
	}
	return nil
}

func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(filepath.Clean(p), "/")
}

// absolute makes a relative host path relative to the caller's directory.
func absolute(p string, v Vars) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(v["PWD"], p)
}

// seccompSpec expands the groups and turns names into numbers.
func seccompSpec(sc Seccomp) (spec.Seccomp, error) {
	out := spec.Seccomp{
		Disabled:      !deref(sc.Enabled, true),
		DefaultAction: spec.SeccompAction(deref(sc.DefaultAction, "allow")),
		Log:           deref(sc.Log, false),
	}
	errno, err := ErrnoNumber(string(deref(sc.Errno, "EPERM")))
	if err != nil {
		return out, err
	}
	out.DefaultErrno = errno
	if len(sc.Deny) > 0 {
		r := spec.SeccompRule{Action: spec.ActErrno, Errno: errno}
		for _, d := range sc.Deny {
			r.Syscalls = append(r.Syscalls, expand(string(d))...)
		}
		out.Rules = append(out.Rules, r)
	}
	for _, r := range sc.Rule {
		sr := spec.SeccompRule{Action: spec.SeccompAction(r.Action)}
		if r.Action == "errno" {
			sr.Errno = errno
			if r.Errno != nil {
				if sr.Errno, err = ErrnoNumber(string(*r.Errno)); err != nil {
					return out, err
				}
			}
		}
		for _, s := range r.Syscalls {
			sr.Syscalls = append(sr.Syscalls, expand(string(s))...)
		}
		for _, a := range r.Args {
			sa := spec.SeccompArg{Index: a.Arg, Op: string(a.Op)}
			if a.Value != nil {
				sa.Value = a.Value.N
			}
			if a.Mask != nil {
				sa.Mask = a.Mask.N
			}
			for _, x := range a.Values {
				sa.Values = append(sa.Values, x.N)
			}
			sr.Args = append(sr.Args, sa)
		}
		out.Rules = append(out.Rules, sr)
	}
	return out, nil
}

// netSpec fills the user-mode network's settings, which only the
// user-mode modes can honour: anywhere else they would be silently lost.
func (l *Loader) netSpec(n Network, s *spec.Net) error {
	userMode := s.Mode == spec.NetSlirp || s.Mode == spec.NetSlirp4netns || s.Mode == spec.NetPasta
	set := map[string]bool{
		"network.ports": len(n.Ports) > 0, "network.allow": len(n.Allow) > 0, "network.deny": len(n.Deny) > 0,
		"network.allow_host_loopback": deref(n.AllowHostLoopback, false), "network.ipv6": deref(n.IPv6, false),
		"network.log": n.Log != nil, "network.dns": len(n.DNS) > 0,
	}
	if !userMode {
		var keys []string
		for k, on := range set {
			if on {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		if len(keys) > 0 {
			return fmt.Errorf("%s: needs network.mode = \"slirp\" (mode is %q)", strings.Join(keys, ", "), s.Mode)
		}
		return nil
	}
	for _, e := range n.Ports {
		pf, err := slirp.ParsePort(e.Body())
		if err != nil {
			return fmt.Errorf("network.ports: %w", err)
		}
		s.Ports = append(s.Ports, pf)
	}
	for _, e := range n.Allow {
		s.Allow = append(s.Allow, e.Body())
	}
	for _, e := range n.Deny {
		s.Deny = append(s.Deny, e.Body())
	}
	s.AllowHostLoopback = deref(n.AllowHostLoopback, false)
	s.IPv6 = deref(n.IPv6, false)
	if n.Log != nil {
		p, err := l.Vars.expand(*n.Log)
		if err != nil {
			return fmt.Errorf("network.log: %w", err)
		}
		s.Log = absolute(p, l.Vars)
	}
	s.DNS = slices.Clone(n.DNS)
	return nil
}
