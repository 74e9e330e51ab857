/*
 * Installs the sandbox's seccomp filter and then runs a command under it: what bwrap's
 * --seccomp FD does, for the unshare + setpriv sandbox (workers/unshare-runner.ts) used where
 * bwrap is absent. Built by scripts/build-seccomp.sh; needs no libseccomp (the filter was
 * compiled to a BPF program at build time by filter.c).
 *
 *   seccomp-exec FILTER.bpf -- CMD [ARGS...]
 *
 * FILTER.bpf is an array of struct sock_filter (seccomp_export_bpf's output). The filter is
 * installed with PR_SET_NO_NEW_PRIVS (which an unprivileged process needs, and which keeps
 * setuid binaries from regaining privileges), then CMD is execv'd: it must be an absolute
 * path, as nothing searches PATH here. Every failure exits 127 with a message naming the
 * file; CMD never runs without the filter.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define FAILED 127

static int fail(const char *what, const char *file, int err) {
  fprintf(stderr, "seccomp-exec: %s %s: %s\n", what, file, strerror(err));
  return FAILED;
}

/* Reads the whole filter file; its size must be a whole number of instructions, 1 to BPF_MAXINSNS. */
static int read_filter(const char *file, struct sock_fprog *prog) {
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail("cannot open the filter", file, errno);
  struct stat st;
  if (fstat(fd, &st) < 0) return fail("cannot stat the filter", file, errno);
  size_t size = (size_t)st.st_size;
  if (size == 0 || size % sizeof(struct sock_filter) != 0 || size / sizeof(struct sock_filter) > BPF_MAXINSNS) {
    fprintf(stderr,
            "seccomp-exec: the filter %s is not a BPF program: its size must be a multiple of %zu bytes, "
            "at most %d instructions (got %zu bytes); rebuild it with npm run build\n",
            file, sizeof(struct sock_filter), BPF_MAXINSNS, size);
    return FAILED;
  }
  struct sock_filter *insns = malloc(size);
  if (!insns) return fail("out of memory reading the filter", file, ENOMEM);
  size_t got = 0;
  while (got < size) {
    ssize_t n = read(fd, (char *)insns + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("cannot read the filter", file, errno);
    if (n == 0) return fail("the filter shrank while reading", file, EIO);
    got += (size_t)n;
  }
  close(fd);
  prog->len = (unsigned short)(size / sizeof(struct sock_filter));
  prog->filter = insns;
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4 || strcmp(argv[2], "--") != 0) {
    fprintf(stderr, "usage: %s FILTER.bpf -- CMD [ARGS...]\n", argv[0]);
    return FAILED;
  }
  const char *file = argv[1];
  struct sock_fprog prog;
  int rc = read_filter(file, &prog);
  if (rc != 0) return rc;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return fail("PR_SET_NO_NEW_PRIVS failed before installing", file, errno);
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) return fail("the kernel refused the filter", file, errno);
  free(prog.filter);
  execv(argv[3], &argv[3]);
  fprintf(stderr, "seccomp-exec: cannot execute %s (under the filter %s): %s\n", argv[3], file, strerror(errno));
  return FAILED;
}
