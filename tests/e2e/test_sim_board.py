"""The simulated boards themselves: each port's API as MicroPython 1.27 has
it, deep sleep as a reset, the heap budget, the flash as LittleFS.

Small probe apps run on the MicroPython unix port through the simulator's
worker (simulator/device.py) on each board of boards/, with no hub: each
reports what it saw through RTC memory or as the reason it stopped.
"""
import asyncio
import shutil
from pathlib import Path

import pytest

from host_tools import boards
from simulator.clock import VirtualClock
from simulator.device import SIM_HEAP_ALLOWANCE, DeviceCrashed, HeapBudgetExceeded
from simulator.world import Simulation

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"


def _sim(tmp_path, app_source, board="esp32"):
    root = tmp_path / "fw"
    shutil.copytree(FIRMWARE / "anju", root / "anju")
    (root / "probe").mkdir()
    (root / "probe" / "main.py").write_text(app_source)
    sim = Simulation(VirtualClock(), root, tmp_path / "work")
    b = boards.load(board)
    sim.add_device("p1", "probe", b, {"device_id": "p1"}, b"\x24\x0a\xc4\x00\x00\x01")
    return sim, sim.devices["p1"]


def _run(sim, until_s):
    """Run the probe; its RTC memory as it was before the power goes."""
    async def go():
        await sim.power_on("p1")
        await sim.run_until(sim.clock.now() + until_s)
    try:
        asyncio.run(go())
        return sim.devices["p1"].rtc_memory
    finally:
        sim.shutdown()


GLOBALS_ACROSS_DEEP_SLEEP = """
import sys
import machine
import builtins
rtc = machine.RTC()
seen = rtc.memory()
if not seen:
    builtins.LEFT_BEHIND = 1      # a builtin, a module attribute and a module
    machine.LEFT_BEHIND = 2
    sys.modules["left_behind"] = machine
    with open("/kept", "w") as f:
        f.write("flash")
    rtc.memory(b"boot1")
    machine.deepsleep(1000)
else:
    gone = (not hasattr(builtins, "LEFT_BEHIND") and not hasattr(machine, "LEFT_BEHIND")
            and "left_behind" not in sys.modules)
    with open("/kept") as f:
        kept = f.read() == "flash"
    cause = machine.reset_cause() == machine.DEEPSLEEP_RESET
    rtc.memory(b"%s|gone=%d|flash=%d|cause=%d" % (seen, gone, kept, cause))
    machine.deepsleep(3600000)
"""


@pytest.mark.parametrize("board", ["esp32", "esp32c3"])
def test_deep_sleep_resets_the_interpreter_and_keeps_rtc_memory_and_flash(tmp_path, board):
    sim, dev = _sim(tmp_path, GLOBALS_ACROSS_DEEP_SLEEP, board)
    rtc = _run(sim, 10)
    assert dev.boots == 2
    assert rtc == b"boot1|gone=1|flash=1|cause=1"


PORT_API = """
import machine
import network
facts = []
facts.append("HARD_RESET" if hasattr(machine, "HARD_RESET") else "-HARD_RESET")
facts.append("IRQ_HIGH_LEVEL" if hasattr(machine.Pin, "IRQ_HIGH_LEVEL") else "-IRQ_HIGH_LEVEL")
facts.append("WAKE_LOW" if hasattr(machine.Pin, "WAKE_LOW") else "-WAKE_LOW")
try:
    import esp32
    facts.append("esp32")
    facts.append("ext0" if hasattr(esp32, "wake_on_ext0") else "-ext0")
    facts.append("gpio" if hasattr(esp32, "wake_on_gpio") else "-gpio")
except ImportError:
    facts.append("-esp32")
facts.append("rtcmem" if hasattr(machine.RTC(), "memory") else "-rtcmem")
facts.append("nap=%d" % network.STAT_NO_AP_FOUND)
facts.append("rising=%d" % machine.Pin.IRQ_RISING)
try:
    machine.Timer(0)
    facts.append("timer0")
except ValueError:
    facts.append("-timer0")
try:
    machine.lightsleep(2 ** 32 // 1000)
    facts.append("longnap")
except ValueError:
    facts.append("-longnap")
raise SystemExit(" ".join(facts))  # the answer, as the reason the app stopped
"""

PORT_FACTS = {
    "esp32": "HARD_RESET -IRQ_HIGH_LEVEL WAKE_LOW esp32 ext0 gpio rtcmem nap=201 rising=1 "
             "timer0 longnap",
    "esp32c3": "HARD_RESET -IRQ_HIGH_LEVEL WAKE_LOW esp32 -ext0 gpio rtcmem nap=201 rising=1 "
               "timer0 longnap",
    "pico_w": "-HARD_RESET -IRQ_HIGH_LEVEL -WAKE_LOW -esp32 -rtcmem nap=-2 rising=8 "
              "-timer0 -longnap",
}


@pytest.mark.parametrize("board", sorted(PORT_FACTS))
def test_each_board_offers_its_ports_api_and_nothing_else(tmp_path, board):
    """The defects a generic shim hid: rp2 has no HARD_RESET, no port has
    Pin.IRQ_HIGH_LEVEL, the C3 has no ext0, rp2's timers are virtual only and
    its lightsleep refuses 2**32 // 1000 ms."""
    sim, dev = _sim(tmp_path, PORT_API, board)
    with pytest.raises(DeviceCrashed) as err:
        _run(sim, 2 * 3600)  # esp32 takes the 71.6-minute light sleep
    facts = str(err.value).split("sys.exit(('", 1)[1].split("',)", 1)[0]
    assert facts == PORT_FACTS[board]


LIGHT_SLEEP_WAKE = """
import machine
import time
btn = machine.Pin(%(pin)d, machine.Pin.IN, machine.Pin.PULL_UP)
seen = []
btn.irq(handler=lambda p: seen.append(1), trigger=machine.Pin.IRQ_FALLING)
t0 = time.ticks_ms()
machine.lightsleep(10000)               # an edge interrupt alone
a = time.ticks_diff(time.ticks_ms(), t0)
%(arm)s
t1 = time.ticks_ms()
machine.lightsleep(10000)               # with the level armed as a wake
b = time.ticks_diff(time.ticks_ms(), t1)
raise SystemExit("%%d %%d %%d" %% (a // 1000, b // 1000, len(seen)))
"""


@pytest.mark.parametrize("board,arm,first,second", [
    # esp32 (modmachine.c machine_sleep_helper): only the timer and wake levels
    # end light sleep; the handler of the edge still runs after the wake
    ("esp32", "import esp32; esp32.wake_on_gpio(pins=[btn], level=False)", 10, 4),
    ("esp32c3", "import esp32; esp32.wake_on_gpio(pins=[btn], level=False)", 10, 4),
    # rp2: the interrupt ends it
    ("pico_w", "pass", 2, 2),
])
def test_what_ends_light_sleep_is_the_ports(tmp_path, board, arm, first, second):
    pin = boards.load(board)["pins"]["test_button"]
    sim, dev = _sim(tmp_path, LIGHT_SLEEP_WAKE % {"pin": pin, "arm": arm}, board)

    async def go():
        await sim.power_on("p1")
        t0 = sim.clock.now()
        for at in (2.0, 4.0 + (first if first == 10 else 0)):
            await sim.run_until(t0 + at)
            dev.set_level(pin, 0)  # the button is pressed...
            dev.set_level(pin, 1)  # ...and released
        await sim.run_until(t0 + 40)
    try:
        with pytest.raises(DeviceCrashed) as err:
            asyncio.run(go())
    finally:
        sim.shutdown()
    got = str(err.value).split("sys.exit(('", 1)[1].split("',)", 1)[0].split()
    assert [int(x) for x in got[:2]] == [first, second]
    assert int(got[2]) >= 1  # the edge's handler ran


HEAP_HOG = """
import time
hog = []
while True:
    hog.append(bytearray(%d))
    time.sleep_ms(10)
"""


def test_an_app_that_needs_more_heap_than_the_board_has_fails(tmp_path):
    sim, dev = _sim(tmp_path, HEAP_HOG % 4096, "esp32")
    with pytest.raises(DeviceCrashed) as err:
        _run(sim, 600)
    assert isinstance(err.value, HeapBudgetExceeded), err.value
    assert dev.peak_heap > 2 * 111_936, dev.peak_heap


def test_an_app_within_its_budget_reports_its_peak(tmp_path):
    sim, dev = _sim(tmp_path, "import time\nbuf = bytearray(20000)\nwhile True:\n"
                    "    time.sleep(60)\n", "esp32")
    _run(sim, 300)
    assert 20_000 <= dev.peak_heap < 40_000, dev.peak_heap
    # the simulator's own modules fit in the allowance the heap has for them
    assert 0 < dev.heap_base < SIM_HEAP_ALLOWANCE, dev.heap_base


BLE_GATT_API = """
import errno
import bluetooth
facts = []
u = bluetooth.UUID("5e1f0002-9a6d-4c3b-8e2f-61b0d3a4c5e7")
facts.append("eq" if u == bluetooth.UUID("5E1F00029A6D4C3B8E2F61B0D3A4C5E7") else "-eq")
facts.append("16!=128" if bluetooth.UUID(0x2A37) != bluetooth.UUID(b"\\x37\\x2a\\x00\\x00") else "-")
try:
    bluetooth.UUID(0x10000)
except ValueError:
    facts.append("big")
ble = bluetooth.BLE()
ble.active(True)
facts.append("mtu=%d" % ble.config("mtu"))
svc = (bluetooth.UUID(0x180D), ((bluetooth.UUID(0x2A37), bluetooth.FLAG_READ | bluetooth.FLAG_NOTIFY),
                                (u, bluetooth.FLAG_WRITE, ((bluetooth.UUID(0x2901), bluetooth.FLAG_READ),))))
handles = ble.gatts_register_services((svc,))
facts.append("shape=%d,%d" % (len(handles), len(handles[0])))
facts.append("empty" if ble.gatts_read(handles[0][0]) == b"" else "-empty")
ble.gatts_write(handles[0][0], b"abc")
facts.append(ble.gatts_read(handles[0][0]).decode())
try:
    ble.gatts_notify(7, handles[0][0])
except OSError as e:
    facts.append("notconn" if e.args[0] == errno.ENOTCONN else "other")
facts.append("disc=%s" % ble.gap_disconnect(7))
ble.gap_advertise(100000, b"\\x02\\x01\\x06")
try:
    ble.gatts_register_services((svc,))
except OSError:
    facts.append("busy")
try:
    ble.gap_connect(0, b"\\x00" * 6)
except NotImplementedError:
    facts.append("nocentral")
raise SystemExit(" ".join(facts))
"""


@pytest.mark.parametrize("board", ["esp32", "pico_w"])
def test_the_gatt_server_api_is_the_ports(tmp_path, board):
    """modbluetooth.c's GATT server as the firmware sees it: UUIDs equal by type
    and bytes, value handles per service (characteristics and descriptors
    flattened), empty values until written, ENOTCONN for a conn that is not
    there, registration refused while advertising, no central role."""
    sim, dev = _sim(tmp_path, BLE_GATT_API, board)
    with pytest.raises(DeviceCrashed) as err:
        _run(sim, 10)
    facts = str(err.value).split("sys.exit(('", 1)[1].split("',)", 1)[0]
    assert facts == ("eq 16!=128 big mtu=23 shape=1,3 empty abc notconn disc=False busy "
                     "nocentral")


WATCHDOG = """
import machine
import time
try:
    with open("/log") as f:
        log = f.read()
except OSError:
    log = ""
if not log:
    try:
        machine.WDT(timeout=9000)
        log = "long=ok "
    except ValueError as exc:
        log = "long=%s " % exc
    wdt = machine.WDT(timeout=2000)
    for _ in range(5):  # fed every second: 5 s of sleeping on a 2 s watchdog
        time.sleep_ms(1000)
        wdt.feed()
    log += "fed=ok "
    with open("/log", "w") as f:
        f.write(log + "@%d " % time.ticks_ms())
    machine.lightsleep(5000)
    log += "light=ok "
    with open("/log", "w") as f:
        f.write(log + "@%d " % time.ticks_ms())
    time.sleep(3)
    log += "unfed=ok "
    with open("/log", "w") as f:
        f.write(log)
    raise SystemExit
t = int(log.split("@")[1].split()[0])
raise RuntimeError("REPORT %scause=%d elapsed=%d" % (
    log.split("@")[0], machine.reset_cause(), time.ticks_diff(time.ticks_ms(), t)))
"""


@pytest.mark.parametrize(("board", "light"), [("esp32", "light=ok "), ("esp32c3", "light=ok "),
                                              ("pico_w", "")])
def test_the_watchdog_resets_a_board_it_is_not_fed_on(tmp_path, board, light):
    """Fed, it lets the app run; not fed for its timeout (of running or
    sleeping), it resets the board with WDT_RESET. Light sleep pauses it on
    the esp32 port and not on rp2, whose longest timeout is 8388 ms."""
    sim, dev = _sim(tmp_path, WATCHDOG, board)
    with pytest.raises(DeviceCrashed) as err:
        _run(sim, 60)
    assert "REPORT " in str(err.value), err.value
    report = str(err.value).split("REPORT ")[1].splitlines()[0]
    long = "long=timeout exceeds 8388 " if board == "pico_w" else "long=ok "
    assert report == "%sfed=ok %scause=3 elapsed=2000" % (long, light), report
    assert dev.resets == {"WDT_RESET": 1} and dev.boots == 2, (dev.resets, dev.boots)
