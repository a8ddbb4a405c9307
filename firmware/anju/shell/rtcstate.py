"""State that survives deep sleep, in RTC memory (lost on power-off)."""
import struct

import machine

MAGIC = 0xA17E
FORMAT = ">HbbbbiI"


def _memory():
    rtc = machine.RTC()
    # rp2 has no RTC memory; those boards light-sleep and keep RAM instead
    return rtc if hasattr(rtc, "memory") else None


def load():
    """(state_tuple, last_counter) or None after a power-on."""
    rtc = _memory()
    if rtc is None:
        return None
    raw = rtc.memory()
    if not raw or len(raw) != struct.calcsize(FORMAT):
        return None
    fields = struct.unpack(FORMAT, raw)
    if fields[0] != MAGIC:
        return None
    return fields[1:6], fields[6]


def save(state_tuple, last_counter):
    rtc = _memory()
    if rtc is None:
        return
    rtc.memory(struct.pack(FORMAT, MAGIC, state_tuple[0], state_tuple[1],
                                     state_tuple[2], state_tuple[3], state_tuple[4],
                                     last_counter))
