-- tls_spec.lua -- TLS on both sides: clients through a gateway.listen with
-- tls (pymemcache with a tls_context, raw TLS sockets), and pools whose
-- servers are memcached started with -Z.
--
-- A test CA, server and client certificates (ECDSA P-256) are made with
-- the openssl command at setup, in tests/tmp.  Refusals (no certificate,
-- one from another CA, an expired one, TLS on a plain port and plain on a
-- TLS port, a backend whose certificate names another host) must each give
-- the client a clear error and the log a line, and never crash.
--
-- The warning for an exposed listener (0.0.0.0 with neither tls nor auth)
-- is logged at start-up and on a reload that brings one in, and not for a
-- listener with tls or auth, nor on loopback.
--
-- Run from the repo root:
--   busted --lpath='./lua/?.lua;./lua/?/init.lua;./tests/spec/?.lua' tests/spec/tls_spec.lua
local H = require "harness"

-- A folder of its own per run (two runs may share tests/tmp); configs in
-- tests/tmp name its files as TLS .. "/server.pem".
local TLS = "tls-" .. H.free_port()
local DIR = H.tmpdir .. "/" .. TLS
-- A config's text with its "tls/..." paths in this run's folder.
local function T(text) return (text:gsub('"tls/', '"' .. TLS .. "/")) end
local CLIENT_PY = H.root .. "/tests/spec/tls/client.py"

local function sh(cmd)
  local out, ok = H.run("cd " .. H.quote(DIR) .. " && (" .. cmd .. ") 2>&1")
  assert(ok, cmd .. "\n" .. out)
  return out
end

-- A key and a certificate signed by ca (NAME.pem, NAME.key), for subject
-- CN cn; san as subjectAltName; days 0 makes one that expires within the
-- second.
local function issue(name, cn, ca, san, days)
  sh(string.format("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes " ..
    "-keyout %s.key -subj /CN=%s -out %s.csr", name, cn, name))
  local ext = ""
  if san then
    H.write_file(DIR .. "/" .. name .. ".ext", "subjectAltName=" .. san .. "\n")
    ext = " -extfile " .. name .. ".ext"
  end
  sh(string.format("openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key -CAcreateserial " ..
    "-days %d%s -out %s.pem", name, ca, ca, days or 3, ext, name))
end

local function make_certs()
  H.run("rm -rf " .. H.quote(DIR))
  os.execute("mkdir -p " .. H.quote(DIR))
  for _, ca in ipairs({ "ca", "rogue" }) do
    sh(string.format("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes " ..
      "-keyout %s.key -subj /CN=test-%s -days 3 -out %s.pem", ca, ca, ca))
  end
  issue("expired", "old-alice", "ca", nil, 0)
  issue("server", "localhost", "ca", "DNS:localhost,IP:127.0.0.1")
  issue("server2", "localhost-renewed", "ca", "DNS:localhost,IP:127.0.0.1")
  issue("other", "elsewhere", "ca", "DNS:elsewhere.example")
  issue("alice", "alice", "ca")
  issue("mallory", "mallory", "rogue")
  return os.time()
end

local function py(mode, port, ...)
  local args = { H.quote(H.python), H.quote(CLIENT_PY), mode, tostring(port), H.quote(DIR) }
  for _, a in ipairs({ ... }) do args[#args + 1] = H.quote(a) end
  return (H.run(table.concat(args, " ") .. " 2>&1"))
end

-- The log lines of g from line `from` on that contain text.
local function log_has(g, text)
  return g.output():find(text, 1, true) ~= nil
end

describe("TLS", function()
  local made
  local add, stop_all = H.cleanups()

  lazy_setup(function()
    made = make_certs()
  end)

  lazy_teardown(function() stop_all() end)

  describe("to clients", function()
    local g, m, tport, rport, pport

    lazy_setup(function()
      m = H.start_memcached()
      add(m.stop)
      tport, rport, pport = H.free_port(), H.free_port(), H.free_port()
      g = H.start_gateway(T(string.format([[
gateway.listen { "127.0.0.1:%d", tls = { cert = "tls/server.pem", key = "tls/server.key" } }
gateway.listen { "127.0.0.1:%d", name = "mtls",
  tls = { cert = "tls/server.pem", key = "tls/server.key", ca = "tls/ca.pem", verify = "required" } }
gateway.listen "127.0.0.1:%d"
gateway.settings { threads = 2 }
local main = memcache.pool { servers = { "%s" } }
memcache.route {
  ["whoami"] = function(req) return memcache.hit(req.user or "<nobody>") end,
  default = main,
}
]], tport, rport, pport, m.addr)), { port = tport, own_listeners = true, config_name = TLS .. "-front.lua" })
      add(g.stop)
    end)

    it("serves pymemcache's whole API, a 500 KB value and get_many of 1,000 keys", function()
      assert.are.equal("OK\n", py("api", tport))
    end)

    it("serves a client with a certificate where it is required", function()
      assert.are.equal("OK\n", py("api", rport, "alice"))
    end)

    it("names req.user after the client certificate's CN with verify = required", function()
      assert.are.equal("VALUE alice\n", py("get", rport, "whoami", "alice"))
      -- on a listener that verifies nobody, nobody is named
      assert.are.equal("VALUE <nobody>\n", py("get", tport, "whoami", "alice"))
    end)

    it("refuses a client with no certificate, one from another CA, or an expired one", function()
      while os.time() <= made + 1 do H.run("sleep 0.2") end -- let `expired` expire
      for _, case in ipairs({ { "-", "did not return a certificate" },
                              { "mallory", "certificate verify failed" },
                              { "expired", "certificate has expired" } }) do
        local out = py("get", rport, "whoami", case[1])
        assert.truthy(out:match("^REFUSED "), case[1] .. ": " .. out)
        H.wait_for(function() return log_has(g, case[2]), g.output() end, 5,
          "the log line for " .. case[1])
      end
      assert.is_true(g.alive())
      assert.are.equal("VALUE alice\n", py("get", rport, "whoami", "alice"))
    end)

    it("refuses TLS on a plain port and plain text on a TLS port, with a log line each", function()
      local out = py("plain-tls", pport)
      assert.truthy(out:match("^REFUSED "), out)
      H.wait_for(function() return log_has(g, "speaks TLS to a listener without tls"), g.output() end, 5)
      local ok, err = pcall(H.request, tport, "get foo\r\n")
      assert.is_false(ok)
      assert.truthy(tostring(err):find("connection closed", 1, true), tostring(err))
      H.wait_for(function() return log_has(g, "TLS handshake with client"), g.output() end, 5)
      assert.is_true(g.alive())
      assert.are.equal("OK\n", py("api", tport))
    end)
  end)

  describe("to backends", function()
    local g, z, port

    lazy_setup(function()
      -- memcached -Z with the test CA's server certificate, which
      -- names localhost and 127.0.0.1, and asks clients for theirs
      z = H.start_memcached({ args = string.format("-Z -o ssl_chain_cert=%s/server.pem," ..
        "ssl_key=%s/server.key,ssl_ca_cert=%s/ca.pem,ssl_verify_mode=1", DIR, DIR, DIR) })
      add(z.stop)
      port = H.free_port()
      g = H.start_gateway(T(string.format([[
local z = memcache.pool { name = "z", servers = { "%s" }, tls = { ca = "tls/ca.pem" } }
local zc = memcache.pool { name = "zc", servers = { "%s" }, tls = { ca = "tls/ca.pem",
  cert = "tls/alice.pem", key = "tls/alice.key", server_name = "localhost" } }
local wrong = memcache.pool { name = "wrong", servers = { "%s" },
  tls = { ca = "tls/ca.pem", server_name = "elsewhere.example" } }
local plain = memcache.pool { name = "plain", servers = { "%s" }, timeout = 1 }
memcache.route { ["c:"] = zc, ["wrong:"] = wrong, ["plain:"] = plain, default = z }
]], z.addr, z.addr, z.addr, z.addr)), { port = port, config_name = TLS .. "-back.lua" })
      add(g.stop)
    end)

    it("stores through the gateway what the backend then serves over TLS", function()
      local c = H.connect(port)
      assert.are.equal("STORED\r\n", c:call("set tk 5 0 5\r\nhello\r\n"))
      assert.are.equal("STORED\r\n", c:call("set c:tk 0 0 3\r\nabc\r\n"))
      assert.are.equal("VALUE tk 5 5\r\nhello\r\nEND\r\n", c:call("get tk\r\n"))
      local many = {}
      for i = 1, 200 do
        many[#many + 1] = string.format("set m%d 0 0 %d\r\n%s\r\n", i, #tostring(i), i)
      end
      c:send(table.concat(many))
      for _ = 1, 200 do assert.are.equal("STORED", c:line()) end
      c:close()
      assert.are.equal("VALUE tk 5 5\r\nhello\r\nEND\r\n", py("raw", z.port, "tk"))
      assert.are.equal("VALUE c:tk 0 3\r\nabc\r\nEND\r\n", py("raw", z.port, "c:tk"))
      assert.are.equal("VALUE m200 0 3\r\n200\r\nEND\r\n", py("raw", z.port, "m200"))
    end)

    it("relays large values from a TLS backend whole, pipelined", function()
      -- a 900 KB value spans many TLS records; the end of one that OpenSSL
      -- has read already must be drained without waiting for a new packet
      local c = H.connect(port, 10)
      local v = string.rep("x", 900 * 1000)
      assert.are.equal("STORED\r\n", c:call(string.format("set big 0 0 %d\r\n%s\r\n", #v, v)))
      local want = string.format("VALUE big 0 %d\r\n%s\r\nEND\r\n", #v, v)
      local replies = c:calls(string.rep("get big\r\n", 30), 30)
      for i = 1, 30 do assert.is_true(replies[i] == want, "reply " .. i .. " differs") end
      c:close()
      assert.is_nil(g.output():find("timed out", 1, true), g.output())
    end)

    it("refuses a backend whose certificate does not match server_name, with a log line", function()
      local rep = H.request(port, "get wrong:k\r\n")
      assert.truthy(rep:match("^SERVER_ERROR") or rep == "END\r\n", rep)
      H.wait_for(function()
        return log_has(g, "TLS handshake failed"), g.output()
      end, 5, "the log line")
      assert.truthy(g.output():find("hostname mismatch", 1, true), g.output())
      -- plain to a TLS server: an error, not a hang or a crash
      rep = H.request(port, "get plain:k\r\n", 5)
      assert.truthy(rep:match("^SERVER_ERROR") or rep == "END\r\n", rep)
      assert.is_true(g.alive())
      assert.are.equal("VALUE tk 5 5\r\nhello\r\nEND\r\n", H.request(port, "get tk\r\n"))
    end)
  end)

  describe("on reload", function()
    it("takes a new certificate, and keeps the old one when the new one is bad", function()
      local m = H.start_memcached()
      add(m.stop)
      local port = H.free_port()
      sh("cp server.pem live.pem && cp server.key live.key")
      local g = H.start_gateway(T(string.format([[
gateway.listen { "127.0.0.1:%d", tls = { cert = "tls/live.pem", key = "tls/live.key" } }
memcache.route { default = memcache.pool { servers = { "%s" } } }
]], port, m.addr)), { port = port, own_listeners = true, config_name = TLS .. "-reload.lua" })
      add(g.stop)
      assert.are.equal("CN localhost\n", py("peer", port))
      local function reloads() return select(2, g.output():gsub("config generation %d+ is serving", "")) end
      local function failures() return select(2, g.output():gsub("reload failed", "")) end
      local before = reloads()
      sh("cp server2.pem live.pem && cp server2.key live.key")
      H.run("kill -HUP " .. g.pid)
      H.wait_for(function() return reloads() > before, g.output() end, 5, "the reload")
      assert.are.equal("CN localhost-renewed\n", py("peer", port))
      -- a key that does not match: refused, the file named, the old pair serves
      local fails = failures()
      sh("cp server.key live.key")
      H.run("kill -HUP " .. g.pid)
      H.wait_for(function() return failures() > fails, g.output() end, 5, "the failed reload")
      assert.truthy(g.output():find("live.key: the key does not match the certificate", 1, true))
      assert.are.equal("CN localhost-renewed\n", py("peer", port))
      -- not a certificate at all
      fails = failures()
      sh("cp server2.key live.key && echo garbage > live.pem")
      H.run("kill -HUP " .. g.pid)
      H.wait_for(function() return failures() > fails, g.output() end, 5, "the failed reload")
      assert.truthy(g.output():find("live.pem: no certificate it can use", 1, true))
      assert.are.equal("CN localhost-renewed\n", py("peer", port))
      assert.is_true(g.alive())
    end)
  end)

  -- A listener beyond loopback with neither tls nor auth is warned about
  -- at start-up and on every reload (core/server/reload.c, warn_exposed).
  -- Each test also has a listener that must be warned about, so none of
  -- them passes with the warning gone; a quiet one is checked only once a
  -- later line of the same start or reload is in the log.
  describe("the warning for an exposed listener", function()
    -- mkpasswd -m yescrypt -R 1: alice-pw
    local ALICE = "alice:$y$j75$ojOuLtao.0dqneIYtXqAv1$peSRkpgH9pkxFrZa9jVYWcPbE1Bt7NOjaGJRAvx951A\n"
    local WHY = ", beyond loopback, with neither tls nor auth"

    -- n free ports, all different
    local function ports(n)
      local list, seen = {}, {}
      while #list < n do
        local p = H.free_port()
        if not seen[p] then
          seen[p] = true
          list[#list + 1] = p
        end
      end
      return table.unpack(list)
    end

    -- how many times g's log warns about addr
    local function warnings(g, addr)
      return select(2, g.output():gsub(("listening on " .. addr .. WHY):gsub("%p", "%%%0"), ""))
    end
    local function started(g) return g.output():find("serving with", 1, true) ~= nil end
    local function reloads(g) return select(2, g.output():gsub("config generation %d+ is serving", "")) end

    local function start(text, port, name)
      local g = H.start_gateway(T(text .. "memcache.route { default = memcache.internal {} }\n"),
        { port = port, own_listeners = true, config_name = TLS .. "-" .. name .. ".lua" })
      add(g.stop)
      return g
    end

    it("is logged at start for 0.0.0.0 with neither tls nor auth, not for loopback", function()
      local lo, any = ports(2)
      local g = start(string.format('gateway.listen "127.0.0.1:%d"\ngateway.listen "0.0.0.0:%d"\n',
        lo, any), lo, "exposed")
      H.wait_for(function() return warnings(g, "0.0.0.0:" .. any) == 1 and started(g), g.output() end,
        5, "the warning for 0.0.0.0:" .. any)
      assert.are.equal(0, warnings(g, "127.0.0.1:" .. lo), g.output())
      assert.is_truthy(H.can_connect(any))
      g.stop()
    end)

    it("is not logged for 0.0.0.0 with tls or with auth", function()
      local tport, aport, pport = ports(3)
      H.write_file(DIR .. "/users", ALICE)
      -- the plain one last: once its warning is in, the other two are decided
      local g = start(string.format([[
gateway.listen { "0.0.0.0:%d", tls = { cert = "tls/server.pem", key = "tls/server.key" } }
gateway.listen { "0.0.0.0:%d", name = "sasl", auth = "tls/users" }
gateway.listen "0.0.0.0:%d"
]], tport, aport, pport), tport, "exposed-tls-auth")
      H.wait_for(function() return warnings(g, "0.0.0.0:" .. pport) == 1 and started(g), g.output() end,
        5, "the warning for the plain 0.0.0.0:" .. pport)
      assert.are.equal(0, warnings(g, "0.0.0.0:" .. tport), g.output())
      assert.are.equal(0, warnings(g, "0.0.0.0:" .. aport), g.output())
      assert.are.equal("CN localhost\n", py("peer", tport))
      g.stop()
    end)

    it("is logged again by a reload that brings in an exposed listener", function()
      local lo, tport, any = ports(3)
      local listeners = string.format('gateway.listen "127.0.0.1:%d"\n' ..
        'gateway.listen { "0.0.0.0:%d", tls = { cert = "tls/server.pem", key = "tls/server.key" } }\n',
        lo, tport)
      local g = start(listeners, lo, "exposed-reload")
      H.wait_for(function() return started(g), g.output() end, 5, "the start")
      assert.is_falsy(g.output():find(WHY, 1, true), g.output())
      local before = reloads(g)
      H.write_file(g.config, T(listeners .. string.format('gateway.listen "0.0.0.0:%d"\n', any) ..
        "memcache.route { default = memcache.internal {} }\n"))
      H.run("kill -HUP " .. g.pid)
      H.wait_for(function() return reloads(g) > before and warnings(g, "0.0.0.0:" .. any) >= 1, g.output() end,
        5, "the reload's warning for 0.0.0.0:" .. any)
      assert.is_truthy(H.can_connect(any))
      assert.are.equal(0, warnings(g, "0.0.0.0:" .. tport), g.output())
      assert.are.equal(0, warnings(g, "127.0.0.1:" .. lo), g.output())
      -- and a reload that keeps it says so again
      local seen = warnings(g, "0.0.0.0:" .. any)
      before = reloads(g)
      H.run("kill -HUP " .. g.pid)
      H.wait_for(function() return reloads(g) > before and warnings(g, "0.0.0.0:" .. any) > seen, g.output() end,
        5, "the next reload's warning")
      assert.is_true(g.alive())
      g.stop()
    end)
  end)

  describe("--check", function()
    it("validates the certificate and key files and that they match", function()
      local function check(cert, key)
        local path = H.write_config(T(string.format(
          'gateway.listen { "127.0.0.1:1", tls = { cert = "tls/%s", key = "tls/%s" } }\n' ..
          'memcache.route { default = memcache.internal {} }\n', cert, key)), TLS .. "-check.lua")
        return H.run(H.quote(H.gateway_bin) .. " --check " .. H.quote(path) .. " 2>&1")
      end
      local out, ok = check("server.pem", "server.key")
      assert.is_true(ok, out)
      out, ok = check("server.pem", "alice.key")
      assert.is_false(ok)
      assert.truthy(out:find("alice.key: the key does not match the certificate", 1, true), out)
      out, ok = check("missing.pem", "server.key")
      assert.is_false(ok)
      assert.truthy(out:find("missing.pem", 1, true), out)
      out, ok = check("server.key", "server.key")
      assert.is_false(ok)
      assert.truthy(out:find("server.key: no certificate it can use", 1, true), out)
    end)
  end)
end)
