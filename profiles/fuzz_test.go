package profiles

import (
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// FuzzProfile feeds arbitrary text to the profile loader as a profile
// file. It may refuse it, but only with an error that names the file; a
// profile it accepts must resolve to a spec or say why not, and its
// `profile show` form must pass `profile check`.
func FuzzProfile(f *testing.F) {
	ents, _ := fs.ReadDir(builtinFS, "builtin")
	for _, e := range ents {
		b, _ := fs.ReadFile(builtinFS, "builtin/"+e.Name())
		f.Add(string(b))
	}
	for _, s := range []string{
		"include = [\"default\"]\n[seccomp]\ndeny = [\"!mount\", \"@keyring\"]\n",
		"include = [\"x\"]\n", "include = []\n[run]\nuid = 0\n",
		"[filesystem]\nbind = [\"~/src:/src\", \"?/nope\"]\nro_bind = [\"/etc\"]\ntmpfs = [\"/scratch\"]\nhide = [\"/etc/shadow\"]\n",
		"[network]\nmode = \"slirp\"\nports = [\"8080:80/tcp\"]\nallow = [\"*.example.org:443\", \"udp:53\"]\ndeny = [\"10.0.0.0/8\"]\n",
		"[[seccomp.rule]]\nsyscalls = [\"clone\"]\naction = \"errno\"\nargs = [{ arg = 0, op = \"masked-eq\", mask = \"CLONE_NEWUSER\", value = \"CLONE_NEWUSER\" }]\n",
		"[limits]\nmemory = \"5M\"\npids = 10\ncpus = 0.5\nnofile = 64\n",
		"[env]\nkeep = false\nset = { A = \"1\" }\nunset = [\"B\"]\n",
		"description = 1\n", "[run\n", "unknown = true\n", "include = [\"../../../etc/passwd\"]\n",
	} {
		f.Add(s)
	}
	// One loader and directory for every input: a fuzzing worker runs its
	// inputs one after the other.
	dir := f.TempDir()
	sub, _ := fs.Sub(builtinFS, "builtin")
	l := &Loader{Dirs: []string{dir}, Builtin: sub, Vars: Vars{"HOME": dir + "/home", "PWD": dir + "/work", "UID": "1000", "GID": "1000"}}
	f.Fuzz(func(t *testing.T, text string) {
		if strings.Contains(text, "+") {
			// "+DIR" makes DIR when the profile resolves, anywhere: the
			// fuzzing may run as root. Tested by name elsewhere.
			t.Skip()
		}
		if strings.Contains(text, "include") && strings.ContainsAny(text, "/") {
			// Includes by path read the fuzzing machine's files: the
			// path forms are seeded above and tested by name elsewhere.
			t.Skip()
		}
		p := write(t, dir, "fuzz.toml", text)
		prof, src, err := l.Load(p)
		if err != nil {
			if !strings.Contains(err.Error(), p) && !strings.Contains(err.Error(), "profile") {
				t.Fatalf("error does not name the profile: %v", err)
			}
			return
		}
		if _, err := l.Spec(prof); err != nil {
			return
		}
		out, err := Show(prof, src)
		if err != nil {
			t.Fatalf("show of an accepted profile: %v", err)
		}
		shown := write(t, dir, "shown.toml", string(out))
		if ps := l.Check(shown); len(ps) > 0 {
			t.Fatalf("profile show output fails check:\n%v\n--- input\n%s\n--- shown\n%s", ps, text, out)
		}
	})
}

func TestIncludeOfADeviceOrAHugeFileIsRefused(t *testing.T) {
	l, dir, _ := testLoader(t)
	big := write(t, dir, "big.toml", "# "+strings.Repeat("x", maxProfileSize)+"\n")
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, inc := range []string{"/dev/zero", "/dev/null", big, filepath.Dir(big), fifo} {
		p := write(t, dir, "inc.toml", "include = [\""+inc+"\"]\n")
		if _, _, err := l.Load(p); err == nil || !strings.Contains(err.Error(), inc) {
			t.Errorf("include %s: %v, want an error naming it", inc, err)
		}
	}
}
