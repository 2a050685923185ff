# Overlay roots: a file-heavy job (unpack a source tarball, compile it)
# in a sandbox whose host system directories are an overlay, against the
# same job on the host, per driver. The compiler, its libraries and
# headers are read through the overlay's lowers; the tree is unpacked
# and built in its upper.
OV_RUNS=${SBX_BENCH_OVERLAY_RUNS:-5}
OV_FILES=${SBX_BENCH_OVERLAY_FILES:-100}
OV_JOBS=$(nproc)

echo
echo "== overlay root: unpack a $OV_FILES-file C tarball and build it with make -j$OV_JOBS (median of $OV_RUNS runs, ms)"
python3 - "$work/ovsrc" "$OV_FILES" <<'EOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
os.makedirs(root + "/src/include")
with open(root + "/src/include/common.h", "w") as f:
    f.write("#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\nint shared(int);\n")
objs = []
for i in range(n):
    with open(root + "/src/f%d.c" % i, "w") as f:
        f.write('#include "common.h"\n')
        for j in range(8):
            f.write("int f%d_%d(int x) { char b[64]; snprintf(b, sizeof b, \"%%d\", x * %d); return (int)strlen(b) + %d; }\n" % (i, j, j + 1, j))
    objs.append("f%d.o" % i)
with open(root + "/src/Makefile", "w") as f:
    f.write("CFLAGS = -O1 -Iinclude\nall: libbench.a\nlibbench.a: %s\n\tar rcs $@ $^\n" % " ".join(objs))
EOF
tar -C "$work/ovsrc" -czf "$work/ovsrc.tgz" src
chmod 0644 "$work/ovsrc.tgz"

ov_median() {
	local json="$work/ovhost/ov.json"
	run_as hyperfine -N --warmup 1 --runs "$OV_RUNS" --export-json "$json" "$@" >/dev/null 2>&1 || { echo 0; return; }
	python3 -c 'import json,sys; print("%.0f" % (json.load(open(sys.argv[1]))["results"][0]["median"]*1000))' "$json"
}

job="tar xzf SRC && make -s -C src -j$OV_JOBS >/dev/null"
mkdir -p "$work/ovhost"
[ "$(id -u)" != 0 ] || chown "$TEST_USER" "$work/ovhost"
host_cmd="sh -c 'rm -rf $work/ovhost/b && mkdir $work/ovhost/b && cd $work/ovhost/b && ${job//SRC/$work/ovsrc.tgz}'"
h1=$(ov_median "$host_cmd")
for driver in kernel fuse; do
	sbx_cmd="$SBX run --overlay --overlay-driver $driver --ro-bind $work/ovsrc.tgz:/src.tgz -- sh -c 'mkdir /usr/sbx-bench && cd /usr/sbx-bench && ${job//SRC//src.tgz}'"
	s=$(ov_median "$sbx_cmd")
	h2=$(ov_median "$host_cmd")
	h=$(python3 -c "print('%.0f' % min($h1,$h2))")
	printf '%-34s %8s ms   host %8s ms   ratio %s\n' "sbx --overlay-driver $driver" "$s" "$h" "$(ratio "$s" "$h")"
done
# The same job in a plain sandbox (its private /tmp), to tell the overlay's
# cost from the sandbox's (seccomp, cgroup) own.
s=$(ov_median "$SBX run --ro-bind $work/ovsrc.tgz:/src.tgz -- sh -c 'cd /tmp && ${job//SRC//src.tgz}'")
printf '%-34s %8s ms   host %8s ms   ratio %s\n' "sbx, no overlay (/tmp)" "$s" "$h" "$(ratio "$s" "$h")"
echo "(goal: ratio <= 1.1 for the kernel driver)"
