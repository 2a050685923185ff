package sandbox

import (
	"testing"

	"github.com/sbx-sandbox/sbx/spec"
)

func TestCommandRlimitsGoThroughTheRlimitStep(t *testing.T) {
	as, nproc := uint64(64<<20), uint64(4096)
	path, argv := limitedArgv(spec.Limits{AS: &as, NProc: &nproc}, "/bin/sh", []string{"sh", "-c", "x"})
	want := []string{rlimitExecArg0, "AS=67108864", "NPROC=4096", "--", "/bin/sh", "sh", "-c", "x"}
	if path != "/proc/self/fd/255" || len(argv) != len(want) {
		t.Fatalf("got %s %q", path, argv)
	}
	for i := range want {
		if argv[i] != want[i] {
			t.Fatalf("got %q, want %q", argv, want)
		}
	}
	if p, a := limitedArgv(spec.Limits{}, "/bin/sh", []string{"sh"}); p != "/bin/sh" || len(a) != 1 {
		t.Fatalf("no command rlimits: got %s %q", p, a)
	}
}
