-- tenants-auth.lua -- one address for every tenant; who is who comes from
-- the login, and each user sees only keys under its own prefix.
--
-- Every client logs in on connecting, in its own protocol: binary clients
-- with SASL PLAIN (memjs, pylibmc binary=True, Dalli 3.0), text and meta
-- clients with memcached's ASCII authentication (a first `set` of any key
-- whose data is "user password": pymemcache, or any client that can send
-- one set first).  Until then every command is refused.
--
-- The route puts every key under "<user>/": user "shop"'s key "cart:1" is
-- stored as "shop/cart:1".  A user cannot reach another's keys whatever key
-- it sends: "blog/cart:1" sent by shop becomes "shop/blog/cart:1".  That
-- holds for every command, multi-gets included (each key is routed), and
-- replies show the client's own keys.
--
-- flush_all would empty every tenant's keys on the shared servers, and
-- stats shows everyone's traffic: both are refused on this listener; the
-- operator reads them on the admin listener or a listener of its own.
--
-- The users file holds "name:hash" lines (mkpasswd -m yescrypt); this one
-- names users.example, whose demo passwords are written in its comments.
-- Edit the addresses, make your own users file, then:
--   ./gateway --check scripts/tenants-auth.lua
--   ./gateway scripts/tenants-auth.lua

gateway.listen { "127.0.0.1:11211", auth = "users.example", flush = "deny", stats = "deny" }

local shared = memcache.pool {
  servers = { "127.0.0.1:11311", "127.0.0.1:11312" },
  hash = "ketama",
  timeout = 0.5,
}

memcache.route {
  default = function(req)
    -- req.user is set on this listener: nothing gets here before a login
    req.key = req.user .. "/" .. req.key
    return shared
  end,
}
