"""Siren patterns as data: (on_ms, off_ms) steps that repeat.

`ALARM` is the temporal-3 evacuation signal of ISO 8201 / NFPA 72 §18.4.2:
three 0.5 s tones separated by 0.5 s, then 1.5 s of silence, a 4 s cycle.
Chirps are the short trouble signals of smoke-alarm standards (low battery,
end of service), sounded once per occurrence by the caller.

Pure data and a step function; no hardware. The shell's timer walks a pattern
with `step` and never allocates while doing so.
"""

ALARM = ((500, 500), (500, 500), (500, 1500))
CYCLE_MS = 4000
CHIRP = ((60, 0),)
CHIRP2 = ((60, 300), (60, 0))  # end of service: two chirps
TEST = ALARM  # the self-test sounds one full alarm cycle

PATTERNS = {"alarm": ALARM, "chirp": CHIRP, "chirp2": CHIRP2, "test": TEST}
REPEATS = {"alarm": True, "chirp": False, "chirp2": False, "test": False}
TICK_MS = 10  # timer resolution used by the shell; every duration is a multiple


def total_ms(pattern):
    t = 0
    for on, off in pattern:
        t += on + off
    return t


def level_at(pattern, repeat, t_ms):
    """1 when the siren sounds at `t_ms` after the pattern started, else 0."""
    if t_ms < 0:
        return 0
    total = total_ms(pattern)
    if t_ms >= total:
        if not repeat:
            return 0
        t_ms %= total
    for on, off in pattern:
        if t_ms < on:
            return 1
        t_ms -= on
        if t_ms < off:
            return 0
        t_ms -= off
    return 0


def edges(pattern):
    """[(offset_ms, level)] for one cycle: where the siren switches."""
    out = []
    t = 0
    for on, off in pattern:
        out.append((t, 1))
        t += on
        out.append((t, 0))
        t += off
    return out
