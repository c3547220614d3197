/* test_lua_lmatch.c -- unit tests for the bounded Lua patterns
 * (core/script/lmatch.c): a differential test against Lua's own string
 * library, then the budget. */
#include "script/lmatch.h"
#include "unit.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <limits.h>
#include <stdint.h>
#include <time.h>

/* ---- a charge function the tests control -------------------------------- */

enum charge_mode {
    STOP_QUIETLY,   /* return false */
    STOP_WITH_VALUE, /* push a table, return false */
    STOP_BY_RAISING, /* luaL_error */
};

static enum charge_mode mode;
static unsigned long budget;  /* steps allowed */
static unsigned long charged; /* steps charged so far */
static unsigned long charge_calls;
static lua_State *charged_L; /* the state of the last call */

static bool test_charge(lua_State *L, unsigned long steps)
{
    charge_calls++;
    charged += steps;
    charged_L = L;
    if (charged <= budget)
        return true;
    switch (mode) {
    case STOP_WITH_VALUE:
        lua_newtable(L);
        lua_pushliteral(L, "over budget");
        lua_setfield(L, -2, "why");
        return false;
    case STOP_BY_RAISING:
        luaL_error(L, "raised by charge");
        return false;
    default:
        return false;
    }
}

static void set_budget(unsigned long steps, enum charge_mode m)
{
    budget = steps;
    mode = m;
    charged = 0;
    charge_calls = 0;
    charged_L = NULL;
}

/* A state with the bounded functions in the global table B. */
static lua_State *new_state(void)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    lua_newtable(L);
    lmatch_register(L, -1, test_charge);
    lua_setglobal(L, "B");
    set_budget(ULONG_MAX, STOP_QUIETLY);
    return L;
}

/* Runs code; its results replace the stack.  Returns false (and prints the
 * error) if it raised. */
static bool eval(lua_State *L, const char *code)
{
    lua_settop(L, 0);
    if (luaL_loadstring(L, code) != LUA_OK || lua_pcall(L, 0, LUA_MULTRET, 0) != LUA_OK) {
        fprintf(stderr, "eval: %s\n", lua_tostring(L, -1));
        return false;
    }
    return true;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the differential test ---------------------------------------------- */

/* Lua side: check(s, p, init, plain, k) runs find, match, gmatch and gsub
 * (with many replacements) from string and from B on the same arguments and
 * returns nil, or what differed.  Both are called from the same line under
 * the same name, so argument errors and error positions compare equal. */
static const char HARNESS[] =
    "local B = B\n"
    "local function runner(lib)\n"
    "  local r = {}\n"
    "  function r.find(s, p, i, plain) local t = table.pack(lib.find(s, p, i, plain)) return t end\n"
    "  function r.match(s, p, i) local t = table.pack(lib.match(s, p, i)) return t end\n"
    "  function r.gsub(s, p, repl, n) local t = table.pack(lib.gsub(s, p, repl, n)) return t end\n"
    "  function r.gmatch(s, p, i)\n"
    "    local out, it = {}, lib.gmatch(s, p, i)\n"
    "    for k = 1, 100 do\n"
    "      local t = table.pack(it())\n"
    "      if t.n == 0 then break end\n"
    "      out[k] = t\n"
    "    end\n"
    "    return out\n"
    "  end\n"
    "  return r\n"
    "end\n"
    "local theirs, ours = runner(string), runner(B)\n"
    "local function same(a, b)\n"
    "  if type(a) ~= type(b) then return false end\n"
    "  if type(a) == 'number' then return math.type(a) == math.type(b) and a == b end\n"
    "  if type(a) ~= 'table' then return a == b end\n"
    "  for k, v in pairs(a) do if not same(v, b[k]) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return true\n"
    "end\n"
    "local function show(v)\n"
    "  if type(v) == 'string' then return string.format('%q', v) end\n"
    "  if type(v) ~= 'table' then return tostring(v) end\n"
    "  local parts = {}\n"
    "  for i = 1, v.n or #v do parts[i] = show(v[i]) end\n"
    "  return '{' .. table.concat(parts, ', ') .. '}'\n"
    "end\n"
    "local compared = 0\n"
    "local function compare(what, ...)\n"
    "  compared = compared + 1\n"
    "  local ok1, r1 = pcall(theirs[what], ...)\n"
    "  local ok2, r2 = pcall(ours[what], ...)\n"
    "  if ok1 == ok2 and same(r1, r2) then return nil end\n"
    "  return string.format('%s%s: string gave %s %s, B gave %s %s', what,\n"
    "    show(table.pack(...)), tostring(ok1), show(r1), tostring(ok2), show(r2))\n"
    "end\n"
    "local REPLS = {\n"
    "  '', 'x', '%0', '<%1>', '%1%1', '[%2]', '%%', '%', 'a%', '%x', '%9', '%0-%1', 7, 1.5, true,\n"
    "  { a = 'A', b = false, x = 12, ab = 'AB', [1] = 'one', [2] = true, aa = {} },\n"
    "  function() return nil end,\n"
    "  function(a) return tostring(a) .. '!' end,\n"
    "  function(a, b) return b end,\n"
    "  function(...) return select('#', ...) end,\n"
    "  function(a) if a == 'b' then return {} end return false end,\n"
    "  function(a) if a == 'x' then error('boom') end return 'y' end,\n"
    "}\n"
    "local NS = { 0, 1, 2, -1, 1.5, '1', false, 3 }\n"
    "local function check(s, p, init, plain, k)\n"
    "  local err = compare('find', s, p) or compare('find', s, p, init, plain)\n"
    "    or compare('match', s, p) or compare('match', s, p, init)\n"
    "    or compare('gmatch', s, p) or compare('gmatch', s, p, init)\n"
    "    or compare('gsub', s, p)\n"
    "  if err then return err end\n"
    "  for j, repl in ipairs(REPLS) do\n"
    "    err = compare('gsub', s, p, repl) or compare('gsub', s, p, repl, NS[(j + k) % #NS + 1])\n"
    "    if err then return err end\n"
    "  end\n"
    "end\n"
    /* Cases written by hand: limits, malformed patterns, odd arguments,
     * and every byte against every class. */
    "local function edge_cases()\n"
    "  local bytes = {}\n"
    "  for i = 0, 255 do bytes[i + 1] = string.char(i) end\n"
    "  local all, nul = table.concat(bytes), string.char(0)\n"
    "  local cases = {\n"
    "    {'', ''}, {'abc', ''}, {'', '^'}, {'', '$'}, {'abc', '^$'}, {'a$b', 'a$b'},\n"
    "    {'a^b', 'a^b'}, {'^a', '^^a'}, {'abc', '$'}, {'abc', 'c$'}, {'a$', '$$'},\n"
    "    {'abc', '%'}, {'abc', 'a%'}, {'abc', '[a'}, {'abc', '[^'}, {'abc', '['}, {'abc', '[]'},\n"
    "    {'abc', '[^]'}, {']', '[]]'}, {']', '[^]]'}, {'a]', '[%]]'}, {'abc', '[%'}, {'abc', '[a%'}, {'abc', '[a%]'},\n"
    "    {'a-z', '[a-]'}, {'-', '[-a]'}, {'%', '[a-%%]'}, {'b-', '[%a-z]+'}, {'x]', '[x-%%]]'},\n"
    "    {'((a)(b))c', '%b()'}, {'((a', '%b()'}, {'abc', '%b'}, {'abc', '%ba'}, {\"''x''\", \"%b''\"},\n"
    "    {'THE (quick) fox', '%f[%a]%a+'}, {'abc', '%f'}, {'abc', '%fa'}, {'abc', '%f[a'},\n"
    "    {'THE (quick) fox', '%f[%A]'}, {'ab', '%f[%z]'}, {'ab', '%f[^%z]'},\n"
    "    {'hello world', '(%w+) (%w+)'}, {'abcabc', '(abc)%1'}, {'aa', '()%1'}, {'abc', '%0'},\n"
    "    {'abc', '(a)%2'}, {'abc', '(a%1)'}, {'abc', '(a'}, {'abc', 'a)'}, {'abc', '(()'},\n"
    "    {'abc', '((a)'}, {'abc', '(a)(b)(c)%3%2%1'}, {'cbaabc', '(a)(b)(c)'},\n"
    "    {string.rep('a', 32), string.rep('(a)', 32)}, {'a', string.rep('()', 32)},\n"
    "    {'a', string.rep('()', 33)}, {string.rep('a', 40), string.rep('(a)', 33)},\n"
    "    {'key = value', '(%w+)%s*=%s*(%w+)'}, {'a' .. nul .. 'b', '%z'}, {'a' .. nul .. 'b', '[' .. nul .. ']'},\n"
    "    {'a' .. nul .. 'b', nul}, {'a' .. nul .. 'b', nul .. 'b', 1, true}, {'a' .. nul .. 'b', 'a' .. nul .. '.'},\n"
    "    {'a.b', '.'}, {'a.b', '%.'}, {'a+b', 'a+b', 1, true}, {'a+b', 'a+b', -3, 1},\n"
    "    {'abc', 'b', 1.5}, {'abc', 'b', '2'}, {'abc', 'b', 'x'}, {'abc', 'b', math.mininteger},\n"
    "    {'abc', 'b', math.maxinteger}, {'abc', '', 4}, {'abc', '', 5}, {'abc', '', -10}, {'abc', 'c', -1},\n"
    "    {nil, 'a'}, {'a', nil}, {{}, 'a'}, {123, '2'}, {'a1', 1}, {true, 'x'}, {'abc', 'b', {}},\n"
    "    {'x = 1, y = 2', '(%w+) = (%w+)'}, {'abc', '.-'}, {'abc', '.-$'}, {'abc', 'a*'}, {'', 'a*'},\n"
    "    {'aaa', 'a-b'}, {'aaab', 'a-b'}, {'aaa', '^a-'}, {'  x', '^%s*'}, {'hello', '()ll()'},\n"
    "  }\n"
    "  for k = 190, 205 do\n"
    "    cases[#cases + 1] = {string.rep('a', k), string.rep('a?', k)}\n"
    "    cases[#cases + 1] = {string.rep('a', k - 5), string.rep('.?', k)}\n"
    "  end\n"
    "  for c in ('acdglpsuwxz'):gmatch('.') do\n"
    "    for _, p in ipairs{'%' .. c, '%' .. c:upper(), '[%' .. c .. ']', '[^%' .. c .. ']', '%' .. c .. '+'} do\n"
    "      cases[#cases + 1] = {all, p}\n"
    "    end\n"
    "  end\n"
    "  for i, c in ipairs(cases) do\n"
    "    local err = check(c[1], c[2], c[3] or -2, c[4], i)\n"
    "    if err then return err end\n"
    "  end\n"
    "  return nil, #cases\n"
    "end\n"
    "return check, edge_cases, function() return compared end\n";

/* xorshift64*: a fixed seed makes every run test the same cases. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1dULL) >> 32) % n;
}

#define PICK(arr) (arr)[rnd(sizeof(arr) / sizeof((arr)[0]))]

/* Pieces of patterns, over the subject alphabet below so they match often. */
static const char *const CLASSES[] = {
    "a", "a", "b", "b", "x", " ", "-", ".", ".", "1", "A", "(", "]",
    "%a", "%d", "%l", "%s", "%u", "%w", "%x", "%p", "%c", "%g", "%A",
    "%D", "%S", "%W", "%P", "%.", "%%", "%(", "%)", "%-", "%]", "%[", "%z",
    "[ab]", "[^a]", "[a-c]", "[%a_]", "[]]", "[^]]", "[%]a]", "[a-]",
    "[-a]", "[b-a]", "[%d-x]", "[x-%%]", "[%s%p]", "[^%w]", "[.]", "[a%-b]",
    "[(]", "[%a-z]",
};
static const char *const SPECIAL_ITEMS[] = {
    "%b()", "%bab", "%bxx", "%b((", "%b)(", "%f[%w]", "%f[a]", "%f[^a]",
    "%f[%s]", "%f[%W]", "%1", "%1", "%2", "$", "^", "()",
};
static const char *const MALFORMED[] = {
    "%", "[a", "[", "[^", "%b", "%ba", "%fa", "%f", "%0", "%3", "[%", "[a-",
    "[a%]", "[%]",
};
static const char SUBJECT_BYTES[] = "aaaabbbxx  ()1.-%]A";

struct text {
    char buf[256];
    size_t len;
};

static void put(struct text *t, const char *s, size_t n)
{
    if (t->len + n <= sizeof t->buf) {
        memcpy(t->buf + t->len, s, n);
        t->len += n;
    }
}

static void puts_(struct text *t, const char *s) { put(t, s, strlen(s)); }

static void gen_pattern(struct text *t)
{
    int items = (int)rnd(7), open = 0, quantified = 0;
    t->len = 0;
    if (rnd(6) == 0)
        puts_(t, "^");
    for (int i = 0; i < items; i++) {
        uint32_t r = rnd(100);
        if (r < 55) {
            puts_(t, PICK(CLASSES));
            /* few quantifiers: backtracking is polynomial in the subject
             * with their number as exponent, for Lua's matcher too */
            if (quantified < 4 && rnd(3) == 0) {
                put(t, &"*+-?"[rnd(4)], 1);
                quantified++;
            }
        } else if (r < 66) {
            puts_(t, "(");
            open++;
        } else if (r < 74) {
            if (open > 0 || rnd(8) == 0) {
                puts_(t, ")");
                open--;
            }
        } else if (r < 90) {
            puts_(t, PICK(SPECIAL_ITEMS));
        } else if (r < 94) {
            puts_(t, PICK(MALFORMED));
        } else if (r < 96) {
            put(t, "", 1); /* a '\0' */
        } else {
            put(t, &SUBJECT_BYTES[rnd(sizeof SUBJECT_BYTES - 1)], 1);
        }
    }
    while (open-- > 0 && rnd(10) != 0)
        puts_(t, ")");
    if (rnd(8) == 0)
        puts_(t, "$");
}

static void gen_subject(struct text *t)
{
    size_t n = rnd(15);
    t->len = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t r = rnd(40);
        if (r == 0)
            put(t, "", 1);
        else if (r == 1)
            put(t, "\xe9", 1);
        else
            put(t, &SUBJECT_BYTES[rnd(sizeof SUBJECT_BYTES - 1)], 1);
    }
}

/* find/match/gmatch's init: mostly small integers around the subject. */
static void push_init(lua_State *L)
{
    uint32_t r = rnd(40);
    if (r == 0)
        lua_pushnil(L);
    else if (r == 1)
        lua_pushnumber(L, 1.5);
    else if (r == 2)
        lua_pushliteral(L, "2");
    else if (r == 3)
        lua_pushinteger(L, LUA_MININTEGER);
    else if (r == 4)
        lua_pushinteger(L, LUA_MAXINTEGER);
    else
        lua_pushinteger(L, (lua_Integer)rnd(40) - 20);
}

static void push_plain(lua_State *L)
{
    uint32_t r = rnd(8);
    if (r == 0)
        lua_pushboolean(L, 1);
    else if (r == 1)
        lua_pushboolean(L, 0);
    else if (r == 2)
        lua_pushinteger(L, 0); /* true for Lua */
    else
        lua_pushnil(L);
}

#define DIFF_CASES 6000

static void test_differential(void)
{
    lua_State *L = new_state();
    if (!eval(L, HARNESS) || lua_gettop(L) != 3) {
        CHECK(!"harness loads");
        lua_close(L);
        return;
    }
    /* stack: 1 check, 2 edge_cases, 3 compared */
    double t0 = now();
    lua_pushvalue(L, 2);
    CHECK(lua_pcall(L, 0, 2, 0) == LUA_OK);
    if (!lua_isnil(L, -2))
        fprintf(stderr, "edge case: %s\n", lua_tostring(L, -2));
    CHECK(lua_isnil(L, -2));
    long edge = (long)lua_tointeger(L, -1);
    lua_pop(L, 2);

    struct text pat, subj;
    int mismatches = 0;
    for (int k = 0; k < DIFF_CASES; k++) {
        gen_pattern(&pat);
        gen_subject(&subj);
        lua_pushvalue(L, 1);
        lua_pushlstring(L, subj.buf, subj.len);
        lua_pushlstring(L, pat.buf, pat.len);
        push_init(L);
        push_plain(L);
        lua_pushinteger(L, k);
        if (lua_pcall(L, 5, 1, 0) != LUA_OK || !lua_isnil(L, -1)) {
            if (++mismatches <= 10)
                fprintf(stderr, "case %d: %s\n", k, lua_tostring(L, -1));
        }
        lua_pop(L, 1);
    }
    CHECK_EQ_INT(mismatches, 0);
    lua_pushvalue(L, 3);
    lua_call(L, 0, 1);
    long compared = (long)lua_tointeger(L, -1);
    printf("lua_lmatch: %d generated + %ld edge cases, %ld calls compared in %.2f s\n",
           DIFF_CASES, edge, compared, now() - t0);
    CHECK(charge_calls > 0); /* B charged all along */
    lua_close(L);
}

/* ---- the budget ---------------------------------------------------------- */

/* Runs code that returns pcall(...) and checks it failed with the budget
 * error, soon, after charging about `budget` steps. */
static void check_stopped(lua_State *L, const char *code)
{
    set_budget(1000000, STOP_QUIETLY);
    double t0 = now();
    CHECK(eval(L, code));
    double took = now() - t0;
    CHECK(lua_gettop(L) == 2 && !lua_toboolean(L, 1));
    const char *msg = lua_tostring(L, 2);
    CHECK(msg != NULL && strstr(msg, "pattern matching budget exceeded") != NULL);
    CHECK(charge_calls > 0);
    CHECK(charged > budget && charged < budget + budget / 10);
    CHECK(took < 2.0);
    if (took >= 2.0 || msg == NULL || charged >= budget + budget / 10)
        fprintf(stderr, "%s: %.2f s, %lu steps in %lu calls, %s\n", code, took,
                charged, charge_calls, msg ? msg : "(no message)");
}

static void test_backtracking_stops(void)
{
    lua_State *L = new_state();
    check_stopped(L, "return pcall(B.find, string.rep('a', 3000), string.rep('a-', 12) .. 'b')");
    check_stopped(L, "return pcall(B.match, string.rep('a', 3000), string.rep('a*', 12) .. 'b')");
    check_stopped(L, "return pcall(B.gsub, string.rep('a', 3000), string.rep('a-', 12) .. 'b', 'x')");
    check_stopped(L, "return pcall(function() for w in B.gmatch(string.rep('a', 3000), "
                     "string.rep('(a-)', 12) .. 'b') do end end)");
    /* quadratic ones: %b scans to the end from every start, and so does
     * a back-reference against a long capture */
    check_stopped(L, "return pcall(B.find, string.rep('(', 200000), '%b()')");
    check_stopped(L, "return pcall(B.find, string.rep('a', 100000), '(a+)b')");
    check_stopped(L, "return pcall(B.find, string.rep('a', 20000) .. 'b', '(a*)%1%1b')");
    lua_close(L);
}

/* steps/len for code returning (steps are read from the counter). */
static double steps_per_byte(lua_State *L, const char *code, double len)
{
    set_budget(ULONG_MAX, STOP_QUIETLY);
    CHECK(eval(L, code));
    return (double)charged / len;
}

static void test_linear_work(void)
{
    lua_State *L = new_state();
    const double n = 1 << 20;
    CHECK(eval(L, "S = string.rep('a', 1 << 20) W = string.rep('abc def ', 1 << 17)"));

    double r = steps_per_byte(L, "local i, j = B.find(S, '%w+') assert(i == 1 and j == #S)", n);
    CHECK(r >= 1.0 && r <= 3.0);
    double r2 = steps_per_byte(L, "assert(#B.match(S, '(%w+)') == #S)", n);
    CHECK(r2 >= 1.0 && r2 <= 3.0);
    double r3 = steps_per_byte(L, "local s, k = B.gsub(W, '%w+', '<%0>') assert(k == 1 << 18)", n);
    CHECK(r3 >= 1.0 && r3 <= 8.0);
    double r4 = steps_per_byte(L, "local k = 0 for w in B.gmatch(W, '%a+') do k = k + 1 end "
                                  "assert(k == 1 << 18)", n);
    CHECK(r4 >= 1.0 && r4 <= 8.0);
    double r5 = steps_per_byte(L, "assert(B.find(S, 'b', 1, true) == nil)", n);
    CHECK(r5 >= 1.0 && r5 <= 1.01);
    if (r > 3.0 || r2 > 3.0 || r3 > 8.0 || r4 > 8.0 || r5 > 1.01)
        fprintf(stderr, "steps per byte: find %.2f match %.2f gsub %.2f gmatch %.2f plain %.2f\n",
                r, r2, r3, r4, r5);
    lua_close(L);
}

static void test_remainder_charged_once(void)
{
    lua_State *L = new_state();
    set_budget(ULONG_MAX, STOP_QUIETLY);
    CHECK(eval(L, "return B.match('hello', '(l+)')"));
    CHECK(lua_gettop(L) == 1 && strcmp(lua_tostring(L, 1), "ll") == 0);
    CHECK_EQ_INT(charge_calls, 1);
    CHECK(charged > 0 && charged < LMATCH_CHUNK);

    set_budget(ULONG_MAX, STOP_QUIETLY);
    CHECK(eval(L, "return B.find('hello world', 'o w')"));
    CHECK_EQ_INT(lua_tointeger(L, 1), 5);
    CHECK_EQ_INT(lua_tointeger(L, 2), 7);
    CHECK_EQ_INT(charge_calls, 1);

    /* one gmatch iteration is one call: three words and the last try */
    set_budget(ULONG_MAX, STOP_QUIETLY);
    CHECK(eval(L, "local t = {} for w in B.gmatch('a b c', '%a') do t[#t + 1] = w end "
                  "return table.concat(t)"));
    CHECK(strcmp(lua_tostring(L, 1), "abc") == 0);
    CHECK_EQ_INT(charge_calls, 4);
    lua_close(L);
}

static void test_charge_error_propagates(void)
{
    lua_State *L = new_state();
    const char *slow = "return pcall(B.gsub, string.rep('a', 3000), string.rep('a-', 12) .. 'b', 'x')";

    set_budget(10000, STOP_WITH_VALUE);
    CHECK(eval(L, slow));
    CHECK(!lua_toboolean(L, 1) && lua_istable(L, 2));
    lua_getfield(L, 2, "why");
    CHECK(lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), "over budget") == 0);

    set_budget(10000, STOP_BY_RAISING);
    CHECK(eval(L, slow));
    CHECK(!lua_toboolean(L, 1));
    CHECK(lua_isstring(L, 2) && strcmp(lua_tostring(L, 2), "raised by charge") == 0);

    /* and matching works again afterwards */
    set_budget(ULONG_MAX, STOP_QUIETLY);
    CHECK(eval(L, "return B.gsub('hello', 'l', 'L')"));
    CHECK(strcmp(lua_tostring(L, 1), "heLLo") == 0);
    lua_close(L);
}

static void test_gmatch_in_coroutine(void)
{
    lua_State *L = new_state();
    set_budget(ULONG_MAX, STOP_QUIETLY);
    CHECK(eval(L, "local it = B.gmatch('a b', '%a') "
                  "local co = coroutine.create(function() return it(), it() end) "
                  "return co, coroutine.resume(co)"));
    CHECK(lua_gettop(L) == 4 && lua_toboolean(L, 2));
    CHECK(strcmp(lua_tostring(L, 3), "a") == 0 && strcmp(lua_tostring(L, 4), "b") == 0);
    CHECK(charged_L != NULL && charged_L == lua_tothread(L, 1));
    lua_close(L);
}

static void test_no_charge_function(void)
{
    lua_State *L = new_state();
    lua_newtable(L);
    lmatch_register(L, -1, NULL);
    lua_setglobal(L, "U");
    set_budget(0, STOP_QUIETLY);
    CHECK(eval(L, "return U.gsub(string.rep('ab', 5000), '(a)(b)', '%2%1')"));
    CHECK_EQ_INT(lua_tointeger(L, 2), 5000);
    CHECK_EQ_INT(charge_calls, 0);
    lua_close(L);
}

int main(void)
{
    RUN(test_differential);
    RUN(test_backtracking_stops);
    RUN(test_linear_work);
    RUN(test_remainder_charged_once);
    RUN(test_charge_error_propagates);
    RUN(test_gmatch_in_coroutine);
    RUN(test_no_charge_function);
    return unit_report("lua_lmatch");
}
