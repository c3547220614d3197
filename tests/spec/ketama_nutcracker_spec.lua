-- ketama_nutcracker_spec.lua -- our ketama places keys exactly where
-- Debian's nutcracker (twemproxy, md5 + ketama) does.
--
-- Keys are written through a real nutcracker in front of real memcacheds;
-- then build/rel/tools/hashpick says which server each key should be on,
-- and a direct multi-get against every memcached checks that the key is on
-- that server and on no other.
local H = require "harness"

local TOOLS = os.getenv("GATEWAY_TOOLS") or (H.root .. "/build/rel/tools")
local HASHPICK = TOOLS .. "/hashpick"

-- Deterministic keys of varied shape: short and long (up to memcached's
-- 250-byte limit), punctuation, and UTF-8 bytes.  No spaces or controls.
local function make_keys(n, tag)
  local keys, seed = {}, 12345
  local function rnd(m)
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed % m
  end
  local alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_-./"
  for i = 1, n do
    local k
    local shape = i % 10
    if shape == 0 then
      k = tag .. ":" .. i
    elseif shape == 1 then
      k = "user:" .. i .. ":\xc3\xa9t\xc3\xa9"
    elseif shape == 2 then
      k = string.format("%s/%d/", tag, i) .. string.rep("x", 200 + rnd(40))
    else
      local parts = { tag, tostring(i) }
      for _ = 1, rnd(20) do
        local c = rnd(#alphabet) + 1
        parts[#parts + 1] = alphabet:sub(c, c)
      end
      k = table.concat(parts, "-")
    end
    assert(#k <= 250)
    keys[i] = k
  end
  return keys
end

-- Server index (0-based) for each key according to hashpick.
local function hashpick(mode, servers, keys)
  local path = string.format("%s/hashpick-keys-%d.txt", H.tmpdir, H.free_port())
  local f = assert(io.open(path, "wb"))
  f:write(table.concat(keys, "\n"), "\n")
  f:close()
  local args = {}
  for _, s in ipairs(servers) do
    args[#args + 1] = H.quote(s.addr .. ":" .. s.weight)
  end
  local out, ok = H.run(string.format("%s %s %s < %s", H.quote(HASHPICK), mode,
    table.concat(args, " "), H.quote(path)))
  os.remove(path)
  assert(ok, "hashpick failed (run `make " .. HASHPICK .. "`?)")
  local picks = {}
  for line in out:gmatch("[^\n]+") do picks[#picks + 1] = tonumber(line) end
  assert(#picks == #keys, "hashpick answered " .. #picks .. " of " .. #keys)
  return picks
end

-- Pipelined sets through one connection, batch replies checked.
local function set_all(port, keys, batch)
  local c = H.connect(port, 10)
  for first = 1, #keys, batch do
    local last = math.min(first + batch - 1, #keys)
    local req = {}
    for i = first, last do
      local v = "v" .. i
      req[#req + 1] = string.format("set %s 0 0 %d\r\n%s\r\n", keys[i], #v, v)
    end
    c:send(table.concat(req))
    for i = first, last do
      local l = c:line()
      assert(l == "STORED", "set " .. keys[i] .. ": " .. tostring(l))
    end
  end
  c:close()
end

-- Which keys a memcached holds: {key -> value}, by batched multi-gets.
local function held(port, keys, batch)
  local c = H.connect(port, 10)
  local found = {}
  for first = 1, #keys, batch do
    local last = math.min(first + batch - 1, #keys)
    c:send("get " .. table.concat(keys, " ", first, last) .. "\r\n")
    while true do
      local l = assert(c:line())
      if l == "END" then break end
      local k, n = l:match("^VALUE (%S+) %d+ (%d+)$")
      assert(k, "unexpected reply: " .. l)
      found[k] = assert(c:bytes(tonumber(n) + 2)):sub(1, -3)
    end
  end
  c:close()
  return found
end

-- Stop every process at once: signal them all, then wait for each.  A
-- memcached takes about a second to exit on SIGTERM (and its zombie a while
-- longer to be reaped here), so stopping 26 of them one by one would take
-- most of a minute.
local function stop_all(procs)
  local pids = {}
  for _, p in ipairs(procs) do
    if p.pid then pids[#pids + 1] = tostring(p.pid) end
  end
  if #pids > 0 then H.run("kill -TERM " .. table.concat(pids, " ") .. " 2>/dev/null") end
  for _, p in ipairs(procs) do p:stop() end
end

-- Start memcacheds with the given weights and nutcracker over them, write
-- the keys through nutcracker, and count keys found exactly where hashpick
-- says (with the value that was written).
local function check_placement(weights, nkeys, tag, procs)
  local servers = {}
  for i, w in ipairs(weights) do
    local m = H.start_memcached({ memory = 16 })
    procs[#procs + 1] = m
    servers[i] = { addr = m.addr, port = m.port, weight = w }
  end
  local nc = H.start_nutcracker(servers)
  procs[#procs + 1] = nc

  local keys = make_keys(nkeys, tag)
  set_all(nc.port, keys, 500)
  local picks = hashpick("ketama", servers, keys)

  local holdings = {}
  for i, s in ipairs(servers) do holdings[i] = held(s.port, keys, 100) end

  local good, per_server, bad = 0, {}, {}
  for i, k in ipairs(keys) do
    local where = {}
    for j = 1, #servers do
      if holdings[j][k] ~= nil then where[#where + 1] = j - 1 end
    end
    local want = picks[i]
    if #where == 1 and where[1] == want and holdings[want + 1][k] == "v" .. i then
      good = good + 1
      per_server[want] = (per_server[want] or 0) + 1
    elseif #bad < 5 then
      bad[#bad + 1] = string.format("%q: hashpick %s, found on {%s}", k,
        tostring(want), table.concat(where, ","))
    end
  end
  return good, per_server, bad
end

describe("ketama placement vs nutcracker (md5 + ketama)", function()
  it("puts 10000 keys on the same memcached as nutcracker, weights 1,2,3", function()
    local procs = {}
    finally(function() stop_all(procs) end)

    local good, per_server, bad = check_placement({ 1, 2, 3 }, 10000, "w123", procs)
    assert.are.same({}, bad)
    assert.are.equal(10000, good)
    -- weights 1:2:3 -> roughly 1/6, 2/6, 3/6 of the keys
    assert.is_true(per_server[0] > 1000 and per_server[0] < 2400)
    assert.is_true(per_server[1] > 2600 and per_server[1] < 4100)
    assert.is_true(per_server[2] > 4100 and per_server[2] < 5900)
  end)

  -- With 25 equal-weight servers twemproxy's single-precision point count
  -- comes out at 156 per server instead of 160; double arithmetic would
  -- misplace about 2% of the keys.
  it("matches nutcracker's float point count with 25 equal servers", function()
    local procs = {}
    finally(function() stop_all(procs) end)

    local weights = {}
    for i = 1, 25 do weights[i] = 1 end
    local good, _, bad = check_placement(weights, 4000, "eq25", procs)
    assert.are.same({}, bad)
    assert.are.equal(4000, good)
  end)
end)
