// Package doctor checks whether this host can run sbx sandboxes and says,
// for each thing that does not work, how to fix it.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rootless-containers/rootlesskit/v3/pkg/parent/idtools"
	"golang.org/x/sys/unix"

	"github.com/sbx-sandbox/sbx/cgroups"
)

// Status is the verdict of one check.
type Status string

const (
	OK   Status = "ok"
	Warn Status = "warn" // a feature beyond the default sandbox will not work
	Fail Status = "FAIL" // sbx run with the default profile will not work
)

// Check is one line of the report.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Host is where the checks look.
type Host struct {
	// Proc is the procfs the sysctls are read from (/proc, or a fake tree
	// with sys/... files in it for a test).
	Proc string
	UID  int
	User string
	// Probe runs live probes (creating a user namespace) besides reading
	// files; off when Proc is a fake tree that the probes would contradict.
	Probe bool
}

// Run performs every check.
func Run(h Host) []Check {
	cs := []Check{
		userNamespaces(h),
		subIDs(h),
		seccomp(h),
		landlock(),
		overlay(h),
		tun(),
		cgroupCheck(h),
		pingGroupRange(h),
	}
	if h.Probe {
		cs = append(cs, defaultSandbox())
	}
	return cs
}

// defaultSandbox runs `sbx run -- true` with the default profile for real:
// the checks above say why a sandbox would fail, this says whether it does.
func defaultSandbox() Check {
	c := Check{Name: "sbx run"}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/proc/self/exe", "run", "--", "true")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		if msg == "" {
			msg = err.Error()
		}
		c.Status, c.Detail = Fail, "a default sandbox fails: "+strings.TrimPrefix(msg, "sbx: ")
		return c
	}
	c.Status, c.Detail = OK, fmt.Sprintf("a default sandbox runs true (%d ms)", time.Since(start).Milliseconds())
	return c
}

// Print writes one line per check and reports whether sbx run with the
// default profile can work.
func Print(w io.Writer, cs []Check) bool {
	ok := true
	for _, c := range cs {
		line := fmt.Sprintf("%-4s  %-16s %s", c.Status, c.Name+":", c.Detail)
		if c.Fix != "" {
			line += "; fix: " + c.Fix
		}
		fmt.Fprintln(w, line)
		if c.Status == Fail {
			ok = false
		}
	}
	return ok
}

// sysctl reads a /proc/sys value; ok is false when the kernel has no such knob.
func (h Host) sysctl(name string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(h.Proc, "sys", strings.ReplaceAll(name, ".", "/")))
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

func userNamespaces(h Host) Check {
	c := Check{Name: "user namespaces"}
	if v, ok := h.sysctl("kernel.unprivileged_userns_clone"); ok && v == "0" {
		c.Status, c.Detail, c.Fix = Fail, "blocked by kernel.unprivileged_userns_clone=0", "sysctl -w kernel.unprivileged_userns_clone=1 (persist in /etc/sysctl.d/)"
		return c
	}
	if v, ok := h.sysctl("user.max_user_namespaces"); ok && v == "0" {
		c.Status, c.Detail, c.Fix = Fail, "blocked by user.max_user_namespaces=0", "sysctl -w user.max_user_namespaces=15000 (persist in /etc/sysctl.d/)"
		return c
	}
	if v, ok := h.sysctl("kernel.apparmor_restrict_unprivileged_userns"); ok && v == "1" {
		c.Status, c.Detail, c.Fix = Fail, "blocked by AppArmor: kernel.apparmor_restrict_unprivileged_userns=1", "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile for sbx with the userns permission"
		return c
	}
	if h.Probe {
		if err := probeUserns(); err != nil {
			c.Status, c.Detail, c.Fix = Fail, "cannot create one: "+err.Error(), "check the sysctls above, AppArmor/SELinux policy, and whether this runs inside a container that forbids them"
			return c
		}
	}
	max, _ := h.sysctl("user.max_user_namespaces")
	c.Status, c.Detail = OK, "allowed (user.max_user_namespaces="+max+")"
	return c
}

// probeUserns creates a user namespace for real, by starting a process in
// one: the sysctls are not the only thing that can forbid it.
func probeUserns() error {
	cmd := exec.Command("/proc/self/exe", "--help")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}
	if err := cmd.Start(); err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) && errno == syscall.ENOSPC {
			return errors.New("the user.max_user_namespaces limit is reached")
		}
		return err
	}
	cmd.Wait()
	return nil
}

func subIDs(h Host) Check {
	c := Check{Name: "subuid/subgid"}
	uids, gids, err := idtools.GetSubIDRanges(h.UID, h.User)
	fix := fmt.Sprintf("as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s", h.User)
	switch {
	case err != nil:
		c.Status, c.Detail, c.Fix = Warn, "cannot read the ranges: "+err.Error(), fix
		return c
	case len(uids) == 0 || len(gids) == 0:
		c.Status, c.Detail, c.Fix = Warn, "no range for "+h.User+" in /etc/subuid and /etc/subgid (only --map-users auto needs one)", fix
		return c
	}
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			c.Status, c.Detail, c.Fix = Warn, tool+" not found (only --map-users auto needs it)", "apt-get install uidmap"
			return c
		}
		if !setuidOrCapable(p) {
			c.Status, c.Detail, c.Fix = Warn, p+" is neither setuid root nor has file capabilities", "reinstall uidmap (apt-get install --reinstall uidmap)"
			return c
		}
	}
	c.Status, c.Detail = OK, fmt.Sprintf("%d uids from %d, %d gids from %d; newuidmap and newgidmap present", uids[0].Length, uids[0].Start, gids[0].Length, gids[0].Start)
	return c
}

func setuidOrCapable(p string) bool {
	var st unix.Stat_t
	if unix.Stat(p, &st) != nil {
		return false
	}
	if st.Mode&unix.S_ISUID != 0 && st.Uid == 0 {
		return true
	}
	sz, err := unix.Getxattr(p, "security.capability", nil)
	return err == nil && sz > 0
}

func seccomp(h Host) Check {
	c := Check{Name: "seccomp"}
	actions, ok := h.sysctl("kernel.seccomp.actions_avail")
	if !ok {
		c.Status, c.Detail, c.Fix = Fail, "the kernel has no seccomp filter support", "a kernel built with CONFIG_SECCOMP_FILTER"
		return c
	}
	if !strings.Contains(actions, "errno") {
		c.Status, c.Detail, c.Fix = Fail, "the kernel's seccomp lacks the errno action ("+actions+")", "a newer kernel"
		return c
	}
	c.Status, c.Detail = OK, "filters available ("+actions+")"
	return c
}

func landlock() Check {
	c := Check{Name: "landlock"}
	const createRulesetVersion = 1 << 0
	abi, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, createRulesetVersion)
	switch errno {
	case 0:
		c.Status, c.Detail = OK, fmt.Sprintf("ABI %d", abi)
	case unix.EOPNOTSUPP:
		c.Status, c.Detail, c.Fix = Warn, "built into the kernel but not enabled; sandboxes lose the second filesystem barrier", `add "landlock" to the lsm= kernel command line`
	default:
		c.Status, c.Detail, c.Fix = Warn, "not in this kernel ("+errno.Error()+"); sandboxes lose the second filesystem barrier", "Linux 5.13 or newer with CONFIG_SECURITY_LANDLOCK"
	}
	return c
}

func overlay(h Host) Check {
	c := Check{Name: "overlay"}
	fs, _ := os.ReadFile(filepath.Join(h.Proc, "filesystems"))
	kernel := strings.Contains(string(fs), "\toverlay\n") && kernelAtLeast(h, 5, 11)
	fuse, fuseErr := exec.LookPath("fuse-overlayfs")
	_, devErr := os.Stat("/dev/fuse")
	switch {
	case kernel:
		c.Status, c.Detail = OK, "the kernel mounts overlayfs in a user namespace (Linux >= 5.11)"
	case fuseErr == nil && devErr == nil:
		c.Status, c.Detail = OK, "through "+fuse+" (the kernel's overlayfs needs Linux >= 5.11 in a user namespace)"
	default:
		c.Status, c.Detail, c.Fix = Warn, "neither the kernel's overlayfs in a user namespace nor fuse-overlayfs with /dev/fuse (only --overlay and images need it)", "apt-get install fuse-overlayfs, or Linux >= 5.11"
	}
	return c
}

func kernelAtLeast(h Host, major, minor int) bool {
	rel, ok := h.sysctl("kernel.osrelease")
	if !ok {
		return false
	}
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, _ := strconv.Atoi(parts[0])
	mi, _ := strconv.Atoi(strings.TrimFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	return ma > major || (ma == major && mi >= minor)
}

func tun() Check {
	c := Check{Name: "/dev/net/tun"}
	f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		c.Status, c.Detail, c.Fix = Warn, "cannot open it: "+err.Error()+" (only --net slirp needs it)", "modprobe tun; and make /dev/net/tun mode 0666"
		return c
	}
	f.Close()
	c.Status, c.Detail = OK, "present (user-mode networking can work)"
	return c
}

func cgroupCheck(h Host) Check {
	c := Check{Name: "cgroups"}
	sys, err := cgroups.Discover()
	if err != nil {
		c.Status, c.Detail = Warn, "cannot read the cgroup layout: "+err.Error()
		return c
	}
	mode := sys.Mode()
	where, why := sys.Writable(h.User)
	v1fix := fmt.Sprintf("as root: for c in memory pids cpu; do mkdir -p /sys/fs/cgroup/$c/sbx-%[1]s && chown %[1]s /sys/fs/cgroup/$c/sbx-%[1]s; done", h.User)
	v2fix := "log in through systemd (a user session with user@.service delegation), or chown a cgroup v2 subtree to the user"
	switch {
	case where != "":
		c.Status, c.Detail = OK, mode+" layout; limits go to "+where
	case mode == "none":
		c.Status, c.Detail, c.Fix = Warn, "no cgroup hierarchy mounted; --memory and --pids fall back to rlimits", "mount cgroup2 on /sys/fs/cgroup"
	case mode == "v2":
		c.Status, c.Detail, c.Fix = Warn, "v2, not delegated to "+h.User+" ("+why+"); --memory and --pids fall back to rlimits", v2fix
	default:
		c.Status, c.Detail, c.Fix = Warn, mode+" layout, no writable memory/pids cgroup for "+h.User+" ("+why+"); --memory and --pids fall back to rlimits", v1fix
	}
	return c
}

func pingGroupRange(h Host) Check {
	c := Check{Name: "ping"}
	v, ok := h.sysctl("net.ipv4.ping_group_range")
	fix := `sysctl -w net.ipv4.ping_group_range="0 2147483647"`
	if !ok {
		c.Status, c.Detail = Warn, "net.ipv4.ping_group_range not readable"
		return c
	}
	f := strings.Fields(v)
	if len(f) == 2 {
		lo, _ := strconv.ParseInt(f[0], 10, 64)
		hi, _ := strconv.ParseInt(f[1], 10, 64)
		gid := int64(os.Getgid())
		if lo <= gid && gid <= hi {
			c.Status, c.Detail = OK, "net.ipv4.ping_group_range="+strings.Join(f, " ")+" lets your group send ICMP echo (ping through --net slirp works)"
			return c
		}
	}
	c.Status, c.Detail, c.Fix = Warn, "net.ipv4.ping_group_range="+strings.Join(f, " ")+" excludes your group: ping from a --net slirp sandbox will not reach the outside", fix
	return c
}
