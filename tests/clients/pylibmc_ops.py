#!/usr/bin/python3
"""pylibmc_ops.py -- pylibmc with binary=True against one memcached-compatible endpoint.

    /usr/bin/python3 tests/clients/pylibmc_ops.py HOST:PORT [--keep N]

Debian's python3-pylibmc (1.6.3 on libmemcached 1.0.18) speaking the binary
protocol: get and set (bytes, str, int, pickled objects and their flags,
TTLs), get_multi and set_multi with 1,000 keys (and a key_prefix),
quiet requests (libmemcached's _noreply behavior: SETQ, ADDQ, DELETEQ ...), gets + cas (cas behavior) and the two-client race, incr and
decr (missing keys, 64-bit wrap, floor at 0), incr_multi, delete and
delete_multi, touch, add, replace, append, prepend, a 500 KB value, a
fetch-or-compute helper as apps write it (pylibmc has no fetch), version
and get_stats.  The endpoint may be a plain memcached (the control) or the
gateway.

unittest's verbose report goes to stderr.  With --keep N, N lines
"keep <key> <value>" go to stdout after the tests: bytes values left in the
cache for the caller to find on the servers.  No test flushes.

Uses /usr/bin/python3 (Debian's packages), not a pyenv python.
Exit status is non-zero when any test fails.
"""
import argparse
import os
import pickle
import sys
import time
import unittest

import pylibmc

TARGET = None
NS = None
CUR = None        # NS + the running test's name: no test sees another's keys


def K(name):
    return CUR + name


def client(**behaviors):
    b = {"tcp_nodelay": True, "connect_timeout": 5000}
    b.update(behaviors)
    return pylibmc.Client([TARGET], binary=True, behaviors=b)


class Point(object):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


def fetch(mc, key, compute, ttl=0):
    """What apps write over pylibmc for Dalli's fetch: get, else compute and add."""
    v = mc.get(key)
    if v is None:
        v = compute()
        mc.add(key, v, time=ttl)
    return v


class PylibmcBinaryOps(unittest.TestCase):

    def setUp(self):
        global CUR
        CUR = NS + self._testMethodName[len("test_"):] + ":"
        self.mc = client()

    def tearDown(self):
        self.mc.disconnect_all()

    def test_binary_protocol_on(self):
        self.assertTrue(self.mc.binary)

    # --- get / set ---------------------------------------------------------

    def test_set_get(self):
        self.assertTrue(self.mc.set(K("b"), b"bar"))
        self.assertEqual(self.mc.get(K("b")), b"bar")
        self.assertTrue(self.mc.set(K("b"), b"baz"))
        self.assertEqual(self.mc.get(K("b")), b"baz")
        self.assertTrue(self.mc.set(K("s"), "текст"))
        self.assertEqual(self.mc.get(K("s")), "текст")
        self.assertTrue(self.mc.set(K("i"), 42))
        self.assertEqual(self.mc.get(K("i")), 42)
        self.assertTrue(self.mc.set(K("big"), 2 ** 70))
        self.assertEqual(self.mc.get(K("big")), 2 ** 70)
        self.assertTrue(self.mc.set(K("t"), True))
        self.assertEqual(self.mc.get(K("t")), 1)                 # a bool is stored as an int
        self.assertTrue(self.mc.set(K("obj"), {"p": Point(1, 2), "l": [1, None]}))
        self.assertEqual(self.mc.get(K("obj")), {"p": Point(1, 2), "l": [1, None]})
        binary = bytes(range(256)) + b"\r\nEND\r\n"
        self.assertTrue(self.mc.set(K("bin"), binary))
        self.assertEqual(self.mc.get(K("bin")), binary)
        self.assertTrue(self.mc.set(K("empty"), b""))
        self.assertEqual(self.mc.get(K("empty")), b"")
        self.assertTrue(self.mc.set(K("ключ"), b"utf-8 key"))
        self.assertEqual(self.mc.get(K("ключ")), b"utf-8 key")

    def test_get_miss(self):
        self.assertIsNone(self.mc.get(K("never-set")))
        self.assertEqual(self.mc.get(K("never-set"), "dflt"), "dflt")
        self.assertNotIn(K("never-set"), self.mc)

    def test_set_ttl(self):
        self.assertTrue(self.mc.set(K("ttl"), b"short", time=1))
        self.assertEqual(self.mc.get(K("ttl")), b"short")
        time.sleep(2.6)
        self.assertIsNone(self.mc.get(K("ttl")))

    def test_mapping_interface(self):
        self.mc[K("m")] = b"v"
        self.assertEqual(self.mc[K("m")], b"v")
        self.assertIn(K("m"), self.mc)
        del self.mc[K("m")]
        self.assertNotIn(K("m"), self.mc)
        with self.assertRaises(KeyError):
            self.mc[K("m")]

    # --- add / replace / append / prepend ------------------------------------

    def test_add_replace(self):
        self.assertTrue(self.mc.add(K("a"), b"first"))
        self.assertFalse(self.mc.add(K("a"), b"second"))
        self.assertEqual(self.mc.get(K("a")), b"first")
        with self.assertRaises(pylibmc.NotFound):     # binary: NOT_FOUND, an error
            self.mc.replace(K("r"), b"x")
        self.assertIsNone(self.mc.get(K("r")))
        self.assertTrue(self.mc.set(K("r"), b"x"))
        self.assertTrue(self.mc.replace(K("r"), b"y"))
        self.assertEqual(self.mc.get(K("r")), b"y")

    def test_append_prepend(self):
        self.assertFalse(self.mc.append(K("ap"), b"x"))
        self.assertFalse(self.mc.prepend(K("ap"), b"x"))
        self.assertIsNone(self.mc.get(K("ap")))
        self.assertTrue(self.mc.set(K("ap"), b"mid"))
        self.assertTrue(self.mc.append(K("ap"), b"-end"))
        self.assertTrue(self.mc.prepend(K("ap"), b"start-"))
        self.assertEqual(self.mc.get(K("ap")), b"start-mid-end")

    # --- delete ------------------------------------------------------------

    def test_delete(self):
        self.assertTrue(self.mc.set(K("d"), b"x"))
        self.assertTrue(self.mc.delete(K("d")))
        self.assertIsNone(self.mc.get(K("d")))
        self.assertFalse(self.mc.delete(K("d")))

    def test_delete_multi(self):
        keys = [K("dm%d" % i) for i in range(20)]
        self.assertEqual(self.mc.set_multi({k: b"v" for k in keys}), [])
        self.assertTrue(self.mc.delete_multi(keys))
        self.assertEqual(self.mc.get_multi(keys), {})
        self.assertFalse(self.mc.delete_multi(keys))     # none was there

    # --- get_multi / set_multi -------------------------------------------------

    def test_set_multi_get_multi_1000(self):
        data = {K("k%04d" % i): ("value-%d" % i).encode() * (1 + i % 7) for i in range(1000)}
        self.assertEqual(self.mc.set_multi(data), [])
        want = list(data) + [K("absent%d" % i) for i in range(50)]
        got = self.mc.get_multi(want)
        self.assertEqual(len(got), 1000)
        self.assertEqual(got, data)
        # and one by one, on the same connection
        for k in list(data)[::97]:
            self.assertEqual(self.mc.get(k), data[k])

    def test_get_multi_small(self):
        self.assertEqual(self.mc.set_multi({K("a"): b"1", K("b"): 2, K("c"): "три"}), [])
        self.assertEqual(self.mc.get_multi([K("a"), K("b"), K("c"), K("d")]),
                         {K("a"): b"1", K("b"): 2, K("c"): "три"})
        self.assertEqual(self.mc.get_multi([]), {})
        self.assertEqual(self.mc.get_multi([K("d")]), {})

    def test_key_prefix(self):
        pfx = K("pfx_")
        self.assertEqual(self.mc.set_multi({"k%d" % i: i for i in range(100)}, key_prefix=pfx), [])
        got = self.mc.get_multi(["k%d" % i for i in range(110)], key_prefix=pfx)
        self.assertEqual(got, {"k%d" % i: i for i in range(100)})
        self.assertEqual(self.mc.get(pfx + "k7"), 7)

    def test_noreply_quiet(self):
        # libmemcached's _noreply behavior: SETQ, ADDQ, DELETEQ ... with no
        # reply unless one fails; the next read on the connection follows them.
        qc = client(_noreply=1)
        try:
            data = {K("q%04d" % i): ("q%d" % i).encode() for i in range(1000)}
            self.assertEqual(qc.set_multi(data), [])
            self.assertTrue(qc.delete(K("q0000")))
            self.assertTrue(qc.add(K("q0001"), b"not stored, unseen"))
            self.assertTrue(qc.replace(K("q0002"), b"replaced"))
            self.assertTrue(qc.set(K("q0003"), b"set"))
            del data[K("q0000")]
            data[K("q0002")] = b"replaced"
            data[K("q0003")] = b"set"
            got = qc.get_multi([K("q%04d" % i) for i in range(1000)])
            self.assertEqual(len(got), 999)
            self.assertEqual(got, data)
        finally:
            qc.disconnect_all()
        self.assertEqual(self.mc.get_multi(list(data)), data)

    # --- cas -------------------------------------------------------------------

    def test_gets_cas(self):
        mc = client(cas=True)
        other = client()
        try:
            self.assertEqual(mc.gets(K("c")), (None, None))
            self.assertTrue(mc.set(K("c"), b"v0"))
            v, cas = mc.gets(K("c"))
            self.assertEqual(v, b"v0")
            self.assertIsInstance(cas, int)
            self.assertGreater(cas, 0)
            self.assertTrue(mc.cas(K("c"), b"v1", cas))
            self.assertEqual(mc.get(K("c")), b"v1")
            self.assertFalse(mc.cas(K("c"), b"v2", cas))          # stale
            self.assertEqual(mc.get(K("c")), b"v1")
            # the race: another client writes between gets and cas
            v, cas = mc.gets(K("c"))
            self.assertTrue(other.set(K("c"), b"theirs"))
            self.assertFalse(mc.cas(K("c"), v + b"+mine", cas))
            self.assertEqual(mc.get(K("c")), b"theirs")
            v, cas2 = mc.gets(K("c"))
            self.assertNotEqual(cas2, cas)
            self.assertTrue(mc.cas(K("c"), b"mine", cas2))
            self.assertEqual(other.get(K("c")), b"mine")
            with self.assertRaises(pylibmc.NotFound):             # missing key
                mc.cas(K("nocas"), b"v", 12345)
            self.assertIsNone(mc.get(K("nocas")))
        finally:
            mc.disconnect_all()
            other.disconnect_all()

    # --- incr / decr -----------------------------------------------------------

    def test_incr_decr(self):
        with self.assertRaises(pylibmc.NotFound):
            self.mc.incr(K("missing"))
        with self.assertRaises(pylibmc.NotFound):
            self.mc.decr(K("missing"))
        self.assertIsNone(self.mc.get(K("missing")))
        self.assertTrue(self.mc.set(K("n"), b"10"))
        self.assertEqual(self.mc.incr(K("n")), 11)
        self.assertEqual(self.mc.incr(K("n"), 9), 20)
        self.assertEqual(self.mc.decr(K("n"), 5), 15)
        self.assertEqual(self.mc.decr(K("n"), 100), 0)
        self.assertEqual(self.mc.get(K("n")).strip(), b"0")     # memcached pads with spaces
        self.assertTrue(self.mc.set(K("i"), 7))                  # an int, stored as text
        self.assertEqual(self.mc.incr(K("i")), 8)
        self.assertEqual(self.mc.get(K("i")), 8)
        self.assertTrue(self.mc.set(K("w"), str(2 ** 64 - 1).encode()))
        self.assertEqual(self.mc.incr(K("w")), 0)                # wraps at 2^64

    def test_incr_non_numeric(self):
        self.assertTrue(self.mc.set(K("s"), b"abc"))
        with self.assertRaises(pylibmc.Error):
            self.mc.incr(K("s"))
        self.assertEqual(self.mc.get(K("s")), b"abc")

    def test_incr_multi(self):
        keys = ["c%d" % i for i in range(10)]
        self.assertEqual(self.mc.set_multi({k: b"5" for k in keys}, key_prefix=K("")), [])
        self.assertIsNone(self.mc.incr_multi(keys, key_prefix=K(""), delta=3))
        self.assertEqual(self.mc.get_multi(keys, key_prefix=K("")), {k: b"8" for k in keys})

    # --- touch / fetch ---------------------------------------------------------

    def test_touch(self):
        self.assertFalse(self.mc.touch(K("t"), 100))
        self.assertTrue(self.mc.set(K("t"), b"v"))
        self.assertTrue(self.mc.touch(K("t"), 100))
        self.assertEqual(self.mc.get(K("t")), b"v")
        self.assertTrue(self.mc.touch(K("t"), 1))
        time.sleep(2.6)
        self.assertIsNone(self.mc.get(K("t")))

    def test_fetch(self):
        calls = []

        def compute():
            calls.append(1)
            return {"made": len(calls)}

        self.assertEqual(fetch(self.mc, K("f"), compute, 100), {"made": 1})
        self.assertEqual(self.mc.get(K("f")), {"made": 1})
        self.assertEqual(fetch(self.mc, K("f"), compute), {"made": 1})
        self.assertEqual(len(calls), 1)

    # --- size / stats -----------------------------------------------------------

    def test_large_value_500k(self):
        big = os.urandom(500 * 1024)
        self.assertTrue(self.mc.set(K("large"), big))
        self.assertEqual(self.mc.get(K("large")), big)
        self.assertEqual(self.mc.get_multi([K("large"), K("none")]), {K("large"): big})
        obj = [os.urandom(1000) for _ in range(500)]              # pickled, ~510 KB
        self.assertTrue(self.mc.set(K("large-obj"), obj))
        self.assertEqual(self.mc.get(K("large-obj")), obj)

    def test_stats(self):
        st = self.mc.get_stats()
        self.assertEqual(len(st), 1, st)
        name, before = st[0]
        self.assertIn(TARGET, name.decode() if isinstance(name, bytes) else name)
        for f in ("pid", "uptime", "time", "version", "curr_connections",
                  "cmd_get", "cmd_set", "get_hits"):
            self.assertIn(f, before)
        self.assertLess(abs(int(before["time"]) - time.time()), 60)
        self.assertRegex(before["version"], rb"^\d+\.\d+\.\d+")
        print("version %s" % before["version"].decode(), file=sys.stderr)
        self.assertTrue(self.mc.set(K("st"), b"x"))
        self.assertEqual(self.mc.get(K("st")), b"x")
        after = self.mc.get_stats()[0][1]
        self.assertGreaterEqual(int(after["cmd_get"]), int(before["cmd_get"]) + 1)
        self.assertGreaterEqual(int(after["cmd_set"]), int(before["cmd_set"]) + 1)


def main():
    global TARGET, NS, CUR
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("target", help="HOST:PORT")
    ap.add_argument("--keep", type=int, default=0, help="leave N keys for the caller")
    ap.add_argument("unittest_args", nargs="*", help="passed to unittest (e.g. a test name)")
    args = ap.parse_args()
    TARGET = args.target
    NS = "pylibmc%d_%s:" % (os.getpid(), os.urandom(3).hex())
    print("pylibmc %s (libmemcached %s, binary) -> %s, keys %s*" % (
        pylibmc.__version__, pylibmc.libmemcached_version, TARGET, NS), file=sys.stderr, flush=True)
    prog = unittest.main(argv=[sys.argv[0], "-v"] + args.unittest_args, exit=False)
    ok = prog.result.wasSuccessful()
    if args.keep > 0:
        CUR = NS + "keep:"
        mc = client()
        data = {K(str(i)): ("pylibmc-%d" % i).encode() for i in range(args.keep)}
        failed = mc.set_multi(data)
        if failed:
            print("keep: set_multi failed for %d keys" % len(failed), file=sys.stderr)
            ok = False
        for k, v in data.items():
            print("keep %s %s" % (k, v.decode()))
        mc.disconnect_all()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
