-- tenants.lua -- one gateway, several tenants, each on its own port.
--
-- Each tenant's apps connect to their own address; the gateway tells them
-- apart by the listener the request came in on (req.listener is its name)
-- and gives each a private key namespace on the shared servers: tenant
-- "shop"'s key "user:1" is stored as "shop/user:1", tenant "blog"'s as
-- "blog/user:1".  Apps see their own keys, never another tenant's data.
-- A tenant can also have servers of its own ("billing" below).
--
-- Edit the addresses (and add a line per tenant), then:
--   ./gateway --check scripts/tenants.lua
--   ./gateway scripts/tenants.lua
-- Note: -l on the command line replaces ALL the listeners below (and their
-- names); run this config without it.

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

-- listener name -> { address, route for that tenant's requests }
local TENANTS = {
  shop    = { "127.0.0.1:11211", route.namespace("shop/", shared) },
  blog    = { "127.0.0.1:11212", route.namespace("blog/", shared) },
  billing = { "127.0.0.1:11213", route.namespace("billing/", billing_pool) },
}

local by_listener = {}
for name, t in pairs(TENANTS) do
  gateway.listen { t[1], name = name }
  by_listener[name] = t[2]
end

memcache.route {
  default = function(req)
    local tenant = by_listener[req.listener]
    if not tenant then -- only when started with -l, which drops the names
      return memcache.error("no tenant listens on " .. tostring(req.listener))
    end
    return tenant(req)   -- returns the tenant's pool: the core's fast path
  end,
}
