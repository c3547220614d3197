/* reply.h -- the kinds of reply memcached gives, and their text, written
 * once.
 *
 * Every layer speaks of a reply by its kind: the backend reply parser
 * (resp.h) reports one, the embedded store's results map to one, a Lua
 * route builds one (memcache.stored() ...), and a client codec renders one.
 * This table is the only place a kind's text is spelled:
 *   reply_word    the first word on the wire ("STORED", "VALUE", ...);
 *   reply_line    the whole line with "\r\n" for the kinds that are one
 *                 fixed word ("STORED\r\n"), NULL for the others (VALUE,
 *                 a number, VERSION/STAT/ERROR lines that carry text);
 *   reply_status  the name a Lua response's .status reads ("HIT" for a
 *                 value, "MISS" for END, else the word).
 */
#ifndef GW_REPLY_H
#define GW_REPLY_H

#include <stdbool.h>
#include <stddef.h>

enum mc_resp_kind {
    RESP_NONE = 0,
    RESP_VALUE,        /* VALUE <key> <flags> <bytes> [<cas>] + data */
    RESP_END,          /* END */
    RESP_STORED,       /* STORED */
    RESP_NOT_STORED,   /* NOT_STORED */
    RESP_EXISTS,       /* EXISTS */
    RESP_NOT_FOUND,    /* NOT_FOUND */
    RESP_DELETED,      /* DELETED */
    RESP_TOUCHED,      /* TOUCHED */
    RESP_OK,           /* OK */
    RESP_NUMBER,       /* <digits>: the reply to incr/decr */
    RESP_VERSION,      /* VERSION <text> */
    RESP_STAT,         /* STAT <name> <value> */
    RESP_ERROR,        /* ERROR */
    RESP_CLIENT_ERROR, /* CLIENT_ERROR <text> */
    RESP_SERVER_ERROR, /* SERVER_ERROR <text> */
    RESP_KIND_COUNT
};

const char *reply_word(enum mc_resp_kind kind);      /* NULL for NONE, NUMBER */
const char *reply_line(enum mc_resp_kind kind);      /* NULL unless one fixed word */
size_t reply_line_len(enum mc_resp_kind kind);       /* strlen(reply_line), 0 if none */
const char *reply_status(enum mc_resp_kind kind);    /* NULL for NONE */

static inline bool reply_is_error(enum mc_resp_kind kind)
{
    return kind == RESP_ERROR || kind == RESP_CLIENT_ERROR || kind == RESP_SERVER_ERROR;
}

#endif
