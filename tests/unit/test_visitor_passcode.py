"""The hub's visitor-code generator (hub/visitors/passcode.py, docs/visitors.md)."""
import pytest

from hub.visitors import passcode as pc

KEY = bytes(range(16))
NOW = 1_796_000_400  # a quarter hour, Unix s


def test_code_is_ten_digits_and_carries_its_window():
    code = pc.make(KEY, NOW + 600, NOW + 3 * 3600, False, NOW)
    assert len(code.digits) == 10 and code.digits.isdigit()
    value = int(code.digits)
    payload = value % pc.PAYLOAD_MOD
    assert payload % pc.START_MOD == code.start_slot % pc.START_MOD
    assert (payload // pc.START_MOD) % 32 == code.duration_index
    assert payload // (pc.START_MOD * 32) == 0
    assert value // pc.PAYLOAD_MOD == code.check < pc.CHECK_MOD


def test_window_is_rounded_inwards():
    # asked 10:05 .. 12:55 -> carried 10:15 .. 12:45 (start up, length down to 10 slots)
    start = NOW + 5 * 60
    until = NOW + 2 * 3600 + 55 * 60
    code = pc.make(KEY, start, until, False, NOW)
    assert code.valid_from == NOW + 900
    assert code.valid_until <= until
    assert code.valid_until - code.valid_from == pc.DURATIONS[code.duration_index] * pc.SLOT_S
    assert pc.DURATIONS[code.duration_index] == 10


def test_long_window_takes_the_longest_duration_that_fits():
    code = pc.make(KEY, NOW, NOW + 10 * 86400, False, NOW)
    assert pc.DURATIONS[code.duration_index] == 960  # 10 days
    code = pc.make(KEY, NOW, NOW + 20 * 86400, False, NOW)
    assert pc.DURATIONS[code.duration_index] == 1344  # capped at 14 days


@pytest.mark.parametrize("frm,until,field", [
    (NOW + 3600, NOW + 1800, "valid_until"),          # ends before it starts
    (NOW + 3600, NOW + 3600, "valid_until"),          # empty
    (NOW + 60, NOW + 900, "valid_until"),             # no whole quarter hour inside
    (NOW - 7200, NOW - 3600, "valid_until"),          # already over
    (NOW + 28 * 86400, NOW + 31 * 86400, "valid_from"),  # ends > 30 days out
])
def test_windows_no_code_can_carry_name_the_field(frm, until, field):
    with pytest.raises(pc.CodeError) as err:
        pc.make(KEY, frm, until, False, NOW)
    assert err.value.field == field


def test_one_time_flag_changes_the_code():
    a = pc.make(KEY, NOW, NOW + 3600, False, NOW)
    b = pc.make(KEY, NOW, NOW + 3600, True, NOW)
    assert a.digits != b.digits and b.one_time and not a.one_time


def test_key_changes_the_check_not_the_window():
    a = pc.make(KEY, NOW, NOW + 3600, False, NOW)
    b = pc.make(bytes(16), NOW, NOW + 3600, False, NOW)
    assert int(a.digits) % pc.PAYLOAD_MOD == int(b.digits) % pc.PAYLOAD_MOD
    assert a.check != b.check  # (equal with probability 1/54253 for these keys: they differ)


def test_taken_codes_make_the_next_pass_shorter_or_later_never_wider():
    frm, until = NOW, NOW + 2 * 3600
    seen = []
    for _ in range(12):
        code = pc.make(KEY, frm, until, True, NOW, taken=seen)
        assert code.digits not in seen
        assert frm <= code.valid_from and code.valid_until <= until
        seen.append(code.digits)
    assert len(set(seen)) == 12


def test_a_full_window_is_refused():
    frm, until = NOW, NOW + 900  # one slot: a single possible code
    first = pc.make(KEY, frm, until, False, NOW)
    with pytest.raises(pc.CodeError):
        pc.make(KEY, frm, until, False, NOW, taken=[first.digits])
