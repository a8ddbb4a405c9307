"""The virtual board: a chip's ROM loader on a pty, with a devkit's auto-reset
circuit and, in front, an RFC 2217 port that carries the DTR/RTS lines.

    esptool ──rfc2217://127.0.0.1:P──> RFC 2217 server ──pty──> VirtualBoard
                  (telnet: data, DTR/RTS)  (the "USB-UART bridge")   (chip)

A pty has no modem lines, so a tool that opens the pty's path (`board.port`)
cannot reset the chip: the board then has to be started in download mode
(`mode="download"`, the default). Through `serve_rfc2217()` the lines reach
the board as on a DevKitC or DevKitM-1: RTS drives EN and DTR drives IO0
through the usual two transistors (EN is pulled low only while RTS is
asserted and DTR is not; IO0 only while DTR is asserted and RTS is not). The
chip starts `rc_delay_s` after EN rises (the RC on EN), reading IO0 then:
low is download mode (the ROM prints "waiting for download" and answers the
protocol), high runs the app (the ROM's boot line; the image is not run).

The RFC 2217 server is pyserial's, with the port manager of esptool's own
`esp_rfc2217_server`: DTR and RTS cannot cross RFC 2217 with the timing a
reset needs (each change is a request pyserial's client waits ~50 ms to see
confirmed, so the sequence would pass through EN high with IO0 high long
enough to start the app), so that manager sees the start of esptool's reset
sequence and plays it on the bridge locally. It plays the classic sequence
(DTR and RTS one after the other): the "tight" one sets both with one ioctl,
which a pty does not have.

With `board=` (a boards/*.json description) the app is MicroPython: after a
reset into the app the pty is the board's REPL on its LittleFS2 file system
in the flash file (simulator/rom/app.py), and `main_runner` runs main.py
in the simulator (simulator/rom/main_py.py). Without it the app is not
modelled: the ROM's boot line, and nothing answers.

`pull_cable()` is a pulled USB cable: the pty and the RFC 2217 port close.
`pull_cable_after_blocks=N` does it on its own when the N-th flash data block
arrives, before answering it; `pull_cable_after_bytes=N` when the N-th byte
from the host reaches the app. `stuck_byte=ADDR` is a worn flash cell: bit 0
of that byte stays 1 whatever is written. `commands` is every command received, in order
(simulator/rom/loader.py names them), and `events` the resets and boots.
"""
import mmap
import os
import select
import socket
import threading
import tty
from pathlib import Path

import serial
from esp_rfc2217_server.esp_port_manager import EspPortManager
from esptool.reset import DEFAULT_RESET_DELAY, ClassicReset

from simulator.rom import chips, slip
from simulator.rom.loader import RomLoader

MODES = ("download", "app")


class BoardError(Exception):
    """The virtual board could not be made (bad flash file, unknown chip)."""


class VirtualBoard:
    def __init__(self, chip, flash_path, *, mode="download", flash_size=chips.FLASH_SIZE,
                 pull_cable_after_blocks=None, stuck_byte=None, rc_delay_s=0.025,
                 board=None, main_runner=None, pull_cable_after_bytes=None, firmware=None):
        if mode not in MODES:
            raise BoardError("mode '%s' is not one of %s" % (mode, ", ".join(MODES)))
        try:
            self.chip = chips.make(chip) if isinstance(chip, str) else chip
        except ValueError as exc:
            raise BoardError(str(exc)) from exc
        self.flash_path = Path(flash_path)
        if not self.flash_path.exists():
            self.flash_path.write_bytes(b"\xff" * flash_size)
        elif self.flash_path.stat().st_size != flash_size:
            raise BoardError("%s: %d bytes, but the flash is %d bytes"
                             % (flash_path, self.flash_path.stat().st_size, flash_size))
        self._flash_file = open(self.flash_path, "r+b")
        self.flash = mmap.mmap(self._flash_file.fileno(), flash_size)
        self.commands = []
        self.events = []
        self.mode = mode
        self.pull_cable_after_blocks = pull_cable_after_blocks
        self.rc_delay_s = rc_delay_s
        self.stuck_byte = stuck_byte
        self._blocks = 0
        self._lock = threading.RLock()
        self._loader = self._new_loader()
        self._decoder = slip.Decoder()
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._wake_r, self._wake_w = os.pipe()
        self._closed = False
        self._dtr = self._rts = False
        self._boot_timer = None
        self._server = None
        self.app = None
        if board is not None:
            self.app = self._new_app(board, flash_size, main_runner, pull_cable_after_bytes,
                                     firmware)
        self._thread = threading.Thread(target=self._run, name="virtual-%s" % self.chip.name,
                                        daemon=True)
        self._thread.start()
        if self.mode == "app" and self.app is not None:
            self._boot("app")

    def _new_app(self, board, flash_size, main_runner, pull_cable_after_bytes, firmware):
        """MicroPython on the board (simulator/rom/app.py), its file system in
        the last `flash.fs_bytes` of the flash as the board file says."""
        from simulator.rom.app import App
        fl = board.get("flash", {})
        fs_bytes = fl.get("fs_bytes", 0)
        bs = fl.get("block_size", 4096)
        if not 0 < fs_bytes <= flash_size or fs_bytes % bs:
            raise BoardError("board %s: flash.fs_bytes %r does not fit a %d-byte flash"
                             % (board.get("name"), fs_bytes, flash_size))
        self.board = board
        return App(self, flash_size - fs_bytes, fs_bytes // bs, bs, main_runner,
                   pull_cable_after_bytes, firmware)

    @property
    def closed(self):
        return self._closed

    def _new_loader(self):
        loader = RomLoader(self.chip, self.flash, self.stuck_byte)
        loader.log = self.commands
        return loader

    # -- the line: bytes in, responses out ----------------------------------
    def _run(self):
        try:
            while not self._closed:
                ready, _, _ = select.select([self._master, self._wake_r], [], [], 0.5)
                if self._wake_r in ready or self._closed:
                    break
                if self._master in ready:
                    try:
                        data = os.read(self._master, 65536)
                    except OSError:
                        break
                    if not data:
                        break
                    self._received(data)
        finally:
            self._close_line()

    def _received(self, data):
        with self._lock:
            if self.mode == "app" and self.app is not None:
                self.app.feed(data)
                return
            if self.mode != "download":
                return  # in reset nothing listens; the app ignores the ROM protocol
            for packet in self._decoder.feed(data):
                if self._closed or self.mode != "download":
                    return
                if self._fault_now(packet):
                    self.pull_cable()
                    return
                for response in self._loader.handle(packet):
                    self._send(slip.encode(response))
                if self._loader.run_requested:
                    self._boot("app")

    def _fault_now(self, packet):
        if (self.pull_cable_after_blocks is None or len(packet) < 2 or packet[0] != 0
                or packet[1] not in (0x03, 0x11)):
            return False
        self._blocks += 1
        return self._blocks >= self.pull_cable_after_blocks

    def _send(self, data):
        try:
            os.write(self._master, data)
        except OSError:
            pass  # the cable is gone

    # -- reset circuit -------------------------------------------------------
    def set_lines(self, dtr=None, rts=None):
        """DTR/RTS as the USB-UART bridge drives them (True: asserted)."""
        with self._lock:
            was_in_reset = self._en_low()
            if dtr is not None:
                self._dtr = bool(dtr)
            if rts is not None:
                self._rts = bool(rts)
            if self._en_low():
                if not was_in_reset:
                    self.events.append("reset")
                self.mode = "reset"
                self._cancel_boot()
                if self.app is not None:
                    self.app.stop()
            elif was_in_reset:
                self._cancel_boot()
                self._boot_timer = threading.Timer(self.rc_delay_s, self._boot_from_strap)
                self._boot_timer.daemon = True
                self._boot_timer.start()

    def _en_low(self):
        return self._rts and not self._dtr

    def _io0_low(self):
        return self._dtr and not self._rts

    def _cancel_boot(self):
        if self._boot_timer is not None:
            self._boot_timer.cancel()
            self._boot_timer = None

    def _boot_from_strap(self):
        with self._lock:
            if self._closed or self._en_low():
                return
            self._boot_timer = None
            self._boot("download" if self._io0_low() else "app")

    def _boot(self, mode):
        self.mode = mode
        self.events.append("boot:" + mode)
        self._loader = self._new_loader()
        self._decoder = slip.Decoder()
        if mode == "download":
            if self.app is not None:
                self.app.stop()
            self._send(self.chip.banner_download)
        elif self.app is not None:
            self._send(self.chip.banner_app)
            self.app.boot()
        else:
            self._send(self.chip.banner_app + self._app_line())

    def _app_line(self):
        off = self.chip.app_offset
        head = bytes(self.flash[off:off + 8])
        if head[0] == 0xE9:
            return b"virtual board: ESP image at 0x%x, %d segment(s), not run\r\n" % (off, head[1])
        return b"invalid header: 0x%08x\r\n" % int.from_bytes(head[:4], "little")

    # -- RFC 2217 --------------------------------------------------------------
    def serve_rfc2217(self, host="127.0.0.1", port=0):
        """Start the RFC 2217 port in front of the pty; returns its URL."""
        self._server = _Rfc2217Server(self, host, port)
        return self._server.url

    def close_rfc2217(self):
        """The RFC 2217 port goes away; the pty stays (a tool may open it next)."""
        if self._server is not None:
            self._server.close()
            self._server._thread.join(timeout=5)
            self._server = None

    # -- ends --------------------------------------------------------------------
    def pull_cable(self):
        """The USB cable comes out: the pty and the RFC 2217 port close."""
        with self._lock:
            if self._closed:
                return
            self.events.append("cable pulled")
            self._closed = True
            self._cancel_boot()
        if self.app is not None:
            self.app.stop()
        os.write(self._wake_w, b"x")
        if self._server is not None:
            self._server.close()
        if threading.current_thread() is self._thread:
            self._close_line()

    def _close_line(self):
        with self._lock:
            for fd in (self._master, self._slave):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._master = self._slave = -1

    def close(self):
        self.pull_cable()
        self._thread.join(timeout=5)
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            self.flash.flush()
            self.flash.close()
        except (BufferError, ValueError):
            pass
        self._flash_file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Bridge(serial.Serial):
    """The USB-UART bridge: data through the pty, the modem lines wired to the
    board's reset circuit instead of to ioctls a pty does not have."""

    def __init__(self, board):
        self._board = board
        super().__init__(board.port, 115200, timeout=0.05)

    def _update_dtr_state(self):
        self._board.set_lines(dtr=self._dtr_state)

    def _update_rts_state(self):
        self._board.set_lines(rts=self._rts_state)

    def _update_break_state(self):
        pass

    @property
    def cts(self):
        return True

    @property
    def dsr(self):
        return True

    @property
    def ri(self):
        return False

    @property
    def cd(self):
        return True


class _PortManager(EspPortManager):
    """esptool's RFC 2217 port manager, resetting with the classic sequence."""

    def _reset_thread(self):
        ClassicReset(self.serial, DEFAULT_RESET_DELAY)()


class _Rfc2217Server:
    """An RFC 2217 port over the bridge; one client at a time."""

    def __init__(self, board, host, port):
        self.board = board
        self.bridge = _Bridge(board)
        self.sock = socket.create_server((host, port))
        self.sock.settimeout(0.2)
        # ign_set_control: the client does not wait for line changes to be
        # confirmed (the port manager plays the reset itself): the URL
        # esp_rfc2217_server tells its users to open
        self.url = "rfc2217://%s:%d?ign_set_control" % (host, self.sock.getsockname()[1])
        self._conn = None
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="rfc2217", daemon=True)
        self._thread.start()

    def _accept(self):
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._conn = conn
            self._serve(conn)
            self._conn = None

    def _serve(self, conn):
        lock = threading.Lock()

        class _Writer:
            @staticmethod
            def write(data):
                with lock:
                    conn.sendall(data)

        manager = _PortManager(self.bridge, _Writer(), False)
        done = threading.Event()

        def to_client():
            while not done.is_set() and not self._closed:
                try:
                    data = self.bridge.read(self.bridge.in_waiting or 1)
                    if data:
                        _Writer.write(b"".join(manager.escape(data)))
                    manager.check_modem_lines()
                except (OSError, serial.SerialException, TypeError):
                    break
            done.set()

        reader = threading.Thread(target=to_client, name="rfc2217-out", daemon=True)
        reader.start()
        conn.settimeout(0.2)
        try:
            while not done.is_set() and not self._closed:
                try:
                    data = conn.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    break
                self.bridge.write(b"".join(manager.filter(data)))
        except (OSError, serial.SerialException, TypeError):
            pass
        finally:
            done.set()
            reader.join(timeout=2)
            try:
                conn.close()
            except OSError:
                pass
            # closing a tty drops DTR and RTS (HUPCL): EN and IO0 both stay high
            if not self._closed:
                self.board.set_lines(dtr=False, rts=False)

    def close(self):
        self._closed = True
        for s in (self._conn, self.sock):
            if s is not None:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                try:
                    s.close()
                except OSError:
                    pass
        try:
            self.bridge.close()
        except (OSError, serial.SerialException, TypeError):
            pass
