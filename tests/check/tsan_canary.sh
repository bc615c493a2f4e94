#!/bin/sh
# Passes only if ThreadSanitizer reports the race that tsan_canary.c plants, with
# the plugin suites' own TSan options and environment (tests/check/meson.build).
# A set-up that hid real races would make this fail.
out=$("$1" 2>&1)
rc=$?
if [ "$rc" -ne 66 ]; then
  echo "tsan-canary: expected ThreadSanitizer's exit status 66, got $rc"
  echo "$out" | tail -40
  exit 1
fi
if ! echo "$out" | grep -q "WARNING: ThreadSanitizer: data race" ||
  ! echo "$out" | grep -q "on_handoff"; then
  echo "tsan-canary: no data race report naming on_handoff"
  echo "$out" | tail -40
  exit 1
fi
echo "tsan-canary: ThreadSanitizer reported the planted race, as it must"
