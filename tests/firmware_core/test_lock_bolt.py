"""Bolt and door supervision (anju.lock.bolt): motor runs with inrush
blanking, stall and travel timeout, reverse and jammed; forced opening,
mechanical key, auto-relock, the ajar alarm.

Plain functions and asserts so the same file runs under CPython (pytest) and
under MicroPython (unix-port harness). A tiny bolt in `run` answers the
motor: it moves 1/80 of its travel per 10 ms sample (0.8 s end to end).
"""
from anju.lock import bolt

CFG = bolt.BoltConfig()  # inrush 150 ms, stall 600 mA for 300 ms, travel 5 s, relock 30 s, ajar 60 s
STEP = 10


def booted(at_locked=False, at_unlocked=True, door_open=False, now=0, cfg=CFG):
    st = bolt.BoltState()
    st, acts = bolt.handle(st, ("boot", at_locked, at_unlocked, door_open), now, cfg)
    return st


def kinds(actions, kind):
    return [a for a in actions if a[0] == kind]


def run(st, now, pos, current=None, block=None, cfg=CFG, limit=2000):
    """Sample until the run ends. pos: 0 unlocked .. 80 locked (samples of
    travel). current(t_since_start, driving) -> mA; block(pos, dir) -> True
    when the bolt cannot move that way. Returns (state, now, pos, actions)."""
    acts = []
    motor = st.dir  # what the run's start drove
    started = now
    for _ in range(limit):
        if not bolt.running(st):
            return st, now, pos, acts
        now += STEP
        if motor and not (block is not None and block(pos, motor)):
            pos = max(0, min(80, pos + motor))
        if current is None:
            ma = 150 if motor else 0
        else:
            ma = current(now - started, motor)
        st, out = bolt.handle(st, ("sample", ma, pos >= 79, pos <= 1), now, cfg)
        for a in out:
            if a[0] == "motor" and a[1] != motor:
                motor = a[1]
                started = now
        acts.extend(out)
    raise AssertionError("the run did not end")


def command(st, kind, now, cfg=CFG):
    return bolt.handle(st, (kind, 2), now, cfg)


def test_lock_and_unlock_reach_their_ends():
    st = booted()
    st, out = command(st, "lock", 1000)
    assert out == [("motor", 1), ("bolt_state", bolt.LOCKING)], out
    st, now, pos, acts = run(st, 1000, 0)
    assert pos >= 79 and st.bolt == bolt.LOCKED
    assert acts[-2:] == [("motor", 0), ("bolt_state", bolt.LOCKED)], acts
    assert 700 <= now - 1000 <= 900, now
    st, out = command(st, "unlock", now)
    assert out == [("motor", -1), ("bolt_state", bolt.UNLOCKING)], out
    st, now, pos, acts = run(st, now, pos)
    assert pos <= 1 and st.bolt == bolt.UNLOCKED
    assert ("motor", 0) in acts and not kinds(acts, "alarm")


def test_a_lock_at_the_locked_end_does_not_run_the_motor():
    st = booted(at_locked=True, at_unlocked=False)
    st, out = command(st, "lock", 0)
    assert out == [] and not bolt.running(st)


def test_inrush_is_ignored():
    st = booted()
    st, out = command(st, "lock", 0)

    def inrush(t, motor):  # 1.2 A falling to 150 mA over the first 100 ms
        return 150 + max(0, 1050 * (100 - t) // 100) if motor else 0
    st, now, pos, acts = run(st, 0, 0, current=inrush)
    assert st.bolt == bolt.LOCKED and not kinds(acts, "alarm"), acts
    assert [a for a in acts if a[0] == "motor"] == [("motor", 0)]


def test_inrush_longer_than_the_blanking_is_a_stall_only_after_stall_ms():
    st = booted()
    st, out = command(st, "lock", 0)
    # 1.2 A until 400 ms: over the threshold for 250 ms after blanking (< 300)
    st, now, pos, acts = run(st, 0, 0, current=lambda t, m: 1200 if t < 400 else 150)
    assert st.bolt == bolt.LOCKED, acts


def test_stall_after_blanking_reverses_and_reports_jammed():
    st = booted()
    st, out = command(st, "lock", 0)
    # blocked at 30/80 of the way: the motor stalls there (1.2 A)
    blocked = lambda p, m: m > 0 and p >= 30  # noqa: E731

    def current(t, motor):
        return 1200 if motor > 0 and t > 300 else 150
    st, now, pos, acts = run(st, 0, 0, current=current, block=blocked)
    motors = [a[1] for a in acts if a[0] == "motor"]
    assert motors == [0, -1, 0], acts
    assert st.bolt == bolt.JAMMED and pos <= 1
    assert ("alarm", bolt.ALARM_JAMMED, 1) in acts
    assert acts[-2:] == [("bolt_state", bolt.JAMMED), ("alarm", bolt.ALARM_JAMMED, 1)], acts
    # the stall is the first 300 ms over stall_ma after the 300 ms it took to build up
    reverse_at = [i for i, a in enumerate(acts) if a == ("motor", -1)][0]
    assert reverse_at > 0
    # a later good run clears the alarm
    st, out = command(st, "lock", now + 1000)
    st, now, pos, acts = run(st, now + 1000, pos)
    assert st.bolt == bolt.LOCKED
    assert ("alarm", bolt.ALARM_JAMMED, 0) in acts, acts


def test_stall_timing():
    st = booted()
    st, out = command(st, "lock", 0)
    now = 0
    stall_at = None
    for _ in range(100):
        now += STEP
        st, out = bolt.handle(st, ("sample", 1200, False, True), now, CFG)
        if ("motor", -1) in out:
            stall_at = now
            break
    # readings over stall_ma count from 150 ms; 300 ms of them is a stall
    assert stall_at == 150 + 300, stall_at


def test_no_end_stop_within_travel_ms_is_jammed():
    st = booted()
    st, out = command(st, "lock", 0)
    # the bolt moves (150 mA) but never reaches an end stop: a broken switch
    now = 0
    reversed_at = None
    while bolt.running(st) and now < 20000:
        now += STEP
        st, out = bolt.handle(st, ("sample", 150, False, False), now, CFG)
        if ("motor", -1) in out:
            reversed_at = now
    assert reversed_at == CFG.travel_ms, reversed_at
    assert now == 2 * CFG.travel_ms and st.bolt == bolt.JAMMED
    assert ("alarm", bolt.ALARM_JAMMED, 1) in out


def test_door_opened_with_the_bolt_thrown_is_forced():
    st = booted(at_locked=True, at_unlocked=False)
    st, out = bolt.handle(st, ("door", True), 10000, CFG)
    assert out == [("door_state", bolt.FORCED), ("forced", bolt.FORCED_OPENED)], out
    st, out = bolt.handle(st, ("door", False), 12000, CFG)
    assert out == [("door_state", bolt.CLOSED)], out


def test_door_opened_after_an_unlock_is_not_forced():
    st = booted(at_locked=True, at_unlocked=False)
    st, out = command(st, "unlock", 1000)
    # pushed open while the bolt is still retracting
    st, out = bolt.handle(st, ("sample", 150, False, False), 1100, CFG)
    st, out = bolt.handle(st, ("door", True), 1200, CFG)
    assert out == [("door_state", bolt.OPEN)], out


def test_opened_by_the_handle_is_not_forced():
    st = booted(at_locked=True, at_unlocked=False)
    st, out = bolt.handle(st, ("handle",), 5000, CFG)
    assert out == []
    # the handle's latch retracts the bolt mechanically: not a mechanical key
    st, out = bolt.handle(st, ("sample", 0, False, False), 5100, CFG)
    st, out = bolt.handle(st, ("sample", 0, False, True), 5400, CFG)
    assert out == [("bolt_state", bolt.UNLOCKED)], out
    st, out = bolt.handle(st, ("door", True), 5600, CFG)
    assert out == [("door_state", bolt.OPEN)], out


def test_opened_long_after_the_handle_is_forced():
    st = booted(at_locked=True, at_unlocked=False)
    st, out = bolt.handle(st, ("handle",), 5000, CFG)
    st, out = bolt.handle(st, ("door", True), 5000 + CFG.grace_ms + 1, CFG)
    assert ("forced", bolt.FORCED_OPENED) in out


def test_mechanical_key_unlock_and_lock():
    st = booted(at_locked=True, at_unlocked=False)
    st, out = bolt.handle(st, ("sample", 0, False, False), 1000, CFG)
    assert out == [("bolt_state", bolt.UNKNOWN)], out
    st, out = bolt.handle(st, ("sample", 0, False, True), 1500, CFG)
    assert out == [("mechanical_key", bolt.UNLOCKED), ("bolt_state", bolt.UNLOCKED)], out
    # the key holder opens the door: not forced
    st, out = bolt.handle(st, ("door", True), 2000, CFG)
    assert out == [("door_state", bolt.OPEN)], out
    st, out = bolt.handle(st, ("door", False), 4000, CFG)
    st, out = bolt.handle(st, ("sample", 0, False, False), 5000, CFG)
    st, out = bolt.handle(st, ("sample", 0, True, False), 5500, CFG)
    assert out == [("mechanical_key", bolt.LOCKED), ("bolt_state", bolt.LOCKED)], out
    assert st.relock_t is None


def test_bolt_pushed_off_its_end_is_forced():
    st = booted(at_locked=True, at_unlocked=False)
    st, out = bolt.handle(st, ("sample", 0, False, False), 1000, CFG)
    st, out = bolt.handle(st, ("tick",), 1000 + CFG.key_ms - 10, CFG)
    assert out == []
    st, out = bolt.handle(st, ("tick",), 1000 + CFG.key_ms, CFG)
    assert out == [("forced", bolt.FORCED_BOLT)], out
    # and the door opening then is forced too
    st, out = bolt.handle(st, ("door", True), 1000 + CFG.key_ms + 500, CFG)
    assert ("forced", bolt.FORCED_OPENED) in out


def test_auto_relock_after_the_door_closes():
    st = booted(at_locked=True, at_unlocked=False)
    st, out = command(st, "unlock", 0)
    st, now, pos, acts = run(st, 0, 80)
    assert st.bolt == bolt.UNLOCKED
    st, out = bolt.handle(st, ("door", True), now + 1000, CFG)
    assert st.relock_t is None
    # never while the door is open, however long
    st, out = bolt.handle(st, ("tick",), now + 40000, CFG)
    assert not kinds(out, "motor") and not bolt.running(st)
    closed = now + 50000
    st, out = bolt.handle(st, ("door", False), closed, CFG)
    assert bolt.next_due(st, closed, CFG) == CFG.relock_s * 1000
    st, out = bolt.handle(st, ("tick",), closed + CFG.relock_s * 1000 - 1, CFG)
    assert not kinds(out, "motor")
    st, out = bolt.handle(st, ("tick",), closed + CFG.relock_s * 1000, CFG)
    assert out == [("relock",), ("motor", 1), ("bolt_state", bolt.LOCKING)], out
    st, now, pos, acts = run(st, closed + CFG.relock_s * 1000, pos)
    assert st.bolt == bolt.LOCKED


def test_relock_off_and_door_opening_during_relock_turns_back():
    cfg = bolt.BoltConfig(relock_s=0)
    st = booted(cfg=cfg)
    st, out = bolt.handle(st, ("door", True), 100, cfg)
    st, out = bolt.handle(st, ("door", False), 200, cfg)
    assert st.relock_t is None and bolt.next_due(st, 200, cfg) is None
    st = booted()
    st, out = bolt.handle(st, ("tick",), CFG.relock_s * 1000, CFG)
    assert out[0] == ("relock",)
    st, out = bolt.handle(st, ("sample", 150, False, False), CFG.relock_s * 1000 + 200, CFG)
    st, out = bolt.handle(st, ("door", True), CFG.relock_s * 1000 + 300, CFG)
    assert out == [("door_state", bolt.OPEN), ("motor", 0), ("motor", -1),
                   ("bolt_state", bolt.UNLOCKING)], out
    st, out = bolt.handle(st, ("sample", 150, False, True), CFG.relock_s * 1000 + 500, CFG)
    assert out == [("motor", 0), ("bolt_state", bolt.UNLOCKED)], out
    assert not kinds(out, "alarm")


def test_lock_refused_with_the_door_open_and_while_busy():
    st = booted(door_open=True)
    st, out = command(st, "lock", 0)
    assert out == [("refused", "door_open")], out
    st = booted()
    st, out = command(st, "lock", 0)
    st, out = command(st, "lock", 10)
    assert out == [("refused", "busy")], out
    st, out = command(st, "unlock", 20)  # an unlock while locking turns back
    assert out == [("motor", 0), ("motor", -1), ("bolt_state", bolt.UNLOCKING)], out


def test_ajar_raised_and_cleared():
    st = booted()
    st, out = bolt.handle(st, ("door", True), 1000, CFG)
    assert bolt.next_due(st, 1000, CFG) == CFG.ajar_s * 1000
    st, out = bolt.handle(st, ("tick",), 1000 + CFG.ajar_s * 1000 - 1, CFG)
    assert out == []
    st, out = bolt.handle(st, ("tick",), 1000 + CFG.ajar_s * 1000, CFG)
    assert out == [("door_state", bolt.AJAR), ("alarm", bolt.ALARM_AJAR, 1)], out
    st, out = bolt.handle(st, ("tick",), 1000 + CFG.ajar_s * 2000, CFG)
    assert out == []
    st, out = bolt.handle(st, ("door", False), 1000 + CFG.ajar_s * 3000, CFG)
    assert out == [("door_state", bolt.CLOSED), ("alarm", bolt.ALARM_AJAR, 0)], out


def test_ticks_wrap():
    near = (1 << 30) - 100
    st = booted(at_locked=True, at_unlocked=False, now=near)
    st, out = command(st, "unlock", near)
    st, now, pos, acts = run(st, near, 80)
    assert st.bolt == bolt.UNLOCKED and not kinds(acts, "alarm"), acts
    assert bolt.ticks_diff(5, (1 << 30) - 5) == 10


def test_config_checks():
    for kw in ({"travel_ms": 300}, {"relock_s": 4000}, {"ajar_s": 5}, {"stall_ma": 0}):
        try:
            bolt.BoltConfig(**kw)
        except ValueError:
            continue
        raise AssertionError("accepted %r" % (kw,))
