// Package slirp is the sandbox's user-mode network: gVisor's TCP/IP stack
// runs in the unprivileged sbx parent on the TAP device the sandbox's init
// created, and turns the sandbox's connections into ordinary sockets of the
// parent, under an egress policy. It also serves DNS and port forwards.
//
// The split follows rootlesskit's: the child side (creating the TAP in the
// sandbox's network namespace) lives in package sandbox; this is the
// parent side.
package slirp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/fdbased"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"github.com/sbx-sandbox/sbx/spec"
)

const nicID tcpip.NICID = 1

// gatewayMAC is the stack's own link address on the TAP; locally
// administered so it never collides with a real card.
var gatewayMAC = tcpip.LinkAddress("\x52\x55\x0a\x00\x02\x02")

// Stack is one sandbox's network, from New until Close.
type Stack struct {
	cfg    spec.Net
	policy *Policy
	log    *netLog
	logf   *os.File // the --net-log file, closed with the stack
	dns    *resolver

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	fwds []io.Closer // the host listeners of the port forwards

	tcpSlots, udpSlots chan struct{} // one token per open connection or flow
	bigSlots           chan struct{} // one token per big copy buffer lent out
	bigPool            sync.Pool
	hostAddrs          map[netip.Addr]bool

	mu  sync.Mutex
	s   *stack.Stack
	tap *os.File
}

// New checks the configuration and opens what must be opened before the
// sandbox starts, so that a mistake or a busy port stops the run before
// any command runs: the port forwards' host listeners and the log file.
// logw receives one line per refused destination.
func New(cfg spec.Net, logw io.Writer) (*Stack, error) {
	policy, err := NewPolicy(cfg.Allow, cfg.Deny)
	if err != nil {
		return nil, err
	}
	upstreams, err := upstreamServers(cfg.DNS, "/etc/resolv.conf")
	if err != nil {
		return nil, err
	}
	st := &Stack{cfg: cfg, policy: policy, hostAddrs: ownAddresses(),
		tcpSlots: make(chan struct{}, maxTCP), udpSlots: make(chan struct{}, maxUDP), bigSlots: make(chan struct{}, maxBigBufs)}
	st.bigPool.New = func() any { b := make([]byte, bigBuf); return &b }
	st.ctx, st.cancel = context.WithCancel(context.Background())
	var all io.Writer
	if cfg.Log != "" {
		st.logf, err = os.OpenFile(cfg.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("--net-log: %w", err)
		}
		all = st.logf
	}
	st.log = newNetLog(logw, all)
	st.dns = &resolver{upstreams: upstreams, policy: policy, log: st.log}
	if err := st.listenPorts(); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// Start is New followed by Attach, for callers that have the TAP already.
func Start(tap *os.File, cfg spec.Net, logw io.Writer) (*Stack, error) {
	st, err := New(cfg, logw)
	if err != nil {
		return nil, err
	}
	if err := st.Attach(tap); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// Attach runs the stack on the sandbox's TAP device. The Stack owns tap
// from here on and closes it in Close.
func (st *Stack) Attach(tap *os.File) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.s != nil {
		return errors.New("network stack already attached")
	}
	st.tap = tap
	// Without --ipv6 the stack does not speak it at all, so nothing the
	// sandbox sends over IPv6 (link-local included) goes anywhere.
	opts := stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4},
	}
	if st.cfg.IPv6 {
		opts.NetworkProtocols = append(opts.NetworkProtocols, ipv6.NewProtocol)
		opts.TransportProtocols = append(opts.TransportProtocols, icmp.NewProtocol6)
	}
	s := stack.New(opts)
	st.s = s
	if err := tuneTCP(s); err != nil {
		return err
	}
	ep, err := fdbased.New(&fdbased.Options{
		FDs:                []int{int(tap.Fd())},
		MTU:                MTU,
		EthernetHeader:     true,
		Address:            gatewayMAC,
		PacketDispatchMode: fdbased.Readv,
		// The kernel checksums what the sandbox sends through the TAP.
		RXChecksumOffload: true,
	})
	if err != nil {
		return fmt.Errorf("network stack on the TAP device: %w", err)
	}
	if terr := s.CreateNIC(nicID, newEchoTap(ep, newPinger(st, s))); terr != nil {
		return fmt.Errorf("network stack NIC: %s", terr)
	}
	addrs := []netip.Addr{GatewayAddr, DNSAddr}
	if st.cfg.IPv6 {
		addrs = append(addrs, GatewayAddr6, DNSAddr6)
	}
	for _, a := range addrs {
		proto, bits := ipv4.ProtocolNumber, Prefix4.Bits()
		if a.Is6() {
			proto, bits = ipv6.ProtocolNumber, Prefix6.Bits()
		}
		pa := tcpip.ProtocolAddress{Protocol: proto, AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFromSlice(a.AsSlice()), PrefixLen: bits}}
		if terr := s.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); terr != nil {
			return fmt.Errorf("network stack address %s: %s", a, terr)
		}
	}
	// Promiscuous and spoofing: the stack takes every destination the
	// sandbox sends to as its own, and answers from it.
	s.SetPromiscuousMode(nicID, true)
	s.SetSpoofing(nicID, true)
	routes := []tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: nicID}}
	if st.cfg.IPv6 {
		routes = append(routes, tcpip.Route{Destination: header.IPv6EmptySubnet, NIC: nicID})
	}
	s.SetRouteTable(routes)

	tcpFwd := tcp.NewForwarder(s, 0, 1024, st.forwardTCP)
	s.SetTransportProtocolHandler(tcp.ProtocolNumber, func(id stack.TransportEndpointID, pkt *stack.PacketBuffer) bool {
		if !st.admit("tcp", id) {
			return false // answered with a reset
		}
		return tcpFwd.HandlePacket(id, pkt)
	})
	udpFwd := udp.NewForwarder(s, st.forwardUDP)
	s.SetTransportProtocolHandler(udp.ProtocolNumber, func(id stack.TransportEndpointID, pkt *stack.PacketBuffer) bool {
		if !st.admit("udp", id) {
			return false // answered with ICMP port unreachable
		}
		return udpFwd.HandlePacket(id, pkt)
	})
	if err := st.serveDNS(s); err != nil {
		return err
	}
	st.serveForwards(s)
	return nil
}

// admit decides a new connection, or the first datagram of a UDP flow,
// before the stack accepts it; refusing it here makes the sandbox's
// connect fail at once.
func (st *Stack) admit(proto string, id stack.TransportEndpointID) bool {
	dst := netip.AddrPortFrom(addrOf(id.LocalAddress), id.LocalPort)
	ok, why := st.decide(proto, dst)
	st.log.conn(ok, proto, dst, why, st.policy.Names(dst.Addr()))
	return ok
}

// decide applies the stack's own addresses and then the policy.
func (st *Stack) decide(proto string, dst netip.AddrPort) (bool, string) {
	a := dst.Addr().Unmap()
	switch {
	case a == DNSAddr || a == DNSAddr6:
		if dst.Port() == 53 && proto != "icmp" {
			return true, "the sandbox's DNS server"
		}
		if proto == "icmp" {
			return true, ""
		}
		return false, "only port 53 is served on the DNS address"
	case a == GatewayAddr || a == GatewayAddr6:
		if proto == "icmp" {
			return true, ""
		}
		if !st.cfg.AllowHostLoopback {
			return false, "the host's loopback (open it with --allow-host-loopback)"
		}
		// Opened, the host's loopback is one more destination under the
		// rules: with an allow list, a rule must name the gateway too.
		return st.policy.Check(proto, dst)
	case Prefix4.Contains(a) || (st.cfg.IPv6 && Prefix6.Contains(a)):
		return false, "nothing else lives on the sandbox's network"
	case st.hostAddrs[a] && !st.cfg.AllowHostLoopback && proto != "icmp":
		// The host's own addresses lead to its services bound to all
		// addresses, from inside the host's firewall: the host's
		// loopback in all but name.
		return false, "one of the host's own addresses (open it with --allow-host-loopback)"
	}
	return st.policy.Check(proto, dst)
}

// ownAddresses lists the host's addresses when the stack starts.
func ownAddresses() map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out[p.Addr().Unmap()] = true
		}
	}
	return out
}

// hostTarget is where on the host a connection to dst really goes.
func (st *Stack) hostTarget(dst netip.AddrPort) netip.AddrPort {
	switch dst.Addr().Unmap() {
	case GatewayAddr:
		return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), dst.Port())
	case GatewayAddr6:
		return netip.AddrPortFrom(netip.IPv6Loopback(), dst.Port())
	}
	return netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
}

// Close stops the stack: port forwards stop listening, connections are
// cut, and the TAP is closed. It is safe to call more than once.
func (st *Stack) Close() error {
	st.cancel()
	for _, c := range st.fwds {
		c.Close()
	}
	st.mu.Lock()
	s, tap := st.s, st.tap
	st.s, st.tap = nil, nil
	st.mu.Unlock()
	if s != nil {
		s.RemoveNIC(nicID) // stops the TAP reader and waits for it
		s.Close()
		s.Wait()
	}
	if tap != nil {
		tap.Close()
	}
	st.wg.Wait()
	if st.logf != nil {
		st.logf.Close()
		st.logf = nil
	}
	return nil
}

// tuneTCP sets what throughput over a 64 KiB-MTU link needs: SACK, and
// buffers that may grow to a few MiB. They stay modest because a sandbox
// that stops reading (or writes to a peer that stops) fills them in the
// supervisor: maxTCP connections times both buffers is the worst case.
func tuneTCP(s *stack.Stack) error {
	sack := tcpip.TCPSACKEnabled(true)
	if terr := s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack); terr != nil {
		return fmt.Errorf("tcp sack: %s", terr)
	}
	rcv := tcpip.TCPReceiveBufferSizeRangeOption{Min: 4096, Default: 1 << 20, Max: 4 << 20}
	if terr := s.SetTransportProtocolOption(tcp.ProtocolNumber, &rcv); terr != nil {
		return fmt.Errorf("tcp receive buffer: %s", terr)
	}
	snd := tcpip.TCPSendBufferSizeRangeOption{Min: 4096, Default: 1 << 20, Max: 4 << 20}
	if terr := s.SetTransportProtocolOption(tcp.ProtocolNumber, &snd); terr != nil {
		return fmt.Errorf("tcp send buffer: %s", terr)
	}
	mod := tcpip.TCPModerateReceiveBufferOption(true)
	if terr := s.SetTransportProtocolOption(tcp.ProtocolNumber, &mod); terr != nil {
		return fmt.Errorf("tcp receive buffer moderation: %s", terr)
	}
	return nil
}

func addrOf(a tcpip.Address) netip.Addr {
	ip, _ := netip.AddrFromSlice(a.AsSlice())
	return ip
}

func fullAddr(ap netip.AddrPort) (tcpip.FullAddress, tcpip.NetworkProtocolNumber) {
	proto := ipv4.ProtocolNumber
	if ap.Addr().Is6() && !ap.Addr().Is4In6() {
		proto = ipv6.ProtocolNumber
	}
	return tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFromSlice(ap.Addr().Unmap().AsSlice()), Port: ap.Port()}, proto
}
