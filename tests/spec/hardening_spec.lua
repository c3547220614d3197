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

-- The STAT lines of a stats reply, name -> value.
local function parse_stats(rep)
  local s = {}
  for k, v in rep:gmatch("STAT (%S+) ([^\r\n]*)\r\n") do s[k] = v end
  return s
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
