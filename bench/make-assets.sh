#!/bin/sh
# Makes the benchmark assets (kept out of git) in $1 (default /tmp/liverec-bench-assets), unless
# they are already there. Encoded once, published later with `-c copy`, so the benchmark never
# pays for encoding.
#   hi.flv : 30 s, 1280x720@30, H.264 ~1.87 Mbps CBR + AAC 128k stereo 44.1 kHz (~2 Mbps), GOP 2 s
#   lo.flv : 30 s,  640x360@30, H.264 ~536 kbps CBR + AAC 64k (~600 kbps), same GOP and audio layout
# No B-frames, no scene-cut keyframes: every GOP is exactly 60 frames.
set -eu
OUT=${1:-/tmp/liverec-bench-assets}
mkdir -p "$OUT"
gen() { # name size vbitrate abitrate
  [ -s "$OUT/$1.flv" ] && return 0
  ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i "testsrc2=size=$2:rate=30:duration=30" \
    -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=30" \
    -map 0:v -map 1:a \
    -c:v libx264 -preset veryfast -profile:v main -pix_fmt yuv420p \
    -b:v "$3" -minrate "$3" -maxrate "$3" -bufsize "$3" -x264-params nal-hrd=cbr \
    -g 60 -keyint_min 60 -sc_threshold 0 -bf 0 \
    -c:a aac -b:a "$4" -ac 2 -ar 44100 \
    -f flv "$OUT/$1.flv.tmp"
  mv "$OUT/$1.flv.tmp" "$OUT/$1.flv"
  ffprobe -v error -show_entries format=duration,bit_rate,size -of compact "$OUT/$1.flv"
}
gen hi 1280x720 1872k 128k
gen lo 640x360 536k 64k
