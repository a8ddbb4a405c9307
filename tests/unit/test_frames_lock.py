"""The smart lock's frames (docs/smart_lock.md "Frames"): every type decodes
from bytes laid out here by hand with struct, and every value outside the
documented ranges is rejected as bad_body, through the real verifier."""

from __future__ import annotations

import struct

import pytest

from hub.verify import frames, frames_lock as fl
from simulator import forge
from tests.unit.ruleskit import key

DEV = "lock-101"


def cred(text: str = "") -> bytes:
    raw = text.encode()
    return bytes((len(raw),)) + raw.ljust(16, b"\x00")


def verify(mtype: int, body: bytes):
    return frames.verify(DEV, key(DEV), forge.make_frame(key(DEV), DEV, mtype, 5, body))


def access(method=1, outcome=1, reason=0, flags=0, user=3, seq=77, c=cred("c-17")) -> bytes:
    return struct.pack(">BBBBHI", method, outcome, reason, flags, user, seq) + c


GOOD = [
    ("lock_state", fl.T_LOCK_STATE, struct.pack(">BBBBHHH", 1, 1, 0x0B, 87, 5800, 3, 4000),
     {"bolt": "locked", "door": "closed", "case_open": True, "battery_low": True,
      "locked_out": False, "clock_set": True, "percent": 87, "millivolts": 5800, "queued": 3,
      "ops_left": 4000, "open": False}),
    ("lock_state_unknown_door", fl.T_LOCK_STATE, struct.pack(">BBBBHHH", 5, 0, 0, 0, 0, 0, 0),
     {"bolt": "jammed", "door": "unknown", "case_open": False, "battery_low": False,
      "locked_out": False, "clock_set": False, "percent": 0, "millivolts": 0, "queued": 0,
      "ops_left": 0}),
    ("access", fl.T_ACCESS, access(),
     {"method": "card", "outcome": "unlocked", "reason": "ok", "duress": False, "user": 3,
      "seq": 77, "credential": "c-17"}),
    ("access_duress", fl.T_ACCESS, access(method=2, flags=1, c=cred("L:pin:3")),
     {"method": "pin", "outcome": "unlocked", "reason": "ok", "duress": True, "user": 3,
      "seq": 77, "credential": "L:pin:3"}),
    ("access_denied", fl.T_ACCESS, access(method=6, outcome=2, reason=6, user=0, c=cred()),
     {"method": "fingerprint", "outcome": "denied", "reason": "locked_out", "duress": False,
      "user": None, "seq": 77, "credential": None}),
    ("access_inside", fl.T_ACCESS, access(method=7, user=0, seq=0xFFFFFFFF, c=cred()),
     {"method": "inside", "outcome": "unlocked", "reason": "ok", "duress": False, "user": None,
      "seq": 0xFFFFFFFF, "credential": None}),
    ("forced", fl.T_FORCED, b"\x02", {"forced": "bolt_forced"}),
    ("lock_alarm", fl.T_LOCK_ALARM, bytes((1, 1, 2, 5)),
     {"alarm": "wrong_code_limit", "active": True, "method": "pin", "count": 5}),
    ("lock_alarm_cleared", fl.T_LOCK_ALARM, bytes((3, 0, 0, 0)),
     {"alarm": "door_ajar", "active": False, "method": None, "count": 0}),
    ("cmd_result", fl.T_CMD_RESULT, struct.pack(">IBBH", 123456, 0x2B, 0, 2) + cred("c-9"),
     {"command_counter": 123456, "command": "cred_set", "result": "ok", "user": 2,
      "credential": "c-9"}),
    ("cmd_result_failed", fl.T_CMD_RESULT, struct.pack(">IBBH", 9, 0x2D, 8, 0) + cred(),
     {"command_counter": 9, "command": "set_time", "result": "jammed", "user": None,
      "credential": None}),
    ("local_change", fl.T_LOCAL_CHANGE, struct.pack(">BBH", 1, 2, 4) + cred("L:pin:3"),
     {"op": "credential_added", "kind": "pin", "user": 4, "credential": "L:pin:3"}),
    ("local_change_user", fl.T_LOCAL_CHANGE, struct.pack(">BBH", 4, 0, 4) + cred(),
     {"op": "user_removed", "kind": None, "user": 4, "credential": None}),
]


@pytest.mark.parametrize(("mtype", "body", "values"), [g[1:] for g in GOOD],
                         ids=[g[0] for g in GOOD])
def test_decodes(mtype: int, body: bytes, values: dict) -> None:
    r = verify(mtype, body)
    assert isinstance(r, frames.Reading), r
    assert r.values == values


def test_body_lengths_are_the_documents() -> None:
    assert {name: frames.BODY_LEN[name] for name in
            ("lock_state", "access", "forced", "lock_alarm", "cmd_result", "local_change")} == {
        "lock_state": 10, "access": 27, "forced": 1, "lock_alarm": 4, "cmd_result": 25,
        "local_change": 21}


BAD = [
    ("state_bolt_6", fl.T_LOCK_STATE, struct.pack(">BBBBHHH", 6, 1, 0, 50, 0, 0, 0)),
    ("state_door_5", fl.T_LOCK_STATE, struct.pack(">BBBBHHH", 1, 5, 0, 50, 0, 0, 0)),
    ("state_flag_bit4", fl.T_LOCK_STATE, struct.pack(">BBBBHHH", 1, 1, 0x10, 50, 0, 0, 0)),
    ("state_percent_101", fl.T_LOCK_STATE, struct.pack(">BBBBHHH", 1, 1, 0, 101, 0, 0, 0)),
    ("state_short", fl.T_LOCK_STATE, bytes(9)),
    ("access_method_0", fl.T_ACCESS, access(method=0)),
    ("access_method_9", fl.T_ACCESS, access(method=9)),
    ("access_outcome_3", fl.T_ACCESS, access(outcome=3)),
    ("access_reason_10", fl.T_ACCESS, access(outcome=2, reason=10)),
    ("access_unlocked_with_reason", fl.T_ACCESS, access(outcome=1, reason=2)),
    ("access_denied_ok", fl.T_ACCESS, access(outcome=2, reason=0)),
    ("access_flag_bit1", fl.T_ACCESS, access(flags=2)),
    ("access_cred_len_17", fl.T_ACCESS, access(c=bytes((17,)) + bytes(16))),
    ("access_cred_char", fl.T_ACCESS, access(c=bytes((2,)) + b"a\n" + bytes(14))),
    ("access_cred_space", fl.T_ACCESS, access(c=bytes((2,)) + b"a " + bytes(14))),
    ("access_cred_padding", fl.T_ACCESS, access(c=bytes((1,)) + b"ab" + bytes(14))),
    ("access_old_19_bytes", fl.T_ACCESS, struct.pack(">BBB", 1, 1, 0) + bytes(16)),
    ("access_long", fl.T_ACCESS, access() + b"\x00"),
    ("forced_0", fl.T_FORCED, b"\x00"),
    ("forced_3", fl.T_FORCED, b"\x03"),
    ("forced_long", fl.T_FORCED, b"\x01\x01"),
    ("alarm_kind_0", fl.T_LOCK_ALARM, bytes((0, 1, 0, 0))),
    ("alarm_kind_4", fl.T_LOCK_ALARM, bytes((4, 1, 0, 0))),
    ("alarm_active_2", fl.T_LOCK_ALARM, bytes((1, 2, 0, 0))),
    ("alarm_method_9", fl.T_LOCK_ALARM, bytes((1, 1, 9, 0))),
    ("result_counter_0", fl.T_CMD_RESULT, struct.pack(">IBBH", 0, 0x28, 0, 0) + cred()),
    ("result_type_27", fl.T_CMD_RESULT, struct.pack(">IBBH", 1, 0x27, 0, 0) + cred()),
    ("result_type_30", fl.T_CMD_RESULT, struct.pack(">IBBH", 1, 0x30, 0, 0) + cred()),
    ("result_9", fl.T_CMD_RESULT, struct.pack(">IBBH", 1, 0x28, 9, 0) + cred()),
    ("result_cred_padding", fl.T_CMD_RESULT,
     struct.pack(">IBBH", 1, 0x2B, 0, 1) + bytes((1,)) + b"ab" + bytes(14)),
    ("local_op_0", fl.T_LOCAL_CHANGE, struct.pack(">BBH", 0, 1, 1) + cred("x")),
    ("local_op_5", fl.T_LOCAL_CHANGE, struct.pack(">BBH", 5, 1, 1) + cred("x")),
    ("local_kind_5", fl.T_LOCAL_CHANGE, struct.pack(">BBH", 1, 5, 1) + cred("x")),
    ("local_kind_7", fl.T_LOCAL_CHANGE, struct.pack(">BBH", 1, 7, 1) + cred("x")),
    ("local_cred_without_kind", fl.T_LOCAL_CHANGE, struct.pack(">BBH", 1, 0, 1) + cred("x")),
    ("local_cred_without_id", fl.T_LOCAL_CHANGE, struct.pack(">BBH", 2, 1, 1) + cred()),
]


@pytest.mark.parametrize(("mtype", "body"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_out_of_range_is_bad_body(mtype: int, body: bytes) -> None:
    r = verify(mtype, body)
    assert isinstance(r, frames.Rejection) and r.reason == "bad_body", r


def test_encoders_round_trip() -> None:
    assert verify(fl.T_ACCESS, fl.access_body("card", "unlocked", "card-0042")).values == {
        "method": "card", "outcome": "unlocked", "reason": "ok", "duress": False, "user": None,
        "seq": 0, "credential": "card-0042"}
    body = fl.access_body("pin", "denied", None, reason="outside_schedule", user=4, seq=9)
    assert verify(fl.T_ACCESS, body).values["reason"] == "outside_schedule"
    assert fl.access_body("remote", "unlocked", "c-1", duress=True)[3] == 1
    assert verify(fl.T_FORCED, fl.forced_body("opened_without_unlock")).values == {
        "forced": "opened_without_unlock"}
    assert verify(fl.T_LOCK_STATE, fl.lock_state_body("unlocking", "ajar")).values["door"] == "ajar"
    assert verify(fl.T_LOCK_ALARM, fl.lock_alarm_body("jammed")).values["alarm"] == "jammed"
    assert verify(fl.T_CMD_RESULT, fl.cmd_result_body(7, "user_set", "full", 3)).values[
        "result"] == "full"
    assert verify(fl.T_LOCAL_CHANGE, fl.local_change_body("credential_added", "card", 2,
                                                          "L:card:1")).values["kind"] == "card"


def test_document_example_access_bytes() -> None:
    # ACCESS, card, unlocked, reason ok, no duress, user 1, seq 2, credential card-0042
    expect = bytes.fromhex("01 01 00 00 0001 00000002 09") + b"card-0042" + bytes(7)
    assert fl.access_body("card", "unlocked", "card-0042", user=1, seq=2) == expect


@pytest.mark.parametrize("bad", ["x" * 17, "a b", "pin#1"])
def test_encoder_refuses_an_id_the_lock_cannot_carry(bad: str) -> None:
    with pytest.raises(ValueError):
        fl.access_body("card", "unlocked", bad)
