/*
 * loopback-floor: this machine's floor for pushing one small message to N
 * loopback TCP clients from one thread.
 *
 * No HTTP, no framing, no allocation on the hot path, no runtime: a writer
 * thread (pinned to CPU 0) write()s one MSG-byte message per event to each of
 * N server-side sockets, in order, on an open-loop schedule of RATE events per
 * second; a reader thread (pinned to CPU 1) epoll_wait()s on the N client
 * sockets and timestamps every whole message it reads. Any server's delivery
 * latency on this machine, at the same fan-out, is bounded below by what this
 * program measures.
 *
 * Each message carries (as native-endian 64-bit integers) a magic number, the
 * event's sequence number, its scheduled time and the time the writer started
 * the event's write loop (CLOCK_MONOTONIC ns; the same clock on both threads).
 * The rest of the message is filler. For every message the reader records
 *   - latency from schedule:    receive time - scheduled time
 *                               (timer lateness + position in the fan-out +
 *                               kernel delivery + reader wake-up)
 *   - latency from write start: receive time - start of the event's write loop
 *                               (position in the fan-out + kernel delivery +
 *                               reader wake-up)
 * and the writer records, per event, its timer lateness (actual wake -
 * scheduled) and the duration of the whole write loop over the N sockets.
 * The writer's and the reader's CPU time (CLOCK_THREAD_CPUTIME_ID, over the
 * events and from the end of set-up to the end of the run) per message are
 * the floors for a server's send path and a client's receive path: what
 * writing, and reading and timestamping, a message cost with nothing else to
 * do.
 *
 * Events in the first second (warm-up) are sent and checked but not recorded.
 * The run stops by itself once every message has arrived, or 2 s (drain) after
 * the writer's last event; a watchdog aborts it after SECONDS + 30 s.
 * Percentiles are exact (nearest rank over the sorted samples).
 *
 * The reader thread keeps the client sockets in a descriptor table of its own
 * (unshare(CLONE_FILES)), so the open-file limit applies to N sockets per side
 * rather than 2N in one table: 10,000 clients fit under a hard limit of 20,000.
 *
 *   loopback-floor [--clients N] [--rate R] [--seconds S] [--msg BYTES]
 *                  [--request BYTES] [--spin]
 *
 * --request BYTES: request/response, the floor for long-polling. Each client
 * sends a BYTES-byte request when it connects and again on every message but
 * the last; before writing an event to a client the writer reads that
 * client's waiting request (a long-poll server answering a parked request),
 * so each delivery costs a read and a write on each side.
 *
 * --spin: the writer sleeps until 200 us before each scheduled time and then
 * busy-waits; the reader polls epoll_wait() with timeout 0 instead of
 * blocking. Both then measure the path without scheduler wake-up costs.
 *
 * Build: gcc -std=c11 -O2 -Wall -Wextra -Werror -pthread -o loopback-floor loopback-floor.c
 * Exit status: 0 on success, 1 on any error or lost message, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAGIC UINT64_C(0x6c6f6f70666c6f72) /* "loopflor" */
#define HDR_BYTES 32                       /* magic, seq, scheduled, write start */
#define WARMUP_NS INT64_C(1000000000)      /* 1 s, sent but not recorded */
#define DRAIN_NS INT64_C(2000000000)       /* wait this long after the last event */
#define START_DELAY_NS INT64_C(100000000)  /* first event 100 ms after setup */
#define SPIN_NS INT64_C(200000)            /* --spin busy-waits the last 200 us */
#define HARD_EXTRA_S 30                    /* watchdog: SECONDS + 30 s */
#define MAX_EVENTS 1024                    /* epoll_wait maxevents */
#define READ_BUF 65536
#define MAX_SAMPLES (INT64_C(50) * 1000 * 1000) /* per array (8 bytes each) */
#define NS_PER_S INT64_C(1000000000)

/* ---- configuration and shared state ---- */

static long n_clients = 100;
static long rate = 10;
static long seconds = 10;
static long msg_bytes = 112;
static long req_bytes = 0; /* --request: 0 is push; else each message answers a request */
static int spin = 0;

static int *server_fds; /* written to by the writer */
static int *client_fds; /* read by the reader */

static int64_t t0;              /* scheduled time of event 0 */
static int64_t warm_events;     /* events 0..warm_events-1 are not recorded */
static int64_t total_events;    /* warm-up + measured */
static int64_t measured_events; /* rate * seconds */

/* writer results, one per measured event */
static int64_t *lateness;   /* actual wake - scheduled, ns */
static int64_t *write_loop; /* duration of the write loop over N sockets, ns */
static int64_t n_writer_samples;

/* reader results, one per measured message */
static int64_t *lat_sched; /* receive - scheduled, ns */
static int64_t *lat_write; /* receive - write-loop start, ns */
static int64_t n_reader_samples;
static int64_t received_total; /* including warm-up */
static int64_t reader_cpu_ns;  /* the reader thread's CPU time from set-up done to end */
static int64_t writer_cpu_ns;  /* the writer thread's CPU time over its events */

static atomic_int writer_done;
static atomic_int reader_done;
static _Atomic int64_t writer_end_ns; /* when the writer finished; 0 until then */
static _Atomic int64_t progress;      /* received_total, published for the watchdog */

/* ---- helpers ---- */

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("loopback-floor: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* die() with strerror(errno) appended */
static void die_errno(const char *what)
{
    die("%s: %s", what, strerror(errno));
}

/* CPU time this thread has used, ns */
static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        die_errno("clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        die_errno("clock_gettime");
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static void sleep_until(int64_t t)
{
    struct timespec ts = {.tv_sec = t / NS_PER_S, .tv_nsec = t % NS_PER_S};
    int rc;
    /* clock_nanosleep returns the error number instead of setting errno */
    while ((rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)) != 0) {
        if (rc != EINTR) {
            errno = rc;
            die_errno("clock_nanosleep");
        }
    }
}

static void pin_to_cpu(int cpu, const char *who)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((size_t)cpu, &set);
    int rc = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    if (rc != 0)
        die("%s: cannot pin to CPU %d: %s", who, cpu, strerror(rc));
}

static void *xcalloc(size_t n, size_t size, const char *what)
{
    void *p = calloc(n, size);
    if (p == NULL)
        die("out of memory allocating %s (%zu x %zu bytes)", what, n, size);
    return p;
}

static void put_u64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* scheduled time of event k (open loop: independent of when earlier events ran) */
static int64_t scheduled(int64_t k) { return t0 + k * NS_PER_S / rate; }

/* ---- writer ---- */

/* read exactly len bytes from blocking socket fd into buf (a client's request) */
static void read_exact(int fd, unsigned char *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = read(fd, buf + off, len - off);
        if (n > 0)
            off += (size_t)n;
        else if (n < 0 && errno == EINTR)
            continue;
        else
            die("read request from server socket: %s", n < 0 ? strerror(errno) : "end of stream");
    }
}

/* write all len bytes of buf to blocking socket fd */
static void write_all(int fd, const unsigned char *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, buf + off, len - off);
        if (n > 0) {
            off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* not expected on a blocking socket, but be correct if it happens:
             * wait until the socket is writable (the watchdog bounds this) */
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            if (poll(&pfd, 1, 1000) < 0 && errno != EINTR)
                die_errno("poll (writer)");
        } else {
            die("write to server socket: %s", n < 0 ? strerror(errno) : "wrote 0 bytes");
        }
    }
}

static void *writer_main(void *arg)
{
    (void)arg;
    pin_to_cpu(0, "writer");
    unsigned char *msg = xcalloc(1, (size_t)msg_bytes, "message");
    memset(msg + HDR_BYTES, 'x', (size_t)msg_bytes - HDR_BYTES);
    put_u64(msg, MAGIC);
    unsigned char *req = req_bytes > 0 ? xcalloc(1, (size_t)req_bytes, "request") : NULL;
    const int64_t cpu_start = thread_cpu_ns();

    for (int64_t k = 0; k < total_events; k++) {
        int64_t sched = scheduled(k);
        if (spin) {
            if (sched - SPIN_NS > now_ns())
                sleep_until(sched - SPIN_NS);
            while (now_ns() < sched)
                ; /* busy-wait the last 200 us */
        } else {
            sleep_until(sched);
        }
        int64_t start = now_ns(); /* actual wake = write-loop start */
        put_u64(msg + 8, (uint64_t)k);
        put_u64(msg + 16, (uint64_t)sched);
        put_u64(msg + 24, (uint64_t)start);
        for (long i = 0; i < n_clients; i++) {
            /* request/response: answer the request the client has waiting (it sent it
             * on its previous answer), as a long-poll server answers a parked request */
            if (req != NULL)
                read_exact(server_fds[i], req, (size_t)req_bytes);
            write_all(server_fds[i], msg, (size_t)msg_bytes);
        }
        int64_t end = now_ns();
        if (k >= warm_events) {
            lateness[n_writer_samples] = start - sched;
            write_loop[n_writer_samples] = end - start;
            n_writer_samples++;
        }
    }
    writer_cpu_ns = thread_cpu_ns() - cpu_start;
    free(msg);
    free(req);
    atomic_store(&writer_end_ns, now_ns());
    atomic_store(&writer_done, 1);
    return NULL;
}

/* ---- setup ---- */

static int listen_fd = -1;      /* in the main/writer descriptor table */
static struct sockaddr_in listen_addr;
static atomic_int reader_ready; /* clients connected, epoll set up */

static void set_nodelay(int fd)
{
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        die_errno("setsockopt TCP_NODELAY");
}

/* Raise the soft RLIMIT_NOFILE to the hard limit. The limit caps descriptor
 * numbers per descriptor table, and the reader keeps the N client sockets in a
 * table of its own (see reader_main), so each table needs N + 20 (2N + 40 in
 * all): 10,000 clients fit under a hard limit of 20,000, which they would not
 * in one shared table (2N + 20 = 20,020). */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        die_errno("getrlimit RLIMIT_NOFILE");
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        die_errno("setrlimit RLIMIT_NOFILE");
    rlim_t need = (rlim_t)(n_clients + 20);
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
        die("%ld clients need %ju file descriptors on each side (%ld in all), but the hard "
            "limit (RLIMIT_NOFILE) is %ju",
            n_clients, (uintmax_t)need, 2 * n_clients + 40, (uintmax_t)rl.rlim_cur);
}

static void open_listener(void)
{
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd < 0)
        die_errno("socket (listener)");
    listen_addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = 0};
    listen_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listen_fd, (struct sockaddr *)&listen_addr, sizeof listen_addr) != 0)
        die_errno("bind 127.0.0.1:0");
    if (listen(listen_fd, SOMAXCONN) != 0)
        die_errno("listen");
    socklen_t alen = sizeof listen_addr;
    if (getsockname(listen_fd, (struct sockaddr *)&listen_addr, &alen) != 0)
        die_errno("getsockname");
    /* accept() gives up after 10 s instead of waiting for ever on a stuck reader */
    struct timeval tv = {.tv_sec = 10};
    if (setsockopt(listen_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0)
        die_errno("setsockopt SO_RCVTIMEO");
}

/* main thread: accept the N server-side (writer) sockets, which stay blocking */
static void accept_all(void)
{
    for (long i = 0; i < n_clients; i++) {
        int s = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (s < 0)
            die("accept (%ld of %ld accepted): %s", i, n_clients,
                errno == EAGAIN ? "timed out" : strerror(errno));
        set_nodelay(s);
        server_fds[i] = s;
    }
    if (close(listen_fd) != 0)
        die_errno("close listener");
}

/* reader thread: connect the N client sockets; they are made non-blocking once
 * connected, so a stale readiness report cannot hang the reader */
static void connect_clients(void)
{
    for (long i = 0; i < n_clients; i++) {
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c < 0)
            die_errno("socket (client)");
        if (n_clients > 5000) {
            /* spread clients over source addresses 127.0.0.1..127.0.0.8 so
             * ephemeral ports cannot run out; the port is still picked at
             * connect(), per (source, destination) pair */
            int one = 1;
            if (setsockopt(c, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one) != 0)
                die_errno("setsockopt IP_BIND_ADDRESS_NO_PORT");
            struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = 0};
            src.sin_addr.s_addr = htonl(INADDR_LOOPBACK + (uint32_t)(i % 8));
            if (bind(c, (struct sockaddr *)&src, sizeof src) != 0)
                die_errno("bind client source address");
        }
        set_nodelay(c);
        if (connect(c, (struct sockaddr *)&listen_addr, sizeof listen_addr) != 0)
            die("connect client %ld: %s", i, strerror(errno));
        int fl = fcntl(c, F_GETFL);
        if (fl < 0 || fcntl(c, F_SETFL, fl | O_NONBLOCK) != 0)
            die_errno("fcntl O_NONBLOCK");
        client_fds[i] = c;
    }
}

/* ---- reader ---- */

static unsigned char *partial;   /* n_clients x msg_bytes: bytes of a split message */
static uint32_t *partial_len;    /* bytes currently held in partial[i] */
static int64_t *next_seq;        /* next sequence number expected on client i */

static unsigned char *request; /* --request: what a client sends for its next message */

/* client i asks for its next message (request/response mode) */
static void send_request(long i)
{
    ssize_t n = write(client_fds[i], request, (size_t)req_bytes);
    if (n != (ssize_t)req_bytes)
        die("client %ld: request not written whole: %s", i,
            n < 0 ? strerror(errno) : "short write");
}

/* one whole message from client i, received at time t */
static void on_message(long i, const unsigned char *m, int64_t t)
{
    uint64_t magic = get_u64(m), seq = get_u64(m + 8);
    int64_t sched = (int64_t)get_u64(m + 16), start = (int64_t)get_u64(m + 24);
    if (magic != MAGIC)
        die("client %ld: corrupt message (bad magic)", i);
    if ((int64_t)seq != next_seq[i])
        die("client %ld: got event %" PRIu64 ", expected %" PRId64, i, seq, next_seq[i]);
    next_seq[i]++;
    received_total++;
    if (request != NULL && next_seq[i] < total_events)
        send_request(i);
    if ((int64_t)seq >= warm_events) {
        if (n_reader_samples >= measured_events * n_clients)
            die("more measured messages than expected");
        lat_sched[n_reader_samples] = t - sched;
        lat_write[n_reader_samples] = t - start;
        n_reader_samples++;
    }
}

/* feed len bytes read from client i at time t through its partial buffer */
static void on_bytes(long i, const unsigned char *p, size_t len, int64_t t)
{
    unsigned char *part = partial + (size_t)i * (size_t)msg_bytes;
    while (len > 0) {
        if (partial_len[i] == 0 && len >= (size_t)msg_bytes) {
            on_message(i, p, t); /* whole message in the read buffer */
            p += msg_bytes;
            len -= (size_t)msg_bytes;
            continue;
        }
        size_t take = (size_t)msg_bytes - partial_len[i];
        if (take > len)
            take = len;
        memcpy(part + partial_len[i], p, take);
        partial_len[i] += (uint32_t)take;
        p += take;
        len -= take;
        if (partial_len[i] == (uint32_t)msg_bytes) {
            on_message(i, part, t);
            partial_len[i] = 0;
        }
    }
}

static void *reader_main(void *arg)
{
    (void)arg;
    pin_to_cpu(1, "reader");
    /* Give this thread a private copy of the descriptor table: the client
     * sockets then live here and the server sockets in the main/writer table,
     * so each table holds N sockets instead of one holding 2N. Memory is
     * still shared; only descriptor numbers are per table. */
    if (unshare(CLONE_FILES) != 0)
        die_errno("unshare(CLONE_FILES)");
    if (close(listen_fd) != 0) /* this table's copy; main accepts on its own */
        die_errno("close listener copy");
    connect_clients();
    if (req_bytes > 0) {
        request = xcalloc(1, (size_t)req_bytes, "request");
        memset(request, 'r', (size_t)req_bytes);
        for (long i = 0; i < n_clients; i++)
            send_request(i); /* each client's first request, waiting for event 0 */
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die_errno("epoll_create1");
    for (long i = 0; i < n_clients; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i}; /* level-triggered */
        if (epoll_ctl(ep, EPOLL_CTL_ADD, client_fds[i], &ev) != 0)
            die_errno("epoll_ctl");
    }
    struct epoll_event *evs = xcalloc(MAX_EVENTS, sizeof *evs, "epoll events");
    unsigned char *buf = xcalloc(1, READ_BUF, "read buffer");
    const int64_t expected = total_events * n_clients;
    atomic_store(&reader_ready, 1);
    const int64_t cpu_start = thread_cpu_ns();

    while (received_total < expected) {
        atomic_store_explicit(&progress, received_total, memory_order_relaxed);
        int64_t wend = atomic_load(&writer_end_ns);
        if (wend != 0 && now_ns() >= wend + DRAIN_NS)
            break; /* drained: whatever has not arrived is lost */
        int n = epoll_wait(ep, evs, MAX_EVENTS, spin ? 0 : 100);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die_errno("epoll_wait");
        }
        for (int e = 0; e < n; e++) {
            long i = (long)evs[e].data.u64;
            if (evs[e].events & (EPOLLERR | EPOLLHUP))
                die("client %ld: socket error or hang-up", i);
            /* one read per readiness report: level-triggered epoll reports
             * the socket again if more is left */
            ssize_t r = read(client_fds[i], buf, READ_BUF);
            int64_t t = now_ns();
            if (r > 0)
                on_bytes(i, buf, (size_t)r, t);
            else if (r == 0)
                die("client %ld: unexpected end of stream", i);
            else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                die_errno("read from client socket");
        }
    }
    reader_cpu_ns = thread_cpu_ns() - cpu_start;
    free(request);
    free(buf);
    free(evs);
    for (long i = 0; i < n_clients; i++)
        if (close(client_fds[i]) != 0)
            die_errno("close client socket");
    if (close(ep) != 0)
        die_errno("close epoll");
    atomic_store(&reader_done, 1);
    return NULL;
}

/* ---- statistics ---- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* exact nearest-rank p-th percentile (p in 1..100) of sorted v[0..n-1], in
 * microseconds: the smallest sample with at least p% of the samples <= it */
static double pct_us(const int64_t *v, int64_t n, int p)
{
    if (n == 0)
        return 0.0;
    int64_t rank = (p * n + 99) / 100; /* ceil(p * n / 100), 1..n */
    return (double)v[rank - 1] / 1000.0;
}

/* ---- command line ---- */

static void usage(const char *fmt, ...)
{
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        fputs("loopback-floor: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    fputs("usage: loopback-floor [--clients N] [--rate R] [--seconds S] [--msg BYTES]\n"
          "                      [--request BYTES] [--spin]\n"
          "  --clients N    loopback TCP clients, 1..100000 (default 100)\n"
          "  --rate R       events per second, 1..100000 (default 10)\n"
          "  --seconds S    measured seconds after a 1 s warm-up, 1..3600 (default 10)\n"
          "  --msg BYTES    message size, 32..65536 (default 112)\n"
          "  --request BYTES  request/response (long-poll): each client sends BYTES\n"
          "                 before each message and the writer reads them before\n"
          "                 answering, 1..65536 (default: push, no requests)\n"
          "  --spin         busy-wait timer and epoll_wait(timeout 0) instead of blocking\n",
          stderr);
    exit(2);
}

static long parse_long(const char *opt, const char *s, long lo, long hi)
{
    if (s == NULL)
        usage("%s needs a value", opt);
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        usage("%s: '%s' is not an integer in %ld..%ld", opt, s, lo, hi);
    return v;
}

static void parse_args(int argc, char **argv)
{
    for (int a = 1; a < argc; a++) {
        const char *o = argv[a];
        const char *v = a + 1 < argc ? argv[a + 1] : NULL;
        if (strcmp(o, "--clients") == 0) {
            n_clients = parse_long(o, v, 1, 100000);
            a++;
        } else if (strcmp(o, "--rate") == 0) {
            rate = parse_long(o, v, 1, 100000);
            a++;
        } else if (strcmp(o, "--seconds") == 0) {
            seconds = parse_long(o, v, 1, 3600);
            a++;
        } else if (strcmp(o, "--msg") == 0) {
            msg_bytes = parse_long(o, v, HDR_BYTES, 65536);
            a++;
        } else if (strcmp(o, "--request") == 0) {
            req_bytes = parse_long(o, v, 1, 65536);
            a++;
        } else if (strcmp(o, "--spin") == 0) {
            spin = 1;
        } else if (strcmp(o, "-h") == 0 || strcmp(o, "--help") == 0) {
            usage(NULL);
        } else {
            usage("unknown argument '%s'", o);
        }
    }
    measured_events = (int64_t)rate * seconds;
    if (measured_events * n_clients > MAX_SAMPLES)
        usage("clients x rate x seconds = %" PRId64 " samples, more than the %" PRId64
              " this program preallocates",
              measured_events * n_clients, MAX_SAMPLES);
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 2)
        die("need at least 2 online CPUs (writer on CPU 0, reader on CPU 1), have %ld", ncpu);
    raise_fd_limit();

    warm_events = rate; /* 1 s */
    total_events = warm_events + measured_events;
    size_t nsamp = (size_t)(measured_events * n_clients);
    lateness = xcalloc((size_t)measured_events, sizeof *lateness, "lateness samples");
    write_loop = xcalloc((size_t)measured_events, sizeof *write_loop, "write-loop samples");
    lat_sched = xcalloc(nsamp, sizeof *lat_sched, "latency samples");
    lat_write = xcalloc(nsamp, sizeof *lat_write, "latency samples");
    server_fds = xcalloc((size_t)n_clients, sizeof *server_fds, "server fds");
    client_fds = xcalloc((size_t)n_clients, sizeof *client_fds, "client fds");
    partial = xcalloc((size_t)n_clients, (size_t)msg_bytes, "partial buffers");
    partial_len = xcalloc((size_t)n_clients, sizeof *partial_len, "partial lengths");
    next_seq = xcalloc((size_t)n_clients, sizeof *next_seq, "sequence numbers");
    /* touch the sample arrays now so page faults do not land in the measurement */
    memset(lateness, 0xff, (size_t)measured_events * sizeof *lateness);
    memset(write_loop, 0xff, (size_t)measured_events * sizeof *write_loop);
    memset(lat_sched, 0xff, nsamp * sizeof *lat_sched);
    memset(lat_write, 0xff, nsamp * sizeof *lat_write);

    /* the reader connects the clients (in its own descriptor table) while this
     * thread accepts them; the writer starts once both sides are ready */
    open_listener();
    pthread_t wt, rt;
    int rc;
    if ((rc = pthread_create(&rt, NULL, reader_main, NULL)) != 0)
        die("pthread_create (reader): %s", strerror(rc));
    accept_all();
    const int64_t setup_deadline = now_ns() + 10 * NS_PER_S;
    while (!atomic_load(&reader_ready)) {
        if (now_ns() > setup_deadline)
            die("reader not ready 10 s after all clients connected");
        sleep_until(now_ns() + 1000 * 1000);
    }

    t0 = now_ns() + START_DELAY_NS;
    const int64_t hard_deadline = t0 + (int64_t)(seconds + HARD_EXTRA_S) * NS_PER_S;
    if ((rc = pthread_create(&wt, NULL, writer_main, NULL)) != 0)
        die("pthread_create (writer): %s", strerror(rc));

    /* watchdog: the threads end by themselves; if they do not, abort */
    while (!(atomic_load(&writer_done) && atomic_load(&reader_done))) {
        if (now_ns() > hard_deadline)
            die("hung: not finished %ld s after start (writer %s, reader %s; %" PRId64
                " of %" PRId64 " messages received)",
                seconds + HARD_EXTRA_S, atomic_load(&writer_done) ? "done" : "running",
                atomic_load(&reader_done) ? "done" : "running", atomic_load(&progress),
                total_events * n_clients);
        sleep_until(now_ns() + 50 * 1000 * 1000);
    }
    if ((rc = pthread_join(wt, NULL)) != 0)
        die("pthread_join (writer): %s", strerror(rc));
    if ((rc = pthread_join(rt, NULL)) != 0)
        die("pthread_join (reader): %s", strerror(rc));

    for (long i = 0; i < n_clients; i++)
        if (close(server_fds[i]) != 0)
            die_errno("close server socket");

    /* ---- report ---- */
    const int64_t expected = measured_events * n_clients;
    const int64_t lost = total_events * n_clients - received_total;
    qsort(lateness, (size_t)n_writer_samples, sizeof *lateness, cmp_i64);
    qsort(write_loop, (size_t)n_writer_samples, sizeof *write_loop, cmp_i64);
    qsort(lat_sched, (size_t)n_reader_samples, sizeof *lat_sched, cmp_i64);
    qsort(lat_write, (size_t)n_reader_samples, sizeof *lat_write, cmp_i64);
    const int64_t nw = n_writer_samples, nr = n_reader_samples;

    printf("clients %ld, rate %ld/s, msg %ld bytes, request %ld bytes, %s, events %" PRId64
           ", messages received %" PRId64 " (expected %" PRId64 ")\n",
           n_clients, rate, msg_bytes, req_bytes, spin ? "spin" : "blocking", measured_events, nr,
           expected);
    printf("timer lateness            p50 %.1f  p99 %.1f  µs\n", pct_us(lateness, nw, 50),
           pct_us(lateness, nw, 99));
    printf("write loop per event      p50 %.1f  p99 %.1f  µs, per client %.3f µs\n",
           pct_us(write_loop, nw, 50), pct_us(write_loop, nw, 99),
           pct_us(write_loop, nw, 50) / (double)n_clients);
    printf("latency from schedule     p50 %.1f  p90 %.1f  p99 %.1f  max %.1f  µs\n",
           pct_us(lat_sched, nr, 50), pct_us(lat_sched, nr, 90), pct_us(lat_sched, nr, 99),
           pct_us(lat_sched, nr, 100));
    printf("latency from write start  p50 %.1f  p90 %.1f  p99 %.1f  max %.1f  µs\n",
           pct_us(lat_write, nr, 50), pct_us(lat_write, nr, 90), pct_us(lat_write, nr, 99),
           pct_us(lat_write, nr, 100));
    printf("writer cpu per message    %.3f  µs (%.3f s over %" PRId64 " messages)\n",
           (double)writer_cpu_ns / 1000.0 / (double)(total_events * n_clients),
           (double)writer_cpu_ns / 1e9, total_events * n_clients);
    printf("reader cpu per message    %.3f  µs (%.3f s over %" PRId64 " messages)\n",
           received_total > 0 ? (double)reader_cpu_ns / 1000.0 / (double)received_total : 0.0,
           (double)reader_cpu_ns / 1e9, received_total);
    printf("lost messages %" PRId64 "\n", lost);
    if (fflush(stdout) != 0)
        die_errno("write report");

    free(lateness);
    free(write_loop);
    free(lat_sched);
    free(lat_write);
    free(server_fds);
    free(client_fds);
    free(partial);
    free(partial_len);
    free(next_seq);
    if (lost != 0 || nr != expected) {
        fprintf(stderr, "loopback-floor: %" PRId64 " messages lost\n", lost);
        return 1;
    }
    return 0;
}
