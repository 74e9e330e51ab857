/*
 * The floor of the gateway's HTTP front: the least a server can do per HTTP/1.1 keep-alive
 * request on one thread. One epoll loop over non-blocking sockets on 127.0.0.1; per readiness
 * event one read(), then one send() of as many copies of a fixed response as there were
 * complete requests in the buffer (pipelining). There is no parser beyond finding each request's
 * end of headers ("\r\n\r\n"; requests carry no body): every request, whatever its method or
 * path, gets
 *
 *   HTTP/1.1 200 OK\r\nContent-Length: 16\r\nContent-Type: text/plain\r\n\r\nhello from faas\n
 *
 * the body the gateway's demo GET /hello answers. Beside bare uWebSockets.js serving the same
 * body (scripts/bare-uws.mjs) under wrk, it shows what uWS's parsing, routing and JS callback
 * cost (scripts/bench-native.mjs).
 *
 *   cc -O2 -o native-bench/bin/http-responder native-bench/http-responder.c && native-bench/bin/http-responder [PORT]
 *
 * PORT defaults to 0 (the kernel picks a free one). Prints `listening http=PORT` on stdout once
 * listening, like the gateway and bare-uws.mjs. A connection is closed on EOF, on a socket
 * error, or when a request's headers exceed IN_BYTES. SIGINT or SIGTERM stop it: it prints how
 * many requests it answered on stderr and exits 0.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "floor.h"

#define IN_BYTES 16384 /* the most one connection buffers: an incomplete request longer than this is refused */
#define MAX_EVENTS 256
#define END_OF_HEADERS "\r\n\r\n"

static const char RESPONSE[] = "HTTP/1.1 200 OK\r\nContent-Length: 16\r\nContent-Type: text/plain\r\n\r\nhello from faas\n";
#define RESPONSE_BYTES (sizeof RESPONSE - 1)
/* The most complete requests one full buffer can hold (each at least "\r\n\r\n"). */
#define MAX_BATCH (IN_BYTES / (sizeof END_OF_HEADERS - 1))

/* MAX_BATCH copies of RESPONSE back to back: k answers are the first k * RESPONSE_BYTES bytes. */
static char responses[MAX_BATCH * RESPONSE_BYTES];

struct conn {
  int fd;
  size_t in_len;  /* bytes of an incomplete request kept from earlier reads */
  char *out;      /* answers the socket did not take yet (its send buffer was full), or NULL */
  size_t out_len; /* bytes of out still to send */
  size_t out_off; /* where they start in out */
  char in[IN_BYTES];
};

/* epoll data.ptr of the two non-connection descriptors; connections carry their struct conn. */
static int listen_tag, signal_tag;
static int ep;
static unsigned long long answered;

static void close_conn(struct conn *c) {
  close(c->fd); /* also removes it from the epoll set */
  free(c->out);
  free(c);
}

static int watch(struct conn *c, unsigned events) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Sends what is pending in c->out; returns -1 if the connection must be closed. */
static int flush(struct conn *c) {
  while (c->out_len > 0) {
    ssize_t n = send(c->fd, c->out + c->out_off, c->out_len, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
    c->out_off += (size_t)n;
    c->out_len -= (size_t)n;
  }
  free(c->out);
  c->out = NULL;
  return watch(c, EPOLLIN); /* all sent: read requests again */
}

/* Answers k requests; what the socket does not take now waits in c->out, and reading stops until it is sent. */
static int answer(struct conn *c, size_t k) {
  size_t len = k * RESPONSE_BYTES;
  ssize_t n = send(c->fd, responses, len, MSG_NOSIGNAL);
  if (n < 0 && errno != EAGAIN && errno != EINTR) return -1;
  answered += k;
  size_t sent = n < 0 ? 0 : (size_t)n;
  if (sent == len) return 0;
  c->out = malloc(len - sent);
  if (c->out == NULL) return -1;
  memcpy(c->out, responses + sent, len - sent);
  c->out_off = 0;
  c->out_len = len - sent;
  return watch(c, EPOLLOUT);
}

/* One read; answers every complete request in the buffer and keeps the incomplete rest. */
static int on_readable(struct conn *c) {
  ssize_t n = read(c->fd, c->in + c->in_len, IN_BYTES - c->in_len);
  if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
  if (n == 0) return -1; /* EOF */
  c->in_len += (size_t)n;
  size_t done = 0, k = 0;
  const char *end;
  while ((end = memmem(c->in + done, c->in_len - done, END_OF_HEADERS, sizeof END_OF_HEADERS - 1)) != NULL) {
    done = (size_t)(end - c->in) + sizeof END_OF_HEADERS - 1;
    k++;
  }
  if (k == 0) return c->in_len == IN_BYTES ? -1 : 0; /* headers longer than the buffer: refuse */
  memmove(c->in, c->in + done, c->in_len - done);
  c->in_len -= done;
  return answer(c, k);
}

static void on_event(struct conn *c, unsigned events) {
  int rc = 0;
  if (events & EPOLLERR)
    rc = -1;
  else if (c->out != NULL)
    rc = (events & (EPOLLOUT | EPOLLHUP)) ? flush(c) : 0;
  else if (events & (EPOLLIN | EPOLLHUP))
    rc = on_readable(c); /* a hang-up reads as EOF */
  if (rc != 0) close_conn(c);
}

static void accept_all(int lfd) {
  static int reported;
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && !reported) { /* EMFILE and the like: retried on the next event, reported once */
        perror("http-responder: accept4 (further accept failures are not reported)");
        reported = 1;
      }
      return;
    }
    int one = 1;
    struct conn *c = calloc(1, sizeof *c);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (c == NULL || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
      perror("http-responder: setting up an accepted connection");
      close(fd);
      free(c);
      continue;
    }
    c->fd = fd;
  }
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

int main(int argc, char **argv) {
  long port = floor_arg(argc, argv, 1, "PORT", 0, 65535, 0);
  for (size_t i = 0; i < MAX_BATCH; i++) memcpy(responses + i * RESPONSE_BYTES, RESPONSE, RESPONSE_BYTES);

  /* SIGINT/SIGTERM arrive as readable events on a signalfd, so the loop stops between events. */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  if (sigprocmask(SIG_BLOCK, &stop, NULL) != 0) die("http-responder: sigprocmask");
  int sfd = signalfd(-1, &stop, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd < 0) die("http-responder: signalfd");

  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0) die("http-responder: socket");
  int one = 1;
  if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) die("http-responder: setsockopt(SO_REUSEADDR)");
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    fprintf(stderr, "http-responder: cannot listen on 127.0.0.1:%ld: %s\n", port, strerror(errno));
    return 1;
  }
  if (listen(lfd, SOMAXCONN) != 0) die("http-responder: listen");
  socklen_t len = sizeof addr;
  if (getsockname(lfd, (struct sockaddr *)&addr, &len) != 0) die("http-responder: getsockname");

  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("http-responder: epoll_create1");
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &listen_tag};
  struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &signal_tag};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) != 0 || epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &sev) != 0) die("http-responder: epoll_ctl");

  printf("listening http=%d\n", ntohs(addr.sin_port));
  if (fflush(stdout) != 0) die("http-responder: writing to stdout");

  struct epoll_event events[MAX_EVENTS];
  for (;;) {
    int k = epoll_wait(ep, events, MAX_EVENTS, -1);
    if (k < 0) {
      if (errno == EINTR) continue;
      die("http-responder: epoll_wait");
    }
    for (int i = 0; i < k; i++) {
      void *tag = events[i].data.ptr;
      if (tag == &signal_tag) {
        struct signalfd_siginfo si;
        const char *name = read(sfd, &si, sizeof si) == sizeof si ? strsignal((int)si.ssi_signo) : "a signal";
        fprintf(stderr, "http-responder: %s, stopping; %llu requests answered\n", name, answered);
        return 0; /* the kernel closes every connection */
      }
      if (tag == &listen_tag)
        accept_all(lfd);
      else
        on_event(tag, events[i].events);
    }
  }
}
