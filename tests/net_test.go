package tests

// The user-mode network (--net slirp) seen from inside a sandbox: what it
// can reach, what it cannot, and how fast a refusal comes. Every server
// here is made by the test on this machine's loopback; refused destinations
// never leave the stack.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sbx-sandbox/sbx/internal/testdns"
)

// httpServer serves body on a fresh loopback port and returns the port.
func httpServer(t *testing.T, body string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, body) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// freePort returns a loopback TCP port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// curl fetches url inside and prints the body, or curl's exit status:
// 7 is "could not connect" (refused at once), 28 a timeout.
func curl(url string) string {
	return fmt.Sprintf(`curl -sS --max-time 20 %s; echo " curl=$?"`, url)
}

func TestSlirpHostLoopbackIsUnreachableByDefault(t *testing.T) {
	port := httpServer(t, "host-secret")
	r := run(t, []string{"--net", "slirp"}, curl(fmt.Sprintf("http://10.0.2.2:%d/", port)))
	if strings.Contains(r.stdout, "host-secret") || !strings.Contains(r.stdout, "curl=7") {
		t.Fatalf("the host's loopback server answered, or the refusal was not immediate: %s", r)
	}
	if !strings.Contains(r.stderr, fmt.Sprintf("refused tcp 10.0.2.2:%d", port)) {
		t.Errorf("no refusal reported on stderr: %s", r)
	}
}

func TestSlirpAllowHostLoopbackReachesHostServer(t *testing.T) {
	port := httpServer(t, "hello-from-host")
	out := mustSh(t, []string{"--net", "slirp", "--allow-host-loopback"}, curl(fmt.Sprintf("http://10.0.2.2:%d/", port)))
	if !strings.Contains(out, "hello-from-host curl=0") {
		t.Fatalf("through --allow-host-loopback: %q", out)
	}
}

func TestSlirpSandboxHasTheDocumentedAddressesAndResolver(t *testing.T) {
	out := mustSh(t, []string{"--net", "slirp"}, "ip -4 addr show tap0; ip route; cat /etc/resolv.conf; cat /sys/class/net/tap0/mtu 2>/dev/null || ip link show tap0")
	for _, want := range []string{"inet 10.0.2.100/24", "default via 10.0.2.2 dev tap0", "nameserver 10.0.2.3", "65520"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}

func TestSlirpAllowRuleLetsOneDestinationThroughAndRefusesAnotherAtOnce(t *testing.T) {
	open, closed := httpServer(t, "open-server"), httpServer(t, "closed-server")
	logFile := filepath.Join(t.TempDir(), "net.log")
	r := run(t, []string{"--net", "slirp", "--allow-host-loopback", "--allow", fmt.Sprintf("tcp:10.0.2.2:%d", open), "--net-log", logFile},
		curl(fmt.Sprintf("http://10.0.2.2:%d/", open))+"; "+curl(fmt.Sprintf("http://10.0.2.2:%d/", closed))+"; "+curl(fmt.Sprintf("http://10.0.2.2:%d/", closed)))
	if r.code != 0 || !strings.Contains(r.stdout, "open-server curl=0") {
		t.Fatalf("the allowed destination: %s", r)
	}
	// 7 is ECONNREFUSED: the stack answered with a reset, no timeout (28).
	if strings.Contains(r.stdout, "closed-server") || strings.Count(r.stdout, "curl=7") != 2 {
		t.Fatalf("the other destination was not refused at once: %s", r)
	}
	if n := strings.Count(r.stderr, "refused tcp"); n != 1 {
		t.Errorf("want one stderr line for the refused destination, got %d: %s", n, r.stderr)
	}
	log, _ := os.ReadFile(logFile)
	if !strings.Contains(string(log), fmt.Sprintf("allow tcp 10.0.2.2:%d", open)) || strings.Count(string(log), fmt.Sprintf("refuse tcp 10.0.2.2:%d", closed)) != 2 {
		t.Errorf("--net-log must hold every decision:\n%s", log)
	}
}

func TestSlirpDenyRuleWinsOverAllowRule(t *testing.T) {
	port := httpServer(t, "denied-server")
	r := run(t, []string{"--net", "slirp", "--allow-host-loopback", "--allow", "10.0.2.0/24", "--deny", fmt.Sprintf("10.0.2.2:%d", port)},
		curl(fmt.Sprintf("http://10.0.2.2:%d/", port)))
	if !strings.Contains(r.stdout, "curl=7") {
		t.Fatalf("deny did not win: %s", r)
	}
}

func TestSlirpPublishedPortReachesServerInsideAndClosesWithSandbox(t *testing.T) {
	hostPort := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := sbxCommand(t, ctx, "run", "--net", "slirp", "-p", fmt.Sprintf("%d:8080", hostPort), "--", "/bin/sh", "-c",
		"mkdir /tmp/www && echo served-from-inside >/tmp/www/index.html && exec busybox httpd -f -p 8080 -h /tmp/www")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", hostPort)
	var body string
	ok := waitFor(20*time.Second, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		return true
	})
	cmd.Process.Kill()
	cmd.Wait()
	if !ok || !strings.Contains(body, "served-from-inside") {
		t.Fatalf("through -p %d:8080: %q", hostPort, body)
	}
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", hostPort)); err == nil {
		c.Close()
		t.Fatal("the host port still listens after the sandbox ended")
	}
}

func TestSlirpBusyPublishedPortIsAnErrorAtStart(t *testing.T) {
	port := httpServer(t, "already-here")
	r := sbx(t, "run", "--net", "slirp", "-p", fmt.Sprintf("%d:80", port), "--", "/bin/echo", "command-ran")
	if r.code != 125 || strings.Contains(r.stdout, "command-ran") || !strings.Contains(r.stderr, "busy") {
		t.Fatalf("want exit 125 naming the busy port before the command runs: %s", r)
	}
	if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n != 0 {
		t.Errorf("want one line on stderr: %s", r)
	}
}

func TestSlirpNetworkFlagsNeedSlirp(t *testing.T) {
	r := sbx(t, "run", "-p", "8080:80", "--", "/bin/true")
	if r.code != 125 || !strings.Contains(r.stderr, "--net slirp") {
		t.Fatalf("-p without --net slirp: %s", r)
	}
}

func TestSlirpDNSResolvesThroughTheSandboxDNSServer(t *testing.T) {
	up := testdns.Server(t, map[string]string{"db.internal.test": "192.0.2.7"})
	out := mustSh(t, []string{"--net", "slirp", "--dns", up}, "getent hosts db.internal.test; getent hosts missing.test; echo missing=$?")
	if !strings.Contains(out, "192.0.2.7") || !strings.Contains(out, "db.internal.test") || !strings.Contains(out, "missing=2") {
		t.Fatalf("resolution inside through 10.0.2.3: %q", out)
	}
}

func TestSlirpDomainRuleOpensOnlyWhatItsDNSAnswersReturned(t *testing.T) {
	port := httpServer(t, "api-server")
	up := testdns.Server(t, map[string]string{"api.allowed.test": "10.0.2.2", "other.test": "10.0.2.2"})
	flags := []string{"--net", "slirp", "--dns", up, "--allow-host-loopback", "--allow", fmt.Sprintf("*.allowed.test:%d", port)}
	r := run(t, flags, strings.Join([]string{
		curl(fmt.Sprintf("http://10.0.2.2:%d/", port)), // before any answer named the address
		"getent hosts other.test; echo other=$?",       // a name no rule allows is not resolved
		curl(fmt.Sprintf("http://api.allowed.test:%d/", port)),
	}, "; "))
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[0], "curl=7") || lines[1] != "other=2" || lines[2] != "api-server curl=0" {
		t.Fatalf("domain rule: %s", r)
	}
	if !strings.Contains(r.stderr, "refused dns other.test") {
		t.Errorf("the refused name was not reported: %s", r.stderr)
	}
}

// slirp4netnsInstalled skips where slirp4netns is missing (the set-up
// script installs it).
func slirp4netnsInstalled(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("slirp4netns"); err != nil {
		t.Skip("slirp4netns is not installed")
	}
}

func TestSlirp4netnsReachesHostLoopbackOnlyWhenAllowed(t *testing.T) {
	slirp4netnsInstalled(t)
	port := httpServer(t, "hello-through-slirp4netns")
	url := fmt.Sprintf("http://10.0.2.2:%d/", port)
	if out := mustSh(t, []string{"--net", "slirp4netns"}, curl(url)); strings.Contains(out, "hello-through") {
		t.Fatalf("the host's loopback was reachable without --allow-host-loopback: %q", out)
	}
	if out := mustSh(t, []string{"--net", "slirp4netns", "--allow-host-loopback"}, curl(url)); !strings.Contains(out, "hello-through-slirp4netns curl=0") {
		t.Fatalf("with --allow-host-loopback: %q", out)
	}
}

func TestSlirp4netnsRefusesRulesItCannotApply(t *testing.T) {
	slirp4netnsInstalled(t)
	r := sbx(t, "run", "--net", "slirp4netns", "--allow", "10.0.0.0/8", "--", "/bin/echo", "command-ran")
	if r.code != 125 || strings.Contains(r.stdout, "command-ran") || !strings.Contains(r.stderr, "--net slirp") {
		t.Fatalf("egress rules with slirp4netns must stop sbx, not be ignored: %s", r)
	}
}

func TestSlirp4netnsEndsWhenSbxIsKilled(t *testing.T) {
	slirp4netnsInstalled(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := sbxCommand(t, ctx, "run", "--net", "slirp4netns", "--", "/bin/sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var helper int
	waitFor(10*time.Second, func() bool { helper = childNamed(cmd.Process.Pid, "slirp4netns"); return helper != 0 })
	cmd.Process.Kill()
	cmd.Wait()
	if helper == 0 {
		t.Fatal("no slirp4netns child of sbx seen")
	}
	if !waitFor(10*time.Second, func() bool { return syscall.Kill(helper, 0) != nil }) {
		t.Fatalf("slirp4netns (pid %d) outlived the killed sbx", helper)
	}
}

// childNamed returns the pid of a child of parent whose command is name, or 0.
func childNamed(parent int, name string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || !strings.HasSuffix(s[:i], "("+name) {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(parent) {
			pid, _ := strconv.Atoi(e.Name())
			return pid
		}
	}
	return 0
}
