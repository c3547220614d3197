#!/bin/sh
# bench.sh -- the gateway vs twemproxy vs direct memcached, side by side.
#
#   make bench                         (about 17 minutes on 2 cores)
#   BENCH_QUICK=1 make bench           (a smoke run, about 2 minutes)
#   sh tests/bench/bench.sh            (from the repo root, after make)
#
# Two memcached servers (-t 1); twemproxy (Debian's nutcracker: md5 +
# ketama) over both; the gateway over the same two (hash = "ketama", a Lua
# route *function* called on every request).  "direct" is one of the two
# memcached servers.  Workloads (BENCH_WORKLOADS, in this order):
#
#   mix       memcaslap: 90% get / 10% set, 32 B keys, 100 B values,
#             32 connections; targets direct, twemproxy, gateway, gw_admin
#             (the gateway with its admin listener on and a real Prometheus
#             scraping /metrics every second) and baseline (below)
#   multiget  loadgen, closed loop: gets of 10 keys (BENCH_MGET), 32
#             connections, 10,000 preloaded keys; counted in keys/s
#   large     loadgen, closed loop: 90/10 get/set of 100 KB values
#             (BENCH_LARGE_SIZE), 8 connections, 1,000 preloaded keys
#   meta      loadgen -M, closed loop, the meta protocol: 90% "mg <key> v f",
#             10% "ms <key> 100 T0", 100 B values, 32 connections, 10,000
#             keys (preloaded with text sets); direct, the gateway and the
#             extras that answer meta (twemproxy speaks no meta: left out);
#             memcached counts an mg in cmd_get and an ms in cmd_set
#   binary    memcaslap -B, the binary protocol (Get and Set opcodes): the
#             mix (90/10 get/set, 32 B keys, 100 B values, 32 connections)
#             against direct, the gateway and the extras that answer binary
#             (twemproxy speaks no binary: left out); memcached counts a
#             binary Get in cmd_get and a Set in cmd_set, and the gateway
#             sends them on in meta (mg/ms, counted the same), memcaslap's
#             keys, which hold control bytes, in base64 (binary keys may be
#             any bytes: binary_keys plays no part)
#   tls       loadgen, closed loop, the mix (90/10 get/set, 100 B values,
#             32 connections, 10,000 keys), plain and TLS side by side:
#             direct; direct_tls, a memcached -Z (-t 1) over TLS; gateway,
#             plain both sides; gw_tls_client, a TLS listener (its own
#             gateway, over the plain servers); gw_tls_both, TLS listener
#             and TLS pool over two memcached -Z.  loadgen -Z speaks TLS
#             (OpenSSL; it verifies the target's certificate against the
#             test CA and its IP name) and does every handshake before the
#             timed window: what is measured is the records of requests
#             and replies, not handshakes.  A test CA and a server
#             certificate (ECDSA P-256, names localhost and 127.0.0.1) are
#             made with the openssl command in the work directory; the
#             title says the protocol and cipher negotiated.  backend/op
#             counts the -Z servers too, their stats read over TLS.  The
#             table adds each TLS target's ratios vs its plain twin
#             (gateway, or direct for direct_tls) and "TLS µs/op", the
#             target's CPU per op minus its twin's (median of per-round
#             differences): the cost of TLS per op, for the gateway on the
#             client side alone and on both sides.  Always these five
#             targets, whatever BENCH_TARGETS says.  loadgen's own TLS work
#             shares the two cores, so the ops/s ratios carry it too; CPU
#             per op is the target's alone
#   yield     the mix against the gateway with the function route (gateway)
#             and with a route that calls pool:get from Lua and answers
#             memcache.hit/miss (gw_yield), same run
#   memory    tests/bench/idle_memory.py against fresh instances of
#             memcached, twemproxy and the gateway: RSS (VmRSS) per
#             connection with 5,000 connections (BENCH_MEM_CONNS) just
#             connected, after one `version` each, after one 12 KB set each
#             (BENCH_MEM_SET), and RSS after they all closed vs before they
#             opened; skipped, saying so, when idle_memory.py is missing
#   threads   memcaslap -T 2 -c 64 against the gateway with 2 threads,
#             twemproxy, and a memcached with -t 2 as direct
#   latency   loadgen, open loop at 20,000 req/s (BENCH_RATE), the mix:
#             p50/p99/p99.9/max from each request's scheduled send time
#
# Rounds are interleaved (each round runs every target once, the order
# rotating by round).  Per target and workload it prints the median
# ops/s (or keys/s), the target's own CPU per op (per key for a
# multi-get; utime+stime from /proc/PID/stat over the run; for direct,
# memcached's), the get/set commands the memcached servers saw per client
# op (about 1.00: the target really forwarded; below 0.95, or with more
# than 1% of requests failed, the run is INVALID and make bench fails),
# and ratios vs twemproxy and vs direct as medians of per-round ratios.
# Then a table of the goals with PASS/MISS.
#
# Knobs (environment):
#   BENCH_WORKLOADS="mix multiget large meta binary tls yield memory threads latency"
#   BENCH_ROUNDS=5  BENCH_SECONDS=6  BENCH_WARMUP=1 (seconds per target)
#   BENCH_QUICK=1   defaults of 3 rounds of 2 s, no warmup, 1,000 memory
#                   connections (each knob set explicitly still wins)
#   BENCH_CONC=32   BENCH_THREADS=1 (memcaslap -T)  BENCH_GW_THREADS=1
#   BENCH_MGET=10   BENCH_LARGE_SIZE=102400  BENCH_LARGE_CONC=8
#   BENCH_RATE=20000 (latency, req/s)  BENCH_LAT_CONNS=32
#   BENCH_MEM_CONNS=5000  BENCH_MEM_SET=12288
#   BENCH_TARGETS="direct twemproxy gateway gw_admin": which run (gw_admin
#       in the mix only; gw_yield always runs in yield)
#   GATEWAY_BIN=./gateway  LOADGEN=build/bench/loadgen
#   BENCH_IDLE_MEMORY=tests/bench/idle_memory.py
#   BENCH_BASELINE=path/to/other/gateway adds it as the target "baseline"
#       (with its own lua/ next to it) to mix, multiget, large, meta,
#       binary and latency (to meta or binary only if it answers that
#       protocol: an older build is skipped)
#   BENCH_MCPROXY=path/to/memcached (built with the proxy) and
#   BENCH_MCPROXY_LIB=path/to/routelib.lua add memcached's proxy as
#       "mcproxy" to mix, multiget, large, meta, binary and latency (not in
#       Debian: off; left out of binary unless it answers binary)
#   BENCH_KEEP=1 keeps the work directory (logs, configs, raw output)
# The machine has 2 cores: the load generator takes about one, the target
# the other.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3
UTIL="$PY $ROOT/tests/bench/bench_util.py"
GATEWAY=${GATEWAY_BIN:-$ROOT/gateway}
LOADGEN=${LOADGEN:-$ROOT/build/bench/loadgen}
IDLE_MEMORY=${BENCH_IDLE_MEMORY:-$ROOT/tests/bench/idle_memory.py}
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    q_rounds=3 q_secs=2 q_warmup=0 q_mem=1000
else
    q_rounds=5 q_secs=6 q_warmup=1 q_mem=5000
fi
ROUNDS=${BENCH_ROUNDS:-$q_rounds}
SECS=${BENCH_SECONDS:-$q_secs}
WARMUP=${BENCH_WARMUP:-$q_warmup}
CONC=${BENCH_CONC:-32}
THREADS=${BENCH_THREADS:-1}
GW_THREADS=${BENCH_GW_THREADS:-1}
MGET=${BENCH_MGET:-10}
LARGE_SIZE=${BENCH_LARGE_SIZE:-102400}
LARGE_CONC=${BENCH_LARGE_CONC:-8}
RATE=${BENCH_RATE:-20000}
LAT_CONNS=${BENCH_LAT_CONNS:-32}
MEM_CONNS=${BENCH_MEM_CONNS:-$q_mem}
MEM_SET=${BENCH_MEM_SET:-12288}
WORKLOADS=${BENCH_WORKLOADS:-"mix multiget large meta binary tls yield memory threads latency"}
TARGETS=${BENCH_TARGETS:-"direct twemproxy gateway gw_admin"}

for tool in memcached nutcracker memcaslap openssl; do
    command -v $tool >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin
    command -v $tool >/dev/null 2>&1 || { echo "bench: $tool not found (make deps)" >&2; exit 1; }
done
[ -x "$LOADGEN" ] || { echo "bench: $LOADGEN not built (make bench builds it)" >&2; exit 1; }
[ -x "$GATEWAY" ] || { echo "bench: $GATEWAY not built (make gateway)" >&2; exit 1; }

# 5,000 client connections need file descriptors on both sides: every
# server started below inherits this limit.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fds=$(ulimit -n)
if [ "$fds" != unlimited ] && [ $((MEM_CONNS + 200)) -gt "$fds" ]; then
    echo "bench: open files limited to $fds: memory uses $((fds - 200)) connections" >&2
    MEM_CONNS=$((fds - 200))
fi

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

# start NAME PORT CMD...: run CMD in the background, wait for PORT; sets
# PID_NAME and PORT_NAME.
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
    eval "PID_$name=$pid PORT_$name=$port"
}

# stop NAME: stop what start NAME started, before the end.
stop() {
    eval "pid=\$PID_$1"
    kill -TERM "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rest=""
    for p in $PIDS; do [ "$p" = "$pid" ] || rest="$rest $p"; done
    PIDS=$rest
}

has() { case " $1 " in *" $2 "*) return 0 ;; esac; return 1; }

user_opt=""
[ "$(id -u)" = 0 ] && user_opt="-u root"

# memcached NAME THREADS MAXCONNS [ARGS...]
memcached_start() {
    name=$1 threads=$2 maxconns=$3
    shift 3
    port=$($UTIL port)
    start "$name" "$port" memcached -U 0 -l 127.0.0.1 -p "$port" -m 1024 -t "$threads" \
        -c "$maxconns" $user_opt "$@"
}

memcached_start mc1 1 1024
memcached_start mc2 1 1024
M1=$PORT_mc1 M2=$PORT_mc2
MC_PORTS="$M1 $M2"       # every memcached whose get/set counts are summed

# twemproxy NAME
twemproxy_start() {
    port=$($UTIL port)
    cat >"$WORK/$1.yml" <<EOF
bench:
  listen: 127.0.0.1:$port
  hash: md5
  distribution: ketama
  auto_eject_hosts: false
  timeout: 1000
  servers:
   - 127.0.0.1:$M1:1
   - 127.0.0.1:$M2:1
EOF
    start "$1" "$port" nutcracker -c "$WORK/$1.yml" -s "$($UTIL port)" -a 127.0.0.1 \
        -o "$WORK/$1.out"
}

# The gateway's configs.  memcaslap's keys start with binary bytes;
# memcached and twemproxy take them, so the gateway is told to as well.
max_conns=$((MEM_CONNS + 1000))
[ $max_conns -lt 10000 ] && max_conns=10000
cat >"$WORK/gateway.lua" <<EOF
gateway.settings { threads = $GW_THREADS, binary_keys = true, max_connections = $max_conns }
local pool = memcache.pool {
  servers = { "127.0.0.1:$M1", "127.0.0.1:$M2" },
  hash = "ketama",
  timeout = 1.0,
}
-- a Lua function on every request
memcache.route { default = function(req) return pool end }
EOF
# the yielding route: a get is a backend call from Lua and a response
# made in Lua; the rest is forwarded as with the function route
sed '/^memcache.route/,$d' "$WORK/gateway.lua" >"$WORK/gw_yield.lua"
cat >>"$WORK/gw_yield.lua" <<'EOF'
memcache.route { default = function(req)
  if req.command == "get" then
    local value, flags = pool:get(req.key)
    if value then return memcache.hit(value, flags) end
    if flags ~= nil then return memcache.error(flags) end  -- nil, err
    return memcache.miss()
  end
  return pool
end }
EOF

# gateway_start NAME BINARY CONFIG [ARGS...]
gateway_start() {
    name=$1 bin=$2 conf=$3
    shift 3
    port=$($UTIL port)
    start "$name" "$port" "$bin" -l "127.0.0.1:$port" "$@" "$conf"
}

# memcached's own proxy, when there is one (BENCH_MCPROXY)
mcproxy_start() {
    port=$($UTIL port)
    cat >"$WORK/mcproxy.lua" <<EOF
pools {
  main = { backends = { "127.0.0.1:$M1", "127.0.0.1:$M2" } },
}
routes {
  default = route_direct { child = "main" },
}
EOF
    start mcproxy "$port" "$BENCH_MCPROXY" -U 0 -l 127.0.0.1 -p "$port" -t 1 -c 1024 \
        -o "proxy_config=$BENCH_MCPROXY_LIB,proxy_arg=$WORK/mcproxy.lua" $user_opt
}

EXTRA=""                 # targets beyond the usual three (baseline, mcproxy)
[ -n "${BENCH_BASELINE:-}" ] && EXTRA="$EXTRA baseline"
if [ -n "${BENCH_MCPROXY:-}" ]; then
    [ -n "${BENCH_MCPROXY_LIB:-}" ] || { echo "bench: BENCH_MCPROXY needs BENCH_MCPROXY_LIB (routelib.lua)" >&2; exit 1; }
    EXTRA="$EXTRA mcproxy"
else
    echo "bench: note: memcached's proxy is not packaged in Debian; skipped" \
         "(BENCH_MCPROXY=/path/to/memcached BENCH_MCPROXY_LIB=/path/to/routelib.lua adds it)"
fi

# The instances every workload shares.
PID_direct=$PID_mc1 PORT_direct=$M1
has "$TARGETS" twemproxy && twemproxy_start twemproxy
if has "$TARGETS" gateway || has "$WORKLOADS" yield || has "$WORKLOADS" tls; then
    gateway_start gateway "$GATEWAY" "$WORK/gateway.lua"
fi
has "$EXTRA" baseline && gateway_start baseline "$BENCH_BASELINE" "$WORK/gateway.lua"
has "$EXTRA" mcproxy && mcproxy_start

cat >"$WORK/memcaslap.cnf" <<EOF
key
32 32 1
value
100 100 1
cmd
0 0.1
1 0.9
EOF

# Each workload names its driver and arguments; drive INSTANCE SECONDS OUT
# runs it once.  TLS_INSTANCE, when set, is what loadgen adds to speak TLS
# to that instance (-Z CA).
drive() {
    eval "port=\$PORT_$1 tls=\${TLS_$1:-}"
    case $DRIVER in
    memcaslap)
        timeout $(($2 + 60)) memcaslap -s "127.0.0.1:$port" -F "$WORK/memcaslap.cnf" \
            -t "${2}s" -S "${2}s" $DRIVER_ARGS >"$3" 2>&1 ;;
    loadgen)
        timeout $(($2 + 60)) "$LOADGEN" -s "127.0.0.1:$port" -t "$2" $DRIVER_ARGS $tls >"$3" 2>&1 ;;
    esac || {
        echo "bench: $DRIVER against $1 failed:" >&2
        cat "$3" >&2
        exit 1
    }
}

# Loadgen workloads read keys they stored first.
preload() {
    [ "$DRIVER" = loadgen ] || return 0
    eval "port=\$PORT_$1 tls=\${TLS_$1:-}"
    "$LOADGEN" -s "127.0.0.1:$port" -P $PRELOAD_ARGS $tls >"$WORK/preload-$W-$1.out" 2>&1 \
        && grep -q ' errors=0 ' "$WORK/preload-$W-$1.out" || {
        echo "bench: preloading $1 for $W failed:" >&2
        cat "$WORK/preload-$W-$1.out" >&2
        exit 1
    }
}

RESULTS="$WORK/results"
: >"$RESULTS"

# run_workload "TARGET=INSTANCE ...": warm up, then ROUNDS interleaved
# rounds; one line per run into RESULTS.
run_workload() {
    pairs=$1
    names=""
    for p in $pairs; do
        t=${p%%=*} inst=${p#*=}
        preload "$inst"
        [ "$WARMUP" -gt 0 ] && drive "$inst" "$WARMUP" "$WORK/warmup-$W-$t.out"
        names="$names $t"
    done
    echo "bench: $W: $ROUNDS rounds x [$names ] x ${SECS}s; $DRIVER $DRIVER_ARGS"
    echo "title $W $TITLE" >>"$RESULTS"
    r=1
    while [ $r -le "$ROUNDS" ]; do
        # rotate the order: no target always runs right after another
        set -- $pairs
        i=1
        while [ $i -lt $(( (r - 1) % $# + 1 )) ]; do
            first=$1; shift; set -- "$@" "$first"; i=$((i + 1))
        done
        for p in "$@"; do
            t=${p%%=*} inst=${p#*=}
            eval "pid=\$PID_$inst"
            out="$WORK/$W-round$r-$t.out"
            cpu0=$($UTIL cpu "$pid")
            b0=$($UTIL backend_ops $MC_PORTS)
            drive "$inst" "$SECS" "$out"
            b1=$($UTIL backend_ops $MC_PORTS)
            kill -0 "$pid" 2>/dev/null || { echo "bench: $t ($inst) died" >&2; exit 1; }
            cpu=$(( $($UTIL cpu "$pid") - cpu0 ))
            line="$W $t $r cpu=$cpu bops=$((b1 - b0)) $($UTIL parse "$out")"
            echo "$line" >>"$RESULTS"
            $UTIL show "$line"
        done
        r=$((r + 1))
    done
}

# run_targets "TARGET ...": run_workload against those of the targets
# named that were asked for (BENCH_TARGETS), plus baseline and mcproxy when
# they run, each on its own instance.
run_targets() {
    pairs=""
    for t in $1 $EXTRA; do
        has "$TARGETS" "$t" || has "$EXTRA" "$t" && pairs="$pairs $t=$t"
    done
    run_workload "$pairs"
}

# loadgen_workload ARGS PRELOAD_ARGS TITLE: a workload of loadgen's against
# direct, twemproxy, the gateway and the extras.
loadgen_workload() {
    DRIVER=loadgen DRIVER_ARGS=$1 PRELOAD_ARGS=$2 TITLE=$3
    run_targets "direct twemproxy gateway"
}

for t in direct $TARGETS $EXTRA; do
    case $t in gw_admin) ;; *) eval "$UTIL probe $t \$PORT_$t" ;; esac
done

for W in $WORKLOADS; do
    case $W in
    mix)
        DRIVER=memcaslap DRIVER_ARGS="-c $CONC -T $THREADS"
        TITLE="memcaslap, 90/10 get/set, 32 B keys, 100 B values, $CONC conns, -T $THREADS; gateway threads = $GW_THREADS"
        PROM=""
        if has "$TARGETS" gw_admin; then
            ADMIN=$($UTIL port)
            sed "s/^gateway.settings.*/&\ngateway.admin \"127.0.0.1:$ADMIN\"/" \
                "$WORK/gateway.lua" >"$WORK/gw_admin.lua"
            gateway_start gw_admin "$GATEWAY" "$WORK/gw_admin.lua"
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
        fi
        run_targets "direct twemproxy gateway gw_admin"
        if [ -n "$PROM" ]; then
            $UTIL scrapes "$PROM" | tee "$WORK/scrapes"
            stop prometheus
            stop gw_admin
        fi
        ;;
    multiget)
        loadgen_workload "-c $CONC -g 1 -m $MGET -n 10000" "-n 10000" \
            "loadgen closed loop, gets of $MGET keys, $CONC conns, 10,000 keys of 100 B (keys/s)"
        ;;
    large)
        loadgen_workload "-c $LARGE_CONC -g 0.9 -v $LARGE_SIZE -n 1000" "-v $LARGE_SIZE -n 1000" \
            "loadgen closed loop, 90/10 get/set, $LARGE_SIZE B values, $LARGE_CONC conns, 1,000 keys"
        ;;
    meta)
        # The meta protocol from the client: twemproxy does not speak it.
        # The keys are preloaded with text sets (the servers' contents are
        # the same either way; the run's ms are what measure meta sets).
        DRIVER=loadgen DRIVER_ARGS="-M -c $CONC -g 0.9 -n 10000" PRELOAD_ARGS="-n 10000"
        TITLE="loadgen -M closed loop: 90% mg <key> v f, 10% ms <key> 100 T0, 100 B values, $CONC conns, 10,000 keys"
        pairs=""
        for t in direct gateway $EXTRA; do
            has "$TARGETS" "$t" || has "$EXTRA" "$t" || continue
            eval "port=\$PORT_$t"
            if ! $UTIL meta_probe "$t" "$port"; then
                case $t in
                baseline|mcproxy)
                    echo "bench: meta: $t does not answer the meta protocol; left out of meta"
                    continue ;;
                esac
            fi
            pairs="$pairs $t=$t"
        done
        run_workload "$pairs"
        ;;
    binary)
        # The binary protocol from the client (memcaslap -B: Get and Set),
        # the mix's config and connections.  twemproxy does not speak it.
        DRIVER=memcaslap DRIVER_ARGS="-B -c $CONC -T $THREADS"
        TITLE="memcaslap -B (binary Get/Set), 90/10 get/set, 32 B keys, 100 B values, $CONC conns, -T $THREADS; the gateway sends them on as mg/ms"
        pairs=""
        for t in direct gateway $EXTRA; do
            has "$TARGETS" "$t" || has "$EXTRA" "$t" || continue
            eval "port=\$PORT_$t"
            if ! $UTIL binary_probe "$t" "$port"; then
                case $t in
                baseline|mcproxy)
                    echo "bench: binary: $t does not answer the binary protocol; left out of binary"
                    continue ;;
                esac
            fi
            pairs="$pairs $t=$t"
        done
        run_workload "$pairs"
        ;;
    tls)
        # A test CA and a server certificate for localhost and 127.0.0.1,
        # as tests/spec/tls_spec.lua makes them.
        TLSDIR=$WORK/tls
        mkdir -p "$TLSDIR"
        (
            cd "$TLSDIR" &&
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
                -keyout ca.key -subj /CN=gateway-bench-ca -days 2 -out ca.pem &&
            openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
                -keyout server.key -subj /CN=localhost -out server.csr &&
            echo "subjectAltName=DNS:localhost,IP:127.0.0.1" >server.ext &&
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
                -days 2 -extfile server.ext -out server.pem
        ) >"$WORK/openssl.log" 2>&1 || {
            echo "bench: tls: making the certificates failed:" >&2
            cat "$WORK/openssl.log" >&2
            exit 1
        }
        CA=$TLSDIR/ca.pem
        ZOPT="ssl_chain_cert=$TLSDIR/server.pem,ssl_key=$TLSDIR/server.key"
        # two memcached -Z as the plain two; direct_tls is the first
        memcached_start direct_tls 1 1024 -Z -o "$ZOPT"
        memcached_start mcz2 1 1024 -Z -o "$ZOPT"
        Z1=$PORT_direct_tls Z2=$PORT_mcz2
        # the gateway's config, with a TLS listener of its own (-l would
        # replace it) and, for gw_tls_both, a TLS pool over the -Z two
        for name in gw_tls_client gw_tls_both; do
            port=$($UTIL port)
            {
                echo "gateway.listen { \"127.0.0.1:$port\", tls = { cert = \"$TLSDIR/server.pem\", key = \"$TLSDIR/server.key\" } }"
                if [ $name = gw_tls_both ]; then
                    sed -e "s/\"127.0.0.1:$M1\"/\"127.0.0.1:$Z1\"/" -e "s/\"127.0.0.1:$M2\"/\"127.0.0.1:$Z2\"/" \
                        -e "s|^  timeout = 1.0,|&\n  tls = { ca = \"$CA\" },|" "$WORK/gateway.lua"
                else
                    cat "$WORK/gateway.lua"
                fi
            } >"$WORK/$name.lua"
            start $name "$port" "$GATEWAY" "$WORK/$name.lua"
        done
        grep -q "tls = { ca" "$WORK/gw_tls_both.lua" || { echo "bench: tls: no tls in gw_tls_both's pool" >&2; exit 1; }
        TLS_direct_tls="-Z $CA" TLS_gw_tls_client="-Z $CA" TLS_gw_tls_both="-Z $CA"
        # one set over TLS each: the certificate verifies, what is negotiated
        for t in direct_tls gw_tls_client gw_tls_both; do
            eval "port=\$PORT_$t"
            "$LOADGEN" -s "127.0.0.1:$port" -P -n 1 -Z "$CA" >"$WORK/tls-probe-$t.out" 2>&1 \
                && grep -q ' errors=0 ' "$WORK/tls-probe-$t.out" || {
                echo "bench: tls: a set over TLS to $t failed:" >&2
                cat "$WORK/tls-probe-$t.out" >&2
                exit 1
            }
        done
        negotiated=$(sed -n 's/^loadgen: tls \([^ ]*\) \([^,]*\),.*/\1 \2/p' "$WORK/tls-probe-gw_tls_client.out")
        # the -Z servers' stats over TLS, verified against the CA
        export BENCH_TLS_CA="$CA"
        MC_PORTS="$M1 $M2 tls:$Z1 tls:$Z2"
        DRIVER=loadgen DRIVER_ARGS="-c $CONC -g 0.9 -n 10000" PRELOAD_ARGS="-n 10000"
        TITLE="loadgen closed loop, 90/10 get/set, 100 B values, $CONC conns, 10,000 keys; TLS: $negotiated, ECDSA P-256, handshakes before the timed window; gateway threads = $GW_THREADS"
        run_workload "direct=direct direct_tls=direct_tls gateway=gateway gw_tls_client=gw_tls_client gw_tls_both=gw_tls_both"
        stop gw_tls_both
        stop gw_tls_client
        stop mcz2
        stop direct_tls
        MC_PORTS="$M1 $M2"
        ;;
    yield)
        DRIVER=memcaslap DRIVER_ARGS="-c $CONC -T $THREADS"
        TITLE="memcaslap as in mix; gw_yield: a get calls pool:get from Lua and answers memcache.hit/miss"
        gateway_start gw_yield "$GATEWAY" "$WORK/gw_yield.lua"
        $UTIL probe gw_yield "$PORT_gw_yield"
        run_workload "gateway=gateway gw_yield=gw_yield"
        stop gw_yield
        ;;
    threads)
        DRIVER=memcaslap DRIVER_ARGS="-c 64 -T 2"
        TITLE="memcaslap -T 2 -c 64, the mix; gateway -t 2; direct: a memcached -t 2"
        memcached_start direct_t2 2 1024
        MC_PORTS="$MC_PORTS $PORT_direct_t2"
        p=""
        has "$TARGETS" direct && p="$p direct=direct_t2"
        has "$TARGETS" twemproxy && p="$p twemproxy=twemproxy"
        if has "$TARGETS" gateway; then
            gateway_start gateway_t2 "$GATEWAY" "$WORK/gateway.lua" -t 2
            p="$p gateway=gateway_t2"
        fi
        run_workload "$p"
        has "$TARGETS" gateway && stop gateway_t2
        stop direct_t2
        MC_PORTS="$M1 $M2"
        ;;
    latency)
        loadgen_workload "-c $LAT_CONNS -r $RATE -g 0.9 -n 10000" "-n 10000" \
            "loadgen open loop at $RATE req/s, 90/10 get/set, 100 B values, $LAT_CONNS conns"
        ;;
    memory)
        if [ ! -f "$IDLE_MEMORY" ]; then
            echo "bench: memory: skipped: $IDLE_MEMORY is missing (it measures the idle connections)"
            continue
        fi
        echo "bench: memory: $MEM_CONNS connections to fresh instances; RSS before, connected," \
             "after one version each, after one ${MEM_SET}-byte set each, after closing"
        for t in direct twemproxy gateway; do
            has "$TARGETS" $t || continue
            case $t in
            direct) memcached_start mem_direct 1 $((MEM_CONNS + 1000)) ;;
            twemproxy) twemproxy_start mem_twemproxy ;;
            gateway) gateway_start mem_gateway "$GATEWAY" "$WORK/gateway.lua" ;;
            esac
            eval "pid=\$PID_mem_$t port=\$PORT_mem_$t"
            $PY "$IDLE_MEMORY" --pid "$pid" --port "$port" --conns "$MEM_CONNS" \
                --set-size "$MEM_SET" >"$WORK/memory-$t.out" 2>&1 || {
                echo "bench: memory: idle_memory.py against $t failed:" >&2
                cat "$WORK/memory-$t.out" >&2
                exit 1
            }
            $UTIL idle $t "$WORK/memory-$t.out" "$MEM_SET" >>"$RESULTS"
            tail -n 1 "$RESULTS"
            stop mem_$t
        done
        ;;
    *)
        echo "bench: unknown workload $W (mix multiget large meta binary tls yield memory threads latency)" >&2
        exit 1 ;;
    esac
done

$UTIL report "$RESULTS"
