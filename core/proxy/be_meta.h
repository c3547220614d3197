/* be_meta.h -- text commands sent to memcached in the meta protocol (the
 * backend codec's other half, be_text.c).
 *
 * A binary client's request is routed as the text command it carries out
 * (get, set, incr, ...), but its answer needs what the text protocol does
 * not give back: the cas of a stored item, an incr that creates its item
 * with an initial value and an expiry, any bytes in a key.  An op marked
 * meta (op->meta, set by the router when the pool speaks meta) is written
 * as the meta command that does the same:
 *     get, gets          mg <key> v f c
 *     gat, gats          mg <key> v f c T<exptime>
 *     touch              mg <key> f c T<exptime>
 *     set add replace    ms <key> <bytes> F<flags> T<exptime> c [M<mode>] [C<cas>]
 *     append prepend     ms <key> <bytes> c MA|MP [C<cas>]
 *     cas                ms <key> <bytes> F<flags> T<exptime> c C<cas>
 *     delete             md <key> [C<cas>]
 *     incr, decr         ma <key> v c D<delta> [MD] [N<exptime> J<initial>]
 * with " b" and the key in base64 when it is no text key, and its reply
 * is read back into the request as a text command's would be (a hit's
 * flags, cas and value; STORED and the new cas; the number; ...), so the
 * client's codec renders it as for any other request.
 */
#ifndef GW_BE_META_H
#define GW_BE_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "req.h"

/* How a key goes to a server in a meta command.  memcached reads a meta
 * key as sent: at most 250 bytes, base64 ones included. */
struct be_key {
    const char *p;      /* the bytes: the key, or the key to encode */
    uint32_t len;       /* bytes sent (encoded length with encode) */
    bool b;             /* say b: the key sent is base64 */
    bool encode;        /* p[0..raw) still needs encoding */
    uint32_t raw;
};

/* Key k of r: a meta request's key as its client sent it while no route
 * changed it (its own base64 with b, so the server keeps the item's key
 * binary as it would for the client directly; or its text key, control
 * bytes and all when binary_keys let them in, as memcached takes them);
 * else the key itself when it is a text key; else its base64 with b. */
void be_key_form(const struct gw_req *r, const struct gw_key *k, struct be_key *out);
int be_push_key(struct gw_req *r, const struct be_key *key, struct gw_oq *q);
/* A value with its "\r\n" (a binary client's has none in the buffer). */
int be_push_value(const struct gw_req *r, struct gw_oq *q);

int be_meta_encode(struct be_op *op, struct gw_oq *q);
enum be_decode be_meta_decode(struct backend *b, struct be_op *op, struct gw_rbuf *in,
                              size_t *need);

#endif
