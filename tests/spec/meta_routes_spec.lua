-- meta_routes_spec.lua -- meta requests from clients meet the gateway's
-- own parts: Lua routes (req.command, req.key, req.meta, pool:forward,
-- responses built in Lua), key rewriting with k and b, the embedded store
-- (memcache.internal), pools that speak only text, and a dead server.
--
-- The byte-for-byte comparison with memcached itself is meta_spec.lua's;
-- here every expected reply is written out.
--
-- Run from the repo root:
--   busted --lpath='./lua/?.lua;./lua/?/init.lua;./tests/spec/?.lua' tests/spec/meta_routes_spec.lua
local H = require "harness"
local socket = require "socket"

local show = H.show

local function b64(s) return (require "mime").b64(s) end

describe("meta requests through Lua routes", function()
  local m, gw, g, direct

  lazy_setup(function()
    m = H.start_memcached()
    local dead_port = H.free_port()
    gw = H.start_gateway(string.format([[
gateway.settings { threads = 1 }
local main = memcache.pool { servers = { "%s" }, timeout = 0.5 }
local old = memcache.pool { servers = { "%s" }, protocol = "text" }
local dead = memcache.pool { servers = { "127.0.0.1:%d" }, timeout = 0.5 }
local near = memcache.internal { size = "4MB" }

-- What a route saw, for the spec to read back with "mg seen:<key> v".
local function remember(req, what)
  near_seen = near_seen or {}
  near_seen[req.key] = what
end

memcache.route {
  ["i:"] = near,
  ["old:"] = old,
  ["dead:"] = dead,
  ["pre:"] = function(req) req.key = "moved/" .. req.key; return main end,
  ["fwd:"] = function(req)
    req.key = "fwd/" .. req.key
    return main:forward(req)
  end,
  ["fwdsame:"] = function(req) return main:forward(req) end,
  ["look:"] = function(req)
    local m = req.meta
    local t = {}
    for _, l in ipairs { "v", "T", "O", "q", "k", "b", "N", "M" } do
      t[#t + 1] = l .. "=" .. tostring(m[l])
    end
    return memcache.hit(req.command .. " " .. req.key .. " " .. table.concat(t, ","), 3, 77)
  end,
  ["typo:"] = function(req) return memcache.hit(tostring(req.meta.value)) end,
  ["write:"] = function(req) req.meta.v = false; return main end,
  ["textmeta:"] = function(req) return memcache.hit(tostring(req.meta)) end,
  ["hit:"] = function(req) return memcache.hit("lua-" .. req.key, 5, 1234) end,
  ["miss:"] = function(req) return memcache.miss() end,
  ["st:"] = function(req)
    if req.command ~= "ms" then return memcache.error("not ms") end
    if req.value == "no" then return memcache.not_stored() end
    return memcache.stored()
  end,
  ["del:"] = function(req) return memcache.deleted() end,
  ["nf:"] = function(req) return memcache.not_found() end,
  ["num:"] = function(req) return memcache.number(42) end,
  ["err:"] = function(req) return memcache.error("route says no") end,
  default = main,
}
]], m.addr, m.addr, dead_port))
    g = H.connect(gw.port, { timeout = 5, whole_reply = true })
    direct = H.connect(m.port, { timeout = 5, whole_reply = true })
  end)

  lazy_teardown(function()
    if g then g:close() end
    if direct then direct:close() end
    if gw then gw.stop() end
    if m then m.stop() end
  end)

  -- Everything conn answers to bytes, up to the MN of an mn sent after it.
  local function transcript(conn, bytes)
    conn:send(bytes .. "mn\r\n")
    local deadline = socket.gettime() + 5
    local out = {}
    while true do
      local unit, l = conn:unit(deadline)
      if l == "MN\r\n" then return table.concat(out) end
      out[#out + 1] = unit
    end
  end

  local function expect(bytes, want)
    local got = transcript(g, bytes)
    assert(got == want, "sent:\n" .. show(bytes) .. "\nwant:\n" .. show(want) .. "\ngot:\n" .. show(got))
  end

  it("gives a route the command, the decoded key and the flags as sent", function()
    local function va(v) return "VA " .. #v end
    local seen = "mg look:a v=true,T=30,O=xy,q=nil,k=true,b=nil,N=nil,M=nil"
    expect("mg look:a v T30 Oxy k\r\n", va(seen) .. " Oxy klook:a\r\n" .. seen .. "\r\n")
    -- b: the route sees the decoded key; k comes back as the client sent it.
    local key = b64("look:b")
    seen = "mg look:b v=true,T=nil,O=nil,q=nil,k=true,b=true,N=nil,M=nil"
    expect("mg " .. key .. " b v k\r\n", va(seen) .. " k" .. key .. " b\r\n" .. seen .. "\r\n")
    -- A value is no answer to an ms.
    expect("ms look:c 1 MA N5 v\r\nx\r\n", "SERVER_ERROR route answered ms with a value\r\n")
  end)

  it("raises on a misspelled flag name and on writing req.meta; a text request has none", function()
    local got = transcript(g, "mg typo:a v\r\nmg write:a v\r\nget textmeta:a\r\n")
    assert.matches("^SERVER_ERROR lua error: [^\r]*req.meta has no field 'value'", got)
    assert.matches("\r\nSERVER_ERROR lua error: [^\r]*req.meta is read%-only\r\n", got)
    assert.matches("VALUE textmeta:a 0 3\r\nnil\r\nEND\r\n$", got)
  end)

  it("renders responses built in Lua with the flags the client asked for", function()
    expect("mg hit:a v f c s k Oab t\r\n", "VA 9 f5 c1234 s9 khit:a Oab\r\nlua-hit:a\r\n")
    expect("mg hit:a\r\n", "HD\r\n")
    expect("mg hit:a q f\r\n", "HD f5\r\n") -- q drops misses only
    expect("mg miss:a v k Oz\r\n", "EN kmiss:a Oz\r\n")
    expect("mg miss:a v q k Oz\r\n", "")
    expect("ms st:a 2 k\r\nok\r\nms st:a 2 q\r\nok\r\nms st:a 2 q\r\nno\r\n",
      "HD kst:a\r\nNS\r\n")
    expect("md del:a Ox\r\nmd del:a q\r\nmd nf:a q\r\n", "HD Ox\r\nNF\r\n")
    expect("ma num:a v\r\nma num:a\r\nma num:a q v\r\n", "VA 2\r\n42\r\nHD\r\n")
    -- Errors are never quiet; a route answering an mg with STORED is one.
    expect("mg err:a q v\r\nmd err:a q\r\n", "SERVER_ERROR route says no\r\nSERVER_ERROR route says no\r\n")
    expect("mg st:a v\r\n", "SERVER_ERROR not ms\r\n")
  end)

  it("sends a rewritten key to the server and gives the client its own back", function()
    expect("ms pre:a 2 k T0\r\nhi\r\nmg pre:a v k s\r\n", "HD kpre:a\r\nVA 2 kpre:a s2\r\nhi\r\n")
    assert.equal("VALUE moved/pre:a 0 2\r\nhi\r\nEND\r\n", direct:call("get moved/pre:a\r\n"))
    -- b: the server got the rewritten key; the reply names the key as sent.
    local key = b64("pre:b")
    expect("ms " .. key .. " 2 b k\r\nyo\r\nmg " .. key .. " b k v\r\n",
      "HD k" .. key .. " b\r\nVA 2 k" .. key .. " b\r\nyo\r\n")
    assert.equal("VALUE moved/pre:b 0 2\r\nyo\r\nEND\r\n", direct:call("get moved/pre:b\r\n"))
    -- A rewritten key that is no text key goes to the server in base64.
    local odd = b64("pre:a b\tc")
    expect("ms " .. odd .. " 1 b\r\nz\r\nmg " .. odd .. " b v k\r\n",
      "HD\r\nVA 1 k" .. odd .. " b\r\nz\r\n")
    assert.equal("VA 1 k" .. b64("moved/pre:a b\tc") .. " b\r\nz\r\n",
      direct:call("mg " .. b64("moved/pre:a b\tc") .. " b v k\r\n"))
  end)

  it("forwards a meta request from a route with pool:forward, flags and all", function()
    expect("ms fwd:a 3 T100 F9\r\nabc\r\nmg fwd:a v f t k\r\nmg fwd:zz v q\r\nmd fwd:a q\r\nmg fwd:a v\r\n",
      "HD\r\nVA 3 f9 t100 kfwd:a\r\nabc\r\nEN\r\n")
    expect("ms fwdsame:a 1 I\r\nq\r\nma fwdsame:n N0 J7 v\r\nma fwdsame:n MD v\r\n",
      "HD\r\nVA 1\r\n7\r\nVA 1\r\n6\r\n")
    assert.equal("VALUE fwdsame:a 0 1\r\nq\r\nEND\r\n", direct:call("get fwdsame:a\r\n"))
  end)

  it("answers meta from the embedded store", function()
    expect("ms i:a 2 F5 T0\r\nhi\r\nmg i:a v f s k\r\nmg i:zz v k q\r\nmg i:zz v Ox\r\n",
      "HD\r\nVA 2 f5 s2 ki:a\r\nhi\r\nEN Ox\r\n")
    expect("ms i:a 1 ME\r\nx\r\nms i:a 2 MA\r\nyo\r\nmg i:a v\r\nms i:b 1 MA N0\r\nq\r\nmg i:b v\r\n",
      "NS\r\nHD\r\nVA 4\r\nhiyo\r\nHD\r\nVA 1\r\nq\r\n")
    expect("ma i:n v\r\nma i:n N0 J10 v\r\nma i:n q\r\nma i:n MD D5 v\r\nmd i:n q\r\nmd i:n\r\n",
      "NF\r\nVA 2\r\n10\r\nVA 1\r\n6\r\nNF\r\n")
    expect("me i:a\r\nmd i:a C5\r\nmg i:a N30 v\r\n",
      "SERVER_ERROR memcache.internal does not support me\r\n" ..
      "SERVER_ERROR memcache.internal does not support flag C\r\n" ..
      "SERVER_ERROR memcache.internal does not support flag N\r\n")
  end)

  it("answers SERVER_ERROR for a pool that speaks only text, and for a dead server, quiet or not", function()
    expect("mg old:a v q\r\n", "SERVER_ERROR pool speaks only the text protocol (protocol = \"text\")\r\n")
    local got = transcript(g, "mg dead:a v q k\r\nms dead:a 1 q\r\nx\r\nmg x:a q\r\n")
    local lines = {}
    for l in got:gmatch("([^\r]*)\r\n") do lines[#lines + 1] = l end
    assert.equal(2, #lines, show(got))
    for _, l in ipairs(lines) do assert.matches("^SERVER_ERROR ", l) end
  end)

  it("keeps a connection going after every meta error, text and meta mixed", function()
    -- As memcached, a bad data chunk's "\r\n" left over is a line of its own.
    expect("mg\r\nmg a zz\r\nms a\r\nms a 1 Q\r\nx\r\nms a 1\r\nxyz\r\nget a\r\nma a MX\r\n",
      "ERROR\r\nCLIENT_ERROR invalid flag\r\nCLIENT_ERROR bad command line format\r\n" ..
      "CLIENT_ERROR invalid flag\r\nCLIENT_ERROR bad data chunk\r\nERROR\r\nEND\r\n" ..
      "CLIENT_ERROR invalid mode for ma M token\r\n")
    assert.equal("MN\r\n", g:call("mn x y\r\n")) -- memcached ignores what follows mn
  end)
end)
