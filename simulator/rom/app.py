"""The virtual serial board in app mode: MicroPython running on the board.

After a reset with IO0 high the chip runs MicroPython: `main.py` from the
board's file system, then the REPL on the serial line. Here the REPL is the
real interpreter, the MicroPython unix port, on a pty of its own (its REPL
does raw REPL and raw-paste only when stdin is a tty), with the board's file
system (LittleFS2 in the last `flash.fs_bytes` of the flash file,
simulator/rom/repl_fs.py) mounted as `/`:

    host ──board pty──> VirtualBoard ──relay──> App ──inner pty──> micropython -i repl_fs.py

What the interpreter cannot do as a board does, the relay does:

- **Soft reset** (Ctrl-D at the friendly prompt, or on an empty raw REPL
  line): the unix port exits, so the relay prints the board's line and starts
  a fresh interpreter; from the friendly REPL it runs `main.py` first
  ("MPY: soft reboot"), from the raw REPL it goes back to the raw REPL
  without running it ("soft reboot"), as ports/esp32/main.c does.
- **main.py** runs in the simulator (simulator/device.py, the port's HAL
  modules, the board's flash as its file system) through `main_runner`; the
  unix port has no `machine`. Ctrl-C ends it and the REPL starts, as a
  KeyboardInterrupt in main.py does on a board; a main.py that stops by
  itself (a traceback) leaves the board in the REPL too. Without a runner,
  main.py is not run and the REPL comes at once.
- Which REPL is current is read from the interpreter's own output (the raw
  REPL's banner, the friendly prompt).

`firmware=(mpy, release)` models a board flashed with another MicroPython
build: `sys.implementation` reports that `_mpy` and version.

`pull_cable_after_bytes=N` pulls the cable when the N-th byte from the host
has arrived in app mode (a cable pulled in the middle of a transfer).
"""
import os
import select
import subprocess
import sys
import threading
import tty

REPL_FS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "repl_fs.py")
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
FRIENDLY_PROMPT = b">>> "
# the unix port's REPL runs with a heap like an ESP32's free heap after boot
HEAP = "heapsize=256k"

RUNNER = ("import sys, micropython_run\n"
          "sys.exit(micropython_run.run_main(['micropython', '-X', sys.argv[1], '-i'] + sys.argv[2:]))")


def _site_dir():
    from simulator.device import _site_dir as site_dir
    return site_dir()


class App:
    def __init__(self, board, fs_offset, fs_blocks, block_size, main_runner=None,
                 pull_cable_after_bytes=None, firmware=None):
        self.board = board
        self.fs = (fs_offset, fs_blocks, block_size)
        self.main_runner = main_runner
        self.pull_cable_after_bytes = pull_cable_after_bytes
        self.received = 0
        # (sys.implementation._mpy, "1.18.0"): a board flashed with another build (repl_fs.py)
        self.firmware = firmware
        self.state = "off"      # off | main | repl
        self.raw = False        # the interpreter is in its raw REPL
        self._proc = None
        self._master = -1
        self._main = None
        self._swallow = None    # output dropped up to and including this (a hidden restart)
        self._tail = b""
        self._lock = threading.RLock()
        self._reader = None

    # -- the board's side ---------------------------------------------------------
    def boot(self):
        """A hard reset into the app: main.py, then the REPL."""
        with self._lock:
            self._stop_all()
            self._run_main()

    def feed(self, data):
        with self._lock:
            self.received += len(data)
            if self.pull_cable_after_bytes is not None:
                if self.received >= self.pull_cable_after_bytes:
                    keep = len(data) - (self.received - self.pull_cable_after_bytes)
                    self._to_interpreter(data[:max(keep, 0)])
                    self.board.pull_cable()
                    return
            if self.state == "main":
                i = data.find(b"\x03")
                if i < 0:
                    return  # main.py does not read the REPL's input
                self._stop_main()
                self.board._send(b"Traceback (most recent call last):\r\n"
                                 b'  File "main.py"\r\nKeyboardInterrupt: \r\n')
                self._start_repl()
                data = data[i + 1:]  # what came after the Ctrl-C is the REPL's
            self._to_interpreter(data)

    def main_ended(self, main, error):
        """main.py stopped by itself (a crash, main returning): the REPL comes."""
        with self._lock:
            if main is not self._main or self.state != "main":
                return
            self._main = None
            text = str(error) if error is not None else "main.py returned"
            self.board._send(text.replace("\n", "\r\n").encode("utf-8", "replace") + b"\r\n")
            self._start_repl()

    def stop(self):
        with self._lock:
            self._stop_all()
            self.state = "off"

    # -- main.py --------------------------------------------------------------------
    def _run_main(self):
        if self.main_runner is None:
            self._start_repl()
            return
        self.state = "main"
        self._main = self.main_runner(self.board)

    def _stop_main(self):
        main, self._main = self._main, None
        if main is not None:
            main.stop()

    # -- the interpreter ----------------------------------------------------------------
    def _start_repl(self, raw=False):
        master, slave = os.openpty()
        tty.setraw(slave)
        off, blocks, bs = self.fs
        env = dict(os.environ, PYTHONPATH=_site_dir())
        self._proc = subprocess.Popen(
            [sys.executable, "-S", "-c", RUNNER, HEAP, REPL_FS, str(self.board.flash_path),
             str(off), str(blocks), str(bs)]
            + ([str(self.firmware[0]), self.firmware[1]] if self.firmware else []),
            stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
        os.close(slave)
        self._master = master
        self.state = "repl"
        self.raw = False
        self._tail = b""
        self._swallow = None
        if raw:
            # back to the raw REPL without its friendly banner, as a board's
            # raw-REPL soft reset does
            self._swallow = FRIENDLY_PROMPT
            os.write(master, b"\x01")
        self._reader = threading.Thread(target=self._relay, args=(self._proc, master),
                                        name="app-repl", daemon=True)
        self._reader.start()

    def _to_interpreter(self, data):
        if self.state != "repl" or self._master < 0 or not data:
            return
        try:
            os.write(self._master, data)
        except OSError:
            pass  # it is exiting: the relay restarts it

    def _relay(self, proc, master):
        while True:
            try:
                ready, _, _ = select.select([master], [], [], 0.5)
            except (OSError, ValueError):
                break
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:
                break  # the interpreter exited (EIO once the slave is gone)
            if not data:
                break
            with self._lock:
                if proc is not self._proc:
                    return
                self._output(data)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
        with self._lock:
            if proc is not self._proc:
                return
            try:
                os.close(master)
            except OSError:
                pass
            self._master = -1
            self._proc = None
            if self.board.closed:
                return
            self._soft_reset()

    def _output(self, data):
        if self._swallow is not None:
            buf = self._tail + data
            i = buf.find(self._swallow)
            if i < 0:
                self._tail = buf[-len(self._swallow):]
                return
            data = buf[i + len(self._swallow):]
            self._swallow = None
            self._tail = b""
        seen = self._tail + data
        raw_at = seen.rfind(RAW_BANNER)
        friendly_at = seen.rfind(FRIENDLY_PROMPT)
        if raw_at >= 0 or friendly_at >= 0:
            self.raw = raw_at > friendly_at
        self._tail = seen[-32:]
        self.board._send(data)

    def _soft_reset(self):
        if self.raw:
            self.board._send(b"soft reboot\r\n")
            self._start_repl(raw=True)
        else:
            self.board._send(b"MPY: soft reboot\r\n")
            self._run_main()

    def _stop_all(self):
        self._stop_main()
        proc, master = self._proc, self._master
        self._proc = None
        self._master = -1
        if proc is not None:
            try:
                os.killpg(proc.pid, 9)
            except OSError:
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if master >= 0:
            try:
                os.close(master)
            except OSError:
                pass
