package profiles

import (
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/sbx-sandbox/sbx/spec"
)

// header returns the comment block a profile file starts with: the
// built-in profiles say there what they allow and why, and `profile show`
// carries it so that the resolved profile still explains itself.
func (l *Loader) header(src Source) string {
	var b []byte
	var err error
	if src.Builtin() {
		b, err = fs.ReadFile(l.Builtin, src.Name+".toml")
	} else {
		b, err = os.ReadFile(src.Path)
	}
	if err != nil {
		return ""
	}
	var out strings.Builder
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if !strings.HasPrefix(line, "#") {
			break
		}
		out.WriteString(line)
	}
	return out.String()
}

// sharedNow lists, as comments, what the profile's home, caches and
// desktop section share from this session, resolved against the caller's
// environment (a socket that is absent is not listed).
func (l *Loader) sharedNow(p *Profile) string {
	var s spec.Spec
	if _, err := l.sessionSpec(p, &s); err != nil {
		return fmt.Sprintf("# From this session: %v\n", err)
	}
	if len(s.Mounts) == 0 {
		return ""
	}
	var out strings.Builder
	out.WriteString("# From this session it shares:\n")
	for _, m := range s.Mounts {
		if m.Src == m.Dst {
			fmt.Fprintf(&out, "#   %-8s %s\n", m.Kind, m.Src)
		} else {
			fmt.Fprintf(&out, "#   %-8s %s at %s\n", m.Kind, m.Src, m.Dst)
		}
	}
	if deref(p.Desktop.X11, "none") == "auto" {
		if _, sock := x11Socket(l.Vars["DISPLAY"]); sock != "" && slicesHasDst(s.Mounts, sock) {
			out.WriteString("#   and a cookie file with $DISPLAY's cookie only, as $XAUTHORITY\n")
		}
	}
	return out.String()
}

func slicesHasDst(ms []spec.Mount, dst string) bool {
	for _, m := range ms {
		if m.Dst == dst {
			return true
		}
	}
	return false
}
