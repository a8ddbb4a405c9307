"""The virtual serial board in app mode: the real MicroPython REPL on the
board's flash, driven by the real mpremote (simulator/rom/app.py)."""
import hashlib
import threading

import pytest
from mpremote.transport import TransportError
from mpremote.transport_serial import SerialTransport

from host_tools import boards
from simulator.rom.board import VirtualBoard


class _Main:
    """A main_runner that records that main.py was started and stopped."""

    def __init__(self):
        self.started = threading.Semaphore(0)
        self.runs = 0
        self.stopped = 0

    def __call__(self, vboard):
        self.runs += 1
        self.started.release()
        return self

    def stop(self):
        self.stopped += 1


@pytest.fixture
def board(tmp_path):
    b = VirtualBoard("esp32c3", tmp_path / "flash.bin", mode="app", board=boards.load("esp32c3"))
    yield b
    b.close()


def _open(board):
    t = SerialTransport(board.port, baudrate=115200)
    t.enter_raw_repl(soft_reset=False)
    return t


def test_mpremote_writes_lists_and_hashes_files_on_the_board_flash(board, tmp_path):
    t = _open(board)
    try:
        data = bytes(range(256)) * 40
        t.fs_mkdir("/lib")
        t.fs_writefile("/lib/blob.bin", data)
        names = {e.name: e.st_size for e in t.fs_listdir("/lib")}
        assert names == {"blob.bin": len(data)}
        digest = t.eval("__import__('hashlib').sha256(open('/lib/blob.bin','rb').read()).digest()")
        assert digest == hashlib.sha256(data).digest()
        assert t.use_raw_paste  # the unix port answered raw-paste mode (flow control on)
        # Ctrl-D on an empty raw REPL line: a soft reset back into the raw REPL;
        # the file is on the flash, not in the interpreter
        t.enter_raw_repl(soft_reset=True)
        assert t.fs_readfile("/lib/blob.bin") == data
        t.exit_raw_repl()
    finally:
        t.close()
    # the file system is in the flash file's last fs_bytes (LittleFS2's magic)
    fs_at = 4 * 1024 * 1024 - boards.load("esp32c3")["flash"]["fs_bytes"]
    assert b"littlefs" in (tmp_path / "flash.bin").read_bytes()[fs_at:fs_at + 8192]


def test_friendly_repl_soft_reset_runs_main_and_ctrl_c_interrupts_it(tmp_path):
    main = _Main()
    b = VirtualBoard("esp32", tmp_path / "flash.bin", mode="app", board=boards.load("esp32"),
                     main_runner=main)
    try:
        assert main.started.acquire(timeout=10)  # the boot ran main.py
        t = SerialTransport(b.port, baudrate=115200)
        try:
            t.enter_raw_repl(soft_reset=False)  # Ctrl-C ends main.py, then the raw REPL
            assert main.stopped == 1
            assert t.eval("1 + 2") == 3
            t.exit_raw_repl()  # Ctrl-B: the friendly REPL
            t.serial.write(b"\x04")  # Ctrl-D at the prompt: soft reset, main.py again
            assert main.started.acquire(timeout=10)
            assert main.runs == 2
            assert t.read_until(1, b"MPY: soft reboot\r\n", timeout=10).endswith(b"soft reboot\r\n")
        finally:
            t.close()
    finally:
        b.close()


def test_a_pulled_cable_ends_a_transfer(tmp_path):
    b = VirtualBoard("esp32c3", tmp_path / "flash.bin", mode="app", board=boards.load("esp32c3"),
                     pull_cable_after_bytes=3000)
    try:
        t = SerialTransport(b.port, baudrate=115200)
        t.enter_raw_repl(soft_reset=False)
        with pytest.raises(Exception) as err:
            t.fs_writefile("/big.bin", b"\x55" * 20000)
        assert b.closed
        assert isinstance(err.value, (TransportError, OSError)), repr(err.value)
        assert "cable pulled" in b.events
    finally:
        b.close()


def test_a_main_py_that_raises_leaves_the_board_in_its_repl(tmp_path):
    from simulator.rom import main_py
    b = VirtualBoard("esp32c3", tmp_path / "flash.bin", mode="app", board=boards.load("esp32c3"),
                     main_runner=main_py.runner())
    try:
        t = SerialTransport(b.port, baudrate=115200)
        try:
            t.enter_raw_repl(soft_reset=False)
            t.fs_writefile("/main.py", b"raise ValueError('boom at boot')\n")
            t.exit_raw_repl()
            t.read_until(1, b">>> ", timeout=10)  # the friendly REPL's banner
            t.serial.write(b"\x04")  # soft reset: main.py runs in the simulator, and raises
            seen = t.read_until(1, b">>> ", timeout=30)
            assert b"MPY: soft reboot" in seen and b"ValueError: boom at boot" in seen, seen
            assert b.app.state == "repl"
        finally:
            t.close()
    finally:
        b.close()
