package sandbox

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestNotInPatternsMatchExactlyTheValuesOutsideTheSet(t *testing.T) {
	allowed := []uint64{0x0, 0x8, 0x20000, 0x20008, 0xffffffff}
	pats := notInPatterns(allowed)
	matches := func(x uint64) bool {
		for _, p := range pats {
			if x&p.mask == p.value {
				return true
			}
		}
		return false
	}
	try := []uint64{1, 7, 9, 0x10, 0x20001, 0x40000, 0x400000, 0xfffffffe, 0x7fffffff, 0x80000000}
	for _, a := range allowed {
		// The upper 32 bits are what the kernel ignores for an int argument.
		try = append(try, a, a|1<<32, a^1, a^1<<17, a^1<<31)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		try = append(try, r.Uint64())
	}
	for _, x := range try {
		in := slices.Contains(allowed, x&0xffffffff)
		if matches(x) == in {
			t.Fatalf("value %#x: in the set %v, matched by a not-in pattern %v", x, in, matches(x))
		}
	}
}
