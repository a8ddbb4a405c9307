"""The OTA exchange's bytes on the hub's side (docs/ota.md, "Offer and
transfer"; the device's side is firmware/anju/ota/transfer.py).

Pure: frames in, decoded values or a rejection reason out; answers out as
bytes. Device frames use the common frame layout (docs/protocol.md section 1)
on `anju/<site>/<device>/ota/up`, with the types below; every value is range
checked, a frame outside the ranges is refused as `bad_body`.
"""
import hashlib
import hmac
import struct

from hub.verify.frames import HEADER_LEN, MAX_BODY, MAX_LEN, MIN_LEN, TAG_LEN, VERSION

T_FW_REPORT = 0x02
T_CHUNK_REQ = 0x03
CHUNK = 2048  # the most one chunk carries (the device client's packet limit is 4,096 B)
ID_LEN = 8
STATUSES = ("idle", "fetching", "installed", "battery_low", "refused_signature", "refused_hash",
            "refused_version", "refused_truncated", "refused_other")
FAILURES = ("other", "crashed", "reset", "not_confirmed", "watchdog")
MAX_FAILURES = 4


class Rejected(Exception):
    """A frame the hub does not take; `reason` is one of docs/protocol.md's."""

    def __init__(self, reason, detail=""):
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail


def release_id(blob):
    return hashlib.sha256(blob).digest()[:ID_LEN]


def verify(device_id, frame_key, data):
    """(type, counter, body) of an authentic OTA frame; Rejected otherwise."""
    size = len(data)
    if size > MAX_LEN:
        raise Rejected("oversized", "%d bytes" % size)
    if size < MIN_LEN:
        raise Rejected("truncated", "%d bytes" % size)
    version, mtype, counter, _device_time, n = struct.unpack_from(">BBIIB", data, 0)
    if version != VERSION:
        raise Rejected("bad_version", "0x%02x" % version)
    if n > MAX_BODY or size != HEADER_LEN + n + TAG_LEN:
        raise Rejected("truncated", "length field %d, %d bytes" % (n, size))
    end = HEADER_LEN + n
    expect = hmac.new(frame_key, device_id.encode() + b"\x00" + data[:end],
                      hashlib.sha256).digest()[:TAG_LEN]
    if not hmac.compare_digest(expect, data[end:]):
        raise Rejected("bad_tag")
    if counter == 0:
        raise Rejected("bad_body", "counter 0")
    if mtype not in (T_FW_REPORT, T_CHUNK_REQ):
        raise Rejected("unknown_type", "0x%02x" % mtype)
    return mtype, counter, bytes(data[HEADER_LEN:end])


def _version(b, at):
    return "%d.%d.%d" % struct.unpack_from(">HHH", b, at)


def decode_report(body):
    """FW_REPORT: {"version", "slot", "trial", "status", "percent", "failures"}."""
    if len(body) < 11 or (len(body) - 11) % 7:
        raise Rejected("bad_body", "fw_report with %d body bytes" % len(body))
    slot, flags, status, percent, count = struct.unpack_from(">BBBBB", body, 6)
    if (slot > 1 or flags & ~1 or status >= len(STATUSES) or percent > 100
            or count > MAX_FAILURES or len(body) != 11 + 7 * count):
        raise Rejected("bad_body", "fw_report value out of range")
    failures = []
    for i in range(count):
        at = 11 + 7 * i
        code = body[at + 6]
        if code >= len(FAILURES):
            raise Rejected("bad_body", "fw_report failure reason %d" % code)
        failures.append({"version": _version(body, at), "reason": FAILURES[code]})
    return {"version": _version(body, 0), "slot": "ab"[slot], "trial": bool(flags & 1),
            "status": STATUSES[status], "percent": percent, "failures": failures}


def decode_chunk_request(body):
    """CHUNK_REQ: (release id, file index, offset, length)."""
    if len(body) != ID_LEN + 8:
        raise Rejected("bad_body", "chunk_req with %d body bytes" % len(body))
    index, offset, length = struct.unpack_from(">HIH", body, ID_LEN)
    if not 0 < length <= CHUNK:
        raise Rejected("bad_body", "chunk_req length %d" % length)
    return bytes(body[:ID_LEN]), index, offset, length


def ack(frame_key, device_id, counter):
    tag = hmac.new(frame_key, b"ota\x00" + device_id.encode() + b"\x00A" +
                   struct.pack(">I", counter), hashlib.sha256).digest()[:TAG_LEN]
    return b"A" + struct.pack(">I", counter) + tag


def offer(blob):
    return b"O" + blob


NONE = b"N"


def chunk(rid, index, offset, data):
    return b"D" + rid + struct.pack(">HI", index, offset) + data


def error(rid, text):
    return b"E" + rid + text.encode()[:200]
