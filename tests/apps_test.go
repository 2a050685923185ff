package tests

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image/png"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Real browsers in the browser profile. They need packages only
// `make test-apps` installs (SBX_APPS=1 ./scripts/setup-host.sh), and take
// seconds each, so they run only with SBX_TEST_APPS=1.

func appsOnly(t *testing.T, programs ...string) {
	t.Helper()
	if os.Getenv("SBX_TEST_APPS") == "" {
		t.Skip("real applications: run make test-apps")
	}
	unprivileged(t)
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s is not installed: make test-apps installs it (SBX_APPS=1 ./scripts/setup-host.sh)", p)
		}
	}
}

// display is an Xvfb server of the test's own, with a cookie.
type display struct {
	n    int
	auth string
}

func (d display) name() string { return fmt.Sprintf(":%d", d.n) }

// startXvfb starts a virtual X server on a free display, accepting only
// clients that present its cookie, which it adds to the Xauthority file
// auth (made if missing, shared by several displays).
func startXvfb(t *testing.T, auth string) display {
	t.Helper()
	n := 40
	for ; n < 400; n++ {
		_, e1 := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", n))
		_, e2 := os.Stat(fmt.Sprintf("/tmp/.X%d-lock", n))
		if os.IsNotExist(e1) && os.IsNotExist(e2) {
			break
		}
	}
	cookie := make([]byte, 16)
	rand.Read(cookie)
	d := display{n: n, auth: auth}
	if out, err := exec.Command("xauth", "-f", auth, "add", d.name(), ".", hex.EncodeToString(cookie)).CombinedOutput(); err != nil {
		t.Fatalf("xauth add: %v\n%s", err, out)
	}
	x := exec.Command("Xvfb", d.name(), "-auth", auth, "-nolisten", "tcp", "-screen", "0", "1024x768x24")
	if err := x.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Process.Kill(); x.Wait() })
	sock := fmt.Sprintf("/tmp/.X11-unix/X%d", n)
	if !waitFor(10*time.Second, func() bool { _, err := os.Stat(sock); return err == nil }) {
		t.Fatalf("Xvfb %s did not start", d.name())
	}
	return d
}

// desktopHome makes a home for the test's user session: ~/Downloads, a
// file the sandbox must not see, and nothing else.
func desktopHome(t *testing.T) string {
	t.Helper()
	home := filepath.Join(t.TempDir(), "home")
	for _, d := range []string{"Downloads", ".ssh"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519"), []byte("PRIVATE KEY"), 0o600); err != nil {
		t.Fatal(err)
	}
	return home
}

// sessionEnv is the test's environment with home and display as a desktop
// session would set them, and no XDG variables of the test runner's.
func sessionEnv(home string, d display) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "HOME" || k == "DISPLAY" || k == "XAUTHORITY" || strings.HasPrefix(k, "XDG_") || strings.HasPrefix(k, "DBUS_") || strings.HasPrefix(k, "WAYLAND") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+home, "DISPLAY="+d.name(), "XAUTHORITY="+d.auth)
}

// sbxSession runs sbx with env for at most limit and returns what it did.
func sbxSession(t *testing.T, env []string, limit time.Duration, args ...string) result {
	t.Helper()
	return invocation{env: env, limit: limit}.run(t, args...)
}

func TestAppBrowserProfileSharesOneDisplayAndOnlyItsCookie(t *testing.T) {
	appsOnly(t, "Xvfb", "xauth", "import")
	home := desktopHome(t)
	auth := filepath.Join(t.TempDir(), "Xauthority")
	other := startXvfb(t, auth) // another display of the same user, with its own cookie
	d := startXvfb(t, auth)
	env := sessionEnv(home, d)
	// The sandbox has a hostname of its own, so this works only if sbx
	// rewrote the cookie for any host; `import` is a real X client.
	r := sbxSession(t, env, 60*time.Second, "run", "--profile", "browser", "--", "sh", "-c", `
		echo sockets: $(ls /tmp/.X11-unix)
		echo cookies: $(xauth list | wc -l) $(xauth list | grep -c "^#ffff#*:`+fmt.Sprint(d.n)+` ")
		echo display: $DISPLAY
		import -window root /tmp/root.png && echo x11: connected
		echo dbus: ${DBUS_SESSION_BUS_ADDRESS:-none}
		cat ~/.ssh/id_ed25519 2>/dev/null || echo home: private`)
	if r.code != 0 {
		t.Fatalf("browser profile on display %s: %s", d.name(), r)
	}
	for _, want := range []string{
		fmt.Sprintf("sockets: X%d\n", d.n), "cookies: 1 1\n", "display: " + d.name() + "\n",
		"x11: connected\n", "dbus: none\n", "home: private\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("want %q in the sandbox's view (display %s, other display %s):\n%s", want, d.name(), other.name(), r)
		}
	}
	r = sbxSession(t, env, 60*time.Second, "run", "--profile", "browser", "--x11", "none", "--", "sh", "-c",
		`ls /tmp/.X11-unix 2>&1; echo "display=$DISPLAY"; import -window root /tmp/root.png 2>&1 && echo x11: connected`)
	if strings.Contains(r.stdout, "x11: connected") || strings.Contains(r.stdout, fmt.Sprintf("X%d", d.n)) || !strings.Contains(r.stdout, "display=\n") {
		t.Fatalf("--x11 none still reaches the display: %s", r)
	}
}

// page is what the server inside the sandbox serves: a known background
// colour to find in the screenshot, with text and a box on it.
const (
	pageBG   = "#1f4fbf"
	pageHTML = `<html><body style="margin:0;background:` + pageBG + `"><h1 style="color:#ffd700;font:bold 56px sans-serif;padding:40px">served inside sbx</h1><div style="margin:40px;width:300px;height:150px;background:#d02020"></div></body></html>`
)

// browserScript serves the page from inside the sandbox, runs the browser
// command, and meanwhile watches the sandbox's processes for ones the
// browser sandboxed itself: a network namespace of their own (fewer
// interfaces than the sandbox has) and more seccomp filters than sbx's.
func browserScript(browser string) string {
	return `set -u
mkdir -p /tmp/site && cat >/tmp/site/index.html <<'EOF'
` + pageHTML + `
EOF
python3 -m http.server 8123 --bind 127.0.0.1 -d /tmp/site >/tmp/httpd.log 2>&1 &
httpd=$!
for i in $(seq 100); do curl -fsS -o /dev/null http://127.0.0.1:8123/ && break; sleep 0.1; done
own_net=$(grep -c : /proc/self/net/dev)
own_filters=$(awk '/^Seccomp_filters/ {print $2}' /proc/self/status)
(while :; do
	for p in /proc/[0-9]*; do
		n=$(grep -c : $p/net/dev 2>/dev/null) || continue
		f=$(awk '/^Seccomp_filters/ {print $2}' $p/status 2>/dev/null)
		[ -n "$f" ] && [ "$n" -lt "$own_net" ] && [ "$f" -gt "$own_filters" ] && echo "self-sandboxed: $(cat $p/comm 2>/dev/null)"
	done
	sleep 0.1
done) >/tmp/watch.log 2>&1 &
watch=$!
` + browser + `
rc=$?
kill $watch $httpd
sort -u /tmp/watch.log
grep -c "GET / " /tmp/httpd.log | sed 's/^/served: /'
exit $rc
`
}

// checkScreenshot decodes the PNG and checks it shows the page: not blank,
// and with the page's background colour.
func checkScreenshot(t *testing.T, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("no screenshot in ~/Downloads: %v", err)
	}
	if len(b) < 2000 {
		t.Fatalf("screenshot is %d bytes: too small to be a page", len(b))
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	bounds := img.Bounds()
	if bounds.Dx() < 300 || bounds.Dy() < 200 {
		t.Fatalf("screenshot is %v", bounds)
	}
	colours := map[[3]uint32]bool{}
	bg := 0
	for y := bounds.Min.Y; y < bounds.Max.Y; y += 2 {
		for x := bounds.Min.X; x < bounds.Max.X; x += 2 {
			r, g, b, _ := img.At(x, y).RGBA()
			c := [3]uint32{r >> 8, g >> 8, b >> 8}
			colours[c] = true
			if near(c, [3]uint32{0x1f, 0x4f, 0xbf}) {
				bg++
			}
		}
	}
	total := (bounds.Dx() / 2) * (bounds.Dy() / 2)
	if len(colours) < 4 {
		t.Fatalf("screenshot has %d colours: blank", len(colours))
	}
	if bg < total/4 {
		t.Fatalf("the page's background is %d of %d sampled pixels: not the served page (%d colours)", bg, total, len(colours))
	}
	t.Logf("screenshot %v, %d bytes, %d colours, background %d%%", bounds, len(b), len(colours), 100*bg/total)
}

func near(a, b [3]uint32) bool {
	for i := range a {
		d := int(a[i]) - int(b[i])
		if d < -3 || d > 3 {
			return false
		}
	}
	return true
}

// runBrowser runs the browser command in the browser profile under a
// fresh Xvfb and checks what every browser must show.
func runBrowser(t *testing.T, browser string) (result, string) {
	t.Helper()
	home := desktopHome(t)
	d := startXvfb(t, filepath.Join(t.TempDir(), "Xauthority"))
	r := sbxSession(t, sessionEnv(home, d), 3*time.Minute, "run", "--profile", "browser", "--", "sh", "-c", browserScript(browser))
	if r.code != 0 {
		t.Fatalf("browser in the browser profile: %s", r)
	}
	if !strings.Contains(r.stdout, "served: ") || strings.Contains(r.stdout, "served: 0") {
		t.Errorf("the server inside the sandbox served nothing: %s", r)
	}
	if !strings.Contains(r.stdout, "self-sandboxed: ") {
		t.Errorf("no browser process ran in a network namespace of its own under seccomp filters of its own: the browser's sandbox is off\n%s", r)
	}
	checkScreenshot(t, filepath.Join(home, "Downloads", "shot.png"))
	return r, home
}

func TestAppFirefoxRendersAPageServedInsideItsSandboxWithItsOwnSandboxOn(t *testing.T) {
	appsOnly(t, "Xvfb", "xauth", "firefox-esr", "python3", "curl")
	r, home := runBrowser(t, `MOZ_SANDBOX_LOGGING=1 firefox-esr --headless --no-remote --window-size 800,600 --screenshot "$HOME/Downloads/shot.png" http://127.0.0.1:8123/ 2>/tmp/firefox.log
rc=$?
grep -i "CanCreateUserNamespace\|sandbox.*fail" /tmp/firefox.log | grep -v "Failed errno -13" | head -5 | sed "s/^/firefox-log: /"
(exit $rc)`)
	if strings.Contains(r.stdout, "firefox-log: ") {
		t.Errorf("Firefox could not build its sandbox: %s", r)
	}
	// Its profile is kept in sbx's home for the browser profile.
	kept := filepath.Join(home, ".local", "share", "sbx", "homes", "browser")
	if _, err := os.Stat(filepath.Join(kept, ".config", "mozilla")); err != nil {
		if _, err2 := os.Stat(filepath.Join(kept, ".mozilla")); err2 != nil {
			t.Errorf("Firefox's profile was not kept in %s: %v", kept, err)
		}
	}
}

func TestAppFirefoxOpensAWindowOnTheSharedX11Display(t *testing.T) {
	appsOnly(t, "Xvfb", "xauth", "firefox-esr", "python3", "curl", "import")
	home := desktopHome(t)
	d := startXvfb(t, filepath.Join(t.TempDir(), "Xauthority"))
	// A real window, not headless: the browser draws through the display's
	// socket and cookie that sbx shares, and an X client in the same
	// sandbox takes the screen. A profile of its own skips the first-run pages.
	script := `set -u
mkdir -p /tmp/site /tmp/ffprof && cat >/tmp/site/index.html <<'EOF'
` + pageHTML + `
EOF
cat >/tmp/ffprof/user.js <<'EOF'
user_pref("browser.aboutwelcome.enabled", false);
user_pref("datareporting.policy.firstRunURL", "");
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
user_pref("browser.shell.checkDefaultBrowser", false);
EOF
python3 -m http.server 8123 --bind 127.0.0.1 -d /tmp/site >/tmp/httpd.log 2>&1 &
for i in $(seq 100); do curl -fsS -o /dev/null http://127.0.0.1:8123/ && break; sleep 0.1; done
firefox-esr --no-remote --profile /tmp/ffprof --width 1024 --height 768 http://127.0.0.1:8123/ >/tmp/firefox.log 2>&1 &
for i in $(seq 120); do [ "$(grep -c "GET / " /tmp/httpd.log)" -ge 2 ] && break; sleep 0.5; done
sleep 4
import -window root "$HOME/Downloads/shot.png"`
	r := sbxSession(t, sessionEnv(home, d), 3*time.Minute, "run", "--profile", "browser", "--", "sh", "-c", script)
	if r.code != 0 {
		t.Fatalf("Firefox on display %s: %s", d.name(), r)
	}
	checkScreenshot(t, filepath.Join(home, "Downloads", "shot.png"))
}

func TestAppChromiumRendersAPageServedInsideItsSandboxWithItsOwnSandboxOn(t *testing.T) {
	appsOnly(t, "Xvfb", "xauth", "chromium", "python3", "curl")
	r, home := runBrowser(t, `chromium --headless --no-first-run --no-default-browser-check --disable-background-networking --disable-component-update --disable-sync --disable-gpu --window-size=800,600 --screenshot="$HOME/Downloads/shot.png" http://127.0.0.1:8123/ 2>/tmp/chromium.log
rc=$?
grep -i "no usable sandbox\|without the SUID sandbox\|no-sandbox\|Check failed\|FATAL" /tmp/chromium.log | head -5 | sed "s/^/chromium-log: /"
(exit $rc)`)
	// Chromium says so when it falls back (or refuses to start) without
	// its namespace sandbox; --no-sandbox is never given here.
	if strings.Contains(r.stdout, "chromium-log: ") {
		t.Errorf("Chromium complains about its sandbox: %s", r)
	}
	if _, err := os.Stat(filepath.Join(home, ".local", "share", "sbx", "homes", "browser", ".config", "chromium")); err != nil {
		t.Errorf("Chromium's profile was not kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, ".config", "chromium")); err == nil {
		t.Errorf("Chromium wrote its profile into the real home")
	}
}

// Untrusted builds in the build profile. These are cheap and run in
// `make test`.

// tomlModule is a real Go project, fetched by scripts/setup-host.sh since
// the build profile has no network.
const tomlModule = "/var/cache/sbx-test/gomod/github.com/!burnt!sushi/toml@v1.6.0"

// goTool is the go command: on the PATH, else where the set-up puts it.
func goTool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if p := "/usr/local/go/bin/go"; fileExists(p) {
		return p
	}
	t.Fatal("no go command on the PATH or in /usr/local/go/bin")
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// sbxAt runs sbx in dir with env on top of the test's environment.
func sbxAt(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	return invocation{dir: dir, env: append(os.Environ(), env...), limit: 5 * time.Minute}.run(t, args...)
}

// hashes returns the SHA-256 of every file in dir.
func hashes(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 1<<20 {
			t.Errorf("%s is %d bytes: not a Go program", e.Name(), len(b))
		}
		sum := sha256.Sum256(b)
		out[e.Name()] = hex.EncodeToString(sum[:])
	}
	return out
}

func TestBuildOfARealGoProjectInTheBuildProfileIsByteIdenticalToTheHostBuild(t *testing.T) {
	unprivileged(t)
	if !fileExists(tomlModule) {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing: scripts/setup-host.sh fetches it", tomlModule)
		}
		t.Skipf("%s is missing: run make setup", tomlModule)
	}
	work := t.TempDir()
	src := filepath.Join(work, "toml")
	if out, err := exec.Command("cp", "-r", tomlModule, src).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	if out, err := exec.Command("chmod", "-R", "u+w", src).CombinedOutput(); err != nil {
		t.Fatalf("chmod: %v %s", err, out)
	}
	goBin := goTool(t)
	// Reproducible: no cgo, no paths, no VCS stamp, no toolchain switch,
	// nothing fetched; each build gets an empty build cache of its own.
	env := []string{"CGO_ENABLED=0", "GOTOOLCHAIN=local", "GOPROXY=off", "GOFLAGS=-mod=mod", "GOWORK=off", "SOURCE_DATE_EPOCH=1700000000"}
	build := []string{goBin, "build", "-trimpath", "-buildvcs=false", "-o", "out/", "./cmd/..."}

	host := exec.Command(build[0], build[1:]...)
	host.Dir = src
	host.Env = append(append(os.Environ(), env...), "GOCACHE="+filepath.Join(work, "gocache"), "HOME="+work, "GOPATH="+filepath.Join(work, "gopath"))
	if out, err := host.CombinedOutput(); err != nil {
		t.Fatalf("host build: %v\n%s", err, out)
	}
	want := hashes(t, filepath.Join(src, "out"))
	if err := os.RemoveAll(filepath.Join(src, "out")); err != nil {
		t.Fatal(err)
	}

	args := []string{"run", "--profile", "build"}
	for _, e := range env {
		args = append(args, "--setenv", e)
	}
	r := sbxAt(t, src, nil, append(append(args, "--"), build...)...)
	if r.code != 0 {
		t.Fatalf("build in the build profile: %s", r)
	}
	got := hashes(t, filepath.Join(src, "out"))
	if len(want) < 3 || len(got) != len(want) {
		t.Fatalf("built %v in the sandbox, %v on the host", got, want)
	}
	for name, h := range want {
		if got[name] != h {
			t.Errorf("%s: sha256 %s in the sandbox, %s on the host", name, got[name], h)
		}
	}
}

func TestBuildStepCannotWriteOutsideItsWorkingDirectory(t *testing.T) {
	base := t.TempDir()
	work, sibling, home := filepath.Join(base, "work"), filepath.Join(base, "sibling"), filepath.Join(base, "home")
	for _, d := range []string{work, sibling, home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	targets := []string{filepath.Join(base, "escaped"), filepath.Join(sibling, "escaped"), filepath.Join(home, "escaped"), "/var/tmp/sbx-build-escaped"}
	os.Remove("/var/tmp/sbx-build-escaped")
	r := sbxAt(t, work, []string{"HOME=" + home}, "run", "--profile", "build", "--", "sh", "-c",
		`echo built > out.txt
		for f in ../escaped "$0" "$HOME/escaped" /var/tmp/sbx-build-escaped /etc/sbx-build-escaped /usr/sbx-build-escaped; do
			(echo pwned > "$f") 2>/dev/null && echo "wrote $f inside"
		done; true`, filepath.Join(sibling, "escaped"))
	if r.code != 0 {
		t.Fatalf("build step: %s", r)
	}
	if b, err := os.ReadFile(filepath.Join(work, "out.txt")); err != nil || string(b) != "built\n" {
		t.Fatalf("the build could not write its working directory: %q %v", b, err)
	}
	for _, f := range append(targets, "/etc/sbx-build-escaped", "/usr/sbx-build-escaped") {
		if fileExists(f) {
			os.Remove(f)
			t.Errorf("the build step wrote %s on the host\n%s", f, r)
		}
	}
}

func TestBuildStepCannotReadTheUsersSSHKeys(t *testing.T) {
	home := t.TempDir()
	project := filepath.Join(home, "src", "project")
	if err := os.MkdirAll(project, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519"), []byte("PRIVATE KEY of sbx's test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The project sits inside the home, as a checkout usually does.
	r := sbxAt(t, project, []string{"HOME=" + home}, "run", "--profile", "build", "--", "sh", "-c",
		`cat ~/.ssh/id_ed25519 ../../.ssh/id_ed25519 "$0" 2>&1; ls -a ~ ../..`, filepath.Join(home, ".ssh", "id_ed25519"))
	if strings.Contains(r.stdout, "PRIVATE KEY") || strings.Contains(r.stdout, "\n.ssh\n") || !strings.Contains(r.stdout, "No such file") {
		t.Fatalf("the build step read the user's ssh key: %s", r)
	}
}

func TestBuildStepCannotOpenANetworkConnection(t *testing.T) {
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	targets := []string{"127.0.0.1"}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() {
				targets = append(targets, ipn.IP.String())
				break
			}
		}
	}
	script := `for h in ` + strings.Join(targets, " ") + `; do
		python3 -c 'import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3); print("connected", sys.argv[1])' $h ` + fmt.Sprint(port) + ` 2>/dev/null
	done
	python3 -c 'import socket; print("resolved", socket.gethostbyname("proxy.golang.org"))' 2>/dev/null; true`
	r := sbxAt(t, t.TempDir(), nil, "run", "--profile", "build", "--", "sh", "-c", script)
	if r.code != 0 || strings.Contains(r.stdout, "connected") || strings.Contains(r.stdout, "resolved") || accepted.Load() != 0 {
		t.Fatalf("the build step reached the network (%d connections accepted): %s", accepted.Load(), r)
	}
	// The same step with the host's network does connect: the attack is real.
	r = sbxAt(t, t.TempDir(), nil, "run", "--profile", "build", "--net", "host", "--", "sh", "-c", script)
	if !strings.Contains(r.stdout, "connected 127.0.0.1") {
		t.Fatalf("the step cannot connect even with --net host, so it proves nothing: %s", r)
	}
}

func TestBuildCacheFlagKeepsGoCachesBetweenRunsApartFromTheHosts(t *testing.T) {
	home := t.TempDir()
	env := []string{"HOME=" + home, "XDG_CACHE_HOME="}
	r := sbxAt(t, t.TempDir(), env, "run", "--profile", "build", "--cache", "go", "--", "sh", "-c",
		`echo kept > ~/.cache/go-build/sbx-marker && echo kept > ~/go/pkg/mod/sbx-marker`)
	if r.code != 0 {
		t.Fatalf("--cache go: %s", r)
	}
	r = sbxAt(t, t.TempDir(), env, "run", "--profile", "build", "--cache", "go", "--", "sh", "-c",
		`cat ~/.cache/go-build/sbx-marker ~/go/pkg/mod/sbx-marker`)
	if r.code != 0 || r.stdout != "kept\nkept\n" {
		t.Fatalf("the go caches were not kept between runs: %s", r)
	}
	if fileExists(filepath.Join(home, ".cache", "go-build", "sbx-marker")) || fileExists(filepath.Join(home, "go", "pkg", "mod", "sbx-marker")) {
		t.Fatalf("the sandbox wrote into the host's own go caches")
	}
	if !fileExists(filepath.Join(home, ".cache", "sbx", "cache", "go", ".cache", "go-build", "sbx-marker")) {
		t.Fatalf("the go build cache is not kept under ~/.cache/sbx/cache/go")
	}
	r = sbxAt(t, t.TempDir(), env, "run", "--profile", "build", "--", "sh", "-c", `cat ~/.cache/go-build/sbx-marker`)
	if r.code == 0 {
		t.Fatalf("without --cache the kept cache is still there: %s", r)
	}
	r = sbxAt(t, t.TempDir(), env, "run", "--profile", "build", "--cache", "gomod", "--", "true")
	if r.code != 125 || !strings.Contains(r.stderr, `unknown cache "gomod"`) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("an unknown cache name: want exit 125 and one line naming it: %s", r)
	}
}

// listenUnix makes a listening unix socket at path that answers each
// connection with its own path, as a stand-in for a desktop service.
func listenUnix(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(path))
			c.Close()
		}
	}()
}

func TestHomeFlagKeepsTheSandboxesHomeInADirectoryAndTmpfsForgetsIt(t *testing.T) {
	home := t.TempDir()
	kept := filepath.Join(t.TempDir(), "kept-home")
	env := []string{"HOME=" + home, "XDG_DATA_HOME=", "DISPLAY=", "XDG_RUNTIME_DIR="}
	r := sbxAt(t, t.TempDir(), env, "run", "--home", kept, "--", "sh", "-c", `echo one > ~/note`)
	if r.code != 0 {
		t.Fatalf("--home: %s", r)
	}
	r = sbxAt(t, t.TempDir(), env, "run", "--home", kept, "--", "sh", "-c", `cat ~/note`)
	if r.code != 0 || r.stdout != "one\n" {
		t.Fatalf("--home did not keep the home between runs: %s", r)
	}
	if st, err := os.Stat(kept); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("the kept home should be made private (0700): %v %v", st.Mode(), err)
	}
	if fileExists(filepath.Join(home, "note")) {
		t.Fatalf("--home wrote into the real home")
	}
	// The browser profile keeps its home unless told to forget it.
	for _, tc := range []struct {
		flags []string
		kept  bool
	}{{nil, true}, {[]string{"--home", "tmpfs"}, false}} {
		args := append(append([]string{"run", "--profile", "browser", "--net", "none"}, tc.flags...), "--", "sh", "-c", `cat ~/b 2>/dev/null; echo b > ~/b`)
		sbxAt(t, t.TempDir(), env, args...)
		r = sbxAt(t, t.TempDir(), env, args...)
		if got := r.stdout == "b\n"; got != tc.kept {
			t.Errorf("browser %v: home kept = %v, want %v: %s", tc.flags, got, tc.kept, r)
		}
	}
}

func TestDesktopSocketsAreSharedOneByOneAndTheSessionBusNotByDefault(t *testing.T) {
	home := t.TempDir()
	// Short: a socket's path has at most 107 bytes, and sbx keeps its own there too.
	run, err := os.MkdirTemp("", "sbxrun")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(run) })
	wayland := filepath.Join(run, "wayland-7")
	pulse := filepath.Join(run, "pulse", "native")
	pipewire := filepath.Join(run, "pipewire-0")
	bus := filepath.Join(run, "bus")
	for _, s := range []string{wayland, pulse, pipewire, bus} {
		listenUnix(t, s)
	}
	if err := os.WriteFile(filepath.Join(run, "keyring-secret"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + home, "XDG_RUNTIME_DIR=" + run, "WAYLAND_DISPLAY=wayland-7",
		"DBUS_SESSION_BUS_ADDRESS=unix:path=" + bus, "DISPLAY=", "XDG_DATA_HOME=", "XDG_CACHE_HOME=", "XDG_CONFIG_HOME="}
	// Each socket is reached by connecting to it, as a client would.
	script := `for s in "$XDG_RUNTIME_DIR/$WAYLAND_DISPLAY" "${PULSE_SERVER#unix:}" "$XDG_RUNTIME_DIR/pipewire-0" "$0"; do
		python3 -c 'import socket,sys; c=socket.socket(socket.AF_UNIX); c.connect(sys.argv[1]); print("reached", c.recv(200).decode())' "$s" 2>/dev/null
	done
	ls "$XDG_RUNTIME_DIR"; echo "bus=${DBUS_SESSION_BUS_ADDRESS:-none}"`
	r := sbxAt(t, t.TempDir(), env, "run", "--profile", "browser", "--net", "none", "--", "sh", "-c", script, bus)
	if r.code != 0 {
		t.Fatalf("browser profile: %s", r)
	}
	for _, want := range []string{"reached " + wayland + "\n", "reached " + pulse + "\n", "reached " + pipewire + "\n", "bus=none\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("want %q: %s", want, r)
		}
	}
	if strings.Contains(r.stdout, "reached "+bus) || strings.Contains(r.stdout, "keyring-secret") {
		t.Fatalf("the browser profile shares the session bus or the rest of $XDG_RUNTIME_DIR: %s", r)
	}
	r = sbxAt(t, t.TempDir(), env, "run", "--profile", "browser", "--net", "none", "--dbus", "--no-wayland", "--no-audio", "--", "sh", "-c", script, bus)
	if !strings.Contains(r.stdout, "reached "+bus+"\n") || strings.Contains(r.stdout, "reached "+wayland) || strings.Contains(r.stdout, "reached "+pulse) {
		t.Fatalf("--dbus --no-wayland --no-audio: %s", r)
	}
}

func TestBuildProfileRefusesToBindTheHomeDirectoryWritable(t *testing.T) {
	unprivileged(t)
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{home, "/"} {
		c := exec.Command(sbxPath(t), "run", "--profile", "build", "--", "true")
		c.Dir = dir
		out, err := c.CombinedOutput()
		if c.ProcessState.ExitCode() != 125 || !strings.Contains(string(out), "home directory") {
			t.Errorf("build profile started in %s: %v\n%s", dir, err, out)
		}
	}
	// From a project directory it runs.
	c := exec.Command(sbxPath(t), "run", "--profile", "build", "--", "true")
	c.Dir = t.TempDir()
	if out, err := c.CombinedOutput(); err != nil {
		t.Errorf("build profile in a project directory: %v\n%s", err, out)
	}
}
