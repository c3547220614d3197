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
 * An item whose expiry is already past when it is stored (negative exptime,
 * or an absolute time <= now) is not kept: the call still answers as
 * memcached does (STORED), and any previous item under that key is gone.
 *
 * Memory: each item is one allocation (header + key + value) and is charged
 * sizeof(header) + klen + dlen against max_bytes.  Expired items are removed
 * lazily when a call finds them (counted in `expired`); live items evicted
 * from the LRU tail to make room are counted in `evictions`.  Every
 * modification (set/add/replace/append/prepend/cas/incr/decr) assigns a new
 * CAS unique from a per-store 64-bit counter; touch and gat do not.
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

/* Look a key up and move it to the LRU head.  If touch is set, also set its
 * expiry to exptime (gat; the CAS unique is unchanged; an already-past
 * exptime returns this value once and then drops the item).
 * On STORE_HIT, *flags and *cas are set and the value is copied into
 * alloc(ctx, bytes) (which may return NULL: then STORE_NOMEM and nothing
 * changed), whose pointer and length land in *data and *bytes.  alloc is
 * called with the store locked, so it must not call back into the store.
 * For an empty value alloc(ctx, 0) may return NULL without error.  alloc may
 * be NULL: then nothing is copied, *data is NULL and *bytes the length.
 * flags, cas, data and bytes may each be NULL if not wanted. */
enum store_result store_get(struct store *st, const char *key, size_t klen,
                            bool touch, int64_t exptime, uint32_t *flags,
                            uint64_t *cas, char **data, size_t *bytes,
                            void *(*alloc)(void *ctx, size_t n), void *ctx);

/* set/add/replace/append/prepend/cas.  cas is only read for STORE_CAS.
 * append/prepend keep the item's flags and expiry (flags and exptime are
 * ignored).  Results: STORED; NOT_STORED (add on a live key, replace/append/
 * prepend on a missing one); NOT_FOUND / EXISTS (cas on a missing key / with
 * a different unique); TOO_LARGE (the resulting item exceeds the whole
 * budget; for STORE_SET the old item is removed too, as memcached does so no
 * stale value survives); NOMEM (malloc failed; nothing changed). */
enum store_result store_update(struct store *st, enum store_op op,
                               const char *key, size_t klen, uint32_t flags,
                               int64_t exptime, const char *data, size_t dlen,
                               uint64_t cas);

enum store_result store_delete(struct store *st, const char *key, size_t klen);

/* incr (incr=true) or decr by delta, as memcached does: 64-bit unsigned,
 * incr wraps, decr stops at 0.  The value must be a decimal number that fits
 * in 64 bits (1-20 digits, surrounding spaces allowed), else
 * STORE_NON_NUMERIC.  The result is stored as its decimal string with a new
 * CAS unique, keeping flags and expiry.  Missing key: STORE_NOT_FOUND. */
enum store_result store_arith(struct store *st, const char *key, size_t klen,
                              bool incr, uint64_t delta, uint64_t *result);

/* Set a key's expiry without changing its value or CAS unique: TOUCHED or
 * NOT_FOUND.  A past exptime (e.g. negative) makes the key vanish. */
enum store_result store_touch(struct store *st, const char *key, size_t klen,
                              int64_t exptime);

/* Invalidate every item now (delay <= 0) or delay seconds from now, as
 * memcached's flush_all: items stored before that moment are gone from then
 * on; items stored afterwards are kept.  delay follows the exptime rule
 * (> 30 days is an absolute unix time).  A later flush replaces a pending
 * delayed one. */
void store_flush(struct store *st, int64_t delay);

/* Change the byte budget; a smaller one evicts from the LRU tail until
 * the items fit. */
void store_set_limit(struct store *st, size_t max_bytes);

void store_get_stats(struct store *st, struct store_stats *out);

/* Replace the store's clock (unix seconds), so tests can move time without
 * sleeping.  now is called with the store locked; NULL restores the default,
 * time(NULL).  Set it before other threads use the store. */
void store_set_clock(struct store *st, int64_t (*now)(void));

#endif
