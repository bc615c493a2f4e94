#!/bin/sh
# Publish a camera and a microphone (H.264 + AAC) as two tracks of live/av and
# play both, in sync, from one arclysrc (pads video_0 and audio_0).
#
#   GST_PLUGIN_PATH=$BUILD/elements pipelines/audio-video.sh [FRAMES]
#   VSINK=autovideosink ASINK=autoaudiosink pipelines/audio-video.sh 900
#
# FRAMES (default 300 video frames = 10 s) bounds the run; audio stops at the
# same time (num-buffers of 1024 samples at 48 kHz ~ 21 ms each).
set -eu
FRAMES=${1:-300}
AUDIO_BUFFERS=$(( FRAMES * 48000 / 30 / 1024 ))
VSINK=${VSINK:-fakesink sync=true}
ASINK=${ASINK:-fakesink sync=true}
# shellcheck disable=SC2086
exec gst-launch-1.0 -e \
  arclysink name=pub stream=live/av \
  videotestsrc is-live=true num-buffers="$FRAMES" \
    ! video/x-raw,width=640,height=360,framerate=30/1 \
    ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 ! pub. \
  audiotestsrc is-live=true num-buffers="$AUDIO_BUFFERS" samplesperbuffer=1024 \
    ! audio/x-raw,rate=48000 ! avenc_aac ! pub. \
  arclysrc name=play stream=live/av \
  play.video_0 ! queue ! h264parse ! avdec_h264 ! videoconvert ! $VSINK \
  play.audio_0 ! queue ! aacparse ! avdec_aac ! audioconvert ! $ASINK
