# Scale: N sandboxes started at once, N from 1 to 50, on this machine. For
# each N: the median and slowest time from starting `sbx run` to the
# command running, the time until all N run, and the resident memory of
# each supervising sbx process (the parent; with --net none, and with
# --net slirp, whose stack lives there). bwrap started the same way is the
# peer for the start-up times (its monitor is a small C process: its
# memory is shown for scale, not as a goal).
echo
echo "== scale: N sandboxes started at once (start-up ms: median / slowest / all running; parent RSS MiB: median)"
cat >"$work/scale.py" <<'PY'
import os, statistics, subprocess, sys, time

def rss_mib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for l in f:
                if l.startswith("VmRSS:"):
                    return int(l.split()[1]) / 1024
    except OSError:
        pass
    return 0.0

def round_(argv, n):
    procs, t0 = [], time.monotonic()
    for _ in range(n):
        procs.append((time.monotonic(), subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
    starts = []
    for t, p in procs:
        p.stdout.readline()  # "started"
        starts.append((time.monotonic() - t) * 1000)
    everyone = (time.monotonic() - t0) * 1000
    rss = [rss_mib(p.pid) for _, p in procs]
    for _, p in procs:
        p.terminate()
    for _, p in procs:
        p.wait()
    return statistics.median(starts), max(starts), everyone, statistics.median(rss)

sbx = sys.argv[1]
cmd = ["/bin/sh", "-c", "echo started; exec sleep 60"]
peers = {
    "sbx --net none": [sbx, "run", "--"] + cmd,
    "sbx --net slirp": [sbx, "run", "--net", "slirp", "--"] + cmd,
    "bwrap": ["bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"] + cmd,
}
print("%-16s %4s %10s %10s %12s %10s" % ("", "N", "median", "slowest", "all running", "RSS MiB"))
for n in (1, 5, 10, 25, 50):
    rows = {}
    for name, argv in peers.items():
        runs = [round_(argv, n) for _ in range(3 if n <= 10 else 1)]
        rows[name] = [statistics.median(r[k] for r in runs) for k in range(4)]
        print("%-16s %4d %10.1f %10.1f %12.1f %10.1f" % ((name, n) + tuple(rows[name])))
    print("%-16s %4d ratio sbx/bwrap, median start-up: %.2f (--net none), %.2f (--net slirp)" % (
        "", n, rows["sbx --net none"][0] / rows["bwrap"][0], rows["sbx --net slirp"][0] / rows["bwrap"][0]))
PY
run_as python3 "$work/scale.py" "$SBX"
