"""A Pico W running MicroPython, as its USB serial port (/dev/ttyACM0) shows it.

The Pico W has no ROM loader on a serial line (it is flashed by copying a
UF2 onto its BOOTSEL drive) and no reset lines on its USB CDC port, so this
board is only the app: the MicroPython REPL on the board's file system (the
last `flash.fs_bytes` of its 2 MB flash, LittleFS2), through the same relay
the ESP boards' app mode uses (simulator/rom/app.py), with main.py run by
`main_runner`. It starts running the app, as a Pico W does when plugged in.
"""
import os
import select
import threading
import tty
from pathlib import Path

from simulator.rom.app import App
from simulator.rom.board import BoardError


class _Chip:
    name = "rp2040"

    def __init__(self, mac):
        self.mac = mac  # the CYW43's MAC


class UsbReplBoard:
    def __init__(self, flash_path, board, main_runner=None, pull_cable_after_bytes=None,
                 mac=b"\x28\xcd\xc1\x00\x00\x03"):
        fl = board.get("flash", {})
        size, fs_bytes, bs = fl.get("size_bytes", 0), fl.get("fs_bytes", 0), fl.get("block_size", 4096)
        if not 0 < fs_bytes <= size or fs_bytes % bs:
            raise BoardError("board %s: flash.fs_bytes %r does not fit flash.size_bytes %r"
                             % (board.get("name"), fs_bytes, size))
        self.board = board
        self.chip = _Chip(bytes(mac))
        self.flash_path = Path(flash_path)
        if not self.flash_path.exists():
            self.flash_path.write_bytes(b"\xff" * size)
        self.events = []
        self._closed = False
        self._lock = threading.RLock()
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._wake_r, self._wake_w = os.pipe()
        self.app = App(self, size - fs_bytes, fs_bytes // bs, bs, main_runner,
                       pull_cable_after_bytes)
        self._thread = threading.Thread(target=self._run, name="virtual-pico", daemon=True)
        self._thread.start()
        self.events.append("boot:app")
        self.app.boot()

    @property
    def closed(self):
        return self._closed

    def _run(self):
        while not self._closed:
            ready, _, _ = select.select([self._master, self._wake_r], [], [], 0.5)
            if self._wake_r in ready or self._closed:
                break
            try:
                data = os.read(self._master, 65536)
            except OSError:
                break
            if not data:
                break
            with self._lock:
                self.app.feed(data)

    def _send(self, data):
        try:
            os.write(self._master, data)
        except OSError:
            pass  # the cable is gone

    def pull_cable(self):
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self.events.append("cable pulled")
        self.app.stop()
        os.write(self._wake_w, b"x")
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def close(self):
        self.pull_cable()
        self._thread.join(timeout=5)
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
