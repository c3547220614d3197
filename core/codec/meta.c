/* meta.c -- the memcached meta-protocol request parser (client side).
 *
 * See meta.h for the contract.  One pass over a complete command line:
 *   1. find the "\n" with mc_parser_line (proto.c), the text parser's own
 *      search, so both share p->scanned;
 *   2. the command token picks mg/md/ma, ms, mn or me;
 *   3. the key (and ms's <datalen>) is split off, then the flags are
 *      recorded as offsets in request order;
 *   4. the flags are checked the way memcached's _meta_flag_preparse does,
 *      in the same order, so the first error reported is memcached's: one
 *      table says what each letter's token must be.
 */
#include "meta.h"

#include <stddef.h>
#include <string.h>

#include "base/base64.h"
#include "num.h"

#define OPAQUE_MAX  32                      /* an O token, its 'O' counted */

static const char E_MG_TOO_MANY[] = "CLIENT_ERROR options flags are too long";
static const char E_TOO_MANY[] = "CLIENT_ERROR options flags too long";
static const char E_DUPLICATE[] = "CLIENT_ERROR duplicate flag";
static const char E_INVALID[] = "CLIENT_ERROR invalid flag";
static const char E_INVALID_OR_DUP[] = "CLIENT_ERROR invalid or duplicate flag";
static const char E_TOKEN[] = "CLIENT_ERROR bad token in command line format";
static const char E_INITIAL[] = "CLIENT_ERROR invalid numeric initial value";
static const char E_DELTA[] = "CLIENT_ERROR invalid numeric delta value";
static const char E_MODE_LEN[] = "CLIENT_ERROR incorrect length for M token";
static const char E_DECODE[] = "CLIENT_ERROR error decoding key";
static const char E_MS_MODE[] = "CLIENT_ERROR invalid mode for ms M token";
static const char E_MA_MODE[] = "CLIENT_ERROR invalid mode for ma M token";
static const char E_OPAQUE[] = "CLIENT_ERROR opaque token too long";

/* What a flag's token must be.  0 (absent) is a byte that is no flag. */
enum flag_kind {
    FK_NONE = 0,
    FK_PLAIN,    /* the token, if any, is ignored */
    FK_QUIET,    /* q */
    FK_KEY64,    /* b: the key is base64 */
    FK_TTL,      /* N T R: int64 */
    FK_CAS,      /* C E: uint64 */
    FK_FLAGS,    /* F: uint32 */
    FK_MODE,     /* M: one character */
    FK_INITIAL,  /* J: uint64 */
    FK_DELTA,    /* D: uint64 */
};

static const uint8_t flag_kinds[128] = {
    ['c'] = FK_PLAIN, ['f'] = FK_PLAIN, ['h'] = FK_PLAIN, ['k'] = FK_PLAIN,
    ['l'] = FK_PLAIN, ['s'] = FK_PLAIN, ['t'] = FK_PLAIN, ['u'] = FK_PLAIN,
    ['v'] = FK_PLAIN, ['x'] = FK_PLAIN, ['I'] = FK_PLAIN, ['O'] = FK_PLAIN,
    ['P'] = FK_PLAIN, ['L'] = FK_PLAIN, ['q'] = FK_QUIET, ['b'] = FK_KEY64,
    ['N'] = FK_TTL,   ['T'] = FK_TTL,   ['R'] = FK_TTL,   ['C'] = FK_CAS,
    ['E'] = FK_CAS,   ['F'] = FK_FLAGS, ['M'] = FK_MODE,  ['J'] = FK_INITIAL,
    ['D'] = FK_DELTA,
};

const struct mc_meta_flag *mc_meta_flag_find(const struct mc_meta_flag *flags,
                                             uint32_t n, uint64_t bits,
                                             char letter)
{
    /* 'A'..'z' keeps the shift in range; the six bytes between the two
     * cases never have a bit set. */
    if ((unsigned char)(letter - 'A') > 'z' - 'A' || !(bits & MC_META_BIT(letter)))
        return NULL;
    for (uint32_t i = 0; i < n; i++)
        if (flags[i].letter == letter)
            return &flags[i];
    return NULL;
}

bool mc_is_meta(const char *buf, size_t len)
{
    size_t i = 0;
    while (i < len && buf[i] == ' ')
        i++;
    return i < len && buf[i] == 'm';
}

/* ---- tokens ------------------------------------------------------------ */

struct tok {
    uint32_t off;
    uint32_t len;
};

/* The next space-separated token of [*i, end); false at the end. */
static inline bool next_tok(const char *b, size_t *i, size_t end, struct tok *t)
{
    size_t s = *i;
    while (s < end && b[s] == ' ')
        s++;
    if (s >= end) {
        *i = end;
        return false;
    }
    const char *sp = memchr(b + s, ' ', end - s);
    size_t e = sp ? (size_t)(sp - b) : end;
    t->off = (uint32_t)s;
    t->len = (uint32_t)(e - s);
    *i = e;
    return true;
}

static inline bool is_letter(unsigned char c)
{
    return (unsigned char)((c | 0x20) - 'a') < 26;
}

static inline void set_key(struct mc_meta_request *req, const struct tok *t)
{
    req->key_off = t->off;
    req->key_len = t->len;
}

static void add_flag(struct mc_meta_request *req, const char *b,
                     const struct tok *t)
{
    struct mc_meta_flag *f = &req->flags[req->nflags++];
    f->off = t->off;
    f->len = t->len;
    f->letter = b[t->off];
}

/* Record the flags of [i, end).  Returns NULL, or the error for more than
 * max flags or for a NUL in one (memcached would end its line there). */
static const char *collect_flags(const char *b, size_t i, size_t end,
                                 struct mc_meta_request *req, uint32_t max)
{
    struct tok t;
    while (next_tok(b, &i, end, &t)) {
        if (req->nflags == max)
            return req->cmd == MC_META_GET ? E_MG_TOO_MANY : E_TOO_MANY;
        if (memchr(b + t.off, '\0', t.len) != NULL)
            return MC_ERR_FORMAT;
        add_flag(req, b, &t);
    }
    return NULL;
}

/* b: decode the key as sent into req->kbuf. */
static bool decode_key(const char *b, struct mc_meta_request *req)
{
    long n = base64_decode(b + req->key_off, req->key_len, req->kbuf,
                           sizeof(req->kbuf));
    if (n < 0)
        return false;
    req->kbuf_len = (uint32_t)n;
    req->binary_key = true;
    return true;
}

/* ---- flags ------------------------------------------------------------- */

/* Check flag f's token and store its value.  On a bad token returns false
 * and sets *msg to its error, except for F, which (as in memcached) leaves
 * the message to an earlier or later flag. */
static bool check_token(const char *b, const struct mc_meta_flag *f,
                        struct mc_meta_request *req, const char **msg)
{
    const char *t = b + f->off + 1;
    size_t n = f->len - 1;
    uint64_t u;
    int64_t v;

    switch (flag_kinds[(unsigned char)f->letter]) {
    case FK_QUIET:
        req->quiet = true;
        return true;
    case FK_KEY64:
        if (!decode_key(b, req))
            return *msg = E_DECODE, false;
        return true;
    case FK_TTL:
        if (!mc_parse_i64(t, n, &v))
            return *msg = E_TOKEN, false;
        *(f->letter == 'T' ? &req->ttl
          : f->letter == 'N' ? &req->vivify_ttl : &req->recache_ttl) = v;
        return true;
    case FK_CAS:
        if (!mc_parse_u64(t, n, &u))
            return *msg = E_TOKEN, false;
        *(f->letter == 'C' ? &req->cas : &req->new_cas) = u;
        return true;
    case FK_FLAGS:
        if (!mc_parse_u64(t, n, &u) || u > UINT32_MAX)
            return false;
        req->client_flags = (uint32_t)u;
        return true;
    case FK_MODE:
        if (n != 1)
            return *msg = E_MODE_LEN, false;
        req->mode = t[0];
        return true;
    case FK_INITIAL:
        if (!mc_parse_u64(t, n, &req->initial))
            return *msg = E_INITIAL, false;
        return true;
    case FK_DELTA:
        if (!mc_parse_u64(t, n, &req->delta))
            return *msg = E_DELTA, false;
        return true;
    default:
        return true;
    }
}

/* memcached's flag walk: a duplicate or unknown flag stops it; a bad token
 * is remembered and the walk goes on, the last message winning. */
static const char *check_flags(const char *b, struct mc_meta_request *req)
{
    const char *msg = MC_ERR_FORMAT;
    bool bad = false;

    for (uint32_t i = 0; i < req->nflags; i++) {
        const struct mc_meta_flag *f = &req->flags[i];
        unsigned char c = (unsigned char)f->letter;
        if (c >= 127 || (is_letter(c) && mc_meta_has(req, (char)c)))
            return E_DUPLICATE;
        if (flag_kinds[c] == FK_NONE)
            return E_INVALID;
        req->flag_bits |= MC_META_BIT(c);
        if (!check_token(b, f, req, &msg))
            bad = true;
    }
    return bad ? msg : NULL;
}

/* After the walk: the mode of ms and ma, then the opaque's length. */
static const char *check_mode_opaque(struct mc_meta_request *req)
{
    if (mc_meta_has(req, 'M')) {
        if (req->cmd == MC_META_SET && !memchr("EAPRS", req->mode, 5))
            return E_MS_MODE;
        if (req->cmd == MC_META_ARITH && !memchr("I+D-", req->mode, 4))
            return E_MA_MODE;
    }
    const struct mc_meta_flag *o = mc_meta_flag(req, 'O');
    if (o && o->len > OPAQUE_MAX)
        return E_OPAQUE;
    return NULL;
}

/* The flags once recorded: the walk, then mode and opaque.  md and ma give
 * one message for any fault the walk finds. */
static const char *flags_error(const char *b, struct mc_meta_request *req)
{
    const char *err = check_flags(b, req);
    if (err)
        return req->cmd == MC_META_DELETE || req->cmd == MC_META_ARITH ? E_INVALID_OR_DUP : err;
    return check_mode_opaque(req);
}

/* ---- commands ---------------------------------------------------------- */

static inline int fail(struct mc_parser *p, struct mc_meta_request *req,
                       const char *msg)
{
    p->scanned = 0;
    req->error = msg;
    return GW_ERROR;
}

static inline int done(struct mc_parser *p)
{
    p->scanned = 0;
    return GW_OK;
}

static inline bool key_ok(const struct mc_parser *p, const char *b,
                          const struct tok *t)
{
    return mc_key_allowed(b + t->off, t->len, p->binary_keys);
}

/* mg, md, ma: <key> <flag>* in [i, end). */
static int parse_keyed(struct mc_parser *p, const char *b, size_t i,
                       size_t end, struct mc_meta_request *req)
{
    struct tok key;
    const char *err;

    if (!next_tok(b, &i, end, &key))
        return fail(p, req, MC_ERR_UNKNOWN);
    set_key(req, &key);
    if (!key_ok(p, b, &key))
        return fail(p, req, MC_ERR_FORMAT);
    if ((err = collect_flags(b, i, end, req, MC_META_MAX_FLAGS)) != NULL ||
        (err = flags_error(b, req)) != NULL)
        return fail(p, req, err);
    return done(p);
}

/* ms <key> <datalen> <flag>*, then the data block. */
static int parse_set(struct mc_parser *p, const char *b, size_t len, size_t i,
                     size_t end, struct mc_meta_request *req)
{
    struct tok key, dl;
    int64_t vlen = -1;
    const char *err;

    if (!next_tok(b, &i, end, &key))
        return fail(p, req, MC_ERR_UNKNOWN);
    set_key(req, &key);
    bool has_len = next_tok(b, &i, end, &dl);
    /* A readable length: every error below swallows the block (meta.h). */
    if (has_len)
        vlen = mc_parse_vlen(b + dl.off, dl.len);
    if (vlen >= 0)
        req->total_len = req->line_len + (uint32_t)vlen + 2;

    if (!key_ok(p, b, &key) || !has_len)
        return fail(p, req, MC_ERR_FORMAT);
    if ((err = collect_flags(b, i, end, req, MC_META_MAX_FLAGS - 1)) != NULL)
        return fail(p, req, err);
    if (vlen < 0)
        return fail(p, req, MC_ERR_FORMAT);
    if ((err = flags_error(b, req)) != NULL)
        return fail(p, req, err);

    req->bytes = (uint32_t)vlen;
    req->data_off = req->line_len;
    if ((uint64_t)vlen > p->max_value)
        return fail(p, req, MC_ERR_TOO_LARGE);

    int rc = mc_parser_block(p, b, len, req->line_len, req->total_len);
    return rc == GW_ERROR ? fail(p, req, MC_ERR_CHUNK) : rc;
}

/* me <key> [b]: only a first flag that is exactly "b" counts. */
static int parse_debug(struct mc_parser *p, const char *b, size_t i,
                       size_t end, struct mc_meta_request *req)
{
    struct tok key, f;

    if (!next_tok(b, &i, end, &key))
        return fail(p, req, MC_ERR_FORMAT);
    set_key(req, &key);
    if (!key_ok(p, b, &key))
        return fail(p, req, MC_ERR_FORMAT);
    if (next_tok(b, &i, end, &f) && f.len == 1 && b[f.off] == 'b') {
        add_flag(req, b, &f);
        req->flag_bits = MC_META_BIT('b');
        if (!decode_key(b, req))
            return fail(p, req, MC_ERR_FORMAT);
    }
    return done(p);
}

/* The command a token of n bytes at s names, or MC_NONE. */
static enum mc_cmd cmd_lookup(const char *s, size_t n)
{
    if (n != 2 || s[0] != 'm')
        return MC_NONE;
    switch (s[1]) {
    case 'g': return MC_META_GET;
    case 's': return MC_META_SET;
    case 'd': return MC_META_DELETE;
    case 'a': return MC_META_ARITH;
    case 'n': return MC_META_NOOP;
    case 'e': return MC_META_DEBUG;
    default: return MC_NONE;
    }
}

int mc_meta_parse(struct mc_parser *p, const char *buf, size_t len,
                  struct mc_meta_request *req)
{
    size_t line_len, end;

    memset(req, 0, offsetof(struct mc_meta_request, kbuf_len));
    req->kbuf_len = 0;
    int rc = mc_parser_line(p, buf, len, &line_len, &end);
    if (rc == GW_AGAIN)
        return GW_AGAIN;
    if (rc == GW_ERROR) {
        req->line_len = req->total_len = (uint32_t)line_len;
        req->close = true;
        return fail(p, req, MC_ERR_LINE);
    }

    req->line_len = req->total_len = (uint32_t)line_len;

    struct tok cmd;
    size_t i = 0;
    if (!next_tok(buf, &i, end, &cmd))
        return fail(p, req, MC_ERR_UNKNOWN);
    req->cmd = cmd_lookup(buf + cmd.off, cmd.len);

    switch (req->cmd) {
    case MC_META_GET:
    case MC_META_DELETE:
    case MC_META_ARITH:
        return parse_keyed(p, buf, i, end, req);
    case MC_META_SET:
        return parse_set(p, buf, len, i, end, req);
    case MC_META_DEBUG:
        return parse_debug(p, buf, i, end, req);
    case MC_META_NOOP:
        return done(p);  /* memcached ignores anything after it */
    default:
        return fail(p, req, MC_ERR_UNKNOWN);
    }
}

void mc_meta_to_request(const struct mc_meta_request *m, struct mc_request *mc)
{
    memset(mc, 0, sizeof *mc);
    mc->cmd = m->cmd;
    mc->line_len = m->line_len;
    mc->total_len = m->total_len;
    mc->key_off = m->key_off;
    mc->key_len = m->key_len;
    mc->nkeys = m->cmd != MC_META_NOOP;
    mc->bytes = m->bytes;
    mc->data_off = m->data_off;
    if (m->nflags > 0) {
        const struct mc_meta_flag *last = &m->flags[m->nflags - 1];
        mc->args_off = m->flags[0].off;
        mc->args_len = last->off + last->len - m->flags[0].off;
    }
    mc->quiet = m->quiet;
    mc->binary_key = m->binary_key;
}
