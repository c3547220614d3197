-- placement_python_memcached_spec.lua -- hash = "python-memcached" finds
-- every key python-memcached 1.59 (Debian's python3-memcache) placed itself,
-- with random keys of every printable byte and length (migration_spec.lua
-- covers values, flags and the move itself).  The pattern of every
-- placement_<client>_spec.lua: see placement.lua.
local H = require "harness"
local P = require "placement"

local WRITE = [[
import sys, binascii, memcache
servers = [(a, int(w)) for a, w in (s.split("=") for s in sys.argv[1].split(","))]
mc = memcache.Client(servers, socket_timeout=5)
for line in open(sys.argv[2]):
    key = binascii.unhexlify(line.strip()).decode("latin-1")
    value = "v:%s:%d" % (line.strip()[:16], len(key))
    if not mc.set(key, value):
        sys.exit("set failed: %r" % key)
]]

describe("hash = python-memcached", function()
  it("finds every key python-memcached put on three weighted servers", function()
    local script = H.write_config(WRITE, "placement-pymc.py")
    local r = P.migrate {
      hash = "python-memcached", weights = { 1, 2, 3 }, n = 5000,
      write = function(servers, keyfile)
        local t = {}
        for i, s in ipairs(servers) do t[i] = s.addr .. "=" .. s.weight end
        local out = H.run(string.format("%s %s %s %s 2>&1; echo rc=$?", H.quote(H.python),
          H.quote(script), table.concat(t, ","), H.quote(keyfile)))
        assert(out:match("rc=0"), out)
      end,
    }
    P.assert_all_found(r)
  end)
end)
