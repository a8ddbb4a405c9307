"""The lock's keypad matrix and bolt models (simulator/chips/keypad.py,
bolt.py) on the host: what the firmware's pins would read."""
import json

import pytest

from host_tools import boards
from simulator.chips import bolt, keypad

A, B, LOCKED, UNLOCKED, ADC = 27, 12, 39, 2, 35


def _bolt(**kw):
    return bolt.Chip(A, B, LOCKED, UNLOCKED, ADC, **kw)


def _drive(chip, now, a, b):
    chip.pin_written(A, a, now, {})
    chip.pin_written(B, b, now, {})


def _ma(chip, now):
    raw = chip.adc(ADC, now, {})
    return raw * chip.full_scale_mv / 65535 * 1000 / chip.mv_per_a


def _ends(chip, now):
    return chip.level(LOCKED, now, {}), chip.level(UNLOCKED, now, {})


def test_throw_takes_the_travel_time_and_closes_the_locked_end_stop():
    c = _bolt()
    assert _ends(c, 0.0) == (1, 0)
    _drive(c, 1.0, 1, 0)
    assert c.level(UNLOCKED, 1.03, {}) == 1          # off the unlocked end
    assert c.level(LOCKED, 1.0 + 0.97 * 0.8 - 0.005, {}) == 1
    assert c.level(LOCKED, 1.0 + 0.97 * 0.8 + 0.005, {}) == 0
    assert c.pos == pytest.approx(0.97 * 0.8 / 0.8 + 0.005 / 0.8, abs=1e-6)
    _drive(c, 1.8, 0, 0)  # coast: the worm gear holds it
    assert c.level(LOCKED, 5.0, {}) == 0 and c.pos == 1.0
    _drive(c, 6.0, 0, 1)
    assert _ends(c, 6.4) == (1, 1) and c.pos == pytest.approx(0.5)
    _drive(c, 6.4, 1, 1)  # brake
    assert c.pos == pytest.approx(0.5) and c.current_ma(6.5) == 0
    assert c.level(LOCKED, 9.0, {}) == 1 and c.pos == pytest.approx(0.5)


def test_current_inrush_running_and_stall_at_the_end():
    c = _bolt()
    _drive(c, 0.0, 1, 0)
    assert _ma(c, 0.0) == pytest.approx(1200, abs=2)
    assert _ma(c, 0.05) == pytest.approx(675, abs=2)
    assert _ma(c, 0.1) == pytest.approx(150, abs=2)
    assert _ma(c, 0.5) == pytest.approx(150, abs=2)
    assert _ma(c, 0.81) == pytest.approx(1200, abs=2)  # at the mechanical end, still driven
    _drive(c, 0.9, 0, 0)
    assert c.adc(ADC, 0.9, {}) == 0


def test_obstruction_stops_the_bolt_throwing_but_not_retracting():
    c = _bolt()
    _drive(c, 0.0, 1, 0)
    c.obstruct(0.3, None)
    assert c.pos == pytest.approx(0.375)
    assert _ma(c, 0.6) == pytest.approx(1200, abs=2) and c.pos == pytest.approx(0.375)
    _drive(c, 0.6, 0, 1)  # back: the obstruction is in the throwing direction only
    assert _ma(c, 0.75) == pytest.approx(150, abs=2)
    assert c.level(UNLOCKED, 0.6 + 0.375 * 0.8, {}) == 0
    c.clear(2.0)
    _drive(c, 2.0, 1, 0)
    assert c.level(LOCKED, 2.8, {}) == 0


def test_obstruction_for_a_while_and_both_ways():
    c = _bolt()
    c.obstruct(0.0, 0.5, 0)
    _drive(c, 0.0, 1, 0)
    assert _ma(c, 0.4) == pytest.approx(1200, abs=2) and c.pos == 0.0
    c.pin_written(B, 1, 0.45, {})  # both high: braking, and nothing moves
    c.pin_written(B, 0, 0.45, {})
    assert c.level(LOCKED, 0.5 + 0.8, {}) == 0 and c.block is None


def test_key_turn_and_force_move_it_without_the_motor():
    c = _bolt(pos=1.0)
    c.key_turn(10.0, "unlocked", 0.6)
    assert _ends(c, 10.3) == (1, 1)
    assert _ends(c, 10.6) == (1, 0) and c.manual is None
    assert c.adc(ADC, 10.6, {}) == 0
    c.key_turn(11.0, "locked", 0.5)
    assert _ends(c, 11.6) == (0, 1)
    c.force(12.0, 0.4)
    assert _ends(c, 12.0) == (1, 1)
    with pytest.raises(ValueError):
        c.key_turn(13.0, "open")


def test_bolt_state_round_trips_through_json():
    c = bolt.Chip.for_board(boards.load("pico_w"), travel_s=1.0)
    c.pin_written(0, 1, 0.0, {})  # the Pico W's motor_a
    c.obstruct(0.2, 0.4)
    again = bolt.Chip.restore(json.loads(json.dumps(c.state())))
    assert again.state() == c.state()
    assert again.pins == [0, 1, 2, 3, 26] and again.full_scale_mv == 3300
    assert again.level(2, 1.3, {}) == 0 and c.level(2, 1.3, {}) == 0


ROWS, COLS = [16, 17, 21, 22], [13, 14, 15, 4]


def _scan(chip, now):
    """What a scan reads: one row low at a time."""
    seen = []
    for r in range(4):
        levels = {pin: (0 if i == r else 1) for i, pin in enumerate(ROWS)}
        for c in range(4):
            if chip.level(COLS[c], now, levels) == 0:
                seen.append(keypad.KEYS[r][c])
    return seen


def test_a_pressed_key_joins_its_row_and_column():
    k = keypad.Chip(ROWS, COLS, bounce_ms=0)
    assert _scan(k, 0.0) == []
    k.press("5", 1.0, 1.2)
    assert _scan(k, 1.1) == ["5"]
    assert _scan(k, 1.2) == []
    k.press("#", 2.0)
    assert _scan(k, 9.0) == ["#"]
    k.release("#", 9.5)
    assert _scan(k, 9.5) == [] and k.down(9.6) == []


def test_all_rows_low_any_key_pulls_its_column():
    k = keypad.Chip(ROWS, COLS, bounce_ms=0)
    low = {pin: 0 for pin in ROWS}
    k.press("8", 0.0)
    assert [k.level(c, 0.1, low) for c in COLS] == [1, 0, 1, 1]
    assert [k.level(c, 0.1, {}) for c in COLS] == [1, 1, 1, 1]  # rows idle high


def test_three_keys_ghost_the_fourth():
    k = keypad.Chip(ROWS, COLS, bounce_ms=0)
    for key in "125":  # 1 (r0c0), 2 (r0c1), 5 (r1c1): 4 (r1c0) reads pressed too
        k.press(key, 0.0)
    assert sorted(_scan(k, 0.1)) == sorted("1245")


def test_contacts_bounce_at_press_and_release():
    k = keypad.Chip(ROWS, COLS, bounce_ms=5)
    k.press("0", 1.0, 1.1)
    seen = [bool(_scan(k, 1.0 + i / 1000 + 0.0005)) for i in range(7)]
    assert seen == [True, False, True, False, True, True, True]
    after = [bool(_scan(k, 1.1 + i / 1000 + 0.0005)) for i in range(7)]
    assert after == [False, True, False, True, False, False, False]


def test_keypad_checks_and_round_trip():
    with pytest.raises(ValueError):
        keypad.Chip(ROWS[:3], COLS)
    k = keypad.Chip.for_board(boards.load("esp32"))
    with pytest.raises(ValueError):
        k.press("E", 0.0)
    k.press("*", 0.0, 0.5)
    again = keypad.Chip.restore(json.loads(json.dumps(k.state())))
    assert again.state() == k.state() and again.rows == ROWS
