#!/usr/bin/env bash
# Prepares a Debian machine to build and test sbx. As root it installs the
# packages the build and the tests need and prepares the unprivileged test
# user; as anyone else it only checks. Idempotent: safe to run every time.
set -euo pipefail

# Packages: the build (libseccomp for the static seccomp library), the
# tests (fuse-overlayfs, busybox-static for image roots, iperf3, uidmap for
# subordinate ids, libcap2-bin for a test binary with file capabilities),
# and the peers sbx is measured against (bubblewrap,
# slirp4netns).
PACKAGES=(build-essential pkg-config libseccomp-dev file uidmap fuse-overlayfs fuse3
	busybox-static iperf3 bubblewrap slirp4netns hyperfine python3 iproute2 procps psmisc bsdutils curl libcap2-bin)
if [ "${SBX_APPS:-}" = 1 ]; then
	PACKAGES+=(xvfb xauth firefox-esr chromium fonts-dejavu-core imagemagick)
fi
TEST_USER=${SBX_TEST_USER:-sbxtest}

if [ "$(id -u)" != 0 ]; then
	echo "setup-host: not root, installing nothing; run 'sudo make setup' once if the tests complain"
	exit 0
fi

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup-host: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
	echo "setup-host: put /usr/local/go/bin on PATH" >&2
fi

# The unprivileged user the integration tests run as, with subordinate ids
# for --map-users auto.
if ! id "$TEST_USER" >/dev/null 2>&1; then
	useradd --create-home --shell /bin/bash "$TEST_USER"
fi
uid=$(id -u "$TEST_USER")
for f in /etc/subuid /etc/subgid; do
	grep -q "^$TEST_USER:" "$f" 2>/dev/null || echo "$TEST_USER:$((200000 + (uid % 1000) * 65536)):65536" >>"$f"
done

# A setuid-root program the tests run inside a sandbox to prove that
# no_new_privs makes setuid inert.
install -d -m 0755 /usr/local/libexec/sbx-test
install -m 4755 -o root -g root "$(command -v id)" /usr/local/libexec/sbx-test/setuid-id
# And one with file capabilities (cat, to show its own /proc/self/status),
# for the escape test that proves they are inert inside too.
install -m 0755 -o root -g root "$(command -v cat)" /usr/local/libexec/sbx-test/fcap-cat
setcap cap_dac_override,cap_sys_admin+ep /usr/local/libexec/sbx-test/fcap-cat

# Kernel facilities the sandboxes use.
[ -e /dev/net/tun ] || { mkdir -p /dev/net && mknod -m 0666 /dev/net/tun c 10 200; }
chmod 0666 /dev/net/tun /dev/fuse 2>/dev/null || true
modprobe overlay 2>/dev/null || true

# A real Go project the build tests compile inside and outside the build
# profile, fetched now because the build profile has no network: the
# BurntSushi/toml module (its tomlv and toml-test commands), from the Go
# module proxy into a module cache every user can read.
TEST_GOMOD=/var/cache/sbx-test/gomod
if [ ! -d "$TEST_GOMOD/github.com/!burnt!sushi/toml@v1.6.0" ]; then
	if command -v go >/dev/null; then
		GOMODCACHE=$TEST_GOMOD GOFLAGS= GOTOOLCHAIN=local go mod download github.com/BurntSushi/toml@v1.6.0
		chmod -R a+rX "$TEST_GOMOD"
	else
		echo "setup-host: no go on PATH, the build tests will have no project to build" >&2
	fi
fi

# cgroup v1 hierarchies (hybrid hosts): a directory per controller that the
# test user owns, where sbx makes its sandboxes' cgroups (sbx looks for
# /sbx-USER in each hierarchy when the user's own cgroup is not writable).
for c in memory pids cpu blkio; do
	d=/sys/fs/cgroup/$c
	if [ -d "$d" ] && [ "$(stat -f -c %T "$d/")" = cgroupfs ]; then
		{ mkdir -p "$d/sbx-$TEST_USER" &&
			chown "$TEST_USER" "$d/sbx-$TEST_USER" "$d/sbx-$TEST_USER/cgroup.procs" "$d/sbx-$TEST_USER/tasks"; } ||
			echo "setup-host: cannot prepare $d/sbx-$TEST_USER: limits fall back to rlimits for $TEST_USER" >&2
	fi
done

# A small filesystem the test user owns, for the tests of a full disk (an
# overlay's persistent upper, an image store): a 32 MiB tmpfs.
small=/var/lib/sbx-test/small
mkdir -p "$small"
mountpoint -q "$small" || mount -t tmpfs -o size=32m,mode=0755 sbx-test-small "$small"
chown "$TEST_USER" "$small"
