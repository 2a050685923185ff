package sandbox

import (
	"encoding/json"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/sbx-sandbox/sbx/spec"
)

// controlFD is where init finds its end of the control socket.
const controlFD = 3

// msg is one packet on the control socket between the parent and init
// (SOCK_SEQPACKET keeps packet boundaries, so one JSON value is one message).
type msg struct {
	Kind   string     `json:"kind"`
	Spec   *spec.Spec `json:"spec,omitempty"`
	Error  string     `json:"error,omitempty"`  // kindError: init's own failure, one line
	Code   int        `json:"code,omitempty"`   // kindExit: the status sbx exits with
	Signal int        `json:"signal,omitempty"` // kindExit: the signal that killed the command
	Pid    int        `json:"pid,omitempty"`    // kindStarted: the command's pid inside
	// HostPid is the command's pid in the parent's PID namespace.
	HostPid int `json:"host_pid,omitempty"`
	// Foreground says, with kindContinue, that sbx has the terminal's
	// foreground again and the command is to get it.
	Foreground bool `json:"foreground,omitempty"`
	// Program is the compiled seccomp filter (kindSeccomp).
	Program []byte `json:"program,omitempty"`
	// Exec is a request to start another process in the sandbox (sbx enter).
	Exec *ExecRequest `json:"exec,omitempty"`
	// Session names the sbx enter session a message is about (0: the command).
	Session int `json:"session,omitempty"`
}

// ExecRequest asks init to start a process beside the command, with the
// file descriptors sent along as its 0, 1 and 2.
type ExecRequest struct {
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	Cwd  string   `json:"cwd"`
	TTY  bool     `json:"tty"`
	// Rows and Cols are the client's terminal size, for the TTY's pty.
	Rows uint16 `json:"rows,omitempty"`
	Cols uint16 `json:"cols,omitempty"`
}

const (
	kindSpec     = "spec"     // parent → init: the sandbox to build
	kindSeccomp  = "seccomp"  // parent → init: the compiled filter, right after the spec
	kindTap      = "tap"      // init → parent: the TAP fd, attached
	kindStarted  = "started"  // init → parent: the command runs
	kindError    = "error"    // init → parent: set-up failed
	kindExit     = "exit"     // init → parent: the command ended
	kindExec     = "exec"     // parent → init: start another process (fds attached)
	kindStopped  = "stopped"  // init → parent: the terminal stopped the command (^Z)
	kindContinue = "continue" // parent → init: resume the command (fg or bg in the user's shell)
	kindSignal   = "signal"   // parent → init: signal an entered process
)

// conn is one end of the control socket.
type conn struct{ f *os.File }

func (c conn) send(m msg, files ...*os.File) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := unix.Sendmsg(int(c.f.Fd()), b, rights(files), nil, 0); err != nil {
		return fmt.Errorf("control socket: send %s: %w", m.Kind, err)
	}
	return nil
}

// recv returns the next message and the files that came with it.
// io errors mean the other side is gone.
func (c conn) recv() (msg, []*os.File, error) {
	oob := make([]byte, unix.CmsgSpace(16*4))
	reset := false
	for {
		// Peek at the packet's size first: a buffer for the largest
		// possible packet, zeroed on every call, cost more than the rest
		// of the protocol together.
		size, _, err := unix.Recvfrom(int(c.f.Fd()), nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		if err == unix.EINTR {
			continue
		}
		buf := make([]byte, max(size, 1))
		n, oobn, _, _, err := unix.Recvmsg(int(c.f.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		// A peer that closed with a message of ours unread (init failing
		// before it read the seccomp program) makes the kernel report
		// ECONNRESET once, ahead of what the peer sent before it closed.
		if err == unix.ECONNRESET && !reset {
			reset = true
			continue
		}
		if err != nil {
			return msg{}, nil, fmt.Errorf("control socket: %w", err)
		}
		if n == 0 {
			return msg{}, nil, fmt.Errorf("control socket: closed")
		}
		var files []*os.File
		if oobn > 0 {
			cms, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				return msg{}, nil, fmt.Errorf("control socket: %w", err)
			}
			for _, cm := range cms {
				fds, err := unix.ParseUnixRights(&cm)
				if err != nil {
					continue
				}
				for _, fd := range fds {
					files = append(files, os.NewFile(uintptr(fd), "control-fd"))
				}
			}
		}
		var m msg
		if err := json.Unmarshal(buf[:n], &m); err != nil {
			return msg{}, nil, fmt.Errorf("control socket: %w", err)
		}
		return m, files, nil
	}
}

// socketPair returns the parent's and init's ends of a fresh control socket.
func socketPair() (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("control socket: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "control"), os.NewFile(uintptr(fds[1]), "control"), nil
}
