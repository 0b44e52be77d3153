#!/usr/bin/env bash
# kill -9 rounds (issue 11, point 2): STREAMS streams record MP4 + M3U8 with callbacks; the
# server gets SIGKILL at a random moment of each of ROUNDS rounds and restarts. Checks that
# every file decodes, is indexed once and got its callback with one Idempotency-Key, and that
# the spool is empty; reports the largest loss at a kill and each restart's recovery time.
# With STREAMS=100 ROUNDS=1 it is the recovery benchmark (100 open recordings per format).
# Exits non-zero when a check fails. See bench/README.md.
# Usage: bench/run-kill9.sh   (knobs: STREAMS, ROUNDS, MIN_SECS, MAX_SECS, SEED, KEEP=1, OUT)
set -euo pipefail
. "$(dirname "$0")/api/common.sh"

STREAMS=${STREAMS:-20}
ROUNDS=${ROUNDS:-10}
MIN_SECS=${MIN_SECS:-4}
MAX_SECS=${MAX_SECS:-20}
OUT=${OUT:-/tmp/liverec-kill9.json}
KEEP=${KEEP:-0}
export LIVEREC_LOG=${LIVEREC_LOG:-info}
WORK=$(mktemp -d /tmp/liverec-kill9.XXXXXX)

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
random_key
seed_args=()
[ -n "${SEED:-}" ] && seed_args=(--seed "$SEED")
status=0
python3 "$BENCH_ROOT/bench/api/kill9.py" --liverec "$LIVEREC_BIN" --apibench "$APIBENCH" \
  --asset "$BENCH_ASSETS/lo.flv" --work "$WORK" --streams "$STREAMS" --rounds "$ROUNDS" \
  --min-secs "$MIN_SECS" --max-secs "$MAX_SECS" "${seed_args[@]}" > "$OUT" &
CHILD=$!
wait "$CHILD" || status=$?
CHILD=

python3 - "$OUT" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"\n== kill -9: {r['streams']} streams x {r['rounds']} rounds, {'+'.join(r['formats'])} (seed {r['seed']}) ==")
print(f"files {r['files']}, index rows {r['index_rows']}, files with a callback {r['callback_files']} "
      f"({r['callback_deliveries']} deliveries), decode errors {r['decode_errors']}")
print(f"largest loss at a kill (s): {r['largest_loss_s']}   median: {r['median_loss_s']}")
rec = r["recoveries"]
if rec:
    worst = max(rec, key=lambda x: x["elapsed_ms"])
    print(f"recovery at restart: largest {worst['elapsed_ms']} ms for {worst['recovered']} recordings; "
          f"all: {[(x['recovered'], x['elapsed_ms']) for x in rec]}")
ref = r.get("reference_nginx_rtmp")
if ref:
    print(f"reference nginx-rtmp (record all, on_record_done), one kill -9 after {ref['hold_s']} s: "
          f"{ref['files']} files left for {ref['streams']} streams, {ref['files_with_decode_errors']} with decode errors, "
          f"{ref['callbacks']} callbacks")
    clean = r["files"] - r["decode_errors"]
    print(f"ratio of recordings cut by a kill that end up valid, indexed and announced: liverec "
          f"{min(r['callback_files'], clean)}/{r['files']} "
          f"({min(r['callback_files'], clean) / max(1, r['files']):.0%}); nginx-rtmp "
          f"{min(ref['callbacks'], ref['files'] - ref['files_with_decode_errors'])}/{ref['files']}")
print("checks: " + ("all passed" if not r["failures"] else "FAILED"))
for f in r["failures"]:
    print("  - " + f)
PY
log "JSON: $OUT"
exit "$status"
