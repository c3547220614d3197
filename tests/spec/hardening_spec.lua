-- hardening_spec.lua -- the holes found by attacking the gateway and by
-- trying it as a new user would: each `describe` names the item it closes,
-- and each spec failed before its fix.
--
-- Everything runs against real memcached servers on free loopback ports;
-- a fake server is used only for faults a real one cannot produce.  Every
-- wait is for a condition with a deadline.
--
-- Run from the repo root:
--   busted --lpath='./lua/?.lua;./lua/?/init.lua;./tests/spec/?.lua' tests/spec/hardening_spec.lua
local H = require "harness"
local parse_stats = H.parse_stats
local F = require "fakes"
local socket = require "socket"

local show, set_cmd, value_reply = H.show, F.set_cmd, F.value_reply
local RAW = F.RAW

-- Things to undo after each test, last first.
local cleanups = {}
local function defer(fn) cleanups[#cleanups + 1] = fn end

local function memcached()
  local m = H.start_memcached()
  defer(m.stop)
  return m
end

-- A gateway for config text; it must still be alive when the test ends.
local function gateway(text, opts)
  local g = H.start_gateway(text, opts)
  defer(function()
    local died = not g.alive()
    g.stop()
    assert(not died, "the gateway died:\n" .. g.output())
  end)
  return g
end

local function conn(g)
  local c = H.connect(g.port, RAW)
  defer(function() c:close() end)
  return c
end

local function stats(port)
  return parse_stats(H.request(port, "stats\r\n", RAW))
end

after_each(function()
  for i = #cleanups, 1, -1 do pcall(cleanups[i]) end
  cleanups = {}
end)

describe("1. a NUL, CR or LF in a key never reaches a server", function()
  local function config(m)
    return string.format([[
gateway.settings { binary_keys = true }
local main = memcache.pool { servers = { "%s" } }
memcache.route {
  ["app/"] = main,
  ["admin/"] = function() return memcache.error("read-only") end,
  default = main,
}
]], m.addr)
  end

  it("refuses the key, swallows its data block, and the routed-away command never runs", function()
    local m = memcached()
    local g = gateway(config(m))
    local c = conn(g)
    -- the repro: the data block is itself a command for a read-only prefix
    c:send("set app/x\0 0 0 24\r\nset admin/flag 0 0 2\r\non\r\n")
    assert.are.equal("CLIENT_ERROR bad command line format\r\n", c:reply())
    for _, key in ipairs({ "get a\rb\r\n", "get ok k\0x\r\n" }) do
      assert.are.equal("CLIENT_ERROR bad command line format\r\n", c:call(key))
    end
    -- nothing more came back, and the connection is in step
    assert.are.equal("STORED\r\n", c:call(set_cmd("app/y", "v")))
    assert.are.equal(value_reply("app/y", "v"), c:call("get app/y\r\n"))
    -- the server never saw admin/flag, nor app/x
    assert.are.equal("END\r\n", F.get(m, "admin/flag"))
    assert.are.equal("END\r\n", F.get(m, "app/x"))
    -- other control bytes still pass, as binary_keys promises
    assert.are.equal("STORED\r\n", c:call(set_cmd("app/\1\127", "b")))
    assert.are.equal(value_reply("app/\1\127", "b"), c:call("get app/\1\127\r\n"))
  end)
end)

describe("13. routes that call backends follow binary_keys", function()
  it("pool:get(req.key) and the req.key setter take the keys the parser takes", function()
    local m = memcached()
    local g = gateway(string.format([[
gateway.settings { binary_keys = true }
local main = memcache.pool { servers = { "%s" } }
memcache.route {
  ["get/"] = function(req)
    local v, flags = main:get(req.key)
    if v == nil then return memcache.miss() end
    return memcache.hit("via-lua:" .. v, flags)
  end,
  ["ren/"] = function(req)
    req.key = "renamed/" .. req.key:sub(5)
    return main
  end,
  ["nul/"] = function(req)
    req.key = "x\0y"
    return main
  end,
  default = main,
}
]], m.addr))
    local c = conn(g)
    F.set(m, "get/\1k", "one")
    assert.are.equal(value_reply("get/\1k", "via-lua:one"), c:call("get get/\1k\r\n"))
    assert.are.equal("STORED\r\n", c:call(set_cmd("ren/\2k", "two")))
    assert.are.equal(value_reply("renamed/\2k", "two"), F.get(m, "renamed/\2k"))
    -- a key no server may see is still refused, by the route's own error
    assert.matches("^SERVER_ERROR lua error: .*invalid memcached key %(1%.%.250 bytes, no space, NUL, CR or LF%)",
      c:call("get nul/k\r\n"))
  end)
end)

describe("3. one client's long request never breaks the shared server connection", function()
  it("a 3,000-key gat goes out in lines memcached takes; other clients see no error", function()
    local m = memcached()
    local g = gateway(string.format([[
gateway.settings { threads = 1 }
memcache.route { default = memcache.pool { servers = { "%s" } } }
]], m.addr))
    local big, other = conn(g), conn(g)
    local keys = {}
    for i = 1, 3000 do keys[i] = string.format("gatkey:%06d", i) end
    for i = 1, 3000, 300 do F.set(m, keys[i], "v" .. i) end
    -- the gat and other clients' requests share the gateway's one
    -- connection to the server, interleaved
    big:send("gat 100 " .. table.concat(keys, " ") .. "\r\n")
    local pipelined = {}
    for i = 1, 50 do pipelined[#pipelined + 1] = set_cmd("other:" .. i, "x" .. i) .. "get other:" .. i .. "\r\n" end
    local replies = other:calls(table.concat(pipelined), 100, socket.gettime() + 10)
    for i = 1, 50 do
      assert.are.equal("STORED\r\n", replies[2 * i - 1])
      assert.are.equal(value_reply("other:" .. i, "x" .. i), replies[2 * i])
    end
    local rep = big:reply(socket.gettime() + 10)
    local hits = 0
    for _ in rep:gmatch("VALUE gatkey:") do hits = hits + 1 end
    assert.are.equal(10, hits, show(rep:sub(1, 300)))
    assert.truthy(rep:find("END\r\n$"))
    local s = stats(g.port)
    assert.are.equal("0", s.gw_backend_errors)
    assert.are.equal("0", s.gw_backend_marked_down)
  end)
end)

-- A fake server with memcached's text commands for get, set, append and
-- incr over one table, that on every connection applies the second request
-- and then closes the connection without replying: a server that dies
-- after applying.  What it holds is read back through its "dump <key>".
local function apply_then_close_server()
  local port = H.free_port()
  local code = string.format([==[
import socket, threading
data = {}
lock = threading.Lock()

def handle(line, rest):
    parts = line.split()
    cmd = parts[0]
    with lock:
        if cmd in (b"set", b"append"):
            n = int(parts[4])
            if len(rest) < n + 2:
                return None, rest
            v, rest = rest[:n], rest[n + 2:]
            data[parts[1]] = (data.get(parts[1], b"") if cmd == b"append" else b"") + v
            return b"STORED\r\n", rest
        if cmd == b"incr":
            v = int(data.get(parts[1], b"0")) + int(parts[2])
            data[parts[1]] = str(v).encode()
            return data[parts[1]] + b"\r\n", rest
        if cmd in (b"get", b"gets"):
            out = b""
            for k in parts[1:]:
                if k in data:
                    out += b"VALUE " + k + b" 0 %%d\r\n" %% len(data[k]) + data[k] + b"\r\n"
            return out + b"END\r\n", rest
        if cmd == b"version":
            return b"VERSION 1.6.18\r\n", rest
        return b"ERROR\r\n", rest

def serve(c):
    buf, served = b"", 0
    while True:
        d = c.recv(65536)
        if not d:
            return
        buf += d
        while b"\r\n" in buf:
            line, rest = buf.split(b"\r\n", 1)
            out, rest2 = handle(line, rest)
            if out is None:
                break
            buf = rest2
            served += 1
            if served == 2:
                c.close()
                return
            c.sendall(out)

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", %d))
s.listen(16)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()

]==], port)
  local srv = H.start_python_server(code, "apply-close", port)
  defer(srv.stop)
  return srv
end

describe("7. only requests safe to repeat are sent again", function()
  it("an incr or append the server applied before closing is not applied twice; a get is resent", function()
    local srv = apply_then_close_server()
    local g = gateway(string.format([[
gateway.settings { threads = 1 }
memcache.route { default = memcache.pool { servers = { "%s" }, failure_limit = 100 } }
]], srv.addr))
    local c = conn(g)
    assert.are.equal("STORED\r\n", c:call(set_cmd("n", "0")))       -- conn 1, request 1
    assert.matches("^SERVER_ERROR backend 127%.0%.0%.1:%d+ closed the connection\r\n$",
      c:call("incr n 1\r\n"))                                        -- conn 1, request 2: applied, closed
    assert.are.equal(value_reply("n", "1"), c:call("get n\r\n"))     -- conn 2, request 1
    assert.are.equal(value_reply("n", "1"), c:call("get n\r\n"))     -- conn 2, request 2: closed, resent
    assert.matches("^SERVER_ERROR ", c:call("append n 0 0 1\r\nx\r\n")) -- conn 3, request 2
    assert.are.equal(value_reply("n", "1x"), c:call("get n\r\n"))    -- applied once, not twice
  end)
end)

describe("8. the timeout bounds a whole reply", function()
  it("a server that drips one byte every 0.3 s cannot hold a get past timeout = 0.5", function()
    local port = H.free_port()
    local srv = H.start_python_server(string.format([[
import socket, threading, time
def serve(c):
    buf = b""
    while b"\r\n" not in buf:
        d = c.recv(4096)
        if not d:
            return
        buf += d
    for b in b"VALUE k 0 5\r\nhello\r\nEND\r\n":
        try:
            c.sendall(bytes([b]))
        except OSError:
            return
        time.sleep(0.3)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", %d))
s.listen(16)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
]], port), "drip", port)
    defer(srv.stop)
    local g = gateway(string.format(
      'memcache.route { default = memcache.pool { servers = { "%s" }, timeout = 0.5 } }', srv.addr))
    local c = H.connect(g.port, { timeout = 15, whole_reply = true })
    defer(function() c:close() end)
    assert.matches("^SERVER_ERROR backend 127%.0%.0%.1:%d+ timed out\r\n$", c:call("get k\r\n"))
  end)
end)

describe("11. a multi-get is never cut short silently", function()
  it("a 20,000-key get through a route that waits returns every hit", function()
    local m, side = memcached(), memcached()
    local g = gateway(string.format([[
gateway.settings { threads = 1 }
local main = memcache.pool { servers = { "%s" } }
local side = memcache.pool { servers = { "%s" } }
memcache.route {
  default = function(req)
    side:get("marker")       -- a route that waits on a backend first
    return main
  end,
}
]], m.addr, side.addr))
    local keys, sets = {}, {}
    for i = 1, 20000 do
      keys[i] = "mg:" .. i
      sets[i] = set_cmd(keys[i], "v") -- noreply-free, checked below
    end
    local direct = H.connect(m.port, RAW)
    defer(function() direct:close() end)
    local stored = direct:calls(table.concat(sets), #sets, socket.gettime() + 20)
    for i = 1, #stored do assert.are.equal("STORED\r\n", stored[i]) end
    local rep = H.request(g.port, "get " .. table.concat(keys, " ") .. "\r\n",
      { timeout = 30, whole_reply = true })
    local hits = 0
    for _ in rep:gmatch("VALUE mg:") do hits = hits + 1 end
    assert.are.equal(20000, hits, show(rep:sub(1, 200)))
  end)

  it("a healthy server with a full queue fails the multi-get with an error, not misses", function()
    local slow = F.slow_server(2)
    defer(slow.stop)
    local g = gateway(string.format([[
gateway.settings { threads = 1 }
memcache.route { default = memcache.pool { servers = { "%s" }, max_queue = 2, timeout = 5 } }
]], slow.addr))
    local a = H.connect(g.port, { timeout = 10, whole_reply = true })
    defer(function() a:close() end)
    a:send("get a1\r\nget a2\r\n") -- the queue is full while the server thinks
    H.wait_until(function() return select(2, slow.seen():gsub("\n", "")) >= 2 end, 5,
      "both gets at the slow server")
    assert.matches("^SERVER_ERROR backend 127%.0%.0%.1:%d+ queue is full\r\n$",
      H.request(g.port, "get b1 b2 b3\r\n", RAW))
    assert.are.equal(value_reply("a1", "slow:a1"), a:reply())
  end)
end)

describe("12. a client that half-closes is answered", function()
  it("replies to everything sent before the EOF, then closes", function()
    local m = memcached()
    local g = gateway(string.format(
      'memcache.route { default = memcache.pool { servers = { "%s" } } }', m.addr))
    local c = conn(g)
    c:send(set_cmd("hc", "v") .. "get hc\r\nget hc nothere\r\n")
    c.sock:shutdown("send")
    local got = {}
    for i = 1, 3 do got[i] = c:reply() end
    assert.are.same({ "STORED\r\n", value_reply("hc", "v"), value_reply("hc", "v") }, got)
    assert.is_true(c:closed(5))
  end)
end)

describe("15. a second process cannot share the port", function()
  it("exits 1 with Address already in use, as memcached does", function()
    local g = gateway("memcache.route { default = memcache.internal() }")
    local path = H.write_config("memcache.route { default = memcache.internal() }")
    local out, ok, code = H.run(string.format("timeout 5 %s -l 127.0.0.1:%d %s 2>&1",
      H.quote(H.gateway_bin), g.port, H.quote(path)))
    assert.is_false(ok)
    assert.are.equal(1, code, out)
    assert.matches("listen 127%.0%.0%.1:%d+: bind: Address already in use", out)
    assert.are.equal("VERSION", H.request(g.port, "version\r\n", RAW):sub(1, 7))
  end)
end)

describe("16. out of file descriptors, accepting pauses instead of spinning", function()
  it("logs the episode once, and accepts again when descriptors free up", function()
    local port = H.free_port()
    local path = H.write_config("gateway.settings { threads = 1 }\nmemcache.route { default = memcache.internal() }")
    local log = string.format("%s/emfile-%d.log", H.tmpdir, port)
    local pid = tonumber(H.run(string.format("(ulimit -n 48; exec %s -l 127.0.0.1:%d %s) >%s 2>&1 & echo $!",
      H.quote(H.gateway_bin), port, H.quote(path), H.quote(log))):match("%d+"))
    defer(function() H.run("kill -9 " .. pid .. " 2>/dev/null") end)
    H.wait_until(function() return H.can_connect(port) end, 10, "the gateway")
    local first = H.connect(port, RAW)
    defer(function() first:close() end)
    local conns = {}
    for i = 1, 80 do
      local s = socket.tcp()
      s:settimeout(1)
      if s:connect("127.0.0.1", port) then conns[#conns + 1] = s else s:close() end
    end
    H.wait_until(function() return H.read_file(log):find("Too many open files", 1, true) end, 5,
      "the gateway to run out of descriptors")
    -- while it is out, the connection it has goes on being served
    for _ = 1, 50 do assert.are.equal("VERSION", first:call("version\r\n"):sub(1, 7)) end
    local _, n = H.read_file(log):gsub("Too many open files", "")
    assert.is_true(n <= 2, "logged " .. n .. " times")
    for _, s in ipairs(conns) do s:close() end
    H.wait_until(function()
      local ok, rep = pcall(H.request, port, "version\r\n", RAW)
      return ok and rep:sub(1, 7) == "VERSION"
    end, 10, "a new connection served")
    assert.is_true(H.alive(pid))
  end)
end)

-- `./gateway --check` on config text: its output and exit status.
local function check(text)
  local path = H.write_config(text)
  local out, ok, code = H.run(string.format("timeout 30 %s --check %s 2>&1",
    H.quote(H.gateway_bin), H.quote(path)))
  return out, code, path
end

describe("4. a finalizer cannot reach a freed pool", function()
  it("--check and a reload refuse a __gc, naming the line, and nothing crashes", function()
    local text = [[
local p = memcache.pool { servers = { "127.0.0.1:1" } }
KEEP = setmetatable({}, { __gc = function() print(p:name()) end })
memcache.route { default = p }
]]
    local out, code = check(text)
    assert.are.equal(1, code, out)
    assert.matches(":2: setmetatable: __gc metamethods are not allowed", out)
    local g = gateway("memcache.route { default = memcache.internal() }")
    local f = assert(io.open(g.config, "w"))
    f:write(text)
    f:close()
    H.run("kill -HUP " .. g.pid)
    H.wait_until(function() return stats(g.port).gw_reload_failures == "1" end, 10, "the reload refused")
    assert.are.equal("VERSION", H.request(g.port, "version\r\n", RAW):sub(1, 7))
  end)
end)

describe("5. a request's Lua is bounded in instructions, time, tasks and memory", function()
  local function bounded_gateway(m, routes)
    return gateway(string.format([[
gateway.settings { threads = 1 }
local main = memcache.pool { servers = { "%s" }, timeout = 5 }
memcache.route {
%s
  default = main,
}
]], m.addr, routes))
  end

  it("a backtracking pattern, a spawn bomb and nested waits end with an error; the worker serves on", function()
    local m = memcached()
    local g = bounded_gateway(m, [[
  ["pattern"] = function(req)
    string.rep("a", 3000):find(string.rep("a-", 12) .. "b")
    return main
  end,
  ["method"] = function(req)
    (("a"):rep(3000)):match(("a-"):rep(12) .. "b")
    return main
  end,
  ["bomb"] = function(req)
    local function b() memcache.spawn(b) memcache.spawn(b) end
    b()
    return memcache.miss()
  end,
  ["nest"] = function(req)
    -- 64 wide, 6 deep; a level reports the first failure below it
    local function level(d)
      if d == 0 then return true end
      local fs = {}
      for i = 1, 64 do fs[i] = function() return level(d - 1) end end
      local res, err = memcache.wait(fs)
      for i = 1, #fs do
        local r = res[i]
        if not (r and r[1]) then return false, (r and r[2]) or err end
      end
      return true
    end
    local ok, err = level(6)
    return memcache.error(tostring(err))
  end,
  ["gc"] = function(req)
    setmetatable({}, { __gc = function() while true do end end })
    return memcache.miss()
  end,
]])
    local c = conn(g)
    assert.matches("^SERVER_ERROR lua error: .*instruction budget exceeded", c:call("get pattern\r\n"))
    assert.matches("^SERVER_ERROR lua error: .*instruction budget exceeded", c:call("get method\r\n"))
    assert.matches("^SERVER_ERROR lua error: .*too many", c:call("get bomb\r\n"))
    assert.matches("^SERVER_ERROR .*too many tasks for one route call", c:call("get nest\r\n"))
    assert.matches("^SERVER_ERROR lua error: .*__gc metamethods are not allowed", c:call("get gc\r\n"))
    assert.are.equal("STORED\r\n", c:call(set_cmd("ok", "fine")))
    assert.are.equal(value_reply("ok", "fine"), c:call("get ok\r\n"))
    -- every task those started has ended
    H.wait_until(function() return stats(g.port).gw_lua_tasks == "0" end, 5, "no task left")
  end)

  it("a route that waits past route_timeout is answered SERVER_ERROR at the deadline", function()
    local slow = F.slow_server(5)
    defer(slow.stop)
    local g = gateway(string.format([[
gateway.settings { threads = 1, route_timeout = 0.5 }
local slow = memcache.pool { servers = { "%s" }, timeout = 10 }
memcache.route {
  ["w:"] = function(req) local v = slow:get(req.key) return memcache.hit(v or "none") end,
  ["spin:"] = function(req) while true do end end,
  default = memcache.internal(),
}
]], slow.addr))
    local c = H.connect(g.port, { timeout = 3, whole_reply = true })
    defer(function() c:close() end)
    -- the slow server answers after 5 s; the deadline answers first
    assert.are.equal("SERVER_ERROR route timed out\r\n", c:call("get w:k\r\n"))
    assert.matches("^SERVER_ERROR lua error: .*", c:call("get spin:k\r\n"))
    assert.are.equal("STORED\r\n", c:call(set_cmd("x", "y")))
  end)

  it("Lua memory is bounded: past lua_memory_limit an allocation fails the request, and the worker goes on", function()
    local g = gateway([[
gateway.settings { threads = 1, lua_memory_limit = "64MB" }
memcache.route {
  ["huge"] = function(req) local s = string.rep("x", 1 << 30) return memcache.hit(#s) end,
  ["grow"] = function(req)
    local t = req.conn
    t[#t + 1] = string.rep("y", 1 << 20) .. #t
    return memcache.hit(tostring(#t))
  end,
  default = memcache.internal(),
}
]])
    local c = conn(g)
    assert.matches("^SERVER_ERROR lua error: .*not enough memory", c:call("get huge\r\n"))
    assert.are.equal("STORED\r\n", c:call(set_cmd("after", "1")))
    -- one connection's table grows until the limit stops it ...
    local grower = H.connect(g.port, RAW)
    local failed
    for _ = 1, 200 do
      local rep = grower:call("get grow\r\n")
      if rep:match("^SERVER_ERROR") then failed = rep break end
    end
    assert.matches("not enough memory", failed or "no failure")
    -- ... and once it closes, its table is let go: the worker serves Lua again
    grower:close()
    H.wait_until(function()
      return H.request(g.port, "get grow\r\n", RAW) == value_reply("grow", "1")
    end, 10, "routes that allocate served again")
  end)

  it("SIGTERM works even when a worker is stuck in Lua with every limit off", function()
    local g = H.start_gateway([[
gateway.settings { threads = 1, instruction_limit = 0, route_timeout = 0, shutdown_timeout = 1 }
memcache.route { default = function() gateway.log("info", "hardening: stuck") while true do end end }
]])
    defer(g.kill)
    local c = H.connect(g.port, RAW)
    defer(function() c:close() end)
    c:send("get stuck\r\n")
    H.wait_until(function() return g.output():find("hardening: stuck", 1, true) end, 5, "the stuck route")
    H.run("kill -TERM " .. g.pid)
    H.wait_until(function() return not g.alive() end, 10, "the gateway to exit")
    assert.matches("did not stop within", g.output())
  end)
end)

describe("6. the config's top level never holds up serving", function()
  it("a slow top level delays only the reload; an endless one is refused", function()
    local g = gateway([[
gateway.settings { threads = 2 }
memcache.route { default = memcache.internal() }
]])
    local c = conn(g)
    assert.are.equal("STORED\r\n", c:call(set_cmd("k", "v")))
    local f = assert(io.open(g.config, "w"))
    f:write([[
gateway.settings { threads = 2 }
gateway.log("info", "hardening: slow top level")
local t0 = os.clock() while os.clock() - t0 < 2 do end
memcache.route { default = memcache.internal() }
]])
    f:close()
    H.run("kill -HUP " .. g.pid)
    H.wait_until(function() return g.output():find("hardening: slow top level", 1, true) end, 5,
      "the reload to start")
    -- served while the reload runs: generation 1 still
    for _ = 1, 10 do assert.are.equal(value_reply("k", "v"), c:call("get k\r\n")) end
    assert.are.equal("1", stats(g.port).gw_config_generation)
    H.wait_until(function() return stats(g.port).gw_config_generation == "2" end, 20, "the reload")
    -- an endless top level fails the reload after CONFIG_TIMEOUT; meanwhile all is served
    f = assert(io.open(g.config, "w"))
    f:write("while true do end\nmemcache.route { default = memcache.internal() }\n")
    f:close()
    H.run("kill -HUP " .. g.pid)
    for _ = 1, 10 do assert.are.equal(value_reply("k", "v"), c:call("get k\r\n")) end
    H.wait_until(function() return stats(g.port).gw_reload_failures == "1" end, 20, "the reload refused")
    assert.matches("took too long", stats(g.port).gw_last_reload_error)
  end)
end)

describe("14. a misspelled name is an error", function()
  it("reading an undefined global at config time fails --check with file:line", function()
    local out, code = check([[
local main = memcache.pool { servers = { "127.0.0.1:1" } }
local sessions = memcache.pool { servers = { "127.0.0.1:2" } }
memcache.route { ["sess:"] = sesions, default = main }
]])
    assert.are.equal(1, code, out)
    assert.matches(":3: undefined global 'sesions'", out)
  end)

  it("a route table without default passes with a warning", function()
    local out, code = check([[memcache.route { ["a:"] = memcache.internal() }]])
    assert.are.equal(0, code, out)
    assert.matches("has no default", out)
  end)
end)

describe("17. the smaller holes", function()
  it("rawset(_G, ...) at request time is refused; require at request time reads no file", function()
    local g = gateway([[
memcache.route {
  ["raw"] = function() rawset(_G, "leak", 1) return memcache.miss() end,
  ["req"] = function() require("no.such.module") return memcache.miss() end,
  default = memcache.internal(),
}
]])
    local c = conn(g)
    assert.matches("^SERVER_ERROR lua error: .*rawset on the globals at request time", c:call("get raw\r\n"))
    assert.matches("^SERVER_ERROR lua error: .*was not loaded at config time", c:call("get req\r\n"))
  end)

  it("a reload resizes an internal store, and gw_lua_memory stays counted", function()
    local g = gateway([[
local store = memcache.internal { size = "8MB" }
memcache.route { default = store }
]])
    local c = conn(g)
    local big = string.rep("z", 500000)
    for i = 1, 12 do assert.are.equal("STORED\r\n", c:call(set_cmd("big" .. i, big))) end
    local f = assert(io.open(g.config, "w"))
    f:write('local store = memcache.internal { size = "1MB" }\nmemcache.route { default = store }\n')
    f:close()
    H.run("kill -HUP " .. g.pid)
    H.wait_until(function() return stats(g.port).gw_config_generation == "2" end, 10, "the reload")
    local hits = 0
    for i = 1, 12 do
      if c:call("get big" .. i .. "\r\n"):match("^VALUE") then hits = hits + 1 end
    end
    assert.is_true(hits <= 2, hits .. " values of 500 KB still in a 1 MB store")
    assert.is_true(tonumber(stats(g.port).gw_lua_memory) > 0)
  end)

  it("clients see no directories in errors or stats", function()
    local dir = H.run("pwd"):gsub("%s+$", "")
    local path = dir .. "/tests/tmp/hardening-paths.lua"
    local f = assert(io.open(path, "w"))
    f:write('memcache.route { default = function() error("boom") end }\n')
    f:close()
    local port = H.free_port()
    local log = H.tmpdir .. "/hardening-paths.log"
    local pid = tonumber(H.run(string.format("(exec %s -l 127.0.0.1:%d %s) >%s 2>&1 & echo $!",
      H.quote(H.gateway_bin), port, H.quote(path), H.quote(log))):match("%d+"))
    defer(function() H.run("kill -9 " .. pid) end)
    H.wait_until(function() return H.can_connect(port) end, 10, "the gateway")
    local rep = H.request(port, "get k\r\n", RAW)
    assert.matches("^SERVER_ERROR lua error: hardening%-paths%.lua:1: boom", rep)
    assert.is_nil(rep:find(dir, 1, true))
    local s = parse_stats(H.request(port, "stats settings\r\n", RAW))
    assert.are.equal("hardening-paths.lua", s.config)
  end)

  it("--check refuses a port out of range and a second file", function()
    local out, code = check('gateway.listen "127.0.0.1:99999"\nmemcache.route { default = memcache.internal() }')
    assert.are.equal(1, code, out)
    assert.matches(":1: gateway.listen: address must be", out)
    local path = H.write_config("memcache.route { default = memcache.internal() }")
    local out2, _, code2 = H.run(string.format("%s --check %s %s 2>&1", H.quote(H.gateway_bin),
      H.quote(path), H.quote(path)))
    assert.are.equal(2, code2, out2)
    assert.matches("one config file at a time", out2)
  end)

  it("after a good reload, stats no longer shows the last failure", function()
    local g = gateway("memcache.route { default = memcache.internal() }")
    local f = assert(io.open(g.config, "w"))
    f:write("memcache.route { default = nope }\n")
    f:close()
    H.run("kill -HUP " .. g.pid)
    H.wait_until(function() return stats(g.port).gw_reload_failures == "1" end, 10, "the failure")
    assert.matches("undefined global 'nope'", stats(g.port).gw_last_reload_error)
    f = assert(io.open(g.config, "w"))
    f:write("memcache.route { default = memcache.internal() }\n")
    f:close()
    H.run("kill -HUP " .. g.pid)
    H.wait_until(function() return stats(g.port).gw_config_generation == "2" end, 10, "the reload")
    assert.is_nil(stats(g.port).gw_last_reload_error)
  end)

  it("a client that never reads pins a bounded number of bytes, not max_pending values", function()
    local m = memcached()
    F.set(m, "mb", string.rep("m", 1000 * 1000))
    local g = gateway(string.format([[
gateway.settings { threads = 1 }
memcache.route { default = memcache.pool { servers = { "%s" } } }
]], m.addr))
    local c = conn(g)
    c:send(string.rep("get mb\r\n", 300)) -- and never read
    -- Wait until the gateway has stopped sending: memcached has answered all
    -- it was sent, or (when its own output is blocked, so it leaves the
    -- rest unread) nothing has moved for half a second.
    local sent, last, since
    H.wait_for(function()
      local s = stats(g.port)
      local mc = parse_stats(H.request(m.port, "stats\r\n", RAW))
      sent = tonumber(s.gw_backend_requests)
      local now = sent .. "/" .. mc.get_hits
      if now ~= last then last, since = now, socket.gettime() end
      return sent > 0 and (tonumber(mc.get_hits) == sent or socket.gettime() - since > 0.5),
        "sent/answered " .. now
    end, 20, "the gateway to stop sending")
    -- max_client_memory (64 MB) over max_value_size (1 MB): about 64 at once
    assert.is_true(sent <= 70, sent .. " gets of 1 MB sent for a client that reads nothing")
  end)
end)

describe("14. a misspelled field is an error, not a nil to route on", function()
  it("req and res raise on a name they do not have; absent fields they have read nil", function()
    local m = memcached()
    local g = gateway(string.format([[
local main = memcache.pool { servers = { "%s" } }
memcache.route {
  ["typo/"] = function(req) if req.comand == "get" then return memcache.miss() end return main end,
  ["rtypo/"] = function(req) local r = main:forward(req) return memcache.hit(tostring(r.vlaue)) end,
  ["absent/"] = function(req)
    local r = main:forward(req)
    return memcache.hit(tostring(req.value) .. "," .. tostring(req.cas) .. "," .. tostring(r.value))
  end,
}
]], m.addr))
    local c = conn(g)
    assert.matches("^SERVER_ERROR lua error: .*req has no field 'comand'", c:call("get typo/k\r\n"))
    assert.matches("^SERVER_ERROR lua error: .*res has no field 'vlaue'", c:call("get rtypo/k\r\n"))
    -- the connection goes on; a get has no value or cas, a miss no value
    assert.are.equal(value_reply("absent/k", "nil,nil,nil"), c:call("get absent/k\r\n"))
  end)
end)
