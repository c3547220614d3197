/* proto.c -- the memcached text-protocol request parser (client side).
 *
 * See proto.h for the contract.  The parser works in one pass over a
 * complete command line:
 *   1. find the "\n" with memchr, starting where the previous call stopped
 *      (p->scanned), never looking further than p->max_line bytes;
 *   2. split the command token off and dispatch on it;
 *   3. retrieval commands walk their keys in place (validating each one with
 *      a word-at-a-time scan); every other command splits its few arguments
 *      into a small token array and checks them the way memcached 1.6 does,
 *      in the same order, so that the first error reported is memcached's.
 * Numbers are parsed by hand from (pointer, length) pairs: the buffer is not
 * NUL-terminated.
 */
#include "proto.h"

#include <limits.h>
#include <string.h>

#include "num.h"

/* Offsets are uint32_t and total_len = line + data + 2 must fit too. */
#define MC_LIMIT_MAX_LINE    ((size_t)1 << 30)

/* Arguments after the command token kept by the generic tokenizer: cas has
 * the most (key flags exptime bytes unique noreply). */
#define MC_MAX_ARGS 6

const char MC_ERR_UNKNOWN[] = "ERROR";
const char MC_ERR_FORMAT[] = "CLIENT_ERROR bad command line format";
static const char E_DELETE[] =
    "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]";
static const char E_DELTA[] = "CLIENT_ERROR invalid numeric delta argument";
static const char E_EXPTIME[] = "CLIENT_ERROR invalid exptime argument";
const char MC_ERR_CHUNK[] = "CLIENT_ERROR bad data chunk";
const char MC_ERR_TOO_LARGE[] = "SERVER_ERROR object too large for cache";
const char MC_ERR_LINE[] = "CLIENT_ERROR line too long";
static const char E_END[] = "END";

static const char *const cmd_names[MC_CMD_COUNT] = {
    [MC_NONE] = "none",
    [MC_GET] = "get",
    [MC_GETS] = "gets",
    [MC_GAT] = "gat",
    [MC_GATS] = "gats",
    [MC_SET] = "set",
    [MC_ADD] = "add",
    [MC_REPLACE] = "replace",
    [MC_APPEND] = "append",
    [MC_PREPEND] = "prepend",
    [MC_CAS] = "cas",
    [MC_DELETE] = "delete",
    [MC_INCR] = "incr",
    [MC_DECR] = "decr",
    [MC_TOUCH] = "touch",
    [MC_FLUSH_ALL] = "flush_all",
    [MC_VERSION] = "version",
    [MC_VERBOSITY] = "verbosity",
    [MC_STATS] = "stats",
    [MC_QUIT] = "quit",
    [MC_META_GET] = "mg",
    [MC_META_SET] = "ms",
    [MC_META_DELETE] = "md",
    [MC_META_ARITH] = "ma",
    [MC_META_NOOP] = "mn",
    [MC_META_DEBUG] = "me",
};

const char *mc_cmd_name(enum mc_cmd cmd)
{
    if ((unsigned)cmd >= MC_CMD_COUNT)
        return "unknown";
    return cmd_names[cmd];
}

bool mc_cmd_is_storage(enum mc_cmd cmd)
{
    return cmd >= MC_SET && cmd <= MC_CAS;
}

bool mc_cmd_is_retrieval(enum mc_cmd cmd)
{
    return cmd >= MC_GET && cmd <= MC_GATS;
}

bool mc_cmd_is_meta(enum mc_cmd cmd)
{
    return cmd >= MC_META_GET && cmd <= MC_META_DEBUG;
}

void mc_parser_init(struct mc_parser *p, size_t max_line, size_t max_value)
{
    if (max_line == 0)
        max_line = MC_DEFAULT_MAX_LINE;
    if (max_line > MC_LIMIT_MAX_LINE)
        max_line = MC_LIMIT_MAX_LINE;
    if (max_value == 0)
        max_value = MC_DEFAULT_MAX_VALUE;
    if (max_value > (size_t)MC_VLEN_MAX)
        max_value = (size_t)MC_VLEN_MAX;
    p->scanned = 0;
    p->max_line = (uint32_t)max_line;
    p->max_value = (uint32_t)max_value;
    p->binary_keys = false;
}

/* ---- scanning ---------------------------------------------------------- */

#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Nonzero if some byte of w is < 33 (space or control) or == 127. */
static inline uint64_t word_special(uint64_t w)
{
    uint64_t lt33 = (w - ONES * 33) & ~w & HIGHS;
    uint64_t x = w ^ (ONES * 0x7f);
    uint64_t eq127 = (x - ONES) & ~x & HIGHS;
    return lt33 | eq127;
}

/* What a token holds besides printable bytes: control characters (bytes
 * <= 32 other than the separating space, and 127), which memcached accepts
 * in keys and binary_keys lets through; and bytes that end a line for
 * memcached (NUL, "\r", "\n"), which no key may hold: forwarded, they would
 * make a server read a different command than the one routed. */
enum { TOK_CONTROL = 1, TOK_LINE_END = 2 };

static inline uint8_t byte_class(unsigned char c)
{
    if (c == 0 || c == '\r' || c == '\n') return TOK_CONTROL | TOK_LINE_END;
    return c <= 32 || c == 127 ? TOK_CONTROL : 0;
}

/* Scan the token starting at b[i] (not a space) up to the next space or end.
 * Returns the index just past the token; the classes of its special bytes
 * are or-ed into *bad. */
static inline size_t tok_scan(const char *b, size_t i, size_t end, uint8_t *bad)
{
    while (i + 8 <= end) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        if (!word_special(w)) {
            i += 8;
            continue;
        }
        for (size_t j = 0; j < 8; j++, i++) {
            unsigned char c = (unsigned char)b[i];
            if (c == ' ')
                return i;
            *bad |= byte_class(c);
        }
    }
    for (; i < end; i++) {
        unsigned char c = (unsigned char)b[i];
        if (c == ' ')
            return i;
        *bad |= byte_class(c);
    }
    return i;
}

/* A key of len bytes whose special bytes are `bad` is acceptable. */
static inline bool key_acceptable(size_t len, uint8_t bad, bool binary_keys)
{
    return len <= MC_KEY_MAX && !(bad & TOK_LINE_END) && (!bad || binary_keys);
}

static inline size_t skip_sp(const char *b, size_t i, size_t end)
{
    while (i < end && b[i] == ' ')
        i++;
    return i;
}

bool mc_key_allowed(const char *key, size_t len, bool binary_keys)
{
    uint8_t bad = 0;
    if (len == 0 || len > MC_KEY_MAX)
        return false;
    /* tok_scan stops at a space: a key holding one ends early. */
    return tok_scan(key, 0, len, &bad) == len && key_acceptable(len, bad, binary_keys);
}

bool mc_key_valid(const char *key, size_t len)
{
    return mc_key_allowed(key, len, false);
}

bool mc_key_next(const char *buf, const struct mc_request *req, uint32_t *pos,
                 uint32_t *key_off, uint32_t *key_len)
{
    size_t i = *pos, end = req->keys_end;
    i = skip_sp(buf, i, end);
    if (i >= end) {
        *pos = (uint32_t)end;
        return false;
    }
    const char *sp = memchr(buf + i, ' ', end - i);
    size_t e = sp ? (size_t)(sp - buf) : end;
    *key_off = (uint32_t)i;
    *key_len = (uint32_t)(e - i);
    *pos = (uint32_t)e;
    return true;
}

/* ---- tokens ------------------------------------------------------------ */

struct tok {
    uint32_t off;
    uint32_t len;
    uint8_t bad;
};

/* Split [i, end) into at most max tokens; returns max + 1 if there are more. */
static int tokenize(const char *b, size_t i, size_t end, struct tok *t,
                    int max)
{
    int n = 0;
    for (;;) {
        i = skip_sp(b, i, end);
        if (i >= end)
            return n;
        if (n == max)
            return max + 1;
        size_t s = i;
        t[n].bad = 0;
        i = tok_scan(b, i, end, &t[n].bad);
        t[n].off = (uint32_t)s;
        t[n].len = (uint32_t)(i - s);
        n++;
    }
}

static inline bool tok_is(const char *b, const struct tok *t, const char *lit,
                          size_t n)
{
    return t->len == n && memcmp(b + t->off, lit, n) == 0;
}

static inline bool tok_noreply(const char *b, const struct tok *t)
{
    return tok_is(b, t, "noreply", 7);
}

static inline bool tok_key_ok(const struct mc_parser *p, const struct tok *t)
{
    return key_acceptable(t->len, t->bad, p->binary_keys);
}

static inline void set_key(struct mc_request *req, const struct tok *t)
{
    req->key_off = req->keys_off = t->off;
    req->key_len = t->len;
    req->keys_end = t->off + t->len;
    req->nkeys = 1;
}

/* ---- commands ---------------------------------------------------------- */

enum mc_cmd mc_cmd_named(const char *name)
{
    for (int c = MC_NONE + 1; c < MC_CMD_COUNT; c++)
        if (strcmp(name, mc_cmd_name((enum mc_cmd)c)) == 0) return (enum mc_cmd)c;
    return MC_NONE;
}

enum mc_cmd mc_cmd_lookup(const char *s, size_t n)
{
#define IS(lit) (memcmp(s, lit, sizeof(lit) - 1) == 0)
    switch (n) {
    case 3:
        if (IS("get")) return MC_GET;
        if (IS("set")) return MC_SET;
        if (IS("gat")) return MC_GAT;
        if (IS("add")) return MC_ADD;
        if (IS("cas")) return MC_CAS;
        break;
    case 4:
        if (IS("gets")) return MC_GETS;
        if (IS("gats")) return MC_GATS;
        if (IS("incr")) return MC_INCR;
        if (IS("decr")) return MC_DECR;
        if (IS("quit")) return MC_QUIT;
        break;
    case 5:
        if (IS("touch")) return MC_TOUCH;
        if (IS("stats")) return MC_STATS;
        break;
    case 6:
        if (IS("delete")) return MC_DELETE;
        if (IS("append")) return MC_APPEND;
        break;
    case 7:
        if (IS("replace")) return MC_REPLACE;
        if (IS("prepend")) return MC_PREPEND;
        if (IS("version")) return MC_VERSION;
        break;
    case 9:
        if (IS("flush_all")) return MC_FLUSH_ALL;
        if (IS("verbosity")) return MC_VERBOSITY;
        break;
    }
    return MC_NONE;
#undef IS
}

static inline int fail(struct mc_parser *p, struct mc_request *req,
                       const char *msg)
{
    p->scanned = 0;
    req->error = msg;
    return GW_ERROR;
}

/* get/gets/gat/gats: [i, end) holds ("<exptime> " for gat/gats and) keys. */
static int parse_retrieval(struct mc_parser *p, const char *b, size_t i,
                           size_t end, struct mc_request *req)
{
    if (req->cmd >= MC_GAT) {
        i = skip_sp(b, i, end);
        if (i >= end)
            return fail(p, req, MC_ERR_UNKNOWN);  /* "gat" alone */
        size_t s = i;
        uint8_t bad = 0;
        i = tok_scan(b, i, end, &bad);
        if (!mc_parse_i64(b + s, i - s, &req->exptime))
            return fail(p, req, E_EXPTIME);
    }

    uint32_t nkeys = 0;
    size_t first = 0, first_len = 0, last_end = 0;
    for (;;) {
        i = skip_sp(b, i, end);
        if (i >= end)
            break;
        size_t s = i;
        uint8_t bad = 0;
        i = tok_scan(b, i, end, &bad);
        if (!key_acceptable(i - s, bad, p->binary_keys))
            return fail(p, req, MC_ERR_FORMAT);
        if (nkeys == 0) {
            first = s;
            first_len = i - s;
        }
        nkeys++;
        last_end = i;
    }
    if (nkeys == 0)  /* "get" alone is ERROR; "gat 10" is an empty END */
        return fail(p, req, req->cmd >= MC_GAT ? E_END : MC_ERR_UNKNOWN);

    req->key_off = req->keys_off = (uint32_t)first;
    req->key_len = (uint32_t)first_len;
    req->keys_end = (uint32_t)last_end;
    req->nkeys = nkeys;
    p->scanned = 0;
    return GW_OK;
}

/* set/add/replace/append/prepend/cas and their data block. */
static int parse_storage(struct mc_parser *p, const char *b, size_t len,
                         const struct tok *t, int na, struct mc_request *req)
{
    bool is_cas = req->cmd == MC_CAS;
    int want = is_cas ? 5 : 4;
    int64_t vlen = -1;
    uint64_t v = 0;
    bool ok;

    /* Is the declared data length usable?  If so, every error below
     * swallows the data block too (see proto.h). */
    if (na >= 4)
        vlen = mc_parse_vlen(b + t[3].off, t[3].len);
    if (vlen >= 0)
        req->total_len = req->line_len + (uint32_t)vlen + 2;

    if (na < want || na > want + 1)
        return fail(p, req, MC_ERR_UNKNOWN);

    req->noreply = tok_noreply(b, &t[na - 1]);
    set_key(req, &t[0]);
    if (!tok_key_ok(p, &t[0]))
        return fail(p, req, MC_ERR_FORMAT);

    ok = mc_parse_u64(b + t[1].off, t[1].len, &v) && v <= UINT32_MAX;
    req->flags = (uint32_t)v;
    ok = ok && mc_parse_i64(b + t[2].off, t[2].len, &req->exptime);
    if (is_cas)
        ok = ok && mc_parse_u64(b + t[4].off, t[4].len, &req->cas);
    if (!ok || vlen < 0)
        return fail(p, req, MC_ERR_FORMAT);

    req->bytes = (uint32_t)vlen;
    req->data_off = req->line_len;
    if ((uint64_t)vlen > p->max_value)
        return fail(p, req, MC_ERR_TOO_LARGE);

    int rc = mc_parser_block(p, b, len, req->line_len, req->total_len);
    return rc == GW_ERROR ? fail(p, req, MC_ERR_CHUNK) : rc;
}

int mc_parser_block(struct mc_parser *p, const char *buf, size_t len,
                    uint32_t line_len, uint32_t total_len)
{
    if (len < total_len) {
        /* Wait for the data; next time the "\n" is found at once. */
        p->scanned = line_len - 1;
        return GW_AGAIN;
    }
    p->scanned = 0;
    if (buf[total_len - 2] != '\r' || buf[total_len - 1] != '\n')
        return GW_ERROR;
    return GW_OK;
}

int mc_parser_line(struct mc_parser *p, const char *buf, size_t len,
                   size_t *line_len, size_t *end)
{
    size_t lim = len < p->max_line ? len : p->max_line;
    size_t from = p->scanned;
    const char *nl = NULL;

    if (from > lim)
        from = 0;
    if (from < lim)
        nl = memchr(buf + from, '\n', lim - from);
    if (nl) {
        *line_len = (size_t)(nl - buf) + 1;
        *end = *line_len - 1;
        if (*end > 0 && buf[*end - 1] == '\r')
            (*end)--;
        return GW_OK;
    }
    if (len >= p->max_line) {
        *line_len = lim;
        p->scanned = 0;
        return GW_ERROR;
    }
    p->scanned = (uint32_t)lim;
    return GW_AGAIN;
}

int mc_parse(struct mc_parser *p, const char *buf, size_t len,
             struct mc_request *req)
{
    size_t line_len, end;

    memset(req, 0, sizeof(*req));
    int rc = mc_parser_line(p, buf, len, &line_len, &end);
    if (rc == GW_AGAIN)
        return GW_AGAIN;
    if (rc == GW_ERROR) {
        req->line_len = req->total_len = (uint32_t)line_len;
        req->close = true;
        return fail(p, req, MC_ERR_LINE);
    }

    req->line_len = req->total_len = (uint32_t)line_len;

    /* The command token. */
    size_t i = skip_sp(buf, 0, end), cs = i;
    while (i < end && buf[i] != ' ')
        i++;
    enum mc_cmd cmd = mc_cmd_lookup(buf + cs, i - cs);
    req->cmd = cmd;

    switch (cmd) {
    case MC_GET:
    case MC_GETS:
    case MC_GAT:
    case MC_GATS:
        return parse_retrieval(p, buf, i, end, req);
    case MC_VERSION:
    case MC_QUIT:
        /* memcached ignores any arguments. */
        p->scanned = 0;
        return GW_OK;
    case MC_STATS: {
        size_t s = skip_sp(buf, i, end), e = end;
        while (e > s && buf[e - 1] == ' ')
            e--;
        req->args_off = (uint32_t)s;
        req->args_len = (uint32_t)(e - s);
        p->scanned = 0;
        return GW_OK;
    }
    case MC_NONE:
        return fail(p, req, MC_ERR_UNKNOWN);
    default:
        break;
    }

    struct tok t[MC_MAX_ARGS];
    int na = tokenize(buf, i, end, t, MC_MAX_ARGS);

    switch (cmd) {
    case MC_SET:
    case MC_ADD:
    case MC_REPLACE:
    case MC_APPEND:
    case MC_PREPEND:
    case MC_CAS:
        return parse_storage(p, buf, len, t, na, req);

    case MC_DELETE:
        /* delete <key> [0] [noreply] */
        if (na < 1 || na > 3)
            return fail(p, req, MC_ERR_UNKNOWN);
        set_key(req, &t[0]);
        if (na > 1) {
            bool hold0 = tok_is(buf, &t[1], "0", 1);
            req->noreply = tok_noreply(buf, &t[na - 1]);
            if (!((na == 2 && (hold0 || req->noreply)) ||
                  (na == 3 && hold0 && req->noreply)))
                return fail(p, req, E_DELETE);
        }
        if (!tok_key_ok(p, &t[0]))
            return fail(p, req, MC_ERR_FORMAT);
        break;

    case MC_INCR:
    case MC_DECR:
        /* incr <key> <delta> [noreply]; any 4th token that isn't
         * "noreply" is ignored, as memcached does. */
        if (na < 2 || na > 3)
            return fail(p, req, MC_ERR_UNKNOWN);
        req->noreply = tok_noreply(buf, &t[na - 1]);
        set_key(req, &t[0]);
        if (!tok_key_ok(p, &t[0]))
            return fail(p, req, MC_ERR_FORMAT);
        if (!mc_parse_u64(buf + t[1].off, t[1].len, &req->delta))
            return fail(p, req, E_DELTA);
        break;

    case MC_TOUCH:
        if (na < 2 || na > 3)
            return fail(p, req, MC_ERR_UNKNOWN);
        req->noreply = tok_noreply(buf, &t[na - 1]);
        set_key(req, &t[0]);
        if (!tok_key_ok(p, &t[0]))
            return fail(p, req, MC_ERR_FORMAT);
        if (!mc_parse_i64(buf + t[1].off, t[1].len, &req->exptime))
            return fail(p, req, E_EXPTIME);
        break;

    case MC_FLUSH_ALL:
        /* flush_all [delay] [noreply]: like memcached, the delay is the
         * first argument unless the only argument is "noreply". */
        if (na > 2)
            return fail(p, req, MC_ERR_UNKNOWN);
        req->noreply = na > 0 && tok_noreply(buf, &t[na - 1]);
        if (na != (req->noreply ? 1 : 0) &&
            !mc_parse_i64(buf + t[0].off, t[0].len, &req->delay))
            return fail(p, req, E_EXPTIME);
        break;

    case MC_VERBOSITY: {
        uint64_t level;
        if (na < 1 || na > 2)
            return fail(p, req, MC_ERR_UNKNOWN);
        req->noreply = tok_noreply(buf, &t[na - 1]);
        if (!mc_parse_u64(buf + t[0].off, t[0].len, &level) || level > UINT32_MAX)
            return fail(p, req, MC_ERR_FORMAT);
        req->level = (int64_t)level;
        break;
    }

    default:
        return fail(p, req, MC_ERR_UNKNOWN);
    }
    p->scanned = 0;
    return GW_OK;
}
