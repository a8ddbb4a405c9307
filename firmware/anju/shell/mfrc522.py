"""NXP MFRC522 card reader on SPI (mode 0, 1 MHz): reads the UID of an
ISO 14443-3A card (4 or 7 bytes), then halts the card so that it answers
again only once it has left the field and come back.

Pins from the board description: spi_sck, spi_mosi, spi_miso, rfid_cs and,
where wired, rfid_rst (NRSTPD). The SPI bus by port: ESP32 SPI(2) (VSPI, its
IO_MUX pins are 18/23/19), ESP32-C3 SPI(1) (its only free one), rp2 SPI0 or
SPI1 by the SCK pin's function.

Every wait is bounded: a frame is given up when the chip's timer runs out
(TAuto: about 1 ms after the frame, when no card answered) or after
FRAME_MS at the latest. No card costs one REQA: about 1.3 ms.
"""
import time

import machine

# registers
_COMMAND = 0x01
_COM_IRQ = 0x04
_DIV_IRQ = 0x05
_ERROR = 0x06
_FIFO_DATA = 0x09
_FIFO_LEVEL = 0x0A
_CONTROL = 0x0C
_BIT_FRAMING = 0x0D
_MODE = 0x11
_TX_MODE = 0x12
_RX_MODE = 0x13
_TX_CONTROL = 0x14
_TX_ASK = 0x15
_CRC_H = 0x21
_CRC_L = 0x22
_T_MODE = 0x2A
_T_PRESCALER = 0x2B
_T_RELOAD_H = 0x2C
_T_RELOAD_L = 0x2D
_VERSION = 0x37

_IDLE = 0x00
_CALC_CRC = 0x03
_TRANSCEIVE = 0x0C
_SOFT_RESET = 0x0F

_REQA = 0x26
_WUPA = 0x52
_SEL = (0x93, 0x95, 0x97)
_CASCADE_TAG = 0x88

VERSIONS = (0x91, 0x92)  # MFRC522 v1.0, v2.0
FRAME_MS = 10            # the longest a frame may take, whatever the chip says
RETRY_MS = 5000          # a reader that failed its init is tried again after this
_POLL_US = 100
# timer: 13.56 MHz / (2 * 169 + 1) = 40 kHz (25 us a tick); 40 ticks = 1.0 ms
_PRESCALER = 169
_RELOAD = 40


def wired(board):
    """Whether the board has the reader (the lock starts it only then)."""
    pins = board["pins"]
    return "rfid_cs" in pins and "spi_sck" in pins and "spi_mosi" in pins and "spi_miso" in pins


def spi_id(board, sck):
    """The hardware SPI that has `sck` on this port."""
    if board["port"] == "rp2":
        return (sck >> 3) & 1  # SPI0: GP0-7, 16-23; SPI1: GP8-15, 24-29
    return 1 if board["mcu"] == "esp32c3" else 2


def crc_a(data, n):
    """ISO 14443-3A CRC_A over data[:n] (preset 0x6363), as the int to append LSB first."""
    crc = 0x6363
    for i in range(n):
        b = data[i] ^ (crc & 0xFF)
        b = (b ^ (b << 4)) & 0xFF
        crc = (crc >> 8) ^ (b << 8) ^ (b << 3) ^ (b >> 4)
    return crc & 0xFFFF


class MFRC522:
    def __init__(self, board, baudrate=1000000):
        pins = board["pins"]
        self.cs = machine.Pin(pins["rfid_cs"], machine.Pin.OUT, value=1)
        rst = pins.get("rfid_rst")
        self.rst = None if rst is None else machine.Pin(rst, machine.Pin.OUT, value=1)
        sck = pins["spi_sck"]
        self.spi = machine.SPI(spi_id(board, sck), baudrate, polarity=0, phase=0,
                               sck=machine.Pin(sck), mosi=machine.Pin(pins["spi_mosi"]),
                               miso=machine.Pin(pins["spi_miso"]))
        self._w = bytearray(2)
        self._r = bytearray(2)
        self._frame = bytearray(9)   # the longest frame sent: SELECT
        self._rx = bytearray(16)     # what came back
        self._burst = bytearray(17)  # FIFO reads: the address repeated, then 0
        self._uid = bytearray(10)
        self.version = None
        self._retry = None  # after a failed init: when to try again

    # ---- registers ---------------------------------------------------------------
    def _write(self, reg, value):
        w = self._w
        w[0] = (reg << 1) & 0x7E
        w[1] = value
        self.cs(0)
        self.spi.write(w)
        self.cs(1)

    def _read(self, reg):
        w = self._w
        w[0] = ((reg << 1) & 0x7E) | 0x80
        w[1] = 0
        self.cs(0)
        self.spi.write_readinto(w, self._r)
        self.cs(1)
        return self._r[1]

    def _write_fifo(self, data, n):
        b = self._burst
        b[0] = (_FIFO_DATA << 1) & 0x7E
        for i in range(n):
            b[i + 1] = data[i]
        self.cs(0)
        self.spi.write(memoryview(b)[:n + 1])
        self.cs(1)

    def _read_fifo(self, n):
        """n bytes of the FIFO into self._rx (n <= 16)."""
        b = self._burst
        a = ((_FIFO_DATA << 1) & 0x7E) | 0x80
        for i in range(n):
            b[i] = a
        b[n] = 0
        mv = memoryview(b)[:n + 1]
        self.cs(0)
        self.spi.write_readinto(mv, mv)
        self.cs(1)
        rx = self._rx
        for i in range(n):
            rx[i] = b[i + 1]

    # ---- set-up -------------------------------------------------------------------
    def reset(self):
        """Hard reset through NRSTPD when wired, else SoftReset; waits (at most
        50 ms) for the oscillator. True when the chip is back."""
        if self.rst is not None:
            self.rst(0)
            time.sleep_us(10)
            self.rst(1)
        else:
            self._write(_COMMAND, _SOFT_RESET)
        for _ in range(50):
            time.sleep_ms(1)
            if not self._read(_COMMAND) & 0x10:  # PowerDown clears when ready
                return True
        return False

    def init(self):
        """Reset and configure; the version (0x91, 0x92) or None when no
        MFRC522 answers."""
        v = self._read(_VERSION) if self.reset() else None
        if v not in VERSIONS:
            self.version = None
            self._retry = time.ticks_add(time.ticks_ms(), RETRY_MS)
            return None
        self.version = v
        self._write(_T_MODE, 0x80 | (_PRESCALER >> 8))  # TAuto: runs after every frame
        self._write(_T_PRESCALER, _PRESCALER & 0xFF)
        self._write(_T_RELOAD_H, _RELOAD >> 8)
        self._write(_T_RELOAD_L, _RELOAD & 0xFF)
        self._write(_TX_ASK, 0x40)   # 100 % ASK
        self._write(_MODE, 0x3D)     # CRC preset 0x6363 (CRC_A)
        self._write(_TX_MODE, 0x00)  # CRC in software
        self._write(_RX_MODE, 0x00)
        self.antenna_on()
        return v

    def antenna_on(self):
        v = self._read(_TX_CONTROL)
        if v & 0x03 != 0x03:
            self._write(_TX_CONTROL, v | 0x03)

    def antenna_off(self):
        v = self._read(_TX_CONTROL)
        self._write(_TX_CONTROL, v & ~0x03)

    # ---- frames -------------------------------------------------------------------
    def _transceive(self, n, last_bits=0):
        """Send self._frame[:n]; the number of bytes answered (in self._rx), 0
        when nothing came in time, -1 on a receive error."""
        self._write(_COMMAND, _IDLE)
        self._write(_COM_IRQ, 0x7F)     # clear every interrupt
        self._write(_FIFO_LEVEL, 0x80)  # flush
        self._write_fifo(self._frame, n)
        self._write(_COMMAND, _TRANSCEIVE)
        self._write(_BIT_FRAMING, 0x80 | last_bits)  # StartSend
        deadline = time.ticks_add(time.ticks_ms(), FRAME_MS)
        got = 0
        while True:
            irq = self._read(_COM_IRQ)
            if irq & 0x30:  # RxIRq, IdleIRq
                got = 1
                break
            if irq & 0x01 or time.ticks_diff(deadline, time.ticks_ms()) <= 0:
                break  # TimerIRq: nobody answered
            time.sleep_us(_POLL_US)
        self._write(_BIT_FRAMING, 0)
        self._write(_COMMAND, _IDLE)
        if not got:
            return 0
        if self._read(_ERROR) & 0x1B:  # BufferOvfl, CollErr, ParityErr, ProtocolErr
            return -1
        n = self._read(_FIFO_LEVEL)
        if n > 16:
            return -1
        self._read_fifo(n)
        return n

    def calc_crc(self, data, n):
        """CRC_A of data[:n] by the chip's coprocessor (None if it did not finish)."""
        self._write(_COMMAND, _IDLE)
        self._write(_DIV_IRQ, 0x04)
        self._write(_FIFO_LEVEL, 0x80)
        self._write_fifo(data, n)
        self._write(_COMMAND, _CALC_CRC)
        for _ in range(20):
            if self._read(_DIV_IRQ) & 0x04:
                self._write(_COMMAND, _IDLE)
                return self._read(_CRC_L) | (self._read(_CRC_H) << 8)
            time.sleep_us(_POLL_US)
        return None

    def _append_crc(self, n):
        c = crc_a(self._frame, n)
        self._frame[n] = c & 0xFF
        self._frame[n + 1] = c >> 8
        return n + 2

    def request(self, wake=False):
        """REQA (WUPA with wake: halted cards too); True when a card answered ATQA."""
        self._frame[0] = _WUPA if wake else _REQA
        return self._transceive(1, 7) == 2

    def ready(self):
        """Initialised, or initialised now; a reader that failed is tried again
        after RETRY_MS only (a missing chip costs its 50 ms reset wait)."""
        if self.version is not None:
            return True
        now = time.ticks_ms()
        if self._retry is not None and time.ticks_diff(self._retry, now) > 0:
            return False
        return self.init() is not None

    def read_uid(self, wake=False):
        """The UID of the card in the field (bytes, 4 or 7 long) or None:
        no card, a card that left half-way, a BCC or CRC that does not
        check, no reader. The card is halted afterwards. Initialises the
        reader first if init() was not called."""
        if not self.ready() or not self.request(wake):
            return None
        f = self._frame
        rx = self._rx
        uid = self._uid
        k = 0
        for level in range(3):
            f[0] = _SEL[level]
            f[1] = 0x20
            if self._transceive(2) != 5:
                return None
            if rx[0] ^ rx[1] ^ rx[2] ^ rx[3] != rx[4]:
                return None  # BCC: a corrupted UID
            for i in range(5):
                f[2 + i] = rx[i]
            cascade = rx[0] == _CASCADE_TAG
            f[1] = 0x70
            if self._transceive(self._append_crc(7)) != 3 or crc_a(rx, 3) != 0:
                return None
            sak = rx[0]
            if cascade:
                if not sak & 0x04:
                    return None
                for i in range(3):
                    uid[k + i] = f[3 + i]
                k += 3
            else:
                if sak & 0x04:
                    return None
                for i in range(4):
                    uid[k + i] = f[2 + i]
                k += 4
                self.halt()
                return bytes(uid[:k])
        return None

    def halt(self):
        """HLTA: the card keeps quiet until it leaves the field or hears WUPA."""
        f = self._frame
        f[0] = 0x50
        f[1] = 0x00
        self._transceive(self._append_crc(2))  # a halted card does not answer
