package slirp

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
)

// Rule is one egress rule: a connection matches it when its protocol, its
// destination address and its port all match.
type Rule struct {
	Text   string
	Proto  string       // "" (any), "tcp", "udp" or "icmp"
	Prefix netip.Prefix // the destination network, when the target is an address
	Domain string       // the destination name ("example.org", "*.example.org"), when the target is a name
	PortLo uint16       // 0: any port
	PortHi uint16
}

// ParseRule reads the text form of a rule:
//
//	[tcp:|udp:|icmp:]TARGET[:PORT[-PORT]]   TARGET: IP, CIDR, [IPv6], name, *.name or *
//	[tcp:|udp:]PORT[-PORT]                  any address
func ParseRule(text string) (Rule, error) {
	r := Rule{Text: text}
	rest := strings.TrimSpace(text)
	if p, after, ok := strings.Cut(rest, ":"); ok {
		switch strings.ToLower(p) {
		case "tcp", "udp", "icmp":
			r.Proto, rest = strings.ToLower(p), after
		}
	}
	bad := func(why string) (Rule, error) {
		return Rule{}, fmt.Errorf("egress rule %q: %s (expected [tcp:|udp:]TARGET[:PORT], e.g. *.example.org:443, 10.0.0.0/8, udp:53)", text, why)
	}
	if rest == "" {
		return bad("nothing to match")
	}
	if isPorts(rest) {
		if err := r.setPorts(rest); err != nil {
			return bad(err.Error())
		}
		if r.Proto == "icmp" {
			return bad("icmp has no ports")
		}
		return r, nil
	}
	host, ports := rest, ""
	switch {
	case strings.HasPrefix(rest, "["):
		end := strings.Index(rest, "]")
		if end < 0 {
			return bad("missing ]")
		}
		host, ports = rest[1:end], strings.TrimPrefix(rest[end+1:], ":")
		if rest[end+1:] != "" && !strings.HasPrefix(rest[end+1:], ":") {
			return bad("expected :PORT after ]")
		}
	case strings.Count(rest, ":") == 1:
		host, ports, _ = strings.Cut(rest, ":")
	}
	if ports != "" {
		if r.Proto == "icmp" {
			return bad("icmp has no ports")
		}
		if err := r.setPorts(ports); err != nil {
			return bad(err.Error())
		}
	}
	switch {
	case host == "*":
	case strings.Contains(host, "/"):
		p, err := netip.ParsePrefix(host)
		if err != nil {
			return bad(err.Error())
		}
		r.Prefix = p.Masked()
	default:
		if a, err := netip.ParseAddr(host); err == nil {
			a = a.Unmap()
			r.Prefix = netip.PrefixFrom(a, a.BitLen())
			break
		}
		name := strings.TrimSuffix(strings.ToLower(host), ".")
		if !validName(name) {
			return bad("not an address, a network or a domain name")
		}
		r.Domain = name
	}
	return r, nil
}

func isPorts(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

func (r *Rule) setPorts(s string) error {
	lo, hi, isRange := strings.Cut(s, "-")
	l, err := strconv.ParseUint(lo, 10, 16)
	if err != nil || l == 0 {
		return fmt.Errorf("bad port %q", lo)
	}
	h := l
	if isRange {
		if h, err = strconv.ParseUint(hi, 10, 16); err != nil || h < l {
			return fmt.Errorf("bad port range %q", s)
		}
	}
	r.PortLo, r.PortHi = uint16(l), uint16(h)
	return nil
}

// validName accepts a DNS name, optionally led by "*." for its subdomains.
func validName(name string) bool {
	name = strings.TrimPrefix(name, "*.")
	if name == "" || len(name) > 253 {
		return false
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}

// matchName reports whether the DNS name matches the rule's domain pattern;
// "*.example.org" matches names under example.org, not example.org itself.
func matchName(pattern, name string) bool {
	if sub, ok := strings.CutPrefix(pattern, "*."); ok {
		return strings.HasSuffix(name, "."+sub)
	}
	return name == pattern
}

// alwaysRefused are destinations no rule opens: they lead to the host
// itself (the sandbox's own loopback never reaches the stack) or nowhere.
var alwaysRefused = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("255.255.255.255/32"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("ff00::/8"),
}

// refusedByDefault are the link-local and cloud-metadata networks: closed
// unless an allow rule names them.
var refusedByDefault = []netip.Prefix{
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("fd00:ec2::254/128"),
}

// maxLearned bounds the addresses remembered from DNS answers, so a sandbox
// resolving names in a loop cannot grow the supervisor without end.
const maxLearned = 1 << 16

// Policy decides which destinations the sandbox may reach. Domain rules are
// enforced through the addresses the sandbox's DNS server saw in answers.
type Policy struct {
	allow, deny []Rule

	mu      sync.RWMutex
	learned map[netip.Addr][]string // address -> names whose answers returned it
}

// NewPolicy compiles the allow and deny rules.
func NewPolicy(allow, deny []string) (*Policy, error) {
	p := &Policy{learned: map[netip.Addr][]string{}}
	for _, t := range allow {
		r, err := ParseRule(t)
		if err != nil {
			return nil, err
		}
		p.allow = append(p.allow, r)
	}
	for _, t := range deny {
		r, err := ParseRule(t)
		if err != nil {
			return nil, err
		}
		p.deny = append(p.deny, r)
	}
	return p, nil
}

// Check decides a connection of proto ("tcp", "udp", "icmp") to dst and
// says why when it refuses.
func (p *Policy) Check(proto string, dst netip.AddrPort) (bool, string) {
	a := dst.Addr().Unmap()
	for _, n := range alwaysRefused {
		if n.Contains(a) {
			return false, "host loopback, unspecified or multicast address"
		}
	}
	p.mu.RLock()
	names := p.learned[a]
	p.mu.RUnlock()
	for i := range p.deny {
		if p.deny[i].matches(proto, a, dst.Port(), names) {
			return false, "deny rule " + p.deny[i].Text
		}
	}
	if len(p.allow) == 0 {
		for _, n := range refusedByDefault {
			if n.Contains(a) {
				return false, "link-local or metadata address (open it with --allow)"
			}
		}
		return true, ""
	}
	for i := range p.allow {
		if p.allow[i].matches(proto, a, dst.Port(), names) {
			return true, "allow rule " + p.allow[i].Text
		}
	}
	return false, "no allow rule matches"
}

// CheckName decides whether the sandbox's DNS server resolves name at all:
// a name under a deny rule is refused, and once allow rules exist only
// names an allow rule covers are forwarded, so a locked-down sandbox cannot
// use DNS queries as a channel out.
func (p *Policy) CheckName(name string) (bool, string) {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	for _, r := range p.deny {
		if r.Domain != "" && matchName(r.Domain, name) {
			return false, "deny rule " + r.Text
		}
	}
	if len(p.allow) == 0 {
		return true, ""
	}
	for _, r := range p.allow {
		if r.Domain != "" && matchName(r.Domain, name) {
			return true, "allow rule " + r.Text
		}
		if r.Domain == "" && !r.Prefix.IsValid() {
			return true, "allow rule " + r.Text // a rule for any address
		}
	}
	return false, "no allow rule names it"
}

// Learn records that a DNS answer for name returned addrs, which is what
// lets domain rules match connections to those addresses.
func (p *Policy) Learn(name string, addrs []netip.Addr) {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range addrs {
		a = a.Unmap()
		names := p.learned[a]
		if containsString(names, name) {
			continue
		}
		if names == nil && len(p.learned) >= maxLearned {
			continue
		}
		if len(names) < 16 {
			p.learned[a] = append(names, name)
		}
	}
}

// Names returns the names DNS answers gave for a, for the log.
func (p *Policy) Names(a netip.Addr) []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.learned[a.Unmap()]
}

func (r *Rule) matches(proto string, a netip.Addr, port uint16, names []string) bool {
	if r.Proto != "" && r.Proto != proto {
		return false
	}
	if r.PortLo != 0 && (port < r.PortLo || port > r.PortHi) {
		return false
	}
	switch {
	case r.Prefix.IsValid():
		return r.Prefix.Contains(a)
	case r.Domain != "":
		for _, n := range names {
			if matchName(r.Domain, n) {
				return true
			}
		}
		return false
	}
	return true
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
