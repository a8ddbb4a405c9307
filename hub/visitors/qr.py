"""The gate reader's QR token: signed by the hub, checked by the hub
(docs/visitors.md, "QR token"). Pure.

    body  = u8 version (1) | 16 bytes pass id | u32be valid_from | u32be valid_until
            | u8 flags (bit 0: one-time)
    mac   = HMAC-SHA256(qr_key, "anju-visitor-qr" 0x00 site_id 0x00 body)[:16]
    token = "AV1" + base32(body | mac), no padding          71 characters

`qr_key` is derived from the hub's KEK (hub/visitors/pii.py). Base32 is
upper case letters and digits, so the token fits a QR code's alphanumeric
mode (a version 4 code at level M). The token only proves that the hub made
it for that pass and window; whether it opens now (not revoked, entrance
covered, one-time not spent) is the hub's decision over its store.
"""
import base64
import hmac
import hashlib
import struct

PREFIX = "AV1"
VERSION = 1
_BODY = struct.Struct(">B16sIIB")
MAC_LEN = 16


class QrInvalid(ValueError):
    """Not a token this hub made (the reason is for the log, never the reader)."""


def _mac(qr_key, site_id, body):
    msg = b"anju-visitor-qr\x00" + site_id.encode() + b"\x00" + body
    return hmac.new(qr_key, msg, hashlib.sha256).digest()[:MAC_LEN]


def make(qr_key, site_id, pass_id, valid_from, valid_until, one_time):
    body = _BODY.pack(VERSION, bytes.fromhex(pass_id), int(valid_from), int(valid_until),
                      1 if one_time else 0)
    raw = body + _mac(qr_key, site_id, body)
    return PREFIX + base64.b32encode(raw).decode().rstrip("=")


def read(qr_key, site_id, token):
    """(pass_id hex, valid_from, valid_until, one_time) of a genuine token."""
    if not isinstance(token, str) or not token.startswith(PREFIX) or len(token) > 128:
        raise QrInvalid("not an anju visitor token")
    text = token[len(PREFIX):]
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except ValueError as exc:
        raise QrInvalid("not base32") from exc
    if len(raw) != _BODY.size + MAC_LEN:
        raise QrInvalid("wrong length")
    if base64.b32encode(raw).decode().rstrip("=") != text:
        raise QrInvalid("not the canonical encoding")  # one token, one spelling
    body, mac = raw[:_BODY.size], raw[_BODY.size:]
    if not hmac.compare_digest(mac, _mac(qr_key, site_id, body)):
        raise QrInvalid("signature does not match")
    version, pid, start, end, flags = _BODY.unpack(body)
    if version != VERSION:
        raise QrInvalid("unknown version %d" % version)
    return pid.hex(), start, end, bool(flags & 1)
