package userns

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rootless-containers/rootlesskit/v3/pkg/parent/idtools"
)

func TestKeepIDPlacesOwnIDAndFillsAroundIt(t *testing.T) {
	got := keepID(1000, 1001, []idtools.SubIDRange{{Start: 100000, Length: 65536}})
	want := []Mapping{
		{Inside: 1000, Outside: 1001, Size: 1},
		{Inside: 0, Outside: 100000, Size: 1000},
		{Inside: 1001, Outside: 101000, Size: 64536},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("keepID = %v, want %v", got, want)
	}
}

func TestKeepIDAsRootInside(t *testing.T) {
	got := keepID(0, 1001, []idtools.SubIDRange{{Start: 100000, Length: 10}, {Start: 500000, Length: 5}})
	want := []Mapping{
		{Inside: 0, Outside: 1001, Size: 1},
		{Inside: 1, Outside: 100000, Size: 10},
		{Inside: 11, Outside: 500000, Size: 5},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("keepID = %v, want %v", got, want)
	}
}

func TestDiagnoseNamesEachBlockingSetting(t *testing.T) {
	for _, c := range []struct{ file, value, mention string }{
		{"kernel/unprivileged_userns_clone", "0", "kernel.unprivileged_userns_clone=0"},
		{"user/max_user_namespaces", "0", "user.max_user_namespaces=0"},
		{"kernel/apparmor_restrict_unprivileged_userns", "1", "kernel.apparmor_restrict_unprivileged_userns=1"},
	} {
		dir := t.TempDir()
		p := filepath.Join(dir, c.file)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c.value+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		err := Diagnose(dir)
		if err == nil || !strings.Contains(err.Error(), c.mention) {
			t.Errorf("Diagnose with %s=%s: %v, want a message naming %s", c.file, c.value, err, c.mention)
		}
	}
	if err := Diagnose(t.TempDir()); err != nil {
		t.Errorf("Diagnose of an empty tree: %v, want nil", err)
	}
}
