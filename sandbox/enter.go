package sandbox

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sbx-sandbox/sbx/spec"
)

// request is an sbx enter message that reached init, with its fds.
type request struct {
	m     msg
	files []*os.File
}

// readRequests passes init the parent's enter requests and signals for
// entered processes, in the order they came.
func readRequests(ctl conn) <-chan request {
	ch := make(chan request)
	go func() {
		defer close(ch)
		for {
			m, files, err := ctl.recv()
			if err != nil {
				return
			}
			if m.Kind != kindExec && m.Kind != kindSignal && m.Kind != kindContinue {
				closeFiles(files)
				continue
			}
			ch <- request{m, files}
		}
	}()
	return ch
}

// entered are the processes sbx enter started, by pid, with their session.
type entered map[int]int

// handle starts an entered process or signals one. Init runs it on its
// own loop, so that a process that ends at once is reaped only after its
// pid is recorded here.
func (e entered) handle(ctl conn, s *spec.Spec, keep []uintptr, r request) {
	defer closeFiles(r.files)
	id := r.m.Session
	if r.m.Kind == kindSignal {
		for pid, sid := range e {
			if sid == id {
				unix.Kill(pid, syscall.Signal(r.m.Signal))
			}
		}
		return
	}
	if len(r.files) != 3 || r.m.Exec == nil {
		ctl.send(msg{Kind: kindError, Session: id, Error: "malformed enter request", Code: 125})
		return
	}
	pid, err := startEntered(s, keep, r.m.Exec, r.files)
	if err != nil {
		f := &Failure{Code: 125, Err: err}
		errors.As(err, &f)
		ctl.send(msg{Kind: kindError, Session: id, Error: f.Err.Error(), Code: f.Code})
		return
	}
	e[pid] = id
	ctl.send(msg{Kind: kindStarted, Session: id, Pid: pid})
}

// ended reports an entered process's end to its session; it says whether
// pid was one.
func (e entered) ended(ctl conn, pid int, ws unix.WaitStatus) bool {
	id, ok := e[pid]
	if !ok {
		return false
	}
	delete(e, pid)
	code, sig := ws.ExitStatus(), 0
	if ws.Signaled() {
		sig = int(ws.Signal())
		code = 128 + sig
	}
	ctl.send(msg{Kind: kindExit, Session: id, Code: code, Signal: sig})
	return true
}

// startEntered starts the process sbx enter asked for: the same kind of
// process as the command (init's namespaces, root, capabilities, seccomp
// filter, Landlock domain, cgroup and rlimits, all inherited from init),
// in a session of its own, with the client's stdin, stdout and stderr.
func startEntered(s *spec.Spec, keep []uintptr, req *ExecRequest, files []*os.File) (int, error) {
	env := mergeEnv(s.Env, req.Env)
	argv := req.Argv
	if len(argv) == 0 {
		sh := lookupEnv(env, "SHELL")
		if sh == "" {
			sh = "/bin/sh"
		}
		if _, err := os.Stat(sh); err != nil {
			sh = "/bin/sh"
		}
		argv = []string{sh}
	}
	argv0, err := lookPath(argv[0], lookupEnv(env, "PATH"))
	if err != nil {
		return 0, err
	}
	dir := req.Cwd
	if st, err := os.Stat(dir); dir == "" || err != nil || !st.IsDir() {
		dir = "/"
	}
	path, argv := limitedArgv(s.Limits, argv0, argv)
	p, err := os.StartProcess(path, argv, &os.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: files,
		Sys:   &syscall.SysProcAttr{AmbientCaps: keep, Setsid: true},
	})
	if err != nil {
		return 0, execFailure(argv[0], err)
	}
	return p.Pid, nil
}

// Enter runs argv (the user's shell when empty) in the running sandbox
// whose supervisor listens on socket, and returns the status sbx exits with.
func Enter(socket string, argv []string) int {
	code, err := enter(socket, argv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sbx: %v\n", err)
		return 125
	}
	return code
}

func enter(socket string, argv []string) (int, error) {
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: socket, Net: "unixpacket"})
	if err != nil {
		return 0, fmt.Errorf("cannot reach the sandbox's supervisor at %s: %w", socket, err)
	}
	defer c.Close()
	req := &ExecRequest{Argv: argv}
	req.Cwd, _ = os.Getwd()
	if t := os.Getenv("TERM"); t != "" {
		req.Env = append(req.Env, "TERM="+t)
	}
	req.TTY = isTerminal(0)
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)
	if err := sendTo(c, msg{Kind: kindExec, Exec: req}, os.Stdin, os.Stdout, os.Stderr); err != nil {
		return 0, fmt.Errorf("sbx enter: %w", err)
	}
	go func() {
		for sig := range sigs {
			sendTo(c, msg{Kind: kindSignal, Signal: int(sig.(syscall.Signal))})
		}
	}()
	for {
		m, files, err := recvFrom(c)
		closeFiles(files)
		if err != nil {
			return 0, fmt.Errorf("the sandbox ended before the entered command did")
		}
		switch m.Kind {
		case kindExit:
			return m.Code, nil
		case kindError:
			fmt.Fprintf(os.Stderr, "sbx: %s\n", m.Error)
			if m.Code == 0 {
				m.Code = 125
			}
			return m.Code, nil
		}
	}
}

func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}
