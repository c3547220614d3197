/* req.h -- one client request on its way through the gateway.
 *
 * Flow: the client connection parses a request (proto.h) and makes a
 * gw_req that points into the client's read buffer (it holds a reference on
 * it).  The router resolves each key to a target; keys bound for one backend
 * server are batched into one be_op.  Backends fill in the keys' results and
 * the reply; when the last op is answered the request is done, and the client
 * writes replies out in request order.
 *
 * Ownership
 * - A gw_req is owned by its client until it is written, and by every be_op
 *   still waiting on a backend: refs counts them.  req_unref frees it (back to
 *   the worker's free list) when the count reaches zero.  If the client goes
 *   away first, req->client is NULL and the backends finish alone.
 * - Key strings: ckey points into the request's buffer; bkey is ckey or, if a
 *   route rewrote it, lives in the request's arena.
 * - A hit's value stays in the backend's read buffer (vbuf, referenced)
 *   until the reply is written.
 */
#ifndef GW_REQ_H
#define GW_REQ_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "codec/proto.h"

struct client;
struct worker;
struct backend;
struct pool;
struct lhost;

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

struct gw_req {
    struct gw_req *next;       /* the client's queue, or the free list */
    struct client *client;     /* NULL once the client has gone */
    struct worker *w;
    struct lhost *host;        /* the config that routed it (held), or NULL */
    struct mc_request mc;
    const char *base;          /* the request's bytes, in `in` */
    struct gw_buf *in;         /* reference on the client's read buffer */
    uint32_t refs;
    uint32_t pending;          /* be_ops not answered yet */
    bool done;                 /* reply complete */
    bool errors;               /* some backend op failed */
    bool fail_whole;           /* ... and its pool wants a multi-get to fail whole */
    uint8_t rkind;             /* enum mc_resp_kind of rline (RESP_NONE: unset) */

    /* A request the Lua host made (a backend call from a route), not a
     * client's: on_done(r) runs when it is done, in place of telling a
     * client. */
    void (*on_done)(struct gw_req *r);
    void *ctx;

    /* The reply for everything but retrievals: one line (with "\r\n"),
     * static, in the arena, or in a backend buffer (rline_buf, ref). */
    const char *rline;
    uint32_t rlen;
    const char *forced_reply;  /* static; answers in place of the result */
    struct gw_buf *rline_buf;
    uint32_t out_left;         /* bytes of this reply not yet written */

    uint32_t nkeys;
    struct gw_key *keys;       /* keys_inline, or keys_heap */
    struct gw_key keys_inline[REQ_INLINE_KEYS];
    struct gw_key *keys_heap;  /* kept across reuse */
    uint32_t keys_heap_cap;

    struct arena arena;
    char arena_inline[REQ_ARENA_INLINE];
};

/* A request from the worker's free list, refs = 1, holding a reference on
 * `in`.  NULL on allocation failure. */
struct gw_req *req_new(struct worker *w, struct gw_buf *in, const char *base,
                       const struct mc_request *mc);
void req_unref(struct gw_req *r);
/* Room for n keys (reuses the request's array).  GW_NOMEM on failure. */
int req_reserve_keys(struct gw_req *r, uint32_t n);
/* Key i is `key` (client and backend key alike), not yet answered. */
void req_key_init(struct gw_req *r, uint32_t i, const char *key, uint32_t len);
/* n bytes from the request's arena, or NULL. */
char *req_alloc(struct gw_req *r, size_t n);

/* Set a single-line reply: a static string (with "\r\n"). */
void req_reply_static(struct gw_req *r, const char *line);
/* Set a single-line reply by formatting into the arena ("\r\n" added). */
void req_reply_fmt(struct gw_req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Key k failed: the key is an error and the reply is "SERVER_ERROR why". */
void req_fail_key(struct gw_req *r, uint32_t k, const char *why);

/* One backend op finished; when none remain the request is done and its
 * client is told. */
void req_op_done(struct gw_req *r);

#endif
