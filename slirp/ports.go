package slirp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/sbx-sandbox/sbx/spec"
)

// portForward is one -p: its host listener, opened in New, served once the
// stack runs.
type portForward struct {
	spec.PortForward
	ln net.Listener   // tcp
	pc net.PacketConn // udp
}

func (f *portForward) Close() error {
	if f.ln != nil {
		return f.ln.Close()
	}
	return f.pc.Close()
}

// listenPorts opens every port forward's host side, so that a busy port is
// an error before the sandbox starts.
func (st *Stack) listenPorts() error {
	for _, p := range st.cfg.Ports {
		ip := p.HostIP
		if ip == "" {
			ip = "127.0.0.1"
		}
		addr := net.JoinHostPort(ip, strconv.Itoa(int(p.HostPort)))
		f := &portForward{PortForward: p}
		var err error
		if p.Proto == "udp" {
			f.pc, err = net.ListenPacket("udp", addr)
		} else {
			f.ln, err = net.Listen("tcp", addr)
		}
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return fmt.Errorf("-p %s/%s: host port %d is busy: choose another host port", addr, p.Proto, p.HostPort)
			}
			return fmt.Errorf("-p %s/%s: %w", addr, p.Proto, err)
		}
		st.fwds = append(st.fwds, f)
	}
	return nil
}

// serveForwards relays what arrives on the host listeners to the sandbox,
// from the gateway address, as slirp4netns does.
func (st *Stack) serveForwards(s *stack.Stack) {
	for _, c := range st.fwds {
		f := c.(*portForward)
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			if f.ln != nil {
				st.serveTCPForward(s, f)
			} else {
				st.serveUDPForward(s, f)
			}
		}()
	}
}

func (st *Stack) inside(port uint16) netip.AddrPort {
	return netip.AddrPortFrom(SandboxAddr, port)
}

func (st *Stack) serveTCPForward(s *stack.Stack, f *portForward) {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return
		}
		go func() {
			ctx, cancel := context.WithTimeout(st.ctx, dialTimeout)
			defer cancel()
			addr, proto := fullAddr(st.inside(f.Port))
			in, err := gonet.DialContextTCP(ctx, s, addr, proto)
			if err != nil {
				st.log.note("-p %d: %v", f.HostPort, err)
				c.Close()
				return
			}
			st.splice(c.(*net.TCPConn), in, func() {})
		}()
	}
}

// serveUDPForward keeps one flow into the sandbox per host client.
func (st *Stack) serveUDPForward(s *stack.Stack, f *portForward) {
	var mu sync.Mutex
	flows := map[string]*gonet.UDPConn{}
	buf := make([]byte, 65536)
	for {
		n, from, err := f.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		mu.Lock()
		in := flows[from.String()]
		if in == nil {
			raddr, proto := fullAddr(st.inside(f.Port))
			in, err = gonet.DialUDP(s, nil, &raddr, proto)
			if err != nil {
				mu.Unlock()
				continue
			}
			flows[from.String()] = in
			st.wg.Add(1)
			go func(from net.Addr, in *gonet.UDPConn) {
				defer st.wg.Done()
				stop := context.AfterFunc(st.ctx, func() { in.Close() })
				defer stop()
				rbuf := make([]byte, 65536)
				for {
					in.SetReadDeadline(time.Now().Add(udpIdle))
					n, err := in.Read(rbuf)
					if err != nil {
						break
					}
					f.pc.WriteTo(rbuf[:n], from)
				}
				mu.Lock()
				delete(flows, from.String())
				mu.Unlock()
				in.Close()
			}(from, in)
		}
		mu.Unlock()
		in.Write(buf[:n])
	}
}
