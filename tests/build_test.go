package tests

import (
	"debug/elf"
	"testing"
)

func TestSbxIsOneStaticallyLinkedBinary(t *testing.T) {
	f, err := elf.Open(sbxPath(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Fatalf("sbx has a %v program header: it is dynamically linked", p.Type)
		}
	}
}
