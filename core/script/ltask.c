/* ltask.c -- request-time Lua: tasks, backend calls that suspend the
 * calling coroutine, responses, the request object and fan-out.
 *
 * A backend call (pool:get, ..., pool:forward) builds a `call`: a gw_req
 * the host owns (no client) with one key, sends it through the router
 * like any request, and yields with a continuation.  When the call is done
 * its on_done hook resumes the task, and the continuation turns the reply
 * into Lua values.  A call that finishes at once (an embedded store, a
 * server that is down) returns without yielding.  Values the route only
 * forwards (pool:forward's reply, returned as-is) stay in the backend's
 * read buffer, referenced, never copied.
 *
 * memcache.wait starts one sub task per function and suspends its caller
 * on a group until enough of them are done or its timer fires.  Sub tasks
 * still running then finish in the background: the group lives until the
 * last of them ends, and only then is it recycled, so nothing they touch
 * is freed under them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "place/hash.h"
#include "base/log.h"
#include "base/loop.h"
#include "lhost_priv.h"
#include "proxy/pool.h"
#include "codec/proto.h"
#include "proxy/req.h"
#include "codec/meta.h"
#include "codec/meta_resp.h"
#include "codec/resp.h"
#include "proxy/router.h"
#include "rt/rt.h"

#define TASKS_KEEP 256
#define ERROR_MSG_MAX 1024
#define HOOK_PERIOD 1024   /* instructions between two looks at a quota */
#define TASK_COST 1024     /* instructions a task start costs its quota */

struct lreq { struct gw_req *r; uint32_t k; };

/* A reply made by memcache.hit()/... or got from pool:forward. */
struct lresp {
    uint8_t kind;              /* RESP_VALUE: hit; RESP_END: miss; else a line kind */
    uint32_t flags, bytes, len;
    uint64_t cas;
    struct gw_buf *buf;        /* holds data when it is not static, inline or a
                                * Lua string (ref) */
    const char *data;          /* hit: the value, then "\r\n" when it is in buf (a
                                * memcache.hit's is its Lua string, the user
                                * value); else: the line with "\r\n" */
    const char *unit;          /* pool:forward of a meta request: the server's
                                * whole reply unit (in buf), relayed as it is
                                * to the meta client the route answers */
    uint32_t unit_len;
    char inl[48];
};

struct group {
    struct lhost *h;
    struct group *next;        /* free list */
    struct group *all_next;    /* every group the host made (for teardown) */
    struct task *parent;       /* the task in memcache.wait, until it returns */
    struct gw_timer *timer;
    int results_ref;
    int ntasks, done, good, need;   /* need < 0: every task must finish */
    int refs;                  /* the parent, and each sub task still running */
    bool finished, timed_out;
};

static void task_resume(struct task *t, lua_State *from, int nargs);
static void task_wake(struct task *t);

/* --- tasks ---------------------------------------------------------------- */

static lua_State *thread_get(struct lhost *h)
{
    if (h->nidle > 0) return h->idle[--h->nidle];
    lua_State *L = h->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->threads_ref);
    lua_State *co = lua_newthread(L);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    return co;
}

static void thread_put(struct lhost *h, lua_State *co)
{
    if (h->nidle == h->idle_cap) {
        int cap = h->idle_cap ? 2 * h->idle_cap : 8;
        lua_State **n = realloc(h->idle, (size_t)cap * sizeof *n);
        if (!n) return; /* the thread stays anchored; it is just not reused */
        h->idle = n;
        h->idle_cap = cap;
    }
    h->idle[h->nidle++] = co;
}

/* A coroutine that ended in an error is not reused (a hook that raised
 * leaves it unable to run hooks again): unanchor it for the collector. */
static void thread_drop(struct lhost *h, lua_State *co)
{
    lua_State *L = h->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->threads_ref);
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

/* --- quotas --------------------------------------------------------------- */

double ltask_now(const struct lhost *h)
{
    return h->rt ? gw_loop_clock(h->rt->loop) : metrics_now();
}

/* ltask_now as of when the worker's loop last woke, which costs no system
 * call: what deadlines are set from and checked against between two runs
 * of Lua.  Only code inside a long Lua call (the instruction hook, the
 * pattern matcher) needs the clock itself. */
static double loop_now(const struct lhost *h)
{
    return h->rt ? gw_loop_now(h->rt->loop) : metrics_now();
}

static void quota_on_timer(void *data, int events);

/* A quota for one route call, with the config's limits; NULL when out of
 * memory.  It lives while a task draws on it (quota_unref). */
static struct quota *quota_new(struct lhost *h)
{
    struct quota *q = h->free_quotas;
    if (q) {
        h->free_quotas = q->next;
    } else {
        if (!(q = calloc(1, sizeof *q))) return NULL;
        q->h = h;
        q->all_next = h->all_quotas;
        h->all_quotas = q;
    }
    const struct gw_settings *st = &h->cfg.settings;
    q->refs = 0;
    q->instructions = st->instruction_limit ? (int64_t)st->instruction_limit : INT64_MAX;
    q->deadline = st->route_timeout > 0 ? loop_now(h) + st->route_timeout : 0;
    q->started = 0;
    q->expired = false;
    q->why = NULL;
    q->timeout_why = "route timed out";
    q->route = NULL;
    q->route_name = NULL;
    q->peer.family = 0;
    return q;
}

/* Back to the free list once no task draws on it. */
static void quota_release(struct quota *q)
{
    if (q->refs > 0 || q == &q->h->config_quota) return;
    if (q->timer) gw_timer_stop(q->timer);
    q->next = q->h->free_quotas;
    q->h->free_quotas = q;
}

/* Draw n instructions from q at time now; false, with q expired, past a
 * limit. */
static bool quota_draw(struct quota *q, int64_t n, double now)
{
    if (q->expired) return false;
    if (q->instructions != INT64_MAX) {
        q->instructions -= n;
        if (q->instructions < 0) {
            q->expired = true;
            q->why = "instruction budget exceeded";
            return false;
        }
    }
    if (q->deadline > 0 && now > q->deadline) {
        q->expired = true;
        q->why = q->timeout_why;
        return false;
    }
    return true;
}

static int hook_period(const struct quota *q)
{
    return q->instructions < HOOK_PERIOD ? (int)(q->instructions > 0 ? q->instructions : 1)
                                         : HOOK_PERIOD;
}

static void quota_hook(lua_State *L, lua_Debug *ar)
{
    struct quota *q = task_of(L)->q;
    if (!quota_draw(q, HOOK_PERIOD, ltask_now(q->h))) luaL_error(L, "%s", q->why);
}

void ltask_set_hook(lua_State *L, const struct quota *q)
{
    if (q->instructions == INT64_MAX && q->deadline == 0) lua_sethook(L, NULL, 0, 0);
    else lua_sethook(L, quota_hook, LUA_MASKCOUNT, hook_period(q));
}

bool ltask_charge(lua_State *L, unsigned long steps)
{
    struct quota *q = task_of(L)->q;
    if (!q || quota_draw(q, (int64_t)steps, ltask_now(q->h))) return true;
    lua_pushstring(L, q->why);
    return false;
}

/* A task of q waits: make sure the deadline still fires. */
static void quota_arm(struct quota *q)
{
    if (q->deadline == 0) return;
    if (!q->timer && !(q->timer = gw_timer_new(q->h->rt->loop, quota_on_timer, q))) return;
    if (gw_timer_active(q->timer)) return;
    double left = q->deadline - loop_now(q->h);
    gw_timer_start(q->timer, left > 0.001 ? left : 0.001);
}

/* --- tasks ---------------------------------------------------------------- */

/* A task drawing on q, or NULL with *why: a limit (the worker's max_tasks,
 * the quota's task_limit or budget) or memory.  May raise a memory error
 * when called from a running task (before it changes anything). */
static struct task *task_new(struct lhost *h, enum task_kind kind, struct quota *q,
                             const char **why)
{
    uint32_t limit = h->cfg.settings.task_limit;
    if (gw_settings.max_tasks && h->rt->stats.gw_lua_tasks >= gw_settings.max_tasks) {
        *why = "too many Lua tasks on this worker (max_tasks)";
        return NULL;
    }
    if (limit && q->started >= limit) {
        *why = "too many tasks for one route call (task_limit)";
        return NULL;
    }
    if (!quota_draw(q, TASK_COST, loop_now(h))) {
        *why = q->why;
        return NULL;
    }
    lua_State *co = thread_get(h);
    struct task *t = h->free_tasks;
    if (t) h->free_tasks = t->next;
    else if (!(t = malloc(sizeof *t))) {
        thread_put(h, co);
        *why = "out of memory";
        return NULL;
    }
    memset(t, 0, sizeof *t);
    t->h = h;
    t->kind = kind;
    t->q = q;
    q->refs++;
    q->started++;
    t->co = co;
    *(struct task **)lua_getextraspace(t->co) = t;
    ltask_set_hook(t->co, q);
    t->next = h->live;
    if (h->live) h->live->prev = t;
    h->live = t;
    STAT_INC(&h->rt->stats, gw_lua_tasks);
    return t;
}

static void task_free(struct task *t, bool errored)
{
    struct lhost *h = t->h;
    if (t->prev) t->prev->next = t->next;
    else h->live = t->next;
    if (t->next) t->next->prev = t->prev;
    lua_settop(t->co, 0);
    if (errored) thread_drop(h, t->co);
    else thread_put(h, t->co);
    STAT_DEC(&h->rt->stats, gw_lua_tasks);
    struct quota *q = t->q;
    if (q->route == t) q->route = NULL;
    q->refs--;
    quota_release(q);
    t->next = h->free_tasks;
    h->free_tasks = t;
}

/* --- errors, for the log ----------------------------------------------------- */

#define CONTEXT_LEN (REQ_DESCRIBE_LEN + 300)

/* Whom an error of t concerns: `route "p" key "k" client ip:port` while its
 * request is alive, else its route alone.  Into out (CONTEXT_LEN bytes). */
static const char *task_context(const struct task *t, char *out, size_t len)
{
    const char *route = t->q->route_name;
    /* A route task's request, unless it was answered without it (its
     * deadline passed while it waited). */
    bool has_req = t->kind == TASK_ROUTE && t->lreq && (!t->async || t->holds_req);
    const struct gw_req *r = has_req ? t->lreq->r : NULL;
    char what[REQ_DESCRIBE_LEN];
    if (r && route)
        snprintf(out, len, "route \"%s\" %s", route,
                 req_describe(r, t->lreq->k, what, sizeof what));
    else if (r)
        snprintf(out, len, "keyless hook (%s) %s", mc_cmd_name(r->mc.cmd),
                 req_describe(r, UINT32_MAX, what, sizeof what));
    else if (route)
        snprintf(out, len, "route \"%s\" (a task it started)", route);
    else
        snprintf(out, len, "keyless hook");
    return out;
}

/* Where a Lua error was raised, as its message starts ("routes.lua:12:"):
 * its length, or 0 if it names no place. */
static int error_site_len(const char *msg)
{
    const char *colon = strchr(msg, ':');
    if (!colon || colon == msg || memchr(msg, '\n', (size_t)(colon - msg))) return 0;
    const char *p = colon + 1;
    if (*p < '0' || *p > '9') return 0;
    while (*p >= '0' && *p <= '9') p++;
    return *p == ':' ? (int)(p + 1 - msg) : 0;
}

/* msg with t's traceback, pushed on the host's stack. */
static const char *traceback(struct task *t, const char *msg)
{
    luaL_traceback(t->h->L, t->co, msg, 0);
    return lua_tostring(t->h->L, -1);
}

/* Log t's error (the top of its stack) with its traceback, rate limited
 * per route and per place in the script it was raised at; returns the
 * message (on t's stack). */
static const char *task_error(struct task *t)
{
    struct lhost *h = t->h;
    const char *msg = lua_tostring(t->co, -1);
    if (!msg) msg = "error object is not a string";
    char topic[300], ctx[CONTEXT_LEN];
    snprintf(topic, sizeof topic, "%s|%.*s", t->q->route_name ? t->q->route_name : "",
             error_site_len(msg), msg);
    int top = lua_gettop(h->L);
    LOG_ERROR_LIMIT(topic, "%s: lua error: %s", task_context(t, ctx, sizeof ctx),
                    traceback(t, msg));
    lua_settop(h->L, top);
    STAT_INC(&h->rt->stats, gw_lua_errors);
    return msg;
}

/* Key k of r fails with why, from route `route`: logged (rate limited per
 * route and why), and answered SERVER_ERROR why. */
static void route_fail(const char *route, struct gw_req *r, uint32_t k, const char *why)
{
    char topic[300], what[REQ_DESCRIBE_LEN];
    snprintf(topic, sizeof topic, "%s|%s", route ? route : "", why);
    LOG_ERROR_LIMIT(topic, "route \"%s\" %s: %s", route ? route : "?",
                    req_describe(r, k, what, sizeof what), why);
    req_fail_key(r, k, why);
}

/* Which task may make a backend call here; raises at config time.  `what`
 * names the call ("pool:" and prefix, e.g. "pool:" "get"). */
static struct task *request_task(lua_State *L, const char *prefix, const char *what)
{
    struct task *t = task_of(L);
    if (t->kind == TASK_MAIN)
        luaL_error(L, "%s%s may only be called at request time", prefix, what);
    return t;
}

static void check_yieldable(lua_State *L, const char *prefix, const char *what)
{
    if (!lua_isyieldable(L))
        luaL_error(L, "%s%s cannot wait here (inside a metamethod or a C function)", prefix,
                   what);
}

/* --- responses ------------------------------------------------------------- */

static bool kind_is_error(int kind)
{
    return reply_is_error((enum mc_resp_kind)kind);
}

/* nuv: 1 for a response whose data is a Lua string, anchored as its user
 * value. */
static struct lresp *resp_new(lua_State *L, int kind, int nuv)
{
    struct lresp *rs = lua_newuserdatauv(L, sizeof *rs, nuv);
    memset(rs, 0, sizeof *rs);
    rs->kind = (uint8_t)kind;
    lua_rawgeti(L, LUA_REGISTRYINDEX, host_of(L)->response_mt_ref);
    lua_setmetatable(L, -2);
    return rs;
}

/* Give a response the line [p, p+n) ("\r\n" appended): inline or in a buffer. */
static void resp_set_line(lua_State *L, struct lresp *rs, const char *p, size_t n)
{
    char *dst = rs->inl;
    if (n + 2 > sizeof rs->inl) {
        rs->buf = buf_new(n + 2);
        if (!rs->buf) luaL_error(L, "out of memory");
        dst = rs->buf->data;
    }
    memcpy(dst, p, n);
    dst[n] = '\r';
    dst[n + 1] = '\n';
    rs->data = dst;
    rs->len = (uint32_t)n + 2;
}

/* The text of an error line, without "SERVER_ERROR " and the line end. */
static void push_error_text(lua_State *L, const char *line, size_t len)
{
    static const char se[] = "SERVER_ERROR ";
    if (len >= 2 && line[len - 2] == '\r') len -= 2;
    else if (len >= 1 && line[len - 1] == '\n') len -= 1;
    if (len >= sizeof se - 1 && memcmp(line, se, sizeof se - 1) == 0) {
        line += sizeof se - 1;
        len -= sizeof se - 1;
    }
    lua_pushlstring(L, line, len);
}

static int resp_gc(lua_State *L)
{
    struct lresp *rs = ltype_check(L, 1, LT_RESPONSE);
    buf_unref(rs->buf);
    rs->buf = NULL;
    return 0;
}

static int resp_index(lua_State *L)
{
    struct lresp *rs = ltype_check(L, 1, LT_RESPONSE);
    const char *f = luaL_checkstring(L, 2);
    bool hit = rs->kind == RESP_VALUE;
    if (!strcmp(f, "status")) lua_pushstring(L, reply_status(rs->kind));
    else if (!strcmp(f, "ok")) lua_pushboolean(L, !kind_is_error(rs->kind));
    else if (!strcmp(f, "hit")) lua_pushboolean(L, hit);
    else if (!strcmp(f, "value") && hit) lua_pushlstring(L, rs->data, rs->bytes);
    else if (!strcmp(f, "flags") && hit) lua_pushinteger(L, rs->flags);
    else if (!strcmp(f, "cas") && hit) lua_pushinteger(L, (lua_Integer)rs->cas);
    else if (!strcmp(f, "number") && rs->kind == RESP_NUMBER)
        lua_pushinteger(L, (lua_Integer)strtoull(rs->data, NULL, 10));
    else if (!strcmp(f, "error") && kind_is_error(rs->kind))
        push_error_text(L, rs->data, rs->len);
    else if (strcmp(f, "value") && strcmp(f, "flags") && strcmp(f, "cas") && strcmp(f, "number") &&
             strcmp(f, "error"))
        return luaL_error(L, "res has no field '%s'", f);
    else lua_pushnil(L); /* a field this kind of response does not have */
    return 1;
}

static int resp_tostring(lua_State *L)
{
    struct lresp *rs = ltype_check(L, 1, LT_RESPONSE);
    if (rs->kind == RESP_VALUE || rs->kind == RESP_END)
        lua_pushfstring(L, "memcache.response(%s)", reply_status(rs->kind));
    else
        lua_pushfstring(L, "memcache.response(%s)",
                        lua_pushlstring(L, rs->data, rs->len > 2 ? rs->len - 2 : 0));
    return 1;
}

static int resp_line_kind(lua_State *L, enum mc_resp_kind kind)
{
    struct lresp *rs = resp_new(L, kind, 0);
    rs->data = reply_line(kind);
    rs->len = (uint32_t)reply_line_len(kind);
    return 1;
}

static int mc_hit(lua_State *L)
{
    size_t n;
    const char *v = luaL_checklstring(L, 1, &n);
    lua_Integer flags = luaL_optinteger(L, 2, 0);
    lua_Integer cas = luaL_optinteger(L, 3, 0);
    luaL_argcheck(L, flags >= 0 && flags <= UINT32_MAX, 2, "flags must fit in 32 bits");
    luaL_argcheck(L, n <= UINT32_MAX - 2, 1, "value too large");
    /* The value stays in its Lua string, anchored to the response, until
     * apply_response copies it into the request.  A buffer here would be
     * held until the garbage collector found the response. */
    struct lresp *rs = resp_new(L, RESP_VALUE, 1);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    rs->data = v;
    rs->bytes = (uint32_t)n;
    rs->flags = (uint32_t)flags;
    rs->cas = (uint64_t)cas;
    return 1;
}

static int mc_miss(lua_State *L) { resp_new(L, RESP_END, 0); return 1; }
static int mc_ok(lua_State *L) { return resp_line_kind(L, RESP_OK); }
static int mc_stored(lua_State *L) { return resp_line_kind(L, RESP_STORED); }
static int mc_not_stored(lua_State *L) { return resp_line_kind(L, RESP_NOT_STORED); }
static int mc_exists(lua_State *L) { return resp_line_kind(L, RESP_EXISTS); }
static int mc_not_found(lua_State *L) { return resp_line_kind(L, RESP_NOT_FOUND); }
static int mc_deleted(lua_State *L) { return resp_line_kind(L, RESP_DELETED); }
static int mc_touched(lua_State *L) { return resp_line_kind(L, RESP_TOUCHED); }

static int mc_number(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0, 1, "must be >= 0");
    char tmp[32];
    int len = snprintf(tmp, sizeof tmp, "%" PRIu64, (uint64_t)n);
    resp_set_line(L, resp_new(L, RESP_NUMBER, 0), tmp, (size_t)len);
    return 1;
}

/* memcache.error(msg): SERVER_ERROR msg, with line breaks made spaces so
 * the reply stays one line. */
static int mc_error(lua_State *L)
{
    size_t n;
    const char *msg = luaL_optlstring(L, 1, "error", &n);
    char tmp[ERROR_MSG_MAX];
    int len = snprintf(tmp, sizeof tmp, "SERVER_ERROR %.*s", (int)(n < 900 ? n : 900), msg);
    for (int i = 0; i < len; i++)
        if (tmp[i] == '\r' || tmp[i] == '\n') tmp[i] = ' ';
    resp_set_line(L, resp_new(L, RESP_SERVER_ERROR, 0), tmp, (size_t)len);
    return 1;
}

/* The number in a meta reply's flag token ("f30" -> 30), or 0. */
static uint64_t unit_number(const struct gw_req *c, const struct mc_meta_resp *u, char letter)
{
    const struct mc_meta_flag *f = mc_meta_resp_flag(u, letter);
    return f ? strtoull(c->rline + f->off + 1, NULL, 10) : 0;
}

/* The kind of response a meta reply to cmd is: what a text client would
 * have been told. */
static int unit_kind(enum mc_cmd cmd, enum mc_meta_resp_kind k)
{
    switch (k) {
    case MRESP_VA: return cmd == MC_META_ARITH ? RESP_NUMBER : RESP_VALUE;
    case MRESP_HD:
        return cmd == MC_META_GET ? RESP_VALUE : cmd == MC_META_SET ? RESP_STORED
             : cmd == MC_META_DELETE ? RESP_DELETED : RESP_OK;
    case MRESP_EN: return RESP_END;
    case MRESP_NS: return RESP_NOT_STORED;
    case MRESP_EX: return RESP_EXISTS;
    case MRESP_NF: return RESP_NOT_FOUND;
    case MRESP_ERROR: return RESP_ERROR;
    case MRESP_CLIENT_ERROR: return RESP_CLIENT_ERROR;
    case MRESP_SERVER_ERROR: return RESP_SERVER_ERROR;
    default: return RESP_OK; /* ME */
    }
}

/* The reply of a finished meta call: the server's unit, kept whole for a
 * meta client, read as the response a text client would have got. */
static void push_unit_response(lua_State *L, struct gw_req *c)
{
    struct mc_meta_resp u;
    if (mc_meta_resp_parse(c->rline, c->rlen, &u) != GW_OK) {
        resp_set_line(L, resp_new(L, RESP_SERVER_ERROR, 0), "SERVER_ERROR bad reply", 22);
        return;
    }
    int kind = unit_kind(c->mc.cmd, u.kind);
    struct lresp *rs = resp_new(L, kind, 0);
    rs->buf = c->rline_buf;
    buf_ref(rs->buf);
    rs->unit = c->rline;
    rs->unit_len = c->rlen;
    if (u.kind == MRESP_VA) {
        rs->data = c->rline + u.data_off;
        rs->bytes = u.bytes;
        rs->len = u.bytes + 2;
        if (u.bytes >= 1024) lua_gc(L, LUA_GCSTEP, (int)(u.bytes / 1024));
    } else if (kind == RESP_VALUE) {
        rs->data = "\r\n"; /* a hit without its value (no v) */
    } else if (kind_is_error(kind)) {
        rs->data = c->rline;
        rs->len = u.line_len;
    } else {
        rs->data = reply_line(kind);
        rs->len = (uint32_t)reply_line_len(kind);
    }
    rs->flags = (uint32_t)unit_number(c, &u, 'f');
    rs->cas = unit_number(c, &u, 'c');
}

/* The reply of a finished call, as a response. */
static void push_call_response(lua_State *L, struct gw_req *c)
{
    if (c->runit) {
        push_unit_response(L, c);
        return;
    }
    const struct gw_key *key = &c->keys[0];
    if (mc_cmd_is_retrieval(c->mc.cmd) && key->state != KEY_ERROR) {
        struct lresp *rs = resp_new(L, key->state == KEY_HIT ? RESP_VALUE : RESP_END, 0);
        if (key->state == KEY_HIT) {
            rs->buf = key->vbuf;
            buf_ref(rs->buf);
            rs->data = key->vdata;
            rs->bytes = key->bytes;
            rs->flags = key->flags;
            rs->cas = key->cas;
            /* The response keeps the value's buffer until the collector
             * frees it, memory Lua does not see: count it as allocated,
             * so the collector comes round in step with what forwarded
             * values hold and not only with Lua's own small objects. */
            if (key->bytes >= 1024) lua_gc(L, LUA_GCSTEP, (int)(key->bytes / 1024));
        }
        return;
    }
    int kind = c->rkind ? c->rkind : RESP_SERVER_ERROR;
    struct lresp *rs = resp_new(L, kind, 0);
    if (!c->rline) {
        resp_set_line(L, rs, "SERVER_ERROR no reply", 21);
    } else if (c->rline_buf) {
        rs->buf = c->rline_buf;
        buf_ref(rs->buf);
        rs->data = c->rline;
        rs->len = c->rlen;
    } else {
        resp_set_line(L, rs, c->rline, c->rlen - 2);
    }
}

/* A meta request answered with a server's meta reply unit (pool:forward):
 * the unit goes to the client as it is, as if the route had named the
 * pool. */
static void relay_unit(struct gw_req *r, const struct lresp *rs)
{
    buf_unref(r->rline_buf);
    r->rline_buf = rs->buf;
    buf_ref(r->rline_buf);
    r->rline = rs->unit;
    r->rlen = rs->unit_len;
    r->runit = true;
    r->rkind = rs->kind;
    r->keys[0].state = rs->kind == RESP_END ? KEY_MISS : kind_is_error(rs->kind) ? KEY_ERROR : KEY_HIT;
    if (kind_is_error(rs->kind)) r->errors = true;
}

/* Answer key k of r, routed by route, with response rs. */
static enum route_result apply_response(const char *route, struct gw_req *r, uint32_t k,
                                        const struct lresp *rs)
{
    if (rs->unit && mc_cmd_is_meta(r->mc.cmd)) {
        relay_unit(r, rs);
        return ROUTE_ANSWERED;
    }
    /* An mg is answered like a get: a value or a miss. */
    bool retrieval = mc_cmd_is_retrieval(r->mc.cmd) || r->mc.cmd == MC_META_GET;
    if (kind_is_error(rs->kind)) {
        if (retrieval) r->keys[k].state = KEY_ERROR;
        r->errors = true;
        req_reply_fmt(r, "%.*s", (int)rs->len - 2, rs->data);
        r->rkind = rs->kind;
        return ROUTE_ANSWERED;
    }
    bool value = rs->kind == RESP_VALUE || rs->kind == RESP_END;
    if (retrieval != value) {
        char why[96];
        snprintf(why, sizeof why, "route answered %s with %s", mc_cmd_name(r->mc.cmd),
                 value ? "a value" : reply_status(rs->kind));
        route_fail(route, r, k, why);
        return ROUTE_FAILED;
    }
    if (retrieval) {
        struct gw_key *key = &r->keys[k];
        if (rs->kind == RESP_END) {
            key->state = KEY_MISS;
            return ROUTE_ANSWERED;
        }
        if (!rs->buf) {
            /* memcache.hit's value: copied with its line end into r's
             * arena, which lives until the reply is written. */
            char *p = req_alloc(r, (size_t)rs->bytes + 2);
            if (!p) {
                route_fail(route, r, k, "out of memory");
                return ROUTE_FAILED;
            }
            memcpy(p, rs->data, rs->bytes);
            memcpy(p + rs->bytes, "\r\n", 2);
            key->vdata = p;
        } else {
            key->vbuf = rs->buf;
            buf_ref(key->vbuf);
            key->vdata = rs->data;
        }
        key->state = KEY_HIT;
        key->flags = rs->flags;
        key->bytes = rs->bytes;
        key->cas = rs->cas;
        return ROUTE_ANSWERED;
    }
    req_reply_fmt(r, "%.*s", (int)rs->len - 2, rs->data);
    r->rkind = rs->kind;
    return ROUTE_ANSWERED;
}

/* --- the request object -------------------------------------------------- */

static struct lreq *check_req(lua_State *L, int arg)
{
    struct lreq *q = ltype_check(L, arg, LT_REQUEST);
    if (!q->r) luaL_error(L, "request is finished (a req is valid only while its route runs)");
    return q;
}

/* The table this config keeps for the request's connection (req.conn),
 * made on first use.  A config keeps its own: a table made under an
 * earlier config (before a reload) lives in that config's state. */
static void push_conn_table(lua_State *L, uint64_t conn_id)
{
    if (!conn_id) {
        lua_pushnil(L);
        return;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, host_of(L)->conns_ref);
    if (lua_rawgeti(L, -1, (lua_Integer)conn_id) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawseti(L, -3, (lua_Integer)conn_id);
    }
    lua_remove(L, -2);
}

/* req.meta's __index: a flag's token (a string), true for a flag without
 * one, nil for a flag not sent; anything but one letter is a mistake. */
static int meta_index(lua_State *L)
{
    size_t n;
    const char *name = lua_tolstring(L, 2, &n);
    if (!name || n != 1 || !((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z')))
        return luaL_error(L, "req.meta has no field '%s' (meta flags are single letters)",
                          name ? name : luaL_typename(L, 2));
    lua_rawget(L, lua_upvalueindex(1));
    return 1;
}

static int meta_newindex(lua_State *L)
{
    return luaL_error(L, "req.meta is read-only");
}

/* req.meta: a meta request's flags as sent, read-only (nil for a text
 * request).  The route reads them, the request goes on with them. */
static void push_meta_table(lua_State *L, const struct gw_req *r)
{
    const struct mc_request *m = &r->mc;
    if (!mc_cmd_is_meta(m->cmd)) {
        lua_pushnil(L);
        return;
    }
    lua_createtable(L, 0, 0);                /* the proxy */
    lua_createtable(L, 0, 3);                /* its metatable */
    lua_createtable(L, 0, 8);                /* the flags */
    uint32_t pos = 0, len;
    const char *tok;
    while (mc_meta_next_flag(r->base + m->args_off, m->args_len, &pos, &tok, &len)) {
        lua_pushlstring(L, tok, 1);
        if (len > 1) lua_pushlstring(L, tok + 1, len - 1);
        else lua_pushboolean(L, 1);
        lua_rawset(L, -3);
    }
    lua_pushcclosure(L, meta_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, meta_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
}

static int req_index(lua_State *L)
{
    struct lreq *q = check_req(L, 1);
    const char *f = luaL_checkstring(L, 2);
    const struct gw_req *r = q->r;
    const struct mc_request *m = &r->mc;
    bool storage = mc_cmd_is_storage(m->cmd);
    bool keyed = q->k < r->nkeys;
    if (!strcmp(f, "key")) {
        if (keyed) lua_pushlstring(L, r->keys[q->k].bkey, r->keys[q->k].bklen);
        else lua_pushnil(L);
    } else if (!strcmp(f, "command")) {
        lua_pushstring(L, mc_cmd_name(m->cmd));
    } else if (!strcmp(f, "args")) {
        if (m->cmd == MC_STATS) lua_pushlstring(L, r->base + m->args_off, m->args_len);
        else lua_pushnil(L);
    } else if (!strcmp(f, "delay")) {
        if (m->cmd == MC_FLUSH_ALL) lua_pushinteger(L, m->delay);
        else lua_pushnil(L);
    } else if (!strcmp(f, "meta")) {
        push_meta_table(L, r);
    } else if (!strcmp(f, "value")) {
        if (storage || m->cmd == MC_META_SET) lua_pushlstring(L, r->base + m->data_off, m->bytes);
        else lua_pushnil(L);
    } else if (!strcmp(f, "flags")) {
        if (storage) lua_pushinteger(L, m->flags);
        else lua_pushnil(L);
    } else if (!strcmp(f, "exptime")) {
        if (storage || m->cmd == MC_TOUCH || m->cmd == MC_GAT || m->cmd == MC_GATS)
            lua_pushinteger(L, m->exptime);
        else lua_pushnil(L);
    } else if (!strcmp(f, "cas")) {
        if (m->cmd == MC_CAS) lua_pushinteger(L, (lua_Integer)m->cas);
        else lua_pushnil(L);
    } else if (!strcmp(f, "delta")) {
        if (m->cmd == MC_INCR || m->cmd == MC_DECR) lua_pushinteger(L, (lua_Integer)m->delta);
        else lua_pushnil(L);
    } else if (!strcmp(f, "noreply")) {
        lua_pushboolean(L, m->noreply);
    } else if (!strcmp(f, "conn")) {
        push_conn_table(L, r->conn_id);
    } else if (!strcmp(f, "user")) {
        if (r->user) lua_pushstring(L, r->user);
        else lua_pushnil(L);
    } else if (!strcmp(f, "listener")) {
        if (r->listener) lua_pushstring(L, *r->listener);
        else lua_pushnil(L);
    } else {
        /* A misspelled field is a mistake to report, not a nil to route on. */
        return luaL_error(L, "req has no field '%s'", f);
    }
    return 1;
}

static int req_newindex(lua_State *L)
{
    struct lreq *q = check_req(L, 1);
    const char *f = luaL_checkstring(L, 2);
    struct gw_req *r = q->r;
    if (!strcmp(f, "key") && q->k < r->nkeys) {
        size_t len;
        const char *k = luaL_checklstring(L, 3, &len);
        /* A meta or binary request's key may hold any byte: it goes to
         * the server in base64 when it is no text key (be_meta.h). */
        if (!mc_cmd_is_meta(r->mc.cmd) && !r->mc.binary) check_key(L, k, len, 0, "req.key");
        else if (len < 1 || len > MC_KEY_MAX) luaL_error(L, "req.key: a key is 1..250 bytes");
        char *p = req_alloc(r, len);
        if (!p) return luaL_error(L, "out of memory");
        memcpy(p, k, len);
        r->keys[q->k].bkey = p;
        r->keys[q->k].bklen = (uint16_t)len;
        return 0;
    }
    bool gat = r->mc.cmd == MC_GAT || r->mc.cmd == MC_GATS;
    if (!strcmp(f, "exptime") && (mc_cmd_is_storage(r->mc.cmd) || r->mc.cmd == MC_TOUCH || gat)) {
        r->mc.exptime = luaL_checkinteger(L, 3);
        return 0;
    }
    if (!strcmp(f, "flags") && mc_cmd_is_storage(r->mc.cmd)) {
        lua_Integer v = luaL_checkinteger(L, 3);
        luaL_argcheck(L, v >= 0 && v <= UINT32_MAX, 3, "flags must fit in 32 bits");
        r->mc.flags = (uint32_t)v;
        return 0;
    }
    return luaL_error(L, "req.%s cannot be set", f);
}

static int req_tostring(lua_State *L)
{
    struct lreq *q = ltype_check(L, 1, LT_REQUEST);
    if (!q->r) lua_pushliteral(L, "memcache.request(finished)");
    else if (q->k >= q->r->nkeys) lua_pushfstring(L, "memcache.request(%s)", mc_cmd_name(q->r->mc.cmd));
    else lua_pushfstring(L, "memcache.request(%s %s)", mc_cmd_name(q->r->mc.cmd),
                         lua_pushlstring(L, q->r->keys[q->k].bkey, q->r->keys[q->k].bklen));
    return 1;
}

/* --- backend calls ------------------------------------------------------- */

static void call_done(struct gw_req *c)
{
    struct task *t = c->ctx;
    if (t->h->closing || !t->suspended || t->call != c) return;
    task_wake(t);
}

/* A call request for `key`, or NULL (out of memory). */
static struct gw_req *call_new(struct lhost *h, const struct mc_request *mc, const char *key,
                               size_t klen)
{
    struct gw_req *c = req_new(h->rt, NULL, NULL, mc);
    if (!c) return NULL;
    c->res = &h->res;
    resolver_hold(c->res);
    char *kcopy = req_alloc(c, klen);
    if (!kcopy) {
        req_unref(c);
        return NULL;
    }
    memcpy(kcopy, key, klen);
    c->nkeys = 1;
    req_key_init(c, 0, kcopy, (uint32_t)klen);
    return c;
}

/* Send call c to pool p and wait for it: finish with k at once if it is
 * already done, else suspend the task until call_done. */
static int call_start(lua_State *L, struct task *t, struct pool *p, struct gw_req *c,
                      lua_KFunction k)
{
    struct lhost *h = t->h;
    c->on_done = call_done;
    c->ctx = t;
    c->peer = t->q->peer;
    c->pending = 1;
    t->call = c;
    STAT_INC(&h->rt->stats, gw_lua_calls);
    router_send(p, c, 0);
    req_op_done(c);
    if (c->done) return k(L, LUA_OK, 0);
    t->suspended = true;
    return lua_yieldk(L, 0, 0, k);
}

static struct gw_req *call_take(lua_State *L)
{
    struct task *t = task_of(L);
    struct gw_req *c = t->call;
    t->call = NULL;
    return c;
}

/* nil, err for a failed call (from its SERVER_ERROR/CLIENT_ERROR line). */
static int push_call_error(lua_State *L, const struct gw_req *c)
{
    lua_pushnil(L);
    if (c->rline) push_error_text(L, c->rline, c->rlen);
    else lua_pushliteral(L, "no reply");
    return 2;
}

/* value, flags, cas | nil (miss) | nil, err */
static int get_result(lua_State *L, int status, lua_KContext ctx)
{
    struct gw_req *c = call_take(L);
    const struct gw_key *key = &c->keys[0];
    int n;
    if (key->state == KEY_HIT) {
        lua_pushlstring(L, key->vdata, key->bytes);
        lua_pushinteger(L, key->flags);
        lua_pushinteger(L, (lua_Integer)key->cas);
        n = 3;
    } else if (key->state == KEY_MISS) {
        lua_pushnil(L);
        n = 1;
    } else {
        n = push_call_error(L, c);
    }
    req_unref(c);
    return n;
}

/* true | false, "NOT_STORED"/"EXISTS"/"NOT_FOUND" | n (incr/decr) | nil, err */
static int line_result(lua_State *L, int status, lua_KContext ctx)
{
    struct gw_req *c = call_take(L);
    int n = 1;
    switch (c->rkind) {
    case RESP_STORED:
    case RESP_DELETED:
    case RESP_TOUCHED:
        lua_pushboolean(L, 1);
        break;
    case RESP_NOT_STORED:
    case RESP_EXISTS:
    case RESP_NOT_FOUND:
        lua_pushboolean(L, 0);
        lua_pushstring(L, reply_status(c->rkind));
        n = 2;
        break;
    case RESP_NUMBER: {
        uint64_t v = strtoull(c->rline, NULL, 10);
        if (v <= (uint64_t)LUA_MAXINTEGER) lua_pushinteger(L, (lua_Integer)v);
        else lua_pushnumber(L, (lua_Number)v);
        break;
    }
    default:
        n = push_call_error(L, c);
        break;
    }
    req_unref(c);
    return n;
}

/* res | res, err (res an error response) */
static int forward_result(lua_State *L, int status, lua_KContext ctx)
{
    struct gw_req *c = call_take(L);
    push_call_response(L, c);
    int n = 1;
    struct lresp *rs = lua_touserdata(L, -1);
    if (kind_is_error(rs->kind)) {
        push_error_text(L, rs->data, rs->len);
        n = 2;
    }
    req_unref(c);
    return n;
}

static uint32_t check_flags(lua_State *L, int arg)
{
    lua_Integer v = luaL_optinteger(L, arg, 0);
    luaL_argcheck(L, v >= 0 && v <= UINT32_MAX, arg, "flags must fit in 32 bits");
    return (uint32_t)v;
}

/* pool:<cmd>(key, ...): check the arguments, make the call, wait. */
static int pool_call(lua_State *L, enum mc_cmd cmd)
{
    struct lpool *lp = ltype_check(L, 1, LT_POOL);
    const char *what = mc_cmd_name(cmd);
    struct task *t = request_task(L, "pool:", what);
    size_t klen, vlen = 0;
    const char *key = luaL_checklstring(L, 2, &klen);
    check_key(L, key, klen, 2, NULL);
    struct mc_request mc;
    memset(&mc, 0, sizeof mc);
    /* get and gat are asked as gets and gats: the caller gets the cas. */
    mc.cmd = cmd == MC_GET ? MC_GETS : cmd == MC_GAT ? MC_GATS : cmd;
    mc.nkeys = 1;
    const char *value = NULL;
    if (mc_cmd_is_storage(cmd)) {
        value = luaL_checklstring(L, 3, &vlen);
        luaL_argcheck(L, vlen <= UINT32_MAX - 2, 3, "value too large");
        int a = 4;
        if (cmd == MC_CAS) {
            lua_Integer cas = luaL_checkinteger(L, a++);
            mc.cas = (uint64_t)cas;
        }
        mc.exptime = luaL_optinteger(L, a, 0);
        mc.flags = check_flags(L, a + 1);
        mc.bytes = (uint32_t)vlen;
    } else if (cmd == MC_GAT || cmd == MC_TOUCH) {
        mc.exptime = luaL_checkinteger(L, 3);
    } else if (cmd == MC_INCR || cmd == MC_DECR) {
        lua_Integer d = luaL_checkinteger(L, 3);
        luaL_argcheck(L, d >= 0, 3, "delta must be >= 0");
        mc.delta = (uint64_t)d;
    }
    if (lp->p->kind != POOL_INTERNAL) check_yieldable(L, "pool:", what);
    struct gw_req *c = call_new(t->h, &mc, key, klen);
    if (c && value) {
        /* The value goes out from a buffer of its own with its "\r\n": the
         * Lua string may be collected before the call is written. */
        c->in = buf_new(vlen + 2);
        if (c->in) {
            memcpy(c->in->data, value, vlen);
            c->in->data[vlen] = '\r';
            c->in->data[vlen + 1] = '\n';
            c->base = c->in->data;
        }
    }
    if (!c || (value && !c->in)) {
        if (c) req_unref(c);
        lua_pushnil(L);
        lua_pushliteral(L, "out of memory");
        return 2;
    }
    return call_start(L, t, lp->p, c, mc_cmd_is_retrieval(cmd) ? get_result : line_result);
}

/* --- pool:mg: the meta get --------------------------------------------- */

/* Flag letters of an mg reply and the fields they become in its table:
 * numbers, strings, or true for a flag without a token. */
static void push_meta_flag(lua_State *L, const char *base, const struct mc_meta_flag *f)
{
    const char *tok = base + f->off + 1;
    size_t n = f->len - 1;
    char num[24];
    switch (f->letter) {
    case 't': case 'c': case 'f': case 's': case 'l': {
        static const char *const names[] = { ['t' - 'c'] = "ttl", ['c' - 'c'] = "cas",
                                             ['f' - 'c'] = "flags", ['s' - 'c'] = "size",
                                             ['l' - 'c'] = "last_access" };
        if (n == 0 || n >= sizeof num) return;
        memcpy(num, tok, n);
        num[n] = '\0';
        if (!lua_stringtonumber(L, num)) return;
        lua_setfield(L, -2, names[f->letter - 'c']);
        return;
    }
    case 'h': lua_pushboolean(L, n == 1 && tok[0] == '1'); lua_setfield(L, -2, "fetched"); return;
    case 'k': lua_pushlstring(L, tok, n); lua_setfield(L, -2, "key"); return;
    case 'O': lua_pushlstring(L, tok, n); lua_setfield(L, -2, "opaque"); return;
    case 'W': lua_pushboolean(L, 1); lua_setfield(L, -2, "win"); return;
    case 'X': lua_pushboolean(L, 1); lua_setfield(L, -2, "stale"); return;
    case 'Z': lua_pushboolean(L, 1); lua_setfield(L, -2, "win_sent"); return;
    default: return;
    }
}

/* { value =, ttl =, cas =, flags =, ... } | nil (miss) | nil, err */
static int mg_result(lua_State *L, int status, lua_KContext ctx)
{
    struct gw_req *c = call_take(L);
    int n = 1;
    struct mc_meta_resp u;
    if (c->keys[0].state == KEY_MISS) {
        lua_pushnil(L);
    } else if (c->keys[0].state == KEY_HIT && c->rline &&
               mc_meta_resp_parse(c->rline, c->rlen, &u) == GW_OK) {
        lua_createtable(L, 0, 6);
        if (u.kind == MRESP_VA) {
            lua_pushlstring(L, c->rline + u.data_off, u.bytes);
            lua_setfield(L, -2, "value");
        }
        for (uint32_t i = 0; i < u.nflags; i++) push_meta_flag(L, c->rline, &u.flags[i]);
    } else {
        n = push_call_error(L, c);
    }
    req_unref(c);
    return n;
}

/* A meta call's line (line[0..len), "mg <key> <flags>" or "ms <key> 0
 * <flags>" and an empty data block) checked as memcached would check it:
 * its error raises, naming the flags fl.  Then the pool must speak meta
 * (not memcache.internal) and the caller be able to wait. */
static void check_meta_call(lua_State *L, const struct lpool *lp, const char *what,
                            const char *line, int len, const char *fl)
{
    struct mc_parser p;
    mc_parser_init(&p, (size_t)len + 1, 0);
    p.binary_keys = host_binary_keys(task_of(L)->h);
    struct mc_meta_request m;
    if (mc_meta_parse(&p, line, (size_t)len, &m) != GW_OK)
        luaL_error(L, "pool:%s: flags \"%s\": %s", what, fl, m.error ? m.error : "incomplete");
    if (lp->p->kind == POOL_INTERNAL)
        luaL_error(L, "pool:%s: a memcache.internal pool does not speak meta", what);
    if (lp->p->text_only)
        luaL_error(L, "pool:%s: pool %s speaks only the text protocol (protocol = \"text\")", what,
                   lp->p->name);
    check_yieldable(L, "pool:", what);
}

/* pool:mg(key [, flags]): memcached's meta get, with its protocol's flags
 * ("v t c f"; "v" when none are given). */
static int pool_mg(lua_State *L)
{
    struct lpool *lp = ltype_check(L, 1, LT_POOL);
    struct task *t = request_task(L, "pool:", "mg");
    size_t klen, flen;
    const char *key = luaL_checklstring(L, 2, &klen);
    check_key(L, key, klen, 2, NULL);
    const char *fl = luaL_optlstring(L, 3, "v", &flen);
    /* q and b are refused: a quiet miss has no reply to wait for, and the
     * key given is the key, not base64. */
    luaL_argcheck(L, flen <= 500, 3, "flags too long");
    luaL_argcheck(L, !memchr(fl, 'q', flen) && !memchr(fl, 'b', flen), 3,
                  "q and b cannot be asked here");
    char line[MC_KEY_MAX + 512];
    int len = snprintf(line, sizeof line, "mg %.*s %s\r\n", (int)klen, key, fl);
    check_meta_call(L, lp, "mg", line, len, fl);
    struct mc_request mc;
    memset(&mc, 0, sizeof mc);
    mc.cmd = MC_META_GET;
    mc.nkeys = 1;
    mc.args_len = (uint32_t)flen;
    struct gw_req *c = call_new(t->h, &mc, key, klen);
    char *args = c ? req_alloc(c, flen ? flen : 1) : NULL;
    if (!args) {
        if (c) req_unref(c);
        lua_pushnil(L);
        lua_pushliteral(L, "out of memory");
        return 2;
    }
    memcpy(args, fl, flen);
    c->base = args; /* args_off 0 */
    return call_start(L, t, lp->p, c, mg_result);
}

/* --- pool:ms: the meta set ---------------------------------------------- */

/* true [, info] | false, "NOT_STORED"/"EXISTS"/"NOT_FOUND" [, info] |
 * nil, err; info: the flags the reply carries (c, k, O, ...) as pool:mg's
 * table, when it carries any. */
static int ms_result(lua_State *L, int status, lua_KContext ctx)
{
    struct gw_req *c = call_take(L);
    struct mc_meta_resp u;
    int n;
    if (c->keys[0].state == KEY_HIT && c->rline &&
        mc_meta_resp_parse(c->rline, c->rlen, &u) == GW_OK) {
        static const char *const why[MRESP_KIND_COUNT] = {
            [MRESP_NS] = "NOT_STORED", [MRESP_EX] = "EXISTS", [MRESP_NF] = "NOT_FOUND",
        };
        lua_pushboolean(L, u.kind == MRESP_HD);
        n = 1;
        if (why[u.kind]) {
            lua_pushstring(L, why[u.kind]);
            n++;
        }
        if (u.nflags > 0) {
            lua_createtable(L, 0, (int)u.nflags);
            for (uint32_t i = 0; i < u.nflags; i++) push_meta_flag(L, c->rline, &u.flags[i]);
            n++;
        }
    } else {
        n = push_call_error(L, c);
    }
    req_unref(c);
    return n;
}

/* The options table of pool:ms, as meta flags: letter = value (a number
 * or string token) or true (a flag alone), in a fixed order. */
static size_t ms_flags(lua_State *L, int arg, char *out, size_t cap)
{
    static const char letters[] = "TFCEINMOkc";
    size_t n = 0;
    if (lua_isnoneornil(L, arg)) return 0;
    luaL_checktype(L, arg, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, arg)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        if (!k || strlen(k) != 1 || !strchr(letters, k[0]))
            luaL_error(L, "pool:ms: option %s is not a meta set flag (T F C E I N M O k c)",
                       k ? k : luaL_typename(L, -2));
        lua_pop(L, 1);
    }
    for (const char *l = letters; *l; l++) {
        char name[2] = { *l, 0 };
        int t = lua_getfield(L, arg, name);
        size_t len = 0;
        const char *tok = "";
        if (t == LUA_TNUMBER || t == LUA_TSTRING) tok = lua_tolstring(L, -1, &len);
        else if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) t = LUA_TNIL;
        else if (t != LUA_TBOOLEAN && t != LUA_TNIL)
            luaL_error(L, "pool:ms: option %s must be a number, a string or true", name);
        if (t != LUA_TNIL) {
            if (n + len + 2 > cap) luaL_error(L, "pool:ms: options too long");
            if (n) out[n++] = ' ';
            out[n++] = *l;
            memcpy(out + n, tok, len);
            n += len;
        }
        lua_pop(L, 1);
    }
    return n;
}

/* pool:ms(key, value [, options]): memcached's meta set; options are its
 * flags as a table ({ T = 30, I = true, M = "A", C = cas, ... }), checked
 * as memcached checks them. */
static int pool_ms(lua_State *L)
{
    struct lpool *lp = ltype_check(L, 1, LT_POOL);
    struct task *t = request_task(L, "pool:", "ms");
    size_t klen, vlen;
    const char *key = luaL_checklstring(L, 2, &klen);
    check_key(L, key, klen, 2, NULL);
    const char *value = luaL_checklstring(L, 3, &vlen);
    luaL_argcheck(L, vlen <= UINT32_MAX - 2, 3, "value too large");
    char fl[400];
    size_t flen = ms_flags(L, 4, fl, sizeof fl - 1);
    fl[flen] = '\0';
    char line[MC_KEY_MAX + 512];
    int len = snprintf(line, sizeof line, "ms %.*s 0%s%s\r\n\r\n", (int)klen, key,
                       flen ? " " : "", fl);
    check_meta_call(L, lp, "ms", line, len, fl);
    struct mc_request mc;
    memset(&mc, 0, sizeof mc);
    mc.cmd = MC_META_SET;
    mc.nkeys = 1;
    mc.bytes = (uint32_t)vlen;
    mc.args_off = (uint32_t)vlen + 2;
    mc.args_len = (uint32_t)flen;
    struct gw_req *c = call_new(t->h, &mc, key, klen);
    /* One buffer of its own: the value and its "\r\n", then the flags. */
    if (c && (c->in = buf_new(vlen + 2 + flen))) {
        memcpy(c->in->data, value, vlen);
        memcpy(c->in->data + vlen, "\r\n", 2);
        memcpy(c->in->data + vlen + 2, fl, flen);
        c->base = c->in->data;
    }
    if (!c || !c->in) {
        if (c) req_unref(c);
        lua_pushnil(L);
        lua_pushliteral(L, "out of memory");
        return 2;
    }
    return call_start(L, t, lp->p, c, ms_result);
}

static int pool_get(lua_State *L) { return pool_call(L, MC_GET); }
static int pool_gat(lua_State *L) { return pool_call(L, MC_GAT); }
static int pool_set(lua_State *L) { return pool_call(L, MC_SET); }
static int pool_add(lua_State *L) { return pool_call(L, MC_ADD); }
static int pool_replace(lua_State *L) { return pool_call(L, MC_REPLACE); }
static int pool_append(lua_State *L) { return pool_call(L, MC_APPEND); }
static int pool_prepend(lua_State *L) { return pool_call(L, MC_PREPEND); }
static int pool_cas(lua_State *L) { return pool_call(L, MC_CAS); }
static int pool_delete(lua_State *L) { return pool_call(L, MC_DELETE); }
static int pool_incr(lua_State *L) { return pool_call(L, MC_INCR); }
static int pool_decr(lua_State *L) { return pool_call(L, MC_DECR); }
static int pool_touch(lua_State *L) { return pool_call(L, MC_TOUCH); }

/* pool:forward(req): the client's request (its key as the route set it)
 * sent to pool; the reply comes back as a response, its value still in the
 * backend's buffer. */
static int pool_forward(lua_State *L)
{
    struct lpool *lp = ltype_check(L, 1, LT_POOL);
    struct task *t = request_task(L, "pool:", "forward");
    struct lreq *q = check_req(L, 2);
    if (lp->p->kind != POOL_INTERNAL) check_yieldable(L, "pool:", "forward");
    struct gw_req *r = q->r;
    const struct gw_key *key = &r->keys[q->k];
    struct gw_req *c = call_new(t->h, &r->mc, key->bkey, key->bklen);
    if (!c) {
        resp_set_line(L, resp_new(L, RESP_SERVER_ERROR, 0), "SERVER_ERROR out of memory", 26);
        lua_pushliteral(L, "out of memory");
        return 2;
    }
    c->mc.noreply = false;
    /* A meta request's base64 key goes as the client sent it only while
     * the route left the key alone (be_text.c). */
    if (key->bkey != key->ckey) c->mc.binary_key = false;
    c->in = r->in;
    if (c->in) buf_ref(c->in);
    c->base = r->base;
    return call_start(L, t, lp->p, c, forward_result);
}

static const luaL_Reg pool_calls[] = {
    { "get", pool_get }, { "gat", pool_gat }, { "set", pool_set }, { "add", pool_add },
    { "replace", pool_replace }, { "append", pool_append }, { "prepend", pool_prepend },
    { "cas", pool_cas }, { "delete", pool_delete }, { "incr", pool_incr },
    { "decr", pool_decr }, { "touch", pool_touch }, { "forward", pool_forward },
    { "mg", pool_mg }, { "ms", pool_ms },
    { NULL, NULL },
};

/* --- fan-out: memcache.wait and memcache.spawn ---------------------------- */

static void group_on_timer(void *data, int events);

static struct group *group_new(struct lhost *h)
{
    struct group *g = h->free_groups;
    if (g) {
        h->free_groups = g->next;
    } else {
        g = calloc(1, sizeof *g);
        if (!g) return NULL;
        g->h = h;
        g->timer = gw_timer_new(h->rt->loop, group_on_timer, g);
        if (!g->timer) {
            free(g);
            return NULL;
        }
        g->all_next = h->all_groups;
        h->all_groups = g;
    }
    g->parent = NULL;
    g->results_ref = LUA_NOREF;
    g->ntasks = g->done = g->good = 0;
    g->need = -1;
    g->refs = 1;
    g->finished = g->timed_out = false;
    return g;
}

static void group_unref(struct group *g)
{
    if (--g->refs > 0) return;
    struct lhost *h = g->h;
    gw_timer_stop(g->timer);
    luaL_unref(h->L, LUA_REGISTRYINDEX, g->results_ref);
    g->results_ref = LUA_NOREF;
    g->next = h->free_groups;
    h->free_groups = g;
}

static bool group_met(const struct group *g)
{
    if (g->timed_out) return true;
    if (g->need < 0) return g->done == g->ntasks;
    return g->good >= g->need || g->good + (g->ntasks - g->done) < g->need;
}

/* The wait is over: wake the task in memcache.wait, if it is waiting yet. */
static void group_finish(struct group *g)
{
    g->finished = true;
    gw_timer_stop(g->timer);
    struct task *p = g->parent;
    if (p && p->suspended && p->waiting == g && !g->h->closing) task_wake(p);
}

static void group_on_timer(void *data, int events)
{
    struct group *g = data;
    if (g->finished) return;
    g->timed_out = true;
    group_finish(g);
}

/* Sub task t ended (st, with nres results or an error on its stack). */
static void group_task_ended(struct task *t, int st, int nres)
{
    struct group *g = t->group;
    struct lhost *h = t->h;
    lua_State *L = h->L;
    g->done++;
    bool good = st == LUA_OK && nres > 0 && lua_toboolean(t->co, -nres);
    if (good) g->good++;
    if (!g->finished) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, g->results_ref);
        if (st == LUA_OK) {
            lua_createtable(L, nres, 1);
            lua_xmove(t->co, L, nres);
            for (int i = nres; i >= 1; i--) lua_rawseti(L, -(i + 1), i);
            lua_pushinteger(L, nres);
            lua_setfield(L, -2, "n");
        } else {
            lua_createtable(L, 2, 1);
            lua_pushvalue(t->co, -1);
            lua_xmove(t->co, L, 1);
            lua_rawseti(L, -2, 2);
            lua_pushinteger(L, 2);
            lua_setfield(L, -2, "n");
        }
        lua_rawseti(L, -2, t->index);
        lua_pop(L, 1);
        if (group_met(g)) group_finish(g);
    }
    group_unref(g);
}

/* Sub task t was ended by its quota: it counts as done, with no result. */
static void group_task_abandoned(struct task *t)
{
    struct group *g = t->group;
    g->done++;
    if (!g->finished && group_met(g)) group_finish(g);
    group_unref(g);
}

/* results, err -- after the wait is over. */
static int wait_result(lua_State *L, int status, lua_KContext ctx)
{
    struct task *t = task_of(L);
    struct group *g = t->waiting;
    t->waiting = NULL;
    lua_rawgeti(L, LUA_REGISTRYINDEX, g->results_ref);
    lua_pushinteger(L, g->good);
    lua_setfield(L, -2, "good");
    g->parent = NULL;
    if (g->timed_out) {
        lua_pushliteral(L, "timeout");
    } else if (g->need >= 0 && g->good < g->need) {
        lua_pushfstring(L, "only %d of %d tasks succeeded", g->good, g->ntasks);
    } else {
        lua_pushnil(L);
    }
    group_unref(g);
    return 2;
}

/* Can the running task's quota start n more tasks?  Raises if not, before
 * anything is started. */
static void check_room(lua_State *L, struct task *t, lua_Integer n, const char *fname)
{
    uint32_t limit = t->h->cfg.settings.task_limit;
    if (limit && t->q->started + (uint64_t)n > limit)
        luaL_error(L, "%s: too many tasks for one route call (task_limit = %d)", fname, (int)limit);
    uint64_t live = t->h->rt->stats.gw_lua_tasks;
    if (gw_settings.max_tasks && live + (uint64_t)n > gw_settings.max_tasks)
        luaL_error(L, "%s: too many Lua tasks on this worker (max_tasks = %d)", fname,
                   (int)gw_settings.max_tasks);
}

/* memcache.wait(tasks, { need = n, timeout = seconds }) */
static int mc_wait(lua_State *L)
{
    struct task *t = request_task(L, "memcache.", "wait");
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 1);
    luaL_argcheck(L, n >= 0 && n <= 4096, 1, "at most 4096 tasks");
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_geti(L, 1, i) != LUA_TFUNCTION)
            luaL_error(L, "bad argument #1 to 'memcache.wait' (task %d is not a function)", (int)i);
        lua_pop(L, 1);
    }
    lua_Integer need = -1;
    double timeout = 0;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_getfield(L, 2, "need");
        if (!lua_isnil(L, -1)) {
            need = luaL_checkinteger(L, -1);
            luaL_argcheck(L, need >= 0 && need <= n, 2, "need must be from 0 to #tasks");
        }
        lua_getfield(L, 2, "timeout");
        if (!lua_isnil(L, -1)) {
            timeout = luaL_checknumber(L, -1);
            luaL_argcheck(L, timeout > 0, 2, "timeout must be > 0 seconds");
        }
        lua_pop(L, 2);
    }
    check_yieldable(L, "memcache.", "wait");
    check_room(L, t, n, "memcache.wait");
    struct lhost *h = t->h;
    /* What may raise (allocations) comes before the group is taken. */
    lua_createtable(L, (int)n, 1);
    int results_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    struct group *g = group_new(h);
    if (!g) {
        luaL_unref(L, LUA_REGISTRYINDEX, results_ref);
        return luaL_error(L, "out of memory");
    }
    g->results_ref = results_ref;
    g->parent = t;
    g->ntasks = (int)n;
    g->need = (int)need;
    t->waiting = g;
    for (lua_Integer i = 1; i <= n; i++) {
        const char *why;
        struct task *sub = task_new(h, TASK_SUB, t->q, &why);
        if (!sub) {
            g->ntasks = (int)i - 1;
            break;
        }
        sub->group = g;
        sub->index = (int)i;
        g->refs++;
        lua_geti(L, 1, i);
        lua_xmove(L, sub->co, 1);
        task_resume(sub, L, 0);
    }
    if (!g->finished && group_met(g)) g->finished = true;
    if (g->finished) return wait_result(L, LUA_OK, 0);
    if (timeout > 0) gw_timer_start(g->timer, timeout);
    t->suspended = true;
    return lua_yieldk(L, 0, 0, wait_result);
}

/* memcache.spawn(fn, ...): run fn(...) as a background task. */
static int mc_spawn(lua_State *L)
{
    struct task *t = request_task(L, "memcache.", "spawn");
    luaL_checktype(L, 1, LUA_TFUNCTION);
    check_room(L, t, 1, "memcache.spawn");
    int nargs = lua_gettop(L) - 1;
    const char *why;
    struct task *bg = task_new(t->h, TASK_SPAWN, t->q, &why);
    if (!bg) return luaL_error(L, "memcache.spawn: %s", why);
    lua_xmove(L, bg->co, nargs + 1);
    task_resume(bg, L, nargs);
    return 0;
}

static int mc_crc32(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    lua_pushinteger(L, hash_crc32(s, n));
    return 1;
}

static const luaL_Reg request_api[] = {
    { "hit", mc_hit }, { "miss", mc_miss }, { "stored", mc_stored },
    { "not_stored", mc_not_stored }, { "exists", mc_exists }, { "not_found", mc_not_found },
    { "deleted", mc_deleted }, { "touched", mc_touched }, { "number", mc_number },
    { "error", mc_error }, { "ok", mc_ok }, { "wait", mc_wait }, { "spawn", mc_spawn },
    { "crc32", mc_crc32 },
    { NULL, NULL },
};

/* --- running tasks -------------------------------------------------------- */

/* What a finished route returned: a pool, or a response that answers key k. */
static enum route_result route_outcome(struct task *t, int st, int nres)
{
    struct gw_req *r = t->req;
    if (st != LUA_OK) {
        const char *msg = task_error(t);
        size_t n = strcspn(msg, "\r\n"); /* the first line, at most 160 bytes */
        char why[200];
        snprintf(why, sizeof why, "lua error: %.*s", (int)(n > 160 ? 160 : n), msg);
        log_strip_dirs(why);
        req_fail_key(r, t->k, why);
        return ROUTE_FAILED;
    }
    if (nres > 0) {
        struct lpool *lp = ltype_test(t->co, -nres, LT_POOL);
        if (lp) {
            t->pool = lp->p;
            return ROUTE_POOL;
        }
        struct lresp *rs = ltype_test(t->co, -nres, LT_RESPONSE);
        if (rs) return apply_response(t->q->route_name, r, t->k, rs);
    }
    route_fail(t->q->route_name, r, t->k, "route returned no pool or response");
    return ROUTE_FAILED;
}

/* The request waiting on route task t is answered with why: key k fails. */
static void route_give_up(struct task *t, const char *why)
{
    struct gw_req *r = t->req;
    if (!t->holds_req) return;
    route_fail(t->q->route_name, r, t->k, why);
    t->holds_req = false;
    t->lreq->r = NULL;
    t->q->route = NULL;
    req_op_done(r);
    req_unref(r);
}

/* Task t stopped other than by suspending. */
static void task_ended(struct task *t, int st, int nres)
{
    switch (t->kind) {
    case TASK_ROUTE:
        if (t->async && !t->holds_req) {
            /* Its request was answered when its quota expired. */
            if (st != LUA_OK) task_error(t);
            break;
        }
        t->outcome = route_outcome(t, st, nres);
        t->lreq->r = NULL;
        t->q->route = NULL;
        if (t->async) {
            /* The request has been waiting on this route: finish key k. */
            struct gw_req *r = t->req;
            t->holds_req = false;
            if (t->outcome == ROUTE_POOL) router_send(t->pool, r, t->k);
            task_free(t, st != LUA_OK);
            req_op_done(r);
            req_unref(r);
        }
        /* else ltask_route reads the outcome and frees the task */
        return;
    case TASK_SUB:
        if (st != LUA_OK) task_error(t);
        group_task_ended(t, st, nres);
        break;
    default:
        if (st != LUA_OK) task_error(t);
        break;
    }
    task_free(t, st != LUA_OK);
}

/* A task of an expired quota was waiting: end it where it stands instead
 * of resuming it, letting go of what it waited on. */
static void task_abandon(struct task *t)
{
    LOG_VERBOSE("lua: a task ends waiting: %s", t->q->why);
    if (t->call) {
        req_unref(t->call);
        t->call = NULL;
    }
    if (t->waiting) {
        struct group *g = t->waiting;
        t->waiting = NULL;
        g->parent = NULL;
        group_unref(g);
    }
    if (t->kind == TASK_ROUTE) route_give_up(t, t->q->why);
    else if (t->kind == TASK_SUB) group_task_abandoned(t);
    task_free(t, true);
}

/* What t waited on is done: resume it, or end it if its quota expired
 * meanwhile (its deadline passed while it waited). */
static void task_wake(struct task *t)
{
    t->suspended = false;
    if (!t->q->expired && t->q->deadline > 0 && loop_now(t->h) > t->q->deadline) {
        t->q->expired = true;
        t->q->why = t->q->timeout_why;
    }
    if (t->q->expired) task_abandon(t);
    else task_resume(t, NULL, 0);
}

/* The deadline of a quota whose task waits: the request waiting on its
 * route is answered now; its tasks end when they would resume. */
static void quota_on_timer(void *data, int events)
{
    struct quota *q = data;
    if (q->expired || q->deadline == 0) return;
    double left = q->deadline - loop_now(q->h);
    if (left > 0.0005) {
        gw_timer_start(q->timer, left);
        return;
    }
    q->expired = true;
    q->why = q->timeout_why;
    if (q->route) route_give_up(q->route, q->why);
}

/* Run t until it ends or suspends.  Memory limits apply only while Lua
 * code runs (h->in_lua): the bookkeeping around it never fails on them. */
static void task_resume(struct task *t, lua_State *from, int nargs)
{
    struct lhost *h = t->h;
    int saved = h->in_lua;
    h->in_lua = 1;
    int nres = 0;
    int st = lua_resume(t->co, from, nargs, &nres);
    h->in_lua = 0;
    if (st == LUA_YIELD) {
        if (t->suspended) {
            quota_arm(t->q);
            h->in_lua = saved;
            return;
        }
        lua_pushliteral(t->co, "yield outside a backend call");
        st = LUA_ERRRUN;
    }
    task_ended(t, st, nres);
    h->in_lua = saved;
}

/* The pools the keyless hook returned (a pool or a list of pools at the
 * top of co's stack), into r's arena; each must be among allowed[0..n)
 * when n >= 0.  NULL, with why, if not. */
static struct pool **hook_pools(lua_State *co, struct gw_req *r, struct pool **allowed, int n,
                                int *count, const char **why)
{
    bool one = ltype_test(co, -1, LT_POOL) != NULL;
    lua_Integer len = one ? 1 : luaL_len(co, -1);
    struct pool **out = (struct pool **)req_alloc(r, sizeof *out * (size_t)(len ? len : 1));
    if (!out) {
        *why = "out of memory";
        return NULL;
    }
    for (lua_Integer i = 1; i <= len; i++) {
        if (!one) lua_geti(co, -1, i);
        struct lpool *lp = ltype_test(co, -1, LT_POOL);
        if (!one) lua_pop(co, 1);
        if (!lp) {
            *why = "the keyless hook returned a list with something not a pool";
            return NULL;
        }
        bool ok = n < 0;
        for (int j = 0; j < n && !ok; j++) ok = allowed[j] == lp->p;
        if (!ok) {
            *why = "the keyless hook named a pool this listener may not flush";
            return NULL;
        }
        out[i - 1] = lp->p;
    }
    *count = (int)len;
    return out;
}

/* What the keyless hook's result (the top of co's stack) makes of r. */
static enum keyless_verdict hook_outcome(lua_State *co, struct gw_req *r, struct pool ***pools,
                                         int *npools)
{
    if (lua_isnoneornil(co, -1)) return KEYLESS_ALLOWED;
    struct lresp *rs = ltype_test(co, -1, LT_RESPONSE);
    if (rs && rs->len > 0 && rs->data) {
        req_reply_fmt(r, "%.*s", (int)rs->len - 2, rs->data);
        r->rkind = rs->kind;
        return KEYLESS_ANSWERED;
    }
    const char *why = "the keyless hook returned neither nil, a response nor pools";
    if (r->mc.cmd == MC_FLUSH_ALL && (ltype_test(co, -1, LT_POOL) || lua_istable(co, -1))) {
        int n;
        struct pool **chosen = hook_pools(co, r, *pools, *npools, &n, &why);
        if (chosen) {
            *pools = chosen;
            *npools = n;
            return KEYLESS_ALLOWED;
        }
    }
    req_reply_fmt(r, "SERVER_ERROR %s", why);
    return KEYLESS_ANSWERED;
}

enum keyless_verdict ltask_keyless(struct lhost *h, struct gw_req *r, struct pool ***pools,
                                   int *npools)
{
    struct quota *q = quota_new(h);
    const char *why = "out of memory";
    struct task *t = q ? task_new(h, TASK_ROUTE, q, &why) : NULL;
    if (!t) {
        if (q) quota_release(q);
        req_reply_fmt(r, "SERVER_ERROR %s", why);
        return KEYLESS_ANSWERED;
    }
    t->req = r;
    lua_State *co = t->co;
    lua_rawgeti(co, LUA_REGISTRYINDEX, h->keyless_ref);
    struct lreq *lq = lua_newuserdatauv(co, sizeof *lq, 0);
    lq->r = r;
    lq->k = UINT32_MAX; /* no key */
    t->lreq = lq;
    lua_rawgeti(co, LUA_REGISTRYINDEX, h->request_mt_ref);
    lua_setmetatable(co, -2);
    /* A plain call: the hook may not wait (a backend call raises). */
    int saved = h->in_lua;
    h->in_lua = 1;
    int st = lua_pcall(co, 1, 1, 0);
    h->in_lua = saved;
    enum keyless_verdict v;
    if (st != LUA_OK) {
        char msg[200];
        snprintf(msg, sizeof msg, "lua error: %.160s", task_error(t));
        log_strip_dirs(msg);
        req_reply_fmt(r, "SERVER_ERROR %s", msg);
        v = KEYLESS_ANSWERED;
    } else {
        v = hook_outcome(co, r, pools, npools);
    }
    lq->r = NULL;
    task_free(t, st != LUA_OK);
    return v;
}

enum route_result ltask_route(struct lhost *h, int fref, const char *route, struct gw_req *r,
                              uint32_t k, struct pool **pool)
{
    struct quota *q = quota_new(h);
    const char *why = "out of memory";
    struct task *t = q ? task_new(h, TASK_ROUTE, q, &why) : NULL;
    if (!t) {
        if (q) quota_release(q);
        route_fail(route, r, k, why);
        return ROUTE_FAILED;
    }
    q->route_name = route;
    q->peer = r->peer;
    t->req = r;
    t->k = k;
    lua_State *co = t->co;
    lua_rawgeti(co, LUA_REGISTRYINDEX, fref);
    struct lreq *lq = lua_newuserdatauv(co, sizeof *lq, 0);
    lq->r = r;
    lq->k = k;
    t->lreq = lq;
    lua_rawgeti(co, LUA_REGISTRYINDEX, h->request_mt_ref);
    lua_setmetatable(co, -2);
    task_resume(t, NULL, 1);
    if (t->suspended) {
        t->async = true;
        t->holds_req = true;
        q->route = t;
        r->pending++;
        r->refs++;
        return ROUTE_PENDING;
    }
    enum route_result res = t->outcome;
    *pool = t->pool;
    task_free(t, res == ROUTE_FAILED && lua_status(co) != LUA_OK);
    return res;
}

void ltask_free_all(struct lhost *h)
{
    while (h->live) {
        struct task *t = h->live;
        h->live = t->next;
        if (t->call) req_unref(t->call);
        if (t->holds_req) req_unref(t->req);
        free(t);
    }
    while (h->free_tasks) {
        struct task *t = h->free_tasks;
        h->free_tasks = t->next;
        free(t);
    }
    h->free_groups = NULL;
    while (h->all_groups) {
        struct group *g = h->all_groups;
        h->all_groups = g->all_next;
        gw_timer_free(g->timer);
        free(g);
    }
    h->free_quotas = NULL;
    while (h->all_quotas) {
        struct quota *q = h->all_quotas;
        h->all_quotas = q->all_next;
        gw_timer_free(q->timer);
        free(q);
    }
}

static const luaL_Reg req_meta[] = {
    { "__index", req_index },
    { "__newindex", req_newindex },
    { "__tostring", req_tostring },
    { NULL, NULL },
};

static const luaL_Reg resp_meta[] = {
    { "__index", resp_index },
    { "__gc", resp_gc },
    { "__tostring", resp_tostring },
    { NULL, NULL },
};

void ltask_register(lua_State *L)
{
    lua_getfield(L, -1, "__index");
    luaL_setfuncs(L, pool_calls, 0);
    lua_pop(L, 1);
    luaL_newmetatable(L, REQUEST_MT);
    lhost_note_type(L, LT_REQUEST);
    luaL_setfuncs(L, req_meta, 0);
    protect_metatable(L, REQUEST_MT);
    lua_pop(L, 1);
    luaL_newmetatable(L, RESPONSE_MT);
    lhost_note_type(L, LT_RESPONSE);
    luaL_setfuncs(L, resp_meta, 0);
    protect_metatable(L, RESPONSE_MT);
    lua_pop(L, 1);
}

void ltask_push_api(lua_State *L)
{
    luaL_newlib(L, request_api);
}
