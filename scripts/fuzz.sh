#!/usr/bin/env bash
# Runs every fuzz target of sbx for a bounded time each: the CI share of
# fuzzing (make test). Longer runs by hand: SBX_FUZZTIME=10m ./scripts/fuzz.sh,
# or one target: go test -run '^$' -fuzz '^FuzzProfile$' ./profiles.
# An input that fails is written to the package's testdata/fuzz/TARGET/
# and is from then on run by plain go test as a regression test: commit it
# with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=1
FUZZTIME=${SBX_FUZZTIME:-10s}

# package target
TARGETS=(
	". FuzzCLI"
	"./profiles FuzzProfile"
	"./slirp FuzzParseRule"
	"./slirp FuzzParsePort"
	"./images/unpack FuzzLayer"
	"./cgroups FuzzHierarchyDir"
	"./spec FuzzParseSize"
)

# Minimizing each new interesting input for long starves the short CI run
# (the layer target made 13 inputs in 10 s so); a failing input is still
# written whole.
status=0
for t in "${TARGETS[@]}"; do
	read -r pkg name <<<"$t"
	log=$(mktemp)
	if go test -tags 'osusergo netgo' -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 1s "$pkg" >"$log" 2>&1; then
		echo "ok	fuzz $name ($pkg, $FUZZTIME: $(grep -o 'execs: [0-9]*' "$log" | tail -1))"
	else
		status=1
		echo "FAIL	fuzz $name ($pkg)"
		grep -v '^fuzz: elapsed' "$log" | head -40
	fi
	rm -f "$log"
done
exit $status
