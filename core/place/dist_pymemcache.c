/* dist_pymemcache.c -- pymemcache 3.5.2's HashClient (Debian's
 * python3-pymemcache): rendezvous (highest random weight) hashing.
 *
 * What pymemcache does (client/hash.py, rendezvous.py, murmur3.py):
 *   - each server is a node named "%s:%s" % (host, port), i.e. "host:port"
 *     with the host as the app wrote it (a string "[::1]:11211" becomes
 *     ("::1", 11211), so "::1:11211"; a string with no port gets 11211);
 *   - a key's score on a node is murmur3_32("%s-%s" % (node, key), seed 0),
 *     computed by pymemcache's own pure-Python murmur3 on the *str*: it
 *     takes ord(c) & 0xff of each character and counts characters, not
 *     bytes, in the length;
 *   - the highest score wins; equal scores go to the larger node name
 *     (Python's max() of the two strings), so the list order never matters;
 *   - no weights: add_node skips a node already there, so listing a server
 *     twice is listing it once.  A weight other than 1 is refused here.
 * The key the client hashes is the str the app passed; the bytes it sends
 * (so the bytes the gateway sees) are that str encoded as UTF-8
 * (allow_unicode_keys=True; ASCII otherwise).  So the gateway decodes the
 * key as UTF-8 and feeds each code point & 0xff, one per character.  A
 * byte that is not part of valid UTF-8 (which such a client cannot send)
 * counts as one character of its own value.
 * A key_prefix (the client hashes the key without it but sends it with
 * it) is the pool's hash_namespace.  Not reproduced (a migration must
 * avoid them): keys passed as bytes (Python 3 formats them as "b'...'" into
 * the hashed string).
 * Around a dead server: HashClient (ignore_exc, retry_attempts,
 * dead_timeout) removes a dead node from the rendezvous set, so pick_up is
 * the highest score among the servers that are up.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "dist.h"
#include "hash.h"

/* One character at p (len > 0): its code point and its length in bytes.
 * A byte that starts no well-formed character (which such a client cannot
 * send) is a character of its own value. */
static size_t utf8_next(const uint8_t *p, size_t len, uint32_t *cp)
{
    size_t n = utf8_decode(p, len, cp);

    if (n > 0)
        return n;
    *cp = p[0];
    return 1;
}

/* Feed s as pymemcache's murmur3 sees the str it decodes to. */
static void feed_chars(struct murmur3 *m, const void *s, size_t len)
{
    const uint8_t *p = s;

    while (len > 0) {
        uint32_t cp;
        size_t k = utf8_next(p, len, &cp);

        murmur3_byte(m, (uint8_t)(cp & 0xff));
        p += k;
        len -= k;
    }
}

static int build(struct hash_dist *d, const struct hash_server *s, uint32_t n,
                 char *err, size_t errlen)
{
    struct murmur3 *pre;

    for (uint32_t i = 0; i < n; i++)
        if (s[i].weight != 1) {
            snprintf(err, errlen, "server %u: pymemcache has no weights (a server "
                     "listed twice is one node): weight must be 1", i);
            return GW_ERROR;
        }
    int rc = dist_names(d, s, n, err, errlen);
    if (rc != GW_OK)
        return rc;
    pre = malloc(n * sizeof(*pre));
    if (pre == NULL) {
        snprintf(err, errlen, "out of memory");
        return GW_NOMEM;
    }
    /* Each node's score starts with "host:port-": hash it once. */
    for (uint32_t i = 0; i < n; i++) {
        murmur3_init(&pre[i], 0);
        feed_chars(&pre[i], d->names[i], strlen(d->names[i]));
        murmur3_byte(&pre[i], '-');
    }
    d->mode_data = pre;
    return GW_OK;
}

/* A key as the characters murmur3 sees (one byte each), when it fits. */
#define PYMC_KEY_CHARS 256

static size_t key_chars(const void *key, size_t len, uint8_t out[PYMC_KEY_CHARS])
{
    const uint8_t *p = key;
    size_t n = 0;

    while (len > 0) {
        uint32_t cp;
        size_t k = utf8_next(p, len, &cp);

        out[n++] = (uint8_t)(cp & 0xff);
        p += k;
        len -= k;
    }
    return n;
}

/* The highest score among the servers is_up accepts (all if it is NULL),
 * ties to the larger name; -1 if none is up.  A key of up to 256 bytes
 * (memcached's are <= 250) is decoded once into the stack; a longer one
 * is decoded again per server. */
static int32_t best(const struct hash_dist *d, const void *key, size_t len,
                    dist_is_up is_up, void *ctx)
{
    const struct murmur3 *pre = d->mode_data;
    uint8_t chars[PYMC_KEY_CHARS];
    size_t nchars = len <= PYMC_KEY_CHARS ? key_chars(key, len, chars) : 0;
    int32_t win = -1;
    uint32_t high = 0;

    for (uint32_t i = 0; i < d->nservers; i++) {
        if (is_up && !is_up(ctx, i))
            continue;
        struct murmur3 m = pre[i];

        if (len <= PYMC_KEY_CHARS)
            murmur3_update(&m, chars, nchars);
        else
            feed_chars(&m, key, len);
        uint32_t score = murmur3_final(&m);

        if (win < 0 || score > high ||
            (score == high && strcmp(d->names[i], d->names[win]) > 0)) {
            win = (int32_t)i;
            high = score;
        }
    }
    return win;
}

static uint32_t pick(const struct hash_dist *d, const void *key, size_t len)
{
    return (uint32_t)best(d, key, len, NULL, NULL);
}

static int32_t pick_up(const struct hash_dist *d, const void *key, size_t len,
                       dist_is_up is_up, void *ctx)
{
    return best(d, key, len, is_up, ctx);
}

const struct dist_mode dist_pymemcache = {
    .name = "pymemcache", .build = build, .pick = pick, .pick_up = pick_up,
};
