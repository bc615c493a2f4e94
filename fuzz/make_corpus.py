#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/.

Run from anywhere: python3 fuzz/make_corpus.py. The seeds are small, valid (or
nearly valid) inputs that get the fuzzer past the first checks: a whole RTMP
publish session, AMF0 commands, stream keys, streamids and URLs. Crash inputs
found later are added next to them by hand (see docs/fuzzing.md)."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def amf(*values):
    out = b""
    for v in values:
        if v is None:
            out += b"\x05"
        elif isinstance(v, bool):
            out += b"\x01" + (b"\x01" if v else b"\x00")
        elif isinstance(v, (int, float)):
            out += b"\x00" + struct.pack(">d", float(v))
        elif isinstance(v, str):
            b = v.encode()
            out += b"\x02" + struct.pack(">H", len(b)) + b
        elif isinstance(v, dict):
            out += b"\x03"
            for k, x in v.items():
                kb = k.encode()
                out += struct.pack(">H", len(kb)) + kb + amf(x)
            out += b"\x00\x00\x09"
        elif isinstance(v, list):
            out += b"\x0a" + struct.pack(">I", len(v)) + amf(*v)
    return out


def chunks(csid, mtype, sid, ts, payload, size=128):
    ext = ts >= 0xFFFFFF
    t = 0xFFFFFF if ext else ts
    out = bytes([csid]) + t.to_bytes(3, "big") + len(payload).to_bytes(3, "big") + bytes([mtype])
    out += struct.pack("<I", sid) + (struct.pack(">I", ts) if ext else b"")
    for i in range(0, max(len(payload), 1), size):
        if i:
            out += bytes([0xC0 | csid]) + (struct.pack(">I", ts) if ext else b"")
        out += payload[i:i + size]
    return out


def publish_session(name="cam", with_token=False):
    app = "live?token=s3cret" if with_token else "live"
    s = chunks(2, 5, 0, 0, struct.pack(">I", 2500000))
    s += chunks(2, 1, 0, 0, struct.pack(">I", 4096))
    big = 4096
    s += chunks(3, 20, 0, 0, amf("connect", 1, {"app": app, "type": "nonprivate",
                                                 "flashVer": "FMLE/3.0", "tcUrl": "rtmp://127.0.0.1:1935/" + app}), big)
    s += chunks(3, 20, 0, 0, amf("releaseStream", 2, None, name), big)
    s += chunks(3, 20, 0, 0, amf("FCPublish", 3, None, name), big)
    s += chunks(3, 20, 0, 0, amf("createStream", 4, None), big)
    s += chunks(4, 20, 1, 0, amf("publish", 5, None, name, "live"), big)
    s += chunks(4, 18, 1, 0, amf("@setDataFrame", "onMetaData",
                                 {"width": 320, "height": 240, "videocodecid": 7, "audiocodecid": 10}), big)
    avcc = bytes.fromhex("01640014ffe1001967640014acd94141fb0110000003001000000303c0f1429960010006"
                         "68ebe3cb22c0")
    s += chunks(6, 9, 1, 0, bytes.fromhex("1700000000") + avcc, big)
    s += chunks(4, 8, 1, 0, bytes.fromhex("af00") + bytes.fromhex("1210"), big)
    s += chunks(6, 9, 1, 0, bytes.fromhex("1701000000") + struct.pack(">I", 5) + b"\x65\x88\x84\x00\x10", big)
    s += chunks(4, 8, 1, 23, bytes.fromhex("af01") + b"\x21\x00\x49\x90", big)
    s += bytes.fromhex("46 000021 000009 09") + bytes.fromhex("2701000042") + struct.pack(">I", 0)  # fmt 1
    s += bytes.fromhex("86 000021") + bytes.fromhex("2701000042") + struct.pack(">I", 0)  # fmt 2
    s += bytes.fromhex("c6") + bytes.fromhex("2701000042") + struct.pack(">I", 0)  # fmt 3
    s += chunks(7, 9, 1, 0x01000000, bytes.fromhex("91") + b"hvc1" + b"\x00\x00\x21" + bytes(300), big)
    s += chunks(2, 2, 0, 0, struct.pack(">I", 9))  # abort
    s += chunks(2, 4, 0, 0, bytes.fromhex("0006") + struct.pack(">I", 77))  # ping
    s += chunks(3, 20, 0, 0, amf("FCUnpublish", 6, None, name), big)
    s += chunks(3, 20, 0, 0, amf("deleteStream", 7, None, 1), big)
    return s


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    # rtmp_session: mode byte (bit 0 = prepend the handshake), then the stream.
    write("rtmp_session", "publish", b"\x01" + publish_session())
    write("rtmp_session", "publish-token-small-reads", b"\x03" + publish_session("cam?token=s3cret", True))
    hs = b"\x03" + bytes(1536) + bytes(1536)
    write("rtmp_session", "handshake-then-publish", b"\xfe" + hs + publish_session())
    write("rtmp_session", "bad-version", b"\x00\x06" + bytes(1536))
    write("rtmp_session", "extended-timestamp",
          b"\x01" + chunks(3, 20, 0, 0x01000000, amf("connect", 1, {"app": "live"}) + bytes(200)))
    write("rtmp_session", "long-csid", b"\x01" + bytes.fromhex("01 0001 000000 000004 05 00000000") + struct.pack(">I", 10))

    write("amf0", "connect", amf("connect", 1, {"app": "live", "tcUrl": "rtmp://h/live", "fpad": False}))
    write("amf0", "result", amf("_result", 1, {"fmsVer": "FMS/3,0,1,123", "capabilities": 31}, None))
    write("amf0", "metadata", bytes.fromhex("08 00000002") + b"\x00\x05width" + amf(640) +
          b"\x00\x06height" + amf(480) + b"\x00\x00\x09")
    write("amf0", "arrays", amf([1, "a", [True, None]]) + bytes.fromhex("0b 0000000000000000 0000") +
          bytes.fromhex("0c 00000003") + b"abc" + bytes.fromhex("10 0001") + b"C" + amf({"x": 1})[1:])

    for i, k in enumerate(["live/cam", "app/stream-1_2.x", "live/", "/cam", "a/b/c", "x" * 70 + "/y", "live/c m"]):
        write("stream_key", "key%d" % i, k.encode())

    for i, s in enumerate(["#!::r=live/cam,m=publish", "#!::r=live/cam,m=request,u=bob,token=t",
                           "live/cam", "#!::", "#!::r", "#!::=x", "live/*\nlive/cam", "c?m*\ncams/door",
                           "*a*b*c\naxbxc", ""]):
        write("stream_id", "id%d" % i, s.encode())

    for i, u in enumerate(["rtsp://user:pass@cam.local:554/stream1?x=1",
                           "rtsps://[::1]:8554/a", "srt://:9000", "srt://host:9000?streamid=#!::r=live/x",
                           "rtsp://a%40b:p%3Aw@h/p", "rtsp://h:99999/", "nourl", "rtsp://@/"]):
        write("url", "url%d" % i, u.encode())


if __name__ == "__main__":
    main()
