/* proto.h -- the memcached text-protocol request parser (client side).
 *
 * Contract
 * - Zero-copy and resumable.  mc_parse() looks at the bytes [buf, buf+len)
 *   that start at the beginning of one request.  It never copies and never
 *   allocates: keys and the data block are reported as offsets from buf.
 * - It returns
 *     GW_OK     one whole request (command line, and for storage commands the
 *               data block and its "\r\n") was parsed into *req.  The caller
 *               consumes req->total_len bytes and calls again for the next.
 *     GW_AGAIN  the request is incomplete.  The caller keeps the bytes,
 *               appends more and calls again with the same parser: p->scanned
 *               remembers how far the line search got, so a long line is not
 *               rescanned from its start on every read.
 *     GW_ERROR  the request is bad.  req->error is the exact reply line
 *               (without "\r\n") memcached would send, e.g. "ERROR" or
 *               "CLIENT_ERROR bad command line format".  The caller sends it
 *               and consumes req->total_len bytes: the bad line and, when the
 *               declared data length was readable, the data block too, so the
 *               stream stays in sync.  If req->close is set the connection
 *               must be closed after the reply (line too long).
 *               A storage command whose data length is over the limit gives
 *               "SERVER_ERROR object too large for cache" and total_len covers
 *               its whole data block (it may be more than len: the caller
 *               swallows the rest as it arrives).
 * - A line ends with "\n"; an optional "\r" before it is ignored.  Tokens are
 *   separated by one or more spaces (only spaces, as in memcached); leading
 *   and trailing spaces are allowed.
 * - After GW_OK or GW_ERROR the parser is reset for the next request.  After
 *   GW_AGAIN *req holds nothing useful.
 *
 * Details (checked against memcached 1.6.18)
 * - noreply: as in memcached, a command that takes it is noreply when its
 *   last token is "noreply" (an unknown extra token in that place, as in
 *   "set k 0 0 1 bogus", is ignored).  req->noreply is also set on GW_ERROR
 *   when memcached would have suppressed that error reply (e.g. "set <key too
 *   long> 0 0 5 noreply", "incr k abc noreply", a bad data chunk or a too
 *   large value with noreply); errors for a wrong number of tokens ("ERROR")
 *   never have it.  Whether to send the reply then is the caller's choice.
 * - Deliberate deviation: when a storage command line is refused ("ERROR"
 *   for a wrong token count, or any CLIENT_ERROR) but its <bytes> token is a
 *   valid length (0 .. INT_MAX-2), total_len covers line + bytes + 2, so the
 *   data block is swallowed and the stream stays in sync.  memcached only
 *   swallows after "SERVER_ERROR object too large for cache" and otherwise
 *   parses the data block as commands (usually answering "ERROR").  With an
 *   unusable <bytes> ("-1", "abc", missing) only the line is consumed.
 * - The data block: exactly bytes + 2 bytes follow the line; if the last two
 *   are not "\r\n" the reply is "CLIENT_ERROR bad data chunk" and total_len
 *   is still line + bytes + 2 (memcached consumes the same and parses what
 *   follows as the next command).
 * - A key is 1..250 bytes without control characters (bytes <= 32 or 127);
 *   any other key gives "CLIENT_ERROR bad command line format" (memcached
 *   only checks the length).  One bad key fails the whole multi-get.  With
 *   binary_keys, control characters are accepted, except NUL, "\r" and
 *   "\n": memcached ends a line at them, so a key holding one would make
 *   the server read another command than the one routed.
 * - "gat <exptime>" with no key: memcached answers an empty "END", so that is
 *   reported as GW_ERROR with error "END" (retrieval requests that return
 *   GW_OK always have nkeys >= 1).
 * - Numbers are decimal with an optional '+' ('-' too for signed ones).
 *   exptime and the flush_all delay take any int64_t.  Where memcached
 *   silently truncates an out-of-range flags/verbosity level (over 2^32-1) or
 *   <bytes> (over 2^31-1) it is an error here.  Error
 *   replies: flags/exptime/bytes/cas of storage commands and the verbosity
 *   level give "CLIENT_ERROR bad command line format"; incr/decr delta gives
 *   "CLIENT_ERROR invalid numeric delta argument"; touch/gat/gats exptime
 *   and flush_all delay give "CLIENT_ERROR invalid exptime argument"; delete
 *   with anything but "0" and/or "noreply" after the key gives
 *   "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]".
 * - version and quit ignore any arguments; stats accepts any (args_off/
 *   args_len: the trimmed text after "stats"; args_len is 0 without any).
 * - A command line longer than max_line (counting its "\n"), or max_line
 *   bytes with no "\n" yet, gives "CLIENT_ERROR line too long" with
 *   req->close set; total_len is then the bytes looked at (memcached closes
 *   such a connection without a reply).
 */
#ifndef GW_PROTO_H
#define GW_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

#define MC_KEY_MAX 250

/* The limits a parser gets when it is given 0, and the gateway's defaults
 * for max_line and max_value_size (rt/settings.c): a 1 MiB line holds a get
 * of thousands of keys; 1 MiB is memcached's own item size limit. */
#define MC_DEFAULT_MAX_LINE  ((size_t)1 << 20)
#define MC_DEFAULT_MAX_VALUE ((size_t)1 << 20)

/* The error lines both request parsers (this one and meta.h's) answer,
 * spelled once. */
extern const char MC_ERR_UNKNOWN[];    /* "ERROR" */
extern const char MC_ERR_FORMAT[];     /* "CLIENT_ERROR bad command line format" */
extern const char MC_ERR_LINE[];       /* "CLIENT_ERROR line too long" */
extern const char MC_ERR_CHUNK[];      /* "CLIENT_ERROR bad data chunk" */
extern const char MC_ERR_TOO_LARGE[];  /* "SERVER_ERROR object too large for cache" */

enum mc_cmd {
    MC_NONE = 0,
    /* retrieval: any number (>= 1) of keys */
    MC_GET, MC_GETS,
    /* gat/gats <exptime> <key>+ */
    MC_GAT, MC_GATS,
    /* storage: <key> <flags> <exptime> <bytes> [noreply] + data block */
    MC_SET, MC_ADD, MC_REPLACE, MC_APPEND, MC_PREPEND,
    /* cas <key> <flags> <exptime> <bytes> <cas unique> [noreply] + data */
    MC_CAS,
    MC_DELETE,     /* delete <key> [0] [noreply] */
    MC_INCR,       /* incr <key> <delta> [noreply] */
    MC_DECR,       /* decr <key> <delta> [noreply] */
    MC_TOUCH,      /* touch <key> <exptime> [noreply] */
    MC_FLUSH_ALL,  /* flush_all [delay] [noreply] */
    MC_VERSION,    /* version */
    MC_VERBOSITY,  /* verbosity <level> [noreply] */
    MC_STATS,      /* stats [args...] */
    MC_QUIT,       /* quit */
    /* meta (codec/meta.h): the text parser never returns them */
    MC_META_GET,     /* mg <key> <flag>* */
    MC_META_SET,     /* ms <key> <datalen> <flag>* + data */
    MC_META_DELETE,  /* md <key> <flag>* */
    MC_META_ARITH,   /* ma <key> <flag>* */
    MC_META_NOOP,    /* mn */
    MC_META_DEBUG,   /* me <key> [b] */
    MC_CMD_COUNT
};

/* Name of a command as the client spells it ("get", "set", ...). */
const char *mc_cmd_name(enum mc_cmd cmd);

/* The text command a client spells s[0..n), or MC_NONE (the parser's). */
enum mc_cmd mc_cmd_lookup(const char *s, size_t n);
/* Any command, text or meta ("mg"), by its name; MC_NONE if none. */
enum mc_cmd mc_cmd_named(const char *name);

/* True for set/add/replace/append/prepend/cas (they carry a data block). */
bool mc_cmd_is_storage(enum mc_cmd cmd);
/* True for get/gets/gat/gats (they may carry many keys). */
bool mc_cmd_is_retrieval(enum mc_cmd cmd);
/* True for the meta commands (sent and answered in the meta protocol). */
bool mc_cmd_is_meta(enum mc_cmd cmd);

struct mc_request {
    enum mc_cmd cmd;
    uint32_t line_len;   /* command line including its "\n" */
    uint32_t total_len;  /* bytes to consume: line + data block + "\r\n" */

    /* The first (for most commands the only) key. */
    uint32_t key_off;
    uint32_t key_len;
    /* Retrieval commands: the key list spans [keys_off, keys_end); walk it
     * with mc_key_next().  nkeys is how many keys it holds.  Commands with
     * one key (storage, delete, incr/decr, touch) set them too (nkeys = 1);
     * commands without a key leave nkeys 0. */
    uint32_t keys_off;
    uint32_t keys_end;
    uint32_t nkeys;

    uint32_t flags;      /* storage */
    int64_t exptime;     /* storage, touch, gat/gats */
    uint32_t bytes;      /* storage: data length, without the "\r\n" */
    uint32_t data_off;   /* storage: offset of the data block */
    uint64_t cas;        /* cas */
    uint64_t delta;      /* incr/decr */
    int64_t delay;       /* flush_all delay (0 if absent) */
    int64_t level;       /* verbosity level */
    uint32_t args_off;   /* stats: the text after "stats ", trimmed; a meta */
    uint32_t args_len;   /* command: its flags as sent (meta.h) */
    bool noreply;
    bool quiet;          /* meta: q, its nominal reply is dropped (noreply stays
                          * false: a quiet request's errors are still sent) */
    bool binary_key;     /* meta: b, key_off/key_len is the key in base64 */
    bool binary;         /* from a binary client (binary.h): the key is any
                          * bytes, the value has no "\r\n" after it, exptime
                          * of incr/decr is its create's (MC_BIN_NO_CREATE:
                          * none) and initial its first value */
    uint16_t status;     /* binary: a refused request's answer */
    uint64_t initial;    /* binary incr/decr */

    const char *error;   /* GW_ERROR: the reply line, without "\r\n" */
    bool close;          /* GW_ERROR: close the connection after replying */
};

/* One per client connection: 32-bit fields (the limits are below 2^31)
 * keep it small. */
struct mc_parser {
    uint32_t scanned;     /* bytes already searched for "\n" */
    uint32_t max_line;    /* longest command line accepted (bytes) */
    uint32_t max_value;   /* largest data block accepted (bytes) */
    bool binary_keys;     /* accept control bytes in keys, as memcached does
                             (mc_parser_init leaves it false: they are refused) */
};

/* Initialise a parser with the given limits (0 picks the defaults: a
 * 1 MiB line, which holds a get of thousands of keys, and a 1 MiB value). */
void mc_parser_init(struct mc_parser *p, size_t max_line, size_t max_value);

/* Parse one request starting at buf.  See the contract above. */
int mc_parse(struct mc_parser *p, const char *buf, size_t len,
             struct mc_request *req);

/* The first step of mc_parse, shared with the meta parser (meta.h), which
 * uses the same struct mc_parser: find the "\n" that ends the command line
 * at buf, searching from p->scanned and never past p->max_line bytes.
 *   GW_OK     *line_len is the line's length, "\n" included; *end is
 *             where its text ends (before the "\n" and one "\r").
 *   GW_AGAIN  no "\n" yet; p->scanned records how far the search got.
 *   GW_ERROR  the line is too long; *line_len is the bytes looked at and
 *             p->scanned is reset.
 * Because both parsers search the same way from the same start, one
 * parser (one `scanned`) serves a connection that mixes text and meta
 * requests: whichever parser finishes a request, the search done so far
 * holds for it. */
int mc_parser_line(struct mc_parser *p, const char *buf, size_t len,
                   size_t *line_len, size_t *end);

/* The last step of a request with a data block (set & co., ms), whose line
 * is line_len bytes and whose whole is total_len (line + data + "\r\n"):
 *   GW_AGAIN  not all there; p->scanned is left on the line's "\n", so the
 *             next call finds the line at once.
 *   GW_ERROR  the data is not followed by "\r\n" ("bad data chunk").
 *   GW_OK     it is.
 * p->scanned is reset after GW_OK and GW_ERROR. */
int mc_parser_block(struct mc_parser *p, const char *buf, size_t len,
                    uint32_t line_len, uint32_t total_len);

/* Walk the keys of a retrieval request.  *pos starts at req->keys_off; each
 * call stores the next key's offset and length and advances *pos.  Returns
 * false when there are no more keys. */
bool mc_key_next(const char *buf, const struct mc_request *req, uint32_t *pos,
                 uint32_t *key_off, uint32_t *key_len);

/* True if key is a valid memcached key: 1..250 bytes, no control
 * characters (bytes <= 32 and 127). */
bool mc_key_valid(const char *key, size_t len);
/* The same, accepting control characters when binary_keys is set, but
 * never a space, NUL, "\r" or "\n" (what the parser accepts in a key). */
bool mc_key_allowed(const char *key, size_t len, bool binary_keys);

#endif
