-- reload_spec.lua -- hot reload: SIGHUP, or saving the config (or a module
-- it requires), switches every worker to a freshly loaded config; a config
-- that fails in any way changes nothing.
--
-- The contract under test:
--   * `kill -HUP` reloads; so does saving the config file or a module it
--     `require`s (the gateway watches them and reloads after a short
--     debounce), with no signal;
--   * the new config is loaded whole, in a fresh Lua state, before anything
--     switches.  A syntax error, a runtime error at the top level, a bad pool
--     or a listen address that cannot be bound leaves the old config
--     serving, and the error is logged as file:line: message;
--   * a reload never closes a client connection; a request that started
--     under the old config finishes under it; a backend whose address and
--     options are unchanged keeps its open connections;
--   * gateway.listen addresses that are new are bound, those removed are
--     closed (an open connection on them goes on);
--   * `stats` shows gw_config_generation, gw_reloads, gw_reload_failures,
--     gw_last_reload, gw_last_reload_result and gw_last_reload_error;
--   * req.conn starts empty after a reload;
--   * ./gateway --check FILE touches no running gateway.
--
-- Every gateway here has a folder of its own under tests/tmp holding its
-- config and modules and nothing else, so files that other specs write
-- there never concern it; its log is outside that folder.  Every wait is
-- for a condition, with a deadline.  Where a key ends up is checked on the
-- memcached servers themselves, through one persistent connection each, so
-- that memcached's own total_connections counts only the gateway's
-- connections.
--
-- Run from the repo root:
--   busted --lpath='./lua/?.lua;./lua/?/init.lua;./tests/spec/?.lua' tests/spec/reload_spec.lua
local H = require "harness"
local write_file = H.write_file
local wait_for = H.wait_for
local socket = require "socket"

local DEADLINE = 5        -- for any one reply
local RELOAD_DEADLINE = 3 -- for a reload to be recorded in stats
local EFFECT_DEADLINE = 1 -- for a reload to take effect (the big test)
local WATCH_DEADLINE = 3  -- for a saved file to be noticed and loaded
local THREADS = 2

local RAW = { timeout = DEADLINE, whole_reply = true }
local show = H.show

local function set_cmd(key, value, flags)
  return string.format("set %s %d 0 %d\r\n%s\r\n", key, flags or 0, #value, value)
end

local function value_reply(key, value, flags)
  return string.format("VALUE %s %d %d\r\n%s\r\nEND\r\n", key, flags or 0, #value, value)
end

-- Save a file the way many editors do: write a new file beside it, then
-- rename it over the old one.
local function write_file_renamed(path, text)
  local tmp = path .. ".new"
  write_file(tmp, text)
  assert(os.rename(tmp, path))
end

-- text with one more line appended; returns the text and that line's number.
local function append_line(text, line)
  local _, n = text:gsub("\n", "")
  return text .. line .. "\n", n + 1
end

-- Things to undo after each test, last first.
local cleanups = {}
local function defer(fn) cleanups[#cleanups + 1] = fn end

-- The STAT lines of a stats reply, name -> the rest of the line.
local function parse_stats(rep)
  local s = {}
  for line in rep:gmatch("([^\n]*)\n") do
    local k, v = (line:gsub("\r$", "")):match("^STAT (%S+) ?(.*)$")
    if k then s[k] = v end
  end
  return s
end

local function num(s, name)
  local v = tonumber(s[name])
  if v == nil then
    error(string.format("stats: no numeric %s (got %s)", name, tostring(s[name])), 2)
  end
  return v
end

-- A real memcached and a persistent connection to it.  m.prefix is the
-- key prefix the configs below route to it.
local function memcached(prefix)
  local m = H.start_memcached()
  defer(function() m.stop() end)
  m.prefix = prefix
  m.mon = H.connect(m.port, RAW)
  defer(function() m.mon:close() end)
  function m.stats() return parse_stats(m.mon:call("stats\r\n")) end
  function m.get(key) return m.mon:call("get " .. key .. "\r\n") end
  function m.has(key, value) return m.get(key) == value_reply(key, value) end
  function m.set(key, value)
    assert.are.equal("STORED\r\n", m.mon:call(set_cmd(key, value)))
  end
  m.base_conns = num(m.stats(), "curr_connections") -- with only m.mon connected
  return m
end

-- The gateway, with its config at <its folder>/gateway.lua.
-- opts.port: the port to wait for (default: a free one, passed with -l);
-- opts.no_l: no -l, the config's gateway.listen is used (it must listen on
-- opts.port); opts.files: more files for its folder, name -> text.
local function start_gateway(text, opts)
  opts = opts or {}
  local port = opts.port or H.free_port()
  local dir = string.format("%s/reload-%d", H.tmpdir, port)
  H.run("rm -rf " .. H.quote(dir) .. " && mkdir -p " .. H.quote(dir))
  for name, body in pairs(opts.files or {}) do write_file(dir .. "/" .. name, body) end
  local path = dir .. "/gateway.lua"
  write_file(path, text)
  local log = string.format("%s/reload-gateway-%d.log", H.tmpdir, port)
  local cmd = string.format("exec %s %s %s", H.quote(H.gateway_bin),
    opts.no_l and "" or ("-l 127.0.0.1:" .. port), H.quote(path))
  local pid = tonumber(H.run("(" .. cmd .. ") >" .. H.quote(log) .. " 2>&1 & echo $!"):match("%d+"))
  assert(pid, "could not start the gateway")
  local g = { pid = pid, port = port, dir = dir, config = path, log = log }
  function g.output() return H.read_file(log) end
  function g.alive() return H.alive(pid) end
  function g.stop()
    if g.admin then g.admin:close(); g.admin = nil end
    if not H.alive(pid) then return end
    H.run("kill -TERM " .. pid .. " 2>/dev/null")
    if not pcall(H.wait_until, function() return not H.alive(pid) end, 5) then
      H.run("kill -KILL " .. pid .. " 2>/dev/null")
    end
  end
  defer(function()
    local died = not g.alive()
    g.stop()
    H.run("rm -rf " .. H.quote(dir)) -- the log stays
    -- a test that passed while the gateway died still fails
    assert(not died, "the gateway died:\n" .. g.output())
  end)
  H.wait_until(function()
    if not H.alive(pid) then error("the gateway exited:\n" .. g.output(), 0) end
    return H.can_connect(port)
  end, 10, "the gateway on port " .. port)
  g.admin = H.connect(port, RAW)
  function g.stats()
    if not H.alive(pid) then error("the gateway died:\n" .. g.output(), 2) end
    return parse_stats(g.admin:call("stats\r\n"))
  end
  function g.hup() H.run("kill -HUP " .. pid) end
  function g.save(t) write_file(path, t) end
  return g
end

local function stats_line(s)
  return string.format("generation=%s reloads=%s failures=%s last=%s result=%s error=%s",
    tostring(s.gw_config_generation), tostring(s.gw_reloads), tostring(s.gw_reload_failures),
    tostring(s.gw_last_reload), tostring(s.gw_last_reload_result),
    tostring(s.gw_last_reload_error))
end

-- Wait until the generation has passed `before`'s (a reload succeeded).
local function wait_generation(g, before, timeout, what)
  local gen0 = num(before, "gw_config_generation")
  return wait_for(function()
    local s = g.stats()
    if num(s, "gw_config_generation") > gen0 then return s end
    return nil, stats_line(s)
  end, timeout or RELOAD_DEADLINE, what or "a successful reload")
end

-- Wait until a failed reload has been recorded since `before`, with an
-- error that contains `needle` (plain text).
local function wait_failure(g, before, needle, timeout)
  local f0 = num(before, "gw_reload_failures")
  return wait_for(function()
    local s = g.stats()
    if num(s, "gw_reload_failures") > f0 and (s.gw_last_reload_error or ""):find(needle, 1, true) then
      return s
    end
    return nil, stats_line(s)
  end, timeout or RELOAD_DEADLINE, "a failed reload whose error names " .. needle)
end

-- Make every worker open its connection to each server: fresh client
-- connections (the kernel spreads them over the workers) each store a key
-- on every server, until every server counts `threads` connections more
-- than m.mon alone.
local function warm_up(g, servers, threads)
  local n = 0
  wait_for(function()
    n = n + 1
    local c = H.connect(g.port, RAW)
    for _, m in ipairs(servers) do
      assert.are.equal("STORED\r\n", c:call(set_cmd(m.prefix .. "warm" .. n, "w")))
    end
    c:close()
    local seen = {}
    for _, m in ipairs(servers) do
      local conns = num(m.stats(), "curr_connections") - m.base_conns
      seen[#seen + 1] = m.addr .. ": " .. conns
      if conns < threads then return nil, table.concat(seen, ", ") end
    end
    return true
  end, 10, "every worker connected to every server")
end

-- A config over servers A and B: "a:" keys go to A, "b:" keys to B, "mv:"
-- keys to `mv` ("a" or "b"), any other key to A.  "conn:" counts this
-- connection's requests in req.conn, "peek:" shows that count, "who:"
-- answers the listener the request came in on (req.listener).  extra is
-- Lua placed after the pools (it may use a and b).
local function config_ab(A, B, mv, extra, threads)
  return string.format([[
-- reload_spec: mv -> %s
gateway.settings { threads = %d }
local a = memcache.pool { servers = { "%s" }, timeout = 2 }
local b = memcache.pool { servers = { "%s" }, timeout = 2 }
%s
memcache.route {
  ["a:"] = a,
  ["b:"] = b,
  ["mv:"] = %s,
  ["conn:"] = function(req)
    local c = req.conn
    c.n = (c.n or 0) + 1
    return memcache.hit(tostring(c.n))
  end,
  ["peek:"] = function(req) return memcache.hit(tostring(req.conn.n or 0)) end,
  ["who:"] = function(req) return memcache.hit(req.listener) end,
  default = a,
}
]], mv, threads or THREADS, A.addr, B.addr, extra or "", mv)
end

-- Client connections that keep storing and reading keys on A ("a:") and B
-- ("b:"): every reply must be exact.
local function clients(g, n)
  local cs = { n = 0, probes = 0 }
  for j = 1, n do cs[j] = H.connect(g.port, RAW) end
  defer(function() for j = 1, n do cs[j]:close() end end)
  -- One round: each connection sets a key on A and one on B and reads both
  -- back, pipelined.
  function cs.round()
    cs.n = cs.n + 1
    for j = 1, n do
      local ka = string.format("a:c%d-%d", j, cs.n)
      local kb = string.format("b:c%d-%d", j, cs.n)
      local va, vb = "A" .. j .. "." .. cs.n, "B" .. j .. "." .. cs.n
      local got = cs[j]:calls(set_cmd(ka, va) .. set_cmd(kb, vb)
        .. "get " .. ka .. "\r\nget " .. kb .. "\r\n", 4)
      assert.are.same({ "STORED\r\n", "STORED\r\n", value_reply(ka, va), value_reply(kb, vb) }, got)
    end
  end
  -- Each connection stores a fresh "mv:" key: true when every one of them
  -- is on `want` (and not on `other`).
  function cs.mv_on(want, other)
    local where = {}
    for j = 1, n do
      cs.probes = cs.probes + 1
      local k = "mv:probe" .. cs.probes
      assert.are.equal("STORED\r\n", cs[j]:call(set_cmd(k, "p")))
      local on_want, on_other = want.has(k, "p"), other.has(k, "p")
      assert(on_want ~= on_other, k .. " is on both servers or on neither")
      where[j] = on_want and want.addr or other.addr
    end
    for j = 1, n do
      if where[j] ~= want.addr then return nil, "mv: keys went to " .. table.concat(where, " ") end
    end
    return true
  end
  function cs.assert_on(want, other)
    local ok, detail = cs.mv_on(want, other)
    assert(ok, "mv: keys should go to " .. want.addr .. ": " .. tostring(detail))
  end
  return cs
end

-- Run the gateway binary to completion; returns stdout .. stderr, exit status.
local function run_gateway(args)
  local out = H.run(string.format("timeout 10 %s %s 2>&1; echo \"EXIT=$?\"",
    H.quote(H.gateway_bin), args))
  local status = tonumber(out:match("EXIT=(%d+)\n$"))
  return (out:gsub("EXIT=%d+\n$", "")), status
end

describe("hot reload", function()
  after_each(function()
    local errs = {}
    for i = #cleanups, 1, -1 do
      local ok, err = pcall(cleanups[i])
      if not ok then errs[#errs + 1] = tostring(err) end
    end
    cleanups = {}
    assert(#errs == 0, table.concat(errs, "\n"))
  end)

  it("a fresh gateway reports generation 1 and no reload", function()
    local A, B = memcached("a:"), memcached("b:")
    local g = start_gateway(config_ab(A, B, "a"))
    local s = g.stats()
    assert.are.equal(1, num(s, "gw_config_generation"))
    assert.are.equal(0, num(s, "gw_reloads"))
    assert.are.equal(0, num(s, "gw_reload_failures"))
    assert.are.equal(0, num(s, "gw_last_reload"))
    assert.are.equal("none", s.gw_last_reload_result)
    assert.is_true(s.gw_last_reload_error == nil or s.gw_last_reload_error == "",
      "gw_last_reload_error: " .. tostring(s.gw_last_reload_error))
  end)

  it("12 reloads in a row under steady traffic: each takes effect within a second, "
    .. "no request fails, no connection drops, no new backend connection", function()
    local A, B = memcached("a:"), memcached("b:")
    local g = start_gateway(config_ab(A, B, "a"))
    warm_up(g, { A, B }, THREADS)
    local cs = clients(g, 6)
    cs.round()
    cs.assert_on(A, B)
    local totalA = num(A.stats(), "total_connections")
    local totalB = num(B.stats(), "total_connections")
    local connects = num(g.stats(), "gw_backend_connects")
    local t0 = os.time()

    for i = 1, 12 do
      local to, from, name = B, A, "b"
      if i % 2 == 0 then to, from, name = A, B, "a" end
      -- (saved by a rename, so the watcher never reads a half-written file)
      write_file_renamed(g.config, config_ab(A, B, name))
      g.hup()
      wait_for(function()
        cs.round()
        return cs.mv_on(to, from)
      end, EFFECT_DEADLINE, string.format("reload %d (mv: -> %s) to take effect", i, to.addr))
      -- and it stays so
      cs.round()
      cs.assert_on(to, from)
    end

    -- the same sockets still work
    cs.round()
    for j = 1, #cs do assert.are.equal("VERSION ", cs[j]:call("version\r\n"):sub(1, 8)) end
    -- the workers' backend connections survived every reload
    assert.are.equal(totalA, num(A.stats(), "total_connections"), "new connections to " .. A.addr)
    assert.are.equal(totalB, num(B.stats(), "total_connections"), "new connections to " .. B.addr)
    -- (the watcher may still reload the last save once more: wait until
    -- the counters agree)
    local s = wait_for(function()
      local st = g.stats()
      if num(st, "gw_config_generation") == 1 + num(st, "gw_reloads") then return st end
      return nil, stats_line(st)
    end, RELOAD_DEADLINE, "generation = 1 + reloads")
    assert.are.equal(connects, num(s, "gw_backend_connects"))
    assert.is_true(num(s, "gw_reloads") >= 12, stats_line(s))
    assert.are.equal(0, num(s, "gw_reload_failures"), stats_line(s))
    assert.are.equal("ok", s.gw_last_reload_result)
    assert.is_true(num(s, "gw_last_reload") >= t0 - 1 and num(s, "gw_last_reload") <= os.time() + 1,
      stats_line(s))
    assert.is_true(g.alive())
  end)

  it("refuses a config with a syntax error, a top-level runtime error or a bad pool, "
    .. "keeps the old one serving, then takes a good one", function()
    local A, B = memcached("a:"), memcached("b:")
    local g = start_gateway(config_ab(A, B, "a"))
    local cs = clients(g, 4)
    -- the log names the whole path; stats, which clients read, the file alone
    local where = g.dir:match("[^/]+$") .. "/gateway.lua:"
    -- each broken config would send mv: to B if any of it took effect
    local good_b = config_ab(A, B, "b")
    local broken = {}
    broken[1] = { "a syntax error", append_line(good_b, "local x = = 1") }
    broken[2] = { "a runtime error at the top level", append_line(good_b, "local t; t.x = 1") }
    broken[3] = { "a bad pool",
      append_line(good_b, string.format('local bad = memcache.pool { servers = { "%s" }, hash = "nope" }', A.addr)) }
    broken[4] = { "a runtime error before the routes", "error(\"refused on purpose\")\n" .. good_b, 1 }
    local patterns = { "unexpected symbol", "attempt to index", "nope", "refused on purpose" }

    for i, case in ipairs(broken) do
      local name, text, line = case[1], case[2], case[3]
      local before = g.stats()
      local t0 = os.time()
      g.save(text)
      g.hup()
      local s = wait_failure(g, before, "gateway.lua:" .. line .. ": ")
      assert.is_nil(s.gw_last_reload_error:find(g.dir, 1, true), "a directory in stats")
      assert.are.equal(1, num(s, "gw_config_generation"), name .. ": " .. stats_line(s))
      assert.are.equal(0, num(s, "gw_reloads"), name .. ": " .. stats_line(s))
      assert.are.equal("failed", s.gw_last_reload_result, name)
      assert.is_truthy(s.gw_last_reload_error:match(patterns[i]),
        name .. ": the error does not mention " .. patterns[i] .. ": " .. s.gw_last_reload_error)
      assert.is_true(num(s, "gw_last_reload") >= t0 - 1 and num(s, "gw_last_reload") <= os.time() + 1,
        stats_line(s))
      -- logged with file:line
      assert.is_truthy(g.output():find(where .. line .. ": ", 1, true),
        name .. ": the log does not name " .. where .. line .. ":\n" .. g.output())
      -- the old config still serves, on the same connections
      cs.round()
      cs.assert_on(A, B)
    end

    local before = g.stats()
    g.save(good_b)
    g.hup()
    local s = wait_generation(g, before)
    assert.are.equal("ok", s.gw_last_reload_result)
    assert.are.equal(num(s, "gw_config_generation"), 1 + num(s, "gw_reloads"), stats_line(s))
    assert.is_true(num(s, "gw_reload_failures") >= #broken, stats_line(s))
    wait_for(function() return cs.mv_on(B, A) end, EFFECT_DEADLINE, "mv: keys on B")
    cs.round()
  end)

  it("saving the config file reloads it, with no signal", function()
    local A, B = memcached("a:"), memcached("b:")
    local g = start_gateway(config_ab(A, B, "a"))
    local cs = clients(g, 4)
    cs.assert_on(A, B)

    -- (each save changes the file's size: the same-size case is the next test's)
    local before = g.stats()
    g.save(config_ab(A, B, "b") .. "-- save 1\n")
    wait_for(function() return cs.mv_on(B, A) end, WATCH_DEADLINE, "the saved config (mv: -> B)")
    local s = wait_generation(g, before)
    assert.are.equal("ok", s.gw_last_reload_result)

    before = s
    g.save(config_ab(A, B, "a") .. "-- save 22\n")
    wait_for(function() return cs.mv_on(A, B) end, WATCH_DEADLINE, "the saved config (mv: -> A)")
    wait_generation(g, before)

    -- a broken save is refused the same way
    local text, line = append_line(config_ab(A, B, "b"), "local x = = 1")
    before = g.stats()
    g.save(text)
    s = wait_failure(g, before, "gateway.lua:" .. line .. ": ", WATCH_DEADLINE)
    assert.are.equal("failed", s.gw_last_reload_result)
    assert.are.equal(num(before, "gw_config_generation"), num(s, "gw_config_generation"))
    cs.assert_on(A, B)
    cs.round()
  end)

  -- stat() times count whole seconds: a change that keeps the size and
  -- falls in the second the gateway looked at the file is seen only by
  -- comparing finer times (or the content).
  it("a save right after start that keeps the file's size is noticed too", function()
    local A, B = memcached("a:"), memcached("b:")
    local g = start_gateway(config_ab(A, B, "a"))
    local cs = clients(g, 2)
    local text = config_ab(A, B, "b")
    assert.are.equal(#config_ab(A, B, "a"), #text)
    g.save(text)
    wait_for(function() return cs.mv_on(B, A) end, WATCH_DEADLINE, "the saved config (mv: -> B)")
    cs.round()
  end)

  it("saving the config as an editor does (a new file renamed over it) reloads, every time", function()
    local A, B = memcached("a:"), memcached("b:")
    local g = start_gateway(config_ab(A, B, "a"))
    local cs = clients(g, 2)
    for i, to in ipairs({ B, A, B }) do
      local from = to == A and B or A
      write_file_renamed(g.config, config_ab(A, B, to == A and "a" or "b"))
      wait_for(function() return cs.mv_on(to, from) end, WATCH_DEADLINE,
        string.format("rename-save %d (mv: -> %s)", i, to.addr))
    end
    cs.round()
  end)

  it("saving a module the config requires reloads", function()
    local A, B = memcached("a:"), memcached("b:")
    local extra = 'local pick = require "reload_pick"\nlocal picked = pick.target == "b" and b or a'
    local g = start_gateway(config_ab(A, B, "picked", extra),
      { files = { ["reload_pick.lua"] = 'return { target = "a" }\n' } })
    local module = g.dir .. "/reload_pick.lua"
    local cs = clients(g, 4)
    cs.assert_on(A, B)

    local before = g.stats()
    write_file(module, 'return { target = "b" } -- 1\n')
    wait_for(function() return cs.mv_on(B, A) end, WATCH_DEADLINE, "the saved module (mv: -> B)")
    local s = wait_generation(g, before)
    assert.are.equal("ok", s.gw_last_reload_result)

    -- a broken module: refused, its file:line reported, B still used
    before = s
    write_file(module, '\nreturn { target = = "a" } -- 22\n')
    s = wait_failure(g, before, "reload_pick.lua:2:", WATCH_DEADLINE)
    assert.are.equal(num(before, "gw_config_generation"), num(s, "gw_config_generation"))
    cs.assert_on(B, A)

    before = s
    write_file(module, 'return { target = "a" } -- 333\n')
    wait_for(function() return cs.mv_on(A, B) end, WATCH_DEADLINE, "the mended module (mv: -> A)")
    wait_generation(g, before)
    cs.round()
  end)

  -- A config for the listener tests: it listens on `ports`, each named
  -- "l<port>".
  local function config_listen(A, B, ports, mv)
    local lines = {}
    for _, p in ipairs(ports) do
      lines[#lines + 1] = string.format('gateway.listen { "127.0.0.1:%d", name = "l%d" }', p, p)
    end
    return table.concat(lines, "\n") .. "\n" .. config_ab(A, B, mv)
  end

  local function who(c, port)
    return c:call("get who:x\r\n") == value_reply("who:x", "l" .. port)
  end

  local function refused(port)
    for _ = 1, 20 do
      if H.can_connect(port) then return false end
    end
    return true
  end

  it("binds a listen address added by a reload and closes one removed; "
    .. "open connections on a removed one go on", function()
    local A, B = memcached("a:"), memcached("b:")
    local p1, p2, p3 = H.free_port(), H.free_port(), H.free_port()
    local g = start_gateway(config_listen(A, B, { p1 }, "a"), { port = p1, no_l = true })
    local c1 = H.connect(p1, RAW)
    assert.is_true(who(c1, p1))
    assert.is_falsy(H.can_connect(p2))

    -- add p2
    local before = g.stats()
    g.save(config_listen(A, B, { p1, p2 }, "a"))
    g.hup()
    wait_generation(g, before)
    H.wait_until(function() return H.can_connect(p2) end, RELOAD_DEADLINE, "the new listener on " .. p2)
    local c2 = H.connect(p2, RAW)
    assert.is_true(who(c2, p2))
    assert.is_true(who(c1, p1))

    -- remove p2: new connections are refused, c2 goes on
    before = g.stats()
    g.save(config_listen(A, B, { p1 }, "a"))
    g.hup()
    wait_generation(g, before)
    H.wait_until(function() return not H.can_connect(p2) end, RELOAD_DEADLINE, "port " .. p2 .. " closed")
    assert.is_true(refused(p2), "port " .. p2 .. " still accepts some connections")
    assert.are.same({ "STORED\r\n", value_reply("a:onc2", "v2") },
      c2:calls(set_cmd("a:onc2", "v2") .. "get a:onc2\r\n", 2))
    assert.is_true(A.has("a:onc2", "v2"))
    assert.is_true(who(c1, p1))

    -- move off the first address altogether: p1 closes, p3 opens, and c1
    -- and the stats connection (both on p1) go on
    before = g.stats()
    g.save(config_listen(A, B, { p3 }, "a"))
    g.hup()
    wait_generation(g, before)
    H.wait_until(function() return H.can_connect(p3) end, RELOAD_DEADLINE, "the new listener on " .. p3)
    H.wait_until(function() return not H.can_connect(p1) end, RELOAD_DEADLINE, "port " .. p1 .. " closed")
    assert.is_true(refused(p1), "port " .. p1 .. " still accepts some connections")
    assert.are.same({ "STORED\r\n", value_reply("a:onc1", "v1") },
      c1:calls(set_cmd("a:onc1", "v1") .. "get a:onc1\r\n", 2))
    assert.are.same({ "STORED\r\n", value_reply("a:onc2b", "v2") },
      c2:calls(set_cmd("a:onc2b", "v2") .. "get a:onc2b\r\n", 2))
    local c3 = H.connect(p3, RAW)
    assert.is_true(who(c3, p3))
    c1:close()
    c2:close()
    c3:close()
    assert.are.equal("ok", g.stats().gw_last_reload_result)
  end)

  it("a listen address that cannot be bound fails the reload and changes nothing", function()
    local A, B = memcached("a:"), memcached("b:")
    local p1, p3 = H.free_port(), H.free_port()
    local g = start_gateway(config_listen(A, B, { p1 }, "a"), { port = p1, no_l = true })
    -- luasocket binds without SO_REUSEPORT: the gateway cannot share the
    -- port.  (Made after the gateway started, which would otherwise
    -- inherit the socket.)
    local blocker = assert(socket.bind("127.0.0.1", 0))
    local _, pb = blocker:getsockname()
    pb = tonumber(pb)
    defer(function() blocker:close() end)
    local cs = clients(g, 2)
    cs.assert_on(A, B)

    -- p3 (free) comes before the blocked port: it must not be left bound
    local before = g.stats()
    g.save(config_listen(A, B, { p1, p3, pb }, "b"))
    g.hup()
    local s = wait_failure(g, before, tostring(pb))
    assert.are.equal(1, num(s, "gw_config_generation"), stats_line(s))
    assert.are.equal(0, num(s, "gw_reloads"), stats_line(s))
    assert.are.equal("failed", s.gw_last_reload_result)
    assert.is_truthy(g.output():find(tostring(pb), 1, true), "the log does not name port " .. pb .. ":\n" .. g.output())
    assert.is_true(refused(p3), "port " .. p3 .. " of the failed config accepts connections")
    cs.assert_on(A, B)
    cs.round()
    assert.is_truthy(H.can_connect(p1))
    local c = H.connect(p1, RAW)
    assert.is_true(who(c, p1))
    c:close()

    -- once the port is free, the same file (no save) loads with SIGHUP
    blocker:close()
    before = g.stats()
    g.hup()
    s = wait_generation(g, before)
    assert.are.equal("ok", s.gw_last_reload_result)
    H.wait_until(function() return H.can_connect(pb) and H.can_connect(p3) end, RELOAD_DEADLINE,
      "listeners on " .. p3 .. " and " .. pb)
    wait_for(function() return cs.mv_on(B, A) end, EFFECT_DEADLINE, "mv: keys on B")
    c = H.connect(pb, RAW)
    assert.is_true(who(c, pb))
    c:close()
    cs.round()
  end)

  it("a no-op reload opens no backend connection, keeps pipelined requests whole "
    .. "and starts req.conn afresh", function()
    local A, B = memcached("a:"), memcached("b:")
    local pc = H.free_port() -- the config's own address: -l overrides it, before and after
    local g = start_gateway(config_ab(A, B, "a", string.format('gateway.listen "127.0.0.1:%d"', pc)))
    warm_up(g, { A, B }, THREADS)
    local totalA = num(A.stats(), "total_connections")
    local totalB = num(B.stats(), "total_connections")
    local before = g.stats()
    local connects = num(before, "gw_backend_connects")

    local c = H.connect(g.port, RAW)
    assert.are.same({ value_reply("conn:x", "1"), value_reply("conn:x", "2"), value_reply("peek:x", "2") },
      c:calls("get conn:x\r\nget conn:x\r\nget peek:x\r\n", 3))

    -- pipelined batches on 4 connections, the signal in between
    local conns = {}
    for j = 1, 4 do conns[j] = H.connect(g.port, RAW) end
    local function batch(j, tag)
      local out, want = {}, {}
      for k = 1, 50 do
        local key = string.format("%s:%s-%d-%d", k % 2 == 0 and "a" or "b", tag, j, k)
        local v = tag .. j .. "." .. k
        out[#out + 1] = set_cmd(key, v) .. "get " .. key .. "\r\n"
        want[#want + 1] = "STORED\r\n"
        want[#want + 1] = value_reply(key, v)
      end
      return table.concat(out), want
    end
    local wants = {}
    for j = 1, 4 do
      local bytes, want = batch(j, "pre")
      conns[j]:send(bytes)
      wants[j] = want
    end
    g.hup()
    for j = 1, 4 do
      local bytes, want = batch(j, "post")
      conns[j]:send(bytes)
      for _, w in ipairs(want) do wants[j][#wants[j] + 1] = w end
    end
    for j = 1, 4 do
      for k, w in ipairs(wants[j]) do
        local got = conns[j]:reply()
        if got ~= w then
          error(string.format("connection %d, reply %d: want %s, got %s", j, k, show(w), show(got)))
        end
      end
    end

    local s = wait_generation(g, before)
    assert.are.equal(2, num(s, "gw_config_generation"), stats_line(s))
    assert.are.equal(1, num(s, "gw_reloads"), stats_line(s))
    assert.are.equal(0, num(s, "gw_reload_failures"), stats_line(s))
    assert.are.equal("ok", s.gw_last_reload_result)

    -- the new config's req.conn for the same connection is empty
    wait_for(function()
      local got = c:call("get peek:x\r\n")
      if got == value_reply("peek:x", "0") then return true end
      return nil, show(got)
    end, EFFECT_DEADLINE, "req.conn empty on the same connection after the reload")
    assert.are.equal(value_reply("conn:x", "1"), c:call("get conn:x\r\n"))

    -- no new backend connection, by memcached's count and the gateway's
    assert.are.equal(totalA, num(A.stats(), "total_connections"), "new connections to " .. A.addr)
    assert.are.equal(totalB, num(B.stats(), "total_connections"), "new connections to " .. B.addr)
    assert.are.equal(connects, num(g.stats(), "gw_backend_connects"))
    assert.is_falsy(H.can_connect(pc), "the config's listen address is bound despite -l")
    for j = 1, 4 do conns[j]:close() end
    c:close()
  end)

  it("--check validates files without touching the running gateway", function()
    local A, B = memcached("a:"), memcached("b:")
    local g = start_gateway(config_ab(A, B, "a"))
    local cs = clients(g, 1)
    local before = g.stats()

    local out, status = run_gateway("--check " .. H.quote(g.config))
    assert.are.equal(0, status, out)
    assert.are.equal(g.config .. ": ok\n", out)

    -- other files, in a folder of their own
    local dir = g.dir .. "-check"
    H.run("rm -rf " .. H.quote(dir) .. " && mkdir -p " .. H.quote(dir))
    local good = dir .. "/good.lua"
    write_file(good, config_ab(A, B, "b"))
    out, status = run_gateway("--check " .. H.quote(good))
    assert.are.equal(0, status, out)
    assert.are.equal(good .. ": ok\n", out)

    local bad = dir .. "/bad.lua"
    local text, line = append_line(config_ab(A, B, "b"), "local t; t.x = 1")
    write_file(bad, text)
    out, status = run_gateway("--check " .. H.quote(bad))
    assert.are.equal(1, status, out)
    assert.is_truthy(out:match("^" .. bad:gsub("%p", "%%%0") .. ":" .. line .. ": [^\n]*attempt to index[^\n]*\n$"),
      "want " .. bad .. ":" .. line .. ": attempt to index ..., got:\n" .. out)

    local bad2 = dir .. "/bad2.lua"
    write_file(bad2, "local a = memcache.internal {}\n\nmemcache.route { default = a }}\n")
    out, status = run_gateway("--check " .. H.quote(bad2))
    assert.are.equal(1, status, out)
    assert.is_truthy(out:find(bad2 .. ":3: ", 1, true), out)

    -- nothing changed in the running gateway
    local s = g.stats()
    assert.are.equal(1, num(s, "gw_config_generation"), stats_line(s))
    assert.are.equal(0, num(s, "gw_reloads") + num(s, "gw_reload_failures"), stats_line(s))
    assert.are.equal("none", s.gw_last_reload_result)
    cs.assert_on(A, B)
    cs.round()
    -- a barrier: a reload asked for now is the first and only one
    g.hup()
    s = wait_generation(g, before)
    assert.are.equal(2, num(s, "gw_config_generation"), stats_line(s))
    assert.are.equal(1, num(s, "gw_reloads"), stats_line(s))
    assert.are.equal(0, num(s, "gw_reload_failures"), stats_line(s))
    H.run("rm -rf " .. H.quote(dir))
  end)

  -- A backend that logs each key it is asked for at once ("got KEY"), then
  -- holds every reply until the file `release` exists; its value is "slow".
  local function slow_server(release)
    local port = H.free_port()
    local log = string.format("%s/reload-slow-%d.log", H.tmpdir, port)
    local code = [[
import os, queue, socket, sys, threading, time
port, log, release = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(64)
lock = threading.Lock()

def note(msg):
    with lock:
        with open(log, "a") as f:
            f.write(msg + "\n")

def writer(c, q):
    while True:
        out = q.get()
        while not os.path.exists(release):
            time.sleep(0.01)
        c.sendall(out)

def serve(c):
    q = queue.Queue()
    threading.Thread(target=writer, args=(c, q), daemon=True).start()
    buf = b""
    while True:
        d = c.recv(65536)
        if not d:
            return
        buf += d
        while b"\r\n" in buf:
            line, buf = buf.split(b"\r\n", 1)
            words = line.decode("latin-1").split()
            if not words or words[0] not in ("get", "gets"):
                q.put(b"ERROR\r\n")
                continue
            out = b""
            for k in words[1:]:
                note("got " + k)
                cas = b" 1" if words[0] == "gets" else b""
                out += b"VALUE " + k.encode("latin-1") + b" 0 4" + cas + b"\r\nslow\r\n"
            q.put(out + b"END\r\n")

while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
]]
    local path = H.write_config(code, "reload-slow-" .. port .. ".py")
    write_file(log, "")
    local pid = tonumber(H.run(string.format("%s %s %d %s %s >/dev/null 2>&1 & echo $!",
      H.python, H.quote(path), port, H.quote(log), H.quote(release))):match("%d+"))
    defer(function() H.run("kill -9 " .. pid .. " 2>/dev/null") end)
    H.wait_until(function() return H.can_connect(port) end, 5, "the slow server")
    return { port = port, addr = "127.0.0.1:" .. port, log = function() return H.read_file(log) end }
  end

  it("a request in flight across a reload finishes under the old config", function()
    local A = memcached("a:")
    local release = string.format("%s/reload-release-%d", H.tmpdir, H.free_port())
    os.remove(release)
    defer(function() os.remove(release) end)
    local slow = slow_server(release)
    local function config(mark, old)
      return string.format([[
gateway.settings { threads = 1 }
local a = memcache.pool { servers = { "%s" }, timeout = 2 }
%s
local MARK = "%s"
memcache.route {
  ["mark:"] = function(req) return memcache.hit(MARK) end,
  %s
  default = a,
}
]], A.addr, old and string.format('local slow = memcache.pool { servers = { "%s" }, timeout = 10 }', slow.addr) or "",
        mark, old and [[
  ["slow:"] = slow,
  ["slowfn:"] = function(req)
    local v, flags = slow:get(req.key)
    if v == nil then return memcache.error("slow:get: " .. tostring(flags)) end
    return memcache.hit(v .. "/" .. MARK, flags)
  end,]] or [[
  ["slow:"] = a,
  ["slowfn:"] = function(req) return memcache.hit("fast/" .. MARK) end,]])
    end
    A.set("slow:k", "fast")
    local g = start_gateway(config("v1", true))
    local LONG = { timeout = 15, whole_reply = true }
    local c1, c2 = H.connect(g.port, LONG), H.connect(g.port, LONG)
    defer(function() c1:close(); c2:close() end)
    assert.are.equal(value_reply("mark:x", "v1"), c1:call("get mark:x\r\n"))

    -- both requests reach the slow server under v1 and wait there
    c1:send("get slow:k\r\n")
    c2:send("get slowfn:k\r\n")
    wait_for(function()
      local l = slow.log()
      if l:find("got slow:k\n", 1, true) and l:find("got slowfn:k\n", 1, true) then return true end
      return nil, l
    end, DEADLINE, "both requests at the slow server")

    -- reload to v2, where neither prefix goes to the slow server; new
    -- requests are served by v2 while the two are still in flight
    local before = g.stats()
    g.save(config("v2", false))
    g.hup()
    wait_generation(g, before)
    wait_for(function()
      local got = H.request(g.port, "get mark:x\r\n", RAW)
      if got == value_reply("mark:x", "v2") then return true end
      return nil, show(got)
    end, EFFECT_DEADLINE, "v2 serving new connections while requests are in flight")
    assert.are.equal(value_reply("slow:k", "fast"), H.request(g.port, "get slow:k\r\n", RAW))

    -- let the slow server answer: both finish as v1 would have them
    write_file(release, "")
    assert.are.equal(value_reply("slow:k", "slow"), c1:reply())
    assert.are.equal(value_reply("slowfn:k", "slow/v1"), c2:reply())

    -- and the same connections now go by v2
    assert.are.equal(value_reply("mark:x", "v2"), c1:call("get mark:x\r\n"))
    assert.are.equal(value_reply("slow:k", "fast"), c1:call("get slow:k\r\n"))
    assert.are.equal(value_reply("slowfn:k", "fast/v2"), c2:call("get slowfn:k\r\n"))
  end)

  it("reads the config once: a save during a reload cannot make workers run other text", function()
    -- Each text answers every key with its own tag.  B's top level is slow
    -- (a second of CPU), so the reload that loads it is still going when
    -- the file is saved again as C, which does not even parse.  The main
    -- thread validated B; every worker must then run B, the bytes that
    -- were validated, not read the file again and find C.
    local function tagged(tag, slow)
      return string.format([[
gateway.settings { threads = %d, instruction_limit = 0 }
gateway.log("info", "reload_spec: loading %s")
%s
memcache.route { default = function() return memcache.hit("%s") end }
]], THREADS, tag, slow and "local t0 = os.clock() while os.clock() - t0 < 1 do end" or "", tag)
    end
    local g = start_gateway(tagged("A", false))
    assert.are.equal(value_reply("k", "A"), H.request(g.port, "get k\r\n", RAW))
    local before = g.stats()
    g.save(tagged("B", true))
    wait_for(function()
      if g.output():find("reload_spec: loading B", 1, true) then return true end
      return nil, g.output()
    end, WATCH_DEADLINE, "the reload of B to start")
    g.save("memcache.route { default = -- C: cut off while being written\n")
    wait_generation(g, before, 10, "the reload of B to finish")
    -- fresh connections, spread by the kernel over both workers: all run B
    for i = 1, 4 * THREADS do
      assert.are.equal(value_reply("k" .. i, "B"), H.request(g.port, "get k" .. i .. "\r\n", RAW))
    end
    -- the save of C was not lost: it is loaded on its own, and refused;
    -- B keeps serving
    wait_failure(g, before, "gateway.lua:2:", 10)
    assert.are.equal(value_reply("k", "B"), H.request(g.port, "get k\r\n", RAW))
  end)
end)
