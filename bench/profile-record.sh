#!/usr/bin/env bash
# Profiles liverec recording N paced streams (issue 5): instructions, allocations, syscalls and
# heap per frame, independent of machine load. See bench/README.md.
#
#   bench/profile-record.sh [--tool callgrind|strace|perf|heaptrack|native] [--streams N] [--seconds T]
#                           [--asset hi|lo] [--warmup W] [--keep] [--no-build]
#
# callgrind:  instructions and malloc/realloc/calloc calls per frame in the measured window
#             (instrumentation is switched on after the warm-up and off at its end), by crate group;
# strace:     syscalls per frame in the window (strace -f -c attached for the window only);
# perf:       where the CPU time goes, kernel included (perf record -e cpu-clock, no hardware
#             counters needed), top symbols; runs natively, so use as many streams as the benchmark;
# heaptrack:  allocations and peak heap of the whole run, the largest peak holders;
# native:     no tool: CPU (user/system) and context switches per frame in the window, RSS and
#             /proc/PID/smaps_rollup after it (compare RSS with another run's idle: --streams 0).
# Frames in the window = N x T x the asset's frame rate (hi/lo: 73.1 frames/s, 30 video + 43.1 AAC).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
ASSETS_DIR=${LIVEREC_BENCH_ASSETS:-/tmp/liverec-bench-assets}
TOOL=callgrind
STREAMS=4
SECONDS_=20
WARMUP=5
ASSET=hi
KEEP=0
BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --tool) TOOL=$2; shift ;;
    --streams) STREAMS=$2; shift ;;
    --seconds) SECONDS_=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --asset) ASSET=$2; shift ;;
    --keep) KEEP=1 ;;
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown flag $1" >&2; exit 2 ;;
  esac
  shift
done
case "$TOOL" in
  callgrind|heaptrack) command -v valgrind >/dev/null && command -v heaptrack >/dev/null \
    || DEBIAN_FRONTEND=noninteractive apt-get install -y valgrind heaptrack >/dev/null ;;
  strace) command -v strace >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y strace >/dev/null ;;
  perf) command -v perf >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y linux-perf >/dev/null ;;
  native) ;;
  *) echo "unknown tool $TOOL" >&2; exit 2 ;;
esac

"$HERE/make-assets.sh" "$ASSETS_DIR"
if [ "$BUILD" = 1 ]; then
  (cd "$ROOT" && cargo build --release -p liverec --quiet)
fi
BIN=$ROOT/target/release/liverec
ASSET_PATH=$ASSETS_DIR/$ASSET.flv

WORK=$(mktemp -d /tmp/liverec-profile.XXXXXX)
SERVER=
PID=
PUBS=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  for p in "${PUBS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  if [ -n "$SERVER" ] && kill -0 "$SERVER" 2>/dev/null; then
    kill -KILL "$PID" "$SERVER" 2>/dev/null || true
  fi
  if [ "$KEEP" = 1 ]; then echo "kept: $WORK" >&2; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
api=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$WORK/liverec.toml" <<EOF
data_dir = "$WORK/data"
rtmp_listen = "127.0.0.1:$port"
api_listen = "127.0.0.1:$api"
shutdown_timeout_secs = 60
[ingest]
max_publishers = 10000
[record]
enabled = true
mode = "automatic"
delay_secs = 3600
formats = [{ format = "mp4" }]
EOF

case "$TOOL" in
  callgrind) PREFIX=(valgrind --tool=callgrind --instr-atstart=no "--callgrind-out-file=$WORK/callgrind.out") ;;
  heaptrack) PREFIX=(heaptrack -o "$WORK/heaptrack") ;;
  *) PREFIX=() ;;
esac
RUST_LOG=warn "${PREFIX[@]}" "$BIN" serve --config "$WORK/liverec.toml" >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 600); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
# The process that serves (valgrind and heaptrack exec or fork it).
PID=$SERVER
if [ "$TOOL" = heaptrack ]; then PID=$(pgrep -P "$SERVER" -f "$BIN" || echo "$SERVER"); fi

for i in $(seq "$STREAMS"); do
  ffmpeg -hide_banner -nostdin -loglevel error -re -stream_loop -1 -i "$ASSET_PATH" -c copy \
    -f flv "rtmp://127.0.0.1:$port/live/s$i" >"$WORK/pub-$i.log" 2>&1 &
  PUBS+=($!)
  sleep 0.05
done
sleep "$WARMUP"

# utime stime (clock ticks) and context switches of all threads
proc_cpu() { awk '{print $14, $15}' "/proc/$PID/stat"; }
proc_ctx() { cat /proc/"$PID"/task/*/status | awk '/ctxt_switches/ {s+=$2} END {print s}'; }
ATTACHED=
CPU0=$(proc_cpu); CTX0=$(proc_ctx); T0=$(date +%s.%N)
case "$TOOL" in
  callgrind) callgrind_control -i on "$PID" >/dev/null ;;
  strace) strace -f -c -o "$WORK/strace.txt" -p "$PID" 2>/dev/null & ATTACHED=$! ;;
  perf) perf record -q -e cpu-clock -F 999 -g -p "$PID" -o "$WORK/perf.data" >/dev/null 2>&1 & ATTACHED=$! ;;
esac
sleep "$SECONDS_"
case "$TOOL" in
  callgrind) callgrind_control -i off "$PID" >/dev/null ;;
  strace|perf) kill -INT "$ATTACHED"; wait "$ATTACHED" || true ;;
  native)
    CPU1=$(proc_cpu); CTX1=$(proc_ctx); T1=$(date +%s.%N)
    python3 - "$CPU0" "$CPU1" "$CTX0" "$CTX1" "$T0" "$T1" "$STREAMS" "$(getconf CLK_TCK)" <<'PY'
import sys
(u0, s0), (u1, s1) = (map(int, x.split()) for x in sys.argv[1:3])
c0, c1, t0, t1, n, tck = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
win = t1 - t0
frames = max(1, n * win * 2193 / 30.0)
print(f"CPU % of a core per stream: user {100 * (u1 - u0) / tck / win / max(n, 1):.3f}, "
      f"system {100 * (s1 - s0) / tck / win / max(n, 1):.3f}")
print(f"context switches per frame: {(c1 - c0) / frames:.2f}")
PY
    echo "RSS after the window: $(awk '/VmRSS/ {print $2}' "/proc/$PID/status") KiB"
    grep -E 'Rss|Anonymous' "/proc/$PID/smaps_rollup" ;;
esac

for p in "${PUBS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${PUBS[@]}"; do wait "$p" 2>/dev/null || true; done
PUBS=()
kill -TERM "$PID"
wait "$SERVER" || true
SERVER=

FRAMES=$(python3 -c "print(round($STREAMS * $SECONDS_ * 2193 / 30.0))")
files=$(find "$WORK/data" -name '*.mp4' -not -path '*/.spool/*' | wc -l)
echo "tool $TOOL, $STREAMS x $ASSET, window ${SECONDS_} s: ~$FRAMES frames in the window; $files files recorded"
case "$TOOL" in
  callgrind) python3 "$HERE/callgrind_summary.py" "$WORK/callgrind.out" "$FRAMES" ;;
  strace)
    python3 - "$WORK/strace.txt" "$FRAMES" <<'PY'
import sys
frames = int(sys.argv[2])
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) >= 5 and f[3].isdigit():
        name = f[-1]
        print(f"{name:24} {int(f[3]):8}  {int(f[3]) / frames:8.3f} per frame")
    elif line.strip().startswith("100.00"):
        print(f"{'total':24} {int(f[2]):8}  {int(f[2]) / frames:8.3f} per frame")
PY
    ;;
  perf)
    perf report -i "$WORK/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -8
    perf report -i "$WORK/perf.data" --no-children --sort sym --stdio -g none 2>/dev/null \
      | grep -E '^ +[0-9]' | head -45 ;;
  heaptrack)
    total_frames=$(find "$WORK/data" -name '*.mp4' -not -path '*/.spool/*' -print0 \
      | xargs -0 -r -n1 ffprobe -v error -count_packets -show_entries stream=nb_read_packets -of csv=p=0 \
      | awk '{s+=$1} END {print s+0}')
    heaptrack_print "$WORK"/heaptrack*.zst >"$WORK/heaptrack.txt" 2>/dev/null || true
    echo "frames recorded (whole run): $total_frames"
    grep -E '^(total runtime|calls to allocation|temporary memory|peak heap|peak RSS|total memory leaked)' "$WORK/heaptrack.txt"
    calls=$(grep -oP 'calls to allocation functions: \K[0-9]+' "$WORK/heaptrack.txt" || echo 0)
    [ "$total_frames" -gt 0 ] && echo "allocation calls per recorded frame (whole run, start-up included): $((calls / total_frames))"
    echo "--- largest contributors to the peak heap"
    sed -n '/^PEAK MEMORY CONSUMERS/,/^MOST TEMPORARY/p' "$WORK/heaptrack.txt" | grep -E '^[0-9.]+[KMG]?B? peak|^  [0-9.]+' | head -40 ;;
esac
