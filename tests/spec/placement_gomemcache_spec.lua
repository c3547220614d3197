-- placement_gomemcache_spec.lua -- hash = "gomemcache" finds every key
-- bradfitz/gomemcache (Debian's golang-github-bradfitz-gomemcache-dev)
-- placed itself: the app lists a server k times for weight k, the gateway
-- says weight = k.  Keys: every byte gomemcache's legalKey allows
-- (0x21..0x7e), up to 250 bytes.  The Go program is built here, offline
-- (GOPATH mode against the Debian source), into tests/tmp.  The pattern:
-- see placement.lua.
local H = require "harness"
local P = require "placement"

-- argv: "host:port,..." (a server repeated as many times as its weight)
-- keyfile.
local MAIN = [[
package main

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/bradfitz/gomemcache/memcache"
)

func main() {
	mc := memcache.New(strings.Split(os.Args[1], ",")...)
	f, err := os.Open(os.Args[2])
	if err != nil {
		panic(err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		raw, err := hex.DecodeString(line)
		if err != nil {
			panic(err)
		}
		n := len(line)
		if n > 16 {
			n = 16
		}
		value := fmt.Sprintf("v:%s:%d", line[:n], len(raw))
		if err := mc.Set(&memcache.Item{Key: string(raw), Value: []byte(value)}); err != nil {
			fmt.Fprintf(os.Stderr, "set %q: %v\n", raw, err)
			os.Exit(1)
		}
	}
}
]]

-- Build the writer once per run: GOPATH mode (the Debian package is a
-- GOPATH source tree), no network, a build cache of our own.
local function build()
  local dir = H.tmpdir .. "/placement-gomemcache"
  os.execute("mkdir -p " .. H.quote(dir))
  H.write_file(dir .. "/main.go", MAIN)
  local bin = dir .. "/writer"
  local out, ok = H.run(string.format(
    "cd %s && GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= GOPROXY=off " ..
    "GOCACHE=\"$(pwd)/gocache\" go build -o writer . 2>&1", H.quote(dir)))
  assert(ok, "go build: " .. out)
  return bin
end

describe("hash = gomemcache", function()
  it("finds every key gomemcache put on three servers listed 1, 2 and 3 times", function()
    local bin = build()
    local r = P.migrate {
      hash = "gomemcache", weights = { 1, 2, 3 }, n = 5000,
      keys = { max_len = 250, bytes = "printable", seed = 41 },
      write = function(servers, keyfile)
        local list = {}
        for _, s in ipairs(servers) do
          for _ = 1, s.weight do list[#list + 1] = s.addr end
        end
        local out = H.run(string.format("%s %s %s 2>&1; echo rc=$?", H.quote(bin),
          table.concat(list, ","), H.quote(keyfile)))
        assert(out:match("rc=0"), out)
      end,
    }
    P.assert_all_found(r)
    -- the weights show: about 1/6, 2/6, 3/6 of the keys
    assert(r.items[1] < r.items[2] and r.items[2] < r.items[3],
      "items per server: " .. table.concat(r.items, ", "))
  end)

  -- Repeats that are not next to each other are no weight: the pool lists
  -- the server again in the same places.
  it("finds every key when the app lists a server twice, apart (a, b, a, c)", function()
    local bin = build()
    local add, stop_all = H.cleanups()
    finally(stop_all)
    local m = {}
    for i = 1, 3 do
      m[i] = H.start_memcached()
      add(m[i].stop)
    end
    local list = { m[1].addr, m[2].addr, m[1].addr, m[3].addr }
    local keys = P.keys(2000, { max_len = 250, bytes = "printable", seed = 42 })
    local hex = {}
    for i, k in ipairs(keys) do hex[i] = P.hex(k) end
    local keyfile = H.tmpdir .. "/placement-gomemcache-apart.txt"
    H.write_file(keyfile, table.concat(hex, "\n") .. "\n")
    local out = H.run(string.format("%s %s %s 2>&1; echo rc=$?", H.quote(bin),
      table.concat(list, ","), H.quote(keyfile)))
    assert(out:match("rc=0"), out)
    local servers = {}
    for i, a in ipairs(list) do servers[i] = string.format("%q", a) end
    local g = H.start_gateway(string.format([[
      local pool = memcache.pool { servers = { %s }, hash = "gomemcache" }
      memcache.route { default = pool }
    ]], table.concat(servers, ", ")))
    add(g.stop)
    local found = P.read_through(g.port, keys)
    local items = {}
    for i = 1, 3 do
      items[i] = tonumber(H.parse_stats(H.request(m[i].port, "stats\r\n")).curr_items)
      assert(items[i] > 0, "server " .. i .. " holds no keys")
    end
    -- a: 2 of 4 slots, b and c: 1 each
    assert(items[1] > items[2] and items[1] > items[3], table.concat(items, ", "))
    assert.are.equal(#keys, found)
  end)
end)
