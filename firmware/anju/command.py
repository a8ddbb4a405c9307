"""Hub -> device commands (docs/protocol.md, "Hub commands").

Same layout as a device frame (version, type, counter, device time, body,
16-byte tag), but the tag is bound to the direction: HMAC-SHA256 over
"cmd" 0x00 device_id 0x00 header+body with the device's frame_key, so a frame
the device itself sent can never be reflected back to it as a command. The
counter is the hub's, strictly increasing per device; the device keeps the
last one it accepted and rejects anything not above it (replay).

Each device family passes its own table of body checkers to `check`: type ->
(body length, checker(body) -> decoded body), the checker raising
FrameError("bad_body") for a value out of range. `verify` is the smoke
sensor's view with the table below (INTERCONNECT); the smart lock's table is
in `anju.lock.wire`.

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


def _interconnect(body):
    if body[0] > 1:
        raise frame.FrameError("bad_body", "command body")
    return body


# type -> (body length, checker)
CHECKERS = {T_INTERCONNECT: (BODY_LEN[T_INTERCONNECT], _interconnect)}


def check(frame_key, device_id, data, last_counter, checkers):
    """(type, counter, device_time, decoded body) of a fresh, authentic command.

    Raises FrameError: the frame's shape, then `bad_tag`, `unknown_type` (not in
    `checkers`), `bad_body` (wrong length or the checker refused it), `replayed`
    (counter not above `last_counter`), in that order.
    """
    mtype, counter, device_time, body = frame.header(data)
    end = frame.HEADER_LEN + len(body)
    if not frame.equal_ct(tag(frame_key, device_id, bytes(data[:end])), data[end:]):
        raise frame.FrameError("bad_tag", "command tag does not verify")
    spec = checkers.get(mtype)
    if spec is None:
        raise frame.FrameError("unknown_type", "command 0x%02x" % mtype)
    if len(body) != spec[0]:
        raise frame.FrameError("bad_body", "command body")
    decoded = spec[1](body)
    if counter <= last_counter:
        raise frame.FrameError("replayed", "command counter %d <= %d" % (counter, last_counter))
    return mtype, counter, device_time, decoded


def verify(frame_key, device_id, data, last_counter):
    """(type, counter, body) of a fresh, authentic smoke-sensor command."""
    mtype, counter, _, body = check(frame_key, device_id, data, last_counter, CHECKERS)
    return mtype, counter, body
