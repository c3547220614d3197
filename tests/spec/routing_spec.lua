-- routing_spec.lua -- memcache.route: prefixes, route functions, the
-- request object, the sandbox, the embedded store, dead servers and
-- python-memcached placement (including its failover walk).
--
-- Where a key ends up is checked on the real memcached servers directly,
-- never only through the gateway.
--
-- Run from the repo root:
--   busted --lpath='./lua/?.lua;./lua/?/init.lua;./tests/spec/?.lua' tests/spec/routing_spec.lua
local H = require "harness"
local socket = require "socket"

local DEADLINE = 5

local show = H.show

-- H.connect(port, RAW): every reply must be complete within DEADLINE seconds.
local RAW = { timeout = DEADLINE, whole_reply = true }

local function direct_get(server, key)
  return H.request(server.port, "get " .. key .. "\r\n", RAW)
end

local function direct_set(server, key, value)
  assert.are.equal("STORED\r\n",
    H.request(server.port, string.format("set %s 0 0 %d\r\n%s\r\n", key, #value, value), RAW))
end

local function value_reply(key, value, flags)
  return string.format("VALUE %s %d %d\r\n%s\r\nEND\r\n", key, flags or 0, #value, value)
end

local function set_cmd(key, value, flags)
  return string.format("set %s %d 0 %d\r\n%s\r\n", key, flags or 0, #value, value)
end

describe("routing", function()
  local m1, m2, gw, g, dead_port

  lazy_setup(function()
    m1 = H.start_memcached()
    m2 = H.start_memcached()
    dead_port = H.free_port() -- nothing listens here
    gw = H.start_gateway(string.format([[
local a = memcache.pool { servers = { "%s" }, timeout = 0.5 }
local b = memcache.pool { servers = { "%s" }, timeout = 0.5 }
local dead = memcache.pool { servers = { "127.0.0.1:%d" }, timeout = 0.5 }
local mix = memcache.pool { servers = { "%s", "127.0.0.1:%d" }, timeout = 0.5 }
local near = memcache.internal { size = "8MB" }
memcache.route {
  ["a:"] = a,
  ["a:b:"] = b,
  ["t1:"] = function(req) req.key = "tenant1/" .. req.key:sub(4); return a end,
  ["boom:"] = function(req) error("kaboom") end,
  ["none:"] = function(req) end,
  ["str:"] = function(req) return "a" end,
  ["glob:"] = function(req) leaked = (rawget(_G, "leaked") or 0) + 1; return a end,
  ["sb:"] = function(req)
    req.key = table.concat({ "sb", tostring(os.execute), tostring(rawget(_G, "io")),
      tostring(rawget(_G, "debug")), tostring(rawget(_G, "load")), tostring(rawget(_G, "dofile")),
      tostring(os.exit), tostring(os.getenv) }, "/")
    return a
  end,
  ["f:"] = function(req)
    req.key = table.concat({ "f", req.command, tostring(req.flags), tostring(req.exptime),
      tostring(req.noreply), tostring(req.value), req.key:sub(3) }, "/")
    return a
  end,
  ["cmd:"] = function(req) if req.command == "set" then return a end return b end,
  ["fl:"] = function(req) if (req.flags or 0) >= 100 then return b end return a end,
  ["conn:"] = function(req)
    local c = req.conn
    c.n = (c.n or 0) + 1
    req.key = req.key .. "/" .. c.n
    return a
  end,
  ["near:"] = near,
  ["dead:"] = dead,
  ["mix:"] = mix,
  default = a,
}
]], m1.addr, m2.addr, dead_port, m1.addr, dead_port))
    g = H.connect(gw.port, RAW)
  end)

  lazy_teardown(function()
    if g then g:close() end
    if gw then gw.stop() end
    if m1 then m1.stop() end
    if m2 then m2.stop() end
  end)

  after_each(function()
    if gw then assert.is_true(gw.alive(), "the gateway died:\n" .. gw.output()) end
  end)

  local function healthy()
    local k = "healthy" .. math.random(1e9)
    assert.are.same({ "STORED\r\n", value_reply(k, "ok") },
      g:calls(set_cmd(k, "ok") .. "get " .. k .. "\r\n", 2))
  end

  describe("prefixes", function()
    it("the longest matching prefix wins", function()
      assert.are.same({ "STORED\r\n", "STORED\r\n", "STORED\r\n", "STORED\r\n" },
        g:calls(set_cmd("a:b:x", "1") .. set_cmd("a:x", "2") .. set_cmd("a:bx", "3")
          .. set_cmd("plain", "4"), 4))
      assert.are.equal(value_reply("a:b:x", "1"), direct_get(m2, "a:b:x"))
      assert.are.equal("END\r\n", direct_get(m1, "a:b:x"))
      assert.are.equal(value_reply("a:x", "2"), direct_get(m1, "a:x"))
      assert.are.equal("END\r\n", direct_get(m2, "a:x"))
      assert.are.equal(value_reply("a:bx", "3"), direct_get(m1, "a:bx"))
      assert.are.equal(value_reply("plain", "4"), direct_get(m1, "plain"))
      assert.are.equal("END\r\n", direct_get(m2, "plain"))
      -- and gets read from the same place
      assert.are.equal(value_reply("a:b:x", "1"), g:call("get a:b:x\r\n"))
    end)
  end)

  describe("route functions", function()
    it("a rewritten key is stored under the new name; the client sees its own key", function()
      assert.are.equal("STORED\r\n", g:call(set_cmd("t1:x", "hello", 3)))
      assert.are.equal(value_reply("tenant1/x", "hello", 3), direct_get(m1, "tenant1/x"))
      assert.are.equal("END\r\n", direct_get(m1, "t1:x"))
      assert.are.equal(value_reply("t1:x", "hello", 3), g:call("get t1:x\r\n"))
      local gets = g:call("gets t1:x\r\n")
      assert.is_truthy(gets:match("^VALUE t1:x 3 5 %d+\r\nhello\r\nEND\r\n$"), show(gets))
      -- other commands go to the rewritten key as well
      assert.are.equal("STORED\r\n", g:call(set_cmd("t1:n", "5")))
      assert.are.equal("8\r\n", g:call("incr t1:n 3\r\n"))
      assert.are.equal(value_reply("tenant1/n", "8"), direct_get(m1, "tenant1/n"))
      assert.are.equal("DELETED\r\n", g:call("delete t1:n\r\n"))
      assert.are.equal("END\r\n", direct_get(m1, "tenant1/n"))
    end)

    it("a multi-get mixing rewritten and plain keys answers with the client's keys, in order", function()
      direct_set(m1, "tenant1/m1", "one")
      direct_set(m1, "tenant1/m2", "two")
      direct_set(m1, "plainm", "three")
      direct_set(m2, "a:b:m", "four")
      direct_set(m1, "t1:m1", "wrong") -- the unrewritten name must not be read
      local rep = g:call("get t1:m1 plainm t1:missing a:b:m t1:m2 t1:m1\r\n")
      assert.are.equal(show("VALUE t1:m1 0 3\r\none\r\nVALUE plainm 0 5\r\nthree\r\n"
        .. "VALUE a:b:m 0 4\r\nfour\r\nVALUE t1:m2 0 3\r\ntwo\r\nVALUE t1:m1 0 3\r\none\r\nEND\r\n"),
        show(rep))
    end)

    it("os.execute, io, debug, load, dofile, os.exit, os.getenv are nil in route code", function()
      assert.are.equal("STORED\r\n", g:call(set_cmd("sb:x", "v")))
      local want = "sb/nil/nil/nil/nil/nil/nil/nil"
      assert.are.equal(value_reply(want, "v"), direct_get(m1, want))
    end)

    it("req.command, key, value, flags, exptime and noreply are visible", function()
      -- a storage command
      g:send("set f:x 7 300 3 noreply\r\nabc\r\n")
      assert.are.equal("STORED\r\n", g:call("set f:y 4294967295 0 2\r\nxy\r\n"))
      assert.are.equal(value_reply("f/set/7/300/true/abc/x", "abc", 7),
        direct_get(m1, "f/set/7/300/true/abc/x"))
      assert.are.equal(value_reply("f/set/4294967295/0/false/xy/y", "xy", 4294967295),
        direct_get(m1, "f/set/4294967295/0/false/xy/y"))
      -- a retrieval, a touch, a delete
      direct_set(m1, "f/get/nil/nil/false/nil/g", "got")
      assert.are.equal(value_reply("f:g", "got"), g:call("get f:g\r\n"))
      direct_set(m1, "f/touch/nil/50/false/nil/t", "t")
      assert.are.equal("TOUCHED\r\n", g:call("touch f:t 50\r\n"))
      direct_set(m1, "f/delete/nil/nil/false/nil/d", "d")
      assert.are.equal("DELETED\r\n", g:call("delete f:d\r\n"))
      assert.are.equal("END\r\n", direct_get(m1, "f/delete/nil/nil/false/nil/d"))
    end)

    it("a route can choose the pool by req.command", function()
      assert.are.equal("STORED\r\n", g:call(set_cmd("cmd:x", "seta")))
      assert.are.equal(value_reply("cmd:x", "seta"), direct_get(m1, "cmd:x"))
      assert.are.equal("END\r\n", direct_get(m2, "cmd:x"))
      assert.are.equal("END\r\n", g:call("get cmd:x\r\n")) -- gets go to b
      direct_set(m2, "cmd:x", "fromb")
      assert.are.equal(value_reply("cmd:x", "fromb"), g:call("get cmd:x\r\n"))
    end)

    it("a route can choose the pool by req.flags", function()
      assert.are.same({ "STORED\r\n", "STORED\r\n" },
        g:calls(set_cmd("fl:hi", "h", 100) .. set_cmd("fl:lo", "l", 99), 2))
      assert.are.equal(value_reply("fl:hi", "h", 100), direct_get(m2, "fl:hi"))
      assert.are.equal("END\r\n", direct_get(m1, "fl:hi"))
      assert.are.equal(value_reply("fl:lo", "l", 99), direct_get(m1, "fl:lo"))
      assert.are.equal("END\r\n", direct_get(m2, "fl:lo"))
    end)

    it("req.conn persists across requests on a connection and is fresh on a new one", function()
      local c1 = H.connect(gw.port, RAW)
      assert.are.same({ "STORED\r\n", "STORED\r\n", "STORED\r\n" },
        c1:calls(set_cmd("conn:k", "a") .. set_cmd("conn:k", "b") .. set_cmd("conn:k", "c"), 3))
      local c2 = H.connect(gw.port, RAW)
      assert.are.equal("STORED\r\n", c2:call(set_cmd("conn:k", "d")))
      -- c1 keeps counting after c2 came and went
      c2:close()
      assert.are.equal("STORED\r\n", c1:call(set_cmd("conn:k", "e")))
      c1:close()
      assert.are.equal(value_reply("conn:k/1", "d"), direct_get(m1, "conn:k/1"))
      assert.are.equal(value_reply("conn:k/2", "b"), direct_get(m1, "conn:k/2"))
      assert.are.equal(value_reply("conn:k/3", "c"), direct_get(m1, "conn:k/3"))
      assert.are.equal(value_reply("conn:k/4", "e"), direct_get(m1, "conn:k/4"))
      assert.are.equal("END\r\n", direct_get(m1, "conn:k/5"))
    end)

    it("a route that raises -> SERVER_ERROR lua error for that request only, traceback logged", function()
      local reps = g:calls(set_cmd("ok1", "v") .. "get boom:x\r\n" .. set_cmd("boom:y", "zz")
        .. "get ok1\r\n" .. "delete boom:z\r\n" .. "incr boom:n 1\r\n" .. "get ok1\r\n", 7)
      assert.are.equal("STORED\r\n", reps[1])
      for _, i in ipairs({ 2, 3, 5, 6 }) do
        assert.is_truthy(reps[i]:match("^SERVER_ERROR lua error: [^\r\n]*kaboom\r\n$"),
          "reply " .. i .. ": " .. show(reps[i]))
      end
      assert.are.equal(value_reply("ok1", "v"), reps[4])
      assert.are.equal(value_reply("ok1", "v"), reps[7])
      H.wait_until(function() return gw.output():match("stack traceback") end, 5,
        "a traceback in the gateway log")
      local log = gw.output()
      assert.is_truthy(log:match("kaboom"), log)
      assert.is_truthy(log:match("stack traceback"), log)
    end)

    it("after a route error, the next requests through route functions still work", function()
      direct_set(m1, "tenant1/after", "fine")
      for _, failing in ipairs({ "get boom:1\r\n", set_cmd("glob:1", "v"), "get boom:2\r\n" }) do
        local reps = g:calls(failing .. "get t1:after\r\n" .. "get t1:after\r\n", 3)
        assert.is_truthy(reps[1]:match("^SERVER_ERROR lua error: "), show(reps[1]))
        assert.are.equal(show(value_reply("t1:after", "fine")), show(reps[2]),
          "the first route-function request after " .. show(failing))
        assert.are.equal(show(value_reply("t1:after", "fine")), show(reps[3]))
      end
    end)

    it("a route that returns no pool -> SERVER_ERROR", function()
      assert.is_truthy(g:call("get none:x\r\n"):match("^SERVER_ERROR [^\r\n]+\r\n$"))
      assert.is_truthy(g:call(set_cmd("none:x", "v")):match("^SERVER_ERROR [^\r\n]+\r\n$"))
      assert.is_truthy(g:call("get str:x\r\n"):match("^SERVER_ERROR [^\r\n]+\r\n$"))
      healthy()
    end)

    it("a route that assigns a global at request time -> SERVER_ERROR (sandbox)", function()
      local rep = g:call(set_cmd("glob:x", "v"))
      assert.is_truthy(rep:match("^SERVER_ERROR lua error: [^\r\n]*global[^\r\n]*\r\n$"), show(rep))
      assert.are.equal("END\r\n", direct_get(m1, "glob:x"))
      assert.is_truthy(g:call("get glob:x\r\n"):match("^SERVER_ERROR "))
      healthy()
    end)
  end)

  describe("memcache.internal", function()
    it("serves set/get/delete/incr/touch/gets+cas on its prefix, without the servers", function()
      local reps = g:calls(set_cmd("near:a", "hello", 42) .. "get near:a\r\n" .. "delete near:a\r\n"
        .. "get near:a\r\n" .. "delete near:a\r\n" .. set_cmd("near:n", "10") .. "incr near:n 5\r\n"
        .. "decr near:n 20\r\n" .. "incr near:nokey 1\r\n" .. "touch near:n 100\r\n"
        .. "touch near:nokey 100\r\n" .. "add near:n 0 0 1\r\nx\r\n" .. "append near:n 0 0 2\r\n99\r\n"
        .. "get near:n\r\n", 14)
      assert.are.same({ "STORED\r\n", value_reply("near:a", "hello", 42), "DELETED\r\n", "END\r\n",
        "NOT_FOUND\r\n", "STORED\r\n", "15\r\n", "0\r\n", "NOT_FOUND\r\n", "TOUCHED\r\n",
        "NOT_FOUND\r\n", "NOT_STORED\r\n", "STORED\r\n" }, { table.unpack(reps, 1, 13) })
      assert.is_truthy(reps[14]:match("^VALUE near:n 0 %d+\r\n0 ?99\r\nEND\r\n$"), show(reps[14]))

      assert.are.equal("STORED\r\n", g:call(set_cmd("near:c", "v1")))
      local cas = g:call("gets near:c\r\n"):match("^VALUE near:c 0 2 (%d+)\r\nv1\r\nEND\r\n$")
      assert.is_truthy(cas)
      assert.are.equal("STORED\r\n", g:call("cas near:c 0 0 2 " .. cas .. "\r\nv2\r\n"))
      assert.are.equal("EXISTS\r\n", g:call("cas near:c 0 0 2 " .. cas .. "\r\nv3\r\n"))
      assert.are.equal("NOT_FOUND\r\n", g:call("cas near:nokey 0 0 2 1\r\nv3\r\n"))
      assert.are.equal(value_reply("near:c", "v2"), g:call("get near:c\r\n"))
      local cas2 = g:call("gets near:c\r\n"):match("^VALUE near:c 0 2 (%d+)\r\n")
      assert.are_not.equal(cas, cas2)
      -- a multi-get mixing the embedded store and a server
      direct_set(m1, "srv", "s")
      assert.are.equal("VALUE near:c 0 2\r\nv2\r\nVALUE srv 0 1\r\ns\r\nEND\r\n",
        g:call("get near:c nope srv\r\n"))
      -- nothing went to the servers
      for _, k in ipairs({ "near:a", "near:n", "near:c" }) do
        assert.are.equal("END\r\n", direct_get(m1, k))
        assert.are.equal("END\r\n", direct_get(m2, k))
      end
    end)
  end)

  describe("dead servers", function()
    it("a refused connection -> SERVER_ERROR; the next request to a healthy pool works", function()
      local reps = g:calls("get dead:x\r\n" .. set_cmd("dead:y", "v") .. set_cmd("a:alive", "v")
        .. "get a:alive\r\n", 4)
      assert.is_truthy(reps[1]:match("^SERVER_ERROR [^\r\n]+\r\n$"), show(reps[1]))
      assert.is_truthy(reps[2]:match("^SERVER_ERROR [^\r\n]+\r\n$"), show(reps[2]))
      assert.are.equal("STORED\r\n", reps[3])
      assert.are.equal(value_reply("a:alive", "v"), reps[4])
      -- and later requests to the dead pool still get an answer
      assert.is_truthy(g:call("delete dead:x\r\n"):match("^SERVER_ERROR [^\r\n]+\r\n$"))
      healthy()
    end)

    it("a multi-get over a dead and a live server returns the live hits", function()
      local sets, keys = {}, {}
      for i = 1, 24 do
        keys[i] = "mix:k" .. i
        sets[i] = set_cmd(keys[i], "v" .. i)
      end
      local reps = g:calls(table.concat(sets), #keys)
      local want, live = {}, 0
      for i, rep in ipairs(reps) do
        if rep == "STORED\r\n" then
          live = live + 1
          want[#want + 1] = string.format("VALUE %s 0 %d\r\nv%d\r\n", keys[i], #("v" .. i), i)
          assert.are.equal(value_reply(keys[i], "v" .. i), direct_get(m1, keys[i]))
        else
          assert.is_truthy(rep:match("^SERVER_ERROR [^\r\n]+\r\n$"), show(rep))
        end
      end
      assert.is_true(live > 0 and live < #keys, live .. " of " .. #keys .. " keys on the live server")
      want[#want + 1] = "END\r\n"
      assert.are.equal(show(table.concat(want)), show(g:call("get " .. table.concat(keys, " ") .. "\r\n")))
    end)
  end)
end)

-- Its own gateway: a runaway route that is not stopped would hang the
-- worker and every test after it.
describe("a runaway route", function()
  local m, gw

  lazy_setup(function()
    m = H.start_memcached()
    gw = H.start_gateway(string.format([[
local a = memcache.pool { servers = { "%s" }, timeout = 0.5 }
memcache.route {
  ["spin:"] = function(req) while true do end end,
  ["boom:"] = function(req) error("kaboom") end,
  default = a,
}
]], m.addr))
  end)

  lazy_teardown(function()
    if gw then gw.kill() end
    if m then m.stop() end
  end)

  it("-> SERVER_ERROR, every time, and the gateway keeps serving", function()
    local g = H.connect(gw.port, RAW)
    local reps = g:calls("get spin:x\r\n" .. set_cmd("after-spin", "v") .. "get after-spin\r\n", 3)
    assert.is_truthy(reps[1]:match("^SERVER_ERROR [^\r\n]+\r\n$"), show(reps[1]))
    assert.are.equal("STORED\r\n", reps[2])
    assert.are.equal(value_reply("after-spin", "v"), reps[3])
    -- a second runaway request (on the same connection, then on another)
    -- must be stopped too
    local ok, rep = pcall(g.call, g, "get spin:again\r\n")
    assert.is_true(ok, "no reply to a second runaway request (is the worker stuck?): " .. tostring(rep))
    assert.is_truthy(rep:match("^SERVER_ERROR [^\r\n]+\r\n$"), show(rep))
    local c2 = H.connect(gw.port, RAW)
    assert.is_truthy(c2:call(set_cmd("spin:y", "v")):match("^SERVER_ERROR [^\r\n]+\r\n$"))
    assert.is_truthy(c2:call("get boom:z\r\n"):match("^SERVER_ERROR lua error: [^\r\n]*kaboom\r\n$"))
    assert.is_truthy(c2:call("get spin:z\r\n"):match("^SERVER_ERROR [^\r\n]+\r\n$"))
    c2:close()
    assert.are.same({ "STORED\r\n", value_reply("after-spin2", "w") },
      g:calls(set_cmd("after-spin2", "w") .. "get after-spin2\r\n", 2))
    g:close()
    assert.is_true(gw.alive(), gw.output())
  end)
end)

describe("python-memcached placement", function()
  local A, B, C, gw, gwr
  local function spec(s) return string.format("%s=%d", s.addr, s == B and 2 or 1) end

  lazy_setup(function()
    A = H.start_memcached()
    B = H.start_memcached()
    C = H.start_memcached()
    local pool = string.format([[
gateway.settings { threads = 2 }
local main = memcache.pool {
  servers = { "%s", { "%s", weight = 2 }, "%s" },
  hash = "python-memcached",
  timeout = 0.5,
  %%s
}
memcache.route { default = main }
]], A.addr, B.addr, C.addr)
    gw = H.start_gateway(pool:format(""))
    gwr = H.start_gateway(pool:format('failover = "rehash", retry_timeout = 30,'))
  end)

  lazy_teardown(function()
    for _, p in ipairs({ gw, gwr, A, B, C }) do p.stop() end
  end)

  after_each(function()
    assert.is_true(gw.alive(), "the gateway died:\n" .. gw.output())
    assert.is_true(gwr.alive(), "the rehash gateway died:\n" .. gwr.output())
  end)

  -- python-memcached straight at the servers [(A,1),(B,2),(C,1)].
  local PY = [[
import sys, memcache
servers = []
for s in sys.argv[2].split(","):
    addr, w = s.split("=")
    servers.append((addr, int(w)))
mc = memcache.Client(servers, socket_timeout=2)
keys = sys.argv[3].split(",")
if sys.argv[1] == "write":
    for k in keys:
        if not mc.set(k, "py-" + k):
            print("not stored: " + k)
            sys.exit(1)
    print("wrote %d" % len(keys))
else:
    for k in keys:
        v = mc.get(k)
        if isinstance(v, bytes):
            v = v.decode()
        print("%s=%s" % (k, v))
]]

  local function python(mode, keys)
    local servers = table.concat({ spec(A), spec(B), spec(C) }, ",")
    local out, ok = H.run(string.format("%s -c %s %s %s %s 2>&1", H.quote(H.python), H.quote(PY),
      mode, servers, H.quote(table.concat(keys, ","))))
    assert.is_true(ok, out)
    return out
  end

  it("the gateway finds every key python-memcached wrote, and python finds the gateway's", function()
    local keys = {}
    for i = 1, 60 do keys[i] = "pyk" .. i end
    python("write", keys)
    -- spread over all three servers
    local on = {}
    for _, s in ipairs({ A, B, C }) do
      on[s] = 0
      for _, k in ipairs(keys) do
        if direct_get(s, k):match("^VALUE") then on[s] = on[s] + 1 end
      end
    end
    assert.is_true(on[A] > 0 and on[B] > on[A] and on[C] > 0,
      string.format("A %d, B %d, C %d", on[A], on[B], on[C]))
    local c = H.connect(gw.port, RAW)
    local rep = c:call("get " .. table.concat(keys, " ") .. "\r\n")
    local want = {}
    for _, k in ipairs(keys) do
      want[#want + 1] = "VALUE " .. k .. " %d+ " .. #("py-" .. k) .. "\r\npy%-" .. k .. "\r\n"
    end
    assert.is_truthy(rep:match("^" .. table.concat(want) .. "END\r\n$"), show(rep))

    local gkeys, sets = {}, {}
    for i = 1, 60 do
      gkeys[i] = "gwk" .. i
      sets[i] = set_cmd(gkeys[i], "py-" .. gkeys[i])
    end
    local reps = c:calls(table.concat(sets), #gkeys)
    for i = 1, #gkeys do assert.are.equal("STORED\r\n", reps[i]) end
    c:close()
    local out = python("read", gkeys)
    for _, k in ipairs(gkeys) do
      assert.is_truthy(out:find(k .. "=py-" .. k .. "\n", 1, true), "python did not find " .. k .. ":\n" .. out)
    end
  end)

  it("failover = \"rehash\" follows python-memcached's walk when a server is down", function()
    -- both keys belong to B; with B down python-memcached walks k1 -> A and
    -- product_count -> C
    local c = H.connect(gwr.port, RAW)
    assert.are.same({ "STORED\r\n", "STORED\r\n" },
      c:calls(set_cmd("k1", "before") .. set_cmd("product_count", "before"), 2))
    assert.are.equal(value_reply("k1", "before"), direct_get(B, "k1"))
    assert.are.equal(value_reply("product_count", "before"), direct_get(B, "product_count"))
    B.stop()
    -- the gateway may have to fail a request on B to learn that it is down
    H.wait_until(function()
      return c:call(set_cmd("k1", "after")) == "STORED\r\n"
    end, 5, "a set of k1 through the rehash gateway to succeed with B down")
    assert.are.equal("STORED\r\n", c:call(set_cmd("product_count", "after")))
    c:close()
    assert.are.equal(value_reply("k1", "after"), direct_get(A, "k1"))
    assert.are.equal("END\r\n", direct_get(C, "k1"))
    assert.are.equal(value_reply("product_count", "after"), direct_get(C, "product_count"))
    assert.are.equal("END\r\n", direct_get(A, "product_count"))
    -- python-memcached, with B down, reads them from the same places
    local out = python("read", { "k1", "product_count" })
    assert.is_truthy(out:find("k1=after\n", 1, true), out)
    assert.is_truthy(out:find("product_count=after\n", 1, true), out)
  end)
end)
