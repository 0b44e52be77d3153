#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs what is missing (ffmpeg, GStreamer
# and chromium via apt-get; ffmpeg 9 from the PyPI package imageio-ffmpeg and moto_server in
# ./.venv; playwright-core and hls.js via npm in tests/browser),
# encodes the test media once, then runs formatting, lint, every test, and each fuzz target
# for a few seconds when a nightly toolchain is present (docs/FUZZING.md).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }

# A clean build of the workspace and its tests takes about 7 GiB under target/ (5 GiB with
# CARGO_INCREMENTAL=0, as .ci/run sets), the fuzz build 2 GiB more. Running out of disk shows up
# as a linker "Bus error" deep in the build, so say it up front.
free_kib=$(df -Pk . | awk 'NR == 2 { print $4 }')
if [ "${free_kib:-0}" -lt $((10 * 1024 * 1024)) ]; then
  echo "warning: only $((free_kib / 1024 / 1024)) GiB free on the disk of $(pwd); the build needs about 9 GiB" >&2
fi

# Test peers from Debian: ffmpeg/ffprobe, and GStreamer's two RTMP publishers (rtmp2sink,
# librtmp's rtmpsink) with the FLV/H.264/AAC elements the peer tests use.
apt_install() {
  say "installing $* (apt-get)"
  local sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  [ -n "${apt_updated:-}" ] || { $sudo_cmd apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "$@" >/dev/null
}
if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
  apt_install ffmpeg
fi
if ! command -v gst-launch-1.0 >/dev/null || ! gst-inspect-1.0 rtmp2sink >/dev/null 2>&1 \
  || ! gst-inspect-1.0 rtmpsink >/dev/null 2>&1 || ! gst-inspect-1.0 flvdemux >/dev/null 2>&1; then
  apt_install --no-install-recommends gstreamer1.0-tools gstreamer1.0-plugins-base \
    gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
fi

# A foreign RTMP origin for the pull tests (crates/liverec/tests/pull.rs): Debian's nginx with
# libnginx-mod-rtmp, started by the tests themselves on a free port (tests/nginx-origin.conf.in).
if ! command -v nginx >/dev/null || [ ! -f /usr/lib/nginx/modules/ngx_rtmp_module.so ]; then
  apt_install nginx libnginx-mod-rtmp
fi

# Browser peer (crates/liverec/tests/support/browser.rs, tests/browser): Debian's chromium,
# driven by playwright-core on the machine's Node.js; never a browser download through npm.
if [ ! -x /usr/bin/chromium ]; then
  apt_install chromium
fi
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "the browser tests need Node.js >= 20 with npm (playwright-core); found: $(node --version 2>&1 || true)" >&2
  exit 1
fi
# npm packages of tests/browser, reinstalled whenever its package-lock.json changes.
want=$(sha256sum tests/browser/package-lock.json | cut -d' ' -f1)
if [ "$(cat tests/browser/node_modules/.lock.sha256 2>/dev/null)" != "$want" ]; then
  say "installing the browser test packages (npm ci in tests/browser)"
  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > tests/browser/node_modules/.lock.sha256
fi

# Python test peers (ffmpeg 9 from imageio-ffmpeg, moto_server and boto3, Alibaba's SDKs, pytest) in ./.venv,
# reinstalled whenever tests/requirements.txt changes.
want=$(sha256sum tests/requirements.txt | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.requirements.sha256 2>/dev/null)" != "$want" ]; then
  say "installing the Python test packages into .venv"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r tests/requirements.txt
  echo "$want" > .venv/.requirements.sha256
fi
LIVEREC_FFMPEG9=$(.venv/bin/python -c 'import imageio_ffmpeg as i; print(i.get_ffmpeg_exe())')
export LIVEREC_FFMPEG9 FFMPEG9=$LIVEREC_FFMPEG9

say "test media"
./scripts/make-test-assets.sh >/dev/null

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

say "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  # nextest does not run doctests.
  cargo test --workspace --locked --doc
else
  cargo test --workspace --locked --no-fail-fast
fi
say "catalog tests on PostgreSQL"
# Same workspace build as above (a -p build would re-resolve features and recompile).
if cargo nextest --version >/dev/null 2>&1; then
  ./scripts/with-postgres.sh cargo nextest run --workspace --locked -E 'package(liverec-catalog)'
else
  ./scripts/with-postgres.sh cargo test --workspace --locked
fi
say "a PostgreSQL outage under a recording server"
# Its own cluster: the test stops and starts it.
if cargo nextest --version >/dev/null 2>&1; then
  ./scripts/with-postgres.sh cargo nextest run --workspace --locked --run-ignored only -E 'binary(postgres_outage)'
else
  ./scripts/with-postgres.sh cargo test --workspace --locked --test postgres_outage -- --ignored
fi

say "API tests through Alibaba's Python SDKs"
LIVEREC_BIN=target/debug/liverec ./scripts/test-python.sh

# Fuzzing costs 6–9 minutes from a clean clone (mostly its instrumented build). CI must stay under
# 45 minutes on a 2-core machine: past FUZZ_AFTER_MAX_SECS (default 34 min) of this script the
# fuzz pass is skipped, and says so, rather than overrunning.
fuzz_after_max=${FUZZ_AFTER_MAX_SECS:-2040}
if [ "$SECONDS" -gt "$fuzz_after_max" ]; then
  say "fuzzing skipped: the suite took $((SECONDS / 60)) min, more than $((fuzz_after_max / 60)) (run ./scripts/fuzz.sh alone)"
else
  say "fuzzing every target briefly (scripts/fuzz.sh; skipped without a nightly toolchain)"
  ./scripts/fuzz.sh
fi

say "all tests passed"
