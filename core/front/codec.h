/* codec.h -- a client codec: the wire format one client connection speaks.
 *
 * A codec turns the bytes a client sent into requests and finished
 * requests back into bytes; the client (client.h) does everything else:
 * reading, ordering replies, back-pressure, writing.  Every codec feeds the
 * same internal request (proxy/req.h), so routing never knows which one a
 * client speaks.  The text codec (text_codec.c) speaks memcached's text
 * and meta protocols, which memcached lets a client mix request by
 * request on one connection: it hands each meta request, and its reply,
 * to meta_codec.c.  Binary will be another struct codec beside it.
 *
 *   decode  take every whole request at the start of the client's read
 *           buffer, in order: for each, make and dispatch a request with
 *           client_request/client_dispatch (or answer a bad one with
 *           client_refuse), consuming its bytes.  Stop at an incomplete
 *           request, when client_busy says to pause, or when the client is
 *           closing.
 *   encode  queue the reply of finished request r on the client's output.
 *           GW_NOMEM closes the connection.
 */
#ifndef GW_CODEC_H
#define GW_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/proto.h"

struct client;
struct gw_req;

struct codec {
    const char *name;
    void (*decode)(struct client *c);
    int (*encode)(struct client *c, struct gw_req *r);
};

/* What a codec keeps per connection between reads. */
struct codec_state {
    struct mc_parser parser;
    uint32_t swallow;          /* data bytes of a refused value still to skip */
    uint32_t need;             /* bytes the incomplete request at the start of
                                * the read buffer needs in all, when its line
                                * says (a storage command's data); else 0 */
    bool started;              /* the first byte was seen: the codec is chosen */
};

extern const struct codec codec_text;
extern const struct codec codec_binary;

/* The codec of a connection whose first byte is `first`: binary for 0x80
 * (memcached decides the same way, once per connection), else text. */
const struct codec *codec_pick(uint8_t first);

/* The meta half of codec_text (meta_codec.c).  meta_decode takes the meta
 * request at the start of the read buffer; false: stop decoding (it is
 * incomplete, or the client is closing).  meta_encode queues the reply of
 * a meta request (mc_cmd_is_meta). */
bool meta_decode(struct client *c);
int meta_encode(struct client *c, struct gw_req *r);

/* Consume a request of total_len bytes that was answered without a
 * gw_req of its own: what is not read yet is swallowed as it arrives. */
void codec_consume(struct client *c, uint32_t total_len);
/* Swallow what is left of such a request; true if there was some. */
bool codec_swallow(struct client *c);

#endif
