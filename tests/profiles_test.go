package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var builtinProfiles = []string{"default", "build", "browser", "strict", "offline-shell"}

func writeProfile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEachBuiltinProfileRunsARealCommand(t *testing.T) {
	for _, p := range builtinProfiles {
		out := mustRun(t, "run", "--profile", p, "--", "sh", "-c", "ls /usr/bin | grep -c . ; sort </etc/passwd | head -1 >/dev/null; echo done")
		if !strings.HasSuffix(out, "done\n") {
			t.Errorf("%s: %q", p, out)
		}
	}
}

func TestBuildProfileWritesOnlyTheWorkingDirectory(t *testing.T) {
	unprivileged(t)
	dir := t.TempDir()
	cmd := sbxCommand(t, t.Context(), "run", "--profile", "build", "--", "sh", "-c",
		"echo built >out.txt && pwd && ! touch /etc/x 2>/dev/null && ! touch /usr/x 2>/dev/null && ! ls ~/.ssh 2>/dev/null")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("build profile: %v\n%s", err, out)
	}
	if strings.TrimSpace(string(out)) != dir {
		t.Fatalf("working directory inside %q, want %q", out, dir)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "out.txt")); err != nil || string(b) != "built\n" {
		t.Fatalf("the build's output did not reach the working directory: %q %v", b, err)
	}
	// No network by default.
	cmd = sbxCommand(t, t.Context(), "run", "--profile", "build", "--", "sh", "-c", "ip -o link | grep -v ' lo:'")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("build profile sees network interfaces: %s", out)
	}
}

// Each kind of broken profile stops sbx before anything starts: exit 125
// and one line naming the file and line.
func TestBrokenProfilesExit125WithFileAndLine(t *testing.T) {
	dir := t.TempDir()
	writeProfile(t, dir, "a.toml", "include = [\"b.toml\"]\n")
	writeProfile(t, dir, "b.toml", "description = \"b\"\ninclude = [\"a.toml\"]\n")
	for _, c := range []struct {
		name, text, want string
	}{
		{"unknown-key.toml", "[filesystem]\nro_bind = [\"/opt\"]\nrw_bind = [\"/srv\"]\n", `:3: unknown key "filesystem.rw_bind"`},
		{"two-unknown-keys.toml", "[run]\nhostnam = \"x\"\nuidd = 0\n", `:2: unknown key "run.hostnam" (and 1 more: sbx profile check `},
		{"wrong-type.toml", "[run]\n\nhostname = 7\n", ":3: run.hostname: incompatible types"},
		{"unknown-syscall.toml", "[seccomp]\ndeny = [\"ptrace\",\n  \"ptrac\"]\n", `:2: seccomp.deny: unknown syscall "ptrac"`},
		{"cycle.toml", "include = [\"a.toml\"]\n", ":2: include cycle: " + filepath.Join(dir, "a.toml") + " -> " + filepath.Join(dir, "b.toml") + " -> " + filepath.Join(dir, "a.toml")},
	} {
		p := writeProfile(t, dir, c.name, c.text)
		r := sbx(t, "run", "--profile", p, "--", "sh", "-c", "echo started")
		if r.code != 125 || strings.Contains(r.stdout, "started") {
			t.Errorf("%s: %s; want exit 125 and nothing started", c.name, r)
			continue
		}
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "sbx: ") || !strings.Contains(lines[0], c.want) {
			t.Errorf("%s: stderr %q; want one line containing %q", c.name, r.stderr, c.want)
		}
		if c.name != "cycle.toml" && !strings.Contains(lines[0], p+":") {
			t.Errorf("%s: stderr %q does not name the file", c.name, r.stderr)
		}
	}
}

func TestProfileCheckListsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	a := writeProfile(t, dir, "a.toml", "[run]\nhostnme = \"x\"\n[network]\nmod = \"none\"\n")
	b := writeProfile(t, dir, "b.toml", "[capabilities]\nadd = [\"CAP_FLY\"]\n")
	good := writeProfile(t, dir, "good.toml", "include = [\"default\"]\n[filesystem]\nro_bind = [\"/srv\"]\n")
	r := sbx(t, "profile", "check", a, b, good)
	if r.code != 125 {
		t.Fatalf("check: %s", r)
	}
	for _, want := range []string{a + `:2: unknown key "run.hostnme"`, a + `:4: unknown key "network.mod"`, b + `:2: capabilities.add: unknown capability "CAP_FLY"`} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("check output lacks %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, good) {
		t.Errorf("check complains about a good profile:\n%s", r.stderr)
	}
	mustRun(t, "profile", "check", good)
}

func TestProfileShowOutputPassesProfileCheck(t *testing.T) {
	dir := t.TempDir()
	for _, p := range builtinProfiles {
		out := mustRun(t, "profile", "show", p)
		if !strings.Contains(out, "\ninclude = []\n") {
			t.Errorf("%s: show output must stand alone (include = []):\n%s", p, out)
		}
		f := writeProfile(t, dir, p+".toml", out)
		if r := sbx(t, "profile", "check", f); r.code != 0 {
			t.Errorf("%s: show output fails check: %s\n%s", p, r, out)
		}
		// And it runs like the profile it came from.
		mustRun(t, "run", "--profile", f, "--", "true")
	}
}

func TestProfileListNamesEveryBuiltinWithADescription(t *testing.T) {
	out := mustRun(t, "profile", "list")
	for _, p := range builtinProfiles {
		found := false
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) >= 3 && f[0] == p && f[1] == "builtin:"+p {
				found = true
			}
		}
		if !found {
			t.Errorf("profile list lacks %s with a description:\n%s", p, out)
		}
	}
}

func TestUserProfileDirectoryComesBeforeTheBuiltins(t *testing.T) {
	unprivileged(t)
	cfg := t.TempDir()
	if err := os.MkdirAll(filepath.Join(cfg, "sbx", "profiles"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeProfile(t, filepath.Join(cfg, "sbx", "profiles"), "strict.toml", "include = [\"strict\"]\n[run]\nhostname = \"mystrict\"\n")
	cmd := sbxCommand(t, t.Context(), "run", "--profile", "strict", "--", "hostname")
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+cfg)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "mystrict" {
		t.Fatalf("hostname %q (%v), want the user's strict, which includes the built-in one", out, err)
	}
}

func TestFlagsOverrideTheProfile(t *testing.T) {
	dir := t.TempDir()
	p := writeProfile(t, dir, "p.toml", "include = [\"default\"]\n[run]\nhostname = \"fromprofile\"\n[env]\nset = { A = \"profile\", B = \"profile\" }\n")
	out := mustRun(t, "run", "--profile", p, "--hostname", "fromflag", "--setenv", "A=flag", "--", "sh", "-c", "hostname; echo $A $B")
	if out != "fromflag\nflag profile\n" {
		t.Fatalf("got %q", out)
	}
}

func TestProfileBindsAndRemovalsReachTheSandbox(t *testing.T) {
	unprivileged(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	writeProfile(t, dir, "base.toml", "include = [\"default\"]\n[filesystem]\nro_bind = [\""+data+":/data\", \"?/does/not/exist:/missing\"]\n")
	top := writeProfile(t, dir, "top.toml", "include = [\"base.toml\"]\n[filesystem]\nbind = [\""+data+":/data\"]\n")
	mustRun(t, "run", "--profile", top, "--", "sh", "-c", "echo x >/data/f && test ! -e /missing")
	if _, err := os.Stat(filepath.Join(data, "f")); err != nil {
		t.Fatalf("the including profile's read-write bind did not replace the read-only one: %v", err)
	}
	gone := writeProfile(t, dir, "gone.toml", "include = [\"base.toml\"]\n[filesystem]\nro_bind = [\"!/data\"]\n")
	mustRun(t, "run", "--profile", gone, "--", "sh", "-c", "test ! -e /data")
}

func TestRenameAcrossDirectoriesWorksUnderLandlock(t *testing.T) {
	mustSh(t, nil, "mkdir -p /tmp/a/b ~/c && mv /tmp/a/b /tmp/b && mv ~/c ~/d && ln /tmp/b/../a/. /tmp/x 2>/dev/null; true")
}

func TestProfileLimitsAndNetworkReachTheSandbox(t *testing.T) {
	dir := t.TempDir()
	p := writeProfile(t, dir, "p.toml", "include = [\"default\"]\n[limits]\nnofile = 77\n[network]\nmode = \"slirp\"\n")
	out := mustRun(t, "run", "--profile", p, "--", "sh", "-c", "ulimit -n; ip -o link | grep -c -v ' lo:'")
	if out != "77\n1\n" {
		t.Fatalf("nofile and a network interface besides lo: got %q, want 77 and 1", out)
	}
	// A flag still overrides the profile's limit.
	if out := mustRun(t, "run", "--profile", p, "--nofile", "55", "--", "sh", "-c", "ulimit -n"); out != "55\n" {
		t.Fatalf("--nofile over the profile: %q", out)
	}
}

func TestPassEnvKeepsOnlyTheNamedVariables(t *testing.T) {
	unprivileged(t)
	cmd := sbxCommand(t, t.Context(), "run", "--pass-env", "SBX_T_KEEP", "--", "sh", "-c", "echo ${SBX_T_KEEP:-unset} ${SBX_T_DROP:-unset}")
	cmd.Env = append(os.Environ(), "SBX_T_KEEP=kept", "SBX_T_DROP=dropped")
	out, err := cmd.Output()
	if err != nil || string(out) != "kept unset\n" {
		t.Fatalf("got %q (%v), want only the passed variable", out, err)
	}
}

// Browsers sandbox their content processes in user namespaces of their own
// and chroot them: the browser profile allows exactly that, default not.
func TestBrowserProfileAllowsNestedUserNamespacesAndChrootDefaultDoesNot(t *testing.T) {
	script := "unshare -Ur sh -c 'mkdir -p /tmp/e && chroot /tmp/e /nothing; echo chroot=$?'"
	if out := mustSh(t, []string{"--profile", "browser"}, script); out != "chroot=127\n" {
		t.Fatalf("browser: %q, want the chroot to work (and only the missing command to fail)", out)
	}
	wantFail(t, nil, "unshare -Ur true")
}
