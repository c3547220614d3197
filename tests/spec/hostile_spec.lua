-- hostile_spec.lua -- hostile input from clients and from backends: each
-- gets the exact answer memcached would give (or the gateway's documented
-- one), the connection goes on (or is closed, where memcached closes), and
-- the gateway keeps serving everyone else.
--
-- Clients: a gateway with a plain pool in front of a real memcached; a
-- second memcached, talked to directly, is the reference where the answer
-- is "what memcached says".  Backends: fake servers (python child
-- processes) that misbehave on their first connection only and then proxy
-- to a real memcached, so that "the connection was reset and the next
-- request works" can be seen.
--
-- Not repeated here, already covered elsewhere:
--   protocol_spec.lua -- unknown commands, "get" / "gat" with no key, keys
--     of 251 bytes or with control bytes, bad numbers (incr, touch, gat,
--     flush_all, verbosity, "set k 0 0 -1", "set k 0 0 x"), wrong token
--     counts, data blocks longer or shorter than declared, the swallowed
--     data block of a refused storage line, noreply on every command,
--     values over 1 MiB, requests split at every byte.
--   backend_spec.lua -- a server that never answers (timeout), a refused
--     connect, a server that answers every request with a garbage line,
--     a multi-get spanning a failing server.
--
-- Run from the repo root:
--   busted --lpath='./lua/?.lua;./lua/?/init.lua;./tests/spec/?.lua' tests/spec/hostile_spec.lua
local H = require "harness"
local socket = require "socket"

local GW_VERSION = "VERSION 1.6.18-gateway-0.1.0\r\n"
local MC_VERSION = "VERSION 1.6.18\r\n"
local RAW = { timeout = 5, whole_reply = true }
local show = H.show

-- Everything a connection answers before the "VERSION ..." line that
-- answers a trailing "version"; the version line is checked.
local function until_version(conn, want_version)
  local deadline = socket.gettime() + 5
  local out = {}
  while true do
    local unit, l = conn:unit(deadline)
    if l:match("^VERSION ") then
      assert.are.equal(want_version, l, "sentinel on port " .. conn.port)
      return table.concat(out)
    end
    out[#out + 1] = unit
  end
end

-- Send bytes (in pieces of chunk bytes, if given) then "version" on a new
-- connection; the transcript before the sentinel.  The connection is
-- returned too, still open.
local function transcript(port, bytes, want_version, chunk)
  local c = H.connect(port, RAW)
  c:send(bytes, chunk)
  c:send("version\r\n")
  return until_version(c, want_version), c
end

-- Send bytes, ignoring a peer that closes or resets meanwhile (it may stop
-- reading before everything is sent).
local function send_regardless(c, bytes)
  local i = 1
  while i <= #bytes do
    local last, err, partial = c.sock:send(bytes, i, math.min(#bytes, i + 65535))
    if not last then
      if err == "closed" then return false end
      if err ~= "timeout" then error(err) end
      last = partial
    end
    i = last + 1
  end
  return true
end

local function stat(port, name)
  local rep = H.request(port, "stats\r\n", RAW)
  return tonumber(rep:match("STAT " .. name .. " (%d+)\r\n"))
end

describe("hostile clients", function()
  local mc, ref, gw

  lazy_setup(function()
    mc = H.start_memcached()
    ref = H.start_memcached()
    gw = H.start_gateway(string.format([[
local main = memcache.pool { servers = { "%s" }, timeout = 0.5 }
memcache.route { default = main }
]], mc.addr))
  end)

  lazy_teardown(function()
    if gw then gw.stop() end
    if mc then mc.stop() end
    if ref then ref.stop() end
  end)

  after_each(function()
    if gw then assert.is_true(gw.alive(), "the gateway died:\n" .. gw.output()) end
  end)

  -- The gateway and the reference memcached answer bytes the same way.
  local function like_memcached(bytes, want)
    local got, gc = transcript(gw.port, bytes, GW_VERSION)
    local exp, rc = transcript(ref.port, bytes, MC_VERSION)
    gc:close()
    rc:close()
    assert.are.equal(show(exp), show(got), "sent: " .. show(bytes))
    if want then assert.are.equal(show(want), show(got), "sent: " .. show(bytes)) end
    return got
  end

  -- A new connection still gets served.
  local function serves_new_connections(key)
    key = key or "alive"
    local c = H.connect(gw.port, RAW)
    assert.are.equal("STORED\r\n", c:call("set " .. key .. " 0 0 2\r\nok\r\n"))
    assert.are.equal("VALUE " .. key .. " 0 2\r\nok\r\nEND\r\n", c:call("get " .. key .. "\r\n"))
    c:close()
  end

  local function direct_get(key)
    return H.request(mc.port, "get " .. key .. "\r\n", RAW)
  end

  describe("random bytes", function()
    -- 16 KB from a fixed seed.  The first byte is a letter (memcached
    -- would take 0x80 there for the binary protocol) and there is a "\n"
    -- at least every 400 bytes (memcached closes a connection whose line
    -- passes 2 KB); the rest is any byte.
    local function noise()
      math.randomseed(20240611)
      local b = { "x" }
      for i = 2, 16 * 1024 do
        b[i] = i % 400 == 0 and "\n" or string.char(math.random(0, 255))
      end
      return table.concat(b) .. "\r\n"
    end

    it("get ERROR for every line, like memcached, and the connection goes on", function()
      local bytes = noise()
      local _, lines = bytes:gsub("\n", "")
      assert.is_true(lines >= 41)
      like_memcached(bytes, ("ERROR\r\n"):rep(lines))
      -- the same bytes in 7-byte writes
      local got, c = transcript(gw.port, bytes, GW_VERSION, 7)
      assert.are.equal(("ERROR\r\n"):rep(lines), got)
      -- the connection goes on
      assert.are.equal("STORED\r\n", c:call("set r 0 0 1\r\n1\r\n"))
      assert.are.equal("VALUE r 0 1\r\n1\r\nEND\r\n", c:call("get r\r\n"))
      c:close()
      serves_new_connections()
    end)
  end)

  describe("binary and text, one per connection (its first byte decides, as in memcached)", function()
    -- A binary request header: magic 0x80, opcode, key length, extras
    -- length 0, data type 0, vbucket 0, body length, opaque, cas.
    local function binary(opcode, key)
      return string.char(0x80, opcode, 0, #key, 0, 0, 0, 0, 0, 0, 0, #key)
        .. ("\0"):rep(12) .. key
    end

    it("a binary connection stays binary: text on it is a bad magic, and it closes", function()
      local c = H.connect(gw.port, RAW)
      c:send(binary(0x0b, "") .. binary(0x00, "nokey") .. "version\r\n")
      local deadline = socket.gettime() + 5
      for _, op in ipairs({ 0x0b, 0x00 }) do -- Version's answer, then Get's (a miss)
        local h = assert(c:bytes(24, deadline))
        assert.are.same({ 0x81, op }, { h:byte(1), h:byte(2) }, show(h))
        assert(c:bytes(string.unpack(">I4", h, 9), deadline))
      end
      assert.is_true(c:closed(5), "not closed; unread: " .. show(c.buf))
      c:close()
      serves_new_connections()
    end)

    it("a text connection stays text: a binary header on it is text (a 0x0a byte ends a line)", function()
      -- a get of a 10-byte key: key length and body length are 0x0a
      local bytes = "get nokey\r\n" .. binary(0x00, "0123456789") .. "\r\n"
      assert.are.equal(4, select(2, bytes:gsub("\n", "")))
      local got, c = transcript(gw.port, bytes, GW_VERSION)
      assert.are.equal("END\r\nERROR\r\nERROR\r\nERROR\r\n", got)
      assert.are.equal("END\r\n", c:call("get nokey\r\n"))
      c:close()
    end)
  end)

  it("retrieval with no key, in more spellings: ERROR (gat <exptime> alone: END)", function()
    like_memcached("get    \r\ngets\r\ngets  \r\ngats 10 \r\n", "ERROR\r\nERROR\r\nERROR\r\nEND\r\n")
  end)

  describe("a 4 MiB line with no newline", function()
    it("gets CLIENT_ERROR line too long after the earlier replies, then the connection closes", function()
      local other = H.connect(gw.port, RAW)
      assert.are.equal(GW_VERSION, other:call("version\r\n"))
      local c = H.connect(gw.port, RAW)
      send_regardless(c, "set before 0 0 1\r\nb\r\n" .. ("x"):rep(4 * 1024 * 1024))
      assert.are.equal("STORED\r\n", c:reply())
      assert.are.equal("CLIENT_ERROR line too long\r\n", c:reply())
      assert.is_true(c:closed(2), "not closed; unread: " .. show(c.buf))
      c:close()
      -- a connection that was open meanwhile, and a new one, are served
      assert.are.equal("VALUE before 0 1\r\nb\r\nEND\r\n", other:call("get before\r\n"))
      other:close()
      serves_new_connections()
    end)

    it("a multi-get line over 1 MiB is too long too", function()
      local keys = {}
      for i = 1, 150000 do keys[i] = "key" .. i end
      local line = "get " .. table.concat(keys, " ")
      assert.is_true(#line > 1024 * 1024)
      local c = H.connect(gw.port, RAW)
      send_regardless(c, line .. "\r\n")
      assert.are.equal("CLIENT_ERROR line too long\r\n", c:reply())
      assert.is_true(c:closed(2), "not closed; unread: " .. show(c.buf))
      c:close()
      serves_new_connections()
    end)
  end)

  describe("lengths in storage commands", function()
    it("huge or negative: CLIENT_ERROR, like memcached, and the data is read as a command", function()
      for _, n in ipairs({ "99999999999999999999", "18446744073709551616", "2147483648",
                           "2147483647", "2147483646", "-2147483648", "-1" }) do
        like_memcached("set k 0 0 " .. n .. "\r\nabc\r\n",
          "CLIENT_ERROR bad command line format\r\nERROR\r\n")
      end
    end)

    it("signed zero and an explicit plus sign are lengths, like memcached", function()
      like_memcached("set k 0 0 -0\r\n\r\nget k\r\nset k 0 0 +1\r\nx\r\nget k\r\n",
        "STORED\r\nVALUE k 0 0\r\n\r\nEND\r\nSTORED\r\nVALUE k 0 1\r\nx\r\nEND\r\n")
    end)

    it("2^32 (memcached truncates it to 0): CLIENT_ERROR here (core/proto.h)", function()
      local got, c = transcript(gw.port, "set k 0 0 4294967296\r\nabc\r\n", GW_VERSION)
      assert.are.equal("CLIENT_ERROR bad command line format\r\nERROR\r\n", got)
      c:close()
    end)

    it("INT_MAX - 2 bytes: too large, and that many bytes are swallowed, not buffered", function()
      local c = H.connect(gw.port, RAW)
      c:send("set k 0 0 2147483645\r\n")
      assert.are.equal("SERVER_ERROR object too large for cache\r\n", c:reply())
      -- what follows is data: 4 MiB of it, "version" included, get no reply
      send_regardless(c, "version\r\n" .. ("z"):rep(4 * 1024 * 1024) .. "version\r\n")
      local ok, err = c:fill(socket.gettime() + 0.3)
      assert.is_false(ok, "answered: " .. show(c.buf))
      assert.are.equal("timeout", err)
      c:close()
      serves_new_connections()
    end)
  end)

  describe("noreply on refused requests, like memcached", function()
    it("a bad data chunk is not answered; what is left of it is a command", function()
      like_memcached("set nr1 0 0 3 noreply\r\nabcde\r\nget nr1\r\n", "ERROR\r\nEND\r\n")
      like_memcached("set nr2 0 0 5 noreply\r\nab\r\nget nr2\r\n", "ERROR\r\n")
      -- an old value stays
      like_memcached("set nr3 0 0 1\r\no\r\nset nr3 0 0 3 noreply\r\nabcde\r\nget nr3\r\n",
        "STORED\r\nERROR\r\nVALUE nr3 0 1\r\no\r\nEND\r\n")
    end)

    it("a value over 1 MiB is not answered, and its bytes are skipped", function()
      local big = ("v"):rep(1024 * 1024 + 10)
      like_memcached("set nrbig 0 0 " .. #big .. " noreply\r\n" .. big .. "\r\nget nrbig\r\n", "END\r\n")
    end)

    it("a bad exptime or delta is not answered", function()
      like_memcached("set nrn 0 0 1\r\n1\r\ntouch nrn abc noreply\r\ndecr nrn x noreply\r\nget nrn\r\n",
        "STORED\r\nVALUE nrn 0 1\r\n1\r\nEND\r\n")
    end)
  end)

  it("a set over 1 MiB removes the key's old value, as memcached does", function()
    local big = ("v"):rep(1024 * 1024 + 10)
    like_memcached("set tl 0 0 1\r\na\r\nset tl 0 0 " .. #big .. "\r\n" .. big .. "\r\nget tl\r\n",
      "STORED\r\nSERVER_ERROR object too large for cache\r\nEND\r\n")
  end)

  describe("clients that leave mid-request", function()
    local function leaves(bytes)
      local before = stat(gw.port, "curr_connections")
      local c = H.connect(gw.port, RAW)
      c:send(bytes)
      c:close()
      -- the gateway notices and drops the connection
      H.wait_until(function() return stat(gw.port, "curr_connections") == before end, 5,
        "curr_connections back to " .. before)
    end

    it("in the middle of a value: nothing is stored, the gateway goes on", function()
      leaves("set half 0 0 100\r\n" .. ("h"):rep(50))
      leaves("set half2 0 0 1000000\r\n" .. ("h"):rep(600000))
      leaves("set half3 0 0 10\r\n0123456789\r") -- all but the last byte
      leaves("set half4 0 0") -- in the command line
      for _, k in ipairs({ "half", "half2", "half3", "half4" }) do
        assert.are.equal("END\r\n", direct_get(k))
      end
      local c = H.connect(gw.port, RAW)
      assert.are.equal("END\r\n", c:call("get half half2 half3 half4\r\n"))
      c:close()
      serves_new_connections()
    end)

    it("right after sending whole requests: they are carried out", function()
      local sets = {}
      for i = 1, 50 do sets[i] = string.format("set left%d 0 0 %d\r\n%d\r\n", i, #tostring(i), i) end
      leaves(table.concat(sets))
      H.wait_until(function()
        for i = 1, 50 do
          if direct_get("left" .. i) ~= string.format("VALUE left%d 0 %d\r\n%d\r\nEND\r\n", i, #tostring(i), i) then
            return false
          end
        end
        return true
      end, 5, "all 50 sets on memcached")
    end)

    it("with multi-gets in flight: the gateway goes on", function()
      local keys = {}
      for i = 1, 200 do keys[i] = "left" .. (i % 60) end
      leaves(("get " .. table.concat(keys, " ") .. "\r\n"):rep(50))
      serves_new_connections()
    end)
  end)
end)

-- A fake memcached: its first connection misbehaves as `mode` says, in
-- answer to the first request line; every later connection is proxied to
-- the real memcached at upstream.  Each accept is counted in a file.
local FAKE = [[
import socket, sys, threading, time
PORT, UPSTREAM, MODE, COUNT = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]

def pump(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

def proxy(c):
    u = socket.create_connection(("127.0.0.1", UPSTREAM))
    threading.Thread(target=pump, args=(c, u), daemon=True).start()
    threading.Thread(target=pump, args=(u, c), daemon=True).start()

def misbehave(c):
    buf = b""
    while b"\n" not in buf:
        d = c.recv(65536)
        if not d:
            return
        buf += d
    words = buf.split(b"\n")[0].rstrip(b"\r").split(b" ")
    key = words[1] if len(words) > 1 else b"k"
    replies = {
        "garbage_bytes": b"\x00\xff\x80\x01 binary",
        "long_line": b"SERVER_ERROR " + b"x" * 9000,
        "value_then_silence": b"VALUE " + key + b" 0 5\r\nhello\r\n",
        "value_then_value": b"VALUE " + key + b" 0 5\r\nhello\r\nVALUE " + key + b" 0 5\r\nworld\r\n",
        "lying_long": b"VALUE " + key + b" 0 10\r\nhello\r\nEND\r\n",
        "lying_short": b"VALUE " + key + b" 0 3\r\nhello\r\nEND\r\n",
        "wrong_key": b"VALUE other 0 1\r\nx\r\nEND\r\n",
        "close_mid_value": b"VALUE " + key + b" 0 10\r\nhel",
        "close_before_reply": b"",
        "end_to_set": b"END\r\n",
        "number_garbage": b"12abc\r\n",
        "extra_reply": b"END\r\nEND\r\n",
        "slow_end": b"END\r\n",
    }
    if MODE == "slow_end":
        time.sleep(0.15)
    c.sendall(replies[MODE])
    if MODE.startswith("close_") or MODE == "slow_end":
        c.close()
        return
    try:
        while c.recv(65536):
            pass
    except OSError:
        pass
    c.close()

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", PORT))
s.listen(16)
open(COUNT, "w").write("0")
n = 0
while True:
    c, _ = s.accept()
    n += 1
    with open(COUNT, "w") as f:
        f.write(str(n))
    if n == 1:
        threading.Thread(target=misbehave, args=(c,), daemon=True).start()
    else:
        proxy(c)
]]

local MODES = {
  "garbage_bytes", "long_line", "value_then_silence", "value_then_value", "lying_long",
  "lying_short", "wrong_key", "close_mid_value", "close_before_reply", "end_to_set",
  "number_garbage", "extra_reply", "slow_end",
}

describe("hostile backends", function()
  local mc, gw, fakes = nil, nil, {}
  local script

  local function start_fake(mode)
    local port = H.free_port()
    local count = string.format("%s/fake-%d.count", H.tmpdir, port)
    os.remove(count)
    local pid = tonumber(H.run(string.format("%s %s %d %d %s %s >%s/fake-%d.log 2>&1 & echo $!",
      H.python, H.quote(script), port, mc.port, mode, H.quote(count), H.tmpdir, port)):match("%d+"))
    -- the count file appears once it listens (no test connection: that
    -- would be its first)
    H.wait_until(function() return H.read_file(count) ~= "" end, 5, "fake " .. mode)
    return { port = port, pid = pid, addr = "127.0.0.1:" .. port, mode = mode,
             conns = function() return tonumber(H.read_file(count)) end }
  end

  lazy_setup(function()
    mc = H.start_memcached()
    script = H.write_config(FAKE, "hostile-fake.py")
    local pools = {}
    for _, mode in ipairs(MODES) do
      local f = start_fake(mode)
      fakes[mode] = f
      pools[#pools + 1] = string.format(
        '["%s:"] = memcache.pool { servers = { "%s" }, timeout = 0.3, retry_timeout = 0.2 },',
        mode, f.addr)
    end
    gw = H.start_gateway(string.format([[
local main = memcache.pool { servers = { "%s" } }
memcache.route {
  %s
  default = main,
}
]], mc.addr, table.concat(pools, "\n  ")))
  end)

  lazy_teardown(function()
    if gw then gw.stop() end
    for _, f in pairs(fakes) do H.run("kill -9 " .. f.pid .. " 2>/dev/null") end
    if mc then mc.stop() end
  end)

  after_each(function()
    if gw then assert.is_true(gw.alive(), "the gateway died:\n" .. gw.output()) end
  end)

  -- Send the request to the misbehaving fake: the client's reply must be
  -- want; then (after retry_timeout) the same client connection stores and
  -- reads the key through a new backend connection.  (The reply is checked
  -- last, so that a wrong reply still shows whether the rest held.)
  local function misbehaves(mode, request, want)
    local f = fakes[mode]
    local key = mode .. ":k"
    local c = H.connect(gw.port, RAW)
    local got = c:call((request:gsub("KEY", key)))
    if want:match("^SERVER_ERROR") then
      want = "SERVER_ERROR backend " .. f.addr .. " " .. want:match("^SERVER_ERROR (.*)") .. "\r\n"
    end
    assert.are.equal(1, f.conns())
    socket.sleep(0.25)
    assert.are.equal("STORED\r\n", c:call("set " .. key .. " 0 0 2\r\nok\r\n"))
    assert.are.equal("VALUE " .. key .. " 0 2\r\nok\r\nEND\r\n", c:call("get " .. key .. "\r\n"))
    assert.are.equal(2, f.conns(), "the backend connection was not reset")
    assert.are.equal("VALUE " .. key .. " 0 2\r\nok\r\nEND\r\n", H.request(mc.port, "get " .. key .. "\r\n"))
    c:close()
    assert.are.equal(show(want), show(got), mode .. ": the reply to the first request")
  end

  it("bytes that cannot start a reply: SERVER_ERROR at once", function()
    misbehaves("garbage_bytes", "get KEY\r\n", "SERVER_ERROR sent an invalid reply")
  end)

  it("a reply line over 8 KB: SERVER_ERROR", function()
    misbehaves("long_line", "get KEY\r\n", "SERVER_ERROR sent an invalid reply")
  end)

  it("a VALUE and then nothing (no END) until the timeout: SERVER_ERROR", function()
    misbehaves("value_then_silence", "get KEY\r\n", "SERVER_ERROR timed out")
  end)

  it("a VALUE and then another VALUE instead of END: SERVER_ERROR", function()
    misbehaves("value_then_value", "get KEY\r\n", "SERVER_ERROR sent an unexpected reply")
  end)

  it("a VALUE length that lies (10 declared, 5 sent, then END): SERVER_ERROR", function()
    -- the 10 bytes are "hello\r\nEND" and "\r\n" follows: the END is never seen
    misbehaves("lying_long", "get KEY\r\n", "SERVER_ERROR timed out")
  end)

  it("a VALUE length that lies (3 declared, 5 sent): SERVER_ERROR", function()
    misbehaves("lying_short", "get KEY\r\n", "SERVER_ERROR sent an invalid reply")
  end)

  it("a VALUE for a key not asked for: SERVER_ERROR", function()
    misbehaves("wrong_key", "get KEY\r\n", "SERVER_ERROR sent an unexpected reply")
  end)

  it("the connection closed in the middle of a value: SERVER_ERROR", function()
    misbehaves("close_mid_value", "get KEY\r\n", "SERVER_ERROR closed the connection")
  end)

  it("the connection closed before any reply: SERVER_ERROR", function()
    misbehaves("close_before_reply", "set KEY 0 0 1\r\nx\r\n", "SERVER_ERROR closed the connection")
  end)

  it("END in answer to a set: SERVER_ERROR", function()
    misbehaves("end_to_set", "set KEY 0 0 1\r\nx\r\n", "SERVER_ERROR sent an unexpected reply")
  end)

  it("a number with garbage after it, for an incr: SERVER_ERROR", function()
    misbehaves("number_garbage", "incr KEY 1\r\n", "SERVER_ERROR sent an invalid reply")
  end)

  it("a reply nobody asked for: the asked one is used, the connection reset", function()
    misbehaves("extra_reply", "get KEY\r\n", "END\r\n")
  end)

  it("a client that leaves while its request waits on the backend", function()
    local f = fakes.slow_end
    local c = H.connect(gw.port, RAW)
    c:send("get slow_end:k other\r\n")
    c:close()
    -- the END arrives 0.15 s later, for a client that is gone; then the
    -- fake closes that connection
    socket.sleep(0.3)
    local c2 = H.connect(gw.port, RAW)
    assert.are.equal("STORED\r\n", c2:call("set slow_end:k 0 0 1\r\ny\r\n"))
    assert.are.equal("VALUE slow_end:k 0 1\r\ny\r\nEND\r\n", c2:call("get slow_end:k\r\n"))
    c2:close()
    assert.are.equal(2, f.conns())
  end)
end)
