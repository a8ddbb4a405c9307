"""`anju flash --board NAME --port PORT [--firmware FILE] [--baud N]`

Exit codes: 0 flashed (and verified, on ESP boards), 1 flashing started and
failed (the board stopped answering, the flash did not verify, no chip
answered), 2 refused before anything was written (wrong board, chip or
image; no image given; bad arguments).
"""
import sys
from pathlib import Path

from host_tools import boards
from host_tools.flash import FlashFailed, Refused, firmware


def _err(msg, code):
    print("anju: error: %s" % msg, file=sys.stderr)
    return code


def cmd_flash(args):
    try:
        board = boards.load(args.board)
    except boards.BoardError as exc:
        return _err(str(exc), 2)
    say = print
    try:
        image = firmware.image_for(board)
        path = Path(args.firmware) if args.firmware else firmware.find(board, args.firmware_dir)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise Refused("cannot read %s: %s" % (path, exc.strerror or exc)) from exc
        if image["ext"] == ".uf2":
            from host_tools.flash import pico
            pico.flash(board, args.port, data, str(path), out=say)
        else:
            if not args.port:
                raise Refused("--port is needed for board %s: the serial port it is on "
                              "(/dev/ttyUSB0, /dev/ttyACM0, or a pyserial URL such as "
                              "rfc2217://host:port)" % board["name"])
            from host_tools.flash import esp
            esp.flash(board, args.port, data, str(path), baud=args.baud, stub=not args.no_stub,
                      out=say, verbose=args.verbose)
    except Refused as exc:
        return _err(str(exc), 2)
    except FlashFailed as exc:
        return _err(str(exc), 1)
    say("flashed %s with %s" % (board["name"], path.name))
    return 0


def register(sub):
    f = sub.add_parser("flash", help="write MicroPython onto a board (docs/flashing.md)",
                       description="Write MicroPython onto a bare board: ESP32 and ESP32-C3 "
                                   "over their serial port with esptool, Pico W by copying "
                                   "the UF2 onto its BOOTSEL drive. The image is checked "
                                   "against the board before anything is written.")
    f.add_argument("--board", required=True, help="board name (anju boards)")
    f.add_argument("--port", help="ESP boards: serial port or pyserial URL; Pico W: the BOOTSEL "
                                  "drive's mount point (default: found by its INFO_UF2.TXT "
                                  "under /media and /run/media)")
    f.add_argument("--firmware", help="the MicroPython image (default: the one in --firmware-dir; "
                                      "without it anju flash says which file the board needs)")
    f.add_argument("--firmware-dir", default=str(firmware.FIRMWARE_DIR),
                   help="where images are looked for (default %(default)s)")
    f.add_argument("--baud", type=int, default=460800,
                   help="baud rate for the write, ESP boards (default %(default)s; the ROM "
                        "loader is reached at 115200 first)")
    f.add_argument("--no-stub", action="store_true",
                   help="ESP boards: talk to the ROM loader itself instead of uploading "
                        "esptool's flasher stub (slower)")
    f.add_argument("-v", "--verbose", action="store_true", help="show esptool's own output")
    f.set_defaults(func=cmd_flash)
