/* internal.h -- requests the embedded store (memcache.internal) answers on
 * the spot, with no backend and no waiting.
 *
 * Each call answers what it is given at once: a retrieval key's state and
 * value (the value is copied out of the store into a buffer of its own,
 * since the store's item may change as soon as its lock is dropped), or a
 * single-key command's reply line and kind, counted as a backend's would
 * be.
 */
#ifndef GW_INTERNAL_H
#define GW_INTERNAL_H

#include <stdint.h>

struct pool;
struct gw_req;

/* Key k of retrieval r (get/gets/gat/gats). */
void internal_get(struct pool *p, struct gw_req *r, uint32_t k);
/* The one key of r: set/add/replace/append/prepend/cas/delete/incr/decr/touch,
 * or a meta request (mg ms md ma; me and the flags the store cannot honour
 * are answered with SERVER_ERROR). */
void internal_single(struct pool *p, struct gw_req *r);
/* flush_all [delay]. */
void internal_flush(struct pool *p, int64_t delay);

#endif
