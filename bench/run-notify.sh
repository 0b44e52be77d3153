#!/usr/bin/env bash
# Callback latency benchmark (issue 10, point 6), liverec and nginx-rtmp (on_record_done) in one
# run: 100 streams stop at once, so 100 files complete within about a second; the time from each
# file being complete to its callback reaching a local receiver, p50/p99, with a receiver that
# answers at once and with one that takes 1 s per request. See bench/README.md.
# Installs ffmpeg, nginx and libnginx-mod-rtmp with apt-get if they are missing.
# Usage: bench/run-notify.sh   (knobs: STREAMS, PUBLISH_SECS, WAIT_QUIET, KEEP=1, OUT)
set -euo pipefail
. "$(dirname "$0")/api/common.sh"

STREAMS=${STREAMS:-100}
PUBLISH_SECS=${PUBLISH_SECS:-8}
WAIT_QUIET=${WAIT_QUIET:-120}
QUIET_LOAD=${QUIET_LOAD:-1.0}
OUT=${OUT:-/tmp/liverec-notify.json}
KEEP=${KEEP:-0}
export LIVEREC_LOG=${LIVEREC_LOG:-info}
WORK=$(mktemp -d /tmp/liverec-notify.XXXXXX)

CHILD=
cleanup() {
  if [ -n "$CHILD" ]; then kill -TERM "$CHILD" 2>/dev/null || true; wait "$CHILD" 2>/dev/null || true; fi
  if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_nginx_rtmp

build_all
make_assets
machine_info | tee "$WORK/machine.txt"
wait_quiet "$WAIT_QUIET" "$QUIET_LOAD"
random_key
python3 "$BENCH_ROOT/bench/api/notify_latency.py" --liverec "$LIVEREC_BIN" --apibench "$APIBENCH" \
  --asset "$BENCH_ASSETS/lo.flv" --work "$WORK" --streams "$STREAMS" --publish-secs "$PUBLISH_SECS" > "$OUT" &
CHILD=$!
wait "$CHILD"
CHILD=

python3 - "$OUT" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
def f(x): return "-" if x is None else f"{x:.1f}"
print(f"\n== file complete -> callback arrives, {r['streams']} streams stopped at once ==")
print(f"{'server':12} {'case':48} {'files':>5} {'cbs':>5} {'spread ms':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
by = {}
for x in r["results"]:
    by[(x["server"], x["case"])] = x
    print(f"{x['server']:12} {x['case']:48} {x['files']:>5} {x['callbacks']:>5} {f(x.get('files_completed_within_ms')):>9} "
          f"{f(x.get('p50_ms')):>8} {f(x.get('p99_ms')):>8} {f(x.get('max_ms')):>8}")
print("\nratios liverec / nginx-rtmp (p50, p99):")
for case in ("fast receiver", "receiver taking 1 s"):
    l, n = by.get(("liverec", case)), by.get(("nginx-rtmp", case))
    if l and n and n.get("p50_ms") and n.get("p99_ms"):
        print(f"  {case}: {l['p50_ms'] / n['p50_ms']:.2f}x, {l['p99_ms'] / n['p99_ms']:.2f}x")
EOF
log "JSON: $OUT"
