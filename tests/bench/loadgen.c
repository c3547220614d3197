/* loadgen -- a small memcached load generator for make bench: the text
 * protocol, or with -M the meta protocol.
 *
 *   loadgen -s HOST:PORT [-c CONNS] [-r RATE] [-t SECONDS] [-g GET_RATIO]
 *           [-n KEYS] [-k KEY_LEN] [-v VALUE_LEN] [-m KEYS_PER_GET]
 *           [-d DEPTH] [-M] [-P] [-Z CA_FILE]
 *
 * Open loop (-r RATE > 0): request i is due at start + i/RATE, whatever
 * the replies; it goes to connection i % CONNS (pipelined behind what that
 * connection still waits for) and its latency runs from that due time, not
 * from the moment it was written, so a target that stalls is charged for
 * every request it held up (no coordinated omission).  A timerfd armed at
 * the next due time (with 1 ns timer slack) wakes the loop; "lag" is how
 * late the generator itself wrote.  Closed loop (-r 0): each connection
 * keeps DEPTH requests in flight and latency runs from the write.
 *
 * Requests: a get of KEYS_PER_GET random keys (probability GET_RATIO) or a
 * set of one random key with a VALUE_LEN-byte value.  Keys are "lg" and a
 * zero-padded number below KEYS, KEY_LEN bytes in all.  -P (preload) sets
 * every key once and exits.  Every reply is parsed: a get must answer only
 * VALUE lines of the keys asked, in their order, with VALUE_LEN bytes each,
 * then END; a set must answer STORED.  Anything else counts as an error
 * (an unparseable stream also closes that connection).
 *
 * Meta (-M): a get of one key is "mg <key> v f" and must answer either
 * "VA <VALUE_LEN> f0" and the value (a hit) or "EN" (a miss); a get of
 * KEYS_PER_GET > 1 keys is that many quiet gets "mg <key> v f q k" and an
 * "mn", and must answer only "VA <VALUE_LEN> f0 k<key>" lines (flags in
 * any order) of the keys asked, in their order, each with its value, then
 * "MN" (a quiet get that misses says nothing).  A set is
 * "ms <key> <VALUE_LEN> T0" with the value (flags 0 and no expiry, as the
 * text set) and must answer "HD".  A VA line with any other flag, another
 * length or flags other than 0 (every writer of these keys stores 0) makes
 * its request an error; so does any other line (ERROR, CLIENT_ERROR, ...):
 * for a one-key get or a set it is the reply, for a multi-key get the
 * request still waits for its MN.  A request with an error counts in
 * errors, not in requests, hits or misses.  An ms answered ERROR (a target
 * that knows no ms reads the value as a command, and answers that too)
 * also closes its connection.
 *
 * TLS (-Z CA_FILE): every connection speaks TLS (OpenSSL, TLS 1.2 or
 * later), verifying the target's certificate against CA_FILE and, as a
 * client should, that it names the target's host (an IP address in its
 * IP names, else a DNS name, sent as SNI too).  The handshakes are all done,
 * non-blocking, before the first request is due, so the timed window holds
 * only the records of the requests and replies; a failed one is exit 1.
 * A line "loadgen: tls PROTOCOL CIPHER" says what was negotiated.
 *
 * The last line of output is "RESULT name=value ...": requests, keys,
 * seconds, rate (requests/s), keys_per_s, hits, misses, errors, dropped
 * (open loop: a connection had 4096 requests waiting), mean_us, p50_us, p99_us,
 * p999_us, max_us, lag_max_us.  Exit status 1 when it cannot connect.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define RING 4096          /* requests in flight per connection, at most */
#define IN_CAP (256 * 1024)
#define MAX_KEYS 100
#define NBUCKET 4096       /* log-linear latency buckets (ns), ~1.5% wide */
#define DRAIN_NS 2000000000ULL

enum { OP_GET, OP_SET };

struct req {
    uint64_t due;          /* ns: latency runs from here */
    uint32_t key[MAX_KEYS];
    uint8_t op;
};

struct conn {
    int fd, dead, want_out;
    SSL *ssl;              /* -Z: TLS on fd */
    char *in;
    size_t inlen;
    char *out;
    size_t outlen, outoff, outcap;
    struct req *ring;
    unsigned head, count;
    int in_data;           /* reading a value's bytes */
    size_t remain;         /* of the value, with its \r\n */
    unsigned cursor, hits; /* of the request at the head */
    int bad;               /* meta: the head request had a wrong reply line */
    int end_after_data;    /* meta: the value being read ends the head request */
};

static struct {
    int conns, keylen, vlen, nkeys, depth, preload;
    double rate, secs, get_ratio;
} opt = { 32, 32, 100, 10000, 1, 0, 0, 5, 0.9 };
static int mget = 1;
static int meta;           /* -M: the meta protocol */
static const char *tls_ca; /* -Z: TLS, verified against this CA file */
static SSL_CTX *tls_ctx;

static struct conn *cs;
static char *value;
static uint64_t rng = 88172645463325252ULL;
static uint64_t t_start, t_end, t_last, next_i, preload_next;
static uint64_t n_req, n_keys, n_hits, n_miss, n_err, n_drop, n_sent, lag_max;
static uint64_t hist[NBUCKET], lat_max, lat_sum;
static int running = 1;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ULL;
}

/* Values below 128 ns have a bucket each; above, 64 buckets per power of 2. */
static unsigned bucket(uint64_t v)
{
    if (v < 128)
        return (unsigned)v;
    unsigned e = 63 - __builtin_clzll(v) - 6;
    unsigned b = e * 64 + (unsigned)(v >> e);
    return b < NBUCKET ? b : NBUCKET - 1;
}

static double bucket_mid(unsigned b)
{
    if (b < 128)
        return b;
    unsigned e = b / 64 - 1;
    return (double)((uint64_t)(b - e * 64) << e) + (double)(1ULL << e) / 2;
}

static double percentile(double p)
{
    uint64_t total = 0, want, seen = 0;
    for (unsigned b = 0; b < NBUCKET; b++)
        total += hist[b];
    if (!total)
        return 0;
    want = (uint64_t)(p * total + 0.999999);
    if (want < 1)
        want = 1;
    for (unsigned b = 0; b < NBUCKET; b++) {
        seen += hist[b];
        if (seen >= want)
            return bucket_mid(b) / 1000;
    }
    return lat_max / 1000.0;
}

static void put(struct conn *c, const void *p, size_t n)
{
    if (c->outlen + n > c->outcap) {
        c->outcap = (c->outlen + n) * 2;
        if (!(c->out = realloc(c->out, c->outcap))) {
            perror("loadgen: realloc");
            exit(1);
        }
    }
    memcpy(c->out + c->outlen, p, n);
    c->outlen += n;
}

static void put_key(struct conn *c, uint32_t k)
{
    char buf[300];
    int n = snprintf(buf, sizeof buf, "lg%0*u", opt.keylen - 2, k);
    put(c, buf, n);
}

static void kill_conn(struct conn *c, const char *why)
{
    if (c->dead)
        return;
    fprintf(stderr, "loadgen: connection %d: %s; %u requests lost\n",
            (int)(c - cs), why, c->count);
    n_err += c->count + 1;
    c->count = 0;
    c->dead = 1;
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    close(c->fd);
}

/* What the last SSL call on c failed with, for a message. */
static const char *tls_error(struct conn *c, int rc)
{
    static char buf[256];
    int e = SSL_get_error(c->ssl, rc);
    unsigned long code = ERR_get_error();
    if (code)
        ERR_error_string_n(code, buf, sizeof buf);
    else if (e == SSL_ERROR_SYSCALL)
        snprintf(buf, sizeof buf, "TLS: %s", errno ? strerror(errno) : "unexpected EOF");
    else if (e == SSL_ERROR_ZERO_RETURN)
        snprintf(buf, sizeof buf, "TLS: closed by the target");
    else
        snprintf(buf, sizeof buf, "TLS: error %d", e);
    ERR_clear_error();
    return buf;
}

/* write(2) or SSL_write: > 0 bytes written; 0 when it would block
 * (errno EAGAIN); < 0 on an error, *why saying what. */
static ssize_t conn_write(struct conn *c, const void *p, size_t n, const char **why)
{
    if (!c->ssl) {
        ssize_t w = write(c->fd, p, n);
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            return 0;
        if (w < 0)
            *why = strerror(errno);
        return w;
    }
    size_t done;
    int rc = SSL_write_ex(c->ssl, p, n, &done);
    if (rc > 0)
        return (ssize_t)done;
    int e = SSL_get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
        return 0;
    *why = tls_error(c, rc);
    return -1;
}

/* read(2) or SSL_read: > 0 bytes read; 0 when nothing is there (yet);
 * < 0 at the end or on an error, *why saying which. */
static ssize_t conn_read(struct conn *c, void *p, size_t n, const char **why)
{
    if (!c->ssl) {
        ssize_t r = read(c->fd, p, n);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return 0;
        if (r <= 0) {
            *why = r == 0 ? "closed by the target" : strerror(errno);
            return -1;
        }
        return r;
    }
    size_t got;
    int rc = SSL_read_ex(c->ssl, p, n, &got);
    if (rc > 0)
        return (ssize_t)got;
    int e = SSL_get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    *why = e == SSL_ERROR_ZERO_RETURN ? "closed by the target" : tls_error(c, rc);
    return -1;
}

static void set_out(int ep, struct conn *c, int on)
{
    struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };
    if (c->want_out != on && epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->want_out = on;
}

static void flush(int ep, struct conn *c)
{
    while (!c->dead && c->outoff < c->outlen) {
        const char *why = NULL;
        ssize_t n = conn_write(c, c->out + c->outoff, c->outlen - c->outoff, &why);
        if (n > 0)
            c->outoff += n;
        else if (n == 0)
            break;
        else {
            kill_conn(c, why);
            return;
        }
    }
    if (c->outoff == c->outlen)
        c->outoff = c->outlen = 0;
    set_out(ep, c, c->outlen > 0);
}

/* Queue one request on c (due: when it was due); flush() writes it. */
static void issue(struct conn *c, uint64_t due)
{
    if (c->dead)
        return;
    if (c->count == RING) {
        n_drop++;
        return;
    }
    struct req *q = &c->ring[(c->head + c->count++) % RING];
    q->due = due;
    q->op = opt.preload || (rnd() >> 11) * 0x1p-53 >= opt.get_ratio ? OP_SET : OP_GET;
    n_sent++;
    if (q->op == OP_SET) {
        char line[64];
        q->key[0] = opt.preload ? (uint32_t)preload_next++ : (uint32_t)(rnd() % opt.nkeys);
        put(c, meta ? "ms " : "set ", meta ? 3 : 4);
        put_key(c, q->key[0]);
        put(c, line, snprintf(line, sizeof line, meta ? " %d T0\r\n" : " 0 0 %d\r\n", opt.vlen));
        put(c, value, opt.vlen);
        put(c, "\r\n", 2);
        return;
    }
    if (meta) {
        for (int i = 0; i < mget; i++) {
            q->key[i] = (uint32_t)(rnd() % opt.nkeys);
            put(c, "mg ", 3);
            put_key(c, q->key[i]);
            if (mget == 1)
                put(c, " v f\r\n", 6);
            else
                put(c, " v f q k\r\n", 10);
        }
        if (mget > 1)
            put(c, "mn\r\n", 4);
        return;
    }
    put(c, "get", 3);
    for (int i = 0; i < mget; i++) {
        q->key[i] = (uint32_t)(rnd() % opt.nkeys);
        put(c, " ", 1);
        put_key(c, q->key[i]);
    }
    put(c, "\r\n", 2);
}

static int may_issue(uint64_t now)
{
    if (opt.preload)
        return preload_next < (uint64_t)opt.nkeys;
    return running && opt.rate == 0 && now < t_end;
}

static void complete(struct conn *c, uint64_t now, int ok)
{
    struct req *q = &c->ring[c->head];
    uint64_t lat = now > q->due ? now - q->due : 0;
    if (ok) {
        hist[bucket(lat)]++;
        if (lat > lat_max)
            lat_max = lat;
        lat_sum += lat;
        n_req++;
        n_keys += q->op == OP_GET ? mget : 1;
        if (q->op == OP_GET)
            n_hits += c->hits, n_miss += mget - c->hits;
        t_last = now;
    } else
        n_err++;
    c->head = (c->head + 1) % RING;
    c->count--;
    c->cursor = c->hits = 0;
    c->bad = c->end_after_data = 0;
    if (may_issue(now))
        issue(c, now);
}

/* A VALUE line for the head request: the key must be one it asked for,
 * after the ones already answered; 1 if so. */
static int value_line(struct conn *c, const char *l, size_t len)
{
    struct req *q = &c->ring[c->head];
    char key[300];
    unsigned flags;
    unsigned long bytes;
    if (len >= sizeof key || sscanf(l, "VALUE %299s %u %lu", key, &flags, &bytes) != 3)
        return 0;
    c->remain = bytes + 2;
    c->in_data = 1;
    if (strlen(key) != (size_t)opt.keylen || key[0] != 'l' || key[1] != 'g'
        || bytes != (unsigned long)opt.vlen)
        return 0;
    unsigned long k = strtoul(key + 2, NULL, 10);
    while (c->cursor < (unsigned)mget && q->key[c->cursor] != k)
        c->cursor++;
    if (c->cursor == (unsigned)mget)
        return 0;
    c->cursor++;
    c->hits++;
    return 1;
}

/* Meta: a VA line for the head get.  Sets up reading its value when its
 * length parses (else c->in_data stays 0: the stream cannot be followed);
 * 1 if it is a hit the get asked for: VALUE_LEN bytes, flags f0 and, for a
 * multi-key get, k<key> of a key asked after the ones already answered,
 * and no other flag. */
static int va_line(struct conn *c, const char *l, size_t len)
{
    struct req *q = &c->ring[c->head];
    const char *p = l + 3, *end = l + len;
    char *e;
    unsigned long bytes = strtoul(p, &e, 10);
    if (e == p || *p < '0' || *p > '9' || (e != end && *e != ' '))
        return 0;
    c->remain = bytes + 2;
    c->in_data = 1;
    int ok = bytes == (unsigned long)opt.vlen, seen_f = 0, seen_k = 0;
    p = e;
    while (p < end) {
        while (p < end && *p == ' ')
            p++;
        if (p == end)
            break;
        const char *tok = p;
        while (p < end && *p != ' ')
            p++;
        size_t tlen = p - tok;
        if (tok[0] == 'f' && !seen_f) {
            seen_f = 1;
            ok &= tlen == 2 && tok[1] == '0';
        } else if (tok[0] == 'k' && !seen_k && mget > 1) {
            seen_k = 1;
            if (tlen - 1 != (size_t)opt.keylen || tok[1] != 'l' || tok[2] != 'g') {
                ok = 0;
                continue;
            }
            unsigned long k = 0;
            for (size_t i = 3; i < tlen; i++) {
                if (tok[i] < '0' || tok[i] > '9')
                    ok = 0;
                k = k * 10 + (unsigned long)(tok[i] - '0');
            }
            while (c->cursor < (unsigned)mget && q->key[c->cursor] != k)
                c->cursor++;
            if (c->cursor == (unsigned)mget)
                ok = 0;
            else
                c->cursor++;
        } else
            ok = 0;
    }
    ok &= seen_f && (mget == 1 || seen_k);
    if (ok)
        c->hits++;
    return ok;
}

/* Meta: one reply line l (len bytes) for the head request; 0 when the
 * stream cannot be followed (c is closed). */
static int meta_line(struct conn *c, const char *l, size_t len, uint64_t now)
{
    int op = c->ring[c->head].op;
    if (op == OP_GET && len > 3 && memcmp(l, "VA ", 3) == 0) {
        if (!va_line(c, l, len)) {
            if (!c->in_data) {
                kill_conn(c, "a VA line without a length");
                return 0;
            }
            if (n_err < 10)
                fprintf(stderr, "loadgen: unexpected %.*s\n", (int)(len > 80 ? 80 : len), l);
            c->bad = 1;
        }
        c->end_after_data = mget == 1;
        return 1;
    }
    if (op == OP_GET && mget > 1 && !(len == 2 && memcmp(l, "MN", 2) == 0)) {
        if (n_err < 10)
            fprintf(stderr, "loadgen: mg answered %.*s\n", (int)(len > 80 ? 80 : len), l);
        c->bad = 1;
        return 1;
    }
    int ok = !c->bad && ((op == OP_GET && mget == 1 && len == 2 && memcmp(l, "EN", 2) == 0)
                         || (op == OP_GET && mget > 1)     /* MN */
                         || (op == OP_SET && len == 2 && memcmp(l, "HD", 2) == 0));
    if (!ok && !c->bad && n_err < 10)
        fprintf(stderr, "loadgen: %s answered %.*s\n", op == OP_GET ? "mg" : "ms",
                (int)(len > 80 ? 80 : len), l);
    complete(c, now, ok);
    if (op == OP_SET && len == 5 && memcmp(l, "ERROR", 5) == 0) {
        /* it did not know ms: the value it will read as a command line
         * answers too, and every reply after it would be the wrong one's */
        kill_conn(c, "ms answered ERROR (its value is taken for a command)");
        return 0;
    }
    return 1;
}

/* Parse what c has read; complete the requests whose replies are whole. */
static void parse(struct conn *c, uint64_t now)
{
    size_t pos = 0;
    while (!c->dead) {
        if (c->in_data) {
            size_t avail = c->inlen - pos, take = c->remain - 2;
            if (take > avail)
                take = avail;
            pos += take;
            c->remain -= take;
            if (c->remain > 2 || c->inlen - pos < 2)
                break;
            if (memcmp(c->in + pos, "\r\n", 2) != 0) {
                kill_conn(c, "a value not followed by \\r\\n");
                return;
            }
            pos += 2;
            c->in_data = 0;
            if (c->end_after_data)
                complete(c, now, !c->bad);
            continue;
        }
        char *l = c->in + pos, *eol = memmem(l, c->inlen - pos, "\r\n", 2);
        if (!eol) {
            if (c->inlen - pos > 4096)
                kill_conn(c, "a reply line longer than 4096 bytes");
            break;
        }
        size_t len = eol - l;
        pos += len + 2;
        if (c->count == 0) {
            fprintf(stderr, "loadgen: unasked reply: %.*s\n", (int)(len > 80 ? 80 : len), l);
            kill_conn(c, "a reply to nothing");
            return;
        }
        if (meta) {
            if (!meta_line(c, l, len, now))
                return;
            continue;
        }
        int op = c->ring[c->head].op;
        if (op == OP_GET && len > 6 && memcmp(l, "VALUE ", 6) == 0) {
            if (!value_line(c, l, len)) {
                if (n_err < 10)
                    fprintf(stderr, "loadgen: unexpected %.*s\n", (int)(len > 80 ? 80 : len), l);
                n_err++;
            }
            continue;
        }
        int ok = (op == OP_GET && len == 3 && memcmp(l, "END", 3) == 0)
              || (op == OP_SET && len == 6 && memcmp(l, "STORED", 6) == 0);
        if (!ok && n_err < 10)
            fprintf(stderr, "loadgen: %s answered %.*s\n", op == OP_GET ? "get" : "set",
                    (int)(len > 80 ? 80 : len), l);
        complete(c, now, ok);
    }
    memmove(c->in, c->in + pos, c->inlen - pos);
    c->inlen -= pos;
}

/* One read per readiness (epoll is level-triggered), unless it filled
 * the buffer: the reply stream is parsed as it comes.  With TLS, reads
 * until OpenSSL wants more from the socket: a record it has already
 * read (or decrypted in part) would get no readiness of its own. */
static void on_read(int ep, struct conn *c)
{
    for (;;) {
        size_t room = IN_CAP - c->inlen;
        const char *why = NULL;
        ssize_t n = conn_read(c, c->in + c->inlen, room, &why);
        if (n == 0)
            break;
        if (n < 0) {
            kill_conn(c, why);
            return;
        }
        c->inlen += n;
        parse(c, now_ns());
        if (c->dead)
            return;
        if (c->inlen == IN_CAP) {
            kill_conn(c, "a reply line filled the input buffer");
            return;
        }
        if ((size_t)n < room && !c->ssl)
            break;
    }
    flush(ep, c);
}

static void arm(int tfd, uint64_t at)
{
    struct itimerspec its = { .it_value = { at / 1000000000ULL, at % 1000000000ULL } };
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static uint64_t due(uint64_t i)
{
    return t_start + (uint64_t)(i * 1e9 / opt.rate);
}

/* Open loop: write every request due by now; arm the timer for the next. */
static void on_timer(int ep, int tfd)
{
    uint64_t exp, now = now_ns();
    if (read(tfd, &exp, sizeof exp) < 0 && errno != EAGAIN)
        perror("loadgen: timerfd");
    if (now >= t_end)
        running = 0;
    if (!running || opt.rate == 0)
        return;
    while (due(next_i) <= now && due(next_i) < t_end) {
        struct conn *c = &cs[next_i % opt.conns];
        uint64_t d = due(next_i++);
        issue(c, d);
        flush(ep, c);
        uint64_t lag = now_ns() - d;
        if (lag > lag_max)
            lag_max = lag;
    }
    arm(tfd, due(next_i) < t_end ? due(next_i) : t_end);
}

static int connect_to(const char *hostport)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai;
    if (!colon || colon - hostport >= (long)sizeof host)
        return -1;
    memcpy(host, hostport, colon - hostport);
    host[colon - hostport] = 0;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
        return -1;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd >= 0) {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(fd, F_SETFL, O_NONBLOCK);
    }
    return fd;
}

/* -Z: the TLS context, verifying against tls_ca; exits on an error. */
static void tls_init(void)
{
    tls_ctx = SSL_CTX_new(TLS_client_method());
    if (!tls_ctx || !SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION)
        || SSL_CTX_load_verify_locations(tls_ctx, tls_ca, NULL) != 1) {
        fprintf(stderr, "loadgen: TLS: %s: %s\n", tls_ca,
                ERR_error_string(ERR_get_error(), NULL));
        exit(1);
    }
    SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_PEER, NULL);
    /* flush() may hand SSL_write a moved buffer after a WANT_WRITE, and
     * takes what it wrote of it */
    SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE
                                  | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* one read(2) for what the socket holds, not one for each record's
     * 5-byte header and one for its body: the generator shares the CPU
     * with the target.  on_read reads on until OpenSSL wants more, so
     * nothing read ahead waits for a readiness that will not come. */
    SSL_CTX_set_read_ahead(tls_ctx, 1);
}

/* -Z: a TLS client on every connection's socket, handshakes all done
 * before this returns (10 s at most), none in the timed window; exits on
 * a failure.  host: the target's, which its certificate must name. */
static void tls_handshakes(const char *hostport)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    snprintf(host, sizeof host, "%.*s", (int)(colon - hostport), hostport);
    if (host[0] == '[') {                   /* [::1] */
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = 0;
    }
    struct in6_addr a6;
    int is_ip = inet_pton(AF_INET, host, &a6) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
    struct pollfd *pfd = calloc(opt.conns, sizeof *pfd);
    for (int i = 0; i < opt.conns; i++) {
        struct conn *c = &cs[i];
        c->ssl = SSL_new(tls_ctx);
        X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
        int ok = c->ssl && SSL_set_fd(c->ssl, c->fd) == 1
                 && (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, host)
                           : X509_VERIFY_PARAM_set1_host(vp, host, 0)
                                 && SSL_set_tlsext_host_name(c->ssl, host));
        if (!ok) {
            fprintf(stderr, "loadgen: TLS: %s\n", ERR_error_string(ERR_get_error(), NULL));
            exit(1);
        }
        SSL_set_connect_state(c->ssl);
    }
    uint64_t deadline = now_ns() + 10000000000ULL;
    for (;;) {
        int waiting = 0;
        for (int i = 0; i < opt.conns; i++) {
            struct conn *c = &cs[i];
            pfd[i].fd = -1;
            if (SSL_is_init_finished(c->ssl))
                continue;
            int rc = SSL_do_handshake(c->ssl);
            if (rc == 1)
                continue;
            int e = SSL_get_error(c->ssl, rc);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                long v = SSL_get_verify_result(c->ssl);
                fprintf(stderr, "loadgen: TLS handshake with %s failed: %s%s%s\n", hostport,
                        tls_error(c, rc), v != X509_V_OK ? ": " : "",
                        v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
                exit(1);
            }
            pfd[i].fd = c->fd;
            pfd[i].events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
            waiting++;
        }
        if (!waiting)
            break;
        if (now_ns() > deadline) {
            fprintf(stderr, "loadgen: TLS: %d handshakes with %s unfinished after 10 s\n",
                    waiting, hostport);
            exit(1);
        }
        poll(pfd, opt.conns, 100);
    }
    printf("loadgen: tls %s %s, %d handshakes before the run\n", SSL_get_version(cs[0].ssl),
           SSL_get_cipher_name(cs[0].ssl), opt.conns);
    free(pfd);
}

static int usage(void)
{
    fprintf(stderr, "usage: loadgen -s HOST:PORT [-c CONNS] [-r RATE] [-t SECONDS] "
                    "[-g GET_RATIO] [-n KEYS] [-k KEY_LEN] [-v VALUE_LEN] "
                    "[-m KEYS_PER_GET] [-d DEPTH] [-M] [-P] [-Z CA_FILE]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *target = NULL;
    int ch;
    while ((ch = getopt(argc, argv, "s:c:r:t:g:n:k:v:m:d:MPZ:")) != -1) {
        switch (ch) {
        case 's': target = optarg; break;
        case 'c': opt.conns = atoi(optarg); break;
        case 'r': opt.rate = atof(optarg); break;
        case 't': opt.secs = atof(optarg); break;
        case 'g': opt.get_ratio = atof(optarg); break;
        case 'n': opt.nkeys = atoi(optarg); break;
        case 'k': opt.keylen = atoi(optarg); break;
        case 'v': opt.vlen = atoi(optarg); break;
        case 'm': mget = atoi(optarg); break;
        case 'd': opt.depth = atoi(optarg); break;
        case 'M': meta = 1; break;
        case 'P': opt.preload = 1; break;
        case 'Z': tls_ca = optarg; break;
        default: return usage();
        }
    }
    if (!target || opt.conns < 1 || opt.rate < 0 || opt.secs <= 0 || opt.nkeys < 1
        || opt.keylen < 12 || opt.keylen > 250 || opt.vlen < 0 || mget < 1
        || mget > MAX_KEYS || opt.depth < 1 || opt.depth > RING)
        return usage();
    if (opt.preload)
        opt.depth = 16, opt.rate = 0;

    prctl(PR_SET_TIMERSLACK, 1UL);
    value = malloc(opt.vlen + 1);
    memset(value, 'x', opt.vlen);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
    cs = calloc(opt.conns, sizeof *cs);
    if (tls_ca)
        tls_init();
    for (int i = 0; i < opt.conns; i++) {
        struct conn *c = &cs[i];
        if ((c->fd = connect_to(target)) < 0) {
            fprintf(stderr, "loadgen: cannot connect to %s: %s\n", target, strerror(errno));
            return 1;
        }
        c->in = malloc(IN_CAP);
        c->ring = malloc(RING * sizeof *c->ring);
    }
    if (tls_ca)
        tls_handshakes(target);
    for (int i = 0; i < opt.conns; i++) {
        ev.data.ptr = &cs[i];
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
    }

    t_start = now_ns() + 1000000;  /* 1 ms from now: the first due time */
    t_end = opt.preload ? UINT64_MAX : t_start + (uint64_t)(opt.secs * 1e9);
    if (opt.rate > 0)
        arm(tfd, t_start);
    else {
        while (now_ns() < t_start)
            ;
        for (int d = 0; d < opt.depth; d++)
            for (int i = 0; i < opt.conns && may_issue(t_start); i++)
                issue(&cs[i], now_ns());
        for (int i = 0; i < opt.conns; i++)
            flush(ep, &cs[i]);
        if (!opt.preload)
            arm(tfd, t_end);
    }

    struct epoll_event evs[64];
    for (;;) {
        uint64_t now = now_ns(), left = 0;
        for (int i = 0; i < opt.conns; i++)
            left += cs[i].count;
        if (opt.preload && left == 0 && !may_issue(now))
            break;
        if (now >= t_end)
            running = 0;
        if (!running && (left == 0 || now >= t_end + DRAIN_NS)) {
            if (left)
                fprintf(stderr, "loadgen: %llu requests unanswered %.1f s after the end\n",
                        (unsigned long long)left, DRAIN_NS / 1e9);
            n_err += left;
            break;
        }
        int live = 0;
        for (int i = 0; i < opt.conns; i++)
            live += !cs[i].dead;
        if (!live) {
            fprintf(stderr, "loadgen: every connection is closed\n");
            break;
        }
        int n = epoll_wait(ep, evs, 64, running ? 1000 : 100);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c)
                on_timer(ep, tfd);
            else if (!c->dead && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                on_read(ep, c);
            else if (!c->dead && (evs[i].events & EPOLLOUT))
                flush(ep, c);
        }
    }

    double secs = t_last > t_start ? (t_last - t_start) / 1e9 : 0;
    if (opt.rate > 0)
        secs = opt.secs;
    printf("loadgen: %s %s%s, %d conns, %.0f%% get x%d keys, %d B values, %d keys, %.1f s\n",
           target, meta ? "meta, " : "",
           opt.preload ? "preload" : opt.rate > 0 ? "open loop" : "closed loop",
           opt.conns, opt.get_ratio * 100, mget, opt.vlen, opt.nkeys, opt.secs);
    printf("RESULT requests=%llu keys=%llu seconds=%.3f rate=%.1f keys_per_s=%.1f "
           "hits=%llu misses=%llu errors=%llu dropped=%llu mean_us=%.1f p50_us=%.1f p99_us=%.1f "
           "p999_us=%.1f max_us=%.1f lag_max_us=%.1f\n",
           (unsigned long long)n_req, (unsigned long long)n_keys, secs,
           secs > 0 ? n_req / secs : 0, secs > 0 ? n_keys / secs : 0,
           (unsigned long long)n_hits, (unsigned long long)n_miss,
           (unsigned long long)n_err, (unsigned long long)n_drop,
           n_req ? lat_sum / 1e3 / n_req : 0,
           percentile(0.50), percentile(0.99), percentile(0.999), lat_max / 1000.0,
           lag_max / 1000.0);
    return 0;
}
