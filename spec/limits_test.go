package spec

import (
	"strings"
	"testing"
)

func TestParseSizeTakesDockerStyleSuffixes(t *testing.T) {
	for in, want := range map[string]int64{"5M": 5 << 20, "5m": 5 << 20, "512k": 512 << 10, "1.5g": 3 << 29, "100": 100, "2gb": 2 << 30, "-1": -1} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "M", "-5M", "5x", "1e400"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}

func TestFormatSizeRoundTripsWholeUnits(t *testing.T) {
	for n, want := range map[int64]string{5 << 20: "5M", 3 << 29: "1.5G", 1000: "1000", 300 << 10: "300K"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %s, want %s", n, got, want)
		}
	}
}

// FuzzParseSize: any accepted size is positive (or -1, unlimited), and a
// size sbx prints in whole units reads back the same.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"5M", "1.5g", "-1", "100", "2gb", "1e3k", "0x10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		if n <= 0 && n != -1 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
		if n > 0 {
			out := FormatSize(n)
			if back, err := ParseSize(out); err != nil || (!strings.Contains(out, ".") && back != n) {
				t.Fatalf("ParseSize(%q) = %d, printed %q, read back %d (%v)", s, n, out, back, err)
			}
		}
	})
}
