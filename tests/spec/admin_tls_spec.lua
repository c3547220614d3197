-- admin_tls_spec.lua -- the admin listener's tls and bearer token
-- (gateway.admin { "host:port", tls = {...}, token = "..." }), against
-- curl, raw sockets and a real Prometheus.
--
-- A test CA, another CA, a server certificate for 127.0.0.1 and client
-- certificates of each CA (ECDSA P-256) are made with the openssl command
-- at setup, in a folder of its own under tests/tmp.  What must hold:
--   * curl over https with the test CA gets /metrics; without the token
--     or with a wrong one it gets 401 with WWW-Authenticate: Bearer
--     realm="gateway", with it 200; /healthz needs none; the refusals are
--     counted and logged, never with a token;
--   * plain HTTP to the TLS port is closed, and the gateway serves on;
--   * verify = "required": no client certificate is refused, one of
--     another CA gets 403, one of the CA 200; "optional" serves one
--     without; min_version = "1.3" refuses TLS 1.2;
--   * a token_file is read, and saving a new token reloads;
--   * a reload with a bad certificate is refused, naming the file, and
--     the old admin listener keeps serving; one with a new token replaces
--     it on the same port, a POST /reload's own listener included;
--   * a real Prometheus scrapes it with authorization: Bearer and
--     tls_config: ca_file;
--   * config errors name file:line; --check checks the admin's files; an
--     admin listener beyond loopback with neither tls nor token is warned of.
-- Every wait is on a condition with a deadline.
--
-- Run from the repo root:
--   busted --lpath='./lua/?.lua;./lua/?/init.lua;./tests/spec/?.lua' tests/spec/admin_tls_spec.lua
local H = require "harness"

local NAME = "admin-tls-" .. H.free_port()
local DIR = H.tmpdir .. "/" .. NAME
local TOKEN = "tok3n-Admin_1"

local function sh(cmd)
  local out, ok = H.run("cd " .. H.quote(DIR) .. " && (" .. cmd .. ") 2>&1")
  assert(ok, cmd .. "\n" .. out)
  return out
end

-- NAME.pem and NAME.key, signed by ca, for CN cn (and 127.0.0.1 as SAN).
local function issue(name, cn, ca)
  sh(string.format("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes " ..
    "-keyout %s.key -subj /CN=%s -out %s.csr", name, cn, name))
  H.write_file(DIR .. "/" .. name .. ".ext", "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
  sh(string.format("openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key -CAcreateserial " ..
    "-days 3 -extfile %s.ext -out %s.pem", name, ca, ca, name, name))
end

local function make_certs()
  H.run("rm -rf " .. H.quote(DIR))
  os.execute("mkdir -p " .. H.quote(DIR))
  for _, ca in ipairs({ "ca", "rogue" }) do
    sh(string.format("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes " ..
      "-keyout %s.key -subj /CN=test-%s -days 3 -out %s.pem", ca, ca, ca))
  end
  issue("server", "localhost", "ca")
  issue("alice", "alice", "ca")
  issue("mallory", "mallory", "rogue")
end

-- curl to the admin port: status (0 when no HTTP answer came), headers
-- (lower-cased names), body, curl's exit code.  o.scheme (default https),
-- o.token, o.cert (a client certificate's name), o.method.
local function curl(port, path, o)
  o = o or {}
  local hdr = string.format("%s/curl-%d.h", DIR, port)
  local body = string.format("%s/curl-%d.b", DIR, port)
  os.remove(hdr)
  os.remove(body)
  local args = { "curl -s --max-time 5 -o", H.quote(body), "-D", H.quote(hdr),
    "-w '%{http_code}'", "--cacert", H.quote(DIR .. "/ca.pem") }
  if o.method then args[#args + 1] = "-X " .. o.method end
  if o.token then args[#args + 1] = "-H " .. H.quote("Authorization: Bearer " .. o.token) end
  if o.cert then
    args[#args + 1] = string.format("--cert %s --key %s", H.quote(DIR .. "/" .. o.cert .. ".pem"),
      H.quote(DIR .. "/" .. o.cert .. ".key"))
  end
  args[#args + 1] = H.quote(string.format("%s://127.0.0.1:%d%s", o.scheme or "https", port, path))
  local out, _, code = H.run(table.concat(args, " ") .. " 2>/dev/null")
  local headers = {}
  for line in (H.read_file(hdr) or ""):gmatch("[^\r\n]+") do
    local k, v = line:match("^([^:]+):%s*(.-)%s*$")
    if k then headers[k:lower()] = v end
  end
  return tonumber(out) or 0, headers, H.read_file(body) or "", code
end

-- A gateway over a real memcached whose config (in DIR, so "server.pem"
-- is this run's) says gateway.admin admin_spec; g.admin is its port.
local function start(add, admin_spec, files)
  local m = H.start_memcached()
  add(m.stop)
  local port, admin = H.free_port(), H.free_port()
  for name, text in pairs(files or {}) do H.write_file(DIR .. "/" .. name, text) end
  local text = string.format([[
gateway.listen "127.0.0.1:%d"
gateway.admin %s
gateway.settings { threads = 2 }
memcache.route { default = memcache.pool { servers = { "%s" } } }
]], port, (admin_spec:gsub("@ADMIN@", "127.0.0.1:" .. admin)), m.addr)
  local g = H.start_gateway(text, { port = port, own_listeners = true,
    config_name = NAME .. "/gateway-" .. port .. ".lua" })
  add(g.stop)
  g.admin = admin
  g.text = text
  H.wait_until(function() return H.can_connect(admin) end, 10, "the admin port")
  return g
end

local function has(text, needle) return text:find(needle, 1, true) ~= nil end

-- The value of a series in the gateway's /metrics text (nil: absent).
local function series(text, line_start)
  for line in text:gmatch("[^\n]+") do
    if line:sub(1, #line_start) == line_start then return tonumber(line:match("%s(%S+)$")) end
  end
end

describe("gateway.admin with tls and a token", function()
  local add, stop_all = H.cleanups()

  lazy_setup(make_certs)
  lazy_teardown(function() stop_all() end)

  it("serves /metrics over https to curl with the test CA, 200 with the token and 401 " ..
     "without it or with a wrong one; /healthz is open; refusals counted, tokens never logged",
     function()
    local g = start(add, string.format(
      '{ "@ADMIN@", tls = { cert = "server.pem", key = "server.key" }, token = %q }', TOKEN))

    H.wait_for(function()
      local s = curl(g.admin, "/metrics", { token = TOKEN })
      return s == 200, s
    end, 10, "/metrics over https")
    local st, _, body = curl(g.admin, "/metrics", { token = TOKEN })
    assert.are.equal(200, st)
    assert.is_truthy(has(body, "gateway_build_info"), body)

    local hd
    st, hd, body = curl(g.admin, "/metrics")
    assert.are.equal(401, st)
    assert.are.equal('Bearer realm="gateway"', hd["www-authenticate"])
    assert.is_falsy(has(body, "gateway_"), body)

    st, hd = curl(g.admin, "/config", { token = "not-the-token" })
    assert.are.equal(401, st)
    assert.is_truthy(hd["www-authenticate"]:find('^Bearer realm="gateway"'), hd["www-authenticate"])
    -- a prefix of the token, and the token with more after it, are wrong too
    assert.are.equal(401, (curl(g.admin, "/config", { token = TOKEN:sub(1, -2) })))
    assert.are.equal(401, (curl(g.admin, "/config", { token = TOKEN .. "x" })))
    assert.are.equal(401, (curl(g.admin, "/reload", { method = "POST" })))

    -- health probes carry no secret
    st, _, body = curl(g.admin, "/healthz")
    assert.are.equal(200, st)
    assert.are.equal("ok\n", body)

    -- /config says what protects it, never the token
    st, _, body = curl(g.admin, "/config", { token = TOKEN })
    assert.are.equal(200, st)
    local cfg = H.json(body)
    assert.are.equal(true, cfg.admin_token)
    assert.are.equal("none", cfg.admin_tls.verify)
    assert.is_falsy(has(body, TOKEN))

    -- counted (collected once a second) and logged, without any token
    H.wait_for(function()
      local _, _, m = curl(g.admin, "/metrics", { token = TOKEN })
      local v = series(m, 'gateway_admin_refused_total{reason="token"}')
      return v and v >= 5, v
    end, 10, "the refusals counted")
    local log = g.output()
    assert.is_truthy(has(log, "refused (401)"), log)
    assert.is_falsy(has(log, TOKEN:sub(1, 5)), log)
    assert.is_falsy(has(log, "not-the-token"), log)
    assert.is_truthy(has(log, "admin listener on https://127.0.0.1:" .. g.admin), log)
  end)

  it("closes plain HTTP on the TLS port, and serves on", function()
    local g = start(add, string.format(
      '{ "@ADMIN@", tls = { cert = "server.pem", key = "server.key" }, token = %q }', TOKEN))
    H.wait_until(function() return curl(g.admin, "/healthz") == 200 end, 10, "https")
    for _ = 1, 3 do
      -- curl over http: no HTTP answer
      local st, _, _, code = curl(g.admin, "/metrics", { scheme = "http", token = TOKEN })
      assert.are.equal(0, st)
      assert.are_not.equal(0, code)
      -- a raw plain request: the connection ends without an HTTP status
      local ok, err = pcall(H.http, g.admin, "GET", "/metrics", nil, 3)
      assert.is_false(ok)
      assert.is_falsy(tostring(err):match("HTTP/1%.1 200"), tostring(err))
    end
    assert.is_true(g.alive())
    assert.are.equal(200, (curl(g.admin, "/metrics", { token = TOKEN })))
  end)

  it("with verify = \"required\": refuses a client without a certificate or with one of " ..
     "another CA, serves one of the CA", function()
    local g = start(add, '{ "@ADMIN@", tls = { cert = "server.pem", key = "server.key", ' ..
      'ca = "ca.pem", verify = "required" } }')
    H.wait_until(function() return curl(g.admin, "/healthz", { cert = "alice" }) == 200 end, 10,
      "https with a client certificate")
    local st, _, body = curl(g.admin, "/metrics", { cert = "alice" })
    assert.are.equal(200, st)
    assert.is_truthy(has(body, "gateway_build_info"))
    -- no certificate: the handshake fails (no HTTP answer at all)
    st, _, body = curl(g.admin, "/metrics")
    assert.are.equal(0, st, body)
    assert.is_falsy(has(body, "gateway_build_info"))
    -- another CA's
    st, _, body = curl(g.admin, "/metrics", { cert = "mallory" })
    assert.are_not.equal(200, st)
    assert.is_falsy(has(body, "gateway_build_info"))
    assert.is_true(g.alive())
    assert.are.equal(200, (curl(g.admin, "/metrics", { cert = "alice" })))
  end)

  it("with verify = \"optional\": serves a client without a certificate or with one of the " ..
     "CA, refuses one of another CA; min_version = \"1.3\" refuses TLS 1.2", function()
    local g = start(add, '{ "@ADMIN@", tls = { cert = "server.pem", key = "server.key", ' ..
      'ca = "ca.pem", verify = "optional", min_version = "1.3" } }')
    H.wait_until(function() return curl(g.admin, "/healthz") == 200 end, 10, "https")
    assert.are.equal(200, (curl(g.admin, "/metrics")))
    assert.are.equal(200, (curl(g.admin, "/metrics", { cert = "alice" })))
    local st, _, body = curl(g.admin, "/metrics", { cert = "mallory" })
    assert.are.equal(403, st)
    assert.is_falsy(has(body, "gateway_build_info"))
    H.wait_for(function()
      local _, _, m = curl(g.admin, "/metrics")
      local v = series(m, 'gateway_admin_refused_total{reason="certificate"}')
      return v and v >= 1, v
    end, 10, "the certificate refusal counted")
    assert.is_truthy(has(g.output(), "refused (403)"), g.output())
    -- TLS 1.2 at most: no handshake
    local out, ok = H.run(string.format("curl -s --max-time 5 --tls-max 1.2 --cacert %s " ..
      "https://127.0.0.1:%d/healthz 2>&1", H.quote(DIR .. "/ca.pem"), g.admin))
    assert.is_false(ok, out)
    assert.is_falsy(has(out, "ok"), out)
    assert.are.equal(200, (curl(g.admin, "/healthz")))
  end)

  it("reads token_file, and saving a new token reloads", function()
    local g = start(add, '{ "@ADMIN@", token_file = "admin.token" }',
      { ["admin.token"] = "first-token\n" })
    local function get(token)
      local st = H.http(g.admin, "GET", "/metrics",
        token and { headers = { Authorization = "Bearer " .. token } } or nil)
      return st
    end
    H.wait_until(function() return get("first-token") == 200 end, 10, "the first token")
    assert.are.equal(401, get(nil))
    assert.are.equal(401, get("first-token-and-more"))
    assert.are.equal(401, (H.http(g.admin, "GET", "/metrics",
      { headers = { Authorization = "Basic Zmlyc3QtdG9rZW4=" } })))
    H.write_file(DIR .. "/admin.token", "second-token\n")
    H.wait_for(function()
      local a, b = get("second-token"), get("first-token")
      return a == 200 and b == 401, a .. " " .. b
    end, 10, "the second token in force, the first refused")
  end)

  it("refuses a reload with a bad certificate, naming the file, and the old admin serves on; " ..
     "a reload with a new token replaces it on the same port", function()
    local g = start(add, string.format(
      '{ "@ADMIN@", tls = { cert = "server.pem", key = "server.key" }, token = %q }', TOKEN))
    H.wait_until(function() return curl(g.admin, "/metrics", { token = TOKEN }) == 200 end, 10,
      "https")
    -- the key of another certificate
    local bad = g.text:gsub('key = "server%.key"', 'key = "alice.key"')
    H.write_file(g.config, bad)
    H.wait_for(function()
      local st, _, body = curl(g.admin, "/config", { token = TOKEN })
      local cfg = st == 200 and H.json(body)
      return cfg and cfg.last_reload_result == "failed" and cfg, body
    end, 10, "the reload refused")
    local st, _, body = curl(g.admin, "/config", { token = TOKEN })
    local cfg = H.json(body)
    assert.is_truthy(cfg.last_reload_error:find("alice.key", 1, true), cfg.last_reload_error)
    assert.is_truthy(cfg.last_reload_error:find("gateway.admin", 1, true), cfg.last_reload_error)
    assert.are.equal(1, cfg.generation)
    -- the old one serves, with its certificate and token
    st, _, body = curl(g.admin, "/metrics", { token = TOKEN })
    assert.are.equal(200, st)
    assert.is_truthy(has(body, "gateway_build_info"))
    assert.is_truthy(has(g.output(), "does not match the certificate"), g.output())

    -- a good config with another token: in force on the same port
    local good = g.text:gsub(TOKEN:gsub("%p", "%%%0"), "renewed-token")
    H.write_file(g.config, good)
    H.wait_for(function()
      local a = curl(g.admin, "/metrics", { token = "renewed-token" })
      local b = curl(g.admin, "/metrics", { token = TOKEN })
      return a == 200 and b == 401, a .. " " .. b
    end, 10, "the renewed token in force, the old one refused")
    st, _, body = curl(g.admin, "/config", { token = "renewed-token" })
    assert.are.equal(2, H.json(body).generation)

    -- POST /reload whose config changes the token: the daemon answering it
    -- is the one replaced, and it still answers
    local text = H.read_file(g.config):gsub("renewed%-token", "third-token")
    H.write_file(g.config, text)
    local answer
    st, _, answer = curl(g.admin, "/reload", { method = "POST", token = "renewed-token" })
    if st == 401 then
      -- the file's own reload came first: the new token is in force already
      st, _, answer = curl(g.admin, "/reload", { method = "POST", token = "third-token" })
    end
    assert.are.equal(200, st, answer)
    assert.are.equal("ok", H.json(answer).result)
    H.wait_for(function()
      local a = curl(g.admin, "/metrics", { token = "third-token" })
      local b = curl(g.admin, "/metrics", { token = "renewed-token" })
      return a == 200 and b == 401, a .. " " .. b
    end, 10, "the third token in force")
    assert.is_true(g.alive())
  end)

  it("is scraped by a real Prometheus over https with a bearer token and the CA", function()
    local g = start(add, string.format(
      '{ "@ADMIN@", tls = { cert = "server.pem", key = "server.key" }, token = %q }', TOKEN))
    H.wait_until(function() return curl(g.admin, "/healthz") == 200 end, 10, "https")
    local prom = H.start_prometheus({ "127.0.0.1:" .. g.admin }, { job = {
      "    scheme: https",
      "    authorization:",
      "      type: Bearer",
      "      credentials: " .. TOKEN,
      "    tls_config:",
      "      ca_file: " .. sh("pwd"):gsub("%s+$", "") .. "/ca.pem",   -- absolute: Prometheus
                                                                -- reads it from its config's folder
    } })
    add(prom.stop)
    local target = H.wait_for(function()
      local t = prom.targets()[1]
      if t and t.health == "up" then return t end
      return nil, t and (t.health .. " " .. t.lastError) or "no target yet"
    end, 30, "the gateway's target up")
    assert.are.equal("https://127.0.0.1:" .. g.admin .. "/metrics", target.scrapeUrl)
    H.wait_for(function()
      local r = prom.query('gateway_workers{job="gateway"}')
      return r[1] and tonumber(r[1].value[2]) == 2, r[1] and r[1].value[2]
    end, 30, "gateway_workers scraped")
  end)

  it("names file:line for bad options, checks the admin's files with --check", function()
    local function check(admin_spec)
      local path = DIR .. "/check.lua"
      H.write_file(path, "local x = 1\ngateway.admin " .. admin_spec .. "\n" ..
        'memcache.route { default = memcache.pool { servers = { "127.0.0.1:1" } } }\n')
      local out, ok = H.run(H.quote(H.gateway_bin) .. " --check " .. H.quote(path) .. " 2>&1")
      return ok, out
    end
    local cases = {
      { '{ "127.0.0.1:1", tokn = "a" }', "check.lua:2: gateway.admin: unknown option 'tokn'" },
      { '{ "127.0.0.1:1", tls = { crt = "server.pem" } }',
        "check.lua:2: gateway.admin: tls: unknown option 'crt'" },
      { '{ "127.0.0.1:1", tls = { cert = "server.pem" } }', "cert and key are required" },
      { '{ "127.0.0.1:1", tls = { cert = "server.pem", key = "server.key", verify = "required" } }',
        'verify = "required" needs ca' },
      { '{ "127.0.0.1:1", token = "" }', "check.lua:2: gateway.admin: token must be a non-empty" },
      { '{ "127.0.0.1:1", token = "a b" }', "check.lua:2: gateway.admin: token: a token is" },
      { '{ "127.0.0.1:1", token = "a", token_file = "x" }', "give one of them" },
      { '{ "127.0.0.1:1", token_file = "missing.token" }', "cannot read the token_file" },
      { '{ "127.0.0.1:1", tls = { cert = "server.pem", key = "alice.key" } }',
        "alice.key: the key does not match the certificate" },
      { '{ "127.0.0.1:1", tls = { cert = "ca.key", key = "server.key" } }', "ca.key: " },
    }
    for _, c in ipairs(cases) do
      local ok, out = check(c[1])
      assert.is_false(ok, c[1])
      assert.is_truthy(has(out, c[2]), c[1] .. " -> " .. out)
    end
    local ok, out = check('{ "127.0.0.1:1", tls = { cert = "server.pem", key = "server.key", ' ..
      'ca = "ca.pem", verify = "optional", min_version = "1.3" }, token = "t" }')
    assert.is_true(ok, out)
  end)

  it("warns of an admin listener beyond loopback with neither tls nor token", function()
    -- The start fails before the admin listener binds (its client port is
    -- taken), so nothing listens beyond loopback: the warning comes first.
    local m = H.start_memcached()
    add(m.stop)
    local function start_log(admin_spec)
      local path = DIR .. "/exposed.lua"
      H.write_file(path, string.format('gateway.listen "%s"\ngateway.admin %s\n' ..
        'memcache.route { default = memcache.pool { servers = { "%s" } } }\n',
        m.addr, admin_spec, m.addr))
      local out = H.run("timeout 10 " .. H.quote(H.gateway_bin) .. " " .. H.quote(path) .. " 2>&1")
      assert.is_truthy(has(out, "listen " .. m.addr), out)   -- it did stop at the bind
      return out
    end
    local out = start_log('"0.0.0.0:' .. H.free_port() .. '"')
    assert.is_truthy(has(out, "with neither tls nor token"), out)
    out = start_log('{ "0.0.0.0:' .. H.free_port() .. '", token = "t" }')
    assert.is_truthy(has(out, "has a token but no tls"), out)
    out = start_log('{ "0.0.0.0:' .. H.free_port() .. '", token = "t", ' ..
      'tls = { cert = "server.pem", key = "server.key" } }')
    assert.is_falsy(has(out, "admin listener on 0.0.0.0"), out)
    out = start_log('"127.0.0.1:' .. H.free_port() .. '"')
    assert.is_falsy(has(out, "with neither tls nor token"), out)
  end)
end)
