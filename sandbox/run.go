package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sbx-sandbox/sbx/spec"
	"github.com/sbx-sandbox/sbx/userns"
)

// initArg0 marks a re-executed sbx as a sandbox's init.
const initArg0 = "sbx-init"

// forwarded are the signals the parent passes on to the command through init.
var forwarded = []os.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH}

// Failure is one of sbx's own failures: Code is 125, or 126/127 when the
// command could not be executed or found, as podman and docker do.
type Failure struct {
	Code int
	Err  error
}

func (f *Failure) Error() string { return f.Err.Error() }

// Run starts the sandbox described by s, waits for it and returns the
// status sbx exits with: the command's own, or 128+N when it died of
// signal N. Failures of sbx itself are printed as one line and give 125.
func Run(s *spec.Spec) int {
	code, err := run(s)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sbx: %v\n", err)
		var f *Failure
		if errors.As(err, &f) {
			return f.Code
		}
		return 125
	}
	return code
}

func run(s *spec.Spec) (int, error) {
	// Whatever sbx inherited open stays out of the sandbox: fork passes on
	// every descriptor not marked close-on-exec, so mark them all; the
	// --pass-fd ones are passed explicitly below.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return 0, fmt.Errorf("close_range: %w", err)
	}
	var maps userns.Maps
	if s.MapUsers == "auto" {
		var err error
		if maps, err = userns.Auto(s.UID, s.GID); err != nil {
			return 0, err
		}
	} else {
		maps = userns.Own(s.UID, s.GID)
	}
	if s.CallerDir == "" {
		s.CallerDir, _ = os.Getwd()
	}
	if !s.NewSession {
		if pg, err := unix.IoctlGetInt(0, unix.TIOCGPGRP); err == nil && pg == unix.Getpgrp() {
			s.Terminal = true
			defer takeTerminalBack()
		}
	}
	cg, err := newCgroup(s)
	if err != nil {
		return 0, err
	}
	defer cg.remove()
	netw, err := prepareNetwork(s)
	if err != nil {
		return 0, err
	}
	defer netw.close()

	parentEnd, childEnd, err := socketPair()
	if err != nil {
		return 0, err
	}
	defer parentEnd.Close()
	ctl := conn{parentEnd}

	cmd := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        []string{initArg0},
		Env:         initEnv(),
		Stdin:       os.Stdin,
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
		ExtraFiles:  []*os.File{childEnd},
		SysProcAttr: initAttr(s, maps),
	}
	for _, fd := range s.PassFDs {
		f := os.NewFile(uintptr(fd), fmt.Sprintf("fd %d", fd))
		if _, err := f.Stat(); err != nil {
			return 0, fmt.Errorf("--pass-fd %d: %v: open it in the shell that runs sbx (e.g. %d<file)", fd, err, fd)
		}
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
	}

	// The seccomp program is compiled while init starts up and builds the
	// root, on the other core, off the critical path.
	type compiled struct {
		prog []byte
		err  error
	}
	progc := make(chan compiled, 1)
	go func() {
		p, err := compileSeccomp(s.Seccomp)
		progc <- compiled{p, err}
	}()

	// Pdeathsig fires when the thread that started init exits, so the
	// starting goroutine keeps its thread until init is gone.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		childEnd.Close()
		return 0, explainCloneError(err)
	}
	childEnd.Close()
	pid := cmd.Process.Pid
	waited := false
	defer func() {
		if !waited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	// Until here a signal kills sbx, and init with it: nothing had started.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)

	testPause("userns")
	if maps.Helper {
		if err := maps.Install(pid); err != nil {
			return 0, err
		}
	}
	if err := cg.enter(pid); err != nil {
		return 0, err
	}
	if err := netw.startExternal(s, pid); err != nil {
		return 0, err
	}
	// Init builds the sandbox while the parent registers it.
	if err := ctl.send(msg{Kind: kindSpec, Spec: s}); err != nil {
		return 0, err
	}
	sup, err := supervise(s, pid, cg, ctl)
	if err != nil {
		return 0, err
	}
	defer sup.close()
	c := <-progc
	if c.err != nil {
		return 0, c.err
	}
	// A failed send means init has already ended, having failed before it
	// read the program: its own error, read below, is the one to report.
	sendErr := ctl.send(msg{Kind: kindSeccomp, Program: c.prog})

	msgs := make(chan msg)
	go func() {
		defer close(msgs)
		for {
			m, files, err := ctl.recv()
			if err != nil {
				return
			}
			if sup.route(m, files) {
				closeFiles(files)
				continue
			}
			if m.Kind == kindTap && len(files) == 1 {
				if err := netw.attach(s, files[0]); err != nil {
					m = msg{Kind: kindError, Error: err.Error()}
					cmd.Process.Kill()
				}
			}
			msgs <- m
		}
	}()

	var result *msg
	for done := false; !done; {
		select {
		case sig := <-sigs:
			cmd.Process.Signal(sig)
		case m, ok := <-msgs:
			if !ok {
				done = true
				break
			}
			switch m.Kind {
			case kindExit, kindError:
				mm := m
				result = &mm
			case kindStopped:
				// Stop sbx itself, so the user's shell sees its job
				// stopped and takes the terminal back; fg or bg continue
				// sbx, which then resumes the command. SIGSTOP is aimed
				// at this very thread: it stops on its way out of the
				// syscall, before it can tell init to go on, where
				// kill(getpid()) would let another thread take the signal
				// while this one ran ahead and resumed the command.
				unix.Tgkill(unix.Getpid(), unix.Gettid(), unix.SIGSTOP)
				fg := false
				if pg, err := unix.IoctlGetInt(0, unix.TIOCGPGRP); err == nil && pg == unix.Getpgrp() {
					fg = true
				}
				ctl.send(msg{Kind: kindContinue, Foreground: fg})
			}
			// Init has killed everything else before it reports the
			// command's end; like bubblewrap's monitor, sbx passes the
			// status on at once instead of waiting for the kernel to
			// tear the namespaces down, unless a cgroup must be emptied
			// first. Pdeathsig ends init should it linger.
			if m.Kind == kindExit && cg == nil {
				done = true
			}
		}
	}
	var state *os.ProcessState
	if result == nil || result.Kind != kindExit || cg != nil {
		state, _ = cmd.Process.Wait()
	}
	waited = true
	switch {
	case result != nil && result.Kind == kindError:
		code := result.Code
		if code == 0 {
			code = 125
		}
		return 0, &Failure{Code: code, Err: errors.New(result.Error)}
	case result != nil:
		code := exitStatus(s, cg, result)
		sup.exited(code)
		return code, nil
	}
	if msg := cg.exitMessage(128 + 9); msg != "" {
		// The OOM killer chose init itself: the sandbox ended with it.
		fmt.Fprintf(os.Stderr, "sbx: %s\n", msg)
		sup.exited(128 + 9)
		return 128 + 9, nil
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		// sbx kill, or someone else, signalled init itself: the sandbox
		// ended as a command killed by that signal would have.
		fmt.Fprintf(os.Stderr, "sbx: the sandbox's init was killed by %s\n", unix.SignalName(ws.Signal()))
		sup.exited(128 + int(ws.Signal()))
		return 128 + int(ws.Signal()), nil
	}
	if sendErr != nil {
		return 0, sendErr
	}
	return 0, fmt.Errorf("the sandbox's init ended without a status (%v)", state)
}

// takeTerminalBack gives the terminal's foreground back to sbx's own
// process group, which the command held, so that whatever ran sbx (a
// script without job control, say) can read from the terminal again.
func takeTerminalBack() {
	signal.Ignore(unix.SIGTTOU)
	defer signal.Reset(unix.SIGTTOU)
	unix.IoctlSetPointerInt(0, unix.TIOCSPGRP, unix.Getpgrp())
}

// exitStatus is the status sbx passes on for the command's end.
func exitStatus(s *spec.Spec, cg *cgroup, m *msg) int {
	if msg := cg.exitMessage(m.Code); msg != "" {
		fmt.Fprintf(os.Stderr, "sbx: %s\n", msg)
	}
	return m.Code
}
