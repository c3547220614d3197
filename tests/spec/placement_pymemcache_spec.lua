-- placement_pymemcache_spec.lua -- hash = "pymemcache" finds every key
-- pymemcache 3.5.2's HashClient (Debian's python3-pymemcache) placed itself
-- by rendezvous hashing: printable ASCII keys (its default), and keys with
-- UTF-8 characters (allow_unicode_keys=True: the client hashes the
-- characters, the gateway sees the UTF-8 bytes).  HashClient has no
-- weights, so four equal servers.  Then a dead server: HashClient drops
-- it and the gateway's failover must put its keys where HashClient did.
-- The pattern: see placement.lua.
local H = require "harness"
local P = require "placement"

-- argv: "host:port,..." keyfile allow_unicode [key_prefix].  Keys are str,
-- as an app passes them (bytes keys would hash as "b'...'": not supported).
local WRITE = [[
import sys, binascii
from pymemcache.client.hash import HashClient
servers = [(h, int(p)) for h, p in (s.rsplit(":", 1) for s in sys.argv[1].split(","))]
unicode = sys.argv[3] == "1"
prefix = sys.argv[4].encode() if len(sys.argv) > 4 else b""
mc = HashClient(servers, allow_unicode_keys=unicode, default_noreply=False,
                connect_timeout=5, timeout=5, key_prefix=prefix)
for line in open(sys.argv[2]):
    raw = binascii.unhexlify(line.strip())
    key = raw.decode("utf-8" if unicode else "ascii")
    value = "v:%s:%d" % (line.strip()[:16], len(raw))
    if not mc.set(key, value):
        sys.exit("set failed: %r" % key)
]]

-- prefix: HashClient's key_prefix, and pool: more pool options.
local function migrate(keys, unicode, prefix, pool)
  local script = H.write_config(WRITE, "placement-pymemcache.py")
  return P.migrate {
    hash = "pymemcache", weights = { 1, 1, 1, 1 }, n = 5000, keys = keys,
    key_prefix = prefix, pool = pool,
    write = function(servers, keyfile)
      local t = {}
      for i, s in ipairs(servers) do t[i] = s.addr end
      local out = H.run(string.format("%s %s %s %s %s %s 2>&1; echo rc=$?", H.quote(H.python),
        H.quote(script), table.concat(t, ","), H.quote(keyfile), unicode and "1" or "0",
        prefix and H.quote(prefix) or ""))
      assert(out:match("rc=0"), out)
    end,
  }
end

-- argv: "host:port,..." keyfile.  The last server is a dead port: the first
-- set that lands on it fails and HashClient drops the node (retry_attempts
-- 0), so its keys go to the best of the others.  Prints "FAILED hex" for
-- sets that failed and "MOVED hex" for keys whose node, all four alive,
-- would have been the dead one.
local WRITE_DEAD = [[
import sys, binascii
from pymemcache.client.hash import HashClient
from pymemcache.client.rendezvous import RendezvousHash
servers = [(h, int(p)) for h, p in (s.rsplit(":", 1) for s in sys.argv[1].split(","))]
mc = HashClient(servers, default_noreply=False, ignore_exc=True, retry_attempts=0,
                dead_timeout=3600, connect_timeout=5, timeout=5)
full = RendezvousHash()
for s in servers:
    full.add_node("%s:%s" % s)
dead = "%s:%s" % servers[-1]
for line in open(sys.argv[2]):
    h = line.strip()
    key = binascii.unhexlify(h).decode("ascii")
    if not mc.set(key, "v:%s:%d" % (h[:16], len(key))):
        print("FAILED", h)
    elif full.get_node(key) == dead:
        print("MOVED", h)
]]

describe("hash = pymemcache", function()
  it("finds every key HashClient put on four servers (printable ASCII keys)", function()
    P.assert_all_found(migrate({ max_len = 250, bytes = "printable", seed = 31 }, false))
  end)

  it("finds every key HashClient put with allow_unicode_keys (UTF-8 keys)", function()
    local r = migrate({ max_len = 200, bytes = "printable", utf8 = true, seed = 32 }, true)
    P.assert_all_found(r)
  end)

  it("finds the keys of a HashClient with a key_prefix, given as hash_namespace", function()
    -- HashClient sends the prefix but hashes the key without it
    local r = migrate({ max_len = 240, bytes = "printable", seed = 33 }, false, "app:",
      'hash_namespace = "app:"')
    P.assert_all_found(r)
    local miss = migrate({ max_len = 240, bytes = "printable", seed = 33 }, false, "app:")
    assert.is_true(miss.found < miss.n * 0.4, "without hash_namespace " .. miss.found .. " found")
  end)

  it("follows HashClient's failover: with a server dead, failover = rehash finds every key", function()
    local add, stop_all = H.cleanups()
    finally(stop_all)
    local addrs = {}
    for i = 1, 3 do
      local m = H.start_memcached()
      add(m.stop)
      addrs[i] = m.addr
    end
    addrs[4] = "127.0.0.1:" .. H.free_port()   -- nothing listens there
    local keys = P.keys(3000, { max_len = 250, bytes = "printable", seed = 33 })
    local hex = {}
    for i, k in ipairs(keys) do hex[i] = P.hex(k) end
    local keyfile = H.tmpdir .. "/placement-pymemcache-dead.txt"
    H.write_file(keyfile, table.concat(hex, "\n") .. "\n")
    local script = H.write_config(WRITE_DEAD, "placement-pymemcache-dead.py")
    local out, ok = H.run(string.format("%s %s %s %s 2>&1", H.quote(H.python),
      H.quote(script), table.concat(addrs, ","), H.quote(keyfile)))
    assert(ok, out)
    local failed, moved, byhex = {}, {}, {}
    for i, k in ipairs(keys) do byhex[hex[i]] = k end
    for what, h in out:gmatch("(%u+) (%x+)") do
      if what == "FAILED" then failed[byhex[h]] = true else moved[#moved + 1] = byhex[h] end
    end
    local nfailed = 0
    for _ in pairs(failed) do nfailed = nfailed + 1 end
    assert.are.equal(1, nfailed, out:sub(1, 500))   -- only the set that found it dead
    assert(#moved > 500, #moved .. " keys moved off the dead server")
    local servers = {}
    for i, a in ipairs(addrs) do servers[i] = string.format("%q", a) end
    local g = H.start_gateway(string.format([[
      local pool = memcache.pool { servers = { %s }, hash = "pymemcache", failover = "rehash" }
      memcache.route { default = pool }
    ]], table.concat(servers, ", ")))
    add(g.stop)
    -- until the gateway has marked the dead server down (failure_limit),
    -- its keys fail; then they are found where HashClient put them
    H.wait_until(function()
      local okr, found = pcall(P.read_through, g.port, { moved[1] })
      return okr and found == 1
    end, 10, "the first moved key")
    local rest = {}
    for _, k in ipairs(keys) do if not failed[k] then rest[#rest + 1] = k end end
    local found, wrong, missing = P.read_through(g.port, rest)
    assert.are.equal(0, wrong)
    assert.are.equal(#rest, found, "first missing: " .. table.concat(missing, ", "))
    found = P.read_through(g.port, moved)
    assert.are.equal(#moved, found)
  end)
end)
