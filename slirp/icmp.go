package slirp

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

const (
	pingTimeout = 5 * time.Second
	// maxPings bounds the echo requests waiting for an answer at once.
	maxPings = 64
)

// echoTap sits between the TAP and the stack and takes the sandbox's echo
// requests to outside addresses: left to itself the promiscuous stack
// would answer every ping as if any host were up.
type echoTap struct {
	nested.Endpoint
	p *pinger
}

func newEchoTap(child stack.LinkEndpoint, p *pinger) *echoTap {
	e := &echoTap{p: p}
	e.Endpoint.Init(child, e)
	return e
}

func (e *echoTap) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	if e.p.intercept(proto, pkt) {
		return
	}
	e.Endpoint.DeliverNetworkPacket(proto, pkt)
}

// pinger sends the sandbox's echo requests through unprivileged ICMP
// sockets of the parent, which the kernel allows to the groups in
// net.ipv4.ping_group_range, and carries the replies back.
type pinger struct {
	st  *Stack
	s   *stack.Stack
	sem chan struct{}

	once sync.Once // the one note that the host forbids ping sockets
}

func newPinger(st *Stack, s *stack.Stack) *pinger {
	return &pinger{st: st, s: s, sem: make(chan struct{}, maxPings)}
}

// intercept reports whether pkt was an echo request it took over.
func (p *pinger) intercept(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) bool {
	switch proto {
	case ipv4.ProtocolNumber:
		h, ok := pkt.Data().PullUp(header.IPv4MinimumSize)
		if !ok || header.IPv4(h).Protocol() != uint8(header.ICMPv4ProtocolNumber) {
			return false
		}
	case ipv6.ProtocolNumber:
		h, ok := pkt.Data().PullUp(header.IPv6MinimumSize)
		if !ok || header.IPv6(h).NextHeader() != uint8(header.ICMPv6ProtocolNumber) {
			return false
		}
	default:
		return false
	}
	b := pkt.Data().AsRange().ToSlice()
	var src, dst netip.Addr
	var icmp []byte
	if proto == ipv4.ProtocolNumber {
		ip := header.IPv4(b)
		if !ip.IsValid(len(b)) || ip.More() || ip.FragmentOffset() != 0 {
			return false
		}
		src, dst = addrOf(ip.SourceAddress()), addrOf(ip.DestinationAddress())
		icmp = ip.Payload()
		if len(icmp) < header.ICMPv4MinimumSize || header.ICMPv4(icmp).Type() != header.ICMPv4Echo {
			return false
		}
	} else {
		ip := header.IPv6(b)
		if !ip.IsValid(len(b)) {
			return false
		}
		src, dst = addrOf(ip.SourceAddress()), addrOf(ip.DestinationAddress())
		icmp = ip.Payload()
		if len(icmp) < header.ICMPv6EchoMinimumSize || header.ICMPv6(icmp).Type() != header.ICMPv6EchoRequest {
			return false
		}
	}
	if dst == GatewayAddr || dst == DNSAddr || dst == GatewayAddr6 || dst == DNSAddr6 {
		return false // the stack's own addresses answer for themselves
	}
	var mac tcpip.LinkAddress
	if lh := pkt.LinkHeader().Slice(); len(lh) >= header.EthernetMinimumSize {
		mac = header.Ethernet(lh).SourceAddress()
	}
	select {
	case p.sem <- struct{}{}:
	default:
		return true // too many waiting: dropped, as a busy router would
	}
	req := append([]byte(nil), icmp...)
	go func() {
		defer func() { <-p.sem }()
		p.echo(proto, mac, src, dst, req, b)
	}()
	return true
}

func (p *pinger) echo(proto tcpip.NetworkProtocolNumber, mac tcpip.LinkAddress, src, dst netip.Addr, req, orig []byte) {
	ok, why := p.st.decide("icmp", netip.AddrPortFrom(dst, 0))
	p.st.log.conn(ok, "icmp", netip.AddrPortFrom(dst, 0), why, p.st.policy.Names(dst))
	if !ok {
		p.unreachable(proto, mac, src, orig)
		return
	}
	reply, err := pingHost(proto, dst, req)
	if err != nil {
		if err == unix.EACCES || err == unix.EPERM {
			p.once.Do(func() {
				p.st.log.note("ping: the host does not let this user open ICMP sockets (sysctl net.ipv4.ping_group_range)")
			})
			p.unreachable(proto, mac, src, orig)
		}
		return // no answer in time: the sandbox's ping sees a loss
	}
	// The kernel gave the socket its own identifier; restore the sandbox's.
	copy(reply[4:6], req[4:6])
	var pkt []byte
	if proto == ipv4.ProtocolNumber {
		header.ICMPv4(reply).SetChecksum(0)
		header.ICMPv4(reply).SetChecksum(header.ICMPv4Checksum(reply, 0))
		pkt = ipv4Packet(dst, src, header.ICMPv4ProtocolNumber, reply)
	} else {
		pkt = ipv6Packet(dst, src, reply)
	}
	p.write(proto, mac, pkt)
}

// unreachable answers a refused echo with "communication administratively
// prohibited" from the gateway, so ping stops at once and says why.
func (p *pinger) unreachable(proto tcpip.NetworkProtocolNumber, mac tcpip.LinkAddress, src netip.Addr, orig []byte) {
	var pkt []byte
	if proto == ipv4.ProtocolNumber {
		n := min(len(orig), header.IPv4MinimumSize+8)
		msg := make([]byte, header.ICMPv4MinimumSize+n)
		h := header.ICMPv4(msg)
		h.SetType(header.ICMPv4DstUnreachable)
		h.SetCode(header.ICMPv4HostProhibited)
		copy(msg[header.ICMPv4MinimumSize:], orig[:n])
		h.SetChecksum(header.ICMPv4Checksum(h, 0))
		pkt = ipv4Packet(GatewayAddr, src, header.ICMPv4ProtocolNumber, msg)
	} else {
		n := min(len(orig), 1232)
		msg := make([]byte, header.ICMPv6DstUnreachableMinimumSize+n)
		h := header.ICMPv6(msg)
		h.SetType(header.ICMPv6DstUnreachable)
		h.SetCode(header.ICMPv6Prohibited)
		copy(msg[header.ICMPv6DstUnreachableMinimumSize:], orig[:n])
		pkt = ipv6Packet(GatewayAddr6, src, msg)
	}
	p.write(proto, mac, pkt)
}

func (p *pinger) write(proto tcpip.NetworkProtocolNumber, mac tcpip.LinkAddress, pkt []byte) {
	p.s.WritePacketToRemote(nicID, mac, proto, buffer.MakeWithData(pkt))
}

// pingHost sends one echo request from an unprivileged ICMP socket and
// waits for its reply.
func pingHost(proto tcpip.NetworkProtocolNumber, dst netip.Addr, req []byte) ([]byte, error) {
	family, ipproto := unix.AF_INET, unix.IPPROTO_ICMP
	var sa unix.Sockaddr = &unix.SockaddrInet4{Addr: dst.As4()}
	if proto == ipv6.ProtocolNumber {
		family, ipproto = unix.AF_INET6, unix.IPPROTO_ICMPV6
		sa = &unix.SockaddrInet6{Addr: dst.As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, ipproto)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if err := unix.Sendto(fd, req, 0, sa); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(pingTimeout)
	buf := make([]byte, 65536)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, unix.ETIMEDOUT
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if n, err := unix.Poll(fds, int(left.Milliseconds())+1); err != nil && err != unix.EINTR {
			return nil, err
		} else if n == 0 {
			continue
		}
		n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
		if err != nil {
			if err == unix.EAGAIN || err == unix.EINTR {
				continue
			}
			return nil, err
		}
		// A ping socket only ever receives replies to its own identifier.
		if n >= 8 && len(req) >= 8 && string(buf[6:8]) == string(req[6:8]) {
			return append([]byte(nil), buf[:n]...), nil
		}
	}
}

func ipv4Packet(src, dst netip.Addr, proto tcpip.TransportProtocolNumber, payload []byte) []byte {
	b := make([]byte, header.IPv4MinimumSize+len(payload))
	ip := header.IPv4(b)
	ip.Encode(&header.IPv4Fields{
		TotalLength: uint16(len(b)),
		TTL:         64,
		Protocol:    uint8(proto),
		SrcAddr:     tcpip.AddrFromSlice(src.AsSlice()),
		DstAddr:     tcpip.AddrFromSlice(dst.AsSlice()),
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	copy(b[header.IPv4MinimumSize:], payload)
	return b
}

func ipv6Packet(src, dst netip.Addr, icmp []byte) []byte {
	b := make([]byte, header.IPv6MinimumSize+len(icmp))
	s, d := tcpip.AddrFromSlice(src.AsSlice()), tcpip.AddrFromSlice(dst.AsSlice())
	header.IPv6(b).Encode(&header.IPv6Fields{
		PayloadLength:     uint16(len(icmp)),
		TransportProtocol: header.ICMPv6ProtocolNumber,
		HopLimit:          64,
		SrcAddr:           s,
		DstAddr:           d,
	})
	h := header.ICMPv6(b[header.IPv6MinimumSize:])
	copy(h, icmp)
	h.SetChecksum(0)
	h.SetChecksum(header.ICMPv6Checksum(header.ICMPv6ChecksumParams{Header: h, Src: s, Dst: d}))
	return b
}
