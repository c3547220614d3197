-- install_spec.lua -- make install, and running what it installed.
--
--   make install DESTDIR=<tmp> PREFIX=/usr/local   the binary, the Lua
--       library in share/gateway, /etc/gateway/gateway.lua (never over an
--       edited one) and a systemd unit that systemd-analyze accepts
--   the installed binary, run from another folder, finds its library and
--       serves on -p PORT; --pidfile is written, and gone after SIGTERM
--   the repo's ./gateway, run from another folder, uses ./lua next to it
--   --help lists every option and GATEWAY_LUA_DIR
--
-- Run from the repo root:
--   busted --lpath='./lua/?.lua;./lua/?/init.lua;./tests/spec/?.lua' tests/spec/install_spec.lua
local H = require "harness"

local PREFIX = "/usr/local"
local q = H.quote

local function trim(s) return (s:gsub("%s+$", "")) end

-- An empty folder of its own, outside the repo.
local made = {}
local function temp_dir()
  local out, ok = H.run("mktemp -d")
  assert(ok, "mktemp -d failed")
  local dir = trim(out)
  made[dir] = true
  return dir
end

-- Only what temp_dir made: never an arbitrary path.
local function remove_dir(dir)
  if dir and made[dir] then
    H.run("rm -rf " .. q(dir))
    made[dir] = nil
  end
end

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() end
  return f ~= nil
end

-- make install from the repo root; the build mode of the running suite
-- (make spec SANITIZE=1), so ./gateway is not rebuilt in another mode.
local function make_install(destdir)
  local sanitize = os.getenv("GATEWAY_SANITIZE") == "1" and " SANITIZE=1" or ""
  local out, ok = H.run(string.format("cd %s && make install DESTDIR=%s PREFIX=%s%s 2>&1",
    q(H.root), q(destdir), PREFIX, sanitize))
  assert(ok, "make install failed:\n" .. out)
  return out
end

-- Run a command from the folder dir; stdout+stderr and the exit status.
local function run_in(dir, cmd)
  local out = H.run(string.format("cd %s && %s 2>&1; echo \"EXIT=$?\"", q(dir), cmd))
  local status = tonumber(out:match("EXIT=(%d+)\n$"))
  return out:gsub("EXIT=%d+\n$", ""), status
end

-- Start a gateway with cmd (a command line to exec) from the folder dir,
-- and wait until it accepts on port.  Returns its pid and log path.
local function start_in(dir, cmd, port)
  local log = string.format("%s/install-gateway-%d.log", H.tmpdir, port)
  local pid = tonumber(H.run(string.format("(cd %s && exec %s) >%s 2>&1 & echo $!",
    q(dir), cmd, q(log))):match("%d+"))
  H.wait_until(function()
    if not H.alive(pid) then error("gateway exited:\n" .. H.read_file(log)) end
    return H.can_connect(port)
  end, 10, "the installed gateway on port " .. port)
  return pid, log
end

local function stop(pid)
  if not pid or not H.alive(pid) then return end
  H.run("kill -TERM " .. pid)
  pcall(H.wait_until, function() return not H.alive(pid) end, 10)
  if H.alive(pid) then H.run("kill -KILL " .. pid) end
end

describe("make install", function()
  local destdir, rundir, bin, libdir, config, unit
  local first_output

  setup(function()
    destdir, rundir = temp_dir(), temp_dir()
    bin = destdir .. PREFIX .. "/bin/gateway"
    libdir = destdir .. PREFIX .. "/share/gateway"
    config = destdir .. "/etc/gateway/gateway.lua"
    unit = destdir .. PREFIX .. "/lib/systemd/system/gateway.service"
    first_output = make_install(destdir)
  end)

  teardown(function()
    remove_dir(destdir)
    remove_dir(rundir)
  end)

  it("puts the binary, the Lua library, the config and the unit in place", function()
    assert.is_truthy(exists(bin), first_output)
    assert.is_truthy(H.run("test -x " .. q(bin) .. " && echo yes"):match("yes"))
    for _, f in ipairs({ "gateway/prelude.lua", "gateway/route.lua", "scripts/sessions.lua" }) do
      assert.is_truthy(exists(libdir .. "/" .. f), "missing " .. libdir .. "/" .. f)
    end
    assert.are.equal(H.read_file(H.root .. "/gateway.lua.example"), H.read_file(config))
    assert.is_truthy(exists(unit), "missing " .. unit)
  end)

  it("the unit runs the installed binary on /etc/gateway/gateway.lua, as a service should", function()
    local text = H.read_file(unit)
    assert.is_falsy(text:find("@%u+@"), "a placeholder is left:\n" .. text)
    local function has(line) assert.is_truthy(text:find("\n" .. line, 1, true), "no " .. line .. " in\n" .. text) end
    has("ExecStart=" .. PREFIX .. "/bin/gateway /etc/gateway/gateway.lua\n")
    has("ExecReload=/bin/kill -HUP $MAINPID\n")
    has("Restart=on-failure\n")
    has("DynamicUser=yes\n")
    has("NoNewPrivileges=yes\n")
    has("ProtectSystem=strict\n")
    local nofile = tonumber(text:match("\nLimitNOFILE=(%d+)\n"))
    assert.is_truthy(nofile and nofile >= 65536, "LimitNOFILE not raised:\n" .. text)
  end)

  it("systemd-analyze verify accepts the unit, with no warning", function()
    if H.run("command -v systemd-analyze") == "" then
      pending("systemd-analyze is not installed (Debian package systemd): the unit is not verified")
      return
    end
    -- verify insists that ExecStart exists, and it is installed under
    -- DESTDIR, not at /usr/local/bin: check a copy whose ExecStart points
    -- into DESTDIR, everything else as installed.  (--root=DESTDIR would
    -- look for /bin/kill and sysinit.target in DESTDIR too.)
    local dir = temp_dir()
    local copy = dir .. "/gateway.service"
    local text = H.read_file(unit):gsub("\nExecStart=" .. PREFIX, "\nExecStart=" .. destdir .. PREFIX)
    local f = assert(io.open(copy, "w"))
    f:write(text)
    f:close()
    local out, status = run_in(dir, "systemd-analyze verify " .. q(copy))
    remove_dir(dir)
    assert.are.equal(0, status, out)
    -- unknown keys and bad values are warnings with exit 0: none allowed
    assert.are.equal("", out)
  end)

  it("the installed binary names its install path in --help and lists every option", function()
    local out, status = run_in(rundir, "env -u GATEWAY_LUA_DIR " .. q(bin) .. " --help")
    assert.are.equal(0, status, out)
    assert.is_truthy(out:find(PREFIX .. "/share/gateway", 1, true), out)
    for _, opt in ipairs({ "-p", "--port", "--pidfile", "-l", "--listen", "-t", "--threads",
                           "--check", "-v", "--version", "--help", "GATEWAY_LUA_DIR" }) do
      assert.is_truthy(out:find("%W" .. opt:gsub("%p", "%%%0") .. "%W"), "--help does not list " .. opt .. ":\n" .. out)
    end
  end)

  it("runs from another folder with the installed config: version and set/get on -p, --pidfile", function()
    local port = H.free_port()
    local pidfile = rundir .. "/gateway.pid"
    -- With DESTDIR the compiled-in path (/usr/local/share/gateway) is not
    -- where this library is: GATEWAY_LUA_DIR points at it.
    local pid, log = start_in(rundir, string.format("env GATEWAY_LUA_DIR=%s %s -p %d --pidfile %s %s",
      q(libdir), q(bin), port, q(pidfile), q(config)), port)
    local ok, err = pcall(function()
      -- written after the listeners are bound: it may lag the first accept
      local written = H.wait_until(function()
        local s = H.read_file(pidfile)
        return s:match("\n$") and s
      end, 5, "the pid file")
      assert.are.equal(pid .. "\n", written)
      local c = H.connect(port)
      assert.are.equal("VERSION 1.6.18-gateway-0.1.0\r\n", c:call("version\r\n"))
      assert.are.equal("STORED\r\n", c:call("set installed 5 0 3\r\nyes\r\n"))
      assert.are.equal("VALUE installed 5 3\r\nyes\r\nEND\r\n", c:call("get installed\r\n"))
      c:close()
    end)
    stop(pid)
    assert(ok, tostring(err) .. "\nlog:\n" .. H.read_file(log))
    assert.is_false(H.alive(pid), "still running after SIGTERM")
    assert.is_false(exists(pidfile), "the pid file is left after SIGTERM")
    assert.is_truthy(H.read_file(log):find("stopped", 1, true), H.read_file(log))
  end)

  it("a second make install keeps an edited /etc/gateway/gateway.lua", function()
    local edited = H.read_file(config) .. "-- edited by the administrator\n"
    local f = assert(io.open(config, "w"))
    f:write(edited)
    f:close()
    local out = make_install(destdir)
    assert.are.equal(edited, H.read_file(config))
    assert.is_truthy(out:find("keeping " .. config, 1, true), out)
    assert.is_truthy(exists(bin) and exists(unit), out)
  end)
end)

describe("finding the Lua library", function()
  local rundir, repo

  setup(function()
    repo = trim(H.run("cd " .. q(H.root) .. " && pwd -P"))
    rundir = temp_dir()
  end)
  teardown(function() remove_dir(rundir) end)

  local function repo_bin()
    local b = H.gateway_bin
    return b:sub(1, 1) == "/" and b or repo .. "/" .. b:gsub("^%./", "")
  end

  it("the repo's ./gateway, run from another folder, uses lua/ next to it", function()
    local out, status = run_in(rundir, "env -u GATEWAY_LUA_DIR " .. q(repo_bin()) .. " --help")
    assert.are.equal(0, status, out)
    local used = out:match("This run: (%S+)")
    assert.are.equal(repo .. "/lua", used, out)
    local example = repo .. "/gateway.lua.example"
    out, status = run_in(rundir, "env -u GATEWAY_LUA_DIR " .. q(repo_bin()) .. " --check " .. q(example))
    assert.are.equal(0, status, out)
    assert.are.equal(example .. ": ok\n", out)
  end)

  it("GATEWAY_LUA_DIR overrides lua/ next to the binary", function()
    local out, status = run_in(rundir, "env GATEWAY_LUA_DIR=/nonexistent " .. q(repo_bin())
      .. " --check " .. q(repo .. "/gateway.lua.example"))
    assert.are.equal(1, status, out)
    assert.is_truthy(out:find("/nonexistent/gateway/prelude.lua", 1, true), out)
  end)
end)

describe("-p and --pidfile", function()
  local function gateway(args)
    local out = H.run(string.format("timeout 20 %s %s 2>&1; echo \"EXIT=$?\"", q(H.gateway_bin), args))
    return out:gsub("EXIT=%d+\n$", ""), tonumber(out:match("EXIT=(%d+)\n$"))
  end
  local example = H.root .. "/gateway.lua.example"

  it("refuses a port outside 1..65535, and -p with -l", function()
    for _, p in ipairs({ "0", "65536", "x", "11211x", "" }) do
      local out, status = gateway("-p " .. q(p) .. " --check " .. q(example))
      assert.are.equal(2, status, "-p '" .. p .. "': " .. out)
      assert.is_truthy(out:find("--port", 1, true), out)
    end
    local out, status = gateway("-p 11311 -l 127.0.0.1:11312 --check " .. q(example))
    assert.are.equal(2, status, out)
    assert.is_truthy(out:find("-l and -p", 1, true), out)
  end)

  it("a pid file that cannot be written stops the start, exit 1", function()
    local port = H.free_port()
    local out, status = gateway(string.format("-p %d --pidfile /nonexistent/gateway.pid %s",
      port, q(example)))
    assert.are.equal(1, status, out)
    assert.is_truthy(out:find("--pidfile /nonexistent/gateway.pid", 1, true), out)
    assert.is_falsy(H.can_connect(port))
  end)
end)
