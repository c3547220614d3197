-- yield_spec.lua -- the request-time Lua API end to end: backend calls
-- from route functions (every return shape), pool:forward and response
-- objects, pool:mg and pool:ms (memcached's meta get and set), routes that
-- return memcache.* responses, memcache.wait (need, timeout, all),
-- memcache.spawn, memcache.crc32, misuse, hash_tag, and the
-- point of it all: a route waiting on a slow backend does not stall the
-- other clients of its worker.
--
-- Run from the repo root:
--   busted --lpath='./lua/?.lua;./lua/?/init.lua;./tests/spec/?.lua' tests/spec/yield_spec.lua
local H = require "harness"
local F = require "fakes"

local show, set_cmd, value_reply = H.show, F.set_cmd, F.value_reply

-- The data block of a one-value reply, or nil.
local function data_of(rep)
  return rep:match("^VALUE %S+ %d+ %d+ ?%d*\r\n(.*)\r\nEND\r\n$")
end

local CONFIG = [[
gateway.settings { threads = 1 }
local a = memcache.pool { servers = { "%s" }, timeout = 0.5 }
local b = memcache.pool { servers = { "%s" }, timeout = 0.5 }
local dead = memcache.pool { servers = { "127.0.0.1:%d" }, timeout = 0.5 }
local slow = memcache.pool { servers = { "%s" }, timeout = 5 }
local slow2 = memcache.pool { servers = { "%s" }, timeout = 5 }
local near = memcache.internal { size = "1MB" }
local tagged = memcache.pool { servers = { "%s", "%s" }, hash_tag = "{}" }
local plain = memcache.pool { servers = { "%s", "%s" } }
local text = memcache.pool { servers = { "%s" }, protocol = "text", name = "oldies" }
local POOLS = { a = a, dead = dead, near = near, text = text }

-- "type:value|type:value|..." of the first n values
local function show(n, ...)
  local out = {}
  for i = 1, n do
    local v = select(i, ...)
    out[i] = (math.type(v) or type(v)) .. ":" .. tostring(v)
  end
  return table.concat(out, "|")
end

-- "name=value,..." of pool:mg's table, sorted; "nil|err" for nil, err
local function fields(r, err)
  if r == nil then return "nil|" .. tostring(err) end
  local out = {}
  for k, v in pairs(r) do out[#out + 1] = k .. "=" .. tostring(v) end
  table.sort(out)
  return table.concat(out, ",")
end

-- pool:ms's results, a table shown as by fields
local function results(...)
  local out = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    out[i] = type(v) == "table" and "{" .. fields(v) .. "}" or tostring(v)
  end
  return table.concat(out, "|")
end

local CALLS = {
  get = function(p, k) return show(3, p:get(k)) end,
  gat = function(p, k) return show(3, p:gat(k, 100)) end,
  set = function(p, k) return show(2, p:set(k, "sv", 0, 7)) end,
  setdef = function(p, k) return show(2, p:set(k, "sd")) end,
  add = function(p, k) return show(2, p:add(k, "av", 0, 1)) end,
  replace = function(p, k) return show(2, p:replace(k, "rv")) end,
  append = function(p, k) return show(2, p:append(k, "+ap")) end,
  prepend = function(p, k) return show(2, p:prepend(k, "pp+")) end,
  casstale = function(p, k) return show(2, p:cas(k, "cv", 987654321)) end,
  casgood = function(p, k)
    local _, _, cas = p:get(k)
    return show(2, p:cas(k, "cv", cas, 0, 2))
  end,
  delete = function(p, k) return show(2, p:delete(k)) end,
  incr = function(p, k) return show(2, p:incr(k, 5)) end,
  decr = function(p, k) return show(2, p:decr(k, 2)) end,
  touch = function(p, k) return show(2, p:touch(k, 100)) end,
  pcall = function(p, k) return show(4, pcall(function() return p:get(k) end)) end,
  kind = function(p) return p:kind() .. "/" .. tostring(p:protocol()) end,
  mg = function(p, k) return fields(p:mg(k, "v t c f s k O77 h l")) end,
  mgdefault = function(p, k) return fields(p:mg(k)) end,
  mghd = function(p, k) return fields(p:mg(k, "t f")) end,
  mgviv = function(p, k) return fields(p:mg(k, "v t N30")) end,
  ms = function(p, k) return results(p:ms(k, "msv", { T = 50, F = 9 })) end,
  msinfo = function(p, k) return results(p:ms(k, "msi", { c = true, k = true, O = "op" })) end,
  msadd = function(p, k) return results(p:ms(k, "msa", { M = "E" })) end,
  mscas = function(p, k) return results(p:ms(k, "msc", { C = 987654321 })) end,
  msreplace = function(p, k) return results(p:ms(k, "msr", { M = "R" })) end,
}

local RESP = {
  hit = function() return memcache.hit("hv", 3, 77) end,
  hitplain = function() return memcache.hit("hv") end,
  miss = memcache.miss, stored = memcache.stored, not_stored = memcache.not_stored,
  exists = memcache.exists, not_found = memcache.not_found, deleted = memcache.deleted,
  touched = memcache.touched,
  number = function() return memcache.number(42) end,
  error = function() return memcache.error("custom trouble") end,
}

local MISUSE = {
  badkey = function() return a:get("has space") end,
  badtype = function() return a:get({}) end,
  novalue = function() return a:set("k") end,
  notself = function() return a.get("k") end,
  waitbad = function() return memcache.wait("tasks") end,
  spawnbad = function() return memcache.spawn(42) end,
  global = function() leaked_global = 1 return a end,
  mgflag = function() return a:mg("k", "v zz") end,
  mgquiet = function() return a:mg("k", "v q") end,
  mgnear = function() return near:mg("k") end,
  msmode = function() return a:ms("k", "v", { M = "Z" }) end,
  msoption = function() return a:ms("k", "v", { q = true }) end,
}

local WAITS = {
  all = function()
    local r, err = memcache.wait({
      function() return a:get("w:present") end,
      function() return dead:get("w:x") end,
      function() error("task boom") end,
      function() return false, "no" end,
    })
    return show(12, err, r.good, r[1][1], r[1].n, r[2][1], type(r[2][2]), r[3][1],
      tostring(r[3][2]):find("task boom", 1, true) ~= nil, r[3].n, r[4][1], r[4][2], #r)
  end,
  need = function()
    local r, err = memcache.wait({
      function() return slow:get("w:slow") end,
      function() return a:get("w:present") end,
    }, { need = 1 })
    return show(4, err, r.good, r[1], r[2] and r[2][1])
  end,
  timeout = function()
    local r, err = memcache.wait({ function() return slow:get("w:slow") end }, { timeout = 0.3 })
    return show(3, err, r.good, r[1])
  end,
  unreachable = function()
    local r, err = memcache.wait({
      function() return true end,
      function() return false end,
      function() return slow:get("w:slow") end,
    }, { need = 3 })
    return show(3, err, r.good, r[3])
  end,
  background = function()
    local r, err = memcache.wait({
      function() slow:get("w:slow"); a:set("w:bgdone", "yes") end,
      function() return true end,
    }, { need = 1 })
    return show(2, err, r.good)
  end,
}

memcache.route {
  ["call:"] = function(req)
    local pname, op, k = req.key:match("^call:(%%w+):(%%w+):(.+)$")
    return memcache.hit(CALLS[op](POOLS[pname], k))
  end,
  ["resp:"] = function(req) return RESP[req.key:match("^resp:([%%w_]+)")]() end,
  ["fwd:"] = function(req)
    local res, err = POOLS[req.key:match("^fwd:(%%w+):")]:forward(req)
    return memcache.error(show(10, res.status, res.ok, res.hit, res.value, res.flags,
      math.type(res.cas), res.number, res.error ~= nil, type(err), res.error == err))
  end,
  ["fwdr:"] = function(req)
    req.key = "fk/" .. req.key
    return (a:forward(req))
  end,
  ["wait:"] = function(req) return memcache.hit(WAITS[req.key:sub(6)]()) end,
  ["spawn:"] = function(req)
    local key = "sp/" .. req.key
    if req.key == "spawn:boom" then
      memcache.spawn(function() error("spawned boom") end)
    else
      memcache.spawn(function() a:set(key, "bg") end)
    end
    return memcache.stored()
  end,
  ["crc:"] = function(req) return memcache.hit(tostring(memcache.crc32(req.key:sub(5)))) end,
  ["mis:"] = function(req) return MISUSE[req.key:sub(5)]() end,
  ["slow:"] = function(req)
    local v, f = slow2:get(req.key)
    if v == nil then return memcache.error("slow: " .. tostring(f)) end
    return memcache.hit(v, f)
  end,
  ["yf:"] = function(req)
    local v, f = b:get(req.key)
    if v == nil then return f and memcache.error(f) or memcache.miss() end
    return memcache.hit(v .. "/via-route", f)
  end,
  ["ht:"] = tagged,
  ["pl:"] = function(req) req.key = req.key:sub(4); return plain end,
  default = b,
}
]]

describe("request-time API", function()
  local a, b, slow, slow2, dead_port, gw, g

  lazy_setup(function()
    a = H.start_memcached()
    b = H.start_memcached()
    slow = F.slow_server(1.5)  -- for memcache.wait
    slow2 = F.slow_server(1.5) -- for the "does not stall" test
    dead_port = H.free_port()
    gw = H.start_gateway(string.format(CONFIG, a.addr, b.addr, dead_port, slow.addr,
      slow2.addr, a.addr, b.addr, a.addr, b.addr, a.addr))
    g = H.connect(gw.port, F.RAW)
  end)

  lazy_teardown(function()
    if g then g:close() end
    if gw then gw.stop() end
    for _, s in ipairs({ a, b, slow, slow2 }) do if s then s.stop() end end
  end)

  after_each(function()
    if gw then assert.is_true(gw.alive(), "the gateway died:\n" .. gw.output()) end
  end)

  local function call(pool, op, key)
    local k = "call:" .. pool .. ":" .. op .. ":" .. key
    local rep = g:call("get " .. k .. "\r\n")
    local d = data_of(rep)
    assert.is_truthy(d, k .. ": " .. show(rep))
    return d
  end

  describe("pool calls from a route function return", function()
    it("get: value, flags, cas on a hit; nil on a miss", function()
      F.set(a, "c:hit", "hv", 0, 5)
      local d = call("a", "get", "c:hit")
      assert.matches("^string:hv|integer:5|integer:%d+$", d)
      assert.is_true(tonumber(d:match("(%d+)$")) > 0, "a memcached cas is never 0: " .. d)
      assert.are.equal("nil:nil|nil:nil|nil:nil", call("a", "get", "c:miss"))
    end)

    it("gat: value, flags, cas, and the expiry is set", function()
      F.set(a, "c:gat", "gv", 0, 4)
      local d = call("a", "gat", "c:gat")
      assert.matches("^string:gv|integer:4|integer:%d+$", d)
      assert.is_true(tonumber(d:match("(%d+)$")) > 0, "a memcached cas is never 0: " .. d)
      local ttl = F.ttl(a, "c:gat")
      assert.is_truthy(ttl and ttl > 90 and ttl <= 100, tostring(ttl))
      assert.are.equal("nil:nil|nil:nil|nil:nil", call("a", "gat", "c:gatmiss"))
    end)

    it("set/add/replace/append/prepend: true, or false + NOT_STORED", function()
      assert.are.equal("boolean:true|nil:nil", call("a", "set", "c:s"))
      assert.are.equal(value_reply("c:s", "sv", 7), F.get(a, "c:s"))
      assert.are.equal("boolean:true|nil:nil", call("a", "setdef", "c:sd"))
      assert.are.equal(value_reply("c:sd", "sd", 0), F.get(a, "c:sd"))
      assert.are.equal(-1, F.ttl(a, "c:sd"))
      assert.are.equal("boolean:false|string:NOT_STORED", call("a", "add", "c:s"))
      assert.are.equal("boolean:true|nil:nil", call("a", "add", "c:added"))
      assert.are.equal(value_reply("c:added", "av", 1), F.get(a, "c:added"))
      assert.are.equal("boolean:false|string:NOT_STORED", call("a", "replace", "c:nokey"))
      assert.are.equal("boolean:true|nil:nil", call("a", "replace", "c:s"))
      assert.are.equal("boolean:true|nil:nil", call("a", "append", "c:s"))
      assert.are.equal("boolean:true|nil:nil", call("a", "prepend", "c:s"))
      assert.are.equal("pp+rv+ap", F.value(a, "c:s"))
      assert.are.equal("boolean:false|string:NOT_STORED", call("a", "append", "c:nokey"))
    end)

    it("cas: true, false + EXISTS, false + NOT_FOUND", function()
      F.set(a, "c:cas", "x")
      assert.are.equal("boolean:false|string:EXISTS", call("a", "casstale", "c:cas"))
      assert.are.equal("x", F.value(a, "c:cas"))
      assert.are.equal("boolean:true|nil:nil", call("a", "casgood", "c:cas"))
      assert.are.equal(value_reply("c:cas", "cv", 2), F.get(a, "c:cas"))
      assert.are.equal("boolean:false|string:NOT_FOUND", call("a", "casstale", "c:casnone"))
    end)

    it("delete, touch: true or false + NOT_FOUND; incr/decr: an integer or false + NOT_FOUND", function()
      F.set(a, "c:n", "10")
      assert.are.equal("integer:15|nil:nil", call("a", "incr", "c:n"))
      assert.are.equal("integer:13|nil:nil", call("a", "decr", "c:n"))
      assert.are.equal("13", F.value(a, "c:n"))
      assert.are.equal("boolean:false|string:NOT_FOUND", call("a", "incr", "c:nonum"))
      assert.are.equal("boolean:true|nil:nil", call("a", "touch", "c:n"))
      local ttl = F.ttl(a, "c:n")
      assert.is_truthy(ttl and ttl > 90 and ttl <= 100, tostring(ttl))
      assert.are.equal("boolean:false|string:NOT_FOUND", call("a", "touch", "c:nonum"))
      assert.are.equal("boolean:true|nil:nil", call("a", "delete", "c:n"))
      assert.is_nil(F.value(a, "c:n"))
      assert.are.equal("boolean:false|string:NOT_FOUND", call("a", "delete", "c:n"))
    end)

    it("mg: a table of what the flags asked (value, ttl, cas, flags, ...); nil on a miss", function()
      F.set(a, "c:mg", "mv", 100, 5)
      assert.matches("^cas=%d+,fetched=false,flags=5,key=c:mg,last_access=%d+,opaque=77,size=2,ttl=%d+,value=mv$",
        call("a", "mg", "c:mg"))
      local ttl = tonumber(call("a", "mg", "c:mg"):match("ttl=(%d+)"))
      assert.is_true(ttl > 90 and ttl <= 100, "ttl " .. ttl)
      assert.are.equal("value=mv", call("a", "mgdefault", "c:mg"))
      -- no v: memcached answers HD, the table has no value
      assert.matches("^flags=5,ttl=%d+$", call("a", "mghd", "c:mg"))
      assert.are.equal("nil|nil", call("a", "mg", "c:mgmiss"))
      -- N: the first miss wins the right to recache, the next sees it was sent
      assert.matches("^ttl=%-1,value=,win=true$", call("a", "mgviv", "c:mgviv"))
      assert.matches("^ttl=%d+,value=,win_sent=true$", call("a", "mgviv", "c:mgviv"))
      assert.matches("^nil|.+", call("dead", "mg", "c:mg"))
      -- which pools take it
      assert.are.equal("memcached/meta", call("a", "kind", "x"))
      assert.are.equal("memcached/text", call("text", "kind", "x"))
      assert.are.equal("internal/nil", call("near", "kind", "x"))
      -- protocol = "text" (servers before 1.6): the text calls work, meta ones raise
      assert.are.equal("boolean:true|nil:nil", call("text", "set", "c:t"))
      assert.matches("^SERVER_ERROR lua error: .*pool:mg: pool oldies speaks only the text protocol",
        g:call("get call:text:mg:c:t\r\n"))
    end)

    it("ms: true, or false and why; the reply's flags as a table; options are its flags", function()
      assert.are.equal("true", call("a", "ms", "c:ms"))
      assert.matches("^flags=9,ttl=%d+$", call("a", "mghd", "c:ms"))
      assert.are.equal("value=msv", call("a", "mgdefault", "c:ms"))
      assert.matches("^true|{cas=%d+,key=c:ms,opaque=op}$", call("a", "msinfo", "c:ms"))
      assert.are.equal("false|NOT_STORED", call("a", "msadd", "c:ms"))
      assert.are.equal("false|EXISTS", call("a", "mscas", "c:ms"))
      assert.are.equal("false|NOT_STORED", call("a", "msreplace", "c:msnone"))
      assert.are.equal("value=msi", call("a", "mgdefault", "c:ms"))
      assert.matches("^nil|.+", call("dead", "ms", "c:ms"))
    end)

    it("a dead server: nil, err (a string) for every call", function()
      for _, op in ipairs({ "get", "set", "add", "delete", "incr", "touch", "casstale" }) do
        local d = call("dead", op, "c:x")
        assert.matches("^nil:nil|string:.+", d, op)
      end
      local d = call("dead", "gat", "c:x")
      assert.matches("^nil:nil|string:.+|nil:nil$", d)
    end)

    it("memcache.internal pools give the same results at once", function()
      assert.are.equal("boolean:true|nil:nil", call("near", "set", "c:i"))
      assert.matches("^string:sv|integer:7|integer:%d+$", call("near", "get", "c:i"))
      assert.are.equal("boolean:false|string:NOT_STORED", call("near", "add", "c:i"))
      assert.are.equal("boolean:false|string:EXISTS", call("near", "casstale", "c:i"))
      assert.are.equal("boolean:true|nil:nil", call("near", "delete", "c:i"))
      assert.are.equal("nil:nil|nil:nil|nil:nil", call("near", "get", "c:i"))
    end)

    it("a backend call inside pcall still waits and returns", function()
      F.set(a, "c:pc", "inside")
      assert.matches("^boolean:true|string:inside|integer:0|integer:%d+$", call("a", "pcall", "c:pc"))
    end)
  end)

  describe("pool:forward", function()
    it("returns a response object with the documented fields", function()
      F.set(a, "fwd:a:k", "fv", 0, 9)
      -- the route reports the fields in a SERVER_ERROR line: status, ok, hit,
      -- value, flags, math.type(cas), number, error ~= nil, type(err), error == err
      assert.are.equal("SERVER_ERROR string:HIT|boolean:true|boolean:true|string:fv|integer:9|"
        .. "string:integer|nil:nil|boolean:false|string:nil|boolean:true\r\n", g:call("gets fwd:a:k\r\n"))
      assert.are.equal("SERVER_ERROR string:MISS|boolean:true|boolean:false|nil:nil|nil:nil|"
        .. "nil:nil|nil:nil|boolean:false|string:nil|boolean:true\r\n", g:call("get fwd:a:none\r\n"))
      assert.are.equal("SERVER_ERROR string:STORED|boolean:true|boolean:false|nil:nil|nil:nil|"
        .. "nil:nil|nil:nil|boolean:false|string:nil|boolean:true\r\n", g:call(set_cmd("fwd:a:s", "x")))
      assert.are.equal("x", F.value(a, "fwd:a:s"))
      F.set(a, "fwd:a:n", "1")
      assert.are.equal("SERVER_ERROR string:NUMBER|boolean:true|boolean:false|nil:nil|nil:nil|"
        .. "nil:nil|integer:3|boolean:false|string:nil|boolean:true\r\n", g:call("incr fwd:a:n 2\r\n"))
      assert.are.equal("SERVER_ERROR string:NOT_FOUND|boolean:true|boolean:false|nil:nil|nil:nil|"
        .. "nil:nil|nil:nil|boolean:false|string:nil|boolean:true\r\n", g:call("delete fwd:a:none\r\n"))
    end)

    it("on a dead server: an error response and its message", function()
      assert.matches("^SERVER_ERROR string:SERVER_ERROR|boolean:false|boolean:false|nil:nil|nil:nil|"
        .. "nil:nil|nil:nil|boolean:true|string:string|boolean:true\r\n$", g:call("get fwd:dead:k\r\n"))
    end)

    it("a returned forward response reaches the client with the client's own key", function()
      assert.are.equal("STORED\r\n", g:call(set_cmd("fwdr:k", "val", 3)))
      assert.are.equal(value_reply("fk/fwdr:k", "val", 3), F.get(a, "fk/fwdr:k"))
      assert.are.equal(value_reply("fwdr:k", "val", 3), g:call("get fwdr:k\r\n"))
      assert.matches("^VALUE fwdr:k 3 3 %d+\r\nval\r\nEND\r\n$", g:call("gets fwdr:k\r\n"))
      assert.are.equal("VALUE fwdr:k 3 3\r\nval\r\nEND\r\n", g:call("get fwdr:none fwdr:k\r\n"))
      assert.are.equal("DELETED\r\n", g:call("delete fwdr:k\r\n"))
      assert.are.equal("NOT_FOUND\r\n", g:call("delete fwdr:k\r\n"))
    end)
  end)

  describe("a route returning a response", function()
    it("answers retrievals with hit and miss, with the client's key", function()
      assert.are.equal("VALUE resp:hit 3 2\r\nhv\r\nEND\r\n", g:call("get resp:hit\r\n"))
      assert.are.equal("VALUE resp:hit 3 2 77\r\nhv\r\nEND\r\n", g:call("gets resp:hit\r\n"))
      assert.are.equal("VALUE resp:hitplain 0 2\r\nhv\r\nEND\r\n", g:call("get resp:hitplain\r\n"))
      assert.are.equal("END\r\n", g:call("get resp:miss\r\n"))
      assert.are.equal("VALUE resp:hit 3 2\r\nhv\r\nVALUE resp:hitplain 0 2\r\nhv\r\nEND\r\n",
        g:call("get resp:hit resp:miss resp:hitplain\r\n"))
    end)

    it("answers other commands with their lines", function()
      assert.are.same({ "STORED\r\n", "NOT_STORED\r\n", "EXISTS\r\n", "NOT_FOUND\r\n",
        "DELETED\r\n", "TOUCHED\r\n", "42\r\n" },
        g:calls(set_cmd("resp:stored", "x") .. set_cmd("resp:not_stored", "x")
          .. "cas resp:exists 0 0 1 5\r\nx\r\n" .. "delete resp:not_found\r\n"
          .. "delete resp:deleted\r\n" .. "touch resp:touched 10\r\n" .. "incr resp:number 1\r\n", 7))
    end)

    it("memcache.error answers any command; a mismatched response is a SERVER_ERROR", function()
      assert.are.equal("SERVER_ERROR custom trouble\r\n", g:call("get resp:error\r\n"))
      assert.are.equal("SERVER_ERROR custom trouble\r\n", g:call(set_cmd("resp:error", "x")))
      assert.matches("^SERVER_ERROR ", g:call("get resp:stored\r\n"))
      assert.matches("^SERVER_ERROR ", g:call(set_cmd("resp:hit", "x")))
      assert.matches("^SERVER_ERROR ", g:call("delete resp:miss\r\n"))
      assert.are.equal("STORED\r\n", g:call(set_cmd("resp:stored", "x")))
    end)

    it("noreply: nothing is sent, and the connection goes on", function()
      assert.are.equal("DELETED\r\n",
        g:call("set resp:stored 0 0 1 noreply\r\nx\r\ndelete resp:deleted\r\n"))
    end)
  end)

  describe("memcache.wait", function()
    before_each(function() F.set(a, "w:present", "pv") end)

    it("waits for all tasks: results, raised errors, good count", function()
      local d = data_of(g:call("get wait:all\r\n"))
      assert.are.equal("nil:nil|integer:1|string:pv|integer:3|nil:nil|string:string|nil:nil|"
        .. "boolean:true|integer:2|boolean:false|string:no|integer:4", d)
    end)

    it("need: returns once enough tasks are good, the rest still running", function()
      local d = data_of(g:call("get wait:need\r\n"))
      assert.are.equal("nil:nil|integer:1|nil:nil|string:pv", d)
    end)

    it("timeout: gives up and says so", function()
      assert.are.equal("string:timeout|integer:0|nil:nil", data_of(g:call("get wait:timeout\r\n")))
    end)

    it("need that can no longer be met: says how many succeeded", function()
      -- one task failed: 3 can no longer be good; no waiting for the slow one
      assert.are.equal("string:only 1 of 3 tasks succeeded|integer:1|nil:nil",
        data_of(g:call("get wait:unreachable\r\n")))
    end)

    it("tasks left running finish in the background", function()
      F.delete(a, "w:bgdone")
      assert.are.equal("nil:nil|integer:1", data_of(g:call("get wait:background\r\n")))
      assert.is_nil(F.value(a, "w:bgdone")) -- the slow get is still out
      H.wait_until(function() return F.value(a, "w:bgdone") == "yes" end, 6, "the background task")
    end)
  end)

  describe("memcache.spawn and memcache.crc32", function()
    it("spawn runs a task in the background; its errors are logged", function()
      assert.are.equal("STORED\r\n", g:call(set_cmd("spawn:x", "ignored")))
      H.wait_until(function() return F.value(a, "sp/spawn:x") == "bg" end, 5, "the spawned set")
      assert.are.equal("STORED\r\n", g:call(set_cmd("spawn:boom", "ignored")))
      H.wait_until(function() return gw.output():find("spawned boom", 1, true) end, 5,
        "the spawned task's error in the log")
      assert.are.equal("END\r\n", g:call("get nothing-here\r\n"))
    end)

    it("crc32 is the IEEE CRC-32", function()
      assert.are.equal("907060870", data_of(g:call("get crc:hello\r\n")))
      for _, k in ipairs({ "x", "session:abcdef", "ns/key-123" }) do
        assert.are.equal(tostring(F.crc32(k)), data_of(g:call("get crc:" .. k .. "\r\n")), k)
      end
    end)
  end)

  describe("misuse", function()
    for _, case in ipairs({ { "badkey" }, { "badtype" }, { "novalue" }, { "notself" },
        { "waitbad" }, { "spawnbad" }, { "global", "assignment to global 'leaked_global'" },
        { "mgflag", 'pool:mg: flags "v zz": CLIENT_ERROR invalid flag' },
        { "mgquiet", "q and b cannot be asked here" },
        { "mgnear", "a memcache.internal pool does not speak meta" },
        { "msmode", 'pool:ms: flags "MZ": CLIENT_ERROR invalid mode for ms M token' },
        { "msoption", "pool:ms: option q is not a meta set flag" } }) do
      it(case[1] .. " raises: SERVER_ERROR lua error for that request, the connection goes on", function()
        local rep = g:call("get mis:" .. case[1] .. "\r\n")
        assert.matches("^SERVER_ERROR lua error", rep)
        if case[2] then assert.is_truthy(rep:find(case[2], 1, true), rep) end
        assert.are.equal("STORED\r\n", g:call(set_cmd("after", "ok")))
        assert.are.equal(value_reply("after", "ok"), g:call("get after\r\n"))
      end)
    end

    it("request-time calls raise at config time", function()
      for _, body in ipairs({ "p:get(\"k\")", "p:set(\"k\", \"v\")", "memcache.wait({})", "memcache.spawn(function() end)" }) do
        local path = H.write_config("local p = memcache.pool { servers = { \"127.0.0.1:1\" } }\n"
          .. body .. "\nmemcache.route { default = p }\n")
        local out = H.run(string.format("%s --check %s 2>&1; echo EXIT=$?", H.quote(H.gateway_bin),
          H.quote(path)))
        os.remove(path)
        assert.is_truthy(out:find(path .. ":2: ", 1, true), body .. ": " .. out)
        assert.is_truthy(out:find("may only be called at request time", 1, true), body .. ": " .. out)
        assert.is_truthy(out:find("EXIT=1\n", 1, true), body .. ": " .. out)
      end
    end)
  end)

  describe("a route waiting on a slow backend", function()
    it("does not stall other clients of the same worker", function()
      F.set(b, "fast", "quick")
      F.set(b, "yf:yfast", "y")
      local ca = H.connect(gw.port, { timeout = 10 })
      local cb = H.connect(gw.port, F.RAW)
      local before = select(2, slow2.seen():gsub("\n", ""))
      ca:send("get slow:x\r\n")
      -- A's get has reached the slow server: A's route is now waiting
      H.wait_until(function() return select(2, slow2.seen():gsub("\n", "")) > before end, 5,
        "A's request at the slow server")
      -- B, on the same (only) worker: a plain forward ...
      cb:send("get fast\r\n")
      local who, rep = F.first_reply({ ca, cb })
      assert.are.equal(2, who, "A was answered first: " .. show(rep))
      assert.are.equal(value_reply("fast", "quick"), rep)
      -- ... a route function's own backend call ...
      cb:send("get yf:yfast\r\n")
      who, rep = F.first_reply({ ca, cb })
      assert.are.equal(2, who, "A was answered first: " .. show(rep))
      assert.are.equal(value_reply("yf:yfast", "y/via-route"), rep)
      -- ... and a write
      cb:send(set_cmd("fastw", "w"))
      who, rep = F.first_reply({ ca, cb })
      assert.are.equal(2, who, "A was answered first: " .. show(rep))
      assert.are.equal("STORED\r\n", rep)
      -- then A gets its answer
      who, rep = F.first_reply({ ca, cb })
      assert.are.equal(1, who)
      assert.are.equal(value_reply("slow:x", "slow:slow:x"), rep)
      ca:close()
      cb:close()
    end)

    it("a multi-get through a yielding route answers every key, in order", function()
      F.set(b, "yf:m1", "one")
      F.set(b, "yf:m3", "three", 0, 4)
      assert.are.equal("VALUE yf:m1 0 13\r\none/via-route\r\nVALUE yf:m3 4 15\r\nthree/via-route\r\nEND\r\n",
        g:call("get yf:m1 yf:m2 yf:m3\r\n"))
    end)
  end)

  describe("hash_tag", function()
    local function holder(key)
      local on_a, on_b = F.value(a, key) ~= nil, F.value(b, key) ~= nil
      assert.is_true(on_a ~= on_b, key .. " is on " .. (on_a and "both" or "neither"))
      return on_a and "a" or "b"
    end

    it("keys with the same tag land on one server, the one the tag alone hashes to", function()
      for _, tag in ipairs({ "user7", "abc", "x", "s-1234" }) do
        assert.are.equal("STORED\r\n", g:call(set_cmd("pl:" .. tag, "t")))
        local want = holder(tag)
        for i = 1, 12 do
          local k = "ht:{" .. tag .. "}:k" .. i
          assert.are.equal("STORED\r\n", g:call(set_cmd(k, "v")))
          assert.are.equal(want, holder(k), k)
        end
        F.delete(a, tag)
        F.delete(b, tag)
      end
    end)

    it("keys without a tag, or with an empty one, are hashed whole: they spread", function()
      for _, fmt in ipairs({ "ht:user7:k%d", "ht:{}:k%d" }) do
        local seen = {}
        for i = 1, 30 do
          local k = fmt:format(i)
          assert.are.equal("STORED\r\n", g:call(set_cmd(k, "v")))
          seen[holder(k)] = true
        end
        assert.is_true(seen.a and seen.b, fmt .. " did not spread")
      end
    end)
  end)
end)
