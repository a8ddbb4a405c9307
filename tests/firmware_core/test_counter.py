"""Frame counters (anju.counter): never reused across deep sleep and power cuts.

Plain functions and asserts so the same file runs under CPython (pytest) and
under MicroPython (unix-port harness).
"""
from anju import counter


class Device:
    """The shell's use of the pure core: RTC memory (lost on a power cut) and a
    flash reservation written *before* a counter above the old one is used."""

    def __init__(self):
        self.flash = 0
        self.rtc = None
        self.flash_writes = 0

    def wake(self):
        return counter.resume(self.rtc, self.flash)

    def send(self, last):
        n, reserve = counter.take(last, self.flash)
        if reserve is not None:
            self.flash = reserve
            self.flash_writes += 1
        self.rtc = n
        return n

    def power_cut(self):
        self.rtc = None


def test_resume_after_power_on_returns_reservation():
    assert counter.resume(None, 0) == 0
    assert counter.resume(None, 128) == 128
    assert counter.resume(None, counter.MAX) == counter.MAX


def test_resume_after_deep_sleep_returns_rtc_value():
    assert counter.resume(5, 64) == 5
    assert counter.resume(64, 64) == 64
    assert counter.resume(0, 64) == 0


def test_rtc_value_above_reservation_is_unsafe():
    # RTC memory holding more than was ever reserved is garbage: trust flash
    assert counter.resume(65, 64) == 64
    assert counter.resume(counter.MAX, 64) == 64


def test_take_within_reservation_needs_no_flash_write():
    assert counter.take(0, 64) == (1, None)
    assert counter.take(62, 64) == (63, None)
    assert counter.take(63, 64) == (64, None)


def test_take_reserves_exactly_when_crossing():
    assert counter.take(0, 0) == (1, counter.BLOCK)
    assert counter.take(64, 64) == (65, 64 + counter.BLOCK)
    n, reserve = counter.take(1000, 1000)
    assert n == 1001 and reserve == 1001 + counter.BLOCK - 1
    assert reserve >= n


def test_reservation_is_capped_at_max():
    assert counter.take(counter.MAX - 10, counter.MAX - 10) == (counter.MAX - 9, counter.MAX)
    assert counter.take(counter.MAX - 1, counter.MAX - 1) == (counter.MAX, counter.MAX)
    assert counter.take(counter.MAX - 1, counter.MAX) == (counter.MAX, None)


def test_exhaustion_raises():
    for last, reserved in ((counter.MAX, counter.MAX), (counter.MAX, 0)):
        try:
            counter.take(last, reserved)
        except counter.CounterExhausted:
            pass
        else:
            raise AssertionError("took a counter after %d" % last)


def test_deep_sleep_cycles_are_consecutive_and_write_flash_once_per_block():
    dev = Device()
    last = dev.wake()
    seen = []
    for _ in range(3 * counter.BLOCK):
        last = dev.send(last)
        seen.append(last)
        last = dev.wake()  # deep sleep: RTC kept
    assert seen == list(range(1, 3 * counter.BLOCK + 1))
    assert dev.flash_writes == 3
    assert dev.flash >= seen[-1]


def test_power_cuts_never_reuse_a_counter():
    dev = Device()
    sent = []
    # take a few, lose power at different points inside and at the edge of a block
    for burst in (5, 1, 64, 63, 65, 0, 130, 2):
        last = dev.wake()
        for _ in range(burst):
            n = dev.send(last)
            assert not sent or n > max(sent), (n, max(sent))
            assert n <= dev.flash, "used %d above the reservation %d" % (n, dev.flash)
            sent.append(n)
            last = n
        dev.power_cut()
    assert len(set(sent)) == len(sent) == 5 + 1 + 64 + 63 + 65 + 130 + 2
    # after the last cut the next value is above everything sent
    assert dev.send(dev.wake()) > max(sent)


def test_power_cut_resumes_above_reservation_not_above_last():
    dev = Device()
    last = dev.wake()
    for _ in range(3):
        last = dev.send(last)
    assert last == 3 and dev.flash == counter.BLOCK
    dev.power_cut()
    resumed = dev.wake()
    assert resumed == counter.BLOCK
    assert dev.send(resumed) == counter.BLOCK + 1
    assert dev.flash == 2 * counter.BLOCK


def test_frame_counter_over_storage_survives_power_cuts():
    from anju import pqueue
    st = pqueue.MemoryStorage()
    c = counter.FrameCounter(st, None, "ctr")
    seen = [c.next() for _ in range(counter.BLOCK + 3)]
    assert seen == list(range(1, counter.BLOCK + 4))
    # the reservation was on flash before each block was used
    assert c.reserved >= seen[-1]
    # power cut: RTC lost, the device resumes above its reservation
    c2 = counter.FrameCounter(st, None, "ctr")
    assert c2.next() > seen[-1]
    # deep-sleep wake: RTC kept, the counter continues exactly
    c3 = counter.FrameCounter(st, c2.last, "ctr")
    assert c3.next() == c2.last + 1
