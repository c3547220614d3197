-- harness.lua -- start and stop real processes for the end-to-end specs.
--
-- Every server listens on a free loopback port that the harness picks, is
-- waited for with a deadline (never a blind sleep), and is stopped by the
-- spec's teardown.  Nothing here reaches beyond 127.0.0.1.
local socket = require "socket"

local H = {}

H.root = os.getenv("GATEWAY_ROOT") or "."
H.gateway_bin = os.getenv("GATEWAY_BIN") or (H.root .. "/gateway")
H.python = os.getenv("GATEWAY_PYTHON") or "/usr/bin/python3"
H.tmpdir = H.root .. "/tests/tmp"
os.execute("mkdir -p " .. H.tmpdir)

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
H.quote = shell_quote

-- Run a shell command; returns its stdout and whether it exited 0.
function H.run(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok == true and (code == 0 or code == nil), code
end

-- Wait until fn() returns a true value or the deadline (seconds) passes.
function H.wait_until(fn, timeout, what)
  local deadline = socket.gettime() + (timeout or 5)
  while true do
    local v = fn()
    if v then return v end
    if socket.gettime() > deadline then
      error("timed out waiting for " .. (what or "condition"), 2)
    end
    socket.sleep(0.01)
  end
end

function H.free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

local function can_connect(port)
  local c = socket.tcp()
  c:settimeout(0.2)
  local ok = c:connect("127.0.0.1", port)
  c:close()
  return ok
end
H.can_connect = can_connect

-- Start a command in the background; returns its pid.
local function spawn(cmd, log)
  local out = H.run("(" .. cmd .. ") >" .. shell_quote(log) .. " 2>&1 & echo $!")
  return assert(tonumber(out:match("%d+")), "could not start: " .. cmd)
end

-- Alive means running: a zombie (exited, not yet reaped by whoever
-- inherited it) counts as gone.
local function proc_alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if not f then return false end
  local stat = f:read("a") or ""
  f:close()
  local state = stat:match("%) (%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end
H.alive = proc_alive

local function stopper(pid, sig)
  return function()
    if not proc_alive(pid) then return end
    H.run("kill -" .. (sig or "TERM") .. " " .. pid .. " 2>/dev/null")
    local ok = pcall(H.wait_until, function() return not proc_alive(pid) end, 5)
    if not ok then H.run("kill -KILL " .. pid .. " 2>/dev/null") end
  end
end

local function read_file(path)
  local f = io.open(path, "r")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end
H.read_file = read_file

-- Start a process that listens on port; wait until it accepts.
local function start_listener(name, cmd, port, log)
  local pid = spawn("exec " .. cmd, log)
  local ok, err = pcall(H.wait_until, function()
    if not proc_alive(pid) then error(name .. " exited:\n" .. read_file(log)) end
    return can_connect(port)
  end, 10, name .. " on port " .. port)
  if not ok then
    stopper(pid, "KILL")()
    error(err, 2)
  end
  return { pid = pid, port = port, log = log, addr = "127.0.0.1:" .. port,
           stop = stopper(pid), kill = stopper(pid, "KILL"),
           alive = function() return proc_alive(pid) end,
           output = function() return read_file(log) end }
end

-- A real memcached on a free loopback port.  opts.args adds arguments.
function H.start_memcached(opts)
  opts = opts or {}
  local port = opts.port or H.free_port()
  local cmd = string.format("memcached -U 0 -l 127.0.0.1 -p %d -m %d -t 1 %s",
    port, opts.memory or 64, opts.args or "")
  if (os.getenv("USER") or "") == "root" or H.run("id -u"):match("^0") then
    cmd = cmd .. " -u root"
  end
  return start_listener("memcached", cmd, port,
    string.format("%s/memcached-%d.log", H.tmpdir, port))
end

-- Write a config file; returns its path.
function H.write_config(text, name)
  local path = string.format("%s/%s", H.tmpdir, name or ("gateway-" .. H.free_port() .. ".lua"))
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

-- The gateway on a free port with the given config text.
-- opts.args adds command-line arguments.
function H.start_gateway(config_text, opts)
  opts = opts or {}
  local port = opts.port or H.free_port()
  local path = H.write_config(config_text, opts.config_name)
  local cmd = string.format("%s -l 127.0.0.1:%d %s %s", H.gateway_bin, port,
    opts.args or "", shell_quote(path))
  local g = start_listener("gateway", cmd, port,
    string.format("%s/gateway-%d.log", H.tmpdir, port))
  g.config = path
  return g
end

-- twemproxy (Debian's nutcracker) with md5 + ketama over the given servers
-- ({ {addr="127.0.0.1:p", weight=w}, ... }).
function H.start_nutcracker(servers, opts)
  opts = opts or {}
  local port = opts.port or H.free_port()
  local lines = { "gw:", "  listen: 127.0.0.1:" .. port, "  hash: md5",
    "  distribution: ketama", "  auto_eject_hosts: false", "  timeout: 1000",
    "  servers:" }
  for _, s in ipairs(servers) do
    lines[#lines + 1] = string.format("   - %s:%d", s.addr, s.weight or 1)
  end
  local conf = H.write_config(table.concat(lines, "\n") .. "\n", "nutcracker-" .. port .. ".yml")
  local stats_port = H.free_port()
  return start_listener("nutcracker",
    string.format("nutcracker -c %s -s %d -a 127.0.0.1 -o /dev/stderr", conf, stats_port),
    port, string.format("%s/nutcracker-%d.log", H.tmpdir, port))
end

-- A client connection with line-oriented helpers.
local Conn = {}
Conn.__index = Conn

function H.connect(port, timeout)
  local c = assert(socket.tcp())
  c:settimeout(timeout or 5)
  assert(c:connect("127.0.0.1", port))
  c:setoption("tcp-nodelay", true)
  return setmetatable({ sock = c, buf = "", timeout = timeout or 5 }, Conn)
end

function Conn:send(bytes)
  assert(self.sock:send(bytes))
end

-- Read what has arrived into the buffer, waiting up to the connection's
-- timeout for something; false, err on EOF or timeout.
function Conn:fill()
  local deadline = socket.gettime() + self.timeout
  while true do
    self.sock:settimeout(0)
    local data, err, partial = self.sock:receive(65536)
    self.sock:settimeout(self.timeout)
    data = data or partial
    if data and #data > 0 then
      self.buf = self.buf .. data
      return true
    end
    if err == "closed" then return false, "closed" end
    local left = deadline - socket.gettime()
    if left <= 0 then return false, "timeout" end
    socket.select({ self.sock }, nil, left)
  end
end

-- Exactly n bytes, waiting for them.
function Conn:bytes(n)
  while #self.buf < n do
    local ok, err = self:fill()
    if not ok then return nil, err end
  end
  local out = self.buf:sub(1, n)
  self.buf = self.buf:sub(n + 1)
  return out
end

-- One line with its line end ("\r\n" or "\n") kept: the exact bytes.
function Conn:raw_line()
  while true do
    local i = self.buf:find("\n", 1, true)
    if i then
      local l = self.buf:sub(1, i)
      self.buf = self.buf:sub(i + 1)
      return l
    end
    local ok, err = self:fill()
    if not ok then return nil, err end
  end
end

-- One line without its line end.
function Conn:line()
  local l, err = self:raw_line()
  if not l then return nil, err end
  return (l:gsub("\r?\n$", ""))
end

-- Read one whole reply, byte-exact: for a retrieval, every VALUE unit up to
-- END, STAT lines up to END for stats, else one line.
function Conn:reply()
  local out = {}
  while true do
    local l, err = self:raw_line()
    if not l then error("connection: " .. tostring(err), 2) end
    out[#out + 1] = l
    local n = l:match("^VALUE %S+ %d+ (%d+)")
    if n then
      out[#out + 1] = assert(self:bytes(tonumber(n) + 2))
    elseif not l:match("^STAT ") then
      break
    end
  end
  return table.concat(out)
end

-- Send a request and return its reply.
function Conn:call(bytes)
  self:send(bytes)
  return self:reply()
end

function Conn:close()
  self.sock:close()
end

-- Is the peer's side of the connection closed (EOF within timeout)?
function Conn:closed(timeout)
  if #self.buf > 0 then return false end
  self.sock:settimeout(timeout or 1)
  local _, err = self.sock:receive(1)
  self.sock:settimeout(self.timeout)
  return err == "closed"
end

return H
