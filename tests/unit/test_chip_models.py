"""The chip models' protocol details on the host (CPython): the MFRC522's
registers over SPI frames and its cards, the R503's packets
(simulator/chips/mfrc522.py, r503.py)."""
import json

import pytest

from simulator.chips import mfrc522 as m
from simulator.chips import r503 as f

CS = 5


class Reader:
    """Drives the MFRC522 model as the SPI controller and CS pin would."""

    def __init__(self, chip=None):
        self.chip = chip or m.Chip(18, 23, 19, CS)
        self.t = 0.0

    def frame(self, out):
        c = self.chip
        c.pin_written(CS, 0, self.t, {})
        d = bytearray(len(out))
        c.spi_transfer(bytes(out), d, len(out), self.t)
        c.pin_written(CS, 1, self.t, {})
        self.t += 16e-6
        return bytes(d)

    def w(self, reg, *values):
        self.frame([(reg << 1) & 0x7E] + list(values))

    def r(self, reg):
        return self.frame([((reg << 1) & 0x7E) | 0x80, 0])[1]

    def setup(self):
        self.w(m.T_MODE, 0x80)
        self.w(m.T_PRESCALER, 169)
        self.w(m.T_RELOAD_H, 0)
        self.w(m.T_RELOAD_L, 40)
        self.w(m.MODE, 0x3D)
        self.w(m.TX_CONTROL, 0x83)

    def send(self, frame, bits=0):
        self.w(m.COMMAND, m.IDLE)
        self.w(m.COM_IRQ, 0x7F)
        self.w(m.FIFO_LEVEL, 0x80)
        self.w(m.FIFO_DATA, *frame)
        self.w(m.COMMAND, m.TRANSCEIVE)
        self.w(m.BIT_FRAMING, 0x80 | bits)

    def transceive(self, frame, bits=0, wait=0.005):
        """The reply's bytes, or None when the timer ran out first."""
        self.send(frame, bits)
        self.t += wait
        irq = self.r(m.COM_IRQ)
        if not irq & 0x20:
            return None
        n = self.r(m.FIFO_LEVEL)
        return bytes(self.r(m.FIFO_DATA) for _ in range(n))


def _crc(frame):
    c = m.crc_a(frame)
    return bytes(frame) + bytes((c & 0xFF, c >> 8))


def test_crc_a_matches_iso_14443_3_annex_b():
    assert m.crc_a(b"\x00\x00") == 0x1EA0
    assert m.crc_a(b"\x12\x34") == 0xCF26
    assert m.crc_a(_crc(b"\x50\x00")) == 0  # a frame with its CRC leaves no residue


def test_spi_frames_read_bursts_and_write_bursts():
    rd = Reader()
    assert rd.r(m.VERSION) == 0x92
    assert rd.r(m.COMMAND) == 0x20 and rd.r(m.MODE) == 0x3F  # reset values
    rd.w(m.FIFO_DATA, 1, 2, 3)  # a write burst goes to one register
    assert rd.r(m.FIFO_LEVEL) == 3
    a = ((m.FIFO_DATA << 1) & 0x7E) | 0x80
    # a read burst: every byte names the next register; MISO lags by one
    assert rd.frame([a, a, a, 0]) == b"\x00\x01\x02\x03"
    assert rd.r(m.FIFO_LEVEL) == 0
    rd.w(m.FIFO_DATA, *range(70))
    assert rd.r(m.FIFO_LEVEL) == 64 and rd.r(m.ERROR) & 0x10  # BufferOvfl
    rd.w(m.FIFO_LEVEL, 0x80)
    assert rd.r(m.FIFO_LEVEL) == 0 and not rd.r(m.ERROR) & 0x10


def test_irq_registers_set_and_clear_by_the_top_bit():
    rd = Reader()
    rd.w(m.COM_IRQ, 0x7F)
    assert rd.r(m.COM_IRQ) == 0
    rd.w(m.COM_IRQ, 0x80 | 0x21)
    assert rd.r(m.COM_IRQ) == 0x21
    rd.w(m.COM_IRQ, 0x01)
    assert rd.r(m.COM_IRQ) == 0x20


def test_calc_crc_uses_the_mode_registers_preset():
    rd = Reader()
    rd.w(m.MODE, 0x3D)  # 0x6363
    rd.w(m.FIFO_DATA, 0x12, 0x34)
    rd.w(m.COMMAND, m.CALC_CRC)
    assert rd.r(m.DIV_IRQ) & 0x04
    assert (rd.r(m.CRC_RESULT_H), rd.r(m.CRC_RESULT_L)) == (0xCF, 0x26)
    rd.w(m.MODE, 0x3F)  # 0xFFFF, the reset value: not CRC_A
    rd.w(m.FIFO_DATA, 0x12, 0x34)
    rd.w(m.COMMAND, m.CALC_CRC)
    assert (rd.r(m.CRC_RESULT_H) << 8 | rd.r(m.CRC_RESULT_L)) != 0xCF26


def test_no_card_is_a_timer_interrupt_after_the_timers_period():
    rd = Reader()
    rd.setup()
    rd.send([m.REQA], 7)
    sent = rd.t - 16e-6  # StartSend: the last frame
    tx_end = sent + m._air(7)
    period = (2 * 169 + 1) * 41 / m.FC  # 1.025 ms
    rd.t = tx_end + period - 1e-4
    assert not rd.r(m.COM_IRQ) & 0x01
    assert rd.r(m.STATUS1) & 0x04  # TRunning
    rd.t = tx_end + period + 1e-5
    assert rd.r(m.COM_IRQ) & 0x41 == 0x41  # TxIRq, TimerIRq
    assert not rd.r(m.COM_IRQ) & 0x20


def test_reqa_answers_atqa_and_the_reply_stops_the_timer():
    rd = Reader()
    rd.setup()
    rd.chip.present("a1b2c3d4", 0.0)
    rd.send([m.REQA], 7)
    rd.t += 0.0002  # ATQA is due at about 0.3 ms
    assert not rd.r(m.COM_IRQ) & 0x20
    rd.t += 0.005
    irq = rd.r(m.COM_IRQ)
    assert irq & 0x20 and not irq & 0x01  # RxIRq, no TimerIRq
    assert rd.r(m.FIFO_LEVEL) == 2
    assert rd.r(m.FIFO_DATA) == 0x04 and rd.r(m.FIFO_DATA) == 0x00
    assert rd.r(m.CONTROL) & 0x07 == 0  # whole bytes


def test_a_seven_byte_uid_goes_through_two_cascade_levels_then_halts():
    rd = Reader()
    rd.setup()
    uid = bytes.fromhex("04a1b2c3d4e5f6")
    rd.chip.present(uid.hex(), 0.0)
    assert rd.transceive([m.REQA], 7) == b"\x44\x00"
    cl1 = rd.transceive([0x93, 0x20])
    assert cl1[:4] == b"\x88" + uid[:3] and cl1[4] == cl1[0] ^ cl1[1] ^ cl1[2] ^ cl1[3]
    sak = rd.transceive(_crc(b"\x93\x70" + cl1))
    assert sak[0] == 0x04 and m.crc_a(sak) == 0  # cascade bit: not complete
    cl2 = rd.transceive([0x95, 0x20])
    assert cl2[:4] == uid[3:]
    sak = rd.transceive(_crc(b"\x95\x70" + cl2))
    assert sak[0] == 0x00
    assert rd.chip.card_state == m.C_ACTIVE
    assert rd.transceive(_crc(b"\x50\x00")) is None  # HLTA: no answer
    assert rd.chip.card_state == m.C_HALT
    assert rd.transceive([m.REQA], 7) is None
    assert rd.transceive([m.WUPA], 7) == b"\x44\x00"


def test_a_select_with_a_bad_crc_or_the_wrong_level_sends_the_card_idle():
    rd = Reader()
    rd.setup()
    rd.chip.present("a1b2c3d4", 0.0)
    rd.transceive([m.REQA], 7)
    cl1 = rd.transceive([0x93, 0x20])
    bad = bytearray(_crc(b"\x93\x70" + cl1))
    bad[-1] ^= 1
    assert rd.transceive(bad) is None
    assert rd.chip.card_state == m.C_IDLE
    rd.transceive([m.REQA], 7)
    assert rd.transceive([0x95, 0x20]) is None
    assert rd.chip.card_state == m.C_IDLE


def test_world_options_bad_bcc_frames_and_leaving_the_field():
    rd = Reader()
    rd.setup()
    rd.chip.present("a1b2c3d4", 0.0, bad_bcc=True)
    rd.transceive([m.REQA], 7)
    cl1 = rd.transceive([0x93, 0x20])
    assert cl1[4] != cl1[0] ^ cl1[1] ^ cl1[2] ^ cl1[3]
    rd.chip.remove(rd.t)
    assert rd.transceive([m.WUPA], 7) is None
    rd.chip.present("a1b2c3d4", rd.t, frames=1)
    assert rd.transceive([m.REQA], 7) == b"\x04\x00"
    assert rd.transceive([0x93, 0x20]) is None  # it answered its one frame and left
    with pytest.raises(ValueError):
        rd.chip.present("a1b2", 0.0)


def test_the_antenna_off_powers_the_card_down():
    rd = Reader()
    rd.setup()
    rd.chip.present("a1b2c3d4", 0.0)
    rd.transceive([m.REQA], 7)
    rd.transceive([0x93, 0x20])
    rd.w(m.TX_CONTROL, 0x80)
    assert rd.transceive([m.WUPA], 7) is None
    rd.w(m.TX_CONTROL, 0x83)
    assert rd.transceive([m.REQA], 7) == b"\x04\x00"  # back to IDLE: REQA is enough


def test_soft_reset_and_the_reset_pin():
    rd = Reader(m.Chip(18, 23, 19, CS, rst=20))
    rd.setup()
    rd.w(m.COMMAND, m.SOFT_RESET)
    assert rd.r(m.COMMAND) == 0xFF  # busy for 0.1 ms: MISO floats
    rd.t += 0.001
    assert rd.r(m.COMMAND) == 0x20 and rd.r(m.T_MODE) == 0 and rd.r(m.TX_CONTROL) == 0x80
    rd.w(m.T_MODE, 0x80)
    rd.chip.pin_written(20, 0, rd.t, {})
    assert rd.r(m.VERSION) == 0xFF  # powered down
    rd.chip.pin_written(20, 1, rd.t, {})
    rd.t += 0.002
    assert rd.r(m.VERSION) == 0x92 and rd.r(m.T_MODE) == 0


def test_the_state_survives_a_hand_over_mid_transceive():
    rd = Reader()
    rd.setup()
    rd.chip.present("a1b2c3d4", 0.0)
    rd.send([m.REQA], 7)
    st = json.loads(json.dumps(rd.chip.state()))
    rd.chip = m.Chip.restore(st)
    rd.t += 0.005
    assert rd.r(m.COM_IRQ) & 0x20 and rd.r(m.FIFO_LEVEL) == 2
    assert m.Chip.restore(rd.chip.state()).state() == rd.chip.state()


# ---- R503 ----------------------------------------------------------------------

BT = 10 / f.BAUD


class Module:
    def __init__(self, chip=None):
        self.chip = chip or f.Chip(25, 26, 36)
        self.t = 0.0

    def cmd(self, code, *args, address=0xFFFFFFFF, corrupt=False):
        p = bytearray(f.packet(0x01, bytes((code,) + args), address))
        if corrupt:
            p[-1] ^= 1
        self.chip.uart_write(bytes(p), self.t, f.BAUD)
        self.t += len(p) * BT
        return self.ack()

    def ack(self, wait=2.0):
        due = self.chip.uart_due(self.t, 64)
        if due is None:
            return None
        while due is not None and due[0] <= self.t + wait:
            self.t = max(self.t, due[1])
            due = self.chip.uart_due(self.t, 64)
            if due is not None and due[0] == due[1] and not self.chip.out:
                continue  # a command being handled
            if self.chip.uart_any(self.t, f.BAUD) >= 12:
                break
        buf = bytearray(32)
        n = self.chip.uart_read(self.t, f.BAUD, buf, 0, 32)
        return bytes(buf[:n]) if n else None


def _code(ack):
    assert ack[:6] == b"\xef\x01\xff\xff\xff\xff" and ack[6] == 0x07
    n = ack[7] << 8 | ack[8]
    assert f.checksum(ack, 6, 7 + n) == ack[7 + n] << 8 | ack[8 + n]
    return ack[9], ack[10:7 + n]


def test_packet_layout_and_checksum():
    # header, address, PID, length 7, VfyPwd, password 0, checksum 0x01 + 0x07 + 0x13
    assert f.packet(0x01, b"\x13\x00\x00\x00\x00") == bytes.fromhex(
        "ef01" "ffffffff" "01" "0007" "13" "00000000" "001b")


def test_verify_password_and_the_acks_timing():
    mod = Module()
    start = mod.t
    ack = mod.cmd(0x13, 0, 0, 0, 0)
    assert _code(ack) == (f.OK, b"")
    # 16 bytes out, 10 ms, 12 bytes back
    assert mod.t == pytest.approx(start + 16 * BT + 0.01 + 12 * BT, abs=1e-6)
    assert _code(mod.cmd(0x13, 0, 0, 0, 1))[0] == f.WRONG_PASSWORD


def test_bad_packets_wrong_addresses_and_unknown_commands():
    mod = Module()
    assert _code(mod.cmd(0x13, 0, 0, 0, 0, corrupt=True))[0] == f.PACKET_ERROR
    assert mod.cmd(0x13, 0, 0, 0, 0, address=0x12345678) is None  # not for this module
    assert _code(mod.cmd(0x77))[0] == f.PACKET_ERROR
    assert _code(mod.cmd(0x02, 3))[0] == f.PACKET_ERROR  # no buffer 3


def test_enrol_through_the_protocol_then_search():
    mod = Module()
    assert _code(mod.cmd(0x01))[0] == f.NO_FINGER
    assert _code(mod.cmd(0x02, 1))[0] == f.NO_IMAGE
    mod.chip.touch("alice:R1", mod.t, mod.t + 1)
    assert mod.chip.level(36, mod.t, {}) == 0
    assert _code(mod.cmd(0x01))[0] == f.OK
    assert _code(mod.cmd(0x02, 1))[0] == f.OK
    assert _code(mod.cmd(0x05))[0] == f.COMBINE_FAIL  # buffer 2 is empty
    mod.t += 1
    assert mod.chip.level(36, mod.t, {}) == 1
    mod.chip.touch("alice:R1", mod.t, mod.t + 2)
    assert _code(mod.cmd(0x01))[0] == f.OK
    assert _code(mod.cmd(0x02, 2))[0] == f.OK
    assert _code(mod.cmd(0x05))[0] == f.OK
    assert _code(mod.cmd(0x06, 1, 0, 200))[0] == f.BAD_PAGE
    assert _code(mod.cmd(0x06, 1, 0, 5))[0] == f.OK
    assert _code(mod.cmd(0x1D)) == (f.OK, b"\x00\x01")
    assert _code(mod.cmd(0x01))[0] == f.OK
    assert _code(mod.cmd(0x02, 1))[0] == f.OK
    code, data = _code(mod.cmd(0x04, 1, 0, 0, 0, 200))
    assert code == f.OK and data[:2] == b"\x00\x05" and 60 <= (data[2] << 8 | data[3]) < 260
    assert _code(mod.cmd(0x04, 1, 0, 6, 0, 10))[0] == f.NO_MATCH  # outside the range
    assert _code(mod.cmd(0x0C, 0, 5, 0, 1))[0] == f.OK
    assert _code(mod.cmd(0x04, 1, 0, 0, 0, 200))[0] == f.NO_MATCH
    assert _code(mod.cmd(0x0C, 0, 199, 0, 2))[0] == f.DELETE_FAIL


def test_another_finger_does_not_match_and_a_poor_image_is_refused():
    mod = Module()
    mod.chip.enrolled(3, "alice:R1")
    mod.chip.touch("bob:L1", mod.t, mod.t + 5)
    assert _code(mod.cmd(0x01))[0] == f.OK
    assert _code(mod.cmd(0x02, 1))[0] == f.OK
    assert _code(mod.cmd(0x04, 1, 0, 0, 0, 200))[0] == f.NO_MATCH
    mod.chip.lift(mod.t)
    mod.chip.touch("alice:R1", mod.t, mod.t + 5, quality="poor")
    assert _code(mod.cmd(0x01))[0] == f.OK
    assert _code(mod.cmd(0x02, 1))[0] == f.FEW_FEATURES
    mod.chip.lift(mod.t)
    mod.chip.touch("alice:R1", mod.t, mod.t + 5, quality="smudged")
    mod.cmd(0x01)
    assert _code(mod.cmd(0x02, 1))[0] == f.IMAGE_MESSY
    mod.chip.lift(mod.t)
    mod.chip.touch("alice:R1", mod.t, mod.t + 5, quality="unreadable")
    assert _code(mod.cmd(0x01))[0] == f.IMAGE_FAIL
    assert _code(mod.cmd(0x02, 1))[0] == f.NO_IMAGE
    with pytest.raises(ValueError):
        mod.chip.touch("alice:R1", mod.t, quality="wet")


def test_a_command_split_across_writes_and_two_commands_back_to_back():
    mod = Module()
    p = f.packet(0x01, b"\x13\x00\x00\x00\x00")
    mod.chip.uart_write(p[:5], 0.0, f.BAUD)
    assert mod.chip.uart_due(0.0, 12) is None
    mod.chip.uart_write(p[5:] + f.packet(0x01, b"\x1d"), 5 * BT, f.BAUD)
    mod.t = 1.0
    buf = bytearray(40)
    n = mod.chip.uart_read(mod.t, f.BAUD, buf, 0, 40)
    assert n == 26  # both acks, one after the other
    assert _code(buf[:12])[0] == f.OK and _code(buf[12:26]) == (f.OK, b"\x00\x00")


def test_faults_a_bad_checksum_and_a_mute_module():
    mod = Module()
    mod.chip.bad_checksum = 1
    ack = mod.cmd(0x13, 0, 0, 0, 0)
    with pytest.raises(AssertionError):
        _code(ack)
    assert _code(mod.cmd(0x13, 0, 0, 0, 0))[0] == f.OK
    mod.chip.mute = True
    assert mod.cmd(0x13, 0, 0, 0, 0) is None


def test_a_wrong_baudrate_reaches_nothing_and_the_state_round_trips():
    mod = Module()
    mod.chip.uart_write(f.packet(0x01, b"\x1d"), 0.0, 115200)
    assert mod.chip.uart_due(0.0, 12) is None
    mod.chip.enrolled(1, "alice:R1")
    mod.chip.touch("alice:R1", 1.0, 2.0)
    mod.chip.uart_write(f.packet(0x01, b"\x01"), 1.5, f.BAUD)
    st = json.loads(json.dumps(mod.chip.state()))
    chip = f.Chip.restore(st)
    assert chip.state() == mod.chip.state()
    buf = bytearray(12)
    assert chip.uart_read(3.0, f.BAUD, buf, 0, 12) == 12 and _code(buf)[0] == f.OK
