-- route.lua -- routing helpers: failover, gutter pools, replication,
-- namespaces, sliding sessions, cluster warm-up, shadowing, near caches.
--
--   local route = require "gateway.route"
--
-- Everything here is plain Lua on top of the public request-time API
-- (pool:get/gat/set/add/delete/forward, memcache.wait, memcache.spawn,
-- memcache.hit/miss/error, memcache.crc32, a memcache.internal store): a
-- config could carry its own copy.
--
-- Each helper is called at CONFIG time, checks its arguments (a mistake is
-- reported at the config's file:line), and returns a ROUTE FUNCTION
-- function(req) -> pool | response.  A route function can be given to
-- memcache.route, or passed as a TARGET to another helper: wherever a helper
-- takes a target, a pool or a route function will do.
--
-- route.call(target, req) -> res                          · request time
--     A pool: target:forward(req).  A route function: its result, with a
--     pool it returns forwarded.  res is always a response object.  req
--     may also be a copy (see CAS ON REPLICAS): a pool then gets the set
--     it stands for.
--
-- route.failover(t1, t2, ..., { on_miss = true }?) -> route
--     Tries the targets in order while the answer is an error (res.ok ==
--     false) and, with on_miss, while a retrieval (get/gets/gat/gats)
--     misses.  Returns the last answer (a miss rather than a later error).
--     Each target sees the request as the client sent it.
--
-- route.cap_ttl(target, seconds) -> route
--     Caps the expiry of set/add/replace/append/prepend/cas/touch/gat/gats
--     at `seconds` (0, "never", becomes `seconds`), then goes to target.
--     A gutter pool:  route.failover(main, route.cap_ttl(gutter, 10))
--
-- route.replicate{ t1, t2, ..., wait = "all" | "one" } -> route
--     Writes (set/add/replace/append/prepend/delete/touch/incr/decr) go to
--     every target at once.  wait = "all" (default) answers when all are
--     done: the first error if any failed, else t1's answer.  wait = "one"
--     answers with the first good answer; the others finish in the
--     background.  get/gat go to t1, then to the next target on a miss or
--     an error.  With wait = "one" a target still running when the answer
--     goes out must not touch req any more: give pools, or route functions
--     that only rewrite req and return a pool.
--     CAS ON REPLICAS (here and in sliding_session).  A cas token is only
--     meaningful on the server that issued it, so one target decides:
--       * the DECIDING target is the first one whose answer is not an error
--         (normally t1; while t1 fails, the next healthy one);
--       * a cas goes to it alone.  EXISTS / NOT_FOUND are the answer as is,
--         and nothing is written elsewhere.  STORED: the client's value is
--         then copied to every other target as a plain set (same flags and
--         exptime), all at once; wait = "all" answers STORED once every
--         copy is stored (else the copy's error, as for a set: the
--         deciding target holds the value), wait = "one" at once, the
--         copies finishing in the background;
--       * gets/gats are answered by the deciding target alone (the next
--         one only if it fails): its cas is the one the cas will be
--         checked against.  A miss there is a miss, even if another copy
--         has the key (its cas would be refused anyway); get/gat still
--         fall back to another copy.
--     So the copies never diverge except while a target is failing (a
--     copy it misses is missing there when it comes back, as for any
--     write).  A client sees, while t1 fails, gets and cas served by t2;
--     when t1 is back, a cas made with t2's token is checked by t1 against
--     t1's own version, so it is normally refused (EXISTS or NOT_FOUND) and
--     the client reads again, now from t1.  Two cas on one key
--     acknowledged in quick succession from different worker threads may
--     have their copies reach a replica in either order, as two concurrent
--     sets may.
--     A copy reaches a route-function target as a request TABLE (command
--     "set", key, value, flags, exptime, noreply, conn, listener): the
--     helpers here and functions that rewrite req and return a pool handle
--     it; a function that calls pool:forward(req) itself cannot (forward
--     raises on a table).
--
-- route.namespace(prefix, target) -> route
--     The backend key becomes prefix .. key; clients keep seeing their own
--     keys.  With a pool target the core's fast path and multi-get batching
--     are kept.
--
-- route.sliding_session{ p1, p2?, ..., ttl = 1200, wait = "all" | "one" } -> route
--     Sessions that expire `ttl` seconds after their last use.  A get/gets
--     is answered by one p:gat(key, ttl), which reads the session and
--     extends it; writes are stored with exptime = ttl.  With several pools
--     every pool holds every session: a read does gat on all of them at
--     once (so all copies stay alive) and is answered by the pools' order,
--     not by the fastest: a get with the hit of the first pool that has one
--     (a pool that misses or fails is passed over), a gets with the answer
--     of the first pool that does not fail (its cas: see CAS ON REPLICAS
--     above).  A slow first pool holds a read back up to its timeout; a
--     dead one fails at once.  Writes go to all, answered as by
--     route.replicate with that `wait`; a cas follows CAS ON REPLICAS, the
--     copies stored with the session ttl.  Pools only.
--
-- route.warmup{ new = pool, old = pool, ttl = seconds? } -> route
--     Moving from the `old` cluster to `new`.  Reads go to new; on a miss
--     the key is read from old and, on a hit, added to new (add: a fresher
--     value set on new meanwhile wins) with the time old's copy had left
--     to live (one meta get, `mg v f c t`, reads value and TTL at once;
--     mcrouter's WarmUpRoute does the same), capped at `ttl` when given.
--     An item without expiry stays without (or gets `ttl`).  An old pool
--     that is memcache.internal or protocol = "text" has no TTL to read:
--     it is read with get and its copies get `ttl` (600 s when not given).  For a get the
--     fill runs in the background and the hit is answered at once; gets and
--     gat/gats fill first and then ask new again (for its cas / expiry).
--     Writes go to new; deletes go to old FIRST, then to new (or old would
--     resurrect the key).  A fill never brings back a value deleted through
--     the gateway after the fill read it: after its add stored, the fill
--     reads old again, and if old no longer has that version (same cas) it
--     takes its copy out of new.  Any delete the fill raced has gone
--     through old by then (old is deleted before new, and the fill's add
--     came after the delete on new, or the delete removed it).  The check
--     is on the servers, so it holds across worker threads; a false alarm
--     costs a miss, never a stale value.
--
-- route.shadow{ target = t, shadow = s, fraction = 0.1 } -> route
--     The answer comes from target.  A fraction of the keys (always the same
--     ones: memcache.crc32(key) < fraction * 2^32) also have their requests
--     sent to shadow in the background, never waited for.  shadow should be
--     a pool (a route function for it must return a pool).
--
-- route.near_cache{ target, size = "16MB", ttl = 2 } -> route
--     A small in-process cache (memcache.internal, shared by every worker
--     thread) in front of target.  A plain get is answered from it when
--     present, else from target, whose hit is kept for ttl seconds.
--     gets/gat/gats bypass it (they need the real cas / touch).  Every
--     write, delete, touch, incr and decr is forwarded and drops the near
--     copy.  No get, on any thread, can put back a value older than an
--     acknowledged write through the gateway: each key has a GENERATION in
--     the near store (the cas of a marker item), a get takes it before it
--     reads target and its copy is served only while that generation is
--     current, and a write starts a new one after target has answered and
--     before the client is.  A value changed behind the gateway's back is
--     seen after at most ttl seconds.  Keys over 248 bytes are not kept
--     near.
local memcache = memcache
local type, select, ipairs, pairs, error, pcall, tostring, getmetatable, setmetatable,
      math, os, string =
      type, select, ipairs, pairs, error, pcall, tostring, getmetatable, setmetatable,
      math, os, string

local route = {}

local function set_of(...)
  local s = {}
  for _, v in ipairs({ ... }) do s[v] = true end
  return s
end

local RETRIEVAL = set_of("get", "gets", "gat", "gats")
local STORAGE = set_of("set", "add", "replace", "append", "prepend", "cas")
local WRITE = set_of("set", "add", "replace", "append", "prepend", "cas",
  "delete", "touch", "incr", "decr")
local HAS_EXPTIME = set_of("set", "add", "replace", "append", "prepend", "cas",
  "touch", "gat", "gats")
local THIRTY_DAYS = 60 * 60 * 24 * 30 -- memcached: above this an exptime is a unix time

local function is_pool(v)
  if type(v) ~= "userdata" then return false end
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__name == "memcache.pool"
end
route.is_pool = is_pool

local function status_of(v) return v.status end

-- A response object: the core's, or anything that is not a pool and has a
-- string status.
local function is_response(v)
  local t = type(v)
  if t ~= "userdata" and t ~= "table" then return false end
  local mt = getmetatable(v)
  if type(mt) == "table" then
    if mt.__name == "memcache.response" then return true end
    if mt.__name == "memcache.pool" or mt.__name == "memcache.request" then return false end
  end
  local ok, s = pcall(status_of, v)
  return ok and type(s) == "string"
end
route.is_response = is_response

-- Config-time checks.  `level` 3: the config line that called the helper
-- that called these.
local function check_target(fname, v, what)
  if not (is_pool(v) or type(v) == "function") then
    error(string.format("%s: %s must be a pool or a route function, got %s",
      fname, what, type(v)), 3)
  end
end

local function check_pool(fname, v, what)
  if not is_pool(v) then
    error(string.format("%s: %s must be a pool, got %s", fname, what, type(v)), 3)
  end
end

local function check_opts(fname, t, allowed)
  if type(t) ~= "table" or is_pool(t) then
    error(string.format("%s expects a table, got %s", fname, type(t)), 3)
  end
  for k in pairs(t) do
    if type(k) ~= "number" and not allowed[k] then
      error(string.format("%s: unknown option '%s'", fname, tostring(k)), 3)
    end
  end
end

local function check_seconds(fname, name, v)
  if math.type(v) ~= "integer" or v < 1 or v > THIRTY_DAYS then
    error(string.format("%s: %s must be a whole number of seconds from 1 to %d, got %s",
      fname, name, THIRTY_DAYS, tostring(v)), 3)
  end
end

local function check_wait(fname, v)
  if v ~= "all" and v ~= "one" then
    error(string.format("%s: wait must be \"all\" or \"one\", got %s", fname, tostring(v)), 3)
  end
end

-- The positional targets t[1..n] of a table argument; nothing else may be
-- numbered.
local function list_targets(fname, t, check, min)
  local n = #t
  for k in pairs(t) do
    if type(k) == "number" and (math.type(k) ~= "integer" or k < 1 or k > n) then
      error(string.format("%s: the targets must be a list (t[1]..t[n])", fname), 3)
    end
  end
  if n < min then
    error(string.format("%s needs at least %d target%s", fname, min, min > 1 and "s" or ""), 3)
  end
  for i = 1, n do
    if check == check_pool then
      if not is_pool(t[i]) then
        error(string.format("%s: #%d must be a pool, got %s", fname, i, type(t[i])), 3)
      end
    elseif not (is_pool(t[i]) or type(t[i]) == "function") then
      error(string.format("%s: target #%d must be a pool or a route function, got %s",
        fname, i, type(t[i])), 3)
    end
  end
  local list = {}
  for i = 1, n do list[i] = t[i] end
  return list
end

-- Request-time plumbing -----------------------------------------------------

-- Remember what a target may rewrite (key, exptime, flags); the returned
-- function puts it back, so that the next target sees the client's request.
local function saver(req)
  local key, exptime, flags = req.key, req.exptime, req.flags
  return function()
    if req.key ~= key then req.key = key end
    if req.exptime ~= exptime then req.exptime = exptime end
    if req.flags ~= flags then req.flags = flags end
  end
end

-- A COPY is a plain set the library makes itself: the new value of a cas
-- that one replica stored, going to the other replicas (see cas_replicated).
-- The core has no request object for it, so it is a table with the fields
-- of one (command "set", key, value, flags, exptime, noreply, conn,
-- listener), owned by nobody else: a target may rewrite key, flags and
-- exptime as it would a req's, and it stays valid in the background.
-- Pools, and route functions that rewrite req and return a pool (or are
-- helpers of this library), take copies; a route function that calls
-- pool:forward(req) itself does not (forward raises on a table).
local COPY = {}
local function is_copy(v) return getmetatable(v) == COPY end

local function copy_of(req)
  return setmetatable({ command = "set", key = req.key, value = req.value,
    flags = req.flags or 0, exptime = req.exptime or 0, noreply = false,
    conn = req.conn, listener = req.listener }, COPY)
end

-- pool:forward(req), or for a copy the set it stands for, as a response.
local function forward(pool, req)
  if not is_copy(req) then return (pool:forward(req)) end
  local ok, err = pool:set(req.key, req.value, req.exptime, req.flags)
  if ok then return memcache.stored() end
  if ok == false then return memcache.not_stored() end
  return memcache.error(tostring(err))
end

local function call(target, req)
  if is_pool(target) then return forward(target, req) end
  if type(target) ~= "function" then
    error("bad argument #1 to 'route.call' (pool or function expected, got " .. type(target) .. ")", 2)
  end
  local r = target(req)
  if is_pool(r) then return forward(r, req) end
  if is_response(r) then return r end
  error("route returned " .. type(r) .. ", not a pool or a response", 2)
end
route.call = call

-- What a route function returns to go to target: the pool itself (the
-- core's fast path) or the target function's own answer.
local function pass(target, req)
  if is_pool(target) then return target end
  return target(req)
end

-- Send req to every target at once (memcache.wait), each seeing the
-- client's request.  Returns the wait's results list; results[i] is
-- { ok, res } for a target that answered, { nil, message } for one that
-- raised, nil for one still running.
local function fan_out(targets, req, need)
  local restore = saver(req)
  local tasks = {}
  for i = 1, #targets do
    local t = targets[i]
    tasks[i] = function()
      restore()
      local res = call(t, req)
      return res.ok, res
    end
  end
  return (memcache.wait(tasks, need and { need = need } or nil))
end

-- The answer of a fan-out: wait "one": the first good answer; "all": the
-- first error if any, else target 1's answer.
local function pick(results, n, wait)
  local first_err
  for i = 1, n do
    local r = results[i]
    if r then
      if r[1] then
        if wait == "one" then return r[2] end
      elseif first_err == nil then
        first_err = is_response(r[2]) and r[2] or memcache.error("route task: " .. tostring(r[2]))
      end
    end
  end
  if first_err then return first_err end
  if results[1] then return results[1][2] end
  return memcache.error("no answer from any replica")
end

local function write_all(targets, req, wait)
  local results = fan_out(targets, req, wait == "one" and 1 or nil)
  return pick(results, #targets, wait)
end

-- Targets in order while they miss or fail: the first hit, else a miss,
-- else the last error.
local function read_first(targets, req)
  local restore = saver(req)
  local miss, res
  for i = 1, #targets do
    if i > 1 then restore() end
    res = call(targets[i], req)
    if res.hit then return res end
    if res.ok and not miss then miss = res end
  end
  return miss or res
end

-- Targets in order while they FAIL: the first answer that is not an error
-- (a hit or a miss), else the last error.  For gets/gats on replicas: the
-- answer, and so its cas, comes from the target that decides a cas (see
-- cas_replicated), never from another copy whose cas that target would
-- refuse.
local function read_deciding(targets, req)
  local restore = saver(req)
  local res
  for i = 1, #targets do
    if i > 1 then restore() end
    res = call(targets[i], req)
    if res.ok then return res end
  end
  return res
end

-- A cas on replicas.  A cas token means something only on the server that
-- issued it, and each replica numbers its own versions, so sending the cas
-- to every copy makes them disagree (one STORED, the others EXISTS or
-- NOT_FOUND).  So ONE target decides:
--   * the cas goes to the targets in order until one answers something that
--     is not an error: that first healthy target is the DECIDING one (the
--     one gets/gats read, read_deciding; normally target 1);
--   * EXISTS / NOT_FOUND / NOT_STORED: that is the answer, and nothing is
--     written anywhere else;
--   * STORED: the client's value goes to every other target as a plain set
--     (a copy: same key, value, flags and exptime, each target applying its
--     own rewrites), all at once.  wait = "all": the answer is STORED when
--     every copy is stored, else the first copy's error (as a set that
--     failed on a replica: the deciding target does hold the value).
--     wait = "one": STORED at once; the copies finish in the background.
--   * every target failed: the last error.
local function cas_replicated(targets, req, wait)
  local restore = saver(req)
  local res, decider
  for i = 1, #targets do
    if i > 1 then restore() end
    res = call(targets[i], req)
    if res.ok then
      decider = i
      break
    end
  end
  if not decider or res.status ~= "STORED" then return res end
  restore()
  local copies = {}
  for i = 1, #targets do
    if i ~= decider then
      local t, q = targets[i], copy_of(req)
      copies[#copies + 1] = function()
        local r = call(t, q)
        return r.ok, r
      end
    end
  end
  if wait == "one" then
    for _, copy in ipairs(copies) do memcache.spawn(copy) end
    return res
  end
  local results = memcache.wait(copies)
  for j = 1, #copies do
    local r = results[j]
    if not r then return memcache.error("a replica did not finish the copy of a cas") end
    if not r[1] then
      return is_response(r[2]) and r[2] or memcache.error("route task: " .. tostring(r[2]))
    end
  end
  return res
end

-- The helpers -------------------------------------------------------------

function route.failover(...)
  local fname = "route.failover"
  local n = select("#", ...)
  local targets, opts = {}, {}
  for i = 1, n do
    local t = select(i, ...)
    if i == n and i > 1 and type(t) == "table" and not is_pool(t) then
      opts = t
    elseif type(t) == "table" and not is_pool(t) then
      error(fname .. " takes its targets as arguments: route.failover(a, b, { on_miss = true })", 2)
    else
      check_target(fname, t, "target #" .. i)
      targets[#targets + 1] = t
    end
  end
  if #targets < 2 then error(fname .. " needs at least 2 targets", 2) end
  check_opts(fname, opts, set_of("on_miss"))
  if #opts > 0 then error(fname .. ": options are { on_miss = true }", 2) end
  if opts.on_miss ~= nil and type(opts.on_miss) ~= "boolean" then
    error(fname .. ": on_miss must be true or false", 2)
  end
  local on_miss = opts.on_miss == true
  return function(req)
    local restore = saver(req)
    local retrieval = RETRIEVAL[req.command]
    local miss, res
    for i = 1, #targets do
      if i > 1 then restore() end
      res = call(targets[i], req)
      if res.ok then
        if not (on_miss and retrieval and not res.hit) then return res end
        miss = res
      end
    end
    if not res.ok and miss then return miss end
    return res
  end
end

function route.cap_ttl(target, seconds)
  check_target("route.cap_ttl", target, "the target")
  check_seconds("route.cap_ttl", "seconds", seconds)
  return function(req)
    if HAS_EXPTIME[req.command] then
      local e = req.exptime
      if e == 0 or (e > seconds and e <= THIRTY_DAYS)
          or (e > THIRTY_DAYS and e - os.time() > seconds) then
        req.exptime = seconds
      end
    end
    return pass(target, req)
  end
end

function route.replicate(t)
  local fname = "route.replicate"
  check_opts(fname, t, set_of("wait"))
  local targets = list_targets(fname, t, check_target, 2)
  local wait = t.wait or "all"
  check_wait(fname, wait)
  return function(req)
    local cmd = req.command
    if cmd == "cas" then return cas_replicated(targets, req, wait) end
    if WRITE[cmd] then return write_all(targets, req, wait) end
    if cmd == "gets" or cmd == "gats" then return read_deciding(targets, req) end
    return read_first(targets, req)
  end
end

function route.namespace(prefix, target)
  if type(prefix) ~= "string" or not memcache.valid_key(prefix) then
    error("route.namespace: the prefix must be a non-empty string of key characters "
      .. "(no spaces or control characters), got " .. (type(prefix) == "string"
        and string.format("%q", prefix) or type(prefix)), 2)
  end
  check_target("route.namespace", target, "the target")
  if is_pool(target) then
    return function(req)
      req.key = prefix .. req.key
      return target
    end
  end
  return function(req)
    req.key = prefix .. req.key
    return target(req)
  end
end

-- Read a session from several pools at once, extending it on all of them
-- (a gat on each), and answer by the pools' ORDER, not by who is fastest:
--   * get/gat: the hit of the first pool that has one (a pool that misses or
--     fails is passed over: a replica restarted empty loses nobody's
--     session);
--   * gets/gats (decide_on_miss): the answer of the first pool that did not
--     fail, hit or miss: its cas is the one a cas will be decided by (see
--     cas_replicated); a copy elsewhere would carry a cas that pool refuses.
-- The wait ends as soon as the answer is known (a later pool's gat goes on
-- in the background); an earlier pool still running holds it back, up to
-- its timeout.  A dead pool fails at once.
local MISSED = {}
local function gat_ordered(pools, key, exptime, decide_on_miss)
  local n = #pools
  local got = {} -- [i]: { value, flags, cas } | MISSED | { err = e }; nil while running
  local function decided()
    for i = 1, n do
      local g = got[i]
      if g == nil then return false end
      if g[1] ~= nil or (g == MISSED and decide_on_miss) then return true end
    end
    return false
  end
  local tasks = {}
  for i = 1, n do
    local p = pools[i]
    tasks[i] = function()
      local value, flags, cas = p:gat(key, exptime)
      if value ~= nil then got[i] = { value, flags, cas }
      elseif flags == nil then got[i] = MISSED
      else got[i] = { err = flags } end
      return decided()
    end
  end
  memcache.wait(tasks, { need = 1 })
  local missed, err
  for i = 1, n do
    local g = got[i]
    if g and g[1] ~= nil then return memcache.hit(g[1], g[2], g[3]) end
    if g == MISSED then
      if decide_on_miss then return memcache.miss() end
      missed = true
    elseif g and not err then
      err = g.err
    end
  end
  if missed or not err then return memcache.miss() end
  return memcache.error(tostring(err))
end

function route.sliding_session(t)
  local fname = "route.sliding_session"
  check_opts(fname, t, set_of("pool", "ttl", "wait"))
  if t.pool ~= nil then
    if #t > 0 then error(fname .. ": give the pools as a list or as pool =, not both", 2) end
    check_pool(fname, t.pool, "pool")
  end
  local pools = t.pool and { t.pool } or list_targets(fname, t, check_pool, 1)
  local ttl = t.ttl or 1200
  check_seconds(fname, "ttl", ttl)
  local wait = t.wait or "all"
  check_wait(fname, wait)

  if #pools == 1 then
    local pool = pools[1]
    return function(req)
      local cmd = req.command
      if cmd == "get" or cmd == "gets" then
        local value, flags, cas = pool:gat(req.key, ttl)
        if value ~= nil then return memcache.hit(value, flags, cas) end
        if flags ~= nil then return memcache.error(flags) end -- nil, err
        return memcache.miss()
      end
      if STORAGE[cmd] or cmd == "touch" then req.exptime = ttl end
      return pool
    end
  end

  return function(req)
    local cmd = req.command
    if cmd == "get" or cmd == "gets" then return gat_ordered(pools, req.key, ttl, cmd == "gets") end
    if cmd == "gat" or cmd == "gats" then
      return gat_ordered(pools, req.key, req.exptime, cmd == "gats")
    end
    if STORAGE[cmd] or cmd == "touch" then req.exptime = ttl end
    if cmd == "cas" then return cas_replicated(pools, req, wait) end
    if WRITE[cmd] then return write_all(pools, req, wait) end
    return read_first(pools, req)
  end
end

function route.warmup(t)
  local fname = "route.warmup"
  check_opts(fname, t, set_of("new", "old", "ttl"))
  if #t > 0 then error(fname .. ": name the pools: route.warmup{ new = p, old = q }", 2) end
  check_pool(fname, t.new, "new")
  check_pool(fname, t.old, "old")
  if t.new == t.old then error(fname .. ": new and old are the same pool", 2) end
  local new, old, cap = t.new, t.old, t.ttl
  if cap ~= nil then check_seconds(fname, "ttl", cap) end
  local old_meta = old:protocol() == "meta"

  -- The exptime for a copy of an item that had `left` seconds to live (-1:
  -- no expiry), within the cap.
  local function copy_ttl(left)
    if left == nil then return cap or 600 end -- an internal pool: no TTL read
    if left < 0 then return cap or 0 end
    left = math.max(left, 1) -- 0 would mean "never"
    return cap and math.min(left, cap) or left
  end

  -- value, flags, cas and the time left of key on old (nil: a miss or a
  -- failure).
  local function read_old(key)
    if not old_meta then
      local value, flags, cas = old:get(key)
      return value, flags, cas, nil
    end
    local r = old:mg(key, "v f c t")
    if not r then return nil end
    return r.value, r.flags, r.cas, r.ttl
  end

  -- The cas old has for key now (nil: gone), without fetching its value.
  local function old_cas(key)
    if not old_meta then
      local _, _, cas = old:get(key)
      return cas
    end
    local r = old:mg(key, "c")
    return r and r.cas
  end

  -- Copy key's version from old (value, flags, and the cas it had there)
  -- into new, without ever resurrecting a value deleted through the
  -- gateway.  The coordination is on the servers themselves, so it holds
  -- across worker threads and gateway processes:
  --   * a delete goes to old FIRST and to new only once old has answered;
  --   * a fill `add`s to new (a value written on new meanwhile wins), and,
  --     if that stored, reads old AGAIN: if old no longer has that very
  --     version (same cas), something deleted it while we copied, and our
  --     copy is taken out of new again.
  -- Why that suffices: a stale copy can only outlive a delete D if the
  -- fill read old before D's delete on old (else it read a miss) and added
  -- to new after D's delete on new (else D deleted it).  Then its second
  -- read of old comes after its add, so after D's delete on new, so after
  -- D's delete on old: it sees the key gone, and deletes its copy.  A
  -- write through the gateway goes to new, where it makes the add fail.
  -- The cost of a false alarm (old's copy expired meanwhile, or a client's
  -- fresh set lands between our add and our delete) is a miss, never a
  -- stale value.  Returns whether new keeps the copy.
  local function fill(key, value, flags, cas, exptime)
    if not new:add(key, value, exptime, flags) then return false end
    if old_cas(key) == cas then return true end
    local v, f = new:get(key)
    if v == value and f == flags then new:delete(key) end
    return false
  end

  return function(req)
    local cmd = req.command
    if cmd == "delete" then
      -- old first, then new: see fill
      local r_old = old:forward(req)
      local r_new = new:forward(req)
      if not r_new.ok then return r_new end
      if not r_old.ok then return r_old end
      if r_new.status ~= "DELETED" and r_old.status == "DELETED" then return r_old end
      return r_new
    end
    if not RETRIEVAL[cmd] then return new end

    local key = req.key
    local res = new:forward(req)
    if res.hit or not res.ok then return res end
    local value, flags, cas, left = read_old(key)
    if value == nil then return res end -- a miss in old too (or old failed): new's miss
    if cmd == "get" then
      memcache.spawn(fill, key, value, flags, cas, copy_ttl(left))
      return memcache.hit(value, flags)
    end
    -- gets / gat / gats: the answer must carry new's cas and expiry
    fill(key, value, flags, cas, cmd == "gets" and copy_ttl(left) or req.exptime)
    return (new:forward(req))
  end
end

function route.shadow(t)
  local fname = "route.shadow"
  check_opts(fname, t, set_of("target", "shadow", "fraction"))
  check_target(fname, t.target, "target")
  check_target(fname, t.shadow, "shadow")
  local fraction = t.fraction == nil and 0.1 or t.fraction
  if type(fraction) ~= "number" or not (fraction >= 0 and fraction <= 1) then
    error(fname .. ": fraction must be a number from 0 to 1, got " .. tostring(fraction), 2)
  end
  local target, shadow = t.target, t.shadow
  local limit = fraction * 4294967296 -- crc32 is in [0, 2^32)
  local shadow_pool = is_pool(shadow)
  return function(req)
    if memcache.crc32(req.key) < limit then
      if shadow_pool then
        memcache.spawn(function() forward(shadow, req) end)
      else
        local restore = saver(req)
        memcache.spawn(function() call(shadow, req) end)
        restore()
      end
    end
    return pass(target, req)
  end
end

function route.near_cache(t)
  local fname = "route.near_cache"
  check_opts(fname, t, set_of("target", "size", "ttl"))
  if t.target ~= nil and t[1] ~= nil then
    error(fname .. ": give the target as t[1] or as target =, not both", 2)
  end
  if #t > 1 then error(fname .. " takes one target", 2) end
  local target = t.target or t[1]
  check_target(fname, target, "the target")
  local ttl = t.ttl or 2
  check_seconds(fname, "ttl", ttl)
  local ok, near = pcall(memcache.internal, { size = t.size or "16MB" })
  if not ok then
    error(fname .. ": " .. tostring(near):gsub("^[^:]*:%d+: ", ""):gsub("^memcache%.internal: ", ""), 2)
  end

  -- The near store is one memcache.internal, shared by every worker thread;
  -- a get on one thread may be reading the target while a write on another
  -- is acknowledged.  So that such a get cannot put the old value back
  -- after the write dropped it, each key has a GENERATION, and a copy is
  -- good only for the generation it was read in:
  --   * "g:" .. key holds a marker whose cas (the store numbers every
  --     change of every item, and never reuses a number) is the key's
  --     current generation;
  --   * "v:" .. key holds the near copy: the generation it was read in
  --     (8 bytes), then the value;
  --   * a get that misses takes the generation (creating the marker if it
  --     is absent) BEFORE it reads the target, and stores its copy under
  --     that generation;
  --   * a write, once the target has answered and before the client is
  --     answered, sets the marker again (a new generation) and drops the
  --     copy (it drops it before going out as well, so that a get coming
  --     after it on its own worker goes to the target);
  --   * a copy is served only while its generation is the current one.
  -- A get whose read of the target came before a write was applied took
  -- its generation before that too, so before the write's new generation:
  -- whenever its copy lands, it is never served once the write is
  -- answered.  A marker that expires or is evicted comes back with a new
  -- number, so its copies only turn into misses.  Keys longer than
  -- NEAR_KEY_MAX (the prefixes must fit in memcached's 250 bytes) are
  -- not kept near.
  local NEAR_KEY_MAX = 248
  local marker_ttl = ttl + 10 -- outlives the copies made in its generation
  local pack, unpack = string.pack, string.unpack

  local function generation(gk)
    local _, _, gen = near:gat(gk, marker_ttl)
    if gen == nil then
      near:add(gk, "g", marker_ttl)
      _, _, gen = near:get(gk)
    end
    return gen
  end

  return function(req)
    local cmd = req.command
    if cmd == "get" then
      local key = req.key
      if #key > NEAR_KEY_MAX then return pass(target, req) end
      local vk, gk = "v:" .. key, "g:" .. key
      local copy, flags = near:get(vk)
      if copy ~= nil and #copy >= 8 then
        local _, _, gen = near:get(gk)
        if gen ~= nil and unpack(">j", copy) == gen then
          return memcache.hit(copy:sub(9), flags)
        end
      end
      local gen = generation(gk) -- before the target is read
      local res = call(target, req)
      if res.hit and gen ~= nil then near:set(vk, pack(">j", gen) .. res.value, ttl, res.flags) end
      return res
    end
    if WRITE[cmd] then
      local key = req.key
      if #key > NEAR_KEY_MAX then return pass(target, req) end
      local vk, gk = "v:" .. key, "g:" .. key
      near:delete(vk)
      local res = call(target, req)
      near:set(gk, "g", marker_ttl) -- a new generation: older copies are dead
      near:delete(vk)
      return res
    end
    return pass(target, req)
  end
end

return route
