/* reply.c -- see reply.h. */
#include "reply.h"

#include "base/status.h"

struct reply_text {
    const char *word;
    const char *line;      /* with "\r\n", for the one-word kinds */
    unsigned char line_len;
    const char *status;
};

#define LINE(w) w "\r\n", sizeof(w "\r\n") - 1
#define NOLINE NULL, 0

static const struct reply_text table[RESP_KIND_COUNT] = {
    [RESP_NONE] = { NULL, NOLINE, NULL },
    [RESP_VALUE] = { "VALUE", NOLINE, "HIT" },
    [RESP_END] = { "END", LINE("END"), "MISS" },
    [RESP_STORED] = { "STORED", LINE("STORED"), "STORED" },
    [RESP_NOT_STORED] = { "NOT_STORED", LINE("NOT_STORED"), "NOT_STORED" },
    [RESP_EXISTS] = { "EXISTS", LINE("EXISTS"), "EXISTS" },
    [RESP_NOT_FOUND] = { "NOT_FOUND", LINE("NOT_FOUND"), "NOT_FOUND" },
    [RESP_DELETED] = { "DELETED", LINE("DELETED"), "DELETED" },
    [RESP_TOUCHED] = { "TOUCHED", LINE("TOUCHED"), "TOUCHED" },
    [RESP_OK] = { "OK", LINE("OK"), "OK" },
    [RESP_NUMBER] = { NULL, NOLINE, "NUMBER" },
    [RESP_VERSION] = { "VERSION", NOLINE, "VERSION" },
    [RESP_STAT] = { "STAT", NOLINE, "STAT" },
    [RESP_ERROR] = { "ERROR", LINE("ERROR"), "ERROR" },
    [RESP_CLIENT_ERROR] = { "CLIENT_ERROR", NOLINE, "CLIENT_ERROR" },
    [RESP_SERVER_ERROR] = { "SERVER_ERROR", NOLINE, "SERVER_ERROR" },
};

static const struct reply_text *text(enum mc_resp_kind kind)
{
    return (unsigned)kind < GW_ARRAY_LEN(table) ? &table[kind] : &table[RESP_NONE];
}

const char *reply_word(enum mc_resp_kind kind) { return text(kind)->word; }
const char *reply_line(enum mc_resp_kind kind) { return text(kind)->line; }
size_t reply_line_len(enum mc_resp_kind kind) { return text(kind)->line_len; }
const char *reply_status(enum mc_resp_kind kind) { return text(kind)->status; }
