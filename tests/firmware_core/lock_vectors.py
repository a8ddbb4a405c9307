"""Builds tests/vectors/lock_wire.json: smart-lock wire vectors for the hub side.

For one fixed frame_key and device id: hub commands (whole signed frames,
hex) with their decoded fields, commands the lock must refuse with the
reason, device frames (bodies and whole signed frames) with their meaning,
the derived keys, card and PIN digests and a wrapped phone key. The bytes
come from the firmware's encoders (anju.lock.wire, anju.command,
anju.frame); test_lock_vectors.py checks the file against them and, for
the tags, digests and the wrapping, against hashlib/hmac and `cryptography`.

Run `python -m tests.firmware_core.lock_vectors` (with firmware/ on the path,
as pytest has it) to rewrite the file after a deliberate format change.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO / "tests" / "vectors" / "lock_wire.json"
if str(REPO / "firmware") not in sys.path:
    sys.path.insert(0, str(REPO / "firmware"))

from anju import command, frame  # noqa: E402
from anju.lock import hubside, wire  # noqa: E402

FRAME_KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
DEVICE_ID = "lock-101"
TIME = 849916800  # 2026-12-07T00:00:00Z as device time (seconds since 2000-01-01 UTC)


def _cmd(name, mtype, counter, body, fields, meaning, device_time=TIME):
    data = command.encode(FRAME_KEY, DEVICE_ID.encode(), mtype, counter, device_time, body)
    return {"name": name, "type": mtype, "counter": counter, "device_time": device_time,
            "body": body.hex(), "frame": data.hex(), "fields": fields, "meaning": meaning}


def _dev(name, mtype, counter, body, fields, meaning):
    data = frame.encode(FRAME_KEY, DEVICE_ID.encode(), mtype, counter, TIME + 5, body)
    return {"name": name, "type": mtype, "counter": counter, "device_time": TIME + 5,
            "body": body.hex(), "frame": data.hex(), "fields": fields, "meaning": meaning}


def build() -> dict:
    ck = wire.cred_key(FRAME_KEY)
    wk = wire.wrap_key(FRAME_KEY)
    card_uid = bytes.fromhex("04a1b2c3d4e5f6")
    card = wire.card_digest(ck, card_uid)
    pin = wire.pin_digest(ck, "135790")
    phone = bytes.fromhex("00112233445566778899aabbccddeeff")
    wrapped = hubside.wrap_phone_key(wk, phone)
    commands = [
        _cmd("LOCK_CTL", wire.T_LOCK_CTL, 101, hubside.lock_ctl_body(30, 2, 4, b"r-101"),
             {"valid_s": 30, "action": 2, "method": 4, "who": "r-101"},
             "unlock by the entrance camera's face match, logged as r-101"),
        _cmd("USER_SET", wire.T_USER_SET, 102,
             hubside.user_set_body(600, 3, wire.U_WEEK_DAY, 0x1F, 480, 1080, TIME, TIME + 30 * 86400, 0),
             {"valid_s": 600, "user": 3, "type": 1, "week_days": 0x1F, "start_min": 480,
              "end_min": 1080, "from": TIME, "until": TIME + 30 * 86400, "expire_min": 0},
             "user 3: Monday-Friday 08:00-18:00 local, for 30 days"),
        _cmd("USER_SET", wire.T_USER_SET, 103,
             hubside.user_set_body(60, 4, wire.U_EXPIRING, 0, 0, 1440, 0, 0, 120),
             {"valid_s": 60, "user": 4, "type": 4, "week_days": 0, "start_min": 0,
              "end_min": 1440, "from": 0, "until": 0, "expire_min": 120},
             "user 4: expiring, 120 minutes from the first use"),
        _cmd("USER_REMOVE", wire.T_USER_REMOVE, 104, hubside.user_remove_body(60, 9),
             {"valid_s": 60, "user": 9}, "remove user 9 and its credentials"),
        _cmd("CRED_SET", wire.T_CRED_SET, 105, hubside.cred_set_body(60, 3, wire.K_CARD, b"c-17", card),
             {"valid_s": 60, "user": 3, "kind": 1, "credential": "c-17", "data": card.hex()},
             "card c-17 for user 3; data is card_digest of the card UID below"),
        _cmd("CRED_SET", wire.T_CRED_SET, 106, hubside.cred_set_body(60, 3, wire.K_PIN, b"c-18", pin),
             {"valid_s": 60, "user": 3, "kind": 2, "credential": "c-18", "data": pin.hex()},
             "PIN c-18 for user 3; data is pin_digest of the PIN below"),
        _cmd("CRED_SET", wire.T_CRED_SET, 107, hubside.cred_set_body(60, 3, wire.K_PHONE, b"ph-3", wrapped),
             {"valid_s": 60, "user": 3, "kind": 3, "credential": "ph-3", "data": wrapped.hex()},
             "phone key ph-3 for user 3, wrapped with wrap_key"),
        _cmd("CRED_SET", wire.T_CRED_SET, 108,
             hubside.cred_set_body(60, 3, wire.K_FINGERPRINT, b"fp-3", wire.fingerprint_data(12)),
             {"valid_s": 60, "user": 3, "kind": 6, "credential": "fp-3",
              "data": wire.fingerprint_data(12).hex()},
             "fingerprint fp-3 for user 3: template 12 in the module"),
        _cmd("CRED_REMOVE", wire.T_CRED_REMOVE, 109, hubside.cred_remove_body(60, b"c-17"),
             {"valid_s": 60, "credential": "c-17"}, "remove credential c-17"),
        _cmd("SET_TIME", wire.T_SET_TIME, 110, hubside.set_time_body(480, 501),
             {"utc_offset_min": 480, "answers": 501},
             "set the clock to the header's device_time, UTC+08:00, answering the lock's frame 501"),
        _cmd("SETTINGS", wire.T_SETTINGS, 111, hubside.settings_body(60, 30, 3, 180, 120),
             {"valid_s": 60, "relock_s": 30, "wrong_limit": 3, "lockout_s": 180, "ajar_s": 120},
             "relock 30 s after closing, 3 wrong entries lock out for 180 s, ajar after 120 s"),
        _cmd("VISITOR_REVOKE", wire.T_VISITOR_REVOKE, 112,
             hubside.visitor_revoke_body(600, 944356, 7, 1, 25477),
             {"valid_s": 600, "start_slot": 944356, "duration_index": 7, "one_time": 1,
              "check": 25477},
             "block the one-time visitor code of the 2 h window from slot 944356, check 25477"),
    ]
    refused = [
        {"frame": command.encode(FRAME_KEY, DEVICE_ID.encode(), wire.T_USER_REMOVE, 120, TIME,
                                 hubside.user_remove_body(0, 3)).hex(),
         "last_counter": 111, "reason": "bad_body", "why": "valid_s 0"},
        {"frame": command.encode(FRAME_KEY, DEVICE_ID.encode(), wire.T_SETTINGS, 121, TIME,
                                 hubside.settings_body(60, 0, 5, 89, 60)).hex(),
         "last_counter": 111, "reason": "bad_body", "why": "lockout_s 89 (below 90)"},
        {"frame": command.encode(FRAME_KEY, DEVICE_ID.encode(), wire.T_USER_SET, 122, TIME,
                                 hubside.user_set_body(60, 3, 1, 0x1F, 600, 600)).hex(),
         "last_counter": 111, "reason": "bad_body", "why": "start_min not below end_min"},
        {"frame": commands[3]["frame"], "last_counter": 104, "reason": "replayed",
         "why": "counter 104 not above the last accepted 104"},
        {"frame": command.encode(FRAME_KEY, b"lock-102", wire.T_USER_REMOVE, 123, TIME,
                                 hubside.user_remove_body(60, 3)).hex(),
         "last_counter": 111, "reason": "bad_tag", "why": "signed for device lock-102"},
        {"frame": frame.encode(FRAME_KEY, DEVICE_ID.encode(), wire.T_USER_REMOVE, 124, TIME,
                               hubside.user_remove_body(60, 3)).hex(),
         "last_counter": 111, "reason": "bad_tag", "why": "a device-direction tag (no \"cmd\" domain)"},
    ]
    device = [
        _dev("LOCK_STATE", wire.T_LOCK_STATE, 501,
             wire.lock_state_body(wire.BOLT_LOCKED, wire.DOOR_CLOSED, wire.SF_CLOCK_SET, 87, 5710, 0, 4200),
             {"bolt": 1, "door": 1, "flags": 8, "battery_pct": 87, "mv": 5710, "queued": 0,
              "ops_left": 4200}, "locked, door closed, clock set, 87 %"),
        _dev("ACCESS", wire.T_ACCESS, 502,
             wire.access_body(wire.M_CARD, wire.UNLOCKED, wire.R_OK, 0, 3, 17, b"c-17"),
             {"method": 1, "outcome": 1, "reason": 0, "flags": 0, "user": 3, "seq": 17,
              "credential": "c-17"}, "card c-17 of user 3 opened; log entry 17"),
        _dev("ACCESS", wire.T_ACCESS, 503,
             wire.access_body(wire.M_PIN, wire.DENIED, wire.R_OUTSIDE_SCHEDULE, 0, 3, 18, b"c-18"),
             {"method": 2, "outcome": 2, "reason": 2, "flags": 0, "user": 3, "seq": 18,
              "credential": "c-18"}, "PIN c-18 of user 3 refused: outside its schedule"),
        _dev("ACCESS", wire.T_ACCESS, 504,
             wire.access_body(wire.M_PIN, wire.UNLOCKED, wire.R_OK, wire.AF_DURESS, 5, 19, b"c-21"),
             {"method": 2, "outcome": 1, "reason": 0, "flags": 1, "user": 5, "seq": 19,
              "credential": "c-21"}, "duress PIN c-21 of user 5: opened, silent duress"),
        _dev("ACCESS", wire.T_ACCESS, 505,
             wire.access_body(wire.M_CARD, wire.DENIED, wire.R_UNKNOWN_CREDENTIAL, 0, 0, 20),
             {"method": 1, "outcome": 2, "reason": 1, "flags": 0, "user": 0, "seq": 20,
              "credential": None}, "an unknown card was refused"),
        _dev("ACCESS", wire.T_ACCESS, 506,
             wire.access_body(wire.M_FACE, wire.UNLOCKED, wire.R_OK, 0, 0, 21, b"r-101"),
             {"method": 4, "outcome": 1, "reason": 0, "flags": 0, "user": 0, "seq": 21,
              "credential": "r-101"}, "opened by the hub's LOCK_CTL for face r-101"),
        _dev("FORCED", wire.T_FORCED, 507, wire.forced_body(wire.FORCED_OPENED_WITHOUT_UNLOCK),
             {"cause": 1}, "the door opened with the bolt thrown"),
        _dev("LOCK_ALARM", wire.T_LOCK_ALARM, 508,
             wire.lock_alarm_body(wire.ALARM_WRONG_CODE_LIMIT, 1, wire.M_PIN, 5),
             {"kind": 1, "active": 1, "method": 2, "count": 5}, "5 wrong PINs: keypad locked out"),
        _dev("CMD_RESULT", wire.T_CMD_RESULT, 509,
             wire.cmd_result_body(105, wire.T_CRED_SET, wire.RES_OK, 3, b"c-17"),
             {"counter": 105, "type": 0x2B, "result": 0, "user": 3, "credential": "c-17"},
             "CRED_SET 105 done: c-17 is active"),
        _dev("CMD_RESULT", wire.T_CMD_RESULT, 510,
             wire.cmd_result_body(101, wire.T_LOCK_CTL, wire.RES_EXPIRED, 0, b"r-101"),
             {"counter": 101, "type": 0x28, "result": 1, "user": 0, "credential": "r-101"},
             "LOCK_CTL 101 refused: it arrived after its valid_s"),
        _dev("LOCAL_CHANGE", wire.T_LOCAL_CHANGE, 511,
             wire.local_change_body(wire.OP_CREDENTIAL_ADDED, wire.K_PIN, 6, b"L:pin:6"),
             {"op": 1, "kind": 2, "user": 6, "credential": "L:pin:6"},
             "a PIN was enrolled at the keypad for new user 6"),
        _dev("ACCESS", wire.T_ACCESS, 512,
             wire.access_body(wire.M_VISITOR, wire.UNLOCKED, wire.R_OK, 0, 0, 22, b"v:944356:25477"),
             {"method": 9, "outcome": 1, "reason": 0, "flags": 0, "user": 0, "seq": 22,
              "credential": "v:944356:25477"},
             "the visitor code of slot 944356, check 25477 opened"),
        _dev("ACCESS", wire.T_ACCESS, 513,
             wire.access_body(wire.M_VISITOR, wire.DENIED, wire.R_REVOKED, 0, 0, 23, b"v:944356:25477"),
             {"method": 9, "outcome": 2, "reason": 10, "flags": 0, "user": 0, "seq": 23,
              "credential": "v:944356:25477"}, "the same code, revoked: refused"),
        _dev("CMD_RESULT", wire.T_CMD_RESULT, 514,
             wire.cmd_result_body(112, wire.T_VISITOR_REVOKE, wire.RES_FULL, 0, b"v:944356:25477"),
             {"counter": 112, "type": 0x2F, "result": 3, "user": 0, "credential": "v:944356:25477"},
             "VISITOR_REVOKE 112 refused: the blocked list is full"),
    ]
    return {
        "about": "Smart-lock wire vectors (docs/smart_lock.md). Hex is big-endian bytes; "
                 "device_time is seconds since 2000-01-01 UTC. Built by "
                 "tests/firmware_core/lock_vectors.py from the firmware's encoders.",
        "frame_key": FRAME_KEY.hex(),
        "device_id": DEVICE_ID,
        "cred_key": ck.hex(),
        "wrap_key": wk.hex(),
        "card_digests": [{"uid": card_uid.hex(), "digest": card.hex()},
                         {"uid": "deadbeef", "digest": wire.card_digest(ck, bytes.fromhex("deadbeef")).hex()}],
        "pin_digests": [{"digits": "135790", "digest": pin.hex()},
                        {"digits": "0000", "digest": wire.pin_digest(ck, "0000").hex()},
                        {"digits": "12345678", "digest": wire.pin_digest(ck, "12345678").hex()}],
        "phone_keys": [{"key": phone.hex(), "wrapped": wrapped.hex()}],
        "commands": commands,
        "refused_commands": refused,
        "device_frames": device,
    }


def render() -> str:
    return json.dumps(build(), indent=1) + "\n"


if __name__ == "__main__":
    VECTORS.parent.mkdir(parents=True, exist_ok=True)
    VECTORS.write_text(render(), encoding="utf-8")
    print("wrote", VECTORS)
