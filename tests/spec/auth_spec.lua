-- auth_spec.lua -- text and meta clients on a listener with auth: memcached's
-- ASCII authentication (a set whose data is "user password"), answered as
-- memcached 1.6.18 started with -Y answers it, and the tenant isolation a
-- route that prefixes req.user gives.
--
-- The reference is a memcached with -Y and a plain-text auth file; the
-- gateway checks the same users, hashed (yescrypt), in front of a fresh
-- memcached.  Each case is a list of steps sent on one connection; every
-- step's answer must be byte-identical on both.
--
-- Run from the repo root:
--   busted --lpath='./lua/?.lua;./lua/?/init.lua;./tests/spec/?.lua' tests/spec/auth_spec.lua
local H = require "harness"
local socket = require "socket"

local show = H.show
local DEADLINE = 5

-- "apple-pie" for ann, "banana" for bob (mkpasswd -m yescrypt -R 3).
local USERS = [[
ann:$y$j7T$S71UpOqRv55l1TrVnfblQ0$Z9D.KM91ScVKtFxW2ZMGexEwPrtGD2Z2vCwd0zkNF12
bob:$y$j7T$A46y9nGyi2pp2QIUsMyZN/$wNy3jpBcxY.haQ0d0WpTTx2l2LIm3C4Esui8Nc/ZAC6
]]
local PLAIN = "ann:apple-pie\nbob:banana\n"

local function login(user, pass)
  local data = user .. " " .. pass
  return string.format("set auth 0 0 %d\r\n%s\r\n", #data, data)
end

describe("text and meta clients on a listener with auth", function()
  local ref, m, gw, port

  lazy_setup(function()
    ref = H.start_memcached({ args = "-Y " .. H.write_config(PLAIN, "auth-plain") })
    m = H.start_memcached()
    port = H.free_port()
    H.write_config(USERS, "auth-users")
    gw = H.start_gateway(string.format([[
gateway.listen { "127.0.0.1:%d", auth = "auth-users" }
gateway.settings { threads = 1 }
local main = memcache.pool { servers = { "%s" }, timeout = 0.5 }
memcache.route { default = function(req)
  req.key = req.user .. "/" .. req.key   -- each user in a namespace of its own
  return main
end }
]], port, m.addr), { port = port, own_listeners = true })
  end)

  lazy_teardown(function()
    if gw then gw.stop() end
    if m then m.stop() end
    if ref then ref.stop() end
  end)

  -- What a connection answers to each step (one request each); a closed
  -- connection reads "<closed>" and ends the list.
  local function answers(p, steps)
    local c = H.connect(p, DEADLINE)
    local out = {}
    for i, step in ipairs(steps) do
      c.sock:send(step)
      local ok, rep = pcall(c.reply, c, socket.gettime() + DEADLINE)
      out[i] = ok and rep or "<closed>"
      if not ok then break end
    end
    c:close()
    return out
  end

  local function same(steps)
    local want, got = answers(ref.port, steps), answers(port, steps)
    assert.are.same(want, got, "sent: " .. show(table.concat(steps)))
    return got
  end

  it("answers like memcached -Y before a login, for a good login and for a bad one", function()
    same({ "get a\r\n", "version\r\n", "mg a v\r\n", "delete a noreply\r\n" })
    same({ login("ann", "wrong"), "get a\r\n" })
    same({ login("eve", "apple-pie"), "get a\r\n" })
    same({ "set auth 0 0 3\r\nann\r\n", "get a\r\n" })
    same({ login("ann", "apple-pie"), "get a\r\n" })
    same({ "set auth 0 0 13 noreply\r\nann apple-pie\r\n", "mg a v\r\n" })
    same({ login("ann", "wrong"), login("ann", "apple-pie"), "get a\r\n" })
  end)

  it("closes a connection at its third failed login (each costs a password hash)", function()
    local got = answers(port, { login("ann", "x"), login("ann", "y"), login("ann", "z"), "get a\r\n" })
    assert.are.same({ "CLIENT_ERROR authentication failure\r\n", "CLIENT_ERROR authentication failure\r\n",
                      "CLIENT_ERROR authentication failure\r\n", "<closed>" }, got)
    assert.matches("authentication failed", gw.output())
    assert.is_nil(gw.output():find("apple-pie", 1, true), "a password reached the log")
  end)

  it("keeps tenants apart: a user's keys are out of another's reach, whatever the command", function()
    local ann, bob = H.connect(port, DEADLINE), H.connect(port, DEADLINE)
    assert.are.equal("STORED\r\n", ann:call(login("ann", "apple-pie")))
    assert.are.equal("STORED\r\n", bob:call(login("bob", "banana")))
    assert.are.equal("STORED\r\n", ann:call("set k 0 0 6\r\nsecret\r\n"))
    assert.are.equal("STORED\r\n", ann:call("set n 0 0 1\r\n5\r\n"))
    -- bob sees none of it
    assert.are.equal("END\r\n", bob:call("get k n\r\n"))
    assert.are.equal("END\r\n", bob:call("gets k\r\n"))
    assert.are.equal("EN\r\n", bob:call("mg k v\r\n"))
    assert.are.equal("NOT_FOUND\r\n", bob:call("delete k\r\n"))
    assert.are.equal("NOT_FOUND\r\n", bob:call("incr n 1\r\n"))
    assert.are.equal("NOT_FOUND\r\n", bob:call("touch k 100\r\n"))
    assert.are.equal("NOT_STORED\r\n", bob:call("append k 0 0 1\r\nx\r\n"))
    assert.are.equal("STORED\r\n", bob:call("set k 0 0 3\r\nbob\r\n"))
    -- and ann's are as she left them
    assert.are.equal("VALUE k 0 6\r\nsecret\r\nVALUE n 0 1\r\n5\r\nEND\r\n", ann:call("get k n\r\n"))
    ann:close()
    bob:close()
    -- on the server: each under its user's prefix
    local direct = H.connect(m.port, DEADLINE)
    assert.are.equal("VALUE ann/k 0 6\r\nsecret\r\nVALUE bob/k 0 3\r\nbob\r\nEND\r\n",
      direct:call("get ann/k bob/k\r\n"))
    direct:close()
  end)

  it("refuses python-memcached, which cannot log in", function()
    local script = [==[
import memcache, sys
mc = memcache.Client([sys.argv[1]])
print(repr(mc.get("a")))
print(repr(mc.set("a", "1")))
]==]
    local path = H.write_config(script, "auth_pymc.py")
    local out = H.run(string.format("%s %s 127.0.0.1:%d 2>&1", H.python, path, port))
    -- its get gives nothing and its set fails: the gateway said unauthenticated
    assert.matches("None\nFalse\n", out)
  end)
end)
