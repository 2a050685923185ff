// Package cgroups puts a sandbox in a cgroup of its own with resource
// limits: on cgroup v2 in a subtree the user may write, or in a systemd
// transient scope asked for over the user bus; on cgroup v1 in a writable
// directory of each controller's hierarchy.
package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Resources are the limits a cgroup enforces; zero means "not limited".
type Resources struct {
	Memory     int64   // bytes
	MemorySwap int64   // memory plus swap in bytes; 0: no swap beyond Memory; -1: unlimited swap
	CPUs       float64 // CPU bandwidth in CPUs
	Pids       int64
	IOWeight   uint64 // 1..10000
}

// Limit names, as the flags spell them; Cgroup.Unsupported lists them.
const (
	LimitMemory   = "memory"
	LimitCPUs     = "cpus"
	LimitPids     = "pids"
	LimitIOWeight = "io-weight"
)

// wanted maps each asked-for limit to the controller that enforces it.
func (r Resources) wanted() map[string]string {
	w := map[string]string{}
	if r.Memory != 0 || r.MemorySwap > 0 {
		w[LimitMemory] = "memory"
	}
	if r.CPUs != 0 {
		w[LimitCPUs] = "cpu"
	}
	if r.Pids != 0 {
		w[LimitPids] = "pids"
	}
	if r.IOWeight != 0 {
		w[LimitIOWeight] = "io"
	}
	return w
}

// Options say where and how to make a sandbox's cgroup.
type Options struct {
	Name   string // the cgroup's directory name, unique per sandbox (sbx-<id>)
	Parent string // cgroup path to create it under ("/a/b"); "" finds one
	User   string // the user's name, for the v1 convention /sbx-<user>
	Res    Resources
	// NoSystemd skips asking systemd for a transient scope.
	NoSystemd bool
}

// Cgroup is a sandbox's cgroup. On v2 every controller shares one
// directory; on v1 each controller has its own.
type Cgroup struct {
	Version int               `json:"version"`
	Dirs    map[string]string `json:"dirs"`            // controller -> directory ("" on v2)
	Scope   string            `json:"scope,omitempty"` // the systemd unit, when systemd made it
	// Unsupported lists the asked-for limits no writable cgroup enforces
	// here; the caller falls back to rlimits or refuses.
	Unsupported []string `json:"-"`

	res     Resources
	created []string // directories this process made, removed by Remove
	bus     *userBus // set until Enter asks systemd for the scope
}

// NoCgroupError says why no writable cgroup was found.
type NoCgroupError struct{ Reason string }

func (e *NoCgroupError) Error() string { return e.Reason }

// Create makes the sandbox's cgroup and writes its limits. It returns a
// *NoCgroupError when no writable cgroup exists for any asked-for limit.
func Create(o Options) (*Cgroup, error) {
	sys, err := Discover()
	if err != nil {
		return nil, err
	}
	return sys.Create(o)
}

// Create is Create on a given System.
func (s *System) Create(o Options) (*Cgroup, error) {
	want := o.Res.wanted()
	if len(want) == 0 {
		return nil, nil
	}
	var reasons []string
	if h, ok := s.Unified(); ok && h.hasAll(want) {
		cg, err := s.createV2(h, o)
		if err == nil {
			return cg, nil
		}
		reasons = append(reasons, err.Error())
		if !o.NoSystemd && o.Parent == "" {
			cg, err := s.systemdScope(o)
			if err == nil {
				return cg, nil
			}
			reasons = append(reasons, err.Error())
		}
	}
	if s.Mode() == "v1" || s.Mode() == "hybrid" {
		cg, err := s.createV1(o)
		if err == nil {
			return cg, nil
		}
		reasons = append(reasons, err.Error())
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "no cgroup hierarchy carries the controllers "+strings.Join(sortedValues(want), ", "))
	}
	return nil, &NoCgroupError{Reason: strings.Join(reasons, "; ")}
}

func (h Hierarchy) hasAll(want map[string]string) bool {
	for _, c := range want {
		if !h.Has(c) {
			return false
		}
	}
	return true
}

// createV2 makes the cgroup in a delegated v2 subtree: the explicit parent,
// else the parent of our own cgroup (under systemd, a user-owned slice such
// as app.slice). Our own cgroup itself cannot hold it: a v2 cgroup with
// processes cannot enable controllers for its children.
func (s *System) createV2(h Hierarchy, o Options) (*Cgroup, error) {
	parent := o.Parent
	if parent == "" {
		own, ok := s.Own[""]
		if !ok {
			return nil, errors.New("cgroup v2: this process has no unified cgroup")
		}
		parent = path.Dir(own)
	}
	pdir := h.Dir(parent)
	if pdir == "" {
		return nil, fmt.Errorf("cgroup v2: %s is not visible under %s", parent, h.Mountpoint)
	}
	// Moving init from our cgroup into the new one needs write access to
	// cgroup.procs of their common ancestor, the parent.
	if err := unix.Access(filepath.Join(pdir, "cgroup.procs"), unix.W_OK); err != nil {
		return nil, fmt.Errorf("cgroup v2: %s is not delegated to this user", pdir)
	}
	if err := enableControllers(pdir, o.Res.wanted()); err != nil {
		return nil, err
	}
	dir := filepath.Join(pdir, o.Name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cgroup v2: %w", err)
	}
	cg := &Cgroup{Version: 2, Dirs: map[string]string{"": dir}, res: o.Res, created: []string{dir}}
	if err := cg.writeV2(); err != nil {
		cg.Remove()
		return nil, err
	}
	return cg, nil
}

// enableControllers makes sure pdir hands the wanted controllers to its children.
func enableControllers(pdir string, want map[string]string) error {
	b, err := os.ReadFile(filepath.Join(pdir, "cgroup.subtree_control"))
	if err != nil {
		return fmt.Errorf("cgroup v2: %w", err)
	}
	have := strings.Fields(string(b))
	var add []string
	for _, c := range sortedValues(want) {
		if !contains(have, c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return nil
	}
	if err := os.WriteFile(filepath.Join(pdir, "cgroup.subtree_control"), []byte(strings.Join(add, " ")), 0); err != nil {
		return fmt.Errorf("cgroup v2: enable %s in %s: %w", strings.Join(add, " "), pdir, err)
	}
	return nil
}

func (c *Cgroup) writeV2() error {
	dir, r := c.Dirs[""], c.res
	w := func(file, val string) error {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(val), 0); err != nil {
			return fmt.Errorf("cgroup v2: write %s=%s: %w", file, val, err)
		}
		return nil
	}
	if r.Memory > 0 {
		if err := w("memory.max", strconv.FormatInt(r.Memory, 10)); err != nil {
			return err
		}
		swap := swapBeyond(r)
		if err := w("memory.swap.max", swap); err != nil && !(errors.Is(err, os.ErrNotExist) && swap == "0") {
			// No memory.swap.max means the kernel does not account swap:
			// refusing swap then needs nothing, granting it cannot be done.
			return err
		}
	}
	if r.CPUs > 0 {
		if err := w("cpu.max", fmt.Sprintf("%d %d", cpuQuota(r.CPUs), cpuPeriod)); err != nil {
			return err
		}
	}
	if r.Pids > 0 {
		if err := w("pids.max", strconv.FormatInt(r.Pids, 10)); err != nil {
			return err
		}
	}
	if r.IOWeight > 0 {
		err := w("io.weight", fmt.Sprintf("default %d", r.IOWeight))
		if errors.Is(err, os.ErrNotExist) {
			err = w("io.bfq.weight", strconv.FormatUint(r.IOWeight, 10))
		}
		if errors.Is(err, os.ErrNotExist) {
			c.Unsupported = append(c.Unsupported, LimitIOWeight)
		} else if err != nil {
			return err
		}
	}
	return nil
}

const cpuPeriod = 100000 // microseconds, the kernel's default CFS period

func cpuQuota(cpus float64) int64 {
	q := int64(cpus * cpuPeriod)
	if q < 1000 {
		q = 1000 // the kernel's minimum quota
	}
	return q
}

// swapBeyond is the swap allowed on top of memory, as memory.swap.max wants it.
func swapBeyond(r Resources) string {
	switch {
	case r.MemorySwap < 0:
		return "max"
	case r.MemorySwap > r.Memory:
		return strconv.FormatInt(r.MemorySwap-r.Memory, 10)
	}
	return "0"
}

// createV1 makes one directory per needed controller, each in the first
// writable place of: the explicit parent, our own cgroup in that hierarchy,
// or /sbx-<user> (a directory an administrator made and chowned to the user).
// Limits no writable hierarchy carries are listed in Unsupported.
func (s *System) createV1(o Options) (*Cgroup, error) {
	cg := &Cgroup{Version: 1, Dirs: map[string]string{}, res: o.Res}
	var why []string
	want := o.Res.wanted()
	for _, limit := range sortedKeys(want) {
		ctrl := want[limit]
		if ctrl == "io" {
			ctrl = "blkio"
		}
		if _, done := cg.Dirs[ctrl]; done {
			continue
		}
		h, ok := s.V1(ctrl)
		if !ok {
			cg.Unsupported = append(cg.Unsupported, limit)
			why = append(why, "no cgroup v1 "+ctrl+" hierarchy")
			continue
		}
		dir, err := mkdirV1(h, s.v1Candidates(o, ctrl), o.Name)
		if err != nil {
			cg.Unsupported = append(cg.Unsupported, limit)
			why = append(why, err.Error())
			continue
		}
		cg.Dirs[ctrl] = dir
		cg.created = append(cg.created, dir)
	}
	if len(cg.Dirs) == 0 {
		return nil, errors.New(strings.Join(why, "; "))
	}
	if err := cg.writeV1(); err != nil {
		cg.Remove()
		return nil, err
	}
	return cg, nil
}

func (s *System) v1Candidates(o Options, ctrl string) []string {
	if o.Parent != "" {
		return []string{o.Parent}
	}
	var c []string
	if own, ok := s.Own[ctrl]; ok {
		c = append(c, own)
	}
	if o.User != "" {
		c = append(c, "/sbx-"+o.User)
	}
	return c
}

func mkdirV1(h Hierarchy, candidates []string, name string) (string, error) {
	for _, p := range candidates {
		pdir := h.Dir(p)
		if pdir == "" || unix.Access(pdir, unix.W_OK|unix.X_OK) != nil {
			continue
		}
		dir := filepath.Join(pdir, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return "", fmt.Errorf("cgroup v1: %w", err)
		}
		return dir, nil
	}
	return "", fmt.Errorf("cgroup v1: none of %s is writable under %s", strings.Join(candidates, ", "), h.Mountpoint)
}

func (c *Cgroup) writeV1() error {
	r := c.res
	w := func(ctrl, file, val string) error {
		dir, ok := c.Dirs[ctrl]
		if !ok {
			return nil
		}
		if err := os.WriteFile(filepath.Join(dir, file), []byte(val), 0); err != nil {
			return fmt.Errorf("cgroup v1: write %s=%s: %w", file, val, err)
		}
		return nil
	}
	if r.Memory > 0 {
		if err := w("memory", "memory.limit_in_bytes", strconv.FormatInt(r.Memory, 10)); err != nil {
			return err
		}
		memsw := strconv.FormatInt(r.Memory, 10)
		if r.MemorySwap < 0 {
			memsw = "-1"
		} else if r.MemorySwap > r.Memory {
			memsw = strconv.FormatInt(r.MemorySwap, 10)
		}
		// Without swap accounting (no memsw file) refusing swap needs nothing.
		if err := w("memory", "memory.memsw.limit_in_bytes", memsw); err != nil && !(errors.Is(err, os.ErrNotExist) && r.MemorySwap == 0) {
			return err
		}
	}
	if r.CPUs > 0 {
		if err := w("cpu", "cpu.cfs_period_us", strconv.Itoa(cpuPeriod)); err != nil {
			return err
		}
		if err := w("cpu", "cpu.cfs_quota_us", strconv.FormatInt(cpuQuota(r.CPUs), 10)); err != nil {
			return err
		}
	}
	if r.Pids > 0 {
		if err := w("pids", "pids.max", strconv.FormatInt(r.Pids, 10)); err != nil {
			return err
		}
	}
	if r.IOWeight > 0 {
		if _, ok := c.Dirs["blkio"]; ok {
			// v1 weights run 10..1000 where v2's run 1..10000.
			v1 := 10 + (r.IOWeight-1)*990/9999
			err := w("blkio", "blkio.bfq.weight", strconv.FormatUint(v1, 10))
			if errors.Is(err, os.ErrNotExist) {
				err = w("blkio", "blkio.weight", strconv.FormatUint(v1, 10))
			}
			if errors.Is(err, os.ErrNotExist) {
				c.Unsupported = append(c.Unsupported, LimitIOWeight)
			} else if err != nil {
				return err
			}
		}
	}
	return nil
}

// Enter moves pid into the cgroup (every controller's directory on v1).
func (c *Cgroup) Enter(pid int) error {
	if c.bus != nil {
		return c.startScope(pid)
	}
	for _, dir := range c.uniqueDirs() {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("move pid %d into cgroup %s: %w", pid, dir, err)
		}
	}
	return nil
}

func (c *Cgroup) uniqueDirs() []string {
	seen := map[string]bool{}
	var ds []string
	for _, k := range sortedKeys(c.Dirs) {
		if d := c.Dirs[k]; !seen[d] {
			seen[d] = true
			ds = append(ds, d)
		}
	}
	return ds
}

func (c *Cgroup) memoryDir() string {
	if c.Version == 2 {
		return c.Dirs[""]
	}
	return c.Dirs["memory"]
}

// OOMKilled reports whether the kernel's OOM killer killed a process of
// the cgroup because of its memory limit.
func (c *Cgroup) OOMKilled() bool {
	dir := c.memoryDir()
	if dir == "" {
		return false
	}
	if c.Version == 2 {
		return keyedValue(filepath.Join(dir, "memory.events"), "oom_kill") > 0
	}
	f := filepath.Join(dir, "memory.oom_control")
	return keyedValue(f, "oom_kill") > 0 || keyedValue(f, "under_oom") > 0
}

// MemoryCurrent is the memory the cgroup uses now, in bytes, or -1.
func (c *Cgroup) MemoryCurrent() int64 {
	dir := c.memoryDir()
	if dir == "" {
		return -1
	}
	file := "memory.usage_in_bytes"
	if c.Version == 2 {
		file = "memory.current"
	}
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return -1
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// keyedValue reads "key N" from a flat-keyed cgroup file; -1 when absent.
func keyedValue(file, key string) int64 {
	b, err := os.ReadFile(file)
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// Remove kills what is left in the cgroup and deletes the directories this
// process made. The sandbox's processes die with its init, but the kernel
// may take a moment to let go of them, so an EBUSY rmdir is retried.
func (c *Cgroup) Remove() {
	if c == nil {
		return
	}
	if c.Scope != "" {
		c.stopScope()
	}
	removeDirs(c.created, 2*time.Second)
}

// removeDirs kills what is left in each directory and removes it, waiting
// up to wait for each to empty; it reports whether all are gone.
func removeDirs(dirs []string, wait time.Duration) bool {
	gone := true
	for _, dir := range dirs {
		killAll(dir)
		deadline := time.Now().Add(wait)
		for {
			err := unix.Rmdir(dir)
			if err == nil || errors.Is(err, unix.ENOENT) {
				break
			}
			if time.Now().After(deadline) {
				gone = false
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return gone
}

func killAll(dir string) {
	if os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0) == nil {
		return
	}
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func sortedValues(m map[string]string) []string {
	seen := map[string]bool{}
	var vs []string
	for _, v := range m {
		if !seen[v] {
			seen[v] = true
			vs = append(vs, v)
		}
	}
	sort.Strings(vs)
	return vs
}

// RemoveDirs deletes a cgroup that another, dead, sbx process made: the
// directories recorded in its state. It reports whether they are gone.
func (c *Cgroup) RemoveDirs() bool {
	return removeDirs(c.uniqueDirs(), 2*time.Second)
}
