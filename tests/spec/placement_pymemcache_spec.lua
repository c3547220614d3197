-- placement_pymemcache_spec.lua -- hash = "pymemcache" finds every key
-- pymemcache 3.5.2's HashClient (Debian's python3-pymemcache) placed itself
-- by rendezvous hashing: printable ASCII keys (its default), and keys with
-- UTF-8 characters (allow_unicode_keys=True: the client hashes the
-- characters, the gateway sees the UTF-8 bytes).  HashClient has no
-- weights, so four equal servers.  The pattern: see placement.lua.
local H = require "harness"
local P = require "placement"

-- argv: "host:port,..." keyfile allow_unicode.  Keys are str, as an app
-- passes them (bytes keys would hash as "b'...'": not supported).
local WRITE = [[
import sys, binascii
from pymemcache.client.hash import HashClient
servers = [(h, int(p)) for h, p in (s.rsplit(":", 1) for s in sys.argv[1].split(","))]
unicode = sys.argv[3] == "1"
mc = HashClient(servers, allow_unicode_keys=unicode, default_noreply=False,
                connect_timeout=5, timeout=5)
for line in open(sys.argv[2]):
    raw = binascii.unhexlify(line.strip())
    key = raw.decode("utf-8" if unicode else "ascii")
    value = "v:%s:%d" % (line.strip()[:16], len(raw))
    if not mc.set(key, value):
        sys.exit("set failed: %r" % key)
]]

local function migrate(keys, unicode)
  local script = H.write_config(WRITE, "placement-pymemcache.py")
  return P.migrate {
    hash = "pymemcache", weights = { 1, 1, 1, 1 }, n = 5000, keys = keys,
    write = function(servers, keyfile)
      local t = {}
      for i, s in ipairs(servers) do t[i] = s.addr end
      local out = H.run(string.format("%s %s %s %s %s 2>&1; echo rc=$?", H.quote(H.python),
        H.quote(script), table.concat(t, ","), H.quote(keyfile), unicode and "1" or "0"))
      assert(out:match("rc=0"), out)
    end,
  }
end

describe("hash = pymemcache", function()
  it("finds every key HashClient put on four servers (printable ASCII keys)", function()
    P.assert_all_found(migrate({ max_len = 250, bytes = "printable", seed = 31 }, false))
  end)

  it("finds every key HashClient put with allow_unicode_keys (UTF-8 keys)", function()
    local r = migrate({ max_len = 200, bytes = "printable", utf8 = true, seed = 32 }, true)
    P.assert_all_found(r)
  end)
end)
