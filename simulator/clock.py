"""The simulator's virtual clock (the hub's wall clock is hub.clock.SystemClock).

`VirtualClock` only moves when the simulator
advances it, so 12 simulated hours pass in milliseconds; asyncio code waits on
it with `sleep_until`, and the simulator asks `next_deadline()` when the next
timer is due. Both expose `now()` as epoch seconds (float).
"""
import asyncio
import heapq
import itertools

MP_EPOCH_OFFSET = 946684800  # MicroPython's time.time() counts from 2000-01-01
START = 1_764_000_000.0  # where a run's clock starts (2025-11-24 16:00 UTC)


def fmt_offset(seconds):
    """Seconds from a run's start as the timeline prints them: +HH:MM:SS."""
    seconds = int(round(seconds))
    sign = "-" if seconds < 0 else "+"
    seconds = abs(seconds)
    return "%s%02d:%02d:%02d" % (sign, seconds // 3600, seconds // 60 % 60, seconds % 60)


class VirtualClock:
    def __init__(self, start=START):
        self._now = float(start)
        self._sleepers = []
        self._seq = itertools.count()

    def now(self):
        return self._now

    async def sleep_until(self, deadline):
        if deadline <= self._now:
            await asyncio.sleep(0)
            return
        fut = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._seq), fut))
        try:
            await fut
        finally:
            if not fut.done():
                fut.cancel()

    def next_deadline(self):
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)  # cancelled waiters
        return self._sleepers[0][0] if self._sleepers else None

    def advance_to(self, t):
        """Move time forward to `t` and release every waiter due by then."""
        if t < self._now:
            raise ValueError("time cannot go backwards (%s < %s)" % (t, self._now))
        self._now = float(t)
        while self._sleepers and self._sleepers[0][0] <= t:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    def advance(self, seconds):
        self.advance_to(self._now + seconds)
