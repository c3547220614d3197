-- placement_node_memcached_spec.lua -- hash = "node-memcached" finds every
-- key node's `memcached` 2.2.2 (npm, with hashring 3.2.0; make spec installs
-- both into build/node) placed itself, given its servers as a weights object
-- { "host:port": weight }.  Keys are JS strings of printable ASCII and
-- UTF-8 characters (U+00A1..U+07FF), 1..250 bytes: the client hashes and
-- sends their UTF-8 bytes, and refuses whitespace.  No "$": the client
-- splices the key into its command with String.replace, so "$&", "$`",
-- "$'" and "$$" in a key change it on the wire (the gateway can only hash
-- what arrives).  Two cases: three servers with unequal weights, and seven
-- equal ones, where the client's double arithmetic gives each 39 md5
-- digests (156 points), not the 40 of single precision.  See placement.lua.
local H = require "harness"
local P = require "placement"

local NODE_PATH = H.root .. "/build/node/node_modules"

local WRITE = [[
const fs = require('fs');
const Memcached = require('memcached');
const servers = JSON.parse(process.argv[2]);
const mc = new Memcached(servers, { retries: 0, timeout: 5000, poolSize: 10 });
const lines = fs.readFileSync(process.argv[3], 'utf8').split('\n').filter(Boolean);
let next = 0, done = 0;
function one() {
  if (next >= lines.length) return;
  const hex = lines[next++];
  const key = Buffer.from(hex, 'hex').toString('utf8');
  const value = 'v:' + hex.slice(0, 16) + ':' + Buffer.byteLength(key);
  mc.set(key, value, 0, function (err) {
    if (err) { console.error('set failed: ' + JSON.stringify(key) + ': ' + err); process.exit(1); }
    if (++done === lines.length) { mc.end(); process.exit(0); }
    one();
  });
}
for (let i = 0; i < 8; i++) one();  // 8 in flight, under the pool's 10 connections a server
]]

-- P.BYTES.printable without "$"
local ALPHABET = P.BYTES.printable:gsub("%$", "")

local function node_write(script)
  return function(servers, keyfile)
    local t = {}
    for i, s in ipairs(servers) do t[i] = string.format("%q: %d", s.addr, s.weight) end
    local out = H.run(string.format("env NODE_PATH=%s node %s %s %s 2>&1; echo rc=$?",
      H.quote(NODE_PATH), H.quote(script), H.quote("{" .. table.concat(t, ", ") .. "}"),
      H.quote(keyfile)))
    assert(out:match("rc=0\n?$"), out)
  end
end

describe("hash = node-memcached", function()
  local script
  setup(function()
    local f = io.open(NODE_PATH .. "/memcached/package.json", "r")
    assert(f, "node memcached is not installed in " .. NODE_PATH ..
      " (make spec installs it: npm install --prefix build/node memcached@2.2.2)")
    f:close()
    script = H.write_config(WRITE, "placement-node-memcached.js")
  end)

  it("finds every key node memcached put on three weighted servers", function()
    local r = P.migrate {
      hash = "node-memcached", weights = { 1, 2, 3 }, n = 5000,
      keys = { bytes = ALPHABET, utf8 = true },
      write = node_write(script),
    }
    P.assert_all_found(r)
  end)

  it("finds every key node memcached put on seven equal servers (156 points each)", function()
    local r = P.migrate {
      hash = "node-memcached", weights = { 1, 1, 1, 1, 1, 1, 1 }, n = 5000,
      keys = { bytes = ALPHABET, utf8 = true, seed = 17 },
      write = node_write(script),
    }
    P.assert_all_found(r)
  end)
end)
