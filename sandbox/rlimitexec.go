package sandbox

// The rlimit step (see limitedArgv) runs as a C constructor, before the Go
// runtime of the re-executed sbx starts: it sets the command-only rlimits
// and executes the command at once, so the step costs one exec of sbx and
// none of Go's start-up.

/*
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static int sbx_rlimit_resource(const char *name, size_t n) {
	if (n == 2 && strncmp(name, "AS", 2) == 0) return RLIMIT_AS;
	if (n == 5 && strncmp(name, "NPROC", 5) == 0) return RLIMIT_NPROC;
	if (n == 3 && strncmp(name, "CPU", 3) == 0) return RLIMIT_CPU;
	return -1;
}

// argv: sbx-rlimits NAME=VALUE... -- PATH ARGV0 ARGS...
__attribute__((constructor)) static void sbx_rlimit_exec(int argc, char **argv, char **envp) {
	if (argc < 1 || argv == NULL || argv[0] == NULL || strcmp(argv[0], "sbx-rlimits") != 0)
		return;
	int i = 1;
	for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
		char *eq = strchr(argv[i], '='), *end;
		int res = eq ? sbx_rlimit_resource(argv[i], (size_t)(eq - argv[i])) : -1;
		if (res < 0)
			goto bad;
		errno = 0;
		unsigned long long v = strtoull(eq + 1, &end, 10);
		if (errno != 0 || *end != '\0' || end == eq + 1)
			goto bad;
		struct rlimit rl = {(rlim_t)v, (rlim_t)v};
		if (setrlimit(res, &rl) != 0) {
			fprintf(stderr, "sbx: setrlimit %s: %s\n", argv[i], strerror(errno));
			_exit(125);
		}
	}
	if (i + 2 >= argc)
		goto bad;
	execve(argv[i + 1], &argv[i + 2], envp);
	int e = errno;
	fprintf(stderr, "sbx: %s: cannot execute: %s%s\n", argv[i + 2], strerror(e),
		e == ENOMEM ? " (the memory limit, RLIMIT_AS, is too small to start it)" : "");
	_exit(e == ENOENT ? 127 : 126);
bad:
	fprintf(stderr, "sbx: this is a step of sbx run; run 'sbx run' instead\n");
	_exit(125);
}
*/
import "C"
