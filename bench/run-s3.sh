#!/usr/bin/env bash
# Recording to S3 (a moto_server on loopback) vs. to a local directory, in one run (issue 9).
#
#   bench/run-s3.sh [--streams N] [--seconds T] [--slice S] [--no-build] [--keep] [--out FILE]
#
# Builds liverec in release, makes the assets (bench/make-assets.sh), installs moto[server] into
# ./.venv if missing, then runs bench/run_s3.py: N x ~2 Mbps publishers recorded as HLS with S s
# segments, first into a local bucket, then into S3; prints CPU and RSS per stream with the
# s3/local ratios and the upload backlog over time. Every process it starts is stopped on exit.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
ASSETS_DIR=${LIVEREC_BENCH_ASSETS:-/tmp/liverec-bench-assets}
BUILD=1
KEEP=0
PASS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) PASS+=("$1") ;;
  esac
  shift
done

command -v ffmpeg >/dev/null || { echo "missing: ffmpeg (apt-get install -y ffmpeg)" >&2; exit 1; }
if [ ! -x "$ROOT/.venv/bin/moto_server" ]; then
  [ -x "$ROOT/.venv/bin/python" ] || python3 -m venv "$ROOT/.venv"
  "$ROOT/.venv/bin/pip" install -q -r "$ROOT/tests/requirements.txt"
fi
"$HERE/make-assets.sh" "$ASSETS_DIR" >/dev/null
if [ "$BUILD" = 1 ]; then
  (cd "$ROOT" && cargo build --release -p liverec --quiet)
fi

WORK=$(mktemp -d /tmp/liverec-bench-s3.XXXXXX)
PY=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [ -n "$PY" ] && kill -0 "$PY" 2>/dev/null; then
    kill -TERM "$PY" 2>/dev/null || true
    wait "$PY" 2>/dev/null || true
  fi
  if [ "$KEEP" = 1 ]; then echo "kept: $WORK" >&2; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

python3 "$HERE/run_s3.py" --work-dir "$WORK" --asset "$ASSETS_DIR/hi.flv" \
  --liverec "$ROOT/target/release/liverec" --moto "$ROOT/.venv/bin/moto_server" "${PASS[@]}" &
PY=$!
wait "$PY"
