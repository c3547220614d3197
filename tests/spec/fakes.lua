-- fakes.lua -- helpers for the route, yield and scripts specs: fake
-- backends (slow, silent), a gateway started on its config's own
-- listeners, and direct talk to memcached servers.
local H = require "harness"
local socket = require "socket"

local F = {}

-- H.connect(port, F.RAW): every reply must be complete within 5 seconds.
F.RAW = { timeout = 5, whole_reply = true }

-- A memcached-speaking server, from a child process, that answers every
-- get/gets/gat/gats `delay` seconds after it arrived (replies stay in
-- request order; requests queued behind a slow one are not delayed further) (with "slow:<key>" as each
-- key's value, flags 0, cas 1), and set/add/replace/append/prepend/cas,
-- delete, touch, incr/decr at once (STORED, DELETED, TOUCHED, 1).  Each
-- connection is served by its own thread.  Every retrieval line is noted,
-- as it arrives, in a file that :seen() reads.
-- Returns { port, addr, seen, stop }.
function F.slow_server(delay)
  local port = H.free_port()
  local seen = string.format("%s/slow-%d.seen", H.tmpdir, port)
  os.remove(seen)
  local code = string.format([[
import collections, socket, sys, threading, time
DELAY = %f
SEEN = %q

def writer(c, q, cv):
    # replies in request order, each not before its due time
    while True:
        with cv:
            while not q:
                cv.wait()
            due, out = q.popleft()
        if out is None:
            return
        left = due - time.time()
        if left > 0:
            time.sleep(left)
        try:
            c.sendall(out)
        except OSError:
            return

def serve(c):
    q, cv = collections.deque(), threading.Condition()
    threading.Thread(target=writer, args=(c, q, cv), daemon=True).start()
    def reply(out, delay=0):
        with cv:
            q.append((time.time() + delay, out))
            cv.notify()
    buf = b""
    while True:
        try:
            d = c.recv(65536)
        except OSError:
            d = b""
        if not d:
            reply(None)
            return
        buf += d
        while b"\r\n" in buf:
            line, rest = buf.split(b"\r\n", 1)
            parts = line.split()
            if not parts:
                buf = rest
                continue
            cmd, delay = parts[0], 0
            if cmd in (b"set", b"add", b"replace", b"append", b"prepend", b"cas"):
                n = int(parts[4])
                if len(rest) < n + 2:
                    break
                rest = rest[n + 2:]
                out = b"STORED\r\n"
            elif cmd in (b"get", b"gets", b"gat", b"gats"):
                with open(SEEN, "ab") as f:
                    f.write(line + b"\n")
                delay = DELAY
                keys = parts[1:] if cmd in (b"get", b"gets") else parts[2:]
                out = b""
                for k in keys:
                    v = b"slow:" + k
                    out += b"VALUE " + k + b" 0 %%d" %% len(v)
                    out += (b" 1" if cmd.endswith(b"s") else b"") + b"\r\n" + v + b"\r\n"
                out += b"END\r\n"
            elif cmd == b"delete":
                out = b"DELETED\r\n"
            elif cmd == b"touch":
                out = b"TOUCHED\r\n"
            elif cmd in (b"incr", b"decr"):
                out = b"1\r\n"
            elif cmd == b"version":
                out = b"VERSION 1.6.18\r\n"
            else:
                out = b"ERROR\r\n"
            buf = rest
            if b"noreply" not in parts:
                reply(out, delay)

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", %d))
s.listen(64)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
]], delay, seen, port)
  local srv = H.start_python_server(code, "slow", port)
  -- the retrieval lines it has received so far, one a line
  srv.seen = function() return H.read_file(seen) end
  return srv
end

-- A server that accepts connections (the kernel completes the handshake)
-- but never answers.  Returns { port, addr, stop }.
function F.silent_server()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  port = tonumber(port)
  return { port = port, addr = "127.0.0.1:" .. port, stop = function() s:close() end }
end

-- The gateway WITHOUT -l: it listens where the config's gateway.listen
-- says.  ports: the ports to wait for (ports[1] becomes .port).
-- Returns an object like H.start_gateway's.
function F.start_gateway_own_listeners(config_text, ports)
  local path = H.write_config(config_text)
  local log = string.format("%s/gateway-%d.log", H.tmpdir, ports[1])
  local pid = tonumber(H.run(string.format("(exec %s %s) >%s 2>&1 & echo $!",
    H.quote(H.gateway_bin), H.quote(path), H.quote(log))):match("%d+"))
  local function stop(sig)
    return function()
      if not H.alive(pid) then return end
      H.run("kill -" .. sig .. " " .. pid .. " 2>/dev/null")
      local ok = pcall(H.wait_until, function() return not H.alive(pid) end, 5)
      if not ok then H.run("kill -KILL " .. pid .. " 2>/dev/null") end
    end
  end
  local ok, err = pcall(H.wait_until, function()
    if not H.alive(pid) then error("gateway exited:\n" .. H.read_file(log)) end
    for _, p in ipairs(ports) do
      if not H.can_connect(p) then return false end
    end
    return true
  end, 10, "the gateway on its config's ports")
  if not ok then
    stop("KILL")()
    error(err, 2)
  end
  return { pid = pid, port = ports[1], ports = ports, config = path, log = log,
           addr = "127.0.0.1:" .. ports[1], stop = stop("TERM"), kill = stop("KILL"),
           alive = function() return H.alive(pid) end,
           output = function() return H.read_file(log) end }
end

-- Direct talk to a memcached server (a table with .port).
function F.get(server, key)
  return H.request(server.port, "get " .. key .. "\r\n", F.RAW)
end

function F.set(server, key, value, exptime, flags)
  local rep = H.request(server.port, string.format("set %s %d %d %d\r\n%s\r\n",
    key, flags or 0, exptime or 0, #value, value), F.RAW)
  assert(rep == "STORED\r\n", "direct set " .. key .. ": " .. H.show(rep))
end

function F.delete(server, key)
  return H.request(server.port, "delete " .. key .. "\r\n", F.RAW)
end

-- The value a server holds for key, or nil.
function F.value(server, key)
  local rep = F.get(server, key)
  return rep:match("^VALUE %S+ %d+ %d+\r\n(.-)\r\nEND\r\n$")
end

-- The seconds a server says key has left to live (meta get "t" flag):
-- -1 for never, nil for a miss.
function F.ttl(server, key)
  local rep = H.request(server.port, "mg " .. key .. " t\r\n", F.RAW)
  if rep == "EN\r\n" then return nil end
  local t = rep:match("^HD t(%-?%d+)\r\n$")
  assert(t, "mg " .. key .. ": " .. H.show(rep))
  return tonumber(t)
end

function F.value_reply(key, value, flags)
  return string.format("VALUE %s %d %d\r\n%s\r\nEND\r\n", key, flags or 0, #value, value)
end

function F.set_cmd(key, value, flags, exptime)
  return string.format("set %s %d %d %d\r\n%s\r\n", key, flags or 0, exptime or 0, #value, value)
end

-- CRC-32 (IEEE, as zlib and python's binascii.crc32), to know which keys
-- memcache.crc32 picks.
local CRC_TABLE = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do
    if c & 1 == 1 then c = 0xEDB88320 ~ (c >> 1) else c = c >> 1 end
  end
  CRC_TABLE[i] = c
end
function F.crc32(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do
    c = CRC_TABLE[(c ~ s:byte(i)) & 0xFF] ~ (c >> 8)
  end
  return c ~ 0xFFFFFFFF
end
assert(F.crc32("hello") == 907060870)

-- Wait (with a deadline) for the next reply on whichever of conns has one;
-- returns its index and the reply.  Used to see which of several clients
-- was answered first, by order rather than by timing.
function F.first_reply(conns, timeout)
  local deadline = socket.gettime() + (timeout or 10)
  while true do
    for i, c in ipairs(conns) do
      if #c.buf > 0 and c.buf:find("\n", 1, true) then return i, c:reply(deadline) end
    end
    local socks = {}
    for i, c in ipairs(conns) do socks[i] = c.sock end
    local left = deadline - socket.gettime()
    if left <= 0 then error("no reply on any connection", 2) end
    local ready = socket.select(socks, nil, left)
    for i, c in ipairs(conns) do
      if ready[c.sock] then
        c:fill(deadline)
        if c.buf:find("\n", 1, true) then return i, c:reply(deadline) end
      end
    end
  end
end

-- A gate: a proxy in front of a real memcached server (upstream, a table
-- with .port) that passes everything through, except that it can HOLD a
-- reply, to force the order of racing requests without timing:
--   gate.hold(key)     from now on, a get/gets/gat/gats/mg naming key (on any
--                      connection) is passed to memcached at once, but the
--                      replies on that connection are held back;
--   gate.held(key)     true once such a reply has come back from memcached
--                      (so memcached has executed the request) and is held;
--   gate.release(key)  lets the held replies go, and stops holding key.
-- Requests keep flowing to memcached while replies are held: a request
-- that follows the held one on the same connection is executed after it,
-- and its reply, held too, comes after it.  Every request line is noted
-- as it is passed on ("<connection number> <line>"), for gate.seen().
-- Returns { port, addr, hold, held, release, seen, stop }.
function F.gate_server(upstream)
  local port = H.free_port()
  local dir = string.format("%s/gate-%d", H.tmpdir, port)
  os.execute("rm -rf " .. H.quote(dir) .. " && mkdir -p " .. H.quote(dir))
  local code = string.format([[
import os, socket, threading, time
DIR, UP, PORT = %q, %d, %d
STORAGE = (b"set", b"add", b"replace", b"append", b"prepend", b"cas")
RETRIEVAL = (b"get", b"gets", b"gat", b"gats", b"mg")
log_lock = threading.Lock()

def note(n, line):
    with log_lock:
        with open(os.path.join(DIR, "seen"), "ab") as f:
            f.write(b"%%d " %% n + line + b"\n")

def hold_file(k):
    return os.path.join(DIR, "hold." + k.decode())

def serve(n, c):
    u = socket.create_connection(("127.0.0.1", UP))
    st = {"hold": None}
    lock = threading.Lock()

    def down():
        while True:
            try:
                d = u.recv(65536)
            except OSError:
                d = b""
            if not d:
                c.close()
                return
            with lock:
                k = st["hold"]
            if k is not None:
                open(os.path.join(DIR, "held." + k.decode()), "w").close()
                while os.path.exists(hold_file(k)):
                    time.sleep(0.005)
                with lock:
                    st["hold"] = None
            try:
                c.sendall(d)
            except OSError:
                return

    threading.Thread(target=down, daemon=True).start()
    buf = b""
    while True:
        try:
            d = c.recv(65536)
        except OSError:
            d = b""
        if not d:
            u.close()
            return
        buf += d
        while b"\r\n" in buf:
            line, rest = buf.split(b"\r\n", 1)
            parts = line.split()
            n_out = len(line) + 2
            datalen = (parts[4] if parts and parts[0] in STORAGE and len(parts) >= 5 else
                       parts[2] if parts and parts[0] == b"ms" and len(parts) >= 3 else None)
            if datalen is not None:
                need = int(datalen) + 2
                if len(rest) < need:
                    break
                n_out += need
            if parts and parts[0] in RETRIEVAL:
                keys = (parts[1:] if parts[0] in (b"get", b"gets") else
                        parts[1:2] if parts[0] == b"mg" else parts[2:])
                for k in keys:
                    if os.path.exists(hold_file(k)):
                        with lock:
                            st["hold"] = k
            note(n, line)
            u.sendall(buf[:n_out])
            buf = buf[n_out:]

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", PORT))
s.listen(64)
n = 0
while True:
    c, _ = s.accept()
    n += 1
    threading.Thread(target=serve, args=(n, c), daemon=True).start()
]], dir, upstream.port, port)
  local srv = H.start_python_server(code, "gate", port)
  local function path(name) return dir .. "/" .. name end
  srv.hold = function(key)
    os.remove(path("held." .. key))
    assert(io.open(path("hold." .. key), "w")):close()
  end
  srv.held = function(key)
    local f = io.open(path("held." .. key), "r")
    if f then f:close() end
    return f ~= nil
  end
  srv.release = function(key) os.remove(path("hold." .. key)) end
  srv.seen = function() return H.read_file(path("seen")) end
  return srv
end

return F
