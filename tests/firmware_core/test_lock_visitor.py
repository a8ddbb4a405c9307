"""Visitor codes at the lock (anju.lock.visitor and the decision): parsing,
the start slot from the clock across the 30-day modulus, the window's edges,
the check compared for both candidate starts, the blocked list (used,
revoked, purged, full, its file), the keypad's ten-digit entry, the ACCESS
each try logs, the wrong-code lockout, and the VISITOR_REVOKE command.

Plain functions and asserts so the same file runs under CPython (pytest) and
under MicroPython (unix-port harness).
"""
import struct

from anju import command
from anju.lock import control, decide, hubside, keys, users, visitor, wire

KEY = bytes(range(32))
DEV = b"lock-101"
VK = visitor.visit_key(KEY)
T = 849916800  # Monday 2026-12-07 00:00 UTC (device time)
SLOT = T // 900
CFG = decide.LockConfig(max_users=4, max_credentials=4, visit_key=VK)


def code(start, d=3, ot=0):
    return hubside.visitor_code(VK, start, d, ot)


def fresh(clock=True, capacity=8):
    s = decide.LockState(CFG)
    s.clock_set = 1 if clock else 0
    return s, users.Table(4, 4), visitor.Blocked(capacity)


def access(actions):
    out = [a[2] for a in actions if a[0] == "send" and a[1] == wire.T_ACCESS]
    assert len(out) == 1, actions
    m, o, r, f, u, seq = struct.unpack_from(">BBBBHI", out[0], 0)
    n = out[0][10]
    return m, o, r, bytes(out[0][11:11 + n])


def opened(actions):
    return [a for a in actions if a[0] == "unlock"]


def enter(s, t, b, digits, now):
    return decide.handle(s, ("visitor", digits), now, CFG, t, b)


def test_parse_splits_the_ten_digits():
    c = code(SLOT + 5, 7, 1)
    check, residue, d, ot = visitor.parse(c)
    assert (residue, d, ot) == ((SLOT + 5) % 2880, 7, 1)
    assert check == visitor.check_value(VK, SLOT + 5, 7, 1)
    assert visitor.parse(c[:9]) is None
    assert visitor.parse(c + "0") is None
    assert visitor.parse("12345678a0") is None
    assert visitor.parse("9999999999") is None  # check 54252 + ... >= 54253 * 184320
    assert visitor.parse("%010d" % (54253 * 184320)) is None
    assert visitor.parse("%010d" % (54253 * 184320 - 1)) == (54252, 2879, 31, 1)


def test_start_slot_is_the_latest_with_that_residue():
    for start in (SLOT, SLOT - 1, SLOT - 2879, 2880 * 400 - 1):
        for later in (0, 1, 900 * 1343 + 899):
            now = start * 900 + later
            assert visitor.start_slot(now, start % 2880) == start


def test_inside_the_window_opens_and_its_edges_refuse():
    for d in range(32):
        start = SLOT + d
        c = code(start, d)
        end = visitor.ends(start, d)
        assert end == (start + visitor.DURATIONS[d]) * 900
        for now, want in ((start * 900, visitor.OK), (end - 1, visitor.OK),
                          (start * 900 - 60, visitor.NOT_YET), (end + 60, visitor.EXPIRED),
                          (end, visitor.EXPIRED), (start * 900 - 1, visitor.NOT_YET)):
            res, got = visitor.verify(VK, c, now, True, visitor.Blocked(1))
            assert res == want, (d, now - start * 900, res)
            assert got == (start, d, 0, visitor.parse(c)[0])


def test_window_across_the_30_day_modulus():
    start = 2880 * 328 + 2878  # residue 2878: the window runs over a multiple of 2880
    assert start > SLOT - 2880 * 2
    c = code(start, 7)  # 8 slots: residues 2878, 2879, 0 .. 5
    for k in range(8):
        assert visitor.verify(VK, c, (start + k) * 900 + 450, True, visitor.Blocked(1))[0] == \
            visitor.OK
    assert visitor.verify(VK, c, (start + 8) * 900, True, visitor.Blocked(1))[0] == visitor.EXPIRED


def test_wrong_check_and_another_locks_code_are_bad():
    c = code(SLOT, 3)
    check, residue, d, ot = visitor.parse(c)
    other = "%010d" % (((check + 1) % 54253) * 184320 + int(c) % 184320)
    assert visitor.verify(VK, other, SLOT * 900 + 10, True, visitor.Blocked(1)) == \
        (visitor.BAD_CODE, None)
    foreign = hubside.visitor_code(visitor.visit_key(bytes(32)), SLOT, 3, 0)
    assert visitor.verify(VK, foreign, SLOT * 900 + 10, True, visitor.Blocked(1))[0] == \
        visitor.BAD_CODE
    # a code from the window 30 days earlier: its check was made for that start
    old = code(SLOT - 2880, 3)
    assert visitor.verify(VK, old, SLOT * 900 + 10, True, visitor.Blocked(1))[0] == \
        visitor.BAD_CODE


def test_no_clock_decides_nothing():
    assert visitor.verify(VK, code(SLOT), SLOT * 900, False, visitor.Blocked(1)) == \
        (visitor.NO_CLOCK, None)
    s, t, b = fresh(clock=False)
    s, acts = enter(s, t, b, code(0, 3), 10)
    assert access(acts)[:3] == (wire.M_VISITOR, wire.DENIED, wire.R_NO_CLOCK)
    assert not opened(acts) and len(b) == 0


def test_blocked_list_flags_purge_and_full():
    b = visitor.Blocked(2)
    assert b.add(SLOT, 0, 1, 7, visitor.F_USED, T) == visitor.OK
    assert b.add(SLOT, 0, 1, 7, visitor.F_REVOKED, T) == visitor.OK  # the same entry
    assert len(b) == 1 and b.flags(SLOT, 0, 1, 7) == visitor.F_USED | visitor.F_REVOKED
    assert b.flags(SLOT, 0, 0, 7) == 0 and b.flags(SLOT, 1, 1, 7) == 0
    assert b.add(SLOT, 31, 0, 8, visitor.F_REVOKED, T) == visitor.OK
    assert b.add(SLOT, 5, 0, 9, visitor.F_REVOKED, T) == visitor.FULL  # nothing has ended
    assert len(b) == 2
    # the first (15 min) has ended a quarter hour later: its room is taken again
    assert b.add(SLOT, 5, 0, 9, visitor.F_REVOKED, T + 900) == visitor.OK
    assert [b.entry(i)[3] for i in range(len(b))] == [8, 9]
    assert b.purge(visitor.ends(SLOT, 31)) == 2 and len(b) == 0
    try:
        b.add(SLOT, 32, 0, 1, visitor.F_USED, T)
    except ValueError:
        pass
    else:
        raise AssertionError("duration index 32 accepted")


def test_blocked_list_file_round_trip_and_refusals():
    b = visitor.Blocked(4)
    b.add(SLOT, 3, 1, 100, visitor.F_USED, T)
    b.add(SLOT + 1, 4, 0, 200, visitor.F_REVOKED, T)
    blob = b.dump()
    assert len(blob) == 12 + 2 * visitor.REC + 4
    again = visitor.Blocked(4)
    assert again.load(blob) and len(again) == 2
    assert again.flags(SLOT, 3, 1, 100) == visitor.F_USED
    assert again.flags(SLOT + 1, 4, 0, 200) == visitor.F_REVOKED
    for bad in (blob[:-1], blob[:-4] + b"\x00\x00\x00\x00", b"LKU1" + blob[4:], b"",
                blob[:10]):
        assert not again.load(bad)
        assert len(again) == 2  # unchanged
    assert not visitor.Blocked(1).load(blob)  # more entries than fit


def test_keypad_ten_digits_are_a_visitor_code():
    e = keys.Entry()
    c = code(SLOT)
    got = None
    t = 0
    for ch in c + "#":
        got = e.feed(ch, t) or got
        t += 100
    assert got == ("pin", c)
    assert decide.keypad_event(got, wire.cred_key(KEY)) == ("visitor", c)
    # nine and eleven digits are neither a PIN nor a code: a wrong code
    assert decide.keypad_event(("pin", c[:9]), wire.cred_key(KEY)) == \
        ("credential", wire.M_PIN, None)
    assert decide.keypad_event(("pin", c + "1"), wire.cred_key(KEY)) == \
        ("credential", wire.M_PIN, None)


def test_decision_opens_and_logs_the_identity():
    s, t, b = fresh()
    c = code(SLOT, 4)
    s, acts = enter(s, t, b, c, SLOT * 900 + 30)
    cid = ("v:%d:%d" % (SLOT, visitor.parse(c)[0])).encode()
    assert access(acts) == (wire.M_VISITOR, wire.UNLOCKED, wire.R_OK, cid)
    assert opened(acts) == [("unlock", wire.M_VISITOR, 0, cid)]
    assert ("persist", "visitors") not in acts and len(b) == 0  # not one-time
    # the ACCESS goes out before the unlock
    kinds = [a[0] for a in acts]
    assert kinds.index("send") < kinds.index("unlock")
    s, acts = enter(s, t, b, c, SLOT * 900 - 60)
    assert access(acts) == (wire.M_VISITOR, wire.DENIED, wire.R_NOT_YET_VALID, cid)
    s, acts = enter(s, t, b, c, visitor.ends(SLOT, 4) + 60)
    assert access(acts) == (wire.M_VISITOR, wire.DENIED, wire.R_EXPIRED, cid)
    assert s.wrong[1] == []  # a genuine code outside its window is not a wrong code


def test_one_time_code_spent_on_flash_before_it_opens():
    s, t, b = fresh()
    c = code(SLOT, 6, 1)
    s, acts = enter(s, t, b, c, SLOT * 900 + 1)
    assert acts[0] == ("persist", "visitors") and opened(acts)
    assert access(acts)[2] == wire.R_OK
    blob = b.dump()
    s, acts = enter(s, t, b, c, SLOT * 900 + 2)
    assert access(acts)[2] == wire.R_USED and not opened(acts)
    # the list as flash kept it (a power cut, a reboot) still refuses it
    b2 = visitor.Blocked(8)
    assert b2.load(blob)
    s2 = decide.LockState(CFG)
    s2.clock_set = 1
    s2, acts = enter(s2, t, b2, c, SLOT * 900 + 3)
    assert access(acts)[2] == wire.R_USED and not opened(acts)


def test_one_time_code_with_the_list_full_is_refused_unspent():
    s, t, b = fresh(capacity=1)
    b.add(SLOT, 31, 0, 1, visitor.F_REVOKED, T)
    c = code(SLOT, 2, 1)
    s, acts = enter(s, t, b, c, SLOT * 900 + 5)
    assert access(acts)[2] == wire.R_LIST_FULL and not opened(acts)
    assert ("persist", "visitors") not in acts


def test_low_battery_leaves_a_one_time_code_unspent():
    s, t, b = fresh()
    s, _ = decide.handle(s, ("battery", 4000), T, CFG, t, b)
    c = code(SLOT, 2, 1)
    s, acts = enter(s, t, b, c, SLOT * 900 + 5)
    assert access(acts)[2] == wire.R_LOW_BATTERY and not opened(acts) and len(b) == 0


def test_bad_codes_count_toward_the_keypads_lockout():
    s, t, b = fresh()
    c = code(SLOT, 4)
    wrong = "%010d" % ((int(c) + 184320) % (54253 * 184320))
    now = SLOT * 900 + 10
    for k in range(4):
        s, acts = enter(s, t, b, wrong, now + k)
        assert access(acts) == (wire.M_VISITOR, wire.DENIED, wire.R_UNKNOWN_CREDENTIAL, b"")
    s, acts = enter(s, t, b, wrong, now + 4)
    alarm = [a for a in acts if a[0] == "send" and a[1] == wire.T_LOCK_ALARM]
    assert alarm and alarm[0][2] == wire.lock_alarm_body(wire.ALARM_WRONG_CODE_LIMIT, 1,
                                                         wire.M_PIN, 5)
    # locked out: even the right code is refused
    s, acts = enter(s, t, b, c, now + 5)
    assert access(acts)[2] == wire.R_LOCKED_OUT and not opened(acts)
    s, acts = enter(s, t, b, c, now + 5 + CFG.lockout_s)
    assert access(acts)[2] == wire.R_OK and opened(acts)


def test_a_lock_without_a_visit_key_takes_no_code():
    s, t, b = fresh()
    cfg = decide.LockConfig(max_users=4, max_credentials=4)
    s, acts = decide.handle(s, ("visitor", code(SLOT)), SLOT * 900 + 5, cfg, t, b)
    assert access(acts)[2] == wire.R_UNKNOWN_CREDENTIAL and not opened(acts)


def revoke(s, t, b, start, d, ot, check, now=T + 5, device_time=T):
    body = hubside.visitor_revoke_body(60, start, d, ot, check)
    data = command.encode(KEY, DEV, wire.T_VISITOR_REVOKE, s.cmd_counter + 1, device_time, body)
    cmd = wire.verify_command(KEY, DEV, data, s.cmd_counter)
    return control.apply(s, cmd, now, CFG, t, b)


def result(actions):
    r = [a[2] for a in actions if a[0] == "send" and a[1] == wire.T_CMD_RESULT]
    assert len(r) == 1, actions
    counter, mtype, res, user = struct.unpack_from(">IBBH", r[0], 0)
    n = r[0][8]
    return mtype, res, bytes(r[0][9:9 + n])


def test_revoke_command_blocks_the_code():
    s, t, b = fresh()
    c = code(SLOT, 5)
    check = visitor.parse(c)[0]
    s, acts = revoke(s, t, b, SLOT, 5, 0, check)
    assert acts[0] == ("persist", "cmd_counter")
    assert acts.index(("persist", "visitors")) < [a[0] for a in acts].index("send")
    assert result(acts) == (wire.T_VISITOR_REVOKE, wire.RES_OK,
                            ("v:%d:%d" % (SLOT, check)).encode())
    s, acts = enter(s, t, b, c, SLOT * 900 + 60)
    assert access(acts)[2] == wire.R_REVOKED and not opened(acts)
    # another code of the same window and flag is untouched
    other = code(SLOT, 6)
    s, acts = enter(s, t, b, other, SLOT * 900 + 60)
    assert access(acts)[2] == wire.R_OK


def test_revoke_answers_full_ended_expired_and_no_clock():
    s, t, b = fresh(capacity=1)
    s, acts = revoke(s, t, b, SLOT, 31, 0, 1)
    assert result(acts)[1] == wire.RES_OK
    s, acts = revoke(s, t, b, SLOT, 30, 0, 2)
    assert result(acts)[1] == wire.RES_FULL and ("persist", "visitors") not in acts
    # a code whose window has ended opens nothing: ok, nothing listed
    s, acts = revoke(s, t, b, SLOT - 10, 0, 0, 3)
    assert result(acts)[1] == wire.RES_OK and len(b) == 1
    s, acts = revoke(s, t, b, SLOT, 2, 0, 4, now=T + 61)
    assert result(acts)[1] == wire.RES_EXPIRED
    s2, t2, b2 = fresh(clock=False)
    s2, acts = revoke(s2, t2, b2, SLOT, 2, 0, 4)
    assert result(acts)[1] == wire.RES_NO_CLOCK and len(b2) == 0


def test_revoke_body_range_checks():
    for body, why in ((hubside.visitor_revoke_body(60, SLOT, 32, 0, 1), "duration"),
                      (hubside.visitor_revoke_body(60, SLOT, 1, 2, 1), "one_time"),
                      (hubside.visitor_revoke_body(60, SLOT, 1, 0, 54253), "check"),
                      (hubside.visitor_revoke_body(0, SLOT, 1, 0, 1), "valid_s")):
        data = command.encode(KEY, DEV, wire.T_VISITOR_REVOKE, 1, T, body)
        try:
            wire.verify_command(KEY, DEV, data, 0)
        except wire.FrameError as exc:
            assert exc.reason == "bad_body", why
        else:
            raise AssertionError("accepted: " + why)


def test_verifier_results_map_to_access_reasons():
    r = decide._VISITOR_REASONS
    assert (r[visitor.OK], r[visitor.BAD_CODE], r[visitor.NO_CLOCK], r[visitor.NOT_YET],
            r[visitor.EXPIRED], r[visitor.USED], r[visitor.REVOKED], r[visitor.FULL],
            r[visitor.LOST]) == (
        wire.R_OK, wire.R_UNKNOWN_CREDENTIAL, wire.R_NO_CLOCK, wire.R_NOT_YET_VALID,
        wire.R_EXPIRED, wire.R_USED, wire.R_REVOKED, wire.R_LIST_FULL, wire.R_LIST_LOST)
    assert decide.VISITOR_DIGITS == visitor.CODE_DIGITS


def test_a_lost_file_refuses_every_code_for_30_days_from_the_clock():
    t = users.Table(4, 4)
    b = visitor.Blocked(8)
    b.lose()  # the file failed its CRC at boot: the used and revoked codes are unknown
    s = decide.LockState(CFG)
    s, acts = enter(s, t, b, code(SLOT, 4), SLOT * 900 + 5)  # no clock yet
    assert access(acts)[2] == wire.R_NO_CLOCK and b.lost_until == visitor.LOST_PENDING
    s.clock_set = 1
    c = code(SLOT, 4)
    s, acts = enter(s, t, b, c, SLOT * 900 + 5)
    assert access(acts)[2] == wire.R_LIST_LOST and not opened(acts)
    assert ("persist", "visitors") in acts and b.lost_until == SLOT + 2880
    assert s.wrong[1] == []  # a genuine code: not a wrong one
    # the end is on flash: a reboot does not move it
    again = visitor.Blocked(8)
    assert again.load(b.dump()) and again.lost_until == SLOT + 2880
    late = code(SLOT + 2880, 4)
    s, acts = enter(s, t, again, late, (SLOT + 2880) * 900 - 60)
    assert access(acts)[2] == wire.R_NOT_YET_VALID
    s, acts = enter(s, t, again, late, (SLOT + 2880) * 900)
    assert access(acts)[2] == wire.R_OK and opened(acts) and again.lost_until == 0
