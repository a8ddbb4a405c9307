"""The lock's card reader and fingerprint module: the firmware's drivers
(firmware/anju/shell/mfrc522.py, r503.py) on real MicroPython against the
chip models (simulator/chips/), through each port's machine.SPI and
machine.UART, on every board that wires them (the ESP32-C3 has the reader
only). Also the ports' SPI and UART constructors and their read timeouts.

Each probe app reports what it saw as the reason it stopped.
"""
import asyncio
import re
import shutil
from pathlib import Path

import pytest

from host_tools import boards
from simulator.chips import mfrc522, r503
from simulator.clock import VirtualClock
from simulator.device import DeviceCrashed
from simulator.world import Simulation

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
RFID_BOARDS = ["esp32", "esp32c3", "pico_w"]
FP_BOARDS = ["esp32", "pico_w"]
UID4 = "a1b2c3d4"
UID7 = "04a1b2c3d4e5f6"


def _run(tmp_path, app_source, board, chips=(), until_s=60, between=None):
    """Run the probe with the chips (name, fn(board, t0) -> chip); its answer.
    `between` (t, fn(dev)) acts on the device at virtual time t0 + t."""
    root = tmp_path / "fw"
    shutil.copytree(FIRMWARE / "anju", root / "anju")
    (root / "probe").mkdir()
    (root / "probe" / "main.py").write_text(app_source)
    sim = Simulation(VirtualClock(), root, tmp_path / "work")
    b = boards.load(board)
    sim.add_device("p1", "probe", b, {"device_id": "p1"}, b"\x24\x0a\xc4\x00\x00\x01")
    dev = sim.devices["p1"]
    t0 = sim.clock.now()
    for name, make in chips:
        dev.add_chip(name, make(b, t0))

    async def go():
        await sim.power_on("p1")
        if between is not None:
            await sim.run_until(t0 + between[0])
            between[1](dev, sim.clock.now())
        await sim.run_until(t0 + until_s)
    try:
        with pytest.raises(DeviceCrashed) as err:
            asyncio.run(go())
    finally:
        sim.shutdown()
    text = str(err.value)
    m = re.search(r"sys\.exit\(\((['\"])(.*)\1,\)\)", text)
    assert m, text
    return m.group(2), dev


PRELUDE = """
import time
from anju.shell import hw
board = hw.load_board()
T0 = time.ticks_ms()
out = []


def at(s):
    # wait until s seconds after the start
    left = time.ticks_diff(time.ticks_add(T0, int(s * 1000)), time.ticks_ms())
    if left > 0:
        time.sleep_ms(left)


def timed_us(fn, *args):
    t = time.ticks_us()
    r = fn(*args)
    return r, time.ticks_diff(time.ticks_us(), t)
"""

# ---- the card reader ---------------------------------------------------------

READER = PRELUDE + """
from anju.shell import mfrc522, r503
from anju.shell.mfrc522 import MFRC522
out.append("wired=%r,%r" % (mfrc522.wired(board), r503.wired(board)))
r = MFRC522(board)
out.append("v=%r" % r.init())
u, us = timed_us(r.read_uid)
out.append("empty=%r" % u)
out.append("empty_us=%d" % us)
at(1.0)
u, us = timed_us(r.read_uid)
out.append("uid4=%s" % (u.hex() if u else u))
out.append("uid4_us=%d" % us)
out.append("halted=%r" % r.read_uid())
u = r.read_uid(True)
out.append("woken=%s" % (u.hex() if u else u))
at(3.0)
u, us = timed_us(r.read_uid)
out.append("uid7=%s" % (u.hex() if u else u))
out.append("uid7_us=%d" % us)
raise SystemExit(" ".join(out))
"""


def _reader(**kw):
    def make(b, t0):
        chip = mfrc522.Chip.for_board(b)
        chip.present(UID4, t0 + 0.5, t0 + 2.0)
        chip.present(UID7, t0 + 2.5, t0 + 4.0)
        return chip
    return make


def _facts(answer):
    return dict(f.split("=", 1) for f in answer.split())


@pytest.mark.parametrize("board", RFID_BOARDS)
def test_the_reader_reads_4_and_7_byte_uids_and_answers_none_fast(tmp_path, board):
    answer, dev = _run(tmp_path, READER, board, [("rfid", _reader())])
    f = _facts(answer)
    # the C3 has no pins left for the fingerprint module
    assert f["wired"] == ("True,False" if board == "esp32c3" else "True,True")
    assert f["v"] == "146", answer  # VersionReg 0x92
    assert f["empty"] == "None"
    # one REQA and the chip's 1 ms timer: 1.3 ms of virtual time
    assert 1000 < int(f["empty_us"]) < 2000, answer
    assert f["uid4"] == UID4, answer
    assert f["halted"] == "None"  # HLTA: it keeps quiet until woken or taken away
    assert f["woken"] == UID4
    assert f["uid7"] == UID7
    # REQA, two cascade levels (anticollision and SELECT each), HLTA
    assert int(f["uid4_us"]) < 6000 and int(f["uid7_us"]) < 9000, answer
    assert dev.chip("rfid").card_state == mfrc522.C_HALT


FAULTY = PRELUDE + """
from anju.shell.mfrc522 import MFRC522
r = MFRC522(board)
r.init()
for s in (1.0, 2.0, 3.0, 4.0):
    at(s)
    u = r.read_uid()
    out.append(u.hex() if u else "None")
raise SystemExit(" ".join(out))
"""


@pytest.mark.parametrize("board", ["esp32", "pico_w"])
def test_a_card_that_leaves_half_way_or_sends_a_bad_bcc_is_refused(tmp_path, board):
    def make(b, t0):
        chip = mfrc522.Chip.for_board(b)
        chip.present(UID7, t0 + 0.5, t0 + 1.5, frames=1)    # gone after its ATQA
        chip.present(UID7, t0 + 1.6, t0 + 2.5, frames=3)    # gone after cascade level 1
        chip.present(UID4, t0 + 2.6, t0 + 3.5, bad_bcc=True)
        chip.present(UID4, t0 + 3.6, t0 + 4.5)              # the same card, sound
        return chip
    answer, _ = _run(tmp_path, FAULTY, board, [("rfid", make)])
    assert answer == "None None None " + UID4


def test_a_card_taken_away_by_the_world_is_no_longer_read(tmp_path):
    # no init(): the first read_uid initialises the reader
    app = PRELUDE + """
from anju.shell.mfrc522 import MFRC522
r = MFRC522(board)
at(1.0)
a = r.read_uid()
at(3.0)
b = r.read_uid(True)
raise SystemExit("%s %s" % (a.hex() if a else None, b.hex() if b else None))
"""

    def make(b, t0):
        chip = mfrc522.Chip.for_board(b)
        chip.present(UID4, t0 + 0.5)  # until removed
        return chip
    answer, dev = _run(tmp_path, app, "esp32", [("rfid", make)],
                       between=(2.0, lambda d, now: d.change_chip(
                           "rfid", lambda c, t, levels: c.remove(t))))
    assert answer == UID4 + " None"


ANTENNA = PRELUDE + """
from anju.shell.mfrc522 import MFRC522, crc_a
r = MFRC522(board)
r.init()
at(1.0)
r.antenna_off()
off = r.read_uid()
r.antenna_on()
on = r.read_uid()
data = bytearray(b"\\x93\\x70\\x88\\x04\\xa1\\xb2\\x9f")
chip = r.calc_crc(data, len(data))
soft = crc_a(data, len(data))
r.spi.init(baudrate=20000000)  # beyond the MFRC522's 10 MHz: it reads nothing
fast = r._read(0x37)
r.spi.init(baudrate=1000000)
raise SystemExit("%s %s %04x %04x %d %d" % (off, on.hex() if on else None, chip, soft, fast,
                                            r._read(0x37)))
"""


def test_the_antenna_powers_the_card_calc_crc_agrees_and_too_fast_a_clock_reads_nothing(
        tmp_path):
    answer, _ = _run(tmp_path, ANTENNA, "pico_w",
                     [("rfid", lambda b, t0: _present(b, t0, UID4))])
    off, on, chip, soft, fast, slow = answer.split()
    assert off == "None" and on == UID4
    assert chip == soft
    assert (fast, slow) == ("255", "146")


def _present(b, t0, uid):
    chip = mfrc522.Chip.for_board(b)
    chip.present(uid, t0 + 0.5)
    return chip


def test_a_reader_that_is_not_there_fails_its_init_quickly(tmp_path):
    app = PRELUDE + """
from anju.shell.mfrc522 import MFRC522
r = MFRC522(board)
v, us = timed_us(r.init)
u, again = timed_us(r.read_uid)
raise SystemExit("%r %d %r %d" % (v, us, u, again))
"""
    answer, _ = _run(tmp_path, app, "esp32c3")  # no chip on the bus: MISO floats
    v, us, u, again = answer.split()
    assert v == "None" and u == "None"
    assert int(us) <= 52000  # the bounded wait for the oscillator
    assert int(again) < 1000  # tried again only after RETRY_MS


# ---- the fingerprint module ------------------------------------------------------

FINGER = PRELUDE + """
from anju.shell import r503
f = r503.R503(board)


def fmt(r):
    return "%d,%d" % r if isinstance(r, tuple) else "%r" % r



out.append("wired=%r" % r503.wired(board))
out.append("pwd=%r" % f.verify_password())
out.append("count=%r" % f.template_count())
out.append("present=%r" % f.finger_present())
r, us = timed_us(f.search)
out.append("empty=%s" % fmt(r))
out.append("empty_us=%d" % us)
at(1.0)
out.append("enrol=%r" % f.enrol(7, 5000))
out.append("count=%r" % f.template_count())
at(6.0)
out.append("present=%r" % f.finger_present())
r, us = timed_us(f.search)
out.append("alice=%s" % fmt(r))
out.append("alice_us=%d" % us)
at(8.0)
out.append("bob=%s" % fmt(f.search()))
at(10.0)
out.append("carol=%s" % fmt(f.search()))
out.append("identify=%r" % f.identify())
at(12.0)
out.append("poor=%s" % fmt(f.search()))
out.append("identify=%r" % f.identify())
out.append("delete=%r" % f.delete(7))
at(14.0)
out.append("after=%s" % fmt(f.search()))
raise SystemExit(" ".join(out))
"""


def _module(b, t0):
    chip = r503.Chip.for_board(b)
    chip.enrolled(42, "carol:L2")  # enrolled at installation (a test's shortcut)
    chip.touch("alice:R1", t0 + 1.5, t0 + 2.5)   # enrolment: first press
    chip.touch("alice:R1", t0 + 3.0, t0 + 4.0)   # lifted, second press
    chip.touch("alice:R1", t0 + 5.8, t0 + 7.0)
    chip.touch("bob:R1", t0 + 7.9, t0 + 9.0)
    chip.touch("carol:L2", t0 + 9.9, t0 + 11.0)
    chip.touch("alice:R1", t0 + 11.9, t0 + 12.5, quality="poor")
    chip.touch("alice:R1", t0 + 13.9, t0 + 14.5)
    return chip


@pytest.mark.parametrize("board", FP_BOARDS)
def test_enrol_then_search_finds_the_page_and_nothing_else(tmp_path, board):
    answer, dev = _run(tmp_path, FINGER, board, [("fp", _module)])
    f = answer.split()
    facts = {}
    for x in f:
        k, v = x.split("=", 1)
        facts.setdefault(k, []).append(v)
    assert facts["pwd"] == ["True"]
    assert facts["count"] == ["1", "2"]
    assert facts["present"] == ["False", "True"]
    assert facts["empty"] == ["2"]          # NO_FINGER
    # GenImg without a finger: 0.05 s and the ack
    assert 50000 < int(facts["empty_us"][0]) < 80000, answer
    assert facts["enrol"] == ["0"]
    page, score = facts["alice"][0].split(",")
    assert int(page) == 7 and 60 <= int(score) < 260
    # GenImg 0.18 s + Img2Tz 0.12 s + Search 0.05 s + 200 pages x 1.25 ms, and the acks
    assert 600000 < int(facts["alice_us"][0]) < 700000, answer
    assert facts["bob"] == ["None"]         # no match
    assert facts["carol"][0].startswith("42,")
    assert facts["poor"] == ["7"]           # too few features
    assert facts["identify"] == ["42", "False"]  # the loop's view: a page, or nothing to decide
    assert facts["delete"] == ["0"]
    assert facts["after"] == ["None"]
    assert facts["wired"] == ["True"]
    assert dev.chip("fp").library == {"42": "carol:L2"}


FP_FAULTS = PRELUDE + """
from anju.shell import r503
f = r503.R503(board)
for _ in range(2):
    try:
        out.append("ok=%r" % f.verify_password())
    except OSError as e:
        out.append("err=%d" % e.errno)
t = time.ticks_ms()
at(1.0)
t = time.ticks_ms()
try:
    f.gen_img()
    out.append("answered")
except OSError as e:
    out.append("mute=%d,%d" % (e.errno, time.ticks_diff(time.ticks_ms(), t)))
raise SystemExit(" ".join(out))
"""


@pytest.mark.parametrize("board", FP_BOARDS)
def test_a_bad_checksum_is_refused_and_a_silent_module_times_out(tmp_path, board):
    def make(b, t0):
        chip = r503.Chip.for_board(b)
        chip.bad_checksum = 1
        return chip

    def silence(dev, now):
        dev.change_chip("fp", lambda c, t, levels: setattr(c, "mute", True))
    answer, _ = _run(tmp_path, FP_FAULTS, board, [("fp", make)], between=(0.5, silence))
    err, ok, mute = answer.split()
    assert err == "err=5"      # EIO: the corrupted ack
    assert ok == "ok=True"     # the next one is sound
    code, ms = mute.split("=")[1].split(",")
    assert code == "110"       # ETIMEDOUT
    assert 1000 <= int(ms) <= 1040  # GenImg's bound (1 s) and at most one read's wait


WAKE = PRELUDE + """
import machine
from anju.shell import r503
f = r503.R503(board)
woke = []
f.touch.irq(handler=lambda p: woke.append(1), trigger=machine.Pin.IRQ_FALLING)
from anju.shell import hw
hw.arm_light_wake(board, (board["pins"]["fp_touch"],), ())  # esp32: a level ends light sleep
t = time.ticks_ms()
machine.lightsleep(10000)
out.append("woke=%d" % len(woke))
out.append("slept=%d" % time.ticks_diff(time.ticks_ms(), t))
out.append("present=%r" % f.finger_present())
r = f.search()
out.append("found=%d,%d" % r)
raise SystemExit(" ".join(out))
"""


@pytest.mark.parametrize("board", FP_BOARDS)
def test_a_finger_on_the_sensor_wakes_a_sleeping_board_through_the_touch_pin(tmp_path, board):
    def make(b, t0):
        chip = r503.Chip.for_board(b)
        chip.enrolled(9, "alice:R1")
        return chip

    def touch(dev, now):
        dev.change_chip("fp", lambda c, t, levels: c.touch("alice:R1", t, t + 1))
    answer, _ = _run(tmp_path, WAKE, board, [("fp", make)], between=(2.0, touch))
    f = _facts(answer)
    assert f["woke"] == "1" and f["present"] == "True"
    assert 1900 <= int(f["slept"]) <= 2010, answer
    assert f["found"].startswith("9,")


# ---- the ports' SPI and UART ------------------------------------------------------

PORT_BUSES = """
import machine
facts = []


def tryit(name, fn):
    try:
        fn()
        facts.append(name)
    except Exception as e:
        facts.append("%s:%s:%s" % (name, type(e).__name__, e.args[-1] if e.args else ""))


for i in (0, 1, 2):
    tryit("spi%d" % i, lambda: machine.SPI(i))
for i in (0, 1, 2, 3):
    tryit("uart%d" % i, lambda: machine.UART(i))
tryit("soft", lambda: machine.SoftSPI())
facts.append("msb=%d" % machine.SPI.MSB)
if hasattr(machine.Pin, "ALT_SPI"):
    tryit("sck10", lambda: machine.SPI(0, sck=machine.Pin(10)))
    tryit("miso16", lambda: machine.SPI(0, miso=machine.Pin(16)))
    tryit("tx0", lambda: machine.UART(1, tx=machine.Pin(0)))
    tryit("rx5", lambda: machine.UART(0, rx=machine.Pin(5)))
    tryit("lsb", lambda: machine.SPI(0, firstbit=machine.SPI.LSB))
else:
    tryit("mosi34", lambda: machine.SPI(1, mosi=34))
    tryit("tx34", lambda: machine.UART(1, tx=34))
    tryit("pin6", lambda: machine.UART(1, tx=6))
raise SystemExit(" ".join(facts))
"""

BUS_FACTS = {
    "esp32": "spi0:ValueError:SPI(0) doesn't exist spi1 spi2 uart0 uart1 uart2 "
             "uart3:ValueError:UART(3) does not exist "
             "soft:ValueError:must specify all of sck/mosi/miso msb=0 "
             "mosi34:OSError:invalid configuration tx34:OSError:ESP_ERR_INVALID_ARG "
             "pin6:ValueError:invalid pin",
    "esp32c3": "spi0:ValueError:SPI(0) doesn't exist spi1 spi2:ValueError:SPI(2) doesn't exist "
               "uart0 uart1 uart2:ValueError:UART(2) does not exist "
               "uart3:ValueError:UART(3) does not exist "
               "soft:ValueError:must specify all of sck/mosi/miso msb=0 "
               "mosi34:ValueError:invalid pin tx34:ValueError:invalid pin pin6",
    "pico_w": "spi0 spi1 spi2:ValueError:SPI(2) doesn't exist uart0 uart1 "
              "uart2:ValueError:UART(2) doesn't exist uart3:ValueError:UART(3) doesn't exist "
              "soft:ValueError:must specify all of sck/mosi/miso msb=1 "
              "sck10:ValueError:bad SCK pin miso16 tx0:ValueError:bad TX pin "
              "rx5:ValueError:bad RX pin lsb:NotImplementedError:LSB",
}


@pytest.mark.parametrize("board", sorted(BUS_FACTS))
def test_each_port_offers_its_own_spi_and_uart(tmp_path, board):
    """ESP32: SPI(1)/SPI(2) on any pins (not the input-only 34-39 for outputs),
    UART 0-2; the C3: SPI(1), UART 0-1; rp2: SPI0/1 and UART0/1 only on their
    function pins, no LSB-first SPI, and SPI.MSB is 1 there."""
    answer, _ = _run(tmp_path, PORT_BUSES, board)
    assert answer == BUS_FACTS[board]


UART_TIMING = PRELUDE + """
import machine
from anju.shell import r503
tx, rx = board["pins"]["fp_tx"], board["pins"]["fp_rx"]
u = machine.UART(r503.uart_id(board, tx), 57600, tx=machine.Pin(tx), rx=machine.Pin(rx),
                 timeout=5, timeout_char=0)
t = time.ticks_us()
nothing = u.read(12)
out.append("nothing=%r,%d" % (nothing, time.ticks_diff(time.ticks_us(), t) // 1000))
u.init(timeout=100)
u.write(b"\\xef\\x01\\xff\\xff\\xff\\xff\\x01\\x00\\x07\\x13\\x00\\x00\\x00\\x00\\x00\\x1b")
first = u.read(12)
out.append("first=%d" % len(first))
time.sleep_ms(5)
out.append("any=%d" % u.any())
rest = u.read() or b""
out.append("total=%d" % (len(first) + len(rest)))
spi = machine.SoftSPI(1000000, sck=machine.Pin(board["pins"]["spi_sck"]),
                      mosi=machine.Pin(board["pins"]["spi_mosi"]),
                      miso=machine.Pin(board["pins"]["spi_miso"]))
out.append("floating=%s" % spi.read(2).hex())
raise SystemExit(" ".join(out))
"""


@pytest.mark.parametrize("board,facts", [
    # FreeRTOS ticks are 10 ms: 5 ms does not wait, and timeout_char 0 gives the first byte only
    ("esp32", "nothing=None,0 first=1 any=11 total=12 floating=ffff"),
    # rp2 waits the 5 ms (and the tick it is in), then one character time between bytes
    ("pico_w", "nothing=None,5 first=12 any=0 total=12 floating=ffff"),
])
def test_uart_reads_wait_as_each_port_does(tmp_path, board, facts):
    answer, _ = _run(tmp_path, UART_TIMING, board, [("fp", lambda b, t0: r503.Chip.for_board(b))])
    if board == "pico_w":  # "elapsed > timeout" in whole ms: 5 to 6 ms
        answer = answer.replace("nothing=None,6", "nothing=None,5")
    assert answer == facts
