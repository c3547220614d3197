-- binary_spec.lua -- the gateway speaks memcached's binary protocol to its
-- clients (a connection whose first byte is 0x80), response for response as
-- memcached 1.6.18 does.
--
-- Differential.  A memcached 1.6.18 started with `-B binary`, talked to
-- directly, is the reference; the gateway sits in front of two fresh
-- memcached servers (python-memcached placement, 2 worker threads; toward
-- them requests travel in the meta protocol, so they need no -B).  Every
-- case sends the same requests to both and the two transcripts must match
-- response by response, field by field: magic, opcode, status, data type,
-- opaque, cas, extras, key and value (the key and extras lengths and the
-- total body length follow from those).  Before each case both sides are
-- flushed (the reference with a binary Flush, the gateway with a text
-- flush_all, which reaches both its servers) and each case runs on a fresh
-- connection.
--
-- A case is a list of steps.  A step is a request, a list of requests, or
-- a function of what its side answered so far (for a cas that side gave,
-- ctx.cas(tag)).  Each step goes out in one write with a Noop appended (its
-- own opaque), and its answer is read response by response up to that
-- Noop's response: quiet commands answer only on error (a GetQ's miss not
-- at all), so the Noop frames the answer.  After the last step an empty
-- step (a Noop alone) must be answered by that Noop alone: nothing late may
-- come.  A closed connection ends the case (it is part of the transcript:
-- "closed"); so does a reply that is no binary response.  Every request has
-- a random 32-bit opaque (the same on both sides; BINARY_SPEC_SEED=<n>
-- repeats a run's), so that an echo of the wrong one shows.
--
-- Normalised (on both sides alike):
-- - cas values.  Each server numbers its own items, and the gateway's items
--   live on two servers, so the numbers differ.  A cas of 0 stays 0 (memcached
--   gives 0 on errors, misses, Delete, Noop, Flush, Stat...).  A non-zero cas
--   becomes "c<n>": the n-th distinct cas seen in the case for the key of the
--   request it answers (the request found by its opaque).  So the relations
--   still show: a Get gives the cas the Set gave; an Append, an Increment or
--   a Set with cas gives a new one; a Touch keeps it.  Cases that send a cas
--   use the one their own side answered; a wrong cas is that one plus one.
-- - the body of a successful Version: "1.6.18" on memcached, the gateway's
--   own version string on the gateway; any "<digits>.<digits>.<digits>..."
--   reads as "<version>".
-- - Stat runs: a run of Stat responses (status 0) ending with the empty one
--   (no key, no body) reads as one entry, "Stat run, some entries" (or "no
--   entries"), after each response of the run was checked: magic 0x81,
--   opcode 0x10, no extras, data type 0, cas 0, the request's opaque, a key.
--   The gateway has its own statistics, so names and values are not
--   compared.  A Stat that fails (an unknown group) is compared exactly.
-- Nothing else.
--
-- Where memcached 1.6.18 does something no client can rely on (it loses the
-- framing of the stream), the case says so (opts.gateway: what the gateway
-- must answer instead, and why); the reference's own answer is pinned there
-- too (opts.want).
--
-- BINARY_SPEC_GATEWAY=memcached runs every part with a second `-B binary`
-- memcached in the gateway's place (the /route checks are left out): a
-- check of the harness and of the normalisation, which must then pass.
-- BINARY_SPEC_DUMP=1 writes each case's requests and the reference's
-- normalised answer to stderr.
--
-- Run from the repo root:
--   busted --lpath='./lua/?.lua;./lua/?/init.lua;./tests/spec/?.lua' tests/spec/binary_spec.lua
local H = require "harness"
local socket = require "socket"

local DEADLINE = 5
local show = H.show
local AS_MEMCACHED = os.getenv("BINARY_SPEC_GATEWAY") == "memcached"
local DUMP = os.getenv("BINARY_SPEC_DUMP")
local SEED = tonumber(os.getenv("BINARY_SPEC_SEED") or "") or (os.time() ~ math.floor(socket.gettime() * 1e6))
math.randomseed(SEED)

---------------------------------------------------------------------------
-- The binary protocol (memcached's protocol_binary.h)

local HDR = ">BBI2BBI2I4I4I8" -- magic opcode keylen extlen datatype vbucket/status bodylen opaque cas
local REQ_MAGIC, RES_MAGIC = 0x80, 0x81

local OPS = {
  Get = 0x00, Set = 0x01, Add = 0x02, Replace = 0x03, Delete = 0x04, Increment = 0x05,
  Decrement = 0x06, Quit = 0x07, Flush = 0x08, GetQ = 0x09, Noop = 0x0a, Version = 0x0b,
  GetK = 0x0c, GetKQ = 0x0d, Append = 0x0e, Prepend = 0x0f, Stat = 0x10, SetQ = 0x11,
  AddQ = 0x12, ReplaceQ = 0x13, DeleteQ = 0x14, IncrementQ = 0x15, DecrementQ = 0x16,
  QuitQ = 0x17, FlushQ = 0x18, AppendQ = 0x19, PrependQ = 0x1a, Verbosity = 0x1b,
  Touch = 0x1c, GAT = 0x1d, GATQ = 0x1e, SASLListMechs = 0x20, SASLAuth = 0x21,
  SASLStep = 0x22, GATK = 0x23, GATKQ = 0x24,
}
local OP_NAME = {}
for k, v in pairs(OPS) do OP_NAME[v] = k end
local function op_name(code) return OP_NAME[code] or string.format("op%02x", code) end

local STATUS = {
  [0x00] = "OK", [0x01] = "KEY_ENOENT", [0x02] = "KEY_EEXISTS", [0x03] = "E2BIG",
  [0x04] = "EINVAL", [0x05] = "NOT_STORED", [0x06] = "DELTA_BADVAL", [0x20] = "AUTH_ERROR",
  [0x21] = "AUTH_CONTINUE", [0x81] = "UNKNOWN_COMMAND", [0x82] = "ENOMEM",
}
local function status_name(s) return STATUS[s] or string.format("status%04x", s) end

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

-- A request: { op = "Get" or a number, key, extras, value, cas, opaque,
-- datatype, vbucket }, and to break it on purpose: magic, keylen, extlen,
-- bodylen (header fields sent as given), trailer (bytes sent after it);
-- or { op = "raw", raw_bytes = ... }: those bytes.
local function encode(r)
  if r.raw_bytes then return r.raw_bytes end
  local key, extras, value = r.key or "", r.extras or "", r.value or ""
  local op = type(r.op) == "string" and assert(OPS[r.op], r.op) or r.op
  return string.pack(HDR, r.magic or REQ_MAGIC, op, r.keylen or #key, r.extlen or #extras,
    r.datatype or 0, r.vbucket or 0, r.bodylen or (#key + #extras + #value), r.opaque or 0, r.cas or 0)
    .. extras .. key .. value .. (r.trailer or "")
end

-- Printable bytes on one line: control and high bytes as \xNN, "\r" and
-- "\n" as such.
local function esc(s)
  return (s:gsub("[%c\128-\255\\\"]", function(c)
    if c == "\r" then return "\\r" elseif c == "\n" then return "\\n" end
    if c == "\\" or c == '"' then return "\\" .. c end
    return string.format("\\x%02x", c:byte())
  end))
end

-- esc(s), cut after n bytes (default 60).
local function cut(s, n)
  n = n or 60
  if #s > n then return esc(s:sub(1, n)) .. string.format("...(%d bytes)", #s) end
  return esc(s)
end

local function describe_req(r)
  if r.raw_bytes then return "the bytes " .. cut(r.raw_bytes, 60) end
  local op = type(r.op) == "string" and r.op or op_name(r.op)
  local t = { op }
  if r.key and r.key ~= "" then t[#t + 1] = "key=\"" .. cut(r.key, 24) .. "\"" end
  if r.extras and r.extras ~= "" then t[#t + 1] = "extras=" .. hex(r.extras) end
  if r.value then t[#t + 1] = "value=\"" .. cut(r.value, 24) .. "\"" end
  if r.cas and r.cas ~= 0 then t[#t + 1] = "cas=" .. string.format("%u", r.cas) end
  for _, f in ipairs({ "magic", "keylen", "extlen", "bodylen", "datatype", "vbucket" }) do
    if r[f] then t[#t + 1] = f .. "=" .. string.format("0x%x", r[f]) end
  end
  if r.trailer then t[#t + 1] = "then " .. #r.trailer .. " bytes" end
  t[#t + 1] = string.format("opaque=%08x", r.opaque or 0)
  return table.concat(t, " ")
end

-- Request builders.  o: more fields (cas, tag, datatype, ...).
local function mk(op, fields, o)
  local r = { op = op }
  for k, v in pairs(fields) do r[k] = v end
  for k, v in pairs(o or {}) do r[k] = v end
  return r
end
local B = {}
function B.get(op, key, o) return mk(op, { key = key }, o) end
function B.store(op, key, value, flags, exp, o)
  return mk(op, { key = key, value = value, extras = string.pack(">I4I4", flags or 0, exp or 0) }, o)
end
function B.cat(op, key, value, o) return mk(op, { key = key, value = value }, o) end
function B.del(op, key, o) return mk(op, { key = key }, o) end
function B.arith(op, key, delta, initial, exp, o)
  return mk(op, { key = key, extras = string.pack(">I8I8I4", delta, initial or 0, exp or 0) }, o)
end
function B.touch(op, key, exp, o) return mk(op, { key = key, extras = string.pack(">I4", exp) }, o) end
function B.flush(op, delay, o)
  return mk(op, { extras = delay and string.pack(">I4", delay) or nil }, o)
end
function B.op(op, o) return mk(op, {}, o) end
function B.stat(key, o) return mk("Stat", { key = key }, o) end

local NO_CREATE = 0xffffffff      -- Increment/Decrement: do not create on a miss
local MAX64 = 0xffffffffffffffff  -- 2^64-1 (a Lua integer -1, packed as such)
local PAST = 1000000000           -- an absolute time long past: expires at once

---------------------------------------------------------------------------
-- Reading responses

-- Read what has arrived, waiting until deadline; false, "closed" (EOF, or
-- an error such as a reset) or "timeout".
local function fill(conn, deadline)
  while true do
    conn.sock:settimeout(0)
    local data, err, partial = conn.sock:receive(65536)
    data = data or partial
    if data and #data > 0 then
      conn.buf = conn.buf .. data
      return true
    end
    if err ~= "timeout" then return false, "closed", err end
    local left = deadline - socket.gettime()
    if left <= 0 then return false, "timeout" end
    socket.select({ conn.sock }, nil, left)
  end
end

local function take(conn, n, deadline)
  while #conn.buf < n do
    local ok, err = fill(conn, deadline)
    if not ok then return nil, err end
  end
  local out = conn.buf:sub(1, n)
  conn.buf = conn.buf:sub(n + 1)
  return out
end

-- One response, or nil and an event: { kind = "closed" | "timeout" |
-- "garbage", bytes = what came of it }.
local function read_response(conn, deadline)
  local m, err = take(conn, 1, deadline)
  if not m then
    local bytes = conn.buf
    conn.buf = ""
    return nil, { kind = err, bytes = bytes }
  end
  if m:byte() ~= RES_MAGIC then
    -- not a binary response: keep what else comes at once, for the message
    fill(conn, socket.gettime() + 0.2)
    local bytes = m .. conn.buf
    conn.buf = ""
    return nil, { kind = "garbage", bytes = bytes }
  end
  local h, err2 = take(conn, 23, deadline)
  if not h then
    local bytes = m .. conn.buf
    conn.buf = ""
    return nil, { kind = err2, bytes = bytes }
  end
  h = m .. h
  local magic, opcode, keylen, extlen, datatype, status, bodylen, opaque, cas = string.unpack(HDR, h)
  if keylen + extlen > bodylen then return nil, { kind = "garbage", bytes = h .. conn.buf } end
  local body, err3 = take(conn, bodylen, deadline)
  if not body then
    local bytes = h .. conn.buf
    conn.buf = ""
    return nil, { kind = err3, bytes = bytes }
  end
  return { kind = "resp", magic = magic, opcode = opcode, datatype = datatype, status = status,
           opaque = opaque, cas = cas, extras = body:sub(1, extlen),
           key = body:sub(extlen + 1, extlen + keylen), value = body:sub(extlen + keylen + 1),
           raw = h .. body }
end

---------------------------------------------------------------------------
-- Normalisation and comparison

local FIELDS = { "magic", "opcode", "status", "datatype", "opaque", "cas", "extras", "key", "value" }

-- The events of one side, normalised (see the top of the file).  key_of:
-- opaque -> the key of the request sent with it.
local function normalise(events, key_of)
  local labels = {}
  local out = {}
  local i = 1
  while i <= #events do
    local e = events[i]
    if e.kind ~= "resp" then
      out[#out + 1] = e
      i = i + 1
    elseif e.opcode == OPS.Stat and e.status == 0 then
      local problems, entries, j, ended = {}, 0, i, false
      while j <= #events do
        local s = events[j]
        if s.kind ~= "resp" or s.opcode ~= OPS.Stat or s.status ~= 0 then break end
        local function check(ok, what) if not ok then problems[#problems + 1] = what .. " in " .. hex(s.raw:sub(1, 24)) end end
        check(s.magic == RES_MAGIC, "magic")
        check(s.extras == "", "extras")
        check(s.datatype == 0, "data type")
        check(s.cas == 0, "cas")
        check(s.opaque == e.opaque, "opaque")
        j = j + 1
        if s.key == "" then
          check(s.value == "", "a body in the last response")
          ended = true
          break
        end
        entries = entries + 1
      end
      if not ended then problems[#problems + 1] = "no empty response ends the run" end
      out[#out + 1] = { kind = "stats", opaque = e.opaque, entries = entries, problems = problems,
                        raw = events[i].raw }
      i = j
    else
      local n = {}
      for _, f in ipairs(FIELDS) do n[f] = e[f] end
      n.kind, n.raw = "resp", e.raw
      if e.cas ~= 0 then
        local k = key_of[e.opaque] or "?"
        local l = labels[k] or { n = 0 }
        labels[k] = l
        if not l[e.cas] then
          l.n = l.n + 1
          l[e.cas] = l.n
        end
        n.cas = "c" .. l[e.cas]
      else
        n.cas = "0"
      end
      if e.opcode == OPS.Version and e.status == 0 and e.value:find("^%d+%.%d+%.%d+") then
        n.value = "<version>"
      end
      out[#out + 1] = n
      i = i + 1
    end
  end
  return out
end

local function canon(n)
  if n.kind == "resp" then
    return string.format("%s (op %02x) %s magic=%02x dt=%02x opaque=%08x cas=%s extras=%s key=\"%s\" value=\"%s\"",
      op_name(n.opcode), n.opcode, status_name(n.status), n.magic, n.datatype, n.opaque, n.cas,
      hex(n.extras), n.key, n.value)
  elseif n.kind == "stats" then
    return string.format("Stat run opaque=%08x, %s%s", n.opaque, n.entries > 0 and "some entries" or "no entries",
      #n.problems > 0 and (": " .. table.concat(n.problems, "; ")) or "")
  elseif n.kind == "closed" then
    return "closed" .. (#(n.bytes or "") > 0 and (" after " .. #n.bytes .. " stray bytes " .. esc(n.bytes)) or "")
  elseif n.kind == "timeout" then
    return "no answer within " .. DEADLINE .. " s" .. (#(n.bytes or "") > 0 and (", " .. #n.bytes
      .. " bytes of one: " .. esc(n.bytes)) or "")
  end
  if n.kind == "stuck" then return "the case cannot go on: " .. n.bytes end
  return "not a binary response: " .. esc(n.bytes)
end

-- The same for a message: values cut short.
local function brief(n)
  if n.kind == "resp" then
    return string.format("%s %s opaque=%08x cas=%s extras=%s key=\"%s\" value=\"%s\"%s",
      op_name(n.opcode), status_name(n.status), n.opaque, n.cas, hex(n.extras), cut(n.key, 24),
      cut(n.value, 60), (n.magic ~= RES_MAGIC or n.datatype ~= 0)
        and string.format(" magic=%02x dt=%02x", n.magic, n.datatype) or "")
  end
  return cut(canon(n), 300)
end

-- A short summary, for the pins of what memcached answers: "Set",
-- "Get KEY_ENOENT", "Stat run", "closed".
local function summary(list)
  local t = {}
  for i, n in ipairs(list) do
    if n.kind == "resp" then
      t[i] = op_name(n.opcode) .. (n.status ~= 0 and (" " .. status_name(n.status)) or "")
    elseif n.kind == "stats" then
      t[i] = "Stat run"
    else
      t[i] = n.kind
    end
  end
  return table.concat(t, ", ")
end

-- The response the gateway must give to request q (opts.gateway).
local function expect(q, f)
  f = f or {}
  return { kind = "resp", magic = RES_MAGIC, opcode = type(q.op) == "string" and OPS[q.op] or q.op,
           status = f.status or 0, datatype = 0, opaque = q.opaque, cas = f.cas or "0",
           extras = f.extras or "", key = f.key or "", value = f.value or "" }
end

-- nil when the lists match, else a message naming the first difference.
local function differ(want, got, sent)
  local by_opaque = {}
  for _, q in ipairs(sent or {}) do by_opaque[q.opaque] = by_opaque[q.opaque] or q end
  for i = 1, math.max(#want, #got) do
    local w, g = want[i], got[i]
    if not w or not g or canon(w) ~= canon(g) then
      local fields = {}
      if w and g and w.kind == "resp" and g.kind == "resp" then
        for _, f in ipairs(FIELDS) do
          if w[f] ~= g[f] then fields[#fields + 1] = f end
        end
      end
      local q = w and by_opaque[w.opaque] or g and by_opaque[g.opaque]
      local lines = {
        string.format("response %d differs%s", i, #fields > 0 and (" in " .. table.concat(fields, ", ")) or ""),
        "  to:        " .. (q and describe_req(q) or "?"),
        "  memcached: " .. (w and brief(w) or "(nothing more)"),
        "  gateway:   " .. (g and brief(g) or "(nothing more)"),
      }
      if w and w.raw then lines[#lines + 1] = "  memcached bytes: " .. hex(w.raw:sub(1, 24)) .. " " .. cut(w.raw:sub(25), 120) end
      if g and g.raw then lines[#lines + 1] = "  gateway bytes:   " .. hex(g.raw:sub(1, 24)) .. " " .. cut(g.raw:sub(25), 120) end
      if g and g.bytes and #g.bytes > 0 then lines[#lines + 1] = "  gateway bytes:   " .. hex(g.bytes:sub(1, 64)) end
      return table.concat(lines, "\n")
    end
  end
end

local function transcript(list)
  local t = {}
  for i, n in ipairs(list) do t[i] = string.format("  %2d %s", i, brief(n)) end
  return table.concat(t, "\n")
end

local function fail(msg) error(msg, 0) end

---------------------------------------------------------------------------
-- The servers

local function gateway_config(servers, admin_port)
  local list = {}
  for i, s in ipairs(servers) do list[i] = string.format("%q", s) end
  return string.format([[
%s
gateway.settings { threads = 2 }
local main = memcache.pool {
  servers = { %s },
  hash = "python-memcached",
  timeout = 0.5,
}
memcache.route { default = main }
]], admin_port and string.format('gateway.admin "127.0.0.1:%d"', admin_port) or "", table.concat(list, ", "))
end

-- Where the gateway sends key (its admin /route), or nil without an admin.
local function router(admin_port)
  return function(key)
    if not admin_port then return nil end
    local st, _, body = H.http(admin_port, "GET", "/route?key=" .. H.urlencode(key), nil, DEADLINE)
    assert(st == 200, "GET /route?key=" .. key .. ": " .. st .. " " .. show(body))
    return H.json(body).server
  end
end

-- A fresh list of distinct random opaques: opaques(i).
local function opaque_list()
  local list, used = {}, {}
  return function(i)
    while not list[i] do
      local o = math.random(0, 0xffffffff)
      if not used[o] then
        used[o] = true
        list[#list + 1] = o
      end
    end
    return list[i]
  end
end

---------------------------------------------------------------------------
describe("binary protocol, differential against memcached 1.6.18 (-B binary)", function()
  local add, stop_all = H.cleanups()
  local ref, gw, route
  local ctl = {} -- control connections for the flushes, by side

  lazy_setup(function()
    ref = H.start_memcached({ args = "-B binary" })
    add(ref.stop)
    if AS_MEMCACHED then
      gw = H.start_memcached({ args = "-B binary" })
      add(gw.stop)
    else
      local backends = { H.start_memcached(), H.start_memcached() }
      for _, b in ipairs(backends) do add(b.stop) end
      local admin_port = H.free_port()
      gw = H.start_gateway(gateway_config({ backends[1].addr, backends[2].addr }, admin_port))
      add(gw.stop)
      H.wait_until(function() return H.can_connect(admin_port) end, DEADLINE, "the admin listener")
      route = router(admin_port)
    end
  end)

  lazy_teardown(function()
    for _, c in pairs(ctl) do pcall(c.close, c) end
    stop_all()
  end)

  after_each(function()
    if gw then assert.is_true(gw.alive(), "the gateway died:\n" .. gw.output()) end
  end)

  -- Empty a side: a binary Flush on the reference (and on a memcached in
  -- the gateway's place), a text flush_all on the gateway (so that the
  -- cases do not lean on its binary Flush).
  local function flush(side)
    local port = side == "ref" and ref.port or gw.port
    local text = side == "gw" and not AS_MEMCACHED
    for _ = 1, 2 do
      local ok, err = pcall(function()
        ctl[side] = ctl[side] or H.connect(port, DEADLINE)
        local c = ctl[side]
        local deadline = socket.gettime() + DEADLINE
        if text then
          c:send("flush_all\r\n")
          local l = c:raw_line(deadline)
          assert(l == "OK\r\n", "flush_all answered " .. show(l or "nothing"))
          return
        end
        c:send(encode({ op = "Flush", opaque = 0xf1f1 }))
        local r, ev = read_response(c, deadline)
        assert(r and r.opcode == OPS.Flush and r.status == 0 and r.opaque == 0xf1f1,
          "Flush answered " .. (r and brief(r) or canon(ev)))
      end)
      if ok then return end
      if ctl[side] then pcall(ctl[side].close, ctl[side]) end
      ctl[side] = nil
      if _ == 2 then error("could not flush the " .. side .. " side: " .. tostring(err), 0) end
    end
  end

  -- Run a case's steps on one side.  Returns the events (responses, and a
  -- last closed/timeout/garbage), the requests sent (opaques filled in)
  -- and key_of (opaque -> key).
  local function run_side(port, steps, opaques, opts)
    local conn = H.connect(port, DEADLINE)
    local events, sent, key_of, tag_opaque, by_opaque = {}, {}, {}, {}, {}
    local n = 0
    local function assign(r)
      n = n + 1
      local q = {}
      for k, v in pairs(r) do q[k] = v end
      if q.opaque == nil then q.opaque = opaques(n) end
      sent[#sent + 1] = q
      if key_of[q.opaque] == nil then key_of[q.opaque] = q.key or "" end
      if q.tag then tag_opaque[q.tag] = q.opaque end
      return q
    end
    local ctx = {}
    function ctx.cas(tag)
      local r = by_opaque[assert(tag_opaque[tag], "no request tagged " .. tag)]
      assert(r and r.cas ~= 0, "no cas answered to the request tagged " .. tag)
      return r.cas
    end
    local all = {}
    for _, s in ipairs(steps) do all[#all + 1] = s end
    all[#all + 1] = {} -- the empty step: its Noop alone
    local over = false
    for _, step in ipairs(all) do
      if over then break end
      local reqs = step
      if type(step) == "function" then
        local ok, r = pcall(step, ctx)
        if not ok then
          -- e.g. no cas to send: this side answered the step before
          -- otherwise
          events[#events + 1] = { kind = "stuck", bytes = tostring(r) }
          break
        end
        reqs = r
      end
      if reqs.op then reqs = { reqs } end
      local bytes = {}
      for _, r in ipairs(reqs) do bytes[#bytes + 1] = encode(assign(r)) end
      local sentinel = assign({ op = "Noop" })
      bytes[#bytes + 1] = encode(sentinel)
      local payload = table.concat(bytes)
      if opts.chunk then
        for i = 1, #payload, opts.chunk do
          if not conn.sock:send(payload:sub(i, i + opts.chunk - 1)) then break end
        end
      else
        conn.sock:send(payload) -- a closed connection shows when reading
      end
      local deadline = socket.gettime() + DEADLINE
      while true do
        local r, ev = read_response(conn, deadline)
        if not r then
          events[#events + 1] = ev
          over = true
          break
        end
        events[#events + 1] = r
        if by_opaque[r.opaque] == nil then by_opaque[r.opaque] = r end
        if r.opcode == OPS.Noop and r.opaque == sentinel.opaque then break end
      end
    end
    conn:close()
    return events, sent, key_of
  end

  -- A case's steps: a request or a function is one step; a list of
  -- requests is one step (one write); any other list is a list of steps.
  local function as_steps(steps)
    if steps.op or type(steps) == "function" then return { steps } end
    for _, s in ipairs(steps) do
      if type(s) ~= "table" or not s.op then return steps end
    end
    return { steps }
  end

  -- A case: name, steps, opts:
  --   want     the reference's summary (summary()), a pin of what memcached
  --            answers
  --   gateway  function(sent) -> the normalised answer the gateway must give
  --            where it departs from memcached on purpose
  --   check    function(norm, sent) for the gateway's answer instead of the
  --            comparison (nil when fine, else why not)
  --   after    function(port, name) run on each side after the case
  --   chunk    send each step in pieces of chunk bytes
  local function same(name, steps, opts)
    opts = opts or {}
    steps = as_steps(steps)
    local opaques = opaque_list()
    flush("ref")
    local rev, rsent, rkeys = run_side(ref.port, steps, opaques, opts)
    local want = normalise(rev, rkeys)
    if opts.after then opts.after(ref.port, "memcached") end
    if DUMP then
      local t = {}
      for i, q in ipairs(rsent) do t[i] = "  " .. describe_req(q) end
      io.stderr:write("=== ", name, "\n", table.concat(t, "\n"), "\n--->\n", transcript(want), "\n")
    end
    if opts.want and summary(want) ~= opts.want then
      fail(string.format("case %q: the reference itself answered\n  %s\nnot\n  %s\n%s", name,
        summary(want), opts.want, transcript(want)))
    end
    flush("gw")
    local gev, gsent, gkeys = run_side(gw.port, steps, opaques, opts)
    local got = normalise(gev, gkeys)
    if opts.after then opts.after(gw.port, AS_MEMCACHED and "memcached as the gateway" or "gateway") end
    local why
    if AS_MEMCACHED or not (opts.gateway or opts.check) then
      why = differ(want, got, gsent)
    elseif opts.check then
      why = opts.check(got, gsent)
    else
      why = differ(opts.gateway(gsent), got, gsent)
      if why then why = why .. "\n(the gateway's answer here departs from memcached's on purpose: see the case)" end
    end
    if why then
      local t = {}
      for i, q in ipairs(gsent) do t[i] = "  " .. describe_req(q) end
      fail(string.format("case %q (BINARY_SPEC_SEED=%d):\n%s\nrequests:\n%s\nmemcached (normalised):\n%s\n"
        .. "gateway (normalised):\n%s", name, SEED, why, table.concat(t, "\n"), transcript(want), transcript(got)))
    end
    return want, got
  end

  -- Run a list of { name, steps, opts } cases; all run, the failures are
  -- reported together.
  local function cases(list)
    local failures = {}
    for _, c in ipairs(list) do
      local ok, err = pcall(same, c[1], c[2], c[3])
      if not ok then failures[#failures + 1] = tostring(err) end
    end
    if #failures > 0 then
      fail(#failures .. " of " .. #list .. " cases differ:\n\n"
        .. table.concat(failures, "\n\n----------------------------------------\n"))
    end
  end

  local function set(key, value, flags, exp, o) return B.store("Set", key, value, flags, exp, o) end

  -- Get ---------------------------------------------------------------
  describe("Get, GetQ, GetK, GetKQ", function()
    it("on a hit and a miss", function()
      local GETS = { "Get", "GetQ", "GetK", "GetKQ" }
      local hit, miss = { set("gk", "hello", 0xdeadbeef) }, {}
      for _, op in ipairs(GETS) do
        hit[#hit + 1] = B.get(op, "gk")
        miss[#miss + 1] = B.get(op, "nokey")
      end
      cases({
        { "gets on a hit", hit, { want = "Set, Get, GetQ, GetK, GetKQ, Noop, Noop" } },
        { "gets on a miss", miss, { want = "Get KEY_ENOENT, GetK KEY_ENOENT, Noop, Noop" } },
        { "flags 0, 1, 2^32-1", { set("f0", "a", 0), set("f1", "b", 1), set("f2", "c", 0xffffffff),
          B.get("GetK", "f0"), B.get("GetK", "f1"), B.get("GetK", "f2") } },
        { "a hit in a later step", { { set("gk", "v1") }, { B.get("Get", "gk"), B.get("GetQ", "gk") } } },
      })
    end)
  end)

  -- Set Add Replace Append Prepend ----------------------------------------
  describe("Set, Add, Replace, Append, Prepend and their quiet forms", function()
    local STORES = { "Set", "Add", "Replace", "Append", "Prepend" }
    local function store(op, key, value, o)
      if op:find("^Append") or op:find("^Prepend") then return B.cat(op, key, value, o) end
      return B.store(op, key, value, 9, 0, o)
    end

    it("each on a miss and on a hit, then what it stored", function()
      local list = {}
      for _, base in ipairs(STORES) do
        for _, op in ipairs({ base, base .. "Q" }) do
          list[#list + 1] = { op .. " on a miss", { store(op, "sk", "new"), B.get("GetK", "sk") } }
          list[#list + 1] = { op .. " on a hit", { set("sk", "old", 7), store(op, "sk", "new"),
            B.get("GetK", "sk") } }
        end
      end
      cases(list)
    end)

    it("with a cas: the right one, a wrong one, on a miss", function()
      local list = {}
      for _, base in ipairs(STORES) do
        for _, op in ipairs({ base, base .. "Q" }) do
          list[#list + 1] = { op .. " with the right cas", { set("ck", "old", 7, 0, { tag = "s" }),
            function(ctx) return { store(op, "ck", "new", { cas = ctx.cas("s") }), B.get("GetK", "ck") } end } }
          list[#list + 1] = { op .. " with a wrong cas", { set("ck", "old", 7, 0, { tag = "s" }),
            function(ctx) return { store(op, "ck", "new", { cas = ctx.cas("s") + 1 }), B.get("GetK", "ck") } end } }
          list[#list + 1] = { op .. " with a cas on a miss", { store(op, "ck", "new", { cas = 12345 }),
            B.get("GetK", "ck") } }
        end
      end
      list[#list + 1] = { "Set with the cas a Get gave, twice", { { set("ck", "a"), B.get("Get", "ck", { tag = "g" }) },
        function(ctx) return { set("ck", "b", 1, 0, { cas = ctx.cas("g") }), set("ck", "c", 2, 0, { cas = ctx.cas("g") }),
          B.get("Get", "ck") } end },
        { want = "Set, Get, Noop, Set, Set KEY_EEXISTS, Get, Noop, Noop" } }
      list[#list + 1] = { "Append keeps flags, Set's cas then Append's", { set("ck", "ab", 5, 0, { tag = "s" }),
        function(ctx) return { B.cat("Append", "ck", "cd", { cas = ctx.cas("s") }), B.get("GetK", "ck"),
          B.cat("Prepend", "ck", "zz", { cas = ctx.cas("s") }) } end } }
      cases(list)
    end)

    it("expiration: relative, absolute in the past, 2^32-1", function()
      cases({
        { "Set with expirations", { set("e1", "a", 0, 1000), set("e2", "b", 0, PAST), set("e3", "c", 0, 0xffffffff),
          set("e4", "d", 0, 60 * 60 * 24 * 30), set("e5", "e", 0, 60 * 60 * 24 * 30 + 1),
          B.get("GetK", "e1"), B.get("GetK", "e2"), B.get("GetK", "e3"), B.get("GetK", "e4"), B.get("GetK", "e5") } },
        { "Add over an expired item", { set("e2", "b", 0, PAST), B.store("Add", "e2", "new", 3, 0), B.get("GetK", "e2") } },
      })
    end)

    it("Delete and DeleteQ, with and without a cas", function()
      cases({
        { "Delete hit, miss", { set("dk", "x"), B.del("Delete", "dk"), B.del("Delete", "dk"), B.get("Get", "dk") },
          { want = "Set, Delete, Delete KEY_ENOENT, Get KEY_ENOENT, Noop, Noop" } },
        { "DeleteQ hit, miss", { set("dk", "x"), B.del("DeleteQ", "dk"), B.del("DeleteQ", "dk"), B.get("Get", "dk") },
          { want = "Set, DeleteQ KEY_ENOENT, Get KEY_ENOENT, Noop, Noop" } },
        { "Delete with the right cas", { set("dk", "x", 0, 0, { tag = "s" }),
          function(ctx) return { B.del("Delete", "dk", { cas = ctx.cas("s") }), B.get("Get", "dk") } end } },
        { "Delete with a wrong cas", { set("dk", "x", 0, 0, { tag = "s" }),
          function(ctx) return { B.del("Delete", "dk", { cas = ctx.cas("s") + 1 }), B.get("Get", "dk") } end } },
        { "DeleteQ with the right cas", { set("dk", "x", 0, 0, { tag = "s" }),
          function(ctx) return { B.del("DeleteQ", "dk", { cas = ctx.cas("s") }), B.get("Get", "dk") } end } },
        { "DeleteQ with a wrong cas", { set("dk", "x", 0, 0, { tag = "s" }),
          function(ctx) return { B.del("DeleteQ", "dk", { cas = ctx.cas("s") + 1 }), B.get("Get", "dk") } end },
          { want = "Set, Noop, DeleteQ KEY_EEXISTS, Get, Noop, Noop" } },
        { "DeleteQ with a cas on a miss", { B.del("DeleteQ", "dk", { cas = 77 }) } },
      })
    end)
  end)

  -- Increment Decrement ---------------------------------------------------
  describe("Increment, Decrement and their quiet forms", function()
    local function incr(key, delta, initial, exp, o) return B.arith("Increment", key, delta, initial, exp, o) end
    local function decr(key, delta, initial, exp, o) return B.arith("Decrement", key, delta, initial, exp, o) end

    it("on numbers, misses (created or not) and what they stored", function()
      cases({
        { "incr and decr", { set("n", "10", 5), incr("n", 5, 0, NO_CREATE), decr("n", 3, 0, NO_CREATE),
          B.get("GetK", "n"), decr("n", 100, 0, NO_CREATE), B.get("GetK", "n"), incr("n", 0, 0, NO_CREATE) } },
        { "a miss, not created", { incr("m", 1, 7, NO_CREATE), decr("m", 1, 7, NO_CREATE), B.get("Get", "m") },
          { want = "Increment KEY_ENOENT, Decrement KEY_ENOENT, Get KEY_ENOENT, Noop, Noop" } },
        { "a miss, created with the initial value", { incr("m1", 1, 42, 0), incr("m1", 1, 42, 0),
          decr("m2", 5, 7, 0), B.get("GetK", "m1"), B.get("GetK", "m2") } },
        { "created with a TTL, and already expired", { incr("m3", 1, 5, 1000), B.get("GetK", "m3"),
          incr("m4", 1, 5, PAST), B.get("GetK", "m4") } },
        { "created with a 64-bit initial value", { incr("m5", 1, MAX64, 0), B.get("GetK", "m5"), incr("m5", 1, 0, 0),
          B.get("GetK", "m5") } },
        { "the length changes", { set("n", "99"), incr("n", 1, 0, NO_CREATE), B.get("Get", "n"),
          decr("n", 1, 0, NO_CREATE), B.get("Get", "n"), decr("n", 90, 0, NO_CREATE), B.get("Get", "n"),
          set("n2", "1000"), decr("n2", 1, 0, NO_CREATE), B.get("Get", "n2") } },
      })
    end)

    it("wrap-around, below 0, 64-bit values, not numbers", function()
      cases({
        { "incr wraps at 2^64", { set("w", "18446744073709551615"), incr("w", 1, 0, NO_CREATE), B.get("Get", "w"),
          set("w2", "1"), incr("w2", MAX64, 0, NO_CREATE), set("w3", "5"), incr("w3", MAX64, 0, NO_CREATE) } },
        { "decr stops at 0", { set("d", "1"), decr("d", 2, 0, NO_CREATE), decr("d", MAX64, 0, NO_CREATE),
          B.get("Get", "d") } },
        { "64-bit values", { set("b", "9223372036854775807"), incr("b", 1, 0, NO_CREATE),
          incr("b", 0x7fffffffffffffff, 0, NO_CREATE), B.get("Get", "b"), set("b2", "0"),
          incr("b2", 0x8000000000000000, 0, NO_CREATE), decr("b2", 1, 0, NO_CREATE) } },
        { "not numbers", { set("x", "abc"), incr("x", 1, 0, NO_CREATE), set("x", "12abc"), incr("x", 1, 0, NO_CREATE),
          set("x", ""), decr("x", 1, 0, NO_CREATE), set("x", "-5"), incr("x", 1, 0, NO_CREATE),
          set("x", "18446744073709551616"), incr("x", 1, 0, NO_CREATE), set("x", " 12"), incr("x", 1, 0, NO_CREATE),
          B.get("Get", "x") } },
        { "flags kept", { set("fk", "5", 77, 1000), incr("fk", 1, 0, NO_CREATE), B.get("GetK", "fk") } },
      })
    end)

    it("quiet forms, and with a cas", function()
      cases({
        { "quiet", { set("q", "1"), B.arith("IncrementQ", "q", 1, 0, NO_CREATE), B.arith("DecrementQ", "q", 5, 0, NO_CREATE),
          B.arith("IncrementQ", "none", 1, 0, NO_CREATE), B.arith("IncrementQ", "made", 1, 9, 0),
          set("s", "str"), B.arith("DecrementQ", "s", 1, 0, NO_CREATE), B.get("GetK", "q"), B.get("GetK", "made") },
          { want = "Set, IncrementQ KEY_ENOENT, Set, DecrementQ DELTA_BADVAL, GetK, GetK, Noop, Noop" } },
        { "with the right cas", { set("c", "10", 0, 0, { tag = "s" }),
          function(ctx) return { incr("c", 1, 0, NO_CREATE, { cas = ctx.cas("s") }), B.get("Get", "c") } end } },
        { "with a wrong cas", { set("c", "10", 0, 0, { tag = "s" }),
          function(ctx) return { incr("c", 1, 0, NO_CREATE, { cas = ctx.cas("s") + 1 }),
            B.arith("DecrementQ", "c", 1, 0, NO_CREATE, { cas = ctx.cas("s") + 1 }), B.get("Get", "c") } end } },
        { "with a cas on a miss", { incr("c", 1, 3, 0, { cas = 99 }), incr("c2", 1, 3, NO_CREATE, { cas = 99 }) } },
      })
    end)
  end)

  -- Touch GAT -----------------------------------------------------------
  describe("Touch, GAT, GATQ, GATK, GATKQ", function()
    it("on a hit and a miss, then the item", function()
      local list = {}
      for _, op in ipairs({ "Touch", "GAT", "GATQ", "GATK", "GATKQ" }) do
        list[#list + 1] = { op .. " on a hit", { set("tk", "value", 3, 1000), B.touch(op, "tk", 2000), B.get("GetK", "tk") } }
        list[#list + 1] = { op .. " on a miss", { B.touch(op, "tk", 2000), B.get("GetK", "tk") } }
        list[#list + 1] = { op .. " to a time past", { set("tk", "value", 3, 1000), B.touch(op, "tk", PAST),
          B.get("GetK", "tk") } }
        list[#list + 1] = { op .. " to 0 (no expiry)", { set("tk", "value", 3, 1000), B.touch(op, "tk", 0),
          B.get("GetK", "tk") } }
      end
      cases(list)
    end)
  end)

  -- Noop Version Verbosity Flush Quit Stat SASL -----------------------------
  describe("Noop, Version, Verbosity", function()
    it("Noop, Version; header fields memcached ignores", function()
      cases({
        { "Noop", { B.op("Noop"), B.op("Noop"), B.op("Noop") }, { want = "Noop, Noop, Noop, Noop, Noop" } },
        { "Version", { B.op("Version"), B.op("Version") }, { want = "Version, Version, Noop, Noop" } },
        -- a data type, a vbucket, a cas where none is asked: memcached
        -- reads none of them
        { "ignored fields", { B.op("Noop", { datatype = 1, vbucket = 7, cas = 99 }), set("ig", "v", 0, 0, { vbucket = 0x1234,
          datatype = 1 }), B.get("GetK", "ig", { datatype = 1, vbucket = 0xffff }), B.op("Version", { vbucket = 3 }) } },
      })
    end)

    it("Verbosity: memcached 1.6.18 does not serve it", function()
      cases({
        -- without its extras: "Unknown command", and on
        { "Verbosity, no extras", { B.op("Verbosity"), B.get("Get", "x") },
          { want = "Verbosity UNKNOWN_COMMAND, Get KEY_ENOENT, Noop, Noop" } },
        -- with its 4 bytes of extras: memcached reads them (extras and key
        -- come with the header, before the opcode is looked at), then
        -- swallows the whole body length again for an unknown command, so
        -- it eats the first 4 bytes of the next request and reads a header
        -- from what follows: here the first Noop's last 20 bytes and the
        -- second's first 4, magic 0x00, and it closes, its "Unknown
        -- command" unsent (with a single Noop after it, it would send that
        -- and wait for 4 more bytes of a header).  The gateway answers
        -- "Unknown command" and reads the next request where it starts.
        { "Verbosity with its extras", { mk("Verbosity", { extras = string.pack(">I4", 1) }), B.op("Noop") },
          { want = "closed",
            gateway = function(sent)
              return { expect(sent[1], { status = 0x81, value = "Unknown command" }), expect(sent[2]), expect(sent[3]),
                       expect(sent[4]) }
            end } },
        -- 4 bytes for memcached to eat: then it answers and goes on
        { "Verbosity with its extras, 4 bytes after", { mk("Verbosity", { extras = string.pack(">I4", 1),
          trailer = "\0\0\0\0" }) },
          { want = "Verbosity UNKNOWN_COMMAND, Noop, Noop",
            -- for the gateway the 4 bytes and the Noop's first 20 are one
            -- header: the magic 0x00 closes the connection, after its
            -- "Unknown command" or not
            check = function(got, sent)
              local u = canon(expect(sent[1], { status = 0x81, value = "Unknown command" }))
              if #got == 1 and canon(got[1]) == "closed" then return nil end
              if #got == 2 and canon(got[1]) == u and canon(got[2]) == "closed" then return nil end
              return "the gateway answered (normalised):\n" .. transcript(got)
                .. "\nnot \"Unknown command\" (or nothing), then closed"
            end } },
      })
    end)
  end)

  describe("Flush, FlushQ", function()
    -- Poll a fresh connection until key misses (a delayed flush took
    -- effect), within a deadline.
    local function gone(key)
      return function(port, side)
        local c = H.connect(port, DEADLINE)
        local seen
        local ok, err = pcall(H.wait_until, function()
          c.sock:send(encode({ op = "Get", key = key, opaque = 1 }))
          local r, ev = read_response(c, socket.gettime() + DEADLINE)
          seen = r and brief(r) or canon(ev)
          assert(r, side .. ": " .. seen)
          return r.status == 1
        end, 8, side .. ": " .. key .. " gone after a delayed flush")
        c:close()
        if not ok then error(tostring(err) .. " (last: " .. tostring(seen) .. ")", 0) end
      end
    end

    it("now, quiet, with a delay", function()
      cases({
        { "Flush", { set("a", "1"), set("b", "2"), B.flush("Flush"), B.get("Get", "a"), B.get("GetK", "b") },
          { want = "Set, Set, Flush, Get KEY_ENOENT, GetK KEY_ENOENT, Noop, Noop" } },
        { "FlushQ", { set("a", "1"), B.flush("FlushQ"), B.get("Get", "a") },
          { want = "Set, Get KEY_ENOENT, Noop, Noop" } },
        { "Flush with a delay of 0", { set("a", "1"), B.flush("Flush", 0), B.get("Get", "a") } },
        { "Flush with a delay of 2 s", { set("fd", "1"), B.flush("Flush", 2), B.get("GetK", "fd") },
          { want = "Set, Flush, GetK, Noop, Noop", after = gone("fd") } },
        { "FlushQ with a delay of 2 s", { set("fq", "1"), B.flush("FlushQ", 2), B.get("GetK", "fq") },
          { want = "Set, GetK, Noop, Noop", after = gone("fq") } },
      })
    end)
  end)

  describe("Quit, QuitQ", function()
    it("Quit answers, then the connection closes; QuitQ closes", function()
      cases({
        { "Quit", { set("a", "1"), B.op("Quit"), B.get("Get", "a") }, { want = "Set, Quit, closed" } },
        { "QuitQ", { set("a", "1"), B.op("QuitQ"), B.get("Get", "a") }, { want = "Set, closed" } },
        { "Quit alone", B.op("Quit"), { want = "Quit, closed" } },
        { "Quit after a quiet miss", { B.get("GetQ", "no"), B.op("Quit") }, { want = "Quit, closed" } },
      })
    end)
  end)

  describe("Stat", function()
    it("all, settings (structure only), an unknown group", function()
      cases({
        { "Stat", { B.stat(), B.get("Get", "x") }, { want = "Stat run, Get KEY_ENOENT, Noop, Noop" } },
        { "Stat settings", { B.stat("settings"), B.stat() }, { want = "Stat run, Stat run, Noop, Noop" } },
        { "Stat with an unknown group", { B.stat("nosuchgroup"), B.get("Get", "x") },
          { want = "Stat KEY_ENOENT, Get KEY_ENOENT, Noop, Noop" } },
      })
      -- the runs hold entries
      local want = same("Stat entries", { B.stat(), B.stat("settings") })
      assert.are.equal(want[1].entries > 0 and want[2].entries > 0, true)
    end)
  end)

  describe("SASL on a server without it", function()
    -- memcached without SASL (-S not given) answers every SASL opcode
    -- "Unknown command" (0x81) and goes on; the gateway the same.
    it("list mechanisms, auth, step: Unknown command, and on", function()
      cases({
        { "SASL", { B.op("SASLListMechs"), mk("SASLAuth", { key = "PLAIN", value = "\0user\0pass" }),
          mk("SASLStep", { key = "PLAIN", value = "more" }), B.get("Get", "x") },
          { want = "SASLListMechs UNKNOWN_COMMAND, SASLAuth UNKNOWN_COMMAND, SASLStep UNKNOWN_COMMAND, "
            .. "Get KEY_ENOENT, Noop, Noop" } },
      })
    end)
  end)

  -- Keys -----------------------------------------------------------------
  describe("keys of any bytes", function()
    local all = {}
    for i = 0, 249 do all[#all + 1] = string.char((i * 7 + 3) % 256) end
    local KEYS = {
      { "a space", "a b" }, { "a tab", "tab\there" }, { "control bytes", "ctl\1\2\3\127" },
      { "a NUL", "nul\0in" }, { "\\r\\n", "\r\n" }, { "high bytes", "high\128\200\255" }, { "UTF-8", "é" },
      { "one byte", "k" }, { "a NUL alone", "\0" }, { "250 bytes", ("k"):rep(250) },
      { "250 bytes of every kind", table.concat(all) }, { "a space at the end", "end " },
      { "looks like a command", "get foo\r\nset" },
      -- a key that is no text key travels in base64 toward servers that
      -- speak meta: 186 bytes make 248 characters, 187 make 252
      { "186 bytes with a space", ("s"):rep(185) .. " " }, { "187 bytes with a space", ("s"):rep(186) .. " " },
    }

    -- What the gateway answers for a key it cannot send: memcached's meta
    -- protocol reads at most 250 bytes of key as sent, and a key that is
    -- no text key goes in base64 (4 characters for 3 bytes), so it can be
    -- at most 187 bytes; memcached's binary protocol takes 250.  Every
    -- request on it gets status 0x84 saying why (quiet ones too: an
    -- error), and the connection goes on.  (README, Limitations.)
    local function refused_long_key(got, sent)
      local errors, requests = 0, 0
      for _, q in ipairs(sent) do
        if q.op ~= OPS.Noop and q.op ~= "Noop" then requests = requests + 1 end
      end
      for _, e in ipairs(got) do
        if e.kind == "resp" and e.opcode ~= OPS.Noop then
          if e.status ~= 0x84 or not e.value:find("base64", 1, true) then return "answered " .. brief(e) end
          errors = errors + 1
        elseif e.kind ~= "resp" then
          return "the connection: " .. brief(e)
        end
      end
      if errors ~= requests then return errors .. " errors for " .. requests .. " requests" end
    end
    local TOO_LONG = { ["250 bytes of every kind"] = true, ["187 bytes with a space"] = true }

    it("every command with such a key", function()
      local list = {}
      for _, k in ipairs(KEYS) do
        local key = k[2]
        list[#list + 1] = { "key: " .. k[1], {
          set(key, "v1", 5), B.get("Get", key), B.get("GetK", key), B.get("GetKQ", key),
          B.cat("Append", key, "+"), B.cat("PrependQ", key, "-"), B.get("GetK", key),
          B.touch("GATK", key, 1000), B.touch("Touch", key, 0), B.store("Replace", key, "7", 1, 0),
          B.arith("Increment", key, 1, 0, NO_CREATE), B.store("Add", key, "x", 0, 0), B.del("Delete", key),
          B.get("GetK", key), B.get("GetKQ", key), B.arith("IncrementQ", key, 1, 3, 0), B.touch("GATKQ", key, 0),
          B.del("DeleteQ", key), B.touch("GATK", key, 0),
        }, TOO_LONG[k[1]] and { check = refused_long_key } or nil }
      end
      cases(list)
    end)

    it("key length 250 and 251", function()
      cases({
        { "key 250", { set(("k"):rep(250), "x"), B.get("GetK", ("k"):rep(250)) } },
        -- a key over 250 bytes: "Invalid arguments" (0x04), then memcached
        -- closes (for every opcode: the check comes before any)
        { "Get key 251", { set("a", "1"), B.get("GetK", ("k"):rep(251)), B.get("Get", "a") },
          { want = "Set, GetK EINVAL, closed" } },
        { "Set key 251", B.store("Set", ("k"):rep(251), "x", 0, 0), { want = "Set EINVAL, closed" } },
        { "GetKQ key 251", B.get("GetKQ", ("k"):rep(251)), { want = "GetKQ EINVAL, closed" } },
        { "Delete key 251", B.del("DeleteQ", ("k"):rep(251)), { want = "DeleteQ EINVAL, closed" } },
      })
    end)
  end)

  -- Opaques --------------------------------------------------------------
  describe("opaques", function()
    it("echoed on every response, whatever the value", function()
      local reqs = { set("o", "v", 0, 0, { opaque = 0 }) }
      for _, o in ipairs({ 0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x0a0d0a0d }) do
        reqs[#reqs + 1] = B.get("Get", "o", { opaque = o })
        reqs[#reqs + 1] = B.get("GetK", "miss", { opaque = o })
        reqs[#reqs + 1] = B.op("Noop", { opaque = o })
      end
      reqs[#reqs + 1] = B.stat("settings", { opaque = 0xfeedface })
      reqs[#reqs + 1] = B.op("Version", { opaque = 0xffffffff })
      cases({ { "opaques", reqs } })
    end)
  end)

  -- Values -----------------------------------------------------------------
  describe("large and empty values", function()
    it("500 KB, empty, bytes of every kind", function()
      local big = {}
      for i = 1, 500 * 1024 do big[i] = string.char((i * 31) % 256) end
      big = table.concat(big)
      local fake = encode({ op = "Noop", opaque = 0xabcd }):gsub("^\128", "\129") -- a response in a value
      cases({
        { "500 KB", { set("big", big, 1), B.get("Get", "big"), B.get("GetK", "big"), B.cat("Append", "big", "tail"),
          B.get("GetQ", "big"), B.touch("GATK", "big", 100), B.store("SetQ", "big2", big, 2, 0), B.get("GetKQ", "big2") } },
        { "500 KB twice in one write", { set("b1", big), set("b2", big), B.get("GetK", "b2"), B.get("GetK", "b1") } },
        { "empty", { set("e", ""), B.get("GetK", "e"), B.cat("Append", "e", ""), B.cat("Prepend", "e", ""),
          B.get("Get", "e"), B.cat("AppendQ", "e", "x"), B.get("Get", "e"), B.arith("Increment", "e", 1, 0, NO_CREATE),
          B.store("Replace", "e", "", 4, 0), B.touch("GAT", "e", 0) } },
        { "a value that looks like responses", { set("fk", fake .. fake, 0), B.get("GetK", "fk"),
          set("crlf", "\r\nEND\r\n\0"), B.get("Get", "crlf") } },
        -- the largest value that fits in a 1 MiB item, give or take: both
        -- sides have 1 MiB items
        { "1 MiB less 100 bytes", { set("m", ("m"):rep(1024 * 1024 - 100)), B.get("Get", "m") } },
      })
    end)
  end)

  -- Quiet runs ---------------------------------------------------------------
  describe("quiet runs", function()
    it("GetKQ over hits and misses, then a Noop; the hits on both servers", function()
      local sets, gets, servers, hits = {}, {}, {}, 0
      for i = 1, 120 do
        local k = "run:" .. i
        if i % 3 ~= 0 then
          sets[#sets + 1] = B.store("SetQ", k, "value " .. i .. ("!"):rep(i % 13), i, 0)
          hits = hits + 1
          local s = route and route(k)
          if s then servers[s] = (servers[s] or 0) + 1 end
        end
        gets[#gets + 1] = B.get(i % 2 == 0 and "GetKQ" or "GetQ", k)
      end
      local want = same("GetKQ run", { sets, gets })
      local n = 0
      for _, r in ipairs(want) do if r.opcode == OPS.GetKQ or r.opcode == OPS.GetQ then n = n + 1 end end
      assert.are.equal(hits, n)
      if route then
        local count = 0
        for _ in pairs(servers) do count = count + 1 end
        assert.are.equal(2, count, "the hits are not on both servers")
      end
    end)

    it("every quiet command among errors, twice over", function()
      local p = {}
      for i = 1, 40 do
        local k = "q" .. i
        if i % 2 == 0 then p[#p + 1] = B.store("SetQ", k, tostring(i), 0, 0) end
        p[#p + 1] = B.get("GetKQ", k)
        p[#p + 1] = B.store("AddQ", k, "a", 0, 0)          -- an error on a hit
        p[#p + 1] = B.store("ReplaceQ", k, tostring(i + 1), 0, 0) -- an error on a miss
        p[#p + 1] = B.cat("AppendQ", k, "0")              -- NOT_STORED on a miss
        p[#p + 1] = B.arith("IncrementQ", k, 1, 0, NO_CREATE)
        if i % 3 == 0 then p[#p + 1] = B.arith("DecrementQ", k, 1, 5, 0) end
        if i % 4 == 0 then p[#p + 1] = B.touch("GATKQ", k, 0) end
        if i % 5 == 0 then p[#p + 1] = B.del("DeleteQ", k) end
        if i % 6 == 0 then p[#p + 1] = B.op("Noop") end
        if i % 7 == 0 then p[#p + 1] = B.touch("GATQ", k, 0) end
        p[#p + 1] = B.get("GetQ", k)
      end
      cases({ { "all quiet", { p, p } } })
    end)
  end)

  -- Bad input ------------------------------------------------------------------
  describe("bad input", function()
    local AFTER = B.get("GetK", "after")

    it("unknown opcodes: Unknown command, the body swallowed, and on", function()
      cases({
        { "unknown, no body", { mk(0x50, {}), AFTER }, { want = "op50 UNKNOWN_COMMAND, GetK KEY_ENOENT, Noop, Noop" } },
        { "unknown 0xff with a value", { mk(0xff, { value = "0123456789" }), AFTER },
          { want = "opff UNKNOWN_COMMAND, GetK KEY_ENOENT, Noop, Noop" } },
        { "unknown with a value that holds a request", { mk(0x42, { value = encode({ op = "Quit" }) }), AFTER },
          { want = "op42 UNKNOWN_COMMAND, GetK KEY_ENOENT, Noop, Noop" } },
        { "unknown with a 2 MiB value", { mk(0x60, { value = ("u"):rep(2 * 1024 * 1024) }), AFTER },
          { want = "op60 UNKNOWN_COMMAND, GetK KEY_ENOENT, Noop, Noop" } },
        -- memcached's opcodes that 1.6.18 no longer serves
        { "Multiply and others", { mk(0x38, {}), mk(0x3d, {}), mk(0x25, {}), mk(0x30, {}), AFTER } },
        -- a key or extras: memcached reads them with the header, then
        -- swallows the whole body length again; here it eats the first
        -- Noop's first 3 bytes, reads a header with magic 0x00 from what
        -- follows and closes, its "Unknown command" unsent.  The gateway
        -- answers "Unknown command" and goes on with the next request.
        { "unknown with a key", { mk(0x50, { key = "abc", value = "xyz" }), B.op("Noop") },
          { want = "closed",
            gateway = function(sent)
              return { expect(sent[1], { status = 0x81, value = "Unknown command" }), expect(sent[2]), expect(sent[3]),
                       expect(sent[4]) }
            end } },
        { "unknown with extras", { mk(0x50, { extras = "12345678" }), B.op("Noop") },
          { want = "closed",
            gateway = function(sent)
              return { expect(sent[1], { status = 0x81, value = "Unknown command" }), expect(sent[2]), expect(sent[3]),
                       expect(sent[4]) }
            end } },
      })
    end)

    it("a value over the item size: Too large, the body swallowed, and on", function()
      local big = ("v"):rep(1024 * 1024 + 1)
      cases({
        -- a Set that fails so also removes the item it would replace
        { "Set too large", { set("tl", "old"), set("tl", big), B.get("GetK", "tl") },
          { want = "Set, Set E2BIG, GetK KEY_ENOENT, Noop, Noop" } },
        { "SetQ too large", { set("tl", "old"), B.store("SetQ", "tl", big, 0, 0), B.get("GetK", "tl") },
          { want = "Set, SetQ E2BIG, GetK KEY_ENOENT, Noop, Noop" } },
        { "Add too large", { set("tl", "old"), B.store("Add", "tl", big, 0, 0), B.get("GetK", "tl") },
          { want = "Set, Add E2BIG, GetK, Noop, Noop" } },
        { "Replace too large", { set("tl", "old"), B.store("ReplaceQ", "tl", big, 0, 0), B.get("GetK", "tl") },
          { want = "Set, ReplaceQ E2BIG, GetK, Noop, Noop" } },
        { "Append too large", { set("tl", "old"), B.cat("Append", "tl", big), B.get("GetK", "tl") },
          { want = "Set, Append E2BIG, GetK, Noop, Noop" } },
        { "Prepend too large", { B.cat("PrependQ", "tl", big), B.get("GetK", "tl") },
          { want = "PrependQ E2BIG, GetK KEY_ENOENT, Noop, Noop" } },
        { "too large, in pieces", { set("tl", big), B.get("GetK", "tl") }, { chunk = 100000 } },
        -- an Append that makes the item too large: memcached says NOT_STORED
        { "Append over the limit", { set("tl", ("a"):rep(600 * 1024)), B.cat("Append", "tl", ("b"):rep(600 * 1024)),
          B.get("Get", "tl", { tag = "g" }) } },
      })
    end)

    -- Lengths that do not fit the opcode: "Invalid arguments" (0x04) and
    -- memcached closes the connection after it (answers queued before it
    -- are sent first).
    it("extras, key or body lengths wrong for the opcode: Invalid arguments, closed", function()
      local E4, E8 = "abcd", "abcdefgh"
      local function bad(name, r)
        return { name, { set("a", "1"), B.get("Get", "a"), r, AFTER },
          { want = "Set, Get, " .. (type(r.op) == "string" and r.op or op_name(r.op)) .. " EINVAL, closed" } }
      end
      cases({
        bad("Get with extras", mk("Get", { key = "a", extras = E4 })),
        bad("GetKQ with a value", mk("GetKQ", { key = "a", value = "x" })),
        bad("Get without a key", mk("Get", {})),
        bad("Set without extras", mk("Set", { key = "a", value = "v" })),
        bad("Set with 4 bytes of extras", mk("Set", { key = "a", extras = E4, value = "v" })),
        bad("SetQ without a key", mk("SetQ", { extras = E8, value = "v" })),
        bad("Add with 12 bytes of extras", mk("Add", { key = "a", extras = E8 .. E4, value = "v" })),
        bad("Append with extras", mk("Append", { key = "a", extras = E8, value = "v" })),
        bad("Prepend without a key", mk("Prepend", { value = "v" })),
        bad("Delete with extras", mk("Delete", { key = "a", extras = E4 })),
        bad("Delete with a value", mk("DeleteQ", { key = "a", value = "v" })),
        bad("Increment without extras", mk("Increment", { key = "a" })),
        bad("Increment with 8 bytes of extras", mk("IncrementQ", { key = "a", extras = E8 })),
        bad("Decrement with a value", mk("Decrement", { key = "a", extras = E8 .. E8 .. E4, value = "1" })),
        bad("Touch without extras", mk("Touch", { key = "a" })),
        bad("GAT without a key", mk("GAT", { extras = E4 })),
        bad("GATKQ with 8 bytes of extras", mk("GATKQ", { key = "a", extras = E8 })),
        bad("Noop with a key", mk("Noop", { key = "a" })),
        bad("Noop with extras", mk("Noop", { extras = E4 })),
        bad("Version with a value", mk("Version", { value = "v" })),
        bad("Flush with 8 bytes of extras", mk("Flush", { extras = E8 })),
        bad("FlushQ with a key", mk("FlushQ", { key = "a" })),
        bad("Quit with a key", mk("Quit", { key = "a" })),
        bad("Stat with extras", mk("Stat", { extras = E4 })),
        bad("SASLListMechs with a key", mk("SASLListMechs", { key = "a" })),
      })
    end)

    it("lengths that do not add up: Unknown command, closed", function()
      -- key length (or key and extras) over the body length: memcached
      -- answers "Unknown command" (0x81) and closes
      cases({
        { "key longer than the body", { set("a", "1"), mk("Get", { key = "abc", keylen = 5 }) },
          { want = "Set, Get UNKNOWN_COMMAND, closed" } },
        { "key and extras longer than the body", { mk("Set", { key = "k", extras = "12345678", bodylen = 8 }) },
          { want = "Set UNKNOWN_COMMAND, closed" } },
        { "unknown opcode, key longer than the body", { mk(0x50, { key = "abc", keylen = 9 }) },
          { want = "op50 UNKNOWN_COMMAND, closed" } },
      })
    end)

    it("a bad magic byte in the middle of a connection: closed", function()
      local NOOP = B.op("Noop")
      cases({
        -- the answers before it are out (a Noop makes memcached write them)
        { "magic 0x81", { set("a", "1"), B.get("Get", "a"), NOOP, mk("Noop", { magic = 0x81 }), AFTER },
          { want = "Set, Get, Noop, closed" } },
        { "magic 0x00", { set("a", "1"), NOOP, mk("Get", { magic = 0, key = "a" }) }, { want = "Set, Noop, closed" } },
        { "a text command", { set("a", "1"), NOOP, { op = "raw", raw_bytes = "get a\r\n" } },
          { want = "Set, Noop, closed" } },
        { "in a later step", { { set("a", "1") }, { mk("Get", { magic = 0x08, key = "a" }) } },
          { want = "Set, Noop, closed" } },
        -- memcached closes before it writes the answers it holds: here
        -- the Set's and the Get's are lost.  The gateway may answer them
        -- (or some of them, in order) before it closes.
        { "answers held", { set("a", "1"), B.get("Get", "a"), mk("Noop", { magic = 0x81 }) },
          { want = "closed",
            check = function(got, sent)
              local ok_ops = { OPS.Set, OPS.Get }
              for i, n in ipairs(got) do
                if n.kind == "closed" then
                  if i == #got and #(n.bytes or "") == 0 then return nil end
                  break
                end
                if n.kind ~= "resp" or n.opcode ~= ok_ops[i] or n.status ~= 0 or n.opaque ~= sent[i].opaque
                  or (i == 2 and n.value ~= "1") then
                  break
                end
              end
              return "the gateway answered (normalised):\n" .. transcript(got)
                .. "\nnot some of the Set's and the Get's answers (in order), then closed"
            end } },
      })
    end)
  end)

  -- Split requests -------------------------------------------------------------
  describe("requests split across sends", function()
    local PIPE = {
      set("sp1", "hello", 3, 1000),
      B.get("Get", "sp1"),
      B.get("GetKQ", "sp2"),
      B.store("SetQ", "sp2", "abc", 0, 0),
      B.get("GetK", "sp2"),
      B.arith("Increment", "sp3", 5, 10, 0),
      B.arith("IncrementQ", "sp3", 1, 0, NO_CREATE),
      B.arith("Decrement", "sp3", 2, 0, NO_CREATE),
      B.cat("Append", "sp1", " world"),
      B.get("Get", "sp1"),
      B.del("DeleteQ", "sp1"),
      B.get("GetQ", "sp1"),
      B.touch("Touch", "sp2", 1000),
      B.touch("GATK", "sp2", 0),
      B.store("Add", "sp2", "x", 0, 0),
      B.op("Version"),
      mk(0x50, { value = "12345" }),
      B.store("Set", "sp4", "", 0, 0),
      B.get("GetK", "sp4"),
      B.get("GetK", "sp\0 5\r\n"),
      B.op("Noop"),
    }

    it("one byte per send", function()
      cases({ { "one byte per send", PIPE, { chunk = 1 } } })
    end)

    it("two sends, split at each position", function()
      -- the reference, whole
      local opaques = opaque_list()
      flush("ref")
      local rev, _, rkeys = run_side(ref.port, { PIPE }, opaques, {})
      local want = normalise(rev, rkeys)
      local bytes, ends, in_value, answers_upto = {}, {}, {}, {}
      local pos = 0
      local sent = {}
      for i, r in ipairs(PIPE) do
        local q = {}
        for k, v in pairs(r) do q[k] = v end
        q.opaque = opaques(i)
        sent[i] = q
        local b = encode(q)
        bytes[i] = b
        local head = 24 + #(q.extras or "") + #(q.key or "")
        -- a cut after the key of a request with a value, before its end:
        -- memcached holds its answers while it reads a value
        for c = pos + head, pos + #b - 1 do in_value[c] = true end
        pos = pos + #b
        ends[i] = pos
      end
      local sentinel = { op = "Noop", opaque = opaques(#PIPE + 1) }
      sent[#sent + 1] = sentinel
      local all = table.concat(bytes)
      -- the answers to requests 1..i
      local count_for = {}
      for _, r in ipairs(want) do if r.opaque then count_for[r.opaque] = (count_for[r.opaque] or 0) + 1 end end
      local n = 0
      for i, q in ipairs(sent) do
        n = n + (count_for[q.opaque] or 0)
        answers_upto[i] = n
      end
      -- want: the PIPE's answers and the sentinel's (the empty step's Noop
      -- is not sent here)
      local want_pipe = {}
      for i = 1, answers_upto[#sent] do want_pipe[i] = want[i] end

      local failures, held = {}, {}
      for cutpos = 1, #all - 1 do
        flush("gw")
        local conn = H.connect(gw.port, DEADLINE)
        local events, key_of = {}, {}
        for _, q in ipairs(sent) do key_of[q.opaque] = q.key or "" end
        local function read_until(count, deadline, soft)
          while #events < count do
            local r, ev = read_response(conn, deadline)
            if not r then
              if soft and ev.kind == "timeout" and #(ev.bytes or "") == 0 then return false end
              conn.buf = (ev.bytes or "") .. conn.buf
              events[#events + 1] = ev
              return true
            end
            events[#events + 1] = r
          end
          return true
        end
        conn.sock:send(all:sub(1, cutpos))
        -- wait for the answers to the requests whole in the first part, so
        -- that the second part really comes later (only a wait: a server
        -- may hold answers while a value is incomplete, as memcached does,
        -- so after 3 such waits no more are tried)
        local whole = 0
        for i = 1, #PIPE do if ends[i] <= cutpos then whole = answers_upto[i] end end
        if not in_value[cutpos] and #held < 3 and whole > 0 then
          if not read_until(whole, socket.gettime() + 1, true) then held[#held + 1] = cutpos end
        end
        conn.sock:send(all:sub(cutpos + 1) .. encode(sentinel))
        local deadline = socket.gettime() + DEADLINE
        while true do
          local last = events[#events]
          if last and (last.kind ~= "resp" or (last.opcode == OPS.Noop and last.opaque == sentinel.opaque)) then break end
          local r, ev = read_response(conn, deadline)
          events[#events + 1] = r or ev
        end
        conn:close()
        local got = normalise(events, key_of)
        local why = differ(want_pipe, got, sent)
        if why then
          failures[#failures + 1] = string.format("split after byte %d of %d (BINARY_SPEC_SEED=%d): %s\n"
            .. "first part ends with %s\nmemcached (normalised, whole):\n%s\ngateway (normalised):\n%s",
            cutpos, #all, SEED, why, hex(all:sub(math.max(1, cutpos - 23), cutpos)), transcript(want_pipe), transcript(got))
          if #failures >= 5 then break end
        end
      end
      local note = #held == 0 and "" or ("(answers to whole requests held back after cuts at bytes "
        .. table.concat(held, ", ") .. ": the later cuts were sent without waiting)")
      if note ~= "" then print(note) end
      if #failures > 0 then
        fail(#failures .. " split positions differ (first ones):\n" .. note .. "\n\n"
          .. table.concat(failures, "\n\n----------------------------------------\n"))
      end
    end)
  end)
end)
