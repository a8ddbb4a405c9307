"""Hub -> device commands (docs/protocol.md, "Hub commands").

Same layout as a device frame (version, type, counter, device time, body,
16-byte tag), but the tag is bound to the direction: HMAC-SHA256 over
"cmd" 0x00 device_id 0x00 header+body with the device's frame_key, so a frame
the device itself sent can never be reflected back to it as a command. The
counter is the hub's, strictly increasing per device; the device keeps the
last one it accepted and rejects anything not above it (replay).

Pure; never logs the key.
"""
import struct

from anju import frame

DOMAIN = b"cmd\x00"

T_INTERCONNECT = 0x38
BODY_LEN = {T_INTERCONNECT: 2}

SILENCE = 0
SOUND = 1


def tag(frame_key, device_id, signed):
    return frame.hmac_sha256(frame_key, DOMAIN, device_id, b"\x00", signed)[:frame.TAG_LEN]


def encode(frame_key, device_id, mtype, counter, device_time, body):
    n = len(body)
    if counter <= 0 or counter > 0xFFFFFFFF:
        raise ValueError("counter out of range")
    buf = bytearray(frame.HEADER_LEN + n + frame.TAG_LEN)
    struct.pack_into(">BBIIB", buf, 0, frame.VERSION, mtype, counter, device_time & 0xFFFFFFFF, n)
    buf[frame.HEADER_LEN:frame.HEADER_LEN + n] = body
    buf[frame.HEADER_LEN + n:] = tag(frame_key, device_id, bytes(buf[:frame.HEADER_LEN + n]))
    return bytes(buf)


def interconnect_body(sound, scope=0):
    return bytes((SOUND if sound else SILENCE, scope))


def verify(frame_key, device_id, data, last_counter):
    """(type, counter, body) of a fresh, authentic command; FrameError otherwise."""
    mtype, counter, _, body = frame.header(data)
    end = frame.HEADER_LEN + len(body)
    if not frame.equal_ct(tag(frame_key, device_id, bytes(data[:end])), data[end:]):
        raise frame.FrameError("bad_tag", "command tag does not verify")
    if mtype not in BODY_LEN:
        raise frame.FrameError("unknown_type", "command 0x%02x" % mtype)
    if len(body) != BODY_LEN[mtype] or body[0] > 1:
        raise frame.FrameError("bad_body", "command body")
    if counter <= last_counter:
        raise frame.FrameError("replayed", "command counter %d <= %d" % (counter, last_counter))
    return mtype, counter, body
