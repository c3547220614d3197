-- tenants.lua -- one gateway, several tenants, each on its own port or
-- logged in as itself on a shared one.
--
-- Each tenant's apps connect to their own address; the gateway tells them
-- apart by the listener the request came in on (req.listener is its name)
-- and gives each a private key namespace on the shared servers: tenant
-- "shop"'s key "user:1" is stored as "shop/user:1", tenant "blog"'s as
-- "blog/user:1".  Apps see their own keys, never another tenant's data.
-- A tenant can also have servers of its own ("billing" below).
--
-- The commands with no key are fenced per listener too, so no tenant can
-- touch another: flush_all on a tenant that shares servers would empty
-- every tenant's keys, so it is refused (CLIENT_ERROR flush_all not
-- allowed); billing, alone on its server, may flush that server only.
-- stats (which shows everyone's traffic) and stats reset (which would
-- reset everyone's counters) are refused to every tenant; the operator
-- reads them on an admin listener of its own.
--
-- A tenant may also log in instead: on the "login" listener every client
-- authenticates (SASL PLAIN, memcached's binary protocol) as a user of the
-- users file, and the route takes the tenant from who logged in (req.user)
-- rather than from the port: user "shop"'s keys are prefixed "shop/" and
-- go to shop's servers, exactly as on shop's own port.  A user of the file who is no
-- tenant here gets an error, never a namespace of its own: tenants are
-- kept apart by the table below, whatever the file holds.  users.example
-- is a demo (its passwords are written in it): point auth at a file of
-- your own (see that file for how to make one).
--
-- Edit the addresses (and add a line per tenant), then:
--   ./gateway --check scripts/tenants.lua
--   ./gateway scripts/tenants.lua
-- Note: -l on the command line replaces ALL the listeners below (their
-- names, fences and auth); run this config without it.

local route = require "gateway.route"

local shared = memcache.pool {
  servers = { "127.0.0.1:11311", "127.0.0.1:11312" },
  hash = "ketama",
  timeout = 0.5,
}
local billing_pool = memcache.pool {
  servers = { "127.0.0.1:11313" },
  timeout = 0.5,
}

-- listener name -> { address, route for that tenant's requests, what its
-- flush_all may empty }
local TENANTS = {
  shop    = { "127.0.0.1:11211", route.namespace("shop/", shared), "deny" },
  blog    = { "127.0.0.1:11212", route.namespace("blog/", shared), "deny" },
  billing = { "127.0.0.1:11213", route.namespace("billing/", billing_pool), { billing_pool } },
}

local by_name = {}
for name, t in pairs(TENANTS) do
  gateway.listen { t[1], name = name, flush = t[3], stats = "deny" }
  by_name[name] = t[2]
end

-- The shared way in: clients must log in (auth: the users file, relative
-- to this config's folder).  flush_all could reach every tenant, and
-- stats shows everyone's traffic, so both are refused here too.
gateway.listen { "127.0.0.1:11214", name = "login", auth = "users.example",
  flush = "deny", stats = "deny" }

-- The operator's own listener: stats, stats reset and flush_all of every
-- pool; no keys.  (Keep its port away from the tenants' networks.)
gateway.listen { "127.0.0.1:11219", name = "admin" }

memcache.route {
  default = function(req)
    if req.listener == "admin" then
      return memcache.error("the admin listener serves stats and flush_all, not keys")
    end
    local tenant
    if req.listener == "login" then
      -- who logged in: a name from the users file (the gateway lets no
      -- request through on this listener before its client has logged in)
      tenant = by_name[req.user]
      if not tenant then
        return memcache.error("user " .. tostring(req.user) .. " is no tenant of this gateway")
      end
    else
      tenant = by_name[req.listener]
      if not tenant then -- only when started with -l, which drops the names
        return memcache.error("no tenant listens on " .. tostring(req.listener))
      end
    end
    return tenant(req)   -- returns the tenant's pool: the core's fast path
  end,
}
