#!/usr/bin/python3
"""idle_memory.py -- memory a server keeps per idle client connection.

    idle_memory.py --pid PID --port PORT [--host 127.0.0.1] [--conns 5000]
                   [--set-size 12288] [--batch 1] [--idle 3] [--timeout 30]
                   [--settle 5]

Starts nothing: PID must be the server process listening on HOST:PORT (a
gateway, twemproxy, memcached; for the set phase whatever is behind a
proxy must be running).  It opens --conns connections (raising
RLIMIT_NOFILE as far as it may), and reads VmRSS from /proc/PID/status:

  before     nothing opened yet
  connected  all connections accepted by the server
  version    after one `version` on each (its reply read; an ERROR reply
             is fine: the point is one small request and its reply)
  set        after one `set` of --set-size bytes on each (STORED read)
  closed     after all are closed: once the server counts them gone
             (`stats` curr_connections back to where it was, or, for a
             server without `stats` such as twemproxy, no socket on PORT
             left established or in CLOSE_WAIT in /proc/net/tcp), with a
             --timeout deadline; then
             RSS is sampled for up to --settle seconds and the first value
             within 10% of `before` (else the last) is reported

Requests go --batch connections at a time (default 1: one after the
other, so what a server keeps per connection is not hidden by what a burst
of --batch requests at once needed); each phase's replies are all read,
and RSS is read --idle seconds later (default 3), once the server has had
the time to give back what it keeps only while busy.  Output, one line
per phase:

    phase bytes_per_conn rss_kb

where bytes_per_conn is (rss - before) / conns, then a summary line:

    summary conns=N before_kb=B closed_kb=C closed_vs_before=+X.X% settle_s=S

Exit status: 0, or 1 with a message on stderr if a connection was refused,
closed, or answered something unexpected, or a deadline passed.
"""
import argparse
import os
import resource
import socket
import sys
import time


def die(msg):
    print("idle_memory: " + msg, file=sys.stderr)
    sys.exit(1)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    die("no VmRSS for pid %d" % pid)


def server_side_conns(port):
    """Connections the server on port has not closed yet: sockets whose local
    port is port, established or half-closed by the peer (CLOSE_WAIT), from
    /proc/net/tcp and tcp6 (the listening socket is not counted)."""
    n = 0
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] in ("01", "08"):
                        n += 1
        except OSError:
            pass
    return n


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return
    if hard < want and os.geteuid() == 0:
        hard = want
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    except (ValueError, OSError):
        pass
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < want:
        die("RLIMIT_NOFILE is %d, %d needed (run as root or raise ulimit -n)" % (soft, want))


def read_until(sock, ends, deadline):
    """Bytes from sock up to and including one of `ends` at the end."""
    buf = b""
    while not any(buf.endswith(e) for e in ends):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out; got %r" % buf[:80])
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server; got %r" % buf[:80])
        buf += chunk
    return buf


def curr_connections(args):
    """The server's own count of open client connections, or None."""
    deadline = time.monotonic() + 5
    try:
        with socket.create_connection((args.host, args.port), timeout=5) as s:
            s.sendall(b"stats\r\n")
            rep = read_until(s, (b"END\r\n", b"ERROR\r\n"), deadline)
        for line in rep.split(b"\r\n"):
            f = line.split()
            if len(f) == 3 and f[1] == b"curr_connections":
                return int(f[2]) - 1  # not counting this one
    except (OSError, ValueError, KeyError, TimeoutError, ConnectionError):
        pass
    return None


class Counter:
    """How many client connections the server holds: `stats`, else the
    kernel's table of its sockets."""

    def __init__(self, args):
        self.args = args
        self.use_stats = curr_connections(args) is not None

    def count(self):
        if self.use_stats:
            n = curr_connections(self.args)
            return n if n is not None else -1
        return server_side_conns(self.args.port)

    def wait(self, target, deadline, what):
        while True:
            n = self.count()
            if n == target:
                return
            if time.monotonic() > deadline:
                die("timed out waiting for %s: the server counts %s, want %d" % (what, n, target))
            time.sleep(0.05)


def round_trip(conns, payload_of, ends, args, what):
    """Send each connection its request and read its reply, --batch at a time."""
    for i in range(0, len(conns), args.batch):
        batch = conns[i:i + args.batch]
        deadline = time.monotonic() + args.timeout
        for j, s in enumerate(batch):
            s.settimeout(args.timeout)
            s.sendall(payload_of(i + j))
        for j, s in enumerate(batch):
            try:
                rep = read_until(s, ends, deadline)
            except (OSError, TimeoutError, ConnectionError) as e:
                die("%s on connection %d: %s" % (what, i + j, e))
            if rep.startswith(b"SERVER_ERROR") or rep.startswith(b"CLIENT_ERROR"):
                die("%s on connection %d: %r" % (what, i + j, rep[:200]))


def main():
    p = argparse.ArgumentParser(description="memory per idle client connection (see the top comment)")
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--conns", type=int, default=5000)
    p.add_argument("--set-size", type=int, default=12288)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--idle", type=float, default=3.0)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--settle", type=float, default=5.0)
    args = p.parse_args()
    if not os.path.exists("/proc/%d/status" % args.pid):
        die("no process %d" % args.pid)
    raise_nofile(args.conns + 64)

    counter = Counter(args)
    base = counter.count()
    before = rss_kb(args.pid)
    n = args.conns
    rows = [("before", 0, before)]

    def row(phase):
        time.sleep(args.idle)
        rss = rss_kb(args.pid)
        rows.append((phase, (rss - before) * 1024 // n, rss))
        print("%s %d %d" % rows[-1], flush=True)

    print("before 0 %d" % before, flush=True)
    conns = []
    try:
        for i in range(n):
            s = socket.create_connection((args.host, args.port), timeout=args.timeout)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conns.append(s)
    except OSError as e:
        die("connection %d: %s" % (len(conns), e))
    counter.wait(base + n, time.monotonic() + args.timeout, "%d connections accepted" % n)
    # A server that refused some (max_connections) writes an error and closes.
    for i, s in enumerate(conns):
        s.setblocking(False)
        try:
            got = s.recv(4096)
            die("connection %d: the server said %r" % (i, got[:200]))
        except BlockingIOError:
            pass
        s.setblocking(True)
    row("connected")

    round_trip(conns, lambda i: b"version\r\n", (b"\r\n",), args, "version")
    row("version")

    value = b"v" * args.set_size
    round_trip(conns, lambda i: b"set idle_memory:%d 0 0 %d\r\n%s\r\n" % (i, len(value), value),
               (b"STORED\r\n",), args, "set")
    row("set")

    for s in conns:
        s.close()
    conns = []
    closed_at = time.monotonic()
    counter.wait(base, closed_at + args.timeout, "the connections to close")
    settle_end = time.monotonic() + args.settle
    while True:
        rss = rss_kb(args.pid)
        if rss <= before * 1.10 or time.monotonic() >= settle_end:
            break
        time.sleep(0.1)
    settled = time.monotonic() - closed_at
    rows.append(("closed", (rss - before) * 1024 // n, rss))
    print("%s %d %d" % rows[-1], flush=True)
    print("summary conns=%d before_kb=%d closed_kb=%d closed_vs_before=%+.1f%% settle_s=%.1f"
          % (n, before, rss, 100.0 * (rss - before) / before, settled), flush=True)


if __name__ == "__main__":
    main()
