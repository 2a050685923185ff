# User-mode networking: iperf3 through sbx's built-in stack against
# slirp4netns on the same machine in the same run, both ways, and the
# supervisor's memory while it carries traffic. Every server is on the
# host's loopback; every sandbox reaches it through 10.0.2.2.
SLIRP_T=${SBX_BENCH_NET_SECONDS:-5}
SLIRP_ROUNDS=${SBX_BENCH_NET_ROUNDS:-3}
srv_port=25301 fwd_port=25302

# slirp4netns_run CMD...: CMD in a new user+network namespace served by
# slirp4netns as rootless podman sets it up (MTU 65520).
cat >"$work/slirp4netns-run" <<'EOF'
#!/bin/bash
set -eu
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
unshare --user --map-root-user --net sh -c 'echo $$ >'"$d"'/pid
	while ! ip -4 addr show tap0 2>/dev/null | grep -q 10.0.2.100; do sleep 0.02; done
	exec "$@"' sh "$@" &
child=$!
while [ ! -s "$d/pid" ]; do sleep 0.02; done
pid=$(cat "$d/pid")
slirp4netns --configure --mtu=65520 --userns-path=/proc/$pid/ns/user "$pid" tap0 >/dev/null 2>&1 &
s4=$!
rc=0
wait $child || rc=$?
kill $s4 2>/dev/null || true
wait $s4 2>/dev/null || true
exit $rc
EOF
chmod 0755 "$work/slirp4netns-run"

# gbits FILE: the receiver's throughput in an iperf3 JSON report.
gbits() {
	python3 -c 'import json,sys; print("%.2f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"]/1e9))' "$1" 2>/dev/null || echo 0
}
median() { python3 -c 'import statistics,sys; print("%.2f" % statistics.median(map(float, sys.argv[1:])))' "$@"; }

# sample_rss PATTERN: keeps in $work/peak_rss the largest VmRSS (KiB) seen
# of the test user's process whose command line starts with PATTERN,
# sampled until it ends.
sample_rss() {
	local pid="" rss peak_rss_kib
	peak_rss_kib=$(cat "$work/peak_rss" 2>/dev/null || echo 0)
	for _ in $(seq 100); do
		pid=$(pgrep -u "$TEST_USER" -o -f "^$1" || true)
		[ -n "$pid" ] && break
		sleep 0.05
	done
	[ -n "$pid" ] || return 0
	while rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null) && [ -n "$rss" ]; do
		[ "$rss" -gt "$peak_rss_kib" ] && peak_rss_kib=$rss
		sleep 0.1
	done
	echo "$peak_rss_kib" >"$work/peak_rss"
}

echo
echo "== user-mode network: iperf3, ${SLIRP_T} s per run, median of $SLIRP_ROUNDS runs each (Gbit/s)"
run_as iperf3 -s -B 127.0.0.1 -p $srv_port >/dev/null 2>&1 &
sleep 0.5
out_sbx=() out_s4=() in_sbx=() in_lo=()
for i in $(seq "$SLIRP_ROUNDS"); do
	# Outbound: a client inside, the server on the host's loopback.
	sample_rss "$SBX run --net slirp" &
	sampler=$!
	run_as "$SBX" run --net slirp --allow-host-loopback -- iperf3 -c 10.0.2.2 -p $srv_port -t "$SLIRP_T" -J >"$work/o.json" 2>/dev/null || true
	wait $sampler
	out_sbx+=("$(gbits "$work/o.json")")
	run_as "$work/slirp4netns-run" iperf3 -c 10.0.2.2 -p $srv_port -t "$SLIRP_T" -J >"$work/o.json" 2>/dev/null || true
	out_s4+=("$(gbits "$work/o.json")")
	# Inbound: the server inside, reached from the host through -p.
	: >"$work/in-server.log" # not the last round's "Server listening"
	run_as "$SBX" run --net slirp -p $fwd_port:5201 -- iperf3 -s -1 -p 5201 >>"$work/in-server.log" 2>&1 &
	server=$!
	for _ in $(seq 200); do grep -q "Server listening" "$work/in-server.log" 2>/dev/null && break; sleep 0.05; done
	run_as iperf3 -c 127.0.0.1 -p $fwd_port -t "$SLIRP_T" -J >"$work/i.json" 2>/dev/null || true
	wait $server 2>/dev/null || true
	in_sbx+=("$(gbits "$work/i.json")")
	run_as iperf3 -c 127.0.0.1 -p $srv_port -t "$SLIRP_T" -J >"$work/i.json" 2>/dev/null || true
	in_lo+=("$(gbits "$work/i.json")")
done
pkill -u "$TEST_USER" -f "^iperf3 -s -B 127.0.0.1 -p $srv_port" || true
wait

o_sbx=$(median "${out_sbx[@]}") o_s4=$(median "${out_s4[@]}")
i_sbx=$(median "${in_sbx[@]}") i_lo=$(median "${in_lo[@]}")
printf '%-52s %8s Gbit/s  (runs: %s)\n' \
	"sandbox -> host loopback, sbx --net slirp" "$o_sbx" "${out_sbx[*]}" \
	"sandbox -> host loopback, slirp4netns --mtu=65520" "$o_s4" "${out_s4[*]}"
echo "ratio sbx/slirp4netns: $(ratio "$o_sbx" "$o_s4") (goal >= 1.0)"
printf '%-52s %8s Gbit/s  (runs: %s)\n' \
	"host -> sandbox through -p, sbx --net slirp" "$i_sbx" "${in_sbx[*]}" \
	"host -> host loopback" "$i_lo" "${in_lo[*]}"
echo "ratio -p/loopback: $(ratio "$i_sbx" "$i_lo") (goal >= 0.5)"
peak=$(cat "$work/peak_rss" 2>/dev/null || echo 0)
echo "supervisor (sbx parent) peak RSS carrying traffic: $(python3 -c "print('%.1f' % ($peak/1024))") MiB (goal < 40)"
