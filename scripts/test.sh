#!/usr/bin/env bash
# Runs every test of sbx. Test binaries are built by the caller (root in
# CI) and run as the unprivileged test user: sbx's whole point is what an
# unprivileged user gets. Extra arguments go to every test binary.
set -euo pipefail
cd "$(dirname "$0")/.."
TEST_USER=${SBX_TEST_USER:-sbxtest}
export CGO_ENABLED=1

work=$(mktemp -d /tmp/sbx-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
# The tree is copied where the test user can read it (a checkout under
# /root is not), with the binary under test beside it.
tar --exclude=.git -cf - . | tar -xf - -C "$work"
cp sbx "$work/sbx"
mkdir -p "$work/bin"
go test -c -tags 'osusergo netgo' -o "$work/bin/" ./... >/dev/null
go list -f '{{.Name}} {{.Dir}}' ./... >"$work/pkgs"
chmod -R a+rX "$work"

run_as() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u "$TEST_USER" -- env -i HOME="$(getent passwd "$TEST_USER" | cut -d: -f6)" \
			USER="$TEST_USER" LOGNAME="$TEST_USER" PATH="/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" \
			TERM=dumb LANG=C.UTF-8 SBX_BIN="$work/sbx" CI="${CI:-}" \
			SBX_TEST_APPS="${SBX_TEST_APPS:-}" "$@"
	else
		env SBX_BIN="$work/sbx" "$@"
	fi
}

passed=0 failed=0 skipped=0 status=0
for bin in "$work"/bin/*.test; do
	name=$(basename "$bin" .test)
	pkgdir=$(awk -v n="$name" '$1 == n {print $2; exit}' "$work/pkgs")
	rel=${pkgdir#"$PWD"}
	log="$work/$name.log"
	set +e
	(cd "$work$rel" && run_as "$bin" -test.v -test.timeout 30m "$@") >"$log" 2>&1
	rc=$?
	set -e
	p=$(grep -c -- '^\s*--- PASS' "$log" || true)
	f=$(grep -c -- '^\s*--- FAIL' "$log" || true)
	s=$(grep -c -- '^\s*--- SKIP' "$log" || true)
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	if [ $rc -ne 0 ]; then
		status=1
		grep -E -- '--- FAIL|^\s+\S+_test.go:[0-9]+:|panic|FAIL' "$log" | head -200 || true
		echo "FAIL	$name ($p passed, $f failed, $s skipped)"
		[ "$f" -gt 0 ] || tail -30 "$log"
	else
		echo "ok	$name ($p passed, $s skipped)"
	fi
	if [ -n "${SBX_TEST_VERBOSE:-}" ]; then cat "$log"; fi
done
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
