package sandbox

import "github.com/sbx-sandbox/sbx/spec"

// cgroup is the sandbox's own cgroup, created by the parent before init runs.
type cgroup struct{}

// newCgroup creates the sandbox's cgroup when limits ask for one.
// A nil cgroup and nil error mean no cgroup is needed.
func newCgroup(s *spec.Spec) (*cgroup, error) {
	return nil, nil
}

// enter moves pid (init, before it runs anything of the sandbox) into the cgroup.
func (c *cgroup) enter(pid int) error { return nil }

// remove deletes the cgroup once the sandbox has ended.
func (c *cgroup) remove() {}
