/*
 * ws-client-floor: the floor for a WebSocket client's receive path, against a
 * real server.
 *
 * N plain WebSocket clients (ws://HOST:PORT/ws) on one thread, pinned to one
 * CPU, read a feedbench-protocol feed (PROTOCOL.md: one text frame per event,
 * {"seq":N,"ts":T,...} with T the scheduled publish time, Unix ns) with
 * nothing else to do: level-triggered epoll, one read per readiness report
 * into a shared buffer, frames parsed in place, `seq` and `ts` read from the
 * head of the JSON, every message timestamped. No runtime, no allocation on
 * the hot path, no per-message state beyond the next expected seq.
 *
 * The load generator's receive path does this and more (a task per
 * connection, tungstenite, serde, its statistics). Run against the same server
 * at the same feed, the two see the same arrivals, so the ratio of their CPU
 * per delivered event is the load generator's own cost, and this program's
 * latency is the server's delivery latency without the load generator's share
 * (scripts/floor-compare.sh does both).
 *
 * After every client has upgraded, the first WARMUP seconds are read but not
 * recorded; then for SECONDS seconds every message received is counted, its
 * latency from schedule (receive time, CLOCK_REALTIME, minus `ts`) recorded,
 * and the thread's CPU time (CLOCK_THREAD_CPUTIME_ID) measured over the
 * window. Every client must see consecutive seqs from its first message on; a
 * gap, a close frame, an error or the end of a stream fails the run. The feed
 * must already be running (PUT /control/feed). Bounded: connecting stops
 * after 30 s, the run after WARMUP + SECONDS, and a stalled server (no
 * message for 10 s once reading) fails it.
 *
 *   ws-client-floor --connect HOST:PORT [--clients N (100)] [--seconds S (5)]
 *                   [--warmup S (2)] [--cpu C (1)] [--read-bytes B (65536)]
 *                   [--after SEQ] [--sse | --longpoll]
 *
 * With --sse the clients read GET /sse instead: a chunked response, one HTTP
 * chunk per event holding `id: N` and `data: JSON` lines (PROTOCOL.md), chunks
 * parsed in place like frames, the JSON's `seq` and `ts` read the same way. A
 * bare SSE client is then the yardstick for the load generator's SSE path, as
 * the WebSocket one is for its ws path.
 *
 * With --longpoll each client long-polls instead: it sends
 * `GET /longpoll?after=NEXT&timeout_ms=30000` (the load generator's request,
 * byte for byte) as soon as each answer is whole, and the answer (a
 * content-length response, PROTOCOL.md) is parsed in place like a frame: every
 * event of its body counted by its `seq` and `ts`, NEXT taken from its `next`.
 * An answer other than a 200 kept alive, or over 64 KiB (a replay of many
 * events: ask --after a recent SEQ), fails the run.
 *
 * HOST is an IPv4 address. --read-bytes reads at most B bytes at a time: a small
 * B splits every frame over several reads (scripts/ws-client-floor-check.sh
 * tests the reassembly that way). --after asks for the events after SEQ
 * (`/ws?after=SEQ`): the server replays them as one batch, so reads span frames. Prints, on success:
 *   messages in window N
 *   latency from schedule (us): p50 X p99 Y max Z
 *   reader cpu per message (us): W
 *
 * Build: gcc -std=c11 -O2 -Wall -Wextra -Werror -o ws-client-floor ws-client-floor.c
 * Exit status: 0 on success, 1 on any error, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S INT64_C(1000000000)
#define MAX_EVENTS 1024
#define READ_BUF 65536
/* largest frame (header + payload) a client may receive; with --longpoll, the
 * largest answer: 100 events (the server's default limit) of ~190 bytes each with
 * 64-byte payloads fit (a replay), and the buffers stay untouched, so not
 * resident, unless an answer is split over reads */
static size_t partial_max = 4096;
#define STALL_NS (10 * NS_PER_S)
#define CONNECT_NS (30 * NS_PER_S)
#define MAX_SAMPLES (INT64_C(50) * 1000 * 1000)

static long n_clients = 100;
static long seconds = 5;
static long warmup = 2;
static int cpu = 1;
static size_t read_bytes = READ_BUF;
static long after = -1; /* --after: -1 for none */
static int sse;          /* --sse: read GET /sse (chunked) instead of /ws frames */
static int longpoll;     /* --longpoll: request/response on /longpoll instead */
static struct sockaddr_in server;
static char host_header[64];

static int *fds;
static unsigned char *partial; /* n_clients x partial_max: a frame split over reads */
static uint32_t *partial_len;
static uint64_t *next_seq; /* 0: no message yet */

static int64_t win_start, win_end; /* CLOCK_REALTIME ns */
static int64_t *samples;           /* latency from schedule, ns */
static int64_t n_samples;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ws-client-floor: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void die_errno(const char *what) { die("%s: %s", what, strerror(errno)); }

static void usage(void)
{
    fputs("usage: ws-client-floor --connect HOST:PORT [--clients N (100)] [--seconds S (5)] "
          "[--warmup S (2)] [--cpu C (1)] [--read-bytes B (65536)] [--after SEQ]\n"
          "                       [--sse | --longpoll]\n",
          stderr);
    exit(2);
}

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0)
        die_errno("clock_gettime");
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static void *xcalloc(size_t n, size_t size, const char *what)
{
    void *p = calloc(n, size);
    if (p == NULL)
        die("out of memory allocating %s", what);
    return p;
}

static long parse_long(const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || end == s || v < lo || v > hi)
        usage();
    return v;
}

static void parse_args(int argc, char **argv)
{
    int have_target = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--longpoll") == 0) {
            longpoll = 1;
            continue;
        }
        if (strcmp(argv[i], "--sse") == 0) {
            sse = 1;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (strcmp(argv[i - 1], "--connect") == 0) {
            const char *colon = strrchr(v, ':');
            if (colon == NULL || (size_t)(colon - v) >= sizeof host_header - 8)
                usage();
            char host[64];
            memcpy(host, v, (size_t)(colon - v));
            host[colon - v] = '\0';
            server = (struct sockaddr_in){.sin_family = AF_INET};
            if (inet_pton(AF_INET, host, &server.sin_addr) != 1)
                usage();
            server.sin_port = htons((uint16_t)parse_long(colon + 1, 1, 65535));
            snprintf(host_header, sizeof host_header, "%s", v);
            have_target = 1;
        } else if (strcmp(argv[i - 1], "--clients") == 0) {
            n_clients = parse_long(v, 1, 100000);
        } else if (strcmp(argv[i - 1], "--seconds") == 0) {
            seconds = parse_long(v, 1, 3600);
        } else if (strcmp(argv[i - 1], "--warmup") == 0) {
            warmup = parse_long(v, 0, 3600);
        } else if (strcmp(argv[i - 1], "--after") == 0) {
            after = parse_long(v, 0, LONG_MAX);
        } else if (strcmp(argv[i - 1], "--read-bytes") == 0) {
            read_bytes = (size_t)parse_long(v, 1, READ_BUF);
        } else if (strcmp(argv[i - 1], "--cpu") == 0) {
            cpu = (int)parse_long(v, 0, CPU_SETSIZE - 1);
        } else {
            usage();
        }
    }
    if (!have_target || (sse && longpoll))
        usage();
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        die_errno("getrlimit RLIMIT_NOFILE");
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        die_errno("setrlimit RLIMIT_NOFILE");
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)(n_clients + 20))
        die("%ld clients need %ld file descriptors; the hard limit is %ju", n_clients,
            n_clients + 20, (uintmax_t)rl.rlim_cur);
}

/* client i asks for the events after `cursor` (-1: from the head), as the load
 * generator asks: the same request bytes */
static void send_long_poll(long i, long long cursor)
{
    char req[192];
    int len = cursor < 0 ? snprintf(req, sizeof req,
                                    "GET /longpoll?timeout_ms=30000 HTTP/1.1\r\nHost: %s\r\n\r\n",
                                    host_header)
                         : snprintf(req, sizeof req,
                                    "GET /longpoll?after=%lld&timeout_ms=30000 HTTP/1.1\r\n"
                                    "Host: %s\r\n\r\n",
                                    cursor, host_header);
    ssize_t n = write(fds[i], req, (size_t)len);
    if (n != len)
        die("client %ld: long-poll request not written whole: %s", i,
            n < 0 ? strerror(errno) : "short write");
}

/* Connects client i and upgrades it (blocking, with a 10 s timeout per step);
 * bytes after the 101 head go to the client's partial buffer. */
static void connect_client(long i, int64_t deadline)
{
    if (clock_ns(CLOCK_MONOTONIC) > deadline)
        die("connecting took over %" PRId64 " s (%ld of %ld upgraded)", CONNECT_NS / NS_PER_S,
            i, n_clients);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0)
        die_errno("socket");
    if (n_clients > 5000 && ntohl(server.sin_addr.s_addr) >> 24 == 127) {
        /* spread loopback clients over 127.0.0.1..8 so ephemeral ports last */
        int one = 1;
        if (setsockopt(c, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one) != 0)
            die_errno("setsockopt IP_BIND_ADDRESS_NO_PORT");
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(INADDR_LOOPBACK + (uint32_t)(i % 8));
        if (bind(c, (struct sockaddr *)&src, sizeof src) != 0)
            die_errno("bind source address");
    }
    int one = 1;
    if (setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        die_errno("setsockopt TCP_NODELAY");
    struct timeval tv = {.tv_sec = 10};
    if (setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0)
        die_errno("setsockopt timeouts");
    if (connect(c, (struct sockaddr *)&server, sizeof server) != 0)
        die("connect client %ld: %s", i, strerror(errno));
    if (longpoll) {
        /* answers are read, like frames, by the main loop */
        fds[i] = c;
        send_long_poll(i, after);
        int fl = fcntl(c, F_GETFL);
        if (fl < 0 || fcntl(c, F_SETFL, fl | O_NONBLOCK) != 0)
            die_errno("fcntl O_NONBLOCK");
        return;
    }
    char req[320], query[32] = "";
    if (after >= 0)
        snprintf(query, sizeof query, "?after=%ld", after);
    int len = sse ? snprintf(req, sizeof req, "GET /sse%s HTTP/1.1\r\nHost: %s\r\n\r\n", query,
                             host_header)
                  : snprintf(req, sizeof req,
                             "GET /ws%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Version: 13\r\n\r\n",
                             query, host_header);
    if (write(c, req, (size_t)len) != len)
        die("client %ld: upgrade request not written whole", i);
    char head[2048];
    size_t got = 0;
    char *end = NULL;
    while (end == NULL) {
        if (got == sizeof head - 1)
            die("client %ld: response head over %zu bytes", i, sizeof head);
        ssize_t r = read(c, head + got, sizeof head - 1 - got);
        if (r <= 0)
            die("client %ld: no upgrade response: %s", i, r == 0 ? "end of stream" : strerror(errno));
        got += (size_t)r;
        head[got] = '\0';
        end = strstr(head, "\r\n\r\n");
    }
    if (sse ? strncmp(head, "HTTP/1.1 200 ", 13) != 0 || strcasestr(head, "chunked") == NULL
            : strncmp(head, "HTTP/1.1 101 ", 13) != 0)
        die("client %ld: %s refused: %.40s", i, sse ? "/sse" : "upgrade", head);
    size_t rest = got - (size_t)(end + 4 - head);
    if (rest > partial_max)
        die("client %ld: %zu bytes after the head", i, rest);
    memcpy(partial + (size_t)i * partial_max, end + 4, rest);
    partial_len[i] = (uint32_t)rest;
    int fl = fcntl(c, F_GETFL);
    if (fl < 0 || fcntl(c, F_SETFL, fl | O_NONBLOCK) != 0)
        die_errno("fcntl O_NONBLOCK");
    fds[i] = c;
}

/* reads the unsigned integer after `"key":` at the start of JSON object p */
static uint64_t json_u64(const unsigned char *p, size_t len, const char *key, long i)
{
    size_t klen = strlen(key);
    const unsigned char *q = memmem(p, len, key, klen);
    if (q == NULL)
        die("client %ld: event without %s", i, key);
    q += klen;
    const unsigned char *end = p + len;
    uint64_t v = 0;
    if (q >= end || *q < '0' || *q > '9')
        die("client %ld: %s is not a number", i, key);
    while (q < end && *q >= '0' && *q <= '9')
        v = v * 10 + (uint64_t)(*q++ - '0');
    return v;
}

/* one whole text message from client i, read at t (CLOCK_REALTIME ns) */
static void on_message(long i, const unsigned char *json, size_t len, int64_t t)
{
    /* the event's head: {"seq":N,"ts":T, ... within its first 64 bytes */
    size_t head = len < 64 ? len : 64;
    uint64_t seq = json_u64(json, head, "\"seq\":", i);
    uint64_t ts = json_u64(json, head, "\"ts\":", i);
    if (next_seq[i] == 0 && after >= 0 && seq != (uint64_t)after + 1)
        die("client %ld: asked for the events after %ld, got %" PRIu64 " first", i, after, seq);
    if (next_seq[i] != 0 && seq != next_seq[i])
        die("client %ld: got event %" PRIu64 ", expected %" PRIu64, i, seq, next_seq[i]);
    next_seq[i] = seq + 1;
    if (t >= win_start && t < win_end) {
        if (n_samples >= MAX_SAMPLES)
            die("more than %" PRId64 " messages in the window", MAX_SAMPLES);
        samples[n_samples++] = t - (int64_t)ts;
    }
}

/* frame length at p (header + payload) if p holds a whole header, else 0 */
static size_t frame_len(const unsigned char *p, size_t len, size_t *hdr, long i)
{
    if (len < 2)
        return 0;
    if (p[1] & 0x80)
        die("client %ld: masked frame from the server", i);
    uint64_t plen = p[1] & 0x7f;
    size_t h = 2;
    if (plen == 126) {
        if (len < 4)
            return 0;
        plen = (uint64_t)p[2] << 8 | p[3];
        h = 4;
    } else if (plen == 127) {
        if (len < 10)
            return 0;
        plen = 0;
        for (int k = 2; k < 10; k++)
            plen = plen << 8 | p[k];
        h = 10;
    }
    if (plen > partial_max - h)
        die("client %ld: a %" PRIu64 "-byte frame (this program takes up to %zu)", i, plen,
            partial_max);
    *hdr = h;
    return h + (size_t)plen;
}

/* one whole frame: text events counted, pings and pongs skipped, close fails */
static void on_frame(long i, const unsigned char *f, size_t hdr, size_t flen, int64_t t)
{
    int opcode = f[0] & 0x0f;
    if (opcode == 1) {
        if (!(f[0] & 0x80))
            die("client %ld: fragmented message", i);
        on_message(i, f + hdr, flen - hdr, t);
    } else if (opcode == 8) {
        die("client %ld: the server closed the connection (close frame)", i);
    } else if (opcode != 9 && opcode != 10) {
        die("client %ld: unexpected frame opcode %d", i, opcode);
    }
}

/* chunk length at p (size line + data + CRLF) if p holds a whole size line,
 * else 0; *hdr is the size line's length with its CRLF */
static size_t chunk_len(const unsigned char *p, size_t len, size_t *hdr, long i)
{
    uint64_t size = 0;
    size_t k = 0;
    for (; k < len && p[k] != '\r'; k++) {
        int d = p[k] >= '0' && p[k] <= '9'   ? p[k] - '0'
                : p[k] >= 'A' && p[k] <= 'F' ? p[k] - 'A' + 10
                : p[k] >= 'a' && p[k] <= 'f' ? p[k] - 'a' + 10
                                             : -1;
        if (d < 0 || k >= 8)
            die("client %ld: bad chunk size line", i);
        size = size << 4 | (uint64_t)d;
    }
    if (k + 1 >= len)
        return 0;
    if (k == 0 || p[k + 1] != '\n')
        die("client %ld: bad chunk size line", i);
    *hdr = k + 2;
    if (size > partial_max - *hdr - 2)
        die("client %ld: a %" PRIu64 "-byte chunk (this program takes up to %zu)", i, size,
            partial_max);
    return *hdr + (size_t)size + 2;
}

/* one whole chunk: the event's `data:` line counted, the last chunk fails */
static void on_chunk(long i, const unsigned char *c, size_t hdr, size_t clen, int64_t t)
{
    const unsigned char *d = c + hdr, *end = c + clen - 2;
    if (end[0] != '\r' || end[1] != '\n')
        die("client %ld: chunk without its CRLF", i);
    if (d == end)
        die("client %ld: the server ended the stream", i);
    const unsigned char *data = memmem(d, (size_t)(end - d), "data: ", 6);
    if (data == NULL)
        return; /* a comment or another field only */
    data += 6;
    const unsigned char *nl = memchr(data, '\n', (size_t)(end - data));
    if (nl == NULL)
        die("client %ld: data line without its end", i);
    on_message(i, data, (size_t)(nl - data), t);
}

/* answer length at p (head + body) if p holds its whole head, else 0; *hdr is
 * the head's length with its blank line */
static size_t answer_len(const unsigned char *p, size_t len, size_t *hdr, long i)
{
    const unsigned char *end = memmem(p, len, "\r\n\r\n", 4);
    if (end == NULL) {
        if (len >= partial_max)
            die("client %ld: an answer head over %zu bytes", i, partial_max);
        return 0;
    }
    *hdr = (size_t)(end - p) + 4;
    const unsigned char *cl = memmem(p, *hdr, "\r\ncontent-length: ", 18);
    if (cl == NULL)
        die("client %ld: an answer without content-length", i);
    uint64_t body = json_u64(cl, *hdr - (size_t)(cl - p), "content-length: ", i);
    if (body > partial_max - *hdr)
        die("client %ld: a %" PRIu64 "-byte answer (this program takes up to %zu)", i,
            *hdr + body, partial_max);
    return *hdr + (size_t)body;
}

/* one whole long-poll answer: its events counted, the next long-poll sent */
static void on_answer(long i, const unsigned char *a, size_t hdr, size_t alen, int64_t t)
{
    if (strncmp((const char *)a, "HTTP/1.1 200 ", 13) != 0)
        die("client %ld: an answer that is not a 200: %.15s", i, (const char *)a);
    if (memmem(a, hdr, "\r\nconnection: close", 20) != NULL)
        die("client %ld: the server is closing the connection", i);
    const unsigned char *b = a + hdr, *end = a + alen;
    const unsigned char *q = b;
    while ((q = memmem(q, (size_t)(end - q), "{\"seq\":", 7)) != NULL) {
        on_message(i, q, (size_t)(end - q), t);
        q += 7;
    }
    const unsigned char *next = memmem(b, (size_t)(end - b), "],\"next\":", 9);
    if (next == NULL)
        die("client %ld: an answer without next", i);
    send_long_poll(i, (long long)json_u64(next, (size_t)(end - next), "\"next\":", i));
}

/* a unit's length (a frame; with --sse a chunk; with --longpoll an answer) at p,
 * or 0 if incomplete */
static size_t unit_len(const unsigned char *p, size_t len, size_t *hdr, long i)
{
    return sse        ? chunk_len(p, len, hdr, i)
           : longpoll ? answer_len(p, len, hdr, i)
                      : frame_len(p, len, hdr, i);
}

static void on_unit(long i, const unsigned char *u, size_t hdr, size_t ulen, int64_t t)
{
    if (sse)
        on_chunk(i, u, hdr, ulen, t);
    else if (longpoll)
        on_answer(i, u, hdr, ulen, t);
    else
        on_frame(i, u, hdr, ulen, t);
}

/* feeds len bytes read from client i at t through its partial buffer */
static void on_bytes(long i, const unsigned char *p, size_t len, int64_t t)
{
    unsigned char *part = partial + (size_t)i * partial_max;
    size_t hdr, flen;
    while (len > 0) {
        if (partial_len[i] == 0 && (flen = unit_len(p, len, &hdr, i)) != 0 && flen <= len) {
            on_unit(i, p, hdr, flen, t); /* a whole frame in the read buffer */
            p += flen;
            len -= flen;
            continue;
        }
        /* a split frame: gather it; a frame is at most partial_max bytes, so a full
         * buffer always holds one and every pass makes progress */
        size_t have = partial_len[i];
        size_t take = partial_max - have < len ? partial_max - have : len;
        memcpy(part + have, p, take);
        have += take;
        p += take;
        len -= take;
        size_t off = 0;
        while ((flen = unit_len(part + off, have - off, &hdr, i)) != 0 && flen <= have - off) {
            on_unit(i, part + off, hdr, flen, t);
            off += flen;
        }
        memmove(part, part + off, have - off);
        partial_len[i] = (uint32_t)(have - off);
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t pct(double q)
{
    int64_t k = (int64_t)(q * (double)n_samples + 0.999999999);
    if (k < 1)
        k = 1;
    return samples[k - 1];
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((size_t)cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        die_errno("sched_setaffinity");
    raise_fd_limit();
    fds = xcalloc((size_t)n_clients, sizeof *fds, "descriptors");
    if (longpoll)
        partial_max = 65536;
    partial = xcalloc((size_t)n_clients, partial_max, "partial frames");
    partial_len = xcalloc((size_t)n_clients, sizeof *partial_len, "partial lengths");
    next_seq = xcalloc((size_t)n_clients, sizeof *next_seq, "sequence numbers");
    int64_t per_s = n_clients * 1000; /* room for a feed up to 1,000 events/s per client */
    int64_t cap = per_s * seconds < MAX_SAMPLES ? per_s * seconds : MAX_SAMPLES;
    samples = xcalloc((size_t)cap, sizeof *samples, "latency samples");

    int64_t deadline = clock_ns(CLOCK_MONOTONIC) + CONNECT_NS;
    for (long i = 0; i < n_clients; i++)
        connect_client(i, deadline);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die_errno("epoll_create1");
    for (long i = 0; i < n_clients; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) != 0)
            die_errno("epoll_ctl");
    }
    struct epoll_event *evs = xcalloc(MAX_EVENTS, sizeof *evs, "epoll events");
    unsigned char *buf = xcalloc(1, READ_BUF, "read buffer");
    /* bytes that came with the 101 heads */
    int64_t now = clock_ns(CLOCK_REALTIME);
    win_start = now + warmup * NS_PER_S;
    win_end = win_start + seconds * NS_PER_S;
    for (long i = 0; i < n_clients; i++) {
        uint32_t held = partial_len[i];
        if (held > 0) {
            memcpy(buf, partial + (size_t)i * partial_max, held);
            partial_len[i] = 0;
            on_bytes(i, buf, held, now);
        }
    }

    int64_t cpu_start = -1, cpu_end = -1, last_msg = clock_ns(CLOCK_MONOTONIC);
    for (;;) {
        now = clock_ns(CLOCK_REALTIME);
        if (cpu_start < 0 && now >= win_start)
            cpu_start = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        if (now >= win_end) {
            cpu_end = clock_ns(CLOCK_THREAD_CPUTIME_ID);
            break;
        }
        int wait_ms = (int)((win_start > now ? win_start - now : win_end - now) / 1000000) + 1;
        int n = epoll_wait(ep, evs, MAX_EVENTS, wait_ms < 100 ? wait_ms : 100);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die_errno("epoll_wait");
        }
        if (n > 0)
            last_msg = clock_ns(CLOCK_MONOTONIC);
        else if (clock_ns(CLOCK_MONOTONIC) - last_msg > STALL_NS)
            die("no message for %" PRId64 " s: is the feed running?", STALL_NS / NS_PER_S);
        for (int e = 0; e < n; e++) {
            long i = (long)evs[e].data.u64;
            ssize_t r = read(fds[i], buf, read_bytes);
            int64_t t = clock_ns(CLOCK_REALTIME);
            if (r > 0)
                on_bytes(i, buf, (size_t)r, t);
            else if (r == 0)
                die("client %ld: the server ended the stream", i);
            else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                die("client %ld: read: %s", i, strerror(errno));
        }
    }
    for (long i = 0; i < n_clients; i++)
        close(fds[i]);
    if (n_samples == 0)
        die("no message in the %ld s window: is the feed running?", seconds);
    qsort(samples, (size_t)n_samples, sizeof *samples, cmp_i64);
    printf("messages in window %" PRId64 "\n", n_samples);
    printf("latency from schedule (us): p50 %" PRId64 " p99 %" PRId64 " max %" PRId64 "\n",
           pct(0.50) / 1000, pct(0.99) / 1000, samples[n_samples - 1] / 1000);
    printf("reader cpu per message (us): %.3f\n",
           (double)(cpu_end - cpu_start) / 1000.0 / (double)n_samples);
    return 0;
}
