/* lmatch.c -- see lmatch.h.  First the budget (a meter of steps), then the
 * matcher, then the four library functions on top of it.
 *
 * The matcher backtracks over the pattern text the way the manual defines
 * patterns, and the way Lua's own does: match() walks the items of the
 * pattern from left to right; an item that cannot know whether it is right
 * before the rest of the pattern has matched (a repetition, an optional
 * item, a capture) matches the rest itself by calling match() again.  Those
 * nested calls are the only recursion, and the depth limit counts them just
 * as Lua does, so "pattern too complex" comes for the same patterns.
 *
 * Lua strings always have a '\0' after their last byte, and Lua's matcher
 * reads it where a pattern is cut short ("(" or "%f" at the very end).
 * Here every such read goes through pat_byte()/src_byte(), which bound it
 * explicitly and answer '\0' past the end: the same meaning, said aloud.
 */
#define _GNU_SOURCE /* memmem */
#include "lmatch.h"

#include <ctype.h>
#include <lauxlib.h>
#include <lua.h>
#include <stddef.h>
#include <string.h>

/* Captures one pattern may hold (LUA_MAXCAPTURES of lstrlib.c). */
#define MAX_CAPTURES 32
/* Nested match() calls one match may make (MAXCCALLS of lstrlib.c). */
#define MATCH_DEPTH_MAX 200
/* A set ("[...]") is scanned for every byte tested against it: it costs one
 * step more for this many bytes of its text. */
#define SET_BYTES_PER_STEP 8

#define ESC '%'
/* A pattern with none of these is a plain string to find(). */
#define SPECIALS "^$*+?.([%-"

/* Capture lengths that are not lengths. */
#define CAP_OPEN (-1)     /* started, not closed yet */
#define CAP_POSITION (-2) /* "()": captures a position */

/* ---- the budget -------------------------------------------------------- */

struct meter {
    lua_State *L;
    lmatch_charge_fn charge; /* NULL: no limit */
    unsigned long pending;   /* steps not charged yet */
};

/* Hands the pending steps to the charge function; raises if it says stop. */
static void meter_charge(struct meter *mt)
{
    unsigned long steps = mt->pending;
    mt->pending = 0;
    if (mt->charge == NULL || steps == 0)
        return;
    int top = lua_gettop(mt->L);
    if (mt->charge(mt->L, steps))
        return;
    if (lua_gettop(mt->L) > top)
        lua_error(mt->L); /* the error value the charge function pushed */
    luaL_error(mt->L, "pattern matching budget exceeded");
}

/* Counts n steps and charges them once a chunk is full.  Called only where
 * nothing of ours is half-done on the Lua stack (the matcher itself). */
static inline void meter_step(struct meter *mt, unsigned long n)
{
    mt->pending += n;
    if (mt->pending >= LMATCH_CHUNK)
        meter_charge(mt);
}

/* Counts n steps to be charged by the next meter_step or meter_charge: for
 * work done while a value sits on the stack for a luaL_Buffer. */
static inline void meter_count(struct meter *mt, unsigned long n)
{
    mt->pending += n;
}

/* ---- matcher state ----------------------------------------------------- */

struct capture {
    const char *init; /* where it starts in the subject */
    ptrdiff_t len;    /* its length once closed, else CAP_OPEN/CAP_POSITION */
};

struct matcher {
    struct meter meter;          /* meter.L is the state errors go to */
    const char *src, *src_end;   /* the whole subject (%f and "()" need its start) */
    const char *pat_end;         /* end of the pattern */
    int depth_left;              /* nested match() calls still allowed */
    int level;                   /* captures started */
    struct capture cap[MAX_CAPTURES];
};

static void matcher_reset(struct matcher *m)
{
    m->level = 0;
    m->depth_left = MATCH_DEPTH_MAX;
}

static void matcher_init(struct matcher *m, lua_State *L,
                         lmatch_charge_fn charge, const char *s, size_t ls,
                         const char *p, size_t lp)
{
    m->meter = (struct meter){.L = L, .charge = charge, .pending = 0};
    m->src = s;
    m->src_end = s + ls;
    m->pat_end = p + lp;
    matcher_reset(m);
}

static inline int pat_byte(const struct matcher *m, const char *p)
{
    return p < m->pat_end ? (unsigned char)*p : '\0';
}

static inline int src_byte(const struct matcher *m, const char *s)
{
    return s < m->src_end ? (unsigned char)*s : '\0';
}

/* ---- single-byte classes ------------------------------------------------ */

/* Does byte c belong to class %cl?  An upper-case class letter is the
 * complement of its lower-case one; any other cl stands for itself. */
static bool class_matches(int c, int cl)
{
    int in;
    switch (tolower(cl)) {
    case 'a': in = isalpha(c); break;
    case 'c': in = iscntrl(c); break;
    case 'd': in = isdigit(c); break;
    case 'g': in = isgraph(c); break;
    case 'l': in = islower(c); break;
    case 'p': in = ispunct(c); break;
    case 's': in = isspace(c); break;
    case 'u': in = isupper(c); break;
    case 'w': in = isalnum(c); break;
    case 'x': in = isxdigit(c); break;
    case 'z': in = c == '\0'; break; /* deprecated, but Lua 5.4 has it */
    default: return cl == c;
    }
    return isupper(cl) ? !in : in != 0;
}

/* Does byte c belong to the set whose '[' is at p and ']' at close?  Its
 * members, left to right: "%x" is the class %x (or the byte x), "x-y" the
 * range x..y unless y is the closing ']', anything else a byte.  So
 * "[%a-z]" is %a, '-' and 'z', and "[a-]" is 'a' and '-'. */
static bool in_set(int c, const char *p, const char *close)
{
    bool found = true; /* what finding c means: "[^" turns it round */
    p++;
    if (*p == '^') {
        found = false;
        p++;
    }
    for (; p < close; p++) {
        if (*p == ESC) {
            p++;
            if (class_matches(c, (unsigned char)*p))
                return found;
        } else if (p[1] == '-' && p + 2 < close) {
            if ((unsigned char)p[0] <= c && c <= (unsigned char)p[2])
                return found;
            p += 2;
        } else if ((unsigned char)*p == c) {
            return found;
        }
    }
    return !found;
}

/* End of the set whose '[' is at p (just past its ']').  The byte after
 * "[" or "[^" is a member even if it is ']', so "[]]" is the set of ']'. */
static const char *set_end(const struct matcher *m, const char *p)
{
    p++;
    if (pat_byte(m, p) == '^')
        p++;
    do {
        if (p >= m->pat_end)
            luaL_error(m->meter.L, "malformed pattern (missing ']')");
        if (*p++ == ESC && p < m->pat_end)
            p++; /* an escaped byte never closes the set: "[%]]" */
    } while (pat_byte(m, p) != ']');
    return p + 1;
}

/* End of the single-byte class at p (where its quantifier would be). */
static const char *class_end(const struct matcher *m, const char *p)
{
    if (*p == ESC) {
        if (p + 1 >= m->pat_end)
            luaL_error(m->meter.L, "malformed pattern (ends with '%%')");
        return p + 2;
    }
    if (*p == '[')
        return set_end(m, p);
    return p + 1;
}

/* Steps to test one byte against the class p..ep: sets cost their length. */
static unsigned long class_cost(const char *p, const char *ep)
{
    return 1 + (*p == '[' ? (unsigned long)(ep - p) / SET_BYTES_PER_STEP : 0);
}

/* Does the subject byte at s belong to the class p..ep?  Never at the end. */
static bool single_match(const struct matcher *m, const char *s,
                         const char *p, const char *ep)
{
    if (s >= m->src_end)
        return false;
    int c = (unsigned char)*s;
    switch (*p) {
    case '.': return true;
    case ESC: return class_matches(c, (unsigned char)p[1]);
    case '[': return in_set(c, p, ep - 1);
    default: return (unsigned char)*p == c;
    }
}

/* ---- items ------------------------------------------------------------- */

static const char *match(struct matcher *m, const char *s, const char *p);

/* Every item handler below has one of two outcomes.  Either the item has
 * settled the match of the whole rest of the pattern -- it matched the rest
 * itself, or it failed: it stores the end of the match (NULL: no match) in
 * *s and returns false.  Or it consumed its part of the subject and the
 * rest of the pattern is still to match: it moves *s and *p past it and
 * returns true, and match() goes on with the next item in a loop (Lua's
 * tail call, which does not count against the depth limit). */

/* Goes on at (end, next) when end is not NULL; fails otherwise. */
static bool go_on(const char **s, const char **p, const char *end,
                  const char *next)
{
    *s = end;
    if (end == NULL)
        return false;
    *p = next;
    return true;
}

/* "(" or "()" at p. */
static const char *open_capture(struct matcher *m, const char *s,
                                const char *p)
{
    bool position = pat_byte(m, p + 1) == ')';
    if (m->level >= MAX_CAPTURES)
        luaL_error(m->meter.L, "too many captures");
    struct capture *cap = &m->cap[m->level++];
    cap->init = s;
    cap->len = position ? CAP_POSITION : CAP_OPEN;
    const char *end = match(m, s, p + (position ? 2 : 1));
    if (end == NULL)
        m->level--; /* the capture did not happen */
    return end;
}

/* ")" closes the innermost capture still open. */
static const char *close_capture(struct matcher *m, const char *s,
                                 const char *rest)
{
    int i = m->level - 1;
    while (i >= 0 && m->cap[i].len != CAP_OPEN)
        i--;
    if (i < 0)
        luaL_error(m->meter.L, "invalid pattern capture");
    m->cap[i].len = s - m->cap[i].init;
    const char *end = match(m, s, rest);
    if (end == NULL)
        m->cap[i].len = CAP_OPEN; /* reopen it for other tries */
    return end;
}

/* %b<open><close> at s; args points at <open>. */
static const char *match_balance(struct matcher *m, const char *s,
                                 const char *args)
{
    if (args + 1 >= m->pat_end)
        luaL_error(m->meter.L, "malformed pattern (missing arguments to '%%b')");
    if (s >= m->src_end || *s != args[0])
        return NULL;
    char open = args[0], close = args[1];
    ptrdiff_t depth = 1;
    while (++s < m->src_end) {
        meter_step(&m->meter, 1);
        if (*s == close) { /* checked first: with open == close, it closes */
            if (--depth == 0)
                return s + 1;
        } else if (*s == open) {
            depth++;
        }
    }
    return NULL;
}

/* %f[set]: the empty string between a byte not in the set and one in it;
 * before the subject's start and after its end is a '\0'. */
static bool match_frontier(struct matcher *m, const char **s, const char **p)
{
    const char *set = *p + 2;
    if (pat_byte(m, set) != '[')
        luaL_error(m->meter.L, "missing '[' after '%%f' in pattern");
    const char *next = set_end(m, set);
    meter_step(&m->meter, class_cost(set, next) - 1);
    int before = *s == m->src ? '\0' : (unsigned char)(*s)[-1];
    int after = src_byte(m, *s);
    if (!in_set(before, set, next - 1) && in_set(after, set, next - 1)) {
        *p = next;
        return true;
    }
    *s = NULL;
    return false;
}

/* %1-%9 (and %0, which is an error) in a pattern: the text of a closed
 * capture again.  A position capture has no text, and never matches. */
static const char *match_back_reference(struct matcher *m, const char *s,
                                        int digit)
{
    int i = digit - '1';
    if (i < 0 || i >= m->level || m->cap[i].len == CAP_OPEN)
        luaL_error(m->meter.L, "invalid capture index %%%d", i + 1);
    ptrdiff_t len = m->cap[i].len;
    if (len < 0)
        return NULL;
    if (m->src_end - s < len)
        return NULL;
    meter_step(&m->meter, (unsigned long)len); /* what memcmp may compare */
    return memcmp(m->cap[i].init, s, (size_t)len) == 0 ? s + len : NULL;
}

/* The longest run of the class item..ep at s that lets the rest match. */
static const char *max_expand(struct matcher *m, const char *s,
                              const char *item, const char *ep,
                              unsigned long cost)
{
    ptrdiff_t n = 0;
    while (single_match(m, s + n, item, ep)) {
        n++;
        meter_step(&m->meter, cost);
    }
    for (; n >= 0; n--) {
        const char *end = match(m, s + n, ep + 1);
        if (end != NULL)
            return end;
    }
    return NULL;
}

/* The shortest run of the class item..ep at s that lets the rest match. */
static const char *min_expand(struct matcher *m, const char *s,
                              const char *item, const char *ep,
                              unsigned long cost)
{
    for (;;) {
        const char *end = match(m, s, ep + 1);
        if (end != NULL)
            return end;
        meter_step(&m->meter, cost);
        if (!single_match(m, s, item, ep))
            return NULL;
        s++;
    }
}

/* A single-byte class, maybe followed by '*', '+', '-' or '?'. */
static bool match_class_item(struct matcher *m, const char **s, const char **p)
{
    const char *item = *p;
    const char *ep = class_end(m, item);
    unsigned long cost = class_cost(item, ep);
    meter_step(&m->meter, cost - 1); /* match() counted the first step */
    int suffix = pat_byte(m, ep);
    if (!single_match(m, *s, item, ep)) {
        if (suffix == '*' || suffix == '?' || suffix == '-')
            return go_on(s, p, *s, ep + 1); /* zero times is fine */
        *s = NULL;
        return false;
    }
    switch (suffix) {
    case '?': {
        const char *end = match(m, *s + 1, ep + 1);
        if (end != NULL) {
            *s = end;
            return false;
        }
        return go_on(s, p, *s, ep + 1);
    }
    case '+':
        *s = max_expand(m, *s + 1, item, ep, cost);
        return false;
    case '*':
        *s = max_expand(m, *s, item, ep, cost);
        return false;
    case '-':
        *s = min_expand(m, *s, item, ep, cost);
        return false;
    default:
        return go_on(s, p, *s + 1, ep);
    }
}

/* "%b", "%f" or "%<digit>" at *p; anything else after '%' is a class. */
static bool match_escape_item(struct matcher *m, const char **s, const char **p)
{
    const char *at = *p;
    int kind = pat_byte(m, at + 1);
    if (kind == 'b') {
        const char *end = match_balance(m, *s, at + 2);
        if (end == NULL) {
            *s = NULL;
            return false;
        }
        return go_on(s, p, end, at + 4); /* at + 4 exists: match_balance checked */
    }
    if (kind == 'f')
        return match_frontier(m, s, p);
    if (kind >= '0' && kind <= '9')
        return go_on(s, p, match_back_reference(m, *s, kind), at + 2);
    return match_class_item(m, s, p);
}

static bool match_item(struct matcher *m, const char **s, const char **p)
{
    const char *at = *p;
    switch (*at) {
    case '(':
        *s = open_capture(m, *s, at);
        return false;
    case ')':
        *s = close_capture(m, *s, at + 1);
        return false;
    case '$':
        if (at + 1 != m->pat_end)
            break; /* only a last '$' anchors; elsewhere it is a byte */
        if (*s != m->src_end)
            *s = NULL;
        return false;
    case ESC:
        return match_escape_item(m, s, p);
    }
    return match_class_item(m, s, p);
}

/* Matches the pattern from p on against the subject from s; returns the end
 * of the match, or NULL.  Captures are left in m. */
static const char *match(struct matcher *m, const char *s, const char *p)
{
    if (m->depth_left-- == 0)
        luaL_error(m->meter.L, "pattern too complex");
    meter_step(&m->meter, 1);
    while (p < m->pat_end && match_item(m, &s, &p))
        meter_step(&m->meter, 1);
    m->depth_left++;
    return s;
}

/* ---- results ----------------------------------------------------------- */

/* Capture i of the match s..e: its text (*text, and the length returned),
 * or CAP_POSITION with the position pushed.  Without captures, capture 0 is
 * the whole match (s is NULL when the caller wants no such thing). */
static ptrdiff_t capture_value(struct matcher *m, int i, const char *s,
                               const char *e, const char **text)
{
    lua_State *L = m->meter.L;
    if (i >= m->level) {
        if (i != 0)
            luaL_error(L, "invalid capture index %%%d", i + 1);
        *text = s;
        return e - s;
    }
    const struct capture *cap = &m->cap[i];
    *text = cap->init;
    if (cap->len == CAP_OPEN)
        luaL_error(L, "unfinished capture");
    if (cap->len == CAP_POSITION)
        lua_pushinteger(L, (cap->init - m->src) + 1);
    return cap->len;
}

static void push_capture(struct matcher *m, int i, const char *s,
                         const char *e)
{
    const char *text;
    ptrdiff_t len = capture_value(m, i, s, e, &text);
    if (len == CAP_POSITION)
        return; /* already pushed */
    meter_count(&m->meter, (unsigned long)len);
    lua_pushlstring(m->meter.L, text, (size_t)len);
}

/* Pushes the captures of the match s..e, or the match itself when there are
 * none and s is not NULL; returns how many values. */
static int push_captures(struct matcher *m, const char *s, const char *e)
{
    int n = (m->level == 0 && s != NULL) ? 1 : m->level;
    luaL_checkstack(m->meter.L, n, "too many captures");
    for (int i = 0; i < n; i++)
        push_capture(m, i, s, e);
    return n;
}

/* ---- find and match ---------------------------------------------------- */

/* The budget each function carries as its first upvalue. */
struct budget {
    lmatch_charge_fn charge;
};

static lmatch_charge_fn upvalue_charge(lua_State *L)
{
    const struct budget *b = lua_touserdata(L, lua_upvalueindex(1));
    return b->charge;
}

/* 0-based offset of the 1-based init, which counts from the end when
 * negative; before the start means the start, and an offset > len means
 * past the end. */
static size_t start_offset(lua_Integer init, size_t len)
{
    if (init > 0)
        return (size_t)init - 1;
    if (init == 0 || init < -(lua_Integer)len)
        return 0;
    return len + (size_t)init; /* len - |init| */
}

static bool has_specials(const char *p, size_t lp)
{
    for (const char *c = SPECIALS; *c; c++)
        if (memchr(p, *c, lp) != NULL)
            return true;
    return false;
}

/* find() of a plain string.  memmem is linear, so the bytes it went over
 * (and the pattern's length, for has_specials) are its steps. */
static int find_plain(lua_State *L, lmatch_charge_fn charge, const char *s,
                      size_t ls, size_t init, const char *p, size_t lp)
{
    struct meter mt = {.L = L, .charge = charge, .pending = 0};
    const char *hay = s + init;
    size_t n = ls - init;
    const char *at = lp == 0 ? hay : memmem(hay, n, p, lp);
    meter_count(&mt, lp + (at != NULL ? (size_t)(at - hay) + lp : n));
    meter_charge(&mt);
    if (at == NULL) {
        luaL_pushfail(L);
        return 1;
    }
    lua_pushinteger(L, (at - s) + 1);
    lua_pushinteger(L, (lua_Integer)((at - s) + lp));
    return 2;
}

static int find_or_match(lua_State *L, bool find)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = start_offset(luaL_optinteger(L, 3, 1), ls);
    if (init > ls) {
        luaL_pushfail(L);
        return 1;
    }
    lmatch_charge_fn charge = upvalue_charge(L);
    if (find && (lua_toboolean(L, 4) || !has_specials(p, lp)))
        return find_plain(L, charge, s, ls, init, p, lp);

    bool anchored = lp > 0 && *p == '^';
    if (anchored) {
        p++;
        lp--;
    }
    struct matcher m;
    matcher_init(&m, L, charge, s, ls, p, lp);
    for (const char *start = s + init;; start++) {
        matcher_reset(&m);
        const char *end = match(&m, start, p);
        if (end != NULL) {
            int n;
            if (find) {
                lua_pushinteger(L, (start - s) + 1);
                lua_pushinteger(L, end - s);
                n = 2 + push_captures(&m, NULL, NULL);
            } else {
                n = push_captures(&m, start, end);
            }
            meter_charge(&m.meter);
            return n;
        }
        if (anchored || start >= m.src_end)
            break;
    }
    meter_charge(&m.meter);
    luaL_pushfail(L);
    return 1;
}

static int lm_find(lua_State *L) { return find_or_match(L, true); }
static int lm_match(lua_State *L) { return find_or_match(L, false); }

/* ---- gmatch ------------------------------------------------------------ */

struct gmatch_state {
    const char *next;      /* where the next search starts */
    const char *lastmatch; /* end of the last match: no empty match there */
    const char *p;
    struct matcher m;
};

/* The iterator: upvalues are the subject, the pattern (kept alive for the
 * pointers into them) and the gmatch_state. */
static int gmatch_next(lua_State *L)
{
    struct gmatch_state *g = lua_touserdata(L, lua_upvalueindex(3));
    g->m.meter.L = L; /* it may be called from another coroutine */
    g->m.meter.pending = 0;
    for (const char *start = g->next; start <= g->m.src_end; start++) {
        matcher_reset(&g->m);
        const char *end = match(&g->m, start, g->p);
        if (end != NULL && end != g->lastmatch) {
            g->next = g->lastmatch = end;
            int n = push_captures(&g->m, start, end);
            meter_charge(&g->m.meter);
            return n;
        }
    }
    meter_charge(&g->m.meter);
    return 0;
}

static int lm_gmatch(lua_State *L)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = start_offset(luaL_optinteger(L, 3, 1), ls);
    lmatch_charge_fn charge = upvalue_charge(L);
    if (init > ls)
        init = ls + 1; /* nothing to find, and no overflow in s + init */
    lua_settop(L, 2);
    struct gmatch_state *g = lua_newuserdatauv(L, sizeof *g, 0);
    matcher_init(&g->m, L, charge, s, ls, p, lp);
    g->next = s + init;
    g->lastmatch = NULL;
    g->p = p;
    lua_pushcclosure(L, gmatch_next, 3);
    return 1;
}

/* ---- gsub -------------------------------------------------------------- */

/* The bytes of replacement "%<digit>" for the match s..e. */
static void add_capture(struct matcher *m, luaL_Buffer *b, int digit,
                        const char *s, const char *e)
{
    const char *text = s;
    ptrdiff_t len = e - s; /* %0 is the whole match, captures or not */
    if (digit != 0)
        len = capture_value(m, digit - 1, s, e, &text);
    if (len == CAP_POSITION) {
        luaL_addvalue(b); /* the position capture_value pushed */
        return;
    }
    meter_count(&m->meter, (unsigned long)len);
    luaL_addlstring(b, text, (size_t)len);
}

/* A string (or number) replacement, argument 3: its text with "%0"-"%9"
 * replaced by captures and "%%" by '%'. */
static void add_template(struct matcher *m, luaL_Buffer *b, const char *s,
                         const char *e)
{
    lua_State *L = m->meter.L;
    size_t len;
    const char *t = lua_tolstring(L, 3, &len);
    const char *end = t + len;
    meter_count(&m->meter, len);
    const char *esc;
    while ((esc = memchr(t, ESC, (size_t)(end - t))) != NULL) {
        luaL_addlstring(b, t, (size_t)(esc - t));
        int c = esc + 1 < end ? (unsigned char)esc[1] : '\0';
        if (c == ESC)
            luaL_addchar(b, ESC);
        else if (c >= '0' && c <= '9')
            add_capture(m, b, c - '0', s, e);
        else
            luaL_error(L, "invalid use of '%c' in replacement string", ESC);
        t = esc + 2;
    }
    luaL_addlstring(b, t, (size_t)(end - t));
}

/* Adds the replacement of the match s..e; returns whether it differs from
 * the match (a table or function may answer nil or false: keep it). */
static bool add_replacement(struct matcher *m, luaL_Buffer *b, const char *s,
                            const char *e, int repl_type)
{
    lua_State *L = m->meter.L;
    if (repl_type == LUA_TSTRING || repl_type == LUA_TNUMBER) {
        add_template(m, b, s, e);
        return true;
    }
    if (repl_type == LUA_TFUNCTION) {
        lua_pushvalue(L, 3);
        int n = push_captures(m, s, e);
        lua_call(L, n, 1);
    } else {
        push_capture(m, 0, s, e);
        lua_gettable(L, 3);
    }
    if (!lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        meter_count(&m->meter, (unsigned long)(e - s));
        luaL_addlstring(b, s, (size_t)(e - s));
        return false;
    }
    if (!lua_isstring(L, -1))
        luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    size_t len;
    lua_tolstring(L, -1, &len);
    meter_count(&m->meter, len);
    luaL_addvalue(b);
    return true;
}

static int lm_gsub(lua_State *L)
{
    size_t ls, lp;
    const char *src = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    int repl_type = lua_type(L, 3);
    lua_Integer max_n = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
    luaL_argexpected(L, repl_type == LUA_TNUMBER || repl_type == LUA_TSTRING ||
                            repl_type == LUA_TFUNCTION || repl_type == LUA_TTABLE,
                     3, "string/function/table");
    bool anchored = lp > 0 && *p == '^';
    if (anchored) {
        p++;
        lp--;
    }
    struct matcher m;
    matcher_init(&m, L, upvalue_charge(L), src, ls, p, lp);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    const char *lastmatch = NULL; /* no empty match right after a match */
    lua_Integer n = 0;
    bool changed = false;
    while (n < max_n) {
        matcher_reset(&m);
        const char *end = match(&m, src, p);
        if (end != NULL && end != lastmatch) {
            n++;
            changed = add_replacement(&m, &b, src, end, repl_type) || changed;
            src = lastmatch = end;
        } else if (src < m.src_end) {
            luaL_addchar(&b, *src++);
        } else {
            break;
        }
        if (anchored)
            break;
    }
    meter_count(&m.meter, (unsigned long)(m.src_end - src));
    meter_charge(&m.meter);
    if (changed) {
        luaL_addlstring(&b, src, (size_t)(m.src_end - src));
        luaL_pushresult(&b);
    } else {
        lua_pushvalue(L, 1); /* the subject itself, as Lua does */
    }
    lua_pushinteger(L, n);
    return 2;
}

/* ---- registration ------------------------------------------------------ */

void lmatch_register(lua_State *L, int idx, lmatch_charge_fn charge)
{
    static const luaL_Reg fns[] = {
        {"find", lm_find},
        {"match", lm_match},
        {"gmatch", lm_gmatch},
        {"gsub", lm_gsub},
        {NULL, NULL},
    };
    idx = lua_absindex(L, idx);
    lua_pushvalue(L, idx);
    struct budget *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->charge = charge;
    luaL_setfuncs(L, fns, 1);
    lua_pop(L, 1);
}
