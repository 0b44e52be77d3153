#!/usr/bin/env bash
# Encodes the test media once per checkout into tests/.assets/ (skips files that exist).
# Tests publish these with `-re -c copy`, so no test ever encodes in real time.
# Needs Debian's ffmpeg (H.264/AAC) and ffmpeg 9 from imageio-ffmpeg (HEVC/AV1, Enhanced FLV):
# FFMPEG9 may name it, else it is looked up in ./.venv.
set -euo pipefail
cd "$(dirname "$0")/.."
out=tests/.assets
mkdir -p "$out"
ffmpeg9=${FFMPEG9:-$(.venv/bin/python -c 'import imageio_ffmpeg as i; print(i.get_ffmpeg_exe())')}
# 10 s, 25 fps, GOP 1 s, B-frames, 440 Hz sine at 44.1 kHz.
src=(-f lavfi -i "testsrc2=size=320x240:rate=25:duration=10" -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=10")
make() { # name, ffmpeg binary, args...
  local name=$1 bin=$2; shift 2
  [ -s "$out/$name" ] && return 0
  "$bin" -hide_banner -v error -y "$@" "$out/$name.tmp.flv"
  mv "$out/$name.tmp.flv" "$out/$name"
}
make h264_aac.flv ffmpeg "${src[@]}" -c:v libx264 -preset veryfast -g 25 -bf 2 -pix_fmt yuv420p -c:a aac -b:a 64k -f flv
make h264_only.flv ffmpeg -f lavfi -i "testsrc2=size=320x240:rate=25:duration=10" -c:v libx264 -preset veryfast -g 25 -bf 2 -pix_fmt yuv420p -f flv
make aac_only.flv ffmpeg -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=10" -c:a aac -b:a 64k -f flv
make hevc_aac.flv "$ffmpeg9" "${src[@]}" -c:v libx265 -preset ultrafast -x265-params log-level=error:keyint=25:min-keyint=25:bframes=2 -pix_fmt yuv420p -c:a aac -b:a 64k -f flv
SVT_LOG=1 make av1_aac.flv "$ffmpeg9" "${src[@]}" -c:v libsvtav1 -preset 12 -g 25 -pix_fmt yuv420p -c:a aac -b:a 64k -f flv
# A second resolution (new sequence header mid-stream), and codecs liverec does not record (MP3, Sorenson H.263).
make h264_aac_640x360.flv ffmpeg -f lavfi -i "testsrc2=size=640x360:rate=25:duration=4" -f lavfi -i "sine=frequency=660:sample_rate=44100:duration=4" -c:v libx264 -preset veryfast -g 25 -bf 2 -pix_fmt yuv420p -c:a aac -b:a 64k -f flv
make h264_mp3.flv ffmpeg "${src[@]}" -c:v libx264 -preset veryfast -g 25 -bf 2 -pix_fmt yuv420p -c:a libmp3lame -b:a 64k -f flv
make flv1_aac.flv ffmpeg "${src[@]}" -c:v flv1 -g 25 -c:a aac -b:a 64k -f flv
# A file people push at full speed (no -re): 120 s of 640x360@30 H.264 at ~2 Mbit/s and AAC,
# 3600 video frames, GOP 2 s, ~30 MB: 30 s encoded once, then repeated with -c copy.
make h264_aac_30s_2mbps.flv ffmpeg -f lavfi -i "testsrc2=size=640x360:rate=30:duration=30" -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=30" -c:v libx264 -preset ultrafast -b:v 2M -minrate 2M -maxrate 2M -bufsize 2M -g 60 -bf 0 -pix_fmt yuv420p -c:a aac -b:a 64k -f flv
make h264_aac_120s_2mbps.flv ffmpeg -nostdin -stream_loop 3 -i "$out/h264_aac_30s_2mbps.flv" -c copy -f flv
ls -l "$out"
