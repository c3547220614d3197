-- binary_routes_spec.lua -- binary requests meet the gateway's own parts:
-- Lua routes (req.command, req.key of any bytes, responses built in Lua
-- rendered in binary), the embedded store, a pool that speaks only text,
-- a dead server, and SASL on a listener with a users file (req.user).
--
-- The byte-for-byte comparison with memcached is binary_spec.lua's; here
-- every expected answer is written out.
--
-- Run from the repo root:
--   busted --lpath='./lua/?.lua;./lua/?/init.lua;./tests/spec/?.lua' tests/spec/binary_routes_spec.lua
local H = require "harness"
local socket = require "socket"

local DEADLINE = 5

-- A request: opcode, key, extras, value, opaque, cas.
local function req(op, key, extras, value, opaque, cas)
  key, extras, value = key or "", extras or "", value or ""
  return string.pack(">BBI2BBI2I4I4I8", 0x80, op, #key, #extras, 0, 0, #extras + #key + #value,
    opaque or 0, cas or 0) .. extras .. key .. value
end

local GET, SET, ADD, DELETE, INCR, QUIT, GETK, GETKQ, NOOP, VERSION, STAT, TOUCH, GAT =
  0x00, 0x01, 0x02, 0x04, 0x05, 0x07, 0x0c, 0x0d, 0x0a, 0x0b, 0x10, 0x1c, 0x1d
local SASL_LIST, SASL_AUTH = 0x20, 0x21
local SETQ = 0x11

local function set_extras(flags, exptime) return string.pack(">I4I4", flags or 0, exptime or 0) end
local function incr_extras(delta, initial, exptime)
  return string.pack(">I8I8I4", delta, initial, exptime)
end

-- Read one answer: { op, status, opaque, cas, extras, key, body }.
local function answer(conn, deadline)
  local h = conn:bytes(24, deadline)
  if not h then conn:fail("closed", " reading a binary header") end
  local magic, op, kl, el, _, status, bl, opaque, cas = string.unpack(">BBI2BBI2I4I4I8", h)
  assert(magic == 0x81, "bad magic " .. magic)
  local body = bl > 0 and conn:bytes(bl, deadline) or ""
  return { op = op, status = status, opaque = opaque, cas = cas, extras = body:sub(1, el),
           key = body:sub(el + 1, el + kl), body = body:sub(el + kl + 1) }
end

-- Send bytes plus a Noop; the answers up to the Noop's.
local function exchange(conn, bytes)
  conn:send(bytes .. req(NOOP, nil, nil, nil, 0xfeed))
  local deadline = socket.gettime() + DEADLINE
  local out = {}
  while true do
    local a = answer(conn, deadline)
    if a.op == NOOP and a.opaque == 0xfeed then return out end
    out[#out + 1] = a
  end
end

-- "apple-pie" for ann, "banana" for bob (mkpasswd -m yescrypt -R 3).
local USERS = [[
ann:$y$j7T$S71UpOqRv55l1TrVnfblQ0$Z9D.KM91ScVKtFxW2ZMGexEwPrtGD2Z2vCwd0zkNF12
bob:$y$j7T$A46y9nGyi2pp2QIUsMyZN/$wNy3jpBcxY.haQ0d0WpTTx2l2LIm3C4Esui8Nc/ZAC6
]]

describe("binary requests through Lua routes", function()
  local m, gw, auth_port, direct

  lazy_setup(function()
    m = H.start_memcached()
    auth_port = H.free_port()
    local port = H.free_port()
    H.write_config(USERS, "binary-users") -- beside the config: its path is relative to it
    local users = "binary-users"
    gw = H.start_gateway(string.format([[
gateway.listen "127.0.0.1:%d"
gateway.listen { "127.0.0.1:%d", name = "secure", auth = %q }
gateway.settings { threads = 1 }
local main = memcache.pool { servers = { "%s" }, timeout = 0.5 }
local old = memcache.pool { servers = { "%s" }, protocol = "text" }
local dead = memcache.pool { servers = { "127.0.0.1:%d" }, timeout = 0.5 }
local near = memcache.internal { size = "4MB" }

memcache.route {
  ["i:"] = near,
  ["old:"] = old,
  ["dead:"] = dead,
  ["pre:"] = function(req) req.key = "moved " .. req.key; return main end,
  ["look:"] = function(req)
    return memcache.hit(req.command .. "|" .. req.key .. "|" .. tostring(req.user), 9, 77)
  end,
  ["miss:"] = function(req) return memcache.miss() end,
  ["st:"] = function(req) return memcache.stored() end,
  ["ns:"] = function(req) return memcache.not_stored() end,
  ["num:"] = function(req) return memcache.number(42) end,
  ["err:"] = function(req) return memcache.error("route says no") end,
  ["mine:"] = function(req)
    if not req.user then return memcache.error("log in first") end
    req.key = req.user .. "/" .. req.key
    return main
  end,
  default = main,
}
]], port, auth_port, users, m.addr, m.addr, H.free_port()), { port = port, own_listeners = true })
    direct = H.connect(m.port, { timeout = DEADLINE, whole_reply = true })
  end)

  lazy_teardown(function()
    if direct then direct:close() end
    if gw then gw.stop() end
    if m then m.stop() end
  end)

  local function conn() return H.connect(gw.port, DEADLINE) end

  it("gives a route the text command and the key as sent, any bytes", function()
    local c = conn()
    local a = exchange(c, req(GETK, "look:a b\1", nil, nil, 7) .. req(GAT, "look:x", string.pack(">I4", 5)))
    assert.equal(2, #a)
    assert.same({ 0, 7, "look:a b\1", "get|look:a b\1|nil" }, { a[1].status, a[1].opaque, a[1].key, a[1].body })
    assert.equal(string.pack(">I4", 9), a[1].extras)
    assert.equal(77, a[1].cas)
    assert.equal("gat|look:x|nil", a[2].body)
    c:close()
  end)

  it("renders Lua responses in binary, quiet ones answering only errors", function()
    local c = conn()
    local a = exchange(c, req(GET, "miss:a", nil, nil, 1) .. req(GETKQ, "miss:b") ..
      req(SET, "st:a", set_extras(), "v", 2) .. req(SETQ, "st:b", set_extras(), "v") ..
      req(ADD, "ns:a", set_extras(), "v", 3) .. req(INCR, "num:a", incr_extras(1, 0, 0), nil, 4) ..
      req(GET, "err:a", nil, nil, 5) .. req(SETQ, "err:b", set_extras(), "v", 6))
    local got = {}
    for i, x in ipairs(a) do got[i] = { x.opaque, x.status, x.body } end
    assert.same({
      { 1, 0x01, "Not found" },
      { 2, 0x00, "" },
      { 3, 0x02, "Data exists for key." },   -- add refused: memcached's EEXISTS
      { 4, 0x00, string.pack(">I8", 42) },
      { 5, 0x84, "route says no" },
      { 6, 0x84, "route says no" },          -- quiet, but an error
    }, got)
    c:close()
  end)

  it("sends a rewritten key that is no text key to the server in base64", function()
    local c = conn()
    local a = exchange(c, req(SET, "pre:k", set_extras(3), "xyz", 1) .. req(GETK, "pre:k", nil, nil, 2))
    assert.same({ 0, 0, "pre:k", "xyz" }, { a[1].status, a[2].status, a[2].key, a[2].body })
    assert.is_true(a[1].cas > 0, "a store answers its cas")
    assert.equal(a[1].cas, a[2].cas)
    -- the server holds "moved pre:k" (a space: sent as base64 with b)
    local b64 = (require "mime").b64("moved pre:k")
    assert.equal("VA 3 f3\r\nxyz\r\n", direct:call("mg " .. b64 .. " b v f\r\n"))
    c:close()
  end)

  it("answers from the embedded store, and creates with incr's initial value", function()
    local c = conn()
    local a = exchange(c, req(SET, "i:a", set_extras(5), "hi", 1) .. req(GET, "i:a", nil, nil, 2) ..
      req(INCR, "i:n", incr_extras(1, 10, 0), nil, 3) .. req(INCR, "i:n", incr_extras(5, 10, 0), nil, 4) ..
      req(INCR, "i:m", incr_extras(1, 10, 0xffffffff), nil, 5) .. req(DELETE, "i:a", nil, nil, 6) ..
      req(DELETE, "i:a", nil, nil, 7))
    local got = {}
    for i, x in ipairs(a) do got[i] = { x.opaque, x.status, x.body } end
    assert.same({
      { 1, 0, "" }, { 2, 0, "hi" }, { 3, 0, string.pack(">I8", 10) }, { 4, 0, string.pack(">I8", 15) },
      { 5, 1, "Not found" }, { 6, 0, "" }, { 7, 1, "Not found" },
    }, got)
    c:close()
  end)

  it("serves a text-only pool what text can carry, and refuses the rest", function()
    local c = conn()
    local a = exchange(c, req(SET, "old:a", set_extras(1), "t", 1) .. req(GET, "old:a", nil, nil, 2) ..
      req(SET, "old:a b", set_extras(), "t", 3) .. req(INCR, "old:n", incr_extras(1, 5, 0), nil, 4))
    assert.same({ 0, 0, "t" }, { a[1].status, a[2].status, a[2].body })
    assert.is_true(a[2].cas > 0, "a get answers its cas (asked with gets)")
    assert.equal(0x84, a[3].status)
    assert.matches("no text key", a[3].body)
    assert.equal(0x84, a[4].status)
    assert.matches("needs meta", a[4].body)
    c:close()
  end)

  it("answers a dead server's keys with an error, quiet or not", function()
    local c = conn()
    local a = exchange(c, req(GETKQ, "dead:a", nil, nil, 1) .. req(SETQ, "dead:b", set_extras(), "v", 2))
    assert.equal(2, #a)
    for _, x in ipairs(a) do
      assert.equal(0x84, x.status)
      assert.matches("backend", x.body)
    end
    c:close()
  end)

  describe("SASL", function()
    local function plain(user, pass) return req(SASL_AUTH, "PLAIN", nil, "\0" .. user .. "\0" .. pass, 9) end

    it("is unknown on a listener without auth, as on memcached without SASL", function()
      local c = conn()
      local a = exchange(c, req(SASL_LIST, nil, nil, nil, 1))
      assert.same({ 0x81, "Unknown command" }, { a[1].status, a[1].body })
      c:close()
    end)

    it("logs in with PLAIN; the route sees req.user", function()
      local c = H.connect(auth_port, DEADLINE)
      local a = exchange(c, req(SASL_LIST, nil, nil, nil, 1) .. plain("ann", "apple-pie") ..
        req(GETK, "look:z", nil, nil, 2) .. req(SET, "mine:k", set_extras(), "ann's", 3))
      assert.same({ 0, "PLAIN" }, { a[1].status, a[1].body })
      assert.same({ 0, "Authenticated" }, { a[2].status, a[2].body })
      assert.equal("get|look:z|ann", a[3].body)
      assert.equal(0, a[4].status)
      assert.equal("VALUE ann/mine:k 0 5\r\nann's\r\nEND\r\n", direct:call("get ann/mine:k\r\n"))
      c:close()
    end)

    it("refuses a wrong password, and any command before a login, and closes", function()
      -- a wrong password may be tried again, up to a third failure, which
      -- closes the connection (each try costs a password hash)
      local c = H.connect(auth_port, DEADLINE)
      c:send(plain("ann", "banana") .. plain("eve", "apple-pie") .. plain("ann", "x") .. req(GET, "a", nil, nil, 5))
      local deadline = socket.gettime() + DEADLINE
      for _ = 1, 3 do
        local x = answer(c, deadline)
        assert.same({ 0x20, 9, "Auth failure." }, { x.status, x.opaque, x.body })
      end
      assert.is_true(c:closed(DEADLINE), "the connection stays open")
      c:close()
      -- a wrong password, then the right one
      c = H.connect(auth_port, DEADLINE)
      local a = exchange(c, plain("ann", "banana") .. plain("ann", "apple-pie") .. req(GETK, "look:w", nil, nil, 2))
      assert.same({ 0x20, 0, "get|look:w|ann" }, { a[1].status, a[2].status, a[3].body })
      c:close()
      -- a command before any login: answered, then closed, as memcached does
      c = H.connect(auth_port, DEADLINE)
      c:send(req(GET, "a", nil, nil, 5) .. req(GET, "b", nil, nil, 6))
      local x = answer(c, socket.gettime() + DEADLINE)
      assert.same({ 0x20, 5, "Auth failure." }, { x.status, x.opaque, x.body })
      assert.is_true(c:closed(DEADLINE), "the connection stays open")
      c:close()
      local log = gw.output()
      assert.matches("authentication failed", log)
      assert.is_nil(log:find("banana", 1, true), "a password reached the log")
    end)

    it("asks a text client on an auth listener to log in (auth_spec.lua has the rest)", function()
      local c = H.connect(auth_port, DEADLINE)
      assert.equal("CLIENT_ERROR unauthenticated\r\n", c:call("get a\r\n"))
      assert.equal("STORED\r\n", c:call("set auth 0 0 13\r\nann apple-pie\r\n"))
      assert.equal("VALUE look:t 9 14\r\nget|look:t|ann\r\nEND\r\n", c:call("get look:t\r\n"))
      c:close()
    end)
  end)
end)
