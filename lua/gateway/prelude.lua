-- prelude.lua -- the config-time API and the sandbox, on top of the core's
-- primitives.
--
-- The core loads this file into a fresh Lua state with the standard
-- libraries and calls the function it returns:
--     boot(core, config_path, lua_dir, live, sources)
-- It builds the `gateway` and `memcache` tables, validates what the config
-- passes them (errors name the config's file:line), runs the config in a
-- sandboxed environment, and then seals that environment so that request
-- code cannot create globals.
--
-- Files are read once per load: `sources` (path -> text) holds what the
-- main thread read when it validated this config, so every worker runs the
-- same bytes; without it the files are read from disk.  Each file loaded
-- is reported to the core with its text (core.track).  Defaults and the
-- hash names come from the core (core.defaults, core.hashes), which is the
-- one place they are written.
local string, table, math, utf8, os = string, table, math, utf8, os
local debug, type, pairs, ipairs, tostring, tonumber, select, error, setmetatable,
      getmetatable, rawget, rawset, pcall, loadfile, next =
      debug, type, pairs, ipairs, tostring, tonumber, select, error, setmetatable,
      getmetatable, rawget, rawset, pcall, loadfile, next

local PRELUDE = debug.getinfo(1, "S").source

local M = {}

-- "file:line: " of the innermost config (non-prelude) Lua frame.
local function where()
  for level = 2, 64 do
    local info = debug.getinfo(level, "Sl")
    if not info then break end
    if info.what ~= "C" and info.source ~= PRELUDE and info.currentline > 0 then
      local src = info.source:sub(1, 1) == "@" and info.source:sub(2) or info.short_src
      return src .. ":" .. info.currentline .. ": "
    end
  end
  return ""
end

local function config_error(fmt, ...)
  error(where() .. string.format(fmt, ...), 0)
end
M.config_error = config_error

-- "64MB", "1 MiB", "512k", 1048576 -> bytes
local UNITS = { [""] = 1, b = 1, k = 1024, kb = 1024, kib = 1024, m = 1024 ^ 2,
  mb = 1024 ^ 2, mib = 1024 ^ 2, g = 1024 ^ 3, gb = 1024 ^ 3, gib = 1024 ^ 3 }

function M.parse_size(v)
  if type(v) == "number" then
    if v >= 0 and v == math.floor(v) and math.tointeger(v) then return math.tointeger(v) end
    return nil, "a size must be a whole number of bytes"
  end
  if type(v) ~= "string" then return nil, "a size must be a number or a string like \"64MB\"" end
  local num, unit = v:match("^%s*(%d+%.?%d*)%s*(%a*)%s*$")
  local mult = unit and UNITS[unit:lower()]
  if not num or not mult then return nil, "bad size '" .. v .. "' (try \"64MB\")" end
  local n = math.tointeger(math.floor(tonumber(num) * mult))
  if not n then return nil, "size '" .. v .. "' is too large" end
  return n
end

local function check_table(fname, t, allowed)
  if type(t) ~= "table" then config_error("%s expects a table, got %s", fname, type(t)) end
  for k in pairs(t) do
    if type(k) == "string" and not allowed[k] then
      config_error("%s: unknown option '%s'", fname, k)
    end
  end
end

local function set_of(...)
  local s = {}
  for _, v in ipairs({ ... }) do s[v] = true end
  return s
end

-- Filled by boot from the core: the hash names, and the defaults of
-- settings and pool options.
local HASHES, HASH_LIST = {}, {}
local DEFAULTS = { settings = {}, pool = {} }
M.DEFAULTS = DEFAULTS
local FAILOVERS = set_of("none", "rehash", "next")
local POOL_OPTS = set_of("servers", "hash", "timeout", "connect_timeout", "retry_timeout",
  "failure_limit", "max_queue", "failover", "multiget_errors", "name", "python_memcached",
  "hash_tag", "hash_namespace", "protocol", "tls")
local POOL_TLS_OPTS = set_of("ca", "cert", "key", "server_name", "verify")
local SERVER_OPTS = set_of("addr", "weight", "timeout", "connect_timeout")

local function check_seconds(fname, what, v, allow_zero)
  if v == nil then return end
  if type(v) ~= "number" or v ~= v or v < 0 or (v == 0 and not allow_zero) or v == math.huge then
    config_error("%s: %s must be a %s number of seconds", fname, what,
      allow_zero and "non-negative" or "positive")
  end
end

-- "host:port" with a port from 1 to 65535; what names it in errors.
local function valid_addr(addr)
  if type(addr) ~= "string" then return false end
  local port = tonumber(addr:match("^.+:(%d+)$"))
  return port ~= nil and port >= 1 and port <= 65535
end

local function check_addr(fname, addr)
  if not valid_addr(addr) then
    config_error("%s: server address must be \"host:port\" (port 1 to 65535), got %s", fname,
      tostring(addr))
  end
end

-- Validate a memcache.pool{} spec and turn it into what core.pool takes.
function M.pool_spec(opts)
  local fname = "memcache.pool"
  check_table(fname, opts, POOL_OPTS)
  local servers = opts.servers
  if type(servers) ~= "table" or #servers == 0 then
    config_error("%s: 'servers' must be a non-empty list", fname)
  end
  local list = {}
  for i, s in ipairs(servers) do
    local addr, weight, stimeout, sconnect = s, 1, nil, nil
    if type(s) == "table" then
      for k in pairs(s) do
        if type(k) == "string" and not SERVER_OPTS[k] then
          config_error("%s: server %d: unknown option '%s'", fname, i, k)
        end
      end
      addr, weight, stimeout, sconnect = s[1] or s.addr, s.weight or 1, s.timeout, s.connect_timeout
    end
    check_addr(fname, addr)
    if math.type(weight) ~= "integer" or weight < 1 then
      config_error("%s: server %d: weight must be an integer >= 1", fname, i)
    end
    check_seconds(fname, "server " .. i .. ": timeout", stimeout)
    check_seconds(fname, "server " .. i .. ": connect_timeout", sconnect)
    list[i] = { addr = addr, weight = weight, timeout = stimeout, connect_timeout = sconnect }
  end
  local hash = opts.hash or HASH_LIST[1]
  if not HASHES[hash] then
    config_error("%s: unknown hash '%s' (%s)", fname, tostring(hash), table.concat(HASH_LIST, ", "))
  end
  local failover = opts.failover or "none"
  if not FAILOVERS[failover] then
    config_error("%s: unknown failover '%s' (none, rehash or next)", fname, tostring(failover))
  end
  local pd = DEFAULTS.pool
  local timeout = opts.timeout or pd.timeout
  if type(timeout) ~= "number" or not (timeout > 0) then
    config_error("%s: timeout must be a positive number of seconds", fname)
  end
  local retry = opts.retry_timeout or pd.retry_timeout
  if type(retry) ~= "number" or not (retry >= 0) then
    config_error("%s: retry_timeout must be a number of seconds >= 0", fname)
  end
  check_seconds(fname, "connect_timeout", opts.connect_timeout)
  for _, k in ipairs({ "failure_limit", "max_queue" }) do
    local v = opts[k]
    if v ~= nil and (math.type(v) ~= "integer" or v < (k == "max_queue" and 0 or 1)) then
      config_error("%s: %s must be an integer >= %d", fname, k, k == "max_queue" and 0 or 1)
    end
  end
  local mg = opts.multiget_errors or "miss"
  if mg ~= "miss" and mg ~= "error" then
    config_error("%s: multiget_errors must be \"miss\" or \"error\"", fname)
  end
  local pyver = opts.python_memcached or "1.59"
  if pyver ~= "1.59" and pyver ~= "1.60" then
    config_error("%s: python_memcached must be \"1.59\" or \"1.60\"", fname)
  end
  local tag = opts.hash_tag
  if tag ~= nil and (type(tag) ~= "string" or #tag ~= 2) then
    config_error("%s: hash_tag must be a string of two characters, like \"{}\"", fname)
  end
  local ns = opts.hash_namespace
  if ns ~= nil and (type(ns) ~= "string" or ns == "" or #ns > 249 or ns:find("[%c ]")) then
    config_error("%s: hash_namespace must be a key prefix (1 to 249 bytes, no spaces or control bytes), like \"memc.sess.key.\"", fname)
  end
  local protocol = opts.protocol or "meta"
  if protocol ~= "meta" and protocol ~= "text" then
    config_error("%s: protocol must be \"meta\" or \"text\"", fname)
  end
  -- tls: checked here; its files are read by memcache.pool (pool_tls_files)
  local tls = nil
  if opts.tls ~= nil then
    local t = opts.tls
    if type(t) ~= "table" then config_error("%s: tls must be a table, got %s", fname, type(t)) end
    check_table(fname .. ": tls", t, POOL_TLS_OPTS)
    tls = { verify = t.verify == nil or t.verify, server_name = t.server_name }
    if type(tls.verify) ~= "boolean" then config_error("%s: tls: verify must be true or false", fname) end
    if tls.server_name ~= nil and (type(tls.server_name) ~= "string" or tls.server_name == "") then
      config_error("%s: tls: server_name must be a host name (a string)", fname)
    end
    for _, k in ipairs({ "ca", "cert", "key" }) do
      local v = t[k]
      if v ~= nil and (type(v) ~= "string" or v == "") then
        config_error("%s: tls: %s must be the path of a PEM file (a string), got %s", fname, k, tostring(v))
      end
      tls[k] = v
    end
    if (tls.cert == nil) ~= (tls.key == nil) then
      config_error("%s: tls: cert and key go together (a client certificate)", fname)
    end
  end
  return { name = opts.name or list[1].addr, servers = list, hash = hash,
    legacy = pyver == "1.59", timeout = timeout, retry_timeout = retry, failover = failover,
    hash_tag = tag, hash_namespace = ns, connect_timeout = opts.connect_timeout,
    failure_limit = opts.failure_limit or pd.failure_limit, max_queue = opts.max_queue or pd.max_queue,
    multiget_errors = mg, text_only = protocol == "text", tls = tls }
end

local LISTEN_OPTS = set_of("addr", "name", "flush", "stats", "auth", "tls")
local LISTEN_TLS_OPTS = set_of("cert", "key", "ca", "verify", "min_version")
local TLS_VERIFY = set_of("none", "optional", "required")
local TLS_VERSIONS = set_of("1.2", "1.3")
local ADMIN_OPTS = set_of("addr", "tls", "token", "token_file")
local FLUSH_MODES = set_of("all", "deny", "routed")
local STATS_MODES = set_of("all", "read", "deny")

local SETTINGS = set_of("threads", "max_value_size", "max_line", "max_connections",
  "instruction_limit", "binary_keys", "max_pending", "max_output", "shutdown_timeout",
  "route_timeout", "task_limit", "max_tasks", "lua_memory_limit", "max_client_memory")

function M.settings_spec(opts)
  check_table("gateway.settings", opts, SETTINGS)
  local out = {}
  if opts.threads ~= nil then
    if math.type(opts.threads) ~= "integer" or opts.threads < 1 or opts.threads > 256 then
      config_error("gateway.settings: threads must be an integer from 1 to 256")
    end
    out.threads = opts.threads
  end
  for _, k in ipairs({ "max_value_size", "max_line", "max_output", "max_client_memory" }) do
    if opts[k] ~= nil then
      local n, err = M.parse_size(opts[k])
      if not n or n < 1 then config_error("gateway.settings: %s: %s", k, err or "must be > 0") end
      out[k] = n
    end
  end
  if opts.lua_memory_limit ~= nil then -- 0: no limit
    local n, err = M.parse_size(opts.lua_memory_limit)
    if not n then config_error("gateway.settings: lua_memory_limit: %s", err) end
    out.lua_memory_limit = n
  end
  for _, k in ipairs({ "max_connections", "instruction_limit", "task_limit", "max_tasks" }) do
    if opts[k] ~= nil then
      if math.type(opts[k]) ~= "integer" or opts[k] < 0 then
        config_error("gateway.settings: %s must be an integer >= 0", k)
      end
      out[k] = opts[k]
    end
  end
  if opts.max_pending ~= nil then
    if math.type(opts.max_pending) ~= "integer" or opts.max_pending < 1 then
      config_error("gateway.settings: max_pending must be an integer >= 1")
    end
    out.max_pending = opts.max_pending
  end
  for _, k in ipairs({ "shutdown_timeout", "route_timeout" }) do
    local v = opts[k]
    if v ~= nil then
      if type(v) ~= "number" or not (v >= 0) or v == math.huge then
        config_error("gateway.settings: %s must be a number of seconds >= 0", k)
      end
      out[k] = v
    end
  end
  if opts.binary_keys ~= nil then
    if type(opts.binary_keys) ~= "boolean" then
      config_error("gateway.settings: binary_keys must be true or false")
    end
    out.binary_keys = opts.binary_keys
  end
  return out
end

-- memcache.route{ ["prefix"] = target, default = target } -> list, default
function M.route_spec(t, is_pool)
  if type(t) ~= "table" then config_error("memcache.route expects a table") end
  local list, default = {}, nil
  for k, target in pairs(t) do
    if not (is_pool(target) or type(target) == "function") then
      config_error("memcache.route: the target of '%s' must be a pool or a function, got %s",
        tostring(k), type(target))
    end
    if k == "default" then
      default = target
    elseif type(k) == "string" then
      list[#list + 1] = { k, target }
    else
      config_error("memcache.route: keys must be prefix strings or 'default', got %s", type(k))
    end
  end
  table.sort(list, function(a, b) return a[1] < b[1] end)
  return list, default
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

local SAFE_GLOBALS = { "assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal",
  "rawget", "rawlen", "rawset", "select", "setmetatable", "getmetatable", "tonumber",
  "tostring", "type", "xpcall", "_VERSION" }

-- Reading a global nobody defined is a mistake (a misspelled pool or
-- function), not a nil: it raises, naming the caller's file:line.  Code
-- that means to test for a global uses rawget(_G, name).
local STRICT = {
  __index = function(_, k)
    error("undefined global '" .. tostring(k) .. "'", 2)
  end,
}

-- setmetatable without finalizers: a __gc runs during garbage collection,
-- outside any request, where no budget or deadline can stop it (Lua turns
-- hooks off in finalizers), so a metatable with one is refused.  (Lua
-- marks an object for finalization only if its metatable has __gc when it
-- is set, so a __gc added later never runs.)
local function safe_setmetatable(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("setmetatable: __gc metamethods are not allowed (a finalizer runs outside any " ..
      "request, where nothing can bound it)", 2)
  end
  return setmetatable(t, mt)
end

-- The environment config and route code run in: an allow-list, with no
-- os.execute, io, load of strings, dofile or debug.  Reading an undefined
-- global raises.
function M.make_env(api)
  local env = {}
  for _, k in ipairs(SAFE_GLOBALS) do env[k] = _G[k] end
  env.setmetatable = safe_setmetatable
  env.string, env.table, env.math, env.utf8 = copy(string), copy(table), copy(math), copy(utf8)
  env.os = { time = os.time, clock = os.clock, date = os.date, difftime = os.difftime }
  for k, v in pairs(api) do env[k] = v end
  env._G = env
  -- rawset(_G, ...) would slip past the seal at request time
  env.rawset = function(t, k, v)
    if t == env and getmetatable(env) == "sealed" then
      error("rawset on the globals at request time (use a local, or req.conn)", 2)
    end
    return rawset(t, k, v)
  end
  return setmetatable(env, STRICT)
end

-- From now on (request time) no global may be assigned: a global shared by
-- concurrent requests is a race.  The globals move to a backing table the
-- env reads through, so that every assignment, to a new name or an old one,
-- reaches __newindex and raises.  The metatable is protected, so request
-- code cannot lift the seal with setmetatable.
function M.seal(env)
  local globals = setmetatable({}, STRICT)
  for k, v in pairs(env) do rawset(globals, k, v) end
  for k in pairs(globals) do rawset(env, k, nil) end
  setmetatable(env, {
    __index = globals,
    __newindex = function(_, k)
      error("assignment to global '" .. tostring(k) ..
        "' at request time (use a local, or req.conn for per-connection state)", 2)
    end,
    __metatable = "sealed",
  })
end

-- What the core knows and the prelude must not restate: the hash names and
-- the defaults.  boot calls this; a test that uses pool_spec alone calls it
-- with a stub core.
function M.use_core(core)
  HASH_LIST = core.hashes()
  HASHES = set_of(table.unpack(HASH_LIST))
  local d = core.defaults()
  DEFAULTS.settings, DEFAULTS.pool, DEFAULTS.internal_size = d.settings, d.pool, d.internal_size
end

-- A file reader for one load: a file's text comes from `sources` (what the
-- validating load read) when it has the file, else from disk through the
-- core, which keeps it.  Returns text, or nil and the reason.
local function make_reader(core, sources)
  return function(path)
    if sources and sources[path] then
      core.track(path, sources[path])
      return sources[path]
    end
    return core.read(path)
  end
end

-- Load path's text (from read) as a chunk of env.
local function load_file(read, path, env)
  local text, err = read(path)
  if not text then error("cannot open " .. err, 0) end
  local chunk, lerr = load(text, "@" .. path, "t", env)
  if not chunk then error(lerr, 0) end
  return chunk
end

-- A require that loads Lua files (text only) from the config's folder,
-- lua/ and scripts/, into the sandbox.  With sources, a module is looked
-- for there first, so a worker loads exactly the file its validation did.
local function make_require(env, dirs, read, sources, at_request_time)
  local loaded = {}
  local function candidates(name)
    local rel, list = name:gsub("%.", "/"), {}
    for _, dir in ipairs(dirs) do
      for _, pat in ipairs({ "%s/%s.lua", "%s/%s/init.lua" }) do
        list[#list + 1] = string.format(pat, dir, rel)
      end
    end
    return list
  end
  local function find(list)
    for _, path in ipairs(list) do
      if sources and sources[path] then return path end
    end
    for _, path in ipairs(list) do
      local f = io.open(path, "r")
      if f then
        f:close()
        return path
      end
    end
  end
  return function(name)
    if type(name) ~= "string" then error("bad argument #1 to 'require' (string expected)", 2) end
    if loaded[name] ~= nil then return loaded[name] end
    -- No file is read at request time (it would block every request of
    -- the worker): modules are loaded by the config.
    if at_request_time() then
      error(string.format("module '%s' was not loaded at config time (require it at the " ..
        "config's top level)", name), 2)
    end
    local path = find(candidates(name))
    if not path then
      error(string.format("module '%s' not found in %s", name, table.concat(dirs, ", ")), 2)
    end
    local v = load_file(read, path, env)(name)
    if v == nil then v = true end
    loaded[name] = v
    return v
  end
end

function M.boot(core, config_path, lua_dir, live, sources)
  M.use_core(core)
  local phase = "config"
  local function config_only(fname)
    if phase ~= "config" then
      error(fname .. " may only be called at config time", 3)
    end
  end
  local function is_pool(v)
    local mt = getmetatable(v)
    return type(v) == "userdata" and mt and mt.__name == "memcache.pool"
  end
  local function call_core(f, ...)
    local ok, res = pcall(f, ...)
    if not ok then config_error("%s", tostring(res):gsub("^[^:]*:%d+: ", "")) end
    return res
  end

  local gateway, memcache = {}, {}
  -- The config's folder (where require looks first, and what a relative
  -- users file is relative to), and this load's file reader.
  local config_dir = config_path:match("^(.*)/[^/]*$") or "."
  local read = make_reader(core, sources)

  -- Listeners are given to the core once the config has run, when the
  -- routes that flush = "routed" looks at are known.
  local listens, routes = {}, nil
  local auth_by_label = {} -- label -> { path, where } of the first listener with it

  local function is_pool_list(v)
    if type(v) ~= "table" or #v == 0 then return false end
    for _, p in ipairs(v) do
      if not is_pool(p) then return false end
    end
    return true
  end

  -- A file a config names (a users file, a certificate): its path relative
  -- to the config's folder unless absolute, and its text, read now (so once
  -- per load, and watched).
  local function config_file(path)
    local full = (path:sub(1, 1) == "/" or config_dir == ".") and path or (config_dir .. "/" .. path)
    return full, read(full)
  end

  -- A listener's tls table (gateway.listen's and gateway.admin's: fname
  -- says whose), checked, with the files' texts; the core builds the TLS
  -- context from it.
  local function listen_tls(t, fname)
    if type(t) ~= "table" then config_error("%s must be a table, got %s", fname, type(t)) end
    check_table(fname, t, LISTEN_TLS_OPTS)
    local out = { verify = t.verify or "none", min_version = t.min_version or "1.2" }
    if not TLS_VERIFY[out.verify] then
      config_error("%s: verify must be \"none\", \"optional\" or \"required\", got %s", fname,
        tostring(t.verify))
    end
    if not TLS_VERSIONS[out.min_version] then
      config_error("%s: min_version must be \"1.2\" or \"1.3\", got %s", fname, tostring(t.min_version))
    end
    for _, k in ipairs({ "cert", "key", "ca" }) do
      local v = t[k]
      if v ~= nil then
        if type(v) ~= "string" or v == "" then
          config_error("%s: %s must be the path of a PEM file (a string), got %s", fname, k, tostring(v))
        end
        local path, text, err = config_file(v)
        if not text then config_error("%s: cannot read the %s file %s", fname, k, err) end
        out[k], out[k .. "_text"] = path, text
      end
    end
    if not out.cert or not out.key then config_error("%s: cert and key are required", fname) end
    if out.verify ~= "none" and not out.ca then
      config_error("%s: verify = %q needs ca (the CAs that sign client certificates)", fname, out.verify)
    end
    return out
  end

  function gateway.listen(spec)
    config_only("gateway.listen")
    local addr, name, flush, stats, auth, tls = spec, nil, "all", "all", nil, nil
    if type(spec) == "table" then
      check_table("gateway.listen", spec, LISTEN_OPTS)
      addr, name = spec[1] or spec.addr, spec.name
      flush, stats, auth = spec.flush or "all", spec.stats or "all", spec.auth
      if spec.tls ~= nil then tls = listen_tls(spec.tls, "gateway.listen: tls") end
    end
    if not valid_addr(addr) then
      config_error("gateway.listen: address must be \"host:port\" (port 1 to 65535), got %s",
        tostring(addr))
    end
    if name ~= nil and type(name) ~= "string" then
      config_error("gateway.listen: name must be a string")
    end
    if is_pool(flush) then flush = { flush } end
    if not (FLUSH_MODES[flush] or is_pool_list(flush)) then
      config_error("gateway.listen: flush must be \"all\", \"deny\", \"routed\", a pool or " ..
        "a list of pools, got %s", tostring(flush))
    end
    if not STATS_MODES[stats] then
      config_error("gateway.listen: stats must be \"all\", \"read\" or \"deny\", got %s",
        tostring(stats))
    end
    -- auth: a users file, relative to the config's folder unless absolute;
    -- read now (so it is read once per load, and watched), parsed by the
    -- core when the listener is made.
    local auth_path, auth_text
    if auth ~= nil then
      if type(auth) ~= "string" or auth == "" then
        config_error("gateway.listen: auth must be the path of a users file (a string), got %s",
          type(auth) == "string" and "\"\"" or tostring(auth))
      end
      auth_path = (auth:sub(1, 1) == "/" or config_dir == ".") and auth or (config_dir .. "/" .. auth)
      local text, err = read(auth_path)
      if not text then config_error("gateway.listen: auth: cannot read the users file %s", err) end
      auth_text = text
    end
    -- Listeners that share a label (a name, or an address) are one to the
    -- core: they must agree on auth, or one would let in whom the other
    -- keeps out.
    local label = name or addr
    local seen = auth_by_label[label]
    if seen and seen.path ~= auth_path then
      config_error("gateway.listen: the listeners labelled %q must have the same auth (%s at %s)",
        label, seen.path and ("auth = " .. string.format("%q", seen.path)) or "no auth", seen.where)
    end
    auth_by_label[label] = seen or { path = auth_path, where = (where():gsub(": $", "")) }
    listens[#listens + 1] = { addr = addr, name = name, flush = flush, stats = stats,
      auth = auth_path, auth_text = auth_text, tls = tls, where = where() }
  end

  -- flush = "routed": the pools the route table names.  A route function's
  -- pools cannot be known, so then the pools must be listed.
  local function routed_pools(l)
    local pools, seen = {}, {}
    local function add(target)
      if not is_pool(target) then
        error(l.where .. "gateway.listen: flush = \"routed\" cannot see which pools a route " ..
          "function reaches; list them: flush = { pool, ... }", 0)
      end
      if not seen[target] then
        seen[target] = true
        pools[#pools + 1] = target
      end
    end
    for _, entry in ipairs(routes and routes.list or {}) do add(entry[2]) end
    if routes and routes.default ~= nil then add(routes.default) end
    return pools
  end

  -- A bearer token (RFC 6750's b64token: what an Authorization header
  -- carries as it is), inline or from a file of its own (operators keep
  -- secrets out of configs; one trailing line break is not part of it).
  local function admin_token(spec)
    local fname = "gateway.admin"
    if spec.token ~= nil and spec.token_file ~= nil then
      config_error("%s: token and token_file: give one of them", fname)
    end
    local token, from = spec.token, "token"
    if spec.token_file ~= nil then
      local v = spec.token_file
      if type(v) ~= "string" or v == "" then
        config_error("%s: token_file must be the path of a file (a string), got %s", fname, tostring(v))
      end
      local path, text, err = config_file(v)
      if not text then config_error("%s: cannot read the token_file %s", fname, err) end
      token, from = text:gsub("\r?\n$", ""), "token_file " .. path
    end
    if token == nil then return nil end
    if type(token) ~= "string" or token == "" then
      config_error("%s: %s must be a non-empty string, got %s", fname, from,
        type(token) == "string" and "\"\"" or tostring(token))
    end
    if not token:match("^[%w%-%._~%+/]+=*$") then
      config_error("%s: %s: a token is letters, digits and - . _ ~ + / (then = padding), " ..
        "as a bearer token must be", fname, from)
    end
    return token
  end

  local admin_where = nil
  -- gateway.admin "host:port", or a port on loopback, or a table with the
  -- address first and tls (gateway.listen's) and token or token_file: the
  -- HTTP admin listener (metrics, health, config, route lookup, reload,
  -- servers).
  function gateway.admin(spec)
    config_only("gateway.admin")
    local tls, token = nil, nil
    if type(spec) == "table" then
      check_table("gateway.admin", spec, ADMIN_OPTS)
      local t = spec
      spec = t[1] or t.addr
      if t.tls ~= nil then tls = listen_tls(t.tls, "gateway.admin: tls") end
      token = admin_token(t)
    end
    -- a port alone, as a number or as a string of digits ("9100"), is on
    -- loopback; anything else must be "host:port"
    local port_only = math.type(spec) == "integer"
      or (type(spec) == "string" and spec:match("^%d+$") ~= nil)
    local addr = port_only and ("127.0.0.1:" .. spec) or spec
    if not valid_addr(addr) then
      config_error("gateway.admin: address must be \"host:port\" or a port (1 to 65535), got %s",
        tostring(spec))
    end
    if admin_where then
      config_error("gateway.admin: already given at %s", admin_where)
    end
    admin_where = (where():gsub(": $", ""))
    -- A bad certificate: "server.pem: what is wrong (the tls of
    -- gateway.admin at gateway.lua:3)", as gateway.listen's.
    local ok, err = pcall(core.admin, addr, tls, token)
    if not ok then
      err = tostring(err)
      if err:match("^tls: ") then
        error((err:gsub("^tls: ", "")) .. " (the tls of gateway.admin at " .. admin_where .. ")", 0)
      end
      config_error("%s", (err:gsub("^[^:]*:%d+: ", "")))
    end
  end

  function memcache.keyless(fn)
    config_only("memcache.keyless")
    if type(fn) ~= "function" then
      config_error("memcache.keyless expects a function, got %s", type(fn))
    end
    core.keyless(fn)
  end

  function gateway.settings(opts)
    config_only("gateway.settings")
    core.settings(M.settings_spec(opts))
  end

  function gateway.log(level, ...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    core.log(level, table.concat(parts, "\t"))
  end

  function memcache.pool(opts)
    config_only("memcache.pool")
    local spec = M.pool_spec(opts)
    if spec.tls then
      for _, k in ipairs({ "ca", "cert", "key" }) do
        if spec.tls[k] then
          local path, text, err = config_file(spec.tls[k])
          if not text then config_error("memcache.pool: tls: cannot read the %s file %s", k, err) end
          spec.tls[k], spec.tls[k .. "_text"] = path, text
        end
      end
    end
    return call_core(core.pool, spec)
  end

  function memcache.internal(opts)
    config_only("memcache.internal")
    opts = opts or {}
    check_table("memcache.internal", opts, set_of("size"))
    local size, err = M.parse_size(opts.size or DEFAULTS.internal_size)
    if not size or size < 1 then config_error("memcache.internal: size: %s", err or "must be > 0") end
    return call_core(core.internal, size)
  end

  function memcache.route(t)
    config_only("memcache.route")
    local list, default = M.route_spec(t, is_pool)
    routes = { list = list, default = default }
    if default == nil then
      core.log("warn", where() .. "memcache.route has no default: a key that matches no " ..
        "prefix is answered SERVER_ERROR no route for key")
    end
    core.route(list, default)
  end

  memcache.valid_key = core.valid_key
  -- Request time: responses, fan-out (wait, spawn), crc32.  Backend calls
  -- are methods of the pools themselves.
  for k, v in pairs(core.request_api or {}) do memcache[k] = v end

  local root = lua_dir:gsub("/lua/?$", "")
  local env = M.make_env({ gateway = gateway, memcache = memcache })
  env.print = function(...) gateway.log("info", ...) end
  env.require = make_require(env, { config_dir, lua_dir, root .. "/scripts" }, read, sources,
    function() return phase == "request" end)

  load_file(read, config_path, env)()
  for _, l in ipairs(listens) do
    local flush = l.flush == "routed" and routed_pools(l) or l.flush
    if l.auth or l.tls then
      -- A bad users file: "users:3: what is wrong", then where it was named;
      -- a bad certificate: "server.pem: what is wrong", the same way.
      local ok, err = pcall(core.listen, l.addr, l.name, flush, l.stats, l.auth, l.auth_text, l.tls)
      if not ok then
        err = tostring(err)
        local what = err:match("^tls: ") and "tls" or "users file"
        error((err:gsub("^tls: ", "")) .. " (the " .. what .. " of gateway.listen at " ..
          l.where:gsub(": $", "") .. ")", 0)
      end
    else
      core.listen(l.addr, l.name, flush, l.stats)
    end
  end
  phase = "request"
  M.seal(env)
end

return setmetatable(M, { __call = function(_, ...) return M.boot(...) end })
