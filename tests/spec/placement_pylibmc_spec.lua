-- placement_pylibmc_spec.lua -- the libmemcached modes find every key
-- pylibmc 1.6.3 (Debian's python3-pylibmc, on libmemcached11 1.1.4) placed
-- itself on weighted servers, with random keys of every printable and
-- high byte (libmemcached hashes bytes >= 0x80 as signed char).
--
--   default                      -> hash = "libmemcached" (weights ignored)
--   behaviors={"ketama": True}   -> hash = "libmemcached-consistent"
--     with a weight > 1: the md5 ring, keys hashed one-at-a-time; with 25
--     servers the float point count (156) differs from double's (160)
--     with every weight 1: 100 one-at-a-time points per server
local H = require "harness"
local P = require "placement"

local WRITE = [[
import sys, binascii, json, pylibmc
servers = sys.argv[1].split(",")          # host:port:weight, pylibmc's form
behaviors = json.loads(sys.argv[2])
mc = pylibmc.Client(servers, behaviors=behaviors or None)
for line in open(sys.argv[3]):
    h = line.strip()
    key = binascii.unhexlify(h)
    value = ("v:%s:%d" % (h[:16], len(key))).encode()
    if not mc.set(key, value):
        sys.exit("set failed: %r" % key)
]]

local function writer(behaviors)
  local script = H.write_config(WRITE, "placement-pylibmc.py")
  return function(servers, keyfile)
    local t = {}
    for i, s in ipairs(servers) do t[i] = s.addr .. ":" .. s.weight end
    local out = H.run(string.format("%s %s %s %s %s 2>&1; echo rc=$?", H.quote(H.python),
      H.quote(script), table.concat(t, ","), H.quote(behaviors), H.quote(keyfile)))
    assert(out:match("rc=0"), out)
  end
end

local function twentyfive(w)
  local t = {}
  for i = 1, 25 do t[i] = w end
  return t
end

describe("pylibmc placement", function()
  it("default (modula): hash = libmemcached finds every key, weights ignored", function()
    local r = P.migrate {
      hash = "libmemcached", weights = { 1, 2, 3 }, n = 5000,
      keys = { bytes = "high" }, write = writer("{}"),
    }
    P.assert_all_found(r)
    -- weights do not count: each server holds about a third
    for _, c in ipairs(r.items) do assert.is_true(c > 1400 and c < 1950, tostring(c)) end
  end)

  it("ketama with weights 1,2,3: hash = libmemcached-consistent", function()
    local r = P.migrate {
      hash = "libmemcached-consistent", weights = { 1, 2, 3 }, n = 5000,
      keys = { bytes = "high", seed = 17 }, write = writer('{"ketama": true}'),
    }
    P.assert_all_found(r)
    assert.is_true(r.items[3] > r.items[1] * 2, "weights count")
  end)

  it("ketama with every weight 1: hash = libmemcached-consistent", function()
    local r = P.migrate {
      hash = "libmemcached-consistent", weights = { 1, 1, 1 }, n = 5000,
      keys = { bytes = "high", seed = 18 }, write = writer('{"ketama": true}'),
    }
    P.assert_all_found(r)
  end)

  it("ketama on 25 servers of weight 2 (float point counts, not double)", function()
    local r = P.migrate {
      hash = "libmemcached-consistent", weights = twentyfive(2), n = 5000,
      keys = { bytes = "high", seed = 19 }, write = writer('{"ketama": true}'),
    }
    P.assert_all_found(r)
  end)

  it("the check fails with the wrong mode", function()
    local r = P.migrate {
      hash = "ketama", weights = { 1, 2, 3 }, n = 5000,
      keys = { bytes = "high", seed = 17 }, write = writer('{"ketama": true}'),
    }
    assert.is_true(r.found < r.n / 2, string.format("found %d of %d", r.found, r.n))
  end)
end)
