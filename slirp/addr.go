package slirp

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/sbx-sandbox/sbx/spec"
)

// The sandbox's network, as slirp4netns and podman lay it out, so that
// programs and people used to them find the same addresses.
var (
	SandboxAddr  = netip.MustParseAddr("10.0.2.100")
	GatewayAddr  = netip.MustParseAddr("10.0.2.2")
	DNSAddr      = netip.MustParseAddr("10.0.2.3")
	Prefix4      = netip.MustParsePrefix("10.0.2.0/24")
	SandboxAddr6 = netip.MustParseAddr("fd00::100")
	GatewayAddr6 = netip.MustParseAddr("fd00::2")
	DNSAddr6     = netip.MustParseAddr("fd00::3")
	Prefix6      = netip.MustParsePrefix("fd00::/64")
)

// MTU is the sandbox interface's MTU: large frames mean fewer trips
// through the stack per byte.
const MTU = 65520

// ResolvConf is the /etc/resolv.conf the sandbox gets: its only resolver
// is the stack's DNS server.
func ResolvConf(n spec.Net) []byte {
	s := "nameserver " + DNSAddr.String() + "\n"
	if n.IPv6 {
		s += "nameserver " + DNSAddr6.String() + "\n"
	}
	return []byte(s)
}

// ParsePort reads a -p value: [HOSTIP:]HOSTPORT:PORT[/tcp|/udp], HOSTIP
// in brackets when it is IPv6.
func ParsePort(text string) (spec.PortForward, error) {
	bad := func(why string) (spec.PortForward, error) {
		return spec.PortForward{}, fmt.Errorf("-p %q: %s (expected [HOSTIP:]HOSTPORT:PORT[/tcp|/udp])", text, why)
	}
	f := spec.PortForward{Proto: "tcp"}
	rest := text
	if i := strings.LastIndex(rest, "/"); i >= 0 {
		f.Proto = strings.ToLower(rest[i+1:])
		rest = rest[:i]
		if f.Proto != "tcp" && f.Proto != "udp" {
			return bad("protocol must be tcp or udp")
		}
	}
	i := strings.LastIndex(rest, ":")
	if i < 0 {
		return bad("missing HOSTPORT:")
	}
	port, err := parsePortNumber(rest[i+1:])
	if err != nil {
		return bad(err.Error())
	}
	f.Port = port
	rest = rest[:i]
	if j := strings.LastIndex(rest, ":"); j >= 0 {
		ip := strings.TrimSuffix(strings.TrimPrefix(rest[:j], "["), "]")
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return bad("bad host address " + ip)
		}
		f.HostIP = a.String()
		rest = rest[j+1:]
	}
	if f.HostPort, err = parsePortNumber(rest); err != nil {
		return bad(err.Error())
	}
	return f, nil
}

func parsePortNumber(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return uint16(n), nil
}
