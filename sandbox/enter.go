package sandbox

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

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
	files, master := r.files, (*os.File)(nil)
	if r.m.Exec.TTY {
		var slave *os.File
		var err error
		if master, slave, err = openPty(r.m.Exec.Rows, r.m.Exec.Cols); err != nil {
			ctl.send(msg{Kind: kindError, Session: id, Error: err.Error(), Code: 125})
			return
		}
		defer master.Close()
		defer slave.Close()
		files = []*os.File{slave, slave, slave}
	}
	pid, err := startEntered(s, keep, r.m.Exec, files)
	if err != nil {
		f := &Failure{Code: 125, Err: err}
		errors.As(err, &f)
		ctl.send(msg{Kind: kindError, Session: id, Error: f.Err.Error(), Code: f.Code})
		return
	}
	e[pid] = id
	if master != nil {
		ctl.send(msg{Kind: kindStarted, Session: id, Pid: pid}, master)
		return
	}
	ctl.send(msg{Kind: kindStarted, Session: id, Pid: pid})
}

// openPty makes a pseudo-terminal in the sandbox's own devpts for a
// terminal session of sbx enter: the client's terminal is already some
// other session's controlling terminal, so the entered shell could not
// have it as its own (no job control); the client relays to the master.
func openPty(rows, cols uint16) (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("sbx enter: pty: %w", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("sbx enter: unlock pty: %w", err)
	}
	// TIOCGPTPEER opens the slave without a path lookup.
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, m.Fd(), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno != 0 {
		m.Close()
		return nil, nil, fmt.Errorf("sbx enter: pty slave: %w", errno)
	}
	fd := int(r)
	s := os.NewFile(uintptr(fd), "pty")
	if rows > 0 && cols > 0 {
		unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	}
	return m, s, nil
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
	attr := &syscall.SysProcAttr{AmbientCaps: keep, Setsid: true, Credential: commandCredential(s)}
	if req.TTY {
		// The pty becomes its controlling terminal: a shell gets job control.
		attr.Setctty, attr.Ctty = true, 0
	}
	p, err := os.StartProcess(path, argv, &os.ProcAttr{Dir: dir, Env: env, Files: files, Sys: attr})
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
	req.TTY = isTerminal(0) && isTerminal(1)
	if ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ); req.TTY && err == nil {
		req.Rows, req.Cols = ws.Row, ws.Col
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)
	if err := sendTo(c, msg{Kind: kindExec, Exec: req}, os.Stdin, os.Stdout, os.Stderr); err != nil {
		return 0, fmt.Errorf("sbx enter: %w", err)
	}
	var term *relay
	defer func() { term.stop() }()
	go func() {
		for sig := range sigs {
			if sig == unix.SIGWINCH && term != nil {
				term.resize()
				continue
			}
			sendTo(c, msg{Kind: kindSignal, Signal: int(sig.(syscall.Signal))})
		}
	}()
	for {
		m, files, err := recvFrom(c)
		if m.Kind == kindStarted && len(files) == 1 && req.TTY && term == nil {
			term, err = startRelay(files[0])
			if err != nil {
				return 0, err
			}
			continue
		}
		closeFiles(files)
		if err != nil {
			return 0, fmt.Errorf("the sandbox ended before the entered command did")
		}
		switch m.Kind {
		case kindExit:
			term.drain()
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

// relay carries a terminal session of sbx enter between the user's
// terminal, in raw mode meanwhile, and the pty's master from init.
type relay struct {
	master *os.File
	saved  *unix.Termios
	out    chan struct{} // closed when the master has nothing more to say
}

func startRelay(master *os.File) (*relay, error) {
	// A non-blocking copy, so that Go's poller serves it and drain can
	// time out (an *os.File's Fd makes its descriptor blocking).
	fd, err := unix.Dup(int(master.Fd()))
	master.Close()
	if err == nil {
		unix.CloseOnExec(fd)
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		return nil, fmt.Errorf("sbx enter: pty: %w", err)
	}
	m := os.NewFile(uintptr(fd), "pty")
	saved, err := unix.IoctlGetTermios(0, unix.TCGETS)
	if err != nil {
		return nil, fmt.Errorf("sbx enter: terminal: %w", err)
	}
	raw := *saved
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(0, unix.TCSETS, &raw); err != nil {
		return nil, fmt.Errorf("sbx enter: terminal: %w", err)
	}
	r := &relay{master: m, saved: saved, out: make(chan struct{})}
	r.resize()
	go func() {
		io.Copy(m, os.Stdin)
	}()
	go func() {
		io.Copy(os.Stdout, m)
		close(r.out)
	}()
	return r, nil
}

// resize gives the pty the user's terminal size (on SIGWINCH).
func (r *relay) resize() {
	if ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ); err == nil {
		unix.IoctlSetWinsize(int(r.master.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// drain waits, briefly, for the last output of the ended process.
func (r *relay) drain() {
	if r == nil {
		return
	}
	r.master.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	<-r.out
}

// stop gives the user's terminal its settings back.
func (r *relay) stop() {
	if r == nil {
		return
	}
	unix.IoctlSetTermios(0, unix.TCSETS, r.saved)
}
