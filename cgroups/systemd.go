package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
)

// userBus is a connection to the user's systemd over its session bus. On
// cgroup v2 machines where the user's own cgroup is not delegated (a login
// session scope), systemd is who may make a cgroup for the user: a
// transient scope with Delegate=yes, as podman does.
type userBus struct {
	conn *dbus.Conn
}

const (
	systemdDest = "org.freedesktop.systemd1"
	systemdPath = dbus.ObjectPath("/org/freedesktop/systemd1")
	managerIf   = "org.freedesktop.systemd1.Manager"
)

// busAddress is the user bus: $DBUS_SESSION_BUS_ADDRESS, else the
// well-known socket in $XDG_RUNTIME_DIR.
func busAddress() (string, error) {
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" {
		return a, nil
	}
	rt := os.Getenv("XDG_RUNTIME_DIR")
	if rt == "" {
		return "", errors.New("no user bus: neither DBUS_SESSION_BUS_ADDRESS nor XDG_RUNTIME_DIR is set")
	}
	sock := filepath.Join(rt, "bus")
	if _, err := os.Stat(sock); err != nil {
		return "", fmt.Errorf("no user bus at %s", sock)
	}
	return "unix:path=" + sock, nil
}

func dialUserBus() (*userBus, error) {
	addr, err := busAddress()
	if err != nil {
		return nil, err
	}
	conn, err := dbus.Dial(addr)
	if err != nil {
		return nil, fmt.Errorf("user bus %s: %w", addr, err)
	}
	if err := conn.Auth([]dbus.Auth{dbus.AuthExternal(fmt.Sprint(os.Getuid()))}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("user bus: authenticate: %w", err)
	}
	if err := conn.Hello(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("user bus: %w", err)
	}
	// Ask before the sandbox starts whether a systemd answers at all, so a
	// missing one means the rlimit fallback rather than a failed start.
	var v dbus.Variant
	err = conn.Object(systemdDest, systemdPath).Call("org.freedesktop.DBus.Properties.Get", 0, managerIf, "Version").Store(&v)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("user bus: no systemd user manager: %w", err)
	}
	return &userBus{conn: conn}, nil
}

// systemdScope prepares a cgroup that systemd makes when Enter gives it
// init's pid (a scope needs a process from its start).
func (s *System) systemdScope(o Options) (*Cgroup, error) {
	bus, err := dialUserBus()
	if err != nil {
		return nil, fmt.Errorf("systemd: %w", err)
	}
	return &Cgroup{Version: 2, Dirs: map[string]string{}, Scope: o.Name + ".scope", res: o.Res, bus: bus}, nil
}

// startScope asks systemd for a transient scope holding pid, with the
// limits as unit properties, and waits for the job to finish.
func (c *Cgroup) startScope(pid int) error {
	defer func() {
		c.bus.conn.Close()
		c.bus = nil
	}()
	conn := c.bus.conn
	r := c.res
	props := []property{
		{"Description", dbus.MakeVariant("sbx sandbox")},
		{"PIDs", dbus.MakeVariant([]uint32{uint32(pid)})},
		{"Delegate", dbus.MakeVariant(true)},
		{"CollectMode", dbus.MakeVariant("inactive-or-failed")},
	}
	if r.Memory > 0 {
		props = append(props, property{"MemoryMax", dbus.MakeVariant(uint64(r.Memory))})
		swap := uint64(0)
		if r.MemorySwap < 0 {
			swap = ^uint64(0)
		} else if r.MemorySwap > r.Memory {
			swap = uint64(r.MemorySwap - r.Memory)
		}
		props = append(props, property{"MemorySwapMax", dbus.MakeVariant(swap)})
	}
	if r.CPUs > 0 {
		props = append(props, property{"CPUQuotaPerSecUSec", dbus.MakeVariant(uint64(r.CPUs * 1e6))})
	}
	if r.Pids > 0 {
		props = append(props, property{"TasksMax", dbus.MakeVariant(uint64(r.Pids))})
	}
	if r.IOWeight > 0 {
		props = append(props, property{"IOWeight", dbus.MakeVariant(r.IOWeight)})
	}
	if err := conn.AddMatchSignal(dbus.WithMatchInterface(managerIf), dbus.WithMatchMember("JobRemoved")); err != nil {
		return fmt.Errorf("systemd: %w", err)
	}
	ch := make(chan *dbus.Signal, 16)
	conn.Signal(ch)
	mgr := conn.Object(systemdDest, systemdPath)
	if err := mgr.Call(managerIf+".Subscribe", 0).Err; err != nil {
		return fmt.Errorf("systemd: subscribe: %w", err)
	}
	var job dbus.ObjectPath
	err := mgr.Call(managerIf+".StartTransientUnit", 0, c.Scope, "fail", props, []auxUnit{}).Store(&job)
	if err != nil {
		return fmt.Errorf("systemd: start transient scope %s: %w", c.Scope, err)
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case sig := <-ch:
			// JobRemoved(u id, o job, s unit, s result)
			if len(sig.Body) == 4 && sig.Body[1] == job {
				if res, _ := sig.Body[3].(string); res != "done" {
					return fmt.Errorf("systemd: scope %s: job %s", c.Scope, res)
				}
				return c.findScopeDir(pid)
			}
		case <-timeout:
			return fmt.Errorf("systemd: scope %s: no answer in 10s", c.Scope)
		}
	}
}

// findScopeDir learns where systemd put the scope from pid's own cgroup.
func (c *Cgroup) findScopeDir(pid int) error {
	sys, err := Discover()
	if err != nil {
		return err
	}
	h, ok := sys.Unified()
	if !ok {
		return errors.New("systemd: no cgroup v2 hierarchy")
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return err
	}
	defer f.Close()
	m, err := parseProcCgroup(f)
	if err != nil {
		return err
	}
	p, ok := m[""]
	if !ok || !strings.HasSuffix(p, "/"+c.Scope) {
		return fmt.Errorf("systemd: pid %d is not in scope %s", pid, c.Scope)
	}
	c.Dirs[""] = h.Dir(p)
	return nil
}

// stopScope asks systemd to stop the scope; an empty scope goes by itself,
// so failure to reach systemd here leaves nothing behind for long.
func (c *Cgroup) stopScope() {
	bus, err := dialUserBus()
	if err != nil {
		return
	}
	defer bus.conn.Close()
	bus.conn.Object(systemdDest, systemdPath).Call(managerIf+".StopUnit", 0, c.Scope, "fail")
}

type property struct {
	Name  string
	Value dbus.Variant
}

type auxUnit struct {
	Name  string
	Props []property
}
