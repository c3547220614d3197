-- migration_spec.lua -- drop the gateway in front of servers that
-- python-memcached filled directly, and every key is still found.
--
-- python-memcached writes 10,000 keys straight to three weighted memcached
-- servers (weights 1, 2, 3).  A gateway configured with the same servers, in
-- the same order, with the same weights and hash = "python-memcached" must
-- then find all 10,000 (through python-memcached's get_multi aimed at the
-- gateway), with equal values and flags, and ask each key only of the server
-- that holds it.
--
-- Run from the repo root:  make spec   (or busted ... tests/spec/migration_spec.lua)
local H = require "harness"

local N = 10000
local WEIGHTS = { 1, 2, 3 }

-- One python script; its first argument says what to do.
--   write SERVERS N          python-memcached straight to the weighted servers
--   read  ADDR N             python-memcached get_multi through ADDR
--   write-via ADDR N PREFIX  python-memcached sets through ADDR (the gateway)
--   read-direct SERVERS N PREFIX  read those back straight from the servers
-- SERVERS is "host:port=weight,host:port=weight,...".
local SCRIPT = [[
import sys
import memcache

class Dead(Exception):
    pass

def _mark_dead(self, reason):             # do not swallow errors
    raise Dead("%s: %s" % (self, reason))
memcache._Host.mark_dead = _mark_dead

def servers(spec):
    out = []
    for s in spec.split(","):
        addr, w = s.split("=")
        out.append((addr, int(w)))
    return out

def key(prefix, i):
    return "%s%05d" % (prefix, i)

def value(i):
    # mixed types so the flags matter: text, int (flags 2), pickle (flags 1)
    if i % 3 == 0:
        return "value-%d-" % i + "x" * (i % 97)
    if i % 3 == 1:
        return i * 7
    return {"i": i, "sq": [i, i * i], "s": "v%d" % i}

def check(found, keys, prefix):
    missing = [k for k in keys if k not in found]
    wrong = [k for k in keys if k in found and found[k] != value(int(k[len(prefix):]))]
    print("found %d of %d" % (len(found), len(keys)))
    print("mismatched %d" % len(wrong))
    if missing:
        print("first missing: %s" % " ".join(missing[:10]))
    if wrong:
        print("first mismatched: %s" % " ".join(wrong[:10]))

mode, target, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
prefix = sys.argv[4] if len(sys.argv) > 4 else "mig:"
keys = [key(prefix, i) for i in range(n)]
if mode in ("write", "write-via"):
    mc = memcache.Client(servers(target) if mode == "write" else [target],
                         socket_timeout=5)
    notstored = []
    for b in range(0, n, 500):
        notstored += mc.set_multi({k: value(int(k[len(prefix):])) for k in keys[b:b + 500]})
    print("stored %d of %d" % (n - len(notstored), n))
else:
    mc = memcache.Client(servers(target) if mode == "read-direct" else [target],
                         socket_timeout=5)
    found = {}
    for b in range(0, n, 100):
        found.update(mc.get_multi(keys[b:b + 100]))
    check(found, keys, prefix)
]]

local function stats(port)
  local c = H.connect(port)
  local txt = c:call("stats\r\n")
  c:close()
  local st = {}
  for k, v in txt:gmatch("STAT (%S+) (%S+)") do st[k] = tonumber(v) or v end
  return st
end

local function py(script_path, ...)
  local args = {}
  for _, a in ipairs({ ... }) do args[#args + 1] = H.quote(a) end
  local cmd = string.format("timeout 300 %s %s %s 2>&1", H.quote(H.python),
    H.quote(script_path), table.concat(args, " "))
  local out, ok = H.run(cmd)
  if not ok then print("\n---- " .. cmd .. " ----\n" .. out) end
  assert(ok, cmd .. " failed:\n" .. out)
  return out
end

describe("migrating python-memcached users onto the gateway", function()
  local ms, gw, script, spec = {}, nil, nil, nil

  setup(function()
    script = H.write_config(SCRIPT, "migration-" .. H.free_port() .. ".py")
    local parts, lua_servers = {}, {}
    for i, w in ipairs(WEIGHTS) do
      ms[i] = H.start_memcached()
      parts[#parts + 1] = ms[i].addr .. "=" .. w
      lua_servers[#lua_servers + 1] = string.format('{ "%s", weight = %d }', ms[i].addr, w)
    end
    spec = table.concat(parts, ",")

    -- 1. the existing deployment: python-memcached writes straight to the servers
    local out = py(script, "write", spec, tostring(N))
    assert.are.equal("stored " .. N .. " of " .. N .. "\n", out)

    gw = H.start_gateway(string.format([[
gateway.settings { threads = 2 }
local main = memcache.pool {
  servers = { %s },
  hash = "python-memcached",
  timeout = 0.5,
}
memcache.route { default = main }
]], table.concat(lua_servers, ", ")))
  end)

  teardown(function()
    if gw then gw.stop() end
    for _, m in ipairs(ms) do m.stop() end
  end)

  it("control: the keys really are spread over all three servers, by weight", function()
    local counts, total = {}, 0
    for i, m in ipairs(ms) do
      counts[i] = stats(m.port).curr_items
      total = total + counts[i]
    end
    assert.are.equal(N, total)
    for i = 1, #ms do assert.is_true(counts[i] > 0, "server " .. i .. " holds no keys") end
    -- weights 1:2:3 -> about 1/6, 2/6, 3/6 of the keys
    for i, w in ipairs(WEIGHTS) do
      local share = counts[i] / N
      assert.is_true(math.abs(share - w / 6) < 0.05,
        string.format("server %d (weight %d) holds %d keys", i, w, counts[i]))
    end
    -- and a client that ignored the weights would miss many of them
    local even = {}
    for i, m in ipairs(ms) do even[#even + 1] = m.addr .. "=1" end
    local out = py(script, "read-direct", table.concat(even, ","), tostring(N))
    local found = tonumber(out:match("found (%d+) of"))
    assert.is_true(found < N * 0.8, "unweighted placement found " .. tostring(found))
  end)

  it("finds every key python-memcached wrote, with equal values", function()
    local before = {}
    for i, m in ipairs(ms) do before[i] = stats(m.port) end

    local out = py(script, "read", gw.addr, tostring(N))
    assert.is_truthy(out:match("found " .. N .. " of " .. N .. "\n"), out)
    assert.is_truthy(out:match("mismatched 0\n"), out)

    -- each key was asked of the server that holds it, and of no other:
    -- no misses anywhere, hits equal to what each server holds
    for i, m in ipairs(ms) do
      local after = stats(m.port)
      assert.are.equal(0, after.get_misses - before[i].get_misses,
        "server " .. i .. " was asked for keys it does not hold")
      assert.are.equal(after.curr_items, after.get_hits - before[i].get_hits,
        "server " .. i .. " hits")
    end
    assert.is_true(gw.alive(), gw.output())
  end)

  it("writes through the gateway land where python-memcached reads them", function()
    local out = py(script, "write-via", gw.addr, "3000", "back:")
    assert.are.equal("stored 3000 of 3000\n", out)
    out = py(script, "read-direct", spec, "3000", "back:")
    assert.is_truthy(out:match("found 3000 of 3000\n"), out)
    assert.is_truthy(out:match("mismatched 0\n"), out)
    assert.is_true(gw.alive(), gw.output())
  end)
end)
