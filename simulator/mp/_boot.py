"""Boots one simulated board, for every power-on, reset and deep-sleep wake,
in the device's own worker process (imported by boot.py).

The host sends the boot message; this script
imports the port's hardware modules (as the chip has them built in), mounts
the device's LittleFS2 image as `/` in place of the host's file system, and
runs `/main.py` from it as the board's firmware does. Whatever ends the boot
(deep sleep, reset, a crash, main returning) is reported to the host, after
every socket of this boot is closed. Nothing survives to the next boot but the
flash image and what the host keeps for the chip (RTC memory).
"""
import sys

SIM = sys.argv[1]
import gc
import _sim

_sim.open_channel(3, 4)
msg = _sim.recv()
_sim.start(msg)
port = msg["port"]
sys.path[:] = [SIM + "/" + port, SIM + "/common", SIM]
import machine  # noqa: E402  the port's modules, before the board's file system replaces the host's
import time  # noqa: E402
import socket  # noqa: E402
import network  # noqa: E402
import bluetooth  # noqa: E402
import os  # noqa: E402
if port == "esp32":
    import esp32  # noqa: F401
else:
    import rp2  # noqa: F401
import vfs  # noqa: E402
import io  # noqa: E402


def _copy_tree(src, dst):
    for name, kind, *_ in os.ilistdir(src):
        s, d = src + "/" + name, dst + "/" + name
        if kind == 0x4000:
            os.mkdir(d)
            _copy_tree(s, d)
        else:
            with open(s, "rb") as fi, open(d, "wb") as fo:
                while True:
                    chunk = fi.read(1024)
                    if not chunk:
                        break
                    fo.write(chunk)


flash = _sim.flash = _sim.Flash(msg["flash"], msg["blocks"], msg["block_size"],
                                    msg.get("flash_offset", 0))
if msg.get("install"):
    # `anju deploy` on a fresh board: format the file system, copy the files
    vfs.VfsLfs2.mkfs(flash)
    fs = vfs.VfsLfs2(flash)
    vfs.mount(fs, "/flash")
    _copy_tree(msg["install"], "/flash")
    vfs.umount("/flash")
    _sim.post({"installed": flash.ops})
    flash.ops = 0
if msg.get("cut") is not None:
    flash.cut_after(msg["cut"])
try:
    fs = vfs.VfsLfs2(flash)
except OSError as exc:
    _sim.send({"block": "dead", "until": None, "extra": "no file system on the flash: %r" % exc})
    raise SystemExit(1)
vfs.umount("/")
vfs.mount(fs, "/")
os.chdir("/")
sys.path[:] = ["", ".frozen", "/lib"]
del sys.modules["_sim"]  # the firmware cannot reach the simulator's side
del sys.modules["_boot"]
sys.modules.pop("_chamber", None)
for _name in list(sys.modules):
    if _name.startswith("_chip_"):
        del sys.modules[_name]  # the chips run beside the firmware, out of its reach
for _name in ("_copy_tree", "fs", "flash", "msg", "port", "SIM", "vfs", "io"):
    del globals()[_name]
gc.collect()
_sim.heap_base = gc.mem_alloc()
_sim.heap_peak = _sim.boot.get("heap_peak", 0)  # a new high needs a collection to confirm
_sim.heap_limit = _sim.boot["heap_limit"]

try:
    with open("/main.py") as _f:
        _code = _f.read()
    exec(compile(_code, "main.py", "exec"), {"__name__": "__main__"})
    _end = ("dead", None, "main.py returned")
except _sim.DeepSleep as exc:
    _end = ("deep", exc.args[0], exc.args[1])
except _sim.Reset as exc:
    _end = ("reset", None, exc.args[0] if exc.args else None)  # the cause (WDT_RESET)
except _sim.HeapExceeded as exc:
    _end = ("dead", None, "heap budget exceeded: %d B live" % exc.args[0])
except SystemExit as exc:
    if exc.args and exc.args[0] == 75:
        raise  # power cut or the simulator gone: nothing more to say
    _end = ("dead", None, "sys.exit(%r)" % (exc.args,))
except BaseException as exc:  # the firmware crashed: the host reports it
    import io as _io
    _buf = _io.StringIO()
    sys.print_exception(exc, _buf)
    _end = ("dead", None, _buf.getvalue())
_sim.close_sockets()
try:
    _sim.sample_heap()
except _sim.HeapExceeded:
    pass  # reported below
_sim.send({"block": _end[0], "until": _end[1], "extra": _end[2], "heap": _sim.heap_peak,
           "at": _sim.now,
           "ops": _sim.flash.ops, "cut_missed": _sim.flash.cut_at is not None,
           "noise": _sim.noise_state(), "periph": _sim.chip_states()})
