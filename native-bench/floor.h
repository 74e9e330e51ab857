/*
 * Helpers shared by the native floors (the .c files in native-bench/): a strict count parser for argv, a
 * monotonic clock in nanoseconds, and percentiles of a sample array. Header-only (static
 * inline), so each floor still builds with one `cc` line and no link step of its own.
 */
#ifndef NATIVE_BENCH_FLOOR_H
#define NATIVE_BENCH_FLOOR_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * Parses argv[index] as a decimal integer in [min, max], or returns fallback when it is absent.
 * Anything else (a sign, trailing text, out of range) is fatal with a message naming the
 * program, the argument and the rule: exit status 2, as for any usage error.
 */
static inline long floor_arg(int argc, char **argv, int index, const char *what, long min, long max, long fallback) {
  if (argc <= index) return fallback;
  const char *raw = argv[index];
  char *end;
  errno = 0;
  long v = strtol(raw, &end, 10);
  if (raw[0] < '0' || raw[0] > '9' || *end != '\0' || errno == ERANGE || v < min || v > max) {
    const char *slash = strrchr(argv[0], '/');
    fprintf(stderr, "%s: %s must be an integer from %ld to %ld (got \"%s\")\n", slash ? slash + 1 : argv[0], what, min, max, raw);
    exit(2);
  }
  return v;
}

/* CLOCK_MONOTONIC in nanoseconds (the vDSO clock Node's process.hrtime reads too). */
static inline long long floor_now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static inline int floor_cmp_ll(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return (x > y) - (x < y);
}

/* Sorts the n samples in place and returns the p-th percentile (0 <= p <= 100) as a nearest rank. */
static inline long long floor_percentile(long long *samples, long n, int p) {
  qsort(samples, (size_t)n, sizeof(long long), floor_cmp_ll);
  long i = n * p / 100;
  return samples[i < n ? i : n - 1];
}

/* Discarded iterations before the measured ones: a tenth of the measured count, at least 10. */
static inline long floor_warmup(long n) {
  return n / 10 > 10 ? n / 10 : 10;
}

/* malloc that cannot return NULL: the floors have nothing sensible to do without their sample arrays. */
static inline void *floor_alloc(const char *prog, size_t bytes) {
  void *p = malloc(bytes);
  if (p == NULL) {
    fprintf(stderr, "%s: out of memory allocating %zu bytes for samples\n", prog, bytes);
    exit(1);
  }
  return p;
}

#endif
