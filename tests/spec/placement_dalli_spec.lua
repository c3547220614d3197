-- placement_dalli_spec.lua -- hash = "dalli" finds every key Ruby's Dalli
-- 3.0.6 (Debian's ruby-dalli) placed itself on memcached servers given as
-- "host:port:weight" strings.  Keys are random bytes 0x21..0x7e and
-- 0x80..0xff (Dalli speaks the binary protocol and hashes the bytes), 1..250
-- of them, so Dalli sends each unchanged.  Three cases: three servers with
-- unequal weights; seven equal ones (Dalli multiplies before it divides, so
-- each gets 160 points, where w / sum * 160 * n in double gives 159); and
-- three weights summing to over 2^17 where Dalli's double division gives
-- server 3 one point fewer than a float division would.  See placement.lua.
-- A fourth case has a server down while Dalli writes (Dalli looks again
-- with crc32("#{try}#{key}")); the gateway with failover = "rehash" and
-- that server down must find every key where Dalli's walk put it.
local H = require "harness"
local P = require "placement"

local WRITE = [[
require 'dalli'
servers = ARGV[0].split(',')
dc = Dalli::Client.new(servers, socket_timeout: 5, socket_max_failures: 1)
File.foreach(ARGV[1]) do |line|
  hex = line.strip
  key = [hex].pack('H*')
  value = "v:#{hex[0, 16]}:#{key.bytesize}"
  dc.set(key, value, 0, raw: true) or abort("set failed: #{key.inspect}")
end
dc.close
]]

-- The writer for P.migrate; list: the server list as Dalli gets it, when
-- not from servers ("host:port:weight,...").
local function dalli_write(script)
  return function(servers, keyfile, list)
    local t = {}
    for i, s in ipairs(servers) do t[i] = s.addr .. ":" .. s.weight end
    local out = H.run(string.format("ruby %s %s %s 2>&1; echo rc=$?", H.quote(script),
      list or table.concat(t, ","), H.quote(keyfile)))
    assert(out:match("rc=0\n?$"), out)
  end
end

describe("hash = dalli", function()
  local script
  setup(function() script = H.write_config(WRITE, "placement-dalli.rb") end)

  it("finds every key Dalli put on three weighted servers", function()
    local r = P.migrate {
      hash = "dalli", weights = { 1, 2, 3 }, n = 5000, keys = { bytes = "high" },
      write = dalli_write(script),
    }
    P.assert_all_found(r)
  end)

  it("finds every key Dalli put on seven equal servers (160 points each)", function()
    local r = P.migrate {
      hash = "dalli", weights = { 1, 1, 1, 1, 1, 1, 1 }, n = 5000,
      keys = { bytes = "high", seed = 17 },
      write = dalli_write(script),
    }
    P.assert_all_found(r)
  end)

  it("failover = \"rehash\" finds every key Dalli put with a server down", function()
    local cleanup, stop_all = H.cleanups()
    local ok, err = pcall(function()
      local servers, weights, t = {}, { 1, 2, 3 }, {}
      for i, w in ipairs(weights) do
        servers[i] = H.start_memcached()
        cleanup(servers[i].stop)
        t[i] = servers[i].addr .. ":" .. w
      end
      servers[2].stop()      -- the heaviest but one: Dalli walks its keys away
      local keys = P.keys(3000, { bytes = "high", seed = 19 })
      local hexes = {}
      for i, k in ipairs(keys) do hexes[i] = P.hex(k) end
      local keyfile = string.format("%s/placement-dalli-down-%d.txt", H.tmpdir, H.free_port())
      H.write_file(keyfile, table.concat(hexes, "\n") .. "\n")
      dalli_write(script)({}, keyfile, table.concat(t, ","))
      local g = H.start_gateway(string.format([[
        local pool = memcache.pool { servers = { %q, { %q, weight = 2 }, { %q, weight = 3 } },
          hash = "dalli", failover = "rehash", retry_timeout = 30 }
        memcache.route { default = pool }
      ]], servers[1].addr, servers[2].addr, servers[3].addr))
      cleanup(g.stop)
      local function found_all()
        local c = H.connect(g.port, 10)
        local found = 0
        for b = 1, #keys, 100 do
          local batch = { table.unpack(keys, b, math.min(b + 99, #keys)) }
          c:send("get " .. table.concat(batch, " ") .. "\r\n")
          while true do
            local unit, line, n = c:unit()
            if not n then break end
            local k = line:match("^VALUE (%S+)")
            if unit:sub(#line + 1, #line + n - 2) == P.value(k) then found = found + 1 end
          end
        end
        c:close()
        return found
      end
      -- the gateway learns that the server is down from failed requests:
      -- read until a pass finds every key, for at most 10 s
      local found, deadline = 0, os.time() + 10
      repeat
        found = found_all()
      until found == #keys or os.time() > deadline
      assert(found == #keys, string.format("found %d of %d keys", found, #keys))
      local st1 = H.parse_stats(H.request(servers[1].port, "stats\r\n"))
      local st3 = H.parse_stats(H.request(servers[3].port, "stats\r\n"))
      assert.are.equal(#keys, tonumber(st1.curr_items) + tonumber(st3.curr_items))
    end)
    stop_all()
    if not ok then error(err, 0) end
  end)

  it("finds every key Dalli put on servers whose point counts need double precision", function()
    local r = P.migrate {
      hash = "dalli", weights = { 375131, 125248, 302905 }, n = 10000,
      keys = { bytes = "high", seed = 18 },
      write = dalli_write(script),
    }
    P.assert_all_found(r)
  end)
end)
