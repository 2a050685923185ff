package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/sbx-sandbox/sbx/slirp"
	"github.com/sbx-sandbox/sbx/spec"
)

// externalReady is how long slirp4netns gets to set the sandbox's network up.
const externalReady = 10 * time.Second

// network is the parent's side of the sandbox's user-mode network: the
// built-in stack, or an installed slirp4netns.
type network struct {
	stack  *slirp.Stack
	resolv string // the resolv.conf file bound into the sandbox

	slirp4netns string    // its path, for --net slirp4netns
	external    *exec.Cmd // the running slirp4netns
	exitW       *os.File  // closing it tells slirp4netns to end
}

// prepareNetwork does, before the sandbox starts, what can fail in ways the
// user must fix (a busy -p port, a bad rule, an unwritable --net-log, a
// missing program), and gives the sandbox an /etc/resolv.conf naming the
// network's DNS server.
func prepareNetwork(s *spec.Spec) (*network, error) {
	n := &network{}
	switch s.Net.Mode {
	case spec.NetSlirp:
		st, err := slirp.New(s.Net, os.Stderr)
		if err != nil {
			return nil, err
		}
		n.stack = st
	case spec.NetSlirp4netns:
		var unsupported []string
		for name, set := range map[string]bool{
			"port forwards (-p)": len(s.Net.Ports) > 0, "egress rules (--allow, --deny)": len(s.Net.Allow)+len(s.Net.Deny) > 0,
			"--net-log": s.Net.Log != "", "--dns": len(s.Net.DNS) > 0,
		} {
			if set {
				unsupported = append(unsupported, name)
			}
		}
		if len(unsupported) > 0 {
			return nil, fmt.Errorf("--net slirp4netns cannot apply %s: use the built-in --net slirp", strings.Join(unsupported, ", "))
		}
		path, err := exec.LookPath("slirp4netns")
		if err != nil {
			return nil, errors.New("--net slirp4netns: slirp4netns is not installed: install it, or use the built-in --net slirp")
		}
		n.slirp4netns = path
	case spec.NetPasta:
		return nil, errors.New("--net pasta is not supported by this sbx: use the built-in --net slirp")
	default:
		return nil, nil
	}
	if err := n.writeResolvConf(s); err != nil {
		n.close()
		return nil, err
	}
	return n, nil
}

func (n *network) writeResolvConf(s *spec.Spec) error {
	f, err := os.CreateTemp("", "sbx-resolv-*.conf")
	if err != nil {
		return fmt.Errorf("resolv.conf for the sandbox: %w", err)
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
		return fmt.Errorf("resolv.conf for the sandbox: %w", err)
	}
	// First, so that a --bind of the user's own resolv.conf still wins.
	s.Mounts = append([]spec.Mount{{Kind: spec.ROBind, Src: n.resolv, Dst: "/etc/resolv.conf"}}, s.Mounts...)
	return nil
}

// startExternal runs slirp4netns on the sandbox's network namespace, as
// rootless podman does, and returns once the network is configured: the
// sandbox is sent its spec only afterwards, so the command never runs
// without its network.
func (n *network) startExternal(s *spec.Spec, pid int) error {
	if n == nil || n.slirp4netns == "" {
		return nil
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer readyR.Close()
	exitR, exitW, err := os.Pipe()
	if err != nil {
		readyW.Close()
		return err
	}
	args := []string{"--configure", "--mtu=" + strconv.Itoa(slirp.MTU),
		"--userns-path=/proc/" + strconv.Itoa(pid) + "/ns/user", "--ready-fd=3", "--exit-fd=4"}
	if !s.Net.AllowHostLoopback {
		args = append(args, "--disable-host-loopback")
	}
	if s.Net.IPv6 {
		args = append(args, "--enable-ipv6")
	}
	args = append(args, strconv.Itoa(pid), "tap0")
	var stderr bytes.Buffer
	cmd := exec.Command(n.slirp4netns, args...)
	cmd.ExtraFiles = []*os.File{readyW, exitR}
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	err = cmd.Start()
	readyW.Close()
	exitR.Close()
	if err != nil {
		exitW.Close()
		return fmt.Errorf("--net slirp4netns: %w", err)
	}
	n.external, n.exitW = cmd, exitW
	readyR.SetReadDeadline(time.Now().Add(externalReady))
	if _, err := readyR.Read(make([]byte, 1)); err != nil {
		why := strings.TrimSpace(strings.SplitN(strings.TrimSpace(stderr.String()), "\n", 2)[0])
		if why == "" {
			why = err.Error()
		}
		return fmt.Errorf("--net slirp4netns: not ready: %s", why)
	}
	return nil
}

// attach runs the built-in network on the TAP fd init created.
func (n *network) attach(s *spec.Spec, tap *os.File) error {
	if n == nil || n.stack == nil {
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
	if n.stack != nil {
		n.stack.Close()
	}
	if n.external != nil {
		n.exitW.Close()
		done := make(chan struct{})
		go func() { n.external.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			n.external.Process.Kill()
			<-done
		}
	}
	if n.resolv != "" {
		os.Remove(n.resolv)
	}
}
