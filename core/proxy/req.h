/* req.h -- one request on its way through the gateway.
 *
 * Flow: a client codec decodes a request (front/) and makes a gw_req that
 * points into the client's read buffer (it holds a reference on it).  The
 * router resolves each key to a target; keys bound for one backend server
 * are batched into one be_op.  Backends fill in the keys' results and the
 * reply; when the last op is answered the request is done and its owner is
 * told through the callback it registered (on_done).  The Lua host makes
 * requests of its own the same way (backend calls from a route).
 *
 * Ownership
 * - A gw_req is owned by whoever made it until its reply is used, and by
 *   every be_op still waiting on a backend: refs counts them.  req_unref
 *   frees it (back to the thread's free list) when the count reaches zero.
 *   An owner that goes away first (a client that closed) sets on_done to
 *   NULL; the backends then finish the request alone.
 * - Key strings: ckey points into the request's buffer; bkey is ckey or, if
 *   a route rewrote it, lives in the request's arena.
 * - A hit's value stays in the backend's read buffer (vbuf, referenced)
 *   until the reply is written.
 * - res is the config that routed the request, held until the request is
 *   freed, so a reload never frees a pool a request still uses.
 */
#ifndef GW_REQ_H
#define GW_REQ_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/net.h"
#include "codec/proto.h"
#include "codec/reply.h"
#include "rt/counters.h"

struct rt;
struct resolver;

enum key_state { KEY_PENDING = 0, KEY_HIT, KEY_MISS, KEY_ERROR };

struct gw_key {
    const char *ckey;          /* the client's key */
    const char *bkey;          /* the key sent to the backend */
    uint16_t cklen, bklen;
    uint8_t state;             /* enum key_state */
    int32_t next;              /* next key of the same be_op batch, or -1 */
    uint32_t flags;
    uint32_t bytes;
    uint64_t cas;
    struct gw_buf *vbuf;       /* hit: buffer holding the value (ref) */
    const char *vdata;         /* hit: value bytes followed by "\r\n" */
    struct route_stats *route; /* the route that routed it, for the metrics, or NULL */
};

/* An arena for small per-request strings (rewritten keys, reply headers).
 * Allocations never move; extra chunks are freed when the request ends. */
struct arena_chunk;
struct arena {
    char *cur;
    size_t left;
    struct arena_chunk *chunks;
};

#define REQ_INLINE_KEYS 4
#define REQ_ARENA_INLINE 1024
/* A recycled request keeps a key array of at most this many keys: one
 * burst of huge multi-gets must not stay resident in the free list. */
#define REQ_KEEP_KEYS 256

struct gw_req {
    struct gw_req *next;       /* first (the free list's link); the owner's queue */
    struct rt *rt;             /* the thread it lives on */
    struct resolver *res;      /* the config that routed it (held), or NULL */

    /* Completion: on_done(r) runs when the request is done.  The owner sets
     * it (and ctx) and clears it if it goes away first. */
    void (*on_done)(struct gw_req *r);
    void *ctx;
    uint64_t conn_id;          /* the client connection that sent it; 0: none */
    struct gw_peer peer;       /* ... and its address (family 0: none), for the log */
    const char *const *listener; /* its listener's label, read where it lives (the
                                  * listener outlives its requests); NULL: none */
    const char *user;          /* the name its client logged in with (in the
                                * arena), or NULL */

    struct mc_request mc;
    const char *base;          /* the request's bytes, in `in` */
    struct gw_buf *in;         /* reference on the client's read buffer */
    uint32_t refs;
    uint32_t pending;          /* be_ops (and suspended routes) not answered yet */
    bool done;                 /* reply complete */
    bool errors;               /* some backend op failed */
    bool fail_whole;           /* ... and its pool wants a multi-get to fail whole */
    uint8_t rkind;             /* enum mc_resp_kind of rline (RESP_NONE: unset) */
    bool runit;                /* rline is a server's whole meta reply unit (VA
                                * with its data), relayed as it came */

    /* The reply for everything but retrievals: one line (with "\r\n"),
     * static, in the arena, or in a backend buffer (rline_buf, ref). */
    const char *rline;
    uint32_t rlen;
    const char *forced_reply;  /* static; answers in place of the result */
    const char *fail_reply;    /* static; a fan-out's reply when an op failed */
    struct gw_buf *rline_buf;
    uint32_t out_left;         /* bytes of this reply not yet written */
    size_t charge;             /* bytes its client counts it as pinning while in flight */
    double started;            /* monotonic seconds it was read (metrics_now), or 0 */

    uint32_t nkeys;
    struct gw_key *keys;       /* keys_inline, or keys_heap */
    struct gw_key keys_inline[REQ_INLINE_KEYS];
    struct gw_key *keys_heap;  /* kept across reuse */
    uint32_t keys_heap_cap;

    struct arena arena;
    char arena_inline[REQ_ARENA_INLINE];
};

/* A request from the thread's free list, refs = 1, holding a reference on
 * `in`.  NULL on allocation failure. */
struct gw_req *req_new(struct rt *rt, struct gw_buf *in, const char *base,
                       const struct mc_request *mc);
void req_unref(struct gw_req *r);
/* Free the cached requests that went unused since the last call
 * (freelist_trim, every second); returns about the bytes freed. */
size_t req_cache_trim(struct rt *rt);
/* Free the thread's cached requests (at thread exit). */
void req_cache_drain(struct rt *rt);
/* Room for n keys (reuses the request's array).  GW_NOMEM on failure. */
int req_reserve_keys(struct gw_req *r, uint32_t n);
/* Key i is `key` (client and backend key alike), not yet answered. */
void req_key_init(struct gw_req *r, uint32_t i, const char *key, uint32_t len);
/* n bytes from the request's arena, or NULL. */
char *req_alloc(struct gw_req *r, size_t n);

/* For a log line: `key "k" client ip:port` for key k of r (k UINT32_MAX:
 * no key; client "-": a request with none, such as a route's own backend
 * call), into out (REQ_DESCRIBE_LEN bytes).  Key bytes a log line must not
 * carry raw (control characters, quotes, backslashes, non-ASCII) are written
 * \xNN.  Returns out. */
#define REQ_DESCRIBE_LEN 1100
const char *req_describe(const struct gw_req *r, uint32_t k, char *out, size_t len);

/* Set the reply to the len bytes at p, in buffer buf (referenced, not
 * copied): a server's line or unit, as it was read. */
void req_reply_held(struct gw_req *r, struct gw_buf *buf, const char *p, uint32_t len);
/* Set a single-line reply: a static string (with "\r\n"). */
void req_reply_static(struct gw_req *r, const char *line);
/* Set a single-line reply of a fixed kind (STORED, ...) from reply.h. */
void req_reply_kind(struct gw_req *r, enum mc_resp_kind kind);
/* Set a single-line reply by formatting into the arena ("\r\n" added). */
void req_reply_fmt(struct gw_req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Key k failed: the key is an error and the reply is "SERVER_ERROR why". */
void req_fail_key(struct gw_req *r, uint32_t k, const char *why);

/* One backend op (or suspended route) finished; when none remain the
 * request is done and on_done runs. */
void req_op_done(struct gw_req *r);

/* A meta request whose key the server is not asked to send back (k): its
 * key as sent to the server is no text key, and memcached 1.6.18 writes a
 * key raw in k (and in me's reply) for items that mg or ma created with N,
 * whatever b said: a space or line break in it would break the reply
 * line, make the connection fail for every request on it, and count
 * toward marking the server down.  The client's codec writes k itself
 * (the key as the client sent it), where memcached would have. */
bool req_meta_key_hidden(const struct gw_req *r);

/* A retrieval that answers its error line instead of values: its one key
 * failed, or a key failed and its pool fails a multi-get whole. */
static inline bool req_retrieval_failed(const struct gw_req *r)
{
    return r->rline && r->errors &&
           (r->nkeys == 1 ? r->keys[0].state == KEY_ERROR : r->fail_whole);
}

/* Count a single-line reply to cmd (delete/incr/decr/touch/cas hits and
 * misses), whether a backend or the embedded store gave it. */
void req_count_reply(struct gw_stats *st, enum mc_cmd cmd, enum mc_resp_kind kind);
/* Count a finished retrieval's gets, touches, hits and misses. */
void req_count_retrieval(const struct gw_req *r);

#endif
