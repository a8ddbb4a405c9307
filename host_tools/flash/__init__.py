"""`anju flash`: MicroPython onto a bare board (docs/flashing.md).

    images.py     ESP image and UF2 checks (pure: bytes in, facts or a refusal out)
    firmware.py   which MicroPython image each board needs, and where it is looked for
    esp.py        ESP32 / ESP32-C3 through esptool's Python API (esptool.cmds)
    pico.py       Pico W: the UF2 copied onto the BOOTSEL drive
    progress.py   a bar on a terminal, plain lines otherwise
    cli.py        the subcommand

Exceptions: FlashError is the root.

    FlashError
     ├─ Refused        the board, the chip and the image do not agree; nothing was written
     │   └─ ImageError the file is not a valid image (bad magic, checksum, UF2 block)
     └─ FlashFailed    the board stopped answering, or a write did not verify

esptool's errors (FatalError, serial.SerialException, OSError) are translated
into these in esp.py, with `raise ... from`.
"""


class FlashError(Exception):
    """Flashing did not happen or did not finish; the message says why."""


class Refused(FlashError):
    """Refused before anything was written."""


class ImageError(Refused):
    """The file is not a valid image of the kind the board takes."""


class FlashFailed(FlashError):
    """Writing started and did not finish, or the written flash does not verify."""
