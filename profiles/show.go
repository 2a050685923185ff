package profiles

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/BurntSushi/toml"
)

// Show prints a resolved profile as TOML that `sbx profile check` accepts:
// includes applied, nothing left to remove, groups kept as written.
func Show(p *Profile, src Source) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# The profile %q from %s, with its includes applied.\n", src.Name, src.Path)
	fmt.Fprintf(&b, "# Seccomp groups: %s\n", groupDoc())
	// Everything is here already: the printed profile builds on nothing.
	b.WriteString("include = []\n")
	if err := toml.NewEncoder(&b).Encode(p); err != nil {
		return nil, fmt.Errorf("print profile %s: %w", src.Name, err)
	}
	return b.Bytes(), nil
}

func groupDoc() string {
	return strings.Join(groupNames(), " ") + " (`sbx profile groups` lists their syscalls)"
}

// Check validates each file on its own, includes and all, and returns every
// problem found.
func (l *Loader) Check(files ...string) Problems {
	var ps Problems
	for _, f := range files {
		ref := f
		if !isPath(ref) {
			ref = "./" + ref
		}
		p, _, err := l.Load(ref)
		if err == nil {
			_, err = l.Spec(p)
			if err != nil {
				err = Problems{{File: f, Msg: err.Error()}}
			}
		}
		if err != nil {
			if more, ok := err.(Problems); ok {
				ps = append(ps, more...)
			} else {
				ps = append(ps, Problem{File: f, Msg: err.Error()})
			}
		}
	}
	return ps
}
