-- python-memcached.lua -- the drop-in migration config.
--
-- Apps that did   memcache.Client([("10.0.0.1:11211", 1), ("10.0.0.2:11211", 2)])
-- point at the gateway instead.  The pool below has the same servers, in the
-- same order, with the same weights, and python-memcached's own hashing, so
-- every key is looked for on the server the apps stored it on: no misses on
-- the day of the move.  With failover = "rehash", a server that is down is
-- walked around exactly as python-memcached's own client does.
--
-- Edit the server list (and the listen address), then:
--   ./gateway --check scripts/python-memcached.lua
--   ./gateway scripts/python-memcached.lua

gateway.listen "127.0.0.1:11211"
gateway.settings { threads = 2 }

local servers = memcache.pool {
  servers = {
    { "127.0.0.1:11311", weight = 1 },   -- ("10.0.0.1:11211", 1)
    { "127.0.0.1:11312", weight = 2 },   -- ("10.0.0.2:11211", 2)
  },
  hash = "python-memcached",             -- python-memcached 1.59 placement
  -- python_memcached = "1.60",          -- if the apps ran 1.60 or later
  failover = "rehash",
  timeout = 0.5,
}

memcache.route { default = servers }
