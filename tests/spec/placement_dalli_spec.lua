-- placement_dalli_spec.lua -- hash = "dalli" finds every key Ruby's Dalli
-- 3.0.6 (Debian's ruby-dalli) placed itself on memcached servers given as
-- "host:port:weight" strings.  Keys are random bytes 0x21..0x7e and
-- 0x80..0xff (Dalli speaks the binary protocol and hashes the bytes), 1..250
-- of them, so Dalli sends each unchanged.  Three cases: three servers with
-- unequal weights; seven equal ones (Dalli multiplies before it divides, so
-- each gets 160 points, where w / sum * 160 * n in double gives 159); and
-- three weights summing to over 2^17 where Dalli's double division gives
-- server 3 one point fewer than a float division would.  See placement.lua.
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

local function dalli_write(script)
  return function(servers, keyfile)
    local t = {}
    for i, s in ipairs(servers) do t[i] = s.addr .. ":" .. s.weight end
    local out = H.run(string.format("ruby %s %s %s 2>&1; echo rc=$?", H.quote(script),
      table.concat(t, ","), H.quote(keyfile)))
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

  it("finds every key Dalli put on servers whose point counts need double precision", function()
    local r = P.migrate {
      hash = "dalli", weights = { 375131, 125248, 302905 }, n = 10000,
      keys = { bytes = "high", seed = 18 },
      write = dalli_write(script),
    }
    P.assert_all_found(r)
  end)
end)
