/* resp.h -- the parser for what a memcached backend sends back.
 *
 * Contract
 * - Zero-copy and resumable, like proto.h: mc_resp_parse() looks at the
 *   bytes [buf, buf+len) that start at the beginning of one response unit and
 *   reports offsets from buf.  It never allocates.
 * - A unit is one line, except a "VALUE" line, whose unit also holds its data
 *   block and the "\r\n" after it.  A get's reply is several units: zero or
 *   more VALUE units and then END; the caller (the backend connection, which
 *   knows what it asked) puts units together.
 * - It returns
 *     GW_OK     *r holds one unit; the caller consumes r->total_len bytes.
 *     GW_AGAIN  the unit is incomplete; call again with more bytes appended
 *               (r->need, when non-zero, is the total the unit needs, so the
 *               caller can size its buffer for a large value at once).
 *     GW_ERROR  the bytes are not a memcached reply (garbage, a VALUE line
 *               that does not parse, a data block not followed by "\r\n").
 *               The connection is out of sync and must be reset.
 * - Line ends: "\r\n" (a bare "\n" is accepted too).
 * - A line (including its "\n") is at most MC_RESP_MAX_LINE bytes; with that
 *   many bytes and no "\n" the parser gives GW_ERROR.  The bound holds for a
 *   VALUE line too (its data block is not a line and is not bounded here), so
 *   a line search never scans more than MC_RESP_MAX_LINE bytes per call.
 * - Incomplete input is also checked as far as it goes: bytes that cannot
 *   start any reply (a first word that is not, and cannot grow into, a known
 *   word or a number; a data block whose next byte is not "\r") give
 *   GW_ERROR at once rather than GW_AGAIN.  A prefix of a valid unit never
 *   gives GW_ERROR.
 * - Words are upper case, tokens are separated by one or more spaces, and
 *   trailing spaces before the line end are ignored, except in msg (below),
 *   which is kept as sent.  "ERROR <text>" (some servers send one) is
 *   RESP_ERROR with msg set.  A one-word reply followed by other text (e.g.
 *   "END x"), a number with anything after its digits but spaces, and a
 *   number or VALUE field over its type's range are GW_ERROR.
 */
#ifndef GW_RESP_H
#define GW_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "reply.h"

#define MC_RESP_MAX_LINE 8192

struct mc_resp {
    enum mc_resp_kind kind;
    uint32_t line_len;   /* the first line, including its "\n" */
    uint32_t total_len;  /* bytes to consume (VALUE: line + data + "\r\n") */
    size_t need;         /* GW_AGAIN: bytes the unit needs in all, or 0 */

    /* VALUE */
    uint32_t key_off, key_len;
    uint32_t flags;
    uint32_t bytes;
    uint32_t data_off;
    uint64_t cas;
    bool has_cas;

    /* NUMBER */
    uint64_t number;

    /* VERSION, STAT, ERROR, CLIENT_ERROR, SERVER_ERROR: the text after the
     * first word and its space, up to the line end (no "\r\n"); msg_len is 0
     * (and msg_off the line end) when there is no text */
    uint32_t msg_off, msg_len;
};

int mc_resp_parse(const char *buf, size_t len, struct mc_resp *r);

/* Shared with meta_resp.c, the meta protocol's reply parser. */

/* The longest first word of a reply ("CLIENT_ERROR", "SERVER_ERROR"). */
#define MC_RESP_WORD_MAX 12

/* The "\n" that ends the line at buf, looked for in at most
 * MC_RESP_MAX_LINE bytes, or NULL.  *end is where the line's text ends
 * (before "\r\n" or "\n") and *word_end where its first word does (the
 * first space, looked for in MC_RESP_WORD_MAX + 1 bytes). */
const char *mc_resp_line(const char *buf, size_t len, const char **end,
                         const char **word_end);

/* An incomplete line [buf, buf+len), len > 0: can its first word still be
 * one of word(1) .. word(nkinds - 1) (NULL ones skipped)?  A word already
 * ended by a space or "\r" must be one; one cut off by len, a prefix. */
bool mc_resp_partial_word(const char *buf, size_t len,
                          const char *(*word)(int kind), int nkinds);

/* The data block after a value's line of line_len bytes (VALUE here, VA in
 * meta_resp.c): bytes of data, then "\r\n".  GW_OK sets *total_len (line +
 * data + 2); GW_AGAIN sets *need to that total; GW_ERROR when the total
 * does not fit in 32 bits or a byte after the data is not "\r\n" (judged
 * as soon as it has arrived). */
int mc_resp_block(const char *buf, size_t len, uint32_t line_len,
                  uint32_t bytes, uint32_t *total_len, size_t *need);

/* "END", "STORED", ... for the fixed one-word kinds; NULL otherwise
 * (reply.h has the whole table). */
const char *mc_resp_word(enum mc_resp_kind kind);

#endif
