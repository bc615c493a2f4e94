#!/usr/bin/env python3
"""Parses arcly's /metrics with the Prometheus client's own text parser and checks
names, types, labels and values. usage: check_metrics.py FILE; exit 0 when right."""
import sys

from prometheus_client.parser import text_string_to_metric_families

text = open(sys.argv[1]).read()
families = {f.name: f for f in text_string_to_metric_families(text)}
problems = []


def samples(name, **labels):
    out = []
    for fam in families.values():
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                out.append(s)
    return out


def expect(family, type_):
    f = families.get(family)
    if f is None:
        problems.append(f"missing family {family}")
    elif f.type != type_:
        problems.append(f"{family} is a {f.type}, not a {type_}")
    elif not f.documentation:
        problems.append(f"{family} has no HELP")


# The parser strips _total from counter family names.
for fam, t in [
    ("arcly_up", "gauge"),
    ("arcly_stream_frames", "counter"),
    ("arcly_stream_bytes", "counter"),
    ("arcly_stream_keyframes", "counter"),
    ("arcly_stream_bitrate_bytes_per_second", "gauge"),
    ("arcly_stream_frames_per_second", "gauge"),
    ("arcly_stream_last_frame_age_seconds", "gauge"),
    ("arcly_stream_subscribers", "gauge"),
    ("arcly_stream_lag_dropped_frames", "counter"),
    ("arcly_stream_cache_window_seconds", "gauge"),
    ("arcly_worker_state", "gauge"),
    ("arcly_worker_reconnects", "counter"),
    ("arcly_recorder_bytes", "counter"),
    ("arcly_recorder_segments", "counter"),
    ("arcly_recorder_errors", "counter"),
    ("arcly_recording_filesystem_free_bytes", "gauge"),
    ("arcly_egress_readers", "gauge"),
    ("arcly_egress_readers_accepted", "counter"),
    ("arcly_egress_refused", "counter"),
    ("arcly_egress_slow_readers", "counter"),
    ("arcly_egress_stream_readers", "gauge"),
    ("process_cpu_seconds", "counter"),
    ("process_resident_memory_bytes", "gauge"),
]:
    expect(fam, t)

cam = dict(app="live", stream="cam")
for name, low, high in [
    ("arcly_stream_frames_total", 30, 1e9),
    ("arcly_stream_keyframes_total", 2, 1e6),
    ("arcly_stream_bytes_total", 1000, 1e12),
    ("arcly_stream_frames_per_second", 20, 40),
    ("arcly_stream_last_frame_age_seconds", 0, 5),
    ("arcly_stream_cache_window_seconds", 0.5, 6),
    ("arcly_stream_subscribers", 1, 1),  # the RTSP reader's media
]:
    found = samples(name, **cam)
    if len(found) != 1:
        problems.append(f"{name}{cam}: {len(found)} samples")
    elif not (low <= found[0].value <= high):
        problems.append(f"{name}{cam} = {found[0].value}, not in [{low}, {high}]")

live = samples("arcly_worker_state", worker="pipeline cam", state="live")
if len(live) != 1 or live[0].value != 1:
    problems.append(f"arcly_worker_state{{worker='pipeline cam',state='live'}}: {live}")
others = [s for s in samples("arcly_worker_state", worker="pipeline cam") if s.labels["state"] != "live"]
if len(others) != 5 or any(s.value != 0 for s in others):
    problems.append(f"the other worker states: {others}")
# One RTSP/TCP reader of live/cam (the test's rtspsrc); none refused, none slow.
rtsp = dict(protocol="rtsp")
for name, labels, want in [
    ("arcly_egress_readers", rtsp, 1),
    ("arcly_egress_readers_accepted_total", rtsp, 1),
    ("arcly_egress_slow_readers_total", rtsp, 0),
    ("arcly_egress_stream_readers", dict(protocol="rtsp", app="live", stream="cam"), 1),
]:
    found = samples(name, **labels)
    if len(found) != 1 or found[0].value != want:
        problems.append(f"{name}{labels}: {found}, wanted one sample of {want}")
refused = samples("arcly_egress_refused_total", protocol="rtsp")
reasons = sorted(s.labels["reason"] for s in refused)
if reasons != ["bad-request", "forbidden", "limit", "not-found", "unauthorized"] or any(
        s.value != 0 for s in refused):
    problems.append(f"arcly_egress_refused_total{{protocol='rtsp'}}: {refused}")

free = samples("arcly_recording_filesystem_free_bytes", recorder="events")
if len(free) != 1 or free[0].value <= 0:
    problems.append(f"free bytes of the recording filesystem: {free}")
for name in ("process_cpu_seconds_total", "process_resident_memory_bytes"):
    s = samples(name)
    if len(s) != 1 or s[0].value <= 0:
        problems.append(f"{name}: {s}")

for p in problems:
    print(p)
sys.exit(1 if problems else 0)
