/* meta_resp.c -- the parser for a memcached backend's meta replies.
 *
 * Kept apart from resp.c: a connection that speaks meta gets only meta
 * replies and the generic error lines, and resp.c's test for "can this
 * partial line still become a reply" must not start accepting "H" or "E"
 * for a text connection.  What the two share is resp.c's and used from
 * there: the bounded line search and first word (mc_resp_line), the test
 * of an incomplete first word against a word list (mc_resp_partial_word)
 * and a value's data block, never scanned: only the two bytes after it are
 * looked at (mc_resp_block).
 */
#include "meta_resp.h"

#include <stddef.h>
#include <string.h>

#include "num.h"

static const char *const words[MRESP_KIND_COUNT] = {
    [MRESP_VA] = "VA",
    [MRESP_HD] = "HD",
    [MRESP_EN] = "EN",
    [MRESP_NS] = "NS",
    [MRESP_EX] = "EX",
    [MRESP_NF] = "NF",
    [MRESP_MN] = "MN",
    [MRESP_ME] = "ME",
    [MRESP_ERROR] = "ERROR",
    [MRESP_CLIENT_ERROR] = "CLIENT_ERROR",
    [MRESP_SERVER_ERROR] = "SERVER_ERROR",
};

const char *mc_meta_resp_word(enum mc_meta_resp_kind kind)
{
    if ((unsigned)kind >= MRESP_KIND_COUNT)
        return NULL;
    return words[kind];
}

#define EQ(w, lit) (memcmp((w), lit, sizeof(lit) - 1) == 0)

/* The kind a whole first word of n bytes names, or MRESP_NONE. */
static enum mc_meta_resp_kind word_kind(const char *w, size_t n)
{
    switch (n) {
    case 2:
        for (int k = MRESP_VA; k <= MRESP_ME; k++)
            if (w[0] == words[k][0] && w[1] == words[k][1])
                return (enum mc_meta_resp_kind)k;
        return MRESP_NONE;
    case 5:
        return EQ(w, "ERROR") ? MRESP_ERROR : MRESP_NONE;
    case 12:
        if (EQ(w, "CLIENT_ERROR"))
            return MRESP_CLIENT_ERROR;
        return EQ(w, "SERVER_ERROR") ? MRESP_SERVER_ERROR : MRESP_NONE;
    default:
        return MRESP_NONE;
    }
}

static const char *meta_word(int kind)
{
    return mc_meta_resp_word((enum mc_meta_resp_kind)kind);
}

static inline const char *skip_spaces(const char *p, const char *end)
{
    while (p < end && *p == ' ')
        p++;
    return p;
}

static inline const char *token_end(const char *p, const char *end)
{
    const char *sp = p < end ? memchr(p, ' ', (size_t)(end - p)) : NULL;
    return sp ? sp : end;
}

static inline bool is_letter(char c)
{
    return (unsigned char)((c | 0x20) - 'a') < 26;
}

/* The flags of [p, end), each after one or more spaces (p is just past the
 * word or the size).  False for a flag that is not a letter (and its
 * token), or for too many. */
static bool parse_flags(const char *buf, const char *p, const char *end,
                        struct mc_meta_resp *r)
{
    if (p < end && *p != ' ')
        return false;
    for (;;) {
        p = skip_spaces(p, end);
        if (p == end)
            return true;
        if (!is_letter(*p) || r->nflags == MC_META_RESP_MAX_FLAGS)
            return false;
        const char *e = token_end(p, end);
        struct mc_meta_flag *f = &r->flags[r->nflags++];
        f->off = (uint32_t)(p - buf);
        f->len = (uint32_t)(e - p);
        f->letter = *p;
        r->flag_bits |= MC_META_BIT(*p);
        p = e;
    }
}

/* VA: " <size>" at p, the flags, then the data block. */
static int parse_value(const char *buf, size_t len, const char *p,
                       const char *end, struct mc_meta_resp *r)
{
    uint64_t v = 0;

    if (p == end || *p != ' ')
        return GW_ERROR;
    p = skip_spaces(p, end);
    const char *e = token_end(p, end);
    /* Digits only: the size is what keeps the stream in step. */
    if (p == e || (unsigned char)(*p - '0') > 9 ||
        !mc_parse_u64(p, (size_t)(e - p), &v) || v > UINT32_MAX)
        return GW_ERROR;
    r->bytes = (uint32_t)v;
    if (!parse_flags(buf, e, end, r))
        return GW_ERROR;

    r->data_off = r->line_len;
    return mc_resp_block(buf, len, r->line_len, r->bytes, &r->total_len,
                         &r->need);
}

/* The text after the space at w (if any) up to end, as msg. */
static void set_msg(const char *buf, const char *w, const char *end,
                    struct mc_meta_resp *r)
{
    if (w < end) {  /* *w == ' ' */
        r->msg_off = (uint32_t)(w + 1 - buf);
        r->msg_len = (uint32_t)(end - (w + 1));
    } else {
        r->msg_off = (uint32_t)(end - buf);
    }
}

/* ME: " <key>" at p, then the debug text. */
static int parse_debug(const char *buf, const char *p, const char *end,
                       struct mc_meta_resp *r)
{
    if (p == end || *p != ' ')
        return GW_ERROR;
    p = skip_spaces(p, end);
    const char *e = token_end(p, end);
    if (p == e)
        return GW_ERROR;
    r->key_off = (uint32_t)(p - buf);
    r->key_len = (uint32_t)(e - p);
    set_msg(buf, e, end, r);
    return GW_OK;
}

int mc_meta_resp_parse(const char *buf, size_t len, struct mc_meta_resp *r)
{
    memset(r, 0, offsetof(struct mc_meta_resp, flags));

    const char *end, *w;
    const char *nl = mc_resp_line(buf, len, &end, &w);
    if (nl == NULL) {
        /* Only the first word of an incomplete line is judged. */
        if (len >= MC_RESP_MAX_LINE ||
            (len > 0 && !mc_resp_partial_word(buf, len, meta_word,
                                              MRESP_KIND_COUNT)))
            return GW_ERROR;
        return GW_AGAIN;
    }
    r->line_len = r->total_len = (uint32_t)(nl - buf) + 1;

    enum mc_meta_resp_kind kind = word_kind(buf, (size_t)(w - buf));
    r->kind = kind;

    switch (kind) {
    case MRESP_NONE:
        return GW_ERROR;
    case MRESP_VA:
        return parse_value(buf, len, w, end, r);
    case MRESP_MN:
        return skip_spaces(w, end) == end ? GW_OK : GW_ERROR;
    case MRESP_ME:
        return parse_debug(buf, w, end, r);
    case MRESP_ERROR:
    case MRESP_CLIENT_ERROR:
    case MRESP_SERVER_ERROR:
        set_msg(buf, w, end, r);
        return GW_OK;
    default:  /* HD EN NS EX NF */
        return parse_flags(buf, w, end, r) ? GW_OK : GW_ERROR;
    }
}
