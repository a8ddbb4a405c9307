"""Smart-lock wire formats (anju.lock.wire): device bodies, hub commands with
every range check, verification (forged, replayed, reflected, copied), the
timed invoke, credential ids and the key derivations.

Plain functions and asserts so the same file runs under CPython (pytest) and
under MicroPython (unix-port harness). The digests and the wrapped key below
were computed with CPython's hmac/hashlib and the `cryptography` package
(test_lock_vectors.py checks them again against those libraries).
"""
import struct
from binascii import hexlify, unhexlify

from anju import command, frame
from anju.frame import FrameError
from anju.lock import hubside, wire

KEY = bytes(range(32))
DEV = b"lock-101"
T = 800000000


def h(s):
    return unhexlify(s.replace(" ", ""))


def hx(b):
    return hexlify(b).decode()


def reason_of(fn, *args):
    try:
        fn(*args)
    except FrameError as exc:
        return exc.reason
    return None


def cmd(mtype, body, counter=5, device_time=T, key=KEY, dev=DEV):
    return command.encode(key, dev, mtype, counter, device_time, body)


def verify(data, last=0):
    return wire.verify_command(KEY, DEV, data, last)


# ---- device bodies -----------------------------------------------------------

def test_body_lengths_match_the_doc_table():
    assert len(wire.lock_state_body(1, 1, 0x08, 80, 5600, 3, 1200)) == 10
    assert len(wire.access_body(wire.M_CARD, wire.UNLOCKED, wire.R_OK, 0, 7, 1, b"c-17")) == 27
    assert len(wire.forced_body(wire.FORCED_OPENED_WITHOUT_UNLOCK)) == 1
    assert len(wire.lock_alarm_body(wire.ALARM_JAMMED, 1)) == 4
    assert len(wire.cmd_result_body(9, wire.T_CRED_SET, wire.RES_OK, 3, b"c-1")) == 25
    assert len(wire.local_change_body(wire.OP_USER_ADDED, 0, 4)) == 21
    for t in (wire.T_LOCK_STATE, wire.T_ACCESS, wire.T_FORCED, wire.T_LOCK_ALARM,
              wire.T_CMD_RESULT, wire.T_LOCAL_CHANGE):
        assert wire.BODY_LEN[t] <= frame.MAX_BODY


def test_access_body_layout():
    body = wire.access_body(wire.M_PIN, wire.UNLOCKED, wire.R_OK, wire.AF_DURESS, 258, 0x01020304,
                            b"L:pin:3")
    assert hx(body) == ("02010001" "0102" "01020304" "07" + hx(b"L:pin:3") + "00" * 9)
    denied = wire.access_body(wire.M_CARD, wire.DENIED, wire.R_UNKNOWN_CREDENTIAL, 0, 0, 9)
    assert denied[:10] == h("01020100 0000 00000009") and denied[10:] == bytes(17)


def test_state_alarm_result_change_layouts():
    assert wire.lock_state_body(wire.BOLT_JAMMED, wire.DOOR_AJAR, 0x0F, 100, 6000, 70000, 5) == \
        h("05030f64 1770 ffff 0005")
    assert wire.lock_alarm_body(wire.ALARM_WRONG_CODE_LIMIT, 1, wire.M_PIN, 5) == h("01010205")
    assert wire.cmd_result_body(0x11223344, wire.T_USER_SET, wire.RES_FULL, 2) == \
        h("11223344 29 03 0002") + bytes(17)
    assert wire.local_change_body(wire.OP_CREDENTIAL_ADDED, wire.K_CARD, 4, b"L:card:4") == \
        h("0101 0004 08") + b"L:card:4" + bytes(8)
    assert wire.forced_body(wire.FORCED_BOLT_FORCED) == b"\x02"


def test_encoders_refuse_out_of_range_values():
    bad = (
        lambda: wire.lock_state_body(6, 1, 0, 50, 5000, 0, 0),
        lambda: wire.lock_state_body(1, 5, 0, 50, 5000, 0, 0),
        lambda: wire.lock_state_body(1, 1, 0x10, 50, 5000, 0, 0),
        lambda: wire.lock_state_body(1, 1, 0, 101, 5000, 0, 0),
        lambda: wire.access_body(0, wire.UNLOCKED, wire.R_OK, 0, 0, 1),
        lambda: wire.access_body(10, wire.UNLOCKED, wire.R_OK, 0, 0, 1),
        lambda: wire.access_body(1, 3, wire.R_OK, 0, 0, 1),
        lambda: wire.access_body(1, wire.UNLOCKED, wire.R_EXPIRED, 0, 0, 1),
        lambda: wire.access_body(1, wire.DENIED, wire.R_OK, 0, 0, 1),
        lambda: wire.access_body(1, wire.DENIED, 14, 0, 0, 1),
        lambda: wire.access_body(1, wire.UNLOCKED, wire.R_OK, 2, 0, 1),
        lambda: wire.access_body(1, wire.UNLOCKED, wire.R_OK, 0, 0x10000, 1),
        lambda: wire.access_body(1, wire.UNLOCKED, wire.R_OK, 0, 0, 1, b"bad id"),
        lambda: wire.forced_body(3),
        lambda: wire.lock_alarm_body(4, 1),
        lambda: wire.lock_alarm_body(1, 2),
        lambda: wire.cmd_result_body(1, 0x28, 9),
        lambda: wire.local_change_body(5, 0, 1),
        lambda: wire.local_change_body(1, 5, 1),
    )
    for i, fn in enumerate(bad):
        try:
            fn()
        except ValueError:
            continue
        assert False, "encoder %d accepted a bad value" % i


# ---- credential ids ------------------------------------------------------------

def test_credential_id_field():
    assert wire.id_field(b"") == bytes(17)
    assert wire.id_field("c-17") == b"\x04c-17" + bytes(12)
    full = b"Az09:._-Az09:._-"
    assert wire.parse_id(wire.id_field(full), 0) == full
    for bad in (b"x" * 17, b"a b", b"a/b", b"\xc3\xa9", b"a\x00"):
        try:
            wire.id_field(bad)
        except ValueError:
            continue
        assert False, bad


def test_parse_id_refuses_bad_length_chars_and_padding():
    assert wire.parse_id(bytes(17), 0, True) == b""
    assert reason_of(wire.parse_id, bytes(17), 0) == "bad_body"   # empty where one is needed
    assert reason_of(wire.parse_id, b"\x11" + b"a" * 16, 0) == "bad_body"
    assert reason_of(wire.parse_id, b"\x02a!" + bytes(14), 0) == "bad_body"
    assert reason_of(wire.parse_id, b"\x02ab" + bytes(13) + b"\x01", 0) == "bad_body"
    assert reason_of(wire.parse_id, b"\x01ab" + bytes(14), 0) == "bad_body"


# ---- keys ----------------------------------------------------------------------

CRED_KEY = "b918937d1786a4d2b33320fc64e3cb8d47a43fdb9ab7c033672ab43652f4d14b"
WRAP_KEY = "2b2d958b31f6ede17fd894d4e012c310"


def test_key_derivations_and_digests():
    ck = wire.cred_key(KEY)
    assert hx(ck) == CRED_KEY
    assert hx(wire.wrap_key(KEY)) == WRAP_KEY
    assert hx(wire.card_digest(ck, h("04a1b2c3"))) == "7c6ebae43a0d03773ae3d789be3ae7bc"
    assert hx(wire.pin_digest(ck, "123456")) == "12cbf84e972ddcddebe737fb3ef6b95b"
    assert wire.pin_digest(ck, b"123456") == wire.pin_digest(ck, "123456")
    assert wire.pin_digest(ck, "1234") != wire.pin_digest(ck, "12345")
    for bad in ("123", "123456789", "12a4"):
        try:
            wire.pin_digest(ck, bad)
        except ValueError:
            continue
        assert False, bad


def test_phone_key_unwraps_and_round_trips():
    wk = wire.wrap_key(KEY)
    assert hx(wire.unwrap_phone_key(wk, h("30089370e9144d59197835bddd7dae5f"))) == \
        "00112233445566778899aabbccddeeff"
    key = bytes(range(100, 116))
    assert wire.unwrap_phone_key(wk, hubside.wrap_phone_key(wk, key)) == key


def test_fingerprint_data():
    assert wire.fingerprint_data(0x0102) == b"\x01\x02" + bytes(14)


# ---- commands: valid ones decode -------------------------------------------------

def test_every_command_decodes():
    c = verify(cmd(wire.T_LOCK_CTL, hubside.lock_ctl_body(30, wire.LOCK_CTL_UNLOCK, wire.M_FACE, b"p-7")))
    assert (c.type, c.counter, c.time, c.valid_s, c.args) == \
        (wire.T_LOCK_CTL, 5, T, 30, (2, 4, b"p-7"))
    c = verify(cmd(wire.T_USER_SET, hubside.user_set_body(600, 3, wire.U_WEEK_DAY, 0x1F, 480, 1020,
                                                       T, T + 86400, 0)))
    assert c.args == (3, 1, 0x1F, 480, 1020, T, T + 86400, 0)
    assert verify(cmd(wire.T_USER_REMOVE, hubside.user_remove_body(1, 9))).args == (9,)
    c = verify(cmd(wire.T_CRED_SET, hubside.cred_set_body(60, 3, wire.K_FINGERPRINT, b"fp-1",
                                                       wire.fingerprint_data(12))))
    assert c.args == (3, 6, b"fp-1", wire.fingerprint_data(12))
    assert verify(cmd(wire.T_CRED_REMOVE, hubside.cred_remove_body(60, b"c-17"))).args == (b"c-17",)
    c = verify(cmd(wire.T_SET_TIME, hubside.set_time_body(-300, 77)))
    assert (c.valid_s, c.args) == (0, (-300, 77))
    c = verify(cmd(wire.T_SETTINGS, hubside.settings_body(60, 0, 5, 90, 10)))
    assert c.args == (0, 5, 90, 10)


def test_body_lengths_of_commands():
    assert len(hubside.lock_ctl_body(1, 1, 8)) == 21
    assert len(hubside.user_set_body(1, 1, 0)) == 20
    assert len(hubside.user_remove_body(1, 1)) == 4
    assert len(hubside.cred_set_body(1, 1, 1, b"a", bytes(16))) == 38
    assert len(hubside.cred_remove_body(1, b"a")) == 19
    assert len(hubside.set_time_body(0)) == 6
    assert len(hubside.settings_body(1, 0, 5, 90, 10)) == 10


# ---- commands: every field out of range is bad_body ------------------------------

def _patched(body, off, fmt, value):
    b = bytearray(body)
    struct.pack_into(fmt, b, off, value)
    return bytes(b)


def _bad_bodies():
    ctl = hubside.lock_ctl_body(30, 2, 8, b"hub")
    us = hubside.user_set_body(30, 1, wire.U_UNRESTRICTED)
    wd = hubside.user_set_body(30, 1, wire.U_WEEK_DAY, 0x01, 0, 60)
    ex = hubside.user_set_body(30, 1, wire.U_EXPIRING, 0, 0, 1440, 0, 0, 60)
    cs = hubside.cred_set_body(30, 1, wire.K_CARD, b"c-1", bytes(16))
    fp = hubside.cred_set_body(30, 1, wire.K_FINGERPRINT, b"f-1", wire.fingerprint_data(3))
    cr = hubside.cred_remove_body(30, b"c-1")
    st = hubside.settings_body(30, 0, 5, 90, 10)
    out = []
    for t, good in ((wire.T_LOCK_CTL, ctl), (wire.T_USER_SET, us), (wire.T_USER_REMOVE,
                    hubside.user_remove_body(30, 1)), (wire.T_CRED_SET, cs),
                    (wire.T_CRED_REMOVE, cr), (wire.T_SETTINGS, st)):
        out.append(("valid_s 0", t, _patched(good, 0, ">H", 0)))
        out.append(("valid_s 601", t, _patched(good, 0, ">H", 601)))
        out.append(("one byte short", t, good[:-1]))
        out.append(("one byte long", t, good + b"\x00"))
    out += [
        ("ctl action 0", wire.T_LOCK_CTL, _patched(ctl, 2, ">B", 0)),
        ("ctl action 3", wire.T_LOCK_CTL, _patched(ctl, 2, ">B", 3)),
        ("ctl method card", wire.T_LOCK_CTL, _patched(ctl, 3, ">B", wire.M_CARD)),
        ("ctl method 9", wire.T_LOCK_CTL, _patched(ctl, 3, ">B", 9)),
        ("ctl who length 17", wire.T_LOCK_CTL, _patched(ctl, 4, ">B", 17)),
        ("ctl who char", wire.T_LOCK_CTL, _patched(ctl, 5, ">B", 0x20)),
        ("ctl who padding", wire.T_LOCK_CTL, _patched(ctl, 20, ">B", 1)),
        ("user 0", wire.T_USER_SET, _patched(us, 2, ">H", 0)),
        ("user type 8", wire.T_USER_SET, _patched(us, 4, ">B", 8)),
        ("week days bit7", wire.T_USER_SET, _patched(us, 5, ">B", 0x80)),
        ("end 1441", wire.T_USER_SET, _patched(us, 8, ">H", 1441)),
        ("start == end", wire.T_USER_SET, _patched(_patched(us, 6, ">H", 600), 8, ">H", 600)),
        ("start > end", wire.T_USER_SET, _patched(_patched(us, 6, ">H", 700), 8, ">H", 600)),
        ("from >= until", wire.T_USER_SET, _patched(_patched(us, 10, ">I", T), 14, ">I", T)),
        ("week-day without days", wire.T_USER_SET, _patched(wd, 5, ">B", 0)),
        ("expiring without minutes", wire.T_USER_SET, _patched(ex, 18, ">H", 0)),
        ("remove user 0", wire.T_USER_REMOVE, hubside.user_remove_body(30, 0)),
        ("cred user 0", wire.T_CRED_SET, _patched(cs, 2, ">H", 0)),
        ("cred kind 0", wire.T_CRED_SET, _patched(cs, 4, ">B", 0)),
        ("cred kind 5", wire.T_CRED_SET, _patched(cs, 4, ">B", 5)),
        ("cred kind 7", wire.T_CRED_SET, _patched(cs, 4, ">B", 7)),
        ("cred empty id", wire.T_CRED_SET, _patched(cs, 5, ">B", 0)),
        ("cred id char", wire.T_CRED_SET, _patched(cs, 6, ">B", ord("#"))),
        ("cred id padding", wire.T_CRED_SET, _patched(cs, 21, ">B", 0x41)),
        ("fingerprint padding", wire.T_CRED_SET, _patched(fp, 37, ">B", 1)),
        ("remove empty id", wire.T_CRED_REMOVE, _patched(cr, 2, ">B", 0)),
        ("remove id length 17", wire.T_CRED_REMOVE, _patched(cr, 2, ">B", 17)),
        ("offset -721", wire.T_SET_TIME, hubside.set_time_body(-721)),
        ("offset 841", wire.T_SET_TIME, hubside.set_time_body(841)),
        ("set_time answers no frame", wire.T_SET_TIME, struct.pack(">hI", 0, 0)),
        ("set_time of the old size", wire.T_SET_TIME, struct.pack(">hH", 0, 1)),
        ("set_time short", wire.T_SET_TIME, b"\x00\x00\x00"),
        ("relock 3601", wire.T_SETTINGS, _patched(st, 2, ">H", 3601)),
        ("wrong_limit 0", wire.T_SETTINGS, _patched(st, 4, ">B", 0)),
        ("wrong_limit 6", wire.T_SETTINGS, _patched(st, 4, ">B", 6)),
        ("lockout 89", wire.T_SETTINGS, _patched(st, 5, ">H", 89)),
        ("lockout 3601", wire.T_SETTINGS, _patched(st, 5, ">H", 3601)),
        ("ajar 9", wire.T_SETTINGS, _patched(st, 7, ">H", 9)),
        ("ajar 3601", wire.T_SETTINGS, _patched(st, 7, ">H", 3601)),
        ("settings flags", wire.T_SETTINGS, _patched(st, 9, ">B", 1)),
    ]
    return out


def test_every_field_out_of_range_is_bad_body():
    cases = _bad_bodies()
    assert len(cases) > 60
    for what, t, body in cases:
        assert reason_of(verify, cmd(t, body)) == "bad_body", what


def test_edges_that_are_in_range():
    assert verify(cmd(wire.T_SETTINGS, hubside.settings_body(600, 3600, 1, 3600, 3600))).args == \
        (3600, 1, 3600, 3600)
    assert verify(cmd(wire.T_SETTINGS, hubside.settings_body(1, 0, 5, 90, 10))).valid_s == 1
    assert verify(cmd(wire.T_USER_SET, hubside.user_set_body(30, 1, wire.U_WEEK_DAY, 0x7F, 1439,
                                                          1440))).args[3:5] == (1439, 1440)
    assert verify(cmd(wire.T_USER_SET, hubside.user_set_body(30, 0xFFFF, wire.U_PROGRAMMING))).args[0] \
        == 0xFFFF
    assert verify(cmd(wire.T_SET_TIME, hubside.set_time_body(-720))).args == (-720, 1)
    assert verify(cmd(wire.T_SET_TIME, hubside.set_time_body(840, 0xFFFFFFFF))).args \
        == (840, 0xFFFFFFFF)
    assert verify(cmd(wire.T_LOCK_CTL, hubside.lock_ctl_body(30, 1, 8))).args == (1, 8, b"")


def test_set_time_needs_a_time_in_its_header():
    assert reason_of(verify, cmd(wire.T_SET_TIME, hubside.set_time_body(0), device_time=0)) == "bad_body"


# ---- commands: authenticity and freshness -------------------------------------------

def test_forged_tampered_copied_and_reflected_commands():
    good = cmd(wire.T_USER_REMOVE, hubside.user_remove_body(30, 1))
    assert verify(good).counter == 5
    assert reason_of(verify, cmd(wire.T_USER_REMOVE, hubside.user_remove_body(30, 1),
                                 key=bytes(32))) == "bad_tag"
    tampered = bytearray(good)
    tampered[frame.HEADER_LEN + 3] ^= 0x01
    assert reason_of(verify, bytes(tampered)) == "bad_tag"
    copied = cmd(wire.T_USER_REMOVE, hubside.user_remove_body(30, 1), dev=b"lock-102")
    assert reason_of(verify, copied) == "bad_tag"
    reflected = frame.encode(KEY, DEV, wire.T_USER_REMOVE, 5, T, hubside.user_remove_body(30, 1))
    assert reason_of(verify, reflected) == "bad_tag"
    assert reason_of(verify, good[:-1]) == "truncated"
    assert reason_of(verify, b"\xa2" + good[1:]) == "bad_version"


def test_replayed_and_unknown_commands():
    good = cmd(wire.T_USER_REMOVE, hubside.user_remove_body(30, 1), counter=7)
    assert verify(good, 6).counter == 7
    assert reason_of(verify, good, 7) == "replayed"
    assert reason_of(verify, good, 100) == "replayed"
    assert reason_of(verify, cmd(0x30, b"\x00\x01")) == "unknown_type"
    # the smoke sensor's command is not a lock command, and the reverse
    assert reason_of(verify, cmd(command.T_INTERCONNECT, b"\x01\x00")) == "unknown_type"
    try:
        command.verify(KEY, DEV, good, 0)
    except FrameError as exc:
        assert exc.reason == "unknown_type"
    else:
        assert False, "the smoke sensor took a lock command"


def test_timed_invoke():
    c = verify(cmd(wire.T_USER_REMOVE, hubside.user_remove_body(30, 1)))
    assert wire.timed_result(c, T, True) == wire.RES_OK
    assert wire.timed_result(c, T + 30, True) == wire.RES_OK
    assert wire.timed_result(c, T + 31, True) == wire.RES_EXPIRED
    assert wire.timed_result(c, T - 100, True) == wire.RES_OK
    assert wire.timed_result(c, T, False) == wire.RES_NO_CLOCK
    st = verify(cmd(wire.T_SET_TIME, hubside.set_time_body(0)))
    assert wire.timed_result(st, 0, False) == wire.RES_OK
    assert wire.timed_result(st, T + 10000, True) == wire.RES_OK
