"""Frame counters that are never reused, not even after a power cut.

The live counter rides in RTC memory across deep sleep. Flash holds a
*reservation*: the highest counter the device may use before it must write a
new reservation. After a power cut the device resumes above the reservation,
so a value that might have been sent is never sent again. Writing flash once
per `BLOCK` frames keeps wear low.

`take` is pure; the shell persists `reserve` to flash *before* the returned
counter is used.
"""

import struct

BLOCK = 64
MAX = 0xFFFFFFFF


class CounterExhausted(Exception):
    """The 32-bit counter space is used up; the device needs new keys."""


def resume(rtc_last, flash_reserved):
    """Last used counter after a wake.

    `rtc_last` is None when RTC memory was lost (power-on), in which case every
    value up to the flash reservation may have been used.
    """
    if rtc_last is None or rtc_last > flash_reserved:
        return flash_reserved
    return rtc_last


def take(last, reserved):
    """Next counter and, when flash must be updated first, the new reservation.

    Returns (counter, new_reserved_or_None).
    """
    n = last + 1
    if n > MAX:
        raise CounterExhausted()
    if n > reserved:
        return n, min(n + BLOCK - 1, MAX)
    return n, None


class FrameCounter:
    """A device's frame counter over flash storage.

    `storage` has read(name) -> bytes or None and write(name, data) (atomic
    replace), like the persistent queue's; the reservation is a big-endian u32
    in file `name`. `rtc_last` is the counter kept in RTC memory, None after a
    power-on.
    """

    def __init__(self, storage, rtc_last, name="ctr"):
        self._st = storage
        self._name = name
        raw = storage.read(name)
        self.reserved = struct.unpack(">I", raw)[0] if raw is not None and len(raw) == 4 else 0
        self.last = resume(rtc_last, self.reserved)

    def next(self):
        """The next counter; the new reservation reaches flash before it is used."""
        n, reserve = take(self.last, self.reserved)
        if reserve is not None:
            self._st.write(self._name, struct.pack(">I", reserve))
            self.reserved = reserve
        self.last = n
        return n
