"""The hub's frame verifier (hub.verify.frames) against frames from the device encoder
(anju.frame): every type decodes to the right Reading, every bad frame gets
the same rejection reason on both sides."""

from __future__ import annotations

import struct

import pytest

from anju import frame
from hub.verify import frames

KEY = bytes(range(100, 132))
DEV = "door-101"


def encode(mtype: int, body: bytes, counter: int = 42, device_time: int = 812345678) -> bytes:
    return frame.encode(KEY, DEV.encode(), mtype, counter, device_time, body)


def signed(header_and_body: bytes) -> bytes:
    return header_and_body + frame.tag(KEY, DEV.encode(), header_and_body)


def hdr(mtype: int, counter: int, n: int, version: int = frame.VERSION, device_time: int = 0) -> bytes:
    return struct.pack(">BBIIB", version, mtype, counter, device_time, n)


def flipped(data: bytes, pos: int) -> bytes:
    out = bytearray(data)
    out[pos] ^= 0x40
    return bytes(out)


GOOD_DOOR = encode(frame.T_DOOR, b"\x01")


@pytest.mark.parametrize(
    ("mtype", "body", "kind", "values"),
    [
        (frame.T_BOOT, frame.boot_body(4, 1, 12), "boot", {"reset_cause": 4, "firmware": "1.12"}),
        (frame.T_DOOR, frame.door_body(True), "door", {"open": True}),
        (frame.T_DOOR, frame.door_body(False), "door", {"open": False}),
        (frame.T_TAMPER, b"\x01", "tamper", {"case_open": True}),
        (frame.T_TAMPER, b"\x00", "tamper", {"case_open": False}),
        (frame.T_BATTERY, frame.battery_body(100, 3001), "battery", {"percent": 100, "millivolts": 3001}),
        (frame.T_BATTERY, frame.battery_body(0, 2100), "battery", {"percent": 0, "millivolts": 2100}),
        (
            frame.T_HEARTBEAT,
            frame.heartbeat_body(frame.HB_OPEN | frame.HB_BATTERY_LOW, 15, 2320, 513),
            "heartbeat",
            {"open": True, "case_open": False, "battery_low": True, "percent": 15, "millivolts": 2320,
             "queued": 513},
        ),
        (
            frame.T_HEARTBEAT,
            frame.heartbeat_body(frame.HB_TAMPER, 93, 2950, 0),
            "heartbeat",
            {"open": False, "case_open": True, "battery_low": False, "percent": 93, "millivolts": 2950,
             "queued": 0},
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_device_frame_verifies_to_reading(mtype: int, body: bytes, kind: str, values: dict) -> None:
    reading = frames.verify(DEV, KEY, encode(mtype, body, counter=0xFFFFFFFF, device_time=812345678))
    assert isinstance(reading, frames.Reading), reading
    assert reading.device_id == DEV
    assert reading.type == kind
    assert reading.values == values
    assert reading.counter == 0xFFFFFFFF
    assert reading.device_time == 812345678
    assert reading.transport == "mqtt"


def test_every_device_type_is_known_to_the_hub() -> None:
    # every type the firmware sends is known to the hub, with the same body length
    assert set(frame.BODY_LEN) <= set(frames.TYPES)
    for number, size in frame.BODY_LEN.items():
        assert frames.BODY_LEN[frames.TYPES[number]] == size, hex(number)
    # the hub also knows the smart-lock family (0x20-0x2F), whose firmware comes
    # later, and the smoke family (0x30-0x3F), whose firmware builds its bodies in
    # anju/smoke.py (cross-checked in tests/unit/test_smoke_hub.py)
    assert set(frames.TYPES) - set(frame.BODY_LEN) <= set(range(0x20, 0x40))


# Each bad frame, with the reason both the device-side and the hub-side verifier give.
BAD = [
    ("empty", b"", "truncated"),
    ("one_byte", b"\xa1", "truncated"),
    ("26_bytes", GOOD_DOOR[:26], "truncated"),
    ("last_byte_missing", GOOD_DOOR[:-1], "truncated"),
    ("length_field_bigger_than_data", signed(hdr(frame.T_DOOR, 3, 9) + b"\x01") + b"\x00", "truncated"),
    ("trailing_byte", GOOD_DOOR + b"\x00", "truncated"),
    ("92_bytes", encode(0x7E, bytes(64)) + b"\x00", "oversized"),
    ("200_bytes", bytes(200), "oversized"),
    ("length_byte_65", signed(hdr(frame.T_DOOR, 3, 65) + b"\x01"), "oversized"),
    ("length_byte_255", signed(hdr(frame.T_DOOR, 3, 255) + b"\x01"), "oversized"),
    ("version_0", signed(hdr(frame.T_DOOR, 3, 1, version=0) + b"\x01"), "bad_version"),
    ("version_a2", signed(hdr(frame.T_DOOR, 3, 1, version=0xA2) + b"\x01"), "bad_version"),
    ("flip_type", flipped(GOOD_DOOR, 1), "bad_tag"),
    ("flip_counter", flipped(GOOD_DOOR, 5), "bad_tag"),
    ("flip_device_time", flipped(GOOD_DOOR, 8), "bad_tag"),
    ("flip_body", flipped(GOOD_DOOR, 11), "bad_tag"),
    ("flip_tag_first", flipped(GOOD_DOOR, 12), "bad_tag"),
    ("flip_tag_last", flipped(GOOD_DOOR, len(GOOD_DOOR) - 1), "bad_tag"),
    ("zero_tag", GOOD_DOOR[:12] + bytes(16), "bad_tag"),
    ("unknown_type_00", signed(hdr(0x00, 3, 1) + b"\x01"), "unknown_type"),
    ("unknown_type_14", signed(hdr(0x14, 3, 1) + b"\x01"), "unknown_type"),
    ("unknown_type_ff", signed(hdr(0xFF, 3, 0)), "unknown_type"),
    ("boot_2_bytes", signed(hdr(frame.T_BOOT, 3, 2) + b"\x01\x00"), "bad_body"),
    ("door_empty", signed(hdr(frame.T_DOOR, 3, 0)), "bad_body"),
    ("door_2_bytes", signed(hdr(frame.T_DOOR, 3, 2) + b"\x01\x00"), "bad_body"),
    ("tamper_2_bytes", signed(hdr(frame.T_TAMPER, 3, 2) + b"\x01\x00"), "bad_body"),
    ("battery_4_bytes", signed(hdr(frame.T_BATTERY, 3, 4) + bytes(4)), "bad_body"),
    ("heartbeat_5_bytes", signed(hdr(frame.T_HEARTBEAT, 3, 5) + bytes(5)), "bad_body"),
    ("heartbeat_7_bytes", signed(hdr(frame.T_HEARTBEAT, 3, 7) + bytes(7)), "bad_body"),
    ("counter_0", signed(hdr(frame.T_DOOR, 0, 1) + b"\x01"), "bad_body"),
]


@pytest.mark.parametrize(("data", "reason"), [(d, r) for _, d, r in BAD], ids=[n for n, _, _ in BAD])
def test_hub_rejects_bad_frame(data: bytes, reason: str) -> None:
    result = frames.verify(DEV, KEY, data)
    assert isinstance(result, frames.Rejection), result
    assert result.reason == reason
    assert result.device_id == DEV
    assert KEY.hex() not in repr(result) and KEY.hex() not in result.detail


@pytest.mark.parametrize(("data", "reason"), [(d, r) for _, d, r in BAD], ids=[n for n, _, _ in BAD])
def test_device_verifier_agrees_with_hub(data: bytes, reason: str) -> None:
    with pytest.raises(frame.FrameError) as info:
        frame.verify(KEY, DEV.encode(), data)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("mtype", "body"),
    [
        (frame.T_DOOR, b"\x02"),
        (frame.T_DOOR, b"\xff"),
        (frame.T_TAMPER, b"\x02"),
        (frame.T_BATTERY, frame.battery_body(101, 3000)),
        (frame.T_BATTERY, frame.battery_body(255, 3000)),
        (frame.T_HEARTBEAT, frame.heartbeat_body(0, 101, 3000, 0)),
    ],
    ids=["door_2", "door_255", "tamper_2", "battery_101", "battery_255", "heartbeat_percent_101"],
)
def test_out_of_range_values_are_bad_body(mtype: int, body: bytes) -> None:
    result = frames.verify(DEV, KEY, encode(mtype, body))
    assert isinstance(result, frames.Rejection), result
    assert result.reason == "bad_body"


def test_frame_for_another_device_is_bad_tag() -> None:
    # the same bytes published on another device's topic (sharing the key) do not verify
    for other in ("door-102", "door-10", "door-1010"):
        result = frames.verify(other, KEY, GOOD_DOOR)
        assert isinstance(result, frames.Rejection) and result.reason == "bad_tag", other
    assert isinstance(frames.verify(DEV, KEY, GOOD_DOOR), frames.Reading)


def test_wrong_key_is_bad_tag() -> None:
    result = frames.verify(DEV, bytes(32), GOOD_DOOR)
    assert isinstance(result, frames.Rejection) and result.reason == "bad_tag"


def test_maximum_counter_and_largest_frame_sizes() -> None:
    boot = encode(frame.T_BOOT, frame.boot_body(1, 0, 1), counter=1)
    assert len(boot) == 30
    assert frames.verify(DEV, KEY, boot).counter == 1
    # a 91-byte frame is not oversized; it fails later on its type
    big = encode(0x7E, bytes(64))
    assert len(big) == 91
    assert frames.verify(DEV, KEY, big).reason == "unknown_type"
