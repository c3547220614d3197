#!/bin/sh
# bench.sh -- the gateway vs twemproxy vs direct memcached, side by side.
#
#   make bench            (or: sh tests/bench/bench.sh from the repo root)
#
# Two memcached servers; twemproxy (Debian's nutcracker: md5 + ketama) over
# both; the gateway over the same two (hash = "ketama", with a route
# *function* called on every request); gw_admin, the same gateway with its
# admin listener on and a real Prometheus scraping /metrics every second.  memcaslap drives each target in
# interleaved rounds: 32 connections, 90% get / 10% set, 32-byte keys,
# 100-byte values.  "direct" is one of the two memcached servers.
#
# Printed: ops/s, mean latency (memcaslap's), the proxy's own CPU time per op
# (utime+stime from /proc/PID/stat over the run, divided by the ops), the
# get/set commands the memcached servers saw per client op (about 1.00: the
# target really forwarded), the ratios gateway/twemproxy, gateway/direct
# and gw_admin/gateway, and how many scrapes Prometheus made.
#
# Knobs (environment):
#   BENCH_ROUNDS=3  BENCH_SECONDS=8  BENCH_WARMUP=2  BENCH_CONC=32
#   BENCH_THREADS=1 (memcaslap -T)  BENCH_GW_THREADS=1 (gateway threads)
#   BENCH_TARGETS="direct twemproxy gateway gw_admin"  GATEWAY_BIN=./gateway
#   BENCH_BASELINE=path/to/other/gateway adds it as the target "baseline"
#   BENCH_KEEP=1 keeps the work directory (logs, configs, raw output)
# The machine has 2 cores: memcaslap takes about one, the target the other.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3
UTIL="$PY $ROOT/tests/bench/bench_util.py"
GATEWAY=${GATEWAY_BIN:-$ROOT/gateway}
ROUNDS=${BENCH_ROUNDS:-3}
SECS=${BENCH_SECONDS:-8}
WARMUP=${BENCH_WARMUP:-2}
CONC=${BENCH_CONC:-32}
THREADS=${BENCH_THREADS:-1}
GW_THREADS=${BENCH_GW_THREADS:-1}
TARGETS=${BENCH_TARGETS:-"direct twemproxy gateway gw_admin"}

for tool in memcached nutcracker memcaslap; do
    command -v $tool >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin
    command -v $tool >/dev/null 2>&1 || { echo "bench: $tool not found (make deps)" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gwbench.XXXXXX")
PIDS=""

cleanup() {
    status=$?
    for pid in $PIDS; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in $PIDS; do
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [ "${BENCH_KEEP:-0}" = 1 ] || [ $status -ne 0 ]; then
        echo "bench: logs kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME PORT CMD...: run CMD in the background, wait for PORT.
start() {
    name=$1 port=$2
    shift 2
    "$@" >"$WORK/$name.log" 2>&1 &
    pid=$!
    PIDS="$PIDS $pid"
    if ! $UTIL wait "$port" 10 || ! kill -0 "$pid" 2>/dev/null; then
        echo "bench: $name did not come up on port $port:" >&2
        cat "$WORK/$name.log" >&2
        exit 1
    fi
    eval "PID_$name=$pid"
}

user_opt=""
[ "$(id -u)" = 0 ] && user_opt="-u root"

M1=$($UTIL port); M2=$($UTIL port)
start mc1 "$M1" memcached -U 0 -l 127.0.0.1 -p "$M1" -m 256 -t 1 -c 1024 $user_opt
start mc2 "$M2" memcached -U 0 -l 127.0.0.1 -p "$M2" -m 256 -t 1 -c 1024 $user_opt

PORT_direct=$M1
PID_direct=""

case " $TARGETS " in *" twemproxy "*)
    PORT_twemproxy=$($UTIL port)
    NC_STATS=$($UTIL port)
    cat >"$WORK/nutcracker.yml" <<EOF
bench:
  listen: 127.0.0.1:$PORT_twemproxy
  hash: md5
  distribution: ketama
  auto_eject_hosts: false
  timeout: 1000
  servers:
   - 127.0.0.1:$M1:1
   - 127.0.0.1:$M2:1
EOF
    start twemproxy "$PORT_twemproxy" nutcracker -c "$WORK/nutcracker.yml" \
        -s "$NC_STATS" -a 127.0.0.1 -o "$WORK/nutcracker.out"
esac

# The gateway's config, for every gateway target.
cat >"$WORK/gateway.lua" <<EOF
-- memcaslap's keys start with binary bytes; memcached and twemproxy take
-- them, so the gateway is told to as well.
gateway.settings { threads = $GW_THREADS, binary_keys = true }
local pool = memcache.pool {
  servers = { "127.0.0.1:$M1", "127.0.0.1:$M2" },
  hash = "ketama",
  timeout = 1.0,
}
-- a Lua function on every request
memcache.route { default = function(req) return pool end }
EOF

# start_gateway TARGET BINARY CONFIG
start_gateway() {
    if [ ! -x "$2" ]; then
        echo "bench: $2 not built (make gateway)" >&2
        exit 1
    fi
    eval "PORT_$1=\$(\$UTIL port)"
    eval "start $1 \$PORT_$1 \"$2\" -l \"127.0.0.1:\$PORT_$1\" \"$3\""
}

case " $TARGETS " in *" gateway "*)
    start_gateway gateway "$GATEWAY" "$WORK/gateway.lua"
esac

# baseline: another build of the gateway (BENCH_BASELINE=path to its
# binary, with its own lua/ next to it), e.g. the last release, on the
# same config: gateway/baseline is what a change cost or gained.
if [ -n "${BENCH_BASELINE:-}" ]; then
    TARGETS="$TARGETS baseline"
    start_gateway baseline "$BENCH_BASELINE" "$WORK/gateway.lua"
fi

# gw_admin: the same gateway with its admin listener on, scraped by a real
# Prometheus every second (15 s is usual).  Prometheus runs through every
# round, so the CPU it takes is shared by all targets alike; gw_admin vs
# gateway is then the cost of the metrics themselves.
PROM=""
case " $TARGETS " in *" gw_admin "*)
    ADMIN=$($UTIL port)
    sed "s/^gateway.settings.*/&\ngateway.admin \"127.0.0.1:$ADMIN\"/" \
        "$WORK/gateway.lua" >"$WORK/gw_admin.lua"
    start_gateway gw_admin "$GATEWAY" "$WORK/gw_admin.lua"
    command -v prometheus >/dev/null 2>&1 || { echo "bench: prometheus not found (make deps)" >&2; exit 1; }
    PROM=$($UTIL port)
    cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: gateway
    static_configs:
      - targets: ["127.0.0.1:$ADMIN"]
EOF
    start prometheus "$PROM" prometheus --config.file="$WORK/prometheus.yml" \
        --storage.tsdb.path="$WORK/prometheus" --web.listen-address="127.0.0.1:$PROM"
esac

cat >"$WORK/memcaslap.cnf" <<EOF
key
32 32 1
value
100 100 1
cmd
0 0.1
1 0.9
EOF

# drive TARGET SECONDS OUTFILE: one memcaslap run.
drive() {
    eval "port=\$PORT_$1"
    timeout $(($2 + 60)) memcaslap -s "127.0.0.1:$port" -F "$WORK/memcaslap.cnf" \
        -c "$CONC" -T "$THREADS" -t "${2}s" -S "${2}s" >"$3" 2>&1 || {
        echo "bench: memcaslap against $1 failed:" >&2
        cat "$3" >&2
        exit 1
    }
}

echo "bench: $ROUNDS rounds x [$TARGETS] x ${SECS}s; memcaslap -c $CONC -T $THREADS," \
     "90/10 get/set, 32 B keys, 100 B values; gateway threads = $GW_THREADS"

for t in $TARGETS; do eval "$UTIL probe $t \$PORT_$t"; done

if [ "$WARMUP" -gt 0 ]; then
    for t in $TARGETS; do drive "$t" "$WARMUP" "$WORK/warmup-$t.out"; done
fi

RESULTS="$WORK/results"
: >"$RESULTS"
r=1
while [ $r -le "$ROUNDS" ]; do
    for t in $TARGETS; do
        eval "pid=\$PID_$t"
        out="$WORK/round$r-$t.out"
        cpu0=""
        [ -n "$pid" ] && cpu0=$($UTIL cpu "$pid")
        b0=$($UTIL backend_ops "$M1" "$M2")
        drive "$t" "$SECS" "$out"
        b1=$($UTIL backend_ops "$M1" "$M2")
        cpu="-"
        if [ -n "$pid" ]; then
            kill -0 "$pid" 2>/dev/null || { echo "bench: $t died" >&2; exit 1; }
            cpu=$(( $($UTIL cpu "$pid") - cpu0 ))
        fi
        line="$t $r $($UTIL parse "$out") $cpu $((b1 - b0))"
        echo "$line" >>"$RESULTS"
        set -- $line
        printf '  round %d  %-10s %9s ops/s  mean %7s us  misses %s\n' "$r" "$t" "$5" "$6" "$7"
    done
    r=$((r + 1))
done

[ -n "$PROM" ] && $UTIL scrapes "$PROM"
$UTIL report "$RESULTS"
