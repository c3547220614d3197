-- binary_clients_spec.lua -- real binary-protocol client libraries against
-- the gateway.
--
-- Two real memcached servers, the gateway over them (python-memcached
-- placement) on two listeners: a plain one, and one with auth (SASL PLAIN
-- against a users file of yescrypt hashes made here with mkpasswd).  Then:
--   * tests/clients/memjs_ops.js   (Node memjs, npm, pinned by the Makefile)
--                                  on the auth listener, logged in, plus a
--                                  wrong password and no credentials (both
--                                  refused); and without SASL on the plain one
--   * tests/clients/dalli_ops.rb   (Dalli 3.0.6, binary only)
--   * tests/clients/pylibmc_ops.py (pylibmc, binary=True, 1,000-key
--                                  get_multi/set_multi)
--   * libmemcached's memccapable -b (all 27 binary protocol tests)
-- After each client, the keys it left ("keep" lines) are read from both
-- memcached servers directly in the text protocol: each must be on the
-- server python-memcached's hash picks, and only there, and both servers
-- must hold some.
-- And, as a control that proves the client tests themselves are right, the
-- same against a plain memcached, and memjs with SASL against a memcached
-- -S (Cyrus SASL, a sasldb made with saslpasswd2).
--
-- Run from the repo root (memjs comes from make spec's npm step):
--   busted --lpath='./lua/?.lua;./lua/?/init.lua;./tests/spec/?.lua' tests/spec/binary_clients_spec.lua
local H = require "harness"
local F = require "fakes"

local MEMJS = H.root .. "/tests/clients/memjs_ops.js"
local DALLI = H.root .. "/tests/clients/dalli_ops.rb"
local PYLIBMC = H.root .. "/tests/clients/pylibmc_ops.py"
local NODE_PATH = H.root .. "/build/node/node_modules"

-- Tests each script runs (a test that vanished is a failure too).
local MEMJS_TESTS_AUTH = 21       -- with the two refusal tests
local MEMJS_TESTS_PLAIN = 19
local DALLI_TESTS = 18
local PYLIBMC_TESTS = 21
-- memccapable -b passes 27 against memcached 1.6.18 (the control checks it).
local MEMCCAPABLE_BINARY_TESTS = 27

local USER, PASSWORD = "alice", "s3cret-Pw"

-- Run a shell command with its stderr; print everything when it failed.
local function run(cmd)
  local out, ok = H.run("timeout 600 " .. cmd .. " 2>&1")
  if not ok then print("\n---- " .. cmd .. " ----\n" .. out .. "---- end ----") end
  return out, ok
end

-- The lines a client script prints: "ok <name>", "not ok <name>: why",
-- "keep <key> <value>", "done <passed>/<total>".
local function parse_report(out)
  local r = { ok = {}, not_ok = {}, keeps = {} }
  for line in out:gmatch("[^\n]+") do
    local name = line:match("^ok (%S+)$")
    if name then r.ok[#r.ok + 1] = name end
    local bad = line:match("^not ok (.*)$")
    if bad then r.not_ok[#r.not_ok + 1] = bad end
    local k, v = line:match("^keep (%S+) (%S+)$")
    if k then r.keeps[#r.keeps + 1] = { key = k, value = v } end
    local p, t = line:match("^done (%d+)/(%d+)$")
    if p then r.passed, r.total = tonumber(p), tonumber(t) end
  end
  return r
end

local function assert_report(out, ok, ntests, nkeep)
  local r = parse_report(out)
  assert.are.same({}, r.not_ok)
  assert.are.equal(ntests, #r.ok, "tests passed:\n" .. out)
  assert.are.equal(ntests, r.total, "tests run:\n" .. out)
  assert.are.equal(ntests, r.passed, out)
  assert.are.equal(nkeep, #r.keeps, "keys kept:\n" .. out)
  assert.is_true(ok, "the script failed:\n" .. out)
  return r
end

local function memjs(port, extra)
  local f = io.open(NODE_PATH .. "/memjs/package.json", "r")
  assert(f, "memjs is not installed in " .. NODE_PATH .. " (make spec installs it: " ..
    "npm install --prefix build/node <the Makefile's NODE_PKGS>)")
  f:close()
  return run(string.format("env NODE_PATH=%s node %s 127.0.0.1:%d %s",
    H.quote(NODE_PATH), H.quote(MEMJS), port, extra or ""))
end

local function memjs_auth_args(user, password)
  return "--user " .. H.quote(user) .. " --password " .. H.quote(password)
end

local function dalli(port, extra)
  return run(string.format("ruby %s 127.0.0.1:%d %s", H.quote(DALLI), port, extra or ""))
end

-- pylibmc_ops.py is a unittest: its report (stderr) says "Ran N tests" and
-- "OK"; its keep lines are on stdout.
local function pylibmc(port, extra)
  return run(string.format("%s %s 127.0.0.1:%d %s", H.quote(H.python), H.quote(PYLIBMC), port, extra or ""))
end

local function assert_unittest(out, ok, ntests, nkeep)
  assert.is_true(ok, "pylibmc_ops.py failed:\n" .. out)
  assert.are.equal(ntests, tonumber(out:match("\nRan (%d+) tests?")), "tests run:\n" .. out)
  assert.is_truthy(out:match("\nOK\n"), out)
  local r = parse_report(out)
  assert.are.equal(nkeep, #r.keeps, "keys kept:\n" .. out)
  return r
end

-- memccapable prints one line per test on stdout: "binary set   [pass]";
-- with -v the failed assertion goes to stderr, kept apart so it cannot
-- split a result line.
local function run_memccapable(port)
  local errfile = string.format("%s/memccapable-b-%d.err", H.tmpdir, port)
  local cmd = string.format("timeout 300 memccapable -b -v -t 5 -h 127.0.0.1 -p %d 2>%s",
    port, H.quote(errfile))
  local out = H.run(cmd)
  local pass, bad, total = 0, {}, 0
  for line in out:gmatch("[^\n]+") do
    local name, verdict = line:match("^(binary .-)%s+%[(%w+)%]%s*$")
    if name then
      total = total + 1
      if verdict == "pass" then pass = pass + 1 else bad[#bad + 1] = name .. " [" .. verdict .. "]" end
    end
  end
  return pass, total, bad, out .. "---- stderr ----\n" .. H.read_file(errfile)
end

local function assert_memccapable_passes(port)
  local pass, total, bad, out = run_memccapable(port)
  if pass ~= MEMCCAPABLE_BINARY_TESTS then
    print(string.format("\nmemccapable -b: %d/%d passed; failing: %s\n%s", pass,
      MEMCCAPABLE_BINARY_TESTS, #bad > 0 and table.concat(bad, ", ") or "(none reported)", out))
  end
  assert.are.same({}, bad)
  assert.are.equal(MEMCCAPABLE_BINARY_TESTS, total,
    "memccapable -b ran " .. total .. " tests, expected " .. MEMCCAPABLE_BINARY_TESTS .. ":\n" .. out)
  assert.are.equal(MEMCCAPABLE_BINARY_TESTS, pass)
end

-- python-memcached's bucket (cmemcache_hash % n) of each key, in one run.
local function pymc_buckets(keys, n)
  local dir = H.tmpdir .. "/binary-clients"
  os.execute("mkdir -p " .. H.quote(dir))
  local keyfile = string.format("%s/keys-%d", dir, H.free_port())
  H.write_file(keyfile, table.concat(keys, "\n") .. "\n")
  local script = dir .. "/buckets.py"
  H.write_file(script, [[
import sys, memcache
n = int(sys.argv[2])
for k in open(sys.argv[1], "rb").read().split(b"\n")[:-1]:
    print(memcache.cmemcache_hash(k) % n)
]])
  local out, ok = H.run(string.format("%s %s %s %d", H.quote(H.python), H.quote(script), H.quote(keyfile), n))
  assert(ok, out)
  local b = {}
  for v in out:gmatch("%d+") do b[#b + 1] = tonumber(v) end
  assert.are.equal(#keys, #b)
  return b
end

-- key -> { flags = , value = } for each of keys one memcached holds, read
-- with text gets of 50 keys.
local function server_holds(m, keys)
  local held = {}
  local c = H.connect(m.port, F.RAW)
  for i = 1, #keys, 50 do
    local batch = table.move(keys, i, math.min(i + 49, #keys), 1, {})
    local rep = c:call("get " .. table.concat(batch, " ") .. "\r\n")
    local pos = 1
    while true do
      local head, key, flags, n = rep:match("^(VALUE (%S+) (%d+) (%d+)\r\n)", pos)
      if not head then break end
      pos = pos + #head
      held[key] = { flags = tonumber(flags), value = rep:sub(pos, pos + tonumber(n) - 1) }
      pos = pos + tonumber(n) + 2
    end
    assert.are.equal("END\r\n", rep:sub(pos), "get reply from " .. m.addr .. ": " .. H.show(rep))
  end
  c:close()
  return held
end

-- Each kept key is on the server python-memcached picks over servers (in
-- the pool's order, weight 1 each), with its value and flags 0, and on no
-- other; with more than one server, every server holds some.  Returns the
-- count per server.
local function assert_landed(keeps, servers)
  local keys = {}
  for i, kv in ipairs(keeps) do keys[i] = kv.key end
  local buckets = #servers > 1 and pymc_buckets(keys, #servers) or nil
  local held = {}
  for i, m in ipairs(servers) do held[i] = server_holds(m, keys) end
  local counts, wrong = {}, {}
  for i = 1, #servers do counts[i] = 0 end
  for i, kv in ipairs(keeps) do
    local owner = buckets and buckets[i] + 1 or 1
    for s = 1, #servers do
      local h = held[s][kv.key]
      if s == owner then
        if not h or h.value ~= kv.value or h.flags ~= 0 then
          wrong[#wrong + 1] = string.format("%s: want %q flags 0 on %s, it has %s", kv.key, kv.value,
            servers[s].addr, h and string.format("%q flags %d", h.value, h.flags) or "nothing")
        else
          counts[s] = counts[s] + 1
        end
      elseif h then
        wrong[#wrong + 1] = string.format("%s: on %s too (its owner is %s)", kv.key, servers[s].addr,
          servers[owner].addr)
      end
    end
  end
  if #wrong > 20 then
    local n = #wrong
    wrong = table.move(wrong, 1, 20, 1, {})
    wrong[21] = "... " .. (n - 20) .. " more"
  end
  assert.are.same({}, wrong)
  for s = 1, #servers do
    assert.is_true(counts[s] > 0, "no kept key landed on " .. servers[s].addr)
  end
  return counts
end

-- A users file line for name with password, hashed by mkpasswd (whois).
local function yescrypt(password)
  local out, ok = H.run("printf %s " .. H.quote(password) .. " | mkpasswd -m yescrypt --stdin 2>&1")
  assert(ok and out:match("^%$y%$"), "mkpasswd -m yescrypt: " .. out)
  return (out:gsub("%s+$", ""))
end

-- A memcached -S (binary protocol only, SASL): Cyrus SASL with PLAIN over a
-- sasldb made by saslpasswd2 (sasl2-bin), its config in a folder of its own
-- (SASL_CONF_PATH).  Returns what H.start_memcached does.
local function start_sasl_memcached(users)
  local port = H.free_port()
  local dir = string.format("%s/sasl-memcached-%d", H.tmpdir, port)
  os.execute("rm -rf " .. H.quote(dir) .. " && mkdir -p " .. H.quote(dir))
  H.write_file(dir .. "/memcached.conf", table.concat({
    "mech_list: plain", "pwcheck_method: auxprop", "auxprop_plugin: sasldb",
    "sasldb_path: " .. dir .. "/sasldb2", "" }, "\n"))
  for user, password in pairs(users) do
    local out, ok = H.run(string.format("printf %%s %s | saslpasswd2 -p -a memcached -c -f %s %s 2>&1",
      H.quote(password), H.quote(dir .. "/sasldb2"), H.quote(user)))
    assert(ok, "saslpasswd2: " .. out)
  end
  local log = string.format("%s/memcached-%d.log", H.tmpdir, port)
  local as_root = H.run("id -u"):match("^0") and " -u root" or ""
  local pid = tonumber(H.run(string.format(
    "(exec env SASL_CONF_PATH=%s memcached -S -U 0 -l 127.0.0.1 -p %d -m 64 -t 1%s) >%s 2>&1 & echo $!",
    H.quote(dir), port, as_root, H.quote(log))):match("%d+"))
  local function stop()
    if not H.alive(pid) then return end
    H.run("kill -TERM " .. pid .. " 2>/dev/null")
    if not pcall(H.wait_until, function() return not H.alive(pid) end, 5) then
      H.run("kill -KILL " .. pid .. " 2>/dev/null")
    end
  end
  local ok, err = pcall(H.wait_until, function()
    if not H.alive(pid) then error("memcached -S exited:\n" .. H.read_file(log)) end
    return H.can_connect(port)
  end, 10, "memcached -S on port " .. port)
  if not ok then stop(); error(err, 2) end
  return { pid = pid, port = port, addr = "127.0.0.1:" .. port, stop = stop,
           alive = function() return H.alive(pid) end, output = function() return H.read_file(log) end }
end

describe("binary client libraries through the gateway", function()
  local m1, m2, gw, plain_port, auth_port, users_file

  setup(function()
    m1 = H.start_memcached()
    m2 = H.start_memcached()
    plain_port, auth_port = H.free_port(), H.free_port()
    -- absolute: a relative auth path is taken from the config's folder
    local tmp = (H.run("cd " .. H.quote(H.tmpdir) .. " && pwd"):gsub("%s+$", ""))
    users_file = string.format("%s/binary-clients-users-%d", tmp, auth_port)
    H.write_file(users_file, table.concat({
      "# made by binary_clients_spec.lua",
      USER .. ":" .. yescrypt(PASSWORD),
      "bob:" .. yescrypt("another password"),
      "" }, "\n"))
    gw = F.start_gateway_own_listeners(string.format([[
gateway.listen "127.0.0.1:%d"
gateway.listen { "127.0.0.1:%d", name = "login", auth = %q }
gateway.settings { threads = 2 }
local main = memcache.pool {
  servers = { "%s", "%s" },
  hash = "python-memcached",
  timeout = 2,
}
memcache.route { default = main }
]], plain_port, auth_port, users_file, m1.addr, m2.addr), { plain_port, auth_port })
  end)

  teardown(function()
    if gw then gw.stop() end
    if m1 then m1.stop() end
    if m2 then m2.stop() end
  end)

  after_each(function()
    if gw then
      assert.is_true(gw.alive(), "the gateway died:\n" .. gw.output())
    end
  end)

  it("memjs with SASL on the auth listener: its whole API, a wrong password and no credentials refused", function()
    local out, ok = memjs(auth_port, memjs_auth_args(USER, PASSWORD) .. " --keep 50")
    local r = assert_report(out, ok, MEMJS_TESTS_AUTH, 50)
    assert_landed(r.keeps, { m1, m2 })
  end)

  it("a text client on the auth listener reads nothing", function()
    local key = "binary-clients-text-probe-" .. H.free_port()
    local c = H.connect(plain_port, F.RAW)
    assert.are.equal("STORED\r\n", c:call("set " .. key .. " 0 0 6\r\nsecret\r\n"))
    c:close()
    c = H.connect(auth_port, 2)
    c:send("get " .. key .. "\r\n")
    local deadline = require("socket").gettime() + 2
    while c:fill(deadline) do end   -- until it closes, or 2 s
    c:close()
    assert.is_falsy(c.buf:find("secret", 1, true), H.show(c.buf))
  end)

  it("memjs without SASL on the plain listener", function()
    local out, ok = memjs(plain_port, "--keep 50")
    local r = assert_report(out, ok, MEMJS_TESTS_PLAIN, 50)
    assert_landed(r.keeps, { m1, m2 })
  end)

  it("passes the Dalli 3.0.6 tests, and its keys land where python-memcached puts them", function()
    local out, ok = dalli(plain_port, "--keep 50")
    local r = assert_report(out, ok, DALLI_TESTS, 50)
    assert_landed(r.keeps, { m1, m2 })
  end)

  it("passes the pylibmc binary tests, and 1,000 kept keys land where python-memcached puts them", function()
    local out, ok = pylibmc(plain_port, "--keep 1000")
    local r = assert_unittest(out, ok, PYLIBMC_TESTS, 1000)
    local counts = assert_landed(r.keeps, { m1, m2 })
    assert.are.equal(1000, counts[1] + counts[2])
  end)

  it("passes all of memccapable's binary tests", function()
    assert_memccapable_passes(plain_port)
  end)
end)

describe("control: the same binary client tests against memcached", function()
  local m, ms

  setup(function()
    m = H.start_memcached()
    ms = start_sasl_memcached({ [USER] = PASSWORD })
  end)
  teardown(function()
    if m then m.stop() end
    if ms then ms.stop() end
  end)

  it("memjs with SASL against memcached -S", function()
    local out, ok = memjs(ms.port, memjs_auth_args(USER, PASSWORD) .. " --keep 5")
    assert_report(out, ok, MEMJS_TESTS_AUTH, 5)
  end)

  it("memjs without SASL", function()
    local out, ok = memjs(m.port, "--keep 20")
    local r = assert_report(out, ok, MEMJS_TESTS_PLAIN, 20)
    assert_landed(r.keeps, { m })
  end)

  it("Dalli 3.0.6", function()
    local out, ok = dalli(m.port, "--keep 20")
    local r = assert_report(out, ok, DALLI_TESTS, 20)
    assert_landed(r.keeps, { m })
  end)

  it("pylibmc with binary=True", function()
    local out, ok = pylibmc(m.port, "--keep 100")
    local r = assert_unittest(out, ok, PYLIBMC_TESTS, 100)
    assert_landed(r.keeps, { m })
  end)

  it("memccapable -b passes 27/27", function()
    assert_memccapable_passes(m.port)
  end)
end)
