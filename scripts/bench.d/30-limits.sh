# Limits and many sandboxes: what a cgroup and the rlimit fallback add to
# start-up, and how the memory sbx keeps per sandbox (supervisor + init)
# and the start-up of one more sandbox grow with 1, 10 and 50 running,
# against bubblewrap (its monitor + PID 1) under the same load.
LIMIT_RUNS=${SBX_BENCH_LIMIT_RUNS:-50}
echo
echo "== limits: start-up of /bin/true (median of $RUNS runs each, ms)"
plain=$(median_ms "$SBX run -- /bin/true")
cg=$(median_ms "$SBX run --memory 64M --pids 256 -- /bin/true")
rl=$(median_ms "$SBX run --cgroup-parent / --memory 1G --pids 256 -- /bin/true")
printf '%-44s %8s ms\n' "sbx run" "$plain" "sbx run --memory --pids (cgroup)" "$cg" "sbx run --memory --pids (rlimit fallback)" "$rl"
echo "ratio cgroup/plain: $(ratio "$cg" "$plain"), rlimit fallback/plain: $(ratio "$rl" "$plain")"

# pids_of PATTERN: the test user's processes whose command line starts with PATTERN.
pids_of() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(stat -c %U "$p" 2>/dev/null)" = "$TEST_USER" ] || continue
		case "$(tr '\0' ' ' 2>/dev/null <"$p/cmdline")" in "$1"*) echo "${p#/proc/}" ;; esac
	done
}

# pss_kb PID...: their proportional set size summed, in KiB: resident
# memory with pages shared by several processes (the binary's text, for
# one) divided among them, so N sandboxes are not charged N times for it.
pss_kb() {
	local total=0 p kb
	for p in "$@"; do
		kb=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || true)
		total=$((total + ${kb:-0}))
	done
	echo $total
}

# hold N CMD...: starts N copies of CMD as the test user and waits until
# N processes match $match (the caller sets it); prints nothing.
hold() {
	local n=$1
	shift
	local i
	for i in $(seq 1 "$n"); do
		run_as "$@" >/dev/null 2>&1 &
	done
	for i in $(seq 1 600); do
		[ "$(pids_of "$match" | wc -l)" -ge "$n" ] && return 0
		sleep 0.05
	done
	echo "bench: only $(pids_of "$match" | wc -l) of $n sandboxes started" >&2
}

# release: ends the sandboxes hold started (their supervisors, by pid).
release() {
	local p
	for p in $(pids_of "$match"); do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}

echo
echo "== many sandboxes: memory per running sandbox (PSS, KiB) and start-up of one more (median of $LIMIT_RUNS runs, ms)"
printf '%-8s %14s %14s %12s %12s %8s\n' running sbx_kib bwrap_kib sbx_ms bwrap_ms ratio_ms
bwrap_sleep="bwrap --unshare-all --die-with-parent --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp sleep 600"
for n in 1 10 50; do
	match="$SBX run -- sleep 600"
	hold "$n" $SBX run -- sleep 600
	sbx_kib=$(( $(pss_kb $(pids_of "$match") $(pids_of "sbx-init")) / n ))
	sbx_ms=$(RUNS=$LIMIT_RUNS median_ms "$SBX run -- /bin/true")
	release
	match="bwrap --unshare-all --die-with-parent --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp sleep 600"
	hold "$n" $bwrap_sleep
	bwrap_kib=$(( $(pss_kb $(pids_of "bwrap ")) / n ))
	bwrap_ms=$(RUNS=$LIMIT_RUNS median_ms "bwrap --unshare-all --die-with-parent --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp /bin/true")
	release
	printf '%-8s %14s %14s %12s %12s %8s\n' "$n" "$sbx_kib" "$bwrap_kib" "$sbx_ms" "$bwrap_ms" "$(ratio "$sbx_ms" "$bwrap_ms")"
done
