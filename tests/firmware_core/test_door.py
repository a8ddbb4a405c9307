"""Door sensor state machine (anju.door): which frames each wake sends and how
long the sensor sleeps.

Plain functions and asserts so the same file runs under CPython (pytest) and
under MicroPython (unix-port harness).
"""
import struct

from anju import door, frame

CFG = door.DoorConfig()  # heartbeat 3600 s, 2200..3000 mV, low at 20 %
FULLISH = 2950  # 93 %


def sends(actions):
    return [a for a in actions if a[0] == "send"]


def types(actions):
    return [a[1] for a in sends(actions)]


def body_of(actions, mtype):
    found = [a[2] for a in sends(actions) if a[1] == mtype]
    assert len(found) == 1, (mtype, actions)
    return found[0]


def sample(is_open=False, case_open=False, mv=FULLISH):
    return ("sample", is_open, case_open, mv)


def settled(now=1000, **kw):
    """State after a first sample at `now`."""
    state, _ = door.handle(door.DoorState(), sample(**kw), now, CFG)
    return state


def test_boot_sends_boot_frame_with_cause_and_firmware():
    cfg = door.DoorConfig(fw=(2, 7))
    for cause in (1, 2, 3, 5):
        st = door.DoorState()
        new, actions = door.handle(st, ("boot", cause), 0, cfg)
        assert actions == [("send", frame.T_BOOT, bytes((cause, 2, 7)))]
        assert new is not st
        assert new.as_tuple() == st.as_tuple()


def test_first_sample_sends_everything_then_sleeps():
    st = door.DoorState()
    new, actions = door.handle(st, sample(True, False, FULLISH), 500, CFG, queued=3)
    assert types(actions) == [frame.T_DOOR, frame.T_TAMPER, frame.T_BATTERY, frame.T_HEARTBEAT]
    assert actions[-1] == ("sleep", 3600)
    assert len(actions) == 5
    assert body_of(actions, frame.T_DOOR) == b"\x01"
    assert body_of(actions, frame.T_TAMPER) == b"\x00"
    assert body_of(actions, frame.T_BATTERY) == struct.pack(">BH", 93, FULLISH)
    assert body_of(actions, frame.T_HEARTBEAT) == struct.pack(">BBHH", frame.HB_OPEN, 93, FULLISH, 3)
    assert new.as_tuple() == (1, 0, 9, 0, 500)
    # every body has the length the verifier expects
    for _, mtype, body in sends(actions):
        assert len(body) == frame.BODY_LEN[mtype]


def test_no_change_sends_nothing_until_heartbeat_due():
    st = settled(now=1000)
    for now, left in ((1001, 3599), (2000, 2600), (4599, 1)):
        new, actions = door.handle(st, sample(), now, CFG)
        assert actions == [("sleep", left)], now
        assert new.as_tuple() == st.as_tuple()
    new, actions = door.handle(st, sample(), 4600, CFG, queued=2)
    assert types(actions) == [frame.T_HEARTBEAT]
    assert body_of(actions, frame.T_HEARTBEAT) == struct.pack(">BBHH", 0, 93, FULLISH, 2)
    assert actions[-1] == ("sleep", 3600)
    assert new.last_heartbeat == 4600


def test_door_change_sends_door_frame():
    st = settled(now=1000)
    opened, actions = door.handle(st, sample(is_open=True), 1300, CFG)
    assert actions == [("send", frame.T_DOOR, b"\x01"), ("sleep", 3300)]
    assert opened.door == 1
    closed, actions = door.handle(opened, sample(is_open=False), 1400, CFG)
    assert actions == [("send", frame.T_DOOR, b"\x00"), ("sleep", 3200)]
    assert closed.door == 0


def test_tamper_change_sends_tamper_frame():
    st = settled(now=1000)
    new, actions = door.handle(st, sample(case_open=True), 1010, CFG)
    assert actions == [("send", frame.T_TAMPER, b"\x01"), ("sleep", 3590)]
    new, actions = door.handle(new, sample(case_open=False), 1020, CFG)
    assert actions == [("send", frame.T_TAMPER, b"\x00"), ("sleep", 3580)]


def test_battery_percent_math():
    cfg = door.DoorConfig(empty_mv=2200, full_mv=3000)
    cases = ((0, 0), (2100, 0), (2200, 0), (2201, 0), (2208, 1), (2600, 50), (2999, 99),
             (3000, 100), (3300, 100), (65535, 100))
    for mv, pct in cases:
        assert door.battery_percent(mv, cfg) == pct, (mv, door.battery_percent(mv, cfg))
    other = door.DoorConfig(empty_mv=1000, full_mv=1100)
    assert door.battery_percent(1050, other) == 50


def test_battery_frame_on_every_10_percent_step():
    st = settled(now=1000, mv=FULLISH)  # 93 %, step 9
    new, actions = door.handle(st, sample(mv=2930), 1001, CFG)  # 91 %: same step
    assert actions == [("sleep", 3599)]
    new, actions = door.handle(st, sample(mv=2900), 1001, CFG)  # 87 %: step 8
    assert types(actions) == [frame.T_BATTERY]
    assert body_of(actions, frame.T_BATTERY) == struct.pack(">BH", 87, 2900)
    assert new.battery_step == 8
    # a rise to the next step is reported too
    up, actions = door.handle(new, sample(mv=3000), 1002, CFG)
    assert body_of(actions, frame.T_BATTERY) == struct.pack(">BH", 100, 3000)
    assert up.battery_step == 10


def test_battery_frame_when_crossing_low_threshold():
    # 21 % and 20 % are in the same 10 % step; only the low threshold differs
    st = settled(now=1000, mv=2368)
    assert (st.battery_step, st.low) == (2, 0)
    low, actions = door.handle(st, sample(mv=2360), 1001, CFG)
    assert types(actions) == [frame.T_BATTERY]
    assert body_of(actions, frame.T_BATTERY) == struct.pack(">BH", 20, 2360)
    assert (low.battery_step, low.low) == (2, 1)
    back, actions = door.handle(low, sample(mv=2368), 1002, CFG)
    assert types(actions) == [frame.T_BATTERY]
    assert back.low == 0


def test_low_percent_is_configurable():
    cfg = door.DoorConfig(low_percent=50)
    st, actions = door.handle(door.DoorState(), sample(mv=2600), 0, cfg)  # 50 %
    assert st.low == 1
    assert body_of(actions, frame.T_HEARTBEAT)[0] == frame.HB_BATTERY_LOW


def test_heartbeat_flags():
    cases = (((0, 0, 0), 0), ((1, 0, 0), 1), ((0, 1, 0), 2), ((0, 0, 1), 4), ((1, 1, 1), 7),
             ((door.UNKNOWN, door.UNKNOWN, 0), 0))
    for (d, t, low), flags in cases:
        st = door.DoorState(door=d, tamper=t, low=low)
        assert door.heartbeat_flags(st) == flags, (d, t, low)
    assert frame.HB_OPEN == 1 and frame.HB_TAMPER == 2 and frame.HB_BATTERY_LOW == 4


def test_heartbeat_reflects_state_after_this_wake():
    st = settled(now=1000)
    new, actions = door.handle(st, sample(True, True, 2300), 4600, CFG)  # 12 %: low
    assert types(actions) == [frame.T_DOOR, frame.T_TAMPER, frame.T_BATTERY, frame.T_HEARTBEAT]
    assert body_of(actions, frame.T_HEARTBEAT)[:2] == bytes((7, 12))


def test_sleep_is_never_below_one_second():
    st = settled(now=1000)
    new, actions = door.handle(st, sample(), 4599.75, CFG)
    assert actions == [("sleep", 1)]


def test_clock_going_backwards_forces_heartbeat():
    st = settled(now=5000)
    new, actions = door.handle(st, sample(), 4000, CFG)
    assert types(actions) == [frame.T_HEARTBEAT]
    assert new.last_heartbeat == 4000
    assert actions[-1] == ("sleep", 3600)


def test_heartbeat_interval_comes_from_config():
    cfg = door.DoorConfig(heartbeat_s=60)
    st, actions = door.handle(door.DoorState(), sample(), 0, cfg)
    assert actions[-1] == ("sleep", 60)
    _, actions = door.handle(st, sample(), 59, cfg)
    assert actions == [("sleep", 1)]
    _, actions = door.handle(st, sample(), 60, cfg)
    assert types(actions) == [frame.T_HEARTBEAT]


def test_state_is_not_mutated():
    st = settled(now=1000)
    before = st.as_tuple()
    for event, now in ((sample(True, True, 2300), 9000), (("boot", 1), 9000), (sample(), 10)):
        new, _ = door.handle(st, event, now, CFG)
        assert new is not st
        assert st.as_tuple() == before, event


def test_copy_is_independent():
    st = door.DoorState(1, 0, 5, 0, 77)
    c = st.copy()
    c.door = 0
    assert st.door == 1 and c.as_tuple() == (0, 0, 5, 0, 77)


def test_unknown_event_is_refused():
    for event in (("wake",), ("", 1)):
        try:
            door.handle(door.DoorState(), event, 0, CFG)
        except ValueError:
            pass
        else:
            raise AssertionError("accepted event %r" % (event,))


def test_door_config_rejects_bad_values():
    for kwargs in ({"heartbeat_s": 9}, {"heartbeat_s": 0}, {"heartbeat_s": -1},
                   {"empty_mv": 3000, "full_mv": 3000}, {"empty_mv": 3000, "full_mv": 2200}):
        try:
            door.DoorConfig(**kwargs)
        except ValueError:
            pass
        else:
            raise AssertionError("DoorConfig accepted %r" % (kwargs,))
    cfg = door.DoorConfig(heartbeat_s=10, empty_mv=1, full_mv=2)
    assert (cfg.heartbeat_s, cfg.empty_mv, cfg.full_mv) == (10, 1, 2)
