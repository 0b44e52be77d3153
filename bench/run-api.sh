#!/usr/bin/env bash
# API benchmark (issue 5, point 2): signed RealTimeRecordCommand
#   A. latency at a steady rate (default 50 req/s for 30 s, per signature scheme) while STREAMS
#      streams publish, with liverec in manual record mode: live streams cycle
#      start -> stop -> cancel_delay (every command opens, pauses or finalizes a real recording),
#      20 % of the requests are an idempotent `stop` on streams that are not publishing;
#   B. the maximum signed requests/s with throttling off ([api] qps RealTimeRecordCommand = 0),
#      closed loop over keep-alive connections at several concurrencies, with liverec's CPU from
#      /proc -> requests/s per core.
# Everything it starts is stopped on exit. Usage: bench/run-api.sh   (knobs: the variables below)
set -euo pipefail
. "$(dirname "$0")/api/common.sh"

STREAMS=${STREAMS:-100}
RATE=${RATE:-50}
DURATION=${DURATION:-30}
SCHEMES=${SCHEMES:-"acs3 v1"}
MAX_SCHEMES=${MAX_SCHEMES:-"acs3 v1"}
CONCURRENCY=${CONCURRENCY:-"1 4 16 64"}
MAX_DURATION=${MAX_DURATION:-10}
MAX_PAUSE=${MAX_PAUSE:-5}              # seconds between closed-loop runs
CLIENT_THREADS=${CLIENT_THREADS:-1}
RTMP_PORT=${RTMP_PORT:-19351}
API_PORT=${API_PORT:-18081}
WAIT_QUIET=${WAIT_QUIET:-120}          # seconds to wait for loadavg < QUIET_LOAD before each phase
QUIET_LOAD=${QUIET_LOAD:-1.0}
LIVEREC_LOG=${LIVEREC_LOG:-info}
WORK=$(mktemp -d /tmp/liverec-apibench.XXXXXX)
OUT=${OUT:-/tmp/liverec-apibench-results.jsonl}
KEEP=${KEEP:-0}
PHASES=${PHASES:-"steady max"}         # which of A (steady) and B (max) to run
export LIVEREC_LOG

PIDS=()
SERVER_PID=
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null || true
  for p in "${PIDS[@]}" $SERVER_PID; do wait "$p" 2>/dev/null || true; done
  if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# $1 = phase name, $2 = qps for RealTimeRecordCommand
start_liverec() {
  local dir="$WORK/$1"
  mkdir -p "$dir"
  cat > "$dir/liverec.toml" <<EOF
data_dir = "$dir/data"
rtmp_listen = "127.0.0.1:$RTMP_PORT"
api_listen = "127.0.0.1:$API_PORT"

[api]
qps = { RealTimeRecordCommand = $2 }

[record]
mode = "manual"
delay_secs = 60
formats = [ { format = "mp4", cycle_secs = 3600 } ]
EOF
  "$LIVEREC_BIN" serve --config "$dir/liverec.toml" 2> "$dir/liverec.log" &
  SERVER_PID=$!
  wait_port "$API_PORT" 30 || { log "liverec did not open its API port"; tail "$dir/liverec.log"; exit 1; }
  wait_port "$RTMP_PORT" 30
}

stop_liverec() {
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}

stop_publishers() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}

bench() { "$APIBENCH" --addr "127.0.0.1:$API_PORT" --threads "$CLIENT_THREADS" "$@"; }

build_all
random_key
make_assets
machine_info | tee "$WORK/machine.txt"
: > "$OUT"

# ---- A: latency at a steady rate, STREAMS publishing --------------------------------------
if [[ " $PHASES " == *" steady "* ]]; then
start_liverec steady "$RATE"
log "publishing $STREAMS streams of lo.flv (-re -stream_loop -1 -c copy)"
for i in $(seq 0 $((STREAMS - 1))); do
  ffmpeg -hide_banner -nostdin -loglevel error -re -stream_loop -1 -i "$BENCH_ASSETS/lo.flv" \
    -c copy -f flv "rtmp://127.0.0.1:$RTMP_PORT/live/s$i" </dev/null >/dev/null 2>&1 &
  PIDS+=("$!")
  sleep 0.02
done
bench online --min "$STREAMS" --timeout 60 >/dev/null
sleep 3   # a full GOP in every stream's cache
for scheme in $SCHEMES; do
  wait_quiet "$WAIT_QUIET" "$(awk -v l="$QUIET_LOAD" 'BEGIN{print l + 0.6}')"  # the publishers load the box
  log "steady: $scheme, $RATE req/s for $DURATION s"
  bench --scheme "$scheme" steady --rate "$RATE" --duration "$DURATION" \
    --live "$STREAMS" --idle 100 --idle-share 0.2 --pid "$SERVER_PID" \
    | sed "s/^{/{\"phase\":\"steady\",\"streams\":$STREAMS,/" >> "$OUT"
  # Leave no recording open between schemes: cancel_delay everything.
  for i in $(seq 0 $((STREAMS - 1))); do
    bench call RealTimeRecordCommand DomainName=live.liverec.local AppName=live \
      "StreamName=s$i" Command=cancel_delay >/dev/null
    sleep 0.025   # stay under the 50/s throttle
  done
  sleep 2         # let the token bucket refill
done
sleep 2
DB="$WORK/steady/data/liverec.db"
FILES=$(find "$WORK/steady/data/buckets" -path '*/.spool' -prune -o -name '*.mp4' -print | wc -l)
ROWS=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from recordings').fetchone()[0])" "$DB")
BAD=0
for f in $(find "$WORK/steady/data/buckets" -path '*/.spool' -prune -o -name '*.mp4' -print | shuf -n 20 --random-source=<(yes)); do
  ffprobe -v error -show_entries format=duration -of csv=p=0 "$f" >/dev/null 2>&1 || BAD=$((BAD + 1))
done
log "steady phase produced $FILES MP4 files, $ROWS recording rows; ffprobe failures in a sample of 20: $BAD"
printf '{"phase":"steady-files","mp4_files":%s,"recording_rows":%s,"ffprobe_failures_of_20":%s}\n' \
  "$FILES" "$ROWS" "$BAD" >> "$OUT"
stop_publishers
stop_liverec
fi

# ---- B: maximum signed requests/s, throttling off ------------------------------------------
if [[ " $PHASES " == *" max "* ]]; then
start_liverec max 0
wait_quiet "$WAIT_QUIET" "$QUIET_LOAD"
for scheme in $MAX_SCHEMES; do
  for c in $CONCURRENCY; do
    sleep "$MAX_PAUSE"   # let the previous run's fsyncs and WAL checkpoint settle
    log "max: $scheme, concurrency $c, $MAX_DURATION s"
    bench --scheme "$scheme" max --concurrency "$c" --warmup 2 --duration "$MAX_DURATION" \
      --live 0 --idle 100 --pid "$SERVER_PID" \
      | sed "s/^{/{\"phase\":\"max\",/" >> "$OUT"
  done
done
NONCES=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from nonces').fetchone()[0])" "$WORK/max/data/liverec.db")
printf '{"phase":"max-nonces","nonce_rows":%s}\n' "$NONCES" >> "$OUT"
stop_liverec
fi

# ---- summary --------------------------------------------------------------------------------
python3 - "$OUT" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("\n== A: steady rate (latency: request written -> last response byte; lag: how late the client sent) ==")
print(f"{'scheme':7} {'req':>5} {'rate':>6} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'max ms':>7} {'lag p99':>7} {'srv cores':>9}  outcomes")
for r in rows:
    if r.get("phase") != "steady": continue
    l = r["latency"]
    oc = "; ".join(f"{k} " + ",".join(f"{c}={n}" for c, n in v.items()) for k, v in r["outcomes"].items())
    print(f"{r['scheme']:7} {r['requests']:>5} {r['rate_achieved']:>6} {l['p50_ms']:>7} {l['p90_ms']:>7} {l['p99_ms']:>7} {l['max_ms']:>7} {r['send_lag']['p99_ms']:>7} {r['server_cpu_cores']!s:>9}  {oc}")
    for k, s in r["latency_by_command"].items():
        print(f"        {k:18} p50 {s['p50_ms']:>7} p99 {s['p99_ms']:>7} max {s['max_ms']:>7}")
for r in rows:
    if r.get("phase") == "steady-files": print("files:", r)
print("\n== B: closed loop, throttling off, `stop` on idle streams ==")
print(f"{'scheme':7} {'conc':>4} {'req/s':>8} {'ok/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'srv cores':>9} {'ok/s/core':>9} {'client':>6}  outcomes")
for r in rows:
    if r.get("phase") != "max": continue
    l = r["latency"] or {}
    oc = ",".join(f"{c}={n}" for v in r["outcomes"].values() for c, n in v.items())
    print(f"{r['scheme']:7} {r['concurrency']:>4} {r['rate']:>8} {r['ok_rate']:>8} {l.get('p50_ms')!s:>7} {l.get('p99_ms')!s:>7} {r['server_cpu_cores']!s:>9} {r['ok_per_server_core']!s:>9} {r['client_cpu_cores']!s:>6}  {oc}")
for r in rows:
    if r.get("phase") == "max-nonces": print("nonce rows after phase B:", r["nonce_rows"])
EOF
log "raw results: $OUT"
