-- clients_spec.lua -- real client libraries against the gateway.
--
-- Two real memcached servers, the gateway over them (python-memcached
-- placement, a route function on "t1:"), then:
--   * tests/clients/pymc_ops.py       (python-memcached), plain keys and
--                                     keys that go through the route function
--   * tests/clients/pymemcache_ops.py (pymemcache), both ways too
--   * libmemcached's memccapable -a   (all 27 ASCII protocol tests)
-- and, as a control that proves the client tests themselves are right, the
-- same three against a plain memcached.
--
-- Run from the repo root:  make spec   (or busted ... tests/spec/clients_spec.lua)
local H = require "harness"

local PYMC = H.root .. "/tests/clients/pymc_ops.py"
local PYMEMCACHE = H.root .. "/tests/clients/pymemcache_ops.py"
local MEMCCAPABLE_TESTS = 27

local function run_python(script, port, extra)
  local cmd = string.format("timeout 300 %s %s 127.0.0.1:%d %s 2>&1",
    H.quote(H.python), H.quote(script), port, extra or "")
  local out, ok = H.run(cmd)
  if not ok then
    print("\n---- " .. cmd .. " ----\n" .. out .. "---- end ----")
  end
  return ok, out
end

local function assert_python_passes(script, port, extra)
  local ok, out = run_python(script, port, extra)
  assert.is_true(ok, script .. " failed against port " .. port .. ":\n" .. out)
  -- it did run tests (an import error or an empty run is not a pass)
  local ran = tonumber(out:match("\nRan (%d+) tests?"))
  assert.is_truthy(ran and ran > 0, "no tests ran:\n" .. out)
  assert.is_truthy(out:match("\nOK"), out)
end

-- memccapable prints one line per test on stdout: "ascii set   [pass]";
-- with -v the failed assertion goes to stderr, kept apart so it cannot
-- split a result line.
local function run_memccapable(port)
  local errfile = string.format("%s/memccapable-%d.err", H.tmpdir, port)
  local cmd = string.format("timeout 300 memccapable -a -v -t 5 -h 127.0.0.1 -p %d 2>%s",
    port, H.quote(errfile))
  local out = H.run(cmd)
  local pass, bad, total = 0, {}, 0
  for line in out:gmatch("[^\n]+") do
    local name, verdict = line:match("^(ascii .-)%s+%[(%w+)%]%s*$")
    if name then
      total = total + 1
      if verdict == "pass" then pass = pass + 1 else bad[#bad + 1] = name .. " [" .. verdict .. "]" end
    end
  end
  return pass, total, bad, out .. "---- stderr ----\n" .. H.read_file(errfile)
end

local function assert_memccapable_passes(port)
  local pass, total, bad, out = run_memccapable(port)
  if pass ~= MEMCCAPABLE_TESTS then
    print(string.format("\nmemccapable: %d/%d passed; failing: %s\n%s", pass,
      MEMCCAPABLE_TESTS, #bad > 0 and table.concat(bad, ", ") or "(none reported)", out))
  end
  assert.are.equal(MEMCCAPABLE_TESTS, total,
    "memccapable ran " .. total .. " tests, expected " .. MEMCCAPABLE_TESTS .. ":\n" .. out)
  assert.are.same({}, bad)
  assert.are.equal(MEMCCAPABLE_TESTS, pass)
end

-- The backend index python-memcached picks for key over buckets
-- (each server repeated weight times).
local function pymc_bucket(key, nbuckets)
  local out, ok = H.run(string.format(
    "%s -c 'import sys, memcache; print(memcache.cmemcache_hash(sys.argv[1].encode()) %% int(sys.argv[2]))' %s %d",
    H.quote(H.python), H.quote(key), nbuckets))
  assert(ok, out)
  return tonumber(out)
end

describe("client libraries through the gateway", function()
  local m1, m2, gw

  setup(function()
    m1 = H.start_memcached()
    m2 = H.start_memcached()
    gw = H.start_gateway(string.format([[
gateway.settings { threads = 2 }
local main = memcache.pool {
  servers = { "%s", { "%s", weight = 2 } },
  hash = "python-memcached",
  timeout = 0.5,
}
memcache.route {
  ["t1:"] = function(req) req.key = "tenant1/" .. req.key:sub(4); return main end,
  default = main,
}
]], m1.addr, m2.addr))
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

  it("passes the python-memcached tests", function()
    assert_python_passes(PYMC, gw.port)
  end)

  it("passes the python-memcached tests with every key through the t1: route", function()
    assert_python_passes(PYMC, gw.port, "--prefix t1:")
  end)

  it("rewrites t1: keys to tenant1/ on the backend python-memcached would pick", function()
    -- replies compared as %q strings so a stray byte shows in a failure
    local q = function(s) return string.format("%q", s) end
    local key = "probe" .. H.free_port()
    local c = H.connect(gw.port)
    assert.are.equal(q "STORED\r\n", q(c:call("set t1:" .. key .. " 5 0 5\r\nhello\r\n")))
    -- the client sees its own key, not the rewritten one
    assert.are.equal(q("VALUE t1:" .. key .. " 5 5\r\nhello\r\nEND\r\n"),
      q(c:call("get t1:" .. key .. "\r\n")))
    c:close()
    local backends = { m1, m2, m2 }      -- buckets: weight 1, weight 2
    local owner = backends[pymc_bucket("tenant1/" .. key, 3) + 1]
    for _, m in ipairs({ m1, m2 }) do
      local d = H.connect(m.port)
      local want = (m == owner) and ("VALUE tenant1/" .. key .. " 5 5\r\nhello\r\nEND\r\n") or "END\r\n"
      assert.are.equal(q(want), q(d:call("get tenant1/" .. key .. "\r\n")))
      assert.are.equal(q "END\r\n", q(d:call("get t1:" .. key .. "\r\n")))
      d:close()
    end
  end)

  it("passes the pymemcache tests", function()
    assert_python_passes(PYMEMCACHE, gw.port)
  end)

  it("passes the pymemcache tests with every key through the t1: route", function()
    assert_python_passes(PYMEMCACHE, gw.port, "--prefix t1:")
  end)

  it("passes all of memccapable's ASCII tests", function()
    assert_memccapable_passes(gw.port)
  end)
end)

describe("control: the same client tests against a plain memcached", function()
  local m

  setup(function() m = H.start_memcached() end)
  teardown(function() if m then m.stop() end end)

  it("python-memcached tests pass", function()
    assert_python_passes(PYMC, m.port)
  end)

  it("pymemcache tests pass", function()
    assert_python_passes(PYMEMCACHE, m.port)
  end)

  it("memccapable -a passes 27/27", function()
    assert_memccapable_passes(m.port)
  end)
end)
