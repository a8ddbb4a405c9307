"""Verification of device frames arriving over MQTT (docs/protocol.md §1).

Pure: bytes and the device's key in, a `Reading` or a `Rejection` out. Which
counters are fresh is decided by the store, which keeps the last accepted
counter per device in SQLite. Keys never appear in a result or a message.

This module holds the frame format and the common and door-sensor message
types; the lock's and the smoke sensor's types register themselves from
`frames_lock` and `frames_smoke`, which `hub.verify` imports, so every type
is known once the package is imported.
"""
import hashlib
import hmac
import struct

VERSION = 0xA1
HEADER_LEN = 11
TAG_LEN = 16
MAX_BODY = 64
MIN_LEN = HEADER_LEN + TAG_LEN
MAX_LEN = HEADER_LEN + MAX_BODY + TAG_LEN

# Message types by number and body length by name. Device families add theirs
# with `register` (docs/protocol.md keeps the numbering: 0x01-0x1F common and
# door sensor, 0x20-0x2F smart lock, 0x30-0x3F smoke sensor).
TYPES = {0x01: "boot", 0x10: "door", 0x11: "tamper", 0x12: "battery", 0x13: "heartbeat"}
BODY_LEN = {"boot": 3, "door": 1, "tamper": 1, "battery": 3, "heartbeat": 6}
_DECODERS = {}


def register(number, name, body_len, decode):
    """Add a message type: `decode(body) -> dict of values, or None if out of range`."""
    if number in TYPES and TYPES[number] != name:
        raise ValueError("message type 0x%02x is already %s" % (number, TYPES[number]))
    TYPES[number] = name
    BODY_LEN[name] = body_len
    _DECODERS[name] = decode


class Reading:
    """A verified event from a device, with its values decoded."""

    __slots__ = ("device_id", "counter", "type", "values", "device_time", "transport")

    def __init__(self, device_id, counter, type, values, device_time, transport):
        self.device_id = device_id
        self.counter = counter
        self.type = type
        self.values = values
        self.device_time = device_time
        self.transport = transport

    def __repr__(self):
        return "Reading(%s #%d %s %r)" % (self.device_id, self.counter, self.type, self.values)


class Rejection:
    __slots__ = ("device_id", "reason", "detail")

    def __init__(self, device_id, reason, detail=""):
        self.device_id = device_id
        self.reason = reason
        self.detail = detail

    def __repr__(self):
        return "Rejection(%s: %s %s)" % (self.device_id, self.reason, self.detail)


def _values(kind, body):
    if kind in _DECODERS:
        return _DECODERS[kind](body)
    if kind == "door":
        if body[0] > 1:
            return None
        return {"open": body[0] == 1}
    if kind == "tamper":
        if body[0] > 1:
            return None
        return {"case_open": body[0] == 1}
    if kind == "battery":
        pct, mv = struct.unpack(">BH", body)
        return None if pct > 100 else {"percent": pct, "millivolts": mv}
    if kind == "heartbeat":
        flags, pct, mv, queued = struct.unpack(">BBHH", body)
        if pct > 100:
            return None
        return {"open": bool(flags & 1), "case_open": bool(flags & 2),
                "battery_low": bool(flags & 4), "percent": pct, "millivolts": mv,
                "queued": queued}
    if kind == "boot":
        cause, major, minor = struct.unpack(">BBB", body)
        return {"reset_cause": cause, "firmware": "%d.%d" % (major, minor)}
    return None


def verify(device_id, frame_key, data):
    """Check shape and tag of `data` from `device_id`; Reading or Rejection."""
    size = len(data)
    if size > MAX_LEN:
        return Rejection(device_id, "oversized", "%d bytes" % size)
    if size < MIN_LEN:
        return Rejection(device_id, "truncated", "%d bytes" % size)
    version, mtype, counter, device_time, n = struct.unpack_from(">BBIIB", data, 0)
    if version != VERSION:
        return Rejection(device_id, "bad_version", "0x%02x" % version)
    if n > MAX_BODY:
        return Rejection(device_id, "oversized", "body length %d" % n)
    if size != HEADER_LEN + n + TAG_LEN:
        return Rejection(device_id, "truncated", "length field %d, %d bytes" % (n, size))
    end = HEADER_LEN + n
    expect = hmac.new(frame_key, device_id.encode() + b"\x00" + data[:end],
                      hashlib.sha256).digest()[:TAG_LEN]
    if not hmac.compare_digest(expect, data[end:]):
        return Rejection(device_id, "bad_tag")
    kind = TYPES.get(mtype)
    if kind is None:
        return Rejection(device_id, "unknown_type", "0x%02x" % mtype)
    body = data[HEADER_LEN:end]
    if len(body) != BODY_LEN[kind] or counter == 0:
        return Rejection(device_id, "bad_body", "%s with %d body bytes" % (kind, len(body)))
    values = _values(kind, body)
    if values is None:
        return Rejection(device_id, "bad_body", "%s value out of range" % kind)
    return Reading(device_id, counter, kind, values, device_time, "mqtt")
