#!/usr/bin/python3
"""pymemcache_ops.py -- pymemcache against one memcached-compatible endpoint.

    /usr/bin/python3 tests/clients/pymemcache_ops.py HOST:PORT [--prefix PFX]

Covers pymemcache's Client (Debian python3-pymemcache 3.5.2): set, get,
get_many, set_many, add, replace, append, prepend, gets, gets_many, cas,
incr, decr, delete, delete_many, touch, flush_all, version and stats, each
with and without noreply where the command has it, plus a serde for
non-bytes values and 32-bit flags.  The endpoint may be a plain memcached
(the control) or the gateway.

Every key is PFX + a fresh per-run token + the test's name.  NOTE: the
flush_all tests empty the whole endpoint (every backend behind a gateway).

Uses /usr/bin/python3 (Debian's packages), not a pyenv python.
Exit status is non-zero when any test fails.
"""
import argparse
import json
import os
import re
import socket
import sys
import time
import unittest

import pymemcache
from pymemcache.client.base import Client
from pymemcache import serde as pserde

HOST = None
PORT = None
NS = None


CUR = None       # NS + the running test's name: no test sees another's keys


def K(name):
    return CUR + name


def KB(name):
    return K(name).encode()


def wait_until(fn, timeout=5.0, step=0.05):
    """Poll fn() until it is true or the deadline passes; returns fn()."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def raw(req, until=(b"END\r\n",)):
    """Send raw bytes on a fresh connection; read until a terminator."""
    with socket.create_connection((HOST, PORT), timeout=5) as s:
        s.sendall(req)
        buf = b""
        while not any(buf.endswith(t) for t in until):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return buf


class JSONSerde(object):
    """bytes as they are (flags 0), str as UTF-8 (flags 1), anything else
    as JSON (flags 2)."""

    def serialize(self, key, value):
        if isinstance(value, bytes):
            return value, 0
        if isinstance(value, str):
            return value.encode("utf-8"), 1
        return json.dumps(value).encode("utf-8"), 2

    def deserialize(self, key, value, flags):
        if flags == 0:
            return value
        if flags == 1:
            return value.decode("utf-8")
        if flags == 2:
            return json.loads(value.decode("utf-8"))
        raise ValueError("unknown flags %d for %r" % (flags, key))


class FlagsSerde(object):
    """Hands the flags back with the value, to see them round-trip."""

    def serialize(self, key, value):
        return value, 0

    def deserialize(self, key, value, flags):
        return (value, flags)


def new_client(**kw):
    kw.setdefault("default_noreply", False)
    return Client((HOST, PORT), connect_timeout=5, timeout=5, **kw)


class PymemcacheOps(unittest.TestCase):

    def setUp(self):
        global CUR
        CUR = NS + self._testMethodName[len("test_"):] + ":"
        self.c = new_client()

    def tearDown(self):
        self.c.close()

    def assertAlive(self):
        self.assertTrue(self.c.set(K("alive"), b"yes"))
        self.assertEqual(self.c.get(K("alive")), b"yes")

    # --- storage + retrieval ---------------------------------------------

    def test_set_get(self):
        self.assertTrue(self.c.set(K("a"), b"1"))
        self.assertEqual(self.c.get(K("a")), b"1")
        self.assertTrue(self.c.set(K("a"), b"two"))
        self.assertEqual(self.c.get(K("a")), b"two")
        value = bytes(range(256)) + b"\r\nEND\r\nVALUE x 0 1\r\n"
        self.assertTrue(self.c.set(K("bin"), value))
        self.assertEqual(self.c.get(K("bin")), value)
        self.assertIsNone(self.c.get(K("missing")))
        self.assertEqual(self.c.get(K("missing"), default=b"dflt"), b"dflt")
        self.assertAlive()

    def test_set_noreply(self):
        c = new_client(default_noreply=True)
        try:
            self.assertTrue(c.set(K("nr"), b"v1"))
            self.assertTrue(c.set(K("nr"), b"v2", noreply=True))
            # pipelined behind the noreply sets on the same connection
            self.assertEqual(c.get(K("nr")), b"v2")
        finally:
            c.close()

    def test_set_many_get_many(self):
        values = {K("m%02d" % i): ("v%d" % i).encode() for i in range(50)}
        self.assertEqual(self.c.set_many(values), [])
        got = self.c.get_many(list(values) + [K("absent1"), K("absent2")])
        self.assertEqual(got, values)
        self.assertEqual(self.c.get_many([]), {})

    def test_set_many_noreply(self):
        values = {K("nm%d" % i): b"x" * i for i in range(1, 11)}
        self.assertEqual(self.c.set_many(values, noreply=True), [])
        self.assertEqual(self.c.get_many(list(values)), values)

    def test_add(self):
        self.assertTrue(self.c.add(K("add"), b"first"))
        self.assertFalse(self.c.add(K("add"), b"second"))
        self.assertEqual(self.c.get(K("add")), b"first")
        self.assertTrue(self.c.add(K("add_nr"), b"q", noreply=True))
        self.assertEqual(self.c.get(K("add_nr")), b"q")
        self.c.add(K("add_nr"), b"r", noreply=True)           # NOT_STORED, unseen
        self.assertEqual(self.c.get(K("add_nr")), b"q")

    def test_replace(self):
        self.assertFalse(self.c.replace(K("rep"), b"x"))
        self.assertIsNone(self.c.get(K("rep")))
        self.assertTrue(self.c.set(K("rep"), b"x"))
        self.assertTrue(self.c.replace(K("rep"), b"y"))
        self.assertEqual(self.c.get(K("rep")), b"y")
        self.assertTrue(self.c.replace(K("rep"), b"z", noreply=True))
        self.assertEqual(self.c.get(K("rep")), b"z")

    def test_append_prepend(self):
        self.assertFalse(self.c.append(K("ap"), b"x"))
        self.assertFalse(self.c.prepend(K("ap"), b"x"))
        self.assertIsNone(self.c.get(K("ap")))
        self.assertTrue(self.c.set(K("ap"), b"mid"))
        self.assertTrue(self.c.append(K("ap"), b"-end"))
        self.assertTrue(self.c.prepend(K("ap"), b"start-"))
        self.assertEqual(self.c.get(K("ap")), b"start-mid-end")
        self.assertTrue(self.c.append(K("ap"), b"!", noreply=True))
        self.assertTrue(self.c.prepend(K("ap"), b"!", noreply=True))
        self.assertEqual(self.c.get(K("ap")), b"!start-mid-end!")

    # --- gets / cas --------------------------------------------------------

    def test_gets_cas(self):
        self.assertEqual(self.c.gets(K("cas")), (None, None))
        self.assertTrue(self.c.set(K("cas"), b"v0"))
        value, cas = self.c.gets(K("cas"))
        self.assertEqual(value, b"v0")
        self.assertRegex(cas, rb"^\d+$")
        self.assertTrue(self.c.cas(K("cas"), b"v1", cas))
        self.assertEqual(self.c.get(K("cas")), b"v1")
        self.assertFalse(self.c.cas(K("cas"), b"v2", cas))    # stale: EXISTS
        self.assertEqual(self.c.get(K("cas")), b"v1")
        self.assertIsNone(self.c.cas(K("nocas"), b"v", b"1"))  # NOT_FOUND
        self.assertIsNone(self.c.get(K("nocas")))
        self.assertAlive()

    def test_cas_race(self):
        other = new_client()
        try:
            self.assertTrue(self.c.set(K("race"), b"900"))
            _, cas1 = self.c.gets(K("race"))
            _, cas2 = other.gets(K("race"))
            self.assertEqual(cas1, cas2)
            self.assertTrue(self.c.cas(K("race"), b"899", cas1))
            self.assertFalse(other.cas(K("race"), b"899", cas2))
            _, cas3 = other.gets(K("race"))
            self.assertNotEqual(cas3, cas1)
            self.assertTrue(other.cas(K("race"), b"898", cas3))
            self.assertEqual(self.c.get(K("race")), b"898")
        finally:
            other.close()

    def test_cas_noreply(self):
        self.assertTrue(self.c.set(K("casnr"), b"a"))
        _, cas = self.c.gets(K("casnr"))
        self.assertTrue(self.c.cas(K("casnr"), b"b", cas, noreply=True))
        self.assertEqual(self.c.get(K("casnr")), b"b")
        self.c.cas(K("casnr"), b"c", cas, noreply=True)        # stale, unseen
        self.assertEqual(self.c.get(K("casnr")), b"b")

    def test_gets_many(self):
        self.assertEqual(self.c.set_many({K("g1"): b"1", K("g2"): b"2"}), [])
        got = self.c.gets_many([K("g1"), K("g2"), K("g3")])
        self.assertEqual(sorted(got), [K("g1"), K("g2")])
        self.assertEqual(got[K("g1")][0], b"1")
        self.assertEqual(got[K("g2")][0], b"2")
        self.assertNotEqual(got[K("g1")][1], got[K("g2")][1])
        self.assertTrue(self.c.cas(K("g2"), b"22", got[K("g2")][1]))
        self.assertEqual(self.c.get(K("g2")), b"22")

    # --- incr / decr -------------------------------------------------------

    def test_incr_decr(self):
        self.assertIsNone(self.c.incr(K("ctr"), 1))
        self.assertIsNone(self.c.decr(K("ctr"), 1))
        self.assertTrue(self.c.set(K("ctr"), b"10"))
        self.assertEqual(self.c.incr(K("ctr"), 5), 15)
        self.assertEqual(self.c.decr(K("ctr"), 3), 12)
        self.assertEqual(self.c.decr(K("ctr"), 100), 0)       # floors at 0
        self.assertEqual(self.c.incr(K("ctr"), 2 ** 63), 2 ** 63)
        self.assertTrue(self.c.set(K("wrap"), b"18446744073709551615"))
        self.assertEqual(self.c.incr(K("wrap"), 1), 0)         # 64-bit wrap
        self.assertAlive()

    def test_incr_decr_noreply(self):
        self.assertTrue(self.c.set(K("ctrnr"), b"1"))
        self.assertIsNone(self.c.incr(K("ctrnr"), 9, noreply=True))
        self.assertEqual(self.c.get(K("ctrnr")), b"10")
        self.assertIsNone(self.c.decr(K("ctrnr"), 4, noreply=True))
        self.assertEqual(self.c.get(K("ctrnr")).strip(), b"6")

    def test_incr_non_numeric(self):
        from pymemcache.exceptions import MemcacheClientError
        self.assertTrue(self.c.set(K("nan"), b"abc"))
        with self.assertRaises(MemcacheClientError):
            self.c.incr(K("nan"), 1)
        self.assertEqual(self.c.get(K("nan")), b"abc")

    # --- delete ------------------------------------------------------------

    def test_delete(self):
        self.assertTrue(self.c.set(K("del"), b"x"))
        self.assertTrue(self.c.delete(K("del")))
        self.assertFalse(self.c.delete(K("del")))
        self.assertIsNone(self.c.get(K("del")))
        self.assertTrue(self.c.set(K("delnr"), b"x"))
        self.assertTrue(self.c.delete(K("delnr"), noreply=True))
        self.assertIsNone(self.c.get(K("delnr")))
        self.assertAlive()

    def test_delete_many(self):
        keys = [K("dm%d" % i) for i in range(20)]
        self.assertEqual(self.c.set_many({k: b"v" for k in keys}), [])
        self.assertTrue(self.c.delete_many(keys[:15]))
        self.assertEqual(sorted(self.c.get_many(keys)), sorted(keys[15:]))
        self.assertTrue(self.c.delete_many(keys[15:], noreply=True))
        self.assertEqual(self.c.get_many(keys), {})
        self.assertAlive()

    # --- touch / expiry ----------------------------------------------------

    # memcached's clock ticks once a second, so an item given 1 s to live
    # may be gone at any moment within about a second: nothing below
    # expects such an item to still be there.

    def test_touch(self):
        self.assertFalse(self.c.touch(K("touch-missing"), 10))
        self.assertTrue(self.c.set(K("touch"), b"v"))
        self.assertTrue(self.c.set(K("stays"), b"v"))
        self.assertTrue(self.c.touch(K("touch"), 1))             # TOUCHED
        self.assertTrue(wait_until(lambda: self.c.get(K("touch")) is None, 5),
                        "touch(key, 1) did not make the item expire")
        self.assertEqual(self.c.get(K("stays")), b"v")

    def test_touch_noreply(self):
        self.assertTrue(self.c.set(K("tnr"), b"v"))
        self.assertTrue(self.c.touch(K("tnr"), 1, noreply=True))
        # without the touch the item would never expire
        self.assertTrue(wait_until(lambda: self.c.get(K("tnr")) is None, 5),
                        "touch noreply did not make the item expire")
        self.assertAlive()

    def test_touch_extends(self):
        self.assertTrue(self.c.set(K("tx"), b"v", expire=2))
        self.assertTrue(self.c.touch(K("tx"), 0, noreply=True))  # never expire
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3.5:
            self.assertEqual(self.c.get(K("tx")), b"v")
            time.sleep(0.1)

    def test_expire_on_set(self):
        self.assertTrue(self.c.set(K("exp3"), b"v", expire=3))
        self.assertEqual(self.c.get(K("exp3")), b"v")
        self.assertTrue(self.c.set(K("exp"), b"v", expire=1))
        self.assertTrue(self.c.set(K("noexp"), b"v"))
        self.assertTrue(wait_until(lambda: self.c.get(K("exp")) is None, 5),
                        "set with expire=1 was still there after 5 s")
        self.assertEqual(self.c.get(K("noexp")), b"v")

    # --- flags and serde ---------------------------------------------------

    def test_json_serde(self):
        c = new_client(serde=JSONSerde())
        try:
            doc = {"user": "ann", "roles": ["a", "b"], "n": 3, "ok": True}
            self.assertTrue(c.set(K("json"), doc))
            self.assertTrue(c.set(K("text"), "héllo"))
            self.assertTrue(c.set(K("list"), [1, 2, 3]))
            self.assertEqual(c.get(K("json")), doc)
            self.assertEqual(c.get(K("text")), "héllo")
            self.assertEqual(c.get_many([K("json"), K("list"), K("text")]),
                             {K("json"): doc, K("list"): [1, 2, 3],
                              K("text"): "héllo"})
            # the flags are on the wire, not only in this client
            self.assertTrue(raw(b"get " + KB("json") + b"\r\n").startswith(
                b"VALUE " + KB("json") + b" 2 "))
            self.assertTrue(raw(b"get " + KB("text") + b"\r\n").startswith(
                b"VALUE " + KB("text") + b" 1 "))
        finally:
            c.close()

    def test_python_memcache_serde(self):
        # pymemcache's python-memcached compatible serde: same flags
        # (int 2, pickle 1), so python-memcached can read these values.
        c = new_client(serde=pserde.PickleSerde(pickle_version=2))
        try:
            self.assertTrue(c.set(K("pint"), 12345))
            self.assertTrue(c.set(K("pdict"), {"a": [1, 2], "b": None}))
            self.assertEqual(c.get(K("pint")), 12345)
            self.assertEqual(c.get(K("pdict")), {"a": [1, 2], "b": None})
            self.assertEqual(raw(b"get " + KB("pint") + b"\r\n"),
                             b"VALUE " + KB("pint") + b" 2 5\r\n12345\r\nEND\r\n")
            self.assertTrue(raw(b"get " + KB("pdict") + b"\r\n").startswith(
                b"VALUE " + KB("pdict") + b" 1 "))
        finally:
            c.close()

    def test_flags_round_trip(self):
        c = new_client(serde=FlagsSerde())
        try:
            for flags in (0, 1, 65535, 65536, 2 ** 31, 2 ** 32 - 1):
                self.assertTrue(c.set(K("fl"), b"v", flags=flags))
                self.assertEqual(c.get(K("fl")), (b"v", flags))
                self.assertEqual(c.gets(K("fl"))[0], (b"v", flags))
        finally:
            c.close()

    def test_large_value(self):
        big = os.urandom(500 * 1024)
        self.assertTrue(self.c.set(K("big"), big))
        self.assertEqual(self.c.get(K("big")), big)
        self.assertEqual(self.c.get_many([K("big"), K("nobig")]), {K("big"): big})

    # --- misc --------------------------------------------------------------

    def test_version(self):
        v = self.c.version()
        self.assertIsInstance(v, bytes)
        self.assertRegex(v, rb"^\d+\.\d+")

    def test_stats(self):
        st = self.c.stats()
        for field in (b"pid", b"uptime", b"time", b"version", b"curr_connections",
                      b"cmd_get", b"cmd_set", b"get_hits", b"get_misses"):
            self.assertIn(field, st)
        for field in (b"pid", b"uptime", b"curr_connections", b"cmd_get",
                      b"cmd_set", b"get_hits", b"get_misses"):
            self.assertIsInstance(st[field], int, field)
        self.assertLess(abs(st[b"time"] - time.time()), 60)
        self.assertTrue(self.c.set(K("st"), b"x"))
        self.assertEqual(self.c.get(K("st")), b"x")
        after = self.c.stats()
        self.assertGreaterEqual(after[b"cmd_get"], st[b"cmd_get"] + 1)
        self.assertGreaterEqual(after[b"cmd_set"], st[b"cmd_set"] + 1)
        self.assertGreaterEqual(after[b"get_hits"], st[b"get_hits"] + 1)

    def test_zz_flush_all(self):
        keys = [K("fa%d" % i) for i in range(40)]
        self.assertEqual(self.c.set_many({k: b"v" for k in keys}), [])
        self.assertEqual(len(self.c.get_many(keys)), 40)
        self.assertTrue(self.c.flush_all())
        self.assertEqual(self.c.get_many(keys), {})
        self.assertAlive()
        # noreply variant, then a pipelined get on the same connection
        self.assertEqual(self.c.set_many({k: b"v" for k in keys}), [])
        self.assertTrue(self.c.flush_all(noreply=True))
        self.assertEqual(self.c.get_many(keys), {})
        self.assertAlive()

    def test_quit_reconnects(self):
        self.assertTrue(self.c.set(K("q"), b"v"))
        self.c.quit()
        self.assertEqual(self.c.get(K("q")), b"v")   # a new connection


def main():
    global HOST, PORT, NS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("target", help="HOST:PORT")
    ap.add_argument("--prefix", help="put this in front of every key")
    ap.add_argument("unittest_args", nargs="*",
                    help="passed to unittest (e.g. a test name)")
    args = ap.parse_args()
    HOST, port = args.target.rsplit(":", 1)
    PORT = int(port)
    NS = (args.prefix or "") + "pymemc%d_%s:" % (os.getpid(), os.urandom(3).hex())
    print("pymemcache %s -> %s:%d, keys %s*" % (pymemcache.__version__, HOST,
                                                 PORT, NS), flush=True)
    prog = unittest.main(argv=[sys.argv[0], "-v"] + args.unittest_args, exit=False)
    sys.exit(0 if prog.result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
