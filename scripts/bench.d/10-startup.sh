# Start-up: sbx run with all namespaces and --net none against bubblewrap
# with the equivalent isolation, alternated so that both see the same
# machine state.
echo
echo "== start-up: /bin/true in a sandbox (median of $RUNS runs each, ms)"
bwrap_cmd="bwrap --unshare-all --die-with-parent --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp /bin/true"
sbx_cmd="$SBX run -- /bin/true"
s1=$(median_ms "$sbx_cmd"); b1=$(median_ms "$bwrap_cmd")
s2=$(median_ms "$sbx_cmd"); b2=$(median_ms "$bwrap_cmd")
s=$(python3 -c "print('%.2f' % min($s1,$s2))"); b=$(python3 -c "print('%.2f' % min($b1,$b2))")
printf '%-28s %8s ms\n' "sbx run -- /bin/true" "$s" "bwrap --unshare-all" "$b"
echo "ratio sbx/bwrap: $(ratio "$s" "$b") (goal <= 1.5)"
