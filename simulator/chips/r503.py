"""A Grow R503 / AS608 fingerprint module on a UART, packet level
(docs/simulator.md, "Peripheral chips").

Packet: header 0xEF 0x01, 4-byte address (0xFFFFFFFF), PID (0x01 command,
0x02 data, 0x07 ack, 0x08 end of data), 2-byte length (payload + 2), the
payload, 2-byte checksum (PID + length bytes + payload, modulo 65536); all
big-endian. 57,600 Bd, 8N1. Packets for another address are ignored; a
command with a bad checksum or length is answered with 0x01.

Commands and their confirmation codes:

| cmd | name | payload | codes |
| --- | --- | --- | --- |
| 0x13 | VfyPwd | u32 password | 0x00, 0x13 wrong password |
| 0x01 | GenImg | - | 0x00, 0x02 no finger, 0x03 image not taken |
| 0x02 | Img2Tz | u8 buffer (1, 2) | 0x00, 0x06 image too messy, 0x07 too few features, 0x15 no image |
| 0x05 | RegModel | - | 0x00, 0x0A the two buffers do not combine |
| 0x06 | Store | u8 buffer, u16 page | 0x00, 0x0B page outside the library, 0x01 empty buffer |
| 0x04 | Search | u8 buffer, u16 start, u16 count | 0x00 + u16 page + u16 score, 0x09 no match |
| 0x0C | DeleteChar | u16 page, u16 count | 0x00, 0x10 outside the library |
| 0x0D | Empty | - | 0x00 |
| 0x1D | TemplateNum | - | 0x00 + u16 count |
| 0x35 | AuraLedConfig | u8 ctrl, speed, colour, count | 0x00 |

Anything else is answered 0x01. Processing times (virtual time, from the end
of the command packet to the first byte of the ack; figures within the R503
datasheet's bounds: image < 0.2 s, search < 0.3 s): GenImg 0.18 s with a
finger, 0.05 s without; Img2Tz 0.12 s; RegModel 0.08 s; Store 0.05 s; Search
0.05 s + 1.25 ms per page searched; DeleteChar / Empty 0.04 s; VfyPwd,
TemplateNum, AuraLedConfig 0.01 s. Commands are handled one after another.

A finger is a name (a person's finger: "alice:R1"). The world holds one to
the sensor with `touch(finger_id, since, until, quality="good")`
("poor": Img2Tz says 0x07, "smudged": 0x06, "unreadable": GenImg says 0x03)
and lifts it with `lift(now)`.
The touch output (`fp_touch`) is low while a finger is on the sensor. A
template is the finger's name; enrolment goes through the protocol (GenImg,
Img2Tz 1, GenImg, Img2Tz 2, RegModel, Store); `enrolled(page, finger_id)`
fills the library (page -> finger) directly for a scenario or a test. Scores are fixed per finger and page (60..259).

Faults for tests: `bad_checksum` (that many next acks carry a wrong
checksum), `mute` (the module answers nothing).

The same file runs in the board (MicroPython) and on the host (CPython).
"""

KIND = "r503"
BAUD = 57600
CAPACITY = 200

OK = 0x00
PACKET_ERROR = 0x01
NO_FINGER = 0x02
IMAGE_FAIL = 0x03
IMAGE_MESSY = 0x06
FEW_FEATURES = 0x07
NO_MATCH = 0x09
COMBINE_FAIL = 0x0A
BAD_PAGE = 0x0B
DELETE_FAIL = 0x10
WRONG_PASSWORD = 0x13
NO_IMAGE = 0x15

TIMES = {0x13: 0.01, 0x01: 0.18, 0x02: 0.12, 0x05: 0.08, 0x06: 0.05, 0x04: 0.05, 0x0C: 0.04,
         0x0D: 0.04, 0x1D: 0.01, 0x35: 0.01}
GENIMG_EMPTY_S = 0.05
SEARCH_PER_PAGE_S = 0.00125
ERROR_S = 0.005


def checksum(data, start, end):
    s = 0
    for i in range(start, end):
        s += data[i]
    return s & 0xFFFF


def packet(pid, payload, address=0xFFFFFFFF):
    n = len(payload) + 2
    head = bytes((0xEF, 0x01, address >> 24 & 0xFF, address >> 16 & 0xFF, address >> 8 & 0xFF,
                  address & 0xFF, pid, n >> 8, n & 0xFF))
    body = head + bytes(payload)
    c = checksum(body, 6, len(body))
    return body + bytes((c >> 8, c & 0xFF))


def _score(finger, page):
    h = page * 31
    for ch in finger:
        h = (h * 131 + ord(ch)) & 0xFFFF
    return 60 + h % 200


class Chip:
    def __init__(self, tx, rx, touch=None, address=0xFFFFFFFF, password=0):
        self.uart_pins = (tx, rx)  # the board's TX (our RX) and the board's RX (our TX)
        self.touch_pin = touch
        self.address = address
        self.password = password
        self.touches = []       # [finger, since, until or None, quality]
        self.library = {}       # page -> finger
        self.image = None       # the last GenImg: [finger, quality] or None
        self.buffers = [None, None]  # character buffers 1 and 2: a finger's name
        self.rx = b""           # bytes received, not yet a whole packet
        self.rx_end = 0.0       # when the last of them arrived
        self.pending = []       # [complete at, packet hex]: commands not yet handled
        self.busy_until = 0.0
        self.out = []           # [first byte's arrival, hex]: acks on their way to the board
        self.bad_checksum = 0
        self.mute = False

    @classmethod
    def for_board(cls, board, **kw):
        p = board["pins"]
        return cls(p["fp_tx"], p["fp_rx"], p.get("fp_touch"), **kw)

    # ---- the simulator's interface --------------------------------------------
    def state(self):
        return {"kind": KIND, "pins": [self.uart_pins[0], self.uart_pins[1], self.touch_pin],
                "addr": self.address, "pwd": self.password, "touches": self.touches,
                "lib": [[k, v] for k, v in self.library.items()], "image": self.image,
                "bufs": self.buffers, "rx": self.rx.hex(), "rx_end": self.rx_end,
                "pending": self.pending, "busy": self.busy_until, "out": self.out,
                "faults": [self.bad_checksum, self.mute]}

    @classmethod
    def restore(cls, st):
        p = st["pins"]
        c = cls(p[0], p[1], p[2], st["addr"], st["pwd"])
        c.touches = st["touches"]
        c.library = {k: v for k, v in st["lib"]}
        c.image = st["image"]
        c.buffers = st["bufs"]
        c.rx = bytes.fromhex(st["rx"])
        c.rx_end = st["rx_end"]
        c.pending = st["pending"]
        c.busy_until = st["busy"]
        c.out = st["out"]
        c.bad_checksum, c.mute = st["faults"]
        return c

    def inputs(self):
        return () if self.touch_pin is None else (self.touch_pin,)

    def analog(self):
        return ()

    def outputs(self):
        return ()

    def level(self, pin_id, now, levels):
        return 0 if self._finger_at(now) is not None else 1

    def adc(self, pin_id, now, levels):
        return 0

    def pin_written(self, pin_id, level, now, levels):
        pass

    # ---- the world --------------------------------------------------------------
    def touch(self, finger_id, since, until=None, quality="good"):
        if quality not in ("good", "poor", "smudged", "unreadable"):
            raise ValueError("quality is good, poor, smudged or unreadable")
        self.touches = [t for t in self.touches if t[2] is None or t[2] > since - 60]
        self.touches.append([finger_id, since, until, quality])

    def lift(self, now):
        for t in self.touches:
            if t[1] <= now and (t[2] is None or t[2] > now):
                t[2] = now

    def enrolled(self, page, finger_id):
        """Put a template straight into the library (enrolled at installation:
        a scenario's or a test's shortcut)."""
        self.library[str(page)] = finger_id

    def _finger_at(self, t):
        for f in self.touches:
            if f[1] <= t and (f[2] is None or t < f[2]):
                return f
        return None

    # ---- the UART -----------------------------------------------------------------
    def uart_write(self, data, start, baud):
        """Bytes from the board, the first starting at `start`."""
        if baud * 100 < BAUD * 97 or baud * 100 > BAUD * 103:
            return  # framing errors: nothing the module can take
        bt = 10.0 / baud
        self.rx += data
        self.rx_end = start + len(data) * bt
        self._parse(start, bt)

    def _parse(self, start, bt):
        buf = self.rx
        while True:
            i = buf.find(b"\xef\x01")
            if i < 0:
                buf = buf[-1:] if buf[-1:] == b"\xef" else b""
                break
            buf = buf[i:]
            if len(buf) < 9:
                break
            n = (buf[7] << 8) | buf[8]
            if n < 2 or n > 256:
                buf = buf[2:]
                continue
            if len(buf) < 9 + n:
                break
            pkt = buf[:9 + n]
            buf = buf[9 + n:]
            # it was complete when its last byte arrived
            done = self.rx_end - len(buf) * bt
            self.pending.append([done, pkt.hex()])
        self.rx = buf

    def _catch_up(self, now):
        while self.pending and self.pending[0][0] <= now:
            done, pkt = self.pending.pop(0)
            self._handle(bytes.fromhex(pkt), done)

    def uart_any(self, now, baud):
        self._catch_up(now)
        bt = self.bt_last  # the module's own clock
        n = 0
        for t, data in self.out:
            k = int((now - t) / bt + 1e-9) + 1 if now >= t else 0
            n += min(k, len(data) // 2)
        return n

    def uart_read(self, now, baud, buf, i, size):
        """Copy the bytes that have arrived by `now` into buf[i:size]; the new i."""
        self._catch_up(now)
        bt = self.bt_last
        while i < size and self.out:
            t, data = self.out[0]
            if now < t:
                break
            have = len(data) // 2
            k = int((now - t) / bt + 1e-9) + 1
            if k > have:
                k = have
            if k > size - i:
                k = size - i
            chunk = bytes.fromhex(data[:2 * k])
            for j in range(k):
                buf[i + j] = chunk[j]
            i += k
            if k == have:
                self.out.pop(0)
            else:
                self.out[0] = [t + k * bt, data[2 * k:]]
        return i

    def uart_due(self, now, k):
        """(arrival of the next byte, of the k-th next one in the same burst) or None."""
        self._catch_up(now)
        if self.out:
            t, data = self.out[0]
            have = len(data) // 2
            return (t, t + (min(k, have) - 1) * self.bt_last)
        if self.pending:
            return (self.pending[0][0], self.pending[0][0])
        return None

    bt_last = 10.0 / BAUD

    # ---- the module -------------------------------------------------------------------
    def _ack(self, at, payload):
        if self.mute:
            return
        p = bytearray(packet(0x07, payload, self.address))
        if self.bad_checksum:
            self.bad_checksum -= 1
            p[-1] ^= 0x5A
        self.out.append([at + self.bt_last, bytes(p).hex()])

    def _handle(self, pkt, done):
        start = done if done > self.busy_until else self.busy_until
        addr = (pkt[2] << 24) | (pkt[3] << 16) | (pkt[4] << 8) | pkt[5]
        if addr != self.address:
            return
        n = (pkt[7] << 8) | pkt[8]
        if pkt[6] != 0x01 or n < 3 or checksum(pkt, 6, 7 + n) != (pkt[-2] << 8 | pkt[-1]):
            self.busy_until = start + ERROR_S
            self._ack(self.busy_until, (PACKET_ERROR,))
            return
        cmd = pkt[9]
        args = pkt[10:7 + n]
        t = start + TIMES.get(cmd, ERROR_S)
        out = self._run(cmd, args, start)
        if cmd == 0x01 and out[0] == NO_FINGER:
            t = start + GENIMG_EMPTY_S
        elif cmd == 0x04 and len(args) == 5:
            count = (args[3] << 8) | args[4]
            t += SEARCH_PER_PAGE_S * min(count, CAPACITY)
        self.busy_until = t
        self._ack(t, out)

    def _run(self, cmd, a, t):
        if cmd == 0x13:
            if len(a) != 4:
                return (PACKET_ERROR,)
            pwd = (a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3]
            return (OK,) if pwd == self.password else (WRONG_PASSWORD,)
        if cmd == 0x01:
            f = self._finger_at(t)
            if f is None:
                self.image = None
                return (NO_FINGER,)
            if f[3] == "unreadable":
                self.image = None
                return (IMAGE_FAIL,)
            self.image = [f[0], f[3]]
            return (OK,)
        if cmd == 0x02:
            if len(a) != 1 or a[0] not in (1, 2):
                return (PACKET_ERROR,)
            if self.image is None:
                return (NO_IMAGE,)
            if self.image[1] == "poor":
                return (FEW_FEATURES,)
            if self.image[1] == "smudged":
                return (IMAGE_MESSY,)
            self.buffers[a[0] - 1] = self.image[0]
            return (OK,)
        if cmd == 0x05:
            b1, b2 = self.buffers
            if b1 is None or b1 != b2:
                return (COMBINE_FAIL,)
            return (OK,)
        if cmd == 0x06:
            if len(a) != 3 or a[0] not in (1, 2):
                return (PACKET_ERROR,)
            page = (a[1] << 8) | a[2]
            if page >= CAPACITY:
                return (BAD_PAGE,)
            f = self.buffers[a[0] - 1]
            if f is None:
                return (PACKET_ERROR,)
            self.library[str(page)] = f
            return (OK,)
        if cmd == 0x04:
            if len(a) != 5 or a[0] not in (1, 2):
                return (PACKET_ERROR,)
            f = self.buffers[a[0] - 1]
            start = (a[1] << 8) | a[2]
            count = (a[3] << 8) | a[4]
            if f is not None:
                for page in range(start, min(start + count, CAPACITY)):
                    if self.library.get(str(page)) == f:
                        s = _score(f, page)
                        return (OK, page >> 8, page & 0xFF, s >> 8, s & 0xFF)
            return (NO_MATCH, 0, 0, 0, 0)
        if cmd == 0x0C:
            if len(a) != 4:
                return (PACKET_ERROR,)
            page = (a[0] << 8) | a[1]
            count = (a[2] << 8) | a[3]
            if page + count > CAPACITY or count == 0:
                return (DELETE_FAIL,)
            for p in range(page, page + count):
                self.library.pop(str(p), None)
            return (OK,)
        if cmd == 0x0D:
            self.library = {}
            return (OK,)
        if cmd == 0x1D:
            n = len(self.library)
            return (OK, n >> 8, n & 0xFF)
        if cmd == 0x35:
            return (OK,) if len(a) == 4 else (PACKET_ERROR,)
        return (PACKET_ERROR,)
