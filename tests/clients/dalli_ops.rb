#!/usr/bin/ruby
# frozen_string_literal: true

# dalli_ops.rb -- Dalli 3.0.6 (Debian's ruby-dalli; the binary protocol, the
# only one that version speaks) against one memcached-compatible endpoint.
#
#   ruby tests/clients/dalli_ops.rb HOST:PORT [--keep N]
#
# Covers what Dalli users do: get and set (Marshal'd objects, raw strings,
# binary bytes, TTLs), get_multi (100 keys plus misses, with and without a
# block, with a namespace), cas / cas! / get_cas / set_cas / replace_cas /
# delete_cas / get_multi_cas and the two-client race, incr and decr (with
# and without a default, 64-bit wrap, floor at 0), delete, touch and gat,
# fetch (miss runs the block and stores, hit does not), add, replace,
# append and prepend on raw values, quiet mode (Dalli's multi block: SETQ,
# DELETEQ ... and a NOOP), a 500 KB value (compressed and raw), version and
# stats.  Dalli swallows some server failures (get_multi only logs them at
# debug level and returns what it has), so everything Dalli logs is kept
# and a test that made Dalli log a failure fails.
#
# Prints one line per test, "ok <name>" or "not ok <name>: <why>", then with
# --keep N, N lines "keep <key> <value>" (raw ASCII values left in the cache
# for the caller to find on the servers), then "done <passed>/<total>".
# Exit status is non-zero when any test fails.  No test flushes.

require 'dalli'
require 'logger'
require 'securerandom'
require 'stringio'

def usage(msg)
  warn "dalli_ops.rb: #{msg}"
  warn 'usage: dalli_ops.rb HOST:PORT [--keep N]'
  exit 2
end

TARGET = ARGV.shift
usage('HOST:PORT required') unless TARGET&.match?(/\A[^:]+:\d+\z/)
KEEP = ARGV[0] == '--keep' ? Integer(ARGV[1]) : 0
usage("unknown arguments #{ARGV.inspect}") unless ARGV.empty? || (ARGV[0] == '--keep' && ARGV.size == 2)

LOG = StringIO.new
Dalli.logger = Logger.new(LOG, level: Logger::DEBUG)
# What Dalli logs when a server failed or answered what it did not expect.
FAILURE_LOG = /unable|missing|did not respon|retrying|NetworkError|DalliError|down|failed|error/i

NS = "dalli#{Process.pid}_#{SecureRandom.hex(3)}:"
$cur = NS

def k(name)
  $cur + name
end

# protocol: :binary is what 3.0.6 always speaks; later 3.x read it to
# stay off meta.
def client(**opts)
  Dalli::Client.new(TARGET, { protocol: :binary, socket_timeout: 5, down_retry_delay: 1,
                              socket_max_failures: 1 }.merge(opts))
end

class Fail < StandardError; end

def check(cond, msg)
  raise Fail, msg unless cond
end

def eq(got, want, what)
  raise Fail, "#{what}: got #{got.inspect[0, 200]}, want #{want.inspect[0, 200]}" unless got == want
end

# Dalli 3.0.6 answers a successful set, add or replace with the item's new
# CAS (falsy when not stored).
def stored(got, what)
  raise Fail, "#{what}: got #{got.inspect}, want a CAS (an Integer > 0)" unless got.is_a?(Integer) && got.positive?
end

TESTS = []
def test(name, &block)
  TESTS << [name, block]
end

MC = client

# --- get / set -----------------------------------------------------------------

test 'set_get' do
  stored MC.set(k('str'), 'bar'), 'set a string'
  eq MC.get(k('str')), 'bar', 'get'
  obj = { 'a' => [1, 2.5, nil, true], :sym => 'ü', 'big' => 2**70 }
  stored MC.set(k('obj'), obj), 'set a Marshal\'d hash'
  eq MC.get(k('obj')), obj, 'get it back'
  stored MC.set(k('obj'), 'over'), 'overwrite'
  eq MC.get(k('obj')), 'over', 'overwritten'
  bin = (0..255).map(&:chr).join.b + "\r\nEND\r\n".b
  stored MC.set(k('bin'), bin, nil, raw: true), 'set raw bytes'
  eq MC.get(k('bin'), raw: true), bin, 'get raw bytes'
  stored MC.set(k('empty'), '', nil, raw: true), 'set empty'
  eq MC.get(k('empty'), raw: true), '', 'get empty'
  stored MC.set(k('ключ'), 'значение'), 'UTF-8 key'
  eq MC.get(k('ключ')), 'значение', 'get UTF-8 key'
end

test 'get_miss' do
  eq MC.get(k('never-set')), nil, 'miss'
  eq MC.get(k('never-set'), raw: true), nil, 'raw miss'
end

test 'set_ttl' do
  stored MC.set(k('ttl'), 'short', 1), 'set ttl 1'
  eq MC.get(k('ttl')), 'short', 'at once'
  sleep 2.6
  eq MC.get(k('ttl')), nil, 'after 2.6 s'
end

# --- add / replace / delete ------------------------------------------------------

test 'add_replace' do
  stored MC.add(k('a'), 'first'), 'add new'
  eq MC.add(k('a'), 'second'), false, 'add existing'
  eq MC.get(k('a')), 'first', 'kept'
  eq MC.replace(k('r'), 'x'), 0, 'replace missing (Dalli 3.0.6 answers the miss\'s CAS, 0)'
  eq MC.get(k('r')), nil, 'still missing'
  stored MC.set(k('r'), 'x'), 'set'
  stored MC.replace(k('r'), 'y'), 'replace existing'
  eq MC.get(k('r')), 'y', 'replaced'
end

test 'delete' do
  stored MC.set(k('d'), 'x'), 'set'
  eq MC.delete(k('d')), true, 'delete existing'
  eq MC.get(k('d')), nil, 'gone'
  eq MC.delete(k('d')), nil, 'delete missing'
end

# --- get_multi -------------------------------------------------------------------

test 'get_multi' do
  data = (0...100).to_h { |i| [k("m#{i}"), "value-#{i}"] }
  data.each { |key, v| stored MC.set(key, v), "set #{key}" }
  want = data.keys + (0...10).map { |i| k("absent#{i}") }
  eq MC.get_multi(want), data, 'get_multi'
  eq MC.get_multi(*want.first(3)), data.first(3).to_h, 'get_multi with splatted keys'
  seen = {}
  MC.get_multi(want) { |key, v| seen[key] = v }
  eq seen, data, 'get_multi with a block'
  eq MC.get_multi([]), {}, 'no keys'
  eq MC.get_multi([k('absent0')]), {}, 'only misses'
end

test 'get_multi_namespace' do
  nsc = client(namespace: k('ns'))
  begin
    stored nsc.set('k1', 1), 'set in namespace'
    stored nsc.set('k2', 2), 'set in namespace'
    eq nsc.get_multi('k1', 'k2', 'k3'), { 'k1' => 1, 'k2' => 2 }, 'get_multi strips the namespace'
    eq MC.get("#{k('ns')}:k1"), 1, 'the stored key has the namespace'
  ensure
    nsc.close
  end
end

# --- cas -------------------------------------------------------------------------

test 'cas' do
  eq MC.cas(k('c')) { |v| v + 1 }, nil, 'cas on a missing key'
  eq MC.get(k('c')), nil, 'still missing'
  stored MC.set(k('c'), 1), 'set'
  stored MC.cas(k('c')) { |v| v + 1 }, 'cas'
  eq MC.get(k('c')), 2, 'updated'
  stored MC.cas!(k('c2')) { |v| "made from #{v.inspect}" }, 'cas! on a missing key'
  eq MC.get(k('c2')), 'made from nil', 'cas! stored'
end

test 'cas_race' do
  other = client
  begin
    stored MC.set(k('race'), 'v0'), 'set'
    v, cas = MC.get_cas(k('race'))
    eq v, 'v0', 'get_cas value'
    check cas.is_a?(Integer) && cas.positive?, "get_cas cas: #{cas.inspect}"
    stored other.set(k('race'), 'theirs'), 'another client sets'
    eq MC.set_cas(k('race'), 'mine', cas), false, 'set_cas with a stale cas'
    eq MC.get(k('race')), 'theirs', 'theirs kept'
    res = MC.cas(k('race')) do |cur|
      other.set(k('race'), 'theirs again')   # changes it between the get and the set
      cur + '+mine'
    end
    eq res, false, 'cas loses the race'
    eq MC.get(k('race')), 'theirs again', 'their write kept'
    v, cas = MC.get_cas(k('race'))
    newcas = MC.set_cas(k('race'), 'mine', cas)
    check newcas.is_a?(Integer) && newcas != cas, "set_cas with the right cas returns a new cas: #{newcas.inspect}"
    eq MC.get(k('race')), 'mine', 'set_cas stored'
    eq MC.replace_cas(k('race'), 'stale', cas), false, 'replace_cas with the old cas'
    newer = MC.replace_cas(k('race'), 'replaced', newcas)
    check newer.is_a?(Integer), "replace_cas with the right cas: #{newer.inspect}"
    eq MC.get(k('race')), 'replaced', 'replace_cas stored'
    eq MC.delete_cas(k('race'), newcas), false, 'delete_cas with a stale cas'
    eq MC.delete_cas(k('race'), newer), true, 'delete_cas with the right cas'
    eq MC.get(k('race')), nil, 'deleted'
    eq MC.get_cas(k('race')), [nil, 0], 'get_cas of a missing key'
  ensure
    other.close
  end
end

test 'get_multi_cas' do
  stored MC.set(k('g1'), 'a'), 'set'
  stored MC.set(k('g2'), 'b'), 'set'
  got = MC.get_multi_cas(k('g1'), k('g2'), k('g3'))
  eq got.keys.sort, [k('g1'), k('g2')], 'keys'
  eq got[k('g1')][0], 'a', 'value'
  _, cas1 = MC.get_cas(k('g1'))
  eq got[k('g1')][1], cas1, 'the cas get_cas sees'
end

# --- incr / decr -----------------------------------------------------------------

test 'incr_decr' do
  eq MC.incr(k('n')), nil, 'incr missing with no default'
  eq MC.get(k('n')), nil, 'nothing made'
  eq MC.incr(k('n'), 1, nil, 10), 10, 'incr missing with a default'
  eq MC.incr(k('n'), 5), 15, 'incr 5'
  eq MC.decr(k('n'), 3), 12, 'decr 3'
  eq MC.decr(k('n'), 100), 0, 'decr floors at 0'
  eq MC.get(k('n'), raw: true).strip, '0', 'stored as text (memcached pads a shrunk number with spaces)'
  eq MC.decr(k('n2'), 1, nil, 7), 7, 'decr missing with a default'
  stored MC.set(k('n3'), '41', nil, raw: true), 'set a number raw'
  eq MC.incr(k('n3')), 42, 'incr it'
  stored MC.set(k('big'), (2**64 - 2).to_s, nil, raw: true), 'set 2^64-2'
  eq MC.incr(k('big')), 2**64 - 1, 'incr to 2^64-1'
  eq MC.incr(k('big')), 0, 'incr wraps at 2^64'
end

test 'incr_non_numeric' do
  stored MC.set(k('s'), 'abc', nil, raw: true), 'set'
  err = begin
    MC.incr(k('s'))
    nil
  rescue Dalli::DalliError => e
    e
  end
  check err, 'incr of a non-number should raise'
  check err.message =~ /non-numeric/i, "error: #{err.message}"
  eq MC.get(k('s'), raw: true), 'abc', 'untouched'
  LOG.truncate(0)     # the error above is expected
  LOG.rewind
end

# --- touch / gat / fetch -----------------------------------------------------------

test 'touch_gat' do
  eq MC.touch(k('t'), 100), nil, 'touch missing'
  stored MC.set(k('t'), 'v'), 'set'
  eq MC.touch(k('t'), 100), true, 'touch existing'
  eq MC.gat(k('t'), 100), 'v', 'gat'
  eq MC.gat(k('t-missing'), 100), nil, 'gat missing'
  eq MC.touch(k('t'), 1), true, 'touch to 1 s'
  stored MC.set(k('t2'), 'w'), 'set'
  eq MC.gat(k('t2'), 1), 'w', 'gat to 1 s'
  sleep 2.6
  eq MC.get(k('t')), nil, 'expired after touch'
  eq MC.get(k('t2')), nil, 'expired after gat'
end

test 'fetch' do
  calls = 0
  v = MC.fetch(k('f'), 100) { calls += 1; { 'made' => calls } }
  eq v, { 'made' => 1 }, 'miss runs the block'
  eq MC.get(k('f')), { 'made' => 1 }, 'and stores its value'
  v = MC.fetch(k('f')) { calls += 1; 'again' }
  eq v, { 'made' => 1 }, 'hit'
  eq calls, 1, 'the block ran once'
  eq MC.fetch(k('f-none')), nil, 'miss with no block'
end

# --- append / prepend / quiet mode ------------------------------------------------

test 'append_prepend' do
  eq MC.append(k('ap'), 'x'), false, 'append to missing'
  eq MC.prepend(k('ap'), 'x'), false, 'prepend to missing'
  stored MC.set(k('ap'), 'mid', nil, raw: true), 'set raw'
  eq MC.append(k('ap'), '-end'), true, 'append'
  eq MC.prepend(k('ap'), 'start-'), true, 'prepend'
  eq MC.get(k('ap'), raw: true), 'start-mid-end', 'result'
end

test 'multi_quiet' do
  MC.multi do
    50.times { |i| MC.set(k("q#{i}"), "v#{i}") }
    MC.add(k('q0'), 'not stored, unseen')
    MC.replace(k('q1'), 'replaced')
    MC.delete(k('q2'))
  end
  want = (0...50).to_h { |i| [k("q#{i}"), "v#{i}"] }
  want[k('q1')] = 'replaced'
  want.delete(k('q2'))
  eq MC.get_multi((0...50).map { |i| k("q#{i}") }), want, 'after the quiet block'
  eq MC.get(k('q0')), 'v0', 'and a plain get on the same connection'
end

# --- size ------------------------------------------------------------------------

test 'large_value_500k' do
  big = SecureRandom.random_bytes(500 * 1024)
  stored MC.set(k('large-raw'), big, nil, raw: true), 'set 500 KB raw'
  eq MC.get(k('large-raw'), raw: true), big, 'get 500 KB raw'
  text = ('lorem ipsum dolor sit amet ' * 20_000)[0, 500 * 1024]
  stored MC.set(k('large-z'), text), 'set 500 KB (Dalli compresses it)'
  eq MC.get(k('large-z')), text, 'get it back'
  eq MC.get_multi(k('large-raw'), k('large-z')), { k('large-raw') => big, k('large-z') => text }, 'both in one get_multi'
end

# --- version / stats ---------------------------------------------------------------

test 'version_stats' do
  v = MC.version
  eq v.keys, [TARGET], 'version keys'
  check v[TARGET].to_s =~ /\A\d+\.\d+\.\d+/, "version: #{v.inspect}"
  puts "# version #{v[TARGET]}"
  st = MC.stats[TARGET]
  check st.is_a?(Hash), "stats: #{st.inspect}"
  %w[pid uptime time version curr_connections cmd_get cmd_set get_hits].each do |f|
    check st.key?(f), "stats has no #{f}: #{st.keys.inspect[0, 300]}"
  end
  check (st['time'].to_i - Time.now.to_i).abs < 60, "time: #{st['time']}"
  stored MC.set(k('st'), 'x'), 'set'
  eq MC.get(k('st')), 'x', 'get'
  after = MC.stats[TARGET]
  check after['cmd_get'].to_i >= st['cmd_get'].to_i + 1, 'cmd_get grew'
  check after['cmd_set'].to_i >= st['cmd_set'].to_i + 1, 'cmd_set grew'
end

# --- run ----------------------------------------------------------------------------

puts "# dalli #{Dalli::VERSION} -> #{TARGET}, keys #{NS}*"
$stdout.sync = true
passed = 0
TESTS.each do |name, block|
  $cur = "#{NS}#{name}:"
  LOG.truncate(0)
  LOG.rewind
  begin
    block.call
    logged = LOG.string.lines.grep(FAILURE_LOG)
    raise Fail, "Dalli logged failures: #{logged.join(' | ').strip}" unless logged.empty?
    passed += 1
    puts "ok #{name}"
  rescue Fail => e
    puts "not ok #{name}: #{e.message}"
  rescue StandardError => e
    puts "not ok #{name}: #{e.class}: #{e.message}\n#   #{e.backtrace.first(5).join("\n#   ")}" \
         "#{LOG.string.empty? ? '' : "\n#   Dalli logged: #{LOG.string.lines.map(&:strip).join(' | ')}"}"
  end
end

kept_ok = true
if KEEP.positive?
  $cur = "#{NS}keep:"
  begin
    KEEP.times do |i|
      key = k(i.to_s)
      value = "dalli-#{i}"
      stored MC.set(key, value, nil, raw: true), "set #{key}"
      puts "keep #{key} #{value}"
    end
  rescue StandardError => e
    kept_ok = false
    puts "not ok keep: #{e.class}: #{e.message}"
  end
end
MC.close
puts "done #{passed}/#{TESTS.size}"
exit(passed == TESTS.size && kept_ok ? 0 : 1)
