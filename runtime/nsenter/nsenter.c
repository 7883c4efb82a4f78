// The exec helper's first step, run as an ELF constructor before the Go runtime exists.
//
// With _STACK_NSENTER_PIDNS set: join that pid namespace (affects children only), wait for one
// byte on _STACK_NSENTER_SYNC (the caller has moved us into the container's cgroup), fork.
// The parent becomes a relay that forwards signals to the child and exits with its status;
// the child joins the namespaces listed in _STACK_NSENTER_FDS, in order, and returns so the Go
// runtime starts inside the container.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t stack_child = -1;

static void stack_die(const char *what) {
	fprintf(stderr, "stack nsenter: %s: %s\n", what, strerror(errno));
	_exit(126);
}

static void stack_forward(int sig) {
	if (stack_child > 0)
		kill(stack_child, sig);
}

static int stack_fd(const char *s) {
	char *end;
	long v = strtol(s, &end, 10);
	if (end == s || v < 3 || v > 1 << 20) {
		errno = EBADF;
		stack_die("bad fd in environment");
	}
	return (int)v;
}

void stack_nsenter(void) {
	const char *pidns = getenv("_STACK_NSENTER_PIDNS");
	const char *fds = getenv("_STACK_NSENTER_FDS");
	const char *syncfd = getenv("_STACK_NSENTER_SYNC");
	if (pidns == NULL)
		return;
	if (fds == NULL || syncfd == NULL) {
		errno = EINVAL;
		stack_die("incomplete environment");
	}
	int pfd = stack_fd(pidns), sfd = stack_fd(syncfd);
	if (setns(pfd, CLONE_NEWPID) < 0)
		stack_die("join pid namespace");
	char b;
	ssize_t n;
	do {
		n = read(sfd, &b, 1);
	} while (n < 0 && errno == EINTR);
	if (n != 1)
		_exit(126); // the caller went away
	stack_child = fork();
	if (stack_child < 0)
		stack_die("fork");
	if (stack_child == 0) {
		char *list = strdup(fds), *save = NULL;
		for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			int fd = stack_fd(tok);
			if (setns(fd, 0) < 0)
				stack_die("join namespace");
			close(fd);
		}
		free(list);
		close(pfd);
		close(sfd);
		return;
	}
	// The relay: keep nothing open but stdio, so the caller sees EOF on the exec socket
	// when the child execs; make our memory and /proc entries unreachable for the container.
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	syscall(SYS_close_range, 3U, ~0U, 0U);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = stack_forward;
	for (int sig = 1; sig < NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP || sig == SIGCHLD)
			continue;
		sigaction(sig, &sa, NULL);
	}
	int status;
	while (waitpid(stack_child, &status, 0) < 0) {
		if (errno != EINTR)
			stack_die("wait");
	}
	if (WIFSIGNALED(status))
		_exit(128 + WTERMSIG(status));
	_exit(WEXITSTATUS(status));
}
