package spec

import "testing"

func TestCapNumberAcceptsEverySpellingAndKnowsTheKernelsNumbers(t *testing.T) {
	for _, name := range []string{"CAP_NET_RAW", "cap_net_raw", "NET_RAW", "net_raw"} {
		if n, canon, ok := CapNumber(name); !ok || n != 13 || canon != "CAP_NET_RAW" {
			t.Errorf("CapNumber(%q) = %d, %q, %v; want 13, CAP_NET_RAW", name, n, canon, ok)
		}
	}
	if n, _, ok := CapNumber("CAP_CHECKPOINT_RESTORE"); !ok || n != 40 {
		t.Errorf("CAP_CHECKPOINT_RESTORE = %d, want 40", n)
	}
	if _, _, ok := CapNumber("CAP_NO_SUCH"); ok {
		t.Error("an unknown name was accepted")
	}
	if CapName(21) != "CAP_SYS_ADMIN" || CapName(99) != "" {
		t.Errorf("CapName(21) = %q, CapName(99) = %q", CapName(21), CapName(99))
	}
}
