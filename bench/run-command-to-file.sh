#!/usr/bin/env bash
# Command-to-file benchmark (issue 5, point 3), liverec and nginx-rtmp in one run:
#   1. a 1-hour 2 Mbps recording published without -re: time from `cancel_delay` (after `stop`,
#      manual config) and from the end of DelayTime (automatic config) to the MP4 at its final
#      name, indexed in data/liverec.db and readable by ffprobe;
#   2. how much of the stream after a `start` command is missing from the file: liverec (GOP-cache
#      pre-roll) against nginx-rtmp `record all manual` + /control/record/start, same publisher.
# Needs ffmpeg, nginx and libnginx-mod-rtmp (apt-get install -y ffmpeg nginx libnginx-mod-rtmp).
# The 1-hour asset (~915 MB) is cached in $BENCH_ASSETS. Everything it starts is stopped on exit.
# Usage: bench/run-command-to-file.sh   (knobs: ITERATIONS, HOLD, SKIP_HOUR=1, the ports below)
set -euo pipefail
. "$(dirname "$0")/api/common.sh"

ITERATIONS=${ITERATIONS:-10}
HOLD=${HOLD:-3}
RTMP_PORT=${RTMP_PORT:-19352}
API_PORT=${API_PORT:-18082}
NGINX_RTMP_PORT=${NGINX_RTMP_PORT:-19353}
NGINX_HTTP_PORT=${NGINX_HTTP_PORT:-18083}
WAIT_QUIET=${WAIT_QUIET:-120}
QUIET_LOAD=${QUIET_LOAD:-1.0}
OUT=${OUT:-/tmp/liverec-command-to-file.json}
KEEP=${KEEP:-0}
export LIVEREC_LOG=${LIVEREC_LOG:-info}
WORK=$(mktemp -d /tmp/liverec-c2f.XXXXXX)

CHILD=
cleanup() {
  # The Python driver stops its own children (liverec, nginx, ffmpeg) on SIGTERM.
  if [ -n "$CHILD" ]; then kill -TERM "$CHILD" 2>/dev/null || true; wait "$CHILD" 2>/dev/null || true; fi
  if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in ffmpeg ffprobe nginx; do
  command -v "$tool" >/dev/null || { log "$tool is missing: apt-get install -y ffmpeg nginx libnginx-mod-rtmp"; exit 1; }
done
[ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ] || { log "libnginx-mod-rtmp is missing"; exit 1; }

build_all
make_assets
make_hour_asset
machine_info | tee "$WORK/machine.txt"
wait_quiet "$WAIT_QUIET" "$QUIET_LOAD"

args=(--liverec "$LIVEREC_BIN" --apibench "$APIBENCH" --hour "$BENCH_ASSETS/hour.flv" --work "$WORK"
      --rtmp-port "$RTMP_PORT" --api-port "$API_PORT" --nginx-rtmp-port "$NGINX_RTMP_PORT"
      --nginx-http-port "$NGINX_HTTP_PORT" --iterations "$ITERATIONS" --hold "$HOLD")
[ "${SKIP_HOUR:-0}" = 1 ] && args+=(--skip-hour)
[ "${SKIP_START_LOSS:-0}" = 1 ] && args+=(--skip-start-loss)
random_key
python3 "$BENCH_ROOT/bench/api/command_to_file.py" "${args[@]}" > "$OUT" &
CHILD=$!
wait "$CHILD"
CHILD=

python3 - "$OUT" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
def ms(x): return "-" if x is None else f"{x:.1f}"
for key in ("hour_manual", "hour_auto"):
    h = r.get(key)
    if not h: continue
    print(f"\n== 1-hour recording, {h['case']} ==")
    print(f"published in {h['publish_secs']} s ({h['ingest_mbps']} Mbit/s); measured from {h['measured_from']}")
    if "cancel_delay" in h:
        print(f"start {h['start_outcome']} {ms(h['start_after_publish_ms'])} ms after the publisher started; "
              f"stop {h['stop']}; cancel_delay {h['cancel_delay']}")
    print(f"final name after {ms(h.get('file_ms'))} ms, database row after {ms(h.get('row_ms'))} ms, "
          f"ffprobe ok after {ms(h.get('ffprobe_ok_ms'))} ms (ffprobe itself {ms(h.get('ffprobe_run_ms'))} ms)")
    print(f"file: {h.get('size')} bytes, ffprobe duration {h.get('ffprobe_duration_s')} s, full demux {h.get('full_demux')}")
sl = r.get("start_loss")
if sl:
    n = len(sl["iterations"])
    print(f"\n== Stream missing after `start` (2 s GOP, {n} commands at random phase) ==")
    print(f"arrival clock from {sl['arrival_clock_from']} nginx keyframes; it runs "
          f"{sl['arrival_minus_send_clock_ms']} ms behind ffmpeg's send clock (-progress)")
    def f(s, k): return "-" if not s.get(k) else f"{s[k]['min']}/{s[k]['median']}/{s[k]['max']} (n={s[k]['n']})"
    print(f"{'server':20} {'missing ms min/med/max':>28} {'pre-roll ms min/med/max':>28} {'by send clock':>26} {'start latency ms':>26}")
    labels = {"liverec": "liverec, all", "liverec_no_overlap": "liverec, GOP unwritten",
              "liverec_overlap": "liverec, GOP overlap", "nginx": "nginx-rtmp"}
    for g, label in labels.items():
        s = sl["summary"].get(g)
        if not s: continue
        print(f"{label:20} {f(s, 'missing_ms'):>28} {f(s, 'preroll_ms'):>28} {f(s, 'missing_ms_by_send_clock'):>26} {f(s, 'start_latency_ms'):>26}")
    ng = sl["summary"]["nginx"]
    if ng.get("kf_on_disk_after_command_ms"):
        print(f"nginx-rtmp, reference method (command -> first keyframe on disk, ms): {f(ng, 'kf_on_disk_after_command_ms')}")
    lv = sl["summary"]["liverec"]
    for k in ("cancel_delay_to_final_ms", "cancel_delay_to_row_ms", "db_start_minus_command_ms"):
        if lv.get(k): print(f"liverec {k}: {f(lv, k)}")
EOF
log "raw results: $OUT"
