package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/sbx-sandbox/sbx/spec"
	"github.com/sbx-sandbox/sbx/state"
)

// supervisor is the parent's bookkeeping of a running sandbox: its state
// entry (for sbx ps, enter, kill), the socket sbx enter connects to, and
// the --info-fd / --json-status-fd reports.
type supervisor struct {
	s     *spec.Spec
	ctl   conn
	store *state.Store
	entry *state.Entry
	ln    *net.UnixListener

	mu       sync.Mutex
	sessions map[int]*net.UnixConn // sbx enter sessions by id
	next     int
}

// supervise registers the sandbox whose init is pid and starts listening
// for sbx enter.
func supervise(s *spec.Spec, pid int, cg *cgroup, ctl conn) (*supervisor, error) {
	sup := &supervisor{s: s, ctl: ctl, sessions: map[int]*net.UnixConn{}}
	sup.writeStatus(pid)
	store, err := state.Open()
	if err != nil {
		return nil, err
	}
	e := &state.Entry{Name: s.Name, Pid: pid, Profile: s.Profile, Command: s.Argv, Cgroup: cg.state()}
	if err := store.Create(e); err != nil {
		return nil, err
	}
	sup.store, sup.entry = store, e
	if s.Name == "" {
		// Stale entries of sandboxes that died are cleaned while init
		// starts up, off the critical path (Create did it for a name).
		go store.Clean()
	}
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: e.Socket(), Net: "unixpacket"})
	if err != nil {
		store.Remove(e)
		return nil, fmt.Errorf("state: listen on %s: %w", e.Socket(), err)
	}
	sup.ln = ln
	go sup.accept()
	return sup, nil
}

// close removes the sandbox's state; its enter sessions end with it.
func (sup *supervisor) close() {
	if sup == nil {
		return
	}
	if sup.ln != nil {
		sup.ln.Close()
	}
	sup.mu.Lock()
	for _, c := range sup.sessions {
		c.Close()
	}
	sup.mu.Unlock()
	if sup.entry != nil {
		sup.store.Remove(sup.entry)
	}
}

func (sup *supervisor) accept() {
	for {
		c, err := sup.ln.AcceptUnix()
		if err != nil {
			return
		}
		go sup.serve(c)
	}
}

// serve runs one sbx enter session: the request goes to init with the
// client's stdin, stdout and stderr; init's answers come back; signals the
// client forwards go to the entered process; a client that goes away
// takes its process with it.
func (sup *supervisor) serve(c *net.UnixConn) {
	defer c.Close()
	// The request is read before the peer is judged: a refused client
	// whose request stayed unread would get ECONNRESET, not the refusal.
	m, files, err := recvFrom(c)
	if err := checkPeer(c); err != nil {
		closeFiles(files)
		sendTo(c, msg{Kind: kindError, Error: err.Error(), Code: 125})
		return
	}
	if err != nil || m.Kind != kindExec || m.Exec == nil || len(files) != 3 {
		closeFiles(files)
		sendTo(c, msg{Kind: kindError, Error: "sbx enter: malformed request", Code: 125})
		return
	}
	sup.mu.Lock()
	sup.next++
	id := sup.next
	sup.sessions[id] = c
	sup.mu.Unlock()
	defer func() {
		sup.mu.Lock()
		delete(sup.sessions, id)
		sup.mu.Unlock()
		// The client is gone (done or killed): so is what it entered.
		sup.ctl.send(msg{Kind: kindSignal, Session: id, Signal: int(unix.SIGKILL)})
	}()
	err = sup.ctl.send(msg{Kind: kindExec, Session: id, Exec: m.Exec}, files...)
	closeFiles(files)
	if err != nil {
		sendTo(c, msg{Kind: kindError, Error: "the sandbox is ending", Code: 125})
		return
	}
	for {
		m, files, err := recvFrom(c)
		closeFiles(files)
		if err != nil {
			return
		}
		if m.Kind == kindSignal && m.Signal > 0 {
			sup.ctl.send(msg{Kind: kindSignal, Session: id, Signal: m.Signal})
		}
	}
}

// route passes init's answer about an enter session to its client (with
// the pty's master, for a terminal session) and reports whether m was one.
func (sup *supervisor) route(m msg, files []*os.File) bool {
	if m.Session == 0 {
		return false
	}
	if sup == nil {
		return true
	}
	sup.mu.Lock()
	c := sup.sessions[m.Session]
	sup.mu.Unlock()
	if c != nil {
		sendTo(c, m, files...)
		if m.Kind == kindExit || m.Kind == kindError {
			// Half-close: the client reads the status, then EOF.
			c.CloseWrite()
		}
	}
	return true
}

// checkPeer lets only the sandbox's own user enter it. The state
// directory is private already; this holds even where it is not.
func checkPeer(c *net.UnixConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var cerr error
	rc.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	if cerr != nil {
		return cerr
	}
	if int(cred.Uid) != os.Getuid() {
		return fmt.Errorf("uid %d may not enter a sandbox of uid %d", cred.Uid, os.Getuid())
	}
	// A process inside a sandbox that can reach the socket (the state
	// directory bound in) must not step into another sandbox: only a
	// client in sbx's own user namespace, outside every sandbox, may enter.
	own, err := os.Readlink("/proc/self/ns/user")
	if err != nil {
		return err
	}
	peer, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", cred.Pid))
	if err != nil || peer != own {
		return errors.New("sbx enter works only from outside the sandboxes (the client is in another user namespace)")
	}
	return nil
}

// status is a --info-fd / --json-status-fd record, in bubblewrap's words.
type status struct {
	ChildPid   int    `json:"child-pid,omitempty"`
	CgroupNS   uint64 `json:"cgroup-namespace,omitempty"`
	IPCNS      uint64 `json:"ipc-namespace,omitempty"`
	MntNS      uint64 `json:"mnt-namespace,omitempty"`
	NetNS      uint64 `json:"net-namespace,omitempty"`
	PidNS      uint64 `json:"pid-namespace,omitempty"`
	UTSNS      uint64 `json:"uts-namespace,omitempty"`
	UserNS     uint64 `json:"user-namespace,omitempty"`
	ExitCode   *int   `json:"exit-code,omitempty"`
	SandboxID  string `json:"id,omitempty"`
	SandboxNam string `json:"name,omitempty"`
}

func (sup *supervisor) writeStatus(pid int) {
	if sup.s.StatusFDs.Info == 0 && sup.s.StatusFDs.JSON == 0 {
		return
	}
	st := status{ChildPid: pid, SandboxNam: sup.s.Name}
	for name, p := range map[string]*uint64{"cgroup": &st.CgroupNS, "ipc": &st.IPCNS, "mnt": &st.MntNS, "net": &st.NetNS, "pid": &st.PidNS, "uts": &st.UTSNS, "user": &st.UserNS} {
		var sb unix.Stat_t
		if unix.Stat(fmt.Sprintf("/proc/%d/ns/%s", pid, name), &sb) == nil {
			*p = sb.Ino
		}
	}
	if fd := sup.s.StatusFDs.Info; fd != 0 {
		b, _ := json.MarshalIndent(st, "", "    ")
		writeFD(fd, append(b, '\n'))
		unix.Close(fd) // info is one object: the reader sees EOF after it
	}
	if fd := sup.s.StatusFDs.JSON; fd != 0 {
		b, _ := json.Marshal(st)
		writeFD(fd, append(b, '\n'))
	}
}

// exited writes the exit status line of --json-status-fd.
func (sup *supervisor) exited(code int) {
	if sup == nil || sup.s.StatusFDs.JSON == 0 {
		return
	}
	b, _ := json.Marshal(status{ExitCode: &code})
	writeFD(sup.s.StatusFDs.JSON, append(b, '\n'))
}

func writeFD(fd int, b []byte) {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n <= 0 {
			return
		}
		b = b[n:]
	}
}

func sendTo(c *net.UnixConn, m msg, files ...*os.File) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, _, err = c.WriteMsgUnix(b, rights(files), nil)
	return err
}

// rights is the SCM_RIGHTS message that passes files along.
func rights(files []*os.File) []byte {
	if len(files) == 0 {
		return nil
	}
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	return unix.UnixRights(fds...)
}

func recvFrom(c *net.UnixConn) (msg, []*os.File, error) {
	buf := make([]byte, 1<<20)
	oob := make([]byte, unix.CmsgSpace(16*4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return msg{}, nil, err
	}
	if n == 0 {
		return msg{}, nil, errors.New("closed")
	}
	var files []*os.File
	if oobn > 0 {
		cms, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err == nil {
			for _, cm := range cms {
				fds, err := unix.ParseUnixRights(&cm)
				if err != nil {
					continue
				}
				for _, fd := range fds {
					unix.CloseOnExec(fd)
					files = append(files, os.NewFile(uintptr(fd), "enter-fd"))
				}
			}
		}
	}
	var m msg
	if err := json.Unmarshal(buf[:n], &m); err != nil {
		closeFiles(files)
		return msg{}, nil, err
	}
	return m, files, nil
}

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// mergeEnv sets the KEY=VALUE entries of over on base.
func mergeEnv(base, over []string) []string {
	out := append([]string(nil), base...)
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, b := range out {
			if strings.HasPrefix(b, k+"=") {
				out[i], replaced = kv, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}
