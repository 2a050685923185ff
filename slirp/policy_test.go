package slirp

import (
	"net/netip"
	"os"
	"slices"
	"testing"

	"github.com/sbx-sandbox/sbx/spec"
)

func TestParseRuleReadsEveryDocumentedForm(t *testing.T) {
	for text, want := range map[string]Rule{
		"*.example.org:443": {Domain: "*.example.org", PortLo: 443, PortHi: 443},
		"10.0.0.0/8":        {Prefix: netip.MustParsePrefix("10.0.0.0/8")},
		"udp:53":            {Proto: "udp", PortLo: 53, PortHi: 53},
		"tcp:1.2.3.4:80-90": {Proto: "tcp", Prefix: netip.MustParsePrefix("1.2.3.4/32"), PortLo: 80, PortHi: 90},
		"[2001:db8::1]:22":  {Prefix: netip.MustParsePrefix("2001:db8::1/128"), PortLo: 22, PortHi: 22},
		"2001:db8::/32":     {Prefix: netip.MustParsePrefix("2001:db8::/32")},
		"icmp:192.0.2.0/24": {Proto: "icmp", Prefix: netip.MustParsePrefix("192.0.2.0/24")},
		"Example.ORG.":      {Domain: "example.org"},
		"*:8080":            {PortLo: 8080, PortHi: 8080},
		"10.1.2.3/8":        {Prefix: netip.MustParsePrefix("10.0.0.0/8")},
		"tcp:registry.test": {Proto: "tcp", Domain: "registry.test"},
	} {
		got, err := ParseRule(text)
		if err != nil {
			t.Errorf("ParseRule(%q): %v", text, err)
			continue
		}
		want.Text = text
		if got != want {
			t.Errorf("ParseRule(%q) = %+v, want %+v", text, got, want)
		}
	}
}

func TestParseRuleRejectsWhatItCannotMatch(t *testing.T) {
	for _, text := range []string{"", "tcp:", "example.org:0", "example.org:70000", "a..b", "*.", "ex ample.org", "icmp:1.2.3.4:80", "10.0.0.0/33", "90-80", "[::1"} {
		if _, err := ParseRule(text); err == nil {
			t.Errorf("ParseRule(%q) accepted", text)
		}
	}
}

func TestParsePortReadsHostAddressPortAndProtocol(t *testing.T) {
	for text, want := range map[string]spec.PortForward{
		"8080:80":             {Proto: "tcp", HostPort: 8080, Port: 80},
		"0.0.0.0:8080:80/udp": {Proto: "udp", HostIP: "0.0.0.0", HostPort: 8080, Port: 80},
		"[::1]:53:5353/udp":   {Proto: "udp", HostIP: "::1", HostPort: 53, Port: 5353},
	} {
		got, err := ParsePort(text)
		if err != nil || got != want {
			t.Errorf("ParsePort(%q) = %+v, %v; want %+v", text, got, err, want)
		}
	}
	for _, text := range []string{"80", "a:80", "80:80/sctp", "1.2.3:80:80", "0:80"} {
		if _, err := ParsePort(text); err == nil {
			t.Errorf("ParsePort(%q) accepted", text)
		}
	}
}

func check(t *testing.T, p *Policy, proto, dst string) bool {
	t.Helper()
	ok, _ := p.Check(proto, netip.MustParseAddrPort(dst))
	return ok
}

func TestNoRuleAllowsAllButLoopbackAndMetadata(t *testing.T) {
	p, _ := NewPolicy(nil, nil)
	for dst, want := range map[string]bool{
		"93.184.216.34:443":    true,
		"10.1.2.3:22":          true,
		"127.0.0.1:22":         false,
		"0.0.0.0:22":           false,
		"169.254.169.254:80":   false,
		"[fe80::1]:80":         false,
		"[::1]:80":             false,
		"[::ffff:127.0.0.1]:1": false,
		"224.0.0.1:5353":       false,
	} {
		if got := check(t, p, "tcp", dst); got != want {
			t.Errorf("tcp %s: allowed=%v, want %v", dst, got, want)
		}
	}
}

func TestAllowRuleMakesEverythingElseRefused(t *testing.T) {
	p, _ := NewPolicy([]string{"10.0.0.0/8", "udp:53", "169.254.169.254:80"}, nil)
	for dst, want := range map[string]bool{
		"10.9.9.9:22":        true,
		"192.0.2.1:22":       false,
		"169.254.169.254:80": true, // named explicitly
		"127.0.0.1:22":       false,
	} {
		if got := check(t, p, "tcp", dst); got != want {
			t.Errorf("tcp %s: allowed=%v, want %v", dst, got, want)
		}
	}
	if !check(t, p, "udp", "192.0.2.1:53") || check(t, p, "tcp", "192.0.2.1:53") {
		t.Error("udp:53 must allow UDP to any address on port 53, and only UDP")
	}
}

func TestDenyRuleWinsEvenOverAMatchingAllowRule(t *testing.T) {
	p, _ := NewPolicy([]string{"10.0.0.0/8"}, []string{"10.1.0.0/16:22"})
	if check(t, p, "tcp", "10.1.2.3:22") || !check(t, p, "tcp", "10.1.2.3:80") {
		t.Error("deny 10.1.0.0/16:22 must refuse port 22 there and leave port 80 to the allow rule")
	}
}

func TestDomainRuleMatchesOnlyAddressesLearnedForIt(t *testing.T) {
	p, _ := NewPolicy([]string{"*.example.org:443"}, []string{"bad.example.org"})
	if check(t, p, "tcp", "192.0.2.10:443") {
		t.Fatal("an address no DNS answer returned must not match a domain rule")
	}
	p.Learn("www.example.org.", []netip.Addr{netip.MustParseAddr("192.0.2.10")})
	p.Learn("bad.example.org", []netip.Addr{netip.MustParseAddr("192.0.2.66")})
	if !check(t, p, "tcp", "192.0.2.10:443") || check(t, p, "tcp", "192.0.2.10:80") {
		t.Error("learned address: port 443 allowed, port 80 refused")
	}
	if check(t, p, "tcp", "192.0.2.66:443") {
		t.Error("an address learned for a denied name must be refused")
	}
	for name, want := range map[string]bool{"www.example.org": true, "example.org": false, "bad.example.org": false, "evil.test": false} {
		if ok, _ := p.CheckName(name); ok != want {
			t.Errorf("CheckName(%s) = %v, want %v", name, ok, want)
		}
	}
}

func TestUpstreamResolversComeFromFlagsElseResolvConf(t *testing.T) {
	conf := t.TempDir() + "/resolv.conf"
	os.WriteFile(conf, []byte("# comment\nsearch example.test\nnameserver 127.0.0.53\nnameserver fe80::1%eth0\noptions edns0\n"), 0o644)
	got, err := upstreamServers(nil, conf)
	want := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.53:53"), netip.MustParseAddrPort("[fe80::1%eth0]:53")}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("from resolv.conf: %v, %v; want %v", got, err, want)
	}
	got, err = upstreamServers([]string{"127.0.0.1:5353", "192.0.2.53", "[::1]:53"}, conf)
	want = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:5353"), netip.MustParseAddrPort("192.0.2.53:53"), netip.MustParseAddrPort("[::1]:53")}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("from --dns: %v, %v; want %v", got, err, want)
	}
	if _, err := upstreamServers([]string{"dns.example"}, conf); err == nil {
		t.Error("--dns with a name accepted")
	}
}
