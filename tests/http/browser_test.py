#!/usr/bin/env python3
"""The web page in headless Chromium, against the real arcly binary.

Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
JSON messages ended by NUL on fds 3 and 4), so no driver package is needed. Checks:
the page lists the test stream with its codec, the thumbnail is a real image that
changes over time (two screenshots of it differ: the camera burns in a clock), and
the page's event button produces a finalized, playable clip. Screenshots are kept
in ARTIFACTS (under the build dir) for CI.

usage: browser_test.py ARCLY_BIN SOURCE_ROOT ARTIFACTS
"""
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ARCLY, ROOT, ARTIFACTS = sys.argv[1:4]
os.makedirs(ARTIFACTS, exist_ok=True)
work = tempfile.mkdtemp(prefix="arcly-browser-")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)
    return cond


def wait(pred, limit, what):
    deadline = time.time() + limit
    while time.time() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.2)  # polling for a state, not timing it
    check(False, what)
    return None


conf = os.path.join(work, "arcly.conf")
with open(conf, "w") as f:
    f.write(f"""[app live]
cache-window=6

[pipeline cam]
key=live/cam
source=videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! timeoverlay font-desc="Sans 24" ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=600 ! h264parse config-interval=-1

[record events]
key=live/*
dir={work}/rec
mode=events

[http]
listen=127.0.0.1:0
web-dir={ROOT}/host/web
""")
log_path = os.path.join(work, "arcly.log")
arcly = subprocess.Popen([ARCLY, "run", conf, "--for", "120"], stdout=open(log_path, "w"),
                         stderr=subprocess.STDOUT)
browser = None
try:
    m = wait(lambda: re.search(r"listening on http://([0-9.]+:[0-9]+)/", open(log_path).read()), 20,
             "arcly did not listen")
    if not m:
        sys.exit(1)
    base = "http://" + m.group(1)
    wait(lambda: "connected: publishing live/cam" in open(log_path).read(), 30, "camera not live")

    chromium = shutil.which("chromium")
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()

    def child_fds():
        # Chromium reads commands on fd 3 and answers on fd 4 (copies first, in
        # case the pipes themselves are 3 or 4).
        a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
        os.dup2(a, 3)
        os.dup2(b, 4)

    browser = subprocess.Popen(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-dev-shm-usage", "--remote-debugging-pipe", "--window-size=1200,800",
         "--user-data-dir=" + os.path.join(work, "chrome"), "about:blank"],
        preexec_fn=child_fds, pass_fds=(3, 4, to_chrome_r, from_chrome_w),
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "chrome.log"), "w"))
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    out = os.fdopen(to_chrome_w, "wb", buffering=0)
    inp = os.fdopen(from_chrome_r, "rb", buffering=0)
    buffered = b""
    next_id = [0]

    def send(method, params=None, session=None):
        next_id[0] += 1
        msg = {"id": next_id[0], "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        out.write(json.dumps(msg).encode() + b"\0")
        global buffered
        while True:
            while b"\0" not in buffered:
                chunk = inp.read(65536)
                if not chunk:
                    raise RuntimeError("chromium closed the pipe")
                buffered += chunk
            raw, buffered = buffered.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == next_id[0]:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    target = send("Target.createTarget", {"url": base + "/"})["targetId"]
    session = send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

    def js(expr):
        r = send("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                      "awaitPromise": True}, session)
        return r.get("result", {}).get("value")

    def screenshot(name, selector=None):
        params = {"format": "png"}
        if selector:
            rect = js(f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
                      ".getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; })()")
            params["clip"] = {"x": rect[0], "y": rect[1], "width": rect[2], "height": rect[3],
                              "scale": 1}
        data = base64.b64decode(send("Page.captureScreenshot", params, session)["data"])
        with open(os.path.join(ARTIFACTS, name), "wb") as f:
            f.write(data)
        return data

    row = 'document.querySelector(\'tr[data-key="live/cam"]\')'
    wait(lambda: js(f"!!{row}"), 20, "the page does not list live/cam")
    check(js(f"{row}.dataset.codec") == "h264", "codec shown is not h264")
    check(js(f"{row}.querySelector('.state').textContent") == "live", "state is not live")
    # The thumbnail: a decoded image of the snapshot's size, refreshed.
    wait(lambda: js(f"{row}.querySelector('img.thumb').dataset.loaded") == "320x240", 20,
         "the thumbnail is not a 320x240 image")
    first = screenshot("thumbnail-1.png", 'tr[data-key="live/cam"] img.thumb')
    count = js(f"Number({row}.querySelector('img.thumb').dataset.count)")
    wait(lambda: js(f"Number({row}.querySelector('img.thumb').dataset.count)") >= count + 2, 20,
         "the thumbnail is not refreshed")
    second = screenshot("thumbnail-2.png", 'tr[data-key="live/cam"] img.thumb')
    check(first != second, "the thumbnail did not change over time")
    screenshot("page.png")

    # The event button: a clip is recorded, finalized and playable.
    js(f"{row}.querySelector('button.event').click()")

    def finalized():
        with urllib.request.urlopen(base + "/v1/events") as r:
            events = json.load(r)["events"]
        done = [e for e in events if e["label"] == "button" and e["state"] == "finalized"]
        return done[0] if done else None

    event = wait(finalized, 30, "the button's event clip was not finalized")
    if event:
        probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                                "-of", "csv=p=0", event["file"]], capture_output=True, text=True)
        check(probe.returncode == 0 and float(probe.stdout.strip() or 0) > 5,
              f"the clip {event['file']} is not playable or too short: {probe.stdout}{probe.stderr}")
        wait(lambda: js(f"!!document.querySelector('#events tr[data-id=\"{event['id']}\"]"
                        "[data-state=\"finalized\"]')"), 10, "the page does not list the clip")
    screenshot("page-after-event.png")
finally:
    if browser:
        browser.kill()
        browser.wait()
    arcly.send_signal(signal.SIGINT)
    try:
        arcly.wait(30)
    except subprocess.TimeoutExpired:
        arcly.kill()
    if failures:
        print(open(log_path).read()[-3000:])
    shutil.rmtree(work, ignore_errors=True)

print("screenshots in", ARTIFACTS)
sys.exit(1 if failures else 0)
