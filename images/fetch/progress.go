package fetch

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// progress shows layer downloads: one redrawn bar per layer on a terminal,
// a line when a layer starts and ends otherwise (logs and pipes stay readable).
type progress struct {
	w   io.Writer
	tty bool

	label string
	total int64
	n     int64
	last  time.Time
	start time.Time
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
		p.tty = err == nil
	}
	return p
}

func (p *progress) line(format string, args ...any) {
	if p.w == nil {
		return
	}
	fmt.Fprintf(p.w, format+"\n", args...)
}

// reader counts what is read from r as the progress of the layer label.
func (p *progress) reader(r io.Reader, label string, total int64) io.Reader {
	p.label, p.total, p.n = label, total, 0
	p.start = time.Now()
	if !p.tty {
		if total >= 0 {
			p.line("%s fetching %s", label, human(total))
		} else {
			p.line("%s reading", label)
		}
	}
	return &countingReader{r: r, p: p}
}

type countingReader struct {
	r io.Reader
	p *progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.n += int64(n)
	if c.p.tty && time.Since(c.p.last) > 100*time.Millisecond {
		c.p.last = time.Now()
		c.p.draw()
	}
	return n, err
}

func (p *progress) draw() {
	if p.w == nil {
		return
	}
	const width = 30
	if p.total > 0 {
		filled := int(int64(width) * min(p.n, p.total) / p.total)
		bar := strings.Repeat("=", filled) + strings.Repeat(" ", width-filled)
		fmt.Fprintf(p.w, "\r%s [%s] %s / %s\x1b[K", p.label, bar, human(p.n), human(p.total))
		return
	}
	fmt.Fprintf(p.w, "\r%s %s\x1b[K", p.label, human(p.n))
}

func (p *progress) done() {
	if p.tty {
		p.draw()
		if p.w != nil {
			fmt.Fprintln(p.w)
		}
		return
	}
	p.line("%s done (%s in %.1fs)", p.label, human(p.n), time.Since(p.start).Seconds())
}

func (p *progress) abort() {
	if p.tty && p.w != nil {
		fmt.Fprintln(p.w)
	}
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// Human formats a byte count for listings.
func Human(n int64) string { return human(n) }
