package tests

// Load: many sandboxes at once on a small machine, each with its own
// result, and nothing left over afterwards.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFiftySandboxesAtOnceEachExitWithTheirOwnStatus(t *testing.T) {
	parents, cgParent := privateCgroupParent(t)
	root := privateRuntimeDir(t)
	const n = 50
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// Every tenth one with a cgroup, every fifth in an overlay.
			flags := []string{"--name", fmt.Sprintf("load-%d-%d", os.Getpid(), i)}
			if i%10 == 0 {
				flags = append(flags, "--memory", "64M", "--cgroup-parent", cgParent)
			}
			if i%5 == 1 {
				flags = append(flags, "--overlay")
			}
			results[i] = run(t, flags, fmt.Sprintf("echo out-%d; echo err-%d >&2; sleep 0.2; exit %d", i, i, i+1))
		}(i)
	}
	wg.Wait()
	for i, r := range results {
		if r.code != i+1 || strings.TrimSpace(r.stdout) != fmt.Sprintf("out-%d", i) || strings.TrimSpace(r.stderr) != fmt.Sprintf("err-%d", i) {
			t.Errorf("sandbox %d: want exit %d with its own output: %s", i, i+1, r)
		}
	}
	if e := stateEntries(root); len(e) > 0 {
		t.Errorf("state left behind: %v", e)
	}
	for _, d := range parents {
		if left := sandboxCgroups([]string{d}); len(left) > 0 {
			t.Errorf("cgroups left behind: %v", left)
		}
	}
}

func TestTwentySlirpSandboxesAtOnceAllReachAHostLoopbackServer(t *testing.T) {
	root := privateRuntimeDir(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				l, _ := bufio.NewReader(c).ReadString('\n')
				io.WriteString(c, "pong "+l)
			}()
		}
	}()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	const n, conns = 20, 10
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			script := fmt.Sprintf(`echo ready; read go; i=0; while [ $i -lt %d ]; do echo %d-$i | busybox nc 10.0.2.2 %s; i=$((i+1)); done; echo done; read end`, conns, i, port)
			c, err := startPiped(t, []string{"run", "--net", "slirp", "--allow-host-loopback", "--", "/bin/sh", "-c", script})
			if err != nil {
				errs <- err
				return
			}
			defer c.stop()
			if err := c.waitLine("ready"); err != nil {
				errs <- fmt.Errorf("sandbox %d: %v", i, err)
				return
			}
			before := fdCount(c.cmd.Process.Pid)
			c.send("go")
			if err := c.waitLine("done"); err != nil {
				errs <- fmt.Errorf("sandbox %d: %v", i, err)
				return
			}
			for j := 0; j < conns; j++ {
				if !strings.Contains(c.output(), fmt.Sprintf("pong %d-%d\n", i, j)) {
					errs <- fmt.Errorf("sandbox %d: connection %d did not reach the server:\n%s", i, j, c.output())
					return
				}
			}
			// The supervisor holds no more descriptors than before the
			// connections: its user-mode network closed every one.
			if !waitFor(5*time.Second, func() bool { return fdCount(c.cmd.Process.Pid) <= before }) {
				errs <- fmt.Errorf("sandbox %d: sbx holds %d descriptors after %d connections, %d before", i, fdCount(c.cmd.Process.Pid), conns, before)
				return
			}
			c.send("end")
			if err := c.cmd.Wait(); err != nil {
				errs <- fmt.Errorf("sandbox %d: %v\n%s", i, err, c.output())
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if e := stateEntries(root); len(e) > 0 {
		t.Errorf("state left behind: %v", e)
	}
}

func fdCount(pid int) int {
	ents, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	return len(ents)
}

// cmdPipe is a running sbx with its stdin and (merged) output at hand.
type cmdPipe struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	mu     sync.Mutex
	out    bytes.Buffer
	lines  chan string
	cancel context.CancelFunc
}

func startPiped(t *testing.T, args []string) (*cmdPipe, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := sbxCommand(t, ctx, args...)
	c := &cmdPipe{cmd: cmd, lines: make(chan string, 64), cancel: cancel}
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.mu.Lock()
			c.out.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
			select {
			case c.lines <- sc.Text():
			default:
			}
		}
		close(c.lines)
	}()
	return c, nil
}

func (c *cmdPipe) waitLine(want string) error {
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				return fmt.Errorf("ended before %q:\n%s", want, c.output())
			}
			if l == want {
				return nil
			}
		case <-timeout:
			return fmt.Errorf("no %q after 60 s:\n%s", want, c.output())
		}
	}
}

func (c *cmdPipe) send(line string) { io.WriteString(c.stdin, line+"\n") }

func (c *cmdPipe) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

func (c *cmdPipe) stop() {
	c.cmd.Process.Kill()
	c.cmd.Wait()
	c.cancel()
}
