-- admin_spec.lua -- the admin listener (gateway.admin) against real parts:
-- a real Prometheus scraping /metrics, promtool checking it, /route checked
-- against where keys really are on memcached, servers taken out and put
-- back as memcached's own stats count it, /reload, /healthz, /config,
-- hostile HTTP, the stats views over the memcached protocol, and
-- gateway.admin's config errors.
--
-- The contract under test:
--   * /metrics is the Prometheus text format: Prometheus scrapes it (the
--     target is up, the families are there, the values are the gateway's),
--     the rate of gateway_requests_total rises with traffic and falls back
--     to 0 after it, gateway_server_up goes 0 for a memcached killed with
--     -9 and 1 once it is restarted; promtool check metrics has nothing to
--     say about it, label values are escaped, and every histogram adds up;
--   * /route names the server a key is really on, in every hash mode
--     (python-memcached 1.59 and 1.60, ketama, jump, all weighted, every
--     other mode the core lists, hash_tag); it refuses a bad key or a command without a key (400);
--   * POST /servers/H:P/down takes a server out on every worker: its
--     memcached is sent nothing (its own cmd_get/cmd_set stand still, no
--     probe connects) while the other's keys go on; /config, /route,
--     /metrics and `stats servers` say so; a failover pool sends its keys
--     to the next server, where they are found; /up puts it back; an
--     unknown server is a 404;
--   * POST /reload: 200 and exactly the next generation, the change live
--     when the answer comes; a config that moves gateway.admin itself is
--     answered on the old port and served on the new one; a broken config
--     is a 422 naming file:line and changes nothing;
--   * /healthz: 200 "ok"; 503 naming a pool without failover whose
--     servers are all down (a failover pool's dead server is no reason);
--     200 when one is back; 503 "shutting down" while SIGTERM drains;
--   * /config: generation, files with their FNV-1a 64 hash, the listeners
--     served (with their fences), pools, servers and state, routes,
--     settings, and the settings waiting for a restart;
--   * hostile HTTP (a 100 KB header, bad methods, malformed request lines,
--     a body that never comes) gets a 4xx or a closed connection, never a
--     crash; a slowloris stalled mid-header is closed by the idle timeout;
--     of 1,000 connections at once, at most 256 are served and the rest
--     wait (none is served past the cap) until the client lets go; the
--     memcached listener serves throughout;
--   * stats servers / pools / config / settings over memcached's protocol;
--   * gateway.admin's bad addresses, and a second gateway.admin, are
--     config errors at file:line; an admin port in use stops the start.
--
-- Metrics are collected once a second, so every check of a value that
-- changes waits for it with a deadline.  Where a key is, and whether a
-- server was sent anything, is asked of the memcached servers themselves.
-- Every gateway has a folder of its own under tests/tmp for its config
-- and modules; its log is beside it.
--
-- Run from the repo root:
--   busted --lpath='./lua/?.lua;./lua/?/init.lua;./tests/spec/?.lua' tests/spec/admin_spec.lua
local H = require "harness"
local stopper = H.cleanups
local wait_for = H.wait_for
local parse_stats = H.parse_stats
local write_file = H.write_file
local F = require "fakes"
local socket = require "socket"

local RAW = F.RAW
local show = H.show

local ADMIN_IDLE_TIMEOUT = 10   -- admin_http.c: a connection idle this long is closed
local ADMIN_MAX_CONNECTIONS = 256

-- FNV-1a 64 of a text, as /config and the metrics name a file's bytes.
local function fnv1a64(s)
  local h = 0xcbf29ce484222325
  for i = 1, #s do h = (h ~ s:byte(i)) * 0x100000001b3 end
  return string.format("%016x", h)
end

-- A multi-get reply as key -> value; raises on anything else.
local function parse_values(rep)
  local out, pos = {}, 1
  while true do
    local k, n, after = rep:match("^VALUE (%S+) %d+ (%d+)\r\n()", pos)
    if not k then break end
    n = tonumber(n)
    out[k] = rep:sub(after, after + n - 1)
    assert(rep:sub(after + n, after + n + 1) == "\r\n", "bad data block in " .. show(rep))
    pos = after + n + 2
  end
  assert(rep:sub(pos) == "END\r\n", "not a retrieval reply: " .. show(rep))
  return out
end

-- Prometheus text exposition -------------------------------------------------

-- `k="v",...` (without the braces) as a table, escapes undone.
local function parse_labels(s)
  local labels, i = {}, 1
  while i <= #s do
    local k, j = s:match('^([%a_][%w_]*)="()', i)
    if not k then error("bad labels: " .. show(s), 2) end
    local v = {}
    i = j
    while true do
      local c = s:sub(i, i)
      if c == "\\" then
        local n = s:sub(i + 1, i + 1)
        v[#v + 1] = n == "n" and "\n" or n
        i = i + 2
      elseif c == '"' then
        i = i + 1
        break
      elseif c == "" then
        error("unterminated label value: " .. show(s), 2)
      else
        v[#v + 1] = c
        i = i + 1
      end
    end
    labels[k] = table.concat(v)
    if s:sub(i, i) == "," then i = i + 1 end
  end
  return labels
end

-- The samples of an exposition, { name, labels, value } each, and each
-- family's TYPE.
local function parse_metrics(text)
  local samples, types = {}, {}
  for line in text:gmatch("[^\n]+") do
    local fam, ty = line:match("^# TYPE (%S+) (%S+)$")
    if fam then
      types[fam] = ty
    elseif not line:match("^#") then
      local head, value = line:match("^(.-)%s+(%S+)$")
      local name, lbl = (head or ""):match("^([%a_:][%w_:]*){(.*)}$")
      if not name then name, lbl = (head or ""):match("^([%a_:][%w_:]*)$"), "" end
      if not name then error("bad sample line: " .. show(line), 2) end
      samples[#samples + 1] = { name = name, labels = parse_labels(lbl), value = tonumber(value) }
    end
  end
  return { samples = samples, types = types }
end

-- The value of the one sample of name whose labels include want (nil if
-- none).
local function metric(m, name, want)
  for _, s in ipairs(m.samples) do
    if s.name == name then
      local ok = true
      for k, v in pairs(want or {}) do
        if s.labels[k] ~= v then ok = false break end
      end
      if ok then return s.value end
    end
  end
  return nil
end

-- Processes ------------------------------------------------------------------

-- A real memcached on a port of its own, which survives kill() and
-- start() (the same port again).  m.call(bytes) talks to it directly on
-- one persistent connection; m.stats() is its own `stats`.
local function memcached(add)
  local m = { port = H.free_port() }
  m.addr = "127.0.0.1:" .. m.port
  local proc, mon
  function m.start()
    proc = H.start_memcached({ port = m.port })
    mon = H.connect(m.port, RAW)
  end
  function m.kill()
    if mon then mon:close() end
    mon = nil
    proc.kill()
    H.wait_until(function() return not H.can_connect(m.port) end, 5, "port " .. m.port .. " closed")
  end
  function m.call(bytes) return mon:call(bytes) end
  function m.stats() return parse_stats(mon:call("stats\r\n")) end
  function m.stat(name) return tonumber(m.stats()[name]) or error("memcached: no stat " .. name) end
  -- Which of keys this server holds: key -> value (multi-gets of 100).
  function m.held(keys)
    local out = {}
    for i = 1, #keys, 100 do
      local chunk = table.move(keys, i, math.min(i + 99, #keys), 1, {})
      for k, v in pairs(parse_values(mon:call("get " .. table.concat(chunk, " ") .. "\r\n"))) do
        out[k] = v
      end
    end
    return out
  end
  add(function()   -- -9: memcached takes a second to stop on SIGTERM
    if mon then mon:close() end
    if proc then proc.kill() end
  end)
  m.start()
  return m
end

-- The gateway with its config (and opts.files, name -> text) in a folder
-- of its own, tests/tmp/admin-<port>/gateway.lua.  In the text @ADMIN@
-- stands for gateway.admin's address (a free loopback port).  Without
-- opts.ports the client port is a free one given with -l; with it, the
-- config's gateway.listen must listen on those ports (the first is
-- .port).  Waits until the client port accepts and /metrics answers.
local function start_gateway(add, text, opts)
  opts = opts or {}
  local port = opts.ports and opts.ports[1] or H.free_port()
  local admin = H.free_port()
  local g = { port = port, admin_port = admin, admin_addr = "127.0.0.1:" .. admin }
  g.dir = string.format("%s/admin-%d", H.tmpdir, port)
  g.config = g.dir .. "/gateway.lua"
  g.log = string.format("%s/admin-gateway-%d.log", H.tmpdir, port)
  g.text = (text:gsub("@ADMIN@", g.admin_addr))
  H.run("rm -rf " .. H.quote(g.dir) .. " && mkdir -p " .. H.quote(g.dir))
  for name, body in pairs(opts.files or {}) do write_file(g.dir .. "/" .. name, body) end
  write_file(g.config, g.text)
  local cmd = string.format("exec %s %s %s", H.quote(H.gateway_bin),
    opts.ports and "" or ("-l 127.0.0.1:" .. port), H.quote(g.config))
  g.pid = tonumber(H.run("(" .. cmd .. ") >" .. H.quote(g.log) .. " 2>&1 & echo $!"):match("%d+"))
  assert(g.pid, "could not start the gateway")
  function g.output() return H.read_file(g.log) end
  function g.alive() return H.alive(g.pid) end
  function g.stop()
    if not H.alive(g.pid) then return end
    H.run("kill -TERM " .. g.pid .. " 2>/dev/null")
    if not pcall(H.wait_until, function() return not H.alive(g.pid) end, 5) then
      H.run("kill -KILL " .. g.pid .. " 2>/dev/null")
    end
  end
  add(function()
    g.stop()
    H.run("rm -rf " .. H.quote(g.dir))   -- the log stays
  end)
  H.wait_until(function()
    if not H.alive(g.pid) then error("the gateway exited:\n" .. g.output(), 0) end
    for _, p in ipairs(opts.ports or { port }) do
      if not H.can_connect(p) then return false end
    end
    return H.can_connect(admin) and (H.http(admin, "GET", "/metrics")) == 200
  end, 10, "the gateway and its admin listener")

  -- The admin listener, one request per connection.
  function g.http(method, path, o) return H.http(g.admin_port, method, path, o) end
  -- method path: its JSON, after checking the status (default 200) and
  -- the content type.
  function g.json(method, path, status)
    local st, headers, body = H.http(g.admin_port, method, path)
    assert.are.equal(status or 200, st, body)
    assert.are.equal("application/json", headers["content-type"])
    return H.json(body)
  end
  function g.metrics()
    local st, _, body = H.http(g.admin_port, "GET", "/metrics")
    assert.are.equal(200, st, body)
    return parse_metrics(body), body
  end
  -- Wait until the metric name{want} satisfies ok(value).
  function g.wait_metric(name, want, ok, timeout, what)
    return wait_for(function()
      local v = metric(g.metrics(), name, want)
      if v ~= nil and ok(v) then return v end
      return nil, tostring(v)
    end, timeout or 5, what or name)
  end
  -- The memcached protocol: one request on a fresh connection.
  function g.call(bytes) return H.request(g.port, bytes, RAW) end
  function g.stats(what)
    return g.call("stats" .. (what and (" " .. what) or "") .. "\r\n")
  end
  function g.assert_alive()
    assert(H.alive(g.pid), "the gateway died:\n" .. g.output())
  end
  return g
end

-- A gateway with its admin listener and 2 threads over two fresh memcached
-- servers in the pool "main".  Returns the gateway and the two servers.
local function admin_gateway_over_two(add)
  local a, b = memcached(add), memcached(add)
  local g = start_gateway(add, string.format([[
    gateway.admin "@ADMIN@"
    gateway.settings { threads = 2 }
    local main = memcache.pool { name = "main", servers = { "%s", "%s" }, retry_timeout = 0.5 }
    memcache.route { default = main }
  ]], a.addr, b.addr))
  return g, a, b
end

-- Store keys through the gateway (pipelined), each with value(key), and
-- check every STORED.
local function store_all(port, keys, value)
  local c = H.connect(port, RAW)
  local cmds = {}
  for i, k in ipairs(keys) do cmds[i] = F.set_cmd(k, value(k)) end
  local reps = c:calls(table.concat(cmds), #keys)
  for i, rep in ipairs(reps) do
    if rep ~= "STORED\r\n" then error("set " .. keys[i] .. ": " .. show(rep), 2) end
  end
  c:close()
end

-- /route on a kept-alive connection: the decoded answer.
local function router(add, g)
  local c = H.connect(g.admin_port, RAW)
  add(function() c:close() end)
  return function(key, command, status)
    local path = "/route?key=" .. H.urlencode(key) .. (command and ("&command=" .. command) or "")
    local st, _, body = c:http("GET", path)
    if st ~= (status or 200) then
      error(string.format("GET %s: %d %s", path, st, show(body)), 2)
    end
    return st == 200 and H.json(body) or body
  end
end

-- Split keys by the server /route names: server address -> list.
local function split_by_route(route, keys)
  local by = {}
  for _, k in ipairs(keys) do
    local s = route(k).server
    by[s] = by[s] or {}
    table.insert(by[s], k)
  end
  return by
end

local function keylist(prefix, n)
  local keys = {}
  for i = 1, n do keys[i] = prefix .. i end
  return keys
end

local function value_of(k) return "v=" .. k end

-- Prometheus -------------------------------------------------------------------

describe("Prometheus", function()
  it("scrapes /metrics: target up, families and values, the request rate with traffic, " ..
     "a server killed with -9 down and back", function()
    local add, stop_all = stopper()
    finally(stop_all)
    local g, a, b = admin_gateway_over_two(add)
    local prom = H.start_prometheus({ g.admin_addr })
    add(prom.stop)
    local function value(expr)
      local r = prom.query(expr)
      return r[1] and tonumber(r[1].value[2])
    end

    local target = wait_for(function()
      local t = prom.targets()[1]
      if t and t.health == "up" then return t end
      return nil, t and (t.health .. " " .. t.lastError) or "no target yet"
    end, 30, "the gateway's target up")
    assert.are.equal("http://" .. g.admin_addr .. "/metrics", target.scrapeUrl)
    assert.are.equal("", target.lastError)

    -- the families, as Prometheus stored them
    local want = { "gateway_requests_total", "gateway_errors_total", "gateway_client_connections",
      "gateway_client_connections_total", "gateway_client_read_bytes_total",
      "gateway_client_written_bytes_total", "gateway_lua_memory_bytes", "gateway_lua_tasks",
      "gateway_lua_errors_total", "gateway_lua_calls_total", "gateway_route_requests_total",
      "gateway_route_hits_total", "gateway_route_misses_total",
      "gateway_route_request_duration_seconds_bucket", "gateway_route_request_duration_seconds_count",
      "gateway_pool_requests_total", "gateway_pool_errors_total", "gateway_server_requests_total",
      "gateway_server_errors_total", "gateway_server_rtt_seconds_bucket", "gateway_server_up",
      "gateway_server_admin_down", "gateway_server_queue_depth", "gateway_server_connects_total",
      "gateway_server_probes_total", "gateway_build_info", "gateway_start_time_seconds",
      "gateway_workers", "gateway_config_generation", "gateway_config_reloads_total",
      "gateway_config_reload_failures_total", "gateway_config_last_reload_success_timestamp_seconds",
      "gateway_listener_info", "gateway_config_file_info" }
    wait_for(function()
      local have = {}
      for _, r in ipairs(prom.query('count by (__name__) ({__name__=~"gateway_.+"})')) do
        have[r.metric.__name__] = true
      end
      for _, n in ipairs(want) do
        if not have[n] then return nil, "missing " .. n end
      end
      return true
    end, 30, "every family in Prometheus")
    -- values Prometheus holds are the gateway's
    assert.are.equal(2, value("gateway_workers"))
    assert.are.equal(1, value("gateway_config_generation"))
    assert.are.equal(1, value(string.format('gateway_listener_info{addr="127.0.0.1:%d"}', g.port)))
    assert.are.equal(1, value(string.format('gateway_config_file_info{file="gateway.lua",fnv1a64="%s"}',
      fnv1a64(g.text))))
    for _, m in ipairs({ a, b }) do
      assert.are.equal(1, value(string.format('gateway_server_up{pool="main",server="%s"}', m.addr)))
    end

    -- the rate of sets: 0 with none, above 0 once N are sent, 0 again after
    local SETS = 'gateway_requests_total{command="set"}'
    wait_for(function()
      local v = value("rate(" .. SETS .. "[3s])")
      return v == 0, v
    end, 30, "a set rate of 0 before any set")
    local keys = keylist("prom:", 600)
    store_all(g.port, keys, value_of)
    wait_for(function()
      local v = value(SETS)
      return v == #keys, v
    end, 15, "Prometheus to count every set")
    local r = value("rate(" .. SETS .. "[10s])")
    assert.is_true(r > 0, "rate after the sets: " .. tostring(r))
    assert.are.equal(#keys, value('sum(gateway_server_requests_total{pool="main"})'))
    wait_for(function()
      local v = value("rate(" .. SETS .. "[3s])")
      return v == 0, v
    end, 15, "the set rate back to 0 once the sets stopped")

    -- kill -9 b: with traffic to its keys, Prometheus sees it down ...
    local route = router(add, g)
    local on_b = split_by_route(route, keylist("prom:", 60))[b.addr]
    assert.is_true(on_b and #on_b > 0, "no key on b")
    b.kill()
    local UP = 'gateway_server_up{pool="main",server="%s"}'
    wait_for(function()
      local c = H.connect(g.port, RAW)
      for _, k in ipairs(on_b) do c:call("get " .. k .. "\r\n") end
      c:close()
      local v = value(string.format(UP, b.addr))
      return v == 0, v
    end, 20, "Prometheus to see b down")
    assert.are.equal(1, value(string.format(UP, a.addr)))
    -- ... and, restarted on its port, back up (the gateway probes it)
    b.start()
    wait_for(function()
      local v = value(string.format(UP, b.addr))
      return v == 1, v
    end, 20, "Prometheus to see b up again")
    assert.are.equal("STORED\r\n", g.call(F.set_cmd(on_b[1], "back")))
    assert.are.equal(F.value_reply(on_b[1], "back"), b.call("get " .. on_b[1] .. "\r\n"))

    -- every query of the shipped Grafana dashboard runs on these series
    -- (a renamed metric or a bad expression fails here), and each answers
    -- with data but those that keep only non-zero rates
    local f = assert(io.open(H.root .. "/scripts/grafana-dashboard.json"))
    local dash = H.json(f:read("a"))
    f:close()
    local exprs = {}
    for _, panel in ipairs(dash.panels) do
      for _, t in ipairs(panel.targets or {}) do exprs[#exprs + 1] = t.expr end
    end
    for _, a in ipairs(dash.annotations.list) do exprs[#exprs + 1] = a.expr end
    assert.is_true(#exprs >= 25, "dashboard queries: " .. #exprs)
    for _, e in ipairs(exprs) do
      local q = e:gsub("%$instance", ".*"):gsub("%$__rate_interval", "10s")
      local ok, res = pcall(prom.query, q)
      assert.is_true(ok, "dashboard query " .. q .. ": " .. tostring(res))
      if not q:find("> 0", 1, true) then
        assert.is_true(#res > 0, "dashboard query with no data: " .. q)
      end
    end
    g.assert_alive()
  end)
end)

-- /metrics and promtool ----------------------------------------------------------------

describe("/metrics", function()
  it("passes promtool check metrics with every family populated, escapes labels, " ..
     "and its histograms add up", function()
    local add, stop_all = stopper()
    finally(stop_all)
    local a = memcached(add)
    local dead = "127.0.0.1:" .. H.free_port()   -- nothing listens there
    local g = start_gateway(add, string.format([[
      gateway.admin "@ADMIN@"
      gateway.settings { threads = 2 }
      local main = memcache.pool { name = "main", servers = { "%s" } }
      local gone = memcache.pool { name = "gone", servers = { "%s" }, timeout = 0.5 }
      memcache.route {
        ["q\"\\"] = main,
        ["gone:"] = gone,
        ["fn:"] = function(req)
          if req.key == "fn:boom" then error("boom") end
          return main
        end,
        default = main,
      }
    ]], a.addr, dead))
    -- traffic for every kind of series: hits, misses, a Lua error, a
    -- refused server, a protocol error, a route whose name needs escaping
    local c = H.connect(g.port, RAW)
    for i = 1, 50 do
      assert.are.equal("STORED\r\n", c:call(F.set_cmd("k" .. i, "v" .. i)))
      assert.are.equal(F.value_reply("k" .. i, "v" .. i), c:call("get k" .. i .. "\r\n"))
      assert.are.equal("END\r\n", c:call("get miss" .. i .. "\r\n"))
    end
    assert.are.equal("STORED\r\n", c:call(F.set_cmd('q"\\x', "odd")))
    assert.are.equal("STORED\r\n", c:call(F.set_cmd("fn:1", "f")))
    assert.matches("^SERVER_ERROR lua error", c:call("get fn:boom\r\n"))
    assert.matches("^SERVER_ERROR backend", c:call("get gone:1\r\n"))
    assert.are.equal("CLIENT_ERROR bad command line format\r\n",
      c:call("get " .. string.rep("x", 251) .. "\r\n"))
    c:close()

    local m, text = nil, nil
    wait_for(function()
      m, text = g.metrics()
      local n = metric(m, "gateway_route_request_duration_seconds_count", { route = "default" })
      return n == 150
        and (metric(m, "gateway_errors_total", { kind = "lua" }) or 0) >= 1
        and (metric(m, "gateway_errors_total", { kind = "protocol" }) or 0) >= 1
        and (metric(m, "gateway_server_errors_total", { server = dead, kind = "refused" }) or 0) >= 1,
        n
    end, 5, "the traffic in the metrics")
    assert.are.equal(50, metric(m, "gateway_route_hits_total", { route = "default" }))
    assert.are.equal(50, metric(m, "gateway_route_misses_total", { route = "default" }))
    assert.are.equal(1, metric(m, "gateway_route_requests_total", { route = 'q"\\' }))
    assert.are.equal(152, metric(m, "gateway_server_requests_total", { server = a.addr }))

    -- promtool: exit 0 and not a word
    local path = string.format("%s/admin-metrics-%d.txt", H.tmpdir, g.port)
    write_file(path, text)
    local out, ok = H.run("promtool check metrics < " .. H.quote(path) .. " 2>&1")
    assert.is_true(ok, "promtool check metrics failed:\n" .. out)
    assert.are.equal("", out, "promtool check metrics had something to say")
    os.remove(path)

    -- every histogram: cumulative buckets, +Inf = _count, and some observed
    local histos = 0
    for name, ty in pairs(m.types) do
      if ty == "histogram" then
        local series = {}
        for _, s in ipairs(m.samples) do
          if s.name == name .. "_bucket" then
            local le = s.labels.le
            local copy = {}
            for k, v in pairs(s.labels) do if k ~= "le" then copy[#copy + 1] = k .. "=" .. v end end
            table.sort(copy)
            local id = table.concat(copy, ",")
            series[id] = series[id] or { labels = s.labels, buckets = {} }
            table.insert(series[id].buckets, { le = le == "+Inf" and math.huge or tonumber(le), n = s.value })
          end
        end
        for id, sr in pairs(series) do
          histos = histos + 1
          local prev_le, prev_n = -1, 0
          for _, bk in ipairs(sr.buckets) do
            assert.is_true(bk.le > prev_le, name .. "{" .. id .. "}: le out of order")
            assert.is_true(bk.n >= prev_n, name .. "{" .. id .. "}: buckets not cumulative")
            prev_le, prev_n = bk.le, bk.n
          end
          assert.are.equal(math.huge, prev_le, name .. "{" .. id .. "}: no +Inf bucket")
          local want = {}
          for k, v in pairs(sr.labels) do if k ~= "le" then want[k] = v end end
          assert.are.equal(prev_n, metric(m, name .. "_count", want), name .. "{" .. id .. "}: +Inf ~= _count")
          assert.is_true(metric(m, name .. "_sum", want) >= 0)
        end
      end
    end
    assert.is_true(histos >= 4, "histogram series: " .. histos)
    assert.is_true(metric(m, "gateway_server_rtt_seconds_count", { server = a.addr }) >= 152)

    -- HEAD: the headers alone
    local st, headers, body = g.http("HEAD", "/metrics")
    assert.are.equal(200, st)
    assert.are.equal("text/plain; version=0.0.4; charset=utf-8", headers["content-type"])
    assert.are.equal("", body)
    g.assert_alive()
  end)
end)

-- /route against the servers ----------------------------------------------------------

-- Keys of varied shape for /route (all valid memcached keys, percent-encoded
-- on the way): punctuation that means something in a URL or in JSON, UTF-8
-- bytes, lengths up to 250.  With tagged, keys share 40 hash tags.
local function route_keys(prefix, n, tagged)
  local keys, seed = {}, 4242
  local function rnd(m)
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed % m
  end
  local alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_-./+%&=?#\"\\"
  for i = 1, n do
    local k
    if tagged then
      k = string.format("%s%d{u%d}:%d", prefix, rnd(1000), i % 40, i)
    elseif i % 10 == 0 then
      k = prefix .. i .. ":\xc3\xa9t\xc3\xa9"
    elseif i % 10 == 1 then
      k = prefix .. i .. "/" .. string.rep("x", 200 + rnd(40))
    else
      local parts = { prefix, tostring(i) }
      for _ = 1, rnd(20) do
        local c = rnd(#alphabet) + 1
        parts[#parts + 1] = alphabet:sub(c, c)
      end
      k = table.concat(parts)
    end
    assert(#k <= 250)
    keys[i] = k
  end
  return keys
end

describe("/route", function()
  it("names the server each of 1,000 keys is really on, in every hash mode", function()
    local add, stop_all = stopper()
    finally(stop_all)
    local servers = { memcached(add), memcached(add), memcached(add) }
    local modes = {
      { prefix = "pm:", pool = "pm159", hash = "python-memcached", opts = 'hash = "python-memcached"' },
      { prefix = "p6:", pool = "pm160", hash = "python-memcached",
        opts = 'hash = "python-memcached", python_memcached = "1.60"' },
      { prefix = "kt:", pool = "ketama", hash = "ketama", opts = 'hash = "ketama"' },
      { prefix = "jp:", pool = "jump", hash = "jump", opts = 'hash = "jump"' },
      { prefix = "tg:", pool = "tagged", hash = "ketama", opts = 'hash = "ketama", hash_tag = "{}"',
        tagged = true },
    }
    -- and every other mode the core has: the names a bad one lists
    local covered = {}
    for _, m in ipairs(modes) do covered[m.hash] = true end
    local out = H.run(H.quote(H.gateway_bin) .. " --check " .. H.quote(H.write_config(
      'memcache.pool { servers = { "127.0.0.1:1" }, hash = "?" }\n', "admin-hashes.lua")) .. " 2>&1")
    local names = assert(out:match("unknown hash '%?' %((.-)%)"), out)
    for name in names:gmatch("[^, ]+") do
      if not covered[name] then
        modes[#modes + 1] = { prefix = "m" .. #modes .. ":", pool = name, hash = name,
          opts = string.format("hash = %q", name),
          -- these clients have no weights; the last one's ring is lopsided by design
          -- (String.hashCode of "ip:port-i"), so a server may hold almost nothing
          equal = name == "pymemcache" or name:match("^spymemcached%-ketama") ~= nil
            and name ~= "spymemcached-ketama-weighted",
          lopsided = name == "spymemcached-ketama-native" }
      end
    end
    assert.is_true(#modes >= 14, "modes: " .. names)
    local lines = { 'gateway.admin "@ADMIN@"', "gateway.settings { threads = 2 }",
      string.format('local S = { { "%s", weight = 1 }, { "%s", weight = 2 }, { "%s", weight = 3 } }',
        servers[1].addr, servers[2].addr, servers[3].addr),
      string.format('local S1 = { "%s", "%s", "%s" }', servers[1].addr, servers[2].addr, servers[3].addr),
      "local routes = {}" }
    for _, m in ipairs(modes) do
      lines[#lines + 1] = string.format("routes[%q] = memcache.pool { name = %q, servers = %s, %s }",
        m.prefix, m.pool, m.equal and "S1" or "S", m.opts)
    end
    lines[#lines + 1] = 'local kt = routes["kt:"]'
    lines[#lines + 1] = 'routes["fn:"] = function(req) return kt end'
    lines[#lines + 1] = "memcache.route(routes)   -- no default"
    local g = start_gateway(add, table.concat(lines, "\n") .. "\n")
    local route = router(add, g)

    -- /config agrees on the pools' hashes, and lists the -l listener
    local cfg = g.json("GET", "/config")
    local hash_of = {}
    for _, p in ipairs(cfg.pools) do hash_of[p.name] = p.hash end
    for _, m in ipairs(modes) do assert.are.equal(m.hash, hash_of[m.pool], m.pool) end
    assert.are.same({ { addr = "127.0.0.1:" .. g.port, flush = "all", stats = "all" } }, cfg.listeners)

    for _, m in ipairs(modes) do
      local keys = route_keys(m.prefix, 1000, m.tagged)
      store_all(g.port, keys, value_of)
      local where = {}
      for _, k in ipairs(keys) do
        local r = route(k)
        local server = r.server
        r.server = nil
        assert.are.same({ key = k, command = "get", route = m.prefix, target = "pool", pool = m.pool,
                          backend_key = k, up = true }, r)
        where[k] = server
      end
      -- every key on exactly the server /route named, with its value
      local held = {}
      for i, s in ipairs(servers) do held[i] = s.held(keys) end
      local bad, count = {}, {}
      for _, k in ipairs(keys) do
        local on = {}
        for i, s in ipairs(servers) do
          if held[i][k] then
            on[#on + 1] = s.addr
            if held[i][k] ~= value_of(k) then on[#on] = on[#on] .. " (a wrong value)" end
          end
        end
        if #on ~= 1 or on[1] ~= where[k] then
          bad[#bad + 1] = string.format("%s: /route says %s, found on {%s}", k, tostring(where[k]),
            table.concat(on, ", "))
        end
        count[where[k]] = (count[where[k]] or 0) + 1
      end
      assert(#bad == 0, string.format("%s: %d of %d keys elsewhere, e.g.\n%s", m.pool, #bad, #keys,
        table.concat(bad, "\n", 1, math.min(#bad, 5))))
      -- every server holds a share: a mode that sent all to one server would prove little
      for _, s in ipairs(servers) do
        assert.is_true((count[s.addr] or 0) >= (m.lopsided and 1 or 20), m.pool .. ": " .. s.addr ..
          " has " .. tostring(count[s.addr]))
      end
      if m.tagged then
        local tag_server = {}
        for _, k in ipairs(keys) do
          local tag = k:match("{(.-)}")
          tag_server[tag] = tag_server[tag] or where[k]
          assert.are.equal(tag_server[tag], where[k], "tag " .. tag .. " on two servers")
        end
      end
      -- the command does not move a key
      local r = route(keys[7], "delete")
      assert.are.equal("delete", r.command)
      assert.are.equal(where[keys[7]], r.server)
      r = route(keys[7], "mg") -- meta commands are routed the same
      assert.are.equal("mg", r.command)
      assert.are.equal(where[keys[7]], r.server)
    end

    -- a route function: no pool or server to name; no route: null
    assert.are.same({ key = "fn:1", command = "get", route = "fn:", target = "function" },
      route("fn:1"))
    assert.are.same({ key = "zz", command = "get" }, route("zz"))
    -- refused: not a memcached key, or a command without a key
    route("a b", nil, 400)
    route("a\tb", nil, 400)
    route(string.rep("k", 251), nil, 400)
    route("", nil, 400)
    route("k1", "stats", 400)
    route("k1", "flush_all", 400)
    route("k1", "bogus", 400)
    route("k1", "mn", 400)
    assert.are.equal(400, (g.http("GET", "/route")))
    g.assert_alive()
  end)
end)

-- Taking servers out --------------------------------------------------------------------

describe("/servers/HOST:PORT/down and /up", function()
  it("take a server out on every worker (its memcached sees nothing) and put it back", function()
    local add, stop_all = stopper()
    finally(stop_all)
    local a, b, c, d = memcached(add), memcached(add), memcached(add), memcached(add)
    local g = start_gateway(add, string.format([[
      gateway.admin "@ADMIN@"
      gateway.settings { threads = 2 }
      local main = memcache.pool { name = "main", servers = { "%s", "%s" } }
      local fo = memcache.pool { name = "fo", servers = { "%s", "%s" }, failover = "next" }
      memcache.route { ["fo:"] = fo, default = main }
    ]], a.addr, b.addr, c.addr, d.addr))
    local route = router(add, g)
    local keys = keylist("k:", 100)
    local by = split_by_route(route, keys)
    local on_a, on_b = by[a.addr], by[b.addr]
    assert.is_true(on_a and on_b and #on_a > 0 and #on_b > 0, "keys on both servers")
    store_all(g.port, keys, value_of)

    -- Gets of every key on 4 connections (the 2 workers both serve some):
    -- a's keys answered as fn_a says, b's with their values.
    local function traffic(check_a)
      for _ = 1, 4 do
        local conn = H.connect(g.port, RAW)
        for _, k in ipairs(on_a) do check_a(k, conn:call("get " .. k .. "\r\n")) end
        for _, k in ipairs(on_b) do
          assert.are.equal(F.value_reply(k, value_of(k)), conn:call("get " .. k .. "\r\n"))
        end
        conn:close()
      end
    end
    local function server_state(cfg, pool, addr)
      for _, p in ipairs(cfg.pools) do
        if p.name == pool then
          for _, s in ipairs(p.servers) do
            if s.server == addr then return s.state end
          end
        end
      end
    end
    local function stats_state(addr)
      local line = parse_stats(g.stats("servers"))[addr]
      return line and line:match("state:(%S+)")
    end

    local out = g.json("POST", "/servers/" .. a.addr .. "/down")
    assert.are.same({ server = a.addr, state = "taken out" }, out)
    g.wait_metric("gateway_server_admin_down", { server = a.addr }, function(v) return v == 1 end)
    g.wait_metric("gateway_server_up", { server = a.addr }, function(v) return v == 0 end)
    local m = g.metrics()
    assert.are.equal(1, metric(m, "gateway_server_up", { server = b.addr }))
    assert.are.equal(0, metric(m, "gateway_server_admin_down", { server = b.addr }))
    local cfg = g.json("GET", "/config")
    assert.are.equal("taken out", server_state(cfg, "main", a.addr))
    assert.are.equal("up", server_state(cfg, "main", b.addr))
    local r = route(on_a[1])
    assert.are.equal(a.addr, r.server)
    assert.is_false(r.up)
    assert.are.equal("taken_out", stats_state(a.addr))
    assert.are.equal("up", stats_state(b.addr))

    local a0, b0 = a.stats(), b.stats()
    traffic(function(k, rep)
      assert.are.equal("SERVER_ERROR backend " .. a.addr .. " is taken out by the operator\r\n", rep)
    end)
    assert.matches("^SERVER_ERROR ", g.call(F.set_cmd(on_a[1], "nope")))
    local a1, b1 = a.stats(), b.stats()
    for _, name in ipairs({ "cmd_get", "cmd_set", "get_hits", "get_misses", "total_connections" }) do
      assert.are.equal(a0[name], a1[name], "a's " .. name .. " moved while it was taken out")
    end
    assert.are.equal(tonumber(b0.cmd_get) + 4 * #on_b, tonumber(b1.cmd_get))
    assert.are.equal(tonumber(b0.get_hits) + 4 * #on_b, tonumber(b1.get_hits))

    -- put back: a is sent its keys again
    out = g.json("POST", "/servers/" .. a.addr .. "/up")
    assert.are.same({ server = a.addr, state = "put back" }, out)
    g.wait_metric("gateway_server_admin_down", { server = a.addr }, function(v) return v == 0 end)
    g.wait_metric("gateway_server_up", { server = a.addr }, function(v) return v == 1 end)
    assert.are.equal("up", server_state(g.json("GET", "/config"), "main", a.addr))
    assert.are.equal("up", stats_state(a.addr))
    assert.is_true(route(on_a[1]).up)
    traffic(function(k, rep) assert.are.equal(F.value_reply(k, value_of(k)), rep) end)
    assert.are.equal(a1.cmd_get + 4 * #on_a, a.stat("cmd_get"))

    -- a failover pool: c's keys go to d while c is out, and /route says so
    local fkeys = keylist("fo:", 60)
    local fby = split_by_route(route, fkeys)
    local on_c = fby[c.addr]
    assert.is_true(on_c and #on_c > 0 and fby[d.addr] and #fby[d.addr] > 0, "keys on c and d")
    g.json("POST", "/servers/" .. c.addr .. "/down")
    for _, k in ipairs(on_c) do
      local rr = route(k)
      assert.are.equal(d.addr, rr.server, k)
      assert.is_true(rr.up)
    end
    local c_sets = c.stat("cmd_set")
    store_all(g.port, on_c, value_of)
    local on_d = d.held(on_c)
    for _, k in ipairs(on_c) do assert.are.equal(value_of(k), on_d[k], k .. " on d") end
    assert.are.equal(c_sets, c.stat("cmd_set"))
    g.json("POST", "/servers/" .. c.addr .. "/up")
    assert.are.equal(c.addr, route(on_c[1]).server)

    -- what is not a server, or not a POST
    assert.are.same({ server = "127.0.0.1:1", state = "unknown" },
      g.json("POST", "/servers/127.0.0.1:1/down", 404))
    assert.are.equal(404, (g.http("POST", "/servers/" .. a.addr .. "/sideways")))
    assert.are.equal(404, (g.http("POST", "/servers//down")))
    assert.are.equal(404, (g.http("POST", "/servers/" .. a.addr)))
    local st, headers = g.http("GET", "/servers/" .. a.addr .. "/down")
    assert.are.equal(405, st)
    assert.are.equal("POST", headers.allow)
    assert.are.equal("up", stats_state(a.addr))
    g.assert_alive()
  end)
end)

-- /reload ----------------------------------------------------------------------------------

describe("POST /reload", function()
  it("answers the next generation with the change live, moves the admin listener itself, " ..
     "and refuses a broken config with file:line", function()
    local add, stop_all = stopper()
    finally(stop_all)
    local a, b = memcached(add), memcached(add)
    -- The changes below come in modules the config requires only if they
    -- exist.  A module that was missing is not watched, so its creation
    -- reloads nothing by itself: only the POST can make it live, and the
    -- generations are exact.
    local g = start_gateway(add, string.format([[
      local function optional(name)
        local ok, m = pcall(require, name)
        return ok and m or {}
      end
      local routing, admin = optional("routing"), optional("admin")
      gateway.admin(admin.addr or "@ADMIN@")
      gateway.settings { threads = 2 }
      local a = memcache.pool { name = "a", servers = { "%s" } }
      local b = memcache.pool { name = "b", servers = { "%s" } }
      memcache.route { default = routing.default == "b" and b or a }
    ]], a.addr, b.addr))
    local function stats_config() return parse_stats(g.stats("config")) end
    -- a set through the gateway, and where it landed
    local n = 0
    local function set_lands()
      n = n + 1
      local k = "r" .. n
      assert.are.equal("STORED\r\n", g.call(F.set_cmd(k, "x")))
      local on_a, on_b = a.held({ k })[k], b.held({ k })[k]
      assert(not (on_a and on_b), k .. " on both")
      return on_a and "a" or on_b and "b" or "nowhere"
    end
    assert.are.equal("a", set_lands())

    -- 1. nothing changed: still a reload, generation 2
    assert.are.same({ result = "ok", generation = 2 }, g.json("POST", "/reload"))
    assert.are.equal(2, g.json("GET", "/config").generation)
    local sc = stats_config()
    assert.are.equal("2", sc.generation)
    assert.are.equal("ok", sc.last_reload_result)
    g.wait_metric("gateway_config_reloads_total", nil, function(v) return v == 1 end)
    g.wait_metric("gateway_config_generation", nil, function(v) return v == 2 end)

    -- 2. a change: live when the answer comes
    write_file(g.dir .. "/routing.lua", 'return { default = "b" }\n')
    assert.are.same({ result = "ok", generation = 3 }, g.json("POST", "/reload"))
    assert.are.equal("b", set_lands())

    -- 3. the admin listener moves: the old port answers, the new one serves,
    -- the old one closes
    local new_admin = H.free_port()
    write_file(g.dir .. "/admin.lua", string.format('return { addr = "127.0.0.1:%d" }\n', new_admin))
    local st, _, body = H.http(g.admin_port, "POST", "/reload", nil, 10)
    assert.are.equal(200, st, body)
    assert.are.same({ result = "ok", generation = 4 }, H.json(body))
    wait_for(function()
      local ok, code, _, text = pcall(H.http, new_admin, "GET", "/healthz")
      return ok and code == 200 and text == "ok\n", tostring(code)
    end, 5, "the admin listener on its new port")
    H.wait_until(function() return not H.can_connect(g.admin_port) end, 5, "the old admin port closed")
    g.admin_port, g.admin_addr = new_admin, "127.0.0.1:" .. new_admin
    assert.are.equal(g.admin_addr, g.json("GET", "/config").admin)

    -- 4. a syntax error at line 3: 422 naming it, and nothing changes
    local lines = {}
    for l in (g.text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
    lines[3] = "  local broken = = 1"
    write_file(g.config, table.concat(lines, "\n"))
    st, _, body = g.http("POST", "/reload")
    assert.are.equal(422, st, body)
    local failed = H.json(body)
    assert.are.equal("failed", failed.result)
    assert.are.equal(4, failed.generation)
    assert.matches("^gateway%.lua:3: ", failed.error)
    assert.is_nil(failed.error:find(g.dir, 1, true), "the error names the directory: " .. failed.error)
    assert.are.equal("b", set_lands())
    local cfg = g.json("GET", "/config")
    assert.are.equal(4, cfg.generation)
    assert.are.equal("failed", cfg.last_reload_result)
    assert.matches("^gateway%.lua:3: ", cfg.last_reload_error)
    sc = stats_config()
    assert.are.equal("4", sc.generation)
    assert.are.equal("failed", sc.last_reload_result)
    assert.matches("^gateway%.lua:3: ", sc.last_reload_error)
    g.wait_metric("gateway_config_reload_failures_total", nil, function(v) return v >= 1 end)
    assert.are.equal(4, metric(g.metrics(), "gateway_config_generation"))

    -- SIGTERM still ends it promptly (the retired admin listener included)
    g.assert_alive()
    H.run("kill -TERM " .. g.pid)
    H.wait_until(function() return not g.alive() end, 10, "the gateway to exit on SIGTERM")
  end)
end)

-- /healthz --------------------------------------------------------------------------------

describe("/healthz", function()
  it("is 503 naming a pool without failover whose servers are all down, 200 when one is back", function()
    local add, stop_all = stopper()
    finally(stop_all)
    local a, b, c = memcached(add), memcached(add), memcached(add)
    local g = start_gateway(add, string.format([[
      gateway.admin "@ADMIN@"
      gateway.settings { threads = 2 }
      local solo = memcache.pool { name = "solo", servers = { "%s" }, retry_timeout = 0.5 }
      -- a second pool on a, named by a part of the first's name
      local so = memcache.pool { name = "so", servers = { "%s" }, retry_timeout = 0.5 }
      local pair = memcache.pool { name = "pair", servers = { "%s", "%s" }, failover = "next",
                                   retry_timeout = 0.5 }
      memcache.route { ["s:"] = solo, ["so:"] = so, default = pair }
    ]], a.addr, a.addr, b.addr, c.addr))
    local function health()
      local st, headers, body = g.http("GET", "/healthz")
      assert.are.equal("text/plain; charset=utf-8", headers["content-type"])
      return st, body
    end
    local function poke(keys)
      local conn = H.connect(g.port, RAW)
      for _, k in ipairs(keys) do conn:call("get " .. k .. "\r\n") end
      conn:close()
    end
    local st, body = health()
    assert.are.equal(200, st)
    assert.are.equal("ok\n", body)

    -- one server of the failover pool dead: marked down, still healthy
    b.kill()
    wait_for(function()
      poke(keylist("p:", 20))
      local v = metric(g.metrics(), "gateway_server_up", { server = b.addr })
      return v == 0, v
    end, 10, "b marked down")
    st, body = health()
    assert.are.equal(200, st, body)

    -- every server of solo (and of so) dead: both named
    a.kill()
    local why = wait_for(function()
      poke(keylist("s:", 4))
      local code, text = health()
      return code == 503 and text, code .. " " .. text
    end, 10, "/healthz 503")
    local entries = {}
    for e in why:gsub("\n$", ""):gmatch("[^;]+") do entries[#entries + 1] = (e:gsub("^ ", "")) end
    table.sort(entries)
    assert.are.same({ "pool so: every server is down", "pool solo: every server is down" }, entries,
      show(why))
    -- back: the gateway probes it
    a.start()
    wait_for(function()
      local code, text = health()
      return code == 200 and text == "ok\n", code .. " " .. text
    end, 15, "/healthz 200 again")
    assert.are.equal("STORED\r\n", g.call(F.set_cmd("s:1", "back")))
    g.assert_alive()
  end)

  it("is 503 'shutting down' while SIGTERM lets requests in flight finish", function()
    local add, stop_all = stopper()
    finally(stop_all)
    local slow = F.slow_server(3)
    add(slow.stop)
    local g = start_gateway(add, string.format([[
      gateway.admin "@ADMIN@"
      memcache.route { default = memcache.pool { servers = { "%s" }, timeout = 10 } }
    ]], slow.addr))
    local conn = H.connect(g.port, { timeout = 10, whole_reply = true })
    add(function() conn:close() end)
    conn:send("get slow1\r\n")
    H.wait_until(function() return slow.seen():find("get slow1", 1, true) end, 5, "the get at the server")
    H.run("kill -TERM " .. g.pid)
    wait_for(function()
      local ok, st, _, body = pcall(g.http, "GET", "/healthz")
      return ok and st == 503 and body == "shutting down\n", tostring(st) .. " " .. tostring(body)
    end, 3, "/healthz 503 while draining")
    assert.are.equal(F.value_reply("slow1", "slow:slow1"), conn:reply())
    H.wait_until(function() return not g.alive() end, 10, "the gateway to exit")
  end)
end)

-- /config ---------------------------------------------------------------------------------------

describe("/config", function()
  it("shows the generation, files and their hashes, listeners, pools and servers, routes, settings", function()
    local add, stop_all = stopper()
    finally(stop_all)
    local a, b = memcached(add), memcached(add)
    local p1, p2 = H.free_port(), H.free_port()
    local module_text = string.format('return { "%s", "%s" }\n', a.addr, b.addr)
    local text = string.format([[
      gateway.listen { "127.0.0.1:%d", name = "front", stats = "read", flush = "deny" }
      gateway.listen "127.0.0.1:%d"
      gateway.admin "@ADMIN@"
      gateway.settings { threads = 2 }
      local servers = require "adminspec_servers"
      local main = memcache.pool { name = "main", servers = { servers[1], { servers[2], weight = 3 } },
                                   hash = "ketama", failover = "next", timeout = 0.25 }
      local near = memcache.internal { size = "8MB" }
      memcache.route { ["c:"] = near, ["fn:"] = function(req) return main end, default = main }
    ]], p1, p2)
    local started = os.time()
    local g = start_gateway(add, text, { ports = { p1, p2 },
      files = { ["adminspec_servers.lua"] = module_text } })
    local cfg = g.json("GET", "/config")

    assert.are.equal(1, cfg.generation)
    assert.are.equal("none", cfg.last_reload_result)
    assert.is_true(cfg.loaded_at >= started - 5 and cfg.loaded_at <= os.time() + 5, cfg.loaded_at)
    assert.are.equal(g.config, cfg.config)
    assert.are.same({
      { path = g.config, bytes = #g.text, fnv1a64 = fnv1a64(g.text) },
      { path = g.dir .. "/adminspec_servers.lua", bytes = #module_text, fnv1a64 = fnv1a64(module_text) },
    }, cfg.files)
    table.sort(cfg.listeners, function(x, y) return x.addr < y.addr end)
    local want_listeners = {
      { addr = "127.0.0.1:" .. p1, name = "front", flush = "deny", stats = "read" },
      { addr = "127.0.0.1:" .. p2, flush = "all", stats = "all" },
    }
    table.sort(want_listeners, function(x, y) return x.addr < y.addr end)
    assert.are.same(want_listeners, cfg.listeners)
    assert.are.equal(g.admin_addr, cfg.admin)

    local pools = {}
    for _, p in ipairs(cfg.pools) do pools[p.name] = p end
    assert.are.same({ name = "main", kind = "servers", hash = "ketama", failover = "next",
      multiget_error = false, protocol = "meta", servers = {
        { server = a.addr, weight = 1, state = "up", queue = 0, timeout = 0.25 },
        { server = b.addr, weight = 3, state = "up", queue = 0, timeout = 0.25 },
      } }, pools.main)
    local internal
    for _, p in ipairs(cfg.pools) do if p.kind == "internal" then internal = p end end
    assert.is_truthy(internal, "no internal pool")
    assert.are.equal(8 * 1024 * 1024, internal.size)

    local routes = {}
    for _, r in ipairs(cfg.routes) do routes[r.prefix] = r end
    assert.are.same({ prefix = "c:", target = "pool", pool = internal.name }, routes["c:"])
    assert.are.same({ prefix = "fn:", target = "function" }, routes["fn:"])
    assert.are.same({ prefix = "default", target = "pool", pool = "main" }, routes.default)
    assert.are.equal(3, #cfg.routes)
    assert.are.equal(2, cfg.settings.threads)
    assert.are.same({}, cfg.waiting_for_restart)

    -- the same files and listeners in the metrics and over the memcached protocol
    local m = g.metrics()
    assert.are.equal(1, metric(m, "gateway_config_file_info",
      { file = "gateway.lua", fnv1a64 = fnv1a64(g.text) }))
    assert.are.equal(1, metric(m, "gateway_config_file_info",
      { file = "adminspec_servers.lua", fnv1a64 = fnv1a64(module_text) }))
    assert.are.equal(1, metric(m, "gateway_listener_info", { addr = "127.0.0.1:" .. p1, name = "front" }))
    local settings = H.request(p2, "stats settings\r\n", RAW)
    assert.truthy(settings:find("STAT listen 127.0.0.1:" .. p1 .. " front\r\n", 1, true), settings)
    assert.truthy(settings:find("STAT listen 127.0.0.1:" .. p2 .. "\r\n", 1, true), settings)

    -- a setting that waits for a restart, after a reload
    local edited = g.text:gsub("threads = 2", "threads = 3")
    write_file(g.config, edited)
    local out = g.json("POST", "/reload")
    assert.are.equal("ok", out.result)
    cfg = g.json("GET", "/config")
    assert.is_true(cfg.generation >= 2)
    assert.are.same({ "threads" }, cfg.waiting_for_restart)
    assert.are.equal(2, cfg.settings.threads)
    assert.are.equal(fnv1a64(edited), cfg.files[1].fnv1a64)
    g.assert_alive()
  end)
end)

-- Hostile HTTP ---------------------------------------------------------------------------------

-- A child that opens n connections to the admin port at once, each sending
-- GET /healthz, and reports how many were served while all were held
-- (the rest waited or were closed); then, still holding them, a set and a
-- get on the memcached port; then it closes them all and asks /healthz on
-- a fresh connection.  Writes one line to its result file.
local MANY_PY = [==[
import errno, resource, selectors, socket, sys, time
admin, mport, n, result, cap = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = n + 64
if soft != resource.RLIM_INFINITY and soft < want:
    resource.setrlimit(resource.RLIMIT_NOFILE, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))
REQ = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"

def finish(line):
    with open(result + ".tmp", "w") as f:
        f.write(line + "\n")
    import os
    os.rename(result + ".tmp", result)
    sys.exit(0)

sel = selectors.DefaultSelector()
bufs, socks = {}, []
refused = closed = served = 0
for i in range(n):
    s = socket.socket()
    s.setblocking(False)
    e = s.connect_ex(("127.0.0.1", admin))
    if e not in (0, errno.EINPROGRESS):
        refused += 1
        s.close()
        continue
    socks.append(s)
    bufs[s] = b""
    sel.register(s, selectors.EVENT_WRITE)
pending = len(socks)
# Until the cap's worth are served (a slow machine, a sanitizer build,
# takes its time) and a second passes with none served more, but within
# the idle timeout (10 s) of the first served connections, which stay open
# (HTTP/1.1 keep-alive): no slot frees meanwhile, so more than the cap
# served would mean the cap failed.
end = time.time() + 8
last_served = time.time()
while pending and time.time() < end and not (served >= cap and time.time() - last_served > 1):
    for key, ev in sel.select(0.2):
        s = key.fileobj
        if ev & selectors.EVENT_WRITE:
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                refused += 1; sel.unregister(s); pending -= 1
                continue
            try:
                s.send(REQ)
                sel.modify(s, selectors.EVENT_READ)
            except OSError:
                closed += 1; sel.unregister(s); pending -= 1
            continue
        try:
            d = s.recv(4096)
        except OSError:
            d = b""
        if not d:
            closed += 1; sel.unregister(s); pending -= 1
            continue
        bufs[s] += d
        if bufs[s].startswith(b"HTTP/1.1 200 ") and bufs[s].endswith(b"\r\n\r\nok\n"):
            served += 1; sel.unregister(s); pending -= 1
            last_served = time.time()

# memcached through the gateway, with all of them still open
m = socket.create_connection(("127.0.0.1", mport), timeout=5)
m.sendall(b"set many:1 0 0 2\r\nok\r\nget many:1\r\n")
want_mc = b"STORED\r\nVALUE many:1 0 2\r\nok\r\nEND\r\n"
got = b""
while len(got) < len(want_mc):
    d = m.recv(4096)
    if not d:
        break
    got += d
m.close()
if got != want_mc:
    finish("memcached answered %r" % got)

for s in socks:
    s.close()
deadline = time.time() + 20
while True:
    try:
        c = socket.create_connection(("127.0.0.1", admin), timeout=2)
        c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        out = b""
        while True:
            d = c.recv(4096)
            if not d:
                break
            out += d
        c.close()
        if out.startswith(b"HTTP/1.1 200 ") and out.endswith(b"ok\n"):
            break
    except OSError:
        pass
    if time.time() > deadline:
        finish("no /healthz after closing them")
    time.sleep(0.05)
finish("ok served=%d waiting=%d closed=%d refused=%d" % (served, pending, closed, refused))
]==]

describe("hostile HTTP on the admin port", function()
  it("gets 4xx or a closed connection, never a crash, while memcached clients are served", function()
    local add, stop_all = stopper()
    finally(stop_all)
    local a = memcached(add)
    local g = start_gateway(add, string.format([[
      gateway.admin "@ADMIN@"
      gateway.settings { threads = 2 }
      memcache.route { default = memcache.pool { name = "main", servers = { "%s" } } }
    ]], a.addr))
    local mc = H.connect(g.port, RAW)
    add(function() mc:close() end)
    local served = 0
    local function memcached_ok()
      served = served + 1
      local k = "alive:" .. served
      assert.are.equal("STORED\r\n", mc:call(F.set_cmd(k, "v")))
      assert.are.equal(F.value_reply(k, "v"), mc:call("get " .. k .. "\r\n"))
    end

    -- Connections whose answer (a 4xx/5xx, or being closed) is awaited at
    -- the end, together: a stalled one is closed only by the idle timeout.
    local pending = {}
    local function open(name, bytes)
      local c = H.connect(g.admin_port, RAW)
      add(function() c:close() end)
      if bytes then pcall(c.send, c, bytes) end
      pending[#pending + 1] = { name = name, conn = c, buf = "" }
      return c
    end

    -- a slowloris: the headers a byte every 20 ms (the client's pace, not a
    -- wait), admin and memcached answering others meanwhile, then silence
    local slow = open("slowloris, stalled mid-header")
    local partial = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " .. string.rep("s", 20)
    for i = 1, #partial do
      slow:send(partial:sub(i, i))
      if i % 5 == 0 then
        local st, _, body = g.http("GET", "/healthz")
        assert.are.equal(200, st, body)
        memcached_ok()
      end
      socket.sleep(0.02)
    end
    local stalled_at = socket.gettime()

    -- malformed, or never finished
    open("no version", "BLAH\r\n\r\n")
    open("a method alone", "GET\r\n\r\n")
    open("HTTP/9.9", "GET /metrics HTTP/9.9\r\nHost: x\r\n\r\n")
    open("binary", "\0\1\2\255 junk\r\n\r\n")
    open("header without a colon", "GET /metrics HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
    open("bad Content-Length", "POST /reload HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")
    open("a body that never comes", "POST /reload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc")
    -- 100 KB of header (the sending may fail once the gateway has answered)
    open("a 100 KB header", "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " .. string.rep("b", 100 * 1024)
      .. "\r\n\r\n")
    open("a 40 KB URL", "GET /metrics?" .. string.rep("u", 40 * 1024) .. " HTTP/1.1\r\nHost: x\r\n\r\n")

    -- methods and paths that are not served
    for _, case in ipairs({
      { "PUT", "/metrics", 405, "GET, HEAD" }, { "DELETE", "/metrics", 405, "GET, HEAD" },
      { "POST", "/metrics", 405, "GET, HEAD" }, { "PUT", "/config", 405, "GET, HEAD" },
      { "DELETE", "/healthz", 405, "GET, HEAD" }, { "POST", "/route?key=k", 405, "GET, HEAD" },
      { "GET", "/reload", 405, "POST" }, { "PUT", "/reload", 405, "POST" },
      { "DELETE", "/reload", 405, "POST" }, { "DELETE", "/servers/" .. a.addr .. "/down", 405, "POST" },
      { "GET", "/nope", 404 }, { "PUT", "/nope", 404 }, { "GET", "/", 404 },
      { "GET", "/metrics/", 404 }, { "GET", "/metricsx", 404 },
    }) do
      local st, headers = g.http(case[1], case[2])
      assert.are.equal(case[3], st, case[1] .. " " .. case[2])
      assert.are.equal(case[4], headers.allow, case[1] .. " " .. case[2])
    end
    memcached_ok()

    -- 1,000 connections at once, from a child process
    local result = string.format("%s/admin-many-%d.out", H.tmpdir, g.port)
    os.remove(result)
    local script = string.format("%s/admin-many-%d.py", g.dir, g.port)
    write_file(script, MANY_PY)
    H.run(string.format("%s %s %d %d 1000 %s %d >/dev/null 2>&1 &", H.quote(H.python), H.quote(script),
      g.admin_port, g.port, H.quote(result), ADMIN_MAX_CONNECTIONS - #pending))

    -- Now wait for every pending connection to be answered or closed
    -- (the stalled ones: by the idle timeout), serving memcached meanwhile.
    local deadline = stalled_at + ADMIN_IDLE_TIMEOUT + 8
    local left = #pending
    while left > 0 do
      for _, p in ipairs(pending) do
        if not p.outcome then
          p.conn.sock:settimeout(0)
          local data, err, partial_data = p.conn.sock:receive(65536)
          data = data or partial_data
          if data and #data > 0 then p.buf = p.buf .. data end
          local status = tonumber(p.buf:match("^HTTP/1%.%d (%d%d%d) .-\r\n\r\n"))
          if status then
            p.outcome = status
          elseif err and err ~= "timeout" then
            p.outcome = "closed"   -- EOF or reset, with no (whole) answer
          end
          if p.outcome then left = left - 1 end
        end
      end
      if left > 0 then
        if socket.gettime() > deadline then
          local open_ones = {}
          for _, p in ipairs(pending) do
            if not p.outcome then open_ones[#open_ones + 1] = p.name .. " " .. show(p.buf) end
          end
          error("still open after the idle timeout: " .. table.concat(open_ones, "; "))
        end
        memcached_ok()
        socket.sleep(0.05)
      end
    end
    for _, p in ipairs(pending) do
      assert(p.outcome == "closed" or p.outcome >= 400,
        p.name .. ": answered " .. tostring(p.outcome) .. "\n" .. show(p.buf))
    end
    for _, p in ipairs(pending) do
      if p.name == "a 100 KB header" and p.outcome ~= "closed" then
        assert.is_truthy(({ [400] = 1, [413] = 1, [431] = 1 })[p.outcome], "100 KB header: " .. p.outcome)
      end
      if p.name == "slowloris, stalled mid-header" then
        assert.are.equal("closed", p.outcome)
      end
    end

    -- the 1,000: at most the cap served at once, memcached fine, /healthz after
    local line = wait_for(function()
      local s = H.read_file(result)
      return s ~= "" and s, "no result yet"
    end, 40, "the 1,000 connections")
    os.remove(result)
    local n_served, waiting, closed, refused = line:match("^ok served=(%d+) waiting=(%d+) closed=(%d+) refused=(%d+)")
    assert(n_served, "the 1,000 connections: " .. line)
    n_served = tonumber(n_served)
    -- the cap, less the slots the connections above may still hold
    assert.is_true(n_served >= ADMIN_MAX_CONNECTIONS - #pending and n_served <= ADMIN_MAX_CONNECTIONS,
      line)
    assert.are.equal(1000, n_served + tonumber(waiting) + tonumber(closed) + tonumber(refused), line)

    -- and afterwards
    memcached_ok()
    local st, _, body = g.http("GET", "/healthz")
    assert.are.equal(200, st)
    assert.are.equal("ok\n", body)
    assert.are.equal(1, g.json("GET", "/config").generation)   -- no bad request reloaded
    g.assert_alive()
    assert.is_nil(g.output():find("AddressSanitizer", 1, true))
  end)
end)

-- stats over the memcached protocol ------------------------------------------------------

describe("stats servers, pools, config and settings", function()
  it("report requests, state, generation and files as they are", function()
    local add, stop_all = stopper()
    finally(stop_all)
    local g, a, b = admin_gateway_over_two(add)
    local route = router(add, g)
    local by = split_by_route(route, keylist("s:", 40))
    local on_a, on_b = by[a.addr], by[b.addr]
    assert.is_true(on_a and on_b and #on_a > 0 and #on_b > 0, "keys on both servers")

    -- "STAT host:port pool:P state:S requests:N errors:N queue:N avg_latency_us:F"
    local function servers()
      local out = {}
      local rep = g.stats("servers")
      for line in rep:gmatch("([^\r\n]+)\r\n") do
        if line ~= "END" then
          local addr, pool, state, req, err, queue, lat = line:match(
            "^STAT (%S+) pool:(%S+) state:(%S+) requests:(%d+) errors:(%d+) queue:(%d+) avg_latency_us:([%d.]+)$")
          assert(addr, "bad stats servers line: " .. show(line))
          out[addr] = { pool = pool, state = state, requests = tonumber(req), errors = tonumber(err),
                        queue = tonumber(queue), latency = tonumber(lat) }
        end
      end
      assert(rep:sub(-5) == "END\r\n", show(rep))
      return out
    end
    local s = servers()
    assert.are.same({ pool = "main", state = "up", requests = 0, errors = 0, queue = 0, latency = 0 },
      s[a.addr])
    assert.are.equal("up", s[b.addr].state)

    local a_get, a_set = a.stat("cmd_get"), a.stat("cmd_set")
    local keys = {}
    for _, k in ipairs(on_a) do keys[#keys + 1] = k end
    for _, k in ipairs(on_b) do keys[#keys + 1] = k end
    store_all(g.port, keys, value_of)
    local conn = H.connect(g.port, RAW)
    for _, k in ipairs(keys) do
      assert.are.equal(F.value_reply(k, value_of(k)), conn:call("get " .. k .. "\r\n"))
    end
    conn:close()
    -- one set and one get per key: as many requests as memcached counted
    s = wait_for(function()
      local v = servers()
      return v[a.addr].requests == 2 * #on_a and v[b.addr].requests == 2 * #on_b and v,
        string.format("a %d, b %d", v[a.addr].requests, v[b.addr].requests)
    end, 5, "stats servers to count the requests")
    assert.are.equal(#on_a, a.stat("cmd_get") - a_get)
    assert.are.equal(#on_a, a.stat("cmd_set") - a_set)
    assert.are.equal(0, s[a.addr].errors)
    assert.is_true(s[a.addr].latency > 0, "avg_latency_us")
    assert.are.equal("STAT main requests:" .. (2 * #keys) .. " errors:0\r\nEND\r\n", g.stats("pools"))

    -- kill -9 a: down (with errors) once its keys find it dead; back when restarted
    a.kill()
    s = wait_for(function()
      local c = H.connect(g.port, RAW)
      for _, k in ipairs(on_a) do c:call("get " .. k .. "\r\n") end
      c:close()
      local v = servers()
      return v[a.addr].state == "down" and v, v[a.addr].state
    end, 10, "stats servers to say a is down")
    assert.is_true(s[a.addr].errors > 0)
    assert.are.equal("up", s[b.addr].state)
    assert.is_true(tonumber(g.stats("pools"):match("errors:(%d+)")) > 0)
    a.start()
    wait_for(function()
      local v = servers()[a.addr].state
      return v == "up", v
    end, 15, "stats servers to say a is up")

    -- stats config: generation, the files and their hash; after reloads
    local sc = parse_stats(g.stats("config"))
    assert.are.equal("1", sc.generation)
    assert.are.equal("none", sc.last_reload_result)
    assert.is_true(math.abs(tonumber(sc.loaded_at) - os.time()) < 600, sc.loaded_at)
    assert.are.equal("gateway.lua " .. fnv1a64(g.text), sc.file)
    assert.are.same({ result = "ok", generation = 2 }, g.json("POST", "/reload"))
    sc = parse_stats(g.stats("config"))
    assert.are.equal("2", sc.generation)
    assert.are.equal("ok", sc.last_reload_result)
    H.run("kill -HUP " .. g.pid)
    wait_for(function()
      local v = parse_stats(g.stats("config")).generation
      return v == "3", v
    end, 5, "generation 3 after SIGHUP")
    -- a broken save: the watcher's reload fails, the generation stays
    write_file(g.config, g.text .. "\nthis is not lua\n")
    sc = wait_for(function()
      local v = parse_stats(g.stats("config"))
      return v.last_reload_result == "failed" and v, v.last_reload_result
    end, 5, "the failed reload in stats config")
    assert.are.equal("3", sc.generation)
    assert.matches("^gateway%.lua:%d+: ", sc.last_reload_error)
    assert.are.equal("gateway.lua " .. fnv1a64(g.text), sc.file)

    -- stats settings: the listen address (with -l: that one)
    local settings = parse_stats(g.stats("settings"))
    assert.are.equal("127.0.0.1:" .. g.port, settings.listen)
    assert.are.equal("2", settings.num_threads)
    g.assert_alive()
  end)
end)

-- gateway.admin in the config ----------------------------------------------------------------

describe("gateway.admin", function()
  local function check(text)
    local path = H.write_config(text, "admin-check-" .. H.free_port() .. ".lua")
    local out, ok = H.run(H.quote(H.gateway_bin) .. " --check " .. H.quote(path) .. " 2>&1")
    os.remove(path)
    return ok, out, path
  end
  local ROUTE = "memcache.route { default = memcache.internal { size = \"1MB\" } }\n"

  it("refuses a bad address at file:line", function()
    for _, spec in ipairs({ '"nohost:xx"', '"127.0.0.1:0"', '"127.0.0.1:70000"', "0", "70000", '"0"',
                            '"127.0.0.1"', '"9100x"', "{}", "9100.5" }) do
      local ok, out, path = check("-- line 1\n\ngateway.admin(" .. spec .. ")\n" .. ROUTE)
      assert.is_false(ok, spec .. ": " .. out)
      assert.matches("^" .. path:gsub("%p", "%%%0") .. ":3: gateway%.admin: ", out)
    end
  end)

  it("takes host:port, a port number or a port string", function()
    for _, spec in ipairs({ '"127.0.0.1:9100"', '"localhost:9100"', "9100", '"9100"' }) do
      local ok, out = check("gateway.admin(" .. spec .. ")\n" .. ROUTE)
      assert.is_true(ok, spec .. ": " .. out)
    end
  end)

  it("may be given once", function()
    local ok, out, path = check("gateway.admin(9100)\ngateway.admin \"127.0.0.1:9101\"\n" .. ROUTE)
    assert.is_false(ok)
    local n = path:gsub("%p", "%%%0")
    assert.matches("^" .. n .. ":2: gateway%.admin: already given at " .. n .. ":1", out)
  end)

  it("stops the start when its port is taken", function()
    local taken = assert(socket.bind("127.0.0.1", 0))
    local _, port = taken:getsockname()
    local path = H.write_config(string.format('gateway.admin(%d)\n%s', port, ROUTE),
      "admin-taken-" .. port .. ".lua")
    local out, ok = H.run(string.format("%s -l 127.0.0.1:%d %s 2>&1", H.quote(H.gateway_bin),
      H.free_port(), H.quote(path)))
    taken:close()
    os.remove(path)
    assert.is_false(ok, out)
    assert.truthy(out:find("admin 127.0.0.1:" .. port .. ": ", 1, true), out)
  end)
end)
