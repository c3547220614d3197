/* store.h -- the embedded in-process cache behind memcache.internal.
 *
 * A hash table of items with an LRU list, memcached's expiry rules and CAS
 * uniques, bounded by a byte budget (items are evicted from the LRU tail to
 * make room).  One store is shared by all worker threads; every call is
 * thread-safe (a mutex per store; calls are short and never block on I/O).
 *
 * Expiry times follow memcached: 0 never expires; a negative value expires
 * at once; up to 30 days (2592000 s) is relative to now; larger values are
 * absolute unix times.
 *
 * Ownership: store_new() returns a store the caller frees with store_free().
 * Keys and data passed in are copied; store_get() copies the value out into
 * memory the caller provides through its alloc callback.
 */
#ifndef GW_STORE_H
#define GW_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

enum store_result {
    STORE_STORED,
    STORE_NOT_STORED,
    STORE_EXISTS,
    STORE_NOT_FOUND,
    STORE_DELETED,
    STORE_TOUCHED,
    STORE_HIT,
    STORE_MISS,
    STORE_ARITH_OK,      /* incr/decr done; *result holds the new value */
    STORE_NON_NUMERIC,   /* incr/decr on a value that is not a number */
    STORE_TOO_LARGE,     /* the item can never fit in the budget */
    STORE_NOMEM,         /* no memory even after evicting */
};

enum store_op { STORE_SET, STORE_ADD, STORE_REPLACE, STORE_APPEND,
                STORE_PREPEND, STORE_CAS };

struct store_stats {
    uint64_t curr_items;
    uint64_t bytes;          /* memory charged to items */
    uint64_t limit_bytes;
    uint64_t evictions;
    uint64_t expired;        /* items found expired and removed */
};

/* A store that holds at most max_bytes of items (keys + values + overhead).
 * Returns NULL on allocation failure. */
struct store *store_new(size_t max_bytes);
void store_free(struct store *st);

/* Look a key up.  If touch is set, also set its expiry to exptime (gat).
 * On STORE_HIT, *flags and *cas are set and the value is copied into
 * alloc(ctx, bytes) (which may return NULL: then STORE_NOMEM), whose pointer
 * and length land in *data and *bytes. */
enum store_result store_get(struct store *st, const char *key, size_t klen,
                            bool touch, int64_t exptime, uint32_t *flags,
                            uint64_t *cas, char **data, size_t *bytes,
                            void *(*alloc)(void *ctx, size_t n), void *ctx);

/* set/add/replace/append/prepend/cas.  cas is only read for STORE_CAS.
 * append/prepend keep the item's flags and expiry. */
enum store_result store_update(struct store *st, enum store_op op,
                               const char *key, size_t klen, uint32_t flags,
                               int64_t exptime, const char *data, size_t dlen,
                               uint64_t cas);

enum store_result store_delete(struct store *st, const char *key, size_t klen);

/* incr (incr=true) or decr by delta, as memcached does: 64-bit unsigned,
 * incr wraps, decr stops at 0.  The value must be a decimal number. */
enum store_result store_arith(struct store *st, const char *key, size_t klen,
                              bool incr, uint64_t delta, uint64_t *result);

enum store_result store_touch(struct store *st, const char *key, size_t klen,
                              int64_t exptime);

/* Invalidate every item now (delay 0) or delay seconds from now. */
void store_flush(struct store *st, int64_t delay);

void store_get_stats(struct store *st, struct store_stats *out);

#endif
