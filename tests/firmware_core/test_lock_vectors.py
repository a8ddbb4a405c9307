"""tests/vectors/lock_wire.json, the smart-lock vectors the hub side is checked
against: the file is what the firmware's encoders produce, and its tags,
digests and wrapped key are right by CPython's hmac/hashlib and the
`cryptography` package, with the bodies parsed here from the doc's layouts,
independently of anju.lock.wire.

CPython only (it reads a file outside the firmware core and uses
`cryptography`); the MicroPython harness leaves it out (mp_harness.NOT_CORE_TESTS).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from anju.frame import FrameError
from anju.lock import wire
from tests.firmware_core import lock_vectors

V = json.loads(lock_vectors.VECTORS.read_text(encoding="utf-8"))
KEY = bytes.fromhex(V["frame_key"])
DEV = V["device_id"].encode()

ID_CHARS = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:._-")


def _hmac(key: bytes, *parts: bytes) -> bytes:
    return hmac.new(key, b"".join(parts), hashlib.sha256).digest()


def _id(field: bytes) -> str | None:
    assert len(field) == 17
    n = field[0]
    assert n <= 16 and set(field[1:1 + n]) <= ID_CHARS and not any(field[1 + n:])
    return field[1:1 + n].decode() if n else None


def _split(frame_hex: str) -> tuple[int, int, int, bytes, bytes, bytes]:
    data = bytes.fromhex(frame_hex)
    version, mtype, counter, device_time, n = struct.unpack_from(">BBIIB", data, 0)
    assert version == 0xA1 and len(data) == 11 + n + 16
    return mtype, counter, device_time, data[11:11 + n], data[:11 + n], data[11 + n:]


def test_the_file_is_what_the_encoders_make():
    assert lock_vectors.render() == lock_vectors.VECTORS.read_text(encoding="utf-8"), \
        "run: .venv/bin/python -m tests.firmware_core.lock_vectors"


def test_keys_and_digests_by_the_standard_library():
    ck = _hmac(KEY, b"anju-lock-cred")
    assert V["cred_key"] == ck.hex()
    assert V["wrap_key"] == _hmac(KEY, b"anju-lock-wrap")[:16].hex()
    for c in V["card_digests"]:
        assert c["digest"] == _hmac(ck, b"card\x00", bytes.fromhex(c["uid"]))[:16].hex()
    for p in V["pin_digests"]:
        assert p["digest"] == _hmac(ck, b"pin\x00", p["digits"].encode())[:16].hex()


def test_wrapped_phone_key_by_cryptography():
    wk = bytes.fromhex(V["wrap_key"])
    for p in V["phone_keys"]:
        enc = Cipher(algorithms.AES(wk), modes.ECB()).encryptor()
        assert (enc.update(bytes.fromhex(p["key"])) + enc.finalize()).hex() == p["wrapped"]
        assert wire.unwrap_phone_key(wk, bytes.fromhex(p["wrapped"])).hex() == p["key"]


def _parse_command(mtype: int, body: bytes) -> dict:
    """The doc's command layouts, read with struct alone."""
    if mtype == 0x2D:
        offset, answers = struct.unpack(">hI", body)
        assert answers > 0
        return {"utc_offset_min": offset, "answers": answers}
    (valid_s,) = struct.unpack_from(">H", body, 0)
    rest = body[2:]
    if mtype == 0x28:
        return {"valid_s": valid_s, "action": rest[0], "method": rest[1], "who": _id(rest[2:19])}
    if mtype == 0x29:
        names = ("user", "type", "week_days", "start_min", "end_min", "from", "until", "expire_min")
        return {"valid_s": valid_s, **dict(zip(names, struct.unpack(">HBBHHIIH", rest)))}
    if mtype == 0x2A:
        return {"valid_s": valid_s, "user": struct.unpack(">H", rest)[0]}
    if mtype == 0x2B:
        return {"valid_s": valid_s, "user": struct.unpack_from(">H", rest, 0)[0], "kind": rest[2],
                "credential": _id(rest[3:20]), "data": rest[20:36].hex()}
    if mtype == 0x2C:
        return {"valid_s": valid_s, "credential": _id(rest)}
    if mtype == 0x2F:
        start, d, ot, check = struct.unpack(">IBBH", rest)
        assert d < 32 and ot <= 1 and check < 54253
        return {"valid_s": valid_s, "start_slot": start, "duration_index": d, "one_time": ot,
                "check": check}
    if mtype == 0x2E:
        relock, limit, lockout, ajar, flags = struct.unpack(">HBHHB", rest)
        assert flags == 0
        return {"valid_s": valid_s, "relock_s": relock, "wrong_limit": limit,
                "lockout_s": lockout, "ajar_s": ajar}
    raise AssertionError(f"unknown command type 0x{mtype:02x}")


SIZES = {0x28: 21, 0x29: 20, 0x2A: 4, 0x2B: 38, 0x2C: 19, 0x2D: 6, 0x2E: 10, 0x2F: 10,
         0x20: 10, 0x21: 27, 0x22: 1, 0x23: 4, 0x24: 25, 0x25: 21}


def test_commands_tags_and_fields_independently():
    assert {c["type"] for c in V["commands"]} == set(range(0x28, 0x30))
    for c in V["commands"]:
        mtype, counter, device_time, body, signed, tag = _split(c["frame"])
        assert (mtype, counter, device_time) == (c["type"], c["counter"], c["device_time"])
        assert body.hex() == c["body"] and len(body) == SIZES[mtype]
        assert tag == _hmac(KEY, b"cmd\x00", DEV, b"\x00", signed)[:16], c["name"]
        fields = _parse_command(mtype, body)
        if "who" in fields and fields["who"] is None:
            fields["who"] = ""
        assert fields == c["fields"], c["name"]


def test_commands_verify_on_the_lock():
    for c in V["commands"]:
        cmd = wire.verify_command(KEY, DEV, bytes.fromhex(c["frame"]), c["counter"] - 1)
        assert (cmd.type, cmd.counter, cmd.time) == (c["type"], c["counter"], c["device_time"])
        if c["type"] != 0x2D:
            assert cmd.valid_s == c["fields"]["valid_s"]


@pytest.mark.parametrize("case", V["refused_commands"], ids=lambda c: c["why"])
def test_refused_commands(case: dict) -> None:
    with pytest.raises(FrameError) as info:
        wire.verify_command(KEY, DEV, bytes.fromhex(case["frame"]), case["last_counter"])
    assert info.value.reason == case["reason"]


def _parse_device(mtype: int, body: bytes) -> dict:
    if mtype == 0x20:
        names = ("bolt", "door", "flags", "battery_pct", "mv", "queued", "ops_left")
        return dict(zip(names, struct.unpack(">BBBBHHH", body)))
    if mtype == 0x21:
        names = ("method", "outcome", "reason", "flags", "user", "seq")
        return {**dict(zip(names, struct.unpack_from(">BBBBHI", body, 0))), "credential": _id(body[10:])}
    if mtype == 0x22:
        return {"cause": body[0]}
    if mtype == 0x23:
        return dict(zip(("kind", "active", "method", "count"), body))
    if mtype == 0x24:
        names = ("counter", "type", "result", "user")
        return {**dict(zip(names, struct.unpack_from(">IBBH", body, 0))), "credential": _id(body[8:])}
    if mtype == 0x25:
        names = ("op", "kind", "user")
        return {**dict(zip(names, struct.unpack_from(">BBH", body, 0))), "credential": _id(body[4:])}
    raise AssertionError(f"unknown device type 0x{mtype:02x}")


def test_device_frames_tags_and_fields_independently():
    assert {d["type"] for d in V["device_frames"]} == set(range(0x20, 0x26))
    for d in V["device_frames"]:
        mtype, counter, device_time, body, signed, tag = _split(d["frame"])
        assert (mtype, counter, device_time) == (d["type"], d["counter"], d["device_time"])
        assert body.hex() == d["body"] and len(body) == SIZES[mtype]
        assert tag == _hmac(KEY, DEV, b"\x00", signed)[:16], d["name"]
        assert _parse_device(mtype, body) == d["fields"], d["name"]
