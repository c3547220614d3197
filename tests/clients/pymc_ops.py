#!/usr/bin/python3
"""pymc_ops.py -- python-memcached against one memcached-compatible endpoint.

    /usr/bin/python3 tests/clients/pymc_ops.py HOST:PORT [--prefix PFX]

Exercises what python-memcached users do (the usage in the blog posts under
shared/seeds): set/get, set_multi/get_multi with key_prefix, add, replace,
append, prepend, incr, decr, delete, delete_multi, touch, expiry, gets + cas
(cache_cas=True, including the two-client race), int / pickled values and
their flags, a 500 KB value and get_stats.  The endpoint may be a plain
memcached (the control) or the gateway.

Every key is PFX + a fresh per-run token + the test's name, so neither runs
nor tests see each other's keys; pass e.g. --prefix t1: to send every
request through a gateway route that matches "t1:".

Uses /usr/bin/python3 (Debian's python3-memcache), not a pyenv python.
Exit status is non-zero when any test fails.
"""
import argparse
import os
import socket
import sys
import time
import unittest

import memcache

TARGET = None     # "host:port"
NS = None         # key namespace

# python-memcached swallows connection errors: it marks the server dead and
# returns None / 0, which would make "get returns None" assertions pass
# against a broken endpoint.  Record every mark_dead and fail the test.
DEAD = []
_orig_mark_dead = memcache._Host.mark_dead


def _recording_mark_dead(self, reason):
    DEAD.append("%s: %s" % (self, reason))
    _orig_mark_dead(self, reason)


memcache._Host.mark_dead = _recording_mark_dead


CUR = None       # NS + the running test's name: no test sees another's keys


def K(name):
    return CUR + name


def client(**kw):
    return memcache.Client([TARGET], debug=0, dead_retry=0,
                           socket_timeout=5, **kw)


def wait_until(fn, timeout=5.0, step=0.05):
    """Poll fn() until it is true or the deadline passes; returns fn()."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def raw_get(key):
    """(flags, data) of key straight from the wire, or None on a miss."""
    host, port = TARGET.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"get " + key.encode() + b"\r\n")
        buf = b""
        while not (buf.endswith(b"END\r\n") or buf.endswith(b"ERROR\r\n")):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    if buf == b"END\r\n":
        return None
    head, _, rest = buf.partition(b"\r\n")
    parts = head.split()
    assert parts[0] == b"VALUE" and parts[1] == key.encode(), buf[:200]
    flags, n = int(parts[2]), int(parts[3])
    assert rest[n:] == b"\r\nEND\r\n", buf[-200:]
    return flags, rest[:n]


class Point(object):
    """A custom object, stored pickled."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


class PyMemcacheOps(unittest.TestCase):

    def setUp(self):
        global CUR
        CUR = NS + self._testMethodName[len("test_"):] + ":"
        del DEAD[:]
        self.mc = client()

    def tearDown(self):
        self.mc.disconnect_all()
        self.assertEqual(DEAD, [], "python-memcached marked the server dead")

    def assertAlive(self):
        """A miss is only meaningful if the endpoint still answers."""
        self.assertTrue(self.mc.set(K("alive"), "yes"))
        self.assertEqual(self.mc.get(K("alive")), "yes")

    # --- set / get ---------------------------------------------------------

    def test_set_get(self):
        self.assertTrue(self.mc.set(K("foo"), "bar"))
        self.assertEqual(self.mc.get(K("foo")), "bar")
        self.assertTrue(self.mc.set(K("foo"), "baz"))       # overwrite
        self.assertEqual(self.mc.get(K("foo")), "baz")
        binary = bytes(range(256)) + b"\r\nEND\r\n"
        self.assertTrue(self.mc.set(K("bin"), binary))
        self.assertEqual(self.mc.get(K("bin")), binary)
        self.assertTrue(self.mc.set(K("empty"), b""))
        self.assertEqual(self.mc.get(K("empty")), b"")
        self.assertIsNone(self.mc.get(K("never-set")))
        self.assertAlive()

    def test_unicode_key_and_value(self):
        self.assertTrue(self.mc.set(K("键-ключ"), "第一|"))
        self.assertEqual(self.mc.get(K("键-ключ")), "第一|")
        self.assertEqual(raw_get(K("键-ключ")), (16, "第一|".encode()))

    def test_noreply_set(self):
        self.assertTrue(self.mc.set(K("nr"), "quiet", noreply=True))
        self.assertEqual(self.mc.get(K("nr")), "quiet")

    # --- set_multi / get_multi --------------------------------------------

    def test_set_multi_get_multi(self):
        self.assertEqual(self.mc.set_multi({K("k1"): "v1", K("k2"): "v2"}), [])
        self.assertEqual(self.mc.get_multi([K("k1"), K("k2"), K("k3")]),
                         {K("k1"): "v1", K("k2"): "v2"})
        self.assertEqual(self.mc.get(K("k2")), "v2")

    def test_key_prefix(self):
        pfx = K("pfx_")
        self.assertEqual(self.mc.set_multi({"k1": 1, "k2": 2}, key_prefix=pfx), [])
        self.assertEqual(self.mc.get_multi(["k1", "k2", "nonexist"], key_prefix=pfx),
                         {"k1": 1, "k2": 2})
        # the prefix really is part of the stored key
        self.assertEqual(self.mc.get(pfx + "k1"), 1)
        # int keys go through str() and come back as ints
        nk = K("numkeys_")
        self.assertEqual(self.mc.set_multi({42: "douglass adams",
                                            46: "and 2 just ahead of me"},
                                           key_prefix=nk), [])
        self.assertEqual(self.mc.get_multi([46, 42], key_prefix=nk),
                         {42: "douglass adams", 46: "and 2 just ahead of me"})

    def test_get_multi_many_keys(self):
        data = {K("many%03d" % i): "value-%d" % i for i in range(200)}
        self.assertEqual(self.mc.set_multi(data), [])
        want = list(data) + [K("missing%03d" % i) for i in range(20)]
        self.assertEqual(self.mc.get_multi(want), data)

    def test_set_multi_noreply(self):
        data = {K("nrm%d" % i): "x%d" % i for i in range(10)}
        self.assertEqual(self.mc.set_multi(data, noreply=True), [])
        self.assertEqual(self.mc.get_multi(list(data)), data)

    # --- add / replace ----------------------------------------------------

    def test_add(self):
        self.assertTrue(self.mc.add(K("name"), "tom"))
        self.assertFalse(self.mc.add(K("name"), "jack"))
        self.assertEqual(self.mc.get(K("name")), "tom")

    def test_replace(self):
        self.assertTrue(self.mc.set(K("name"), "tom"))
        self.assertTrue(self.mc.replace(K("name"), "jack"))
        self.assertEqual(self.mc.get(K("name")), "jack")
        self.assertFalse(self.mc.replace(K("kkkk"), "999"))
        self.assertIsNone(self.mc.get(K("kkkk")))
        self.assertAlive()

    # --- append / prepend -------------------------------------------------

    def test_append_prepend(self):
        self.assertTrue(self.mc.set(K("k1"), "v1"))
        self.assertTrue(self.mc.append(K("k1"), "after"))
        self.assertEqual(self.mc.get(K("k1")), "v1after")
        self.assertTrue(self.mc.prepend(K("k1"), "before"))
        self.assertEqual(self.mc.get(K("k1")), "beforev1after")
        self.assertFalse(self.mc.append(K("absent"), "x"))
        self.assertFalse(self.mc.prepend(K("absent"), "x"))
        self.assertIsNone(self.mc.get(K("absent")))
        self.assertAlive()

    def test_append_prepend_utf8(self):
        self.assertTrue(self.mc.set(K("num"), "第一|"))
        self.assertTrue(self.mc.append(K("num"), "追加第二个"))
        self.assertEqual(self.mc.get(K("num")), "第一|追加第二个")
        self.assertTrue(self.mc.prepend(K("num"), "我是零个"))
        self.assertEqual(self.mc.get(K("num")), "我是零个第一|追加第二个")

    # --- incr / decr ------------------------------------------------------

    def test_incr_decr(self):
        self.assertTrue(self.mc.set(K("k1"), "777"))
        self.assertEqual(self.mc.incr(K("k1")), 778)
        self.assertEqual(self.mc.incr(K("k1"), 10), 788)
        self.assertEqual(self.mc.decr(K("k1")), 787)
        self.assertEqual(self.mc.decr(K("k1"), 10), 777)
        self.assertEqual(self.mc.get(K("k1")), "777")       # text flag kept

    def test_incr_decr_int_value(self):
        self.assertTrue(self.mc.set(K("number"), 9))
        self.assertEqual(self.mc.incr(K("number")), 10)
        self.assertEqual(self.mc.incr(K("number"), 10), 20)
        self.assertEqual(self.mc.decr(K("number")), 19)
        self.assertEqual(self.mc.decr(K("number"), 10), 9)
        self.assertEqual(self.mc.get(K("number")), 9)
        # delta given as a string, as in one of the posts
        self.assertTrue(self.mc.set(K("num"), "1"))
        self.assertEqual(self.mc.incr(K("num"), "9"), 10)
        self.assertEqual(self.mc.decr(K("num"), "5"), 5)
        # memcached keeps the length on a shrinking decr ("5 "), so compare
        # the number
        self.assertEqual(int(self.mc.get(K("num"))), 5)

    def test_incr_decr_edges(self):
        self.assertIsNone(self.mc.incr(K("nocounter")))
        self.assertIsNone(self.mc.decr(K("nocounter")))
        self.assertTrue(self.mc.set(K("c"), "1"))
        self.assertEqual(self.mc.decr(K("c"), 2), 0)           # floors at 0
        self.assertTrue(self.mc.set(K("c"), "99"))
        self.assertEqual(self.mc.incr(K("c")), 100)            # grows a digit
        self.assertEqual(self.mc.get(K("c")), "100")
        self.assertIsNone(self.mc.incr(K("c"), 5, noreply=True))
        self.assertEqual(self.mc.get(K("c")), "105")
        self.assertAlive()

    # --- delete / delete_multi --------------------------------------------

    def test_delete(self):
        self.assertTrue(self.mc.set(K("key0"), "wupeiqi"))
        self.assertEqual(self.mc.get(K("key0")), "wupeiqi")
        self.assertEqual(self.mc.delete(K("key0")), 1)
        self.assertIsNone(self.mc.get(K("key0")))
        self.assertAlive()

    def test_delete_noreply(self):
        self.assertTrue(self.mc.set(K("key0"), "v"))
        self.assertEqual(self.mc.delete(K("key0"), noreply=True), 1)
        self.assertIsNone(self.mc.get(K("key0")))
        self.assertAlive()

    def test_delete_multi(self):
        self.assertEqual(self.mc.set_multi({K("key1"): "val1", K("key2"): "val2",
                                            K("key3"): "val3"}), [])
        self.assertEqual(self.mc.delete_multi([K("key1"), K("key2")]), 1)
        self.assertEqual(self.mc.get_multi([K("key1"), K("key2"), K("key3")]),
                         {K("key3"): "val3"})
        # with key_prefix
        pfx = K("dm_")
        self.assertEqual(self.mc.set_multi({"a": "1", "b": "2"}, key_prefix=pfx), [])
        self.assertEqual(self.mc.delete_multi(["a", "b"], key_prefix=pfx), 1)
        self.assertEqual(self.mc.get_multi(["a", "b"], key_prefix=pfx), {})
        self.assertAlive()

    # --- touch / expiry ---------------------------------------------------

    # memcached's clock ticks once a second, so an item set with time=1 may
    # be gone at any moment within about a second: nothing below expects
    # a time=1 item to still be there.

    def test_expiry(self):
        self.assertTrue(self.mc.set(K("k3"), "v", time=3))
        self.assertEqual(self.mc.get(K("k3")), "v")
        self.assertTrue(self.mc.set(K("k"), "v", time=1))
        self.assertTrue(self.mc.set(K("stays"), "v"))
        gone = wait_until(lambda: self.mc.get(K("k")) is None, timeout=5)
        self.assertTrue(gone, "an item set with time=1 was still there after 5 s")
        self.assertEqual(self.mc.get(K("stays")), "v")
        self.assertEqual(DEAD, [])

    def test_touch(self):
        self.assertTrue(self.mc.set(K("t"), "v"))            # no expiry
        self.assertTrue(self.mc.set(K("stays"), "v"))
        self.assertEqual(self.mc.touch(K("t"), 1), 1)        # TOUCHED
        gone = wait_until(lambda: self.mc.get(K("t")) is None, timeout=5)
        self.assertTrue(gone, "touch(key, 1) did not make the item expire")
        self.assertEqual(self.mc.get(K("stays")), "v")
        self.assertEqual(self.mc.touch(K("t"), 10), 0)       # no longer there

    def test_touch_extends(self):
        self.assertTrue(self.mc.set(K("t2"), "v", time=2))
        self.assertEqual(self.mc.touch(K("t2"), 0), 1)       # 0 = never expire
        t0 = time.monotonic()
        # it outlives its original 2 s expiry by a clear margin
        while time.monotonic() - t0 < 3.5:
            self.assertEqual(self.mc.get(K("t2")), "v")
            time.sleep(0.1)

    # --- gets / cas -------------------------------------------------------

    def test_gets_cas(self):
        mc = client(cache_cas=True)
        try:
            self.assertTrue(mc.set(K("product_count"), "900"))
            self.assertEqual(mc.gets(K("product_count")), "900")
            self.assertIn(K("product_count").encode(), mc.cas_ids)
            self.assertTrue(mc.cas(K("product_count"), "899"))
            self.assertEqual(mc.get(K("product_count")), "899")
            # the cas id moved on: the old one no longer works
            self.assertFalse(mc.cas(K("product_count"), "898"))
            self.assertEqual(mc.get(K("product_count")), "899")
        finally:
            mc.disconnect_all()

    def test_cas_race_two_clients(self):
        c1 = client(cache_cas=True)
        c2 = client(cache_cas=True)
        try:
            self.assertTrue(c1.set(K("n"), 9))
            self.assertEqual(c1.gets(K("n")), 9)
            self.assertEqual(c2.gets(K("n")), 9)
            # python-memcached silently turns cas into set when it has no
            # cas id for the key; make sure both really hold one
            self.assertIn(K("n").encode(), c1.cas_ids)
            self.assertIn(K("n").encode(), c2.cas_ids)
            self.assertEqual(c1.cas_ids[K("n").encode()],
                             c2.cas_ids[K("n").encode()])
            self.assertTrue(c1.cas(K("n"), 99))
            self.assertFalse(c2.cas(K("n"), 100))           # EXISTS
            self.assertEqual(self.mc.get(K("n")), 99)
        finally:
            c1.disconnect_all()
            c2.disconnect_all()

    def test_cas_after_plain_set_fails(self):
        mc = client(cache_cas=True)
        try:
            self.assertTrue(mc.set(K("count"), "10"))
            self.assertEqual(mc.gets(K("count")), "10")
            self.assertTrue(self.mc.set(K("count"), "12"))   # someone else
            self.assertFalse(mc.cas(K("count"), "11"))
            self.assertEqual(mc.get(K("count")), "12")
        finally:
            mc.disconnect_all()

    def test_cas_deleted_item_fails(self):
        mc = client(cache_cas=True)
        try:
            self.assertTrue(mc.set(K("gone"), "x"))
            self.assertEqual(mc.gets(K("gone")), "x")
            self.assertEqual(self.mc.delete(K("gone")), 1)
            self.assertFalse(mc.cas(K("gone"), "y"))         # NOT_FOUND
            self.assertIsNone(mc.get(K("gone")))
        finally:
            mc.disconnect_all()
        self.assertAlive()

    # --- value types and flags --------------------------------------------

    def test_int_value(self):
        self.assertTrue(self.mc.set(K("i"), 42))
        v = self.mc.get(K("i"))
        self.assertEqual(v, 42)
        self.assertIs(type(v), int)
        self.assertEqual(raw_get(K("i")), (2, b"42"))     # _FLAG_INTEGER

    def test_text_value_flags(self):
        self.assertTrue(self.mc.set(K("s"), "text"))
        self.assertEqual(raw_get(K("s")), (16, b"text"))  # _FLAG_TEXT
        self.assertTrue(self.mc.set(K("b"), b"bytes"))
        self.assertEqual(raw_get(K("b")), (0, b"bytes"))

    def test_pickled_dict(self):
        d = {"name": "to,", "age": 19, "job": ["IT", None], "nested": {"a": 1.5}}
        self.assertTrue(self.mc.set(K("dict"), d))
        self.assertEqual(self.mc.get(K("dict")), d)
        flags, _ = raw_get(K("dict"))
        self.assertEqual(flags, 1)                         # _FLAG_PICKLE

    def test_pickled_object(self):
        p = Point(3, [4, "x"])
        self.assertTrue(self.mc.set(K("obj"), p))
        got = self.mc.get(K("obj"))
        self.assertIsInstance(got, Point)
        self.assertEqual(got, p)
        self.assertEqual(raw_get(K("obj"))[0], 1)
        # mixed types through get_multi
        self.assertEqual(self.mc.set_multi({K("m1"): p, K("m2"): 7, K("m3"): "s"}), [])
        self.assertEqual(self.mc.get_multi([K("m1"), K("m2"), K("m3")]),
                         {K("m1"): p, K("m2"): 7, K("m3"): "s"})

    def test_compressed_value(self):
        text = "compress me " * 2000
        self.assertTrue(self.mc.set(K("z"), text, min_compress_len=100))
        flags, data = raw_get(K("z"))
        self.assertTrue(flags & 8, "expected _FLAG_COMPRESSED, flags=%d" % flags)
        self.assertLess(len(data), len(text))
        self.assertEqual(self.mc.get(K("z")), text)

    def test_large_value(self):
        big = os.urandom(500 * 1024)
        self.assertTrue(self.mc.set(K("big"), big))
        self.assertEqual(self.mc.get(K("big")), big)
        self.assertTrue(self.mc.set(K("small"), "s"))
        self.assertEqual(self.mc.get_multi([K("small"), K("big"), K("nope")]),
                         {K("small"): "s", K("big"): big})

    # --- stats ------------------------------------------------------------

    def test_get_stats(self):
        stats = self.mc.get_stats()
        self.assertEqual(len(stats), 1)
        name, st = stats[0]
        self.assertIn(TARGET.rsplit(":", 1)[1], name)
        for field in ("pid", "uptime", "time", "version", "curr_connections",
                      "cmd_get", "cmd_set", "get_hits", "get_misses"):
            self.assertIn(field, st)
        for field in ("pid", "uptime", "time", "curr_connections",
                      "cmd_get", "cmd_set", "get_hits", "get_misses"):
            self.assertRegex(st[field], r"^\d+$", field)
        self.assertGreaterEqual(int(st["curr_connections"]), 1)
        self.assertLess(abs(int(st["time"]) - time.time()), 60)
        # the counters count
        self.assertTrue(self.mc.set(K("statkey"), "v"))
        self.assertEqual(self.mc.get(K("statkey")), "v")
        self.assertIsNone(self.mc.get(K("statmiss")))
        after = self.mc.get_stats()[0][1]
        self.assertGreaterEqual(int(after["cmd_get"]) - int(st["cmd_get"]), 2)
        self.assertGreaterEqual(int(after["cmd_set"]) - int(st["cmd_set"]), 1)
        self.assertGreaterEqual(int(after["get_hits"]) - int(st["get_hits"]), 1)
        self.assertGreaterEqual(int(after["get_misses"]) - int(st["get_misses"]), 1)


def main():
    global TARGET, NS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("target", help="HOST:PORT")
    ap.add_argument("--prefix", help="put this in front of every key")
    ap.add_argument("unittest_args", nargs="*",
                    help="passed to unittest (e.g. a test name)")
    args = ap.parse_args()
    TARGET = args.target
    NS = (args.prefix or "") + "pymc%d_%s:" % (os.getpid(), os.urandom(3).hex())
    print("python-memcached %s -> %s, keys %s*" % (memcache.__version__, TARGET, NS),
          flush=True)
    prog = unittest.main(argv=[sys.argv[0], "-v"] + args.unittest_args, exit=False)
    sys.exit(0 if prog.result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
