/* fuzz_forward.c -- libFuzzer target for the path "client bytes -> backend
 * bytes": a memcached server must read, from what the gateway sends it,
 * exactly the commands the router sent it, nothing more, nothing less.
 *
 * Why: the gateway parses a client's request, routes its keys, and writes a
 * command of its own for each server (proxy/be_text.c) from the parsed
 * fields and the (maybe rewritten) keys.  If those bytes can mean something
 * else to memcached, a client runs commands no route allowed (a NUL in a
 * key ends memcached's line, so it answers ERROR and reads the data block
 * as commands: a read-only prefix gets written), and the extra replies
 * shift onto other clients' requests sharing the connection.
 *
 * Input: one settings byte, as in fuzz_proto.c (bit 0: binary_keys; bits
 * 1-2: max_line; bits 3-4: max_value; '@' is the defaults, 'A' the same
 * with binary_keys), then the bytes a client sends.
 *
 * 1. The client bytes are parsed the way front/text_codec.c does: a request
 *    that starts with 'm' (mc_is_meta) goes to mc_meta_parse and is decoded
 *    as front/meta_codec.c does, anything else to mc_parse; consume
 *    total_len; on an error, skip the bad request (when its data block runs
 *    past the input the rest is swallowed: stop); stop at GW_AGAIN, at an
 *    error that closes the connection and at quit.  A set refused as too
 *    large becomes a delete of its key, as there; an ms refused so becomes
 *    an md of its key (no flags, not quiet), as in meta_codec.c.  version,
 *    verbosity, stats and mn are the front's (admin.c); every other request
 *    is routed with router_dispatch (flush_all with router_flush, on every
 *    pool); a meta request's key is the decoded one (meta_codec.c's
 *    set_key).
 * 2. Routes, a table in place of the Lua host: "admin/" fails (read-only),
 *    "i/" goes to the embedded store, "b/" to pool b (one server), "rw/x" is
 *    rewritten to "w:x" and "sp/x" to "s p:x", both going to pool b,
 *    anything else to pool a (two servers).  A rewritten key is checked as
 *    script/ltask.c checks a Lua route's req.key: a text key for a text
 *    request (so "sp/" fails there), any 1..250 bytes for a meta request
 *    (be_text.c then sends it in base64 unless it is a text key).  The
 *    backends never connect: nothing is flushed, so every op stays in its
 *    send queue.
 * 3. Nothing routed is lost or sent twice: every op belongs to a request
 *    that counts it pending, each key bound for a server is in exactly one
 *    op, queued on the server its pool picks for it, and flush_all reaches
 *    every server once.
 * 4. Each backend's queue is encoded with be_codec_text into one byte
 *    stream, which is read back by a strict model of memcached 1.6.18's
 *    text parser (proto_text.c: try_read_command_ascii, tokenize_command,
 *    the process_*_command checks and, for meta, _meta_flag_preparse):
 *      - a command line ends at the first "\n" ("\r\n" here: the gateway
 *        always writes it); memcached closes a connection whose line passes
 *        2048 bytes without one unless it is a get/gets (so an mg, ms, ...
 *        line of over 2048 bytes is a failure too);
 *      - memcached treats the line as a C string: a NUL ends it early;
 *      - text commands: tokens are split on single spaces (an empty token
 *        means two spaces memcached would merge); the command takes exactly
 *        its arguments (no noreply: the gateway reads a reply for each op),
 *        numbers as memcached reads them, keys of 1..250 bytes holding no
 *        "\r" (nor NUL, "\n" or space, which the rules above already
 *        catch); a storage command is followed by exactly <bytes> bytes and
 *        "\r\n";
 *      - meta commands (mg ms md ma me; the gateway answers mn itself):
 *        tokens are split on runs of spaces, as memcached's tokenizer does
 *        (the gateway passes the client's flags on as runs of its own
 *        bytes); the key token (1..250 bytes as sent, no "\r"), for ms the
 *        <datalen> token (0 .. INT_MAX-2), then the flags; at most 20
 *        tokens counting memcached's final empty one (17 flags for mg md
 *        ma, 16 for ms); each flag's first byte a letter memcached knows
 *        (1.6.18's, and E and x of later versions, which the gateway passes
 *        on by design, meta.h) and not seen before; a flag starting with b
 *        (for me: exactly "b" right after the key) makes the key base64,
 *        which must decode to 1 or more bytes; ms is followed by exactly
 *        <datalen> bytes and "\r\n".
 *    The commands read must be the ops queued, in order, field for field.
 *    Text: name, keys (each op's bkey), flags, exptime, bytes, cas, delta,
 *    delay and the data block (the client's).  Meta: the name; the key,
 *    decoded when b, equal to the op's bkey; no q flag (the gateway asks
 *    for every reply), except on a quiet ma with N, which goes with its q
 *    and must be followed by an mn (be_text.c's probe); the flags other
 *    than b exactly the client's flags (as mc_meta_parse recorded them)
 *    less q (unless a probe), b, and k when the gateway hides the key
 *    (req_meta_key_hidden, its policy), in order and byte for byte (their
 *    tokens are the client's own: how memcached reads them is
 *    fuzz_meta.c's business); a k kept only for a key memcached may write
 *    raw in its reply (no space, "\r", "\n" or NUL: req.h says why); for
 *    ms the <datalen> and the data block the client sent.  An me whose
 *    key is no text key is refused by the router (router_send), so it is
 *    bound for no server.  A byte left over or a command missing is a
 *    failure too.
 *    Numbers are compared as the gateway wrote them: memcached keeps an
 *    exptime or delay in 32 bits, as it does for a client talking to it
 *    directly; that is not checked.
 * 5. Everything is freed (pools fail the ops still queued, then requests,
 *    stores, buffers and the runtime's caches), so LeakSanitizer stays quiet.
 *
 * A breach of 3 or 4 prints why, what memcached makes of the bytes, what
 * was routed, the client's line and the backend's bytes, and aborts.  The
 * model's verdicts were checked against a real memcached 1.6.18 (a NUL key
 * runs the data block; a gat line of which over 2048 bytes arrive before
 * its "\n" closes the connection, and so does an mg line; a "\r" inside a
 * key is accepted there, but the gateway is to refuse it, as the issue
 * asks; an ms whose key token passes 250 bytes, or that carries over 16
 * flags, is refused before its <datalen> is read, so its data block runs
 * as commands; E and x are "CLIENT_ERROR invalid flag" there, the ms data
 * block swallowed).  FUZZ_FORWARD_DUMP=1 in the environment prints each
 * backend's bytes.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/loop.h"
#include "base/base64.h"
#include "codec/meta.h"
#include "codec/proto.h"
#include "place/hash.h"
#include "proxy/backend.h"
#include "proxy/pool.h"
#include "proxy/req.h"
#include "proxy/resolver.h"
#include "proxy/router.h"
#include "rt/rt.h"
#include "fuzz.h"

/* memcached's limits (memcached.h, proto_text.c). */
#define MCD_KEY_MAX 250
#define MCD_LINE_MAX 2048
#define MCD_VLEN_MAX (INT32_MAX - 2)
/* A meta command's tokens, memcached's final empty one counted
 * (MFLAG_MAX_OPT_LENGTH): 17 flags for mg md ma, 16 for ms. */
#define MCD_META_MAX_TOKENS 20
/* The flag letters _meta_flag_preparse knows in 1.6.18, then E and x,
 * which later versions know and the gateway passes on (codec/meta.h). */
#define MCD_META_LETTERS "bNTRlOPLkstcfvhuqFCMJDI" "Ex"

/* ---- escaped output -------------------------------------------------- */

/* p[0, n) quoted, its first max bytes shown, control bytes escaped. */
static void put_escaped_max(FILE *o, const char *p, size_t n, size_t max)
{
    size_t shown = n < max ? n : max;
    fputc('"', o);
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\0') fputs("\\0", o);
        else if (c == '\r') fputs("\\r", o);
        else if (c == '\n') fputs("\\n", o);
        else if (c == '"' || c == '\\') fprintf(o, "\\%c", c);
        else if (c < 32 || c >= 127) fprintf(o, "\\x%02x", c);
        else fputc(c, o);
    }
    fputc('"', o);
    if (shown < n) fprintf(o, "... (%zu bytes)", n);
}

static void put_escaped(FILE *o, const char *p, size_t n)
{
    put_escaped_max(o, p, n, 160);
}

/* ---- settings --------------------------------------------------------- */

struct settings {
    size_t max_line;
    size_t max_value;
    bool binary_keys;
};

/* bit 0: binary_keys; bits 1-2: max_line; bits 3-4: max_value (0: the
 * parser's 1 MiB default), as fuzz_proto.c. */
static struct settings pick_settings(uint8_t b)
{
    static const size_t lines[4] = {0, 32, 256, 2048};
    static const size_t values[4] = {0, 1, 16, 1000};
    struct settings s = {lines[(b >> 1) & 3], values[(b >> 3) & 3], b & 1};
    return s;
}

/* ---- the routes --------------------------------------------------------- */

enum { POOL_A, POOL_B, POOL_STORE, NPOOLS };

struct table {
    struct resolver res;
    struct pool *pools[NPOOLS];
    int holds;
};

static bool has_prefix(const char *key, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(key, prefix, n) == 0;
}

/* The keys a route rewrites, as a Lua route sets req.key: "rw/x" becomes
 * "w:x", "sp/x" becomes "s p:x" (a key only a meta request may have). */
static const struct rewrite {
    const char *from, *to;
} rewrites[] = {{"rw/", "w:"}, {"sp/", "s p:"}};

#define NREWRITES (sizeof rewrites / sizeof rewrites[0])

/* The rewrite key[0, len) takes, or NULL. */
static const struct rewrite *rewrite_of(const char *key, size_t len)
{
    for (size_t i = 0; i < NREWRITES; i++)
        if (has_prefix(key, len, rewrites[i].from)) return &rewrites[i];
    return NULL;
}

/* key rewritten by w into buf (room for len + 1 bytes); false if that is
 * not a key a Lua route may set: script/ltask.c takes a text key for a
 * text request, any 1..250 bytes for a meta request. */
static bool rewrite_key(const struct rewrite *w, bool meta, const char *key, size_t len,
                        char *buf, size_t *outlen)
{
    size_t from = strlen(w->from), to = strlen(w->to);
    memcpy(buf, w->to, to);
    memcpy(buf + to, key + from, len - from);
    *outlen = len - from + to;
    if (meta) return *outlen >= 1 && *outlen <= MC_KEY_MAX;
    return mc_key_valid(buf, *outlen);
}

/* Where a client key goes: a pool, or NULL when its route fails. */
static struct pool *destination(const struct table *t, bool meta, const char *key, size_t len)
{
    if (has_prefix(key, len, "admin/")) return NULL;
    if (has_prefix(key, len, "i/")) return t->pools[POOL_STORE];
    if (has_prefix(key, len, "b/")) return t->pools[POOL_B];
    const struct rewrite *w = rewrite_of(key, len);
    if (w) {
        char buf[MC_KEY_MAX + 2];
        size_t n;
        return rewrite_key(w, meta, key, len, buf, &n) ? t->pools[POOL_B] : NULL;
    }
    return t->pools[POOL_A];
}

static enum route_result table_route(struct resolver *rs, struct gw_req *r, uint32_t k,
                                     struct pool **pool)
{
    struct table *t = (struct table *)rs;
    struct gw_key *key = &r->keys[k];
    bool meta = mc_cmd_is_meta(r->mc.cmd);
    *pool = destination(t, meta, key->ckey, key->cklen);
    if (!*pool) {
        req_fail_key(r, k, "read-only");
        return ROUTE_FAILED;
    }
    const struct rewrite *w = rewrite_of(key->ckey, key->cklen);
    if (w) {
        char *p = req_alloc(r, (size_t)key->cklen + 1);
        size_t n;
        REQUIRE(p != NULL);
        REQUIRE(rewrite_key(w, meta, key->ckey, key->cklen, p, &n));
        key->bkey = p;
        key->bklen = (uint16_t)n;
    }
    return ROUTE_POOL;
}

static int table_pools(struct resolver *rs, struct pool ***pools)
{
    *pools = ((struct table *)rs)->pools;
    return NPOOLS;
}

static void table_hold(struct resolver *rs) { ((struct table *)rs)->holds++; }
static void table_release(struct resolver *rs) { ((struct table *)rs)->holds--; }
static void table_closed(struct resolver *rs, uint64_t id)
{
    (void)rs;
    (void)id;
}

/* Every keyless command may run, on every pool. */
static enum keyless_verdict table_keyless(struct resolver *rs, struct gw_req *r,
                                          struct pool ***pools, int *npools)
{
    (void)rs;
    (void)r;
    *pools = NULL;
    *npools = -1;
    return KEYLESS_ALLOWED;
}

static const struct resolver_ops table_ops = {table_route, table_pools, table_keyless,
                                              table_hold, table_release, table_closed, NULL};

/* A pool of n servers on loopback ports nothing listens on (never used:
 * the backends never connect). */
static struct pool *servers_pool(struct rt *rt, const char *name, int n, int first_port)
{
    struct hash_server hs[2];
    const char *names[2];
    char bufs[2][32];
    struct backend_opts opts[2];
    REQUIRE(n <= 2);
    for (int i = 0; i < n; i++) {
        snprintf(bufs[i], sizeof bufs[i], "127.0.0.1:%d", first_port + i);
        names[i] = bufs[i];
        hs[i] = (struct hash_server){"127.0.0.1", (uint16_t)(first_port + i), 1};
        opts[i] = backend_opts_default;
        opts[i].max_queue = 0; /* no limit: every op stays queued */
    }
    struct pool_spec spec = {.name = name, .servers = hs, .server_names = names,
                             .nservers = (uint32_t)n, .mode = dist_mode_find("jump"), .opts = opts};
    char err[256];
    struct pool *p = pool_new(rt, &spec, err, sizeof err);
    REQUIRE(p != NULL);
    return p;
}

static void table_init(struct table *t, struct rt *rt)
{
    memset(t, 0, sizeof *t);
    t->res.ops = &table_ops;
    t->pools[POOL_A] = servers_pool(rt, "a", 2, 1001);
    t->pools[POOL_B] = servers_pool(rt, "b", 1, 2001);
    char err[256];
    t->pools[POOL_STORE] = pool_new_internal(rt, 0, 1 << 20, err, sizeof err);
    REQUIRE(t->pools[POOL_STORE] != NULL);
    rt->resolver = &t->res;
}

static uint32_t server_count(const struct table *t)
{
    uint32_t n = 0;
    for (int i = 0; i < NPOOLS; i++)
        if (t->pools[i]->kind == POOL_SERVERS) n += t->pools[i]->nservers;
    return n;
}

/* ---- one run ------------------------------------------------------------ */

/* The flags a meta request's client sent, as mc_meta_parse recorded them
 * (offsets from the request's base); none for any other request. */
struct client_flags {
    uint32_t n;
    struct mc_meta_flag f[MC_META_MAX_FLAGS];
};

struct fuzz {
    struct rt rt;
    struct table table;
    struct gw_buf *in;         /* the client's bytes, an exact-size block */
    size_t len;
    struct gw_req **reqs;      /* every request routed, in order */
    struct client_flags *cflags; /* per request */
    size_t nreqs, cap;
};

static struct gw_buf *input_buf(const uint8_t *data, size_t n)
{
    /* Exact size, so AddressSanitizer catches a read past the bytes. */
    struct gw_buf *b = malloc(sizeof *b + n);
    REQUIRE(b != NULL);
    b->refs = 1;
    b->cap = (uint32_t)n;
    memcpy(b->data, data, n);
    return b;
}

/* A request for mc at base, remembered (its index in ctx). */
static struct gw_req *new_request(struct fuzz *f, const struct mc_request *mc, const char *base)
{
    if (f->nreqs == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 16;
        f->reqs = realloc(f->reqs, f->cap * sizeof *f->reqs);
        f->cflags = realloc(f->cflags, f->cap * sizeof *f->cflags);
        REQUIRE(f->reqs != NULL && f->cflags != NULL);
    }
    struct gw_req *r = req_new(&f->rt, f->in, base, mc);
    REQUIRE(r != NULL);
    r->ctx = (void *)(uintptr_t)f->nreqs;
    f->cflags[f->nreqs].n = 0;
    f->reqs[f->nreqs++] = r;
    return r;
}

/* What the client's flags of r were (see struct client_flags). */
static const struct client_flags *flags_of(const struct fuzz *f, const struct gw_req *r)
{
    size_t idx = (uintptr_t)r->ctx;
    REQUIRE(idx < f->nreqs && f->reqs[idx] == r);
    return &f->cflags[idx];
}

static bool is_too_large(const char *error)
{
    static const char msg[] = "SERVER_ERROR object too large";
    return strncmp(error, msg, sizeof msg - 1) == 0;
}

/* What front/admin.c answers itself. */
static bool admin_answers(enum mc_cmd cmd)
{
    return cmd == MC_VERSION || cmd == MC_VERBOSITY || cmd == MC_STATS || cmd == MC_META_NOOP;
}

/* A refused request; true if the connection goes on after it. */
static bool refused(struct fuzz *f, const struct mc_request *mc, const char *base, size_t left)
{
    if (mc->cmd == MC_SET && !mc->close && is_too_large(mc->error)) {
        /* text_codec.c's refuse_set: a delete of the key, answered with the error. */
        struct gw_req *r = new_request(f, mc, base);
        r->mc.cmd = MC_DELETE;
        r->forced_reply = "SERVER_ERROR object too large for cache\r\n";
        router_dispatch(r);
    }
    return !mc->close && mc->total_len <= left;
}

/* ---- meta requests, as front/meta_codec.c decodes them ------------------ */

/* meta_codec.c's set_key: the key routes see is the decoded one, copied
 * into the request when it was base64. */
static void meta_set_key(struct gw_req *r, const char *base, const struct mc_meta_request *m)
{
    size_t len;
    const char *k = mc_meta_key(base, m, &len);
    if (m->binary_key) {
        char *p = req_alloc(r, len ? len : 1);
        REQUIRE(p != NULL);
        memcpy(p, k, len);
        k = p;
    }
    r->nkeys = 1;
    req_key_init(r, 0, k, (uint32_t)len);
}

/* A meta request for m at base, its client's flags remembered. */
static struct gw_req *meta_request(struct fuzz *f, const struct mc_meta_request *m,
                                   const struct mc_request *mc, const char *base, bool flags)
{
    struct gw_req *r = new_request(f, mc, base);
    struct client_flags *cf = &f->cflags[(uintptr_t)r->ctx];
    if (flags) {
        cf->n = m->nflags;
        memcpy(cf->f, m->flags, m->nflags * sizeof *m->flags);
    }
    return r;
}

/* The meta request at base, as meta_decode reads it; false to stop. */
static bool read_meta(struct fuzz *f, struct mc_parser *p, const char *base, size_t left,
                      size_t *at)
{
    struct mc_meta_request m;
    int rc = mc_meta_parse(p, base, left, &m);
    if (rc == GW_AGAIN) return false;
    struct mc_request mc;
    mc_meta_to_request(&m, &mc);
    if (rc == GW_ERROR) {
        if (m.cmd == MC_META_SET && m.error == MC_ERR_TOO_LARGE && !m.close) {
            /* meta_codec.c's refuse_set: an md of the key, no flags, not
             * quiet, answered with the error. */
            mc.cmd = MC_META_DELETE;
            mc.args_len = 0;
            mc.quiet = false;
            struct gw_req *r = meta_request(f, &m, &mc, base, false);
            r->forced_reply = "SERVER_ERROR object too large for cache\r\n";
            meta_set_key(r, base, &m);
            router_dispatch(r);
        }
        if (m.close || m.total_len > left) return false;
        *at += m.total_len;
        return true;
    }
    REQUIRE(rc == GW_OK && m.total_len <= left);
    *at += m.total_len;
    if (admin_answers(m.cmd)) return true; /* mn */
    struct gw_req *r = meta_request(f, &m, &mc, base, true);
    meta_set_key(r, base, &m);
    router_dispatch(r);
    return true;
}

/* The client's bytes, as text_codec.c's decode loop reads them. */
static void read_client(struct fuzz *f, const struct settings *s)
{
    struct mc_parser p;
    mc_parser_init(&p, s->max_line, s->max_value);
    p.binary_keys = s->binary_keys;
    size_t at = 0;
    while (at < f->len) {
        const char *base = f->in->data + at;
        size_t left = f->len - at;
        if (mc_is_meta(base, left)) {
            if (!read_meta(f, &p, base, left, &at)) break;
            continue;
        }
        struct mc_request mc;
        int rc = mc_parse(&p, base, left, &mc);
        if (rc == GW_AGAIN) break;
        if (rc == GW_ERROR) {
            if (!refused(f, &mc, base, left)) break;
            at += mc.total_len;
            continue;
        }
        REQUIRE(rc == GW_OK && mc.total_len <= left);
        at += mc.total_len;
        if (mc.cmd == MC_QUIT) break;
        if (admin_answers(mc.cmd)) continue;
        struct gw_req *r = new_request(f, &mc, base);
        if (mc.cmd == MC_FLUSH_ALL) router_flush(r, NULL, -1);
        else router_dispatch(r);
    }
}

/* ---- describing what was routed ------------------------------------------ */

static void put_key(FILE *o, const struct gw_key *k)
{
    fputs(" key=", o);
    put_escaped(o, k->bkey, k->bklen);
}

/* The op as the router meant it. */
static void put_op(FILE *o, const struct be_op *op)
{
    const struct gw_req *r = op->req;
    const struct mc_request *m = &r->mc;
    fputs(mc_cmd_name(op->cmd), o);
    if (mc_cmd_is_meta(op->cmd)) {
        put_key(o, &r->keys[0]);
        fprintf(o, " (the client sent its key %s) flags=", m->binary_key ? "in base64" : "raw");
        put_escaped(o, r->base + m->args_off, m->args_len);
        if (m->quiet) fputs(" quiet", o);
        if (op->cmd == MC_META_SET) {
            fprintf(o, " bytes=%u data=", m->bytes);
            put_escaped(o, r->base + m->data_off, m->bytes);
        }
        return;
    }
    if (op->cmd == MC_GAT || op->cmd == MC_GATS) fprintf(o, " exptime=%lld", (long long)m->exptime);
    if (mc_cmd_is_retrieval(op->cmd)) {
        for (int32_t k = op->first_key; k >= 0; k = r->keys[k].next) put_key(o, &r->keys[k]);
        return;
    }
    if (op->cmd == MC_FLUSH_ALL) {
        fprintf(o, " delay=%lld", (long long)m->delay);
        return;
    }
    put_key(o, &r->keys[0]);
    if (mc_cmd_is_storage(op->cmd)) {
        fprintf(o, " flags=%u exptime=%lld bytes=%u", m->flags, (long long)m->exptime, m->bytes);
        if (op->cmd == MC_CAS) fprintf(o, " cas=%llu", (unsigned long long)m->cas);
        fputs(" data=", o);
        put_escaped(o, r->base + m->data_off, m->bytes);
    } else if (op->cmd == MC_INCR || op->cmd == MC_DECR) {
        fprintf(o, " delta=%llu", (unsigned long long)m->delta);
    } else if (op->cmd == MC_TOUCH) {
        fprintf(o, " exptime=%lld", (long long)m->exptime);
    }
}

/* The client's command line of r. */
static void put_client_line(FILE *o, const struct gw_req *r)
{
    put_escaped(o, r->base, r->mc.line_len);
}

static void die_req(const struct gw_req *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
static void die_req(const struct gw_req *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz_forward: routing: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n  client sent: ", stderr);
    put_client_line(stderr, r);
    fputc('\n', stderr);
    abort();
}

/* ---- nothing routed is lost or sent twice ----------------------------------- */

struct tally {
    uint32_t *ops;             /* per request: ops queued for it */
    size_t *key_base;          /* per request: its first slot in sent */
    uint8_t *sent;             /* per key of every request: in some op */
};

static void tally_init(struct tally *t, const struct fuzz *f)
{
    size_t nkeys = 0;
    t->ops = calloc(f->nreqs + 1, sizeof *t->ops);
    t->key_base = calloc(f->nreqs + 1, sizeof *t->key_base);
    REQUIRE(t->ops && t->key_base);
    for (size_t i = 0; i < f->nreqs; i++) {
        t->key_base[i] = nkeys;
        nkeys += f->reqs[i]->nkeys;
    }
    t->sent = calloc(nkeys + 1, 1);
    REQUIRE(t->sent != NULL);
}

static void tally_free(struct tally *t)
{
    free(t->ops);
    free(t->key_base);
    free(t->sent);
}

/* The pool key k of r is bound for, or NULL: its route's, less what the
 * router refuses itself (router_send: an me whose key is no text key, as
 * memcached would write it raw in its reply). */
static struct pool *bound_pool(const struct fuzz *f, const struct gw_req *r, uint32_t k)
{
    const struct gw_key *key = &r->keys[k];
    struct pool *p = destination(&f->table, mc_cmd_is_meta(r->mc.cmd), key->ckey, key->cklen);
    if (p && p->kind == POOL_SERVERS && r->mc.cmd == MC_META_DEBUG &&
        !mc_key_valid(key->bkey, key->bklen))
        return NULL;
    /* A request the backend codec would have a server misread is failed,
     * not sent (what it refuses is checked by the stream model: anything
     * it lets through must read back as routed). */
    if (p && p->kind == POOL_SERVERS && be_codec_text.refuses(r, k, false)) {
        if (!r->errors) die_req(r, "key %u was refused, but the request has no error", k);
        return NULL;
    }
    return p;
}

/* Key k of r is in an op queued on b: it must be bound for b, and only once. */
static void tally_key(struct fuzz *f, struct tally *t, size_t idx, uint32_t k,
                      const struct backend *b)
{
    const struct gw_req *r = f->reqs[idx];
    if (k >= r->nkeys) die_req(r, "an op names key %u of %u", k, r->nkeys);
    const struct gw_key *key = &r->keys[k];
    struct pool *p = bound_pool(f, r, k);
    if (!p || p->kind != POOL_SERVERS)
        die_req(r, "key %u went to server %s, but its route does not name a server", k, b->name);
    if (pool_pick(p, key->bkey, key->bklen) != b)
        die_req(r, "key %u went to server %s, not the one its pool picks", k, b->name);
    if (t->sent[t->key_base[idx] + k]++) die_req(r, "key %u is sent twice", k);
}

static void tally_op(struct fuzz *f, struct tally *t, const struct backend *b,
                     const struct be_op *op)
{
    size_t idx = (uintptr_t)op->req->ctx;
    REQUIRE(idx < f->nreqs && f->reqs[idx] == op->req);
    const struct gw_req *r = op->req;
    if (op->cmd != r->mc.cmd)
        die_req(r, "an op for '%s' says '%s'", mc_cmd_name(r->mc.cmd), mc_cmd_name(op->cmd));
    t->ops[idx]++;
    if (mc_cmd_is_retrieval(op->cmd)) {
        if (op->first_key < 0) die_req(r, "a retrieval op without keys");
        for (int32_t k = op->first_key; k >= 0; k = r->keys[k].next)
            tally_key(f, t, idx, (uint32_t)k, b);
    } else if (op->cmd != MC_FLUSH_ALL) {
        tally_key(f, t, idx, 0, b);
    }
}

/* Each request: its ops are the ones it waits for, and every key bound for a
 * server was sent. */
static void tally_check(struct fuzz *f, const struct tally *t)
{
    for (size_t i = 0; i < f->nreqs; i++) {
        const struct gw_req *r = f->reqs[i];
        if (t->ops[i] != r->pending)
            die_req(r, "%u ops queued, but the request waits for %u", t->ops[i], r->pending);
        if (r->mc.cmd == MC_FLUSH_ALL) {
            if (t->ops[i] != server_count(&f->table))
                die_req(r, "flush_all reached %u of %u servers", t->ops[i],
                        server_count(&f->table));
            continue;
        }
        for (uint32_t k = 0; k < r->nkeys; k++) {
            const struct pool *p = bound_pool(f, r, k);
            bool to_server = p && p->kind == POOL_SERVERS;
            if (to_server != (t->sent[t->key_base[i] + k] != 0))
                die_req(r, "key %u %s", k, to_server ? "is bound for a server but was not sent"
                                                     : "was sent but its route names no server");
        }
    }
}

static void check_routing(struct fuzz *f)
{
    struct tally t;
    tally_init(&t, f);
    for (struct backend *b = f->rt.backends; b; b = b->reg_next)
        for (const struct be_op *op = b->send_head; op; op = op->next) tally_op(f, &t, b, op);
    tally_check(f, &t);
    tally_free(&t);
}

/* ---- the bytes a backend is sent ---------------------------------------- */

struct stream {
    char *p;
    size_t len;
};

/* Every op queued on b, encoded and concatenated into an exact-size block. */
static struct stream encode_queue(struct backend *b)
{
    struct gw_oq q = {0};
    for (struct be_op *op = b->send_head; op; op = op->next)
        REQUIRE(be_codec_text.encode(op, &q) == GW_OK);
    struct stream s = {malloc(q.bytes ? q.bytes : 1), 0};
    REQUIRE(s.p != NULL);
    for (uint32_t v = q.head; v < q.head + q.count; v++) {
        memcpy(s.p + s.len, q.iov[v].iov_base, q.iov[v].iov_len);
        s.len += q.iov[v].iov_len;
    }
    REQUIRE(s.len == q.bytes);
    oq_free(&q);
    return s;
}

/* ---- memcached reading the stream ------------------------------------------ */

struct span {
    const char *p;
    size_t n;
};

/* Where the reader is, for the failure message. */
struct reader {
    const struct fuzz *f;
    const struct backend *b;
    const char *s;
    size_t len, at;            /* at: start of the command being read */
    int index, count;          /* the command's number (from 1), of count */
    const struct be_op *op;    /* the op it should be */
};

/* What memcached read: one command. */
struct mcd_cmd {
    enum mc_cmd cmd;
    struct span *toks;         /* every token; keys point into it */
    size_t ntoks;
    struct span *keys;
    size_t nkeys;
    uint32_t flags;
    int64_t exptime;
    uint32_t bytes;
    uint64_t cas;
    uint64_t delta;
    int64_t delay;
    const char *data;
    /* Meta: the key token as sent; b_tok: the index of the flag that makes
     * it base64 (0: none), the key then kbuf[0, klen); flags from toks
     * [first_flag, ntoks). */
    struct span key;
    size_t b_tok, first_flag;
    uint8_t kbuf[MCD_KEY_MAX];
    size_t klen;
};

/* What memcached makes of the bytes, printed under die()'s reason; only
 * ever opened on the way to an abort. */
static FILE *note_file;
static char *note_text;
static size_t note_len;

static FILE *note(void)
{
    if (!note_file) note_file = open_memstream(&note_text, &note_len);
    return note_file ? note_file : stderr;
}

static void die(const struct reader *rd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
static void die(const struct reader *rd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz_forward: backend %s, command %d of %d: ", rd->b->name, rd->index,
            rd->count);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (note_file && fclose(note_file) == 0) fprintf(stderr, "\n  memcached: %s", note_text);
    fputs("\n  routed: ", stderr);
    put_op(stderr, rd->op);
    fputs("\n  client sent: ", stderr);
    put_client_line(stderr, rd->op->req);
    fputs("\n  backend is sent: ", stderr);
    put_escaped(stderr, rd->s + rd->at, rd->len - rd->at);
    fputc('\n', stderr);
    abort();
}

/* For a storage line memcached refuses: it then reads the data block as
 * commands; say what the first one is, i.e. what a client got to run. */
static void put_injected(FILE *o, const struct reader *rd, size_t data_at)
{
    if ((!mc_cmd_is_storage(rd->op->cmd) && rd->op->cmd != MC_META_SET) || data_at >= rd->len)
        return;
    const char *d = rd->s + data_at;
    const char *nl = memchr(d, '\n', rd->len - data_at);
    size_t n = nl ? (size_t)(nl - d) + 1 : rd->len - data_at;
    fputs("; then it reads the data block as commands, starting with ", o);
    put_escaped(o, d, n);
}

/* The command line at rd->at, as memcached takes it: the bytes before
 * "\r\n", up to the first NUL.  *next: where the line's "\n" ends. */
static struct span take_line(const struct reader *rd, size_t *next)
{
    const char *line = rd->s + rd->at;
    size_t left = rd->len - rd->at;
    const char *nl = memchr(line, '\n', left);
    if (!nl) die(rd, "the command line never ends (no \"\\n\")");
    size_t raw = (size_t)(nl - line); /* before the "\n" */
    *next = rd->at + raw + 1;
    if (raw > MCD_LINE_MAX && !has_prefix(line, raw, "get ") && !has_prefix(line, raw, "gets "))
        die(rd, "a %zu-byte command line: memcached closes the connection when %d bytes "
                "arrive without a \"\\n\", unless the line is a get or gets",
            raw + 1, MCD_LINE_MAX);
    if (raw == 0 || line[raw - 1] != '\r') die(rd, "the command line does not end in \"\\r\\n\"");
    struct span l = {line, raw - 1};
    const char *nul = memchr(l.p, '\0', l.n);
    if (nul) {
        struct span seen = {l.p, (size_t)(nul - l.p)};
        fputs("reads the line as ", note());
        put_escaped(note(), seen.p, seen.n);
        put_injected(note(), rd, *next);
        die(rd, "a NUL at byte %zu of the command line: memcached ends the line there",
            seen.n);
    }
    return l;
}

/* Split on single spaces; an empty token is two spaces memcached would merge. */
static void split_tokens(const struct reader *rd, struct span l, struct mcd_cmd *c)
{
    size_t max = 1;
    for (size_t i = 0; i < l.n; i++) max += l.p[i] == ' ';
    c->toks = malloc(max * sizeof *c->toks);
    REQUIRE(c->toks != NULL);
    c->ntoks = 0;
    size_t start = 0;
    for (size_t i = 0; i <= l.n; i++) {
        if (i < l.n && l.p[i] != ' ') continue;
        if (i == start) {
            free(c->toks);
            die(rd, "an empty token at byte %zu (memcached merges spaces)", i);
        }
        c->toks[c->ntoks++] = (struct span){l.p + start, i - start};
        start = i + 1;
    }
}

static bool span_is(struct span t, const char *s)
{
    return t.n == strlen(s) && memcmp(t.p, s, t.n) == 0;
}

/* The commands the gateway forwards, by name. */
static enum mc_cmd command_of(struct span t)
{
    for (int c = MC_GET; c <= MC_FLUSH_ALL; c++)
        if (span_is(t, mc_cmd_name((enum mc_cmd)c))) return (enum mc_cmd)c;
    return MC_NONE;
}

/* Unsigned decimal, digits only, as printf writes it (memcached's strtoull
 * reads the same value). */
static bool num_u64(struct span t, uint64_t *out)
{
    uint64_t v = 0;
    if (t.n == 0 || t.n > 20) return false;
    for (size_t i = 0; i < t.n; i++) {
        unsigned d = (unsigned char)t.p[i] - '0';
        if (d > 9 || __builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, d, &v))
            return false;
    }
    *out = v;
    return true;
}

/* Signed decimal within int64_t: memcached's strtol (64-bit long) reads it
 * without ERANGE. */
static bool num_i64(struct span t, int64_t *out)
{
    uint64_t m;
    bool neg = t.n > 0 && t.p[0] == '-';
    struct span digits = {t.p + neg, t.n - neg};
    if (!num_u64(digits, &m) || m > (uint64_t)INT64_MAX + neg) return false;
    *out = neg ? (int64_t)(0 - m) : (int64_t)m;
    return true;
}

static void bad_number(const struct reader *rd, const char *field, struct span t,
                       size_t data_at) __attribute__((noreturn));
static void bad_number(const struct reader *rd, const char *field, struct span t, size_t data_at)
{
    fprintf(note(), "reads the %s token ", field);
    put_escaped(note(), t.p, t.n);
    put_injected(note(), rd, data_at);
    die(rd, "memcached cannot read the %s: it answers CLIENT_ERROR", field);
}

static void check_key(const struct reader *rd, struct span k, size_t data_at)
{
    if (k.n > MCD_KEY_MAX) {
        fputs("refuses the line", note());
        put_injected(note(), rd, data_at);
        die(rd, "a %zu-byte key: memcached answers CLIENT_ERROR to keys over %d bytes", k.n,
            MCD_KEY_MAX);
    }
    if (memchr(k.p, '\r', k.n)) die(rd, "a key holds a \"\\r\"");
}

/* How many arguments after the command memcached's command takes here
 * (max -1: any number).  No noreply: the gateway reads every reply. */
static void arity(enum mc_cmd cmd, size_t *min, long *max)
{
    switch (cmd) {
    case MC_GET: case MC_GETS: *min = 1; *max = -1; break;
    case MC_GAT: case MC_GATS: *min = 2; *max = -1; break;
    case MC_CAS: *min = *max = 5; break;
    case MC_DELETE: *min = *max = 1; break;
    case MC_INCR: case MC_DECR: case MC_TOUCH: *min = *max = 2; break;
    case MC_FLUSH_ALL: *min = 0; *max = 1; break;
    default: *min = *max = 4; break; /* set, add, replace, append, prepend */
    }
}

static void check_arity(const struct reader *rd, const struct mcd_cmd *c, size_t data_at)
{
    size_t nargs = c->ntoks - 1, min;
    long max;
    arity(c->cmd, &min, &max);
    if (nargs >= 1 && c->cmd != MC_DELETE && !mc_cmd_is_retrieval(c->cmd) &&
        span_is(c->toks[c->ntoks - 1], "noreply"))
        die(rd, "the line ends in \"noreply\": memcached will not answer it");
    if (nargs < min || (max >= 0 && nargs > (size_t)max)) {
        fputs("answers ERROR", note());
        put_injected(note(), rd, data_at);
        die(rd, "'%s' with %zu arguments (a key holding a space?)", mc_cmd_name(c->cmd), nargs);
    }
}

/* The numbers and keys of c's tokens, as memcached reads them. */
static void read_fields(const struct reader *rd, struct mcd_cmd *c, size_t data_at)
{
    struct span *a = c->toks + 1; /* the arguments */
    size_t nargs = c->ntoks - 1;
    uint64_t v;
    if (mc_cmd_is_retrieval(c->cmd)) {
        bool gat = c->cmd == MC_GAT || c->cmd == MC_GATS;
        if (gat && !num_i64(a[0], &c->exptime)) bad_number(rd, "exptime", a[0], data_at);
        c->keys = a + gat;
        c->nkeys = nargs - gat;
    } else if (c->cmd == MC_FLUSH_ALL) {
        if (nargs == 1 && !num_i64(a[0], &c->delay)) bad_number(rd, "delay", a[0], data_at);
        c->nkeys = 0;
    } else {
        c->keys = a;
        c->nkeys = 1;
    }
    for (size_t i = 0; i < c->nkeys; i++) check_key(rd, c->keys[i], data_at);
    if (mc_cmd_is_storage(c->cmd)) {
        if (!num_u64(a[1], &v) || v > UINT32_MAX) bad_number(rd, "flags", a[1], data_at);
        c->flags = (uint32_t)v;
        if (!num_i64(a[2], &c->exptime)) bad_number(rd, "exptime", a[2], data_at);
        if (!num_u64(a[3], &v) || v > MCD_VLEN_MAX) bad_number(rd, "bytes", a[3], data_at);
        c->bytes = (uint32_t)v;
        if (c->cmd == MC_CAS && !num_u64(a[4], &c->cas)) bad_number(rd, "cas", a[4], data_at);
    } else if (c->cmd == MC_INCR || c->cmd == MC_DECR) {
        if (!num_u64(a[1], &c->delta)) bad_number(rd, "delta", a[1], data_at);
    } else if (c->cmd == MC_TOUCH) {
        if (!num_i64(a[1], &c->exptime)) bad_number(rd, "exptime", a[1], data_at);
    }
}

/* A storage command's data block at *next: bytes + "\r\n". */
static void read_data(const struct reader *rd, struct mcd_cmd *c, size_t *next)
{
    size_t left = rd->len - *next;
    if ((uint64_t)c->bytes + 2 > left)
        die(rd, "the stream ends inside the data block (%u bytes and \"\\r\\n\" declared, "
                "%zu left)", c->bytes, left);
    c->data = rd->s + *next;
    if (c->data[c->bytes] != '\r' || c->data[c->bytes + 1] != '\n')
        die(rd, "the data block does not end in \"\\r\\n\": memcached answers "
                "CLIENT_ERROR bad data chunk");
    *next += (size_t)c->bytes + 2;
}

/* ---- memcached reading a meta command ------------------------------------- */

/* memcached's tokenize_command: runs of spaces separate tokens. */
static void split_meta_tokens(struct span l, struct mcd_cmd *c)
{
    size_t max = 1;
    for (size_t i = 0; i < l.n; i++) max += l.p[i] == ' ';
    c->toks = malloc(max * sizeof *c->toks);
    REQUIRE(c->toks != NULL);
    c->ntoks = 0;
    size_t i = 0;
    while (i < l.n) {
        while (i < l.n && l.p[i] == ' ') i++;
        if (i >= l.n) break;
        size_t start = i;
        while (i < l.n && l.p[i] != ' ') i++;
        c->toks[c->ntoks++] = (struct span){l.p + start, i - start};
    }
}

/* The line starts with a two-letter token starting with 'm': memcached's
 * meta commands (process_command_ascii). */
static bool is_meta_line(struct span l)
{
    size_t i = 0;
    while (i < l.n && l.p[i] == ' ') i++;
    return l.n - i >= 2 && l.p[i] == 'm' && (l.n - i == 2 || l.p[i + 2] == ' ');
}

static enum mc_cmd meta_command_of(struct span t)
{
    for (int c = MC_META_GET; c <= MC_META_DEBUG; c++)
        if (span_is(t, mc_cmd_name((enum mc_cmd)c))) return (enum mc_cmd)c;
    return MC_NONE;
}

/* The key token is base64 (flag i said so): decode it as memcached does
 * (the gateway's own decoder, stricter, is enough: what it sends is
 * canonical). */
static void decode_meta_key(const struct reader *rd, struct mcd_cmd *c, size_t i)
{
    long n = base64_decode(c->key.p, c->key.n, c->kbuf, sizeof c->kbuf);
    c->b_tok = i;
    if (n >= 1) {
        c->klen = (size_t)n;
        return;
    }
    fputs("reads the base64 key ", note());
    put_escaped(note(), c->key.p, c->key.n);
    if (c->cmd == MC_META_SET) fputs(" (the data block swallowed)", note());
    die(rd, "memcached cannot decode the key: it answers CLIENT_ERROR");
}

/* A meta line l: the key, ms's <datalen>, the flags as _meta_flag_preparse
 * checks them, then ms's data block at *next. */
static void read_meta_command(const struct reader *rd, struct mcd_cmd *c, struct span l,
                              size_t *next)
{
    split_meta_tokens(l, c);
    c->cmd = meta_command_of(c->toks[0]);
    if (c->cmd == MC_NONE || c->cmd == MC_META_NOOP) {
        fputs("reads the command token ", note());
        put_escaped(note(), c->toks[0].p, c->toks[0].n);
        die(rd, "memcached reads a command the gateway never forwards");
    }
    bool set = c->cmd == MC_META_SET;
    if (c->ntoks < 2) {
        fputs("answers an error", note());
        put_injected(note(), rd, *next);
        die(rd, "'%s' without a key", mc_cmd_name(c->cmd));
    }
    c->key = c->toks[1];
    if (c->key.n > MCD_KEY_MAX) {
        fputs("refuses the line", note());
        put_injected(note(), rd, *next);
        die(rd, "a %zu-byte key token: memcached answers CLIENT_ERROR bad command line format "
                "to keys over %d bytes as sent (base64 or not)", c->key.n, MCD_KEY_MAX);
    }
    if (memchr(c->key.p, '\r', c->key.n)) die(rd, "a key holds a \"\\r\"");
    if (c->cmd == MC_META_DEBUG) {
        /* process_meta_command: only a "b" right after the key counts; the
         * rest of the line is ignored. */
        c->first_flag = 2;
        if (c->ntoks >= 3 && span_is(c->toks[2], "b")) decode_meta_key(rd, c, 2);
        return;
    }
    if (set && c->ntoks == 2) {
        fputs("answers CLIENT_ERROR bad command line format", note());
        put_injected(note(), rd, *next);
        die(rd, "ms without <datalen>");
    }
    if (c->ntoks + 1 > MCD_META_MAX_TOKENS) {
        fprintf(note(), "answers CLIENT_ERROR options flags %stoo long",
                c->cmd == MC_META_GET ? "are " : "");
        put_injected(note(), rd, *next);
        die(rd, "%zu flags: memcached takes at most %d on '%s'", c->ntoks - 2 - set,
            MCD_META_MAX_TOKENS - 3 - set, mc_cmd_name(c->cmd));
    }
    if (set) {
        int64_t v;
        if (!num_i64(c->toks[2], &v) || v < 0 || v > MCD_VLEN_MAX)
            bad_number(rd, "datalen", c->toks[2], *next);
        c->bytes = (uint32_t)v;
    }
    /* _meta_flag_preparse; from here an ms's data block is swallowed. */
    c->first_flag = 2 + set;
    bool seen[128] = {false};
    for (size_t i = c->first_flag; i < c->ntoks; i++) {
        unsigned char o = (unsigned char)c->toks[i].p[0];
        if (o >= 127 || seen[o]) {
            fputs("reads the flag ", note());
            put_escaped(note(), c->toks[i].p, c->toks[i].n);
            die(rd, "a duplicate flag: memcached answers CLIENT_ERROR");
        }
        seen[o] = true;
        if (o == '\0' || !strchr(MCD_META_LETTERS, o)) {
            fputs("reads the flag ", note());
            put_escaped(note(), c->toks[i].p, c->toks[i].n);
            die(rd, "a flag memcached does not know: it answers CLIENT_ERROR invalid flag");
        }
        if (o == 'b') decode_meta_key(rd, c, i);
    }
    if (set) read_data(rd, c, next);
}

/* The mn after a probe (is_probe): memcached answers MN. */
static void read_probe_mn(struct reader *rd)
{
    size_t next;
    if (rd->at >= rd->len) die(rd, "the stream ends before the mn after this quiet ma with N");
    struct span l = take_line(rd, &next);
    struct mcd_cmd c;
    memset(&c, 0, sizeof c);
    split_meta_tokens(l, &c);
    bool mn = c.ntoks == 1 && span_is(c.toks[0], "mn");
    free(c.toks);
    if (!mn) {
        fputs("reads the line ", note());
        put_escaped(note(), l.p, l.n);
        die(rd, "no mn after this quiet ma with N");
    }
    rd->at = next;
}

/* Read one command at rd->at; rd->at moves past it.  c->toks is the
 * caller's to free. */
static void read_command(struct reader *rd, struct mcd_cmd *c)
{
    size_t next;
    memset(c, 0, sizeof *c);
    if (rd->at >= rd->len) die(rd, "the stream ends before this command");
    struct span l = take_line(rd, &next);
    if (is_meta_line(l)) {
        read_meta_command(rd, c, l, &next);
        rd->at = next;
        return;
    }
    split_tokens(rd, l, c);
    c->cmd = command_of(c->toks[0]);
    if (c->cmd == MC_NONE) {
        fputs("reads the command token ", note());
        put_escaped(note(), c->toks[0].p, c->toks[0].n);
        die(rd, "memcached reads a command the gateway never forwards");
    }
    check_arity(rd, c, next);
    read_fields(rd, c, next);
    if (mc_cmd_is_storage(c->cmd)) read_data(rd, c, &next);
    rd->at = next;
}

/* ---- comparing it with the op ----------------------------------------------- */

static void compare_key(const struct reader *rd, size_t i, struct span got, const struct gw_key *k)
{
    if (got.n == k->bklen && memcmp(got.p, k->bkey, got.n) == 0) return;
    fputs("reads the key ", note());
    put_escaped(note(), got.p, got.n);
    fputs(", routed ", note());
    put_escaped(note(), k->bkey, k->bklen);
    die(rd, "key %zu differs", i + 1);
}

static void compare_keys(const struct reader *rd, const struct mcd_cmd *c)
{
    const struct be_op *op = rd->op;
    const struct gw_req *r = op->req;
    size_t i = 0;
    if (mc_cmd_is_retrieval(op->cmd)) {
        for (int32_t k = op->first_key; k >= 0; k = r->keys[k].next, i++) {
            if (i >= c->nkeys) die(rd, "memcached reads %zu keys, more were routed", c->nkeys);
            compare_key(rd, i, c->keys[i], &r->keys[k]);
        }
    } else if (op->cmd != MC_FLUSH_ALL) {
        compare_key(rd, 0, c->keys[0], &r->keys[0]);
        i = 1;
    }
    if (i != c->nkeys) die(rd, "memcached reads %zu keys, %zu were routed", c->nkeys, i);
}

#define SAME(field, fmt, cast)                                                       \
    do {                                                                             \
        if (c->field != m->field)                                                    \
            die(rd, "memcached reads " #field " " fmt ", routed " fmt, (cast)c->field, \
                (cast)m->field);                                                     \
    } while (0)

static void compare_fields(const struct reader *rd, const struct mcd_cmd *c)
{
    const struct gw_req *r = rd->op->req;
    const struct mc_request *m = &r->mc;
    switch (c->cmd) {
    case MC_GAT: case MC_GATS: case MC_TOUCH:
        SAME(exptime, "%lld", long long);
        break;
    case MC_INCR: case MC_DECR:
        SAME(delta, "%llu", unsigned long long);
        break;
    case MC_FLUSH_ALL:
        SAME(delay, "%lld", long long);
        break;
    default:
        break;
    }
    if (!mc_cmd_is_storage(c->cmd)) return;
    SAME(flags, "%u", unsigned);
    SAME(exptime, "%lld", long long);
    SAME(bytes, "%u", unsigned);
    if (c->cmd == MC_CAS) SAME(cas, "%llu", unsigned long long);
    if (memcmp(c->data, r->base + m->data_off, c->bytes) != 0)
        die(rd, "the data block differs from the client's");
}

static bool has_client_flag(const struct client_flags *cf, char letter)
{
    for (uint32_t i = 0; i < cf->n; i++)
        if (cf->f[i].letter == letter) return true;
    return false;
}

/* A quiet ma with N goes with its q and an mn after it (be_text.c's
 * probe: memcached answers a vivifying ma all the same). */
static bool is_probe(const struct fuzz *f, const struct be_op *op)
{
    const struct client_flags *cf = flags_of(f, op->req);
    return op->cmd == MC_META_ARITH && has_client_flag(cf, 'q') && has_client_flag(cf, 'N');
}

/* The client's flags of a meta request, in order, less those in drop
 * (MC_META_BIT): from the one at *i on, the next, or NULL. */
static const struct mc_meta_flag *next_client_flag(const struct client_flags *cf, uint64_t drop,
                                                   uint32_t *i)
{
    while (*i < cf->n && (drop & MC_META_BIT(cf->f[*i].letter))) (*i)++;
    return *i < cf->n ? &cf->f[(*i)++] : NULL;
}

/* A key memcached may write raw in a reply line (in k, for an item that
 * N created, whatever b said: req.h) without breaking the line. */
static bool raw_safe(struct span key)
{
    for (size_t i = 0; i < key.n; i++)
        if (key.p[i] == ' ' || key.p[i] == '\r' || key.p[i] == '\n' || key.p[i] == '\0')
            return false;
    return true;
}

/* A meta command read against its op: the key (decoded when b), the
 * flags, and ms's data. */
static void compare_meta(const struct reader *rd, const struct mcd_cmd *c)
{
    const struct gw_req *r = rd->op->req;
    const struct mc_request *m = &r->mc;
    const struct gw_key *k = &r->keys[0];
    struct span key = c->b_tok ? (struct span){(const char *)c->kbuf, c->klen} : c->key;
    if (key.n != k->bklen || memcmp(key.p, k->bkey, key.n) != 0) {
        fputs("reads the key ", note());
        put_escaped(note(), key.p, key.n);
        if (c->b_tok) fputs(" (base64)", note());
        fputs(", routed ", note());
        put_escaped(note(), k->bkey, k->bklen);
        die(rd, "the key differs");
    }
    const struct client_flags *cf = flags_of(rd->f, r);
    /* What the gateway leaves out of the client's flags: b (the key says
     * it), q (but a probe keeps it) and k when the key is hidden (its
     * policy, req_meta_key_hidden; that the k kept is safe is checked). */
    bool probe = is_probe(rd->f, rd->op);
    uint64_t drop = MC_META_BIT('b');
    if (!probe) drop |= MC_META_BIT('q');
    if (req_meta_key_hidden(r)) drop |= MC_META_BIT('k');
    uint32_t want = 0;
    for (size_t i = c->first_flag; i < c->ntoks; i++) {
        struct span t = c->toks[i];
        if (i == c->b_tok) continue;
        if (t.p[0] == 'q' && !probe)
            die(rd, "a q flag: memcached leaves out replies the gateway waits for");
        if (t.p[0] == 'k' && !raw_safe(key)) {
            fputs("reads the key ", note());
            put_escaped(note(), key.p, key.n);
            die(rd, "a k flag for a key memcached may write raw in its reply line");
        }
        const struct mc_meta_flag *e = next_client_flag(cf, drop, &want);
        if (!e) {
            fputs("reads the flag ", note());
            put_escaped(note(), t.p, t.n);
            die(rd, "a flag the client did not send");
        }
        if (t.n != e->len || memcmp(t.p, r->base + e->off, t.n) != 0) {
            fputs("reads the flag ", note());
            put_escaped(note(), t.p, t.n);
            fputs(", the client sent ", note());
            put_escaped(note(), r->base + e->off, e->len);
            die(rd, "flag %zu differs", i - c->first_flag + 1);
        }
    }
    const struct mc_meta_flag *e = next_client_flag(cf, drop, &want);
    if (e) {
        fputs("misses the flag ", note());
        put_escaped(note(), r->base + e->off, e->len);
        die(rd, "a flag the client sent is not sent on");
    }
    if (c->cmd != MC_META_SET) return;
    if (c->bytes != m->bytes) die(rd, "memcached reads datalen %u, routed %u", c->bytes, m->bytes);
    if (memcmp(c->data, r->base + m->data_off, c->bytes) != 0)
        die(rd, "the data block differs from the client's");
}

static void compare(const struct reader *rd, const struct mcd_cmd *c)
{
    if (c->cmd != rd->op->cmd)
        die(rd, "memcached reads '%s', routed '%s'", mc_cmd_name(c->cmd),
            mc_cmd_name(rd->op->cmd));
    if (mc_cmd_is_meta(c->cmd)) {
        compare_meta(rd, c);
        return;
    }
    compare_keys(rd, c);
    compare_fields(rd, c);
}

/* b's stream must read as exactly its queued ops, in order.  With
 * FUZZ_FORWARD_DUMP set in the environment each stream is printed. */
static void check_backend(const struct fuzz *f, struct backend *b)
{
    struct stream s = encode_queue(b);
    struct reader rd = {.f = f, .b = b, .s = s.p, .len = s.len};
    if (getenv("FUZZ_FORWARD_DUMP")) {
        fprintf(stderr, "fuzz_forward: %s is sent ", b->name);
        put_escaped_max(stderr, s.p, s.len, 4096);
        fputc('\n', stderr);
    }
    for (const struct be_op *op = b->send_head; op; op = op->next) rd.count++;
    for (const struct be_op *op = b->send_head; op; op = op->next) {
        struct mcd_cmd c;
        rd.index++;
        rd.op = op;
        read_command(&rd, &c);
        compare(&rd, &c);
        free(c.toks);
        if (is_probe(f, op)) read_probe_mn(&rd);
    }
    if (rd.at != rd.len) {
        fprintf(stderr, "fuzz_forward: backend %s: %zu bytes after the last of %d commands: ",
                b->name, rd.len - rd.at, rd.count);
        put_escaped(stderr, rd.s + rd.at, rd.len - rd.at);
        fputc('\n', stderr);
        abort();
    }
    free(s.p);
}

/* ---- the run ----------------------------------------------------------------- */

static struct gw_loop *the_loop(void)
{
    static struct gw_loop *loop; /* kept for the process: no fd per run */
    if (!loop) {
        log_level = -1; /* the failures a teardown causes are expected */
        loop = gw_loop_new();
        REQUIRE(loop != NULL);
    }
    return loop;
}

static void setup(struct fuzz *f, const uint8_t *data, size_t n)
{
    memset(f, 0, sizeof *f);
    REQUIRE(rt_init(&f->rt, 0, the_loop()) == GW_OK);
    table_init(&f->table, &f->rt);
    f->in = input_buf(data, n);
    f->len = n;
}

/* The pools fail what is still queued; then every request can go. */
static void teardown(struct fuzz *f)
{
    for (int i = 0; i < NPOOLS; i++) pool_free(f->table.pools[i]);
    for (size_t i = 0; i < f->nreqs; i++) {
        REQUIRE(f->reqs[i]->done && f->reqs[i]->pending == 0);
        req_unref(f->reqs[i]);
    }
    REQUIRE(f->table.holds == 0);
    free(f->reqs);
    free(f->cflags);
    buf_unref(f->in);
    pool_stores_free();
    buf_cache_drain();
    req_cache_drain(&f->rt);
    op_cache_drain(&f->rt);
    rt_destroy(&f->rt);
}

static struct fuzz run;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    struct settings s = pick_settings(data[0]);
    setup(&run, data + 1, size - 1);
    read_client(&run, &s);
    check_routing(&run);
    for (struct backend *b = run.rt.backends; b; b = b->reg_next) check_backend(&run, b);
    teardown(&run);
    return 0;
}
