#!/bin/sh
# Publish a test camera into live/cam and watch it, in one process (arclysink and
# arclysrc share the process-wide "default" engine).
#
#   GST_PLUGIN_PATH=$BUILD/elements pipelines/watch-test-camera.sh [FRAMES]
#   SINK=autovideosink pipelines/watch-test-camera.sh 900     # to see it
#
# FRAMES (default 300, i.e. 10 s) bounds the run: the camera sends EOS after it,
# the publish ends and the viewer gets EOS too.
set -eu
FRAMES=${1:-300}
SINK=${SINK:-fakesink sync=true}
# shellcheck disable=SC2086  # SINK is a launch fragment
exec gst-launch-1.0 -e \
  videotestsrc is-live=true num-buffers="$FRAMES" \
    ! video/x-raw,width=640,height=360,framerate=30/1 \
    ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 \
    ! arclysink stream=live/cam \
  arclysrc stream=live/cam \
    ! h264parse ! avdec_h264 ! videoconvert ! $SINK
