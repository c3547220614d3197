-- prelude_spec.lua -- unit specs for lua/gateway/prelude.lua, the config-time
-- API and sandbox.  Pure Lua: the C core is replaced by a recording stub.
local prelude = dofile("lua/gateway/prelude.lua")

local TMP = "tests/tmp/prelude_spec"

-- Run `code` as a chunk named "@cfg.lua" that can see the prelude as P.
-- Returns pcall's results.
local function run_cfg(code)
  local env = setmetatable({ P = prelude }, { __index = _G })
  local chunk = assert(load(code, "@cfg.lua", "t", env))
  return pcall(chunk)
end

-- Assert that `code` (run as cfg.lua) raises an error that starts with
-- "cfg.lua:<line>: " and contains `needle` (plain text).
local function assert_cfg_error(code, line, needle)
  local ok, err = run_cfg(code)
  assert.is_false(ok, "expected an error from: " .. code)
  assert.is_string(err)
  local prefix = "cfg.lua:" .. line .. ": "
  assert.are.equal(prefix, err:sub(1, #prefix), "wrong position in: " .. err)
  if needle then
    assert.is_truthy(err:find(needle, 1, true), "'" .. needle .. "' not in: " .. err)
  end
  return err
end

local function write_file(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

-- A pool-like full userdata whose metatable is named "memcache.pool", as the
-- C core's pools are (boot's is_pool accepts only such values).
local POOL_MT = { __name = "memcache.pool" }
local function fake_pool_userdata()
  local f = io.tmpfile()
  f:close()
  debug.setmetatable(f, POOL_MT)
  return f
end

-- A stub of the C core that records every call.
local function fake_core(opts)
  opts = opts or {}
  local c = { calls = { listen = {}, settings = {}, route = {}, log = {}, pool = {},
    internal = {} } }
  function c.listen(addr, name, flush, stats, auth, auth_text)
    -- as the core does, a bad users file raises "path:line: message"
    if auth and opts.listen_error then error(opts.listen_error, 0) end
    table.insert(c.calls.listen, { addr = addr, name = name, auth = auth, auth_text = auth_text })
  end
  function c.settings(s) table.insert(c.calls.settings, s) end
  function c.route(list, default)
    table.insert(c.calls.route, { list = list, default = default })
  end
  function c.log(level, msg) table.insert(c.calls.log, { level = level, msg = msg }) end
  function c.pool(spec)
    if opts.pool_error then error(opts.pool_error) end
    table.insert(c.calls.pool, spec)
    local p = fake_pool_userdata()
    c.last_pool = p
    return p
  end
  function c.internal(size)
    table.insert(c.calls.internal, size)
    return fake_pool_userdata()
  end
  function c.valid_key(k) return type(k) == "string" and #k <= 250 end
  -- The core's single sources (rt/settings.c, backend_opts_default,
  -- place/dist.c, the first three of its modes), as the real core answers them.
  function c.hashes() return { "python-memcached", "ketama", "jump" } end
  function c.read(path)
    local f, err = io.open(path, "rb")
    if not f then return nil, err end
    local text = f:read("a")
    f:close()
    return text
  end
  c.tracked = {}
  function c.track(path) c.tracked[#c.tracked + 1] = path end
  function c.defaults()
    return { settings = { threads = 1 }, internal_size = 64 * 1024 * 1024,
      pool = { timeout = 0.5, retry_timeout = 1, failure_limit = 2, max_queue = 4096 } }
  end
  return c
end

local counter = 0
-- Write a config file under TMP and boot it with a fresh stub core.
-- Returns ok, err_or_nil, core, path.
local function boot_config(text, opts)
  opts = opts or {}
  counter = counter + 1
  local path = opts.path or string.format("%s/cfg%d.lua", TMP, counter)
  write_file(path, text)
  local core = fake_core(opts.core)
  local ok, err = pcall(prelude.boot, core, path, opts.lua_dir or (TMP .. "/lib/lua"), false)
  return ok, err, core, path
end

-- The config's environment, fetched through a route function that returns
-- its _ENV.
local ENV_PROBE = "memcache.route { default = function() return _ENV end }\n"

describe("prelude", function()
  lazy_setup(function()
    os.execute("mkdir -p " .. TMP .. "/lib/lua/pkg " .. TMP .. "/lib/scripts")
    prelude.use_core(fake_core())
  end)

  lazy_teardown(function()
    os.execute("rm -rf " .. TMP)
  end)

  it("returns a callable table whose call is boot", function()
    assert.is_table(prelude)
    local mt = getmetatable(prelude)
    assert.is_function(mt and mt.__call)
    os.execute("mkdir -p " .. TMP)
    local path = TMP .. "/callable.lua"
    write_file(path, 'gateway.listen "127.0.0.1:1"\n')
    local core = fake_core()
    prelude(core, path, TMP .. "/lib/lua", false)
    assert.are.same({ { addr = "127.0.0.1:1" } }, core.calls.listen)
  end)

  -- ---------------------------------------------------------------------
  describe("parse_size", function()
    it("accepts whole numbers of bytes, as integers", function()
      assert.are.equal(1024, prelude.parse_size(1024))
      assert.are.equal("integer", math.type(prelude.parse_size(1024)))
      assert.are.equal(0, prelude.parse_size(0))
      assert.are.equal(2, prelude.parse_size(2.0))
      assert.are.equal("integer", math.type(prelude.parse_size(2.0)))
    end)

    it("parses unit suffixes, case-insensitively, with optional spaces", function()
      assert.are.equal(64 * 1024 * 1024, prelude.parse_size("64MB"))
      assert.are.equal(64 * 1024 * 1024, prelude.parse_size("64 MiB"))
      assert.are.equal(64 * 1024 * 1024, prelude.parse_size("64m"))
      assert.are.equal(512 * 1024, prelude.parse_size("512k"))
      assert.are.equal(512 * 1024, prelude.parse_size("512KB"))
      assert.are.equal(1024 ^ 3, prelude.parse_size("1g"))
      assert.are.equal(2 * 1024 ^ 3, prelude.parse_size("2 GiB"))
      assert.are.equal(100, prelude.parse_size("100"))
      assert.are.equal(100, prelude.parse_size("100b"))
      assert.are.equal(100, prelude.parse_size("  100 B  "))
      assert.are.equal("integer", math.type(prelude.parse_size("1g")))
    end)

    it("accepts a fractional count with a unit", function()
      assert.are.equal(1572864, prelude.parse_size("1.5MB"))
      assert.are.equal("integer", math.type(prelude.parse_size("1.5MB")))
      assert.are.equal(512, prelude.parse_size("0.5k"))
    end)

    it("rejects bad strings with nil and a message naming the input", function()
      for _, bad in ipairs({ "lots", "-1", "", "64XB", "MB", "1e3", "1,024", "64 M B" }) do
        local n, err = prelude.parse_size(bad)
        assert.is_nil(n, "accepted " .. bad)
        assert.is_string(err)
        assert.is_truthy(err:find("bad size '" .. bad .. "'", 1, true), err)
      end
    end)

    it("rejects non-whole and negative numbers with a message", function()
      for _, bad in ipairs({ 1.5, -1, -0.5, 0 / 0 }) do
        local n, err = prelude.parse_size(bad)
        assert.is_nil(n)
        assert.are.equal("a size must be a whole number of bytes", err)
      end
    end)

    it("rejects other types with a message", function()
      for _, bad in ipairs({ {}, true, print }) do
        local n, err = prelude.parse_size(bad)
        assert.is_nil(n)
        assert.is_truthy(err:find("a size must be a number or a string", 1, true))
      end
      local n, err = prelude.parse_size(nil)
      assert.is_nil(n)
      assert.is_string(err)
    end)

    -- BUG: sizes too large for an integer make parse_size return nil with no
    -- message, so callers report a misleading "must be > 0".
    it("gives a message for sizes too large to represent", function()
      local n, err = prelude.parse_size("99999999999999999999g")
      assert.is_nil(n)
      assert.is_string(err)
      n, err = prelude.parse_size(math.huge)
      assert.is_nil(n)
      assert.is_string(err)
    end)
  end)

  -- ---------------------------------------------------------------------
  describe("pool_spec", function()
    it("fills in the defaults", function()
      local s = prelude.pool_spec({ servers = { "10.0.0.1:11211", "10.0.0.2:11211" } })
      assert.are.same({
        name = "10.0.0.1:11211",
        servers = { { addr = "10.0.0.1:11211", weight = 1 }, { addr = "10.0.0.2:11211", weight = 1 } },
        hash = "python-memcached",
        legacy = true,
        timeout = 0.5,
        retry_timeout = 1,
        failover = "none",
        failure_limit = 2,
        max_queue = 4096,
        multiget_errors = "miss",
        text_only = false,
      }, s)
    end)

    it("takes weights from table entries, by position or addr", function()
      local s = prelude.pool_spec({ servers = {
        { "h:1", weight = 2 },
        { addr = "h:2", weight = 5 },
        { "h:3" },
        "h:4",
      } })
      assert.are.same({
        { addr = "h:1", weight = 2 },
        { addr = "h:2", weight = 5 },
        { addr = "h:3", weight = 1 },
        { addr = "h:4", weight = 1 },
      }, s.servers)
    end)

    it("passes the options through", function()
      local s = prelude.pool_spec({ servers = { "h:1" }, hash = "ketama", timeout = 2,
        retry_timeout = 0, failover = "next", name = "cache", python_memcached = "1.60" })
      assert.are.equal("ketama", s.hash)
      assert.are.equal(2, s.timeout)
      assert.are.equal(0, s.retry_timeout)
      assert.are.equal("next", s.failover)
      assert.are.equal("cache", s.name)
      assert.is_false(s.legacy)
      assert.are.equal("jump", prelude.pool_spec({ servers = { "h:1" }, hash = "jump" }).hash)
      assert.are.equal("rehash", prelude.pool_spec({ servers = { "h:1" }, failover = "rehash" }).failover)
      assert.is_true(prelude.pool_spec({ servers = { "h:1" }, python_memcached = "1.59" }).legacy)
      local f = prelude.pool_spec({ servers = { { "h:1", timeout = 0.1, connect_timeout = 0.2 } },
        connect_timeout = 0.3, failure_limit = 5, max_queue = 10, multiget_errors = "error",
        hash_tag = "{}" })
      assert.are.same({ addr = "h:1", weight = 1, timeout = 0.1, connect_timeout = 0.2 }, f.servers[1])
      assert.are.equal(0.3, f.connect_timeout)
      assert.are.equal(5, f.failure_limit)
      assert.are.equal(10, f.max_queue)
      assert.are.equal("error", f.multiget_errors)
      assert.are.equal("{}", f.hash_tag)
    end)

    it("refuses bad failure options", function()
      assert_cfg_error('P.pool_spec{ servers = { "h:1" }, failure_limit = 0 }', 1,
        "memcache.pool: failure_limit must be an integer >= 1")
      assert_cfg_error('P.pool_spec{ servers = { "h:1" }, max_queue = -1 }', 1,
        "memcache.pool: max_queue must be an integer >= 0")
      assert_cfg_error('P.pool_spec{ servers = { "h:1" }, multiget_errors = "x" }', 1,
        'memcache.pool: multiget_errors must be "miss" or "error"')
      assert_cfg_error('P.pool_spec{ servers = { { "h:1", timeout = -1 } } }', 1,
        "memcache.pool: server 1: timeout must be a positive number of seconds")
      assert_cfg_error('P.pool_spec{ servers = { { "h:1", color = 1 } } }', 1,
        "memcache.pool: server 1: unknown option 'color'")
      assert_cfg_error('P.pool_spec{ servers = { "h:1" }, hash_tag = "{" }', 1,
        'memcache.pool: hash_tag must be a string of two characters, like "{}"')
      assert_cfg_error('P.pool_spec{ servers = { "h:1" }, protocol = "binary" }', 1,
        'memcache.pool: protocol must be "meta" or "text"')
    end)

    it("does not alias the caller's server list", function()
      local servers = { "h:1" }
      local s = prelude.pool_spec({ servers = servers })
      assert.are_not.equal(servers, s.servers)
      assert.are.equal("h:1", servers[1])
    end)

    describe("errors carry the caller's file:line", function()
      it("for a non-table argument", function()
        assert_cfg_error('\nP.pool_spec("h:1")', 2, "memcache.pool expects a table, got string")
      end)

      it("for missing or empty servers", function()
        assert_cfg_error('P.pool_spec{ servers = {} }', 1,
          "memcache.pool: 'servers' must be a non-empty list")
        assert_cfg_error('local x = 1\n\nP.pool_spec{ }', 3, "'servers' must be a non-empty list")
        assert_cfg_error('P.pool_spec{ servers = "h:1" }', 1, "'servers' must be a non-empty list")
      end)

      it("for a bad server address", function()
        assert_cfg_error('\n\nP.pool_spec{ servers = { "nohostport" } }', 3,
          'server address must be "host:port" (port 1 to 65535), got nohostport')
        assert_cfg_error('P.pool_spec{ servers = { "h:1", { "h:x" } } }', 1, "got h:x")
        assert_cfg_error('P.pool_spec{ servers = { ":11211" } }', 1, "got :11211")
        assert_cfg_error('P.pool_spec{ servers = { 11211 } }', 1, "got 11211")
        assert_cfg_error('P.pool_spec{ servers = { { weight = 2 } } }', 1, "got nil")
      end)

      it("for a bad weight", function()
        assert_cfg_error('P.pool_spec{ servers = { "h:1", { "h:2", weight = 0 } } }', 1,
          "memcache.pool: server 2: weight must be an integer >= 1")
        assert_cfg_error('\nP.pool_spec{ servers = { { "h:1", weight = 1.5 } } }', 2,
          "server 1: weight must be an integer >= 1")
        assert_cfg_error('P.pool_spec{ servers = { { "h:1", weight = -3 } } }', 1,
          "weight must be an integer >= 1")
        assert_cfg_error('P.pool_spec{ servers = { { "h:1", weight = "2" } } }', 1,
          "weight must be an integer >= 1")
      end)

      it("for an unknown hash", function()
        assert_cfg_error('P.pool_spec{ servers = { "h:1" }, hash = "crc32" }', 1,
          "memcache.pool: unknown hash 'crc32'")
      end)

      it("for an unknown failover", function()
        assert_cfg_error('P.pool_spec{ servers = { "h:1" }, failover = "retry" }', 1,
          "memcache.pool: unknown failover 'retry'")
      end)

      it("for a bad timeout", function()
        assert_cfg_error('\n\n\nP.pool_spec{ servers = { "h:1" }, timeout = -1 }', 4,
          "memcache.pool: timeout must be a positive number of seconds")
        assert_cfg_error('P.pool_spec{ servers = { "h:1" }, timeout = 0 }', 1,
          "timeout must be a positive number")
        assert_cfg_error('P.pool_spec{ servers = { "h:1" }, timeout = "1s" }', 1,
          "timeout must be a positive number")
      end)

      -- BUG: NaN passes the "positive number" checks (NaN <= 0 is false).
      it("for a NaN timeout or retry_timeout", function()
        assert_cfg_error('P.pool_spec{ servers = { "h:1" }, timeout = 0/0 }', 1,
          "timeout must be a positive number")
        assert_cfg_error('P.pool_spec{ servers = { "h:1" }, retry_timeout = 0/0 }', 1,
          "retry_timeout must be a number of seconds >= 0")
      end)

      it("for a bad retry_timeout", function()
        assert_cfg_error('P.pool_spec{ servers = { "h:1" }, retry_timeout = -0.1 }', 1,
          "memcache.pool: retry_timeout must be a number of seconds >= 0")
      end)

      it("for a bad python_memcached version", function()
        assert_cfg_error('P.pool_spec{ servers = { "h:1" }, python_memcached = "1.58" }', 1,
          'python_memcached must be "1.59" or "1.60"')
        assert_cfg_error('P.pool_spec{ servers = { "h:1" }, python_memcached = 1.60 }', 1,
          'python_memcached must be "1.59" or "1.60"')
      end)

      it("for an unknown option, naming it", function()
        assert_cfg_error('P.pool_spec{ servers = { "h:1" },\n  colour = "blue" }', 1,
          "memcache.pool: unknown option 'colour'")
        assert_cfg_error('P.pool_spec{ server = { "h:1" } }', 1, "unknown option 'server'")
      end)

      it("from inside a function in the config, at the calling line", function()
        assert_cfg_error(table.concat({
          "local function mk(s)",
          "  local p = P.pool_spec{ servers = { s } }",
          "  return p",
          "end",
          "mk('bad')",
        }, "\n"), 2, "got bad")
      end)
    end)
  end)

  -- ---------------------------------------------------------------------
  describe("settings_spec", function()
    it("returns only what was given", function()
      assert.are.same({}, prelude.settings_spec({}))
      assert.are.same({ threads = 4 }, prelude.settings_spec({ threads = 4 }))
    end)

    it("accepts threads from 1 to 256", function()
      assert.are.equal(1, prelude.settings_spec({ threads = 1 }).threads)
      assert.are.equal(256, prelude.settings_spec({ threads = 256 }).threads)
    end)

    it("rejects threads out of range or not an integer", function()
      for _, bad in ipairs({ "0", "257", "-1", "2.5", "4.0", '"4"' }) do
        assert_cfg_error("P.settings_spec{ threads = " .. bad .. " }", 1,
          "gateway.settings: threads must be an integer from 1 to 256")
      end
    end)

    it("parses the sizes", function()
      local s = prelude.settings_spec({ max_value_size = "2MB", max_line = 4096 })
      assert.are.same({ max_value_size = 2 * 1024 * 1024, max_line = 4096 }, s)
      assert.are.equal(1536, prelude.settings_spec({ max_line = "1.5k" }).max_line)
    end)

    it("rejects bad and zero sizes", function()
      assert_cfg_error('\nP.settings_spec{ max_value_size = "lots" }', 2,
        "gateway.settings: max_value_size: bad size 'lots'")
      assert_cfg_error('P.settings_spec{ max_line = 0 }', 1,
        "gateway.settings: max_line: must be > 0")
      assert_cfg_error('P.settings_spec{ max_line = 1.5 }', 1,
        "max_line: a size must be a whole number of bytes")
    end)

    it("takes max_connections and instruction_limit as integers >= 0", function()
      local s = prelude.settings_spec({ max_connections = 0, instruction_limit = 5000 })
      assert.are.same({ max_connections = 0, instruction_limit = 5000 }, s)
      assert_cfg_error('P.settings_spec{ max_connections = -1 }', 1,
        "gateway.settings: max_connections must be an integer >= 0")
      assert_cfg_error('P.settings_spec{ instruction_limit = 1.5 }', 1,
        "gateway.settings: instruction_limit must be an integer >= 0")
      assert_cfg_error('P.settings_spec{ instruction_limit = "1000" }', 1,
        "instruction_limit must be an integer >= 0")
    end)

    it("rejects unknown keys and non-tables", function()
      assert_cfg_error('P.settings_spec{ thread = 4 }', 1, "gateway.settings: unknown option 'thread'")
      assert_cfg_error('P.settings_spec(4)', 1, "gateway.settings expects a table, got number")
    end)
  end)

  -- ---------------------------------------------------------------------
  describe("route_spec", function()
    local function is_pool(v) return type(v) == "table" and v.is_pool == true end
    local p1, p2, p3 = { is_pool = true }, { is_pool = true }, { is_pool = true }

    it("sorts the prefixes and extracts default", function()
      local f = function() return p1 end
      local list, default = prelude.route_spec(
        { ["user:"] = p1, ["a:"] = f, [""] = p2, ["sess:"] = p3, default = p2 }, is_pool)
      assert.are.same({ "", "a:", "sess:", "user:" },
        { list[1][1], list[2][1], list[3][1], list[4][1] })
      assert.are.equal(4, #list)
      assert.are.equal(p2, list[1][2])
      assert.are.equal(f, list[2][2])
      assert.are.equal(p3, list[3][2])
      assert.are.equal(p1, list[4][2])
      assert.are.equal(p2, default)
    end)

    it("accepts a function as default, and no default", function()
      local f = function() end
      local list, default = prelude.route_spec({ default = f }, is_pool)
      assert.are.same({}, list)
      assert.are.equal(f, default)
      list, default = prelude.route_spec({ ["k"] = p1 }, is_pool)
      assert.are.equal(1, #list)
      assert.is_nil(default)
    end)

    it("asks is_pool about the targets", function()
      local seen = {}
      local list = prelude.route_spec({ ["x"] = p1 }, function(v)
        seen[#seen + 1] = v
        return true
      end)
      assert.are.same({ p1 }, seen)
      assert.are.equal(p1, list[1][2])
    end)

    it("rejects non-string keys", function()
      assert_cfg_error('P.route_spec({ [1] = function() end }, function() return true end)', 1,
        "memcache.route: keys must be prefix strings or 'default', got number")
      assert_cfg_error('P.route_spec({ [true] = function() end }, function() return false end)', 1,
        "keys must be prefix strings or 'default', got boolean")
    end)

    it("rejects targets that are neither pools nor functions", function()
      assert_cfg_error('\nP.route_spec({ ["x:"] = "pool" }, function() return false end)', 2,
        "memcache.route: the target of 'x:' must be a pool or a function, got string")
      assert_cfg_error('P.route_spec({ default = {} }, function() return false end)', 1,
        "the target of 'default' must be a pool or a function, got table")
      assert_cfg_error('P.route_spec({ default = 42 }, function() return false end)', 1,
        "got number")
    end)

    it("rejects a non-table", function()
      assert_cfg_error('P.route_spec("x", function() return false end)', 1,
        "memcache.route expects a table")
    end)
  end)

  -- ---------------------------------------------------------------------
  describe("make_env", function()
    local env
    before_each(function() env = prelude.make_env({ extra = 42 }) end)

    it("has the safe globals and libraries", function()
      for _, k in ipairs({ "assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal",
        "rawget", "rawlen", "select", "getmetatable", "tonumber", "tostring", "type",
        "xpcall" }) do
        assert.are.equal(_G[k], env[k], k)
      end
      -- these two are guarded versions (no __gc; no rawset past the seal)
      assert.is_function(env.setmetatable)
      assert.is_function(env.rawset)
      assert.are.equal(_VERSION, env._VERSION)
      assert.are.equal(string.format, env.string.format)
      assert.are.equal(table.concat, env.table.concat)
      assert.are.equal(math.floor, env.math.floor)
      assert.are.equal(math.pi, env.math.pi)
      assert.are.equal(utf8.char, env.utf8.char)
      assert.are.equal(os.time, env.os.time)
      assert.are.equal(os.clock, env.os.clock)
      assert.are.equal(os.date, env.os.date)
      assert.are.equal(os.difftime, env.os.difftime)
    end)

    it("adds the api and makes _G the env itself", function()
      assert.are.equal(42, env.extra)
      assert.are.equal(env, env._G)
    end)

    it("leaves out io, os.execute, load, dofile, debug and friends", function()
      for _, k in ipairs({ "io", "load", "loadfile", "dofile", "debug", "require", "package",
        "collectgarbage", "print", "loadstring" }) do
        assert.is_nil(rawget(env, k), k)
      end
      for _, k in ipairs({ "execute", "exit", "getenv", "remove", "rename", "tmpname",
        "setlocale" }) do
        assert.is_nil(env.os[k], "os." .. k)
      end
    end)

    it("hides them from code run in it: reading one is an error naming the line", function()
      for _, name in ipairs({ "io", "load", "dofile", "debug", "require" }) do
        local chunk = assert(load("local x = 1\nreturn " .. name, "=sandboxed", "t", env))
        local ok, err = pcall(chunk)
        assert.is_false(ok, name)
        assert.are.equal("sandboxed:2: undefined global '" .. name .. "'", err)
      end
      local chunk = assert(load("return os.execute", "=sandboxed", "t", env))
      assert.is_nil(chunk())
    end)

    it("refuses a metatable with a __gc, which nothing could bound", function()
      local chunk = assert(load("setmetatable({}, { __gc = function() end })", "=sandboxed", "t", env))
      local ok, err = pcall(chunk)
      assert.is_false(ok)
      assert.truthy(err:find("sandboxed:1: setmetatable: __gc metamethods are not allowed", 1, true), err)
      chunk = assert(load("return getmetatable(setmetatable({}, { __index = {} })) ~= nil",
        "=sandboxed", "t", env))
      assert.is_true(chunk())
    end)

    it("copies the libraries so that changes stay in the env", function()
      assert.are_not.equal(string, env.string)
      assert.are_not.equal(table, env.table)
      assert.are_not.equal(math, env.math)
      assert.are_not.equal(utf8, env.utf8)
      assert.are_not.equal(os, env.os)
      env.string.x = 1
      env.table.x = 1
      env.math.x = 1
      env.utf8.x = 1
      env.os.x = 1
      assert.is_nil(rawget(string, "x"))
      assert.is_nil(rawget(table, "x"))
      assert.is_nil(rawget(math, "x"))
      assert.is_nil(rawget(utf8, "x"))
      assert.is_nil(rawget(os, "x"))
      env.string.upper = nil
      assert.is_function(string.upper)
    end)

    it("gives every env its own copies", function()
      local other = prelude.make_env({})
      env.string.x = 1
      assert.is_nil(other.string.x)
      assert.are_not.equal(env.math, other.math)
    end)
  end)

  -- ---------------------------------------------------------------------
  describe("seal", function()
    local env
    before_each(function()
      env = prelude.make_env({})
      env.existing = 1
    end)

    local function run_in(code)
      return pcall(assert(load(code, "@req.lua", "t", env)))
    end

    it("lets globals be created before sealing", function()
      assert.is_true(run_in("made = 5"))
      assert.are.equal(5, env.made)
    end)

    it("forbids new globals afterwards, at the assigning line", function()
      prelude.seal(env)
      local ok, err = run_in("local a = 1\nnewglobal = a")
      assert.is_false(ok)
      assert.is_truthy(err:find("at request time", 1, true), err)
      assert.is_truthy(err:find("assignment to global 'newglobal'", 1, true), err)
      assert.are.equal("req.lua:2: ", err:sub(1, 11))
      assert.is_nil(rawget(env, "newglobal"))
    end)

    it("forbids them from functions defined before the seal too", function()
      local f = assert(load("return function() late = true end", "@req.lua", "t", env))()
      prelude.seal(env)
      local ok, err = pcall(f)
      assert.is_false(ok)
      assert.is_truthy(err:find("'late' at request time", 1, true), err)
    end)

    it("still lets globals be read; reading a missing one is an error naming the line", function()
      prelude.seal(env)
      local chunk = assert(load("return existing, string.upper('a'), rawget(_G, 'missing')",
        "@req.lua", "t", env))
      local a, c, b = chunk()
      assert.are.equal(1, a)
      assert.are.equal("A", c)
      assert.is_nil(b)
      local ok, err = pcall(assert(load("return missing", "@req.lua", "t", env)))
      assert.is_false(ok)
      assert.are.equal("req.lua:1: undefined global 'missing'", err)
    end)

    it("forbids rawset on the globals too", function()
      prelude.seal(env)
      local ok, err = run_in("rawset(_G, 'sneaky', 1)")
      assert.is_false(ok)
      assert.truthy(err:find("rawset on the globals at request time", 1, true), err)
      assert.is_nil(rawget(env, "sneaky"))
    end)

    it("forbids reassigning existing globals too", function()
      prelude.seal(env)
      local ok, err = run_in("existing = existing + 1")
      assert.is_false(ok)
      assert.is_truthy(err:find("assignment to global 'existing' at request time", 1, true), err)
      assert.are.equal(1, env.existing)
    end)

    it("cannot be lifted with setmetatable or bypassed by rawset into the globals", function()
      prelude.seal(env)
      local ok, err = run_in("setmetatable(_G, nil)")
      assert.is_false(ok)
      assert.is_truthy(err:find("protected metatable", 1, true), err)
      assert.are.equal("sealed", getmetatable(env))
    end)

    it("still allows assignments into tables held in globals", function()
      prelude.seal(env)
      assert.is_true(run_in("string.custom = 1"))
      assert.are.equal(1, env.string.custom)
    end)
  end)

  -- ---------------------------------------------------------------------
  describe("config_error", function()
    it("raises the message at the config's file:line", function()
      local err = assert_cfg_error('\n\nP.config_error("bad %s %d", "thing", 7)', 3)
      assert.are.equal("cfg.lua:3: bad thing 7", err)
    end)
  end)

  -- ---------------------------------------------------------------------
  describe("boot", function()
    it("runs a good config and passes what it asks for to the core", function()
      local ok, err, core = boot_config([[
gateway.listen "127.0.0.1:11311"
gateway.listen { "127.0.0.1:11312", name = "tenant1" }
gateway.listen { addr = "[::1]:11313" }
gateway.settings { threads = 4, max_value_size = "2MB", max_connections = 100 }
local a = memcache.pool { servers = { "10.0.0.1:11211", { "10.0.0.2:11211", weight = 3 } },
  hash = "ketama", name = "main" }
local b = memcache.internal { size = "1k" }
local c = memcache.internal()
local f = function(req) return a end
memcache.route { ["user:"] = a, ["local:"] = b, ["fn:"] = f, default = c }
]])
      assert.is_true(ok, err)
      assert.are.same({
        { addr = "127.0.0.1:11311" },
        { addr = "127.0.0.1:11312", name = "tenant1" },
        { addr = "[::1]:11313" },
      }, core.calls.listen)
      assert.are.same({ { threads = 4, max_value_size = 2097152, max_connections = 100 } },
        core.calls.settings)
      assert.are.same({ {
        name = "main",
        servers = { { addr = "10.0.0.1:11211", weight = 1 }, { addr = "10.0.0.2:11211", weight = 3 } },
        hash = "ketama", legacy = true, timeout = 0.5, retry_timeout = 1, failover = "none",
        failure_limit = 2, max_queue = 4096, multiget_errors = "miss", text_only = false,
      } }, core.calls.pool)
      assert.are.same({ 1024, 64 * 1024 * 1024 }, core.calls.internal)
      assert.are.equal(1, #core.calls.route)
      local r = core.calls.route[1]
      assert.are.same({ "fn:", "local:", "user:" }, { r.list[1][1], r.list[2][1], r.list[3][1] })
      assert.is_function(r.list[1][2])
      assert.are.equal("userdata", type(r.list[2][2]))
      assert.are.equal(core.last_pool, r.list[3][2])
      assert.are.equal("userdata", type(r.default))
    end)

    it("routes print and gateway.log to core.log", function()
      local ok, err, core = boot_config([[
print("hello", 42, nil)
gateway.log("warn", "x", true)
gateway.log("debug")
]])
      assert.is_true(ok, err)
      assert.are.same({
        { level = "info", msg = "hello\t42\tnil" },
        { level = "warn", msg = "x\ttrue" },
        { level = "debug", msg = "" },
      }, core.calls.log)
    end)

    it("exposes core.valid_key as memcache.valid_key", function()
      local ok, err, core = boot_config(ENV_PROBE)
      assert.is_true(ok, err)
      local env = core.calls.route[1].default()
      assert.are.equal(core.valid_key, env.memcache.valid_key)
    end)

    it("reports a syntax error as path:line:", function()
      local ok, err, _, path = boot_config("local x = 1\nlocal y = = 2\n")
      assert.is_false(ok)
      assert.are.equal(path .. ":2:", err:sub(1, #path + 3), err)
    end)

    it("reports a runtime error in top-level code as path:line:", function()
      local ok, err, _, path = boot_config("local t\n\nlocal v = t.field\n")
      assert.is_false(ok)
      assert.are.equal(path .. ":3:", err:sub(1, #path + 3), err)
    end)

    it("refuses binary chunks", function()
      local bin = string.dump(function() return 1 end)
      local ok, err = boot_config(bin)
      assert.is_false(ok)
      assert.is_truthy(err:find("binary", 1, true) or err:find("text", 1, true), err)
    end)

    it("reports a bad memcache.pool option at the config's path:line", function()
      local ok, err, core, path = boot_config([[
local a = memcache.pool { servers = { "h:1" } }

local b = memcache.pool { servers = { "h:2" }, hahs = "jump" }
]])
      assert.is_false(ok)
      assert.are.equal(path .. ":3: memcache.pool: unknown option 'hahs'", err)
      assert.are.equal(1, #core.calls.pool)
    end)

    it("reports a bad argument to the other calls at path:line", function()
      local cases = {
        { 'gateway.listen "nohostport"', 'gateway.listen: address must be "host:port" (port 1 to 65535), got nohostport' },
        { 'gateway.listen { "h:1", name = 5 }', "gateway.listen: name must be a string" },
        { "gateway.settings { threads = 0 }", "gateway.settings: threads must be an integer from 1 to 256" },
        { 'memcache.internal { size = "lots" }', "memcache.internal: size: bad size 'lots'" },
        { "memcache.internal { size = 0 }", "memcache.internal: size: must be > 0" },
        { 'memcache.internal { sise = "1k" }', "memcache.internal: unknown option 'sise'" },
        { 'memcache.route { ["k"] = "x" }', "memcache.route: the target of 'k' must be a pool or a function" },
      }
      for _, case in ipairs(cases) do
        local ok, err, _, path = boot_config("local x = 1\n" .. case[1] .. "\n")
        assert.is_false(ok, case[1])
        local expect = path .. ":2: " .. case[2]
        assert.are.equal(expect, err:sub(1, #expect))
      end
    end)

    it("accepts only the core's pools as route targets", function()
      local ok, err = boot_config([[
memcache.route { default = setmetatable({}, { __name = "memcache.pool" }) }
]])
      assert.is_false(ok)
      assert.is_truthy(err:find("must be a pool or a function, got table", 1, true), err)
    end)

    it("puts the config's path:line on errors raised by the core", function()
      local ok, err, _, path = boot_config('\nlocal p = memcache.pool { servers = { "h:1" } }\n',
        { core = { pool_error = "cannot resolve 'h'" } })
      assert.is_false(ok)
      assert.are.equal(path .. ":2: cannot resolve 'h'", err)
    end)

    it("forbids the config-time calls at request time", function()
      local ok, err, core = boot_config([[
local calls = {
  pool = function() return memcache.pool { servers = { "h:1" } } end,
  internal = function() return memcache.internal() end,
  route = function() return memcache.route { default = function() end } end,
  listen = function() return gateway.listen "h:1" end,
  settings = function() return gateway.settings {} end,
}
memcache.route { default = function(name)
  local f = calls[name]
  f()
end }
]])
      assert.is_true(ok, err)
      local handler = core.calls.route[1].default
      for name, fname in pairs({ pool = "memcache.pool", internal = "memcache.internal",
        route = "memcache.route", listen = "gateway.listen", settings = "gateway.settings" }) do
        local ok2, err2 = pcall(handler, name)
        assert.is_false(ok2, name)
        assert.is_truthy(err2:find(fname .. " may only be called at config time", 1, true), err2)
      end
      assert.are.equal(0, #core.calls.pool)
      assert.are.equal(0, #core.calls.listen)
      assert.are.equal(1, #core.calls.route)
    end)

    it("names the request-time caller's line in the phase error", function()
      local ok, err, core, path = boot_config([[
memcache.route { default = function()
  local x = 1
  local p = memcache.pool { servers = { "h:1" } }
end }
]])
      assert.is_true(ok, err)
      local ok2, err2 = pcall(core.calls.route[1].default)
      assert.is_false(ok2)
      assert.are.equal(path .. ":3: memcache.pool may only be called at config time", err2)
    end)

    it("still allows gateway.log at request time", function()
      local ok, err, core = boot_config([[
memcache.route { default = function(msg) gateway.log("info", msg); print("p") end }
]])
      assert.is_true(ok, err)
      assert.is_true(pcall(core.calls.route[1].default, "late"))
      assert.are.same({ { level = "info", msg = "late" }, { level = "info", msg = "p" } },
        core.calls.log)
    end)

    it("runs the config in the sandbox", function()
      local ok, err, core = boot_config(ENV_PROBE)
      assert.is_true(ok, err)
      local env = core.calls.route[1].default()
      assert.are.equal(env, env._G)
      for _, k in ipairs({ "io", "load", "loadfile", "dofile", "debug", "package",
        "collectgarbage" }) do
        assert.is_nil(rawget(env, k), k)
      end
      assert.is_nil(env.os.execute)
      assert.are.equal(os.time, env.os.time)
      assert.is_function(env.require)
      assert.is_function(env.print)
      assert.is_table(env.gateway)
      assert.is_table(env.memcache)
      for _, k in ipairs({ "listen", "settings", "log" }) do
        assert.is_function(env.gateway[k], k)
      end
      for _, k in ipairs({ "pool", "internal", "route" }) do
        assert.is_function(env.memcache[k], k)
      end
    end)

    it("lets the config itself see no io or debug", function()
      local ok, err, core = boot_config([[
print(rawget(_G, "io"), rawget(_G, "debug"), rawget(_G, "load"), type(os.execute), type(require))
]])
      assert.is_true(ok, err)
      assert.are.equal("nil\tnil\tnil\tnil\tfunction", core.calls.log[1].msg)
    end)

    it("seals the environment after the config ran", function()
      local ok, err, core, path = boot_config([[
counter = 0
memcache.route { default = function(what)
  if what == "new" then
    brand_new = 1
  elseif what == "bump" then
    counter = counter + 1
    return counter
  else
    return counter, rawget(_G, "undefined_global")
  end
end }
]])
      assert.is_true(ok, err)
      local handler = core.calls.route[1].default
      local ok2, err2 = pcall(handler, "new")
      assert.is_false(ok2)
      local expect = path .. ":4: assignment to global 'brand_new' at request time"
      assert.are.equal(expect, err2:sub(1, #expect))
      local v, missing = handler("read")
      assert.are.equal(0, v)
      assert.is_nil(missing)
      -- Globals the config created cannot be reassigned either.
      local ok3, err3 = pcall(handler, "bump")
      assert.is_false(ok3)
      assert.is_truthy(err3:find("assignment to global 'counter' at request time", 1, true), err3)
    end)

    it("does not seal the environment before the config finished", function()
      local ok, err = boot_config([[
local function helper() made_in_function = true end
helper()
assert(made_in_function == true)
memcache.route { default = function() end }
]])
      assert.is_true(ok, err)
    end)

    describe("gateway.listen's auth", function()
      local USERS = "alice:$y$j75$ojOuLtao.0dqneIYtXqAv1$peSRkpgH9pkxFrZa9jVYWcPbE1Bt7NOjaGJRAvx951A\n"

      it("reads the users file, relative to the config's folder, and gives the core its text", function()
        write_file(TMP .. "/users", USERS)
        write_file(TMP .. "/lib/abs-users", "# absolute\n" .. USERS)
        local p = io.popen("pwd")
        local abs = p:read("l") .. "/" .. TMP .. "/lib/abs-users"
        p:close()
        local ok, err, core = boot_config(string.format([[
gateway.listen { "127.0.0.1:1", name = "sasl", auth = "users" }
gateway.listen { "127.0.0.1:2", auth = "%s", flush = "deny" }
gateway.listen "127.0.0.1:3"
]], abs))
        assert.is_true(ok, err)
        assert.are.same({
          { addr = "127.0.0.1:1", name = "sasl", auth = TMP .. "/users", auth_text = USERS },
          { addr = "127.0.0.1:2", auth = abs, auth_text = "# absolute\n" .. USERS },
          { addr = "127.0.0.1:3" },
        }, core.calls.listen)
      end)

      it("takes the text the validating load read (sources), not the disk's", function()
        write_file(TMP .. "/users", "# changed on disk since\n")
        local path = TMP .. "/sourced.lua"
        local text = 'gateway.listen { "127.0.0.1:1", auth = "users" }\n'
        write_file(path, text)
        local core = fake_core()
        local ok, err = pcall(prelude.boot, core, path, TMP .. "/lib/lua", true,
          { [path] = text, [TMP .. "/users"] = USERS })
        assert.is_true(ok, err)
        assert.are.equal(USERS, core.calls.listen[1].auth_text)
        assert.are.same({ path, TMP .. "/users" }, core.tracked)
      end)

      it("refuses an auth that is no path, a misspelled option, and a missing file, at the line", function()
        local cases = {
          { 'gateway.listen { "h:1", auth = 5 }',
            "gateway.listen: auth must be the path of a users file (a string), got 5" },
          { 'gateway.listen { "h:1", auth = "" }',
            'gateway.listen: auth must be the path of a users file (a string), got ""' },
          { 'gateway.listen { "h:1", auth = true }',
            "gateway.listen: auth must be the path of a users file (a string), got true" },
          { 'gateway.listen { "h:1", auht = "users" }', "gateway.listen: unknown option 'auht'" },
          { 'gateway.listen { "h:1", auth = "no-such-users" }',
            "gateway.listen: auth: cannot read the users file " .. TMP .. "/no-such-users" },
        }
        for _, case in ipairs(cases) do
          local ok, err, core, path = boot_config("local x = 1\n" .. case[1] .. "\n")
          assert.is_false(ok, case[1])
          local expect = path .. ":2: " .. case[2]
          assert.are.equal(expect, err:sub(1, #expect))
          assert.are.equal(0, #core.calls.listen)
        end
      end)

      it("puts the users file's path:line first when the core refuses it, then the config's line", function()
        write_file(TMP .. "/users", USERS)
        local msg = TMP .. "/users:3: user 'bob': md5crypt hashes are too weak"
        local ok, err, _, path = boot_config('local x = 1\n\ngateway.listen { "h:1", auth = "users" }\n',
          { core = { listen_error = msg } })
        assert.is_false(ok)
        assert.are.equal(msg .. " (the users file of gateway.listen at " .. path .. ":3)", err)
      end)

      it("refuses listeners that share a label but not their auth", function()
        write_file(TMP .. "/users", USERS)
        write_file(TMP .. "/users2", USERS)
        local ok, err, _, path = boot_config([[
gateway.listen { "127.0.0.1:1", name = "t", auth = "users" }
gateway.listen { "[::1]:1", name = "t" }
]])
        assert.is_false(ok)
        assert.are.equal(path .. ':2: gateway.listen: the listeners labelled "t" must have the same auth '
          .. '(auth = "' .. TMP .. '/users" at ' .. path .. ":1)", err)
        ok, err = boot_config([[
gateway.listen { "127.0.0.1:1", name = "t" }
gateway.listen { "[::1]:1", name = "t", auth = "users2" }
]])
        assert.is_false(ok)
        assert.is_truthy(err:find("must have the same auth (no auth at ", 1, true), err)
        -- the same file twice is one auth
        ok, err = boot_config([[
gateway.listen { "127.0.0.1:1", name = "t", auth = "users" }
gateway.listen { "[::1]:1", name = "t", auth = "users" }
gateway.listen { "127.0.0.1:2", name = "u" }
gateway.listen { "127.0.0.1:3", name = "u" }
]])
        assert.is_true(ok, err)
      end)
    end)

    describe("require", function()
      it("loads a module next to the config, in the sandbox", function()
        write_file(TMP .. "/mod.lua", [[
local name = ...
MOD_LOADS = (rawget(_G, "MOD_LOADS") or 0) + 1
return { name = name, io = rawget(_G, "io"), debug = rawget(_G, "debug"),
  load = rawget(_G, "load"), gw = gateway, loads = MOD_LOADS }
]])
        local ok, err, core = boot_config([[
local m = require("mod")
local again = require "mod"
assert(m == again, "require did not cache")
memcache.route { default = function() return m, MOD_LOADS, gateway end }
]])
        assert.is_true(ok, err)
        local m, loads, gw = core.calls.route[1].default()
        assert.are.equal("mod", m.name)
        assert.is_nil(m.io)
        assert.is_nil(m.debug)
        assert.is_nil(m.load)
        assert.are.equal(gw, m.gw)
        assert.are.equal(1, loads)
      end)

      it("searches lua_dir and the scripts folder next to it", function()
        write_file(TMP .. "/lib/lua/libmod.lua", "return 'from lua_dir'\n")
        write_file(TMP .. "/lib/scripts/scriptmod.lua", "return 'from scripts'\n")
        write_file(TMP .. "/lib/lua/pkg/init.lua", "return 'pkg init'\n")
        write_file(TMP .. "/lib/lua/pkg/sub.lua", "return 'pkg.sub'\n")
        local ok, err, core = boot_config([[
local r = { require "libmod", require "scriptmod", require "pkg", require "pkg.sub" }
memcache.route { default = function() return r end }
]])
        assert.is_true(ok, err)
        assert.are.same({ "from lua_dir", "from scripts", "pkg init", "pkg.sub" },
          core.calls.route[1].default())
      end)

      it("prefers the config's folder to lua_dir", function()
        write_file(TMP .. "/lib/lua/shadow.lua", "return 'lua_dir'\n")
        write_file(TMP .. "/shadow.lua", "return 'config dir'\n")
        local ok, err, core = boot_config([[
local v = require "shadow"
memcache.route { default = function() return v end }
]])
        assert.is_true(ok, err)
        assert.are.equal("config dir", core.calls.route[1].default())
      end)

      it("returns true for a module that returns nothing", function()
        write_file(TMP .. "/quiet.lua", "QUIET_RAN = true\n")
        local ok, err, core = boot_config([[
local v = require "quiet"
memcache.route { default = function() return v, QUIET_RAN end }
]])
        assert.is_true(ok, err)
        local v, ran = core.calls.route[1].default()
        assert.is_true(v)
        assert.is_true(ran)
      end)

      it("reports a missing module at the requiring line", function()
        local ok, err, _, path = boot_config('local x = 1\nlocal m = require "no_such_module"\n')
        assert.is_false(ok)
        local expect = path .. ":2: module 'no_such_module' not found in "
        assert.are.equal(expect, err:sub(1, #expect))
        assert.is_truthy(err:find(TMP .. "/lib/lua", 1, true), err)
        assert.is_truthy(err:find(TMP .. "/lib/scripts", 1, true), err)
      end)

      it("rejects a non-string name", function()
        local ok, err = boot_config("require(42)\n")
        assert.is_false(ok)
        assert.is_truthy(err:find("bad argument #1 to 'require' (string expected)", 1, true), err)
      end)

      it("reports errors inside a module at the module's path:line", function()
        write_file(TMP .. "/broken_syntax.lua", "local a =\n")
        write_file(TMP .. "/broken_runtime.lua", "local t\nreturn t.x\n")
        local ok, err = boot_config('require "broken_syntax"\n')
        assert.is_false(ok)
        assert.are.equal(TMP .. "/broken_syntax.lua:", err:sub(1, #TMP + 19), err)
        ok, err = boot_config('require "broken_runtime"\n')
        assert.is_false(ok)
        assert.are.equal(TMP .. "/broken_runtime.lua:2:", err:sub(1, #TMP + 22), err)
      end)

      it("does not let dots in a name climb out of the search folders", function()
        write_file(TMP .. "/lib/secret.lua", "return 'escaped'\n")
        local ok, err = boot_config('require "..secret"\n',
          { lua_dir = TMP .. "/lib/lua" })
        assert.is_false(ok)
        assert.is_truthy(err:find("module '..secret' not found", 1, true), err)
      end)
    end)
  end)
end)
