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
    """The RP2040 watchdog (machine_wdt.c): only id 0, at most 8388 ms. It
    keeps counting in light sleep; a reset ends it."""

    def __init__(self, id=0, timeout=5000):
        if id != 0:
            raise ValueError("WDT(%d) doesn't exist" % id)
        if timeout > 8388:
            raise ValueError("timeout exceeds 8388")
        _sim.watchdog(timeout / 1000, True)

    def feed(self):
        _sim.watchdog()



def _pin_id(p):
    if isinstance(p, Pin):
        return p._id
    if not isinstance(p, int) or p not in _PINS:
        raise ValueError("invalid pin")
    return p


_UNSET = object()
_PERI_HZ = 125000000


def _spi_baud(baud):
    """spi_set_baudrate (pico-sdk): an even prescale 2..254 and a post-divide 1..256."""
    prescale = 2
    while prescale <= 254:
        if _PERI_HZ < (prescale + 2) * 256 * baud:
            break
        prescale += 2
    postdiv = 256
    while postdiv > 1:
        if _PERI_HZ // (prescale * (postdiv - 1)) > baud:
            break
        postdiv -= 1
    return _PERI_HZ // (prescale * postdiv)


# ---- SPI (machine_spi.c): SPI0 on GP0-7/16-23, SPI1 on GP8-15/24-29 ------------
_SPI_DEFAULTS = {0: (18, 19, 16), 1: (10, 11, 8)}  # the Pico's PICO_DEFAULT_SPI pins


class SPI(_board.SPICore):
    MSB = 1  # SPI_MSB_FIRST
    LSB = 0
    _objs = {}

    def __new__(cls, id=0, *args, **kwargs):
        if not isinstance(id, int) or id not in _SPI_DEFAULTS:
            raise ValueError("SPI(%d) doesn't exist" % id)
        self = SPI._objs.get(id)
        if self is None:
            self = object.__new__(cls)
            self._id = id
            self._pins = _SPI_DEFAULTS[id]
            self._cfg = None
            SPI._objs[id] = self
        return self

    def __init__(self, id=0, baudrate=1000000, *, polarity=0, phase=0, bits=8, firstbit=1,
                 sck=None, mosi=None, miso=-1):
        sck_, mosi_, miso_ = self._pins
        if sck is not None:
            sck_ = _pin_id(sck)
            if sck_ & 3 != 2 or (sck_ & 8) >> 3 != id:
                raise ValueError("bad SCK pin")
        if mosi is not None:
            mosi_ = _pin_id(mosi)
            if mosi_ & 3 != 3 or (mosi_ & 8) >> 3 != id:
                raise ValueError("bad MOSI pin")
        if miso is None:
            miso_ = None
        elif miso != -1:
            miso_ = _pin_id(miso)
            if miso_ & 3 != 0 or (miso_ & 8) >> 3 != id:
                raise ValueError("bad MISO pin")
        self._pins = (sck_, mosi_, miso_)
        if firstbit == SPI.LSB:
            raise NotImplementedError("LSB")
        if bits != 8:
            raise NotImplementedError("SPI bits other than 8 are not simulated")
        self._cfg = (_spi_baud(baudrate), polarity, phase)
        self._bus(sck_, mosi_, miso_, self._cfg[0], polarity, phase, True)

    def init(self, *, baudrate=-1, polarity=-1, phase=-1, bits=-1, firstbit=-1):
        if firstbit == SPI.LSB:
            raise NotImplementedError("LSB")
        if bits not in (-1, 8):
            raise NotImplementedError("SPI bits other than 8 are not simulated")
        c = self._cfg
        self._cfg = (c[0] if baudrate == -1 else _spi_baud(baudrate),
                     c[1] if polarity == -1 else polarity, c[2] if phase == -1 else phase)
        self._bus(self._pins[0], self._pins[1], self._pins[2], self._cfg[0], self._cfg[1],
                  self._cfg[2], True)

    def deinit(self):
        pass

    def __repr__(self):
        miso = "None" if self._pins[2] is None else "%u" % self._pins[2]
        return "SPI(%u, baudrate=%u, polarity=%u, phase=%u, bits=8, sck=%u, mosi=%u, miso=%s)" % (
            self._id, self._cfg[0], self._cfg[1], self._cfg[2], self._pins[0], self._pins[1],
            miso)


class SoftSPI(_board.SoftSPICore):
    MSB = 1
    LSB = 0
    _pin = staticmethod(_pin_id)


# ---- UART (machine_uart.c): UART0 TX on GP0/12/16/28, RX on GP1/13/17/29;
# UART1 TX on GP4/8/20/24, RX on GP5/9/21/25. A read waits `timeout` ms for
# the first byte and `timeout_char` ms (at least one character time) after
# each byte, counted in whole ms ticks ("elapsed > timeout").
_UART_PINS = {0: (0, 1), 1: (4, 5)}


class UART(_board.UARTCore):
    INV_TX = 1
    INV_RX = 2
    CTS = 1
    RTS = 2
    IRQ_RXIDLE = 64
    IRQ_TXIDLE = 32
    IRQ_BREAK = 512
    _stepwise_first = False
    _objs = {}

    def __new__(cls, id, *args, **kwargs):
        if not isinstance(id, int) or id not in _UART_PINS:
            raise ValueError("UART(%d) doesn't exist" % id)
        self = UART._objs.get(id)
        if self is None:
            self = object.__new__(cls)
            self._id = id
            self._tx, self._rx = _UART_PINS[id]
            self._baud = 0
            self._timeout = 0
            self._timeout_char = 0
            self._tx_free = 0.0
            UART._objs[id] = self
        return self

    def __init__(self, id, *args, **kwargs):
        self.init(*args, **kwargs)

    def init(self, baudrate=-1, bits=-1, parity=-1, stop=-1, *, tx=None, rx=None, cts=None,
             rts=None, timeout=-1, timeout_char=-1, invert=-1, flow=-1, txbuf=-1, rxbuf=-1):
        tx_, rx_ = self._tx, self._rx
        if tx is not None:
            tx_ = _pin_id(tx)
            if tx_ & 3 != 0 or ((tx_ + 4) & 8) >> 3 != self._id:
                raise ValueError("bad TX pin")
        if rx is not None:
            rx_ = _pin_id(rx)
            if rx_ & 3 != 1 or ((rx_ + 4) & 8) >> 3 != self._id:
                raise ValueError("bad RX pin")
        if invert != -1 and invert & ~3:
            raise ValueError("bad inversion mask")
        if flow != -1 and flow & ~3:
            raise ValueError("bad hardware flow control mask")
        baud = baudrate if baudrate > 0 else (self._baud or 115200)
        tc = self._timeout_char if timeout_char < 0 else timeout_char
        tc = max(tc, 13000 // baud + 1)  # at least a whole character (13 bits)
        self._line(tx_, rx_, baud, self._timeout if timeout < 0 else timeout, tc)

    def deinit(self):
        self._baud = 0
        UART._objs.pop(self._id, None)

    def _first_deadline(self):
        # ticks_ms() - start > timeout
        return (int(_sim.now * 1000) + self._timeout + 1) / 1000

    def _rest_deadline(self, first, deadline):
        return (int(_sim.now * 1000) + self._timeout_char + 1) / 1000

    def sendbreak(self):
        self.flush()

    def __repr__(self):
        return ("UART(%u, baudrate=%u, bits=8, parity=None, stop=1, tx=%d, rx=%d, timeout=%u, "
                "timeout_char=%u)" % (self._id, self._baud, self._tx, self._rx, self._timeout,
                                      self._timeout_char))


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
