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


def lightsleep(ms, wake=None):
    """Light sleep. `wake`: the levels that end it [(pin, level, source)] where
    the port has such sources (esp32: an armed edge interrupt does not end
    it); None where an interrupt does (rp2)."""
    _sim.wait("light", _sim.now + (ms / 1000 if ms else 1e9), wake)


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


# ---- SPI and UART: bytes to the chip models on those pins ------------------
# A chip on a bus names its pins: `spi_bus` (sck, mosi, miso, cs) or `uart_pins`
# (the board's TX, the board's RX), the board's side of the wires. _sim.chips
# is rebuilt at every hand-over, so a bus looks its chip up at each transfer.

def _pass(dt):
    """Wire time: on the spot before the horizon, else through the host."""
    t = _sim.now + dt
    if t < _sim.horizon and not _sim.timers:
        _sim.now = t
    else:
        _sim.wait("sleep", t)


class SPICore:
    """A controller on sck/mosi/miso (None: not connected). A transfer reaches
    the chip whose chip-select is low; with none selected MISO floats (0xFF).
    A chip that needs another mode, bit order or a slower clock than set sees
    nothing and MISO floats too."""

    def _bus(self, sck, mosi, miso, baudrate, polarity, phase, msb):
        self._sck = sck
        self._mosi = mosi
        self._miso = miso
        self._baud = baudrate
        self._mode = (polarity << 1) | phase
        self._msb = msb
        self._live = True

    def _peer(self):
        levels = _sim.levels
        for chip in _sim.chips.values():
            bus = getattr(chip, "spi_bus", None)
            if (bus is not None and bus[0] == self._sck and bus[1] == self._mosi
                    and bus[2] == self._miso and levels.get(bus[3], 1) == 0):
                if (chip.spi_mode != self._mode or not self._msb
                        or self._baud > chip.spi_max_hz):
                    return None
                return chip
        return None

    def _xfer(self, src, dest, n):
        """n bytes out of `src` (an int: that byte n times), into `dest` (or None)."""
        if self._sck is None:
            raise NotImplementedError("SPI without SCK is not simulated")
        _pass(n * 8 / self._baud)
        chip = self._peer()
        if chip is None:
            if dest is not None:
                for i in range(n):
                    dest[i] = 0xFF
            return
        chip.spi_transfer(src, dest, n, _sim.now)

    def read(self, nbytes, write=0x00):
        buf = bytearray(nbytes)
        self._xfer(write, buf, nbytes)
        return bytes(buf)

    def readinto(self, buf, write=0x00):
        self._xfer(write, buf, len(buf))

    def write(self, buf):
        self._xfer(buf, None, len(buf))

    def write_readinto(self, write_buf, read_buf):
        if len(write_buf) != len(read_buf):
            raise ValueError("buffers must be the same length")
        self._xfer(write_buf, read_buf, len(write_buf))



class SoftSPICore(SPICore):
    """SoftSPI of extmod/machine_spi.c, the same on every port but for the
    value of MSB (each port's class sets MSB, LSB and its pin check `_pin`)."""

    def __init__(self, baudrate=500000, *, polarity=0, phase=0, bits=8, firstbit=None,
                 sck=None, mosi=None, miso=None):
        if bits != 8:
            raise ValueError("bits must be 8")
        if sck is None or mosi is None or miso is None:
            raise ValueError("must specify all of sck/mosi/miso")
        if firstbit is None:
            firstbit = self.MSB
        self._bus(self._pin(sck), self._pin(mosi), self._pin(miso), baudrate, polarity, phase,
                  firstbit == self.MSB)

    def init(self, baudrate=-1, *, polarity=-1, phase=-1, bits=-1, firstbit=-1):
        self._bus(self._sck, self._mosi, self._miso, self._baud if baudrate == -1 else baudrate,
                  self._mode >> 1 if polarity == -1 else polarity,
                  self._mode & 1 if phase == -1 else phase,
                  self._msb if firstbit == -1 else firstbit == self.MSB)

    def deinit(self):
        pass

class UARTCore:
    """A UART on tx/rx. Bytes leave at 10 bits / baudrate each (8N1) and reach
    the chip on those pins; what it sends back is readable once its stop bit
    is in. Reads wait in virtual time: `timeout` ms for the first byte, then
    the port's rule for the rest (_rest_deadline)."""

    def _line(self, tx, rx, baudrate, timeout, timeout_char):
        self._tx = tx
        self._rx = rx
        self._baud = baudrate
        self._bt = 10 / baudrate
        self._timeout = timeout
        self._timeout_char = timeout_char
        self._tx_free = 0.0  # when the last byte written has left

    def _peer(self):
        for chip in _sim.chips.values():
            pins = getattr(chip, "uart_pins", None)
            if pins is not None and pins[0] == self._tx and pins[1] == self._rx:
                return chip
        return None

    def _port_read(self, buf, size):
        """One read of up to `size` bytes into buf: the count (0: none came)."""
        if size == 0:
            return 0
        i = 0
        deadline = self._first_deadline()
        first = True
        while True:
            chip = self._peer()
            nxt = None
            if chip is not None:
                got = chip.uart_read(_sim.now, self._baud, buf, i, size)
                if got > i:
                    i = got
                    if i >= size:
                        return i
                    deadline = self._rest_deadline(first, deadline)
                    first = False
                nxt = chip.uart_due(_sim.now, size - i)
            if nxt is None or nxt[0] > deadline:
                t = deadline
            elif first and self._stepwise_first:
                t = nxt[0]
            else:
                t = nxt[1] if nxt[1] < deadline else deadline
            if t <= _sim.now:
                return i
            _sim.wait("sleep", t)

    def read(self, nbytes=-1):
        if nbytes is None or nbytes < 0:
            out = b""
            buf = bytearray(256)
            while True:
                n = self._port_read(buf, 256)
                if n == 0:
                    return out or None
                out += buf[:n]
        buf = bytearray(nbytes)
        n = self._port_read(buf, nbytes)
        if n == 0:
            return None if nbytes else b""
        return bytes(buf[:n])

    def readinto(self, buf, nbytes=None):
        n = len(buf) if nbytes is None or nbytes > len(buf) else nbytes
        n = self._port_read(buf, n)
        return n or None

    def readline(self):
        out = b""
        one = bytearray(1)
        while True:
            if self._port_read(one, 1) == 0:
                return out or None
            out += one
            if one[0] == 10:
                return out

    def write(self, buf):
        if isinstance(buf, str):
            buf = buf.encode()
        n = len(buf)
        now = _sim.now
        start = self._tx_free if self._tx_free > now else now
        self._tx_free = start + n * self._bt
        chip = self._peer()
        if chip is not None and n:
            chip.uart_write(bytes(buf), start, self._baud)
        return n

    def any(self):
        chip = self._peer()
        return 0 if chip is None else chip.uart_any(_sim.now, self._baud)

    def txdone(self):
        return self._tx_free <= _sim.now

    def flush(self):
        if self._tx_free > _sim.now:
            _sim.wait("sleep", self._tx_free)
