# Shared helpers of bench/run-api.sh and bench/run-command-to-file.sh (sourced, not run).
# shellcheck shell=bash

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_ASSETS=${BENCH_ASSETS:-/tmp/liverec-bench-assets}
APIBENCH="$BENCH_ROOT/bench/api/target/release/liverec-apibench"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# nproc, CPU model, kernel, date: the machine line of docs/BENCHMARKS.md.
machine_info() {
  local model
  model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
  printf 'machine: nproc=%s cpu="%s" kernel=%s date=%s loadavg="%s"\n' \
    "$(nproc)" "$model" "$(uname -r)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
}

# Waits up to $1 seconds for the 1-minute load average to drop below $2 (default 1.0).
wait_quiet() {
  local max=${1:-0} limit=${2:-1.0} waited=0
  while [ "$waited" -lt "$max" ]; do
    if awk -v l="$limit" '{exit !($1 < l)}' /proc/loadavg; then return 0; fi
    sleep 5; waited=$((waited + 5))
  done
  log "load average still $(cut -d' ' -f1-3 /proc/loadavg) after ${max}s; measuring anyway"
}

# Waits until a TCP port on 127.0.0.1 accepts connections (bash /dev/tcp), at most $2 s.
wait_port() {
  local port=$1 max=${2:-30} i=0
  while [ "$i" -lt $((max * 10)) ]; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1; i=$((i + 1))
  done
  return 1
}

# Builds liverec (release, as the brief asks) and the load generator.
build_all() {
  if [ -z "${LIVEREC_BIN:-}" ]; then
    log "cargo build --release -p liverec"
    (cd "$BENCH_ROOT" && cargo build --release -q -p liverec)
    LIVEREC_BIN="$BENCH_ROOT/target/release/liverec"
  fi
  log "cargo build --release (bench/api)"
  cargo build --release -q --manifest-path "$BENCH_ROOT/bench/api/Cargo.toml"
}

# Test-pattern assets, encoded once and cached (as ../shared/bench/make_asset.sh makes them):
#   hi.flv  30 s 1280x720@30 H.264 ~1.9 Mbps CBR, GOP 2 s, no B-frames, AAC 128k  (2.03 Mbps)
#   lo.flv  30 s  640x360@30 H.264 ~0.54 Mbps, same layout, AAC 64k                (0.62 Mbps)
make_assets() {
  mkdir -p "$BENCH_ASSETS"
  local name size vb ab
  while read -r name size vb ab; do
    [ -s "$BENCH_ASSETS/$name.flv" ] && continue
    log "encoding $BENCH_ASSETS/$name.flv"
    ffmpeg -hide_banner -nostdin -loglevel error -y \
      -f lavfi -i "testsrc2=size=$size:rate=30:duration=30" \
      -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=30" \
      -map 0:v -map 1:a \
      -c:v libx264 -preset veryfast -profile:v main -pix_fmt yuv420p \
      -b:v "$vb" -minrate "$vb" -maxrate "$vb" -bufsize "$vb" -x264-params nal-hrd=cbr \
      -g 60 -keyint_min 60 -sc_threshold 0 -bf 0 \
      -c:a aac -b:a "$ab" -ac 2 -ar 44100 \
      -f flv "$BENCH_ASSETS/$name.flv.tmp"
    mv "$BENCH_ASSETS/$name.flv.tmp" "$BENCH_ASSETS/$name.flv"
  done <<'EOF'
hi 1280x720 1872k 128k
lo 640x360 536k 64k
EOF
}

# One hour of hi.flv, stream-copied into one file (~915 MB), cached.
make_hour_asset() {
  [ -s "$BENCH_ASSETS/hour.flv" ] && return 0
  log "writing $BENCH_ASSETS/hour.flv (120 x hi.flv, -c copy)"
  ffmpeg -hide_banner -loglevel error -y -stream_loop 119 -i "$BENCH_ASSETS/hi.flv" \
    -c copy -f flv "$BENCH_ASSETS/hour.flv.tmp"
  mv "$BENCH_ASSETS/hour.flv.tmp" "$BENCH_ASSETS/hour.flv"
}

# Random access key for the run (never printed).
random_key() {
  LIVEREC_ACCESS_KEY_ID="LTAIbench$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  LIVEREC_ACCESS_KEY_SECRET="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  export LIVEREC_ACCESS_KEY_ID LIVEREC_ACCESS_KEY_SECRET
}

# Installs ffmpeg, nginx and libnginx-mod-rtmp with apt-get when they are missing (as root);
# otherwise says what to install and fails.
ensure_nginx_rtmp() {
  local need=()
  command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || need+=(ffmpeg)
  command -v nginx >/dev/null || need+=(nginx)
  [ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ] || need+=(libnginx-mod-rtmp)
  [ ${#need[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing ${need[*]} (apt-get)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    log "missing: ${need[*]} (apt-get install -y ${need[*]})"
    return 1
  fi
}
