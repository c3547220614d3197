/* meta.h -- the memcached meta-protocol request parser (client side):
 * mg, ms, md, ma, mn, me.
 *
 * Contract
 * - The same as mc_parse (proto.h): zero-copy, resumable, never allocates.
 *   mc_meta_parse() looks at [buf, buf+len), which starts at one request,
 *   and returns
 *     GW_OK     one whole request (the line, and for ms the data block and
 *               its "\r\n") is in *req; consume req->total_len bytes.
 *     GW_AGAIN  incomplete; append bytes and call again with the same
 *               parser (p->scanned remembers how far the "\n" search got).
 *     GW_ERROR  req->error is the exact line memcached 1.6 answers (without
 *               "\r\n"); consume req->total_len bytes: the line and, for an
 *               ms whose <datalen> was readable, its data block too (it may
 *               run past len: swallow the rest as it arrives).  req->close:
 *               the line was too long, close after replying.
 *   Meta errors are always sent, quiet mode or not (memcached's rule), so
 *   there is no noreply on GW_ERROR.
 * - It shares struct mc_parser with the text parser (limits, binary_keys,
 *   scanned): one per connection serves both.
 *
 * Text and meta on one connection
 *   mc_is_meta(buf, len) is true when the request at buf starts (after any
 *   spaces) with 'm'.  No text command starts with 'm', so such a line is a
 *   meta command or an unknown one, and mc_meta_parse answers both (the
 *   latter with "ERROR", as mc_parse would).  Anything else, including a
 *   buffer holding only spaces so far, goes to mc_parse, which waits for
 *   the line or refuses it as too long.  Both search for the "\n" the same
 *   way through the one p->scanned, so switching parsers mid-request is
 *   harmless.  A caller does:
 *       rc = mc_is_meta(b, n) ? mc_meta_parse(p, b, n, &mreq)
 *                             : mc_parse(p, b, n, &req);
 *
 * Flags
 *   A flag is one token: a letter, then optionally a token of its own
 *   ("v", "T30", "Oabc").  req->flags[] keeps them in request order as
 *   offsets (the gateway re-sends them to the backend in that order), and
 *   req->flag_bits has MC_META_BIT(letter) set for each.  A letter appears
 *   at most once.  memcached 1.6 checks flags with one table shared by mg,
 *   ms, md and ma: a letter it knows is accepted by all four (and ignored
 *   where it means nothing, e.g. "mg k C5"), so the same is done here:
 *       b c f h k l q s t u v x I O P L   no token checked (O: length)
 *       N T R      a signed decimal (int64)       -> ttl, vivify_ttl, recache_ttl
 *       C E        an unsigned decimal (uint64)   -> cas, new_cas
 *       F          an unsigned 32-bit decimal     -> client_flags
 *       D J        an unsigned decimal (uint64)   -> delta, initial
 *       M          exactly one character          -> mode
 *   E and x come from memcached after 1.6.18; a backend too old for them
 *   answers "CLIENT_ERROR invalid flag" itself.  b decodes the key (below).
 *   The numbers are also stored, valid only when their flag is present.
 *
 * Errors, as memcached 1.6.18 words them (checked against a live server):
 * - no key: "ERROR" (mg ms md ma); me: "CLIENT_ERROR bad command line format".
 *   An unknown "m.." command: "ERROR".
 * - key over 250 bytes (counted as sent, base64 or not), or holding a
 *   control character (refused as in proto.h unless binary_keys; NUL, CR,
 *   LF always): "CLIENT_ERROR bad command line format".
 * - ms without <datalen>, or one that is not 0 .. INT_MAX-2:
 *   "CLIENT_ERROR bad command line format".
 * - more than 17 flags (ms: 16): mg "CLIENT_ERROR options flags are too
 *   long", ms md ma "CLIENT_ERROR options flags too long".
 * - then each flag in order: a first byte >= 127 or a letter seen before:
 *   "CLIENT_ERROR duplicate flag"; a byte that is no known flag:
 *   "CLIENT_ERROR invalid flag" (both stop there).  A bad token does not
 *   stop the walk, and the last message set wins: N T R C E "CLIENT_ERROR
 *   bad token in command line format", J "CLIENT_ERROR invalid numeric
 *   initial value", D "CLIENT_ERROR invalid numeric delta value", M "CLIENT_ERROR
 *   incorrect length for M token", b "CLIENT_ERROR error decoding key";
 *   F sets none ("CLIENT_ERROR bad command line format" unless another
 *   did).  md and ma answer all of these with "CLIENT_ERROR invalid or
 *   duplicate flag".
 * - then ms's mode (E A P R S) and ma's (I + D -): "CLIENT_ERROR invalid
 *   mode for ms M token" / "... for ma M token".
 * - then an O token over 32 bytes, the 'O' counted (so an opaque value of
 *   at most 31 bytes): "CLIENT_ERROR opaque token too long".
 * - ms: <datalen> over max_value: "SERVER_ERROR object too large for
 *   cache"; a data block not followed by "\r\n": "CLIENT_ERROR bad data
 *   chunk".
 * - A NUL in a flag: "CLIENT_ERROR bad command line format" (memcached
 *   reads its line as a C string and would see a different command).
 * - A line over max_line: "CLIENT_ERROR line too long", req->close.
 * - mn ignores anything after it; me looks only at a first flag that is
 *   exactly "b" and ignores the rest.
 *
 * Deliberate deviations, besides the stricter keys above
 * - Like proto.h, every ms error swallows the data block when <datalen>
 *   was readable (memcached does not for errors found before it reads
 *   <datalen>: bad key, too many flags).
 * - F over 2^32-1 is an error (memcached truncates it); the numbers of
 *   N T R take any int64 (memcached: a long).
 * - Base64 keys must be canonical (base64.h); memcached skips stray bytes.
 *
 * Base64 keys
 *   With b the key as sent is base64 (key_off/key_len) and its decoded
 *   bytes are in req->kbuf[0..kbuf_len); mc_meta_key() gives the key a
 *   route sees either way.  Decoded keys may hold any byte.
 */
#ifndef GW_META_H
#define GW_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "proto.h"

/* Most flags a request may carry (mg, md, ma; ms one fewer): memcached's. */
#define MC_META_MAX_FLAGS 17

/* The bit of flag letter c ('A'..'Z', 'a'..'z') in a 64-bit flag set. */
#define MC_META_BIT(c) (1ULL << ((unsigned)(c) - 'A'))

/* One flag: buf[off] is its letter, buf[off+1 .. off+len) its token, so
 * buf[off .. off+len) is the flag as sent. */
struct mc_meta_flag {
    uint32_t off;
    uint32_t len;
    char letter;
};

struct mc_meta_request {
    enum mc_cmd cmd;       /* MC_META_GET .. MC_META_DEBUG (proto.h) */
    uint32_t line_len;   /* command line including its "\n" */
    uint32_t total_len;  /* bytes to consume: line (+ ms data block + "\r\n") */

    uint32_t key_off;    /* the key as sent (base64 with b); 0/0 for mn */
    uint32_t key_len;

    uint32_t bytes;      /* ms: <datalen> */
    uint32_t data_off;   /* ms: offset of the data block */

    uint64_t flag_bits;  /* MC_META_BIT(letter) of each flag */
    uint32_t nflags;
    struct mc_meta_flag flags[MC_META_MAX_FLAGS];

    /* Checked tokens; each is meaningful only when its flag is present. */
    int64_t ttl;           /* T */
    int64_t vivify_ttl;    /* N */
    int64_t recache_ttl;   /* R */
    uint64_t cas;          /* C: compare */
    uint64_t new_cas;      /* E: the CAS value to give the item */
    uint64_t delta;        /* D */
    uint64_t initial;      /* J */
    uint32_t client_flags; /* F */
    char mode;             /* M: ms E A P R S, ma I + D - */
    bool quiet;            /* q */
    bool binary_key;       /* b: kbuf holds the decoded key */

    const char *error;     /* GW_ERROR: the reply line, without "\r\n" */
    bool close;            /* GW_ERROR: close the connection after replying */

    /* Last, so a parse need not clear it. */
    uint32_t kbuf_len;
    uint8_t kbuf[MC_KEY_MAX];
};


/* True if the request at buf is the meta parser's (see above). */
bool mc_is_meta(const char *buf, size_t len);

/* Parse one meta request starting at buf.  See the contract above. */
int mc_meta_parse(struct mc_parser *p, const char *buf, size_t len,
                  struct mc_meta_request *req);

/* The first of flags[0..n) with this letter, or NULL; bits is their
 * MC_META_BIT set (a quick no).  Requests and replies (meta_resp.h) both
 * keep their flags this way. */
const struct mc_meta_flag *mc_meta_flag_find(const struct mc_meta_flag *flags,
                                             uint32_t n, uint64_t bits,
                                             char letter);

/* Walk flags as sent, f[0..n) (a request's args: space-separated tokens,
 * each a letter and its token): each call sets the next flag's bytes
 * *tok[0..*len) and advances *pos (start at 0); false at the end. */
static inline bool mc_meta_next_flag(const char *f, uint32_t n, uint32_t *pos,
                                     const char **tok, uint32_t *len)
{
    uint32_t i = *pos;
    while (i < n && f[i] == ' ') i++;
    if (i >= n) return false;
    uint32_t start = i;
    while (i < n && f[i] != ' ') i++;
    *tok = f + start;
    *len = i - start;
    *pos = i;
    return true;
}

/* The request's flag with this letter, or NULL. */
static inline const struct mc_meta_flag *
mc_meta_flag(const struct mc_meta_request *req, char letter)
{
    return mc_meta_flag_find(req->flags, req->nflags, req->flag_bits, letter);
}

static inline bool mc_meta_has(const struct mc_meta_request *req, char letter)
{
    return (req->flag_bits & MC_META_BIT(letter)) != 0;
}

/* The gateway's request (proto.h's struct) for a parsed meta request: its
 * command, key as sent, data block, flags as sent (args_off/args_len),
 * quiet (q) and binary_key (b). */
void mc_meta_to_request(const struct mc_meta_request *m, struct mc_request *mc);

/* The key a route sees: the decoded bytes with b, else the key in buf. */
static inline const char *mc_meta_key(const char *buf,
                                      const struct mc_meta_request *req,
                                      size_t *len)
{
    if (req->binary_key) {
        *len = req->kbuf_len;
        return (const char *)req->kbuf;
    }
    *len = req->key_len;
    return buf + req->key_off;
}

#endif
