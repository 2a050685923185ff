package slirp

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

const (
	upstreamTimeout = 3 * time.Second
	dnsTCPIdle      = 30 * time.Second
	// maxDNSInFlight bounds the queries answered at once, so a flood from
	// the sandbox costs the supervisor a fixed amount of memory.
	maxDNSInFlight = 128
)

// resolver is the sandbox's DNS server: it answers from the host's
// resolvers, refuses names the policy closes, and tells the policy which
// addresses the answers for allowed names returned.
type resolver struct {
	upstreams []netip.AddrPort
	policy    *Policy
	log       *netLog
}

// upstreamServers reads the resolvers to forward to: the configured ones,
// else the host's resolv.conf nameservers.
func upstreamServers(configured []string, resolvConf string) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, s := range configured {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			a, aerr := netip.ParseAddr(strings.Trim(s, "[]"))
			if aerr != nil {
				return nil, fmt.Errorf("--dns %q: expected IP or IP:PORT", s)
			}
			ap = netip.AddrPortFrom(a, 53)
		}
		out = append(out, ap)
	}
	if len(configured) > 0 {
		return out, nil
	}
	f, err := os.Open(resolvConf)
	if err != nil {
		return nil, nil // no resolver: the sandbox's queries fail with SERVFAIL
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "nameserver" {
			if a, err := netip.ParseAddr(fields[1]); err == nil { // a zone stays: fe80::1%eth0
				out = append(out, netip.AddrPortFrom(a, 53))
			}
		}
	}
	return out, nil
}

// serveDNS listens on the DNS addresses inside the stack.
func (st *Stack) serveDNS(s *stack.Stack) error {
	addrs := []netip.Addr{DNSAddr}
	if st.cfg.IPv6 {
		addrs = append(addrs, DNSAddr6)
	}
	for _, a := range addrs {
		laddr, proto := fullAddr(netip.AddrPortFrom(a, 53))
		conn, err := gonet.DialUDP(s, &laddr, nil, proto)
		if err != nil {
			return fmt.Errorf("DNS server on %s: %w", a, err)
		}
		st.wg.Add(2)
		go func() {
			defer st.wg.Done()
			<-st.ctx.Done()
			conn.Close()
		}()
		go func() {
			defer st.wg.Done()
			st.dns.serveUDP(st.ctx, conn)
		}()
	}
	return nil
}

func (r *resolver) serveUDP(ctx context.Context, conn *gonet.UDPConn) {
	sem := make(chan struct{}, maxDNSInFlight)
	for {
		buf := make([]byte, 4096)
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			return
		}
		select {
		case sem <- struct{}{}:
		default:
			continue // too many at once: dropped, the client retries
		}
		go func() {
			defer func() { <-sem }()
			if resp := r.answer(ctx, buf[:n], false); resp != nil {
				conn.WriteTo(resp, from)
			}
		}()
	}
}

// serveTCP answers length-prefixed queries on one connection (RFC 7766).
func (r *resolver) serveTCP(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	for {
		conn.SetReadDeadline(time.Now().Add(dnsTCPIdle))
		q, err := readTCPMessage(conn)
		if err != nil {
			return
		}
		resp := r.answer(ctx, q, true)
		if resp == nil {
			return
		}
		if err := writeTCPMessage(conn, resp); err != nil {
			return
		}
	}
}

// answer turns one query into its response, or nil to drop a malformed one.
func (r *resolver) answer(ctx context.Context, query []byte, overTCP bool) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil || h.Response {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	name := strings.ToLower(q.Name.String())
	if ok, why := r.policy.CheckName(name); !ok {
		r.log.name(false, name, why)
		return reply(h, q, dnsmessage.RCodeRefused)
	}
	for _, up := range r.upstreams {
		resp, err := exchange(ctx, up, query, h.ID, overTCP)
		if err != nil {
			r.log.note("dns upstream %s: %v", up, err)
			continue
		}
		addrs := answerAddrs(resp)
		r.policy.Learn(name, addrs)
		r.log.name(true, name, fmt.Sprintf("%d addresses", len(addrs)))
		return resp
	}
	return reply(h, q, dnsmessage.RCodeServerFailure)
}

func reply(h dnsmessage.Header, q dnsmessage.Question, rcode dnsmessage.RCode) []byte {
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{
		ID: h.ID, Response: true, OpCode: h.OpCode, RCode: rcode,
		RecursionDesired: h.RecursionDesired, RecursionAvailable: true,
	})
	b.EnableCompression()
	if b.StartQuestions() != nil || b.Question(q) != nil {
		return nil
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

// answerAddrs lists the A and AAAA records of a response's answer section.
func answerAddrs(resp []byte) []netip.Addr {
	var p dnsmessage.Parser
	if _, err := p.Start(resp); err != nil {
		return nil
	}
	if p.SkipAllQuestions() != nil {
		return nil
	}
	var out []netip.Addr
	for {
		h, err := p.AnswerHeader()
		if err != nil {
			return out
		}
		switch h.Type {
		case dnsmessage.TypeA:
			rr, err := p.AResource()
			if err != nil {
				return out
			}
			out = append(out, netip.AddrFrom4(rr.A))
		case dnsmessage.TypeAAAA:
			rr, err := p.AAAAResource()
			if err != nil {
				return out
			}
			out = append(out, netip.AddrFrom16(rr.AAAA))
		default:
			if p.SkipAnswer() != nil {
				return out
			}
		}
	}
}

// exchange asks one upstream resolver, over the transport the sandbox used.
func exchange(ctx context.Context, up netip.AddrPort, query []byte, id uint16, overTCP bool) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, upstreamTimeout)
	defer cancel()
	var d net.Dialer
	network := "udp"
	if overTCP {
		network = "tcp"
	}
	conn, err := d.DialContext(ctx, network, up.String())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	if overTCP {
		if err := writeTCPMessage(conn, query); err != nil {
			return nil, err
		}
		return readTCPMessage(conn)
	}
	if _, err := conn.Write(query); err != nil {
		return nil, err
	}
	buf := make([]byte, 65535)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return nil, err
		}
		if n >= 12 && binary.BigEndian.Uint16(buf) == id {
			return buf[:n], nil
		}
	}
}

func readTCPMessage(r io.Reader) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint16(l[:])
	if n < 12 {
		return nil, errors.New("short DNS message")
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, err
	}
	return msg, nil
}

func writeTCPMessage(w io.Writer, msg []byte) error {
	out := make([]byte, 2+len(msg))
	binary.BigEndian.PutUint16(out, uint16(len(msg)))
	copy(out[2:], msg)
	_, err := w.Write(out)
	return err
}
