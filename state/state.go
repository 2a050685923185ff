// Package state keeps one directory per running sandbox, so that sbx ps,
// enter and kill can find it: under $XDG_RUNTIME_DIR/sbx, or a private
// /tmp/sbx-UID where that variable is missing. The supervising sbx process
// removes its directory at the end; entries of a supervisor that died are
// cleaned by whichever sbx call comes next.
package state

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sbx-sandbox/sbx/cgroups"
)

// Entry is what sbx knows of one running sandbox.
type Entry struct {
	ID      string          `json:"id"`
	Name    string          `json:"name,omitempty"`
	Pid     int             `json:"pid"` // the sandbox's init, as the host sees it
	Profile string          `json:"profile,omitempty"`
	Command []string        `json:"command"`
	Started time.Time       `json:"started"`
	Cgroup  *cgroups.Cgroup `json:"cgroup,omitempty"`

	// The supervisor (the sbx run process) and when it started, in clock
	// ticks since boot: a pid alone may already belong to another process.
	Supervisor      int    `json:"supervisor"`
	SupervisorStart uint64 `json:"supervisor_start"`
	PidStart        uint64 `json:"pid_start,omitempty"`
	// PidNS is the supervisor's PID namespace: pids and start times mean
	// something only there. A sandbox that can see the state directory (it
	// was bound in) neither lists nor cleans entries made outside.
	PidNS string `json:"pid_ns"`

	dir string
}

// Dir is the entry's state directory.
func (e *Entry) Dir() string { return e.dir }

// Socket is where the supervisor listens for sbx enter.
func (e *Entry) Socket() string { return filepath.Join(e.dir, "control.sock") }

// Store is the state directory of the calling user.
type Store struct{ root string }

// Open finds (and makes, private to the user) the state directory.
func Open() (*Store, error) {
	if rt := os.Getenv("XDG_RUNTIME_DIR"); rt != "" {
		if err := checkPrivate(rt, false); err == nil {
			return openRoot(filepath.Join(rt, "sbx"))
		}
	}
	return openRoot(filepath.Join(os.TempDir(), fmt.Sprintf("sbx-%d", os.Getuid())))
}

// OpenAt uses root as the state directory (made 0700 if missing).
func OpenAt(root string) (*Store, error) { return openRoot(root) }

func openRoot(root string) (*Store, error) {
	if err := os.Mkdir(root, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("state directory %s: %w", root, err)
	}
	if err := checkPrivate(root, true); err != nil {
		return nil, err
	}
	return &Store{root: root}, nil
}

// checkPrivate refuses a directory another user could have placed or could
// write: in a shared /tmp the name is guessable.
func checkPrivate(dir string, strict bool) error {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return fmt.Errorf("state directory %s: %w", dir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("state directory %s is not a directory; remove it", dir)
	}
	if int(st.Uid) != os.Getuid() {
		return fmt.Errorf("state directory %s belongs to uid %d, not to you; remove it or set XDG_RUNTIME_DIR", dir, st.Uid)
	}
	if strict && st.Mode&0o077 != 0 {
		return fmt.Errorf("state directory %s is open to other users (mode %o); chmod 700 it", dir, st.Mode&0o777)
	}
	return nil
}

// Root is the state directory.
func (s *Store) Root() string { return s.root }

// Create registers a new sandbox supervised by this process. A name
// already held by a running sandbox is refused.
func (s *Store) Create(e *Entry) error {
	if e.Name != "" {
		// A dead sandbox's name must be freed before this one can take it.
		s.Clean()
	}
	id := make([]byte, 6)
	if _, err := rand.Read(id); err != nil {
		return err
	}
	e.ID = hex.EncodeToString(id)
	e.Supervisor = os.Getpid()
	st, err := StartTime(e.Supervisor)
	if err != nil {
		return err
	}
	e.SupervisorStart = st
	if e.PidNS, err = os.Readlink("/proc/self/ns/pid"); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if e.Started.IsZero() {
		e.Started = time.Now()
	}
	if e.Name != "" {
		if err := validName(e.Name); err != nil {
			return err
		}
		f, err := os.OpenFile(s.nameFile(e.Name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("--name %s: a running sandbox already has that name; pick another or sbx kill it", e.Name)
		}
		if err != nil {
			return fmt.Errorf("state: %w", err)
		}
		f.WriteString(e.ID)
		f.Close()
	}
	e.dir = filepath.Join(s.root, e.ID)
	if err := os.Mkdir(e.dir, 0o700); err != nil {
		s.Remove(e)
		return fmt.Errorf("state: %w", err)
	}
	if err := e.Save(); err != nil {
		s.Remove(e)
		return err
	}
	return nil
}

func validName(n string) error {
	if len(n) > 64 || strings.ContainsAny(n, "/\x00") || n == "." || n == ".." || strings.TrimSpace(n) != n {
		return fmt.Errorf("--name %q: use at most 64 characters, no slash and no surrounding spaces", n)
	}
	return nil
}

func (s *Store) nameFile(name string) string { return filepath.Join(s.root, "name."+name) }

// Save writes the entry (atomically: a reader never sees half of it).
func (e *Entry) Save() error {
	if e.Pid > 0 && e.PidStart == 0 {
		e.PidStart, _ = StartTime(e.Pid)
	}
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(e.dir, ".state.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(e.dir, "state.json")); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// Remove deletes the entry's directory and its name.
func (s *Store) Remove(e *Entry) {
	if e.Name != "" {
		if b, err := os.ReadFile(s.nameFile(e.Name)); err == nil && string(b) == e.ID {
			os.Remove(s.nameFile(e.Name))
		}
	}
	if e.dir != "" {
		os.RemoveAll(e.dir)
	}
}

// List returns the running sandboxes, oldest first, cleaning stale entries.
func (s *Store) List() ([]*Entry, error) {
	des, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	pidNS, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	var es []*Entry
	for _, de := range des {
		if !de.IsDir() {
			continue
		}
		e, err := s.load(de.Name())
		if err != nil {
			continue // being written
		}
		if e.PidNS != pidNS {
			continue
		}
		if !e.Alive() {
			s.removeStale(e)
			continue
		}
		es = append(es, e)
	}
	sort.Slice(es, func(i, j int) bool { return es[i].Started.Before(es[j].Started) })
	return es, nil
}

// Clean removes the entries (and leftover cgroups) of supervisors that died.
func (s *Store) Clean() {
	s.List()
	s.sweepCgroups()
	// Names whose sandbox is gone.
	des, _ := os.ReadDir(s.root)
	for _, de := range des {
		if n, ok := strings.CutPrefix(de.Name(), "name."); ok {
			b, err := os.ReadFile(filepath.Join(s.root, de.Name()))
			if err != nil {
				continue
			}
			if _, err := os.Stat(filepath.Join(s.root, string(b))); errors.Is(err, os.ErrNotExist) && len(b) > 0 {
				// The owner may be between writing its name and its directory.
				if fi, err := de.Info(); err == nil && time.Since(fi.ModTime()) > 10*time.Second {
					os.Remove(s.nameFile(n))
				}
			}
		}
	}
}

func (s *Store) removeStale(e *Entry) {
	if e.Cgroup != nil && !e.Cgroup.RemoveDirs() {
		// The supervisor was killed before it could remove the cgroup; its
		// sandbox died with it (Pdeathsig), so the cgroup is empty or
		// emptying. A pid that outlived it is killed first; should the
		// cgroup still not go, the entry stays for the next call to retry.
		return
	}
	s.Remove(e)
}

func (s *Store) load(id string) (*Entry, error) {
	dir := filepath.Join(s.root, id)
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return nil, err
	}
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, err
	}
	e.dir = dir
	return &e, nil
}

// Alive reports whether the entry's supervisor still runs (the same
// process, not another one that got its pid).
func (e *Entry) Alive() bool {
	st, err := StartTime(e.Supervisor)
	return err == nil && st == e.SupervisorStart
}

// Find looks a running sandbox up by id, name, or a unique id prefix.
func (s *Store) Find(ref string) (*Entry, error) {
	es, err := s.List()
	if err != nil {
		return nil, err
	}
	var prefix []*Entry
	for _, e := range es {
		if e.ID == ref || (e.Name != "" && e.Name == ref) {
			return e, nil
		}
		if strings.HasPrefix(e.ID, ref) {
			prefix = append(prefix, e)
		}
	}
	switch {
	case len(prefix) == 1 && ref != "":
		return prefix[0], nil
	case len(prefix) > 1 && ref != "":
		return nil, fmt.Errorf("%q matches %d sandboxes; give more of the id", ref, len(prefix))
	}
	return nil, fmt.Errorf("no running sandbox %q (sbx ps lists them)", ref)
}

// StartTime is when pid started, in clock ticks since boot (field 22 of
// /proc/PID/stat), the kernel's way to tell a process from a later one
// with the same pid.
func StartTime(pid int) (uint64, error) {
	if pid <= 0 {
		return 0, fmt.Errorf("no pid")
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// Signal sends sig to the sandbox's init, through a pidfd opened and then
// checked against the recorded start time, so a pid that has meanwhile
// gone to another process is never signalled.
func (e *Entry) Signal(sig unix.Signal) error {
	fd, err := unix.PidfdOpen(e.Pid, 0)
	if err != nil {
		return fmt.Errorf("sandbox %s: init (pid %d) is gone: %w", e.ID, e.Pid, err)
	}
	defer unix.Close(fd)
	if st, err := StartTime(e.Pid); err != nil || (e.PidStart != 0 && st != e.PidStart) {
		return fmt.Errorf("sandbox %s: init (pid %d) is gone", e.ID, e.Pid)
	}
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		return fmt.Errorf("sandbox %s: signal %v: %w", e.ID, sig, err)
	}
	return nil
}

// Memory is what the sandbox uses now, in bytes: its cgroup's count when
// it has one, else the resident memory of its processes (those in its
// init's PID namespace) added up; -1 when neither can be read.
func (e *Entry) Memory() int64 {
	if e.Cgroup != nil {
		if n := e.Cgroup.MemoryCurrent(); n >= 0 {
			return n
		}
	}
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", e.Pid))
	if err != nil {
		return -1
	}
	des, err := os.ReadDir("/proc")
	if err != nil {
		return -1
	}
	var total int64
	for _, de := range des {
		pid, err := strconv.Atoi(de.Name())
		if err != nil {
			continue
		}
		if pns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err != nil || pns != ns {
			continue
		}
		total += residentBytes(pid)
	}
	return total
}

// residentBytes is pid's VmRSS.
func residentBytes(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// sweepCgroups removes empty sandbox cgroups that no entry records: those
// of an sbx killed between making its cgroup and registering its sandbox.
func (s *Store) sweepCgroups() {
	inUse := map[string]bool{}
	des, _ := os.ReadDir(s.root)
	for _, de := range des {
		if !de.IsDir() {
			continue
		}
		// Every entry counts, those of other PID namespaces too.
		if e, err := s.load(de.Name()); err == nil && e.Cgroup != nil {
			for _, d := range e.Cgroup.Dirs {
				inUse[d] = true
			}
		}
	}
	name := strconv.Itoa(os.Getuid())
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	cgroups.SweepLeftovers(name, inUse, time.Minute)
}
