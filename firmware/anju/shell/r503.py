"""R503 / AS608 fingerprint module on a UART (57,600 Bd, 8N1) and its touch
output (low while a finger is on the sensor).

Packets: 0xEF01, the module's address (u32), PID (0x01 command, 0x07 ack),
u16 length (payload + 2), payload, u16 checksum (PID + length + payload).
Every ack is checked: header, address, PID, length and checksum; one that
fails raises OSError(EIO), no ack within the command's bound raises
OSError(ETIMEDOUT). Commands return the module's confirmation code (OK = 0).

Pins from the board description: fp_tx (the board's TX), fp_rx, fp_touch.
The UART by port: ESP32 UART(2), ESP32-C3 UART(1) (UART0 carries the
console), rp2 UART0 or UART1 by the TX pin's function.
"""
import time

import machine

OK = 0x00
PACKET_ERROR = 0x01
NO_FINGER = 0x02
IMAGE_FAIL = 0x03
IMAGE_MESSY = 0x06
FEW_FEATURES = 0x07
NO_MATCH = 0x09
COMBINE_FAIL = 0x0A
BAD_PAGE = 0x0B
WRONG_PASSWORD = 0x13
NO_IMAGE = 0x15

BAUD = 57600
CAPACITY = 200
# how long each command may take before the module counts as not answering
# (the module's processing time, with margin, plus the ack on the wire)
_BOUND_MS = {0x01: 1000, 0x02: 1000, 0x04: 1500, 0x05: 1000, 0x06: 1000, 0x0C: 1000,
             0x13: 300, 0x1D: 300, 0x35: 300}
_ACK_MAX = 16


def wired(board):
    """Whether the board has the module (the lock starts it only then)."""
    pins = board["pins"]
    return "fp_tx" in pins and "fp_rx" in pins


def uart_id(board, tx):
    """The hardware UART that has `tx` on this port."""
    if board["port"] == "rp2":
        return ((tx + 4) & 8) >> 3  # UART0: GP0/12/16/28, UART1: GP4/8/20/24
    return 1 if board["mcu"] == "esp32c3" else 2


class R503:
    def __init__(self, board, address=0xFFFFFFFF, password=0):
        pins = board["pins"]
        self.address = address
        self.password = password
        tx = pins["fp_tx"]
        # a read waits up to 20 ms for its first byte (two FreeRTOS ticks on the
        # ESP32) and 10 ms for the rest; _recv bounds the whole ack
        self.uart = machine.UART(uart_id(board, tx), BAUD, tx=machine.Pin(tx),
                                 rx=machine.Pin(pins["fp_rx"]), timeout=20, timeout_char=10)
        t = pins.get("fp_touch")
        self.touch = None if t is None else machine.Pin(t, machine.Pin.IN)
        self._cmd = bytearray(9 + 2 + 6)   # the longest command: Search (6 payload bytes)
        self._ack = bytearray(_ACK_MAX)
        self._ack_mv = memoryview(self._ack)
        self._args = bytearray(6)
        self._n = 0                        # payload bytes of the last ack

    def finger_present(self):
        """From the touch output (None when it is not wired)."""
        if self.touch is None:
            return None
        return self.touch.value() == 0

    # ---- packets ---------------------------------------------------------------
    def _send(self, cmd, nargs):
        p = self._cmd
        a = self.address
        p[0] = 0xEF
        p[1] = 0x01
        p[2] = (a >> 24) & 0xFF
        p[3] = (a >> 16) & 0xFF
        p[4] = (a >> 8) & 0xFF
        p[5] = a & 0xFF
        p[6] = 0x01
        n = nargs + 3
        p[7] = n >> 8
        p[8] = n & 0xFF
        p[9] = cmd
        s = 0x01 + p[7] + p[8] + cmd
        for i in range(nargs):
            p[10 + i] = self._args[i]
            s += self._args[i]
        p[10 + nargs] = (s >> 8) & 0xFF
        p[11 + nargs] = s & 0xFF
        while self.uart.any():  # a late ack of an earlier command must not be taken for this one
            if not self.uart.read(self.uart.any()):
                break
        self.uart.write(memoryview(p)[:12 + nargs])

    def _recv(self, bound_ms):
        """Read one ack into self._ack; its confirmation code."""
        deadline = time.ticks_add(time.ticks_ms(), bound_ms)
        buf = self._ack_mv
        got = 0
        want = 9
        while got < want:
            if time.ticks_diff(deadline, time.ticks_ms()) <= 0:
                raise OSError(110)  # ETIMEDOUT
            n = self.uart.readinto(buf[got:want])
            if not n:
                continue
            got += n
            if got >= 2 and (self._ack[0] != 0xEF or self._ack[1] != 0x01):
                raise OSError(5)  # EIO: not a packet
            if got >= 9 and want == 9:
                length = (self._ack[7] << 8) | self._ack[8]
                if length < 3 or 9 + length > _ACK_MAX:
                    raise OSError(5)
                want = 9 + length
        a = self._ack
        addr = (a[2] << 24) | (a[3] << 16) | (a[4] << 8) | a[5]
        if addr != self.address or a[6] != 0x07:
            raise OSError(5)
        s = 0
        for i in range(6, want - 2):
            s += a[i]
        if (s & 0xFFFF) != (a[want - 2] << 8) | a[want - 1]:
            raise OSError(5)  # EIO: checksum
        self._n = want - 11
        return a[9]

    def command(self, cmd, nargs=0):
        """Send a command (its arguments in self._args); the confirmation code."""
        self._send(cmd, nargs)
        return self._recv(_BOUND_MS.get(cmd, 1000))

    def _u16(self, i, v):
        self._args[i] = (v >> 8) & 0xFF
        self._args[i + 1] = v & 0xFF

    def _ack_u16(self, i):
        return (self._ack[10 + i] << 8) | self._ack[11 + i]

    # ---- commands ----------------------------------------------------------------
    def verify_password(self):
        p = self.password
        for i in range(4):
            self._args[i] = (p >> (24 - 8 * i)) & 0xFF
        return self.command(0x13, 4) == OK

    def gen_img(self):
        return self.command(0x01)

    def img2tz(self, buf):
        self._args[0] = buf
        return self.command(0x02, 1)

    def reg_model(self):
        return self.command(0x05)

    def store(self, page, buf=1):
        self._args[0] = buf
        self._u16(1, page)
        return self.command(0x06, 3)

    def delete(self, page, count=1):
        self._u16(0, page)
        self._u16(2, count)
        return self.command(0x0C, 4)

    def template_count(self):
        """Templates in the library, or None when the module refused."""
        if self.command(0x1D) != OK or self._n < 3:
            return None
        return self._ack_u16(0)

    def search_buffer(self, buf=1, start=0, count=CAPACITY):
        """(page, score) of the template matching buffer `buf`, or the code."""
        self._args[0] = buf
        self._u16(1, start)
        self._u16(3, count)
        code = self.command(0x04, 5)
        if code != OK:
            return code
        if self._n < 5:
            raise OSError(5)
        return self._ack_u16(0), self._ack_u16(2)

    def search(self, start=0, count=CAPACITY):
        """Image the finger on the sensor and look it up: (page, score) on a
        match, None when it matches no template; else the code: NO_FINGER, or
        an image the module could not use (IMAGE_MESSY, FEW_FEATURES,
        IMAGE_FAIL, NO_IMAGE): ask for the finger again."""
        code = self.gen_img()
        if code != OK:
            return code
        code = self.img2tz(1)
        if code != OK:
            return code
        r = self.search_buffer(1, start, count)
        return None if r == NO_MATCH else r

    def identify(self, start=0, count=CAPACITY):
        """search() for a lock's loop: the page of the matching template, None
        when the finger matches none, False when there is nothing to decide
        (no finger any more, an image to take again, a module that did not
        answer or answered garbage)."""
        try:
            r = self.search(start, count)
        except OSError:
            return False
        if r is None:
            return None
        if isinstance(r, tuple):
            return r[0]
        return False

    def wait_finger(self, present, timeout_ms):
        """Until a finger is on (present) or off the sensor, at most timeout_ms:
        True when it happened. Uses the touch output, else GenImg."""
        deadline = time.ticks_add(time.ticks_ms(), timeout_ms)
        while True:
            if self.touch is not None:
                now = self.touch.value() == 0
            else:
                now = self.gen_img() != NO_FINGER
            if now == present:
                return True
            if time.ticks_diff(deadline, time.ticks_ms()) <= 0:
                return False
            time.sleep_ms(20)

    def enrol_step(self, buf, timeout_ms=10000):
        """One capture for enrolment: wait for the finger, image it into buffer
        `buf`; the code (NO_FINGER when none came within timeout_ms)."""
        if not self.wait_finger(True, timeout_ms):
            return NO_FINGER
        code = self.gen_img()
        if code != OK:
            return code
        return self.img2tz(buf)

    def enrol(self, page, timeout_ms=10000):
        """Enrol the finger presented twice (lifted in between) at `page`: OK or
        the code of the step that failed."""
        if not 0 <= page < CAPACITY:
            return BAD_PAGE
        code = self.enrol_step(1, timeout_ms)
        if code != OK:
            return code
        if not self.wait_finger(False, timeout_ms):
            return NO_FINGER
        code = self.enrol_step(2, timeout_ms)
        if code != OK:
            return code
        code = self.reg_model()
        if code != OK:
            return code
        return self.store(page, 1)
