package sandbox

import (
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sbx-sandbox/sbx/spec"
)

func TestStartLimitedGivesTheCommandHardLimitsAndInitKeepsItsOwn(t *testing.T) {
	var before unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_AS, &before); err != nil {
		t.Fatal(err)
	}
	as, nproc := uint64(64<<20), uint64(4096)
	var out strings.Builder
	cmd := exec.Command("/bin/sh", "-c", `echo $(ulimit -v) $(ulimit -Hv) $(ulimit -Hp); ulimit -v unlimited && echo raised`)
	cmd.Stdout, cmd.Stderr = &out, &out
	_, err := startLimited(spec.Limits{AS: &as, NProc: &nproc}, func() (int, error) {
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		return cmd.Process.Pid, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	fields := strings.Fields(out.String())
	if len(fields) < 3 || fields[0] != "65536" || fields[1] != "65536" || fields[2] != "4096" {
		t.Fatalf("command saw limits %q, want 65536 65536 4096", out.String())
	}
	if strings.Contains(out.String(), "raised") {
		t.Fatalf("command raised its address-space limit back: %q", out.String())
	}
	var after unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_AS, &after)
	if after != before {
		t.Fatalf("init's own RLIMIT_AS changed from %+v to %+v", before, after)
	}
}
