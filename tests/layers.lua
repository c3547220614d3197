-- layers.lua -- check that core/ keeps its layers (run by `make test`).
--
--   lua5.4 tests/layers.lua [core]
--
-- Each folder of core/ is a layer with a rank.  A file may include headers
-- of its own folder and of folders ranked strictly lower; never a higher or
-- an equal-ranked other folder.  So the folder graph has no cycle and no
-- arrow up.  Inside a folder, modules (x.c + x.h) may not include each
-- other in a circle of more than two: two files that are one module split
-- in two (script/lhost.c and script/ltask.c share lhost_priv.h) are the
-- most a circle may hold.  Two libraries are fenced in: only base/loop.c
-- sees libev, and only script/ sees Lua.
--
-- Exits 1 and names each offending include; adding a folder means adding
-- it to RANK below, where its place in the order is decided once.

local RANK = {
  base = 0,                           -- status log loop net buf conn
  codec = 1, place = 1, store = 1,    -- parsers and reply table, hashes, the cache
  rt = 2,                             -- per-thread runtime, counters, settings
  proxy = 3,                          -- req backend pool router internal resolver
  front = 4, script = 4,              -- clients, codecs, admin | the Lua host
  server = 5,                         -- worker reload main
}

-- System headers only some places may include.
local FENCES = {
  { pattern = "^ev%.h$", allowed = function(path) return path == "base/loop.c" end,
    why = "only base/loop.c sees libev (loop.h is the event loop)" },
  { pattern = "^lua", allowed = function(path) return path:match("^script/") end,
    why = "only script/ sees Lua" },
  { pattern = "^lauxlib%.h$", allowed = function(path) return path:match("^script/") end,
    why = "only script/ sees Lua" },
}

local root = arg[1] or "core"
local failures = {}
local function fail(fmt, ...) failures[#failures + 1] = string.format(fmt, ...) end

local function list_files()
  local p = assert(io.popen("cd '" .. root .. "' && find . -name '*.[ch]' | sort"))
  local files = {}
  for line in p:lines() do files[#files + 1] = line:gsub("^%./", "") end
  p:close()
  return files
end

local function includes(path)
  local f = assert(io.open(root .. "/" .. path))
  local quoted, system, n = {}, {}, 0
  for line in f:lines() do
    n = n + 1
    local q = line:match('^%s*#%s*include%s+"([^"]+)"')
    if q then quoted[#quoted + 1] = { name = q, line = n } end
    local s = line:match("^%s*#%s*include%s+<([^>]+)>")
    if s then system[#system + 1] = { name = s, line = n } end
  end
  f:close()
  return quoted, system
end

local files = list_files()
local edges = {}      -- module -> set of modules, within a folder
local nfolders_edges = 0

for _, path in ipairs(files) do
  local folder, base = path:match("^([^/]+)/(.+)$")
  if not folder then
    fail("%s: every file lives in a layer folder", path)
  elseif not RANK[folder] then
    fail("%s: folder '%s' has no rank in tests/layers.lua", path, folder)
  else
    local module = folder .. "/" .. base:gsub("%.[ch]$", "")
    edges[module] = edges[module] or {}
    local quoted, system = includes(path)
    for _, inc in ipairs(quoted) do
      local tfolder, tbase = inc.name:match("^([^/]+)/(.+)$")
      if not tfolder then tfolder, tbase = folder, inc.name end
      local where = string.format("%s:%d: #include \"%s\"", path, inc.line, inc.name)
      if not RANK[tfolder] then
        fail("%s: no layer '%s'", where, tfolder)
      elseif tfolder ~= folder then
        nfolders_edges = nfolders_edges + 1
        if RANK[tfolder] >= RANK[folder] then
          fail("%s: %s (rank %d) may not include %s (rank %d): layers depend only downward",
            where, folder, RANK[folder], tfolder, RANK[tfolder])
        end
      else
        local target = tfolder .. "/" .. tbase:gsub("%.[ch]$", "")
        if target ~= module then edges[module][target] = true end
      end
    end
    for _, inc in ipairs(system) do
      for _, fence in ipairs(FENCES) do
        if inc.name:match(fence.pattern) and not fence.allowed(path) then
          fail("%s:%d: #include <%s>: %s", path, inc.line, inc.name, fence.why)
        end
      end
    end
  end
end

-- Circles among the modules of a folder: Tarjan's strongly connected
-- components; a component of more than two modules is a knot.
local index, low, onstack, stack, counter = {}, {}, {}, {}, 0
local function strongconnect(v)
  counter = counter + 1
  index[v], low[v] = counter, counter
  stack[#stack + 1] = v
  onstack[v] = true
  for w in pairs(edges[v] or {}) do
    if not index[w] then
      strongconnect(w)
      low[v] = math.min(low[v], low[w])
    elseif onstack[w] then
      low[v] = math.min(low[v], index[w])
    end
  end
  if low[v] == index[v] then
    local comp = {}
    repeat
      local w = table.remove(stack)
      onstack[w] = nil
      comp[#comp + 1] = w
    until w == v
    if #comp > 2 then
      table.sort(comp)
      fail("modules include each other in a circle: %s", table.concat(comp, ", "))
    end
  end
end
local modules = {}
for m in pairs(edges) do modules[#modules + 1] = m end
table.sort(modules)
for _, m in ipairs(modules) do
  if not index[m] then strongconnect(m) end
end

if #failures > 0 then
  for _, f in ipairs(failures) do io.stderr:write("layers: ", f, "\n") end
  os.exit(1)
end
print(string.format("layers: %d files, %d modules, %d cross-folder includes, all downward",
  #files, #modules, nfolders_edges))
