-- route_spec.lua -- lua/gateway/route.lua against real memcached servers:
-- failover (dead server, miss), the gutter one-liner, replication,
-- namespaces, sliding sessions, warm-up, shadowing, the near cache, and
-- the config-time checks.
--
-- Where data landed is checked on the memcached servers directly, not only
-- through the gateway.
--
-- Run from the repo root:
--   busted --lpath='./lua/?.lua;./lua/?/init.lua;./tests/spec/?.lua' tests/spec/route_spec.lua
local H = require "harness"
local F = require "fakes"
local socket = require "socket"

local show, set_cmd, value_reply = H.show, F.set_cmd, F.value_reply

describe("gateway.route", function()
  local a, b, c, silent, dead_port, gw, g

  lazy_setup(function()
    a = H.start_memcached()
    b = H.start_memcached()
    c = H.start_memcached()
    silent = F.silent_server()
    dead_port = H.free_port() -- nothing listens here
    gw = H.start_gateway(string.format([[
gateway.settings { threads = 1 }
local route = require "gateway.route"
local a = memcache.pool { servers = { "%s" }, timeout = 0.5 }
local b = memcache.pool { servers = { "%s" }, timeout = 0.5 }
local c = memcache.pool { servers = { "%s" }, timeout = 0.5 }
local dead = memcache.pool { servers = { "127.0.0.1:%d" }, timeout = 0.5 }
local silent = memcache.pool { servers = { "%s" }, timeout = 1 }

memcache.route {
  ["fo:"] = route.failover(dead, a),
  ["fm:"] = route.failover(a, b, { on_miss = true }),
  ["fn:"] = route.failover(a, b),
  ["fdm:"] = route.failover(dead, a, b, { on_miss = true }),
  ["gut:"] = route.failover(dead, route.cap_ttl(b, 10)),
  ["gut2:"] = route.failover(a, route.cap_ttl(b, 10)),
  ["fok:"] = route.failover(function(req) req.key = "moved/" .. req.key; return dead end, a),

  ["rep:"] = route.replicate { a, b },
  ["repd:"] = route.replicate { dead, b },
  ["rep1:"] = route.replicate { dead, b, wait = "one" },
  ["reps1:"] = route.replicate { silent, a, wait = "one" },
  ["repsa:"] = route.replicate { silent, a },
  ["repns:"] = route.replicate { route.namespace("x/", a), route.namespace("y/", b) },

  ["ns:"] = route.namespace("tenantA/", a),
  ["nsn:"] = route.namespace("outer/", route.namespace("inner/", a)),

  ["ss:"] = route.sliding_session { a, ttl = 2 },
  ["ss2:"] = route.sliding_session { a, b, ttl = 100 },
  ["ssd:"] = route.sliding_session { dead, b, ttl = 100, wait = "one" },

  ["wu:"] = route.warmup { new = a, old = b, ttl = 50 },

  ["sh1:"] = route.shadow { target = a, shadow = b, fraction = 1 },
  ["sh0:"] = route.shadow { target = a, shadow = b, fraction = 0 },
  ["sh5:"] = route.shadow { target = a, shadow = c, fraction = 0.5 },

  ["nc:"] = route.near_cache { a, size = "1MB", ttl = 3 },

  ["call:"] = function(req)
    return route.call(function(q) q.key = "rc/" .. q.key; return a end, req)
  end,
  default = a,
}
]], a.addr, b.addr, c.addr, dead_port, silent.addr))
    g = H.connect(gw.port, F.RAW)
  end)

  lazy_teardown(function()
    if g then g:close() end
    if gw then gw.stop() end
    for _, s in ipairs({ a, b, c, silent }) do if s then s.stop() end end
  end)

  after_each(function()
    if gw then assert.is_true(gw.alive(), "the gateway died:\n" .. gw.output()) end
  end)

  describe("route.call", function()
    it("forwards the pool a route function returns, with the key it set", function()
      assert.are.equal("STORED\r\n", g:call(set_cmd("call:x", "cv", 4)))
      assert.are.equal(value_reply("rc/call:x", "cv", 4), F.get(a, "rc/call:x"))
      assert.are.equal(value_reply("call:x", "cv", 4), g:call("get call:x\r\n"))
    end)
  end)

  describe("route.failover", function()
    it("goes to the next target when the first server is dead", function()
      assert.are.equal("STORED\r\n", g:call(set_cmd("fo:k", "v1", 3)))
      assert.are.equal(value_reply("fo:k", "v1", 3), F.get(a, "fo:k"))
      assert.are.equal(value_reply("fo:k", "v1", 3), g:call("get fo:k\r\n"))
      assert.are.equal("DELETED\r\n", g:call("delete fo:k\r\n"))
      assert.are.equal("END\r\n", F.get(a, "fo:k"))
    end)

    it("each target sees the client's request, not the previous target's rewrite", function()
      assert.are.equal("STORED\r\n", g:call(set_cmd("fok:k", "v")))
      assert.are.equal(value_reply("fok:k", "v"), F.get(a, "fok:k"))
      assert.are.equal("END\r\n", F.get(a, "moved/fok:k"))
    end)

    it("with on_miss, a retrieval that misses goes on to the next target", function()
      F.set(b, "fm:onlyb", "fromb", 0, 6)
      assert.are.equal(value_reply("fm:onlyb", "fromb", 6), g:call("get fm:onlyb\r\n"))
      -- without on_miss the first target's miss is the answer
      F.set(b, "fn:onlyb", "fromb")
      assert.are.equal("END\r\n", g:call("get fn:onlyb\r\n"))
      -- a hit on the first target wins
      F.set(a, "fm:both", "froma")
      F.set(b, "fm:both", "fromb")
      assert.are.equal(value_reply("fm:both", "froma"), g:call("get fm:both\r\n"))
      -- a miss everywhere is a miss
      assert.are.equal("END\r\n", g:call("get fm:nowhere\r\n"))
      -- writes are answered by the first target and go nowhere else
      assert.are.equal("STORED\r\n", g:call(set_cmd("fm:w", "w")))
      assert.are.equal(value_reply("fm:w", "w"), F.get(a, "fm:w"))
      assert.are.equal("END\r\n", F.get(b, "fm:w"))
      -- a miss is not a failure for other commands: NOT_FOUND is the answer
      assert.are.equal("NOT_FOUND\r\n", g:call("delete fm:onlyb\r\n"))
      assert.are.equal(value_reply("fm:onlyb", "fromb", 6), F.get(b, "fm:onlyb"))
    end)

    it("a multi-get answers every key from where it is, in the client's order", function()
      F.set(a, "fm:m1", "a1")
      F.set(b, "fm:m2", "b2")
      assert.are.equal("VALUE fm:m1 0 2\r\na1\r\nVALUE fm:m2 0 2\r\nb2\r\nEND\r\n",
        g:call("get fm:m2x fm:m1 fm:m2\r\n"))
    end)

    it("skips a dead server and then a miss", function()
      F.set(b, "fdm:k", "deep")
      assert.are.equal(value_reply("fdm:k", "deep"), g:call("get fdm:k\r\n"))
    end)
  end)

  describe("the gutter one-liner: failover(main, cap_ttl(gutter, 10))", function()
    it("stores on the gutter with the TTL capped while main is dead", function()
      assert.are.equal("STORED\r\n", g:call(set_cmd("gut:forever", "v", 0, 0)))
      local ttl = F.ttl(b, "gut:forever")
      assert.is_truthy(ttl and ttl > 0 and ttl <= 10, "ttl on the gutter: " .. tostring(ttl))
      assert.are.equal("STORED\r\n", g:call(set_cmd("gut:long", "v", 0, 3600)))
      ttl = F.ttl(b, "gut:long")
      assert.is_truthy(ttl and ttl > 0 and ttl <= 10, "ttl on the gutter: " .. tostring(ttl))
      -- an absolute unix time far ahead is capped as well
      assert.are.equal("STORED\r\n", g:call(set_cmd("gut:abs", "v", 0, os.time() + 86400)))
      ttl = F.ttl(b, "gut:abs")
      assert.is_truthy(ttl and ttl > 0 and ttl <= 10, "ttl on the gutter: " .. tostring(ttl))
      -- a shorter one is kept
      assert.are.equal("STORED\r\n", g:call(set_cmd("gut:short", "v", 0, 4)))
      ttl = F.ttl(b, "gut:short")
      assert.is_truthy(ttl and ttl > 0 and ttl <= 4, "ttl on the gutter: " .. tostring(ttl))
      -- touch is capped too
      assert.are.equal("TOUCHED\r\n", g:call("touch gut:short 0\r\n"))
      ttl = F.ttl(b, "gut:short")
      assert.is_truthy(ttl and ttl > 4 and ttl <= 10, "ttl after touch: " .. tostring(ttl))
      -- and gat
      F.set(b, "gut:gat", "g", 0)
      assert.are.equal(value_reply("gut:gat", "g"), g:call("gat 0 gut:gat\r\n"))
      ttl = F.ttl(b, "gut:gat")
      assert.is_truthy(ttl and ttl > 0 and ttl <= 10, "ttl after gat: " .. tostring(ttl))
      -- and reads find it there
      assert.are.equal(value_reply("gut:forever", "v"), g:call("get gut:forever\r\n"))
    end)

    it("leaves the TTL alone on main while main is up", function()
      assert.are.equal("STORED\r\n", g:call(set_cmd("gut2:k", "v", 0, 0)))
      assert.are.equal(-1, F.ttl(a, "gut2:k"))
      assert.is_nil(F.ttl(b, "gut2:k"))
    end)
  end)

  describe("route.replicate", function()
    it("writes land on every pool; deletes and incr too", function()
      assert.are.equal("STORED\r\n", g:call(set_cmd("rep:k", "10", 9)))
      assert.are.equal(value_reply("rep:k", "10", 9), F.get(a, "rep:k"))
      assert.are.equal(value_reply("rep:k", "10", 9), F.get(b, "rep:k"))
      assert.are.equal("15\r\n", g:call("incr rep:k 5\r\n"))
      assert.are.equal("15", F.value(a, "rep:k"))
      assert.are.equal("15", F.value(b, "rep:k"))
      assert.are.equal("NOT_STORED\r\n", g:call("add rep:k 0 0 1\r\nx\r\n"))
      assert.are.equal("DELETED\r\n", g:call("delete rep:k\r\n"))
      assert.are.equal("END\r\n", F.get(a, "rep:k"))
      assert.are.equal("END\r\n", F.get(b, "rep:k"))
      -- noreply writes land too
      g:send((set_cmd("rep:nr", "q"):gsub("\r\n", " noreply\r\n", 1)))
      H.wait_until(function() return F.value(b, "rep:nr") == "q" and F.value(a, "rep:nr") == "q" end,
        5, "the noreply set on both pools")
    end)

    it("reads come from the first pool, then the next on a miss", function()
      F.set(a, "rep:r", "froma")
      F.set(b, "rep:r", "fromb")
      assert.are.equal(value_reply("rep:r", "froma"), g:call("get rep:r\r\n"))
      F.set(b, "rep:onlyb", "fromb", 0, 2)
      assert.are.equal(value_reply("rep:onlyb", "fromb", 2), g:call("get rep:onlyb\r\n"))
    end)

    it("each pool gets the client's key even when targets rewrite it", function()
      assert.are.equal("STORED\r\n", g:call(set_cmd("repns:k", "v")))
      assert.are.equal(value_reply("x/repns:k", "v"), F.get(a, "x/repns:k"))
      assert.are.equal(value_reply("y/repns:k", "v"), F.get(b, "y/repns:k"))
      assert.are.equal("END\r\n", F.get(b, "y/x/repns:k"))
      assert.are.equal(value_reply("repns:k", "v"), g:call("get repns:k\r\n"))
    end)

    it("wait = all: a failed replica makes the answer an error, the live one still has it", function()
      assert.matches("^SERVER_ERROR", g:call(set_cmd("repd:k", "v")))
      assert.are.equal(value_reply("repd:k", "v"), F.get(b, "repd:k"))
      -- and reads fall back past the dead first pool
      assert.are.equal(value_reply("repd:k", "v"), g:call("get repd:k\r\n"))
    end)

    it("wait = one: the first good answer is the answer", function()
      assert.are.equal("STORED\r\n", g:call(set_cmd("rep1:k", "v")))
      assert.are.equal(value_reply("rep1:k", "v"), F.get(b, "rep1:k"))
      assert.are.equal(value_reply("rep1:k", "v"), g:call("get rep1:k\r\n"))
      -- a replica that never answers does not hold the answer back ...
      assert.are.equal("STORED\r\n", g:call(set_cmd("reps1:k", "v")))
      assert.are.equal(value_reply("reps1:k", "v"), F.get(a, "reps1:k"))
      -- ... while wait = all waits for it, and reports its timeout
      assert.matches("^SERVER_ERROR[^\r]*timed out\r\n$", g:call(set_cmd("repsa:k", "v")))
      assert.are.equal(value_reply("repsa:k", "v"), F.get(a, "repsa:k"))
    end)
  end)

  describe("route.namespace", function()
    it("the backend holds the prefixed key; the client sees its own", function()
      assert.are.equal("STORED\r\n", g:call(set_cmd("ns:x", "vx", 1)))
      assert.are.equal("STORED\r\n", g:call(set_cmd("ns:y", "vy", 2)))
      assert.are.equal(value_reply("tenantA/ns:x", "vx", 1), F.get(a, "tenantA/ns:x"))
      assert.are.equal("END\r\n", F.get(a, "ns:x"))
      F.set(a, "ns:y", "unprefixed") -- must not be read
      assert.are.equal("VALUE ns:y 2 2\r\nvy\r\nVALUE ns:x 1 2\r\nvx\r\nEND\r\n",
        g:call("get ns:y ns:nope ns:x\r\n"))
      local gets = g:call("gets ns:x\r\n")
      assert.matches("^VALUE ns:x 1 2 %d+\r\nvx\r\nEND\r\n$", gets)
      assert.are.equal("DELETED\r\n", g:call("delete ns:x\r\n"))
      assert.are.equal("END\r\n", F.get(a, "tenantA/ns:x"))
    end)

    it("namespaces nest", function()
      assert.are.equal("STORED\r\n", g:call(set_cmd("nsn:k", "v")))
      assert.are.equal(value_reply("inner/outer/nsn:k", "v"), F.get(a, "inner/outer/nsn:k"))
      assert.are.equal(value_reply("nsn:k", "v"), g:call("get nsn:k\r\n"))
    end)
  end)

  describe("route.sliding_session", function()
    it("writes get the session ttl, whatever the client asked", function()
      assert.are.equal("STORED\r\n", g:call(set_cmd("ss:w", "{}", 0, 0)))
      local ttl = F.ttl(a, "ss:w")
      assert.is_truthy(ttl and ttl >= 0 and ttl <= 2, "ttl " .. tostring(ttl))
    end)

    it("a session read every half second outlives its ttl; left alone it expires", function()
      local session = '{"user": 42, "cart": [1, 2]}'
      assert.are.equal("STORED\r\n", g:call(set_cmd("ss:s1", session, 0, 0)))
      local start = socket.gettime()
      local reads = 0
      -- 5 s of reads: well past two ttls of 2 s
      while socket.gettime() - start < 5 do
        assert.are.equal(value_reply("ss:s1", session), g:call("get ss:s1\r\n"),
          "read " .. reads .. " after " .. (socket.gettime() - start) .. " s")
        reads = reads + 1
        socket.sleep(0.5)
      end
      assert.is_true(reads >= 8)
      -- gets answers with the real cas, from the same gat: a cas with it works
      local cas = g:call("gets ss:s1\r\n"):match("^VALUE ss:s1 0 %d+ (%d+)\r\n")
      assert.is_truthy(cas)
      assert.are.equal("STORED\r\n", g:call(string.format("cas ss:s1 0 0 %d %s\r\n%s\r\n",
        #session, cas, session)))
      -- left alone (looked at directly only, which does not extend it) it expires
      H.wait_until(function() return F.get(a, "ss:s1") == "END\r\n" end, 6, "the session to expire")
      assert.are.equal("END\r\n", g:call("get ss:s1\r\n"))
    end)

    it("with two pools, a write lands on both and a read extends both", function()
      assert.are.equal("STORED\r\n", g:call(set_cmd("ss2:s", "sess", 0, 0)))
      local ta, tb = F.ttl(a, "ss2:s"), F.ttl(b, "ss2:s")
      assert.is_truthy(ta and ta > 90 and ta <= 100, "ttl on a " .. tostring(ta))
      assert.is_truthy(tb and tb > 90 and tb <= 100, "ttl on b " .. tostring(tb))
      -- shorten both behind the gateway's back; a read puts both back to 100
      F.set(a, "ss2:s", "sess", 5)
      F.set(b, "ss2:s", "sess", 5)
      assert.are.equal(value_reply("ss2:s", "sess"), g:call("get ss2:s\r\n"))
      H.wait_until(function()
        local x, y = F.ttl(a, "ss2:s"), F.ttl(b, "ss2:s")
        return x and y and x > 90 and y > 90
      end, 5, "both copies extended")
      -- a copy left on one pool only is still found
      F.delete(a, "ss2:s")
      assert.are.equal(value_reply("ss2:s", "sess"), g:call("get ss2:s\r\n"))
      assert.are.equal("END\r\n", g:call("get ss2:nothing\r\n"))
    end)

    it("with one pool dead, sessions are read and written on the other", function()
      assert.are.equal("STORED\r\n", g:call(set_cmd("ssd:s", "live", 0, 0)))
      assert.are.equal(value_reply("ssd:s", "live"), F.get(b, "ssd:s"))
      assert.are.equal(value_reply("ssd:s", "live"), g:call("get ssd:s\r\n"))
    end)
  end)

  describe("route.warmup", function()
    it("a miss on new is read from old and copied into new in the background", function()
      F.set(b, "wu:k", "oldvalue", 0, 7)
      assert.is_nil(F.value(a, "wu:k"))
      assert.are.equal(value_reply("wu:k", "oldvalue", 7), g:call("get wu:k\r\n"))
      H.wait_until(function() return F.get(a, "wu:k") == value_reply("wu:k", "oldvalue", 7) end,
        5, "the fill of new")
      local ttl = F.ttl(a, "wu:k")
      assert.is_truthy(ttl and ttl > 40 and ttl <= 50, "ttl on new " .. tostring(ttl))
      -- a miss in both is a miss, and fills nothing
      assert.are.equal("END\r\n", g:call("get wu:none\r\n"))
      assert.are.equal("END\r\n", F.get(a, "wu:none"))
    end)

    it("the copy keeps the time old's item had left, within ttl", function()
      F.set(b, "wu:t", "short", 30)
      assert.are.equal(value_reply("wu:t", "short"), g:call("get wu:t\r\n"))
      H.wait_until(function() return F.value(a, "wu:t") == "short" end, 5, "the fill of new")
      local ttl = F.ttl(a, "wu:t")
      assert.is_truthy(ttl and ttl > 20 and ttl <= 30, "ttl on new " .. tostring(ttl))
    end)

    it("new wins over old; gets fills new first and answers new's cas", function()
      F.set(a, "wu:both", "new")
      F.set(b, "wu:both", "old")
      assert.are.equal(value_reply("wu:both", "new"), g:call("get wu:both\r\n"))
      -- old's cas counter is moved well away from new's first
      for i = 1, 7 do F.set(b, "wu:g", "oldg", 0, 3) end
      local rep = g:call("gets wu:g\r\n")
      local cas = rep:match("^VALUE wu:g 3 4 (%d+)\r\noldg\r\nEND\r\n$")
      assert.is_truthy(cas, show(rep))
      -- the cas is new's: a cas through the gateway with it succeeds on new
      assert.are.equal("STORED\r\n", g:call("cas wu:g 0 0 1 " .. cas .. "\r\nz\r\n"))
      assert.are.equal("z", F.value(a, "wu:g"))
      assert.are.equal("oldg", F.value(b, "wu:g"))
    end)

    it("writes go to new only; deletes to both", function()
      assert.are.equal("STORED\r\n", g:call(set_cmd("wu:w", "fresh")))
      assert.are.equal("fresh", F.value(a, "wu:w"))
      assert.is_nil(F.value(b, "wu:w"))
      F.set(b, "wu:d", "old")
      F.set(a, "wu:d", "new")
      assert.are.equal("DELETED\r\n", g:call("delete wu:d\r\n"))
      assert.is_nil(F.value(a, "wu:d"))
      assert.is_nil(F.value(b, "wu:d"))
      assert.are.equal("END\r\n", g:call("get wu:d\r\n"))
      -- a key only old has is deleted too (DELETED: it existed)
      F.set(b, "wu:d2", "old")
      assert.are.equal("DELETED\r\n", g:call("delete wu:d2\r\n"))
      assert.is_nil(F.value(b, "wu:d2"))
      assert.are.equal("NOT_FOUND\r\n", g:call("delete wu:d2\r\n"))
    end)
  end)

  describe("route.shadow", function()
    it("with fraction 1 the shadow pool receives the requests too; the answer is target's", function()
      assert.are.equal("STORED\r\n", g:call(set_cmd("sh1:k", "v1")))
      assert.are.equal("v1", F.value(a, "sh1:k"))
      H.wait_until(function() return F.value(b, "sh1:k") == "v1" end, 5, "the shadow copy")
      F.set(b, "sh1:k", "shadowonly")
      assert.are.equal(value_reply("sh1:k", "v1"), g:call("get sh1:k\r\n"))
      assert.are.equal("DELETED\r\n", g:call("delete sh1:k\r\n"))
      H.wait_until(function() return F.value(b, "sh1:k") == nil end, 5, "the shadow delete")
    end)

    it("with fraction 0 the shadow pool receives nothing", function()
      for i = 1, 20 do assert.are.equal("STORED\r\n", g:call(set_cmd("sh0:k" .. i, "v"))) end
      -- a shadowed write sent after them, on the same worker: once it has
      -- landed, any shadow copy of the sh0: writes would have too
      assert.are.equal("STORED\r\n", g:call(set_cmd("sh1:barrier", "b")))
      H.wait_until(function() return F.value(b, "sh1:barrier") == "b" end, 5, "the barrier")
      for i = 1, 20 do
        assert.are.equal("v", F.value(a, "sh0:k" .. i))
        assert.is_nil(F.value(b, "sh0:k" .. i), "sh0:k" .. i .. " was shadowed")
      end
    end)

    it("a fraction picks the keys by crc32, the same keys every time", function()
      local want, n = {}, 0
      for i = 1, 100 do
        local k = "sh5:k" .. i
        want[k] = F.crc32(k) < 2 ^ 31
        if want[k] then n = n + 1 end
        assert.are.equal("STORED\r\n", g:call(set_cmd(k, "v")))
      end
      assert.is_true(n > 20 and n < 80)
      assert.are.equal("STORED\r\n", g:call(set_cmd("sh1:barrier2", "b")))
      H.wait_until(function() return F.value(b, "sh1:barrier2") == "b" end, 5, "the barrier")
      H.wait_until(function()
        for k, w in pairs(want) do
          if w and F.value(c, k) ~= "v" then return false end
        end
        return true
      end, 5, "the shadowed keys")
      for k, w in pairs(want) do
        assert.are.equal(w, F.value(c, k) == "v", k)
      end
    end)
  end)

  describe("route.near_cache", function()
    it("serves a get from the near copy within ttl, even after the backend changed", function()
      assert.are.equal("STORED\r\n", g:call(set_cmd("nc:k", "v1", 5)))
      assert.are.equal(value_reply("nc:k", "v1", 5), g:call("get nc:k\r\n")) -- fills it
      F.set(a, "nc:k", "v2", 0, 6)
      assert.are.equal(value_reply("nc:k", "v1", 5), g:call("get nc:k\r\n"))
      -- gets bypasses it (it needs the real cas)
      assert.matches("^VALUE nc:k 6 2 %d+\r\nv2\r\nEND\r\n$", g:call("gets nc:k\r\n"))
      -- once ttl has passed the backend's value is seen
      H.wait_until(function() return g:call("get nc:k\r\n") == value_reply("nc:k", "v2", 6) end,
        6, "the near copy to expire")
    end)

    it("a write through the gateway drops the near copy", function()
      assert.are.equal("STORED\r\n", g:call(set_cmd("nc:w", "one")))
      assert.are.equal(value_reply("nc:w", "one"), g:call("get nc:w\r\n"))
      assert.are.equal("STORED\r\n", g:call(set_cmd("nc:w", "two")))
      assert.are.equal(value_reply("nc:w", "two"), g:call("get nc:w\r\n"))
      F.set(a, "nc:w", "5")
      assert.are.equal(value_reply("nc:w", "two"), g:call("get nc:w\r\n"))
      assert.are.equal("6\r\n", g:call("incr nc:w 1\r\n"))
      assert.are.equal(value_reply("nc:w", "6"), g:call("get nc:w\r\n"))
      assert.are.equal("DELETED\r\n", g:call("delete nc:w\r\n"))
      assert.are.equal("END\r\n", g:call("get nc:w\r\n"))
      assert.is_nil(F.value(a, "nc:w"))
    end)
  end)
end)

-- cas on replicated routes, and fills racing writes.  The racing orders
-- are forced with gates (F.gate_server): a proxy in front of a real
-- memcached that holds a chosen key's replies until the spec lets them go,
-- after memcached has executed the request.
describe("gateway.route under replicas and races", function()
  local a, b, m, ga, gb, gn, dead_port, gw, gw2, g
  local add_stop = {}

  -- The cas memcached itself holds for key, or nil.
  local function cas_on(server, key)
    local rep = H.request(server.port, "gets " .. key .. "\r\n", F.RAW)
    return rep:match("^VALUE %S+ %d+ %d+ (%d+)\r\n")
  end

  -- Move a server's cas counter ahead, so that a key written to a and b
  -- has a different cas on each.
  local function bump(server, n)
    for i = 1, n do F.set(server, "bump:" .. i, "x") end
  end

  local function cas_cmd(key, value, cas, flags, exptime)
    return string.format("cas %s %d %d %d %s\r\n%s\r\n", key, flags or 0, exptime or 0,
      #value, cas, value)
  end

  lazy_setup(function()
    a = H.start_memcached()
    b = H.start_memcached()
    m = H.start_memcached()
    ga = F.gate_server(a)
    gb = F.gate_server(b)
    gn = F.gate_server(m)
    dead_port = H.free_port()
    gw = H.start_gateway(string.format([[
gateway.settings { threads = 1 }
local route = require "gateway.route"
-- no spec here waits for a timeout: generous ones keep a loaded machine
-- from turning an answer into an error (dead refuses at once)
local a = memcache.pool { servers = { "%s" }, timeout = 5 }
local b = memcache.pool { servers = { "%s" }, timeout = 5 }
local ga = memcache.pool { servers = { "%s" }, timeout = 10 } -- a, through a gate
local gb = memcache.pool { servers = { "%s" }, timeout = 10 } -- b, through a gate
local dead = memcache.pool { servers = { "127.0.0.1:%d" }, timeout = 0.5 }

memcache.route {
  ["rc:"] = route.replicate { a, b },
  ["rc1:"] = route.replicate { dead, a, b, wait = "one" },
  ["rcd:"] = route.replicate { a, dead },
  ["rcn:"] = route.replicate { route.namespace("x/", a), route.namespace("y/", b) },
  ["sc:"] = route.sliding_session { a, b, ttl = 100 },
  ["scg:"] = route.sliding_session { ga, b, ttl = 100, wait = "one" },
  ["wr:"] = route.warmup { new = a, old = gb, ttl = 50 },
  default = a,
}
]], a.addr, b.addr, ga.addr, gb.addr, dead_port))
    -- two workers sharing one near store; "wid:" tells which worker a
    -- connection is on (each worker has its own Lua state, so its own table)
    gw2 = H.start_gateway(string.format([[
gateway.settings { threads = 2 }
local route = require "gateway.route"
local gn = memcache.pool { servers = { "%s" }, timeout = 10 } -- m, through a gate
local this_worker = {}
memcache.route {
  ["ncr:"] = route.near_cache { gn, size = "1MB", ttl = 30 },
  ["wid:"] = function(req) return memcache.hit(tostring(this_worker)) end,
}
]], gn.addr))
    g = H.connect(gw.port, F.RAW)
  end)

  lazy_teardown(function()
    if g then g:close() end
    for _, x in ipairs({ gw, gw2, ga, gb, gn, a, b, m }) do if x then x.stop() end end
  end)

  after_each(function()
    if gw then assert.is_true(gw.alive(), "the gateway died:\n" .. gw.output()) end
    if gw2 then assert.is_true(gw2.alive(), "the gateway died:\n" .. gw2.output()) end
  end)

  describe("cas on route.replicate", function()
    it("the first target decides a cas; STORED copies the value to the others", function()
      bump(b, 5)
      assert.are.equal("STORED\r\n", g:call(set_cmd("rc:k", "v0", 1)))
      local ca, cb = cas_on(a, "rc:k"), cas_on(b, "rc:k")
      assert.is_truthy(ca and cb and ca ~= cb, "cas on a " .. tostring(ca) .. ", on b " .. tostring(cb))
      -- gets answers the deciding target's cas
      local rep = g:call("gets rc:k\r\n")
      assert.are.equal(ca, rep:match("^VALUE rc:k 1 2 (%d+)\r\nv0\r\nEND\r\n$"), show(rep))
      -- the cas with it: STORED, and every copy holds the new value, flags, exptime
      assert.are.equal("STORED\r\n", g:call(cas_cmd("rc:k", "v1", ca, 7, 100)))
      assert.are.equal(value_reply("rc:k", "v1", 7), F.get(a, "rc:k"))
      assert.are.equal(value_reply("rc:k", "v1", 7), F.get(b, "rc:k"))
      local ttl = F.ttl(b, "rc:k")
      assert.is_truthy(ttl and ttl > 90 and ttl <= 100, "ttl of the copy " .. tostring(ttl))
      -- the same token again: EXISTS, and nothing is written anywhere
      assert.are.equal("EXISTS\r\n", g:call(cas_cmd("rc:k", "v2", ca)))
      assert.are.equal(value_reply("rc:k", "v1", 7), F.get(a, "rc:k"))
      assert.are.equal(value_reply("rc:k", "v1", 7), F.get(b, "rc:k"))
      -- a key nobody has: NOT_FOUND
      assert.are.equal("NOT_FOUND\r\n", g:call(cas_cmd("rc:none", "x", "1")))
      assert.is_nil(F.value(b, "rc:none"))
      -- reads agree with the copies
      assert.are.equal(value_reply("rc:k", "v1", 7), g:call("get rc:k\r\n"))
    end)

    it("gets reads the deciding target only; another copy's cas is never offered", function()
      F.set(b, "rc:onlyb", "x") -- a lost it (restarted empty, say)
      -- a plain get still falls back to the copy
      assert.are.equal(value_reply("rc:onlyb", "x"), g:call("get rc:onlyb\r\n"))
      -- gets: a decides, and a has nothing
      assert.are.equal("END\r\n", g:call("gets rc:onlyb\r\n"))
      -- a cas with b's own token is decided by a: NOT_FOUND, and b is left alone
      local cb = cas_on(b, "rc:onlyb")
      assert.are.equal("NOT_FOUND\r\n", g:call(cas_cmd("rc:onlyb", "y", cb)))
      assert.are.equal("x", F.value(b, "rc:onlyb"))
      assert.are.equal(cb, cas_on(b, "rc:onlyb"))
      assert.is_nil(F.value(a, "rc:onlyb"))
    end)

    it("a failing first target passes the decision on; copies follow (wait = one, wait = all)", function()
      -- wait = "all" over { a, dead }: a decides; the copy to dead fails, so
      -- the answer is the error, as for a set (a holds the value)
      assert.matches("^SERVER_ERROR", g:call(set_cmd("rcd:k", "v0")))
      local ca = cas_on(a, "rcd:k")
      assert.matches("^VALUE rcd:k 0 2 " .. ca .. "\r\n", g:call("gets rcd:k\r\n"))
      assert.matches("^SERVER_ERROR", g:call(cas_cmd("rcd:k", "v1", ca)))
      assert.are.equal("v1", F.value(a, "rcd:k"))
      -- wait = "one" over { dead, a, b }: dead fails, a decides, b gets the copy
      bump(b, 3)
      assert.are.equal("STORED\r\n", g:call(set_cmd("rc1:k", "v0")))
      H.wait_until(function() return F.value(a, "rc1:k") == "v0" and F.value(b, "rc1:k") == "v0" end,
        5, "the set on a and b")
      ca = cas_on(a, "rc1:k")
      assert.are_not.equal(ca, cas_on(b, "rc1:k"))
      local rep = g:call("gets rc1:k\r\n")
      assert.are.equal(ca, rep:match("^VALUE rc1:k 0 2 (%d+)\r\n"), show(rep))
      assert.are.equal("STORED\r\n", g:call(cas_cmd("rc1:k", "v1", ca)))
      assert.are.equal("v1", F.value(a, "rc1:k"))
      H.wait_until(function() return F.value(b, "rc1:k") == "v1" end, 5, "the copy of the cas on b")
    end)

    it("the copy goes through route-function targets with their rewrites", function()
      bump(b, 3)
      assert.are.equal("STORED\r\n", g:call(set_cmd("rcn:k", "v0")))
      local ca = cas_on(a, "x/rcn:k")
      assert.are_not.equal(ca, cas_on(b, "y/rcn:k"))
      local rep = g:call("gets rcn:k\r\n")
      assert.are.equal(ca, rep:match("^VALUE rcn:k 0 2 (%d+)\r\n"), show(rep))
      assert.are.equal("STORED\r\n", g:call(cas_cmd("rcn:k", "v1", ca, 3)))
      assert.are.equal(value_reply("x/rcn:k", "v1", 3), F.get(a, "x/rcn:k"))
      assert.are.equal(value_reply("y/rcn:k", "v1", 3), F.get(b, "y/rcn:k"))
      assert.is_nil(F.value(b, "rcn:k"))
    end)
  end)

  describe("cas on route.sliding_session with two pools", function()
    it("the first pool decides; gets answers its cas; the copy keeps the session ttl", function()
      bump(b, 5)
      assert.are.equal("STORED\r\n", g:call(set_cmd("sc:s", "v0", 0, 0)))
      local ca, cb = cas_on(a, "sc:s"), cas_on(b, "sc:s")
      assert.is_truthy(ca and cb and ca ~= cb, "cas on a " .. tostring(ca) .. ", on b " .. tostring(cb))
      for _ = 1, 5 do -- whichever pool answers first, the cas is a's
        local rep = g:call("gets sc:s\r\n")
        assert.are.equal(ca, rep:match("^VALUE sc:s 0 2 (%d+)\r\nv0\r\nEND\r\n$"), show(rep))
      end
      assert.are.equal("STORED\r\n", g:call(cas_cmd("sc:s", "v1", ca, 2, 0)))
      assert.are.equal(value_reply("sc:s", "v1", 2), F.get(a, "sc:s"))
      assert.are.equal(value_reply("sc:s", "v1", 2), F.get(b, "sc:s"))
      local ttl = F.ttl(b, "sc:s")
      assert.is_truthy(ttl and ttl > 90 and ttl <= 100, "ttl of the copy " .. tostring(ttl))
      assert.are.equal("EXISTS\r\n", g:call(cas_cmd("sc:s", "v2", ca)))
      assert.are.equal("v1", F.value(a, "sc:s"))
      assert.are.equal("v1", F.value(b, "sc:s"))
    end)

    it("reads prefer the first pool, even when another one answers first", function()
      F.set(a, "scg:k", "froma")
      F.set(b, "scg:k", "fromb")
      ga.hold("scg:k")
      g:send("get scg:k\r\n")
      -- a has read it; its answer is held while b's is back
      H.wait_until(function() return ga.held("scg:k") end, 5, "a's gat held at the gate")
      ga.release("scg:k")
      assert.are.equal(value_reply("scg:k", "froma"), g:reply())
      local rep = g:call("gets scg:k\r\n")
      assert.are.equal(cas_on(a, "scg:k"), rep:match("^VALUE scg:k 0 5 (%d+)\r\nfroma\r\n"), show(rep))
    end)
  end)

  describe("route.warmup fills racing a delete", function()
    -- old (b, behind gate gb) has the key; a read misses on new (a) and
    -- reads old; the delete reaches old after that read: the fill must not
    -- leave the value in new.
    local function race(read_cmd, key)
      F.set(b, key, "old", 0, 3)
      gb.hold(key)
      g:send(read_cmd .. " " .. key .. "\r\n")
      H.wait_until(function() return gb.held(key) end, 5, "the read of old held at the gate")
      local d = H.connect(gw.port, F.RAW)
      d:send("delete " .. key .. "\r\n")
      H.wait_until(function() return gb.seen():find("delete " .. key, 1, true) end, 5,
        "the delete at old, behind the read")
      gb.release(key)
      local rep = g:reply()
      assert.are.equal("DELETED\r\n", d:reply())
      d:close()
      H.wait_until(function() return F.value(a, key) == nil end, 5,
        "the deleted value to be gone from new (it holds " .. tostring(F.value(a, key)) .. ")")
      assert.are.equal("END\r\n", g:call("get " .. key .. "\r\n"))
      assert.is_nil(F.value(a, key))
      assert.is_nil(F.value(b, key))
      return rep
    end

    it("old is read with one meta get (value and TTL), and the fill's check reads only the cas", function()
      F.set(b, "wr:m", "mv", 30)
      assert.are.equal(value_reply("wr:m", "mv"), g:call("get wr:m\r\n"))
      H.wait_until(function() return F.value(a, "wr:m") == "mv" end, 5, "the fill of new")
      -- the fill's check of old follows the fill: wait for it to pass the gate
      H.wait_until(function() return gb.seen():find(" mg wr:m c\n", 1, true) end, 5,
        "the fill's check of old")
      local seen = gb.seen()
      assert.is_truthy(seen:find(" mg wr:m v f c t\n", 1, true), seen)
      assert.is_truthy(seen:find(" mg wr:m c\n", 1, true), seen)
      assert.is_falsy(seen:find("get wr:m", 1, true), seen)
    end)

    it("a get racing a delete does not bring the value back", function()
      assert.are.equal(value_reply("wr:k", "old", 3), race("get", "wr:k"))
    end)

    it("a gets racing a delete does not bring the value back", function()
      local rep = race("gets", "wr:g")
      assert.is_truthy(rep == "END\r\n" or rep:match("^VALUE wr:g 3 3 %d+\r\nold\r\nEND\r\n$"), show(rep))
    end)
  end)

  describe("route.near_cache with two workers", function()
    it("a get that read the old value before an acknowledged set does not put it back", function()
      -- two client connections on different workers
      local c1 = H.connect(gw2.port, F.RAW)
      local w1 = c1:call("get wid:x\r\n")
      local c2
      for _ = 1, 64 do
        local c = H.connect(gw2.port, F.RAW)
        if c:call("get wid:x\r\n") ~= w1 then
          c2 = c
          break
        end
        c:close()
      end
      assert.is_truthy(c2, "no connection landed on the second worker")

      F.set(m, "ncr:k", "old")
      gn.hold("ncr:k")
      c1:send("get ncr:k\r\n")
      -- m has answered "old" to worker 1; the answer is held at the gate
      H.wait_until(function() return gn.held("ncr:k") end, 5, "the read held at the gate")
      -- worker 2 sets the key, and the set is acknowledged
      assert.are.equal("STORED\r\n", c2:call(set_cmd("ncr:k", "new")))
      assert.are.equal("new", F.value(m, "ncr:k"))
      -- now the old value reaches worker 1
      gn.release("ncr:k")
      assert.are.equal(value_reply("ncr:k", "old"), c1:reply())
      -- no worker may answer the old value any more
      assert.are.equal(value_reply("ncr:k", "new"), c2:call("get ncr:k\r\n"))
      assert.are.equal(value_reply("ncr:k", "new"), c1:call("get ncr:k\r\n"))
      -- and the near cache still works: the new value is kept near
      F.set(m, "ncr:k", "behind")
      assert.are.equal(value_reply("ncr:k", "new"), c1:call("get ncr:k\r\n"))
      assert.are.equal(value_reply("ncr:k", "new"), c2:call("get ncr:k\r\n"))
      c1:close()
      c2:close()
    end)
  end)
end)

describe("gateway.route config-time checks", function()
  local function check(body)
    local path = H.write_config("local route = require \"gateway.route\"\n"
      .. "local p = memcache.pool { servers = { \"127.0.0.1:1\" } }\n\n"
      .. "local r = " .. body .. "\nmemcache.route { default = p }\n")
    local out = H.run(string.format("%s --check %s 2>&1", H.quote(H.gateway_bin), H.quote(path)))
    os.remove(path)
    return out, path
  end

  local cases = {
    { 'route.failover(p)', "at least 2 targets" },
    { 'route.failover(p, "main")', "target #2 must be a pool or a route function, got string" },
    { 'route.failover{ p, p }', "takes its targets as arguments" },
    { 'route.failover(p, p, { on_mis = true })', "unknown option 'on_mis'" },
    { 'route.cap_ttl(p, 0)', "seconds must be a whole number" },
    { 'route.cap_ttl(nil, 10)', "the target must be a pool or a route function, got nil" },
    { 'route.replicate { p }', "at least 2 targets" },
    { 'route.replicate { p, p, wait = "some" }', "wait must be \"all\" or \"one\"" },
    { 'route.namespace("a b", p)', "prefix" },
    { 'route.namespace("t/", "p")', "the target must be a pool or a route function" },
    { 'route.sliding_session { function() end }', "#1 must be a pool" },
    { 'route.sliding_session { p, ttl = 1.5 }', "ttl must be a whole number" },
    { 'route.warmup { new = p }', "old must be a pool, got nil" },
    { 'route.warmup { new = p, old = p }', "same pool" },
    { 'route.shadow { target = p, shadow = p, fraction = 1.5 }', "fraction must be a number from 0 to 1" },
    { 'route.shadow { target = p }', "shadow must be a pool or a route function, got nil" },
    { 'route.near_cache { p, size = "lots" }', "route.near_cache: size: bad size 'lots'" },
    { 'route.near_cache { p, ttl = 0 }', "ttl must be a whole number" },
  }
  for _, case in ipairs(cases) do
    it("refuses " .. case[1] .. " at the config's line", function()
      local out, path = check(case[1])
      local msg = out:match("^" .. path:gsub("%p", "%%%0") .. ":4: ([^\n]+)\n$")
      assert.is_truthy(msg, "want " .. path .. ":4: ..., got:\n" .. out)
      assert.is_truthy(msg:find(case[2], 1, true), msg)
    end)
  end

  it("accepts every helper composed", function()
    local out, path = check([[route.failover(
  route.replicate { route.namespace("a/", p), p, wait = "one" },
  route.cap_ttl(p, 10), { on_miss = true })
local s = route.sliding_session { p, p, ttl = 60 }
local w = route.shadow { target = route.warmup { new = p, old = memcache.pool { servers = { "127.0.0.1:2" } } },
  shadow = p, fraction = 0.25 }
local n = route.near_cache { target = p, size = "2MB", ttl = 1 }]])
    assert.are.equal(path .. ": ok\n", out)
  end)
end)
