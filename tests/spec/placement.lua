-- placement.lua -- the judge of a `hash =` mode: the real client writes
-- keys straight to weighted memcached servers, and the gateway, given the
-- same servers and the matching mode, must find every one.
--
--   local P = require "placement"
--   local r = P.migrate {
--     hash = "dalli",                 -- the pool's hash =
--     weights = { 1, 2, 3 },          -- one memcached per weight
--     n = 5000,                       -- keys (>= 5,000 for a real check)
--     keys = { max_len = 250, bytes = "printable" },   -- see P.keys
--     pool = 'failover = "none"',     -- more pool options (Lua text), optional
--     key_prefix = "app:",            -- the client puts this before each key
--     write = function(servers, keyfile) ... end,
--   }
--   assert.are.equal(r.n, r.found)
--
-- write runs the real client: servers is a list of { host, port, weight,
-- addr = "host:port" } in pool order, and keyfile holds one key per line in
-- hex (so any byte survives).  The client must set each key to the value
-- P.value(key) straight on the servers and print nothing that matters; it
-- should fail loudly (error exit) if a set fails.  migrate() then checks,
-- through the gateway with one `get` of 100 keys at a time, that every key
-- is found with its value, and that every server holds some keys (so the
-- check could fail: a wrong mode misses about (n-1)/n of them).
--
-- Returns { n, found, wrong, missing = { first few keys, printable },
-- items = { per-server curr_items } }.
local H = require "harness"

local P = {}

P.BYTES = {
  -- every byte a text-protocol key may hold: no control bytes, no space
  printable = (function()
    local t = {}
    for b = 0x21, 0x7e do t[#t + 1] = string.char(b) end
    return table.concat(t)
  end)(),
  -- plus bytes >= 0x80, for clients that send raw bytes (binary protocol
  -- clients, or ones that hash bytes without decoding)
  high = (function()
    local t = {}
    for b = 0x21, 0x7e do t[#t + 1] = string.char(b) end
    for b = 0x80, 0xff do t[#t + 1] = string.char(b) end
    return table.concat(t)
  end)(),
  alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
}

-- n distinct keys of random lengths (min_len..max_len, defaults 1..250)
-- drawn from opts.bytes (a name in P.BYTES, or the characters themselves),
-- reproducibly (opts.seed).  opts.utf8: draw UTF-8 characters instead
-- (code points 0xa1..0x7ff and ASCII), each counted as one toward the
-- length, and keep each key's byte length <= 250; opts.utf8 = { lo, hi }
-- draws the code points from lo..hi instead (surrogates skipped), e.g.
-- { 0xa1, 0x1ffff } for 2-, 3- and 4-byte characters.
function P.keys(n, opts)
  opts = opts or {}
  local alphabet = P.BYTES[opts.bytes or "printable"] or opts.bytes
  local lo, hi = opts.min_len or 1, opts.max_len or 250
  math.randomseed(opts.seed or 16)
  local seen, out = {}, {}
  while #out < n do
    local len = math.random(lo, hi)
    local t = {}
    for i = 1, len do
      if opts.utf8 and math.random(3) == 1 then
        local cp
        if type(opts.utf8) == "table" then
          repeat cp = math.random(opts.utf8[1], opts.utf8[2]) until cp < 0xd800 or cp > 0xdfff
        else
          cp = math.random(0xa1, 0x7ff)
        end
        t[i] = utf8.char(cp)
      else
        local j = math.random(#alphabet)
        t[i] = alphabet:sub(j, j)
      end
    end
    local k = table.concat(t)
    if #k <= 250 and not seen[k] then
      seen[k] = true
      out[#out + 1] = k
    end
  end
  return out
end

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end
P.hex = hex

-- The value a client stores under key: short, printable, tied to the key.
function P.value(key)
  return "v:" .. hex(key):sub(1, 16) .. ":" .. #key
end

local function write_keyfile(keys)
  local path = string.format("%s/placement-keys-%d.txt", H.tmpdir, H.free_port())
  local t = {}
  for i, k in ipairs(keys) do t[i] = hex(k) end
  H.write_file(path, table.concat(t, "\n") .. "\n")
  return path
end

-- The Lua text of the pool's server list.
local function servers_lua(servers)
  local t = {}
  for i, s in ipairs(servers) do
    t[i] = string.format("{ %q, weight = %d }", s.addr, s.weight)
  end
  return table.concat(t, ", ")
end

-- Every key through the gateway, 100 per get, each asked as prefix .. key
-- (prefix: what the client itself puts before every key, "" by default);
-- counts found and wrong.
local function read_through(port, keys, prefix)
  prefix = prefix or ""
  local c = H.connect(port, 10)
  local found, wrong, missing = 0, 0, {}
  for b = 1, #keys, 100 do
    local batch = { table.unpack(keys, b, math.min(b + 99, #keys)) }
    c:send("get " .. prefix .. table.concat(batch, " " .. prefix) .. "\r\n")
    local got = {}
    while true do
      local unit, line, n = c:unit()
      if not n then
        assert(line == "END\r\n", "gateway answered " .. H.show(line))
        break
      end
      local k = line:match("^VALUE (%S+)"):sub(#prefix + 1)
      got[k] = unit:sub(#line + 1, #line + n - 2)
    end
    for _, k in ipairs(batch) do
      if got[k] == nil then
        if #missing < 5 then missing[#missing + 1] = H.show(k:sub(1, 40)) end
      elseif got[k] == P.value(k) then
        found = found + 1
      else
        wrong = wrong + 1
      end
    end
  end
  c:close()
  return found, wrong, missing
end
-- For specs that set up servers themselves: (port, keys[, prefix]) -> found, wrong,
-- missing (the first few), as migrate() counts them.
P.read_through = read_through

local function curr_items(m)
  local st = H.parse_stats(H.request(m.port, "stats\r\n"))
  return tonumber(st.curr_items)
end

function P.migrate(opts)
  local cleanup, stop_all = H.cleanups()
  local ok, res = pcall(function()
    local servers = {}
    for i, w in ipairs(opts.weights) do
      local m = H.start_memcached()
      cleanup(m.stop)
      servers[i] = { host = "127.0.0.1", port = m.port, weight = w, addr = m.addr, mc = m }
    end
    local keys = P.keys(opts.n, opts.keys)
    local keyfile = write_keyfile(keys)
    opts.write(servers, keyfile)
    local g = H.start_gateway(string.format([[
      local pool = memcache.pool { servers = { %s }, hash = %q%s }
      memcache.route { default = pool }
    ]], servers_lua(servers), opts.hash, opts.pool and (", " .. opts.pool) or ""))
    cleanup(g.stop)
    local found, wrong, missing = read_through(g.port, keys, opts.key_prefix)
    local items = {}
    for i, s in ipairs(servers) do items[i] = curr_items(s.mc) end
    return { n = #keys, found = found, wrong = wrong, missing = missing, items = items }
  end)
  stop_all()
  if not ok then error(res, 0) end
  return res
end

-- The assertions every placement spec makes of a result.
function P.assert_all_found(r)
  local stored = 0
  for _, c in ipairs(r.items) do stored = stored + c end
  assert(stored == r.n, string.format("the client stored %d items for %d keys", stored, r.n))
  for i, c in ipairs(r.items) do
    assert(c > 0, string.format("server %d holds no keys: the check could not fail", i))
  end
  assert(r.wrong == 0, string.format("%d keys came back with another value", r.wrong))
  assert(r.found == r.n, string.format("found %d of %d keys; first missing: %s",
    r.found, r.n, table.concat(r.missing, ", ")))
end

return P
