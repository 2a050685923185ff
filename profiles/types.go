package profiles

import (
	"fmt"
	"strconv"
	"strings"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/sbx-sandbox/sbx/spec"
)

// The value types below check themselves while the TOML is decoded, so that
// a bad value is reported with the line it is on.

// MapUsers is run.map_users: "self" (your own ids) or "auto" (your subordinate ranges too).
type MapUsers string

// RootKind is filesystem.root.
type RootKind string

// OverlayDriver is filesystem.overlay_driver.
type OverlayDriver string

// SysMode is filesystem.sys.
type SysMode string

// NetMode is network.mode.
type NetMode string

func (v *MapUsers) UnmarshalText(b []byte) error { return oneOf(b, (*string)(v), "self", "auto") }
func (v *RootKind) UnmarshalText(b []byte) error {
	return oneOf(b, (*string)(v), "host", "overlay", "rootfs", "image")
}
func (v *OverlayDriver) UnmarshalText(b []byte) error {
	return oneOf(b, (*string)(v), "auto", "kernel", "fuse")
}
func (v *SysMode) UnmarshalText(b []byte) error { return oneOf(b, (*string)(v), "none", "ro") }
func (v *NetMode) UnmarshalText(b []byte) error {
	return oneOf(b, (*string)(v), "none", "host", "slirp", "slirp4netns", "pasta")
}

func oneOf(b []byte, dst *string, allowed ...string) error {
	for _, a := range allowed {
		if string(b) == a {
			*dst = a
			return nil
		}
	}
	return fmt.Errorf("%q is not one of %s", b, strings.Join(allowed, ", "))
}

// Entry is one element of a mergeable path list: "[!|?|+]TEXT". The text
// may use ~ and ${VAR} for the variables in knownVars.
type Entry string

func (e *Entry) UnmarshalText(b []byte) error {
	s := string(b)
	body := Entry(s).Body()
	if body == "" {
		return fmt.Errorf("empty entry %q", s)
	}
	if err := checkVars(body); err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	*e = Entry(s)
	return nil
}

// Removal reports whether the entry is "!X", which removes an inherited X.
func (e Entry) Removal() bool { return strings.HasPrefix(string(e), "!") }

// Optional reports whether the entry is "?X": skipped when its source is missing.
func (e Entry) Optional() bool { return strings.HasPrefix(string(e), "?") }

// Create reports whether the entry is "+SRC[:DST]": a bind whose source
// directory sbx makes (as you, mode 0700) when it is missing, for state a
// sandbox keeps between runs.
func (e Entry) Create() bool { return strings.HasPrefix(string(e), "+") }

// Body is the entry without its !, ? or + mark.
func (e Entry) Body() string {
	for _, mark := range []string{"!", "?", "+"} {
		if b, ok := strings.CutPrefix(string(e), mark); ok {
			return b
		}
	}
	return string(e)
}

// Cap is a capability name, written CAP_NET_RAW (or net_raw); "!CAP" removes an inherited one.
type Cap string

func (c *Cap) UnmarshalText(b []byte) error {
	s := string(b)
	neg := strings.HasPrefix(s, "!")
	n, err := CapName(strings.TrimPrefix(s, "!"))
	if err != nil {
		return err
	}
	if neg {
		n = "!" + n
	}
	*c = Cap(n)
	return nil
}

// CapName returns the canonical CAP_X spelling of a capability name, or an error naming the unknown one.
func CapName(s string) (string, error) {
	if _, n, ok := spec.CapNumber(s); ok {
		return n, nil
	}
	return "", fmt.Errorf("unknown capability %q (see capabilities(7))", s)
}

// Syscall is a syscall name or an @group, optionally "!"-prefixed in deny.
type Syscall string

func (s *Syscall) UnmarshalText(b []byte) error {
	n := strings.TrimPrefix(string(b), "!")
	if err := checkSyscall(n); err != nil {
		return err
	}
	*s = Syscall(b)
	return nil
}

// checkSyscall accepts a @group or a name libseccomp knows on any
// architecture: a syscall this machine lacks is fine (the filter skips it),
// a misspelt one is not.
func checkSyscall(n string) error {
	if strings.HasPrefix(n, "@") {
		if _, ok := groups[n]; !ok {
			return fmt.Errorf("unknown syscall group %q (groups: %s)", n, strings.Join(groupNames(), " "))
		}
		return nil
	}
	if _, err := libseccomp.GetSyscallFromName(n); err != nil {
		return fmt.Errorf("unknown syscall %q", n)
	}
	return nil
}

// Action is a seccomp action: allow, errno, kill-process, trap, log.
type Action string

func (a *Action) UnmarshalText(b []byte) error {
	return oneOf(b, (*string)(a), "allow", "errno", "kill-process", "trap", "log")
}

// Errno is an errno name such as EPERM.
type Errno string

func (e *Errno) UnmarshalText(b []byte) error {
	if _, err := ErrnoNumber(string(b)); err != nil {
		return err
	}
	*e = Errno(b)
	return nil
}

// ErrnoNumber returns the number of an errno name.
func ErrnoNumber(name string) (int, error) {
	for i := 1; i < 4096; i++ {
		if unix.ErrnoName(unix.Errno(i)) == name {
			return i, nil
		}
	}
	return 0, fmt.Errorf("unknown errno %q (write it like EPERM)", name)
}

// Op is the comparison of an argument condition.
type Op string

func (o *Op) UnmarshalText(b []byte) error {
	return oneOf(b, (*string)(o), "==", "!=", "<", "<=", ">", ">=", "masked-eq", "not-in")
}

// Value is a number in an argument condition: an integer, or a string
// holding a number ("0x5412") or a constant's name ("TIOCSTI").
type Value struct {
	N    uint64
	Name string // the name it was written with, kept for `profile show`
}

func (v *Value) UnmarshalTOML(data any) error {
	switch d := data.(type) {
	case int64:
		v.N = uint64(d)
		return nil
	case string:
		if n, ok := constants[d]; ok {
			v.N, v.Name = n, d
			return nil
		}
		n, err := strconv.ParseUint(d, 0, 64)
		if err != nil {
			return fmt.Errorf("%q is neither a number nor a known constant (%s)", d, strings.Join(constantNames(), " "))
		}
		v.N = n
		return nil
	}
	return fmt.Errorf("a value must be an integer or a string, not %T", data)
}

func (v Value) MarshalText() ([]byte, error) {
	if v.Name != "" {
		return []byte(v.Name), nil
	}
	return []byte(fmt.Sprintf("%#x", v.N)), nil
}
