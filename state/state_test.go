package state

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestEntryIsFoundByIDNameAndPrefixAndGoneAfterRemove(t *testing.T) {
	s, err := OpenAt(filepath.Join(t.TempDir(), "sbx"))
	if err != nil {
		t.Fatal(err)
	}
	e := &Entry{Name: "web", Command: []string{"sleep", "1"}, Pid: os.Getpid()}
	if err := s.Create(e); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{e.ID, "web", e.ID[:4]} {
		got, err := s.Find(ref)
		if err != nil || got.ID != e.ID {
			t.Fatalf("Find(%q) = %v, %v", ref, got, err)
		}
	}
	if err := s.Create(&Entry{Name: "web"}); err == nil || !strings.Contains(err.Error(), "already has that name") {
		t.Fatalf("second sandbox named web: %v", err)
	}
	s.Remove(e)
	if es, _ := s.List(); len(es) != 0 {
		t.Fatalf("entry still listed after Remove: %+v", es[0])
	}
	if err := s.Create(&Entry{Name: "web"}); err != nil {
		t.Fatalf("name not free after Remove: %v", err)
	}
}

func TestEntryOfDeadOrReusedSupervisorIsCleaned(t *testing.T) {
	s, err := OpenAt(filepath.Join(t.TempDir(), "sbx"))
	if err != nil {
		t.Fatal(err)
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	for _, fake := range []func(e *Entry){
		func(e *Entry) { e.Supervisor = dead.Process.Pid },
		func(e *Entry) { e.SupervisorStart++ }, // our pid, but "another" process
	} {
		e := &Entry{Name: "x"}
		if err := s.Create(e); err != nil {
			t.Fatal(err)
		}
		fake(e)
		if err := e.Save(); err != nil {
			t.Fatal(err)
		}
		if es, _ := s.List(); len(es) != 0 {
			t.Fatalf("stale entry listed: %+v", es[0])
		}
		if _, err := os.Stat(e.Dir()); !os.IsNotExist(err) {
			t.Fatalf("stale directory %s left: %v", e.Dir(), err)
		}
		s.Remove(e) // a stale entry's name file is freed by Clean after a grace time
	}
}

func TestStateDirectoryOpenToOthersIsRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sbx")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	if _, err := OpenAt(dir); err == nil {
		t.Fatal("a 0755 state directory was accepted")
	}
}

func TestStartTimeTellsProcessesApart(t *testing.T) {
	a, err := StartTime(os.Getpid())
	if err != nil || a == 0 {
		t.Fatalf("StartTime(self) = %d, %v", a, err)
	}
	if _, err := StartTime(1 << 30); err == nil {
		t.Fatal("StartTime of a pid that cannot exist succeeded")
	}
}

func TestEntryOfAnotherPIDNamespaceIsNeitherListedNorCleaned(t *testing.T) {
	s, err := OpenAt(filepath.Join(t.TempDir(), "sbx"))
	if err != nil {
		t.Fatal(err)
	}
	e := &Entry{Name: "outside"}
	if err := s.Create(e); err != nil {
		t.Fatal(err)
	}
	// As a sandbox with the state directory bound in sees it: the pid
	// means another process there, or none.
	e.PidNS, e.Supervisor = "pid:[1]", 1<<30
	if err := e.Save(); err != nil {
		t.Fatal(err)
	}
	if es, _ := s.List(); len(es) != 0 {
		t.Fatalf("entry of another pid namespace listed: %+v", es[0])
	}
	if _, err := os.Stat(e.Dir()); err != nil {
		t.Fatalf("entry of another pid namespace was cleaned: %v", err)
	}
}
