-- config_spec.lua -- the command line and config validation.
--
--   ./gateway --check FILE   exit 0 and "FILE: ok", or exit 1 and
--                            "FILE:LINE: message" for a broken config
--   ./gateway FILE           refuses a broken config the same way
--   --version, --help, -l (overrides gateway.listen), -t N (threads)
--
-- Run from the repo root:
--   busted --lpath='./lua/?.lua;./lua/?/init.lua;./tests/spec/?.lua' tests/spec/config_spec.lua
local H = require "harness"
local F = require "fakes"

-- Run the gateway; returns stdout, stderr, exit status.
local function gateway(args)
  local errfile = string.format("%s/config-spec-%d.err", H.tmpdir, H.free_port())
  local out = H.run(string.format("timeout 10 %s %s 2>%s; echo \"EXIT=$?\"",
    H.quote(H.gateway_bin), args, H.quote(errfile)))
  local status = tonumber(out:match("EXIT=(%d+)\n$"))
  out = out:gsub("EXIT=%d+\n$", "")
  local err = H.read_file(errfile)
  os.remove(errfile)
  return out, err, status
end

local function check(path)
  return gateway("--check " .. H.quote(path))
end

local counter = 0
local function config(text)
  counter = counter + 1
  return H.write_config(text, string.format("config-spec-%d-%d.lua", H.free_port(), counter))
end

local GOOD = [[
-- a good config
gateway.listen "127.0.0.1:%d"
gateway.settings { threads = 2, max_value_size = "1MB", instruction_limit = 100000 }
local main = memcache.pool {
  servers = { "127.0.0.1:%d", { "127.0.0.1:%d", weight = 2 } },
  hash = "python-memcached",
  timeout = 0.5,
}
local near = memcache.internal { size = "8MB" }
memcache.route {
  ["t1:"] = function(req) req.key = "tenant1/" .. req.key:sub(4); return main end,
  ["near:"] = near,
  default = main,
}
]]

local function good_config(listen_port)
  return GOOD:format(listen_port or H.free_port(), H.free_port(), H.free_port())
end

describe("gateway --check", function()
  it("accepts a good config: exit 0, \"FILE: ok\"", function()
    local path = config(good_config())
    local out, err, status = check(path)
    assert.are.equal(0, status, err)
    assert.are.equal(path .. ": ok\n", out)
    assert.are.equal("", err)
    -- the shipped example too
    local ex_out, ex_err, ex_status = check(H.root .. "/gateway.lua.example")
    assert.are.equal(0, ex_status, ex_err)
    assert.are.equal(H.root .. "/gateway.lua.example: ok\n", ex_out)
    -- and every example script
    for _, name in ipairs({ "python-memcached.lua" }) do
      local path = H.root .. "/scripts/" .. name
      local s_out, s_err, s_status = check(path)
      assert.are.equal(0, s_status, s_err)
      assert.are.equal(path .. ": ok\n", s_out)
    end
  end)

  -- Each case: config text, the line the message must name, and a pattern
  -- the message must match.
  local cases = {
    { "a syntax error", "local main = memcache.internal {}\n\nlocal x = = 1\nmemcache.route { default = main }\n",
      3, "unexpected symbol" },
    { "a syntax error at the end of the file", "local main = memcache.internal {}\nmemcache.route { default = main\n",
      3, "expected" }, -- Lua names the line of <eof>
    { "a runtime error in top-level code", "local main = memcache.internal {}\nmemcache.route { default = main }\nlocal t\n\nt.x = 1\n",
      5, "attempt to index a nil value" },
    { "error() in top-level code", "local main = memcache.internal {}\nerror(\"my own message\")\n",
      2, "my own message" },
    { "a pool with no servers", "local x = 1\nlocal main = memcache.pool { servers = {} }\nmemcache.route { default = main }\n",
      2, "servers" },
    { "a pool with no servers (multi-line call)",
      "local x = 1\n\nlocal main = memcache.pool {\n  servers = {},\n  timeout = 0.5,\n}\nmemcache.route { default = main }\n",
      3, "servers" },
    { "an unknown hash", "local main = memcache.pool { servers = { \"127.0.0.1:11211\" }, hash = \"nope\" }\nmemcache.route { default = main }\n",
      1, "nope" },
    { "an address without a port", "\n\nlocal main = memcache.pool { servers = { \"127.0.0.1\" } }\nmemcache.route { default = main }\n",
      3, "127%.0%.0%.1" },
    { "a port out of range", "local main = memcache.pool {\n  servers = { \"127.0.0.1:99999\" } }\nmemcache.route { default = main }\n",
      1, "99999" },
    { "a bad weight", "local main = memcache.pool { servers = { { \"127.0.0.1:1\", weight = 0 } } }\nmemcache.route { default = main }\n",
      1, "weight" },
    { "an unknown pool option", "local main = memcache.pool { servers = { \"127.0.0.1:1\" }, hsah = \"ketama\" }\nmemcache.route { default = main }\n",
      1, "hsah" },
    { "an unknown settings key", "local main = memcache.internal {}\n\ngateway.settings { threads = 2, bogus = 1 }\nmemcache.route { default = main }\n",
      3, "bogus" },
    { "bad threads", "gateway.settings { threads = 0 }\nmemcache.route { default = memcache.internal {} }\n",
      1, "threads" },
    { "a route target that is a string", "local main = memcache.internal {}\nmemcache.route {\n  [\"x:\"] = \"main\",\n  default = main }\n",
      2, "x:" },
    { "a route target that is a table", "local main = memcache.internal {}\n\n\nmemcache.route { default = { main } }\n",
      4, "default" },
    { "a bad listen address", "gateway.listen \"nowhere\"\nmemcache.route { default = memcache.internal {} }\n",
      1, "nowhere" },
    { "a bad internal size", "local near = memcache.internal { size = \"lots\" }\nmemcache.route { default = near }\n",
      1, "lots" },
    { "a misspelled gateway.listen option", "gateway.listen { \"127.0.0.1:1\", auht = \"users\" }\nmemcache.route { default = memcache.internal {} }\n",
      1, "unknown option 'auht'" },
    { "an auth that is no path", "local x = 1\ngateway.listen { \"127.0.0.1:1\", auth = 5 }\nmemcache.route { default = memcache.internal {} }\n",
      2, "auth must be the path of a users file" },
    { "a missing users file", "local x = 1\n\ngateway.listen { \"127.0.0.1:1\", auth = \"no-such-users\" }\nmemcache.route { default = memcache.internal {} }\n",
      3, "cannot read the users file .*no%-such%-users: No such file" },
  }

  for _, c in ipairs(cases) do
    local name, text, line, pat = c[1], c[2], c[3], c[4]
    it("refuses " .. name .. ": exit 1, FILE:" .. line .. ": message", function()
      local path = config(text)
      local out, err, status = check(path)
      local all = out .. err
      assert.are.equal(1, status, all)
      local msg = all:match("^" .. path:gsub("%p", "%%%0") .. ":" .. line .. ": ([^\n]+)\n$")
      assert.is_truthy(msg, "want \"" .. path .. ":" .. line .. ": ...\", got:\n" .. all)
      assert.is_truthy(msg:match(pat), "message does not mention " .. pat .. ": " .. msg)
      assert.is_falsy(all:match("stack traceback"), all)
      assert.is_falsy(all:match(": ok\n"), all)
    end)
  end

  it("refuses a config that routes nothing, and a missing file", function()
    local path = config("local near = memcache.internal {}\n")
    local out, err, status = check(path)
    assert.are.equal(1, status, out .. err)
    assert.is_truthy((out .. err):find(path, 1, true), out .. err)
    local missing = H.tmpdir .. "/no-such-config.lua"
    out, err, status = check(missing)
    assert.are.equal(1, status, out .. err)
    assert.is_truthy((out .. err):find(missing, 1, true), out .. err)
  end)

  it("a broken config stops the gateway from starting, with the same message on stderr", function()
    local port = H.free_port()
    local path = config("local main = memcache.internal {}\n\nmemcache.route { default = main, [\"x:\"] = 42 }\n")
    local _, cerr, cstatus = check(path)
    assert.are.equal(1, cstatus)
    local out, err, status = gateway("-l 127.0.0.1:" .. port .. " " .. H.quote(path))
    assert.is_true(status ~= 0 and status ~= 124, "exit status " .. tostring(status))
    assert.is_truthy(err:find(path .. ":3: ", 1, true), "stderr:\n" .. err)
    assert.is_truthy(err:find(cerr, 1, true), "--check said:\n" .. cerr .. "the gateway said:\n" .. err)
    assert.are.equal("", out)
    assert.is_falsy(H.can_connect(port))
    -- a syntax error too
    local path2 = config("memcache.route {\n  default = memcache.internal {}\n}}\n")
    out, err, status = gateway("-l 127.0.0.1:" .. port .. " " .. H.quote(path2))
    assert.is_true(status ~= 0 and status ~= 124, "exit status " .. tostring(status))
    assert.is_truthy(err:find(path2 .. ":3: ", 1, true), "stderr:\n" .. err)
  end)
end)

-- gateway.listen { ..., auth = "users" }: the users file is read with the
-- config (relative to its folder), a bad one refused with its path:line,
-- shown in /config without its hashes, and read again by every reload.
describe("users files (gateway.listen's auth)", function()
  -- mkpasswd -m yescrypt -R 1: alice-pw, "bob pw with spaces"
  local ALICE = "alice:$y$j75$ojOuLtao.0dqneIYtXqAv1$peSRkpgH9pkxFrZa9jVYWcPbE1Bt7NOjaGJRAvx951A\n"
  local BOB = "bob:$y$j75$Hr68nhGiVcfgc3Z478Ixi0$Qu60pgUwyw6fykRzE0z/uutOUG18ehgMF1eIsamRWFD\n"
  local MD5 = "bob:$1$4CHoEdVK$DIJSYvAeeIuOYUn/Y3JlI0\n"

  local function users_file(text)
    counter = counter + 1
    local name = string.format("config-spec-users-%d-%d", H.free_port(), counter)
    H.write_file(H.tmpdir .. "/" .. name, text)
    return name, H.tmpdir .. "/" .. name
  end

  -- n free ports, all different (a port is only known free until bound)
  local function ports(n)
    local list, seen = {}, {}
    while #list < n do
      local p = H.free_port()
      if not seen[p] then
        seen[p] = true
        list[#list + 1] = p
      end
    end
    return table.unpack(list)
  end

  local function auth_config(users, port, sasl_port, extra)
    if not port then port, sasl_port = ports(2) end
    return string.format('gateway.listen "127.0.0.1:%d"\n'
      .. 'gateway.listen { "127.0.0.1:%d", name = "sasl", auth = %q }\n%s'
      .. "memcache.route { default = memcache.internal {} }\n", port, sasl_port, users, extra or "")
  end

  it("--check takes a good users file, named relative to the config's folder", function()
    local name = users_file("# two users\n" .. ALICE .. "\n" .. BOB)
    local path = config(auth_config(name))
    local out, err, status = check(path)
    assert.are.equal(0, status, out .. err)
    assert.are.equal(path .. ": ok\n", out)
    -- and an empty one (nobody may log in yet)
    name = users_file("# nobody yet\n")
    path = config(auth_config(name))
    out, err, status = check(path)
    assert.are.equal(0, status, out .. err)
  end)

  it("--check refuses a bad users file: its path:line and what is wrong, then the config's line", function()
    local cases = {
      { ALICE .. "\n" .. MD5, 3, "user 'bob': md5crypt hashes are too weak" },
      { "alice:D82Wtqx8JSCIg\n", 1, "user 'alice': a DES crypt hash: too weak" },
      { ALICE .. BOB .. ALICE, 3, "user 'alice' is given twice (first at line 1)" },
      { "alice\n", 1, "expected name:hash" },
      { "alice:alice-pw\n", 1, "user 'alice': not a crypt(3) hash" },
    }
    for _, c in ipairs(cases) do
      local name, upath = users_file(c[1])
      local path = config(auth_config(name))
      local out, err, status = check(path)
      local all = out .. err
      assert.are.equal(1, status, all)
      local want = upath .. ":" .. c[2] .. ": " .. c[3]
      assert.are.equal(want, all:sub(1, #want), all)
      assert.is_truthy(all:find("(the users file of gateway.listen at " .. path .. ":2)\n", 1, true), all)
      assert.is_falsy(all:find("4CHoEdVK", 1, true), "a hash in the message: " .. all)
    end
  end)

  it("shows in /config, is read again by a reload, and a bad one fails the reload, the old config staying",
    function()
      local name, upath = users_file(ALICE)
      local port, sasl, admin = ports(3)
      local gw = F.start_gateway_own_listeners(auth_config(name, port, sasl,
        string.format("gateway.admin(%d)\n", admin)), { port, sasl, admin })
      local ok, err = pcall(function()
        local function listener()
          local _, _, body = H.http(admin, "GET", "/config")
          local cfg = H.json(body)
          assert.is_falsy(body:find("$y$", 1, true), "a hash in /config")
          for _, l in ipairs(cfg.listeners) do
            if l.name == "sasl" then return l end
          end
          error("no sasl listener in /config: " .. body)
        end
        local function stats()
          local s = {}
          for k, v in H.request(port, "stats\r\n", F.RAW):gmatch("STAT (%S+) ([^\r]*)") do s[k] = v end
          return s
        end
        assert.are.same({ users_file = upath, users = 1 }, listener().auth)
        -- the users file is watched, as the config's Lua files are
        H.write_file(upath, ALICE .. BOB)
        H.wait_for(function()
          local l = listener()
          return l.auth.users == 2, l.auth.users
        end, 5, "the reload that reads two users")
        -- a bad users file: the reload fails, naming the file (no directory
        -- for clients) and the line; the config serving keeps its users
        local failures = tonumber(stats().gw_reload_failures)
        H.write_file(upath, ALICE .. "\n" .. MD5)
        local s = H.wait_for(function()
          local st = stats()
          return tonumber(st.gw_reload_failures) > failures and st, st.gw_last_reload_error
        end, 5, "the failed reload")
        local want = name .. ":3: user 'bob': md5crypt hashes are too weak"
        assert.are.equal(want, s.gw_last_reload_error:sub(1, #want))
        assert.is_falsy(s.gw_last_reload_error:find("tests/tmp", 1, true), s.gw_last_reload_error)
        assert.are.equal(2, listener().auth.users)
        assert.is_truthy(gw.output():find("reload failed, the running config stays: " .. upath .. ":3: ",
          1, true), gw.output())
        -- a good file again
        H.write_file(upath, BOB)
        H.wait_for(function()
          local l = listener()
          return l.auth.users == 1 and stats().gw_last_reload_result == "ok", l.auth.users
        end, 5, "the reload that reads one user")
      end)
      gw.stop()
      assert(ok, err)
    end)

  it("-l replaces the listeners and their auth, and says so", function()
    local name = users_file(ALICE)
    local gw = H.start_gateway(auth_config(name), { config_name = "config-spec-auth-l-" .. H.free_port() .. ".lua" })
    local ok, err = pcall(H.wait_for, function()
      local out = H.read_file(H.tmpdir .. "/gateway-" .. gw.port .. ".log")
      return out:find("-l 127.0.0.1:" .. gw.port .. " replaces the config's listeners, and with them "
        .. "their auth: clients of 127.0.0.1:" .. gw.port .. " are not asked to log in", 1, true), out
    end, 5, "the warning")
    gw.stop()
    assert(ok, err)
  end)
end)

describe("the command line", function()
  it("--version", function()
    local out, err, status = gateway("--version")
    assert.are.equal(0, status, err)
    assert.are.equal("gateway 0.1.0\n", out)
  end)

  it("--help and -h", function()
    for _, flag in ipairs({ "--help", "-h" }) do
      local out, err, status = gateway(flag)
      assert.are.equal(0, status, err)
      assert.is_truthy(out:match("^usage: gateway"), out)
      for _, opt in ipairs({ "--check", "--listen", "--threads", "--version", "--help" }) do
        assert.is_truthy(out:find(opt, 1, true), flag .. " does not mention " .. opt .. ":\n" .. out)
      end
    end
  end)

  it("an unknown option is refused", function()
    local out, err, status = gateway("--bogus")
    assert.are_not.equal(0, status)
    assert.is_truthy((out .. err):match("usage"), out .. err)
  end)

  local function stats(port)
    local c = H.connect(port)
    c:send("stats\r\n")
    local s = {}
    while true do
      local l = assert(c:line())
      if l == "END" then break end
      local k, v = l:match("^STAT (%S+) (.*)$")
      assert(k, l)
      s[k] = v
    end
    c:close()
    return s
  end

  it("gateway.listen is used when there is no -l", function()
    local port = H.free_port()
    local path = config(good_config(port))
    local log = H.tmpdir .. "/config-spec-listen-" .. port .. ".log"
    local pid = tonumber(H.run(string.format("(exec %s %s) >%s 2>&1 & echo $!",
      H.quote(H.gateway_bin), H.quote(path), H.quote(log))):match("%d+"))
    local ok, err = pcall(H.wait_until, function()
      if not H.alive(pid) then error("gateway exited:\n" .. H.read_file(log)) end
      return H.can_connect(port)
    end, 5, "the gateway on gateway.listen's port " .. port)
    local s = ok and stats(port)
    H.run("kill " .. pid)
    pcall(H.wait_until, function() return not H.alive(pid) end, 5)
    if H.alive(pid) then H.run("kill -KILL " .. pid) end
    assert(ok, err)
    assert.are.equal("2", s.threads) -- gateway.settings { threads = 2 }
  end)

  it("-l overrides gateway.listen", function()
    local cport = H.free_port()
    local gw = H.start_gateway(good_config(cport)) -- the harness passes -l
    local ok, err = pcall(function()
      assert.is_truthy(H.can_connect(gw.port))
      assert.is_falsy(H.can_connect(cport), "also listening on the config's port " .. cport)
      assert.is_truthy(stats(gw.port).pid)
    end)
    gw.stop()
    assert(ok, err)
  end)

  it("-t N starts N threads (over gateway.settings)", function()
    local gw = H.start_gateway(good_config(), { args = "-t 3" })
    local gw1 = H.start_gateway(good_config(), { args = "--threads 1" })
    local ok, err = pcall(function()
      assert.are.equal("3", stats(gw.port).threads)
      assert.are.equal("1", stats(gw1.port).threads)
      -- the threads serve: many connections at once all get answers
      local conns = {}
      for i = 1, 12 do
        conns[i] = H.connect(gw.port)
        conns[i]:send("set near:c" .. i .. " 0 0 1\r\n" .. (i % 10) .. "\r\n")
      end
      for i = 1, 12 do
        assert.are.equal("STORED", conns[i]:line())
        conns[i]:send("get near:c" .. i .. "\r\n")
        assert.are.equal("VALUE near:c" .. i .. " 0 1\n" .. (i % 10) .. "\nEND\n",
          (conns[i]:reply():gsub("\r", "")))
        conns[i]:close()
      end
    end)
    gw.stop()
    gw1.stop()
    assert(ok, err)
  end)

  it("-t outside 1..256 is refused", function()
    local path = config(good_config())
    for _, n in ipairs({ "0", "257", "x" }) do
      local out, err, status = gateway("-t " .. n .. " --check " .. H.quote(path))
      assert.are_not.equal(0, status, "-t " .. n .. ": " .. out .. err)
    end
  end)
end)
