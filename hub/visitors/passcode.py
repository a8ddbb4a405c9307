"""Offline visitor codes: the hub's generator (docs/visitors.md, "Offline codes").

A visitor code is ten digits that a smart lock checks on its own, with no hub,
from its clock and a key it shares with the hub. The code carries its validity
window (start slot and one of 32 durations) and a one-time flag in the clear
and a keyed check value over them, so it opens only inside its window, whether
the lock is online or not. The lock's verifier is
firmware/anju/lock/visitor.py; tests/vectors/visitor_codes.json is checked by
both.

    visit_key = HMAC-SHA256(frame_key, "anju-lock-visit")
    payload   = start_slot mod 2880 + 2880 * (duration_index + 32 * one_time)
    check     = u64be(HMAC-SHA256(visit_key, "visit" 0x00 u32be(start_slot)
                                  u8(duration_index) u8(one_time))[:8]) mod 54253
    code      = check * 184320 + payload, as ten digits with leading zeros

Times are device time: seconds since 2000-01-01 UTC (MicroPython's epoch), a
slot is 900 s. A window must end less than 30 days (2880 slots) after the code
is made, so that until its window the lock takes it for a code of the start
2880 slots later (not yet valid) and never for one of 30 days earlier.

Also here for the hub's other uses: `parse` (the fields of ten digits),
`resolve` (a lock's code to its live window, for a revocation) and the
identity the lock reports for a code (`ident`, `parse_ident`).
"""
import hashlib
import hmac
import struct

MP_EPOCH_OFFSET = 946684800  # Unix time of 2000-01-01 UTC
SLOT_S = 900
START_MOD = 2880  # slots in 30 days
DURATIONS = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 96, 144, 192,
             288, 384, 480, 576, 672, 768, 864, 960, 1056, 1152, 1248, 1344)  # in slots
PAYLOAD_MOD = START_MOD * len(DURATIONS) * 2  # 184,320
CHECK_MOD = 10 ** 10 // PAYLOAD_MOD  # 54,253
CODE_DIGITS = 10


class CodeError(ValueError):
    """A window no code can express; `field` names what to change."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field


def visit_key(frame_key):
    return hmac.new(bytes(frame_key), b"anju-lock-visit", hashlib.sha256).digest()


def check_value(vkey, start_slot, duration_index, one_time):
    msg = b"visit\x00" + struct.pack(">IBB", start_slot, duration_index, 1 if one_time else 0)
    digest = hmac.new(vkey, msg, hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") % CHECK_MOD


def encode(vkey, start_slot, duration_index, one_time):
    """The ten digits for an exact slot window."""
    if not 0 <= start_slot <= 0xFFFFFFFF:
        raise CodeError("valid_from", "start slot out of range")
    if not 0 <= duration_index < len(DURATIONS):
        raise CodeError("valid_until", "duration index out of range")
    ot = 1 if one_time else 0
    payload = start_slot % START_MOD + START_MOD * (duration_index + len(DURATIONS) * ot)
    code = check_value(vkey, start_slot, duration_index, ot) * PAYLOAD_MOD + payload
    return "%010d" % code


class Code:
    """A made code and the window the lock will honour (Unix seconds)."""

    __slots__ = ("digits", "start_slot", "duration_index", "one_time", "check")

    def __init__(self, digits, start_slot, duration_index, one_time, check):
        self.digits = digits
        self.start_slot = start_slot
        self.duration_index = duration_index
        self.one_time = one_time
        self.check = check

    @property
    def valid_from(self):
        return self.start_slot * SLOT_S + MP_EPOCH_OFFSET

    @property
    def valid_until(self):
        return (self.start_slot + DURATIONS[self.duration_index]) * SLOT_S + MP_EPOCH_OFFSET


def fit(valid_from, valid_until, now):
    """The slot window a code can carry inside [valid_from, valid_until) (Unix s).

    The start rounds up to a slot and the length down to one of DURATIONS, so
    the lock never opens outside what was asked. Returns (start_slot, index).
    """
    if valid_until <= valid_from:
        raise CodeError("valid_until", "the window ends before it starts")
    if valid_until <= now:
        raise CodeError("valid_until", "the window has already ended")
    start = -(-(int(valid_from) - MP_EPOCH_OFFSET) // SLOT_S)
    end = (int(valid_until) - MP_EPOCH_OFFSET) // SLOT_S
    if start < 0:
        raise CodeError("valid_from", "before 2000-01-01")
    room = end - start
    if room < DURATIONS[0]:
        raise CodeError("valid_until", "a visitor code needs a window of at least 15 minutes "
                                       "on quarter hours")
    index = max(i for i, d in enumerate(DURATIONS) if d <= room)
    now_slot = (int(now) - MP_EPOCH_OFFSET) // SLOT_S
    if start + DURATIONS[index] - now_slot >= START_MOD:
        raise CodeError("valid_from", "a visitor code must end within 30 days of being issued")
    return start, index


def make(frame_key, valid_from, valid_until, one_time, now, taken=()):
    """A code for the lock whose frame key is `frame_key`.

    `taken` holds the digits of the lock's other live codes: two passes with the
    same window would share a code (and a one-time use of one would spend the
    other), so the window is shortened, then started a slot later, until the
    code is new.
    """
    start, index = fit(valid_from, valid_until, now)
    end = start + DURATIONS[index]
    vkey = visit_key(frame_key)
    taken = set(taken)
    for s in range(start, end):
        for i in range(index, -1, -1):
            if s + DURATIONS[i] > end:
                continue
            digits = encode(vkey, s, i, one_time)
            if digits not in taken:
                return Code(digits, s, i, bool(one_time), int(digits) // PAYLOAD_MOD)
    raise CodeError("valid_from", "this lock has too many codes for the same window")


def parse(digits):
    """(check, start residue, duration index, one-time) of a code's ten digits;
    CodeError("digits") for anything that is not one."""
    if not isinstance(digits, str) or len(digits) != CODE_DIGITS or not digits.isascii() \
            or not digits.isdigit():
        raise CodeError("digits", "a visitor code is ten digits")
    c = int(digits)
    check, payload = divmod(c, PAYLOAD_MOD)
    if check >= CHECK_MOD:
        raise CodeError("digits", "not a visitor code")
    return (check, payload % START_MOD, (payload // START_MOD) % len(DURATIONS),
            payload // (START_MOD * len(DURATIONS)))


def resolve(frame_key, digits, now):
    """The code `digits` of the lock whose frame key is `frame_key` whose
    window has not ended at `now` (Unix s): the window the lock will take it
    for now, or the one 30 days later. CodeError("digits") for a code this
    lock did not get from the hub, or one whose window has ended."""
    check, residue, index, one_time = parse(digits)
    vkey = visit_key(frame_key)
    now_slot = (int(now) - MP_EPOCH_OFFSET) // SLOT_S
    current = now_slot - (now_slot - residue) % START_MOD
    for start in (current, current + START_MOD):
        if start >= 0 and hmac.compare_digest(
                check_value(vkey, start, index, one_time).to_bytes(2, "big"),
                check.to_bytes(2, "big")):
            if (start + DURATIONS[index]) * SLOT_S + MP_EPOCH_OFFSET <= now:
                raise CodeError("digits", "this visitor code's window has ended")
            return Code(digits, start, index, bool(one_time), check)
    raise CodeError("digits", "not a visitor code of this lock")


def ident(start_slot, check):
    """The code's identity as the lock reports it (ACCESS, CMD_RESULT): v:<slot>:<check>."""
    return "v:%d:%d" % (start_slot, check)


MAX_START_SLOT = 0xFFFFFFFF // SLOT_S  # the last slot a lock's u32 device time reaches


def parse_ident(text):
    """(start_slot, check) of an identity the lock reported, or None when it is
    not one (range-checked: a slot a lock's clock can reach, a check value)."""
    if not isinstance(text, str) or not text.startswith("v:"):
        return None
    parts = text[2:].split(":")
    if len(parts) != 2:
        return None
    for p in parts:
        if not p.isascii() or not p.isdigit() or (len(p) > 1 and p[0] == "0"):
            return None
    start, check = int(parts[0]), int(parts[1])
    if start > MAX_START_SLOT or check >= CHECK_MOD:
        return None
    return start, check
