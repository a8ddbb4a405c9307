"""The hub and the lock agree on the wire: the vectors the firmware's encoders
made (tests/vectors/lock_wire.json, checked against the firmware under
CPython and MicroPython in tests/firmware_core) are rebuilt here with the
hub's own builders (hub/locks/wire.py, written from the document on its own)
and decoded with the hub's frame decoders."""
import json
from pathlib import Path

import pytest

from hub.forward import device_commands
from hub.locks import wire as hubwire
from hub.verify import frames
from hub.verify import frames_lock  # noqa: F401  registers the lock frames

V = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "lock_wire.json").read_text())
KEY = bytes.fromhex(V["frame_key"])
DEV = V["device_id"]
NAME_OF = {
    "user_type": {v: k for k, v in hubwire.USER_TYPES.items()},
    "kind": {v: k for k, v in hubwire.KINDS.items()},
    "method": {v: k for k, v in hubwire.CTL_METHODS.items()},
    "action": {v: k for k, v in hubwire.ACTIONS.items()},
}


def test_key_derivations_and_digests_agree():
    assert hubwire.cred_key(KEY).hex() == V["cred_key"]
    assert hubwire.wrap_key(KEY).hex() == V["wrap_key"]
    for c in V["card_digests"]:
        assert hubwire.card_digest(KEY, bytes.fromhex(c["uid"])).hex() == c["digest"]
    for p in V["pin_digests"]:
        assert hubwire.pin_digest(KEY, p["digits"]).hex() == p["digest"]
    for p in V["phone_keys"]:
        assert hubwire.wrap_phone_key(KEY, bytes.fromhex(p["key"])).hex() == p["wrapped"]


def _hub_body(c):
    f = c["fields"]
    name = c["name"]
    if name == "LOCK_CTL":
        return hubwire.lock_ctl(NAME_OF["action"][f["action"]], NAME_OF["method"][f["method"]],
                                f["who"], valid_s=f["valid_s"])
    if name == "USER_SET":
        return hubwire.user_set(f["user"], NAME_OF["user_type"][f["type"]], f["week_days"],
                                f["start_min"], f["end_min"], f["from"], f["until"],
                                f["expire_min"], valid_s=f["valid_s"])
    if name == "USER_REMOVE":
        return hubwire.user_remove(f["user"], valid_s=f["valid_s"])
    if name == "CRED_SET":
        kind = NAME_OF["kind"][f["kind"]]
        data = bytes.fromhex(f["data"])
        if kind == "fingerprint":
            data = int.from_bytes(data[:2], "big")  # the hub takes the template id
        return hubwire.cred_set(f["user"], kind, f["credential"], data, valid_s=f["valid_s"])
    if name == "CRED_REMOVE":
        return hubwire.cred_remove(f["credential"], valid_s=f["valid_s"])
    if name == "SET_TIME":
        return hubwire.set_time(f["utc_offset_min"], f["answers"])
    if name == "SETTINGS":
        return hubwire.settings(f["relock_s"], f["wrong_limit"], f["lockout_s"], f["ajar_s"],
                                valid_s=f["valid_s"])
    if name == "VISITOR_REVOKE":
        return hubwire.visitor_revoke(f["start_slot"], f["duration_index"], f["one_time"],
                                      f["check"], valid_s=f["valid_s"])
    raise AssertionError(name)


@pytest.mark.parametrize("c", V["commands"], ids=lambda c: "%s-%d" % (c["name"], c["counter"]))
def test_the_hub_builds_the_commands_the_lock_verifies(c):
    body = _hub_body(c)
    assert body.hex() == c["body"]
    frame = device_commands.encode_command(KEY, DEV, c["type"], c["counter"], c["device_time"], body)
    assert frame.hex() == c["frame"]


BOLT = ("unknown", "locked", "unlocked", "locking", "unlocking", "jammed")
FIELD_CHECKS = {
    "LOCK_STATE": lambda v, f: (v["bolt"] == BOLT[f["bolt"]] and v["millivolts"] == f["mv"]
                                and v["ops_left"] == f["ops_left"]
                                and v["clock_set"] == bool(f["flags"] & 8)),
    "ACCESS": lambda v, f: (v["credential"] == f["credential"] and v["seq"] == f["seq"]
                            and (f["method"] != 9 or v["visitor_code"]["start_slot"] == 944356)
                            and (v["user"] or 0) == f["user"]
                            and v["duress"] == bool(f["flags"] & 1)
                            and v["outcome"] == ("unlocked", "denied")[f["outcome"] - 1]),
    "CMD_RESULT": lambda v, f: (v["command_counter"] == f["counter"]
                                and v["credential"] == f["credential"]
                                and (v["result"] == "ok") == (f["result"] == 0)),
    "LOCAL_CHANGE": lambda v, f: v["credential"] == f["credential"] and v["user"] == f["user"],
    "LOCK_ALARM": lambda v, f: v["count"] == f["count"] and v["active"] == bool(f["active"]),
}


@pytest.mark.parametrize("d", V["device_frames"], ids=lambda d: "%s-%d" % (d["name"], d["counter"]))
def test_the_hub_reads_the_frames_the_lock_sends(d):
    r = frames.verify(DEV, KEY, bytes.fromhex(d["frame"]))
    assert isinstance(r, frames.Reading), r
    assert r.counter == d["counter"] and r.device_time == d["device_time"]
    check = FIELD_CHECKS.get(d["name"])
    assert check is None or check(r.values, d["fields"]), (r.values, d["fields"])
