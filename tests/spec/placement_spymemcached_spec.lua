-- placement_spymemcached_spec.lua -- hash = "spymemcached",
-- "spymemcached-ketama", "spymemcached-ketama-weighted" and
-- "spymemcached-ketama-native" find every key
-- spymemcached 2.12.3 (Debian's libspymemcached-java) placed itself, with
-- random keys of every printable byte and of 2-, 3- and 4-byte UTF-8
-- characters (4-byte ones are surrogate pairs in Java's String.hashCode).
-- The writer is a small Java program, compiled here into tests/tmp (javac,
-- offline), one JVM run per pool.  The pattern: see placement.lua.
local H = require "harness"
local P = require "placement"

local JAR = "/usr/share/java/spymemcached.jar"

-- SpyWrite MODE host:port=weight,... KEYFILE
--   mod             new MemcachedClient(addrs): DefaultConnectionFactory,
--                   ArrayModNodeLocator + NATIVE_HASH; a server of weight k
--                   is listed k times in a row (spymemcached has no weights)
--   ketama          new KetamaConnectionFactory()
--   ketama-builder  ConnectionFactoryBuilder CONSISTENT + KETAMA_HASH
--   consistent      ConnectionFactoryBuilder CONSISTENT alone (NATIVE_HASH)
--   weighted        KetamaConnectionFactory with a weights map
-- Every node answers `version` first (so all are connected and active,
-- and Redistribute never moves a key), then each key is set to
-- P.value(key); any failed set exits 1.  With a fourth argument LIVE (some
-- servers are down): wait until LIVE nodes are connected instead, and
-- print "skip HEXKEY" for a key no live node in its getSequence took.
local WRITE = [[
import java.io.*;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.*;
import java.util.concurrent.Future;
import net.spy.memcached.*;

public class SpyWrite {
    public static void main(String[] av) {
        try {
            run(av);
        } catch (Throwable e) {   // the IO thread would keep the JVM alive
            e.printStackTrace(System.out);
            System.exit(1);
        }
        System.exit(0);
    }

    static void run(String[] av) throws Exception {
        String mode = av[0];
        StringBuilder list = new StringBuilder();
        List<Integer> ws = new ArrayList<>();
        for (String s : av[1].split(",")) {
            String[] aw = s.split("=");
            int w = Integer.parseInt(aw[1]);
            ws.add(w);
            for (int r = 0; r < (mode.equals("mod") ? w : 1); r++)
                list.append(aw[0]).append(' ');
        }
        List<InetSocketAddress> addrs = AddrUtil.getAddresses(list.toString().trim());
        MemcachedClient mc;
        if (mode.equals("mod")) {
            mc = new MemcachedClient(addrs);
        } else if (mode.equals("ketama")) {
            mc = new MemcachedClient(new KetamaConnectionFactory(), addrs);
        } else if (mode.equals("ketama-builder")) {
            mc = new MemcachedClient(new ConnectionFactoryBuilder()
                .setLocatorType(ConnectionFactoryBuilder.Locator.CONSISTENT)
                .setHashAlg(DefaultHashAlgorithm.KETAMA_HASH).build(), addrs);
        } else if (mode.equals("consistent")) {
            mc = new MemcachedClient(new ConnectionFactoryBuilder()
                .setLocatorType(ConnectionFactoryBuilder.Locator.CONSISTENT).build(), addrs);
        } else if (mode.equals("weighted")) {
            Map<InetSocketAddress, Integer> weights = new HashMap<>();
            for (int i = 0; i < addrs.size(); i++) weights.put(addrs.get(i), ws.get(i));
            mc = new MemcachedClient(new KetamaConnectionFactory(
                DefaultConnectionFactory.DEFAULT_OP_QUEUE_LEN,
                DefaultConnectionFactory.DEFAULT_READ_BUFFER_SIZE,
                DefaultConnectionFactory.DEFAULT_OPERATION_TIMEOUT,
                DefaultHashAlgorithm.KETAMA_HASH,
                KetamaNodeKeyFormatter.Format.SPYMEMCACHED, weights), addrs);
        } else {
            throw new IllegalArgumentException(mode);
        }
        int live = av.length > 3 ? Integer.parseInt(av[3]) : -1;
        if (live < 0) {
            Map<java.net.SocketAddress, String> v = mc.getVersions();
            if (v.size() != new HashSet<>(addrs).size())
                fail(mc, "not every server answered version: " + v);
        } else {   // some servers are down: wait for the live ones
            long end = System.currentTimeMillis() + 10000;
            while (mc.getAvailableServers().size() < live) {
                if (System.currentTimeMillis() > end)
                    fail(mc, "live servers: " + mc.getAvailableServers());
                Thread.sleep(20);
            }
        }
        List<String> keys = new ArrayList<>(), hexes = new ArrayList<>();
        List<Future<Boolean>> sets = new ArrayList<>();
        BufferedReader in = new BufferedReader(new FileReader(av[2]));
        for (String line; (line = in.readLine()) != null;) {
            line = line.trim();
            if (line.isEmpty()) continue;
            byte[] b = new byte[line.length() / 2];
            for (int i = 0; i < b.length; i++)
                b[i] = (byte) Integer.parseInt(line.substring(2 * i, 2 * i + 2), 16);
            String key = new String(b, StandardCharsets.UTF_8);
            String hex = line.length() > 16 ? line.substring(0, 16) : line;
            keys.add(key);
            hexes.add(line);
            sets.add(mc.set(key, 0, "v:" + hex + ":" + b.length));
        }
        for (int i = 0; i < sets.size(); i++) {
            boolean ok;
            try {
                ok = sets.get(i).get();
            } catch (Exception e) {
                ok = false;
            }
            if (ok)
                continue;
            if (live < 0)
                fail(mc, "set failed: " + keys.get(i));
            System.out.println("skip " + hexes.get(i));   // no live node in its sequence
        }
        mc.shutdown();
        System.out.println("wrote " + keys.size());
    }

    static void fail(MemcachedClient mc, String why) {
        System.out.println(why);
        mc.shutdown();
        System.exit(1);
    }
}
]]

local KEYS = { bytes = "printable", utf8 = { 0xa1, 0x1ffff }, max_len = 120 }

local classes   -- the folder SpyWrite.class was compiled into

local function compile()
  if classes then return classes end
  local dir = string.format("%s/spymemcached-%d", H.tmpdir, H.free_port())
  H.run("mkdir -p " .. H.quote(dir))
  H.write_file(dir .. "/SpyWrite.java", WRITE)
  local out, ok = H.run(string.format("javac -cp %s -d %s %s 2>&1",
    H.quote(JAR), H.quote(dir), H.quote(dir .. "/SpyWrite.java")))
  assert(ok, "javac: " .. out)
  classes = dir
  return dir
end

local function writer(mode, live)
  return function(servers, keyfile)
    local t = {}
    for i, s in ipairs(servers) do t[i] = s.addr .. "=" .. s.weight end
    -- rc on a line of its own: the JVM may exit in the middle of a log line
    local out = H.run(string.format("timeout 300 java -cp %s SpyWrite %s %s %s %s 2>&1; rc=$?; echo; echo rc=$rc",
      H.quote(JAR .. ":" .. compile()), mode, table.concat(t, ","), H.quote(keyfile), live or ""))
    assert(out:match("\nrc=0%s*$"), out)
    return out
  end
end

local function ones(n)
  local t = {}
  for i = 1, n do t[i] = 1 end
  return t
end

describe("hash = spymemcached", function()
  it("finds every key of spymemcached's default locator, a server listed 1, 2 and 3 times", function()
    P.assert_all_found(P.migrate {
      hash = "spymemcached", weights = { 1, 2, 3 }, n = 5000, keys = KEYS,
      write = writer("mod"),
    })
  end)

  it("finds every key of spymemcached's default locator on four servers", function()
    P.assert_all_found(P.migrate {
      hash = "spymemcached", weights = ones(4), n = 5000,
      keys = { bytes = "printable", utf8 = { 0xa1, 0x1ffff }, seed = 17 },
      write = writer("mod"),
    })
  end)
end)

describe("hash = spymemcached-ketama", function()
  it("finds every key of KetamaConnectionFactory on three servers", function()
    P.assert_all_found(P.migrate {
      hash = "spymemcached-ketama", weights = ones(3), n = 5000, keys = KEYS,
      write = writer("ketama"),
    })
  end)

  it("finds every key of ConnectionFactoryBuilder CONSISTENT + KETAMA_HASH on four servers", function()
    P.assert_all_found(P.migrate {
      hash = "spymemcached-ketama", weights = ones(4), n = 5000,
      keys = { bytes = "printable", seed = 18 },
      write = writer("ketama-builder"),
    })
  end)
end)

describe("hash = spymemcached-ketama-native", function()
  -- String.hashCode points cluster (the names differ in a digit or two):
  -- with ports the OS picks at random every server still gets keys
  it("finds every key of ConnectionFactoryBuilder CONSISTENT (NATIVE_HASH) on four servers", function()
    P.assert_all_found(P.migrate {
      hash = "spymemcached-ketama-native", weights = ones(4), n = 5000, keys = KEYS,
      write = writer("consistent"),
    })
  end)
end)

-- No weights map: 160 points per server whatever the pool size.  On 25
-- servers twemproxy's float formula (hash = "ketama") gives 156, so this
-- is where the two rings part (on other sizes, ports other than 11211 and
-- no tied points they coincide).
describe("hash = spymemcached-ketama on 25 servers", function()
  it("finds every key of KetamaConnectionFactory (160 points each)", function()
    P.assert_all_found(P.migrate {
      hash = "spymemcached-ketama", weights = ones(25), n = 5000,
      keys = { bytes = "printable", seed = 20 },
      write = writer("ketama"),
    })
  end)

  it("is not twemproxy's ketama there: its 156 points per server miss keys", function()
    local r = P.migrate {
      hash = "ketama", weights = ones(25), n = 5000,
      keys = { bytes = "printable", seed = 20 },
      write = writer("ketama"),
    }
    assert.are.equal(0, r.wrong)
    assert(r.found < r.n, "twemproxy's ring found all of spymemcached's keys")
  end)
end)

describe("hash = spymemcached-ketama-weighted", function()
  it("finds every key of KetamaConnectionFactory with weights 1, 2, 3", function()
    P.assert_all_found(P.migrate {
      hash = "spymemcached-ketama-weighted", weights = { 1, 2, 3 }, n = 5000, keys = KEYS,
      write = writer("weighted"),
    })
  end)

  -- 25 equal weights: Java's float arithmetic gives each server 156 points
  -- (double arithmetic, or no weights map, would give 160).
  it("finds every key on 25 equally weighted servers (float points per server)", function()
    P.assert_all_found(P.migrate {
      hash = "spymemcached-ketama-weighted", weights = ones(25), n = 5000,
      keys = { bytes = "printable", seed = 19 },
      write = writer("weighted"),
    })
  end)

  it("is not the unweighted locator there: 160 points per server miss keys", function()
    local r = P.migrate {
      hash = "spymemcached-ketama", weights = ones(25), n = 5000,
      keys = { bytes = "printable", seed = 19 },
      write = writer("weighted"),
    }
    assert.are.equal(0, r.wrong)
    assert(r.found < r.n, "the unweighted ring found all the weighted client's keys")
    assert(r.found > r.n / 2, string.format("found only %d of %d", r.found, r.n))
  end)
end)

-- Every key through the gateway, 100 per get: how many came back with
-- their value, and how many with another.
local function read_all(port, keys)
  local c = H.connect(port, 10)
  local found, wrong = 0, 0
  for b = 1, #keys, 100 do
    local batch = { table.unpack(keys, b, math.min(b + 99, #keys)) }
    c:send("get " .. table.concat(batch, " ") .. "\r\n")
    local got = {}
    while true do
      local unit, line, n = c:unit()
      if not n then break end
      got[line:match("^VALUE (%S+)")] = unit:sub(#line + 1, #line + n - 2)
    end
    for _, k in ipairs(batch) do
      if got[k] == P.value(k) then found = found + 1 elseif got[k] then wrong = wrong + 1 end
    end
  end
  c:close()
  return found, wrong
end

-- spymemcached writes while server `dead` of `n` is down (FailureMode.
-- Redistribute, its default, moves that server's keys along getSequence);
-- the gateway, with the same server down and failover = "rehash", must
-- find every key the client placed.  Keys the client could not place (no
-- live node among its 7 ketama tries) are left out, at most max_skip of
-- them (default 1%).
local function failover_case(mode, hash, n, dead, max_skip)
  local add, stop_all = H.cleanups()
  finally(stop_all)
  local servers = {}
  for i = 1, n do
    local m = H.start_memcached()
    add(m.stop)
    servers[i] = { addr = m.addr, weight = 1, mc = m }
  end
  servers[dead].mc.stop()
  local all = P.keys(2000, { bytes = "printable", utf8 = { 0xa1, 0x1ffff }, max_len = 60, seed = 21 })
  local hex = {}
  for i, k in ipairs(all) do hex[i] = P.hex(k) end
  local keyfile = string.format("%s/placement-keys-%d.txt", H.tmpdir, H.free_port())
  H.write_file(keyfile, table.concat(hex, "\n") .. "\n")
  local out = writer(mode, n - 1)(servers, keyfile)
  local skip, keys = {}, {}
  for h in out:gmatch("skip (%x+)") do skip[h] = true end
  for i, k in ipairs(all) do if not skip[hex[i]] then keys[#keys + 1] = k end end
  assert(#keys >= #all * (1 - (max_skip or 0.01)), out)
  local stored = 0
  for i, s in ipairs(servers) do
    if i ~= dead then
      stored = stored + tonumber(H.parse_stats(H.request(s.mc.port, "stats\r\n")).curr_items)
    end
  end
  assert.are.equal(#keys, stored)
  local t = {}
  for i, s in ipairs(servers) do t[i] = string.format("%q", s.addr) end
  local g = H.start_gateway(string.format([[
    memcache.route { default = memcache.pool { servers = { %s }, hash = %q,
      failover = "rehash", retry_timeout = 30 } }
  ]], table.concat(t, ", "), hash))
  add(g.stop)
  -- until the gateway has seen the dead server fail (failure_limit) its
  -- keys miss; then every key must be found
  local found, wrong = 0, 0
  H.wait_until(function()
    found, wrong = read_all(g.port, keys)
    return found == #keys or wrong > 0
  end, 10, "every key through the gateway")
  assert.are.equal(0, wrong)
  assert.are.equal(#keys, found)
end

describe("a server down (FailureMode.Redistribute, failover = \"rehash\")", function()
  it("spymemcached: the keys of the dead server are where the default locator moved them", function()
    failover_case("mod", "spymemcached", 3, 2)
  end)

  it("spymemcached-ketama: where KetamaIterator moved them", function()
    failover_case("ketama", "spymemcached-ketama", 4, 2)
  end)

  it("spymemcached-ketama-native: where KetamaIterator (String.hashCode) moved them", function()
    -- String.hashCode moves a short key's rehash little: many keys find
    -- no live node in 7 tries, and the client cannot store them
    failover_case("consistent", "spymemcached-ketama-native", 4, 1, 0.5)
  end)

  it("spymemcached-ketama-weighted: where KetamaIterator moved them", function()
    failover_case("weighted", "spymemcached-ketama-weighted", 4, 3)
  end)
end)
