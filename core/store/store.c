/* store.c -- the embedded in-process cache behind memcache.internal.
 *
 * Layout: a chained hash table (power-of-two buckets, doubled under the lock
 * when the load passes 1) plus a doubly linked LRU list (head = most recently
 * used).  Each item is one malloc: header, then key bytes, then value bytes.
 * One mutex guards everything.  Allocation of new items for set/add/replace/
 * cas happens before taking the lock; append/prepend/incr/decr need the old
 * value and allocate under it.
 *
 * Delayed flush: the store remembers the flush moment; the first call that
 * sees the clock at or past it drops every item stored before it.  An
 * immediate flush drops everything at once.
 */
#include "store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REL_MAX 2592000          /* memcached: larger exptimes are absolute */
#define INITIAL_BUCKETS 1024
#define EXP_DEAD INT64_MIN       /* normalized "already expired" */

struct item {
    struct item *h_next;         /* hash chain */
    struct item *prev, *next;    /* LRU: prev is toward the head */
    uint64_t hash;
    uint64_t cas;
    int64_t exptime;             /* absolute; 0 = never */
    int64_t time;                /* when this version was stored */
    size_t klen, dlen;
    uint32_t flags;
    char kv[];                   /* key, then value */
};

struct store {
    pthread_mutex_t lock;
    struct item **buckets;
    size_t nbuckets;             /* power of two */
    size_t count;
    struct item *head, *tail;
    size_t bytes, max_bytes;
    uint64_t last_cas;
    uint64_t evictions, expired;
    int64_t flush_at;            /* pending delayed flush; 0 = none */
    int64_t (*now)(void);
};

/* ---- helpers ----------------------------------------------------------- */

static int64_t default_now(void) { return (int64_t)time(NULL); }

static inline uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t avalanche(uint64_t x)
{
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ULL;
    x ^= x >> 29;
    x *= 0xa0761d6478bd642fULL;
    x ^= x >> 32;
    return x;
}

/* A small word-at-a-time hash: fine for an in-process table, not stable
 * across platforms and not meant to be. */
static uint64_t key_hash(const char *k, size_t n)
{
    const uint64_t m = 0x9e3779b97f4a7c15ULL;
    uint64_t h = 0x243f6a8885a308d3ULL ^ ((uint64_t)n * m);
    uint64_t v;

    while (n >= 8) {
        memcpy(&v, k, 8);
        v *= 0xbf58476d1ce4e5b9ULL;
        v ^= v >> 31;
        h = rotl64(h ^ v, 27) * m + 0x52dce729U;
        k += 8;
        n -= 8;
    }
    if (n) {
        v = 0;
        memcpy(&v, k, n);
        v *= 0xbf58476d1ce4e5b9ULL;
        v ^= v >> 31;
        h = rotl64(h ^ v, 27) * m + 0x52dce729U;
    }
    return avalanche(h);
}

/* sizeof(header) + klen + dlen, or 0 on overflow. */
static size_t item_size_of(size_t klen, size_t dlen)
{
    size_t hdr = sizeof(struct item);
    if (klen > SIZE_MAX - hdr || dlen > SIZE_MAX - hdr - klen)
        return 0;
    return hdr + klen + dlen;
}

static inline size_t item_size(const struct item *it)
{
    return sizeof(struct item) + it->klen + it->dlen;
}

static inline char *item_data(struct item *it) { return it->kv + it->klen; }

/* memcached's exptime rule, normalized to an absolute time (0 = never,
 * EXP_DEAD = already expired). */
static int64_t abs_exptime(int64_t now, int64_t exptime)
{
    if (exptime == 0)
        return 0;
    if (exptime < 0)
        return EXP_DEAD;
    if (exptime <= REL_MAX)
        return now + exptime;
    return exptime;
}

static inline bool exp_passed(int64_t exp, int64_t now)
{
    return exp != 0 && exp <= now;
}

/* ---- LRU and hash table (lock held) ----------------------------------- */

static void lru_unlink(struct store *st, struct item *it)
{
    if (it->prev)
        it->prev->next = it->next;
    else
        st->head = it->next;
    if (it->next)
        it->next->prev = it->prev;
    else
        st->tail = it->prev;
    it->prev = it->next = NULL;
}

static void lru_push_head(struct store *st, struct item *it)
{
    it->prev = NULL;
    it->next = st->head;
    if (st->head)
        st->head->prev = it;
    else
        st->tail = it;
    st->head = it;
}

static void lru_bump(struct store *st, struct item *it)
{
    if (st->head == it)
        return;
    lru_unlink(st, it);
    lru_push_head(st, it);
}

static void hash_remove(struct store *st, struct item *it)
{
    struct item **pp = &st->buckets[it->hash & (st->nbuckets - 1)];
    while (*pp && *pp != it)
        pp = &(*pp)->h_next;
    if (*pp)
        *pp = it->h_next;
    it->h_next = NULL;
}

static void table_grow(struct store *st)
{
    size_t n = st->nbuckets * 2;
    if (n < st->nbuckets || n > SIZE_MAX / sizeof(struct item *))
        return;
    struct item **nb = calloc(n, sizeof *nb);
    if (!nb)
        return;                 /* keep the old table; chains just lengthen */
    for (size_t i = 0; i < st->nbuckets; i++) {
        struct item *it = st->buckets[i];
        while (it) {
            struct item *nx = it->h_next;
            size_t b = it->hash & (n - 1);
            it->h_next = nb[b];
            nb[b] = it;
            it = nx;
        }
    }
    free(st->buckets);
    st->buckets = nb;
    st->nbuckets = n;
}

/* Put a fully built item into the table and at the LRU head. */
static void item_link(struct store *st, struct item *it)
{
    size_t b = it->hash & (st->nbuckets - 1);
    it->h_next = st->buckets[b];
    st->buckets[b] = it;
    lru_push_head(st, it);
    st->count++;
    st->bytes += item_size(it);
    if (st->count > st->nbuckets)
        table_grow(st);
}

/* Take an item out of the table and the LRU and free it. */
static void item_drop(struct store *st, struct item *it)
{
    hash_remove(st, it);
    lru_unlink(st, it);
    st->count--;
    st->bytes -= item_size(it);
    free(it);
}

/* Find a live item; an expired one found on the way is removed. */
static struct item *lookup(struct store *st, const char *key, size_t klen,
                           uint64_t h, int64_t now)
{
    struct item *it = st->buckets[h & (st->nbuckets - 1)];
    for (; it; it = it->h_next) {
        if (it->hash == h && it->klen == klen &&
            (klen == 0 || memcmp(it->kv, key, klen) == 0))
            break;
    }
    if (it && exp_passed(it->exptime, now)) {
        item_drop(st, it);
        st->expired++;
        return NULL;
    }
    return it;
}

/* Evict from the LRU tail until `need` more bytes fit.  need <= max_bytes. */
static void make_room(struct store *st, size_t need, int64_t now)
{
    while (st->tail && st->bytes > st->max_bytes - need) {
        struct item *victim = st->tail;
        if (exp_passed(victim->exptime, now))
            st->expired++;
        else
            st->evictions++;
        item_drop(st, victim);
    }
}

static void drop_all(struct store *st)
{
    while (st->head)
        item_drop(st, st->head);
}

/* Apply a pending delayed flush whose moment has come. */
static void check_flush(struct store *st, int64_t now)
{
    if (st->flush_at == 0 || now < st->flush_at)
        return;
    int64_t at = st->flush_at;
    st->flush_at = 0;
    struct item *it = st->head;
    while (it) {
        struct item *nx = it->next;
        if (it->time < at)
            item_drop(st, it);
        it = nx;
    }
}

static int64_t lock_store(struct store *st)
{
    pthread_mutex_lock(&st->lock);
    int64_t now = st->now();
    check_flush(st, now);
    return now;
}

static inline void unlock_store(struct store *st)
{
    pthread_mutex_unlock(&st->lock);
}

/* ---- public API --------------------------------------------------------- */

struct store *store_new(size_t max_bytes)
{
    struct store *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->buckets = calloc(INITIAL_BUCKETS, sizeof *st->buckets);
    if (!st->buckets) {
        free(st);
        return NULL;
    }
    if (pthread_mutex_init(&st->lock, NULL) != 0) {
        free(st->buckets);
        free(st);
        return NULL;
    }
    st->nbuckets = INITIAL_BUCKETS;
    st->max_bytes = max_bytes;
    st->now = default_now;
    return st;
}

void store_free(struct store *st)
{
    if (!st)
        return;
    struct item *it = st->head;
    while (it) {
        struct item *nx = it->next;
        free(it);
        it = nx;
    }
    free(st->buckets);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

void store_set_clock(struct store *st, int64_t (*now)(void))
{
    pthread_mutex_lock(&st->lock);
    st->now = now ? now : default_now;
    pthread_mutex_unlock(&st->lock);
}

enum store_result store_get(struct store *st, const char *key, size_t klen,
                            bool touch, int64_t exptime, uint32_t *flags,
                            uint64_t *cas, char **data, size_t *bytes,
                            void *(*alloc)(void *ctx, size_t n), void *ctx)
{
    uint64_t h = key_hash(key, klen);
    int64_t now = lock_store(st);
    struct item *it = lookup(st, key, klen, h, now);
    if (!it) {
        unlock_store(st);
        return STORE_MISS;
    }
    char *buf = NULL;
    if (alloc) {
        buf = alloc(ctx, it->dlen);
        if (!buf && it->dlen) {
            unlock_store(st);
            return STORE_NOMEM;
        }
        if (it->dlen)
            memcpy(buf, item_data(it), it->dlen);
    }
    if (data)
        *data = buf;
    if (bytes)
        *bytes = it->dlen;
    if (flags)
        *flags = it->flags;
    if (cas)
        *cas = it->cas;
    if (touch) {
        int64_t e = abs_exptime(now, exptime);
        if (exp_passed(e, now)) {
            item_drop(st, it);
            unlock_store(st);
            return STORE_HIT;
        }
        it->exptime = e;
    }
    lru_bump(st, it);
    unlock_store(st);
    return STORE_HIT;
}

/* append/prepend: the new item is built from the old one under the lock. */
/* A new item for key with room for dlen bytes of data, keeping old's
 * flags and expiry (append, prepend, incr/decr; the store is locked).
 * NULL with *res set when it is too large or memory is short. */
static struct item *item_like(struct store *st, const struct item *old, const char *key,
                              size_t klen, size_t dlen, int64_t now, enum store_result *res)
{
    size_t size = item_size_of(klen, dlen);
    if (size == 0 || size > st->max_bytes) {
        *res = STORE_TOO_LARGE;
        return NULL;
    }
    struct item *it = malloc(size);
    if (!it) {
        *res = STORE_NOMEM;
        return NULL;
    }
    it->hash = old->hash;
    it->klen = klen;
    it->dlen = dlen;
    it->flags = old->flags;
    it->exptime = old->exptime;
    it->time = now;
    if (klen)
        memcpy(it->kv, key, klen);
    return it;
}

static enum store_result concat(struct store *st, bool append, const char *key,
                                size_t klen, const char *data, size_t dlen)
{
    uint64_t h = key_hash(key, klen);
    int64_t now = lock_store(st);
    struct item *old = lookup(st, key, klen, h, now);
    if (!old) {
        unlock_store(st);
        return STORE_NOT_STORED;
    }
    size_t total = old->dlen + dlen;
    enum store_result res;
    struct item *it = total < dlen ? NULL : item_like(st, old, key, klen, total, now, &res);
    if (!it) {
        unlock_store(st);
        return total < dlen ? STORE_TOO_LARGE : res;
    }
    char *d = item_data(it);
    if (append) {
        if (old->dlen)
            memcpy(d, item_data(old), old->dlen);
        if (dlen)
            memcpy(d + old->dlen, data, dlen);
    } else {
        if (dlen)
            memcpy(d, data, dlen);
        if (old->dlen)
            memcpy(d + dlen, item_data(old), old->dlen);
    }
    item_drop(st, old);
    it->cas = ++st->last_cas;
    make_room(st, item_size(it), now);
    item_link(st, it);
    unlock_store(st);
    return STORE_STORED;
}

enum store_result store_update(struct store *st, enum store_op op,
                               const char *key, size_t klen, uint32_t flags,
                               int64_t exptime, const char *data, size_t dlen,
                               uint64_t cas)
{
    if (op == STORE_APPEND || op == STORE_PREPEND)
        return concat(st, op == STORE_APPEND, key, klen, data, dlen);

    uint64_t h = key_hash(key, klen);
    size_t size = item_size_of(klen, dlen);
    if (size == 0 || size > st->max_bytes) {
        if (op == STORE_SET) {
            /* as memcached: a failed set must not leave a stale value */
            int64_t now = lock_store(st);
            struct item *old = lookup(st, key, klen, h, now);
            if (old)
                item_drop(st, old);
            unlock_store(st);
        }
        return STORE_TOO_LARGE;
    }

    struct item *it = malloc(size);
    if (!it)
        return STORE_NOMEM;
    it->hash = h;
    it->klen = klen;
    it->dlen = dlen;
    it->flags = flags;
    if (klen)
        memcpy(it->kv, key, klen);
    if (dlen)
        memcpy(item_data(it), data, dlen);

    enum store_result r = STORE_STORED;
    int64_t now = lock_store(st);
    struct item *old = lookup(st, key, klen, h, now);
    switch (op) {
    case STORE_ADD:
        if (old) {
            lru_bump(st, old);      /* memcached bumps on a failed add */
            r = STORE_NOT_STORED;
        }
        break;
    case STORE_REPLACE:
        if (!old)
            r = STORE_NOT_STORED;
        break;
    case STORE_CAS:
        if (!old)
            r = STORE_NOT_FOUND;
        else if (old->cas != cas)
            r = STORE_EXISTS;
        break;
    default:
        break;
    }
    if (r != STORE_STORED) {
        unlock_store(st);
        free(it);
        return r;
    }
    if (old)
        item_drop(st, old);
    int64_t e = abs_exptime(now, exptime);
    if (exp_passed(e, now)) {
        /* stored and expired at once: nothing visible remains */
        ++st->last_cas;
        unlock_store(st);
        free(it);
        return STORE_STORED;
    }
    it->exptime = e;
    it->time = now;
    it->cas = ++st->last_cas;
    make_room(st, size, now);
    item_link(st, it);
    unlock_store(st);
    return STORE_STORED;
}

enum store_result store_delete(struct store *st, const char *key, size_t klen)
{
    uint64_t h = key_hash(key, klen);
    int64_t now = lock_store(st);
    struct item *it = lookup(st, key, klen, h, now);
    if (it)
        item_drop(st, it);
    unlock_store(st);
    return it ? STORE_DELETED : STORE_NOT_FOUND;
}

/* Parse an incr/decr operand: optional spaces, 1-20 digits fitting in 64
 * bits, optional spaces. */
static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    size_t i = 0;
    while (i < n && s[i] == ' ')
        i++;
    size_t start = i;
    uint64_t v = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (i == start)
        return false;
    while (i < n && s[i] == ' ')
        i++;
    if (i != n)
        return false;
    *out = v;
    return true;
}

enum store_result store_arith(struct store *st, const char *key, size_t klen,
                              bool incr, uint64_t delta, uint64_t *result)
{
    uint64_t h = key_hash(key, klen);
    int64_t now = lock_store(st);
    struct item *old = lookup(st, key, klen, h, now);
    if (!old) {
        unlock_store(st);
        return STORE_NOT_FOUND;
    }
    uint64_t v;
    if (!parse_u64(item_data(old), old->dlen, &v)) {
        unlock_store(st);
        return STORE_NON_NUMERIC;
    }
    if (incr)
        v += delta;                 /* wraps at 2^64 */
    else
        v = v < delta ? 0 : v - delta;

    char num[24];
    size_t len = 0;
    {
        char rev[24];
        uint64_t x = v;
        do {
            rev[len++] = (char)('0' + x % 10);
            x /= 10;
        } while (x);
        for (size_t i = 0; i < len; i++)
            num[i] = rev[len - 1 - i];
    }

    if (len == old->dlen) {
        memcpy(item_data(old), num, len);
        old->cas = ++st->last_cas;
        old->time = now;
        lru_bump(st, old);
    } else {
        enum store_result res;
        struct item *it = item_like(st, old, key, klen, len, now, &res);
        if (!it) {
            unlock_store(st);
            return res;
        }
        memcpy(item_data(it), num, len);
        item_drop(st, old);
        it->cas = ++st->last_cas;
        make_room(st, item_size(it), now);
        item_link(st, it);
    }
    unlock_store(st);
    if (result)
        *result = v;
    return STORE_ARITH_OK;
}

enum store_result store_touch(struct store *st, const char *key, size_t klen,
                              int64_t exptime)
{
    uint64_t h = key_hash(key, klen);
    int64_t now = lock_store(st);
    struct item *it = lookup(st, key, klen, h, now);
    if (!it) {
        unlock_store(st);
        return STORE_NOT_FOUND;
    }
    int64_t e = abs_exptime(now, exptime);
    if (exp_passed(e, now)) {
        item_drop(st, it);
    } else {
        it->exptime = e;
        lru_bump(st, it);
    }
    unlock_store(st);
    return STORE_TOUCHED;
}

void store_flush(struct store *st, int64_t delay)
{
    int64_t now = lock_store(st);
    int64_t at = delay <= 0 ? 0 : delay <= REL_MAX ? now + delay : delay;
    if (at <= now) {
        drop_all(st);
        st->flush_at = 0;
    } else {
        st->flush_at = at;
    }
    unlock_store(st);
}

void store_set_limit(struct store *st, size_t max_bytes)
{
    pthread_mutex_lock(&st->lock);
    st->max_bytes = max_bytes;
    make_room(st, 0, st->now());
    pthread_mutex_unlock(&st->lock);
}

void store_get_stats(struct store *st, struct store_stats *out)
{
    pthread_mutex_lock(&st->lock);
    /* apply a due delayed flush so the numbers reflect it */
    check_flush(st, st->now());
    out->curr_items = st->count;
    out->bytes = st->bytes;
    out->limit_bytes = st->max_bytes;
    out->evictions = st->evictions;
    out->expired = st->expired;
    pthread_mutex_unlock(&st->lock);
}
