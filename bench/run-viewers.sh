#!/usr/bin/env bash
# Viewers benchmark (issue 13, point 6): one published 2 Mbps stream played by 200 RTMP and 200
# HTTP-FLV viewers of liverec, and by 400 RTMP viewers of nginx-rtmp, in the same run; prints
# CPU and RSS per viewer and the ratios, and JSON last. See bench/README.md.
#   bench/run-viewers.sh [--rtmp N] [--http M] [--seconds T] [--ramp S] [--no-build]
set -euo pipefail
. "$(dirname "$0")/api/common.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
ASSETS_DIR=${LIVEREC_BENCH_ASSETS:-/tmp/liverec-bench-assets}
BUILD=1
PASS=()
for arg in "$@"; do
  case "$arg" in
    --no-build) BUILD=0 ;;
    *) PASS+=("$arg") ;;
  esac
done
ensure_nginx_rtmp
"$HERE/make-assets.sh" "$ASSETS_DIR"
if [ "$BUILD" = 1 ]; then
  log "cargo build --release -p liverec -p liverec-loadgen"
  (cd "$BENCH_ROOT" && cargo build --release -q -p liverec -p liverec-loadgen)
fi
machine_info
exec python3 "$HERE/run_viewers.py" --asset "$ASSETS_DIR/hi.flv" \
  --liverec "$BENCH_ROOT/target/release/liverec" \
  --loadgen "$BENCH_ROOT/target/release/liverec-loadgen" "${PASS[@]}"
