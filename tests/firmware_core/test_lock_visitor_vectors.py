"""tests/vectors/visitor_codes.json, made by the hub's generator
(hub/visitors/passcode.py), decided by the lock's verifier
(anju.lock.visitor) as the file expects: every duration at its window's
edges, one-time codes, windows across the 30-day modulus, wrong checks,
check values of 54,253 and above, wrong lengths, no clock.

Plain functions and asserts so the same file runs under CPython (pytest) and
under MicroPython (the harness stages the vector file beside the module).
"""
import json
import sys

from anju.lock import visitor

VECTOR_FILES = ("visitor_codes.json",)

EXPECT = {"ok": visitor.OK, "not_yet": visitor.NOT_YET, "expired": visitor.EXPIRED,
          "bad_code": visitor.BAD_CODE, "no_clock": visitor.NO_CLOCK, "used": visitor.USED}


def _vectors():
    if sys.implementation.name == "micropython":
        path = VECTOR_FILES[0]  # in the guest's working directory
    else:
        path = __file__.rsplit("/", 2)[0] + "/vectors/" + VECTOR_FILES[0]
    with open(path) as f:
        return json.load(f)


def test_the_visit_key_is_the_hubs():
    v = _vectors()
    assert visitor.visit_key(bytes.fromhex(v["frame_key"])).hex() == v["visit_key"]


def test_every_case_is_decided_as_the_file_says():
    v = _vectors()
    vkey = bytes.fromhex(v["visit_key"])
    assert len(v["cases"]) >= 150
    for c in v["cases"]:
        blocked = visitor.Blocked(4)
        res, code = visitor.verify(vkey, c["digits"], c["now"], c["clock_set"], blocked)
        assert res == EXPECT[c["expect"]], (c["name"], res)
        if "start_slot" in c:
            assert code == (c["start_slot"], c["duration_index"], 1 if c["one_time"] else 0,
                            c["check"]), c["name"]
        else:
            assert code is None, c["name"]


def test_one_time_codes_open_once():
    v = _vectors()
    vkey = bytes.fromhex(v["visit_key"])
    n = 0
    for c in v["cases"]:
        if "then" not in c:
            continue
        n += 1
        blocked = visitor.Blocked(4)
        res, code = visitor.verify(vkey, c["digits"], c["now"], True, blocked)
        assert res == visitor.OK and code[2] == 1, c["name"]
        assert blocked.add(code[0], code[1], code[2], code[3], visitor.F_USED, c["now"]) == \
            visitor.OK
        res, _ = visitor.verify(vkey, c["digits"], c["now"] + 1, True, blocked)
        assert res == EXPECT[c["then"]], c["name"]
    assert n >= 3


def test_the_file_covers_what_it_must():
    cases = _vectors()["cases"]
    durations = set(c["duration_index"] for c in cases if c.get("expect") == "ok")
    assert durations == set(range(32)), sorted(durations)
    names = " ".join(c["name"] for c in cases)
    for what in ("a minute before", "a minute after", "wrap", "one-time", "wrong check",
                 "check 54253", "nine digits", "eleven digits", "no clock"):
        assert what in names, what
    # the wrap cases really cross a multiple of 2880 slots
    assert any(c["name"].startswith("wrap") and c["expect"] == "ok"
               and c["now"] // 900 % 2880 < c["start_slot"] % 2880 for c in cases)
