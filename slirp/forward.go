package slirp

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

const (
	dialTimeout = 10 * time.Second
	// udpIdle ends a UDP flow nobody used for this long.
	udpIdle = 90 * time.Second
	// Each direction of a connection copies through a small buffer, and
	// through a big one while it streams: fewer, larger writes into the
	// stack cost markedly less CPU per byte. Big buffers are few, so a
	// sandbox holding many connections open cannot grow the supervisor.
	smallBuf   = 64 << 10
	bigBuf     = 1 << 20
	maxBigBufs = 16
	// maxTCP and maxUDP bound the sandbox's connections and flows open at
	// once, so it cannot spend all of the supervisor's file descriptors.
	maxTCP = 2048
	maxUDP = 1024
)

// forwardTCP answers an admitted SYN from the sandbox: the host connection
// is made first, so the sandbox sees a refusal or an unreachable host as
// the host's own socket did.
func (st *Stack) forwardTCP(r *tcp.ForwarderRequest) {
	id := r.ID()
	dst := netip.AddrPortFrom(addrOf(id.LocalAddress), id.LocalPort)
	select {
	case st.tcpSlots <- struct{}{}:
	default:
		st.log.note("tcp %s: more than %d connections open, reset", dst, maxTCP)
		r.Complete(true)
		return
	}
	if a := dst.Addr(); (a == DNSAddr || a == DNSAddr6) && dst.Port() == 53 {
		var wq waiter.Queue
		ep, terr := r.CreateEndpoint(&wq)
		if terr != nil {
			<-st.tcpSlots
			r.Complete(true)
			return
		}
		r.Complete(false)
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			defer func() { <-st.tcpSlots }()
			st.dns.serveTCP(st.ctx, gonet.NewTCPConn(&wq, ep))
		}()
		return
	}
	d := net.Dialer{Timeout: dialTimeout}
	host, err := d.DialContext(st.ctx, "tcp", st.hostTarget(dst).String())
	if err != nil {
		<-st.tcpSlots
		st.log.note("tcp %s: %v", dst, err)
		r.Complete(true)
		return
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		<-st.tcpSlots
		r.Complete(true)
		host.Close()
		return
	}
	r.Complete(false)
	ep.SocketOptions().SetKeepAlive(true)
	st.splice(gonet.NewTCPConn(&wq, ep), host.(*net.TCPConn), func() { <-st.tcpSlots })
}

// halfCloser is a stream whose sending side can end alone, so a peer's
// EOF travels through while the other direction goes on.
type halfCloser interface {
	net.Conn
	CloseWrite() error
}

// splice copies both ways until both directions end, or the stack closes,
// then calls done.
func (st *Stack) splice(a, b halfCloser, done func()) {
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		defer done()
		stop := context.AfterFunc(st.ctx, func() {
			a.Close()
			b.Close()
		})
		defer stop()
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); st.copyHalf(a, b) }()
		go func() { defer wg.Done(); st.copyHalf(b, a) }()
		wg.Wait()
		a.Close()
		b.Close()
	}()
}

func (st *Stack) copyHalf(dst, src halfCloser) {
	// Plain Read/Write loops: io.Copy would pick the host socket's
	// ReadFrom, whose fallback copies in 32 KiB pieces.
	small := make([]byte, smallBuf)
	buf := small
	var big *[]byte
	defer func() {
		if big != nil {
			st.putBig(big)
		}
	}()
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close()
				return
			}
		}
		if err != nil {
			if err == io.EOF {
				dst.CloseWrite()
			} else {
				dst.Close()
			}
			return
		}
		switch {
		case big == nil && n == len(buf):
			if big = st.getBig(); big != nil {
				buf = *big
			}
		case big != nil && n < len(buf)/4:
			// The stream slowed: the big buffer goes back for others.
			st.putBig(big)
			big, buf = nil, small
		}
	}
}

// getBig lends a big copy buffer if one of the few is free, else nil.
func (st *Stack) getBig() *[]byte {
	select {
	case st.bigSlots <- struct{}{}:
		return st.bigPool.Get().(*[]byte)
	default:
		return nil
	}
}

func (st *Stack) putBig(b *[]byte) {
	st.bigPool.Put(b)
	<-st.bigSlots
}

// forwardUDP starts a flow for an admitted first datagram: one connected
// host socket per sandbox address and port pair, dropped when idle.
func (st *Stack) forwardUDP(r *udp.ForwarderRequest) {
	id := r.ID()
	dst := netip.AddrPortFrom(addrOf(id.LocalAddress), id.LocalPort)
	select {
	case st.udpSlots <- struct{}{}:
	default:
		st.log.note("udp %s: more than %d flows open, dropped", dst, maxUDP)
		return
	}
	host, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(st.hostTarget(dst)))
	if err != nil {
		<-st.udpSlots
		st.log.note("udp %s: %v", dst, err)
		return
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		<-st.udpSlots
		host.Close()
		return
	}
	st.relayUDP(gonet.NewUDPConn(&wq, ep), host, func() { <-st.udpSlots })
}

// relayUDP moves datagrams between two connected sockets until neither
// side sent anything for udpIdle, then calls done.
func (st *Stack) relayUDP(a, b net.Conn, done func()) {
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		defer done()
		var last atomic.Int64
		last.Store(time.Now().UnixNano())
		stop := context.AfterFunc(st.ctx, func() {
			a.Close()
			b.Close()
		})
		defer stop()
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); copyDatagrams(a, b, &last) }()
		go func() { defer wg.Done(); copyDatagrams(b, a, &last) }()
		wg.Wait()
	}()
}

// copyDatagrams relays one way; last is the flow's latest activity in
// either direction, so a one-way stream keeps its flow alive.
func copyDatagrams(dst, src net.Conn, last *atomic.Int64) {
	buf := make([]byte, 65536)
	for {
		src.SetReadDeadline(time.Unix(0, last.Load()).Add(udpIdle))
		n, err := src.Read(buf)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() && time.Since(time.Unix(0, last.Load())) < udpIdle {
				continue
			}
			if errors.Is(err, syscall.ECONNREFUSED) {
				continue // the host's ICMP answer to an earlier datagram
			}
			src.Close()
			dst.Close()
			return
		}
		last.Store(time.Now().UnixNano())
		dst.Write(buf[:n]) // a datagram lost here is lost as on any network
	}
}
