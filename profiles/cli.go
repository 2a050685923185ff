package profiles

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// PrintList is `sbx profile list`: name, source, one-line description.
func PrintList(w io.Writer) error {
	ls, err := NewLoader().List()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSOURCE\tDESCRIPTION")
	for _, l := range ls {
		src := l.Path
		if len(l.Shadows) > 0 {
			src += " (hides " + strings.Join(l.Shadows, ", ") + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", l.Name, src, l.Description)
	}
	return tw.Flush()
}

// PrintShow is `sbx profile show NAME`.
func PrintShow(w io.Writer, ref string) error {
	l := NewLoader()
	p, src, err := l.Load(ref)
	if err != nil {
		return err
	}
	out, err := Show(p, src)
	if err != nil {
		return err
	}
	_, err = fmt.Fprint(w, l.header(src)+"#\n"+l.sharedNow(p)+string(out))
	return err
}

// RunCheck is `sbx profile check FILE...`: every problem, one a line, on w;
// the error says how many.
func RunCheck(w io.Writer, files []string) error {
	ps := NewLoader().Check(files...)
	for _, p := range ps {
		fmt.Fprintln(w, "sbx: "+p.Error())
	}
	if len(ps) > 0 {
		if len(ps) == 1 {
			return fmt.Errorf("1 problem: fix it and check again")
		}
		return fmt.Errorf("%d problems: fix them and check again", len(ps))
	}
	return nil
}

// PrintGroups is `sbx profile groups`: the seccomp groups and their syscalls.
func PrintGroups(w io.Writer) error {
	for _, g := range groupNames() {
		m := append([]string(nil), groups[g]...)
		sort.Strings(m)
		fmt.Fprintf(w, "%s: %s\n", g, strings.Join(m, " "))
	}
	return nil
}
