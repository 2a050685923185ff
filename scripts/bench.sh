#!/usr/bin/env bash
# make bench: sbx measured side by side with its peers, in one run, as the
# unprivileged test user. Prints medians and ratios; never pass/fail.
# Sections are files scripts/bench.d/*.sh, each sourced in order with
# $SBX (the binary), run_as (runs a command as the test user) and
# median_ms (hyperfine's median of a command, in ms) defined.
set -euo pipefail
cd "$(dirname "$0")/.."
TEST_USER=${SBX_TEST_USER:-sbxtest}
RUNS=${SBX_BENCH_RUNS:-200}

work=$(mktemp -d /tmp/sbx-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
cp sbx "$work/sbx"
SBX="$work/sbx"

run_as() {
	if [ "$(id -u)" = 0 ]; then
		(cd "$work" && runuser -u "$TEST_USER" -- env -i HOME="$(getent passwd "$TEST_USER" | cut -d: -f6)" \
			USER="$TEST_USER" PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin "$@")
	else
		(cd "$work" && "$@")
	fi
}

# median_ms CMD...: the median wall time of CMD over $RUNS runs, in ms.
median_ms() {
	local json="$work/h.json"
	# The test user writes it; the directory is root's.
	[ "$(id -u)" != 0 ] || install -m 0644 -o "$TEST_USER" /dev/null "$json"
	run_as hyperfine -N --warmup 20 --runs "$RUNS" --export-json "$json" "$*" >/dev/null 2>&1
	python3 -c 'import json,sys; print("%.2f" % (json.load(open(sys.argv[1]))["results"][0]["median"]*1000))' "$json"
}

ratio() { python3 -c "import sys; print('%.2f' % (float(sys.argv[1])/float(sys.argv[2])))" "$1" "$2"; }

echo "sbx bench on $(uname -r), $(nproc) cores, $(date -u +%F)"
for section in scripts/bench.d/*.sh; do
	# shellcheck source=/dev/null
	. "$section"
done
