"""Hub commands applied to the lock (anju.lock.control): each command's effect
and CMD_RESULT, the timed invoke (expired, no_clock), the counter stored
first, SET_TIME and SETTINGS reaching the decision, phone-key unwrapping, and
whole frames from the hub through verification and application.

Plain functions and asserts so the same file runs under CPython (pytest) and
under MicroPython (unix-port harness).
"""
import struct

from anju import command
from anju.frame import FrameError
from anju.lock import control, decide, hubside, users, wire

KEY = bytes(range(32))
DEV = b"lock-101"
T = 849916800  # Monday 2026-12-07 00:00 UTC
CFG = decide.LockConfig(max_users=10, max_credentials=20, wrap_key=wire.wrap_key(KEY))
CK = wire.cred_key(KEY)


def fresh(clock=True):
    s = decide.LockState(CFG)
    s.clock_set = 1 if clock else 0
    return s, users.Table(CFG.max_users, CFG.max_credentials)


def run(s, t, mtype, body, now=T, device_time=T):
    """Sign a command the way the hub does, verify and apply it as the lock does."""
    data = command.encode(KEY, DEV, mtype, s.cmd_counter + 1, device_time, body)
    return control.apply(s, wire.verify_command(KEY, DEV, data, s.cmd_counter), now, CFG, t)


def result(actions):
    r = [a[2] for a in actions if a[0] == "send" and a[1] == wire.T_CMD_RESULT]
    assert len(r) == 1, actions
    counter, mtype, res, user = struct.unpack_from(">IBBH", r[0], 0)
    n = r[0][8]
    return counter, mtype, res, user, bytes(r[0][9:9 + n])


def test_counter_is_persisted_first_and_confirmed():
    s, t = fresh()
    s, acts = run(s, t, wire.T_USER_SET, hubside.user_set_body(30, 3, wire.U_UNRESTRICTED))
    assert acts[0] == ("persist", "cmd_counter") and s.cmd_counter == 1
    assert acts[1] == ("persist", "users")
    assert acts[-1][0] == "send"
    assert result(acts) == (1, wire.T_USER_SET, wire.RES_OK, 3, b"")
    assert t.has_user(3)


def test_user_set_beyond_max_users_and_user_remove():
    s, t = fresh()
    s, acts = run(s, t, wire.T_USER_SET, hubside.user_set_body(30, 11, wire.U_UNRESTRICTED))
    assert result(acts)[2:4] == (wire.RES_BAD_VALUE, 11) and ("persist", "users") not in acts
    s, acts = run(s, t, wire.T_USER_REMOVE, hubside.user_remove_body(30, 4))
    assert result(acts)[2:4] == (wire.RES_UNKNOWN_USER, 4)
    s, _ = run(s, t, wire.T_USER_SET, hubside.user_set_body(30, 4, wire.U_UNRESTRICTED))
    s, _ = run(s, t, wire.T_CRED_SET, hubside.cred_set_body(30, 4, wire.K_PIN, b"p-4",
                                                          wire.pin_digest(CK, "4444")))
    s, acts = run(s, t, wire.T_USER_REMOVE, hubside.user_remove_body(30, 4))
    assert result(acts)[2:4] == (wire.RES_OK, 4)
    assert ("persist", "users") in acts and ("persist", "credentials") in acts
    assert t.find(wire.K_PIN, wire.pin_digest(CK, "4444")) == -1


def test_cred_set_results():
    s, t = fresh()
    d = wire.card_digest(CK, b"\x04\xa1\xb2\xc3")
    s, acts = run(s, t, wire.T_CRED_SET, hubside.cred_set_body(30, 1, wire.K_CARD, b"c-1", d))
    assert result(acts)[2:] == (wire.RES_UNKNOWN_USER, 1, b"c-1")
    s, _ = run(s, t, wire.T_USER_SET, hubside.user_set_body(30, 1, wire.U_UNRESTRICTED))
    s, acts = run(s, t, wire.T_CRED_SET, hubside.cred_set_body(30, 1, wire.K_CARD, b"c-1", d))
    assert result(acts)[2:] == (wire.RES_OK, 1, b"c-1") and ("persist", "credentials") in acts
    s, acts = run(s, t, wire.T_CRED_SET, hubside.cred_set_body(30, 1, wire.K_CARD, b"c-2", d))
    assert result(acts)[2] == wire.RES_DUPLICATE
    s, acts = run(s, t, wire.T_CRED_SET, hubside.cred_set_body(30, 1, wire.K_FACE, b"f-1", bytes(16)))
    assert result(acts)[2] == wire.RES_BAD_VALUE
    for i in range(19):
        s, acts = run(s, t, wire.T_CRED_SET, hubside.cred_set_body(
            30, 1, wire.K_PIN, b"p-%d" % i, wire.pin_digest(CK, "%04d" % i)))
        assert result(acts)[2] == wire.RES_OK
    s, acts = run(s, t, wire.T_CRED_SET, hubside.cred_set_body(
        30, 1, wire.K_PIN, b"p-99", wire.pin_digest(CK, "9999")))
    assert result(acts)[2] == wire.RES_FULL
    # the credential set by the hub opens
    s, acts = decide.handle(s, ("credential", wire.M_CARD, d), T + 5, CFG, t)
    assert ("unlock", wire.M_CARD, 1, b"c-1") in acts


def test_phone_key_is_unwrapped_before_it_is_stored():
    s, t = fresh()
    s, _ = run(s, t, wire.T_USER_SET, hubside.user_set_body(30, 2, wire.U_UNRESTRICTED))
    phone = bytes(range(200, 216))
    wrapped = hubside.wrap_phone_key(wire.wrap_key(KEY), phone)
    s, acts = run(s, t, wire.T_CRED_SET, hubside.cred_set_body(30, 2, wire.K_PHONE, b"ph-1", wrapped))
    assert result(acts)[2] == wire.RES_OK
    assert t.credential_data(t.find_id(b"ph-1")) == phone
    no_wrap = decide.LockConfig(max_users=10, max_credentials=20)
    data = command.encode(KEY, DEV, wire.T_CRED_SET, s.cmd_counter + 1, T,
                          hubside.cred_set_body(30, 2, wire.K_PHONE, b"ph-2", wrapped))
    s, acts = control.apply(s, wire.verify_command(KEY, DEV, data, s.cmd_counter), T, no_wrap, t)
    assert result(acts)[2] == wire.RES_BAD_VALUE


def test_cred_remove():
    s, t = fresh()
    s, _ = run(s, t, wire.T_USER_SET, hubside.user_set_body(30, 5, wire.U_UNRESTRICTED))
    s, _ = run(s, t, wire.T_CRED_SET, hubside.cred_set_body(30, 5, wire.K_FINGERPRINT, b"fp-3",
                                                          wire.fingerprint_data(3)))
    s, acts = run(s, t, wire.T_CRED_REMOVE, hubside.cred_remove_body(30, b"fp-3"))
    assert result(acts)[2:] == (wire.RES_OK, 5, b"fp-3") and ("persist", "credentials") in acts
    s, acts = run(s, t, wire.T_CRED_REMOVE, hubside.cred_remove_body(30, b"fp-3"))
    assert result(acts)[2:] == (wire.RES_UNKNOWN_CREDENTIAL, 0, b"fp-3")


def test_lock_ctl_confirms_then_logs_and_unlocks():
    s, t = fresh()
    s, acts = run(s, t, wire.T_LOCK_CTL, hubside.lock_ctl_body(10, wire.LOCK_CTL_UNLOCK, wire.M_FACE,
                                                            b"r-101"))
    kinds = [(a[0], a[1] if a[0] == "send" else None) for a in acts]
    assert kinds[0] == ("persist", None)
    assert kinds.index(("send", wire.T_CMD_RESULT)) < kinds.index(("send", wire.T_ACCESS))
    assert acts[-1] == ("unlock", wire.M_FACE, 0, b"r-101")
    assert result(acts)[2:] == (wire.RES_OK, 0, b"r-101")
    s, acts = run(s, t, wire.T_LOCK_CTL, hubside.lock_ctl_body(10, wire.LOCK_CTL_LOCK, wire.M_REMOTE))
    assert acts[-1] == ("lock",)


def test_expired_and_no_clock_change_nothing():
    s, t = fresh()
    s, acts = run(s, t, wire.T_USER_SET, hubside.user_set_body(30, 1, wire.U_UNRESTRICTED), now=T + 31)
    assert result(acts) == (1, wire.T_USER_SET, wire.RES_EXPIRED, 1, b"")
    assert acts == [("persist", "cmd_counter"), acts[-1]] and not t.has_user(1)
    s, acts = run(s, t, wire.T_USER_SET, hubside.user_set_body(30, 1, wire.U_UNRESTRICTED), now=T + 30)
    assert result(acts)[2] == wire.RES_OK
    s, acts = run(s, t, wire.T_LOCK_CTL, hubside.lock_ctl_body(5, 2, 8, b"hub"), now=T + 6)
    assert result(acts)[2:] == (wire.RES_EXPIRED, 0, b"hub") and not [a for a in acts if a[0] == "unlock"]
    s, acts = run(s, t, wire.T_CRED_REMOVE, hubside.cred_remove_body(5, b"c-9"), now=T + 6)
    assert result(acts)[2:] == (wire.RES_EXPIRED, 0, b"c-9")
    s2, t2 = fresh(clock=False)
    for mtype, body in ((wire.T_USER_SET, hubside.user_set_body(30, 1, 0)),
                        (wire.T_USER_REMOVE, hubside.user_remove_body(30, 1)),
                        (wire.T_CRED_SET, hubside.cred_set_body(30, 1, 1, b"c-1", bytes(16))),
                        (wire.T_CRED_REMOVE, hubside.cred_remove_body(30, b"c-1")),
                        (wire.T_LOCK_CTL, hubside.lock_ctl_body(30, 2, 8)),
                        (wire.T_SETTINGS, hubside.settings_body(30, 0, 5, 90, 10))):
        s2, acts = run(s2, t2, mtype, body, now=5)
        assert result(acts)[2] == wire.RES_NO_CLOCK, mtype
        assert len(acts) == 2
    assert s2.wrong_limit == 5 and not t2.has_user(1)


def test_set_time_sets_the_clock_and_moves_running_timers():
    s, t = fresh(clock=False)
    # a lockout running on the unset clock (device time 1000)
    for k in range(5):
        s, _ = decide.handle(s, ("credential", wire.M_PIN, wire.pin_digest(CK, "0000")), 1000 + k,
                             CFG, t)
    assert s.locked_until[1] == 1094
    s, acts = run(s, t, wire.T_SET_TIME, hubside.set_time_body(480), now=1010, device_time=T)
    assert ("set_clock", T) in acts and ("persist", "settings") in acts
    assert result(acts)[2] == wire.RES_OK
    assert s.clock_set == 1 and s.utc_offset_min == 480
    assert s.locked_until[1] == T + 84 and decide.locked_out(s, T + 83)
    assert not decide.locked_out(s, T + 84)


def test_a_set_time_answering_an_earlier_check_in_is_stale():
    # the lock's current check-in started with its frame 40: a SET_TIME that
    # answers frame 39 waited in the broker since an earlier check-in
    s, t = fresh(clock=False)
    s.answer_floor = 40
    s, acts = run(s, t, wire.T_SET_TIME, hubside.set_time_body(480, 39), now=1010, device_time=T)
    assert result(acts)[2] == wire.RES_EXPIRED
    assert s.clock_set == 0 and not [a for a in acts if a[0] == "set_clock"]
    s, acts = run(s, t, wire.T_SET_TIME, hubside.set_time_body(480, 40), now=1010, device_time=T)
    assert result(acts)[2] == wire.RES_OK and ("set_clock", T) in acts and s.clock_set == 1


def test_settings_reach_the_decision():
    s, t = fresh()
    s, acts = run(s, t, wire.T_SETTINGS, hubside.settings_body(30, 15, 2, 300, 60))
    assert result(acts)[2] == wire.RES_OK and ("persist", "settings") in acts
    assert (s.relock_s, s.wrong_limit, s.lockout_s, s.ajar_s) == (15, 2, 300, 60)
    for k in range(2):
        s, acts = decide.handle(s, ("credential", wire.M_CARD, bytes(16)), T + k, CFG, t)
    assert [a for a in acts if a[0] == "alarm"]
    assert decide.locked_out(s, T + 1 + 299) and not decide.locked_out(s, T + 1 + 300)


def test_replayed_forged_and_bad_commands_are_never_applied():
    s, t = fresh()
    body = hubside.user_set_body(30, 1, wire.U_UNRESTRICTED)
    data = command.encode(KEY, DEV, wire.T_USER_SET, 10, T, body)
    s, acts = control.apply(s, wire.verify_command(KEY, DEV, data, s.cmd_counter), T, CFG, t)
    assert s.cmd_counter == 10
    for bad, why in ((data, "replayed"),
                     (command.encode(KEY, DEV, wire.T_USER_SET, 9, T, body), "replayed"),
                     (command.encode(bytes(32), DEV, wire.T_USER_SET, 11, T, body), "bad_tag"),
                     (command.encode(KEY, DEV, wire.T_USER_SET, 11, T, hubside.user_set_body(30, 1, 9)),
                      "bad_body")):
        try:
            wire.verify_command(KEY, DEV, bad, s.cmd_counter)
        except FrameError as exc:
            assert exc.reason == why, (why, exc.reason)
        else:
            assert False, why
