package spec

// NetMode says which network the sandbox gets.
type NetMode string

const (
	NetNone        NetMode = "none"        // a new network namespace with only loopback
	NetHost        NetMode = "host"        // the host's network namespace
	NetSlirp       NetMode = "slirp"       // user-mode networking run by the parent (built in)
	NetSlirp4netns NetMode = "slirp4netns" // the same through an installed slirp4netns
	NetPasta       NetMode = "pasta"       // the same through an installed pasta
)

// Net describes the sandbox's network. Everything past Mode applies to the
// user-mode modes only; the built-in one (NetSlirp) honours all of it.
type Net struct {
	Mode NetMode

	// Ports are the sandbox ports exposed on the host (-p).
	Ports []PortForward
	// Allow and Deny are egress rules in the text form slirp.ParseRule
	// accepts: "[tcp:|udp:|icmp:]TARGET[:PORT[-PORT]]" where TARGET is an
	// address, a CIDR, a domain name ("*.example.org" for its subdomains)
	// or "*", and "udp:53" alone means any address. With no Allow rule
	// everything is allowed but link-local and metadata addresses; with
	// any, only what an Allow rule matches. A Deny rule always wins.
	Allow []string
	Deny  []string
	// AllowHostLoopback makes the gateway address lead to the host's
	// 127.0.0.1 (and ::1); by default the host's loopback is unreachable.
	AllowHostLoopback bool
	// IPv6 gives the sandbox an IPv6 address and route as well.
	IPv6 bool
	// Log is a file every network decision is appended to ("" for none);
	// refused destinations are reported on sbx's stderr either way.
	Log string
	// DNS lists the resolvers ("IP" or "IP:PORT") the sandbox's DNS server
	// forwards to; empty means the host's, from /etc/resolv.conf.
	DNS []string
}

// PortForward exposes one sandbox port on the host.
type PortForward struct {
	Proto    string // "tcp" or "udp"
	HostIP   string // the host address listened on; "" means 127.0.0.1
	HostPort uint16
	Port     uint16 // the port inside the sandbox
}
