"""The lock's real drivers (firmware/anju/shell/keypad.py, lock_hw.py) and the
bolt core on simulated boards, against the keypad and bolt chip models
(simulator/chips/). Probe apps print what they saw to the console; the world
presses keys, obstructs the bolt and turns the mechanical key between runs.
"""
import asyncio
import shutil
from pathlib import Path

import pytest

from host_tools import boards
from simulator.chips import bolt as bolt_chip
from simulator.chips import keypad as keypad_chip
from simulator.clock import VirtualClock
from simulator.world import Simulation

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
TRAVEL_S = 0.8


def _sim(tmp_path, app_source, board, chips):
    root = tmp_path / "fw"
    shutil.copytree(FIRMWARE / "anju", root / "anju")
    (root / "probe").mkdir()
    (root / "probe" / "main.py").write_text(app_source)
    sim = Simulation(VirtualClock(), root, tmp_path / "work")
    b = boards.load(board)
    dev = sim.add_device("p1", "probe", b, {"device_id": "p1"}, b"\x24\x0a\xc4\x00\x00\x01")
    for name, chip in chips(b).items():
        dev.add_chip(name, chip)
    for pin in ("reed", "tamper"):  # the door shut, the case closed
        dev.pin(b["pins"][pin]).level = 0
    return sim, dev


def _play(sim, dev, script, until_s):
    """Power on, then at each (offset_s, fn) run the world up to that time and
    call fn(dev); the console lines the probe printed."""
    async def go():
        start = sim.clock.now()
        await sim.power_on("p1")
        for at, fn in script:
            await sim.run_until(start + at)
            fn(dev)
        await sim.run_until(start + until_s)
    try:
        asyncio.run(go())
    finally:
        sim.shutdown()
    text = (Path(dev.fs_root) / "console.log").read_text()
    assert "Traceback" not in text, text
    return [line.split(" ", 1) for line in text.splitlines() if line[:1].isupper()]


def _lines(seen, tag):
    return [rest for t, rest in seen if t == tag]


BOLT_APP = """
import time
from anju.shell import hw, lock_hw
from anju.lock import bolt

board = hw.load_board()
b = lock_hw.Bolt(board, mv_per_a=2000)
inputs = lock_hw.LockInputs(board)
cfg = bolt.BoltConfig(relock_s=0)
st, acts = lock_hw.boot_state(b, inputs, cfg)
print("BOOT", st.bolt, b.ends(), b.current_ma())
t0 = time.ticks_ms()

def at(s):  # sleep until s seconds after the start
    left = time.ticks_diff(time.ticks_add(t0, int(s * 1000)), time.ticks_ms())
    if left > 0:
        time.sleep_ms(left)

def run(d):
    global st
    start = time.ticks_ms()
    st, acts = b.run_bolt(d, cfg, st, door=inputs)
    ms = time.ticks_diff(time.ticks_ms(), start)
    motors = [a[1] for a in acts if a[0] == "motor"]
    alarms = [a[1:] for a in acts if a[0] == "alarm"]
    print("RUN", d, st.bolt, ms, motors, alarms, b.ends())

at(1)
run(1)
at(2)
run(-1)
at(3)
# currents while running: inrush, then the running current
b.drive(1)
seen = []
for i in range(5):
    seen.append(b.current_ma())
    time.sleep_ms(40)
b.drive(0)
print("CURRENT", seen, b.current_ma())
at(4)
b.drive(-1)
for i in range(60):
    if b.ends()[1]:
        break
    time.sleep_ms(10)
time.sleep_ms(100)
print("STALLED", b.current_ma())
b.drive(0)
at(5)
run(1)          # the world obstructs it at 5.3 s
at(12)
for i in range(300):   # idle: the end stops, for a mechanical key
    st, acts = b.watch_ends(st, cfg)
    for a in acts:
        if a[0] == "mechanical_key":
            print("KEY", a[1], time.ticks_diff(time.ticks_ms(), t0))
    time.sleep_ms(50)
print("IDLE", st.bolt, b.ends())
print("BATTERY", inputs.battery_mv())
while True:
    time.sleep(60)
"""


def _obstruct(dev):
    dev.change_chip("bolt", lambda c, now, lv: c.obstruct(now))


def _unblock_and_turn_key(dev):
    def fn(c, now, lv):
        c.clear(now)
        c.key_turn(now, "locked", 0.6)
    dev.change_chip("bolt", fn)


def _turn_back(dev):
    dev.change_chip("bolt", lambda c, now, lv: c.key_turn(now, "unlocked", 0.6))


@pytest.mark.parametrize("board", ["esp32", "pico_w", "esp32c3"])
def test_bolt_runs_jams_and_sees_the_mechanical_key(tmp_path, board):
    def chips(b):
        return {"bolt": bolt_chip.Chip.for_board(b, travel_s=TRAVEL_S, mv_per_a=2000)}
    sim, dev = _sim(tmp_path, BOLT_APP, board, chips)
    dev.adc_mv[dev.board["pins"]["battery_adc"]] = 5600
    seen = _play(sim, dev, [(1.0, lambda d: None), (5.3, _obstruct),
                            (13.0, _unblock_and_turn_key), (15.0, _turn_back)], 40)
    runs = [r.split(" ", 3) for r in _lines(seen, "RUN")]
    assert _lines(seen, "BOOT") == ["2 (False, True) 0"], seen
    # lock: the locked end stop after 97 % of the 0.8 s travel, sampled every 10 ms
    d, state, ms, rest = runs[0]
    assert (d, state) == ("1", "1") and 770 <= int(ms) <= 800, runs[0]
    assert rest == "[1, 0] [] (True, False)", runs[0]
    d, state, ms, rest = runs[1]
    assert (d, state) == ("-1", "2") and 750 <= int(ms) <= 800, runs[1]
    # the obstruction at 0.3 s: 150 ms blanking long past, 300 ms of stall, reverse, back
    d, state, ms, rest = runs[2]
    assert (d, state) == ("1", "5"), runs[2]
    assert rest == "[1, 0, -1, 0] [(2, 1)] (False, True)", runs[2]
    # 0.3 s out + ~0.3 s stalled + 20 ms pause + 0.3 s back (stops at the switch)
    assert 850 <= int(ms) <= 1000, runs[2]
    running, off = _lines(seen, "CURRENT")[0].split("] ")
    cur = [int(x) for x in running.strip("[").split(", ")]
    # every 40 ms from the start: the inrush from the stall current, then running
    assert cur[0] >= 1150 and 760 <= cur[1] <= 800 and 340 <= cur[2] <= 380, cur
    assert cur[3] == cur[4] and 140 <= cur[3] <= 160 and off == "0", (cur, off)
    assert 1150 <= int(_lines(seen, "STALLED")[0]) <= 1210, seen  # driven at the end
    keys = [k.split() for k in _lines(seen, "KEY")]
    assert [k[0] for k in keys] == ["1", "2"], seen
    assert 13_000 < int(keys[0][1]) < 14_000 and 15_000 < int(keys[1][1]) < 16_000, keys
    assert _lines(seen, "IDLE") == ["2 (False, True)"], seen
    assert abs(int(_lines(seen, "BATTERY")[0]) - 5600) < 10, seen
    # the simulator's port modules intern their names in RAM (a board has them
    # in flash), so the string table grows a block while the app imports: 8 KB;
    # the boot shim that picks the slot (docs/ota.md) adds its code and names: 2-4 KB
    assert dev.peak_heap < 40_000, dev.peak_heap


KEYPAD_APP = """
import time
import machine
from anju.shell import hw, keypad

board = hw.load_board()
kp = keypad.Keypad(board)
t0 = time.ticks_ms()
for _ in range(10):
    kp.arm_wake()
    hw.arm_light_wake(board, board["pins"]["kp_cols"], ())  # esp32: a level ends light sleep
    machine.lightsleep(60000)
    kp.disarm()
    print("WOKE", int(kp.woken), time.ticks_diff(time.ticks_ms(), t0))
    for _ in range(40):
        ev = kp.read_event(200)
        if ev is None:
            if kp.idle():
                break
            continue
        print("KEY", ev[0], int(ev[1]), time.ticks_diff(time.ticks_ms(), t0))
while True:
    time.sleep(60)
"""


def _press(key, hold_s):
    def fn(dev):
        dev.change_chip("keypad", lambda c, now, lv: c.press(key, now, now + hold_s))
    return fn


def _hold(key):
    def fn(dev):
        dev.change_chip("keypad", lambda c, now, lv: c.press(key, now))
    return fn


def _release(key):
    def fn(dev):
        dev.change_chip("keypad", lambda c, now, lv: c.release(key, now))
    return fn


@pytest.mark.parametrize("board", ["esp32", "pico_w"])
def test_a_key_wakes_the_lock_from_light_sleep_and_is_read_once(tmp_path, board):
    sim, dev = _sim(tmp_path, KEYPAD_APP, board,
                    lambda b: {"keypad": keypad_chip.Chip.for_board(b, bounce_ms=5)})
    # "5" then "8" (the same column, after the first press ended by itself), then
    # "#" held and released by the world
    seen = _play(sim, dev, [(2.0, _press("5", 0.15)), (4.0, _press("8", 0.1)),
                            (6.0, _hold("#")), (6.5, _release("#"))], 10)
    woke = [w.split() for w in _lines(seen, "WOKE")]
    assert [w[0] for w in woke] == ["1", "1", "1"], seen
    assert [int(w[1]) // 1000 for w in woke] == [2, 4, 6], woke
    keys = [k.split() for k in _lines(seen, "KEY")]
    assert [(k[0], k[1]) for k in keys] == [("5", "1"), ("5", "0"), ("8", "1"), ("8", "0"),
                                            ("#", "1"), ("#", "0")], keys
    t = [int(k[2]) for k in keys]
    # down within the debounce (3 scans, 5 ms apart, past the 5 ms of bounce)
    assert 2000 <= t[0] <= 2030 and 4000 <= t[2] <= 4030 and 6000 <= t[4] <= 6030, t
    assert 2150 <= t[1] <= 2180 and 4100 <= t[3] <= 4130 and 6500 <= t[5] <= 6530, t
    # with the light-sleep wake armed (hw) and the slot's boot shim (docs/ota.md):
    # 20.9-22.6 KB; the simulator's own names share the string table the app's
    # imports grow, so a name more in simulator/mp moves this by up to a block
    assert dev.peak_heap < 24_000, dev.peak_heap


DOOR_APP = """
import time
from anju.shell import hw, lock_hw
from anju.lock import bolt

board = hw.load_board()
b = lock_hw.Bolt(board)
inputs = lock_hw.LockInputs(board)
cfg = bolt.BoltConfig(relock_s=2, ajar_s=10)
st, acts = lock_hw.boot_state(b, inputs, cfg)
t0 = time.ticks_ms()
SHOWN = ("door_state", "bolt_state", "relock", "forced", "alarm")

def report(acts):
    t = time.ticks_diff(time.ticks_ms(), t0)
    for a in acts:
        if a[0] in SHOWN:
            print("ACT", t, " ".join(str(x) for x in a))

time.sleep_ms(1000)
st, acts = b.run_bolt(-1, cfg, st, door=inputs, method=2)
report(acts)
while time.ticks_diff(time.ticks_ms(), t0) < 29000:
    time.sleep_ms(20)
    now = time.ticks_ms()
    if inputs.door_open() != st.door_open:
        st, acts = bolt.handle(st, ("door", inputs.door_open()), now, cfg)
        report(acts)
    st, acts = b.watch_ends(st, cfg)  # the end stops, and the core's timers
    report(acts)
    if bolt.running(st):
        b.apply(acts)
        st, acts = b.supervise(st, cfg, inputs)
        report(acts)
print("END", st.bolt, st.door)
while True:
    time.sleep(60)
"""


def _door(level):
    def fn(dev):
        dev.set_level(dev.board["pins"]["reed"], level)
    return fn


def _force(pos):
    def fn(dev):
        dev.change_chip("bolt", lambda c, now, lv: c.force(now, pos))
    return fn


@pytest.mark.parametrize("board", ["esp32", "pico_w", "esp32c3"])
def test_relock_turns_back_from_an_opening_door_and_forcing_is_seen(tmp_path, board):
    def chips(b):
        return {"bolt": bolt_chip.Chip.for_board(b, travel_s=TRAVEL_S, pos=1.0)}
    sim, dev = _sim(tmp_path, DOOR_APP, board, chips)
    seen = _play(sim, dev, [(2.5, _door(1)), (4.0, _door(0)), (6.3, _door(1)), (7.0, _door(0)),
                            (12.0, _door(1)), (24.0, _door(0)), (25.0, _force(0.5))], 30)
    acts = [a.split(" ", 1) for a in _lines(seen, "ACT")]
    what = [a[1] for a in acts]
    assert what == [
        "bolt_state 4", "bolt_state 2",       # unlocked at 1 s
        "door_state 2", "door_state 1",       # opened and shut: the relock is 2 s after
        "relock", "bolt_state 3",
        "door_state 2", "bolt_state 4", "bolt_state 2",  # opened during the relock: back
        "door_state 1", "relock", "bolt_state 3", "bolt_state 1",
        "door_state 4", "forced 1",           # opened with the bolt thrown, no unlock
        "alarm 3 1",                          # and left open past ajar_s
        "door_state 1", "alarm 3 0",
        "bolt_state 0", "forced 2"], acts            # the bolt pushed half way back
    # (the times a run's actions were printed: when the run ended)
    t = dict(zip(what, (int(a[0]) for a in acts)))  # the last time of each
    relocks = [int(a[0]) for a in acts if a[1] == "relock"]
    assert 6000 <= relocks[0] <= 6040 and 9000 <= relocks[1] <= 9040, acts  # shut + 2 s
    assert 9760 <= t["bolt_state 1"] <= 9840, acts
    assert 12000 <= t["forced 1"] <= 12030 and 22000 <= t["alarm 3 1"] <= 22030, acts
    assert 25000 <= t["bolt_state 0"] <= 25030 and 28000 <= t["forced 2"] <= 28030, acts
    assert _lines(seen, "END") == ["0 1"], seen
    # the drivers, the core and the loop: well within the board (2x on the 64-bit port)
    # the simulator's port modules intern their names in RAM (a board has them
    # in flash), so the string table grows a block while the app imports: 8 KB;
    # the boot shim that picks the slot (docs/ota.md) adds its code and names: 2-4 KB
    assert dev.peak_heap < 40_000, dev.peak_heap
