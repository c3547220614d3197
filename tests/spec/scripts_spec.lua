-- scripts_spec.lua -- the example configs in scripts/ do what they promise,
-- against real memcached servers.
--
-- Each script is read as shipped; only its addresses are changed: every
-- backend address 127.0.0.1:113xx becomes a real memcached on a free port,
-- every other address (its listen addresses) a free port.  A users file it
-- names (gateway.listen's auth) is relative to scripts/, where the script
-- lives; the copy that runs names it by its absolute path.
--   sessions.lua          sessions slide, live on both replicas, and survive
--                         one replica being killed
--   tenants.lua           one port per tenant, each in its own namespace
--   tenants-auth.lua      one port, the tenant from the login, each user
--                         in a namespace of its own
--   migrate.lua           new is warmed from old; deletes reach both; a
--                         fixed slice of the keys is shadowed to the candidate
--   python-memcached.lua  keys python-memcached placed itself are found, and
--                         keys set through the gateway are where it looks
--
-- Run from the repo root:
--   busted --lpath='./lua/?.lua;./lua/?/init.lua;./tests/spec/?.lua' tests/spec/scripts_spec.lua
local H = require "harness"
local F = require "fakes"

local show, set_cmd, value_reply = H.show, F.set_cmd, F.value_reply

-- Read scripts/<name>, start a memcached for each backend address and pick
-- a free port for each other address.  Returns the edited text, the
-- servers by their original port (servers[11311]), the new listen ports by
-- their original port, and a stop function.
local function load_script(name)
  local text = H.read_file(H.root .. "/scripts/" .. name)
  assert(#text > 0, "scripts/" .. name .. " is empty or missing")
  local servers, listens, order = {}, {}, {}
  for port in text:gmatch("127%.0%.0%.1:(%d+)") do
    port = tonumber(port)
    if not servers[port] and not listens[port] then
      if port >= 11311 and port <= 11319 then
        servers[port] = H.start_memcached()
        order[#order + 1] = servers[port]
      else
        listens[port] = H.free_port()
      end
    end
  end
  local edited = text:gsub("127%.0%.0%.1:(%d+)", function(port)
    port = tonumber(port)
    return "127.0.0.1:" .. (servers[port] and servers[port].port or listens[port])
  end)
  local scripts_dir = H.run("cd " .. H.quote(H.root .. "/scripts") .. " && pwd"):match("[^\n]+")
  edited = edited:gsub('(auth%s*=%s*")([^"/][^"]*)"', function(pre, file)
    return pre .. scripts_dir .. "/" .. file .. '"'
  end)
  return edited, servers, listens, function()
    for _, s in ipairs(order) do s.stop() end
  end
end

-- python-memcached, for the scripts that meet it.
--   write SERVERS PREFIX N   set PREFIX<i> = "value-<i>" for i < N
--   read  SERVERS PREFIX N   get_multi them back: "found X of N", "wrong Y"
-- SERVERS is "host:port=weight,...".
local PY = [[
import sys
import memcache

class Dead(Exception):
    pass

def _mark_dead(self, reason):             # do not swallow errors
    raise Dead("%s: %s" % (self, reason))
memcache._Host.mark_dead = _mark_dead

mode, spec, prefix, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
servers = [(s.split("=")[0], int(s.split("=")[1])) for s in spec.split(",")]
mc = memcache.Client(servers, socket_timeout=5)
keys = ["%s%d" % (prefix, i) for i in range(n)]
if mode == "write":
    bad = mc.set_multi({k: "value-%d" % i for i, k in enumerate(keys)})
    print("stored %d of %d" % (n - len(bad), n))
else:
    found = {}
    for b in range(0, n, 100):
        found.update(mc.get_multi(keys[b:b + 100]))
    wrong = [k for i, k in enumerate(keys) if k in found and found[k] != "value-%d" % i]
    print("found %d of %d" % (len(found), n))
    print("wrong %d" % len(wrong))
]]

local py_path
local function py(mode, spec, prefix, n)
  py_path = py_path or H.write_config(PY, "scripts-spec-" .. H.free_port() .. ".py")
  local cmd = string.format("timeout 120 %s %s %s %s %s %d 2>&1", H.quote(H.python),
    H.quote(py_path), mode, H.quote(spec), H.quote(prefix), n)
  local out, ok = H.run(cmd)
  assert(ok, cmd .. " failed:\n" .. out)
  return out
end

local function spec_of(...)
  local parts = {}
  for _, s in ipairs({ ... }) do
    parts[#parts + 1] = (s.addr or s[1].addr) .. "=" .. (s.weight or (s[2] or 1))
  end
  return table.concat(parts, ",")
end

-- Which of servers holds key (exactly one must); returns its index.
local function holder(servers, key)
  local found
  for i, s in ipairs(servers) do
    if F.value(s, key) ~= nil then
      assert(not found, key .. " is on more than one server")
      found = i
    end
  end
  return found
end

local function stats(server)
  local txt = H.request(server.port, "stats\r\n", F.RAW)
  local st = {}
  for k, v in txt:gmatch("STAT (%S+) (%S+)") do st[k] = tonumber(v) or v end
  return st
end

describe("scripts/", function()
  it("every script passes ./gateway --check", function()
    local names = H.run("ls " .. H.quote(H.root .. "/scripts"))
    local n = 0
    for name in names:gmatch("[^\n]+%.lua") do
      local path = H.root .. "/scripts/" .. name
      local out = H.run(string.format("%s --check %s 2>&1", H.quote(H.gateway_bin), H.quote(path)))
      assert.are.equal(path .. ": ok\n", out)
      n = n + 1
    end
    assert.is_true(n >= 4, "only " .. n .. " scripts")
  end)
end)

describe("scripts/sessions.lua", function()
  local gw, g, servers, stop_all

  lazy_setup(function()
    local text
    text, servers, _, stop_all = load_script("sessions.lua")
    assert(servers[11311] and servers[11312] and servers[11313] and servers[11314],
      "sessions.lua's backends changed")
    gw = H.start_gateway(text)
    g = H.connect(gw.port, F.RAW)
  end)

  lazy_teardown(function()
    if g then g:close() end
    if gw then gw.stop() end
    if stop_all then stop_all() end
  end)

  after_each(function()
    if gw then assert.is_true(gw.alive(), "the gateway died:\n" .. gw.output()) end
  end)

  local SESSION = '{"user_id": 42, "cart": [17, 23], "csrf": "x9"}'

  it("a session is written to both replicas with the session ttl", function()
    local a, b = servers[11311], servers[11312]
    assert.are.equal("STORED\r\n", g:call(set_cmd("sess:abc", SESSION, 0, 0)))
    H.wait_until(function() return F.value(a, "sess:abc") and F.value(b, "sess:abc") end, 5,
      "the session on both replicas")
    for _, s in ipairs({ a, b }) do
      assert.are.equal(SESSION, F.value(s, "sess:abc"))
      local ttl = F.ttl(s, "sess:abc")
      assert.is_truthy(ttl and ttl > 1190 and ttl <= 1200, "ttl " .. tostring(ttl))
    end
    assert.are.equal(value_reply("sess:abc", SESSION), g:call("get sess:abc\r\n"))
  end)

  it("every read extends the session on both replicas", function()
    local a, b = servers[11311], servers[11312]
    F.set(a, "sess:slide", SESSION, 60)
    F.set(b, "sess:slide", SESSION, 60)
    assert.are.equal(value_reply("sess:slide", SESSION), g:call("get sess:slide\r\n"))
    H.wait_until(function()
      local x, y = F.ttl(a, "sess:slide"), F.ttl(b, "sess:slide")
      return x and y and x > 1190 and y > 1190
    end, 5, "both copies extended to the session ttl")
  end)

  it("other keys go to the main pool, as python-memcached places them", function()
    local out = py("write", spec_of({ gw }), "page:", 50)
    assert.are.equal("stored 50 of 50\n", out)
    out = py("read", spec_of(servers[11313], servers[11314]), "page:", 50)
    assert.are.equal("found 50 of 50\nwrong 0\n", out)
    assert.is_nil(F.value(servers[11311], "page:1"))
    assert.is_nil(F.value(servers[11312], "page:1"))
  end)

  it("with one replica killed, nobody is logged out and new sessions still work", function()
    local a, b = servers[11311], servers[11312]
    assert.are.equal("STORED\r\n", g:call(set_cmd("sess:survivor", SESSION)))
    H.wait_until(function() return F.value(a, "sess:survivor") and F.value(b, "sess:survivor") end,
      5, "the session on both replicas")
    a.kill()
    -- (the main thread shows as gone a moment before the last thread closes
    -- the listening socket)
    H.wait_until(function() return not H.can_connect(a.port) end, 5, "replica a to be gone")
    for _ = 1, 3 do
      assert.are.equal(value_reply("sess:survivor", SESSION), g:call("get sess:survivor\r\n"))
      assert.are.equal(value_reply("sess:abc", SESSION), g:call("get sess:abc\r\n"))
    end
    assert.are.equal("STORED\r\n", g:call(set_cmd("sess:new", "{}")))
    assert.are.equal("{}", F.value(b, "sess:new"))
    assert.are.equal(value_reply("sess:new", "{}"), g:call("get sess:new\r\n"))
    assert.are.equal("DELETED\r\n", g:call("delete sess:new\r\n"))
    assert.are.equal("END\r\n", g:call("get sess:new\r\n"))
  end)
end)

describe("scripts/tenants.lua", function()
  local gw, servers, listens, stop_all
  local port = {}

  lazy_setup(function()
    local text
    text, servers, listens, stop_all = load_script("tenants.lua")
    port.shop, port.blog, port.billing = listens[11211], listens[11212], listens[11213]
    port.login, port.admin = listens[11214], listens[11219]
    assert(port.shop and port.blog and port.billing and port.login and port.admin,
      "tenants.lua's listen addresses changed")
    gw = F.start_gateway_own_listeners(text,
      { port.shop, port.blog, port.billing, port.login, port.admin })
  end)

  lazy_teardown(function()
    if gw then gw.stop() end
    if stop_all then stop_all() end
  end)

  after_each(function()
    if gw then assert.is_true(gw.alive(), "the gateway died:\n" .. gw.output()) end
  end)

  local function call(tenant, bytes)
    return H.request(port[tenant], bytes, F.RAW)
  end

  it("the same key is a different item for each tenant", function()
    assert.are.equal("STORED\r\n", call("shop", set_cmd("user:1", "shop-user", 1)))
    assert.are.equal("STORED\r\n", call("blog", set_cmd("user:1", "blog-user", 2)))
    assert.are.equal(value_reply("user:1", "shop-user", 1), call("shop", "get user:1\r\n"))
    assert.are.equal(value_reply("user:1", "blog-user", 2), call("blog", "get user:1\r\n"))
    assert.are.equal("END\r\n", call("billing", "get user:1\r\n"))
    assert.are.equal("DELETED\r\n", call("blog", "delete user:1\r\n"))
    assert.are.equal("END\r\n", call("blog", "get user:1\r\n"))
    assert.are.equal(value_reply("user:1", "shop-user", 1), call("shop", "get user:1\r\n"))
  end)

  it("the servers hold each tenant's keys under its prefix", function()
    local shared = { servers[11311], servers[11312] }
    assert.are.equal("STORED\r\n", call("shop", set_cmd("cart:9", "c")))
    assert.are.equal("STORED\r\n", call("blog", set_cmd("cart:9", "b")))
    assert.are.equal("STORED\r\n", call("billing", set_cmd("cart:9", "i")))
    assert.is_truthy(holder(shared, "shop/cart:9"), "shop/cart:9 on no shared server")
    assert.is_truthy(holder(shared, "blog/cart:9"), "blog/cart:9 on no shared server")
    assert.is_nil(holder(shared, "billing/cart:9"))
    assert.are.equal("i", F.value(servers[11313], "billing/cart:9"))
    assert.is_nil(F.value(servers[11313], "shop/cart:9"))
    for _, s in ipairs({ servers[11311], servers[11312], servers[11313] }) do
      assert.is_nil(F.value(s, "cart:9"), "an unprefixed key on a server")
    end
  end)

  it("a multi-get answers with the tenant's own keys, in order", function()
    assert.are.equal("STORED\r\n", call("shop", set_cmd("a", "1")))
    assert.are.equal("STORED\r\n", call("shop", set_cmd("b", "22")))
    assert.are.equal("STORED\r\n", call("blog", set_cmd("a", "blog")))
    assert.are.equal("VALUE b 0 2\r\n22\r\nVALUE a 0 1\r\n1\r\nEND\r\n",
      call("shop", "get b nope a\r\n"))
  end)

  it("a client that has not logged in on the login listener gets no tenant's data", function()
    assert.are.equal("STORED\r\n", call("shop", set_cmd("secret", "shop-only")))
    for _, bytes in ipairs({ "get secret\r\n", "get shop/secret\r\n", "flush_all\r\n",
                             "stats\r\n" }) do
      local ok, reply = pcall(call, "login", bytes)
      if ok then
        assert.is_falsy(reply:find("VALUE", 1, true), H.show(reply))
        assert.is_falsy(reply:find("STAT pid", 1, true), H.show(reply))
        assert.are_not.equal("OK\r\n", reply)
      end
    end
    assert.are.equal(value_reply("secret", "shop-only"), call("shop", "get secret\r\n"))
  end)

  it("no tenant can flush, reset or read another: keyless commands are fenced per listener", function()
    assert.are.equal("STORED\r\n", call("shop", set_cmd("keep", "shop")))
    assert.are.equal("STORED\r\n", call("blog", set_cmd("keep", "blog")))
    assert.are.equal("STORED\r\n", call("billing", set_cmd("keep", "bill")))
    -- tenants on the shared servers may not flush: it would empty everyone
    for _, t in ipairs({ "shop", "blog" }) do
      assert.are.equal("CLIENT_ERROR flush_all not allowed\r\n", call(t, "flush_all\r\n"))
      assert.are.equal("CLIENT_ERROR flush_all not allowed\r\n", call(t, "flush_all 10\r\n"))
    end
    assert.are.equal(value_reply("keep", "shop"), call("shop", "get keep\r\n"))
    assert.are.equal(value_reply("keep", "blog"), call("blog", "get keep\r\n"))
    -- billing, alone on its server, flushes that server and nothing else
    assert.are.equal("OK\r\n", call("billing", "flush_all\r\n"))
    assert.are.equal("END\r\n", call("billing", "get keep\r\n"))
    assert.are.equal(value_reply("keep", "shop"), call("shop", "get keep\r\n"))
    assert.are.equal(value_reply("keep", "blog"), call("blog", "get keep\r\n"))
    -- no tenant sees or resets the counters of all
    for _, t in ipairs({ "shop", "blog", "billing" }) do
      assert.are.equal("CLIENT_ERROR stats not allowed\r\n", call(t, "stats\r\n"))
      assert.are.equal("CLIENT_ERROR stats reset not allowed\r\n", call(t, "stats reset\r\n"))
      assert.are.equal("OK\r\n", call(t, "verbosity 1\r\n"))
    end
    -- the operator's listener has them all, and no keys
    assert.matches("^STAT pid ", call("admin", "stats\r\n"))
    assert.matches("^SERVER_ERROR the admin listener serves stats", call("admin", "get keep\r\n"))
  end)
end)

describe("scripts/tenants-auth.lua", function()
  local gw, servers, listens, stop_all, port

  lazy_setup(function()
    local text
    text, servers, listens, stop_all = load_script("tenants-auth.lua")
    port = listens[11211]
    gw = F.start_gateway_own_listeners(text, { port })
  end)

  lazy_teardown(function()
    if gw then gw.stop() end
    if stop_all then stop_all() end
  end)

  -- A connection logged in (ASCII authentication) as user.
  local function as(user)
    local c = H.connect(port, F.RAW)
    local cred = user .. " " .. user .. "-demo-password"
    assert.are.equal("STORED\r\n", c:call(string.format("set auth 0 0 %d\r\n%s\r\n", #cred, cred)))
    return c
  end

  it("gives each user its own keys: another's are out of reach, whatever the key or command", function()
    local anon = H.connect(port, F.RAW)
    assert.are.equal("CLIENT_ERROR unauthenticated\r\n", anon:call("get cart:1\r\n"))
    anon:close()
    local shop, blog = as("shop"), as("blog")
    assert.are.equal("STORED\r\n", shop:call(set_cmd("cart:1", "shop-cart")))
    assert.are.equal("END\r\n", blog:call("get cart:1 shop/cart:1\r\n"))
    assert.are.equal("NOT_FOUND\r\n", blog:call("delete shop/cart:1\r\n"))
    assert.are.equal("STORED\r\n", blog:call(set_cmd("shop/cart:1", "blog's")))
    assert.are.equal(value_reply("cart:1", "shop-cart"), shop:call("get cart:1\r\n"))
    assert.are.equal("CLIENT_ERROR flush_all not allowed\r\n", blog:call("flush_all\r\n"))
    shop:close()
    blog:close()
    -- on the servers: under each user's prefix (ketama picks the server)
    local found = {}
    for _, s in pairs(servers) do
      local rep = H.request(s.port, "get shop/cart:1 blog/shop/cart:1\r\n", F.RAW)
      for k in rep:gmatch("VALUE (%S+)") do found[#found + 1] = k end
    end
    table.sort(found)
    assert.are.same({ "blog/shop/cart:1", "shop/cart:1" }, found)
  end)
end)

describe("scripts/migrate.lua", function()
  local gw, g, servers, stop_all, old, new, candidate, fraction

  lazy_setup(function()
    local text
    text, servers, _, stop_all = load_script("migrate.lua")
    old = { servers[11311], servers[11312] }
    new = { servers[11313], servers[11314], servers[11315] }
    candidate = servers[11316]
    assert(old[1] and old[2] and new[1] and new[2] and new[3] and candidate,
      "migrate.lua's backends changed")
    fraction = tonumber(text:match("SHADOW_FRACTION = ([%d.]+)"))
    assert(fraction and fraction > 0 and fraction < 1, "SHADOW_FRACTION not found")
    gw = H.start_gateway(text)
    g = H.connect(gw.port, F.RAW)
  end)

  lazy_teardown(function()
    if g then g:close() end
    if gw then gw.stop() end
    if stop_all then stop_all() end
  end)

  after_each(function()
    if gw then assert.is_true(gw.alive(), "the gateway died:\n" .. gw.output()) end
  end)

  it("keys python-memcached put on the old cluster are answered, and copied into new", function()
    assert.are.equal("stored 40 of 40\n", py("write", spec_of(old[1], old[2]), "legacy:", 40))
    assert.are.equal("found 40 of 40\nwrong 0\n", py("read", spec_of({ gw }), "legacy:", 40))
    H.wait_until(function()
      for i = 0, 39 do
        local k = "legacy:" .. i
        local found = 0
        for _, s in ipairs(new) do if F.value(s, k) then found = found + 1 end end
        if found ~= 1 then return false end
      end
      return true
    end, 5, "every key copied into exactly one new server")
    -- answered from new from now on: old may lose them
    for _, s in ipairs(old) do H.request(s.port, "flush_all\r\n", F.RAW) end
    assert.are.equal("found 40 of 40\nwrong 0\n", py("read", spec_of({ gw }), "legacy:", 40))
  end)

  it("writes go to new only; a delete removes the key from old too", function()
    assert.are.equal("stored 10 of 10\n", py("write", spec_of(old[1], old[2]), "del:", 10))
    assert.are.equal("STORED\r\n", g:call(set_cmd("del:1", "newer")))
    assert.is_truthy(holder(new, "del:1"))
    assert.are.equal(value_reply("del:1", "newer"), g:call("get del:1\r\n"))
    assert.are.equal("found 10 of 10\nwrong 0\n", py("read", spec_of(old[1], old[2]), "del:", 10))
    for i = 0, 9 do
      assert.are.equal("DELETED\r\n", g:call("delete del:" .. i .. "\r\n"))
    end
    assert.are.equal("found 0 of 10\nwrong 0\n", py("read", spec_of(old[1], old[2]), "del:", 10))
    for i = 0, 9 do
      assert.are.equal("END\r\n", g:call("get del:" .. i .. "\r\n"))
      assert.is_nil(holder(new, "del:" .. i))
    end
  end)

  it("the same slice of the keys is shadowed to the candidate", function()
    local limit = fraction * 2 ^ 32
    local picked, left = {}, {}
    local i = 0
    while #picked < 5 or #left < 5 do
      local k = "shadow:" .. i
      if F.crc32(k) < limit then picked[#picked + 1] = k else left[#left + 1] = k end
      i = i + 1
    end
    for n = 1, 5 do
      assert.are.equal("STORED\r\n", g:call(set_cmd(left[n], "v")))
      assert.is_truthy(holder(new, left[n]))
    end
    for n = 1, 5 do
      assert.are.equal("STORED\r\n", g:call(set_cmd(picked[n], "v")))
      assert.is_truthy(holder(new, picked[n]))
    end
    -- the candidate gets the picked keys (sent after the others, so once
    -- they are there, any copy of the others would be too)
    H.wait_until(function()
      for n = 1, 5 do if F.value(candidate, picked[n]) ~= "v" then return false end end
      return true
    end, 5, "the shadowed writes on the candidate")
    for n = 1, 5 do
      assert.is_nil(F.value(candidate, left[n]), left[n] .. " was shadowed")
    end
    -- the answers never come from the candidate
    F.set(candidate, picked[1], "candidate-only")
    assert.are.equal(value_reply(picked[1], "v"), g:call("get " .. picked[1] .. "\r\n"))
  end)
end)

describe("scripts/python-memcached.lua", function()
  local gw, servers, stop_all, spec

  lazy_setup(function()
    local text
    text, servers, _, stop_all = load_script("python-memcached.lua")
    assert(servers[11311] and servers[11312], "python-memcached.lua's backends changed")
    -- the weights as the script gives them
    local w1 = tonumber(text:match('"127%.0%.0%.1:' .. servers[11311].port .. '", weight = (%d+)'))
    local w2 = tonumber(text:match('"127%.0%.0%.1:' .. servers[11312].port .. '", weight = (%d+)'))
    assert(w1 and w2, "weights not found")
    spec = spec_of({ servers[11311], w1 }, { servers[11312], w2 })
    gw = H.start_gateway(text)
  end)

  lazy_teardown(function()
    if gw then gw.stop() end
    if stop_all then stop_all() end
  end)

  it("finds every key python-memcached placed, asking only the server that holds it", function()
    assert.are.equal("stored 600 of 600\n", py("write", spec, "pm:", 600))
    local before = { stats(servers[11311]), stats(servers[11312]) }
    assert.is_true(before[1].curr_items > 0 and before[2].curr_items > 0)
    assert.are.equal("found 600 of 600\nwrong 0\n", py("read", spec_of({ gw }), "pm:", 600))
    for i, s in ipairs({ servers[11311], servers[11312] }) do
      assert.are.equal(before[i].get_misses, stats(s).get_misses, "server " .. i .. " was asked for keys it lacks")
    end
  end)

  it("keys set through the gateway are where python-memcached looks", function()
    assert.are.equal("stored 300 of 300\n", py("write", spec_of({ gw }), "gw:", 300))
    assert.are.equal("found 300 of 300\nwrong 0\n", py("read", spec, "gw:", 300))
  end)
end)
