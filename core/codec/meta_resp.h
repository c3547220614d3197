/* meta_resp.h -- the parser for what a memcached backend sends back to meta
 * requests.
 *
 * Contract
 * - The same as resp.h's mc_resp_parse: zero-copy, resumable, never
 *   allocates.  mc_meta_resp_parse() looks at [buf, buf+len), which starts
 *   at one reply unit, and returns
 *     GW_OK     *r holds one unit; the caller consumes r->total_len bytes.
 *     GW_AGAIN  incomplete; call again with more bytes appended (r->need,
 *               when non-zero, is the size the whole unit needs).
 *     GW_ERROR  not a meta reply: the connection is out of sync and must be
 *               reset.
 * - A unit is one line, except VA, whose unit also holds its data block and
 *   the "\r\n" after it.  Each meta request gets exactly one unit back
 *   (none for a quiet one that succeeded), so a backend connection matches
 *   units to requests one to one (mn's MN ends a quiet pipeline).
 * - Lines end in "\r\n" (a bare "\n" is accepted), are at most
 *   MC_RESP_MAX_LINE bytes (resp.h) including it, and the words are upper
 *   case:
 *     VA <size> <flag>*      + <size> bytes of data + "\r\n"
 *     HD <flag>*             success without a value
 *     EN <flag>*             miss (memcached echoes O and k on it)
 *     NS <flag>*  EX <flag>*  NF <flag>*
 *     MN                     the no-op's answer
 *     ME <key> <info>        me's answer; info is the k=v text as sent
 *     ERROR [<text>]  CLIENT_ERROR <text>  SERVER_ERROR <text>
 *   Tokens are separated by one or more spaces; trailing spaces are
 *   ignored except in msg, which is kept as sent.
 * - Flags are kept as in meta.h: r->flags[] in the order sent, as offsets
 *   (the letter, then its token: "t30", "c123", "kfoo", "Oabc", "b", "W"),
 *   and r->flag_bits.  A flag must start with a letter; a letter may
 *   repeat (a server's business), mc_meta_resp_flag finds the first.
 *   More than MC_META_RESP_MAX_FLAGS flags is GW_ERROR.  Flag tokens are
 *   not interpreted: a caller that needs a number parses the token.
 * - Incomplete input is judged as far as it goes, as in resp.h: a first
 *   word that cannot grow into a known one, or a data block whose next
 *   byte is not "\r", is GW_ERROR at once; a prefix of a valid unit never
 *   is.
 */
#ifndef GW_META_RESP_H
#define GW_META_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "meta.h"
#include "resp.h"

enum mc_meta_resp_kind {
    MRESP_NONE = 0,
    MRESP_VA,            /* VA <size> <flag>* + data */
    MRESP_HD,            /* HD <flag>* */
    MRESP_EN,            /* EN <flag>* */
    MRESP_NS,            /* NS <flag>* */
    MRESP_EX,            /* EX <flag>* */
    MRESP_NF,            /* NF <flag>* */
    MRESP_MN,            /* MN */
    MRESP_ME,            /* ME <key> <info> */
    MRESP_ERROR,         /* ERROR [<text>] */
    MRESP_CLIENT_ERROR,  /* CLIENT_ERROR <text> */
    MRESP_SERVER_ERROR,  /* SERVER_ERROR <text> */
    MRESP_KIND_COUNT
};

/* A request's flags (17) plus what a server adds: b after a binary k, and
 * W, X, Z. */
#define MC_META_RESP_MAX_FLAGS 24

struct mc_meta_resp {
    enum mc_meta_resp_kind kind;
    uint32_t line_len;   /* the line, including its "\n" */
    uint32_t total_len;  /* bytes to consume (VA: line + data + "\r\n") */
    size_t need;         /* GW_AGAIN: bytes the unit needs in all, or 0 */

    uint32_t bytes;      /* VA: <size> */
    uint32_t data_off;   /* VA: offset of the data block */

    uint32_t key_off, key_len;  /* ME: the key as the server wrote it */

    /* ME: the text after the key and its space; ERROR, CLIENT_ERROR,
     * SERVER_ERROR: the text after the word and its space; up to the line
     * end (no "\r\n").  msg_len is 0 (msg_off the line end) without any. */
    uint32_t msg_off, msg_len;

    uint64_t flag_bits;  /* MC_META_BIT(letter) of each flag */
    uint32_t nflags;
    /* Last, so a parse clears only what comes before. */
    struct mc_meta_flag flags[MC_META_RESP_MAX_FLAGS];
};

int mc_meta_resp_parse(const char *buf, size_t len, struct mc_meta_resp *r);

/* "VA", "HD", ..., "SERVER_ERROR"; NULL for MRESP_NONE or out of range. */
const char *mc_meta_resp_word(enum mc_meta_resp_kind kind);

/* The reply's first flag with this letter, or NULL. */
static inline const struct mc_meta_flag *
mc_meta_resp_flag(const struct mc_meta_resp *r, char letter)
{
    return mc_meta_flag_find(r->flags, r->nflags, r->flag_bits, letter);
}

#endif
