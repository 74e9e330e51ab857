/*
 * The floor of a worker's /proc sample: open + read to EOF + close of /proc/self/stat,
 * /proc/self/status and /proc/self/io, the three files a worker reads every 500 ms for its load
 * report. Reads the three in turn N times after a warm-up of N/10 and prints the median and
 * p99 in nanoseconds for each file and for the three together.
 *
 *   cc -O2 -o native-bench/bin/proc-read native-bench/proc-read.c && native-bench/bin/proc-read [N]
 *
 * N defaults to 20000. Reading to EOF (a second read() that returns 0) is what fs.readFileSync
 * does with these files, whose size stat() reports as 0. The kernel formats each file on every
 * read; /proc/self/stat and /proc/self/io sum over the process's threads, which made the three
 * files only ~4 % dearer with six idle threads added (a bare Node process has seven threads).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "floor.h"

static const char *const FILES[] = {"/proc/self/stat", "/proc/self/status", "/proc/self/io"};
#define NFILES (sizeof FILES / sizeof FILES[0])

/* Opens, reads to EOF and closes path; returns the bytes read, or -1 with errno set. */
static ssize_t read_file(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t total = 0, got;
  while ((got = read(fd, buf, size)) > 0) total += got;
  int saved = errno;
  close(fd);
  errno = saved;
  return got < 0 ? -1 : total;
}

int main(int argc, char **argv) {
  long n = floor_arg(argc, argv, 1, "N (reads of each file to measure)", 10, 100000000, 20000);
  long warm = floor_warmup(n);
  long long *per_file[NFILES], *all = floor_alloc(argv[0], sizeof(long long) * (size_t)n);
  for (size_t f = 0; f < NFILES; f++) per_file[f] = floor_alloc(argv[0], sizeof(long long) * (size_t)n);

  char buf[4096];
  for (long i = 0; i < warm + n; i++) {
    long long t[NFILES + 1];
    t[0] = floor_now_ns();
    for (size_t f = 0; f < NFILES; f++) {
      errno = 0;
      if (read_file(FILES[f], buf, sizeof buf) <= 0) {
        fprintf(stderr, "proc-read: %s: %s\n", FILES[f], errno ? strerror(errno) : "empty (expected at least one line)");
        return 1;
      }
      t[f + 1] = floor_now_ns();
    }
    if (i < warm) continue;
    for (size_t f = 0; f < NFILES; f++) per_file[f][i - warm] = t[f + 1] - t[f];
    all[i - warm] = t[NFILES] - t[0];
  }
  for (size_t f = 0; f < NFILES; f++) {
    printf("open+read+close %s, %ld runs after %ld warm-up: median %lld ns, p99 %lld ns\n", FILES[f], n, warm,
           floor_percentile(per_file[f], n, 50), floor_percentile(per_file[f], n, 99));
    free(per_file[f]);
  }
  printf("all three files, %ld runs after %ld warm-up: median %lld ns, p99 %lld ns\n", n, warm, floor_percentile(all, n, 50),
         floor_percentile(all, n, 99));
  free(all);
  return 0;
}
