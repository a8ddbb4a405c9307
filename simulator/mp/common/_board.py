"""What the esp32 and rp2 `machine` modules share in the simulator: the pin
levels the world drives, interrupts, the ADC as the host measures it, PWM,
timers that run on virtual time and RTC memory. Each port's machine.py
builds its own classes on these, with that port's constants, arguments and
errors.
"""
import _sim

from binascii import hexlify, unhexlify


class PinCore:
    """One GPIO: its level lives in _sim.levels so the world can drive it."""

    def __init__(self, pin_id):
        self._id = pin_id
        self._mode = None
        self._pull = None

    def _setup(self, mode, pull, value, out_modes):
        if mode is not None and mode != -1:
            self._mode = mode
        if pull is not None and pull != -1:
            self._pull = pull
        if value is not None:
            self._write(value)
        elif self._mode in out_modes and self._id not in _sim.levels:
            self._write(0)
        _sim.levels.setdefault(self._id, 1)  # inputs idle high (pulled up) until driven

    def _write(self, v):
        v = 1 if v else 0
        if _sim.levels.get(self._id) != v:
            if self._id in _sim.watch:
                _sim.pin_written(self._id, v)
            _sim.levels[self._id] = v
            _sim.outs[self._id] = v

    def value(self, v=None):
        if v is None:
            if self._id in _sim.derived:
                return _sim.chip_level(self._id)
            return _sim.levels.get(self._id, 1)
        self._write(v)

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self._write(1)

    def off(self):
        self._write(0)

    def _set_irq(self, handler, rising, falling):
        _sim.irq_handlers[self._id] = (handler, self)
        _sim.post({"irq": [self._id, 1 if rising else 0, 1 if falling else 0]})


def adc_read_u16(pin_id):
    """The raw 16-bit reading the host's world gives this analog pin now: a
    level that holds until the next hand-over (a battery) came with the world,
    a smoke chamber's model came with it too; anything else is asked for."""
    chip = _sim.adc_models.get(pin_id)
    if chip is not None:
        return chip.adc(pin_id, _sim.now, _sim.levels)
    v = _sim.adc.get(pin_id)
    if v is None:
        v = _sim.read_chamber(pin_id)
    if v is not None:
        return v
    return _sim.call({"adc": [pin_id, _sim.now]})


class PWMCore:
    def __init__(self, pin_id, freq, duty_u16):
        self._id = pin_id
        self._freq = freq
        self._duty = None
        if duty_u16 is not None:
            self.duty_u16(duty_u16)

    def freq(self, f=None):
        if f is None:
            return self._freq
        self._freq = f

    def duty_u16(self, d=None):
        if d is None:
            return self._duty or 0
        if not 0 <= d <= 65535:
            raise ValueError("duty_u16 must be from 0 to 65535")
        if d != self._duty:
            self._duty = d
            _sim.post({"pwm": [self._id, d, _sim.now]})

    def deinit(self):
        self.duty_u16(0)


class TimerCore:
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self):
        self.due = None
        self._period = 0
        self._mode = 0
        self._cb = None
        _sim.timers.append(self)

    def _start(self, mode, period_ms, callback):
        if period_ms <= 0:
            raise ValueError("period must be positive")
        self._mode = mode
        self._period = period_ms / 1000
        self._cb = callback
        self.due = _sim.now + self._period

    def deinit(self):
        self.due = None

    def fire(self):
        at = self.due
        self.due = at + self._period if self._mode == self.PERIODIC else None
        if self._cb is not None:
            self._cb(self)


class RTCCore:
    def __init__(self, id=0):
        pass

    def datetime(self, datetimetuple=None):
        import time
        if datetimetuple is not None:
            # (year, month, day, weekday, hours, minutes, seconds, subseconds):
            # the clock jumps to it (the week day is the chip's to work out)
            y, mo, d, _, h, mi, s = datetimetuple[:7]
            _sim.rtc_offset += time.mktime((y, mo, d, h, mi, s, 0, 0)) - time.time()
            return None
        t = time.gmtime()
        return (t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0)


def rtc_memory(data=None):
    size = _sim.boot["board"]["sleep"]["rtc_memory_bytes"]
    if data is None:
        return unhexlify(_sim.boot.get("rtc", ""))
    if len(data) > size:
        raise ValueError("buffer too long")
    _sim.boot["rtc"] = hexlify(bytes(data)).decode()
    _sim.post({"rtc": _sim.boot["rtc"]})


def lightsleep(ms):
    _sim.wait("light", _sim.now + (ms / 1000 if ms else 1e9))


def deepsleep(ms, wake):
    """End the boot; the host wakes the chip at the time or on a wake pin."""
    raise _sim.DeepSleep(_sim.now + (ms / 1000 if ms else 1e12), wake)


def reset():
    raise _sim.Reset()


def reset_cause(table):
    return table.get(_sim.boot["cause"], table["PWRON_RESET"])


def unique_id():
    return unhexlify(_sim.boot["mac"])


def soft_reset():
    raise _sim.Reset()


def idle():
    pass


def disable_irq():
    return 0


def enable_irq(state=0):
    pass
