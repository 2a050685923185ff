package profiles

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
)

// merge lays over on top of base: a scalar over sets wins, a list adds to
// base's, and "!X" in over removes base's X. base has no removals left (it
// is itself resolved). A removal that removes nothing is a problem: it is
// almost always a misspelt path or name.
func merge(base, over *Profile, v Vars) (*Profile, []string) {
	var problems []string
	note := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	out := &Profile{
		Description: pick(base.Description, over.Description),
		Run: Run{
			Hostname:   pick(base.Run.Hostname, over.Run.Hostname),
			UID:        pick(base.Run.UID, over.Run.UID),
			GID:        pick(base.Run.GID, over.Run.GID),
			MapUsers:   pick(base.Run.MapUsers, over.Run.MapUsers),
			Chdir:      pick(base.Run.Chdir, over.Run.Chdir),
			NewSession: pick(base.Run.NewSession, over.Run.NewSession),
			PassFDs:    replace(base.Run.PassFDs, over.Run.PassFDs),
		},
		Env: Env{
			Keep:  pick(base.Env.Keep, over.Env.Keep),
			Set:   mergeMap(base.Env.Set, over.Env.Set),
			Unset: mergeEntries("env.unset", base.Env.Unset, over.Env.Unset, Entry.Body, note),
			Pass:  mergeEntries("env.pass", base.Env.Pass, over.Env.Pass, Entry.Body, note),
		},
		Filesystem: mergeFilesystem(base.Filesystem, over.Filesystem, v, note),
		Network: Network{
			Mode:  pick(base.Network.Mode, over.Network.Mode),
			Ports: mergeEntries("network.ports", base.Network.Ports, over.Network.Ports, Entry.Body, note),
			Allow: mergeEntries("network.allow", base.Network.Allow, over.Network.Allow, Entry.Body, note),
			Deny:  mergeEntries("network.deny", base.Network.Deny, over.Network.Deny, Entry.Body, note),
			DNS:   replace(base.Network.DNS, over.Network.DNS),

			AllowHostLoopback: pick(base.Network.AllowHostLoopback, over.Network.AllowHostLoopback),
			IPv6:              pick(base.Network.IPv6, over.Network.IPv6),
			Log:               pick(base.Network.Log, over.Network.Log),
		},
		Capabilities: Capabilities{Add: mergeCaps(base.Capabilities.Add, over.Capabilities.Add, note)},
		Seccomp:      mergeSeccomp(base.Seccomp, over.Seccomp, note),
		Landlock: Landlock{
			Enabled:   pick(base.Landlock.Enabled, over.Landlock.Enabled),
			ReadOnly:  mergeEntries("landlock.read_only", base.Landlock.ReadOnly, over.Landlock.ReadOnly, Entry.Body, note),
			ReadWrite: mergeEntries("landlock.read_write", base.Landlock.ReadWrite, over.Landlock.ReadWrite, Entry.Body, note),
		},
		Limits: Limits{
			Memory:       pick(base.Limits.Memory, over.Limits.Memory),
			MemorySwap:   pick(base.Limits.MemorySwap, over.Limits.MemorySwap),
			CPUs:         pick(base.Limits.CPUs, over.Limits.CPUs),
			Pids:         pick(base.Limits.Pids, over.Limits.Pids),
			IOWeight:     pick(base.Limits.IOWeight, over.Limits.IOWeight),
			Strict:       pick(base.Limits.Strict, over.Limits.Strict),
			CgroupParent: pick(base.Limits.CgroupParent, over.Limits.CgroupParent),
			NoFile:       pick(base.Limits.NoFile, over.Limits.NoFile),
			NProc:        pick(base.Limits.NProc, over.Limits.NProc),
			Core:         pick(base.Limits.Core, over.Limits.Core),
			CPUTime:      pick(base.Limits.CPUTime, over.Limits.CPUTime),
		},
		Desktop: mergeDesktop(base.Desktop, over.Desktop),
	}
	return out, problems
}

func pick[T any](base, over *T) *T {
	if over != nil {
		return over
	}
	return base
}

func replace[T any](base, over []T) []T {
	if over != nil {
		return over
	}
	return base
}

func mergeMap(base, over map[string]string) map[string]string {
	if base == nil && over == nil {
		return nil
	}
	out := maps.Clone(base)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, over)
	return out
}

// mergeEntries merges one list: an entry of over replaces base's entry with
// the same key, "!KEY" removes it.
func mergeEntries(list string, base, over []Entry, key func(Entry) string, note func(string, ...any)) []Entry {
	out := slices.Clone(base)
	for _, e := range over {
		k := key(e)
		before := len(out)
		out = slices.DeleteFunc(out, func(b Entry) bool { return key(b) == k })
		if e.Removal() {
			if len(out) == before {
				note("%s: %q removes nothing the included profiles have", list, string(e))
			}
			continue
		}
		out = append(out, e)
	}
	return out
}

// mountKey is what identifies a mount across the mount lists: where it is
// mounted, with ~, variables and a relative source resolved when they can
// be, so "${PWD}" in a profile and "." on the command line are one place.
func mountKey(e Entry, hasSource bool, v Vars) string {
	b := e.Body()
	if hasSource {
		if _, dst, ok := strings.Cut(b, ":"); ok {
			b = dst
		}
	}
	if x, err := v.expand(b); err == nil {
		b = absolute(x, v)
	}
	return path.Clean(b)
}

// mergeFilesystem merges the mount lists together: a mount of over at a
// destination replaces whatever base mounted there, in any list, and
// "!DST" removes it.
func mergeFilesystem(base, over Filesystem, v Vars, note func(string, ...any)) Filesystem {
	out := Filesystem{
		Root:          pick(base.Root, over.Root),
		Rootfs:        pick(base.Rootfs, over.Rootfs),
		Image:         pick(base.Image, over.Image),
		Overlay:       pick(base.Overlay, over.Overlay),
		Persist:       pick(base.Persist, over.Persist),
		OverlayDriver: pick(base.OverlayDriver, over.OverlayDriver),
		Sys:           pick(base.Sys, over.Sys),
		Home:          pick(base.Home, over.Home),
		Cache:         mergeEntries("filesystem.cache", base.Cache, over.Cache, Entry.Body, note),
	}
	baseLists, overLists, outLists := base.mountLists(), over.mountLists(), out.mountLists()
	for i := range baseLists {
		*outLists[i].entries = slices.Clone(*baseLists[i].entries)
	}
	removeEverywhere := func(k string) bool {
		removed := false
		for _, l := range outLists {
			n := len(*l.entries)
			*l.entries = slices.DeleteFunc(*l.entries, func(b Entry) bool { return mountKey(b, l.hasSource, v) == k })
			removed = removed || len(*l.entries) != n
		}
		return removed
	}
	for i, l := range overLists {
		for _, e := range *l.entries {
			removed := removeEverywhere(mountKey(e, l.hasSource, v))
			if e.Removal() {
				if !removed {
					note("filesystem.%s: %q removes nothing the included profiles mount", l.name, string(e))
				}
				continue
			}
			*outLists[i].entries = append(*outLists[i].entries, e)
		}
	}
	return out
}

type mountList struct {
	name      string
	entries   *[]Entry
	hasSource bool // entries are SRC[:DST]; else DST only
}

func (f *Filesystem) mountLists() []mountList {
	return []mountList{
		{"bind", &f.Bind, true}, {"ro_bind", &f.ROBind, true}, {"dev_bind", &f.DevBind, true},
		{"tmpfs", &f.Tmpfs, false}, {"hide", &f.Hide, false}, {"dir", &f.Dir, false},
		{"symlink", &f.Symlink, true},
	}
}

func mergeCaps(base, over []Cap, note func(string, ...any)) []Cap {
	out := slices.Clone(base)
	for _, c := range over {
		name := strings.TrimPrefix(string(c), "!")
		n := len(out)
		out = slices.DeleteFunc(out, func(b Cap) bool { return string(b) == name })
		if strings.HasPrefix(string(c), "!") {
			if len(out) == n {
				note("capabilities.add: %q removes nothing the included profiles add", string(c))
			}
			continue
		}
		out = append(out, c)
	}
	return out
}

// mergeSeccomp merges at the level of syscalls: every syscall over names,
// in deny or in a rule, is taken out of base's deny list and rules, so that
// what the including profile says about a syscall is all that applies to
// it; "!NAME" and "!@group" take syscalls out without saying anything new.
func mergeSeccomp(base, over Seccomp, note func(string, ...any)) Seccomp {
	out := Seccomp{
		Enabled:       pick(base.Enabled, over.Enabled),
		DefaultAction: pick(base.DefaultAction, over.DefaultAction),
		Errno:         pick(base.Errno, over.Errno),
		Log:           pick(base.Log, over.Log),
		Deny:          slices.Clone(base.Deny),
	}
	for _, r := range base.Rule {
		r.Syscalls = slices.Clone(r.Syscalls)
		out.Rule = append(out.Rule, r)
	}
	take := func(names []string) bool {
		removed := false
		set := map[string]bool{}
		for _, n := range names {
			set[n] = true
		}
		var deny []Syscall
		for _, d := range out.Deny {
			members := expand(string(d))
			kept := slices.DeleteFunc(slices.Clone(members), func(m string) bool { return set[m] })
			if len(kept) == len(members) {
				deny = append(deny, d)
				continue
			}
			removed = true
			for _, m := range kept {
				deny = append(deny, Syscall(m))
			}
		}
		out.Deny = deny
		var rules []Rule
		for _, r := range out.Rule {
			var kept []Syscall
			for _, s := range r.Syscalls {
				members := expand(string(s))
				left := slices.DeleteFunc(slices.Clone(members), func(m string) bool { return set[m] })
				if len(left) == len(members) {
					kept = append(kept, s)
					continue
				}
				removed = true
				for _, m := range left {
					kept = append(kept, Syscall(m))
				}
			}
			if len(kept) > 0 {
				r.Syscalls = kept
				rules = append(rules, r)
			}
		}
		out.Rule = rules
		return removed
	}
	var named []string
	for _, d := range over.Deny {
		if strings.HasPrefix(string(d), "!") {
			if !take(expand(strings.TrimPrefix(string(d), "!"))) {
				note("seccomp.deny: %q removes nothing the included profiles deny", string(d))
			}
			continue
		}
		named = append(named, expand(string(d))...)
	}
	for _, r := range over.Rule {
		for _, s := range r.Syscalls {
			named = append(named, expand(string(s))...)
		}
	}
	take(named)
	for _, d := range over.Deny {
		if !strings.HasPrefix(string(d), "!") && !slices.Contains(out.Deny, d) {
			out.Deny = append(out.Deny, d)
		}
	}
	out.Rule = append(out.Rule, over.Rule...)
	return out
}

// expand turns a @group into its members and a name into itself.
func expand(s string) []string {
	if m, ok := groups[s]; ok {
		return slices.Clone(m)
	}
	return []string{s}
}
