-- logs_spec.lua -- the log an operator reads (README "Logs"):
--   * every line starts with an ISO 8601 UTC time, then the level;
--   * start-up names the config file, the listeners, the admin listener and
--     every pool with its servers; a reload names its generation and what
--     changed;
--   * a route error names the route, the key and the client's ip:port, as
--     do "no route for key" and "route returned no pool or response";
--   * backend lines name the pool (a server killed under it);
--   * repeated errors are rate limited: 500 make one line and one
--     "repeated 499 times" line, written when the window is over or at exit.
--
-- Run from the repo root:
--   busted --lpath='./lua/?.lua;./lua/?/init.lua;./tests/spec/?.lua' tests/spec/logs_spec.lua
local H = require "harness"
local socket = require "socket"

local ISO = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ (%u+) [%w_]+%.c:%d+: "

local function lines_of(text)
  local out = {}
  for l in text:gmatch("([^\n]*)\n") do out[#out + 1] = l end
  return out
end

-- The log's lines that contain every one of the plain strings given.
local function find_lines(text, ...)
  local want, out = { ... }, {}
  for _, l in ipairs(lines_of(text)) do
    local all = true
    for _, w in ipairs(want) do
      if not l:find(w, 1, true) then all = false break end
    end
    if all then out[#out + 1] = l end
  end
  return out
end

local function count_lines(text, ...)
  return #find_lines(text, ...)
end

-- Lines as count_lines finds them, but not the "repeated N times" ones.
local function count_logged(text, ...)
  local n = 0
  for _, l in ipairs(find_lines(text, ...)) do
    if not l:find(": repeated %d+ times? in the last ") then n = n + 1 end
  end
  return n
end

-- Every line of the log has the ISO 8601 prefix and a known level; the
-- dates are today's in UTC (or yesterday's, past midnight).
local function assert_all_prefixed(text)
  local today, yesterday = os.date("!%Y-%m-%d"), os.date("!%Y-%m-%d", os.time() - 86400)
  local n = 0
  for _, l in ipairs(lines_of(text)) do
    local level = l:match(ISO)
    assert.is_truthy(level, "a line without the ISO 8601 prefix: " .. l)
    assert.is_truthy(({ ERROR = 1, WARN = 1, INFO = 1, VERBOSE = 1 })[level], l)
    local day = l:sub(1, 10)
    assert.is_truthy(day == today or day == yesterday, l)
    n = n + 1
  end
  assert.is_true(n > 0, "the log is empty")
end

-- A client whose local address the log should name.
local function client(port)
  local c = H.connect(port, { timeout = 5, whole_reply = true })
  local ip, cport = c.sock:getsockname()
  c.addr = ip .. ":" .. cport
  return c
end

local function wait_log(g, what, ...)
  local want = { ... }
  return H.wait_until(function()
    local l = find_lines(g.output(), table.unpack(want))
    return #l > 0 and l
  end, 5, what)
end

describe("logs", function()
  local m1, m2, dead_port, admin_port, g
  local mute, mute_addr -- listens, never answers

  local config = function(extra)
    return string.format([[
gateway.settings { threads = 2, route_timeout = 0.3 }
gateway.admin "127.0.0.1:%d"
local main = memcache.pool { name = "main", servers = { "%s", { "%s", weight = 2 } } }
local solo = memcache.pool { name = "solo", servers = { "%s" } }
local dead = memcache.pool { name = "deadpool", servers = { "127.0.0.1:%d" },
                             failure_limit = 1, retry_timeout = 60 }
local mute = memcache.pool { name = "mute", servers = { "%s" }, timeout = 5 }
memcache.route {
  ["boom:"] = function(req) error("kaboom") end,
  ["none:"] = function(req) end,
  ["spin:"] = function(req) while true do end end,
  ["slow:"] = function(req) mute:get(req.key) return memcache.miss() end,
  ["main:"] = main,
  ["solo:"] = solo,
  ["dead:"] = dead,
}
%s
]], admin_port, m1.addr, m2.addr, m2.addr, dead_port, mute_addr, extra or "")
  end

  lazy_setup(function()
    m1 = H.start_memcached()
    m2 = H.start_memcached()
    dead_port = H.free_port()
    admin_port = H.free_port()
    mute = assert(socket.bind("127.0.0.1", 0))
    local _, mport = mute:getsockname()
    mute_addr = "127.0.0.1:" .. mport
    g = H.start_gateway(config(), { config_name = "logs-main.lua" })
  end)

  lazy_teardown(function()
    if g then g.stop() end
    if m1 then m1.stop() end
    if m2 then m2.stop() end
    if mute then mute:close() end
  end)

  after_each(function()
    assert.is_true(g.alive(), "the gateway died:\n" .. g.output())
  end)

  it("start-up names the config, the listeners, the admin listener and each pool with its servers",
    function()
      local log = wait_log(g, "the serving line", "serving with 2 threads") and g.output()
      local abs = H.run("realpath " .. H.quote(g.config)):gsub("\n$", "")
      assert.are.equal(1, count_lines(log, "INFO", ": config " .. abs), log)
      assert.are.equal(1, count_lines(log, "INFO", "listening on 127.0.0.1:" .. g.port), log)
      assert.are.equal(1, count_lines(log, "INFO", "admin listener on http://127.0.0.1:" .. admin_port), log)
      assert.are.equal(1, count_lines(log, "INFO", ": pool main: python-memcached",
        "2 servers: " .. m1.addr .. ", " .. m2.addr .. " (weight 2)"), log)
      assert.are.equal(1, count_lines(log, "INFO", ": pool solo: ", "1 server: " .. m2.addr), log)
      assert.are.equal(1, count_lines(log, "INFO", ": pool deadpool: ",
        "1 server: 127.0.0.1:" .. dead_port), log)
      assert.are.equal(1, count_lines(log, "INFO", ": routes: ", '"main:" -> main',
        '"boom:" -> function', '"dead:" -> deadpool'), log)
    end)

  it("a route error names the route, the key and the client, traceback lines included", function()
    local c = client(g.port)
    assert.matches("^SERVER_ERROR lua error: logs%-main%.lua:9: kaboom", c:call("get boom:k1\r\n"))
    local l = wait_log(g, "the route error", 'route "boom:" key "boom:k1" client ' .. c.addr)
    c:close()
    assert.matches(ISO, l[1])
    assert.matches("ERROR ltask%.c:%d+: route \"boom:\" key \"boom:k1\" client 127%.0%.0%.1:%d+: lua error: "
      .. ".*/logs%-main%.lua:9: kaboom$", l[1])
    local tb = find_lines(g.output(), "ERROR ltask.c:", "stack traceback:")
    assert.is_true(#tb >= 1, g.output())
    assert.matches(ISO .. "stack traceback:$", tb[1])
  end)

  it("a route past its instruction budget or its route_timeout names route, key and client", function()
    local c = client(g.port)
    assert.matches("^SERVER_ERROR lua error: .*instruction budget exceeded", c:call("get spin:1\r\n"))
    assert.are.equal("SERVER_ERROR route timed out\r\n", c:call("get slow:1\r\n"))
    local spin = wait_log(g, "the budget line", 'route "spin:" key "spin:1" client ' .. c.addr
      .. ": lua error: ", "instruction budget exceeded")
    assert.matches("^[^ ]+ ERROR ", spin[1])
    local slow = wait_log(g, "the timeout line", 'route "slow:" key "slow:1" client ' .. c.addr
      .. ": route timed out")
    assert.matches("^[^ ]+ ERROR ", slow[1])
    c:close()
  end)

  it("no route for key and route returned no pool or response name key, route and client", function()
    local c = client(g.port)
    assert.are.equal("SERVER_ERROR no route for key\r\n", c:call("get zzz\r\n"))
    assert.are.equal("SERVER_ERROR route returned no pool or response\r\n",
      c:call("set none:x 0 0 1\r\nv\r\n"))
    local nr = wait_log(g, "no route", 'route none key "zzz" client ' .. c.addr .. ": no route for key")
    assert.matches(ISO, nr[1])
    assert.matches("^[^ ]+ WARN ", nr[1])
    local np = wait_log(g, "no pool or response", 'route "none:" key "none:x" client ' .. c.addr
      .. ": route returned no pool or response")
    assert.matches("^[^ ]+ ERROR ", np[1])
    c:close()
  end)

  it("a server killed under its pools: its lines name them", function()
    local c = client(g.port)
    assert.are.equal("STORED\r\n", c:call("set solo:a 0 0 1\r\nv\r\n"))
    m2.stop()
    -- m2 is in two pools with the same options: one backend, whose lines
    -- name both
    local label = "pool main,solo server " .. m2.addr
    H.wait_until(function()
      c:call("get solo:a\r\n")
      return count_lines(g.output(), label .. ": marked down after 2 failures in a row") >= 1
    end, 10, "m2 marked down")
    local log = g.output()
    assert.is_true(count_lines(log, "WARN backend.c:", label .. ": connect failed (connect: Connection refused)") >= 1,
      log)
    assert.matches("is down", c:call("get solo:a\r\n"))
    local down = wait_log(g, "a request failed on it", label .. " is down: get failed (key \"solo:a\" client "
      .. c.addr .. ")")
    assert.matches(ISO, down[1])
    c:close()
  end)

  it("a reload names its generation and what changed", function()
    local f = assert(io.open(g.config, "w"))
    f:write(config('local extra = memcache.pool { name = "extra", servers = { "' .. m1.addr .. '" } }'
      .. '\nmemcache.route { ["x:"] = extra, default = extra }'))
    f:close()
    H.run("kill -HUP " .. g.pid)
    local l = wait_log(g, "the reload's pool line", "reload: generation 2: pool extra added: ",
      "1 server: " .. m1.addr)
    assert.matches(ISO, l[1])
    wait_log(g, "the reload's routes line", 'reload: generation 2: routes: "x:" -> extra, default -> extra')
    assert.are.equal(0, count_lines(g.output(), "reload: generation 2: pool main"))
  end)

  it("every line of the log starts with the ISO 8601 time and the level", function()
    assert_all_prefixed(g.output())
  end)
end)

describe("logs: repeated errors", function()
  local dead_port

  local function start(env)
    dead_port = H.free_port()
    return H.start_gateway(string.format([[
gateway.settings { threads = 2 }
local dead = memcache.pool { name = "deadpool", servers = { "127.0.0.1:%d" },
                             failure_limit = 1, retry_timeout = 60 }
memcache.route {
  ["boom:"] = function(req) error("kaboom") end,
  ["dead:"] = dead,
}
]], dead_port), { env = env })
  end

  it("500 route errors: one line, then repeated 499 times (at exit); the key in a route's topic does not matter",
    function()
      local g = start()
      -- several connections: both workers count into the one key
      local conns = {}
      for i = 1, 4 do conns[i] = client(g.port) end
      for i = 1, 500 do
        local c = conns[i % 4 + 1]
        assert.matches("^SERVER_ERROR lua error:", c:call("get boom:" .. i .. "\r\n"))
      end
      -- and 300 requests to a dead server, one connection: one connect
      -- failure, and then it is down
      local c = conns[1]
      for i = 1, 300 do
        assert.matches("^SERVER_ERROR backend", c:call("get dead:" .. i .. "\r\n"))
      end
      for _, cc in ipairs(conns) do cc:close() end
      local before = g.output()
      assert.are.equal(1, count_lines(before, "lua error:", "kaboom"), before)
      assert.are.equal(0, count_lines(before, "repeated"), before)
      g.stop()
      local log = g.output()
      assert.is_truthy(log:find("stopped", 1, true), log)
      assert.are.equal(1, count_logged(log, 'route "boom:" key "boom:', "lua error:", "kaboom"), log)
      local rep = find_lines(log, "repeated")
      local errs = find_lines(log, "ERROR ltask.c:", "repeated 499 times in the last ",
        ' s: route "boom:" key "boom:')
      assert.are.equal(1, #errs, log)
      assert.are.equal(1, count_lines(log, "WARN backend.c:", "pool deadpool server 127.0.0.1:" .. dead_port
        .. ": connect failed (connect: Connection refused)"), log)
      assert.are.equal(1, count_lines(log, "pool deadpool server 127.0.0.1:" .. dead_port
        .. ": marked down after 1 failure in a row"), log)
      assert.are.equal(1, count_logged(log, "pool deadpool server 127.0.0.1:" .. dead_port
        .. " is down: get failed (key \"dead:2\" client 127.0.0.1:"), log)
      assert.are.equal(1, count_lines(log, "repeated 298 times in the last ",
        "pool deadpool server 127.0.0.1:" .. dead_port .. " is down: get failed"), log)
      assert.are.equal(2, #rep, log)
      assert_all_prefixed(log)
    end)

  it("the count is logged once the window is over (GATEWAY_LOG_WINDOW), then a new window starts",
    function()
      local g = start({ GATEWAY_LOG_WINDOW = "0.5" })
      local c = client(g.port)
      for i = 1, 20 do c:call("get boom:" .. i .. "\r\n") end
      local l = wait_log(g, "the count", "repeated 19 times in the last ", 'route "boom:" key "boom:1" client')
      assert.matches("^[^ ]+ ERROR ltask%.c:%d+: repeated 19 times in the last %d%.%d s: ", l[1])
      -- the next one is logged whole again
      c:call("get boom:again\r\n")
      wait_log(g, "a new window", 'route "boom:" key "boom:again" client ' .. c.addr .. ": lua error:")
      c:close()
      g.stop()
      local log = g.output()
      assert.are.equal(2, count_logged(log, "lua error:", "kaboom"), log)
      assert.are.equal(1, count_lines(log, "repeated"), log)
      assert_all_prefixed(log)
    end)

  it("a bad GATEWAY_LOG_WINDOW is refused", function()
    local out, ok = H.run("GATEWAY_LOG_WINDOW=soon " .. H.quote(H.gateway_bin) .. " --check x.lua 2>&1")
    assert.is_false(ok)
    assert.is_truthy(out:find("GATEWAY_LOG_WINDOW", 1, true), out)
  end)
end)
