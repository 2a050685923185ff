package main

import (
	"fmt"

	"github.com/sbx-sandbox/sbx/slirp"
	"github.com/sbx-sandbox/sbx/spec"
)

// NetFlags are the flags of the user-mode network (--net slirp).
type NetFlags struct {
	Publish           []string `name:"publish" short:"p" placeholder:"[HOSTIP:]HOSTPORT:PORT[/tcp|/udp]" help:"Expose a sandbox port on the host (on 127.0.0.1 unless HOSTIP says otherwise)."`
	Allow             []string `name:"allow" placeholder:"RULE" help:"Egress rule: allow only what such rules match, e.g. '*.example.org:443', 10.0.0.0/8, udp:53 (names work through the sandbox's DNS server)."`
	Deny              []string `name:"deny" placeholder:"RULE" help:"Egress rule: refuse what it matches, even when an --allow rule matches too."`
	AllowHostLoopback bool     `name:"allow-host-loopback" help:"Let the gateway address (10.0.2.2) lead to the host's 127.0.0.1."`
	IPv6              bool     `name:"ipv6" help:"Give the sandbox IPv6 as well (fd00::100, gateway fd00::2)."`
	NetLog            string   `name:"net-log" placeholder:"FILE" help:"Append every network decision to FILE (refusals are reported on stderr either way)."`
	DNS               []string `name:"dns" placeholder:"IP[:PORT]" help:"Resolver the sandbox's DNS server forwards to (default: the host's)."`
}

// apply checks the flags and puts them into n.
func (f *NetFlags) apply(n *spec.Net) error {
	if n.Mode != spec.NetSlirp && n.Mode != spec.NetSlirp4netns && n.Mode != spec.NetPasta {
		for name, set := range map[string]bool{
			"-p": len(f.Publish) > 0, "--allow": len(f.Allow) > 0, "--deny": len(f.Deny) > 0,
			"--allow-host-loopback": f.AllowHostLoopback, "--ipv6": f.IPv6, "--net-log": f.NetLog != "", "--dns": len(f.DNS) > 0,
		} {
			if set {
				return fmt.Errorf("%s needs the user-mode network: add --net slirp", name)
			}
		}
		return nil
	}
	for _, p := range f.Publish {
		pf, err := slirp.ParsePort(p)
		if err != nil {
			return err
		}
		n.Ports = append(n.Ports, pf)
	}
	// On top of what the profile says: rules add up, flags switch on.
	n.Allow = append(n.Allow, f.Allow...)
	n.Deny = append(n.Deny, f.Deny...)
	if _, err := slirp.NewPolicy(n.Allow, n.Deny); err != nil {
		return err
	}
	if len(f.DNS) > 0 {
		n.DNS = f.DNS
	}
	if f.NetLog != "" {
		n.Log = f.NetLog
	}
	n.AllowHostLoopback = n.AllowHostLoopback || f.AllowHostLoopback
	n.IPv6 = n.IPv6 || f.IPv6
	return nil
}
