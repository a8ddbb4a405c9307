"""An NXP MFRC522 13.56 MHz reader at register level over SPI, with ISO 14443-3A
cards in its field (docs/simulator.md, "Peripheral chips").

SPI (datasheet 8.1.2, mode 0, MSB first, up to 10 MHz): chip select low
starts a frame; the first byte is the address, (reg << 1) & 0x7E, bit 7 set
for a read. In a read frame every further MOSI byte is the next address to
read and MISO carries the register named by the byte before (a final 0x00
ends it); in a write frame every further byte goes to the same register
(bursts into the FIFO).

Modelled: CommandReg (Idle, CalcCRC, Transceive, SoftReset; others go Idle),
the 64-byte FIFO and FIFOLevelReg (FlushBuffer, BufferOvfl), ComIrqReg /
DivIrqReg (Set1/Set2 writes), ErrorReg (CollErr, CRCErr, BufferOvfl,
ProtocolErr), Status1Reg (CRCReady, TRunning, IRq), ControlReg (RxLastBits,
TStartNow, TStopNow), BitFramingReg (StartSend, TxLastBits), CollReg, ModeReg
(the CRC preset), TxModeReg / RxModeReg (TxCRCEn, RxCRCEn), TxControlReg (the
antenna: Tx1RFEn/Tx2RFEn), the timer (TModeReg TAuto/TAutoRestart,
TPrescaler, TReload, TCounterVal: 13.56 MHz / (2 * TPrescaler + 1), started
at the end of each transmission with TAuto, stopped when a reply starts;
TimerIRq when it runs out: a Transceive that nobody answers), CRCResultReg,
VersionReg (0x92), and the NRSTPD pin when wired (low: powered down, MISO
floats; rising: hard reset, ready after 1 ms). Everything else is stored and
read back. Not modelled: Mem, Generate RandomID, Transmit, Receive,
MFAuthent (they go Idle), RxAlign, parity errors, Hi/LoAlert interrupts.

Air timing at 106 kBd: 9.44 us per bit (8 data bits and a parity bit per
byte, plus start and end of frame), a card's reply 91 us (FDT) after the
frame; REQA + ATQA takes about 0.4 ms.

Cards (ISO 14443-3A, one at a time: two cards in the field, collisions and
bit-oriented anticollision frames are left out): REQA / WUPA (7-bit frames)
answer ATQA; SEL (0x93, 0x95) with NVB 0x20 answers UID CLn + BCC (a
7-byte UID starts CL1 with the cascade tag 0x88); NVB 0x70 with CLn, BCC and
CRC_A selects it (SAK with the cascade bit 0x04 until the last level, then
0x08 for a 4-byte UID, 0x00 for a 7-byte one); HLTA halts it (only WUPA wakes
it). A frame a state does not expect sends the card back to IDLE (or HALT).
A card loses its state when it leaves the field or the antenna goes off.

The world: `present(uid_hex, since, until, frames=None, bad_bcc=False)` holds
a card in the field from `since` until `until` (None: until removed);
`frames` makes it leave after answering that many frames; `bad_bcc` corrupts
its anticollision BCC. `remove(now)` takes it away.

The same file runs in the board (MicroPython) and on the host (CPython).
"""

KIND = "mfrc522"

# registers
COMMAND = 0x01
COM_IEN = 0x02
DIV_IEN = 0x03
COM_IRQ = 0x04
DIV_IRQ = 0x05
ERROR = 0x06
STATUS1 = 0x07
STATUS2 = 0x08
FIFO_DATA = 0x09
FIFO_LEVEL = 0x0A
WATER_LEVEL = 0x0B
CONTROL = 0x0C
BIT_FRAMING = 0x0D
COLL = 0x0E
MODE = 0x11
TX_MODE = 0x12
RX_MODE = 0x13
TX_CONTROL = 0x14
CRC_RESULT_H = 0x21
CRC_RESULT_L = 0x22
T_MODE = 0x2A
T_PRESCALER = 0x2B
T_RELOAD_H = 0x2C
T_RELOAD_L = 0x2D
T_COUNTER_H = 0x2E
T_COUNTER_L = 0x2F
VERSION = 0x37

# commands
IDLE = 0x0
CALC_CRC = 0x3
TRANSCEIVE = 0xC
SOFT_RESET = 0xF

RESET_VALUES = {COMMAND: 0x20, COM_IEN: 0x80, COM_IRQ: 0x14, STATUS1: 0x21, WATER_LEVEL: 0x08,
                CONTROL: 0x10, COLL: 0xA0, MODE: 0x3F, TX_CONTROL: 0x80, 0x16: 0x10, 0x17: 0x84,
                0x18: 0x84, 0x19: 0x4D, 0x1C: 0x62, 0x1F: 0xEB, CRC_RESULT_H: 0xFF,
                CRC_RESULT_L: 0xFF, 0x24: 0x26, 0x26: 0x48, 0x27: 0x88, 0x28: 0x20, 0x29: 0x20}

FC = 13560000.0
BIT_S = 128 / FC          # one bit at 106 kBd
FDT_S = 1236 / FC         # frame delay time: end of the reader's frame to the card's reply
HARD_RESET_S = 0.001      # NRSTPD high to ready (crystal start-up and 37.74 us)
SOFT_RESET_S = 0.0001

# card states
C_IDLE, C_READY1, C_READY2, C_ACTIVE, C_HALT = 0, 1, 2, 3, 4
REQA, WUPA, HLTA = 0x26, 0x52, 0x50
SEL = (0x93, 0x95, 0x97)
CASCADE_TAG = 0x88


def crc_a(data, preset=0x6363, n=None):
    """ISO 14443-3A CRC_A (x^16 + x^12 + x^5 + 1, reflected), LSB first on air."""
    crc = preset
    for i in range(len(data) if n is None else n):
        b = data[i] ^ (crc & 0xFF)
        b = (b ^ (b << 4)) & 0xFF
        crc = (crc >> 8) ^ (b << 8) ^ (b << 3) ^ (b >> 4)
    return crc & 0xFFFF


def _air(nbits):
    """Air time of a frame of nbits data bits (parity per byte, start and end)."""
    return (nbits + nbits // 8 + 2) * BIT_S


class Chip:
    spi_mode = 0
    spi_max_hz = 10000000

    def __init__(self, sck, mosi, miso, cs, rst=None, version=0x92):
        self.spi_bus = (sck, mosi, miso, cs)
        self.rst = rst
        self.version = version
        self.regs = bytearray(64)
        self.fifo = bytearray()
        self._reset_regs()
        self.powered = True     # NRSTPD high (or not wired)
        self.ready_at = 0.0     # a reset finishes
        self.frame = None       # within a CS-low frame: None (next byte is an address), or
        self.rd_addr = -1       # the register to send next (read), or
        self.wr_addr = -1       # the register the next bytes go to (write)
        self.op = None          # a Transceive in progress (see _start_transceive)
        self.timer = None       # [start, period, autorestart] while running
        self.antenna_off_at = 0.0
        self.cards = []         # [uid hex, since, until, frames left or None, bad_bcc]
        self.card_state = C_IDLE
        self.card_seen = -1.0   # when the card last took part in an exchange
        self.card_uid = None

    @classmethod
    def for_board(cls, board, **kw):
        p = board["pins"]
        return cls(p["spi_sck"], p["spi_mosi"], p["spi_miso"], p["rfid_cs"], p.get("rfid_rst"),
                   **kw)

    # ---- the simulator's interface --------------------------------------------
    def state(self):
        return {"kind": KIND, "bus": list(self.spi_bus), "rst": self.rst, "ver": self.version,
                "regs": bytes(self.regs).hex(), "fifo": bytes(self.fifo).hex(),
                "pw": self.powered, "ready": self.ready_at,
                "frame": [self.frame, self.rd_addr, self.wr_addr],
                "op": self.op, "timer": self.timer, "aoff": self.antenna_off_at,
                "cards": self.cards, "card": [self.card_state, self.card_seen, self.card_uid]}

    @classmethod
    def restore(cls, st):
        b = st["bus"]
        c = cls(b[0], b[1], b[2], b[3], st["rst"], st["ver"])
        c.regs = bytearray(bytes.fromhex(st["regs"]))
        c.fifo = bytearray(bytes.fromhex(st["fifo"]))
        c.powered = st["pw"]
        c.ready_at = st["ready"]
        c.frame, c.rd_addr, c.wr_addr = st["frame"]
        c.op = st["op"]
        c.timer = st["timer"]
        c.antenna_off_at = st["aoff"]
        c.cards = st["cards"]
        c.card_state, c.card_seen, c.card_uid = st["card"]
        return c

    def inputs(self):
        return ()

    def analog(self):
        return ()

    def outputs(self):
        cs = self.spi_bus[3]
        return (cs,) if self.rst is None else (cs, self.rst)

    def level(self, pin_id, now, levels):
        return 1

    def adc(self, pin_id, now, levels):
        return 0

    def pin_written(self, pin_id, level, now, levels):
        if pin_id == self.spi_bus[3]:
            self.frame = None  # either edge ends a frame; the falling one starts the next
            self.rd_addr = -1
            self.wr_addr = -1
        elif pin_id == self.rst:
            if level == 0:
                self.powered = False
                self.op = None
                self.timer = None
                self.antenna_off_at = now
            elif not self.powered:
                self.powered = True
                self._reset_regs()
                self.fifo = bytearray()
                self.ready_at = now + HARD_RESET_S

    # ---- the world --------------------------------------------------------------
    def present(self, uid_hex, since, until=None, frames=None, bad_bcc=False):
        uid = bytes.fromhex(uid_hex)
        if len(uid) not in (4, 7):
            raise ValueError("a card UID has 4 or 7 bytes")
        self.cards = [c for c in self.cards if c[2] is None or c[2] > since - 60]
        self.cards.append([uid_hex, since, until, frames, bad_bcc])

    def remove(self, now):
        for c in self.cards:
            if c[1] <= now and (c[2] is None or c[2] > now):
                c[2] = now

    def _card_at(self, t):
        for c in self.cards:
            if c[1] <= t and (c[2] is None or t < c[2]) and (c[3] is None or c[3] > 0):
                return c
        return None

    # ---- SPI --------------------------------------------------------------------
    def spi_transfer(self, src, dest, n, now):
        fill = src if isinstance(src, int) else None
        live = self.powered and now >= self.ready_at
        for i in range(n):
            b = fill if fill is not None else src[i]
            out = 0x00
            if not live:
                out = 0xFF
            elif self.frame is None:
                self.frame = 1
                if b & 0x80:
                    self.rd_addr = (b >> 1) & 0x3F
                else:
                    self.wr_addr = (b >> 1) & 0x3F
            elif self.rd_addr >= 0:
                out = self.read_reg(self.rd_addr, now)
                self.rd_addr = (b >> 1) & 0x3F if b & 0x80 else -1
            elif self.wr_addr >= 0:
                self.write_reg(self.wr_addr, b, now)
            if dest is not None:
                dest[i] = out

    # ---- registers ----------------------------------------------------------------
    def _reset_regs(self):
        r = self.regs
        for i in range(64):
            r[i] = 0
        for k, v in RESET_VALUES.items():
            r[k] = v
        r[VERSION] = self.version

    def _set_irq(self, bits):
        self.regs[COM_IRQ] |= bits

    def read_reg(self, a, now):
        self._catch_up(now)
        r = self.regs
        if a == FIFO_DATA:
            if self.fifo:
                v = self.fifo[0]
                self.fifo = self.fifo[1:]
                return v
            return 0
        if a == FIFO_LEVEL:
            return len(self.fifo)
        if a == COMMAND:
            return r[COMMAND] | (0x10 if now < self.ready_at else 0)
        if a == STATUS1:
            v = r[STATUS1] & 0x30  # CRCOk, CRCReady
            if self.timer is not None:
                v |= 0x04
            if (r[COM_IRQ] & r[COM_IEN] & 0x7F) or (r[DIV_IRQ] & r[DIV_IEN] & 0x14):
                v |= 0x08
            if len(self.fifo) <= r[WATER_LEVEL]:
                v |= 0x01
            if 64 - len(self.fifo) <= r[WATER_LEVEL]:
                v |= 0x02
            return v
        if a == T_COUNTER_H or a == T_COUNTER_L:
            v = self._counter(now)
            return v >> 8 if a == T_COUNTER_H else v & 0xFF
        return r[a]

    def write_reg(self, a, v, now):
        self._catch_up(now)
        r = self.regs
        if a == FIFO_DATA:
            if len(self.fifo) >= 64:
                r[ERROR] |= 0x10  # BufferOvfl
            else:
                self.fifo.append(v)
        elif a == FIFO_LEVEL:
            if v & 0x80:
                self.fifo = bytearray()
                r[ERROR] &= ~0x10 & 0xFF
        elif a == COM_IRQ:
            if v & 0x80:
                r[COM_IRQ] |= v & 0x7F
            else:
                r[COM_IRQ] &= ~v & 0x7F
        elif a == DIV_IRQ:
            if v & 0x80:
                r[DIV_IRQ] |= v & 0x14
            else:
                r[DIV_IRQ] &= ~v & 0x14
        elif a == COMMAND:
            self._command(v, now)
        elif a == BIT_FRAMING:
            r[BIT_FRAMING] = v & 0x7F
            if v & 0x80 and r[COMMAND] & 0x0F == TRANSCEIVE:
                self._start_transceive(now)
        elif a == CONTROL:
            if v & 0x80:
                self.timer = None
            if v & 0x40:
                self._start_timer(now)
        elif a == TX_CONTROL:
            was = r[TX_CONTROL] & 0x03
            r[TX_CONTROL] = v
            if was and not v & 0x03:
                self.antenna_off_at = now
        elif a in (ERROR, STATUS1, VERSION, COLL, T_COUNTER_H, T_COUNTER_L,
                   CRC_RESULT_H, CRC_RESULT_L):
            pass  # read-only
        else:
            r[a] = v

    def _command(self, v, now):
        r = self.regs
        cmd = v & 0x0F
        r[COMMAND] = v & 0x30 | cmd
        if cmd == SOFT_RESET:
            self._reset_regs()
            self.fifo = bytearray()
            self.op = None
            self.timer = None
            self.antenna_off_at = now
            self.ready_at = now + SOFT_RESET_S
        elif cmd == CALC_CRC:
            preset = (0x0000, 0x6363, 0xA671, 0xFFFF)[r[MODE] & 0x03]
            crc = crc_a(self.fifo, preset)
            self.fifo = bytearray()
            r[CRC_RESULT_H] = crc >> 8
            r[CRC_RESULT_L] = crc & 0xFF
            r[STATUS1] |= 0x20 | 0x10
            r[DIV_IRQ] |= 0x04
        elif cmd == TRANSCEIVE:
            pass  # waits for StartSend
        elif cmd == IDLE:
            self.op = None
        else:
            r[COMMAND] = v & 0x30  # not modelled: goes Idle at once
            self._set_irq(0x10)

    # ---- the timer ------------------------------------------------------------------
    def _period(self):
        r = self.regs
        pre = ((r[T_MODE] & 0x0F) << 8) | r[T_PRESCALER]
        reload = (r[T_RELOAD_H] << 8) | r[T_RELOAD_L]
        return (2 * pre + 1) * (reload + 1) / FC

    def _start_timer(self, t):
        self.timer = [t, self._period(), bool(self.regs[T_MODE] & 0x10)]

    def _counter(self, now):
        r = self.regs
        reload = (r[T_RELOAD_H] << 8) | r[T_RELOAD_L]
        if self.timer is None:
            return reload
        start, period = self.timer[0], self.timer[1]
        left = 1 - ((now - start) % period) / period
        return int(reload * left) & 0xFFFF

    def _catch_up(self, now):
        """Apply what happened since the last access: the timer running out, a
        frame sent, a reply received."""
        op = self.op
        r = self.regs
        if op is not None:
            if op["tx_end"] <= now and not op["txd"]:
                op["txd"] = True
                self._set_irq(0x40)  # TxIRq
                if r[T_MODE] & 0x80:
                    self._start_timer(op["tx_end"])
            if op["rx_start"] is not None and op["rx_start"] <= now and self.timer is not None \
                    and op["txd"] and self.timer[0] + self.timer[1] > op["rx_start"]:
                self.timer = None  # the reply started first: TAuto stops the timer
        tm = self.timer
        if tm is not None and tm[0] + tm[1] <= now:
            self._set_irq(0x01)  # TimerIRq
            if tm[2]:
                n = int((now - tm[0]) / tm[1])
                tm[0] += n * tm[1]
            else:
                self.timer = None
        if op is not None and op["rx_end"] is not None and op["rx_end"] <= now:
            data = bytes.fromhex(op["data"])
            r[ERROR] = (r[ERROR] & 0x10) | op["err"]
            self.fifo = bytearray(data[:64])
            r[CONTROL] = (r[CONTROL] & 0xF8) | (op["bits"] & 0x07)
            self._set_irq(0x20)  # RxIRq
            self.op = None

    # ---- Transceive -------------------------------------------------------------------
    def _start_transceive(self, now):
        r = self.regs
        frame = bytes(self.fifo)
        self.fifo = bytearray()
        last_bits = r[BIT_FRAMING] & 0x07
        r[ERROR] &= 0x10  # CollErr, CRCErr, ParityErr, ProtocolErr clear at receiver start
        r[COLL] = (r[COLL] & 0x80) | 0x20  # CollPosNotValid
        r[STATUS1] &= ~0x30 & 0xFF
        if r[TX_MODE] & 0x80 and frame:
            c = crc_a(frame, (0x0000, 0x6363, 0xA671, 0xFFFF)[r[MODE] & 0x03])
            frame += bytes((c & 0xFF, c >> 8))
        nbits = 8 * len(frame) - (8 - last_bits if last_bits else 0)
        tx_end = now + _air(nbits)
        op = {"tx_end": tx_end, "txd": False, "rx_start": None, "rx_end": None, "data": "",
              "bits": 0, "err": 0}
        reply = None
        if r[TX_CONTROL] & 0x03 and frame:
            reply = self._card_reply(frame, last_bits, tx_end)
        if reply is not None:
            data, bits = reply
            if r[RX_MODE] & 0x80:
                if len(data) < 3 or crc_a(data, 0x6363) != 0:
                    op["err"] |= 0x04  # CRCErr
                else:
                    data = data[:-2]
            rx_bits = 8 * len(data) - (8 - bits if bits else 0)
            op["rx_start"] = tx_end + FDT_S
            op["rx_end"] = op["rx_start"] + _air(rx_bits)
            op["data"] = data.hex()
            op["bits"] = bits
        self.op = op

    # ---- the card ------------------------------------------------------------------------
    def _card_reply(self, frame, last_bits, t):
        """What the card in the field answers to `frame` (sent ending at t):
        (bytes, valid bits in the last byte, 0 = all) or None."""
        card = self._card_at(t)
        if card is None:
            self.card_state = C_IDLE
            return None
        if self.card_seen < card[1] or self.card_seen < self.antenna_off_at \
                or self.card_uid != card[0]:
            self.card_state = C_IDLE  # it came into the field (or the field) since
        self.card_seen = t
        self.card_uid = card[0]
        st = self.card_state
        uid = bytes.fromhex(card[0])
        reply = None
        if last_bits == 7 and len(frame) == 1:
            if (frame[0] == REQA and st == C_IDLE) or (frame[0] == WUPA and st in (C_IDLE, C_HALT)):
                reply = (bytes((0x04 if len(uid) == 4 else 0x44, 0x00)), 0)
                st = C_READY1
            elif st != C_HALT:
                st = C_IDLE
        elif last_bits == 0 and st in (C_READY1, C_READY2) and len(frame) >= 2 \
                and frame[0] == SEL[st - C_READY1]:
            level = st - C_READY1
            if len(uid) == 4:
                cl = uid
            elif level == 0:
                cl = bytes((CASCADE_TAG,)) + uid[:3]
            else:
                cl = uid[3:7]
            bcc = cl[0] ^ cl[1] ^ cl[2] ^ cl[3]
            full = cl + bytes((bcc,))
            nvb = frame[1]
            known = (nvb >> 4) - 2
            if nvb == 0x70 and len(frame) == 9:
                if frame[2:7] == full and crc_a(frame, 0x6363, 9) == 0:
                    last = len(uid) == 4 or level == 1
                    sak = (0x08 if len(uid) == 4 else 0x00) if last else 0x04
                    c = crc_a(bytes((sak,)))
                    reply = (bytes((sak, c & 0xFF, c >> 8)), 0)
                    st = C_ACTIVE if last else C_READY2
                else:
                    st = C_IDLE
            elif nvb & 0x0F == 0 and 0 <= known <= 4 and len(frame) == 2 + known \
                    and frame[2:2 + known] == cl[:known]:
                if card[4]:
                    full = cl + bytes((bcc ^ 0x5A,))
                reply = (full[known:], 0)
            else:
                st = C_IDLE
        elif st == C_ACTIVE and len(frame) == 4 and frame[0] == HLTA and frame[1] == 0 \
                and crc_a(frame, 0x6363, 4) == 0:
            st = C_HALT
        else:
            st = C_HALT if st == C_HALT else C_IDLE
        self.card_state = st
        if reply is not None and card[3] is not None:
            card[3] -= 1
        return reply
