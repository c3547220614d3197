/* users.c -- see users.h. */
#define _GNU_SOURCE /* memrchr */
#include "users.h"

#include <crypt.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "status.h"

/* One user: offsets of its name and hash in the table's arena. */
struct entry {
    uint32_t name, hash;
    uint16_t nlen, hlen;
};

/* One allocation: this header, n entries sorted by name, then the arena of
 * names and hashes (each NUL-terminated, so a hash is a crypt setting). */
struct users {
    size_t n;
    uint32_t dummy;       /* the stand-in hash for unknown names: its offset ... */
    bool fixed_dummy;     /* ... or FIXED_DUMMY (an empty file) */
    struct entry e[];
};

/* A yescrypt hash (mkpasswd's default cost) of a random password nobody
 * kept: what an unknown name is hashed against when the file has no user. */
static const char FIXED_DUMMY[] =
    "$y$j9T$DesigKl3O2jhXVB.nEDXj1$cDjbUdMHYLlcwoj5Qz2bPpGUPbt4nk7Z0m/nrTUwl43";

static const char *arena(const struct users *u) { return (const char *)&u->e[u->n]; }

static const char *dummy_of(const struct users *u)
{
    return u->fixed_dummy ? FIXED_DUMMY : arena(u) + u->dummy;
}

/* --- what a hash may be --------------------------------------------------- */

/* The schemes a users file may name, or that it is told it may not: the
 * prefix, the name an error uses, and the length of the part after the
 * last '$' (0: not checked). */
static const struct scheme {
    const char *prefix;
    const char *name;
    size_t tail;
} schemes[] = {
    { "$y$", "yescrypt", 43 },
    { "$gy$", "gost-yescrypt", 43 },
    { "$7$", "scrypt", 43 },
    { "$2b$", "bcrypt", 53 },
    { "$2y$", "bcrypt", 53 },
    { "$2a$", "bcrypt", 53 },
    { "$2x$", "bcrypt $2x$ (the variant with the 8-bit bug)", 0 },
    { "$6$", "sha512crypt", 86 },
    { "$5$", "sha256crypt", 43 },
    { "$1$", "md5crypt", 0 },
    { "$md5", "sunmd5", 0 },
    { "$3$", "NT", 0 },
    { "$sha1$", "sha1crypt", 0 },
    { "_", "bsdicrypt (extended DES)", 0 },
};

static const struct scheme *scheme_of(const char *h, size_t n)
{
    for (size_t i = 0; i < GW_ARRAY_LEN(schemes); i++) {
        size_t p = strlen(schemes[i].prefix);
        if (n >= p && !memcmp(h, schemes[i].prefix, p)) return &schemes[i];
    }
    return NULL;
}

static bool crypt_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '/' || c == '$' || c == '=' || c == ',' || c == '_';
}

#define FIX_HINT "make a yescrypt hash: mkpasswd -m yescrypt"

/* NULL if h (n bytes) is a hash a users file may hold, else what is wrong
 * (in why, whylen bytes).  Never quotes the hash. */
static const char *hash_problem(const char *h, size_t n, char *why, size_t whylen)
{
    if (n == 0) return "no hash after the ':'";
    if (n >= CRYPT_OUTPUT_SIZE) return "the hash is too long for a crypt(3) hash";
    for (size_t i = 0; i < n; i++) {
        if (!crypt_char((unsigned char)h[i])) {
            snprintf(why, whylen, "not a crypt(3) hash (byte %zu is not one crypt writes)", i + 1);
            return why;
        }
    }
    const struct scheme *s = scheme_of(h, n);
    char setting[CRYPT_OUTPUT_SIZE];
    memcpy(setting, h, n);
    setting[n] = 0;
    switch (crypt_checksalt(setting)) {
    case CRYPT_SALT_OK:
        break;
    case CRYPT_SALT_METHOD_LEGACY:
        if (!s && h[0] != '$') {
            snprintf(why, whylen, "a DES crypt hash: too weak; " FIX_HINT);
        } else {
            snprintf(why, whylen, "%s hashes are too weak (libcrypt counts them legacy); " FIX_HINT,
                     s ? s->name : "this scheme's");
        }
        return why;
    case CRYPT_SALT_METHOD_DISABLED:
        snprintf(why, whylen, "%s hashes are disabled in this libcrypt; " FIX_HINT,
                 s ? s->name : "this scheme's");
        return why;
    case CRYPT_SALT_TOO_CHEAP:
        snprintf(why, whylen, "the %s hash's cost is too low for libcrypt; " FIX_HINT,
                 s ? s->name : "");
        return why;
    default:
        if (s) snprintf(why, whylen, "not a valid %s hash; " FIX_HINT, s->name);
        else snprintf(why, whylen, "not a crypt(3) hash (an unknown scheme); " FIX_HINT);
        return why;
    }
    /* What crypt_checksalt looks at is the setting: the hash itself must
     * follow ("$id$...$salt$hash"), whole. */
    const char *last = memrchr(h, '$', n);
    size_t dollars = 0;
    for (size_t i = 0; i < n; i++) dollars += h[i] == '$';
    size_t tail = last ? n - (size_t)(last - h) - 1 : 0;
    if (!last || dollars < 3 || tail == 0 || last[-1] == '$') {
        snprintf(why, whylen, "a %s setting without its hash (a whole hash ends in "
                 "\"$salt$hash\"); " FIX_HINT, s ? s->name : "crypt");
        return why;
    }
    if (s && s->tail && tail != s->tail) {
        snprintf(why, whylen, "the %s hash is cut short or too long (its last part has %zu "
                 "characters, not %zu)", s->name, tail, s->tail);
        return why;
    }
    return NULL;
}

/* --- the file -------------------------------------------------------------- */

/* A line's user, before the table is made. */
struct pending {
    const char *name, *hash;
    size_t nlen, hlen;
    unsigned line;
};

static bool blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* Parse line `no` ([p, end)): 1 and *out for a user, 0 for a line with
 * none, -1 with err filled. */
static int parse_line(const char *path, unsigned no, const char *p, const char *end,
                      struct pending *out, char *err, size_t errlen)
{
    while (p < end && blank(*p)) p++;
    while (end > p && blank(end[-1])) end--;
    if (p == end || *p == '#') return 0;
    const char *colon = memchr(p, ':', (size_t)(end - p));
    if (!colon) {
        snprintf(err, errlen, "%s:%u: expected name:hash (no ':' on the line)", path, no);
        return -1;
    }
    size_t nlen = (size_t)(colon - p);
    if (nlen == 0) {
        snprintf(err, errlen, "%s:%u: the user name is empty", path, no);
        return -1;
    }
    if (nlen > USERS_NAME_MAX) {
        snprintf(err, errlen, "%s:%u: the user name is longer than %d bytes", path, no,
                 USERS_NAME_MAX);
        return -1;
    }
    for (size_t i = 0; i < nlen; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= ' ' || c == 0x7f) {
            snprintf(err, errlen, "%s:%u: the user name has a space or a control byte "
                     "(byte %zu)", path, no, i + 1);
            return -1;
        }
    }
    const char *h = colon + 1;
    size_t hlen = (size_t)(end - h);
    if (memchr(h, ':', hlen)) {
        snprintf(err, errlen, "%s:%u: user '%.*s': more than one ':' (expected name:hash, "
                 "not a passwd or shadow line)", path, no, (int)nlen, p);
        return -1;
    }
    char why[200];
    const char *problem = hash_problem(h, hlen, why, sizeof why);
    if (problem) {
        snprintf(err, errlen, "%s:%u: user '%.*s': %s", path, no, (int)nlen, p, problem);
        return -1;
    }
    *out = (struct pending){ .name = p, .nlen = nlen, .hash = h, .hlen = hlen, .line = no };
    return 1;
}

static int name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : alen < blen ? -1 : alen > blen ? 1 : 0;
}

static int pending_cmp(const void *x, const void *y)
{
    const struct pending *a = x, *b = y;
    int c = name_cmp(a->name, a->nlen, b->name, b->nlen);
    return c ? c : a->line < b->line ? -1 : a->line > b->line ? 1 : 0;
}

struct users *users_parse(const char *path, const char *text, size_t len, char *err,
                          size_t errlen)
{
    if (len > USERS_MAX_BYTES) {
        snprintf(err, errlen, "%s: too large for a users file (%zu bytes; at most %u)", path, len,
                 USERS_MAX_BYTES);
        return NULL;
    }
    if (!text) text = "";
    size_t lines = 1;
    for (const char *p = text; (p = memchr(p, '\n', len - (size_t)(p - text))); p++) lines++;
    struct pending *pend = malloc(lines * sizeof *pend);
    if (!pend) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    size_t n = 0, bytes = 0;
    unsigned no = 0;
    const char *p = text, *end = text + len;
    while (p < end || (no == 0 && len == 0)) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        no++;
        int r = parse_line(path, no, p, le, &pend[n], err, errlen);
        if (r < 0) {
            free(pend);
            return NULL;
        }
        if (r > 0) {
            bytes += pend[n].nlen + pend[n].hlen + 2;
            n++;
        }
        if (!nl) break;
        p = nl + 1;
    }
    /* The first user's hash stands in for unknown names: keep its place in
     * the arena, which is filled in file order. */
    qsort(pend, n, sizeof *pend, pending_cmp);
    const struct pending *dup = NULL, *first = NULL;
    for (size_t i = 1; i < n; i++) {
        if (!name_cmp(pend[i].name, pend[i].nlen, pend[i - 1].name, pend[i - 1].nlen) &&
            (!dup || pend[i].line < dup->line)) {
            dup = &pend[i];
            first = &pend[i - 1];
        }
    }
    if (dup) {
        /* first is the earliest line of that name: equal names sort by line */
        while (first > pend && !name_cmp(first[-1].name, first[-1].nlen, dup->name, dup->nlen))
            first--;
        snprintf(err, errlen, "%s:%u: user '%.*s' is given twice (first at line %u)", path,
                 dup->line, (int)dup->nlen, dup->name, first->line);
        free(pend);
        return NULL;
    }
    if (bytes > UINT32_MAX) bytes = UINT32_MAX; /* cannot be: len <= USERS_MAX_BYTES */
    struct users *u = malloc(sizeof *u + n * sizeof u->e[0] + bytes);
    if (!u) {
        free(pend);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    u->n = n;
    u->fixed_dummy = n == 0;
    u->dummy = 0;
    unsigned first_line = 0;
    char *a = (char *)&u->e[n];
    uint32_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const struct pending *q = &pend[i];
        struct entry *e = &u->e[i];
        e->name = off;
        e->nlen = (uint16_t)q->nlen;
        memcpy(a + off, q->name, q->nlen);
        a[off + q->nlen] = 0;
        off += (uint32_t)q->nlen + 1;
        e->hash = off;
        e->hlen = (uint16_t)q->hlen;
        memcpy(a + off, q->hash, q->hlen);
        a[off + q->hlen] = 0;
        off += (uint32_t)q->hlen + 1;
        if (i == 0 || q->line < first_line) {
            first_line = q->line;
            u->dummy = e->hash;
        }
    }
    free(pend);
    return u;
}

struct users *users_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        fclose(f);
        return NULL;
    }
    if ((unsigned long long)st.st_size > USERS_MAX_BYTES) {
        snprintf(err, errlen, "%s: too large for a users file (%lld bytes; at most %u)", path,
                 (long long)st.st_size, USERS_MAX_BYTES);
        fclose(f);
        return NULL;
    }
    char *text = malloc((size_t)st.st_size + 1);
    if (!text) {
        snprintf(err, errlen, "out of memory");
        fclose(f);
        return NULL;
    }
    size_t len = fread(text, 1, (size_t)st.st_size + 1, f);
    bool failed = ferror(f);
    fclose(f);
    struct users *u = NULL;
    if (failed) snprintf(err, errlen, "%s: read error", path);
    else u = users_parse(path, text, len, err, errlen);
    free(text);
    return u;
}

void users_free(struct users *u) { free(u); }

size_t users_count(const struct users *u) { return u ? u->n : 0; }

static const struct entry *find(const struct users *u, const char *name, size_t nlen)
{
    size_t lo = 0, hi = u->n;
    const char *a = arena(u);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct entry *e = &u->e[mid];
        int c = name_cmp(name, nlen, a + e->name, e->nlen);
        if (c == 0) return e;
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

bool users_has(const struct users *u, const char *name, size_t nlen)
{
    return u && find(u, name, nlen) != NULL;
}

/* Is out (NUL-terminated) the hash h (n bytes)?  Time depends on n only. */
static bool same_hash(const char *out, const char *h, size_t n)
{
    size_t olen = strnlen(out, CRYPT_OUTPUT_SIZE);
    volatile unsigned char diff = olen != n;
    for (size_t i = 0; i < n; i++) {
        unsigned char o = i < olen ? (unsigned char)out[i] : 0;
        diff |= o ^ (unsigned char)h[i];
    }
    return diff == 0;
}

/* crypt_rn's work area and the password's one copy, wiped after use. */
struct work {
    struct crypt_data cd;
    char phrase[CRYPT_MAX_PASSPHRASE_SIZE];
};

enum users_result users_check(const struct users *u, const char *name, size_t nlen,
                              const char *pass, size_t plen)
{
    const struct entry *e = name ? find(u, name, nlen) : NULL;
    const char *setting = e ? arena(u) + e->hash : dummy_of(u);
    size_t slen = e ? e->hlen : strlen(setting);
    enum users_result no = e ? USERS_WRONG_PASSWORD : USERS_NO_SUCH_USER;
    if (!pass) {
        pass = "";
        plen = 0;
    }
    if (plen >= CRYPT_MAX_PASSPHRASE_SIZE || memchr(pass, 0, plen)) return no;
    struct work *w = calloc(1, sizeof *w); /* crypt_data starts zeroed */
    if (!w) return USERS_FAILED;
    memcpy(w->phrase, pass, plen);
    w->phrase[plen] = 0;
    const char *out = crypt_rn(w->phrase, setting, &w->cd, sizeof w->cd);
    bool match = out && same_hash(out, setting, slen);
    explicit_bzero(w, sizeof *w);
    free(w);
    if (!e) return USERS_NO_SUCH_USER;
    if (!out) return USERS_FAILED;
    return match ? USERS_MATCH : USERS_WRONG_PASSWORD;
}

/* --- SASL PLAIN ------------------------------------------------------------ */

int users_sasl_plain(const char *msg, size_t len, const char **user, size_t *ulen,
                     const char **pass, size_t *plen, const char **why)
{
    const char *z1 = memchr(msg, 0, len);
    const char *id = z1 ? z1 + 1 : NULL;
    const char *z2 = id ? memchr(id, 0, len - (size_t)(id - msg)) : NULL;
    if (!z2) {
        *why = "expected authzid NUL authcid NUL password";
        return GW_ERROR;
    }
    const char *pw = z2 + 1;
    size_t pwlen = len - (size_t)(pw - msg), idlen = (size_t)(z2 - id), zlen = (size_t)(z1 - msg);
    if (memchr(pw, 0, pwlen)) {
        *why = "more than two NULs";
        return GW_ERROR;
    }
    if (idlen == 0) {
        *why = "empty user name (authcid)";
        return GW_ERROR;
    }
    if (pwlen == 0) {
        *why = "empty password";
        return GW_ERROR;
    }
    if (zlen && (zlen != idlen || memcmp(msg, id, idlen))) {
        *why = "the authzid is not the authcid (acting as another user is not supported)";
        return GW_ERROR;
    }
    *user = id;
    *ulen = idlen;
    *pass = pw;
    *plen = pwlen;
    return GW_OK;
}
