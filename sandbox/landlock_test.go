package sandbox

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"

	"github.com/sbx-sandbox/sbx/spec"
)

// landlockChild runs in a re-executed test binary, since a Landlock domain
// cannot be left: it restricts itself as the spec in $SBX_LANDLOCK_SPEC
// says, then tries to write each directory of $SBX_LANDLOCK_TRY.
func landlockChild() {
	var s spec.Spec
	if err := json.Unmarshal([]byte(os.Getenv("SBX_LANDLOCK_SPEC")), &s); err != nil {
		os.Exit(3)
	}
	if err := restrictLandlock(&s); err != nil {
		os.Stderr.WriteString(err.Error())
		os.Exit(4)
	}
	var tries []string
	_ = json.Unmarshal([]byte(os.Getenv("SBX_LANDLOCK_TRY")), &tries)
	res := map[string]bool{}
	for _, d := range tries {
		res[d] = os.WriteFile(filepath.Join(d, "f"), []byte("x"), 0o644) == nil
	}
	_ = json.NewEncoder(os.Stdout).Encode(res)
	os.Exit(0)
}

func TestMain(m *testing.M) {
	if os.Getenv("SBX_LANDLOCK_SPEC") != "" {
		landlockChild()
	}
	os.Exit(m.Run())
}

// Landlock is a second layer: here there are no mounts at all, every
// directory is writable as far as the mount table goes, and Landlock alone
// must refuse the writes the spec does not allow.
func TestLandlockRefusesWritesTheSpecDoesNotAllowWhateverTheMounts(t *testing.T) {
	if v, err := ll.LandlockGetABIVersion(); err != nil || v < 1 {
		t.Skip("this kernel has no Landlock")
	}
	base, err := os.MkdirTemp("/var/tmp", "sbx-landlock-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	rw, ro, other := filepath.Join(base, "rw"), filepath.Join(base, "ro"), filepath.Join(base, "other")
	for _, d := range []string{rw, ro, other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := spec.Spec{Root: spec.Root{Kind: spec.RootRootfs}, Mounts: []spec.Mount{
		{Kind: spec.Bind, Src: "/x", Dst: rw}, {Kind: spec.ROBind, Src: "/y", Dst: ro}}}
	sj, _ := json.Marshal(s)
	tj, _ := json.Marshal([]string{rw, ro, other})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SBX_LANDLOCK_SPEC="+string(sj), "SBX_LANDLOCK_TRY="+string(tj))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v %s", err, out)
	}
	var res map[string]bool
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("child said %q", out)
	}
	if !res[rw] || res[ro] || res[other] {
		t.Fatalf("writes allowed: read-write bind %v (want true), read-only bind %v, path outside the spec %v (want false)", res[rw], res[ro], res[other])
	}
}
