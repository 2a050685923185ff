package slirp

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// maxReported bounds the refused destinations remembered for the
// once-per-destination report on stderr.
const maxReported = 4096

// netLog reports decisions: each refused destination once on sbx's stderr,
// and every decision to the --net-log file when there is one.
type netLog struct {
	mu       sync.Mutex
	w        io.Writer // stderr
	all      io.Writer // the --net-log file, or nil
	reported map[string]bool
}

func newNetLog(w, all io.Writer) *netLog {
	if w == nil {
		w = io.Discard
	}
	return &netLog{w: w, all: all, reported: map[string]bool{}}
}

// conn logs one decision about a connection (or a first datagram).
func (l *netLog) conn(ok bool, proto string, dst netip.AddrPort, reason string, names []string) {
	what := proto + " " + dst.String()
	if proto == "icmp" {
		what = proto + " " + dst.Addr().String()
	}
	if len(names) > 0 {
		what += " (" + strings.Join(names, ",") + ")"
	}
	l.decision(ok, what, reason)
}

// name logs one decision of the DNS server about a name.
func (l *netLog) name(ok bool, name, reason string) {
	l.decision(ok, "dns "+strings.TrimSuffix(name, "."), reason)
}

func (l *netLog) decision(ok bool, what, reason string) {
	verdict := "allow"
	if !ok {
		verdict = "refuse"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.all != nil {
		line := time.Now().UTC().Format(time.RFC3339) + " " + verdict + " " + what
		if reason != "" {
			line += ": " + reason
		}
		fmt.Fprintln(l.all, line)
	}
	if !ok && !l.reported[what] && len(l.reported) < maxReported {
		l.reported[what] = true
		fmt.Fprintf(l.w, "sbx: network: refused %s: %s\n", what, reason)
	}
}

// note logs an event that is not a decision (an upstream DNS failure...).
func (l *netLog) note(format string, args ...any) {
	if l.all == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(l.all, time.Now().UTC().Format(time.RFC3339)+" "+fmt.Sprintf(format, args...))
}
