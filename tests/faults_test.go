package tests

// Faults: sbx killed with SIGKILL at each stage of start-up, and disks
// that fill up. Stages are reached reliably through the test hook
// SBX_TEST_PAUSE (sandbox/testhook.go), which makes sbx stop there.

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// descendants are the processes below pid, as the host sees them.
func descendants(pid int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) > 1 {
			pp, _ := strconv.Atoi(f[1])
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for _, c := range children[p] {
			out = append(out, c)
			walk(c)
		}
	}
	walk(pid)
	return out
}

// alive reports the pids that still exist and are not zombies.
func alive(pids []int) []int {
	var out []int
	for _, p := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		if st := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]); len(st) > 0 && st[0] != "Z" {
			out = append(out, p)
		}
	}
	return out
}

func TestSigkillAtEachStageOfStartUpLeavesNothingBehind(t *testing.T) {
	port := freePort(t)
	p := strconv.Itoa(port)
	for _, c := range []struct {
		stage string
		flags []string
	}{
		{"userns", []string{"--map-users", "auto", "--memory", "64M"}},
		{"mounts", []string{"--memory", "64M", "--overlay"}},
		{"mounts", []string{"--overlay", "--overlay-driver", "fuse"}},
		{"network", []string{"--net", "slirp", "-p", p + ":80", "--memory", "64M"}},
		{"command", []string{"--net", "slirp", "-p", p + ":80", "--memory", "64M", "--overlay"}},
	} {
		t.Run(c.stage+"/"+strings.Join(c.flags, " "), func(t *testing.T) {
			name := uniqueName("fault")
			marker := "1004." + strconv.Itoa(os.Getpid())
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			args := append(append([]string{"run", "--name", name}, c.flags...), "--", "sleep", marker)
			cmd := sbxCommand(t, ctx, args...)
			cmd.Env = append(os.Environ(), "SBX_TEST_PAUSE="+c.stage)
			stderr, _ := cmd.StderrPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			reached := make(chan string, 1)
			go func() {
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					if strings.Contains(sc.Text(), "test pause at "+c.stage) {
						reached <- sc.Text()
					}
				}
				io.Copy(io.Discard, stderr)
			}()
			if c.stage == "command" {
				if !waitFor(10*time.Second, func() bool { return len(pgrep("sleep "+marker)) == 1 }) {
					t.Fatal("the command did not start")
				}
			} else {
				select {
				case <-reached:
				case <-time.After(20 * time.Second):
					t.Fatalf("sbx did not reach the %s stage", c.stage)
				}
			}
			inside := descendants(cmd.Process.Pid)
			if len(inside) == 0 {
				t.Fatal("sbx has no sandbox process to kill")
			}
			var entry *psEntry
			if c.stage != "userns" {
				entry = listed(t, name)
			}
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			if !waitFor(time.Second, func() bool { return len(alive(inside)) == 0 }) {
				t.Fatalf("sandbox processes %v outlived sbx by more than a second", alive(inside))
			}
			// Nothing trips the next run: the same name, the same port,
			// the same kind of sandbox start and end cleanly.
			r := sbx(t, append(append([]string{"run", "--name", name}, c.flags...), "--", "true")...)
			if r.code != 0 {
				t.Fatalf("the next run after SIGKILL at %s: %s", c.stage, r)
			}
			if listed(t, name) != nil {
				t.Fatalf("sbx ps still lists %s", name)
			}
			if entry != nil {
				for _, d := range entry.Cgroup {
					if _, err := os.Stat(d); !os.IsNotExist(err) {
						t.Errorf("cgroup %s of the killed sandbox is still there", d)
					}
				}
				if entry.StateDir != "" {
					if _, err := os.Stat(entry.StateDir); !os.IsNotExist(err) {
						t.Errorf("state directory %s of the killed sandbox is still there", entry.StateDir)
					}
				}
			}
			if l, err := net.Listen("tcp", "127.0.0.1:"+p); err != nil {
				t.Errorf("port %s still taken after the sandbox was killed: %v", p, err)
			} else {
				l.Close()
			}
		})
	}
}
