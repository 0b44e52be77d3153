#!/usr/bin/env bash
# Recording benchmark, liverec vs nginx-rtmp (issue 5): see bench/README.md.
#
#   bench/run-record.sh [--streams N] [--seconds T] [--asset hi|lo] [--wait-quiet S]
#                       [--no-build] [--no-install] [other flags of run_record.py, e.g.
#                       --servers socat,nginx-rtmp,liverec --rounds 3 --keep --out FILE]
#
# Installs what is missing (Debian: ffmpeg, nginx, libnginx-mod-rtmp, socat), makes the assets if
# missing, builds liverec in release (timing matters), then runs bench/run_record.py. Every
# process it starts is stopped on exit, also on Ctrl-C or SIGTERM.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
ASSETS_DIR=${LIVEREC_BENCH_ASSETS:-/tmp/liverec-bench-assets}
BUILD=1
INSTALL=1
KEEP=0
PASS=()

while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --no-install) INSTALL=0 ;;
    --keep) KEEP=1; PASS+=("$1") ;;
    --assets-dir) ASSETS_DIR=$2; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exec python3 "$HERE/run_record.py" --help ;;
    *) PASS+=("$1") ;;
  esac
  shift
done

need=()
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || need+=(ffmpeg)
command -v nginx >/dev/null || need+=(nginx)
[ -e /usr/lib/nginx/modules/ngx_rtmp_module.so ] || need+=(libnginx-mod-rtmp)
command -v socat >/dev/null || need+=(socat)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$INSTALL" = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${need[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}" >/dev/null \
      || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}" >/dev/null; }
  else
    echo "missing: ${need[*]} (apt-get install -y ${need[*]})" >&2
    exit 1
  fi
fi

"$HERE/make-assets.sh" "$ASSETS_DIR"

if [ "$BUILD" = 1 ]; then
  (cd "$ROOT" && cargo build --release -p liverec --quiet)
fi

WORK=$(mktemp -d /tmp/liverec-bench.XXXXXX)
PY=

cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [ -n "$PY" ] && kill -0 "$PY" 2>/dev/null; then
    kill -TERM "$PY" 2>/dev/null || true
    wait "$PY" 2>/dev/null || true
  fi
  # anything the harness could not stop itself (each child leads its own process group)
  if [ -f "$WORK/pids" ]; then
    while read -r pid; do
      [ -n "$pid" ] && kill -KILL -- "-$pid" 2>/dev/null || true
    done < "$WORK/pids"
  fi
  if [ "$KEEP" = 1 ]; then
    echo "kept: $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# In the background so that a signal reaches the trap at once (bash runs traps only between
# foreground commands).
python3 "$HERE/run_record.py" --work-dir "$WORK" --assets-dir "$ASSETS_DIR" \
  --liverec "$ROOT/target/release/liverec" "${PASS[@]}" &
PY=$!
wait "$PY"
