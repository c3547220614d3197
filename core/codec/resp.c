/* resp.c -- the parser for what a memcached backend sends back.
 *
 * One call looks at one unit from its start.  The line end is found with a
 * single memchr bounded by MC_RESP_MAX_LINE, so a caller that re-calls from
 * the unit start after each read rescans at most one short line; the data
 * block of a VALUE is never scanned: once its line parses, the unit's size is
 * known and only the two bytes after the block are looked at.
 */
#include "resp.h"

#include <string.h>



const char *mc_resp_word(enum mc_resp_kind kind)
{
    return reply_line(kind) ? reply_word(kind) : NULL;
}

static inline bool is_digit(char c)
{
    return (unsigned char)(c - '0') <= 9;
}

#define EQ(w, lit) (memcmp((w), lit, sizeof(lit) - 1) == 0)

/* The kind a whole first word names, or RESP_NONE.  Digits are not words. */
static enum mc_resp_kind word_kind(const char *w, size_t n)
{
    switch (n) {
    case 2:
        return EQ(w, "OK") ? RESP_OK : RESP_NONE;
    case 3:
        return EQ(w, "END") ? RESP_END : RESP_NONE;
    case 4:
        return EQ(w, "STAT") ? RESP_STAT : RESP_NONE;
    case 5:
        if (w[0] == 'V')
            return EQ(w, "VALUE") ? RESP_VALUE : RESP_NONE;
        return EQ(w, "ERROR") ? RESP_ERROR : RESP_NONE;
    case 6:
        if (w[0] == 'S')
            return EQ(w, "STORED") ? RESP_STORED : RESP_NONE;
        return EQ(w, "EXISTS") ? RESP_EXISTS : RESP_NONE;
    case 7:
        switch (w[0]) {
        case 'D': return EQ(w, "DELETED") ? RESP_DELETED : RESP_NONE;
        case 'T': return EQ(w, "TOUCHED") ? RESP_TOUCHED : RESP_NONE;
        case 'V': return EQ(w, "VERSION") ? RESP_VERSION : RESP_NONE;
        default: return RESP_NONE;
        }
    case 9:
        return EQ(w, "NOT_FOUND") ? RESP_NOT_FOUND : RESP_NONE;
    case 10:
        return EQ(w, "NOT_STORED") ? RESP_NOT_STORED : RESP_NONE;
    case 12:
        if (w[0] == 'C')
            return EQ(w, "CLIENT_ERROR") ? RESP_CLIENT_ERROR : RESP_NONE;
        return EQ(w, "SERVER_ERROR") ? RESP_SERVER_ERROR : RESP_NONE;
    default:
        return RESP_NONE;
    }
}

/* Decimal digits at *pp (at least one), stopping at the first non-digit.
 * False when there is no digit or the value does not fit in 64 bits. */
static inline bool parse_u64(const char **pp, const char *end, uint64_t *out)
{
    const char *p = *pp;
    uint64_t v = 0;

    if (p >= end || !is_digit(*p))
        return false;
    do {
        unsigned d = (unsigned)(unsigned char)*p - '0';
        if (v > UINT64_MAX / 10 ||
            (v == UINT64_MAX / 10 && d > UINT64_MAX % 10))
            return false;
        v = v * 10 + d;
        p++;
    } while (p < end && is_digit(*p));
    *pp = p;
    *out = v;
    return true;
}

/* One or more spaces at *pp. */
static inline bool skip_spaces1(const char **pp, const char *end)
{
    const char *p = *pp;
    if (p >= end || *p != ' ')
        return false;
    do
        p++;
    while (p < end && *p == ' ');
    *pp = p;
    return true;
}

static inline bool only_spaces(const char *p, const char *end)
{
    while (p < end && *p == ' ')
        p++;
    return p == end;
}

static const char *text_word(int kind)
{
    return reply_word((enum mc_resp_kind)kind);
}

/* An incomplete line [buf, buf+len) (no "\n", len < MC_RESP_MAX_LINE): can it
 * still become a valid line?  Only its first word is judged. */
static bool partial_ok(const char *buf, size_t len)
{
    size_t n;

    if (len == 0)
        return true;
    if (is_digit(buf[0])) {
        for (n = 1; n < len && is_digit(buf[n]); n++)
            ;
        return n == len || buf[n] == ' ' || buf[n] == '\r';
    }
    return mc_resp_partial_word(buf, len, text_word, RESP_KIND_COUNT);
}

bool mc_resp_partial_word(const char *buf, size_t len,
                          const char *(*word)(int kind), int nkinds)
{
    size_t n = 0;
    while (n < len && n <= MC_RESP_WORD_MAX && buf[n] != ' ' && buf[n] != '\r')
        n++;
    if (n == 0 || n > MC_RESP_WORD_MAX)
        return false;
    for (int k = 1; k < nkinds; k++) {
        const char *w = word(k);
        size_t wl = w ? strlen(w) : 0;
        /* a whole word (n < len) must be one; a cut-off one, a prefix */
        if (w && (n < len ? wl == n : wl >= n) && memcmp(w, buf, n) == 0)
            return true;
    }
    return false;
}

const char *mc_resp_line(const char *buf, size_t len, const char **end,
                         const char **word_end)
{
    const char *nl =
        memchr(buf, '\n', len < MC_RESP_MAX_LINE ? len : MC_RESP_MAX_LINE);
    if (nl == NULL)
        return NULL;
    const char *e = nl;
    if (e > buf && e[-1] == '\r')
        e--;
    const char *w = buf;
    const char *wlim = e - buf > MC_RESP_WORD_MAX ? buf + MC_RESP_WORD_MAX + 1 : e;
    while (w < wlim && *w != ' ')
        w++;
    *end = e;
    *word_end = w;
    return nl;
}

/* The VALUE line [buf, end) after its word (p), then the data block. */
static int parse_value(const char *buf, size_t len, const char *p,
                       const char *end, struct mc_resp *r)
{
    uint64_t v;
    const char *key;

    if (!skip_spaces1(&p, end))
        return GW_ERROR;
    key = p;
    while (p < end && *p != ' ') /* any byte but space: memcached keys may be binary */
        p++;
    if (p == key)
        return GW_ERROR;
    r->key_off = (uint32_t)(key - buf);
    r->key_len = (uint32_t)(p - key);

    if (!skip_spaces1(&p, end) || !parse_u64(&p, end, &v) || v > UINT32_MAX)
        return GW_ERROR;
    r->flags = (uint32_t)v;

    if (!skip_spaces1(&p, end) || !parse_u64(&p, end, &v) || v > UINT32_MAX)
        return GW_ERROR;
    r->bytes = (uint32_t)v;

    if (p < end) {
        if (!skip_spaces1(&p, end))
            return GW_ERROR;
        if (p < end) {
            if (!parse_u64(&p, end, &r->cas) || !only_spaces(p, end))
                return GW_ERROR;
            r->has_cas = true;
        }
    }

    r->data_off = r->line_len;
    return mc_resp_block(buf, len, r->line_len, r->bytes, &r->total_len,
                         &r->need);
}

int mc_resp_block(const char *buf, size_t len, uint32_t line_len,
                  uint32_t bytes, uint32_t *total_len, size_t *need)
{
    uint64_t total = (uint64_t)line_len + bytes + 2;
    if (total > UINT32_MAX)
        return GW_ERROR;
    size_t stop = (size_t)line_len + bytes; /* the "\r" after data */
    if (len < total) {
        if (len > stop && buf[stop] != '\r')
            return GW_ERROR;
        *need = (size_t)total;
        return GW_AGAIN;
    }
    if (buf[stop] != '\r' || buf[stop + 1] != '\n')
        return GW_ERROR;
    *total_len = (uint32_t)total;
    return GW_OK;
}

int mc_resp_parse(const char *buf, size_t len, struct mc_resp *r)
{
    memset(r, 0, sizeof(*r));

    const char *end, *w;
    const char *nl = mc_resp_line(buf, len, &end, &w);
    if (nl == NULL) {
        if (len >= MC_RESP_MAX_LINE || !partial_ok(buf, len))
            return GW_ERROR;
        return GW_AGAIN;
    }
    r->line_len = r->total_len = (uint32_t)(nl - buf) + 1;

    if (is_digit(buf[0])) {
        const char *p = buf;
        if (!parse_u64(&p, end, &r->number) || !only_spaces(p, end))
            return GW_ERROR;
        r->kind = RESP_NUMBER;
        return GW_OK;
    }

    enum mc_resp_kind kind = word_kind(buf, (size_t)(w - buf));
    r->kind = kind;

    switch (kind) {
    case RESP_NONE:
        return GW_ERROR;
    case RESP_VALUE:
        return parse_value(buf, len, w, end, r);
    case RESP_VERSION:
    case RESP_STAT:
    case RESP_ERROR:
    case RESP_CLIENT_ERROR:
    case RESP_SERVER_ERROR:
        if (w < end) { /* *w == ' ' */
            r->msg_off = (uint32_t)(w + 1 - buf);
            r->msg_len = (uint32_t)(end - (w + 1));
        } else {
            r->msg_off = (uint32_t)(end - buf);
        }
        return GW_OK;
    default:
        return only_spaces(w, end) ? GW_OK : GW_ERROR;
    }
}
