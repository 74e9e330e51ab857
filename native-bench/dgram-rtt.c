/*
 * The floor of a worker's load report: a ~200-byte datagram over AF_UNIX SOCK_DGRAM sockets
 * bound to paths, as workers send their reports to the gateway's metrics.sock. Two processes
 * ping-pong one datagram (sendto + recv each way) N times after a warm-up of N/10, and print
 * the median and p99 round trip in microseconds.
 *
 * Then the one-way cost a worker pays per report, sendto() alone, in nanoseconds: the parent
 * sends N datagrams to its own socket, each taken back with an untimed recv() before the next.
 * Nobody sleeps on that socket, so the timed call is the sender's own work (path lookup, copy,
 * queueing) and nothing else; timed inside the ping-pong, on one core, it would often include
 * the woken peer's whole turn, which the scheduler may run before sendto() returns.
 *
 *   cc -O2 -o native-bench/bin/dgram-rtt native-bench/dgram-rtt.c && native-bench/bin/dgram-rtt [N]
 *
 * N defaults to 20000. The two socket files live in a fresh directory under $TMPDIR (or /tmp),
 * removed on exit and on SIGINT/SIGTERM/SIGHUP; the echoing child dies with its parent
 * (PR_SET_PDEATHSIG), and the parent gives up if an answer takes more than 5 s.
 * Pin both ends with taskset to choose one core or two (see unix-rtt.c).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "floor.h"

#define MESSAGE_BYTES 200
#define ANSWER_TIMEOUT_S 5

static char dir[256];
static struct sockaddr_un addr_parent, addr_child;

/* Removes the two socket files and their directory; only async-signal-safe calls. */
static void cleanup(void) {
  if (addr_parent.sun_path[0]) unlink(addr_parent.sun_path);
  if (addr_child.sun_path[0]) unlink(addr_child.sun_path);
  if (dir[0]) rmdir(dir);
}

static void on_signal(int sig) {
  cleanup();
  signal(sig, SIG_DFL);
  raise(sig);
}

static void fail(const char *what) {
  perror(what);
  cleanup();
  exit(1);
}

/* A SOCK_DGRAM socket bound to DIR/NAME; fills *addr with that address. */
static int bind_at(struct sockaddr_un *addr, const char *name) {
  addr->sun_family = AF_UNIX;
  int len = snprintf(addr->sun_path, sizeof addr->sun_path, "%s/%s", dir, name);
  if (len < 0 || (size_t)len >= sizeof addr->sun_path) {
    fprintf(stderr, "dgram-rtt: socket path %s/%s is longer than the %zu bytes sun_path holds; set TMPDIR to a shorter directory\n",
            dir, name, sizeof addr->sun_path - 1);
    addr->sun_path[0] = '\0';
    cleanup();
    exit(1);
  }
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("dgram-rtt: socket(AF_UNIX, SOCK_DGRAM)");
  if (bind(fd, (struct sockaddr *)addr, sizeof *addr) != 0) fail("dgram-rtt: bind");
  return fd;
}

/* Receives one MESSAGE_BYTES datagram into buf (MESSAGE_BYTES + 1 long); says why not on stderr. */
static int receive(int fd, char *buf, const char *from) {
  ssize_t got = recv(fd, buf, MESSAGE_BYTES + 1, 0);
  if (got == MESSAGE_BYTES) return 0;
  if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    fprintf(stderr, "dgram-rtt: no datagram from %s in %d s\n", from, ANSWER_TIMEOUT_S);
  else if (got < 0)
    fprintf(stderr, "dgram-rtt: recv from %s: %s\n", from, strerror(errno));
  else
    fprintf(stderr, "dgram-rtt: %s sent %zd bytes, not %d\n", from, got, MESSAGE_BYTES);
  return -1;
}

/* The echoing end: receive each datagram and send it straight back, total times. */
static void echo(int fd, long total, pid_t parent) {
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGHUP, SIG_DFL);
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(1);
  char buf[MESSAGE_BYTES + 1];
  for (long i = 0; i < total; i++) {
    /* One byte of room beyond the message: a longer datagram would show up as MESSAGE_BYTES + 1. */
    if (recv(fd, buf, sizeof buf, 0) != MESSAGE_BYTES) _exit(1);
    if (sendto(fd, buf, MESSAGE_BYTES, 0, (struct sockaddr *)&addr_parent, sizeof addr_parent) != MESSAGE_BYTES) _exit(1);
  }
  _exit(0);
}

int main(int argc, char **argv) {
  long n = floor_arg(argc, argv, 1, "N (round trips to measure)", 10, 100000000, 20000);
  long warm = floor_warmup(n), total = warm + n;

  const char *tmp = getenv("TMPDIR");
  if (tmp == NULL || tmp[0] == '\0') tmp = "/tmp";
  if (snprintf(dir, sizeof dir, "%s/dgram-rtt.XXXXXX", tmp) >= (int)sizeof dir) {
    fprintf(stderr, "dgram-rtt: TMPDIR %s is longer than %zu bytes\n", tmp, sizeof dir - 20);
    return 1;
  }
  if (mkdtemp(dir) == NULL) {
    fprintf(stderr, "dgram-rtt: cannot create a directory under %s (TMPDIR): %s\n", tmp, strerror(errno));
    return 1;
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGHUP, on_signal);

  /* Both ends are bound before the fork, so neither can send to a path that does not exist yet. */
  int parent_fd = bind_at(&addr_parent, "parent.sock");
  int child_fd = bind_at(&addr_child, "child.sock");
  pid_t self = getpid();
  pid_t child = fork();
  if (child < 0) fail("dgram-rtt: fork");
  if (child == 0) {
    close(parent_fd);
    echo(child_fd, total, self);
  }
  close(child_fd);
  struct timeval timeout = {.tv_sec = ANSWER_TIMEOUT_S};
  if (setsockopt(parent_fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) != 0) fail("dgram-rtt: setsockopt(SO_RCVTIMEO)");

  long long *rtt = floor_alloc(argv[0], sizeof(long long) * (size_t)n);
  long long *send_ns = floor_alloc(argv[0], sizeof(long long) * (size_t)n);
  char buf[MESSAGE_BYTES + 1];
  memset(buf, 'x', sizeof buf);
  for (long i = 0; i < total; i++) {
    long long t0 = floor_now_ns();
    if (sendto(parent_fd, buf, MESSAGE_BYTES, 0, (struct sockaddr *)&addr_child, sizeof addr_child) != MESSAGE_BYTES) {
      kill(child, SIGKILL);
      fail("dgram-rtt: sendto the echo end");
    }
    if (receive(parent_fd, buf, "the echo end") != 0) {
      kill(child, SIGKILL);
      cleanup();
      return 1;
    }
    if (i >= warm) rtt[i - warm] = floor_now_ns() - t0;
  }
  int status;
  if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "dgram-rtt: the echo end did not exit cleanly\n");
    cleanup();
    return 1;
  }

  /* sendto() alone: to the parent's own socket, drained untimed after each send. */
  for (long i = 0; i < total; i++) {
    long long t0 = floor_now_ns();
    if (sendto(parent_fd, buf, MESSAGE_BYTES, 0, (struct sockaddr *)&addr_parent, sizeof addr_parent) != MESSAGE_BYTES)
      fail("dgram-rtt: sendto its own socket");
    long long t1 = floor_now_ns();
    if (receive(parent_fd, buf, "its own socket") != 0) {
      cleanup();
      return 1;
    }
    if (i >= warm) send_ns[i - warm] = t1 - t0;
  }
  cleanup();
  printf("unix datagram round trip, %d B, %ld runs after %ld warm-up: median %.1f us, p99 %.1f us\n", MESSAGE_BYTES, n, warm,
         floor_percentile(rtt, n, 50) / 1e3, floor_percentile(rtt, n, 99) / 1e3);
  printf("unix datagram sendto alone, no receiver woken, %d B, %ld runs after %ld warm-up: median %lld ns, p99 %lld ns\n", MESSAGE_BYTES, n, warm,
         floor_percentile(send_ns, n, 50), floor_percentile(send_ns, n, 99));
  free(rtt);
  free(send_ns);
  return 0;
}
