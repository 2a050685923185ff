package slirp

// These tests run the stack on a real TAP device in a real network
// namespace: the test binary re-executes itself into a new user and network
// namespace, creates the TAP there with CreateTap, hands the fd back over a
// socket, and then acts as the sandboxed program, with real kernel sockets.
// Every server they reach lives on this machine's loopback.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sbx-sandbox/sbx/internal/testdns"
	"github.com/sbx-sandbox/sbx/spec"
)

const childEnv = "SBX_SLIRP_TEST_CHILD"

func TestMain(m *testing.M) {
	if steps := os.Getenv(childEnv); steps != "" {
		os.Exit(child(steps))
	}
	os.Exit(m.Run())
}

// child is the sandboxed side: make the TAP, pass it on, wait for the
// stack, then run the steps and print one result line per step.
func child(steps string) int {
	ctl := os.NewFile(3, "control")
	tap, err := CreateTap(spec.Net{IPv6: os.Getenv("SBX_SLIRP_TEST_IPV6") != ""})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	if err := unix.Sendmsg(int(ctl.Fd()), []byte("tap"), unix.UnixRights(int(tap.Fd())), nil, 0); err != nil {
		fmt.Fprintln(os.Stderr, "child: send tap:", err)
		return 2
	}
	tap.Close()
	if _, err := ctl.Read(make([]byte, 8)); err != nil {
		return 2
	}
	for _, step := range strings.Split(steps, ";") {
		fmt.Println(runStep(strings.Fields(step)))
	}
	return 0
}

// runStep does one thing a sandboxed program would and says how it went:
// "ok <data>", or the kind of failure ("refused", "timeout", ...).
func runStep(f []string) string {
	switch f[0] {
	case "tcp": // tcp ADDR: connect, send a line, read the echo
		c, err := net.DialTimeout("tcp", f[1], 5*time.Second)
		if err != nil {
			return failure(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintln(c, "hello")
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return failure(err)
		}
		return "ok " + strings.TrimSpace(line)
	case "tcp6route": // tcp6route ADDR: add an IPv6 address and route by hand, then connect
		if err := addAddress6ForTest(); err != nil {
			return failure(err)
		}
		c, err := net.DialTimeout("tcp", f[1], 2*time.Second)
		if err != nil {
			return failure(err)
		}
		c.Close()
		return "ok connected"
	case "bulk": // bulk ADDR MIB: send MIB MiB of pseudo-random bytes, read them all back, compare
		c, err := net.DialTimeout("tcp", f[1], 5*time.Second)
		if err != nil {
			return failure(err)
		}
		defer c.Close()
		mib, _ := strconv.Atoi(f[2])
		data := make([]byte, mib<<20)
		rand.NewChaCha8([32]byte{1}).Read(data)
		errc := make(chan error, 1)
		go func() {
			_, err := c.Write(data)
			c.(*net.TCPConn).CloseWrite()
			errc <- err
		}()
		back, err := io.ReadAll(c)
		if err != nil {
			return failure(err)
		}
		if err := <-errc; err != nil {
			return failure(err)
		}
		if !bytes.Equal(back, data) {
			return fmt.Sprintf("corrupted: %d bytes back of %d", len(back), len(data))
		}
		return "ok intact"
	case "udp": // udp ADDR: send a datagram, read the echo
		c, err := net.Dial("udp", f[1])
		if err != nil {
			return failure(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		c.Write([]byte("hello"))
		buf := make([]byte, 100)
		n, err := c.Read(buf)
		if err != nil {
			return failure(err)
		}
		return "ok " + string(buf[:n])
	case "resolve": // resolve NAME: ask the sandbox's DNS server (udp, then tcp)
		var out []string
		for _, network := range []string{"udp", "tcp"} {
			r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, net.JoinHostPort(DNSAddr.String(), "53"))
			}}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			addrs, err := r.LookupHost(ctx, f[1])
			cancel()
			if err != nil {
				var de *net.DNSError
				if errors.As(err, &de) {
					return "dnserror " + network
				}
				return failure(err)
			}
			out = append(out, strings.Join(addrs, ","))
		}
		return "ok " + strings.Join(out, " ")
	case "serve": // serve PORT: answer one connection on PORT with "inside"
		ln, err := net.Listen("tcp", ":"+f[1])
		if err != nil {
			return failure(err)
		}
		defer ln.Close()
		fmt.Println("listening")
		c, err := ln.Accept()
		if err != nil {
			return failure(err)
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		fmt.Fprintf(c, "inside %s", line)
		return "ok served"
	case "userve": // userve PORT: answer one datagram on PORT with "inside DATA"
		pc, err := net.ListenPacket("udp", ":"+f[1])
		if err != nil {
			return failure(err)
		}
		defer pc.Close()
		fmt.Println("listening")
		buf := make([]byte, 100)
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return failure(err)
		}
		pc.WriteTo(append([]byte("inside "), buf[:n]...), from)
		return "ok served"
	case "ping": // ping ADDR: one echo through an unprivileged ICMP socket
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP)
		if err != nil {
			return failure(err)
		}
		defer unix.Close(fd)
		a := netip.MustParseAddr(f[1])
		unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_RECVERR, 1)
		// Up to three echoes a second apart, as ping sends them: the
		// answer to any of them counts, but none at all is a timeout.
		answered := false
		for try := 0; try < 3 && !answered; try++ {
			// A refusal can come back as soon as the send itself.
			if err := unix.Sendto(fd, []byte{8, 0, 0, 0, 0, 0, 0, byte(1 + try), 'x'}, 0, &unix.SockaddrInet4{Addr: a.As4()}); err != nil {
				return failure(err)
			}
			deadline := time.Now().Add(time.Second)
			for !answered {
				left := time.Until(deadline)
				if left <= 0 {
					break
				}
				n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(left.Milliseconds())+1)
				if err == unix.EINTR {
					continue // the Go runtime's preemption signal
				}
				if err != nil {
					return failure(err)
				}
				answered = n > 0
			}
		}
		if !answered {
			return "timeout"
		}
		buf := make([]byte, 100)
		n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
		if err != nil {
			return failure(err)
		}
		if n == 0 {
			return "empty reply"
		}
		return fmt.Sprintf("ok type %d", buf[0])
	}
	return "bad step " + f[0]
}

func failure(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "unreachable"
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return "prohibited"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "error " + err.Error()
}

// sandboxRun runs steps inside a fresh network namespace on a stack made
// from cfg, and returns the steps' result lines and what the stack logged.
func sandboxRun(t *testing.T, cfg spec.Net, steps ...string) ([]string, string) {
	t.Helper()
	out, logs, wait := sandboxStart(t, cfg, steps...)
	wait()
	return resultLines(out.String()), logs.String()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func resultLines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l != "listening" {
			out = append(out, l)
		}
	}
	return out
}

// sandboxStart is sandboxRun without the wait, for tests that act on the
// sandbox from the host while it runs.
func sandboxStart(t *testing.T, cfg spec.Net, steps ...string) (*syncBuffer, *syncBuffer, func()) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	parent, childEnd := os.NewFile(uintptr(fds[0]), "parent"), os.NewFile(uintptr(fds[1]), "child")
	defer parent.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+strings.Join(steps, ";"))
	if cfg.IPv6 {
		cmd.Env = append(cmd.Env, "SBX_SLIRP_TEST_IPV6=1")
	}
	out, logs := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr, cmd.ExtraFiles = out, out, []*os.File{childEnd}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		Pdeathsig:   syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start a process in new user and network namespaces: %v", err)
	}
	childEnd.Close()
	buf, oob := make([]byte, 8), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(int(parent.Fd()), buf, oob, 0)
	if err != nil || oobn == 0 {
		cmd.Wait()
		t.Fatalf("no TAP fd from the child (%v): %s", err, out.String())
	}
	msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
	rights, err := unix.ParseUnixRights(&msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	st, err := Start(os.NewFile(uintptr(rights[0]), "tap"), cfg, logs)
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("Start: %v", err)
	}
	parent.Write([]byte("go"))
	return out, logs, func() {
		t.Helper()
		if err := cmd.Wait(); err != nil {
			t.Errorf("child: %v: %s", err, out.String())
		}
		st.Close()
	}
}

// echoServer answers each line on a loopback TCP port with "echo LINE".
func echoServer(t *testing.T) int {
	t.Helper()
	return echoServerOn(t, "127.0.0.1")
}

func echoServerOn(t *testing.T, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil && ip == "::1" {
		t.Skipf("this host has no IPv6 loopback: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				fmt.Fprintf(c, "echo %s", line)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// udpEchoServer answers each datagram on a loopback UDP port with "echo DATA".
func udpEchoServer(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte("echo "), buf[:n]...), from)
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// waitListening waits until a "serve" step inside says it listens.
func waitListening(out *syncBuffer) {
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "listening") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

func gw(port int) string { return fmt.Sprintf("%s:%d", GatewayAddr, port) }

func expect(t *testing.T, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("results %q, want %q", got, want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Fatalf("step %d: %q, want %q (all: %q)", i+1, got[i], want[i], got)
		}
	}
}

func TestHostLoopbackIsRefusedByDefault(t *testing.T) {
	port := echoServer(t)
	got, logs := sandboxRun(t, spec.Net{Mode: spec.NetSlirp}, "tcp "+gw(port))
	expect(t, got, "refused")
	if !strings.Contains(logs, "refused tcp "+gw(port)) {
		t.Errorf("no refusal logged: %q", logs)
	}
}

func TestAllowHostLoopbackReachesHostServers(t *testing.T) {
	tcpPort, udpPort := echoServer(t), udpEchoServer(t)
	got, _ := sandboxRun(t, spec.Net{Mode: spec.NetSlirp, AllowHostLoopback: true},
		"tcp "+gw(tcpPort), "udp "+gw(udpPort))
	expect(t, got, "ok echo hello", "ok echo hello")
}

func TestBulkTransferArrivesIntactBothWays(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c) // everything back, then EOF after the sandbox's
	}()
	got, _ := sandboxRun(t, spec.Net{Mode: spec.NetSlirp, AllowHostLoopback: true},
		fmt.Sprintf("bulk %s 32", gw(ln.Addr().(*net.TCPAddr).Port)))
	expect(t, got, "ok intact")
}

func TestClosedHostPortIsRefusedNotTimedOut(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	got, _ := sandboxRun(t, spec.Net{Mode: spec.NetSlirp, AllowHostLoopback: true}, "tcp "+gw(port))
	expect(t, got, "refused")
}

func TestAllowRuleOpensOnePortAndRefusesAnother(t *testing.T) {
	open, closed := echoServer(t), echoServer(t)
	udpClosed := udpEchoServer(t)
	cfg := spec.Net{Mode: spec.NetSlirp, AllowHostLoopback: true, Allow: []string{fmt.Sprintf("tcp:10.0.2.2:%d", open)}}
	var logFile = t.TempDir() + "/net.log"
	cfg.Log = logFile
	got, logs := sandboxRun(t, cfg, "tcp "+gw(open), "tcp "+gw(closed), "udp "+gw(udpClosed))
	// A refused UDP destination gets ICMP port unreachable, which a
	// connected UDP socket reports as ECONNREFUSED.
	expect(t, got, "ok echo hello", "refused", "refused")
	if strings.Count(logs, "\n") != 2 || !strings.Contains(logs, "no allow rule matches") {
		t.Errorf("want one stderr line per refused destination, got %q", logs)
	}
	all, _ := os.ReadFile(logFile)
	if !strings.Contains(string(all), fmt.Sprintf("allow tcp 10.0.2.2:%d", open)) ||
		!strings.Contains(string(all), fmt.Sprintf("refuse tcp 10.0.2.2:%d", closed)) {
		t.Errorf("--net-log lacks the decisions: %q", all)
	}
}

func TestDenyRuleWinsOverAllowRule(t *testing.T) {
	port := echoServer(t)
	cfg := spec.Net{Mode: spec.NetSlirp, AllowHostLoopback: true,
		Allow: []string{"10.0.2.0/24"}, Deny: []string{fmt.Sprintf("10.0.2.2:%d", port)}}
	got, _ := sandboxRun(t, cfg, "tcp "+gw(port))
	expect(t, got, "refused")
}

func TestDNSForwardsToUpstreamOverUDPAndTCP(t *testing.T) {
	up := testdns.Server(t, map[string]string{"db.internal.test": "192.0.2.7"})
	got, _ := sandboxRun(t, spec.Net{Mode: spec.NetSlirp, DNS: []string{up}},
		"resolve db.internal.test", "resolve missing.test")
	expect(t, got, "ok 192.0.2.7 192.0.2.7", "dnserror")
}

func TestDomainRuleAllowsOnlyAddressesItsAnswersReturned(t *testing.T) {
	port := echoServer(t)
	up := testdns.Server(t, map[string]string{"api.allowed.test": "10.0.2.2", "other.test": "10.0.2.2"})
	cfg := spec.Net{Mode: spec.NetSlirp, AllowHostLoopback: true, DNS: []string{up},
		Allow: []string{fmt.Sprintf("*.allowed.test:%d", port)}}
	got, _ := sandboxRun(t, cfg,
		"tcp "+gw(port),            // before any answer named it: refused
		"resolve other.test",       // a name no rule allows: refused by the DNS server
		"resolve api.allowed.test", // allowed name: answered, and its address learned
		"tcp "+gw(port),            // now allowed
		"tcp "+gw(port+1),          // the rule's port only
		"resolve allowed.test")     // *.allowed.test does not cover allowed.test
	expect(t, got, "refused", "dnserror", "ok 10.0.2.2", "ok echo hello", "refused", "dnserror")
}

func TestPortForwardReachesServerInside(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	hostPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg := spec.Net{Mode: spec.NetSlirp, Ports: []spec.PortForward{{Proto: "tcp", HostPort: uint16(hostPort), Port: 8080}}}
	out, _, wait := sandboxStart(t, cfg, "serve 8080")
	waitListening(out)
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", hostPort))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(c, "from-host")
	reply, _ := io.ReadAll(c)
	c.Close()
	wait()
	if string(reply) != "inside from-host\n" {
		t.Fatalf("reply through -p: %q", reply)
	}
}

func TestUDPPortForwardReachesServerInside(t *testing.T) {
	pc, _ := net.ListenPacket("udp", "127.0.0.1:0")
	hostPort := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	cfg := spec.Net{Mode: spec.NetSlirp, Ports: []spec.PortForward{{Proto: "udp", HostPort: uint16(hostPort), Port: 5353}}}
	out, _, wait := sandboxStart(t, cfg, "userve 5353")
	waitListening(out)
	c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", hostPort))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("from-host"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	wait()
	if err != nil || string(buf[:n]) != "inside from-host" {
		t.Fatalf("reply through -p %d:5353/udp: %q, %v", hostPort, buf[:n], err)
	}
}

func TestBusyHostPortIsAnErrorAtStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	_, err = New(spec.Net{Mode: spec.NetSlirp, Ports: []spec.PortForward{{Proto: "tcp", HostPort: uint16(port), Port: 80}}}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "busy") {
		t.Fatalf("New with a busy host port: %v", err)
	}
}

func TestRefusedPingIsAnsweredUnreachable(t *testing.T) {
	// The target is this host's own address, refused by a rule: even if
	// the refusal failed, the echo would stay on this machine.
	own := ownIPv4(t)
	got, _ := sandboxRun(t, spec.Net{Mode: spec.NetSlirp, Deny: []string{own.String()}}, "ping "+own.String(), "ping 10.0.2.2")
	expect(t, got, "unreachable", "ok type 0")
}

func TestPingFollowsTheHostsPingGroupRange(t *testing.T) {
	own := ownIPv4(t)
	b, err := os.ReadFile("/proc/sys/net/ipv4/ping_group_range")
	if err != nil {
		t.Skip(err)
	}
	var lo, hi int
	fmt.Sscan(string(b), &lo, &hi)
	want := "unreachable" // the host does not let us ping: a clean refusal
	if gid := os.Getgid(); gid >= lo && gid <= hi {
		want = "ok type 0" // it does: the echo reaches this host's own address
	}
	got, _ := sandboxRun(t, spec.Net{Mode: spec.NetSlirp}, "ping "+own.String())
	expect(t, got, want)
}

// ownIPv4 is one of this host's IPv4 addresses other than loopback.
func ownIPv4(t *testing.T) netip.Addr {
	t.Helper()
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() && !p.Addr().IsLoopback() {
			return p.Addr()
		}
	}
	t.Skip("this host has no IPv4 address but loopback")
	return netip.Addr{}
}

func TestIPv6ReachesHostLoopbackThroughTheGateway(t *testing.T) {
	port := echoServerOn(t, "::1")
	cfg := spec.Net{Mode: spec.NetSlirp, IPv6: true, AllowHostLoopback: true}
	got, _ := sandboxRun(t, cfg, fmt.Sprintf("tcp [%s]:%d", GatewayAddr6, port))
	expect(t, got, "ok echo hello")
}

func TestWithoutIPv6NothingIsCarriedOverIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("this host has no IPv6 loopback: %v", err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	// Even with an address, a route and a neighbour entry the sandbox made
	// itself, the stack does not speak IPv6.
	got, _ := sandboxRun(t, spec.Net{Mode: spec.NetSlirp, AllowHostLoopback: true},
		fmt.Sprintf("tcp6route [%s]:%d", GatewayAddr6, port))
	expect(t, got, "timeout")
	ln.(*net.TCPListener).SetDeadline(time.Now())
	if c, err := ln.Accept(); err == nil {
		c.Close()
		t.Fatal("the host's ::1 was reached over IPv6 without --ipv6")
	}
}

// addAddress6ForTest gives tap0 what --ipv6 would, from inside, as a
// sandbox holding CAP_NET_ADMIN could.
func addAddress6ForTest() error {
	nl, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer unix.Close(nl)
	ifi, err := net.InterfaceByName(tapName)
	if err != nil {
		return err
	}
	if err := addAddress(nl, uint32(ifi.Index), netip.PrefixFrom(SandboxAddr6, 64)); err != nil {
		return err
	}
	if err := addDefaultRoute(nl, uint32(ifi.Index), GatewayAddr6); err != nil {
		return err
	}
	// A permanent neighbour entry, so no neighbour discovery is needed to
	// send to the stack's link address.
	msg := []byte{unix.AF_INET6, 0, 0, 0}
	msg = binary.NativeEndian.AppendUint32(msg, uint32(ifi.Index))
	msg = binary.NativeEndian.AppendUint16(msg, unix.NUD_PERMANENT)
	msg = append(msg, 0, 0)
	msg = rtattr(msg, unix.NDA_DST, GatewayAddr6.AsSlice())
	msg = rtattr(msg, unix.NDA_LLADDR, []byte(gatewayMAC))
	return netlinkDo(nl, unix.RTM_NEWNEIGH, msg)
}

func TestHostsOwnAddressIsRefusedLikeItsLoopback(t *testing.T) {
	own := ownIPv4(t)
	// Refused inside the stack: no connection is ever made to it.
	got, logs := sandboxRun(t, spec.Net{Mode: spec.NetSlirp}, fmt.Sprintf("tcp %s:22", own), fmt.Sprintf("udp %s:53", own))
	expect(t, got, "refused", "refused")
	if !strings.Contains(logs, "host's own addresses") {
		t.Errorf("refusal not explained: %q", logs)
	}
}
