"""Flashing benchmark: `anju flash` (a subprocess, the real esptool) writing an
image the size of a MicroPython ESP32 build onto the virtual ESP32
(simulator/rom/), each way it can be reached:

  flash_rfc2217_stub_s   over the RFC 2217 port (DTR/RTS reset), esptool's stub
  flash_rfc2217_rom_s    the same with --no-stub (the ROM loader writes)
  flash_pty_stub_s       over the bare pty (the board starts in download mode)
  flash_pty_rom_s        the same with --no-stub
  flash_image_bytes      the image: 1.6 MB, about 60 % of it incompressible

Each is the whole command, wall time, at --baud 921600, the flash file checked
afterwards. The virtual board has no baud rate: these are the tools' and the
protocol's costs, not a real board's write time (docs/flashing.md).

    python -m bench flash
"""
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def run(results):
    from simulator.rom.board import VirtualBoard
    from tests import flashkit
    image = flashkit.esp_image(flashkit.ESP32, payload=os.urandom(1_000_000) + bytes(600_000))
    with tempfile.TemporaryDirectory(prefix="anju-flash-bench-") as tmp:
        fw = Path(tmp) / "fw.bin"
        fw.write_bytes(image)
        for route in ("rfc2217", "pty"):
            for stub in (True, False):
                flash_file = Path(tmp) / ("%s-%s.flash" % (route, stub))
                with VirtualBoard("esp32", flash_file,
                                  mode="app" if route == "rfc2217" else "download") as board:
                    port = board.serve_rfc2217() if route == "rfc2217" else board.port
                    t0 = time.monotonic()
                    proc = subprocess.run(
                        [sys.executable, "-m", "host_tools.cli", "flash", "--board", "esp32",
                         "--port", port, "--firmware", str(fw), "--baud", "921600",
                         *(() if stub else ("--no-stub",))],
                        cwd=REPO, capture_output=True, text=True, timeout=300)
                    seconds = time.monotonic() - t0
                    if proc.returncode != 0:
                        raise RuntimeError("anju flash failed: %s" % proc.stderr.strip())
                    if flash_file.read_bytes()[0x1000:0x1000 + len(image)] != image:
                        raise RuntimeError("the virtual board's flash does not hold the image")
                key = "flash_%s_%s_s" % (route, "stub" if stub else "rom")
                results[key] = round(seconds, 2)
                print("%-22s %6.2f s" % (key, seconds))
    results["flash_image_bytes"] = len(image)
