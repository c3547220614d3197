#!/usr/bin/python3
"""bench_util.py -- small helpers for tests/bench/bench.sh.

    bench_util.py port                     a free loopback TCP port
    bench_util.py wait PORT SECONDS        wait until 127.0.0.1:PORT accepts
    bench_util.py cpu PID                  utime+stime of PID, in microseconds
    bench_util.py backend_ops PORT...      sum of cmd_get + cmd_set over servers
                                           (memcached counts each key of a
                                           multi-get in cmd_get, and, as of
                                           1.6.18, each mg in cmd_get and
                                           each ms in cmd_set); tls:PORT is
                                           a memcached -Z, asked over TLS,
                                           its certificate verified against
                                           $BENCH_TLS_CA for 127.0.0.1
    bench_util.py probe NAME PORT          warn if NAME rejects memcaslap-style keys
    bench_util.py meta_probe NAME PORT     exit 1, with a warning, unless NAME
                                           answers a meta get (mg ... v f) and
                                           a meta no-op (mn) as memcached does
    bench_util.py binary_probe NAME PORT   exit 1, with a warning, unless NAME
                                           answers the binary protocol as
                                           memcached does: a Set and a Get of
                                           a memcaslap-style key, then a Noop
    bench_util.py parse OUTPUT             memcaslap's or loadgen's output as
                                           "ops=N secs=S mean_us=..."
    bench_util.py show LINE                one RESULTS line, readable
    bench_util.py idle NAME OUTPUT SETSIZE idle_memory.py's OUTPUT for NAME as a
                                           RESULTS line
    bench_util.py scrapes PROM_PORT        how often Prometheus scraped gw_admin
    bench_util.py report RESULTS           the tables and the goals; exit 1 if
                                           a run is INVALID

RESULTS has one line per run: "workload target round name=value ...",
with cpu (the target's utime+stime over the run, in µs; for direct,
memcached's), bops (the get/set commands the memcached servers saw: a
target that answered without asking them shows), ops (keys, for a
multi-get), secs, and what the load generator reported.  Memory lines have
round "-", n (connections), RSS in KB before and after each phase
(PHASE_kb) and the bytes per connection idle_memory.py computed (PHASE_b).  "title WORKLOAD text" lines name a
workload's table.
"""
import os
import re
import socket
import sys
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait(port, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


def cpu_us(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15
    ticks = int(fields[11]) + int(fields[12])
    return ticks * 1000000 // os.sysconf("SC_CLK_TCK")


def backend_ops(ports):
    """ports: numbers, or "tls:N" for a memcached -Z (stats over TLS)."""
    total = 0
    ctx = None
    for port in ports:
        tls = port.startswith("tls:")
        if tls and ctx is None:
            import ssl
            ctx = ssl.create_default_context(cafile=os.environ["BENCH_TLS_CA"])
        with socket.create_connection(("127.0.0.1", int(port[4:] if tls else port)),
                                      timeout=5) as raw:
            s = ctx.wrap_socket(raw, server_hostname="127.0.0.1") if tls else raw
            s.sendall(b"stats\r\n")
            buf = b""
            while not buf.endswith(b"END\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            if tls:
                s.close()
        st = dict(l.split()[1:3] for l in buf.decode().splitlines()
                  if l.startswith("STAT "))
        total += int(st["cmd_get"]) + int(st["cmd_set"])
    print(total)


def probe(name, port):
    """memcaslap's keys start with an 8-byte binary prefix (bytes such as
    0x10 and 0xb0), which memcached accepts.  Say so when a target does not."""
    key = b"\x10\xb0\x10\x10\x10\x10\x10\x10probe%d" % os.getpid()
    req = b"set " + key + b" 0 0 3\r\nabc\r\nget " + key + b"\r\n"
    want = b"STORED\r\nVALUE " + key + b" 0 3\r\nabc\r\nEND\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(req)
        buf = b""
        deadline = time.monotonic() + 5
        while len(buf) < len(want) and time.monotonic() < deadline:
            if buf.count(b"\r\n") >= 2 and not buf.startswith(b"STORED"):
                break
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    if buf != want:
        print("bench: WARNING: %s answers a memcaslap-style key (%r) with %r; "
              "memcached answers %r" % (name, req, buf, want), file=sys.stderr)


def meta_probe(name, port):
    """Whether NAME speaks the meta protocol: a get of a key nobody stored
    must answer EN, and mn MN."""
    req = b"mg bench_meta_probe_%d v f\r\nmn\r\n" % os.getpid()
    want = b"EN\r\nMN\r\n"
    buf = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(req)
            deadline = time.monotonic() + 5
            while buf.count(b"\r\n") < 2 and time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
    except OSError as e:
        buf += (" (%s)" % e).encode()
    if buf != want:
        print("bench: WARNING: %s answers %r with %r, not %r: it does not speak the "
              "meta protocol" % (name, req, buf, want), file=sys.stderr)
        return False
    return True


def read_bin_replies(s, n, deadline):
    """Up to n binary responses from s, as (magic, opcode, status, opaque,
    extras, key, value); fewer at EOF, timeout or a byte that is no
    response's magic."""
    import struct
    buf, out = b"", []
    while len(out) < n and time.monotonic() < deadline:
        while len(buf) >= 24:
            magic, op, klen, elen, _, status, blen, opaque, _ = struct.unpack(
                ">BBHBBHIIQ", buf[:24])
            if magic != 0x81 or len(buf) < 24 + blen:
                break
            body = buf[24:24 + blen]
            out.append((magic, op, status, opaque, body[:elen], body[elen:elen + klen],
                        body[elen + klen:]))
            buf = buf[24 + blen:]
        if len(out) >= n or (buf and buf[0] != 0x81):
            break
        s.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return out, buf


def binary_probe(name, port):
    """Whether NAME speaks the binary protocol as memcaslap -B uses it: a Set
    (flags 0, no expiry) of a key with memcaslap's control bytes must answer
    status 0, a Get of it status 0 with flags 0 and the value, and a Noop
    status 0."""
    import struct

    def req(op, opaque, extras=b"", key=b"", value=b""):
        return struct.pack(">BBHBBHIIQ", 0x80, op, len(key), len(extras), 0, 0,
                           len(extras) + len(key) + len(value), opaque, 0) + extras + key + value

    key = b"\x10\xb0\x10\x10\x10\x10\x10\x10binprobe%d" % os.getpid()
    msg = (req(0x01, 1, struct.pack(">II", 0, 0), key, b"abc")   # Set
           + req(0x00, 2, key=key)                                # Get
           + req(0x0a, 3))                                        # Noop
    want = [(0x01, 0, 1, b"", b"", b""), (0x00, 0, 2, b"\0\0\0\0", b"", b"abc"),
            (0x0a, 0, 3, b"", b"", b"")]
    got, rest = [], b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(msg)
            got, rest = read_bin_replies(s, 3, time.monotonic() + 5)
    except OSError as e:
        rest += (" (%s)" % e).encode()
    seen = [(op, status, opaque, extras, k, v) for _, op, status, opaque, extras, k, v in got]
    if seen != want or rest:
        print("bench: WARNING: %s answers a binary Set, Get and Noop of %r with %r%s, not "
              "%r: it does not speak the binary protocol as memcached does"
              % (name, key, seen, " and then %r" % rest[:64] if rest else "", want),
              file=sys.stderr)
        return False
    return True


def parse(path):
    """One run's output, memcaslap's or loadgen's, as name=value pairs:
    ops (keys, for a multi-get), secs, mean_us, errors and, from loadgen,
    the percentiles."""
    text = open(path, errors="replace").read()
    m = re.search(r"^RESULT (.*)$", text, re.M)
    if m:
        r = dict(kv.split("=", 1) for kv in m.group(1).split())
        out = {"ops": r["keys"], "reqs": r["requests"], "secs": r["seconds"]}
        for k in ("errors", "dropped", "misses", "mean_us", "p50_us", "p99_us",
                  "p999_us", "max_us", "lag_max_us"):
            out[k] = r[k]
    else:
        m = re.search(r"Run time: ([\d.]+)s Ops: (\d+) TPS: (\d+)", text)
        if not m:
            raise SystemExit("no 'Run time: ... Ops: ... TPS:' line in %s" % path)
        out = {"ops": m.group(2), "secs": m.group(1)}
        # the final histogram block: "Total Statistics (N events)" ... "Avg: X"
        blocks = re.findall(r"Total Statistics \(\d+ events\)\s*\n\s*Min:\s*\d+\s*\n"
                            r"\s*Max:\s*\d+\s*\n\s*Avg:\s*([\d.]+)", text)
        if blocks:
            out["mean_us"] = blocks[-1]
        misses = re.findall(r"get_misses: (\d+)", text)
        if misses:
            out["misses"] = misses[-1]
    print(" ".join("%s=%s" % kv for kv in out.items()))


def run_line(line):
    """A RESULTS line, "workload target round name=value ...", as a dict."""
    p = line.split()
    d = {"w": p[0], "t": p[1], "r": p[2]}
    for kv in p[3:]:
        k, v = kv.split("=", 1)
        d[k] = float(v)
    return d


def show(line):
    d = run_line(line)
    rate = d["ops"] / d["secs"] if d["secs"] else 0
    extra = ""
    if "p99_us" in d:
        extra = "  p50 %.0f  p99 %.0f  p99.9 %.0f us" % (d["p50_us"], d["p99_us"], d["p999_us"])
    elif "mean_us" in d:
        extra = "  mean %.0f us" % d["mean_us"]
    op = "key" if d["w"] == "multiget" else "op"
    print("  %-8s round %-2s %-13s %9.0f %-6s  CPU %5.2f us/%-3s  backend %.2f/%-3s%s%s" % (
        d["w"], d["r"], d["t"], rate, op + "s/s",
        d["cpu"] / d["ops"] if d["ops"] else 0, op, d["bops"] / d["ops"] if d["ops"] else 0, op,
        extra, "  ERRORS %d" % d["errors"] if d.get("errors") else ""))


PHASES = ("connected", "version", "set", "closed")


def idle(name, path, setsize):
    """idle_memory.py's output for NAME (lines "phase bytes_per_conn rss_kb"
    and "summary conns=N ...") as one RESULTS line: "memory NAME - n=N
    setsize=S before_kb=.. PHASE_kb=.. PHASE_b=.. ..." with PHASE_b its
    bytes per connection."""
    out = {"setsize": setsize}
    for line in open(path):
        p = line.split()
        if p and p[0] == "summary":
            out["n"] = dict(kv.split("=", 1) for kv in p[1:])["conns"]
        elif len(p) == 3 and p[0] in ("before",) + PHASES:
            out[p[0] + "_kb"] = p[2]
            if p[0] != "before":
                out[p[0] + "_b"] = p[1]
    missing = [k for k in ("n", "before_kb") + tuple(ph + "_kb" for ph in PHASES)
               if k not in out]
    if missing:
        raise SystemExit("idle_memory output %s has no %s" % (path, ", ".join(missing)))
    print("memory %s - %s" % (name, " ".join("%s=%s" % kv for kv in out.items())))


def scrapes(port):
    """Proof the metrics were really read: the scrapes Prometheus made of
    gw_admin's /metrics, the samples in the last one, and whether it was up."""
    import json
    import urllib.parse
    import urllib.request

    def query(q):
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (
            port, urllib.parse.urlencode({"query": q}))
        with urllib.request.urlopen(url, timeout=5) as r:
            res = json.load(r)["data"]["result"]
        return float(res[0]["value"][1]) if res else 0.0

    n = query('count_over_time(up{job="gateway"}[1h])')
    up = query('up{job="gateway"}')
    samples = query('scrape_samples_scraped{job="gateway"}')
    print("prometheus: %d scrapes of gw_admin's /metrics (every 1 s), the last "
          "one %s with %d samples" % (n, "up" if up == 1 else "DOWN", samples))


def fmt(v, spec, none="n/a"):
    return none if v is None else format(v, spec)


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def rate(d):
    # loadgen's seconds run to its last good reply: 0 when it had none
    return d["ops"] / d["secs"] if d["secs"] else 0.0 if d["ops"] == 0 else None


def cpu_op(d):
    return d["cpu"] / d["ops"] if d["ops"] else None


class Results:
    def __init__(self, path):
        self.runs = {}      # workload -> target -> round -> run
        self.order = {}     # workload -> targets in order of appearance
        self.titles = {}
        self.memory = {}
        for line in open(path):
            p = line.split()
            if not p:
                continue
            if p[0] == "title":
                self.titles[p[1]] = " ".join(p[2:])
                continue
            d = run_line(line)
            if d["w"] == "memory":
                self.memory[d["t"]] = d
                continue
            ts = self.runs.setdefault(d["w"], {})
            if d["t"] not in ts:
                ts[d["t"]] = {}
                self.order.setdefault(d["w"], []).append(d["t"])
            ts[d["t"]][d["r"]] = d

    def has(self, w, t):
        return t in self.runs.get(w, {})

    def stat(self, w, t, f):
        """The median over rounds of f(run)."""
        if not self.has(w, t):
            return None
        return median(f(d) for d in self.runs[w][t].values())

    def paired(self, w, a, b, f):
        """The median over rounds of f(a's run) / f(b's run) in that round."""
        if not (self.has(w, a) and self.has(w, b)):
            return None
        ra, rb = self.runs[w][a], self.runs[w][b]
        return median(f(ra[r]) / f(rb[r]) for r in ra
                      if r in rb and f(ra[r]) is not None and f(rb[r]))

    def paired_diff(self, w, a, b, f):
        """The median over rounds of f(a's run) - f(b's run) in that round."""
        if not (self.has(w, a) and self.has(w, b)):
            return None
        ra, rb = self.runs[w][a], self.runs[w][b]
        return median(f(ra[r]) - f(rb[r]) for r in ra
                      if r in rb and f(ra[r]) is not None and f(rb[r]) is not None)

    def fwd(self, w, t):
        rs = self.runs[w][t].values()
        ops = sum(d["ops"] for d in rs)
        return sum(d["bops"] for d in rs) / ops if ops else 0

    def errors(self, w, t):
        return sum(int(d.get("errors", 0)) + int(d.get("dropped", 0))
                   for d in self.runs[w][t].values())

    def invalid(self, w, t):
        """Why the numbers of t in w mean nothing, or None."""
        if not self.has(w, t):
            return None
        ops = sum(d["ops"] for d in self.runs[w][t].values())
        if ops == 0:
            return "no request succeeded (%d errors)" % self.errors(w, t)
        if self.fwd(w, t) < 0.95:
            return ("the memcached servers saw %.2f get/set commands per client op "
                    "(expected about 1.00): it answered without forwarding (error "
                    "replies?)" % self.fwd(w, t))
        if self.errors(w, t) > 0.01 * ops:
            return "%d errors in %d ops" % (self.errors(w, t), ops)
        return None


# tls: each TLS target's plain twin
TLS_TWIN = {"direct_tls": "direct", "gw_tls_client": "gateway", "gw_tls_both": "gateway"}


def tls_table(res, w):
    """The tls workload: each target's numbers and, for a TLS one, its
    ratios vs its plain twin and the CPU per op TLS added (µs)."""
    ts = res.order[w]
    print()
    print("== %s: %s" % (w, res.titles.get(w, "")))
    print("%-13s %4s %9s %17s %8s %10s %10s %7s %-8s %8s %9s %10s" % (
        "target", "runs", "ops/s", "min..max", "mean µs", "CPU µs/op", "backend/op",
        "errors", "vs", "ops/s ×", "CPU/op ×", "TLS µs/op"))
    for t in ts:
        rs = res.runs[w][t].values()
        rates = [rate(d) for d in rs]
        b = TLS_TWIN.get(t)
        twin = ""
        if b and res.has(w, b):
            twin = "%-8s %8s %9s %10s" % (
                b, fmt(res.paired(w, t, b, rate), ".2f", "-"),
                fmt(res.paired(w, t, b, cpu_op), ".2f", "-"),
                fmt(res.paired_diff(w, t, b, cpu_op), "+.2f", "-"))
        print(("%-13s %4d %9.0f %17s %8s %10s %10.2f %7s " % (
            t, len(rs), res.stat(w, t, rate), "%.0f..%.0f" % (min(rates), max(rates)),
            fmt(res.stat(w, t, lambda d: d.get("mean_us")), ".0f"),
            fmt(res.stat(w, t, cpu_op), ".2f"), res.fwd(w, t),
            "%d" % res.errors(w, t) if any("errors" in d for d in rs) else "-") + twin).rstrip())
    c = res.paired_diff(w, "gw_tls_client", "gateway", cpu_op)
    both = res.paired_diff(w, "gw_tls_both", "gateway", cpu_op)
    mc = res.paired_diff(w, "direct_tls", "direct", cpu_op)
    print("TLS cost per op in the gateway's CPU (TLS CPU/op - plain CPU/op, median of "
          "per-round differences): client side %s µs, both sides %s µs%s" % (
              fmt(c, "+.2f"), fmt(both, "+.2f"),
              "" if c is None or both is None else
              " (so the backend side about %+.2f µs)" % (both - c)))
    print("memcached's own, for reference (direct_tls - direct): %s µs per op" % fmt(mc, "+.2f"))
    print("(CPU: the target's utime+stime over the run, the gateway's for the gateways, "
          "memcached's for direct; the load generator's TLS is not in it)")


def table(res, w):
    if w == "tls":
        return tls_table(res, w)
    ts = res.order[w]
    op = "key" if w == "multiget" else "op"    # a multi-get counts its keys
    unit = op + "s/s"
    print()
    print("== %s: %s" % (w, res.titles.get(w, "")))
    vs = [("twemproxy", "× twemproxy"), ("direct", "× direct")]
    if w == "yield":
        vs = [("gateway", "× function route")]
    if w in ("meta", "binary"):     # twemproxy speaks neither
        vs = [("direct", "× direct")]
    if w == "latency":
        print("%-10s %4s %9s %8s %8s %9s %9s %9s %7s %10s %10s %11s" % (
            "target", "runs", "req/s", "p50 µs", "p99 µs", "p99.9 µs", "max µs",
            "lag max", "errors", "CPU µs/op", "backend/op", "p99 × twem"))
        for t in ts:
            rs = res.runs[w][t].values()
            print("%-10s %4d %9.0f %8.1f %8.1f %9.1f %9.1f %9.1f %7d %10s %10.2f %11s" % (
                t, len(rs), res.stat(w, t, rate), res.stat(w, t, lambda d: d["p50_us"]),
                res.stat(w, t, lambda d: d["p99_us"]), res.stat(w, t, lambda d: d["p999_us"]),
                max(d["max_us"] for d in rs), max(d["lag_max_us"] for d in rs),
                res.errors(w, t), fmt(res.stat(w, t, cpu_op), ".2f"), res.fwd(w, t),
                fmt(res.paired(w, t, "twemproxy", lambda d: d["p99_us"]), ".2f")))
        print("(percentiles: medians over rounds, from each request's scheduled send "
              "time; max and the generator's own lag max: the worst round)")
        return
    print("%-10s %4s %9s %17s %8s %10s %10s %7s" % (
        "target", "runs", unit, "min..max", "mean µs", "CPU µs/" + op, "backend/" + op,
        "errors") + "".join(" %16s" % h for _, h in vs) + " %16s" % ("CPU/%s × direct" % op))
    for t in ts:
        rs = res.runs[w][t].values()
        rates = [rate(d) for d in rs]
        print("%-10s %4d %9.0f %17s %8s %10s %10.2f %7s" % (
            t, len(rs), res.stat(w, t, rate), "%.0f..%.0f" % (min(rates), max(rates)),
            fmt(res.stat(w, t, lambda d: d.get("mean_us")), ".0f"),
            fmt(res.stat(w, t, cpu_op), ".2f"), res.fwd(w, t),
            "%d" % res.errors(w, t) if any("errors" in d for d in rs) else "-")
            + "".join(" %16s" % ("" if b == t else fmt(res.paired(w, t, b, rate), ".2f", "-"))
                      for b, _ in vs)
            + " %16s" % ("" if t == "direct" else fmt(res.paired(w, t, "direct", cpu_op), ".2f", "-")))
    for a, b in (("gw_admin", "gateway"), ("gateway", "baseline")):
        if res.has(w, a) and res.has(w, b):
            print("%s/%s: %s %.2f, CPU/op %.2f (medians of paired ratios)" % (
                a, b, unit, res.paired(w, a, b, rate), res.paired(w, a, b, cpu_op)))


def memory_table(res):
    print()
    print("== memory: idle connections (tests/bench/idle_memory.py; VmRSS of fresh "
          "instances; per connection: RSS growth since before / connections)")
    print("%-10s %6s %10s" % ("target", "conns", "before KB") + "".join(
        " %12s" % ph for ph in PHASES) + " %10s %13s" % ("closed KB", "closed/before"))
    for t, d in res.memory.items():
        print("%-10s %6d %10d" % (t, d["n"], d["before_kb"]) + "".join(
            " %10.0f B" % d[ph + "_b"] for ph in PHASES)
            + " %10d %+12.1f%%" % (d["closed_kb"],
                                   100 * (d["closed_kb"] - d["before_kb"]) / d["before_kb"]))
    d = next(iter(res.memory.values()))
    print("(version, set: after one `version`, then one %d-byte set to a key of its own, "
          "on each connection, read some seconds later; a memcached stores the sets "
          "itself, a proxy forwards them)" % d["setsize"])


def goals(res):
    rows = []

    def ratio_goal(text, w, a, b, f, op, limit):
        if not (res.has(w, a) and res.has(w, b)):
            rows.append((text, "not run", "-"))
            return
        v = res.paired(w, a, b, f)
        bad = res.invalid(w, a) or res.invalid(w, b)
        ok = v is not None and (v >= limit if op == ">=" else v <= limit)
        rows.append((text, "%s× (%s/%s)" % (fmt(v, ".2f"), a, b),
                     "INVALID" if bad else "PASS" if ok else "MISS"))

    ratio_goal("100 B mix, 1 thread: gateway ops/s ≥ 1.5× twemproxy",
               "mix", "gateway", "twemproxy", rate, ">=", 1.5)
    ratio_goal("100 B mix, 1 thread: gateway CPU/op ≤ 1.08× direct memcached's",
               "mix", "gateway", "direct", cpu_op, "<=", 1.08)
    ratio_goal("yielding route ≥ 0.95× the function route (same run)",
               "yield", "gw_yield", "gateway", rate, ">=", 0.95)
    ratio_goal("multi-get: gateway keys/s ≥ 1.5× twemproxy",
               "multiget", "gateway", "twemproxy", rate, ">=", 1.5)
    ratio_goal("100 KB values: gateway ops/s ≥ 1.5× twemproxy",
               "large", "gateway", "twemproxy", rate, ">=", 1.5)
    d = res.memory.get("gateway")
    text = "idle memory ≤ 600 B per connection in every phase"
    if d:
        worst = max(PHASES, key=lambda ph: d[ph + "_b"])
        v = d[worst + "_b"]
        rows.append((text, "%.0f B at worst (%s; %d conns)" % (v, worst, d["n"]),
                     "PASS" if v <= 600 else "MISS"))
    else:
        rows.append((text, "not run", "-"))
    text = "RSS after all closed within 10% of before"
    if d:
        v = (d["closed_kb"] - d["before_kb"]) / d["before_kb"]
        rows.append((text, "%+.1f%% (%d KB -> %d KB)" % (100 * v, d["before_kb"], d["closed_kb"]),
                     "PASS" if abs(v) <= 0.10 else "MISS"))
    else:
        rows.append((text, "not run", "-"))
    text = "meta (90% mg v f, 10% ms): gateway vs direct"
    if res.has("meta", "gateway") and res.has("meta", "direct"):
        rows.append((text, "%s× ops/s, CPU/op %s×" % (
            fmt(res.paired("meta", "gateway", "direct", rate), ".2f"),
            fmt(res.paired("meta", "gateway", "direct", cpu_op), ".2f")),
            "INVALID" if res.invalid("meta", "gateway") else "report"))
    else:
        rows.append((text, "not run", "-"))
    text = "binary (memcaslap -B, the mix): gateway vs direct"
    if res.has("binary", "gateway") and res.has("binary", "direct"):
        rows.append((text, "%s× ops/s, CPU/op %s×" % (
            fmt(res.paired("binary", "gateway", "direct", rate), ".2f"),
            fmt(res.paired("binary", "gateway", "direct", cpu_op), ".2f")),
            "INVALID" if res.invalid("binary", "gateway") else "report"))
    else:
        rows.append((text, "not run", "-"))
    for t, side in (("gw_tls_client", "client side"), ("gw_tls_both", "both sides")):
        text = "TLS, %s: %s vs gateway" % (side, t)
        if res.has("tls", t) and res.has("tls", "gateway"):
            rows.append((text, "%s µs CPU/op (%s×), ops/s %s×" % (
                fmt(res.paired_diff("tls", t, "gateway", cpu_op), "+.2f"),
                fmt(res.paired("tls", t, "gateway", cpu_op), ".2f"),
                fmt(res.paired("tls", t, "gateway", rate), ".2f")),
                "INVALID" if res.invalid("tls", t) or res.invalid("tls", "gateway") else "report"))
        else:
            rows.append((text, "not run", "-"))
    for b in ("direct", "twemproxy"):
        text = "2 threads: gateway (2 threads) vs %s" % b
        if res.has("threads", "gateway") and res.has("threads", b):
            rows.append((text, "%.2f× ops/s, CPU/op %.2f×" % (
                res.paired("threads", "gateway", b, rate),
                res.paired("threads", "gateway", b, cpu_op)),
                "INVALID" if res.invalid("threads", "gateway") else "report"))
        else:
            rows.append((text, "not run", "-"))
    if res.has("latency", "gateway") and res.has("latency", "twemproxy"):
        rows.append(("latency at a fixed rate: gateway p99 vs twemproxy",
                     "%.0f µs vs %.0f µs" % (res.stat("latency", "gateway", lambda d: d["p99_us"]),
                                             res.stat("latency", "twemproxy", lambda d: d["p99_us"])),
                     "INVALID" if res.invalid("latency", "gateway") else "report"))
    print()
    print("== goals (ratios: medians of per-round paired ratios)")
    width = max(len(r[0]) for r in rows)
    for text, measured, verdict in rows:
        print("%-*s  %-34s %s" % (width, text, measured, verdict))


def report(path):
    res = Results(path)
    for w in res.order:
        table(res, w)
    if res.memory:
        memory_table(res)
    goals(res)
    bad = [(w, t, res.invalid(w, t)) for w in res.order for t in res.order[w]
           if res.invalid(w, t)]
    if bad:
        print()
    for w, t, why in bad:
        print("INVALID: %s, %s: %s; its numbers mean nothing.  See the raw output "
              "with BENCH_KEEP=1." % (w, t, why))
    return 1 if bad else 0

def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "port":
        print(free_port())
    elif cmd == "wait":
        sys.exit(0 if wait(int(sys.argv[2]), float(sys.argv[3])) else 1)
    elif cmd == "cpu":
        print(cpu_us(int(sys.argv[2])))
    elif cmd == "backend_ops":
        backend_ops(sys.argv[2:])
    elif cmd == "probe":
        probe(sys.argv[2], int(sys.argv[3]))
    elif cmd == "meta_probe":
        sys.exit(0 if meta_probe(sys.argv[2], int(sys.argv[3])) else 1)
    elif cmd == "binary_probe":
        sys.exit(0 if binary_probe(sys.argv[2], int(sys.argv[3])) else 1)
    elif cmd == "parse":
        parse(sys.argv[2])
    elif cmd == "show":
        show(sys.argv[2])
    elif cmd == "idle":
        idle(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "scrapes":
        scrapes(int(sys.argv[2]))
    elif cmd == "report":
        sys.exit(report(sys.argv[2]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
