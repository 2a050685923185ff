package profiles

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestX11SocketOnlyForLocalDisplays(t *testing.T) {
	for display, want := range map[string]string{
		":0": "/tmp/.X11-unix/X0", ":12.0": "/tmp/.X11-unix/X12", "unix:3": "/tmp/.X11-unix/X3",
		"localhost:10.0": "", "host:0": "", "": "", ":": "", ":x": "", ":1/../../etc": "",
	} {
		if _, got := x11Socket(display); got != want {
			t.Errorf("x11Socket(%q) = %q, want %q", display, got, want)
		}
	}
}

func TestSandboxXauthorityKeepsOnlyTheDisplaysCookieForAnyHost(t *testing.T) {
	host, _ := os.Hostname()
	dir := t.TempDir()
	src := filepath.Join(dir, "Xauthority")
	in := []xauthEntry{
		{familyLocal, []byte(host), []byte("5"), []byte("MIT-MAGIC-COOKIE-1"), []byte("display-5-cookie")},
		{familyLocal, []byte(host), []byte("6"), []byte("MIT-MAGIC-COOKIE-1"), []byte("display-6-cookie")},
		{familyLocal, []byte("otherhost"), []byte("5"), []byte("MIT-MAGIC-COOKIE-1"), []byte("other-host-cookie")},
		{0, []byte{10, 0, 0, 1}, []byte("5"), []byte("MIT-MAGIC-COOKIE-1"), []byte("tcp-cookie")},
	}
	if err := os.WriteFile(src, writeXauth(in), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := sandboxXauthority(src, "5", filepath.Join(dir, "sbx"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	es, err := readXauth(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].family != familyWild || len(es[0].address) != 0 || string(es[0].data) != "display-5-cookie" || string(es[0].number) != "5" {
		t.Fatalf("the sandbox's cookies: %+v", es)
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o600 {
		t.Errorf("cookie file mode %v, want 0600", st.Mode().Perm())
	}
	if none, err := sandboxXauthority(src, "9", filepath.Join(dir, "sbx")); err != nil || none != "" {
		t.Errorf("a display with no cookie: %q %v", none, err)
	}
	if err := os.WriteFile(src, []byte{0, 1, 0}, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sandboxXauthority(src, "5", dir); err == nil {
		t.Errorf("a truncated Xauthority file was accepted")
	}
}

func TestCacheNamesAreCheckedAndKeptApartFromTheHostsCaches(t *testing.T) {
	l, dir, _ := testLoader(t)
	write(t, dir, "c.toml", "include = [\"build\"]\n[filesystem]\ncache = [\"go\", \"npm\"]\n")
	p, _, err := l.Load("c")
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Spec(p)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"/home/u/.cache/go-build": "/home/u/.cache/sbx/cache/go/.cache/go-build",
		"/home/u/go/pkg/mod":      "/home/u/.cache/sbx/cache/go/go/pkg/mod",
		"/home/u/.npm":            "/home/u/.cache/sbx/cache/npm/.npm",
	}
	for _, m := range s.Mounts {
		if src, ok := want[m.Dst]; ok {
			if m.Src != src {
				t.Errorf("%s from %s, want %s", m.Dst, m.Src, src)
			}
			delete(want, m.Dst)
		}
	}
	if len(want) > 0 {
		t.Errorf("caches not mounted: %v", want)
	}
	write(t, dir, "bad.toml", "include = [\"build\"]\n[filesystem]\ncache = [\"gomod\"]\n")
	if _, _, err := l.Load("bad"); err == nil {
		t.Errorf("an unknown cache name was accepted")
	}
}

func TestProfileShowCarriesTheProfilesOwnExplanation(t *testing.T) {
	var b strings.Builder
	if err := PrintShow(&b, "browser"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Allows:", "# Refuses:", "chroot", "# From this session it shares:", "homes/browser"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("profile show browser lacks %q:\n%s", want, b.String())
		}
	}
}
