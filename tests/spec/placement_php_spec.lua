-- placement_php_spec.lua -- the libmemcached modes find every key PHP's
-- Memcached 3.2.0 (Debian's php-memcached, on libmemcached11 1.1.4) placed
-- itself on weighted servers, with random printable keys (php-memcached
-- refuses spaces and control bytes).
--
--   new Memcached(), addServer(host, port, weight)  -> hash = "libmemcached"
--   OPT_LIBKETAMA_COMPATIBLE = true                  -> hash = "ketama"
--     (md5 keys and points, twemproxy's float point counts: 25 servers)
--   the session handler, memcached.sess_consistent_hash = 1
--                                            -> hash = "libmemcached-consistent"
--
-- The session handler (php_memcached_session.c, s_init_mod_data and
-- s_configure_from_ini_values) pushes save_path's servers, then sets
-- memcached.sess_consistent_hash_type's behavior, MEMCACHED_BEHAVIOR_KETAMA
-- by default (OnUpdateConsistentHash), which clears libmemcached's weighted
-- flag: the unweighted ring of 100 one-at-a-time points per server.  5,000
-- sessions carry values the placement harness cannot check, so the 5,000
-- key check drives a Memcached object set up the same way (addServers,
-- then setOption(3 = MEMCACHED_BEHAVIOR_KETAMA, 1), which php-memcached
-- passes to memcached_behavior_set), and 500 real sessions check the
-- handler itself.  Its key prefix (memcached.sess_prefix, "memc.sess.key."
-- by default) is a libmemcached namespace (MEMCACHED_CALLBACK_NAMESPACE),
-- sent with the key but left out of the hash: the pool's hash_namespace
-- does the same, and without it most sessions are missed.
local H = require "harness"
local P = require "placement"

local WRITE = [[
<?php
[$servers, $how, $keyfile] = array_slice($argv, 1);
$m = new Memcached();
if ($how === "libketama") $m->setOption(Memcached::OPT_LIBKETAMA_COMPATIBLE, true);
$list = [];
foreach (explode(",", $servers) as $s) {
  [$host, $port, $weight] = explode(":", $s);
  $list[] = [$host, (int)$port, (int)$weight];
}
if (!$m->addServers($list)) { fwrite(STDERR, "addServers failed\n"); exit(1); }
if ($how === "session") {
  // what the session handler does after pushing the servers
  if (!$m->setOption(3 /* MEMCACHED_BEHAVIOR_KETAMA */, 1)) exit(1);
  if ($m->getOption(Memcached::OPT_DISTRIBUTION) !== 2) exit(1);
}
foreach (file($keyfile, FILE_IGNORE_NEW_LINES) as $h) {
  if ($h === "") continue;
  $key = hex2bin($h);
  if (!$m->set($key, "v:" . substr($h, 0, 16) . ":" . strlen($key))) {
    fwrite(STDERR, "set failed: $key: " . $m->getResultMessage() . "\n");
    exit(1);
  }
}
]]

local function writer(how)
  local script = H.write_config(WRITE, "placement-php.php")
  return function(servers, keyfile)
    local t = {}
    for i, s in ipairs(servers) do t[i] = s.addr .. ":" .. s.weight end
    local out = H.run(string.format("php %s %s %s %s 2>&1; echo rc=$?", H.quote(script),
      table.concat(t, ","), how, H.quote(keyfile)))
    assert(out:match("rc=0"), out)
  end
end

local SESSIONS = [[
<?php
[$path, $idfile] = array_slice($argv, 1);
ini_set('session.save_handler', 'memcached');
ini_set('session.save_path', $path);
ini_set('session.use_cookies', '0');
ini_set('session.cache_limiter', '');
foreach (file($idfile, FILE_IGNORE_NEW_LINES) as $id) {
  if ($id === "") continue;
  session_id($id);
  if (!session_start()) exit(1);
  $_SESSION['id'] = $id;
  if (!session_write_close()) exit(1);
}
]]

-- 500 sessions written by the real handler (memcached.sess_consistent_hash
-- = 1, its default ketama type, memcached.sess_prefix = prefix) to three
-- servers, then read through a gateway pool with hash =
-- "libmemcached-consistent" and pool_opts; returns { n, found }.
local function sessions(prefix, pool_opts)
  local cleanup, stop_all = H.cleanups()
  local ok, res = pcall(function()
    local mcs, path, addrs = {}, {}, {}
    for i = 1, 3 do
      mcs[i] = H.start_memcached()
      cleanup(mcs[i].stop)
      path[i] = mcs[i].addr
      addrs[i] = string.format("%q", mcs[i].addr)
    end
    -- session ids: letters and digits, 22 to 64 of them
    local ids = P.keys(500, { bytes = "alnum", min_len = 22, max_len = 64, seed = 24 })
    local idfile = H.write_config(table.concat(ids, "\n") .. "\n", "placement-php-ids.txt")
    local script = H.write_config(SESSIONS, "placement-php-sessions.php")
    local out = H.run(string.format("php -d memcached.sess_consistent_hash=1 "
      .. "-d memcached.sess_consistent_hash_type=ketama -d memcached.sess_prefix=%s "
      .. "-d memcached.sess_locking=0 %s %s %s 2>&1; echo rc=$?", H.quote(prefix),
      H.quote(script), H.quote(table.concat(path, ",")), H.quote(idfile)))
    assert(out:match("rc=0"), out)
    local stored = 0
    for i = 1, 3 do
      local n = tonumber(H.parse_stats(H.request(mcs[i].port, "stats\r\n")).curr_items)
      assert(n > 0, "server " .. i .. " holds no sessions: the check could not fail")
      stored = stored + n
    end
    assert.are.equal(#ids, stored)
    local g = H.start_gateway(string.format([[
      local pool = memcache.pool { servers = { %s }, hash = "libmemcached-consistent"%s }
      memcache.route { default = pool }
    ]], table.concat(addrs, ", "), pool_opts ~= "" and (", " .. pool_opts) or ""))
    cleanup(g.stop)
    local c = H.connect(g.port, 10)
    local found = 0
    for b = 1, #ids, 50 do
      local batch = {}
      for i = b, math.min(b + 49, #ids) do batch[#batch + 1] = prefix .. ids[i] end
      c:send("get " .. table.concat(batch, " ") .. "\r\n")
      while true do
        local unit, line, n = c:unit()
        if not n then break end
        local k = line:match("^VALUE (%S+)"):sub(#prefix + 1)
        local v = unit:sub(#line + 1, #line + n - 2)
        if v == string.format("id|s:%d:\"%s\";", #k, k) then found = found + 1 end
      end
    end
    c:close()
    return { n = #ids, found = found }
  end)
  stop_all()
  if not ok then error(res, 0) end
  return res
end

describe("PHP Memcached placement", function()
  it("default (modula): hash = libmemcached finds every key, weights ignored", function()
    local r = P.migrate {
      hash = "libmemcached", weights = { 1, 2, 3 }, n = 5000, write = writer("default"),
    }
    P.assert_all_found(r)
    for _, c in ipairs(r.items) do assert.is_true(c > 1400 and c < 1950, tostring(c)) end
  end)

  it("OPT_LIBKETAMA_COMPATIBLE with weights 1,2,3: hash = ketama", function()
    local r = P.migrate {
      hash = "ketama", weights = { 1, 2, 3 }, n = 5000, keys = { seed = 21 },
      write = writer("libketama"),
    }
    P.assert_all_found(r)
    assert.is_true(r.items[3] > r.items[1] * 2, "weights count")
  end)

  it("OPT_LIBKETAMA_COMPATIBLE on 25 servers (float point counts): hash = ketama", function()
    local w = {}
    for i = 1, 25 do w[i] = 1 end
    local r = P.migrate {
      hash = "ketama", weights = w, n = 5000, keys = { seed = 22 },
      write = writer("libketama"),
    }
    P.assert_all_found(r)
  end)

  it("the session handler's options: hash = libmemcached-consistent", function()
    local r = P.migrate {
      hash = "libmemcached-consistent", weights = { 1, 1, 1 }, n = 5000,
      keys = { seed = 23 }, write = writer("session"),
    }
    P.assert_all_found(r)
  end)

  it("the check fails with the wrong mode", function()
    local r = P.migrate {
      hash = "libmemcached", weights = { 1, 1, 1 }, n = 5000,
      keys = { seed = 23 }, write = writer("session"),
    }
    assert.is_true(r.found < r.n / 2, string.format("found %d of %d", r.found, r.n))
  end)

  it("real sessions (sess_consistent_hash = 1), no prefix: hash = libmemcached-consistent", function()
    local r = sessions("", "")
    assert.are.equal(r.n, r.found)
  end)

  it("real sessions with the default prefix: hash_namespace = \"memc.sess.key.\"", function()
    local r = sessions("memc.sess.key.", 'hash_namespace = "memc.sess.key."')
    assert.are.equal(r.n, r.found)
  end)

  it("real sessions with the default prefix, no hash_namespace: most are missed", function()
    local r = sessions("memc.sess.key.", "")
    assert.is_true(r.found < r.n / 2, string.format("found %d of %d", r.found, r.n))
  end)
end)
