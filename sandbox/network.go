package sandbox

import (
	"fmt"
	"os"

	"github.com/sbx-sandbox/sbx/slirp"
	"github.com/sbx-sandbox/sbx/spec"
)

// network is the parent's side of the sandbox's user-mode network.
type network struct {
	stack  *slirp.Stack
	resolv string // the resolv.conf file bound into the sandbox
}

// prepareNetwork does, before the sandbox starts, what can fail in ways the
// user must fix (a busy -p port, a bad rule, an unwritable --net-log), and
// gives the sandbox an /etc/resolv.conf naming the stack's DNS server.
func prepareNetwork(s *spec.Spec) (*network, error) {
	if s.Net.Mode != spec.NetSlirp {
		return nil, nil
	}
	st, err := slirp.New(s.Net, os.Stderr)
	if err != nil {
		return nil, err
	}
	n := &network{stack: st}
	f, err := os.CreateTemp("", "sbx-resolv-*.conf")
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("resolv.conf for the sandbox: %w", err)
	}
	n.resolv = f.Name()
	_, err = f.Write(slirp.ResolvConf(s.Net))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(n.resolv, 0o644)
	}
	if err != nil {
		n.close()
		return nil, fmt.Errorf("resolv.conf for the sandbox: %w", err)
	}
	// First, so that a --bind of the user's own resolv.conf still wins.
	s.Mounts = append([]spec.Mount{{Kind: spec.ROBind, Src: n.resolv, Dst: "/etc/resolv.conf"}}, s.Mounts...)
	return n, nil
}

// attach runs the network on the TAP fd init created.
func (n *network) attach(s *spec.Spec, tap *os.File) error {
	if n == nil {
		tap.Close()
		return fmt.Errorf("network mode %q has no driver", s.Net.Mode)
	}
	return n.stack.Attach(tap)
}

// close ends the network with the sandbox: nothing stays listening.
func (n *network) close() {
	if n == nil {
		return
	}
	n.stack.Close()
	if n.resolv != "" {
		os.Remove(n.resolv)
	}
}
