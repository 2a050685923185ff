package main

import (
	"io"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// exited is what the parser's exit hook panics with in tests.
type exited int

// parse runs sbx's own parser on args without letting it exit the test.
func parse(args []string) (cli *CLI, command string, code int, err error) {
	cli = &CLI{}
	defer func() {
		if r := recover(); r != nil {
			c, ok := r.(exited)
			if !ok {
				panic(r)
			}
			code = int(c)
		}
	}()
	p, err := newParser(cli, func(c int) { panic(exited(c)) }, kong.Writers(io.Discard, io.Discard))
	if err != nil {
		return nil, "", 0, err
	}
	ctx, err := p.Parse(args)
	if err != nil {
		return cli, "", 125, err
	}
	return cli, ctx.Command(), 0, nil
}

// FuzzCLI parses arbitrary command lines (arguments split at NUL) with
// sbx's own parser and, for sbx run, resolves the spec it would start,
// without starting it. Nothing may panic, and every refusal is one line:
// sbx's own failures are one line and exit 125.
func FuzzCLI(f *testing.F) {
	home := f.TempDir()
	f.Setenv("HOME", home)
	f.Setenv("XDG_CONFIG_HOME", home+"/.config")
	f.Setenv("XDG_DATA_HOME", home+"/.local/share")
	f.Setenv("XDG_CACHE_HOME", home+"/.cache")
	f.Setenv("XDG_RUNTIME_DIR", home+"/run")
	// sbx run makes the directories it is told to keep (--persist, +DIR
	// binds, --home): relative ones land here.
	f.Chdir(home)
	for _, s := range []string{
		"run\x00--\x00true",
		"run\x00--profile\x00build\x00--net\x00slirp\x00-p\x008080:80\x00--allow\x00*.example.org:443\x00--\x00make",
		"run\x00--uid\x000\x00--gid\x000\x00--map-users\x00auto\x00--cap-add\x00CAP_NET_RAW\x00--\x00id",
		"run\x00--bind\x00/tmp:/w\x00--ro-bind\x00/etc\x00--tmpfs\x00/scratch\x00--chdir\x00/w\x00--\x00sh",
		"run\x00--memory\x005M\x00--pids\x0010\x00--cpus\x000.5\x00--nofile\x0064\x00--limits\x00strict\x00--\x00true",
		"run\x00--overlay\x00--persist\x00/tmp/p\x00--\x00true",
		"run\x00--image\x00alpine",
		"run\x00--setenv\x00A=1\x00--unsetenv\x00B\x00--keep-env\x00--hostname\x00h\x00--\x00env",
		"run\x00--net\x00none\x00-p\x0080:80\x00--\x00true",
		"run\x00--pass-fd\x00-1\x00--\x00true",
		"run\x00--memory\x00lots\x00--\x00true",
		"run", "run\x00--no-such-flag", "profile\x00show\x00default", "ps\x00--json", "kill\x00--signal\x00TERM\x00x",
		"enter\x00x\x00--\x00sh", "image\x00ls", "--help", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		var args []string
		if line != "" {
			args = strings.Split(line, "\x00")
		}
		// A message may quote an argument that holds a newline; it may
		// not add one of its own.
		oneLine := func(msg string) bool { return strings.Count(msg, "\n") <= strings.Count(line, "\n") }
		cli, command, code, err := parse(args)
		if err != nil {
			if !oneLine(err.Error()) || code != 125 {
				t.Fatalf("%q: exit %d, %q", args, code, err)
			}
			return
		}
		if code != 0 || !strings.HasPrefix(command, "run") || cli.Run.Image != "" || reachesOut(args) {
			// An image would be pulled from the network: its refusals
			// are tested against a registry of the tests' own.
			return
		}
		if _, err := cli.Run.spec(); err != nil {
			msg := err.Error()
			if msg == "" || !oneLine(msg) || strings.Contains(msg, "goroutine") {
				t.Fatalf("%q: sbx run refuses it in more than one line: %q", args, msg)
			}
		}
	})
}

// reachesOut tells arguments that could make sbx run create a directory
// outside the fuzzing's own (an absolute path, .., a variable): the
// fuzzing may run as root.
func reachesOut(args []string) bool {
	for _, a := range args {
		if strings.Contains(a, "..") || strings.Contains(a, "$") {
			return true
		}
		for _, part := range strings.FieldsFunc(a, func(r rune) bool { return r == ':' || r == '=' || r == ',' }) {
			if strings.HasPrefix(strings.TrimLeft(part, "+?!"), "/") {
				return true
			}
		}
	}
	return false
}

func TestCLIErrorsAreOneLineNamingTheInput(t *testing.T) {
	for args, want := range map[string]string{
		"run\x00--memory\x00lots\x00--\x00true":                  "lots",
		"run\x00--net\x00slirp\x00-p\x00x\x00--\x00true":         "x",
		"run\x00--cap-add\x00CAP_NOPE\x00--\x00true":             "CAP_NOPE",
		"run\x00--net\x00slirp\x00--allow\x00a..b\x00--\x00true": "a..b",
	} {
		a := strings.Split(args, "\x00")
		cli, _, _, err := parse(a)
		if err == nil {
			_, err = cli.Run.spec()
		}
		if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want one line naming %q", a, err, want)
		}
	}
}
