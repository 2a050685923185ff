package profiles

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/sbx-sandbox/sbx/spec"
)

// Desktop is what a graphical program gets of the user's session
// (--x11, --wayland, --audio, --gpu, --dbus). Each part is off unless a
// profile or a flag turns it on, and each shares one named socket or device,
// never a whole directory of them.
type Desktop struct {
	X11     *X11Mode `toml:"x11,omitempty"`     // "none", or "auto": the socket of $DISPLAY if it is local
	Wayland *bool    `toml:"wayland,omitempty"` // the compositor's socket, $XDG_RUNTIME_DIR/$WAYLAND_DISPLAY
	Audio   *bool    `toml:"audio,omitempty"`   // PulseAudio's and PipeWire's sockets
	GPU     *bool    `toml:"gpu,omitempty"`     // /dev/dri
	DBus    *bool    `toml:"dbus,omitempty"`    // the session bus: it reaches every service of the desktop
}

// X11Mode is desktop.x11.
type X11Mode string

func (v *X11Mode) UnmarshalText(b []byte) error { return oneOf(b, (*string)(v), "none", "auto") }

func mergeDesktop(base, over Desktop) Desktop {
	return Desktop{
		X11:     pick(base.X11, over.X11),
		Wayland: pick(base.Wayland, over.Wayland),
		Audio:   pick(base.Audio, over.Audio),
		GPU:     pick(base.GPU, over.GPU),
		DBus:    pick(base.DBus, over.DBus),
	}
}

// HomeTmpfs is the filesystem.home (--home) value for an empty home that
// vanishes with the sandbox, which is also what no value means.
const HomeTmpfs = "tmpfs"

// buildCaches are the names filesystem.cache (--cache) takes, and the
// directories under the home each one keeps between runs.
var buildCaches = map[string][]string{
	"go":     {".cache/go-build", "go/pkg/mod"},
	"npm":    {".npm"},
	"yarn":   {".cache/yarn"},
	"pip":    {".cache/pip"},
	"cargo":  {".cargo/registry", ".cargo/git"},
	"ccache": {".cache/ccache"},
	"maven":  {".m2/repository"},
	"gradle": {".gradle/caches"},
}

// CacheNames lists the names --cache takes.
func CacheNames() []string {
	var names []string
	for n := range buildCaches {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func checkCache(name string) error {
	if _, ok := buildCaches[name]; !ok {
		return fmt.Errorf("unknown cache %q (known: %s)", name, strings.Join(CacheNames(), " "))
	}
	return nil
}

// sessionSpec adds to s what lives in the user's session rather than in the
// host's file tree: the private home kept in a directory, the build caches,
// and the desktop's sockets. It returns the environment those need; it
// creates the directories it keeps (0700) when l.Prepare, since a first run must work.
func (l *Loader) sessionSpec(p *Profile, s *spec.Spec) ([]string, error) {
	v := l.Vars
	home := v["HOME"]
	mkdir := func(d string) error {
		if !l.Prepare {
			return nil
		}
		return os.MkdirAll(d, 0o700)
	}
	var mounts []spec.Mount
	if h := deref(p.Filesystem.Home, HomeTmpfs); h != HomeTmpfs {
		dir, err := v.expand(h)
		if err != nil {
			return nil, fmt.Errorf("filesystem.home: %w", err)
		}
		dir = absolute(dir, v)
		if err := mkdir(dir); err != nil {
			return nil, fmt.Errorf("filesystem.home: %w", err)
		}
		mounts = append(mounts, spec.Mount{Kind: spec.Bind, Src: dir, Dst: home})
	}
	for _, e := range p.Filesystem.Cache {
		name := e.Body()
		if err := checkCache(name); err != nil {
			return nil, fmt.Errorf("filesystem.cache: %w", err)
		}
		for _, d := range buildCaches[name] {
			// Kept apart from the host's own caches: a build must not be
			// able to plant objects that builds outside sbx then trust.
			src := filepath.Join(v["XDG_CACHE_HOME"], "sbx", "cache", name, d)
			if err := mkdir(src); err != nil {
				return nil, fmt.Errorf("filesystem.cache %s: %w", name, err)
			}
			mounts = append(mounts, spec.Mount{Kind: spec.Bind, Src: src, Dst: filepath.Join(home, d)})
		}
	}
	dm, env, err := desktopSpec(p.Desktop, v, l.Prepare)
	if err != nil {
		return nil, err
	}
	mounts = append(mounts, dm...)
	for _, m := range mounts {
		// A mount the profile itself makes at the same place wins.
		if !slices.ContainsFunc(s.Mounts, func(x spec.Mount) bool { return x.Dst == m.Dst }) {
			s.Mounts = append(s.Mounts, m)
		}
	}
	sort.SliceStable(s.Mounts, func(i, j int) bool { return depth(s.Mounts[i].Dst) < depth(s.Mounts[j].Dst) })
	return env, nil
}

// desktopSpec finds the desktop's sockets. A part that is on but absent
// from this session (no $WAYLAND_DISPLAY, no sound server) is skipped: the
// program then finds nothing, as on a machine without it.
func desktopSpec(d Desktop, v Vars, prepare bool) ([]spec.Mount, []string, error) {
	var mounts []spec.Mount
	var env []string
	exists := func(p string) bool { _, err := os.Stat(p); return p != "" && err == nil }
	bind := func(kind spec.MountKind, p string) { mounts = append(mounts, spec.Mount{Kind: kind, Src: p, Dst: p}) }
	run := v["XDG_RUNTIME_DIR"]
	runtimeUsed := false
	if deref(d.X11, "none") == "auto" {
		if n, sock := x11Socket(v["DISPLAY"]); exists(sock) {
			bind(spec.Bind, sock)
			env = append(env, "DISPLAY=:"+n)
			auth := v["XAUTHORITY"]
			if auth == "" && v["HOME"] != "" {
				auth = filepath.Join(v["HOME"], ".Xauthority")
			}
			if prepare && exists(auth) {
				dir := filepath.Join(v["XDG_CACHE_HOME"], "sbx")
				if run != "" {
					dir = filepath.Join(run, "sbx")
				}
				own, err := sandboxXauthority(auth, n, dir)
				if err != nil {
					return nil, nil, fmt.Errorf("desktop.x11: %w", err)
				}
				if own != "" {
					bind(spec.ROBind, own)
					env = append(env, "XAUTHORITY="+own)
				}
			}
		}
	}
	if deref(d.Wayland, false) && run != "" {
		name := v["WAYLAND_DISPLAY"]
		if name == "" {
			name = "wayland-0"
		}
		sock := name
		if !filepath.IsAbs(sock) {
			sock = filepath.Join(run, name)
		}
		if exists(sock) {
			bind(spec.Bind, sock)
			env = append(env, "WAYLAND_DISPLAY="+name)
			runtimeUsed = true
		}
	}
	if deref(d.Audio, false) && run != "" {
		if sock := filepath.Join(run, "pulse", "native"); exists(sock) {
			bind(spec.Bind, sock)
			env = append(env, "PULSE_SERVER=unix:"+sock)
			if c := filepath.Join(v["XDG_CONFIG_HOME"], "pulse", "cookie"); exists(c) {
				bind(spec.ROBind, c)
			}
			runtimeUsed = true
		}
		if sock := filepath.Join(run, "pipewire-0"); exists(sock) {
			bind(spec.Bind, sock)
			runtimeUsed = true
		}
	}
	if deref(d.GPU, false) && exists("/dev/dri") {
		bind(spec.DevBind, "/dev/dri")
	}
	if deref(d.DBus, false) {
		if sock, ok := strings.CutPrefix(v["DBUS_SESSION_BUS_ADDRESS"], "unix:path="); ok {
			sock, _, _ = strings.Cut(sock, ",")
			if exists(sock) {
				bind(spec.Bind, sock)
				env = append(env, "DBUS_SESSION_BUS_ADDRESS=unix:path="+sock)
			}
		}
	}
	if runtimeUsed {
		env = append(env, "XDG_RUNTIME_DIR="+run)
	}
	return mounts, env, nil
}

// x11Socket is the number and socket of a local display (":1", ":1.0",
// "unix:1"); "" for a display over TCP, which a sandbox does not reach.
func x11Socket(display string) (string, string) {
	rest, ok := strings.CutPrefix(display, ":")
	if !ok {
		if rest, ok = strings.CutPrefix(display, "unix:"); !ok {
			return "", ""
		}
	}
	n, _, _ := strings.Cut(rest, ".")
	if n == "" || strings.Trim(n, "0123456789") != "" {
		return "", ""
	}
	return n, "/tmp/.X11-unix/X" + n
}
