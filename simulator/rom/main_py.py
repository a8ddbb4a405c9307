"""main.py of a virtual serial board, run by the simulator.

When the board in app mode boots (a hard reset, a soft reset from the
friendly REPL), MicroPython runs `main.py` from its file system. The unix
port has no `machine` or `network`, so the board hands that run to the
simulator: a `SimDevice` (simulator/device.py) boots the firmware with the
port's HAL modules from the same flash file (`attach_flash`), on a virtual
clock of its own, and reaches the broker named in the board's config.json
over real sockets. It runs in a thread until the host interrupts it (Ctrl-C)
or the board resets; when the firmware stops by itself (a traceback, main
returning) the board's REPL comes, with the traceback, as on a board.

    board = VirtualBoard("esp32c3", flash, board=boards.load("esp32c3"),
                         main_runner=main_py.runner(wifi_ssid="site-ap"))
"""
import asyncio
import os
import shutil
import tempfile
import threading
from pathlib import Path

from simulator.clock import VirtualClock
from simulator.device import DeviceCrashed, SimDevice
from simulator.world import Simulation

DEVICE = "board"
# how far the board's virtual clock runs per pass, and the wall time between
# passes: a sleeping sensor's hour passes in a few seconds
STEP_S = 10.0
PACE_S = 0.01


def runner(**options):
    """A `main_runner` for VirtualBoard with these options (SimulatedMain)."""
    return lambda vboard: SimulatedMain(vboard, **options)


class SimulatedMain:
    def __init__(self, vboard, wifi_ssid="anju-sim", battery_mv=3000, levels=None):
        self.vboard = vboard
        self.wifi_ssid = wifi_ssid
        self.battery_mv = battery_mv
        self.levels = dict(levels or {})  # board pin name -> level (a door's reed)
        self.error = None
        self.boots = 0
        self._stop = threading.Event()
        self._dir = tempfile.mkdtemp(prefix="anju-board-")
        self._thread = threading.Thread(target=self._thread_main, name="board-main", daemon=True)
        self._thread.start()

    def stop(self, timeout=20.0):
        self._stop.set()
        self._thread.join(timeout)

    def _thread_main(self):
        try:
            asyncio.run(self._run())
        except DeviceCrashed as exc:  # main.py raised or returned: the board's REPL comes
            self.error = exc
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)
        if not self._stop.is_set():
            self.vboard.app.main_ended(self, self.error)

    async def _run(self):
        board = self.vboard.board
        sim = Simulation(VirtualClock(), self._dir, Path(self._dir), wifi_ssid=self.wifi_ssid)
        dev = SimDevice(sim, DEVICE, board, {}, self._dir + "/dev", self.vboard.chip.mac, "main")
        os.makedirs(dev.fs_root, exist_ok=True)
        dev.attach_flash(self.vboard.flash_path, self.vboard.app.fs[0])
        sim.devices[DEVICE] = dev
        if "battery_adc" in board["pins"]:
            sim.set_battery(DEVICE, self.battery_mv)
        for name, level in self.levels.items():
            sim.set_input(DEVICE, name, level)
        try:
            await sim.power_on(DEVICE)
            while not self._stop.is_set() and dev.error is None:
                await sim.run_until(sim.clock.now() + STEP_S)
                self.boots = dev.boots
                await asyncio.sleep(PACE_S)
        finally:
            sim.shutdown()
