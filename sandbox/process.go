package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sbx-sandbox/sbx/spec"
)

// passedFDBase is where init finds the --pass-fd descriptors: right after
// the control socket, in the order of spec.PassFDs.
const passedFDBase = controlFD + 1

// startCommand forks and executes the command. The command gets 0, 1, 2
// and the passed descriptors under their own numbers, nothing else (every
// other fd of init is close-on-exec).
func startCommand(s *spec.Spec, keep []uintptr) (int, error) {
	argv0, err := lookPath(s.Argv[0], lookupEnv(s.Env, "PATH"))
	if err != nil {
		return 0, err
	}
	max := 2
	for _, fd := range s.PassFDs {
		if fd > max {
			max = fd
		}
	}
	files := make([]*os.File, max+1)
	files[0], files[1], files[2] = os.Stdin, os.Stdout, os.Stderr
	for i, fd := range s.PassFDs {
		files[fd] = os.NewFile(uintptr(passedFDBase+i), fmt.Sprintf("fd %d", fd))
	}
	attr := &syscall.SysProcAttr{AmbientCaps: keep, Credential: commandCredential(s)}
	switch {
	case s.NewSession:
		attr.Setsid = true
	case s.Terminal:
		// The command gets the terminal's foreground: ^C and ^Z reach it
		// (and only it), and a shell inside gets job control.
		attr.Setpgid = true
		attr.Foreground = true
		attr.Ctty = 0
	default:
		attr.Setpgid = true
	}
	path, argv := limitedArgv(s.Limits, argv0, s.Argv)
	p, err := os.StartProcess(path, argv, &os.ProcAttr{Env: s.Env, Files: files, Sys: attr})
	if err != nil {
		return 0, execFailure(s.Argv[0], err)
	}
	return p.Pid, nil
}

// lookPath finds the command in the sandbox's own PATH, as a shell would.
func lookPath(name, path string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	if path == "" {
		path = spec.DefaultPath
	}
	var denied error
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		st, err := os.Stat(p)
		if err != nil || st.IsDir() {
			continue
		}
		if st.Mode()&0o111 == 0 {
			denied = execFailure(name, os.ErrPermission)
			continue
		}
		return p, nil
	}
	if denied != nil {
		return "", denied
	}
	return "", &Failure{Code: 127, Err: fmt.Errorf("%s: command not found in the sandbox (PATH=%s): bind the directory that holds it", name, path)}
}

// execFailure maps an exec error to 127 (not found) or 126 (not executable).
func execFailure(name string, err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return &Failure{Code: 127, Err: fmt.Errorf("%s: not found in the sandbox: bind it or fix the path", name)}
	}
	return &Failure{Code: 126, Err: fmt.Errorf("%s: cannot execute: %v", name, unwrapPathError(err))}
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// superviseCommand is init's life as PID 1: start the command, pass on
// the signals the parent forwards, reap every process that ends (orphans
// are re-parented to init), and when the command ends, kill whatever is
// left and report its status. A command stopped by the terminal (^Z) is
// reported, so that sbx stops too and the user's shell gets the terminal
// back; the parent's continue message (fg, bg) resumes it.
func superviseCommand(ctl conn, s *spec.Spec, keep []uintptr) (int, error) {
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, append([]os.Signal{unix.SIGCHLD}, forwarded...)...)
	pid, err := startCommand(s, keep)
	if err != nil {
		return 0, err
	}
	ctl.send(msg{Kind: kindStarted, Pid: pid})
	reqs := readRequests(ctl)
	others := entered{}
	for {
		ws, done, stopped := reap(pid, func(p int, ws unix.WaitStatus) { others.ended(ctl, p, ws) })
		if done {
			code, sig := 0, 0
			switch {
			case ws.Exited():
				code = ws.ExitStatus()
			case ws.Signaled():
				sig = int(ws.Signal())
				code = 128 + sig
			}
			// kill(-1) from PID 1 reaches every other process of the namespace.
			unix.Kill(-1, unix.SIGKILL)
			ctl.send(msg{Kind: kindExit, Code: code, Signal: sig})
			return code, nil
		}
		if stopped {
			ctl.send(msg{Kind: kindStopped})
		}
		select {
		case sig := <-sigs:
			if sig != unix.SIGCHLD {
				unix.Kill(pid, sig.(syscall.Signal))
			}
		case r, ok := <-reqs:
			if !ok {
				reqs = nil
				continue
			}
			if r.m.Kind == kindContinue {
				if r.m.Foreground {
					giveTerminal(pid)
				}
				unix.Kill(-pid, unix.SIGCONT)
				continue
			}
			others.handle(ctl, s, keep, r)
		}
	}
}

// giveTerminal makes the command's process group the terminal's
// foreground. init is not in the foreground itself, so the kernel would
// stop it with SIGTTOU for asking, unless it ignores that signal meanwhile.
func giveTerminal(pgid int) {
	signal.Ignore(unix.SIGTTOU)
	defer signal.Reset(unix.SIGTTOU)
	unix.IoctlSetPointerInt(0, unix.TIOCSPGRP, pgid)
}

// reap collects every ended child and reports whether pid was among them,
// or was stopped (by ^Z at the terminal, say); other is told of every other
// child that ended.
func reap(pid int, other func(int, unix.WaitStatus)) (main unix.WaitStatus, done, stopped bool) {
	for {
		var ws unix.WaitStatus
		p, err := unix.Wait4(-1, &ws, unix.WNOHANG|unix.WUNTRACED, nil)
		if err == unix.EINTR {
			continue
		}
		if p <= 0 || err != nil {
			return main, done, stopped
		}
		switch {
		case ws.Stopped():
			stopped = stopped || p == pid
		case p == pid:
			main, done = ws, true
		case other != nil:
			other(p, ws)
		}
	}
}
