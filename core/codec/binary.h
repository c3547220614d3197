/* binary.h -- memcached's binary protocol: the request parser (client side)
 * and the response header.
 *
 * Contract
 * - Like mc_parse (proto.h): zero-copy, never allocates.  mc_bin_parse()
 *   looks at [buf, buf+len), which starts at one request's 24-byte header,
 *   and returns
 *     GW_OK     one whole request (header and body) is in *req; consume
 *               req->total_len bytes.
 *     GW_AGAIN  incomplete; req->total_len is the whole request's size once
 *               the header is there (0 before), or for a value too large
 *               the bytes up to its key (all the refusal needs).
 *     GW_ERROR  answer req->status (with memcached's message for it, see
 *               mc_bin_status_text) and consume req->total_len bytes (the
 *               body may run past len: swallow the rest as it arrives); or,
 *               with req->close, close the connection (after the answer
 *               when req->status is not 0).
 *   The header's fields (opcode, opaque, cas, key/extras/body lengths) are
 *   read big-endian; the body holds extras, then the key, then the value.
 * - The binary protocol has no line: the parser keeps no state between
 *   calls (struct mc_parser only gives the limits).
 *
 * Checks, as memcached 1.6.18 makes them (proto_bin.c)
 * - A first byte other than 0x80: close, no answer.
 * - An opcode memcached does not serve (Verbosity included: 1.6.18 does
 *   not): "Unknown command" (0x81); the body is swallowed and the
 *   connection goes on.
 * - A key and extras longer than the body: "Unknown command", then close.
 * - Extras, key and value lengths that do not fit the opcode (e.g. a Get
 *   with extras, a Set without its 8 bytes of flags and expiration, a key
 *   over 250 bytes): "Invalid arguments" (0x04), then close, as memcached
 *   does.
 * - A key over 250 bytes, for any opcode: "Invalid arguments", then close.
 * - A Set/Add/Replace/Append/Prepend whose value is over max_value: "Too
 *   large." (0x03), the body swallowed.  Other opcodes' bodies are bounded
 *   by their shape (a SASL exchange by 4 KiB: "Invalid arguments").
 * - A body so large that total_len (32 bits) cannot count it whole (over
 *   4 GiB): the answer, then close.
 *
 * What a request maps to
 *   cmd is the text command it carries out (MC_GET for Get, GetQ, GetK,
 *   GetKQ; MC_SET; MC_CAS for a Set, Add or Replace with a cas, which
 *   memcached stores as a cas; ...; MC_NONE for the ones
 *   only the front answers: Noop, SASL), so routes see "get", "set", ...
 *   whatever the protocol.  quiet: a Q opcode (answers only on error, and
 *   a Get's miss not at all); with_key: the answer carries the key (GetK,
 *   GetKQ, GATK, GATKQ).
 */
#ifndef GW_BINARY_H
#define GW_BINARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "proto.h"

#define MC_BIN_HEADER 24
#define MC_BIN_REQ_MAGIC 0x80
#define MC_BIN_RES_MAGIC 0x81

enum mc_bin_opcode {
    BIN_GET = 0x00, BIN_SET = 0x01, BIN_ADD = 0x02, BIN_REPLACE = 0x03, BIN_DELETE = 0x04,
    BIN_INCREMENT = 0x05, BIN_DECREMENT = 0x06, BIN_QUIT = 0x07, BIN_FLUSH = 0x08,
    BIN_GETQ = 0x09, BIN_NOOP = 0x0a, BIN_VERSION = 0x0b, BIN_GETK = 0x0c, BIN_GETKQ = 0x0d,
    BIN_APPEND = 0x0e, BIN_PREPEND = 0x0f, BIN_STAT = 0x10, BIN_SETQ = 0x11, BIN_ADDQ = 0x12,
    BIN_REPLACEQ = 0x13, BIN_DELETEQ = 0x14, BIN_INCREMENTQ = 0x15, BIN_DECREMENTQ = 0x16,
    BIN_QUITQ = 0x17, BIN_FLUSHQ = 0x18, BIN_APPENDQ = 0x19, BIN_PREPENDQ = 0x1a,
    BIN_VERBOSITY = 0x1b, BIN_TOUCH = 0x1c, BIN_GAT = 0x1d, BIN_GATQ = 0x1e,
    BIN_SASL_LIST_MECHS = 0x20, BIN_SASL_AUTH = 0x21, BIN_SASL_STEP = 0x22,
    BIN_GATK = 0x23, BIN_GATKQ = 0x24,
};

enum mc_bin_status {
    BIN_OK = 0x0000,
    BIN_KEY_ENOENT = 0x0001,
    BIN_KEY_EEXISTS = 0x0002,
    BIN_E2BIG = 0x0003,
    BIN_EINVAL = 0x0004,
    BIN_NOT_STORED = 0x0005,
    BIN_DELTA_BADVAL = 0x0006,
    BIN_AUTH_ERROR = 0x0020,
    BIN_AUTH_CONTINUE = 0x0021,
    BIN_UNKNOWN_COMMAND = 0x0081,
    BIN_ENOMEM = 0x0082,
    BIN_NOT_SUPPORTED = 0x0083,
    BIN_EINTERNAL = 0x0084,
    BIN_EBUSY = 0x0085,
    BIN_ETMPFAIL = 0x0086,
};

/* Increment/Decrement's expiration that means "do not create". */
#define MC_BIN_NO_CREATE 0xffffffffu

struct mc_bin_request {
    uint8_t opcode;
    enum mc_cmd cmd;
    bool quiet;
    bool with_key;
    uint8_t extlen;
    uint16_t keylen;
    uint32_t bodylen;
    uint32_t opaque;         /* as sent (not byte-swapped: echoed as is) */
    uint64_t cas;
    uint32_t total_len;      /* header + body */
    uint32_t key_off;        /* from buf */
    uint32_t value_off, value_len;

    /* Extras, by opcode. */
    uint32_t flags;          /* Set, Add, Replace */
    uint32_t exptime;        /* Set, Add, Replace, Touch, GAT, Flush; Incr/Decr: create's */
    uint64_t delta;          /* Incr/Decr */
    uint64_t initial;        /* Incr/Decr */

    uint16_t status;         /* GW_ERROR: the answer (0: none, close only) */
    bool close;              /* GW_ERROR: close the connection (after the answer) */
};

int mc_bin_parse(const struct mc_parser *p, const char *buf, size_t len,
                 struct mc_bin_request *req);

/* memcached's message for an error status ("Not found", "Too large.", ...),
 * sent as the body of an error answer; "" for BIN_OK. */
const char *mc_bin_status_text(uint16_t status);

/* Write a response header into out[0..24).  opaque as the request sent it. */
void mc_bin_header(uint8_t *out, uint8_t opcode, uint16_t keylen, uint8_t extlen,
                   uint16_t status, uint32_t bodylen, uint32_t opaque, uint64_t cas);

#endif
