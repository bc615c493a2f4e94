#!/bin/sh
# Record live/cam to MP4 with start=keyframe: the recording begins at the cached
# keyframe, so a recorder that joins late still gets the footage from before it
# joined (pre-event), at its original spacing. When the camera ends, the recorder
# gets EOS and mp4mux finalizes the file. The script then checks the file.
#
#   GST_PLUGIN_PATH=$BUILD/elements pipelines/record-late-join.sh [FRAMES] [OUT.mp4]
#
# gst-launch starts both branches together; an application starts its recorder
# pipeline whenever the event happens (see tests/check/test_pipelines.cpp,
# test_mp4_recording_with_pre_event_footage, for a recorder joining 1.5 s late).
# persist=true lets the recording survive a camera blip.
set -eu
FRAMES=${1:-300}
OUT=${2:-${OUTDIR:-.}/late-join.mp4}
rm -f "$OUT"
gst-launch-1.0 -e \
  videotestsrc is-live=true num-buffers="$FRAMES" \
    ! video/x-raw,width=640,height=360,framerate=30/1 \
    ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 \
    ! arclysink stream=live/cam \
  arclysrc stream=live/cam start=keyframe \
    ! h264parse ! mp4mux ! filesink location="$OUT"

# Validate: a playable MP4 holding (nearly) every published frame.
if command -v ffprobe >/dev/null 2>&1; then
  n=$(ffprobe -v error -select_streams v:0 -count_packets \
        -show_entries stream=nb_read_packets -of csv=p=0 "$OUT")
  echo "recorded $n of $FRAMES frames into $OUT"
  [ "$n" -ge $(( FRAMES * 9 / 10 )) ] || { echo "recording too short" >&2; exit 1; }
else
  [ -s "$OUT" ] || { echo "no recording" >&2; exit 1; }
fi
