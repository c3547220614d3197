-- migrate.lua -- move to a new memcached cluster without a cold start.
--
-- The apps are switched to the gateway; the gateway answers from the NEW
-- cluster and warms it from the OLD one as keys are asked for:
--   * a get that misses on new is read from old; a hit is answered at once
--     and copied into new in the background (with add, so a value the app
--     has set on new meanwhile is never overwritten);
--   * writes go to new only; deletes go to both, or a deleted key would
--     come back from old;
--   * once new's hit rate has caught up (compare `stats` get_hits), drop
--     the warm-up and retire old.
-- Meanwhile a slice of the traffic (SHADOW_FRACTION of the keys, always the
-- same keys) is copied to a CANDIDATE cluster (say, the next memcached
-- version or instance type) in the background: its hit rate and latency
-- can be watched under real traffic, and it never delays or changes an
-- answer.
--
-- Edit the addresses (and the listen address), then:
--   ./gateway --check scripts/migrate.lua
--   ./gateway scripts/migrate.lua

gateway.listen "127.0.0.1:11211"
gateway.settings { threads = 2 }

local route = require "gateway.route"

local WARM_TTL = 3600          -- seconds a key copied from old lives in new
local SHADOW_FRACTION = 0.05   -- share of keys also sent to the candidate

-- The cluster being retired: as the apps used it (same order, same hash).
local old = memcache.pool {
  servers = { "127.0.0.1:11311", "127.0.0.1:11312" },
  hash = "python-memcached",
  timeout = 0.3,
}

-- Its replacement.
local new = memcache.pool {
  servers = { "127.0.0.1:11313", "127.0.0.1:11314", "127.0.0.1:11315" },
  hash = "ketama",
  timeout = 0.5,
}

-- The candidate that gets shadow traffic.
local candidate = memcache.pool {
  servers = { "127.0.0.1:11316" },
  hash = "ketama",
  timeout = 0.5,
}

memcache.route {
  default = route.shadow {
    target = route.warmup { new = new, old = old, ttl = WARM_TTL },
    shadow = candidate,
    fraction = SHADOW_FRACTION,
  },
}
