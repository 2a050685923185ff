// Package subids runs the store's writes of a store that keeps file owners
// inside a user namespace mapping the caller's own id to 0 and the caller's
// subordinate ids to 1 and up (podman's rootless layout), so a layer's files
// get their owners from the archive and only the namespace can remove them.
//
// The helper is sbx itself, re-executed under helperArg0; main dispatches to
// Helper before anything else.
package subids

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/sbx-sandbox/sbx/images/store"
	"github.com/sbx-sandbox/sbx/images/unpack"
	"github.com/sbx-sandbox/sbx/userns"
)

const helperArg0 = "sbx-subids-helper"

// IsHelper reports whether this process is the store helper.
func IsHelper() bool { return len(os.Args) == 4 && os.Args[0] == helperArg0 }

// Available says whether the caller can map subordinate ids (a range in
// /etc/subuid and /etc/subgid, and newuidmap/newgidmap); the error says what
// is missing.
func Available() error {
	_, err := userns.Auto(0, 0)
	return err
}

// PutLayer unpacks the layer through the helper, keeping file owners.
// Notes of the unpacker go to note.
func PutLayer(s *store.Store, diffID string, r io.Reader, note func(string)) error {
	return run(r, note, "put", s.Root(), diffID)
}

// RemoveAll removes a tree the helper wrote.
func RemoveAll(path string) error { return run(nil, nil, "rm", "-", path) }

// run starts the helper in a new user namespace, maps it, and waits.
func run(stdin io.Reader, note func(string), op, root, arg string) error {
	maps, err := userns.Auto(0, 0)
	if err != nil {
		return err
	}
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer syncW.Close()
	cmd := &exec.Cmd{Path: "/proc/self/exe", Args: []string{helperArg0, op, root, arg}}
	cmd.Stdin = stdin
	cmd.ExtraFiles = []*os.File{syncR}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		syncR.Close()
		return err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWUSER,
		// The helper runs as uid 0 of its namespace only once the maps are
		// written, after exec: ambient capabilities carry it there.
		AmbientCaps: allCaps(),
		Pdeathsig:   syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		syncR.Close()
		return fmt.Errorf("image store helper: %w", err)
	}
	syncR.Close()
	if err := maps.Install(cmd.Process.Pid); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return err
	}
	syncW.Write([]byte{1})
	syncW.Close()
	var last string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		if n, ok := strings.CutPrefix(line, "note: "); ok {
			if note != nil {
				note(n)
			}
			continue
		}
		last = line
	}
	if err := cmd.Wait(); err != nil {
		if last != "" {
			return errors.New(last)
		}
		return fmt.Errorf("image store helper: %w", err)
	}
	return nil
}

// Helper is the helper's main: it waits to be mapped, then does one job.
func Helper() int {
	sync := os.NewFile(3, "sync")
	b := make([]byte, 1)
	if n, _ := sync.Read(b); n != 1 {
		fmt.Fprintln(os.Stderr, "image store helper: never mapped")
		return 1
	}
	sync.Close()
	op, root, arg := os.Args[1], os.Args[2], os.Args[3]
	var err error
	switch op {
	case "put":
		var s *store.Store
		if s, err = store.Open(root); err == nil {
			err = s.PutLayer(arg, os.Stdin, unpack.Options{Chown: true, Note: func(n string) {
				fmt.Fprintf(os.Stderr, "note: %s\n", n)
			}})
		}
	case "rm":
		err = unpack.RemoveAll(arg)
	default:
		err = fmt.Errorf("unknown operation %q", op)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func allCaps() []uintptr {
	last := 40
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			last = n
		}
	}
	caps := make([]uintptr, 0, last+1)
	for c := 0; c <= last; c++ {
		caps = append(caps, uintptr(c))
	}
	return caps
}
