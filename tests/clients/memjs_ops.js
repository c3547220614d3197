#!/usr/bin/env node
// memjs_ops.js -- memjs (the binary protocol, SASL PLAIN) against one
// memcached-compatible endpoint.
//
//   NODE_PATH=build/node/node_modules node tests/clients/memjs_ops.js \
//       HOST:PORT [--user U --password P] [--keep N]
//
// Covers memjs's whole Client API (npm memjs, the version the Makefile
// pins): get, set (with expiry, and with flags through a serializer), add,
// replace, delete, increment, decrement (with an initial value, and on a
// value that is no number), append, prepend, touch, flush, stats, a raw
// version request (memjs has no version call), a 500 KB value, binary
// values, a UTF-8 key and 300 requests in flight at once on one connection.
// With --user/--password every connection authenticates with SASL PLAIN
// first, and two more tests run: a wrong password is refused, and a client
// with no credentials at all is refused, and neither stored anything.
//
// Prints one line per test, "ok <name>" or "not ok <name>: <why>", then
// with --keep N, N lines "keep <key> <value>": keys left in the cache for
// the caller to find on the servers (values are ASCII), then
// "done <passed>/<total>".  Exit status is non-zero when any test fails.
// NOTE: the flush test empties the whole endpoint (every server behind a
// gateway); the kept keys are written after it.
'use strict';

const crypto = require('crypto');
let memjs;
try {
  memjs = require('memjs');
} catch (e) {
  console.log('not ok require memjs: ' + e.message + ' (NODE_PATH=' + (process.env.NODE_PATH || '') + ')');
  process.exit(2);
}

function usage(msg) {
  console.error('memjs_ops.js: ' + msg);
  console.error('usage: memjs_ops.js HOST:PORT [--user U --password P] [--keep N]');
  process.exit(2);
}

const argv = process.argv.slice(2);
const opts = { keep: 0 };
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--user') opts.user = argv[++i];
  else if (a === '--password') opts.password = argv[++i];
  else if (a === '--keep') opts.keep = parseInt(argv[++i], 10);
  else if (!opts.target && !a.startsWith('-')) opts.target = a;
  else usage('unknown argument ' + a);
}
if (!opts.target || !/^[^:]+:\d+$/.test(opts.target)) usage('HOST:PORT required');
if ((opts.user === undefined) !== (opts.password === undefined)) usage('--user and --password go together');
const AUTH = opts.user !== undefined;

// memjs logs every error status to its logger; keep them for failure messages.
const LOG = [];
const logger = { log: (...args) => LOG.push(args.join(' ')) };

function client(extra) {
  return memjs.Client.create(opts.target, Object.assign({
    username: opts.user, password: opts.password,
    timeout: 5, conntimeout: 5, retries: 1, logger,
  }, extra || {}));
}

const NS = 'memjs' + process.pid + '_' + crypto.randomBytes(3).toString('hex') + ':';
let CUR = NS;
const K = (name) => CUR + name;

class Fail extends Error {}
function check(cond, msg) { if (!cond) throw new Fail(msg); }
function eq(got, want, what) {
  const show = (v) => Buffer.isBuffer(v) ? 'Buffer(' + v.length + ') ' + JSON.stringify(v.slice(0, 60).toString('latin1'))
                                         : JSON.stringify(v);
  const same = Buffer.isBuffer(want) ? Buffer.isBuffer(got) && want.equals(got) : got === want;
  if (!same) throw new Fail(what + ': got ' + show(got) + ', want ' + show(want));
}
async function rejects(promise, what) {
  try {
    const v = await promise;
    throw new Fail(what + ': succeeded (' + JSON.stringify(v) + '), should have been refused');
  } catch (e) {
    if (e instanceof Fail) throw e;
    return String(e && e.message || e);
  }
}
const TEST_TIMEOUT = 20;     // seconds for one test, so a lost reply fails it
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const str = (r) => r.value === null ? null : r.value.toString();

// One raw request through memjs's own machinery (for what its API lacks):
// resolves to the response {header, key, extras, val}.
function raw(c, opcode, key, extras, value) {
  return new Promise((resolve, reject) => {
    c.incrSeq();
    const req = memjs.Utils.makeRequestBuffer(opcode, key, extras || '', value || '', c.seq);
    c.perform(key, req, c.seq, (err, resp) => err ? reject(err) : resolve(resp));
  });
}

// stats: memjs calls back once per server; here there is one.
function stats(c) {
  return new Promise((resolve, reject) => {
    c.stats((err, server, st) => err ? reject(err) : resolve({ server, st }));
  });
}

const mc = client();
const tests = [];
const test = (name, fn) => tests.push({ name, fn });

// --- get / set -------------------------------------------------------------

test('set_get', async () => {
  eq(await mc.set(K('foo'), 'bar', {}), true, 'set');
  eq(str(await mc.get(K('foo'))), 'bar', 'get');
  eq(await mc.set(K('foo'), 'baz', {}), true, 'overwrite');
  eq(str(await mc.get(K('foo'))), 'baz', 'get after overwrite');
  const r = await mc.get(K('foo'));
  eq(r.flags.length, 4, 'flags extras length');
  eq(r.flags.readUInt32BE(0), 0, 'flags');
  eq(await mc.set(K('empty'), '', {}), true, 'set empty');
  eq((await mc.get(K('empty'))).value, Buffer.alloc(0), 'get empty');
});

test('get_miss', async () => {
  const r = await mc.get(K('never-set'));
  eq(r.value, null, 'value of a miss');
  eq(r.flags, null, 'flags of a miss');
});

test('binary_value', async () => {
  const v = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
                           Buffer.from('\r\nEND\r\nVALUE x 0 1\r\n')]);
  eq(await mc.set(K('bin'), v, {}), true, 'set');
  eq((await mc.get(K('bin'))).value, v, 'get');
});

test('utf8_key', async () => {
  eq(await mc.set(K('ключ-键'), 'значение', {}), true, 'set');
  eq(str(await mc.get(K('ключ-键'))), 'значение', 'get');
});

test('flags_through_serializer', async () => {
  const flagged = client({
    serializer: {
      serialize: (opcode, value, extras) => {
        if (opcode === 1 || opcode === 2 || opcode === 3) {
          extras = Buffer.from(extras);
          extras.writeUInt32BE(0xdeadbeef, 0);
        }
        return { value, extras };
      },
      deserialize: (opcode, value, extras) => ({ value, extras }),
    },
  });
  try {
    eq(await flagged.set(K('flagged'), 'v', {}), true, 'set');
    const r = await mc.get(K('flagged'));
    eq(str(r), 'v', 'get');
    eq(r.flags.readUInt32BE(0), 0xdeadbeef, 'flags');
  } finally {
    flagged.close();
  }
});

test('set_expires', async () => {
  eq(await mc.set(K('ttl'), 'short', { expires: 1 }), true, 'set expires 1');
  eq(str(await mc.get(K('ttl'))), 'short', 'get at once');
  await sleep(2600);
  eq(str(await mc.get(K('ttl'))), null, 'get after 2.6 s');
});

// --- add / replace / delete ------------------------------------------------

test('add', async () => {
  eq(await mc.add(K('a'), 'first', {}), true, 'add new');
  eq(await mc.add(K('a'), 'second', {}), false, 'add existing');
  eq(str(await mc.get(K('a'))), 'first', 'value kept');
});

test('replace', async () => {
  eq(await mc.replace(K('r'), 'x', {}), false, 'replace missing');
  eq(str(await mc.get(K('r'))), null, 'still missing');
  eq(await mc.set(K('r'), 'x', {}), true, 'set');
  eq(await mc.replace(K('r'), 'y', {}), true, 'replace existing');
  eq(str(await mc.get(K('r'))), 'y', 'replaced');
});

test('delete', async () => {
  eq(await mc.set(K('d'), 'x', {}), true, 'set');
  eq(await mc.delete(K('d')), true, 'delete existing');
  eq(str(await mc.get(K('d'))), null, 'gone');
  eq(await mc.delete(K('d')), false, 'delete missing');
});

// --- increment / decrement ---------------------------------------------------

test('increment_decrement', async () => {
  // a missing key is created with the initial value (binary incr with an
  // expiration other than 0xffffffff)
  let r = await mc.increment(K('n'), 5, { initial: 10 });
  eq(r.success, true, 'increment missing: success');
  eq(r.value, 10, 'increment missing: initial value');
  eq(str(await mc.get(K('n'))), '10', 'stored as text');
  r = await mc.increment(K('n'), 5, {});
  eq(r.value, 15, 'increment 5');
  r = await mc.decrement(K('n'), 3, {});
  eq(r.value, 12, 'decrement 3');
  r = await mc.decrement(K('n'), 100, {});
  eq(r.value, 0, 'decrement below zero stops at 0');
  eq(await mc.set(K('n2'), '41', {}), true, 'set 41');
  r = await mc.increment(K('n2'), 1, {});
  eq(r.value, 42, 'increment a value set as text');
  r = await mc.decrement(K('fresh'), 1, { initial: 7 });
  eq(r.value, 7, 'decrement missing: initial value');
});

test('increment_non_numeric', async () => {
  eq(await mc.set(K('s'), 'abc', {}), true, 'set');
  const msg = await rejects(mc.increment(K('s'), 1, {}), 'increment of a non-number');
  check(/non-numeric/.test(msg), 'error should say non-numeric: ' + msg);
  eq(str(await mc.get(K('s'))), 'abc', 'value untouched');
});

// --- append / prepend --------------------------------------------------------

// memcached answers APPEND and PREPEND of a missing key with "Item not
// stored" (0x05), which memjs turns into an error.
test('append', async () => {
  const msg = await rejects(mc.append(K('ap'), 'x'), 'append to missing');
  check(/Item not stored/.test(msg), 'append to missing: ' + msg);
  eq(str(await mc.get(K('ap'))), null, 'still missing');
  eq(await mc.set(K('ap'), 'mid', {}), true, 'set');
  eq(await mc.append(K('ap'), '-end'), true, 'append');
  eq(str(await mc.get(K('ap'))), 'mid-end', 'appended');
});

test('prepend', async () => {
  const msg = await rejects(mc.prepend(K('pp'), 'x'), 'prepend to missing');
  check(/Item not stored/.test(msg), 'prepend to missing: ' + msg);
  eq(await mc.set(K('pp'), 'mid', {}), true, 'set');
  // memjs 1.3.2's prepend sends APPEND's opcode (0x0e), so memcached itself
  // appends: what memjs users get is pinned here.
  eq(await mc.prepend(K('pp'), '!'), true, 'prepend');
  eq(str(await mc.get(K('pp'))), 'mid!', 'memjs prepend appends (its bug)');
  // the real PREPEND (0x0f), through memjs's request machinery
  const resp = await raw(mc, 0x0f, K('pp'), '', 'start-');
  eq(resp.header.status, 0, 'raw PREPEND status');
  eq(str(await mc.get(K('pp'))), 'start-mid!', 'prepended');
});

// --- touch -----------------------------------------------------------------

test('touch', async () => {
  eq(await mc.touch(K('t'), 100), false, 'touch missing');
  eq(await mc.set(K('t'), 'v', {}), true, 'set');
  eq(await mc.touch(K('t'), 100), true, 'touch existing');
  eq(str(await mc.get(K('t'))), 'v', 'still there');
  eq(await mc.touch(K('t'), 1), true, 'touch to 1 s');
  await sleep(2600);
  eq(str(await mc.get(K('t'))), null, 'expired after touch');
});

// --- version / stats ---------------------------------------------------------

test('version', async () => {
  const resp = await raw(mc, 0x0b, '', '', '');
  eq(resp.header.status, 0, 'status');
  check(/^\d+\.\d+\.\d+/.test(resp.val.toString()), 'version string: ' + JSON.stringify(resp.val.toString()));
  console.log('# version ' + resp.val.toString());
});

test('stats', async () => {
  const before = await stats(mc);
  eq(before.server, opts.target, 'server');
  for (const f of ['pid', 'uptime', 'time', 'version', 'curr_connections', 'cmd_get', 'cmd_set', 'get_hits']) {
    check(before.st[f] !== undefined, 'stats has no ' + f + ': ' + JSON.stringify(before.st).slice(0, 400));
  }
  check(/^\d+$/.test(before.st.cmd_get), 'cmd_get is a number: ' + before.st.cmd_get);
  check(Math.abs(parseInt(before.st.time, 10) - Date.now() / 1000) < 60, 'time: ' + before.st.time);
  eq(await mc.set(K('st'), 'x', {}), true, 'set');
  eq(str(await mc.get(K('st'))), 'x', 'get');
  const after = await stats(mc);
  check(parseInt(after.st.cmd_get, 10) >= parseInt(before.st.cmd_get, 10) + 1, 'cmd_get grew');
  check(parseInt(after.st.cmd_set, 10) >= parseInt(before.st.cmd_set, 10) + 1, 'cmd_set grew');
  check(parseInt(after.st.get_hits, 10) >= parseInt(before.st.get_hits, 10) + 1, 'get_hits grew');
});

// --- size and pipelining -----------------------------------------------------

test('large_value_500k', async () => {
  const v = crypto.randomBytes(500 * 1024);
  eq(await mc.set(K('large'), v, {}), true, 'set 500 KB');
  eq((await mc.get(K('large'))).value, v, 'get 500 KB');
  eq(await mc.append(K('large'), 'tail'), true, 'append to it');
  eq((await mc.get(K('large'))).value, Buffer.concat([v, Buffer.from('tail')]), 'get after append');
});

test('pipelined_300', async () => {
  // memjs writes every request at once and matches replies by opaque
  const n = 300;
  const sets = [];
  for (let i = 0; i < n; i++) sets.push(mc.set(K('p' + i), 'v' + i, {}));
  (await Promise.all(sets)).forEach((ok, i) => eq(ok, true, 'set p' + i));
  const gets = [];
  for (let i = 0; i < n + 20; i++) gets.push(mc.get(K('p' + i)));
  (await Promise.all(gets)).forEach((r, i) => eq(str(r), i < n ? 'v' + i : null, 'get p' + i));
});

// --- flush -------------------------------------------------------------------

test('flush', async () => {
  const keys = Array.from({ length: 20 }, (_, i) => K('f' + i));
  for (const k of keys) eq(await mc.set(k, 'v', {}), true, 'set ' + k);
  const res = await mc.flush();
  eq(JSON.stringify(res), JSON.stringify({ [opts.target]: true }), 'flush results');
  for (const k of keys) eq(str(await mc.get(k)), null, 'after flush ' + k);
  eq(await mc.set(K('alive'), 'yes', {}), true, 'set after flush');
  eq(str(await mc.get(K('alive'))), 'yes', 'get after flush');
});

// --- authentication ----------------------------------------------------------

if (AUTH) {
  // One fresh client per refused request: memjs 1.3.2 loses a request sent
  // on a client right after its connection failed (the old socket's close
  // handler clears the new one), so each attempt gets a client of its own.
  async function refused(extra, what, fn) {
    const c = client(extra);
    try {
      return await rejects(fn(c), what);
    } finally {
      c.close();
    }
  }

  test('wrong_password_refused', async () => {
    const bad = { password: opts.password + 'x' };
    const msg = await refused(bad, 'set with a wrong password', (c) => c.set(K('wrongpw'), 'x', {}));
    console.log('# wrong password: ' + msg);
    await refused(bad, 'get with a wrong password', (c) => c.get(K('wrongpw')));
    await refused({ username: 'nosuchuser' }, 'set as an unknown user',
                  (c) => c.set(K('wrongpw'), 'x', {}));
    eq(str(await mc.get(K('wrongpw'))), null, 'nothing stored');
  });

  test('no_credentials_refused', async () => {
    const saved = {};
    for (const v of ['MEMCACHIER_USERNAME', 'MEMCACHE_USERNAME', 'MEMCACHIER_PASSWORD', 'MEMCACHE_PASSWORD']) {
      saved[v] = process.env[v];
      delete process.env[v];
    }
    const anon = { username: undefined, password: undefined };
    eq(await mc.set(K('kept'), 'yes', {}), true, 'set as the user');
    try {
      const msg = await refused(anon, 'set with no credentials', (c) => c.set(K('anon'), 'x', {}));
      console.log('# no credentials: ' + msg);
      await refused(anon, 'get with no credentials', (c) => c.get(K('anon')));
      await refused(anon, 'increment with no credentials', (c) => c.increment(K('anon-n'), 1, { initial: 1 }));
      await refused(anon, 'flush with no credentials', (c) => c.flush().then((res) => {
        // memjs counts any reply to FLUSH as done: a refusal shows as an error value
        const v = res[opts.target];
        if (v !== true) throw new Error('flush refused: ' + v);
        return res;
      }));
    } finally {
      for (const v in saved) if (saved[v] !== undefined) process.env[v] = saved[v];
    }
    eq(str(await mc.get(K('anon'))), null, 'nothing stored');
    eq(str(await mc.get(K('anon-n'))), null, 'no counter made');
    eq(str(await mc.get(K('kept'))), 'yes', 'the refused flush flushed nothing');
  });
}

async function main() {
  console.log('# memjs ' + require('memjs/package.json').version + ' -> ' + opts.target +
              (AUTH ? ' as ' + opts.user : ' (no SASL)') + ', keys ' + NS + '*');
  let passed = 0;
  for (const t of tests) {
    CUR = NS + t.name + ':';
    LOG.length = 0;
    let timer;
    try {
      await Promise.race([t.fn(), new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Fail('no answer within ' + TEST_TIMEOUT + ' s')), TEST_TIMEOUT * 1000);
      })]);
      passed++;
      console.log('ok ' + t.name);
    } catch (e) {
      const why = e instanceof Fail ? e.message : (e && e.stack || String(e));
      console.log('not ok ' + t.name + ': ' + why.replace(/\n/g, '\n#   ') +
                  (LOG.length ? '\n#   memjs logged: ' + LOG.join(' | ') : ''));
    } finally {
      clearTimeout(timer);
    }
  }
  let keptOk = true;
  if (opts.keep > 0) {
    CUR = NS + 'keep:';
    try {
      for (let i = 0; i < opts.keep; i++) {
        const k = K(String(i)), v = 'memjs-' + i;
        eq(await mc.set(k, v, {}), true, 'set ' + k);
        console.log('keep ' + k + ' ' + v);
      }
    } catch (e) {
      keptOk = false;
      console.log('not ok keep: ' + (e.message || e));
    }
  }
  mc.close();
  console.log('done ' + passed + '/' + tests.length);
  process.exit(passed === tests.length && keptOk ? 0 : 1);
}

main().catch((e) => { console.log('not ok main: ' + (e && e.stack || e)); process.exit(1); });
