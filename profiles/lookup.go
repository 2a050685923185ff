package profiles

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

//go:embed builtin/*.toml
var builtinFS embed.FS

// Source is where a profile was found.
type Source struct {
	Name string // the profile's name (the file name without .toml)
	Path string // the file, or "builtin:NAME"
}

// Builtin reports whether the profile is embedded in sbx.
func (s Source) Builtin() bool { return strings.HasPrefix(s.Path, "builtin:") }

// Loader finds profiles: a path, then each of Dirs, then the built-in ones.
type Loader struct {
	Dirs    []string // searched in order for NAME.toml
	Builtin fs.FS    // NAME.toml at its root
	Vars    Vars
	// Prepare makes Spec create what the sandbox is about to use: a kept
	// home, cache directories, the display's cookie file. Only sbx run
	// sets it; profile check and show leave the disk alone.
	Prepare bool
}

// NewLoader returns the loader sbx uses: $XDG_CONFIG_HOME/sbx/profiles,
// /etc/sbx/profiles, then the profiles built into the binary.
func NewLoader() *Loader {
	v := HostVars()
	var dirs []string
	if c := v["XDG_CONFIG_HOME"]; c != "" {
		dirs = append(dirs, filepath.Join(c, "sbx", "profiles"))
	}
	dirs = append(dirs, "/etc/sbx/profiles")
	sub, _ := fs.Sub(builtinFS, "builtin")
	return &Loader{Dirs: dirs, Builtin: sub, Vars: v}
}

// isPath tells a path (./ci.toml, /etc/x.toml) from a profile name (build).
func isPath(ref string) bool {
	return strings.ContainsRune(ref, '/') || strings.HasSuffix(ref, ".toml")
}

// candidates lists, in lookup order, where the profile called name may be.
func (l *Loader) candidates(name string) []Source {
	var c []Source
	for _, d := range l.Dirs {
		c = append(c, Source{Name: name, Path: filepath.Join(d, name+".toml")})
	}
	return append(c, Source{Name: name, Path: "builtin:" + name})
}

func (l *Loader) read(s Source) ([]byte, error) {
	if s.Builtin() {
		return fs.ReadFile(l.Builtin, strings.TrimPrefix(s.Path, "builtin:")+".toml")
	}
	return readProfile(s.Path)
}

// maxProfileSize bounds what a profile file may hold: a hostile include of
// /dev/zero or a FIFO must be an error, not a hang or all of memory.
const maxProfileSize = 1 << 20

// readProfile reads a profile file, which must be a regular file of at
// most maxProfileSize bytes.
func readProfile(p string) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO must not wait for a writer.
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: p, Err: errors.New("not a regular file")}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxProfileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxProfileSize {
		return nil, &fs.PathError{Op: "read", Path: p, Err: fmt.Errorf("larger than %d bytes", maxProfileSize)}
	}
	return data, nil
}

// find locates ref. from is the including profile, or nil on the command
// line: a relative path is relative to the including file, and a name that
// would find the including file itself finds the next one in the lookup
// order, so ~/.config/sbx/profiles/default.toml can include "default".
func (l *Loader) find(ref string, from *Source) (Source, []byte, error) {
	if isPath(ref) {
		p := ref
		if from != nil && !filepath.IsAbs(p) {
			if from.Builtin() {
				return Source{}, nil, fmt.Errorf("a built-in profile can include only names, not %q", ref)
			}
			p = filepath.Join(filepath.Dir(from.Path), p)
		}
		data, err := readProfile(p)
		if err != nil {
			return Source{}, nil, fmt.Errorf("profile %s: %w", p, unwrapPathErr(err))
		}
		return Source{Name: strings.TrimSuffix(filepath.Base(p), ".toml"), Path: p}, data, nil
	}
	if !validName(ref) {
		return Source{}, nil, fmt.Errorf("%q is not a profile name (letters, digits, - _ .) nor a path (./NAME.toml)", ref)
	}
	cands := l.candidates(ref)
	if from != nil {
		for i, c := range cands {
			if c.Path == from.Path {
				cands = cands[i+1:]
				break
			}
		}
	}
	for _, c := range cands {
		data, err := l.read(c)
		if err == nil {
			return c, data, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return Source{}, nil, fmt.Errorf("profile %s: %w", c.Path, unwrapPathErr(err))
		}
	}
	return Source{}, nil, fmt.Errorf("no profile %q (looked in %s and the built-in profiles; `sbx profile list` shows them)", ref, strings.Join(l.Dirs, ", "))
}

func validName(n string) bool {
	if n == "" || strings.HasPrefix(n, ".") {
		return false
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Load finds ref and resolves its includes: the result has no include and
// no removal left.
func (l *Loader) Load(ref string) (*Profile, Source, error) {
	return l.load(ref, nil, nil)
}

func (l *Loader) load(ref string, from *Source, stack []Source) (*Profile, Source, error) {
	src, data, err := l.find(ref, from)
	if err != nil {
		return nil, Source{}, err
	}
	for i, s := range stack {
		if s.Path == src.Path {
			var names []string
			for _, c := range append(stack[i:], src) {
				names = append(names, c.Path)
			}
			return nil, Source{}, Problems{{File: from.Path, Line: keyLine(data0(l, *from), []string{"include"}),
				Msg: "include cycle: " + strings.Join(names, " -> ")}}
		}
	}
	p, err := decode(src.Path, data)
	if err != nil {
		return nil, Source{}, err
	}
	if ps := check(src.Path, data, p); len(ps) > 0 {
		return nil, Source{}, ps
	}
	base := &Profile{}
	for _, inc := range includes(p, src) {
		ip, _, err := l.load(inc, &src, append(stack, src))
		if err != nil {
			var ps Problems
			if errors.As(err, &ps) {
				return nil, Source{}, err
			}
			return nil, Source{}, Problems{{File: src.Path, Line: keyLine(data, []string{"include"}), Msg: err.Error()}}
		}
		base, _ = merge(base, ip, l.Vars)
	}
	out, problems := merge(base, p, l.Vars)
	if len(problems) > 0 {
		var ps Problems
		for _, m := range problems {
			ps = append(ps, Problem{File: src.Path, Line: keyLine(data, removalKey(m)), Msg: m})
		}
		return nil, Source{}, ps
	}
	return out, src, nil
}

// includes returns what a profile builds on. One that does not say starts
// from the built-in default (or whatever "default" finds), so leaving a
// section out never drops a protection; `include = []` starts from nothing.
func includes(p *Profile, src Source) []string {
	if p.Include == nil && src.Path != "builtin:"+DefaultProfile {
		return []string{DefaultProfile}
	}
	return p.Include
}

// data0 re-reads a profile already read once, to point at its include line.
func data0(l *Loader, s Source) []byte {
	data, _ := l.read(s)
	return data
}

// removalKey turns "seccomp.deny: ..." into the key to find the line of.
func removalKey(msg string) []string {
	k, _, _ := strings.Cut(msg, ":")
	if !strings.Contains(k, ".") {
		k = "filesystem." + k
	}
	return strings.Split(k, ".")
}

// Listed is one line of `sbx profile list`.
type Listed struct {
	Source
	Description string
	Shadows     []string // paths of profiles of the same name this one hides
}

// List returns every profile the lookup can find by name, each once, the
// one a name finds first.
func (l *Loader) List() ([]Listed, error) {
	found := map[string]*Listed{}
	var order []string
	add := func(s Source) {
		data, err := l.read(s)
		if err != nil {
			return
		}
		if f, ok := found[s.Name]; ok {
			f.Shadows = append(f.Shadows, s.Path)
			return
		}
		desc := ""
		if p, err := decode(s.Path, data); err == nil && p.Description != nil {
			desc = *p.Description
		} else if err != nil {
			desc = "(broken: `sbx profile check " + s.Path + "`)"
		}
		found[s.Name] = &Listed{Source: s, Description: desc}
		order = append(order, s.Name)
	}
	for _, d := range l.Dirs {
		ents, err := os.ReadDir(d)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("list %s: %w", d, err)
		}
		for _, e := range ents {
			if n, ok := strings.CutSuffix(e.Name(), ".toml"); ok && validName(n) && !e.IsDir() {
				add(Source{Name: n, Path: filepath.Join(d, e.Name())})
			}
		}
	}
	ents, _ := fs.ReadDir(l.Builtin, ".")
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".toml"); ok {
			add(Source{Name: n, Path: "builtin:" + n})
		}
	}
	sort.Strings(order)
	out := make([]Listed, 0, len(order))
	for _, n := range order {
		out = append(out, *found[n])
	}
	return out, nil
}
