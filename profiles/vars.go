package profiles

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// knownVars are the ${VAR}s a path may use. The set is closed so that a
// profile reads the same on every machine and a typo is an error, not an
// empty string.
var knownVars = []string{"HOME", "PWD", "UID", "GID", "USER", "XDG_RUNTIME_DIR",
	"XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "WAYLAND_DISPLAY", "DISPLAY_NUMBER"}

func checkVars(s string) error {
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			return nil
		}
		rest := s[i+1:]
		if !strings.HasPrefix(rest, "{") {
			return fmt.Errorf("write variables as ${NAME}")
		}
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			return fmt.Errorf("unclosed ${")
		}
		name := rest[1:end]
		known := false
		for _, k := range knownVars {
			known = known || k == name
		}
		if !known {
			return fmt.Errorf("unknown variable ${%s} (known: %s)", name, strings.Join(knownVars, " "))
		}
		s = rest[end+1:]
	}
}

// Vars are the values of the known variables for one resolution.
type Vars map[string]string

// HostVars reads the variables from the calling user's environment.
func HostVars() Vars {
	home, _ := os.UserHomeDir()
	pwd, _ := os.Getwd()
	v := Vars{
		"HOME": home, "PWD": pwd,
		"UID": strconv.Itoa(os.Getuid()), "GID": strconv.Itoa(os.Getgid()),
		"USER":            os.Getenv("USER"),
		"XDG_RUNTIME_DIR": os.Getenv("XDG_RUNTIME_DIR"),
		"XDG_CONFIG_HOME": os.Getenv("XDG_CONFIG_HOME"),
		"XDG_DATA_HOME":   os.Getenv("XDG_DATA_HOME"),
		"XDG_CACHE_HOME":  os.Getenv("XDG_CACHE_HOME"),
		"WAYLAND_DISPLAY": os.Getenv("WAYLAND_DISPLAY"),
		// Read by the desktop section only; a profile cannot name them.
		"DISPLAY":                  os.Getenv("DISPLAY"),
		"XAUTHORITY":               os.Getenv("XAUTHORITY"),
		"DBUS_SESSION_BUS_ADDRESS": os.Getenv("DBUS_SESSION_BUS_ADDRESS"),
	}
	for k, def := range map[string]string{"XDG_CONFIG_HOME": ".config", "XDG_DATA_HOME": ".local/share", "XDG_CACHE_HOME": ".cache"} {
		if v[k] == "" && home != "" {
			v[k] = filepath.Join(home, def)
		}
	}
	// DISPLAY=:1.0 or host:1 names the socket /tmp/.X11-unix/X1 (for a local display).
	if d := os.Getenv("DISPLAY"); strings.HasPrefix(d, ":") {
		n, _, _ := strings.Cut(d[1:], ".")
		if _, err := strconv.Atoi(n); err == nil {
			v["DISPLAY_NUMBER"] = n
		}
	}
	return v
}

// expand replaces a leading ~ and every ${VAR}; an unset variable is an
// error, so a path never silently becomes another one.
func (v Vars) expand(s string) (string, error) {
	if s == "~" || strings.HasPrefix(s, "~/") {
		s = "${HOME}" + s[1:]
	}
	var missing string
	out := os.Expand(s, func(name string) string {
		val := v[name]
		if val == "" && missing == "" {
			missing = name
		}
		return val
	})
	if missing != "" {
		return "", fmt.Errorf("%s: ${%s} is not set", s, missing)
	}
	return out, nil
}
