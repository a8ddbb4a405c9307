"""The hub's clock interface: `now()` in epoch seconds and `sleep_until()`.

No hub module reads wall time directly; the service receives a clock, so tests
and the simulator can run 12 hours in milliseconds (simulator.clock.VirtualClock
has the same two methods).
"""
import asyncio
import time


class SystemClock:
    def now(self):
        return time.time()

    async def sleep_until(self, deadline):
        delay = deadline - self.now()
        if delay > 0:
            await asyncio.sleep(delay)
