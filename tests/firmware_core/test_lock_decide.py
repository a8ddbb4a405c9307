"""The lock's access decision (anju.lock.decide): every reason code in the
doc's order, week-day schedules in local time, one-time, expiring and duress
users, the wrong-code lockout, programming mode, remote, inside and
mechanical-key openings, and the ACCESS sequence numbers.

Plain functions and asserts so the same file runs under CPython (pytest) and
under MicroPython (unix-port harness).
"""
import struct

from anju.lock import decide, users, wire

CK = bytes(range(1, 33))
MON = 849916800          # Monday 2026-12-07 00:00 UTC (device time)
DAY = 86400
CFG = decide.LockConfig()


def pin(code):
    return wire.pin_digest(CK, code)


def card(uid):
    return wire.card_digest(CK, uid)


def setup(clock=True):
    t = users.Table(max_users=10, max_credentials=20)
    s = decide.LockState(CFG)
    s.clock_set = 1 if clock else 0
    return s, t


def add(t, user, utype, kind, cid, data, **kw):
    assert t.set_user(user, utype, kw.get("days", 0), kw.get("start", 0), kw.get("end", 1440),
                      kw.get("frm", 0), kw.get("until", 0), kw.get("expire", 0)) == wire.RES_OK
    assert t.set_credential(user, kind, cid, data) == wire.RES_OK


def present(s, t, method, data, now, cfg=CFG):
    return decide.handle(s, ("credential", method, data), now, cfg, t)


def accesses(actions):
    out = []
    for a in actions:
        if a[0] == "send" and a[1] == wire.T_ACCESS:
            m, o, r, f, u, seq = struct.unpack_from(">BBBBHI", a[2], 0)
            n = a[2][10]
            out.append((m, o, r, f, u, seq, bytes(a[2][11:11 + n])))
    return out


def reason(actions):
    acc = accesses(actions)
    assert len(acc) == 1, actions
    return acc[0][2]


def alarms(actions):
    return [tuple(a[2]) for a in actions if a[0] == "send" and a[1] == wire.T_LOCK_ALARM]


def unlocks(actions):
    return [a for a in actions if a[0] == "unlock"]


# ---- openings and every reason ---------------------------------------------------

def test_known_card_unlocks_and_the_log_comes_first():
    s, t = setup()
    add(t, 1, wire.U_UNRESTRICTED, wire.K_CARD, b"c-1", card(b"\x04\x01\x02\x03"))
    s, acts = present(s, t, wire.M_CARD, card(b"\x04\x01\x02\x03"), MON)
    assert accesses(acts) == [(wire.M_CARD, wire.UNLOCKED, wire.R_OK, 0, 1, 1, b"c-1")]
    kinds = [a[0] for a in acts]
    assert kinds == ["persist", "send", "unlock"], acts
    assert acts[0] == ("persist", "seq") and s.seq_reserved == 64
    assert acts[-1] == ("unlock", wire.M_CARD, 1, b"c-1")


def test_unknown_credential():
    s, t = setup()
    s, acts = present(s, t, wire.M_CARD, card(b"\x04\x09\x09\x09"), MON)
    assert accesses(acts) == [(wire.M_CARD, wire.DENIED, wire.R_UNKNOWN_CREDENTIAL, 0, 0, 1, b"")]
    assert not unlocks(acts) and ("indicate", "denied") in acts
    s, acts = present(s, t, wire.M_FINGERPRINT, None, MON)
    assert reason(acts) == wire.R_UNKNOWN_CREDENTIAL


def test_disabled_and_programming_users_do_not_open():
    s, t = setup()
    add(t, 1, wire.U_DISABLED, wire.K_PIN, b"p-1", pin("1111"))
    add(t, 2, wire.U_PROGRAMMING, wire.K_PIN, b"p-2", pin("2222"))
    s, acts = present(s, t, wire.M_PIN, pin("1111"), MON)
    assert accesses(acts)[0][2:5] == (wire.R_DISABLED, 0, 1)
    s, acts = present(s, t, wire.M_PIN, pin("2222"), MON)
    assert reason(acts) == wire.R_DISABLED and not unlocks(acts)


def test_from_and_until_apply_to_every_type():
    s, t = setup()
    add(t, 1, wire.U_YEAR_DAY, wire.K_PIN, b"p-1", pin("1111"), frm=MON, until=MON + DAY)
    add(t, 2, wire.U_UNRESTRICTED, wire.K_PIN, b"p-2", pin("2222"), until=MON)
    assert reason(present(s, t, wire.M_PIN, pin("1111"), MON - 1)[1]) == wire.R_NOT_YET_VALID
    assert reason(present(s, t, wire.M_PIN, pin("1111"), MON)[1]) == wire.R_OK
    assert reason(present(s, t, wire.M_PIN, pin("1111"), MON + DAY)[1]) == wire.R_OK
    assert reason(present(s, t, wire.M_PIN, pin("1111"), MON + DAY + 1)[1]) == wire.R_EXPIRED
    assert reason(present(s, t, wire.M_PIN, pin("2222"), MON + 1)[1]) == wire.R_EXPIRED


def test_one_time_user_opens_once_then_used():
    s, t = setup()
    add(t, 1, wire.U_ONE_TIME, wire.K_PIN, b"p-1", pin("1234"))
    s, acts = present(s, t, wire.M_PIN, pin("1234"), MON)
    assert reason(acts) == wire.R_OK and acts[0] == ("persist", "users")
    s, acts = present(s, t, wire.M_PIN, pin("1234"), MON + 5)
    assert accesses(acts)[0][2:5] == (wire.R_USED, 0, 1) and not unlocks(acts)
    assert ("persist", "users") not in acts


def test_expiring_user_starts_at_first_use():
    s, t = setup()
    add(t, 1, wire.U_EXPIRING, wire.K_CARD, b"c-1", card(b"\x01\x02\x03\x04"), expire=10)
    start = MON + 3 * DAY
    s, acts = present(s, t, wire.M_CARD, card(b"\x01\x02\x03\x04"), start)
    assert reason(acts) == wire.R_OK and ("persist", "users") in acts
    s, acts = present(s, t, wire.M_CARD, card(b"\x01\x02\x03\x04"), start + 599)
    assert reason(acts) == wire.R_OK and ("persist", "users") not in acts
    s, acts = present(s, t, wire.M_CARD, card(b"\x01\x02\x03\x04"), start + 600)
    assert reason(acts) == wire.R_EXPIRED


def test_duress_opens_normally_with_the_silent_flag():
    s, t = setup()
    add(t, 1, wire.U_DURESS, wire.K_PIN, b"p-9", pin("9999"))
    s, acts = present(s, t, wire.M_PIN, pin("9999"), MON)
    assert accesses(acts) == [(wire.M_PIN, wire.UNLOCKED, wire.R_OK, wire.AF_DURESS, 1, 1, b"p-9")]
    assert unlocks(acts) == [("unlock", wire.M_PIN, 1, b"p-9")]
    assert not [a for a in acts if a[0] in ("alarm", "indicate")]


def test_low_battery_is_the_last_check():
    s, t = setup()
    add(t, 1, wire.U_UNRESTRICTED, wire.K_PIN, b"p-1", pin("1111"))
    add(t, 2, wire.U_ONE_TIME, wire.K_PIN, b"p-2", pin("2222"))
    s, _ = present(s, t, wire.M_PIN, pin("2222"), MON)
    s, acts = decide.handle(s, ("battery", CFG.cutoff_mv - 1), MON, CFG, t)
    assert acts == []
    assert reason(present(s, t, wire.M_PIN, pin("1111"), MON)[1]) == wire.R_LOW_BATTERY
    assert reason(present(s, t, wire.M_PIN, pin("2222"), MON)[1]) == wire.R_USED
    s, _ = decide.handle(s, ("battery", CFG.cutoff_mv), MON, CFG, t)
    assert reason(present(s, t, wire.M_PIN, pin("1111"), MON)[1]) == wire.R_OK


def test_reasons_come_in_the_doc_order():
    s, t = setup()
    # disabled before not_yet_valid
    add(t, 1, wire.U_DISABLED, wire.K_PIN, b"p-1", pin("1111"), frm=MON + DAY)
    # not_yet_valid before outside_schedule
    add(t, 2, wire.U_WEEK_DAY, wire.K_PIN, b"p-2", pin("2222"), days=0x40, frm=MON + DAY)
    # expired before used
    add(t, 3, wire.U_ONE_TIME, wire.K_PIN, b"p-3", pin("3333"), until=MON + 10)
    s, _ = present(s, t, wire.M_PIN, pin("3333"), MON)
    assert reason(present(s, t, wire.M_PIN, pin("1111"), MON)[1]) == wire.R_DISABLED
    assert reason(present(s, t, wire.M_PIN, pin("2222"), MON)[1]) == wire.R_NOT_YET_VALID
    assert reason(present(s, t, wire.M_PIN, pin("3333"), MON + 11)[1]) == wire.R_EXPIRED
    assert reason(present(s, t, wire.M_PIN, pin("3333"), MON + 5)[1]) == wire.R_USED


def test_without_a_clock_only_time_free_users_open():
    s, t = setup(clock=False)
    add(t, 1, wire.U_UNRESTRICTED, wire.K_PIN, b"p-1", pin("1111"))
    add(t, 2, wire.U_WEEK_DAY, wire.K_PIN, b"p-2", pin("2222"), days=0x7F)
    add(t, 3, wire.U_UNRESTRICTED, wire.K_PIN, b"p-3", pin("3333"), frm=1)
    add(t, 4, wire.U_EXPIRING, wire.K_PIN, b"p-4", pin("4444"), expire=5)
    add(t, 5, wire.U_UNRESTRICTED, wire.K_PIN, b"p-5", pin("5555"), until=MON)
    assert reason(present(s, t, wire.M_PIN, pin("1111"), 100)[1]) == wire.R_OK
    assert reason(present(s, t, wire.M_PIN, pin("2222"), 100)[1]) == wire.R_OUTSIDE_SCHEDULE
    assert reason(present(s, t, wire.M_PIN, pin("3333"), 100)[1]) == wire.R_NOT_YET_VALID
    assert reason(present(s, t, wire.M_PIN, pin("4444"), 100)[1]) == wire.R_EXPIRED
    assert reason(present(s, t, wire.M_PIN, pin("5555"), 100)[1]) == wire.R_EXPIRED


# ---- week-day schedules -------------------------------------------------------------

def test_weekday_of_the_epoch_and_local_time():
    assert decide.local_minute_and_weekday(0, 0) == (0, 5)            # Saturday 00:00
    assert decide.local_minute_and_weekday(MON, 0) == (0, 0)          # Monday
    assert decide.local_minute_and_weekday(MON + 6 * DAY + 86399, 0) == (1439, 6)  # Sunday 23:59
    assert decide.local_minute_and_weekday(0, -60) == (1380, 4)       # Friday 23:00
    assert decide.local_minute_and_weekday(MON - 8 * 3600, 480) == (0, 0)  # UTC+8 midnight


def test_schedule_start_is_inside_end_is_outside():
    s, t = setup()
    add(t, 1, wire.U_WEEK_DAY, wire.K_PIN, b"p-1", pin("1111"), days=0x01, start=480, end=1020)
    for offset, expected in ((479 * 60, wire.R_OUTSIDE_SCHEDULE), (480 * 60, wire.R_OK),
                             (1019 * 60 + 59, wire.R_OK), (1020 * 60, wire.R_OUTSIDE_SCHEDULE),
                             (DAY + 600 * 60, wire.R_OUTSIDE_SCHEDULE)):  # Tuesday
        assert reason(present(s, t, wire.M_PIN, pin("1111"), MON + offset)[1]) == expected, offset


def test_sunday_and_midnight():
    s, t = setup()
    add(t, 1, wire.U_WEEK_DAY, wire.K_PIN, b"p-1", pin("1111"), days=0x40, start=0, end=1440)
    sunday = MON + 6 * DAY
    assert reason(present(s, t, wire.M_PIN, pin("1111"), sunday)[1]) == wire.R_OK
    assert reason(present(s, t, wire.M_PIN, pin("1111"), sunday + DAY - 1)[1]) == wire.R_OK
    assert reason(present(s, t, wire.M_PIN, pin("1111"), sunday + DAY)[1]) == wire.R_OUTSIDE_SCHEDULE
    assert reason(present(s, t, wire.M_PIN, pin("1111"), sunday - 1)[1]) == wire.R_OUTSIDE_SCHEDULE
    # UTC+8: Sunday 16:00 UTC is Monday 00:00 local
    s.utc_offset_min = 480
    assert reason(present(s, t, wire.M_PIN, pin("1111"), sunday + 16 * 3600 - 1)[1]) == wire.R_OK
    assert reason(present(s, t, wire.M_PIN, pin("1111"), sunday + 16 * 3600)[1]) == \
        wire.R_OUTSIDE_SCHEDULE
    # UTC-5: Monday 04:59 UTC is still Sunday local
    s.utc_offset_min = -300
    assert reason(present(s, t, wire.M_PIN, pin("1111"), sunday + DAY + 4 * 3600 + 3599)[1]) == wire.R_OK


# ---- wrong-code lockout ----------------------------------------------------------------

def test_fifth_wrong_entry_locks_out_for_90_s_then_allowed():
    s, t = setup()
    add(t, 1, wire.U_UNRESTRICTED, wire.K_PIN, b"p-1", pin("1111"))
    t0 = MON + 1000
    for k in range(4):
        s, acts = present(s, t, wire.M_PIN, pin("0000"), t0 + 60 * k)
        assert not alarms(acts) and not decide.locked_out(s, t0 + 60 * k)
    s, acts = present(s, t, wire.M_PIN, pin("0000"), t0 + 240)
    assert reason(acts) == wire.R_UNKNOWN_CREDENTIAL
    assert alarms(acts) == [(wire.ALARM_WRONG_CODE_LIMIT, 1, wire.M_PIN, 5)]
    assert [a for a in acts if a[0] == "alarm"] == [("alarm", "wrong_code_limit", wire.M_PIN)]
    assert decide.locked_out(s, t0 + 241) and decide.next_timer(s, t0 + 241) == 89
    # the right PIN is refused for 90 s, and wrong ones raise nothing more
    s, acts = present(s, t, wire.M_PIN, pin("1111"), t0 + 241)
    assert accesses(acts)[0][2:5] == (wire.R_LOCKED_OUT, 0, 1) and not unlocks(acts)
    s, acts = present(s, t, wire.M_PIN, pin("0000"), t0 + 300)
    assert reason(acts) == wire.R_UNKNOWN_CREDENTIAL and not alarms(acts)
    s, acts = present(s, t, wire.M_PIN, pin("1111"), t0 + 240 + 89)
    assert reason(acts) == wire.R_LOCKED_OUT
    s, acts = present(s, t, wire.M_PIN, pin("1111"), t0 + 240 + 90)
    assert alarms(acts) == [(wire.ALARM_WRONG_CODE_LIMIT, 0, wire.M_PIN, 0)]
    assert reason(acts) == wire.R_OK and unlocks(acts)
    assert not decide.locked_out(s, t0 + 330) and decide.next_timer(s, t0 + 330) is None


def test_lockout_is_per_input_and_ends_on_a_tick():
    s, t = setup()
    add(t, 1, wire.U_UNRESTRICTED, wire.K_CARD, b"c-1", card(b"\x01\x01\x01\x01"))
    for k in range(5):
        s, _ = present(s, t, wire.M_PIN, pin("0000"), MON + k)
    assert reason(present(s, t, wire.M_CARD, card(b"\x01\x01\x01\x01"), MON + 10)[1]) == wire.R_OK
    s, acts = decide.handle(s, ("tick",), MON + 4 + 89, CFG, t)
    assert acts == []
    s, acts = decide.handle(s, ("tick",), MON + 4 + 90, CFG, t)
    assert acts == [("send", wire.T_LOCK_ALARM, wire.lock_alarm_body(1, 0, wire.M_PIN, 0))]


def test_wrong_entries_spread_over_more_than_300_s_do_not_lock():
    s, t = setup()
    for k in (0, 100, 200, 300):
        s, _ = present(s, t, wire.M_CARD, card(b"\x09\x09\x09\x09"), MON + k)
    s, acts = present(s, t, wire.M_CARD, card(b"\x09\x09\x09\x09"), MON + 301)
    assert not alarms(acts) and not decide.locked_out(s, MON + 301)
    s, acts = present(s, t, wire.M_CARD, card(b"\x09\x09\x09\x09"), MON + 302)
    assert alarms(acts)  # 100, 200, 300, 301, 302: five within 300 s


def test_five_wrong_within_exactly_300_s_lock():
    s, t = setup()
    for k in (0, 100, 200, 250):
        s, _ = present(s, t, wire.M_FINGERPRINT, None, MON + k)
    s, acts = present(s, t, wire.M_FINGERPRINT, 77, MON + 300)
    assert alarms(acts) == [(wire.ALARM_WRONG_CODE_LIMIT, 1, wire.M_FINGERPRINT, 5)]


def test_a_correct_entry_resets_the_count_a_refused_one_does_not():
    s, t = setup()
    add(t, 1, wire.U_UNRESTRICTED, wire.K_PIN, b"p-1", pin("1111"))
    add(t, 2, wire.U_DISABLED, wire.K_PIN, b"p-2", pin("2222"))
    now = MON
    for _ in range(4):
        s, _ = present(s, t, wire.M_PIN, pin("0000"), now)
        now += 1
    s, _ = present(s, t, wire.M_PIN, pin("1111"), now)
    for _ in range(4):
        s, acts = present(s, t, wire.M_PIN, pin("0000"), now)
        assert not alarms(acts)
        now += 1
    s, _ = present(s, t, wire.M_PIN, pin("2222"), now)  # known but refused
    s, acts = present(s, t, wire.M_PIN, pin("0000"), now)
    assert alarms(acts)


def test_wrong_limit_and_lockout_come_from_the_settings():
    s, t = setup()
    s.wrong_limit = 1
    s.lockout_s = 600
    s, acts = present(s, t, wire.M_PIN, pin("0000"), MON)
    assert alarms(acts) == [(wire.ALARM_WRONG_CODE_LIMIT, 1, wire.M_PIN, 1)]
    assert decide.locked_out(s, MON + 599) and not decide.locked_out(s, MON + 600)


def test_config_refuses_a_lockout_below_90_s():
    for kw in ({"lockout_s": 89}, {"wrong_limit": 0}, {"wrong_limit": 6}):
        try:
            decide.LockConfig(**kw)
        except ValueError:
            continue
        assert False, kw


# ---- programming mode -----------------------------------------------------------------

def programmer():
    s, t = setup()
    add(t, 1, wire.U_PROGRAMMING, wire.K_PIN, b"p-admin", pin("135790"))
    return s, t


def test_programming_mode_adds_a_card_as_a_new_user():
    s, t = programmer()
    s, acts = decide.handle(s, ("program", pin("135790")), MON, CFG, t)
    assert acts == [("indicate", "programming")] and s.prog_until == MON + 30
    s, acts = present(s, t, wire.M_CARD, card(b"\x07\x07\x07\x07"), MON + 29)
    assert not accesses(acts) and not unlocks(acts)
    changes = [a[2] for a in acts if a[0] == "send" and a[1] == wire.T_LOCAL_CHANGE]
    assert changes == [wire.local_change_body(wire.OP_USER_ADDED, 0, 2),
                       wire.local_change_body(wire.OP_CREDENTIAL_ADDED, wire.K_CARD, 2, b"L:card:2")]
    assert ("persist", "users") in acts and ("persist", "credentials") in acts
    assert ("indicate", "added") in acts and s.prog_until == 0
    assert t.user(2)[1] == wire.U_UNRESTRICTED
    s, acts = present(s, t, wire.M_CARD, card(b"\x07\x07\x07\x07"), MON + 40)
    assert accesses(acts)[0][2:] == (wire.R_OK, 0, 2, 1, b"L:card:2")


def test_programming_mode_adds_a_pin_and_ends_after_30_s():
    s, t = programmer()
    s, _ = decide.handle(s, ("program", pin("135790")), MON, CFG, t)
    s, acts = present(s, t, wire.M_PIN, pin("4455"), MON + 5)
    assert t.credential(t.find(wire.K_PIN, pin("4455"))) == (wire.K_PIN, 2, b"L:pin:2")
    s, _ = decide.handle(s, ("program", pin("135790")), MON + 100, CFG, t)
    s, acts = decide.handle(s, ("tick",), MON + 130, CFG, t)
    assert s.prog_until == 0
    s, acts = present(s, t, wire.M_CARD, card(b"\x08\x08\x08\x08"), MON + 131)
    assert reason(acts) == wire.R_UNKNOWN_CREDENTIAL and t.user(3) is None


def test_programming_mode_refuses_a_known_credential_and_a_full_table():
    s, t = programmer()
    add(t, 2, wire.U_UNRESTRICTED, wire.K_PIN, b"p-2", pin("2222"))
    s, _ = decide.handle(s, ("program", pin("135790")), MON, CFG, t)
    s, acts = present(s, t, wire.M_PIN, pin("2222"), MON + 1)
    assert acts == [("indicate", "refused")] and t.user(3) is None
    for u in range(3, 11):
        t.set_user(u, wire.U_UNRESTRICTED)
    s, _ = decide.handle(s, ("program", pin("135790")), MON + 2, CFG, t)
    s, acts = present(s, t, wire.M_CARD, card(b"\x05\x05\x05\x05"), MON + 3)
    assert acts == [("indicate", "refused")]


def test_star_pin_hash_of_others_is_a_normal_pin():
    s, t = programmer()
    add(t, 2, wire.U_UNRESTRICTED, wire.K_PIN, b"p-2", pin("2222"))
    s, acts = decide.handle(s, ("program", pin("2222")), MON, CFG, t)
    assert reason(acts) == wire.R_OK and unlocks(acts) and s.prog_until == 0
    s, acts = decide.handle(s, ("program", pin("9999")), MON, CFG, t)
    assert reason(acts) == wire.R_UNKNOWN_CREDENTIAL and s.wrong[1] == [MON]


def test_programming_pin_is_subject_to_the_lockout():
    s, t = programmer()
    for k in range(5):
        s, _ = present(s, t, wire.M_PIN, pin("0000"), MON + k)
    s, acts = decide.handle(s, ("program", pin("135790")), MON + 10, CFG, t)
    assert reason(acts) == wire.R_LOCKED_OUT and s.prog_until == 0


# ---- remote, inside, mechanical key, sequence numbers ----------------------------------

def test_remote_unlock_and_lock():
    s, t = setup()
    s, acts = decide.handle(s, ("remote", wire.LOCK_CTL_UNLOCK, wire.M_FACE, b"r-101"), MON, CFG, t)
    assert accesses(acts) == [(wire.M_FACE, wire.UNLOCKED, wire.R_OK, 0, 0, 1, b"r-101")]
    assert unlocks(acts) == [("unlock", wire.M_FACE, 0, b"r-101")]
    s, acts = decide.handle(s, ("remote", wire.LOCK_CTL_LOCK, wire.M_REMOTE, b""), MON, CFG, t)
    assert acts == [("lock",)]
    s, _ = decide.handle(s, ("battery", 3000), MON, CFG, t)
    s, acts = decide.handle(s, ("remote", wire.LOCK_CTL_UNLOCK, wire.M_REMOTE, b"hub"), MON, CFG, t)
    assert reason(acts) == wire.R_LOW_BATTERY and not unlocks(acts)


def test_inside_always_opens_and_mechanical_key_is_logged():
    s, t = setup(clock=False)
    s, _ = decide.handle(s, ("battery", 3000), 5, CFG, t)
    s, acts = decide.handle(s, ("inside",), 5, CFG, t)
    assert accesses(acts) == [(wire.M_INSIDE, wire.UNLOCKED, wire.R_OK, 0, 0, 1, b"")]
    assert unlocks(acts) == [("unlock", wire.M_INSIDE, 0, b"")]
    s, acts = decide.handle(s, ("mechanical_key",), 6, CFG, t)
    assert accesses(acts)[0][:3] == (wire.M_MECHANICAL_KEY, wire.UNLOCKED, wire.R_OK)
    assert not unlocks(acts)


def test_sequence_numbers_grow_and_reserve_ahead_like_the_frame_counter():
    s, t = setup()
    s.seq_last = 62
    s.seq_reserved = 63
    seqs = []
    persists = 0
    for k in range(3):
        s, acts = decide.handle(s, ("inside",), MON + k, CFG, t)
        seqs.append(accesses(acts)[0][5])
        persists += acts.count(("persist", "seq"))
    assert seqs == [63, 64, 65] and persists == 1 and s.seq_reserved == 64 + 63
    # after a power cut the lock resumes above the reservation (anju.counter.resume)
    from anju import counter
    assert counter.resume(None, s.seq_reserved) == 127


def test_state_is_not_changed_in_place_and_unknown_events_raise():
    s, t = setup()
    s2, _ = present(s, t, wire.M_PIN, pin("0000"), MON)
    assert s.wrong[1] == [] and s2.wrong[1] == [MON] and s.seq_last == 0
    try:
        decide.handle(s, ("nonsense",), MON, CFG, t)
    except ValueError:
        pass
    else:
        assert False


def test_settings_file_round_trip_and_corruption():
    s, _ = setup()
    s.relock_s, s.wrong_limit, s.lockout_s, s.ajar_s, s.utc_offset_min = 30, 3, 120, 45, -300
    blob = decide.settings_blob(s)
    s2 = decide.LockState(CFG)
    assert decide.load_settings(s2, blob)
    assert (s2.relock_s, s2.wrong_limit, s2.lockout_s, s2.ajar_s, s2.utc_offset_min) == \
        (30, 3, 120, 45, -300)
    bad = bytearray(blob)
    bad[3] ^= 1
    s3 = decide.LockState(CFG)
    assert not decide.load_settings(s3, bytes(bad)) and s3.wrong_limit == 5
    assert not decide.load_settings(s3, blob[:-1]) and not decide.load_settings(s3, None)


def test_programming_user_outside_its_from_until_cannot_enter():
    s, t = setup()
    add(t, 1, wire.U_PROGRAMMING, wire.K_PIN, b"p-admin", pin("135790"), frm=MON, until=MON + DAY)
    s, acts = decide.handle(s, ("program", pin("135790")), MON - 1, CFG, t)
    assert accesses(acts)[0][2:5] == (wire.R_NOT_YET_VALID, 0, 1) and s.prog_until == 0
    s, acts = decide.handle(s, ("program", pin("135790")), MON + DAY + 1, CFG, t)
    assert reason(acts) == wire.R_EXPIRED and s.prog_until == 0
    s, acts = decide.handle(s, ("program", pin("135790")), MON + 5, CFG, t)
    assert acts == [("indicate", "programming")]


def test_keypad_entries_become_events():
    from anju.lock import keys
    s, t = programmer()
    add(t, 2, wire.U_UNRESTRICTED, wire.K_PIN, b"p-2", pin("2468"))
    entry = keys.Entry()
    out = None
    for k in "*135790#":
        out = entry.feed(k, 1000) or out
    ev = decide.keypad_event(out, CK)
    assert ev == ("program", pin("135790"))
    s, acts = decide.handle(s, ev, MON, CFG, t)
    assert acts == [("indicate", "programming")]
    s, _ = decide.handle(s, ("tick",), MON + 30, CFG, t)
    for k in "2468#":
        out = entry.feed(k, 2000) or out
    s, acts = decide.handle(s, decide.keypad_event(out, CK), MON + 31, CFG, t)
    assert reason(acts) == wire.R_OK
    # too short and too long entries are wrong codes, also as programming entries
    for entry_out in (("pin", "12"), ("pin", "123456789"), ("program", "1")):
        ev = decide.keypad_event(entry_out, CK)
        assert ev[-1] is None
        s, acts = decide.handle(s, ev, MON + 40, CFG, t)
        assert reason(acts) == wire.R_UNKNOWN_CREDENTIAL
    assert len(s.wrong[1]) == 3


# ---- phones over BLE (anju.lock.phone checked the answer's tag) ---------------------

PHONE_KEY = bytes(range(100, 116))


def test_a_phone_opens_by_its_users_rules_and_its_key_is_found_by_id():
    s, t = setup()
    add(t, 3, wire.U_UNRESTRICTED, wire.K_PHONE, b"ph-3", PHONE_KEY)
    assert decide.phone_key(t, "ph-3") == PHONE_KEY and decide.phone_key(t, b"ph-3") == PHONE_KEY
    assert decide.phone_key(t, "ph-9") is None
    s, acts = decide.handle(s, ("phone", wire.LOCK_CTL_UNLOCK, "ph-3"), MON, CFG, t)
    assert accesses(acts) == [(wire.M_PHONE, wire.UNLOCKED, wire.R_OK, 0, 3, 1, b"ph-3")]
    assert unlocks(acts) == [("unlock", wire.M_PHONE, 3, b"ph-3")]


def test_a_phone_asking_to_lock_throws_the_bolt_and_logs_no_opening():
    s, t = setup()
    add(t, 3, wire.U_UNRESTRICTED, wire.K_PHONE, b"ph-3", PHONE_KEY)
    s, acts = decide.handle(s, ("phone", wire.LOCK_CTL_LOCK, "ph-3"), MON, CFG, t)
    assert ("lock",) in acts and accesses(acts) == []


def test_a_phone_outside_its_window_or_of_a_disabled_user_is_refused():
    s, t = setup()
    add(t, 3, wire.U_YEAR_DAY, wire.K_PHONE, b"ph-3", PHONE_KEY, frm=MON + DAY)
    add(t, 4, wire.U_DISABLED, wire.K_PHONE, b"ph-4", bytes(16))
    s, acts = decide.handle(s, ("phone", wire.LOCK_CTL_UNLOCK, "ph-3"), MON, CFG, t)
    assert reason(acts) == wire.R_NOT_YET_VALID and not unlocks(acts)
    s, acts = decide.handle(s, ("phone", wire.LOCK_CTL_UNLOCK, "ph-4"), MON, CFG, t)
    assert reason(acts) == wire.R_DISABLED and not unlocks(acts)


def test_a_card_id_is_not_a_phone_and_a_refused_answer_is_logged():
    s, t = setup()
    add(t, 3, wire.U_UNRESTRICTED, wire.K_CARD, b"c-1", card(b"\x01\x02\x03\x04"))
    assert decide.phone_key(t, "c-1") is None  # no challenge can be answered with a card
    s, acts = decide.handle(s, ("phone", wire.LOCK_CTL_UNLOCK, "c-1"), MON, CFG, t)
    assert reason(acts) == wire.R_UNKNOWN_CREDENTIAL and not unlocks(acts)
    s, acts = decide.handle(s, ("phone_refused",), MON, CFG, t)
    assert accesses(acts)[0][:3] == (wire.M_PHONE, wire.DENIED, wire.R_UNKNOWN_CREDENTIAL)
