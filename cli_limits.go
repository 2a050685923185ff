package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sbx-sandbox/sbx/doctor"
	"github.com/sbx-sandbox/sbx/sandbox"
	"github.com/sbx-sandbox/sbx/spec"
	"github.com/sbx-sandbox/sbx/state"
)

// LimitFlags are sbx run's resource limits, its name and its status
// descriptors, embedded in RunCmd.
type LimitFlags struct {
	Memory       string  `name:"memory" placeholder:"SIZE" help:"Memory limit (e.g. 512m); the sandbox's own cgroup, else RLIMIT_AS."`
	MemorySwap   string  `name:"memory-swap" placeholder:"SIZE" help:"Memory plus swap (default: no swap beyond --memory; -1: unlimited swap)."`
	CPUs         float64 `name:"cpus" placeholder:"N.N" help:"CPU bandwidth in CPUs (1.5 = one and a half)."`
	Pids         int64   `name:"pids" placeholder:"N" help:"Processes and threads in the sandbox; the cgroup, else RLIMIT_NPROC."`
	IOWeight     uint64  `name:"io-weight" placeholder:"N" help:"Proportional block I/O weight, 1 to 10000."`
	LimitsMode   string  `name:"limits" enum:"fallback,strict" default:"fallback" help:"strict: fail (exit 125) when no cgroup can enforce a limit, instead of falling back to rlimits."`
	CgroupParent string  `name:"cgroup-parent" placeholder:"PATH" help:"Make the sandbox's cgroup under this cgroup (e.g. /sbx-$USER) instead of finding one."`
	NoFile       *uint64 `name:"nofile" placeholder:"N" help:"Open files (RLIMIT_NOFILE)."`
	Core         string  `name:"core" placeholder:"SIZE" help:"Core dump size (RLIMIT_CORE), 0 for none."`
	CPUTime      *uint64 `name:"cpu-time" placeholder:"SECONDS" help:"CPU time of each process (RLIMIT_CPU)."`
	Name         string  `name:"name" help:"A name for sbx ps, enter and kill."`
	InfoFD       *int    `name:"info-fd" placeholder:"FD" help:"Write the sandbox's child pid and namespace ids as JSON to this descriptor."`
	JSONStatusFD *int    `name:"json-status-fd" placeholder:"FD" help:"Write JSON status lines (start, then exit) to this descriptor."`
}

// apply puts the limit flags into s.
func (f *LimitFlags) apply(s *spec.Spec) error {
	l := &s.Limits
	var err error
	if f.Memory != "" {
		if l.Memory, err = spec.ParseSize(f.Memory); err != nil || l.Memory < 0 {
			return fmt.Errorf("--memory %s: expected a size such as 512m", f.Memory)
		}
	}
	if f.MemorySwap != "" {
		if l.Memory == 0 {
			return fmt.Errorf("--memory-swap needs --memory: it is memory plus swap")
		}
		if l.MemorySwap, err = spec.ParseSize(f.MemorySwap); err != nil {
			return fmt.Errorf("--memory-swap: %w", err)
		}
		if l.MemorySwap > 0 && l.MemorySwap < l.Memory {
			return fmt.Errorf("--memory-swap %s is below --memory %s: it counts memory plus swap", f.MemorySwap, f.Memory)
		}
	}
	if f.CPUs < 0 {
		return fmt.Errorf("--cpus %v: expected a positive number", f.CPUs)
	}
	if f.Pids < 0 {
		return fmt.Errorf("--pids %d: expected a positive number", f.Pids)
	}
	if f.IOWeight > 10000 {
		return fmt.Errorf("--io-weight %d: expected 1 to 10000", f.IOWeight)
	}
	// A flag left out keeps what the profile says.
	if f.CPUs != 0 {
		l.CPUs = f.CPUs
	}
	if f.Pids != 0 {
		l.Pids = f.Pids
	}
	if f.IOWeight != 0 {
		l.IOWeight = f.IOWeight
	}
	if f.LimitsMode == "strict" {
		l.Strict = true
	}
	if f.CgroupParent != "" {
		l.CgroupParent = f.CgroupParent
	}
	if f.NoFile != nil {
		l.NoFile = f.NoFile
	}
	if f.CPUTime != nil {
		l.CPUTime = f.CPUTime
	}
	if f.Core != "" {
		var n int64
		if f.Core == "0" {
			n = 0
		} else if n, err = spec.ParseSize(f.Core); err != nil {
			return fmt.Errorf("--core: %w", err)
		}
		v := uint64(n)
		if n < 0 {
			v = ^uint64(0)
		}
		l.Core = &v
	}
	if f.Name != "" {
		s.Name = f.Name
	}
	for _, fd := range []*int{f.InfoFD, f.JSONStatusFD} {
		if fd == nil {
			continue
		}
		if *fd < 3 {
			return fmt.Errorf("--info-fd/--json-status-fd %d: use a descriptor above 2, opened by the shell (e.g. 3>file)", *fd)
		}
		// Fstat, not an *os.File: its finalizer would close the descriptor.
		var st unix.Stat_t
		if err := unix.Fstat(*fd, &st); err != nil {
			return fmt.Errorf("descriptor %d is not open: open it in the shell that runs sbx (e.g. %d>file)", *fd, *fd)
		}
	}
	if f.InfoFD != nil {
		s.StatusFDs.Info = *f.InfoFD
	}
	if f.JSONStatusFD != nil {
		s.StatusFDs.JSON = *f.JSONStatusFD
	}
	return nil
}

// PsCmd is `sbx ps`.
type PsCmd struct {
	JSON bool `name:"json" help:"Print JSON for scripts."`
}

// psEntry is one sandbox as sbx ps --json prints it.
type psEntry struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Pid      int       `json:"pid"`
	Profile  string    `json:"profile"`
	Command  []string  `json:"command"`
	Started  time.Time `json:"started"`
	Uptime   float64   `json:"uptime_seconds"`
	Memory   int64     `json:"memory_bytes"` // -1 when unknown
	Cgroup   []string  `json:"cgroup,omitempty"`
	StateDir string    `json:"state_dir"`
}

func (c *PsCmd) Run() error {
	store, err := state.Open()
	if err != nil {
		return err
	}
	store.Clean()
	es, err := store.List()
	if err != nil {
		return err
	}
	rows := make([]psEntry, 0, len(es))
	for _, e := range es {
		r := psEntry{ID: e.ID, Name: e.Name, Pid: e.Pid, Profile: e.Profile, Command: e.Command, Started: e.Started,
			Uptime: time.Since(e.Started).Round(time.Second).Seconds(), Memory: -1, StateDir: e.Dir()}
		r.Memory = e.Memory()
		if e.Cgroup != nil {
			for _, d := range e.Cgroup.Dirs {
				r.Cgroup = append(r.Cgroup, d)
			}
			sort.Strings(r.Cgroup)
		}
		rows = append(rows, r)
	}
	if c.JSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tPID\tPROFILE\tCOMMAND\tUPTIME\tMEMORY")
	for _, r := range rows {
		mem := "-"
		if r.Memory >= 0 {
			mem = spec.FormatSize(r.Memory)
		}
		cmd := strings.Join(r.Command, " ")
		if len(cmd) > 40 {
			cmd = cmd[:37] + "..."
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", r.ID, dash(r.Name), r.Pid, dash(r.Profile), cmd, time.Duration(r.Uptime)*time.Second, mem)
	}
	return w.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// EnterCmd is `sbx enter`.
type EnterCmd struct {
	Sandbox string   `arg:"" name:"sandbox" help:"The sandbox's id (or a unique prefix) or name."`
	Command []string `arg:"" optional:"" passthrough:"partial" name:"command" help:"The command to run inside (default: your shell)."`
}

func (c *EnterCmd) Run() error {
	e, err := findSandbox(c.Sandbox)
	if err != nil {
		return err
	}
	argv := c.Command
	if len(argv) > 0 && argv[0] == "--" {
		argv = argv[1:]
	}
	os.Exit(sandbox.Enter(e.Socket(), argv))
	return nil
}

// KillCmd is `sbx kill`.
type KillCmd struct {
	Signal  string `name:"signal" short:"s" default:"KILL" help:"The signal (name or number) for the sandbox's init, which passes TERM, INT, HUP, QUIT, USR1, USR2 on to the command."`
	Sandbox string `arg:"" name:"sandbox" help:"The sandbox's id (or a unique prefix) or name."`
}

func (c *KillCmd) Run() error {
	sig, err := parseSignal(c.Signal)
	if err != nil {
		return err
	}
	e, err := findSandbox(c.Sandbox)
	if err != nil {
		return err
	}
	return e.Signal(sig)
}

// findSandbox looks a running sandbox up by id, id prefix or name.
func findSandbox(ref string) (*state.Entry, error) {
	store, err := state.Open()
	if err != nil {
		return nil, err
	}
	return store.Find(ref)
}

func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("--signal %s: not a signal name or number (e.g. TERM, KILL, 9)", s)
}

// DoctorCmd is `sbx doctor`.
type DoctorCmd struct {
	Proc string `name:"proc" default:"/proc" placeholder:"DIR" help:"Read the kernel's settings (sys/...) from this procfs, e.g. a copy to check another host's."`
	JSON bool   `name:"json" help:"Print JSON for scripts."`
}

func (c *DoctorCmd) Run() error {
	h := doctor.Host{Proc: c.Proc, UID: os.Getuid(), Probe: filepath.Clean(c.Proc) == "/proc"}
	if u, err := user.Current(); err == nil {
		h.User = u.Username
	} else {
		h.User = strconv.Itoa(h.UID)
	}
	checks := doctor.Run(h)
	ok := true
	for _, ch := range checks {
		if ch.Status == doctor.Fail {
			ok = false
		}
	}
	if c.JSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(checks)
	} else {
		doctor.Print(os.Stdout, checks)
	}
	if !ok {
		os.Exit(1)
	}
	return nil
}
