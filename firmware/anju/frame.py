"""Authenticated device frames (docs/protocol.md section 1).

Encodes and verifies the binary frame every Wi-Fi device publishes: version,
type, counter, device time, body and a truncated HMAC-SHA256 tag bound to the
device id. Pure and allocation-conscious; runs under MicroPython and CPython.
It never decides whether a counter is fresh: that is the caller's state.
"""
import hashlib
import struct

from anju import ct

VERSION = 0xA1
HEADER_LEN = 11
TAG_LEN = 16
MAX_BODY = 64
MIN_LEN = HEADER_LEN + TAG_LEN
MAX_LEN = HEADER_LEN + MAX_BODY + TAG_LEN

T_BOOT = 0x01
T_DOOR = 0x10
T_TAMPER = 0x11
T_BATTERY = 0x12
T_HEARTBEAT = 0x13

# body length per type; a frame whose body differs is malformed
BODY_LEN = {T_BOOT: 3, T_DOOR: 1, T_TAMPER: 1, T_BATTERY: 3, T_HEARTBEAT: 6}

HB_OPEN = 0x01
HB_TAMPER = 0x02
HB_BATTERY_LOW = 0x04

_IPAD = bytes(0x36 for _ in range(64))


class FrameError(ValueError):
    """A frame that must not be accepted; `reason` is the counted reason."""

    def __init__(self, reason, message=""):
        super().__init__(reason, message)
        self.reason = reason


def _xor(key, pad):
    out = bytearray(64)
    for i in range(64):
        out[i] = key[i] ^ pad
    return out


def hmac_sha256(key, *parts):
    """HMAC-SHA256 (RFC 2104) over the concatenation of `parts`."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = bytes(key) + bytes(64 - len(key))
    inner = hashlib.sha256(_xor(key, 0x36))
    for p in parts:
        inner.update(p)
    outer = hashlib.sha256(_xor(key, 0x5C))
    outer.update(inner.digest())
    return outer.digest()


def tag(frame_key, device_id, signed):
    """The 16-byte tag of `signed` (header and body) for `device_id` (bytes)."""
    return hmac_sha256(frame_key, device_id, b"\x00", signed)[:TAG_LEN]


def encode(frame_key, device_id, mtype, counter, device_time, body):
    """Build a frame. `device_id` is bytes; raises ValueError on bad arguments."""
    n = len(body)
    if n > MAX_BODY:
        raise ValueError("body too long")
    if counter <= 0 or counter > 0xFFFFFFFF:
        raise ValueError("counter out of range")
    buf = bytearray(HEADER_LEN + n + TAG_LEN)
    struct.pack_into(">BBIIB", buf, 0, VERSION, mtype, counter, device_time & 0xFFFFFFFF, n)
    buf[HEADER_LEN:HEADER_LEN + n] = body
    signed = memoryview(buf)[:HEADER_LEN + n]
    buf[HEADER_LEN + n:] = tag(frame_key, device_id, bytes(signed))
    return bytes(buf)


equal_ct = ct.equal


def header(data):
    """Split a frame without verifying it: (type, counter, device_time, body).

    Raises FrameError with the reason for truncated, oversized and
    wrong-version frames.
    """
    size = len(data)
    if size > MAX_LEN:
        raise FrameError("oversized", "frame of %d bytes" % size)
    if size < MIN_LEN:
        raise FrameError("truncated", "frame of %d bytes" % size)
    version, mtype, counter, device_time, n = struct.unpack_from(">BBIIB", data, 0)
    if version != VERSION:
        raise FrameError("bad_version", "version 0x%02x" % version)
    if n > MAX_BODY:
        raise FrameError("oversized", "body length %d" % n)
    if size != HEADER_LEN + n + TAG_LEN:
        raise FrameError("truncated", "length field %d, frame of %d bytes" % (n, size))
    return mtype, counter, device_time, bytes(data[HEADER_LEN:HEADER_LEN + n])


def verify(frame_key, device_id, data):
    """Verify a frame's tag and shape; return (type, counter, device_time, body)."""
    mtype, counter, device_time, body = header(data)
    end = HEADER_LEN + len(body)
    if not equal_ct(tag(frame_key, device_id, bytes(data[:end])), data[end:]):
        raise FrameError("bad_tag", "tag does not verify")
    if mtype not in BODY_LEN:
        raise FrameError("unknown_type", "type 0x%02x" % mtype)
    if len(body) != BODY_LEN[mtype]:
        raise FrameError("bad_body", "type 0x%02x with %d body bytes" % (mtype, len(body)))
    if counter == 0:
        raise FrameError("bad_body", "counter 0")
    return mtype, counter, device_time, body


def door_body(is_open):
    return b"\x01" if is_open else b"\x00"


def battery_body(percent, millivolts):
    return struct.pack(">BH", percent, millivolts)


def heartbeat_body(flags, percent, millivolts, queued):
    return struct.pack(">BBHH", flags, percent, millivolts, min(queued, 0xFFFF))


def boot_body(reset_cause, major, minor):
    return struct.pack(">BBB", reset_cause, major, minor)
