#!/usr/bin/python3
"""bench_util.py -- small helpers for tests/bench/bench.sh.

    bench_util.py port                     a free loopback TCP port
    bench_util.py wait PORT SECONDS        wait until 127.0.0.1:PORT accepts
    bench_util.py cpu PID                  utime+stime of PID, in microseconds
    bench_util.py backend_ops PORT...      sum of cmd_get + cmd_set over servers
    bench_util.py probe NAME PORT          warn if NAME rejects memcaslap-style keys
    bench_util.py parse MEMCASLAP_OUTPUT   "ops runtime_s tps avg_us get_misses"
    bench_util.py scrapes PROM_PORT        how often Prometheus scraped gw_admin
    bench_util.py report RESULTS           the summary table

RESULTS has one line per run: "target round ops runtime_s tps avg_us
get_misses cpu_us backend_ops" (cpu_us is "-" for the direct target;
backend_ops is how many get/set commands the memcached servers saw, so a
target that answered without asking them would show).
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
    total = 0
    for port in ports:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"stats\r\n")
            buf = b""
            while not buf.endswith(b"END\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
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


def parse(path):
    text = open(path, errors="replace").read()
    m = re.search(r"Run time: ([\d.]+)s Ops: (\d+) TPS: (\d+)", text)
    if not m:
        raise SystemExit("no 'Run time: ... Ops: ... TPS:' line in %s" % path)
    runtime, ops, tps = float(m.group(1)), int(m.group(2)), int(m.group(3))
    # the final histogram block: "Total Statistics (N events)" ... "Avg: X"
    blocks = re.findall(r"Total Statistics \(\d+ events\)\s*\n\s*Min:\s*\d+\s*\n"
                        r"\s*Max:\s*\d+\s*\n\s*Avg:\s*([\d.]+)", text)
    avg = float(blocks[-1]) if blocks else float("nan")
    misses = re.findall(r"get_misses: (\d+)", text)
    print("%d %.2f %d %.1f %s" % (ops, runtime, tps, avg, misses[-1] if misses else "-"))


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


def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def report(path):
    runs = {}
    order = []
    for line in open(path):
        p = line.split()
        if len(p) != 9:
            continue
        target, _rnd, ops, runtime, tps, avg, misses, cpu, bops = p
        if target not in runs:
            runs[target] = []
            order.append(target)
        runs[target].append({
            "ops": int(ops), "runtime": float(runtime), "tps": int(tps),
            "avg": float(avg), "misses": int(misses) if misses != "-" else 0,
            "cpu": None if cpu == "-" else int(cpu), "bops": int(bops)})
    summary = {}
    for t in order:
        rs = runs[t]
        ops = sum(r["ops"] for r in rs)
        secs = sum(r["runtime"] for r in rs)
        # latency: mean over runs weighted by ops
        avg = sum(r["avg"] * r["ops"] for r in rs) / ops if ops else None
        cpu = None
        if all(r["cpu"] is not None for r in rs) and ops:
            cpu = sum(r["cpu"] for r in rs) / ops
        summary[t] = {"tps": ops / secs if secs else 0, "avg": avg, "cpu": cpu,
                      "misses": sum(r["misses"] for r in rs), "runs": len(rs),
                      "min": min(r["tps"] for r in rs), "max": max(r["tps"] for r in rs),
                      "fwd": sum(r["bops"] for r in rs) / ops if ops else 0}

    print()
    print("%-10s %4s %9s %17s %8s %16s %11s %16s" % (
        "target", "runs", "ops/s", "min..max per run", "mean µs",
        "proxy CPU µs/op", "get misses", "backend ops/op"))
    for t in order:
        s = summary[t]
        print("%-10s %4d %9.0f %17s %8s %16s %11d %16.2f" % (
            t, s["runs"], s["tps"], "%d..%d" % (s["min"], s["max"]),
            fmt(s["avg"], ".1f"), fmt(s["cpu"], ".2f"), s["misses"], s["fwd"]))

    def ratio(a, b, key):
        if a not in summary or b not in summary:
            return None
        x, y = summary[a][key], summary[b][key]
        if x is None or y is None or y == 0:
            return None
        return x / y

    # memcaslap counts an error reply (CLIENT_ERROR, SERVER_ERROR) as a done
    # op, so a target that rejects its requests looks fast.  The memcached
    # servers' own counters tell: each client op must reach one of them.
    invalid = [t for t in order if summary[t]["fwd"] < 0.95]

    print()
    for a, b in (("gateway", "twemproxy"), ("gateway", "direct"),
                 ("gateway", "baseline"), ("gw_admin", "gateway")):
        if a in summary and b in summary:
            print("%-18s ops/s %s   mean latency %s   proxy CPU/op %s" % (
                a + "/" + b, fmt(ratio(a, b, "tps"), ".2f"),
                fmt(ratio(a, b, "avg"), ".2f"), fmt(ratio(a, b, "cpu"), ".2f")))
    for t in invalid:
        print("INVALID: %s: the memcached servers saw %.2f get/set commands per "
              "client op (expected about 1.00); it answered memcaslap without "
              "forwarding (error replies?), so its numbers mean nothing.  See "
              "the raw output with BENCH_KEEP=1." % (t, summary[t]["fwd"]))
    return 1 if invalid else 0


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "port":
        print(free_port())
    elif cmd == "wait":
        sys.exit(0 if wait(int(sys.argv[2]), float(sys.argv[3])) else 1)
    elif cmd == "cpu":
        print(cpu_us(int(sys.argv[2])))
    elif cmd == "backend_ops":
        backend_ops([int(p) for p in sys.argv[2:]])
    elif cmd == "probe":
        probe(sys.argv[2], int(sys.argv[3]))
    elif cmd == "parse":
        parse(sys.argv[2])
    elif cmd == "scrapes":
        scrapes(int(sys.argv[2]))
    elif cmd == "report":
        sys.exit(report(sys.argv[2]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
