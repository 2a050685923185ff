package slirp

import (
	"strings"
	"testing"
)

// FuzzParseRule: an egress rule is read or refused with an error naming
// it; what is read is self-consistent, and NewPolicy agrees.
func FuzzParseRule(f *testing.F) {
	for _, s := range []string{"*.example.org:443", "10.0.0.0/8", "udp:53", "tcp:1.2.3.4:80-90", "[2001:db8::1]:22",
		"2001:db8::/32", "icmp:192.0.2.0/24", "Example.ORG.", "*:8080", "10.1.2.3/8", "tcp:registry.test",
		"", "tcp:", "example.org:0", "a..b", "[::1", "90-80", "fe80::1%eth0", "[fe80::1%lo]:22", "::ffff:10.0.0.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		r, err := ParseRule(text)
		_, perr := NewPolicy([]string{text}, nil)
		if (err == nil) != (perr == nil) {
			t.Fatalf("ParseRule %v, NewPolicy %v", err, perr)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "egress rule ") {
				t.Fatalf("error does not name the rule: %v", err)
			}
			return
		}
		if r.Text != text || r.PortLo > r.PortHi || (r.PortLo == 0) != (r.PortHi == 0) {
			t.Fatalf("%q read as %+v", text, r)
		}
		if r.Domain != "" && r.Prefix.IsValid() {
			t.Fatalf("%q is both a name and a network: %+v", text, r)
		}
		if r.Domain == "" && !r.Prefix.IsValid() && r.PortLo == 0 && !strings.Contains(text, "*") {
			t.Fatalf("%q matches everything, yet says neither * nor a port: %+v", text, r)
		}
		if r.Proto == "icmp" && r.PortLo != 0 {
			t.Fatalf("%q: icmp with ports: %+v", text, r)
		}
	})
}

// FuzzParsePort: a -p value is read or refused with an error naming it.
func FuzzParsePort(f *testing.F) {
	for _, s := range []string{"8080:80", "0.0.0.0:8080:80/udp", "[::1]:53:5353/udp", "80", "a:80", "80:80/sctp",
		"1.2.3:80:80", "0:80", "127.0.0.1:65535:1/TCP", "[fe80::1%lo]:80:80", "::1:80:80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		p, err := ParsePort(text)
		if err != nil {
			if !strings.Contains(err.Error(), "-p ") {
				t.Fatalf("error does not name the value: %v", err)
			}
			return
		}
		if p.Port == 0 || p.HostPort == 0 || (p.Proto != "tcp" && p.Proto != "udp") {
			t.Fatalf("%q read as %+v", text, p)
		}
	})
}
