"""`machine` of the rp2 port (MicroPython 1.27) on the Raspberry Pi Pico W.

Constants, arguments and errors follow ports/rp2 (machine_pin.c,
modmachine.c, machine_adc.c, machine_timer.c, machine_wdt.c): no RTC memory,
only PWRON_RESET and WDT_RESET, virtual timers only (id -1), lightsleep
refuses 2**32 // 1000 ms and more, and deepsleep is a light sleep followed by
a reset (through the watchdog, so the next boot reads WDT_RESET).
"""
import _sim
import _board

PWRON_RESET = 1
WDT_RESET = 3
_CAUSES = {"PWRON_RESET": PWRON_RESET, "WDT_RESET": WDT_RESET, "HARD_RESET": WDT_RESET,
           "DEEPSLEEP_RESET": WDT_RESET, "SOFT_RESET": PWRON_RESET}
_PINS = tuple(range(30))
_NAMED = {"LED": 64}  # the CYW43's WL_GPIO0 drives the Pico W's LED
_ADC_PINS = (26, 27, 28, 29)
_LIGHTSLEEP_MAX_MS = (1 << 32) // 1000


class Pin(_board.PinCore):
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    ALT = 3
    ALT_SPI = 1
    ALT_UART = 2
    ALT_I2C = 3
    ALT_PWM = 4
    ALT_SIO = 5
    ALT_PIO0 = 6
    ALT_PIO1 = 7
    ALT_GPCK = 8
    ALT_USB = 9
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_RISING = 8
    IRQ_FALLING = 4

    def __init__(self, id, mode=-1, pull=-1, *, value=None, alt=None):
        if isinstance(id, str):
            if id not in _NAMED:
                raise ValueError("unknown named pin \"%s\"" % id)
            id = _NAMED[id]
        elif not isinstance(id, int) or id not in _PINS:
            raise ValueError("invalid pin")
        super().__init__(id)
        self.init(mode, pull, value=value, alt=alt)

    def init(self, mode=-1, pull=-1, *, value=None, alt=None):
        self._setup(mode, pull, value, (Pin.OUT, Pin.OPEN_DRAIN))

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING, hard=False):
        self._set_irq(handler, trigger & Pin.IRQ_RISING, trigger & Pin.IRQ_FALLING)
        return None

    def toggle(self):
        self._write(1 - self.value())

    def __repr__(self):
        return "Pin(GPIO%d)" % self._id


class ADC:
    CORE_TEMP = 4

    def __init__(self, pin):
        pin_id = pin._id if isinstance(pin, Pin) else pin
        if pin_id not in _ADC_PINS and pin_id != ADC.CORE_TEMP:
            raise ValueError("Pin doesn't have ADC capabilities")
        self._id = pin_id

    def read_u16(self):
        return _board.adc_read_u16(self._id)


class PWM(_board.PWMCore):
    def __init__(self, dest, *, freq=None, duty_u16=None, duty_ns=None, invert=False):
        pin_id = dest._id if isinstance(dest, Pin) else Pin(dest)._id
        super().__init__(pin_id, 1000 if freq is None else freq, duty_u16)


class Timer(_board.TimerCore):
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id=-1, **kwargs):
        if id != -1:
            raise ValueError("Timer doesn't exist")
        super().__init__()
        if kwargs:
            self.init(**kwargs)

    def init(self, *, mode=PERIODIC, period=-1, tick_hz=1000, freq=-1, callback=None):
        if freq > 0:
            period = 1000 / freq
        else:
            period = period * 1000 / tick_hz
        self._start(mode, period, callback)


class RTC(_board.RTCCore):
    pass  # no RTC memory on rp2


class WDT:
    def __init__(self, id=0, timeout=5000):
        if timeout > 8388:
            raise ValueError("timeout exceeds 8388")
        self._timeout = timeout

    def feed(self):
        pass


def lightsleep(time_ms=None):
    if time_ms is not None and time_ms >= _LIGHTSLEEP_MAX_MS:
        raise ValueError("sleep too long")
    _board.lightsleep(time_ms or 0)


def deepsleep(time_ms=None):
    lightsleep(time_ms)
    _board.reset()


def reset_cause():
    return _board.reset_cause(_CAUSES)


reset = _board.reset
soft_reset = _board.soft_reset


def bootloader():
    raise NotImplementedError("machine.bootloader is not simulated")


def unique_id():
    return _board.unique_id()[:8] + b"\x00" * max(0, 8 - len(_board.unique_id()))


def freq(hz=None):
    if hz is None:
        return 125000000


idle = _board.idle
disable_irq = _board.disable_irq
enable_irq = _board.enable_irq
