package spec

import "testing"

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
