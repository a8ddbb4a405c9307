"""ESP32 and ESP32-C3 through esptool's Python API.

The order is the point: everything that can refuse does so before the first
flash command is sent.

 1. the image is an ESP image for the board's chip, built for no more flash
    than the board has, and fits below the board's file system
    (images.check_esp_image_for, fits) - before the port is opened
 2. `esptool.cmds.detect_chip` resets the chip into its ROM loader (DTR/RTS)
    and reads what it is; it must be the board's mcu
 3. `change_baud`, `attach_flash`, `detect_flash_size`: the flash chip must be
    at least as large as the board file says
 4. `run_stub` unless told not to (below), then
    `write_flash` (deflate-compressed blocks; esptool checks each block's
    answer and the MD5 of the written region), then `verify_flash` (the
    flash's MD5 against the image's once more), then `reset_chip` (hard reset
    through RTS: the app starts)

After the chip check esptool's flasher stub is uploaded (`cmds.run_stub`),
as esptool does by default: it writes 16 KB blocks and reads the flash back
faster than the ROM. `stub=False` (`--no-stub`) talks to the ROM loader
itself, which has every command this needs (compressed writes, MD5).
"""
import contextlib
import sys

import serial

from host_tools.flash import FlashFailed, Refused, firmware, images
from host_tools.flash.progress import Progress

ROM_BAUD = 115200


def fits(board, offset, length, where):
    """The image must end below the board's file system (MicroPython's ESP32
    partition table puts it in the last `fs_bytes` of the flash)."""
    flash = board["flash"]
    limit = flash["size_bytes"] - flash["fs_bytes"]
    if offset + length > limit:
        raise Refused("%s: %d bytes at 0x%x end at 0x%x, past 0x%x where board %s keeps its "
                      "%d-byte file system (flash %d bytes)"
                      % (where, length, offset, offset + length, limit, board["name"],
                         flash["fs_bytes"], flash["size_bytes"]))


def open_port(port):
    """The serial port as esptool would open it (exclusive, pyserial URLs such
    as rfc2217://host:port allowed), but with esptool's default command
    timeout (3 s) as the port's own: esptool sets the timeout around each
    command only when it differs, and over RFC 2217 every change is a
    round of negotiation (about 0.3 s per command)."""
    try:
        return serial.serial_for_url(port, exclusive=True, timeout=3)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise FlashFailed("cannot open %s: %s" % (port, _first_line(exc))) from exc


def mcu_of(esp):
    """esptool's CHIP_NAME as boards/*.json spell the mcu: ESP32-C3 -> esp32c3."""
    return esp.CHIP_NAME.lower().replace("-", "")


def flash(board, port, data, where, baud=460800, stub=True, out=None, progress_stream=None,
          verbose=False):
    """Write `data` (an image file's bytes, named `where`) to the board on `port`.
    Returns a dict of what was found and done. Raises Refused or FlashFailed."""
    from esptool import cmds
    from esptool.util import FatalError

    mcu = board["mcu"]
    offset = firmware.image_for(board)["offset"]
    info = images.check_esp_image_for(data, mcu, where)
    fits(board, offset, len(data), where)
    if info["flash_size"] is not None and info["flash_size"] > board["flash"]["size_bytes"]:
        raise Refused("%s is built for %d MB of flash, board %s has %d MB"
                      % (where, info["flash_size"] >> 20, board["name"],
                         board["flash"]["size_bytes"] >> 20))
    say = out or (lambda line: None)
    # esptool counts what it sends: the compressed stream when compression helps
    log = _EsptoolLog(Progress("writing", progress_stream, unit="bytes sent"), verbose)
    with log.installed():
        line = open_port(port)
        try:
            esp = cmds.detect_chip(line, ROM_BAUD, "default-reset")
        except (FatalError, serial.SerialException, OSError) as exc:
            line.close()
            raise FlashFailed("no ESP chip answered on %s: %s (is the board on this port? A "
                              "port without DTR/RTS cannot reset it: hold BOOT and press RESET "
                              "to put it in download mode)" % (port, _first_line(exc))) from exc
        try:
            chip = mcu_of(esp)
            description = esp.get_chip_description()
            if chip != mcu:
                raise Refused("the chip on %s is an %s (%s), but board %s is an %s; nothing was "
                              "written (check --board, or the board on the port)"
                              % (port, esp.CHIP_NAME, description, board["name"],
                                 images.chip_label(mcu)))
            mac = ":".join("%02x" % b for b in esp.read_mac())
            say("found %s, MAC %s, on %s" % (description, mac, port))
            if stub:
                esp = cmds.run_stub(esp)
            if baud != ROM_BAUD:
                esp.change_baud(baud)
            cmds.attach_flash(esp)
            size_name = cmds.detect_flash_size(esp)
            size = _size_bytes(size_name)
            if size is None:
                raise Refused("the flash chip on %s did not report a size (JEDEC id 0x%06x); "
                              "nothing was written" % (port, esp.flash_id()))
            if size < board["flash"]["size_bytes"]:
                raise Refused("the chip on %s has %s of flash, board %s says %d bytes; "
                              "nothing was written" % (port, size_name, board["name"],
                                                       board["flash"]["size_bytes"]))
            if offset + len(data) > size:
                raise Refused("%s (%d bytes at 0x%x) does not fit the %s flash"
                              % (where, len(data), offset, size_name))
            say("writing %s (%d bytes, %s image) at 0x%x"
                % (where, len(data), images.chip_label(mcu), offset))
            log.stage_name = "writing"
            cmds.write_flash(esp, [(offset, data)], compress=True, flash_size="keep")
            log.stage_name = None
            cmds.verify_flash(esp, [(offset, data)], flash_size="keep")
            say("verified: the flash's MD5 matches the image")
            cmds.reset_chip(esp, "hard-reset")
            say("reset: %s runs the new firmware" % board["name"])
        except Refused:
            raise
        except (FatalError, serial.SerialException, OSError) as exc:
            msg = _first_line(exc)
            if isinstance(exc, FatalError) and any(
                    w in msg for w in ("MD5", "Verification failed", "region is empty")):
                raise FlashFailed("%s was written to the board on %s, but the flash does not "
                                  "verify (%s); flash it again" % (where, port, msg)) from exc
            if log.stage_name == "writing":
                raise FlashFailed("the board on %s stopped answering while writing (%d of %d "
                                  "bytes sent): %s; the flash is partly written, flash it again"
                                  % (port, log.progress.done, log.progress.total, msg)) from exc
            raise FlashFailed("the board on %s stopped answering: %s" % (port, msg)) from exc
        finally:
            try:
                line.close()  # the port anju opened and esptool used
            except (OSError, serial.SerialException):
                pass
    return {"chip": chip, "description": description, "mac": mac, "flash": size_name,
            "offset": offset, "image_chip_id": info["chip_id"], "stub": esp.IS_STUB}


def _size_bytes(name):
    if not name:
        return None
    units = {"KB": 1024, "MB": 1024 * 1024}
    return int(name[:-2]) * units[name[-2:]]


def _first_line(exc):
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


class _EsptoolLog:
    """esptool's output: progress to our bar, the rest kept (shown with --verbose).

    Installed as esptool's logger (an `esp_pylib.logger.EspLogBase`, esptool's
    documented way to redirect its output) for the length of one flash."""

    def __init__(self, progress, verbose):
        self.progress = progress
        self.verbose = verbose
        self.lines = []
        self.stage_name = None
        self._partial = ""

    def installed(self):
        from esp_pylib.logger import EspLog, EspLogBase

        owner = self

        class Log(EspLogBase):
            def print(self, *args, **kwargs):
                owner._text(" ".join(str(a) for a in args) + kwargs.get("end", "\n"))

            def err(self, *args, suggestion=None):
                owner._text("error: " + " ".join(str(a) for a in args) + "\n")

            def warn(self, *args, suggestion=None):
                owner._text("warning: " + " ".join(str(a) for a in args) + "\n")

            warning = warn
            error = err

            def note(self, *args):
                owner._text("note: " + " ".join(str(a) for a in args) + "\n")

            def hint(self, *args):
                owner._text("hint: " + " ".join(str(a) for a in args) + "\n")

            def debug(self, *args):
                pass

            def set_verbosity(self, mode):
                pass

            def progress_bar(self, cur_iter, total_iters, prefix="", suffix="", bar_length=30):
                if owner.stage_name == "writing":
                    owner.progress.update(cur_iter, total_iters)

        @contextlib.contextmanager
        def swap():
            before = EspLog.instance
            EspLog.instance = Log()
            try:
                yield self
            finally:
                EspLog.instance = before

        return swap()

    def _text(self, text):
        text = self._partial + text
        *done, self._partial = text.split("\n")
        for line in done:
            self.lines.append(line)
            if self.verbose:
                print("esptool: " + line, file=sys.stderr)
