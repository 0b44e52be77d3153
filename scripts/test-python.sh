#!/usr/bin/env bash
# The Python tests of tests/python: the API driven through Alibaba Cloud's official SDKs
# (alibabacloud-live20161101, and the older aliyun-python-sdk-core + aliyun-python-sdk-live)
# against the liverec binary, with ffmpeg publishing and ffprobe checking the files.
# Builds the debug binary unless LIVEREC_BIN names one; extra arguments go to pytest
# (e.g. `-k restart`, `-n 4`). scripts/test.sh calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }

if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
  say "installing ffmpeg (apt-get)"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq ffmpeg >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
if ! .venv/bin/python -c 'import alibabacloud_live20161101, aliyunsdklive, xdist, pytest_timeout, imageio_ffmpeg' 2>/dev/null; then
  say "installing the Python test packages into .venv"
  .venv/bin/pip install -q -r tests/requirements.txt
fi

say "test media"
./scripts/make-test-assets.sh >/dev/null

if [ -n "${LIVEREC_BIN:-}" ]; then
  bin=$LIVEREC_BIN
else
  say "cargo build -p liverec"
  cargo build -p liverec --locked
  bin=target/debug/liverec
fi

say "python SDK tests"
# LIVEREC_BIN only for pytest: liverec reads LIVEREC_* variables as settings.
LIVEREC_BIN="$(realpath "$bin")" exec .venv/bin/python -m pytest -n auto tests/python "$@"
