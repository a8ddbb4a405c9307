"""Keypad entry assembly (anju.lock.keys): plain functions and asserts, run
under CPython and real MicroPython."""
from anju.lock import keys


def feed_all(entry, text, t=0, step=100):
    out = []
    for ch in text:
        r = entry.feed(ch, t)
        t += step
        if r is not None:
            out.append(r)
    return out, t


def test_a_pin_ends_with_hash():
    e = keys.Entry()
    out, _ = feed_all(e, "1234#")
    assert out == [("pin", "1234")]
    assert not e.busy()


def test_star_first_starts_a_programming_entry():
    e = keys.Entry()
    out, _ = feed_all(e, "*9876#")
    assert out == [("program", "9876")]


def test_star_later_clears_what_was_typed():
    e = keys.Entry()
    out, _ = feed_all(e, "12*5678#")
    assert out == [("pin", "5678")]


def test_lone_hash_is_nothing_and_letters_are_ignored():
    e = keys.Entry()
    out, _ = feed_all(e, "#A1B2C3D4#")
    assert out == [("pin", "1234")]


def test_an_over_long_entry_does_not_match_its_prefix():
    e = keys.Entry()
    out, _ = feed_all(e, "1234567890123#")
    assert out == [("pin", "12345678901")]  # neither a PIN nor a ten-digit visitor code
    assert len(out[0][1]) == keys.MAX_DIGITS + 1


def test_a_short_entry_is_returned_as_typed():
    e = keys.Entry()
    out, _ = feed_all(e, "12#")
    assert out == [("pin", "12")]


def test_an_unfinished_entry_is_dropped_after_the_timeout():
    e = keys.Entry()
    feed_all(e, "12", 0)
    assert e.busy()
    assert not e.expired(keys.TIMEOUT_MS - 1)
    assert e.expired(100 + keys.TIMEOUT_MS)
    out, _ = feed_all(e, "34#", 20000)
    assert out == [("pin", "34")]
