"""tests/vectors/visitor_codes.json is what the hub's generator makes
(tests/unit/visitor_vectors.py), and every code in it is right by the
document's formulas worked here with hmac/hashlib alone (docs/visitors.md),
independently of hub/visitors/passcode.py and the lock's verifier, which
tests/firmware_core/test_lock_visitor_vectors.py runs over the same file."""

from __future__ import annotations

import hashlib
import hmac
import json
import struct

from tests.unit import visitor_vectors

V = json.loads(visitor_vectors.VECTORS.read_text(encoding="utf-8"))
DUR = [1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 96, 144, 192, 288, 384, 480,
       576, 672, 768, 864, 960, 1056, 1152, 1248, 1344]


def test_the_file_is_what_the_generator_makes():
    assert visitor_vectors.render() == visitor_vectors.VECTORS.read_text(encoding="utf-8"), \
        "run: .venv/bin/python -m tests.unit.visitor_vectors"


def _check(vkey: bytes, start: int, d: int, ot: int) -> int:
    msg = b"visit\x00" + struct.pack(">IBB", start, d, ot)
    return int.from_bytes(hmac.new(vkey, msg, hashlib.sha256).digest()[:8], "big") % 54253


def _decide(vkey: bytes, digits: str, now: int, clock_set: bool) -> str:
    """The lock's steps of docs/visitors.md, written out."""
    if not clock_set:
        return "no_clock"
    if len(digits) != 10 or not digits.isdigit():
        return "bad_code"
    check, payload = divmod(int(digits), 184320)
    if check >= 54253:
        return "bad_code"
    s, d, ot = payload % 2880, (payload // 2880) % 32, payload // 92160
    now_slot = now // 900
    start = now_slot - ((now_slot - s) % 2880)
    if _check(vkey, start, d, ot) == check:
        return "ok" if start * 900 <= now < (start + DUR[d]) * 900 else "expired"
    if _check(vkey, start + 2880, d, ot) == check:
        return "not_yet"
    return "bad_code"


def test_keys_and_every_code_by_the_document():
    key = bytes.fromhex(V["frame_key"])
    vkey = hmac.new(key, b"anju-lock-visit", hashlib.sha256).digest()
    assert V["visit_key"] == vkey.hex()
    for c in V["cases"]:
        assert _decide(vkey, c["digits"], c["now"], c["clock_set"]) == c["expect"], c["name"]
        if "start_slot" in c:
            ot = 1 if c["one_time"] else 0
            payload = c["start_slot"] % 2880 + 2880 * (c["duration_index"] + 32 * ot)
            check = _check(vkey, c["start_slot"], c["duration_index"], ot)
            assert c["check"] == check
            assert c["digits"] == "%010d" % (check * 184320 + payload), c["name"]
