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

# wake sources the firmware set: source -> [(pin, level)]
_wake = {}
_ext0_types = [DEEPSLEEP]  # the `wake` of the Pin.irq that armed ext0


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
            if not _C3:
                _wake["ext0"] = [(self._id, 1 if trigger == Pin.WAKE_HIGH else 0)]
                _ext0_types[0] = wake  # SLEEP and/or DEEPSLEEP
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
    """The task watchdog (machine_wdt.c): only id 0; a second WDT() sets the
    timeout again. Light sleep pauses it; deep sleep and a reset end it."""

    def __init__(self, id=0, timeout=5000):
        if id != 0:
            raise ValueError()
        if timeout <= 0:
            raise ValueError("WDT timeout too short")
        _sim.watchdog(timeout / 1000, False)

    def feed(self):
        _sim.watchdog()



# ---- SPI (machine_hw_spi.c) and SoftSPI (extmod/machine_spi.c) ----------------
# ESP32: SPI(1) = HSPI/SPI2, SPI(2) = VSPI/SPI3; the C3 has SPI(1) only. Any
# GPIO through the matrix; the defaults are the IO_MUX pins.
_SPI_DEFAULTS = {1: (6, 7, 2)} if _C3 else {1: (14, 13, 12), 2: (18, 23, 19)}
_INPUT_ONLY = () if _C3 else (34, 35, 36, 37, 38, 39)
_APB_HZ = 80000000


def _pin_id(p):
    if isinstance(p, Pin):
        return p._id
    if not isinstance(p, int) or p not in _PINS:
        raise ValueError("invalid pin")
    return p


def _opt_pin(p, default):
    if p is _UNSET:
        return default
    return None if p is None else _pin_id(p)


_UNSET = object()


class SPI(_board.SPICore):
    MSB = 0
    LSB = 1

    def __new__(cls, id=-1, *args, **kwargs):
        if id == -1:
            # MP_MACHINE_SPI_CHECK_FOR_LEGACY_SOFTSPI_CONSTRUCTION
            print("Warning: SPI(-1, ...) is deprecated, use SoftSPI(...) instead")
            return SoftSPI(*args, **kwargs)
        return object.__new__(cls)

    def __init__(self, id, baudrate=500000, *, polarity=0, phase=0, bits=8, firstbit=0,
                 sck=_UNSET, mosi=_UNSET, miso=_UNSET):
        if id not in _SPI_DEFAULTS:
            raise ValueError("SPI(%d) doesn't exist" % id)
        self._id = id
        d = _SPI_DEFAULTS[id]
        self._pins = (_opt_pin(sck, d[0]), _opt_pin(mosi, d[1]), _opt_pin(miso, d[2]))
        self.init(baudrate, polarity=polarity, phase=phase, bits=bits, firstbit=firstbit)

    def init(self, baudrate=-1, *, polarity=-1, phase=-1, bits=-1, firstbit=-1,
             sck=_UNSET, mosi=_UNSET, miso=_UNSET):
        if bits != -1 and bits <= 0:
            raise ValueError("invalid bits")
        if bits not in (-1, 8):
            raise NotImplementedError("SPI bits other than 8 are not simulated")
        old = getattr(self, "_cfg", (500000, 0, 0, 0))
        sck_, mosi_, miso_ = self._pins
        self._pins = (_opt_pin(sck, sck_), _opt_pin(mosi, mosi_), _opt_pin(miso, miso_))
        if self._pins[0] in _INPUT_ONLY or self._pins[1] in _INPUT_ONLY:
            raise OSError("invalid configuration")  # spi_bus_initialize: ESP_ERR_INVALID_ARG
        if baudrate != -1:
            # spi_get_actual_clock: the APB clock divided by a whole number
            div = max(1, -(-_APB_HZ // max(1, baudrate)))
            baudrate = _APB_HZ // div
        cfg = (old[0] if baudrate == -1 else baudrate, old[1] if polarity == -1 else polarity,
               old[2] if phase == -1 else phase, old[3] if firstbit == -1 else firstbit)
        self._cfg = cfg
        self._bus(self._pins[0], self._pins[1], self._pins[2], cfg[0], cfg[1], cfg[2],
                  cfg[3] == SPI.MSB)

    def deinit(self):
        self._live = False

    def _xfer(self, src, dest, n):
        if not self._live:
            raise OSError("transfer on deinitialized SPI")
        super()._xfer(src, dest, n)

    def __repr__(self):
        c = self._cfg
        return ("SPI(id=%u, baudrate=%u, polarity=%u, phase=%u, bits=8, firstbit=%u, sck=%d, "
                "mosi=%d, miso=%d)" % ((self._id,) + c + tuple(
                    -1 if p is None else p for p in self._pins)))


class SoftSPI(_board.SoftSPICore):
    MSB = 0
    LSB = 1
    _pin = staticmethod(_pin_id)


# ---- UART (machine_uart.c) ---------------------------------------------------
# ESP32: UART(0) (the REPL), 1, 2; the C3: 0 and 1. Default pins: UART1 rx 9 / tx 10,
# UART2 rx 16 / tx 17 (ESP32). Timeouts count in FreeRTOS ticks (100 Hz): a
# timeout below 10 ms does not wait at all. A read waits `timeout` for its
# first byte, then `timeout_char` in all for the rest.
_UARTS = (0, 1) if _C3 else (0, 1, 2)
_UART_PINS = {0: (None, None), 1: (10, 9), 2: (17, 16)}
_TICK_MS = 10


class UART(_board.UARTCore):
    INV_TX = 1 << 22
    INV_RX = 1 << 19
    INV_RTS = 1 << 23
    INV_CTS = 1 << 20
    RTS = 1
    CTS = 2
    IRQ_RX = 1
    IRQ_RXIDLE = 0x1000
    IRQ_BREAK = 1 << 4
    _stepwise_first = True
    _objs = {}

    def __new__(cls, id, *args, **kwargs):
        if not isinstance(id, int) or id not in _UARTS:
            raise ValueError("UART(%d) does not exist" % id)
        self = UART._objs.get(id)
        if self is None:
            self = object.__new__(cls)
            self._id = id
            self._installed = False
            UART._objs[id] = self
        return self

    def __init__(self, id, *args, **kwargs):
        self.init(*args, **kwargs)

    def init(self, baudrate=0, bits=0, parity=None, stop=0, *, tx=_UNSET, rx=_UNSET, rts=_UNSET,
             cts=_UNSET, txbuf=-1, rxbuf=-1, timeout=-1, timeout_char=-1, invert=-1, flow=-1):
        if not self._installed:
            self._installed = True
            self._tx, self._rx = _UART_PINS[self._id]
            self._baud = 115200
            self._timeout = 0
            self._timeout_char = 0
            self._tx_free = 0.0
        if bits not in (0, 5, 6, 7, 8):
            raise ValueError("invalid data bits")
        if stop not in (0, 1, 2):
            raise ValueError("invalid stop bits")
        if rxbuf != -1 and rxbuf <= 128:
            raise OSError(-258, "ESP_ERR_INVALID_ARG")  # uart_driver_install: rx > the FIFO
        tx_ = self._tx if tx is _UNSET else _pin_id(tx)
        rx_ = self._rx if rx is _UNSET else _pin_id(rx)
        if tx_ in _INPUT_ONLY:
            raise OSError(-258, "ESP_ERR_INVALID_ARG")  # uart_set_pin: not an output
        self._line(tx_, rx_, baudrate if baudrate > 0 else self._baud,
                   self._timeout if timeout == -1 else timeout,
                   self._timeout_char if timeout_char == -1 else timeout_char)

    def deinit(self):
        self._installed = False
        UART._objs.pop(self._id, None)

    def _first_deadline(self):
        return _sim.now + (self._timeout // _TICK_MS) * _TICK_MS / 1000

    def _rest_deadline(self, first, deadline):
        if first:
            return _sim.now + (self._timeout_char // _TICK_MS) * _TICK_MS / 1000
        return deadline

    def sendbreak(self):
        self.flush()

    def __repr__(self):
        return ("UART(%u, baudrate=%u, bits=8, parity=None, stop=1, tx=%d, rx=%d, timeout=%u, "
                "timeout_char=%u)" % (self._id, self._baud, -1 if self._tx is None else self._tx,
                                      -1 if self._rx is None else self._rx, self._timeout,
                                      self._timeout_char))


def lightsleep(time_ms=None):
    """modmachine.c machine_sleep_helper: only the timer, ext0 (if armed for
    SLEEP), ext1 and wake_on_gpio's levels end it; an edge interrupt does not
    (its handler runs after the wake)."""
    wake = []
    for source, pins in _wake.items():
        if source == "ext0" and not _ext0_types[0] & SLEEP:
            continue
        for pin_id, level in pins:
            wake.append((pin_id, level, source))
    _board.lightsleep(time_ms or 0, wake)


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
        if source == "ext0" and not _ext0_types[0] & DEEPSLEEP:
            continue
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
