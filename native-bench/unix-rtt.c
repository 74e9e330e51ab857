/*
 * The floor of one gateway -> worker hop: a round trip of a 100-byte message over a Unix
 * stream socket between two processes, as the gateway and a worker exchange frames.
 * Prints the median and p99 of N round trips in microseconds.
 *
 *   cc -O2 -o native-bench/bin/unix-rtt native-bench/unix-rtt.c && native-bench/bin/unix-rtt [N]
 *
 * Pin the two ends with taskset to compare one core against two (PERF.md: 9 vs 56 µs here).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MESSAGE_BYTES 100

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int exchange(int fd, char *buf, int write_first) {
  size_t done;
  if (write_first && write(fd, buf, MESSAGE_BYTES) != MESSAGE_BYTES) return -1;
  for (done = 0; done < MESSAGE_BYTES;) {
    ssize_t n = read(fd, buf + done, MESSAGE_BYTES - done);
    if (n <= 0) return -1;
    done += (size_t)n;
  }
  if (!write_first && write(fd, buf, MESSAGE_BYTES) != MESSAGE_BYTES) return -1;
  return 0;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? strtol(argv[1], NULL, 10) : 100000;
  if (n < 10) {
    fprintf(stderr, "unix-rtt: N must be at least 10 (got %s)\n", argv[1]);
    return 2;
  }
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) {
    perror("unix-rtt: socketpair");
    return 1;
  }
  char buf[MESSAGE_BYTES] = {0};
  pid_t child = fork();
  if (child == 0) { /* the echoing "worker" */
    close(fds[0]);
    for (long i = 0; i < n; i++)
      if (exchange(fds[1], buf, 0) != 0) _exit(1);
    _exit(0);
  }
  close(fds[1]);
  double *us = malloc(sizeof(double) * (size_t)n);
  for (long i = 0; i < n; i++) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    if (exchange(fds[0], buf, 1) != 0) {
      fprintf(stderr, "unix-rtt: the echo end went away\n");
      return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    us[i] = (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
  }
  waitpid(child, NULL, 0);
  qsort(us, (size_t)n, sizeof(double), cmp);
  printf("unix stream round trip, %d B, %ld runs: median %.1f us, p99 %.1f us\n", MESSAGE_BYTES, n, us[n / 2], us[n * 99 / 100]);
  free(us);
  return 0;
}
