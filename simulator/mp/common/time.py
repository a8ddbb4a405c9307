"""`time` of the simulated board: the virtual clock.

ticks_* wrap at 2**30 as on the esp32 and rp2 ports (MICROPY_PY_TIME_TICKS_PERIOD).
time() counts from the port's epoch: 2000-01-01 on esp32, 1970-01-01 on rp2
(MICROPY_EPOCH_IS_1970 in ports/rp2/mpconfigport.h). sleep_ms/sleep_us/sleep
pass virtual time: on the spot when nothing else can happen meanwhile, else
through the simulator, which resumes the board at the wake time.
"""
import sys

import _sim

_p = sys.path
sys.path = []
try:
    import time as _host  # the unix port's own module, for gmtime/mktime arithmetic
finally:
    sys.path = _p

_PERIOD = 1 << 30
_HALF = 1 << 29
# seconds from the simulator's epoch (1970) to the board's
_EPOCH = _sim.boot["epoch_offset"]


def ticks_ms():
    return int(_sim.now * 1000) & (_PERIOD - 1)


def ticks_us():
    return int(_sim.now * 1000000) & (_PERIOD - 1)


ticks_cpu = ticks_us


def ticks_diff(a, b):
    return ((a - b + _HALF) & (_PERIOD - 1)) - _HALF


def ticks_add(a, delta):
    return (a + delta) & (_PERIOD - 1)


def time():
    return int(_sim.now) - _EPOCH + _sim.rtc_offset


def time_ns():
    return int(_sim.now * 1000000) * 1000 - (_EPOCH - _sim.rtc_offset) * 1000000000


def gmtime(secs=None):
    if secs is None:
        secs = time()
    return _host.gmtime(secs + _EPOCH)[:8]


localtime = gmtime


def mktime(tup):
    return _host.mktime(tup) - _EPOCH


def sleep_ms(ms):
    if ms > 0:
        _sim.wait("sleep", _sim.now + ms / 1000)


def sleep_us(us):
    if us > 0:
        _sim.wait("sleep", _sim.now + us / 1000000)


def sleep(s):
    if s > 0:
        _sim.wait("sleep", _sim.now + s)
