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

-- wait_until, and on a timeout say what fn last saw (its second result).
function H.wait_for(fn, timeout, what)
  local seen
  local ok, v = pcall(H.wait_until, function()
    local r, detail = fn()
    seen = detail
    return r
  end, timeout, what)
  if not ok then error(tostring(v) .. "\nlast seen: " .. tostring(seen), 2) end
  return v
end

-- A list of things to stop, run in reverse order even when a test fails:
-- local add, stop_all = H.cleanups(); finally(stop_all); add(g.stop).
function H.cleanups()
  local list = {}
  local function add(fn) list[#list + 1] = fn end
  local function run()
    for i = #list, 1, -1 do pcall(list[i]) end
  end
  return add, run
end

-- The STAT lines of a stats reply: name -> the rest of the line.
function H.parse_stats(rep)
  local s = {}
  for k, v in rep:gmatch("STAT (%S+) ([^\r\n]*)\r\n") do s[k] = v end
  return s
end

function H.write_file(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
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

-- The resident memory of a process, in kB.
function H.rss_kb(pid)
  local s = read_file("/proc/" .. pid .. "/status")
  return tonumber(s:match("VmRSS:%s*(%d+)")) or error("no VmRSS for pid " .. pid)
end

-- A release build of the gateway, for what a sanitizer build cannot show
-- (valgrind cannot run one; ASan's allocator keeps what is freed, so RSS
-- says nothing): ./gateway unless it is a sanitizer build (make SANITIZE=1
-- sets GATEWAY_SANITIZE), else build/rel/gateway, else nil.
function H.release_gateway_bin()
  local bin = H.gateway_bin
  local _, asan = H.run("grep -q __asan_init " .. shell_quote(bin))
  if asan or os.getenv("GATEWAY_SANITIZE") == "1" then
    bin = H.root .. "/build/rel/gateway"
    local _, exists = H.run("test -x " .. shell_quote(bin))
    if not exists then return nil end
  end
  return bin
end

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

-- A fake server: the Python program `code` (which must listen on port),
-- run in the background and waited for.  Returns { pid, port, addr, stop }.
function H.start_python_server(code, name, port)
  local path = H.write_config(code, name .. "-" .. port .. ".py")
  local pid = tonumber(H.run(H.quote(H.python) .. " " .. H.quote(path)
    .. " >/dev/null 2>&1 & echo $!"):match("%d+"))
  H.wait_until(function() return H.can_connect(port) end, 5, name .. " server on " .. port)
  return { pid = pid, port = port, addr = "127.0.0.1:" .. port,
           stop = function() if H.alive(pid) then H.run("kill -9 " .. pid .. " 2>/dev/null") end end }
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
-- opts.args adds command-line arguments; opts.env ({ NAME = "value" })
-- environment variables; opts.bin another binary than H.gateway_bin;
-- opts.own_listeners: no -l, the config's gateway.listen lines are served
-- (opts.port must be one of them: the one waited for).
function H.start_gateway(config_text, opts)
  opts = opts or {}
  local port = opts.port or H.free_port()
  local path = H.write_config(config_text, opts.config_name)
  local env = {}
  for k, v in pairs(opts.env or {}) do env[#env + 1] = k .. "=" .. shell_quote(v) end
  local cmd = string.format("%s%s %s %s %s",
    #env > 0 and "env " .. table.concat(env, " ") .. " " or "", shell_quote(opts.bin or H.gateway_bin),
    opts.own_listeners and "" or ("-l 127.0.0.1:" .. port), opts.args or "", shell_quote(path))
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

-- Printable form of raw bytes for failure messages: control and high bytes
-- escaped, "\r" as \r, "\n" as \n plus a line break; long input cut at 600.
function H.show(s)
  s = tostring(s)
  if #s > 600 then s = s:sub(1, 600) .. "...(" .. #s .. " bytes)" end
  return (s:gsub("[%c\128-\255]", function(c)
    if c == "\r" then return "\\r" elseif c == "\n" then return "\\n\n" end
    return string.format("\\x%02x", c:byte())
  end))
end

-- A client connection; everything it reads is byte-exact ("\r" kept except
-- where :line drops the line end).
--
-- timeout (seconds, default 5) bounds each wait for data.  Reading methods
-- take an optional deadline, an absolute socket.gettime() by which the
-- whole read must be done.  H.connect(port, { whole_reply = true }) (a
-- table in place of the timeout; its .timeout is the timeout) makes
-- reply/call/calls default to a deadline of timeout seconds for each whole
-- reply.
local Conn = {}
Conn.__index = Conn

function H.connect(port, timeout)
  local opts = type(timeout) == "table" and timeout or {}
  if type(timeout) == "table" then timeout = opts.timeout end
  local c = assert(socket.tcp())
  c:settimeout(timeout or 5)
  assert(c:connect("127.0.0.1", port))
  c:setoption("tcp-nodelay", true)
  return setmetatable({ sock = c, buf = "", timeout = timeout or 5, port = port,
                        whole_reply = opts.whole_reply }, Conn)
end

-- One request on a fresh connection: its reply.  timeout as for H.connect.
function H.request(port, bytes, timeout)
  local c = H.connect(port, timeout)
  local rep = c:call(bytes)
  c:close()
  return rep
end

-- Send bytes; with chunk, in pieces of chunk bytes, one write each.
function Conn:send(bytes, chunk)
  if not chunk then
    assert(self.sock:send(bytes))
    return
  end
  for i = 1, #bytes, chunk do
    assert(self.sock:send(bytes:sub(i, i + chunk - 1)))
  end
end

-- Read what has arrived into the buffer, waiting for something until the
-- deadline (default: the connection's timeout from now); false, err on
-- EOF or timeout.
function Conn:fill(deadline)
  deadline = deadline or socket.gettime() + self.timeout
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
function Conn:bytes(n, deadline)
  while #self.buf < n do
    local ok, err = self:fill(deadline)
    if not ok then return nil, err end
  end
  local out = self.buf:sub(1, n)
  self.buf = self.buf:sub(n + 1)
  return out
end

-- One line with its line end ("\r\n" or "\n") kept: the exact bytes.
function Conn:raw_line(deadline)
  while true do
    local i = self.buf:find("\n", 1, true)
    if i then
      local l = self.buf:sub(1, i)
      self.buf = self.buf:sub(i + 1)
      return l
    end
    local ok, err = self:fill(deadline)
    if not ok then return nil, err end
  end
end

-- One line without its line end.
function Conn:line(deadline)
  local l, err = self:raw_line(deadline)
  if not l then return nil, err end
  return (l:gsub("\r?\n$", ""))
end

-- Raise an error naming the port, what went wrong and what is unread.
function Conn:fail(err, what)
  error(string.format("port %d: %s%s; unread so far:\n%s", self.port,
    err == "closed" and "connection closed" or "timed out", what or "", H.show(self.buf)), 0)
end

-- One line and, after a "VALUE <key> <flags> <bytes>" line or a meta
-- "VA <bytes> ..." line, its data block: returns those exact bytes, the
-- line, and the data block's length (nil after any other line).  Raises
-- (Conn:fail) on EOF or timeout.
function Conn:unit(deadline)
  local l, err = self:raw_line(deadline)
  if not l then self:fail(err) end
  local n = l:match("^VALUE %S+ %d+ (%d+)") or l:match("^VA (%d+)")
  if not n then return l, l end
  n = tonumber(n) + 2
  local data, err2 = self:bytes(n, deadline)
  if not data then self:fail(err2, string.format(" with %d of %d data bytes", #self.buf, n)) end
  return l .. data, l, n
end

-- Read one whole reply, byte-exact: for a retrieval, every VALUE unit up to
-- END, STAT lines up to END for stats, a meta VA unit, else one line.
-- Raises on EOF or timeout.
function Conn:reply(deadline)
  if not deadline and self.whole_reply then deadline = socket.gettime() + self.timeout end
  local out = {}
  while true do
    local unit, l, n = self:unit(deadline)
    out[#out + 1] = unit
    if (not n and not l:match("^STAT ")) or l:match("^VA ") then return table.concat(out) end
  end
end

-- Send a request and return its reply.
function Conn:call(bytes, deadline)
  self:send(bytes)
  return self:reply(deadline)
end

-- Send bytes (several requests at once) and return a list of the next n
-- replies.
function Conn:calls(bytes, n, deadline)
  self:send(bytes)
  local out = {}
  for i = 1, n do out[i] = self:reply(deadline) end
  return out
end

function Conn:close()
  self.sock:close()
end

-- HTTP/1.1, for the admin listener ------------------------------------------

-- Percent-encode s for a URL's query or path: every byte but A-Z a-z 0-9
-- - . _ ~ (so "+" and "/" arrive as themselves).
function H.urlencode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- Send one HTTP request on this connection (kept alive unless opts.close)
-- and read its response: status (a number), headers (lower-case names)
-- and body.  opts.headers adds headers ({ name = value }), opts.body a
-- body (with its Content-Length).  The whole response must come within
-- the connection's timeout.  A body is read by its Content-Length, or to
-- the end of the connection when there is none (a HEAD response has none).
function Conn:http(method, path, opts)
  opts = opts or {}
  local head = { string.format("%s %s HTTP/1.1", method, path), "Host: 127.0.0.1:" .. self.port }
  for k, v in pairs(opts.headers or {}) do head[#head + 1] = k .. ": " .. v end
  if opts.close then head[#head + 1] = "Connection: close" end
  local body = opts.body or ""
  if #body > 0 or method == "POST" or method == "PUT" then
    head[#head + 1] = "Content-Length: " .. #body
  end
  self:send(table.concat(head, "\r\n") .. "\r\n\r\n" .. body)
  return self:http_response(method == "HEAD")
end

-- Read one HTTP response (see Conn:http); raises on EOF or timeout.
function Conn:http_response(no_body, deadline)
  deadline = deadline or socket.gettime() + self.timeout
  local status_line, err = self:line(deadline)
  if not status_line then self:fail(err, " waiting for an HTTP status line") end
  local status = tonumber(status_line:match("^HTTP/1%.%d (%d%d%d)"))
  if not status then error("not an HTTP status line: " .. H.show(status_line), 2) end
  local headers = {}
  while true do
    local l, err2 = self:line(deadline)
    if not l then self:fail(err2, " in the headers after " .. status_line) end
    if l == "" then break end
    local k, v = l:match("^([^:]+):%s*(.-)%s*$")
    if k then headers[k:lower()] = v end
  end
  if no_body then return status, headers, "" end
  local n = tonumber(headers["content-length"])
  if n then
    local body, err3 = self:bytes(n, deadline)
    if not body then self:fail(err3, string.format(" in a %d-byte body", n)) end
    return status, headers, body
  end
  assert(not headers["transfer-encoding"], "chunked bodies are not read here")
  while true do
    local ok, err4 = self:fill(deadline)
    if not ok then
      if err4 ~= "closed" then self:fail(err4, " in a body read to the end") end
      break
    end
  end
  local body = self.buf
  self.buf = ""
  return status, headers, body
end

-- One HTTP request on a fresh connection: status, headers, body.
-- timeout as for H.connect; opts as for Conn:http.
function H.http(port, method, path, opts, timeout)
  local c = H.connect(port, timeout)
  opts = opts or {}
  opts.close = true
  local status, headers, body = c:http(method, path, opts)
  c:close()
  return status, headers, body
end

-- JSON (lua-dkjson, which busted itself needs): the decoded value, or an
-- error naming the text.
function H.json(text)
  local v, _, err = require("dkjson").decode(text, 1, nil)
  if err then error("bad JSON (" .. err .. "): " .. H.show(text), 2) end
  return v
end

-- A real Prometheus (Debian's prometheus) on a free port, scraping each
-- of targets ("host:port") at /metrics every opts.interval (default
-- "1s"), its data in a folder of its own under tests/tmp; opts.job: more
-- lines of the job (YAML, indented as its keys: scheme, authorization,
-- tls_config).  Waited for until ready (30 s).  Returns { port, pid, query, targets, stop, ... }:
--   query(expr)  the result of an instant query (data.result, a list);
--                raises if the API answers an error;
--   targets()    the active targets (data.activeTargets).
-- stop() ends it and removes its folder (the log stays).
function H.start_prometheus(targets, opts)
  opts = opts or {}
  local port = H.free_port()
  local dir = string.format("%s/prometheus-%d", H.tmpdir, port)
  os.execute("rm -rf " .. shell_quote(dir) .. " && mkdir -p " .. shell_quote(dir .. "/data"))
  local list = {}
  for i, t in ipairs(targets) do list[i] = string.format("%q", t) end
  local interval = opts.interval or "1s"
  local conf = H.write_config(table.concat({
    "global:",
    "  scrape_interval: " .. interval,
    "  scrape_timeout: " .. interval,
    "  evaluation_interval: 1m",
    "scrape_configs:",
    "  - job_name: gateway",
    table.unpack(opts.job or {}),
  }, "\n") .. "\n" .. table.concat({
    "    static_configs:",
    "      - targets: [" .. table.concat(list, ", ") .. "]",
  }, "\n") .. "\n", "prometheus-" .. port .. ".yml")
  local cmd = string.format("prometheus --config.file=%s --web.listen-address=127.0.0.1:%d "
    .. "--storage.tsdb.path=%s --storage.tsdb.retention.time=1h --log.level=warn",
    shell_quote(conf), port, shell_quote(dir .. "/data"))
  local p = start_listener("prometheus", cmd, port,
    string.format("%s/prometheus-%d.log", H.tmpdir, port))
  local http = require "socket.http"
  http.TIMEOUT = 5
  local function get(path)
    local body, code = http.request(string.format("http://127.0.0.1:%d%s", port, path))
    return body, code
  end
  local function api(path)
    local body, code = get(path)
    if not body then error("prometheus " .. path .. ": " .. tostring(code), 3) end
    local v = H.json(body)
    if v.status ~= "success" then
      error(string.format("prometheus %s: %s %s", path, tostring(v.errorType), tostring(v.error)), 3)
    end
    return v.data
  end
  H.wait_until(function()
    local _, code = get("/-/ready")
    return code == 200
  end, 30, "prometheus ready on port " .. port)
  function p.query(expr)
    return api("/api/v1/query?query=" .. H.urlencode(expr)).result
  end
  function p.targets()
    return api("/api/v1/targets").activeTargets
  end
  local stop = p.stop
  function p.stop()
    stop()
    os.execute("rm -rf " .. shell_quote(dir))
  end
  return p
end

-- Is the peer's side of the connection closed: EOF, with nothing unread,
-- within timeout seconds (default 1)?  Bytes that arrive instead stay in
-- the buffer.
function Conn:closed(timeout)
  if #self.buf > 0 then return false end
  local ok, err = self:fill(socket.gettime() + (timeout or 1))
  return not ok and err == "closed"
end

return H
