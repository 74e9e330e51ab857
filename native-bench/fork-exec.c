/*
 * The floor of starting a process, as the gateway starts workers and sandboxes: fork() +
 * execve("/bin/true") + waitpid(), N times after a warm-up of N/10, from a process as small as
 * a C program gets. Prints the median and p99 in microseconds.
 *
 *   cc -O2 -o native-bench/bin/fork-exec native-bench/fork-exec.c && native-bench/bin/fork-exec [N]
 *
 * N defaults to 500. The child inherits stdin/stdout/stderr (/bin/true touches none of them).
 * fork() copies the parent's page tables, so this is the floor for a small parent: the same loop
 * run after touching 40 MB of heap (about a bare Node process's RSS) took twice as long here
 * (1.3 ms against 0.67 ms), as long as child_process.spawnSync does, since libuv too forks with
 * a plain fork() (clone with SIGCHLD).
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "floor.h"

#define PROGRAM "/bin/true"

extern char **environ;

int main(int argc, char **argv) {
  long n = floor_arg(argc, argv, 1, "N (processes to start)", 10, 10000000, 500);
  long warm = floor_warmup(n);
  if (access(PROGRAM, X_OK) != 0) {
    fprintf(stderr, "fork-exec: %s is not executable here: %s\n", PROGRAM, strerror(errno));
    return 1;
  }
  long long *ns = floor_alloc(argv[0], sizeof(long long) * (size_t)n);
  char *const child_argv[] = {"true", NULL};
  for (long i = 0; i < warm + n; i++) {
    long long t0 = floor_now_ns();
    pid_t child = fork();
    if (child < 0) {
      perror("fork-exec: fork");
      return 1;
    }
    if (child == 0) {
      execve(PROGRAM, child_argv, environ);
      _exit(127); /* exec failed: reported by the parent through the exit status */
    }
    int status;
    if (waitpid(child, &status, 0) != child) {
      perror("fork-exec: waitpid");
      return 1;
    }
    long long t1 = floor_now_ns();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "fork-exec: %s exited with %s %d (127: execve failed)\n", PROGRAM,
              WIFEXITED(status) ? "status" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
      return 1;
    }
    if (i >= warm) ns[i - warm] = t1 - t0;
  }
  printf("fork+execve+waitpid %s, %ld runs after %ld warm-up: median %.1f us, p99 %.1f us\n", PROGRAM, n, warm,
         floor_percentile(ns, n, 50) / 1e3, floor_percentile(ns, n, 99) / 1e3);
  free(ns);
  return 0;
}
