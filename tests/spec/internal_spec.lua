-- internal_spec.lua -- memcache.internal counts hits and misses in `stats`
-- the same way requests forwarded to a memcached server do.
local H = require "harness"

describe("memcache.internal stats", function()
  local gw
  lazy_setup(function()
    gw = H.start_gateway([[
      local near = memcache.internal { size = "4MB" }
      memcache.route { default = near }
    ]])
  end)
  lazy_teardown(function() if gw then gw.stop() end end)

  local function stat(c, name)
    return tonumber(c:call("stats\r\n"):match("STAT " .. name .. " (%d+)"))
  end

  it("counts delete, incr, decr, touch and cas results", function()
    local c = H.connect(gw.port)
    assert.equal("STORED\r\n", c:call("set n 0 0 1\r\n5\r\n"))
    assert.equal("6\r\n", c:call("incr n 1\r\n"))
    assert.equal("NOT_FOUND\r\n", c:call("incr nope 1\r\n"))
    assert.equal("5\r\n", c:call("decr n 1\r\n"))
    assert.equal("TOUCHED\r\n", c:call("touch n 100\r\n"))
    assert.equal("NOT_FOUND\r\n", c:call("touch nope 100\r\n"))
    assert.equal("EXISTS\r\n", c:call("cas n 0 0 1 999999\r\nx\r\n"))
    assert.equal("DELETED\r\n", c:call("delete n\r\n"))
    assert.equal("NOT_FOUND\r\n", c:call("delete n\r\n"))
    assert.equal(1, stat(c, "incr_hits"))
    assert.equal(1, stat(c, "incr_misses"))
    assert.equal(1, stat(c, "decr_hits"))
    assert.equal(1, stat(c, "touch_hits"))
    assert.equal(1, stat(c, "touch_misses"))
    assert.equal(1, stat(c, "cas_badval"))
    assert.equal(1, stat(c, "delete_hits"))
    assert.equal(1, stat(c, "delete_misses"))
    c:close()
  end)
end)
