"""`machine` of the esp32 port (MicroPython 1.27), for the ESP32 and the ESP32-C3.

Constants, arguments and errors follow ports/esp32 (machine_pin.c,
modmachine.c, machine_adc.c, machine_timer.c, machine_rtc.c); the chip
decides what differs: the C3 has no ext0/ext1 wake (Pin.irq(wake=) is
accepted and configures nothing), two timers instead of four, and other ADC
pins. docs/micropython_ports.md has the table with the source lines.
"""
import _sim
import _board

_CHIP = _sim.boot["board"]["mcu"]
_C3 = _CHIP == "esp32c3"
# GPIOs the chip has (machine_pin.c's table), RTC GPIOs (ext0/ext1 wake), ADC pins
_PINS = tuple(range(22)) if _C3 else (0, 1, 2, 3, 4, 5, 12, 13, 14, 15, 16, 17, 18, 19,
                                      21, 22, 23, 25, 26, 27, 32, 33, 34, 35, 36, 37, 38, 39)
_RTC_PINS = (0, 2, 4, 12, 13, 14, 15, 25, 26, 27, 32, 33, 34, 35, 36, 37, 38, 39)
_ADC_PINS = (0, 1, 2, 3, 4, 5) if _C3 else (0, 2, 4, 12, 13, 14, 15, 25, 26, 27, 32, 33,
                                            34, 35, 36, 37, 38, 39)
_TIMERS = (0, 1) if _C3 else (0, 1, 2, 3)

IDLE = 1
SLEEP = 2
DEEPSLEEP = 4
PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5
PIN_WAKE = 2
EXT0_WAKE = 2
EXT1_WAKE = 3
TIMER_WAKE = 4
TOUCHPAD_WAKE = 5
ULP_WAKE = 6

_CAUSES = {"PWRON_RESET": PWRON_RESET, "HARD_RESET": HARD_RESET, "WDT_RESET": WDT_RESET,
           "DEEPSLEEP_RESET": DEEPSLEEP_RESET, "SOFT_RESET": SOFT_RESET}
# ESP_SLEEP_WAKEUP_* for machine.wake_reason()
_WAKES = {"ext0": 2, "ext1": 3, "timer": 4, "gpio": 7}

# deep-sleep wake sources the firmware set: source -> [(pin, level)]
_wake = {}


class Pin(_board.PinCore):
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 2
    PULL_DOWN = 1
    IRQ_RISING = 1
    IRQ_FALLING = 2
    WAKE_LOW = 4
    WAKE_HIGH = 5
    DRIVE_0 = 0
    DRIVE_1 = 1
    DRIVE_2 = 2
    DRIVE_3 = 3

    def __init__(self, id, mode=-1, pull=-1, *, value=None, drive=None, hold=None):
        if not isinstance(id, int) or id not in _PINS:
            raise ValueError("invalid pin")
        super().__init__(id)
        self.init(mode, pull, value=value, drive=drive, hold=hold)

    def init(self, mode=-1, pull=-1, *, value=None, drive=None, hold=None):
        self._setup(mode, pull, value, (Pin.OUT, Pin.OPEN_DRAIN))

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING, wake=None):
        if wake is not None and trigger in (Pin.WAKE_LOW, Pin.WAKE_HIGH):
            # a level trigger with `wake` configures ext0 (machine_pin.c);
            # the C3 checks the pin and configures nothing
            if not isinstance(wake, int) or not 2 <= wake <= 7:
                raise ValueError("bad wake value")
            if self._id not in _RTC_PINS:
                raise ValueError("invalid pin for wake")
            if not _C3 and wake & DEEPSLEEP:
                _wake["ext0"] = [(self._id, 1 if trigger == Pin.WAKE_HIGH else 0)]
            return None
        self._set_irq(handler, trigger & Pin.IRQ_RISING, trigger & Pin.IRQ_FALLING)
        return None

    def __repr__(self):
        return "Pin(%d)" % self._id


class ADC:
    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3
    WIDTH_12BIT = 12

    def __init__(self, pin, *, atten=None):
        pin_id = pin._id if isinstance(pin, Pin) else pin
        if pin_id not in _ADC_PINS:
            raise ValueError("invalid pin")
        self._id = pin_id
        self._atten = ADC.ATTN_0DB if atten is None else atten

    def atten(self, a):
        self._atten = a

    def width(self, bits):
        pass

    def read_u16(self):
        return _board.adc_read_u16(self._id)

    def read(self):
        return self.read_u16() >> 4

    def read_uv(self):
        full = _sim.boot["board"]["adc"]["full_scale_mv"]
        return self.read_u16() * full * 1000 // 65535


class PWM(_board.PWMCore):
    def __init__(self, dest, *, freq=None, duty=None, duty_u16=None, duty_ns=None,
                 invert=False):
        pin_id = dest._id if isinstance(dest, Pin) else Pin(dest)._id
        if duty is not None:
            duty_u16 = duty * 65535 // 1023
        super().__init__(pin_id, 5000 if freq is None else freq, duty_u16)


class Timer(_board.TimerCore):
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id, **kwargs):
        if id not in _TIMERS:
            raise ValueError("invalid Timer number")
        super().__init__()
        if kwargs:
            self.init(**kwargs)

    def init(self, *, mode=PERIODIC, period=-1, callback=None, freq=-1):
        if freq > 0:
            period = 1000 / freq
        self._start(mode, period, callback)


class RTC(_board.RTCCore):
    def memory(self, data=None):
        return _board.rtc_memory(data)


class WDT:
    def __init__(self, id=0, timeout=5000):
        if timeout < 1:
            raise ValueError("WDT timeout too short")
        self._timeout = timeout

    def feed(self):
        pass


def lightsleep(time_ms=None):
    _board.lightsleep(time_ms or 0)


sleep = lightsleep


_GPIO_WAKE_PINS = (0, 1, 2, 3, 4, 5)  # the C3's deep-sleep GPIO wake pins


def deepsleep(time_ms=0):
    gpio = _wake.get("gpio")
    if gpio:
        if not _C3:
            raise ValueError("DEEPSLEEP with gpio pins not supported on this chip")
        for pin_id, _ in gpio:
            if pin_id not in _GPIO_WAKE_PINS:
                raise ValueError("wake-up pin not supported")
    wake = []
    for source, pins in _wake.items():
        for pin_id, level in pins:
            wake.append((pin_id, level, source))
    _board.deepsleep(time_ms, wake)


def wake_reason():
    return _WAKES.get(_sim.boot.get("wake"), 0)


def reset_cause():
    return _board.reset_cause(_CAUSES)


reset = _board.reset
soft_reset = _board.soft_reset


def unique_id():
    return _board.unique_id()


def freq(hz=None):
    if hz is None:
        return 160000000


idle = _board.idle
disable_irq = _board.disable_irq
enable_irq = _board.enable_irq
