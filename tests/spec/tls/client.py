# tls/client.py -- the TLS clients tls_spec drives: pymemcache with a
# tls_context, and raw TLS sockets.  python3 client.py MODE PORT DIR [...]
# prints what it saw; a refusal prints "REFUSED <the error>".
import socket
import ssl
import sys

from pymemcache.client.base import Client

mode, port, d = sys.argv[1], int(sys.argv[2]), sys.argv[3]
args = sys.argv[4:]


def context(cert=None):
    ctx = ssl.create_default_context(cafile=d + "/ca.pem")
    if cert:
        ctx.load_cert_chain(d + "/" + cert + ".pem", d + "/" + cert + ".key")
    return ctx


def client(cert=None):
    return Client(("localhost", port), tls_context=context(cert), connect_timeout=5, timeout=5)


def check(what, got, want):
    if got != want:
        print("FAIL %s: got %r, want %r" % (what, got, want))
        sys.exit(1)


if mode == "api":
    c = client(args[0] if args else None)
    c.flush_all()
    check("set", c.set("a", "1"), True)
    check("get", c.get("a"), b"1")
    check("add existing", c.add("a", "2", noreply=False), False)
    check("add", c.add("b", "2", noreply=False), True)
    check("replace", c.replace("b", "3", noreply=False), True)
    check("replace missing", c.replace("nope", "3", noreply=False), False)
    check("append", c.append("b", "x", noreply=False), True)
    check("prepend", c.prepend("b", "y", noreply=False), True)
    check("get b", c.get("b"), b"y3x")
    value, cas = c.gets("b")
    check("gets", value, b"y3x")
    check("cas", c.cas("b", "z", cas, noreply=False), True)
    check("cas stale", c.cas("b", "w", cas, noreply=False), False)
    check("incr", c.set("n", "10") and c.incr("n", 5), 15)
    check("decr", c.decr("n", 3), 12)
    check("touch", c.touch("n", 100, noreply=False), True)
    check("delete", c.delete("n", noreply=False), True)
    check("delete missing", c.delete("n", noreply=False), False)
    check("get missing", c.get("n"), None)
    big = bytes(range(256)) * 2000  # 512,000 bytes
    check("set 500 KB", c.set("big", big), True)
    check("get 500 KB", c.get("big"), big)
    keys = {"k%d" % i: ("v%d" % i) * 10 for i in range(1000)}
    check("set_many", c.set_many(keys), [])
    got = c.get_many(list(keys))
    check("get_many 1,000", len(got), 1000)
    check("get_many values", all(got[k] == v.encode() for k, v in keys.items()), True)
    check("delete_many", c.delete_many(list(keys)[:10]), True)
    check("get_many after", len(c.get_many(list(keys)[:20])), 10)
    check("version", bool(c.version()), True)
    c.close()
    print("OK")
elif mode == "get":
    # get KEY with CERT ("-" for none): the value, or the refusal
    key, cert = args[0], args[1] if len(args) > 1 and args[1] != "-" else None
    try:
        v = client(cert).get(key)
        print("VALUE %s" % (v.decode() if v is not None else "<miss>"))
    except Exception as e:
        print("REFUSED %s: %s" % (type(e).__name__, e))
elif mode == "peer":
    # the subject CN of the certificate the server shows
    s = context().wrap_socket(socket.create_connection(("localhost", port), 5),
                              server_hostname="localhost")
    subject = dict(x[0] for x in s.getpeercert()["subject"])
    print("CN %s" % subject.get("commonName"))
    s.close()
elif mode == "plain-tls":
    # TLS to a port that speaks plain memcached
    try:
        s = context().wrap_socket(socket.create_connection(("127.0.0.1", port), 5),
                                  server_hostname="localhost")
        print("HANDSHAKE %s" % s.version())
    except Exception as e:
        print("REFUSED %s: %s" % (type(e).__name__, e))
elif mode == "raw":
    # the backend read directly: TLS to memcached -Z, "get KEY"
    ctx = context()
    ctx.check_hostname = False
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), 5))
    s.sendall(("get %s\r\n" % args[0]).encode())
    buf = b""
    while not buf.endswith(b"END\r\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    print(buf.decode(errors="replace"), end="")
else:
    sys.exit("unknown mode " + mode)
