-- protocol_spec.lua -- the gateway speaks memcached 1.6's text protocol,
-- byte for byte.
--
-- Two real memcached servers sit behind the gateway (python-memcached
-- placement, weights 1 and 2).  A third memcached, talked to directly, is
-- the reference: every case sends the same bytes to the reference and to
-- the gateway and the two transcripts must be identical.  A transcript is
-- everything a connection answers up to the reply of a trailing "version"
-- sentinel, read raw (no line-end normalisation), so a reply that is
-- missing, extra (noreply), reordered or differently framed shows up.
-- Only the sentinel differs: "VERSION 1.6.18" from memcached,
-- "VERSION 1.6.18-gateway-0.1.0" from the gateway; and cas unique numbers,
-- which each server picks itself, are normalised in gets/gats replies.
--
-- The backends run with -I 2m so that the gateway's own 1 MiB value limit
-- is what a too-large value meets.
--
-- Run from the repo root:
--   busted --lpath='./lua/?.lua;./lua/?/init.lua;./tests/spec/?.lua' tests/spec/protocol_spec.lua
local H = require "harness"
local socket = require "socket"

local GW_VERSION = "VERSION 1.6.18-gateway-0.1.0\r\n"
local MC_VERSION = "VERSION 1.6.18\r\n"
local DEADLINE = 5

local show = H.show

-- H.connect(port, RAW): every reply must be complete within DEADLINE seconds.
local RAW = { timeout = DEADLINE, whole_reply = true }

-- Everything up to (not including) the "VERSION ..." line; returns the
-- transcript and the version line.
local function until_version(conn, deadline)
  deadline = deadline or socket.gettime() + DEADLINE
  local out = {}
  while true do
    local unit, l = conn:unit(deadline)
    if l:match("^VERSION ") then return table.concat(out), l end
    out[#out + 1] = unit
  end
end

-- cas uniques differ per server: "VALUE k f n 123\r\n" -> "VALUE k f n CAS\r\n".
local function norm_cas(s)
  return (s:gsub("(VALUE [^ \r\n]+ %d+ %d+) %d+\r\n", "%1 CAS\r\n"))
end

local function cas_of(transcript, key)
  local pat = "VALUE " .. key:gsub("%p", "%%%0") .. " %d+ %d+ (%d+)\r\n"
  return assert(transcript:match(pat), "no cas for " .. key .. " in:\n" .. show(transcript))
end

describe("the memcached text protocol through the gateway", function()
  local m1, m2, ref, gw
  local g, r -- raw connections to the gateway and to the reference memcached

  lazy_setup(function()
    m1 = H.start_memcached({ args = "-I 2m" })
    m2 = H.start_memcached({ args = "-I 2m" })
    ref = H.start_memcached()
    gw = H.start_gateway(string.format([[
local main = memcache.pool {
  servers = { "%s", { "%s", weight = 2 } },
  hash = "python-memcached",
  timeout = 0.5,
}
memcache.route { default = main }
]], m1.addr, m2.addr))
    g = H.connect(gw.port, RAW)
    r = H.connect(ref.port, RAW)
  end)

  lazy_teardown(function()
    if g then g:close() end
    if r then r:close() end
    if gw then gw.stop() end
    if m1 then m1.stop() end
    if m2 then m2.stop() end
    if ref then ref.stop() end
  end)

  after_each(function()
    if gw then assert.is_true(gw.alive(), "the gateway died:\n" .. gw.output()) end
  end)

  -- Drop whatever an earlier failed case left unread (or reconnect), so
  -- that one failure does not cascade.
  local function resync()
    for _, which in ipairs({ "g", "r" }) do
      local conn = which == "g" and g or r
      local ok = pcall(function()
        conn:send("version\r\n")
        until_version(conn, socket.gettime() + 2)
      end)
      if not ok or conn.buf ~= "" then
        conn:close()
        if which == "g" then g = H.connect(gw.port, RAW) else r = H.connect(ref.port, RAW) end
      end
    end
  end

  -- Flush the gateway's servers and the reference.
  local function flush()
    resync()
    assert.are.equal("OK\r\n", g:call("flush_all\r\n"))
    assert.are.equal("OK\r\n", r:call("flush_all\r\n"))
  end

  -- Send bytes then the sentinel; the transcript before the sentinel.
  local function transcript(conn, bytes, want_version, split)
    if split then
      for i = 1, #bytes do
        conn:send(bytes:sub(i, i))
        if i % 4 == 0 then socket.sleep(0.0002) end
      end
      conn:send("version\r\n")
    else
      conn:send(bytes .. "version\r\n")
    end
    local t, v = until_version(conn)
    assert.are.equal(want_version, v, "sentinel reply on port " .. conn.port)
    return t
  end

  -- steps: a string, or a list of strings / functions(transcript so far)
  -- returning a string.  Runs on both sides; returns both transcripts.
  local function run_both(steps, split)
    if type(steps) == "string" then steps = { steps } end
    local out = {}
    for side, conn in pairs({ gw = g, mc = r }) do
      local acc = ""
      for _, step in ipairs(steps) do
        local bytes = type(step) == "function" and step(acc) or step
        acc = acc .. transcript(conn, bytes, side == "gw" and GW_VERSION or MC_VERSION,
          split and side == "gw")
      end
      out[side] = acc
    end
    return out.gw, out.mc
  end

  -- The gateway must answer exactly as memcached does.
  local function same(steps, split)
    flush()
    local got, want = run_both(steps, split)
    got, want = norm_cas(got), norm_cas(want)
    if got ~= want then
      local sent = {}
      for _, s in ipairs(type(steps) == "string" and { steps } or steps) do
        sent[#sent + 1] = type(s) == "function" and "<computed>" or s
      end
      error(string.format("gateway and memcached differ\n--- sent:\n%s\n--- memcached:\n%s\n--- gateway:\n%s",
        show(table.concat(sent)), show(want), show(got)), 2)
    end
    return got
  end

  -- Direct connections to the backends (for placement checks).
  local function direct_get(server, key)
    return H.request(server.port, "get " .. key .. "\r\n", RAW)
  end

  describe("answers like memcached", function()
    it("version", function()
      assert.are.equal(GW_VERSION, g:call("version\r\n"))
      assert.are.equal(MC_VERSION, r:call("version\r\n"))
    end)

    it("set / get / gets", function()
      local t = same("set a 5 0 3\r\nabc\r\nget a\r\ngets a\r\nget missing\r\ngets missing\r\n"
        .. "set a 6 0 0\r\n\r\nget a\r\nset b 0 -1 1\r\nx\r\nget b\r\n")
      assert.are.equal("STORED\r\nVALUE a 5 3\r\nabc\r\nEND\r\nVALUE a 5 3 CAS\r\nabc\r\nEND\r\n"
        .. "END\r\nEND\r\nSTORED\r\nVALUE a 6 0\r\n\r\nEND\r\nSTORED\r\nEND\r\n", t)
    end)

    it("add / replace / append / prepend", function()
      local t = same("add a 1 0 1\r\nx\r\nadd a 2 0 1\r\ny\r\nreplace b 0 0 1\r\nz\r\n"
        .. "replace a 3 0 2\r\nxx\r\nappend a 9 0 3\r\n123\r\nprepend a 9 0 3\r\n000\r\n"
        .. "append nokey 0 0 1\r\nq\r\nprepend nokey 0 0 1\r\nq\r\nget a nokey b\r\n")
      assert.are.equal("STORED\r\nNOT_STORED\r\nNOT_STORED\r\nSTORED\r\nSTORED\r\nSTORED\r\n"
        .. "NOT_STORED\r\nNOT_STORED\r\nVALUE a 3 8\r\n000xx123\r\nEND\r\n", t)
    end)

    it("cas with the unique learned from gets", function()
      local t = same({
        "set c 0 0 1\r\na\r\ngets c\r\ncas missing 0 0 1 1\r\nz\r\n",
        function(acc)
          local cas = cas_of(acc, "c")
          return "cas c 7 0 1 " .. cas .. "\r\nb\r\ncas c 8 0 1 " .. cas .. "\r\nc\r\ngets c\r\n"
        end,
        function(acc)
          local cas = acc:match(".*VALUE c 7 1 (%d+)\r\n")
          return "cas c 0 0 2 " .. cas .. " noreply\r\nzz\r\nget c\r\n"
        end,
      })
      assert.are.equal("STORED\r\nVALUE c 0 1 CAS\r\na\r\nEND\r\nNOT_FOUND\r\n"
        .. "STORED\r\nEXISTS\r\nVALUE c 7 1 CAS\r\nb\r\nEND\r\nVALUE c 0 2\r\nzz\r\nEND\r\n", t)
    end)

    it("delete", function()
      local t = same("set d 0 0 1\r\n1\r\ndelete d\r\ndelete d\r\nget d\r\n"
        .. "set d 0 0 1\r\n1\r\ndelete d 0\r\nget d\r\n")
      assert.are.equal("STORED\r\nDELETED\r\nNOT_FOUND\r\nEND\r\nSTORED\r\nDELETED\r\nEND\r\n", t)
    end)

    it("incr / decr, including a non-numeric value", function()
      local t = same("set n 0 0 2\r\n10\r\nincr n 5\r\ndecr n 3\r\ndecr n 100\r\nincr nokey 1\r\n"
        .. "set s 0 0 3\r\nabc\r\nincr s 1\r\ndecr s 1\r\n"
        .. "set big 0 0 20\r\n18446744073709551615\r\nincr big 1\r\nget n\r\n")
      assert.are.equal("STORED\r\n15\r\n12\r\n0\r\nNOT_FOUND\r\nSTORED\r\n"
        .. "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
        .. "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
        .. "STORED\r\n0\r\nVALUE n 0 2\r\n0 \r\nEND\r\n", t) -- decr keeps the length
    end)

    it("touch", function()
      local t = same("set t 0 0 1\r\nx\r\ntouch t 100\r\ntouch nokey 100\r\ntouch t -1\r\nget t\r\n")
      assert.are.equal("STORED\r\nTOUCHED\r\nNOT_FOUND\r\nTOUCHED\r\nEND\r\n", t)
    end)

    it("gat / gats", function()
      local t = same("set t 3 0 2\r\nxy\r\nset u 4 0 1\r\nz\r\ngat 100 t\r\ngats 100 t nokey u\r\n"
        .. "gat 100 nokey\r\ngat -1 t\r\nget t u\r\n")
      assert.are.equal("STORED\r\nSTORED\r\nVALUE t 3 2\r\nxy\r\nEND\r\n"
        .. "VALUE t 3 2 CAS\r\nxy\r\nVALUE u 4 1 CAS\r\nz\r\nEND\r\nEND\r\n"
        .. "VALUE t 3 2\r\nxy\r\nEND\r\nVALUE u 4 1\r\nz\r\nEND\r\n", t)
    end)

    it("flush_all", function()
      local t = same("set f 0 0 1\r\nx\r\nflush_all\r\nget f\r\nflush_all 0\r\nflush_all noreply\r\n")
      assert.are.equal("STORED\r\nOK\r\nEND\r\nOK\r\n", t)
    end)

    it("noreply on every command: the next reply is the first thing read", function()
      local t = same({
        "set a 0 0 1 noreply\r\n1\r\nadd a 0 0 1 noreply\r\n2\r\nadd b 0 0 1 noreply\r\n2\r\n"
          .. "replace b 0 0 1 noreply\r\n3\r\nappend a 0 0 1 noreply\r\nx\r\n"
          .. "prepend a 0 0 1 noreply\r\ny\r\nset n 0 0 1 noreply\r\n5\r\n"
          .. "incr n 10 noreply\r\ndecr n 1 noreply\r\ntouch a 100 noreply\r\n"
          .. "delete b noreply\r\ndelete nokey noreply\r\nverbosity 0 noreply\r\n"
          .. "incr a 1 noreply\r\nincr n abc noreply\r\ngets a\r\n",
        function(acc)
          return "cas a 1 0 1 " .. cas_of(acc, "a") .. " noreply\r\nz\r\n"
            .. "cas a 1 0 1 1 noreply\r\nw\r\nget a b n\r\n"
        end,
        "flush_all noreply\r\nget a\r\n",
      })
      assert.are.equal("VALUE a 0 3 CAS\r\ny1x\r\nEND\r\n"
        .. "VALUE a 1 1\r\nz\r\nVALUE n 0 2\r\n14\r\nEND\r\nEND\r\n", t)
    end)

    it("multi-get over keys on both servers, in the client's order with one END", function()
      local sets, keys = {}, {}
      for i = 1, 40 do
        sets[#sets + 1] = string.format("set mg%d %d 0 %d\r\n%s\r\n", i, i, #tostring(i * 7), i * 7)
      end
      for i = 45, 1, -1 do
        keys[#keys + 1] = "mg" .. i                 -- 41..45 miss
        if i % 5 == 0 then keys[#keys + 1] = "miss" .. i end
      end
      keys[#keys + 1] = "mg3"                       -- a key asked twice
      local get = "get " .. table.concat(keys, " ") .. "\r\n"
      local t = same(table.concat(sets) .. get .. "gets " .. table.concat(keys, " ") .. "\r\n")
      local _, ends = t:gsub("END\r\n", "")
      assert.are.equal(2, ends)
      local values = t:match("(VALUE.-END\r\n)")
      local order = {}
      for k in values:gmatch("VALUE (%S+)") do order[#order + 1] = k end
      assert.are.equal(41, #order)
      assert.are.equal("mg40", order[1])
      assert.are.equal("mg3", order[#order])
      -- the keys really are spread over both servers
      local on1, on2 = 0, 0
      for i = 1, 40 do
        if direct_get(m1, "mg" .. i):match("^VALUE") then on1 = on1 + 1 end
        if direct_get(m2, "mg" .. i):match("^VALUE") then on2 = on2 + 1 end
      end
      assert.are.equal(40, on1 + on2)
      assert.is_true(on1 > 0 and on2 > 0, "keys on m1: " .. on1 .. ", on m2: " .. on2)
    end)

    local function pipeline()
      local p = {}
      for i = 1, 50 do
        local k = "p" .. (i % 7)
        local kind = i % 10
        if kind == 0 then p[#p + 1] = string.format("set %s %d 0 %d\r\n%s\r\n", k, i, #tostring(i), i)
        elseif kind == 1 then p[#p + 1] = "get " .. k .. " p1 p2 p3 nokey p4\r\n"
        elseif kind == 2 then p[#p + 1] = "incr " .. k .. " 3\r\n"
        elseif kind == 3 then p[#p + 1] = "append " .. k .. " 0 0 2\r\n\r\n\r\n"
        elseif kind == 4 then p[#p + 1] = "delete " .. k .. "\r\n"
        elseif kind == 5 then p[#p + 1] = string.format("add %s 0 0 3\r\na%02d\r\n", k, i)
        elseif kind == 6 then p[#p + 1] = "gets " .. k .. " p5 p6\r\n"
        elseif kind == 7 then p[#p + 1] = "set " .. k .. " 0 0 2 noreply\r\n" .. i % 10 .. "0\r\n"
        elseif kind == 8 then p[#p + 1] = "touch " .. k .. " 1000\r\n"
        else p[#p + 1] = "bogus command\r\n" end
      end
      return table.concat(p)
    end

    it("a pipeline of 50 mixed requests in one send, replies in order", function()
      local t = same(pipeline())
      local n = 0
      for _ in t:gmatch("\n") do n = n + 1 end
      assert.is_true(n >= 50, "only " .. n .. " reply lines:\n" .. show(t))
    end)

    it("the same pipeline split at every byte", function()
      same(pipeline(), true)
    end)

    it("bare \\n line ends", function()
      local t = same("set n 0 0 3\nabc\r\nget n\nincr n 1\ndelete n\nget n\n")
      assert.are.equal("STORED\r\nVALUE n 0 3\r\nabc\r\nEND\r\n"
        .. "CLIENT_ERROR cannot increment or decrement non-numeric value\r\nDELETED\r\nEND\r\n", t)
    end)

    it("python-memcached's trailing space before \\r\\n", function()
      local t = same("set k 16 0 4 \r\ndata\r\nget k \r\ndelete k \r\n")
      assert.are.equal("STORED\r\nVALUE k 16 4\r\ndata\r\nEND\r\nDELETED\r\n", t)
    end)
  end)

  describe("bad input, and the connection keeps working after it", function()
    local AFTER = "set ok 0 0 2\r\nok\r\nget ok\r\n"
    local AFTER_REPLY = "STORED\r\nVALUE ok 0 2\r\nok\r\nEND\r\n"

    local function bad_like_memcached(bytes, first_reply)
      local t = same(bytes .. AFTER)
      assert.are.equal(first_reply, t:sub(1, #first_reply))
      assert.are.equal(AFTER_REPLY, t:sub(-#AFTER_REPLY))
    end

    it("unknown command -> ERROR", function()
      bad_like_memcached("bogus k\r\n", "ERROR\r\n")
      bad_like_memcached("\r\n", "ERROR\r\n")
      bad_like_memcached("GET ok\r\n", "ERROR\r\n")
    end)

    it("a 251-byte key -> CLIENT_ERROR (get, delete, incr, touch)", function()
      local k = ("k"):rep(251)
      bad_like_memcached("get " .. k .. "\r\n", "CLIENT_ERROR bad command line format\r\n")
      bad_like_memcached("get a " .. k .. " b\r\n", "CLIENT_ERROR bad command line format\r\n")
      bad_like_memcached("delete " .. k .. "\r\n", "CLIENT_ERROR bad command line format\r\n")
      bad_like_memcached("incr " .. k .. " 1\r\n", "CLIENT_ERROR bad command line format\r\n")
      bad_like_memcached("touch " .. k .. " 1\r\n", "CLIENT_ERROR bad command line format\r\n")
      -- 250 bytes is fine
      local k250 = ("k"):rep(250)
      local t = same("set " .. k250 .. " 0 0 1\r\nx\r\nget " .. k250 .. "\r\n")
      assert.are.equal("STORED\r\nVALUE " .. k250 .. " 0 1\r\nx\r\nEND\r\n", t)
    end)

    it("bad numbers -> CLIENT_ERROR", function()
      bad_like_memcached("incr ok abc\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n")
      bad_like_memcached("incr ok -1\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n")
      bad_like_memcached("touch ok abc\r\n", "CLIENT_ERROR invalid exptime argument\r\n")
      bad_like_memcached("gat abc ok\r\n", "CLIENT_ERROR invalid exptime argument\r\n")
      bad_like_memcached("flush_all abc\r\n", "CLIENT_ERROR invalid exptime argument\r\n")
      bad_like_memcached("verbosity abc\r\n", "CLIENT_ERROR bad command line format\r\n")
      -- an unusable <bytes>: only the line is consumed, the data is a command
      bad_like_memcached("set ok 0 0 -1\r\nabc\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n")
      bad_like_memcached("set ok 0 0 x\r\nabc\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n")
      bad_like_memcached("delete ok 5\r\n",
        "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n")
    end)

    it("wrong number of tokens -> ERROR", function()
      bad_like_memcached("get\r\n", "ERROR\r\n")
      bad_like_memcached("incr ok\r\n", "ERROR\r\n")
      bad_like_memcached("set ok 0 0\r\n", "ERROR\r\n")
      bad_like_memcached("gat\r\n", "ERROR\r\n")
      bad_like_memcached("gat 10\r\n", "END\r\n")
    end)

    it("a data block of the wrong length -> CLIENT_ERROR bad data chunk", function()
      -- too long: memcached reads <bytes>+2, sees no "\r\n", then parses what
      -- follows as the next command
      bad_like_memcached("set ok 0 0 3\r\nabcde\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n")
      -- too short: the next command line is eaten as data
      bad_like_memcached("set ok 0 0 5\r\nabc\r\nget ok\r\n", "CLIENT_ERROR bad data chunk\r\n")
      bad_like_memcached("set ok 0 0 3\nabc\nget ok\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n")
    end)

    -- memcached answers these storage lines with a CLIENT_ERROR / ERROR and
    -- then parses their data block as a command; the gateway deliberately
    -- swallows the data block when <bytes> is readable (core/proto.h,
    -- "Deliberate deviation").  Either way the stream stays usable.
    it("a refused storage line with a readable <bytes>: the data block is swallowed", function()
      local k = ("k"):rep(251)
      local cases = {
        { "set " .. k .. " 0 0 3\r\nabc\r\n", "CLIENT_ERROR bad command line format\r\n" },
        { "set ok x 0 3\r\nabc\r\n", "CLIENT_ERROR bad command line format\r\n" },
        { "set ok 0 x 3\r\nabc\r\n", "CLIENT_ERROR bad command line format\r\n" },
        { "cas ok 0 0 1 x\r\na\r\n", "CLIENT_ERROR bad command line format\r\n" },
        { "cas ok 0 0 1\r\na\r\n", "ERROR\r\n" },
        { "set ok 0 0 3 noreply extra\r\nabc\r\n", "ERROR\r\n" },
        -- a data block that is itself a command is not run
        { "set ok x 0 8\r\ndelete x\r\n", "CLIENT_ERROR bad command line format\r\n" },
      }
      for _, c in ipairs(cases) do
        flush()
        local t = transcript(g, c[1] .. AFTER, GW_VERSION)
        assert.are.equal(show(c[2] .. AFTER_REPLY), show(t), "sent: " .. show(c[1]))
      end
    end)

    it("a key with a control character -> CLIENT_ERROR (gateway only)", function()
      flush()
      for _, bytes in ipairs({ "get a\1b\r\n", "get ok a\1b\r\n", "delete a\1b\r\n",
                               "incr a\127b 1\r\n", "set a\1b 0 0 1\r\nx\r\n" }) do
        local t = transcript(g, bytes .. AFTER, GW_VERSION)
        assert.are.equal(show("CLIENT_ERROR bad command line format\r\n" .. AFTER_REPLY), show(t),
          "sent: " .. show(bytes))
      end
    end)

    it("a value over 1 MiB -> SERVER_ERROR object too large, the next request works", function()
      local big = ("v"):rep(1024 * 1024 + 1)
      local bytes = "set big 0 0 " .. #big .. "\r\n" .. big .. "\r\n" .. AFTER .. "get big\r\n"
      -- memcached (default -I 1m) answers the same
      local t = same(bytes)
      assert.are.equal("SERVER_ERROR object too large for cache\r\n" .. AFTER_REPLY .. "END\r\n", t)
      -- also when the big value arrives in pieces
      g:send("set big 0 0 " .. #big .. "\r\n")
      g:send(big, 65536)
      g:send("\r\nget ok\r\n")
      assert.are.equal("SERVER_ERROR object too large for cache\r\n", g:reply())
      assert.are.equal("VALUE ok 0 2\r\nok\r\nEND\r\n", g:reply())
    end)
  end)

  describe("values", function()
    it("a 1 MiB - 1 value round-trips", function()
      flush()
      local v = {}
      for i = 0, 1024 * 1024 - 2 do v[#v + 1] = string.char(97 + i % 26) end
      v = table.concat(v)
      assert.are.equal(1024 * 1024 - 1, #v)
      assert.are.equal("STORED\r\n", g:call("set big 9 0 " .. #v .. "\r\n" .. v .. "\r\n"))
      local rep = g:call("get big\r\n")
      assert.is_true(rep == "VALUE big 9 " .. #v .. "\r\n" .. v .. "\r\nEND\r\n",
        "1 MiB - 1 value came back as " .. #rep .. " bytes: " .. show(rep:sub(1, 60)))
    end)

    it("binary-safe values and flags 0..2^32-1 round-trip unchanged", function()
      local all = {}
      for b = 0, 255 do all[#all + 1] = string.char(b) end
      all = table.concat(all)
      local values = { all, "\r\nEND\r\n", "VALUE x 0 1\r\nEND\r\n" .. all, "\0", "\r\n", all:reverse() }
      local flags = { 0, 1, 65535, 2147483648, 4294967295, 16 }
      local sets, gets, want = {}, {}, {}
      for i, v in ipairs(values) do
        local k = "bin" .. i
        sets[#sets + 1] = string.format("set %s %d 0 %d\r\n%s\r\n", k, flags[i], #v, v)
        gets[#gets + 1] = k
        want[#want + 1] = string.format("VALUE %s %d %d\r\n%s\r\n", k, flags[i], #v, v)
      end
      local bytes = table.concat(sets) .. "get " .. table.concat(gets, " ") .. "\r\n"
      local t = same(bytes)
      assert.are.equal(show(("STORED\r\n"):rep(#values) .. table.concat(want) .. "END\r\n"), show(t))
      -- one at a time too
      for i, v in ipairs(values) do
        assert.are.equal(want[i] .. "END\r\n", g:call("get bin" .. i .. "\r\n"))
        assert.are.equal(v, g:call("gets bin" .. i .. "\r\n"):match("^VALUE %S+ %d+ %d+ %d+\r\n(.*)\r\nEND\r\n$"))
      end
    end)
  end)

  describe("gateway-side commands", function()
    local function stats(conn)
      local rep = conn:call("stats\r\n")
      assert.is_truthy(rep:match("END\r\n$"), rep)
      local s = {}
      for k, v in rep:gmatch("STAT (%S+) ([^\r\n]*)\r\n") do s[k] = v end
      return s, rep
    end

    it("stats has memcached's fields and the gateway's own", function()
      local s, rep = stats(g)
      for _, f in ipairs({ "pid", "uptime", "version", "curr_connections", "total_connections",
                           "cmd_get", "cmd_set", "get_hits", "get_misses" }) do
        assert.is_truthy(s[f], "stats has no " .. f .. ":\n" .. rep)
      end
      assert.are.equal("1.6.18-gateway-0.1.0", s.version)
      assert.are.equal(gw.pid, tonumber(s.pid))
      local gw_fields = 0
      for k in pairs(s) do if k:match("^gw_") then gw_fields = gw_fields + 1 end end
      assert.is_true(gw_fields > 0, "no gw_ fields:\n" .. rep)
      assert.is_true(tonumber(s.curr_connections) >= 1, rep)
    end)

    it("counters move: cmd_get / get_hits / get_misses / cmd_set / connections", function()
      flush()
      local s1 = stats(g)
      assert.are.equal("STORED\r\n", g:call("set hit 0 0 1\r\nx\r\n"))
      assert.are.equal("VALUE hit 0 1\r\nx\r\nEND\r\n", g:call("get hit nokey1\r\n"))
      assert.are.equal("VALUE hit 0 1\r\nx\r\nEND\r\n", g:call("get nokey2 hit\r\n"))
      local extra = H.connect(gw.port, RAW)
      local s2 = stats(extra)
      local function delta(f) return tonumber(s2[f]) - tonumber(s1[f]) end
      assert.are.equal(4, delta("cmd_get"))
      assert.are.equal(2, delta("get_hits"))
      assert.are.equal(2, delta("get_misses"))
      assert.are.equal(1, delta("cmd_set"))
      assert.are.equal(1, delta("total_connections"))
      assert.are.equal(1, delta("curr_connections"))
      extra:close()
      H.wait_until(function() return tonumber(stats(g).curr_connections) == tonumber(s1.curr_connections) end,
        5, "curr_connections to drop back")
    end)

    it("quit closes the connection after the earlier pipelined replies", function()
      flush()
      local bytes = "set q 0 0 1\r\na\r\nget q\r\nquit\r\nget q\r\n"
      for _, port in ipairs({ gw.port, ref.port }) do
        local c = H.connect(port, RAW)
        c:send(bytes)
        assert.are.equal("STORED\r\n", c:reply())
        assert.are.equal("VALUE q 0 1\r\na\r\nEND\r\n", c:reply())
        assert.is_true(c:closed(2), "port " .. port .. " did not close; buffered: " .. show(c.buf))
        c:close()
      end
    end)

    it("flush_all reaches every server", function()
      flush()
      local sets = {}
      for i = 1, 20 do sets[#sets + 1] = "set fl" .. i .. " 0 0 1\r\nx\r\n" end
      assert.are.equal(("STORED\r\n"):rep(20), transcript(g, table.concat(sets), GW_VERSION))
      local on = { 0, 0 }
      for i = 1, 20 do
        for s, m in ipairs({ m1, m2 }) do
          if direct_get(m, "fl" .. i):match("^VALUE") then on[s] = on[s] + 1 end
        end
      end
      assert.is_true(on[1] > 0 and on[2] > 0, "keys on m1: " .. on[1] .. ", m2: " .. on[2])
      assert.are.equal("OK\r\n", g:call("flush_all\r\n"))
      for i = 1, 20 do
        assert.are.equal("END\r\n", direct_get(m1, "fl" .. i))
        assert.are.equal("END\r\n", direct_get(m2, "fl" .. i))
      end
    end)
  end)
end)
