"""Builds tests/vectors/visitor_codes.json: visitor codes made by the hub's
generator (hub/visitors/passcode.py) and what a lock must decide for each at
a given device time (docs/visitors.md, "Offline codes").

For one fixed frame_key: every one of the 32 durations tried at its window's
first and last second, one minute before and one minute after it; one-time
codes (open once, then `used`); windows across the 30-day modulus of the
start slot; a wrong check value, check values of 54,253 and above, wrong
lengths and non-digits; a code tried with no clock. `expect` is one of ok,
not_yet, expired, bad_code, no_clock; `then` (one-time codes) is what a
second try after the opening gets.

tests/unit/test_visitor_vectors.py checks that the file is what the
generator makes; tests/firmware_core/test_lock_visitor_vectors.py runs the
lock's verifier over it under CPython and MicroPython. Run
`python -m tests.unit.visitor_vectors` to rewrite the file after a
deliberate format change.
"""

from __future__ import annotations

import json
from pathlib import Path

from hub.visitors import passcode

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO / "tests" / "vectors" / "visitor_codes.json"
FRAME_KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
MADE_AT = 849916800  # 2026-12-07T00:00:00Z as device time: when the hub makes the codes
OFF = passcode.MP_EPOCH_OFFSET
SLOT = passcode.SLOT_S


def _made(start_slot: int, index: int, one_time: bool, made_at: int = MADE_AT):
    """A code from passcode.make for exactly that slot window."""
    frm = start_slot * SLOT + OFF
    until = (start_slot + passcode.DURATIONS[index]) * SLOT + OFF
    code = passcode.make(FRAME_KEY, frm, until, one_time, made_at + OFF)
    assert (code.start_slot, code.duration_index) == (start_slot, index)
    return code


def _case(name, code, now, expect, **extra):
    out = {"name": name, "digits": code.digits if hasattr(code, "digits") else code,
           "now": now, "clock_set": extra.pop("clock_set", True), "expect": expect}
    if hasattr(code, "digits") and expect in ("ok", "not_yet", "expired"):
        out.update(start_slot=code.start_slot, duration_index=code.duration_index,
                   one_time=code.one_time, check=code.check)
    out.update(extra)
    return out


def cases() -> list[dict]:
    out = []
    base = MADE_AT // SLOT + 4  # an hour after the codes are made
    for i, d in enumerate(passcode.DURATIONS):
        c = _made(base + i, i, False)
        start, end = c.start_slot * SLOT, (c.start_slot + d) * SLOT
        out += [_case("d%d first second" % i, c, start, "ok"),
                _case("d%d last second" % i, c, end - 1, "ok"),
                _case("d%d a minute before" % i, c, start - 60, "not_yet"),
                _case("d%d a minute after" % i, c, end + 60, "expired")]
    for i in (0, 5, 31):
        c = _made(base + 40 + i, i, True)
        out.append(_case("one-time d%d" % i, c, c.start_slot * SLOT + 30, "ok", then="used"))
        out.append(_case("one-time d%d a minute after" % i, c,
                         (c.start_slot + passcode.DURATIONS[i]) * SLOT + 60, "expired"))
    # windows across a multiple of 2880 slots: the residue wraps to 0 inside them
    wrap = (base // passcode.START_MOD + 1) * passcode.START_MOD
    for back, i in ((1, 0), (3, 7), (100, 16), (2879, 31)):
        start = wrap - back
        if start * SLOT < MADE_AT:
            start += passcode.START_MOD
            wrap += passcode.START_MOD
        c = _made(start, i, False, made_at=start * SLOT - 3600)
        end = (start + passcode.DURATIONS[i]) * SLOT
        out += [_case("wrap %d before: at the start" % back, c, start * SLOT, "ok"),
                _case("wrap %d before: last second" % back, c, end - 1, "ok"),
                _case("wrap %d before: a minute before" % back, c, start * SLOT - 60, "not_yet"),
                _case("wrap %d before: a minute after" % back, c, end + 60, "expired")]
        if end > wrap * SLOT:
            out.append(_case("wrap %d before: just after the wrap" % back, c, wrap * SLOT, "ok"))
    c = _made(base, 4, False)
    now = c.start_slot * SLOT + 100
    wrong = (c.check + 1) % passcode.CHECK_MOD
    out.append(_case("wrong check", "%010d" % (wrong * passcode.PAYLOAD_MOD
                                               + int(c.digits) % passcode.PAYLOAD_MOD),
                     now, "bad_code"))
    other = passcode.make(bytes(32), c.valid_from, c.valid_until, False, MADE_AT + OFF)
    out.append(_case("another lock's code", other.digits, now, "bad_code"))
    out.append(_case("check 54253", "%010d" % (passcode.CHECK_MOD * passcode.PAYLOAD_MOD),
                     now, "bad_code"))
    out.append(_case("check 54253 with a payload", "%010d" % (
        passcode.CHECK_MOD * passcode.PAYLOAD_MOD + int(c.digits) % passcode.PAYLOAD_MOD),
        now, "bad_code"))
    out.append(_case("all nines", "9999999999", now, "bad_code"))
    out.append(_case("nine digits", c.digits[1:], now, "bad_code"))
    out.append(_case("eleven digits", c.digits + "0", now, "bad_code"))
    out.append(_case("not digits", c.digits[:9] + "A", now, "bad_code"))
    out.append(_case("no clock", c, now, "no_clock", clock_set=False))
    return out


def render() -> str:
    doc = {
        "about": "Visitor codes made by hub/visitors/passcode.py for one lock, and what the lock "
                 "decides at device time `now` (docs/visitors.md). Rewrite with "
                 "python -m tests.unit.visitor_vectors.",
        "frame_key": FRAME_KEY.hex(),
        "visit_key": passcode.visit_key(FRAME_KEY).hex(),
        "made_at": MADE_AT,
        "cases": cases(),
    }
    # one case a line: small enough for a lock-sized heap to read whole
    rows = ",\n".join(json.dumps(c, sort_keys=True, separators=(",", ":")) for c in doc.pop("cases"))
    head = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return head[:-1] + ',"cases":[\n' + rows + "\n]}\n"


if __name__ == "__main__":
    VECTORS.write_text(render(), encoding="utf-8")
    print("wrote", VECTORS)
