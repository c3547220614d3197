-- backend_spec.lua -- backends that refuse, stay silent or answer garbage:
-- the client gets SERVER_ERROR, never hangs, and its connection goes on.
local H = require "harness"
local socket = require "socket"

-- A server that accepts connections (the kernel completes the handshake)
-- but never answers: requests to it can only time out.
local function silent_server()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  return s, tonumber(port)
end

-- A server that answers every request with garbage, from a child process.
local function garbage_server()
  local port = H.free_port()
  local code = string.format([[
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", %d)); s.listen(16)
while True:
    c, _ = s.accept()
    while True:
        d = c.recv(4096)
        if not d: break
        c.sendall(b"HELLO THERE\r\n")
]], port)
  local srv = H.start_python_server(code, "garbage", port)
  return port, srv.stop
end

describe("backend failures", function()
  local mc, gw, silent, silent_port, garbage_port, stop_garbage, dead_port

  lazy_setup(function()
    mc = H.start_memcached()
    silent, silent_port = silent_server()
    garbage_port, stop_garbage = garbage_server()
    dead_port = H.free_port()
    gw = H.start_gateway(string.format([[
      local good = memcache.pool { servers = { "%s" } }
      local silent = memcache.pool { servers = { "127.0.0.1:%d" }, timeout = 0.3 }
      local garbage = memcache.pool { servers = { "127.0.0.1:%d" } }
      local dead = memcache.pool { servers = { "127.0.0.1:%d" } }
      memcache.route { ["silent:"] = silent, ["garbage:"] = garbage, ["dead:"] = dead,
                       default = good }
    ]], mc.addr, silent_port, garbage_port, dead_port))
  end)

  lazy_teardown(function()
    if gw then gw.stop() end
    if mc then mc.stop() end
    if silent then silent:close() end
    if stop_garbage then stop_garbage() end
  end)

  it("answers SERVER_ERROR when a server never replies, and the connection goes on", function()
    local c = H.connect(gw.port)
    local reply = c:call("get silent:a\r\n")
    assert.matches("^SERVER_ERROR backend 127.0.0.1:%d+ timed out\r\n$", reply)
    assert.equal("STORED\r\n", c:call("set ok 0 0 2\r\nhi\r\n"))
    assert.equal("VALUE ok 0 2\r\nhi\r\nEND\r\n", c:call("get ok\r\n"))
    c:close()
  end)

  it("answers SERVER_ERROR when a server refuses, and does not report a store", function()
    local c = H.connect(gw.port)
    assert.matches("^SERVER_ERROR backend 127.0.0.1:%d+ ", c:call("set dead:a 0 0 1\r\nx\r\n"))
    assert.matches("^SERVER_ERROR backend 127.0.0.1:%d+ ", c:call("get dead:a\r\n"))
    assert.equal("END\r\n", c:call("get ok-missing\r\n"))
    c:close()
  end)

  it("answers SERVER_ERROR when a server sends garbage, and reconnects for the next request", function()
    local c = H.connect(gw.port)
    assert.matches("^SERVER_ERROR backend 127.0.0.1:%d+ sent an invalid reply", c:call("get garbage:a\r\n"))
    assert.matches("^SERVER_ERROR", c:call("get garbage:b\r\n"))
    assert.equal("STORED\r\n", c:call("set ok2 0 0 1\r\ny\r\n"))
    c:close()
  end)

  it("returns the healthy servers' hits from a multi-get that spans a failing server", function()
    local c = H.connect(gw.port)
    assert.equal("STORED\r\n", c:call("set live1 3 0 2\r\nv1\r\n"))
    assert.equal("VALUE live1 3 2\r\nv1\r\nEND\r\n", c:call("get dead:x live1 dead:y\r\n"))
    c:close()
  end)

  it("counts backend errors in stats", function()
    local c = H.connect(gw.port)
    local stats = c:call("stats\r\n")
    local errors = tonumber(stats:match("STAT gw_backend_errors (%d+)"))
    local timeouts = tonumber(stats:match("STAT gw_backend_timeouts (%d+)"))
    assert.is_true(errors >= 3)
    assert.is_true(timeouts >= 1)
    c:close()
  end)
end)
