-- sessions.lua -- web sessions that slide and survive a dead server.
--
-- The python-memcached "web session" pattern: the app keeps each user's
-- session as a JSON dict under "sess:<session id>" and expects it to live
-- as long as the user is active.  Here
--   * every read of a session extends its life to SESSION_TTL seconds (one
--     gat per replica: no get-then-touch round trip, no app change), so an
--     active user is never logged out and an idle one is after SESSION_TTL;
--   * every session is kept on two replicas: writes go to both, reads
--     answer from whichever has it.  With one replica dead (or restarted
--     empty) nobody is logged out.
-- Everything else the apps cache goes to the main pool, unchanged.
--
-- Edit the addresses (and the listen address), then:
--   ./gateway --check scripts/sessions.lua
--   ./gateway scripts/sessions.lua

gateway.listen "127.0.0.1:11211"
gateway.settings { threads = 2 }

local route = require "gateway.route"

local SESSION_TTL = 1200                 -- seconds of inactivity before a logout

-- Two replicas for sessions: separate servers (ideally separate racks).
-- Each can be a cluster of several servers; every session is on both.
local replica_a = memcache.pool {
  servers = { "127.0.0.1:11311" },
  timeout = 0.3,
  retry_timeout = 2,                     -- a dead replica is skipped at once for 2 s
}
local replica_b = memcache.pool {
  servers = { "127.0.0.1:11312" },
  timeout = 0.3,
  retry_timeout = 2,
}

-- The app's other cached data.
local main = memcache.pool {
  servers = { "127.0.0.1:11313", "127.0.0.1:11314" },
  hash = "python-memcached",
  timeout = 0.5,
}

memcache.route {
  ["sess:"] = route.sliding_session {
    replica_a, replica_b,
    ttl = SESSION_TTL,
    wait = "one",                        -- a write is done when one replica has it;
                                         -- the other catches up in the background
  },
  default = main,
}
