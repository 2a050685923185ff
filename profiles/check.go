package profiles

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/sbx-sandbox/sbx/slirp"
	"github.com/sbx-sandbox/sbx/spec"
)

// check finds what the types alone cannot: values that are each valid but
// impossible where they are, with the line of their key.
func check(file string, data []byte, p *Profile) Problems {
	var ps Problems
	bad := func(key string, format string, a ...any) {
		ps = append(ps, Problem{File: file, Line: keyLine(data, strings.Split(key, ".")), Msg: key + ": " + fmt.Sprintf(format, a...)})
	}
	for _, inc := range p.Include {
		if inc == "" {
			bad("include", "empty profile name")
		}
	}
	if h := p.Run.Hostname; h != nil && (*h == "" || len(*h) > 64 || strings.ContainsAny(*h, "/ \t\n")) {
		bad("run.hostname", "%q is not a hostname (1 to 64 characters, no / or spaces)", *h)
	}
	for _, id := range []struct {
		key string
		v   *uint32
	}{{"run.uid", p.Run.UID}, {"run.gid", p.Run.GID}} {
		if id.v != nil && *id.v == 1<<32-1 {
			bad(id.key, "4294967295 is not a valid id")
		}
	}
	for _, fd := range p.Run.PassFDs {
		if fd < 3 {
			bad("run.pass_fds", "%d: 0, 1 and 2 are always passed; list descriptors from 3 on", fd)
		}
	}
	if c := p.Run.Chdir; c != nil && !strings.HasPrefix(*c, "/") && !strings.HasPrefix(*c, "~") && !strings.HasPrefix(*c, "${") {
		bad("run.chdir", "%q is not an absolute path", *c)
	}
	for k := range p.Env.Set {
		if k == "" || strings.ContainsAny(k, "= \x00") {
			bad("env.set", "%q is not a variable name", k)
		}
	}
	for _, e := range append(append([]Entry{}, p.Env.Pass...), p.Env.Unset...) {
		if strings.ContainsAny(e.Body(), "= \x00$") {
			bad("env", "%q is not a variable name", e.Body())
		}
	}
	f := &p.Filesystem
	for _, l := range f.mountLists() {
		for _, e := range *l.entries {
			if err := checkMountEntry(l.name, e, l.hasSource); err != nil {
				bad("filesystem."+l.name, "%v", err)
			}
		}
	}
	for _, e := range f.Cache {
		if err := checkCache(e.Body()); err != nil {
			bad("filesystem.cache", "%v", err)
		}
	}
	for _, e := range append(append([]Entry{}, p.Landlock.ReadOnly...), p.Landlock.ReadWrite...) {
		if !absLike(e.Body()) {
			bad("landlock", "%q is not an absolute path inside the sandbox", string(e))
		}
	}
	for _, l := range []struct {
		key   string
		list  []Entry
		parse func(string) error
	}{
		{"network.ports", p.Network.Ports, func(s string) error { _, err := slirp.ParsePort(s); return err }},
		{"network.allow", p.Network.Allow, func(s string) error { _, err := slirp.ParseRule(s); return err }},
		{"network.deny", p.Network.Deny, func(s string) error { _, err := slirp.ParseRule(s); return err }},
	} {
		for _, e := range l.list {
			if !e.Removal() {
				if err := l.parse(e.Body()); err != nil {
					bad(l.key, "%v", err)
				}
			}
		}
	}
	for _, d := range p.Network.DNS {
		host := d
		if ap, err := netip.ParseAddrPort(d); err == nil {
			host = ap.Addr().String()
		}
		if _, err := netip.ParseAddr(host); err != nil {
			bad("network.dns", "%q is not IP or IP:PORT", d)
		}
	}
	for i, r := range p.Seccomp.Rule {
		key := "seccomp.rule"
		where := fmt.Sprintf("rule %d: ", i+1)
		if len(r.Syscalls) == 0 {
			bad(key, "%sno syscalls", where)
		}
		for _, s := range r.Syscalls {
			if strings.HasPrefix(string(s), "!") {
				bad(key, "%s%q: a rule cannot remove; use !NAME in seccomp.deny", where, string(s))
			}
		}
		if r.Action == "" {
			bad(key, "%sno action (allow, errno, kill-process, trap, log)", where)
		}
		if r.Errno != nil && r.Action != "errno" {
			bad(key, "%serrno is only for action \"errno\"", where)
		}
		seen := map[uint]bool{}
		for _, a := range r.Args {
			if a.Arg > 5 {
				bad(key, "%sarg %d: a syscall has arguments 0 to 5", where, a.Arg)
			}
			if seen[a.Arg] {
				bad(key, "%sarg %d is compared twice; write one rule per comparison", where, a.Arg)
			}
			seen[a.Arg] = true
			switch a.Op {
			case "not-in":
				if len(a.Values) == 0 || a.Value != nil || a.Mask != nil {
					bad(key, "%sop not-in takes values = [...] only", where)
				}
			case "masked-eq":
				if a.Value == nil || a.Mask == nil || len(a.Values) > 0 {
					bad(key, "%sop masked-eq takes mask and value", where)
				}
			case "":
				bad(key, "%sargument condition without op", where)
			default:
				if a.Value == nil || a.Mask != nil || len(a.Values) > 0 {
					bad(key, "%sop %s takes value only", where, a.Op)
				}
			}
		}
	}
	l := p.Limits
	if l.Pids != nil && *l.Pids < 1 {
		bad("limits.pids", "%d: at least 1", *l.Pids)
	}
	if l.CPUs != nil && *l.CPUs <= 0 {
		bad("limits.cpus", "%g: more than 0", *l.CPUs)
	}
	if l.IOWeight != nil && (*l.IOWeight < 1 || *l.IOWeight > 10000) {
		bad("limits.io_weight", "%d: 1 to 10000", *l.IOWeight)
	}
	if l.Memory != nil {
		if n, err := spec.ParseSize(*l.Memory); err != nil || n < 0 {
			bad("limits.memory", "%q: expected a size such as 512m", *l.Memory)
		}
	}
	if l.MemorySwap != nil {
		if _, err := spec.ParseSize(*l.MemorySwap); err != nil {
			bad("limits.memory_swap", "%v", err)
		}
	}
	if l.Core != nil && *l.Core != "0" {
		if _, err := spec.ParseSize(*l.Core); err != nil {
			bad("limits.core", "%v", err)
		}
	}
	return ps
}

func absLike(s string) bool {
	return strings.HasPrefix(s, "/") || s == "~" || strings.HasPrefix(s, "~/") || strings.HasPrefix(s, "${")
}

func checkMountEntry(list string, e Entry, hasSource bool) error {
	b := e.Body()
	if e.Removal() {
		return nil
	}
	if !hasSource {
		if e.Create() {
			return fmt.Errorf("%q: + (make the source directory) is for bind and ro_bind", string(e))
		}
		if !absLike(b) {
			return fmt.Errorf("%q is not an absolute path inside the sandbox", string(e))
		}
		return nil
	}
	if e.Create() && list != "bind" && list != "ro_bind" {
		return fmt.Errorf("%q: + (make the source directory) is for bind and ro_bind", string(e))
	}
	src, dst, two := strings.Cut(b, ":")
	if list == "symlink" {
		if !two || src == "" || !absLike(dst) {
			return fmt.Errorf("%q: write TARGET:LINK with LINK an absolute path", string(e))
		}
		return nil
	}
	if src == "" || (two && !absLike(dst)) {
		return fmt.Errorf("%q: write SRC[:DST] with DST an absolute path", string(e))
	}
	return nil
}
