"""Which MicroPython image each board needs, where it goes on the chip, and
where `anju flash` looks for it when no --firmware is given. Nothing is ever
downloaded: the operator fetches the file from MicroPython's download page
and puts it in FIRMWARE_DIR (or names it with --firmware)."""
from pathlib import Path

from host_tools.flash import Refused

MICROPYTHON = "1.27.0"
FIRMWARE_DIR = Path("var") / "firmware"

# mcu -> what MicroPython builds for it (docs/flashing.md)
IMAGES = {
    "esp32": {"board": "ESP32_GENERIC", "ext": ".bin", "offset": 0x1000},
    "esp32c3": {"board": "ESP32_GENERIC_C3", "ext": ".bin", "offset": 0x0},
    "rp2040": {"board": "RPI_PICO_W", "ext": ".uf2", "offset": None},
}


def image_for(board):
    try:
        return IMAGES[board["mcu"]]
    except KeyError:
        raise Refused("board %s: anju flash has no image for mcu '%s' (it flashes %s)"
                      % (board["name"], board["mcu"], ", ".join(sorted(IMAGES)))) from None


def page(image):
    return "https://micropython.org/download/%s/" % image["board"]


def pattern(image):
    return "%s-*-v%s%s" % (image["board"], MICROPYTHON, image["ext"])


def needed(board, firmware_dir=FIRMWARE_DIR):
    """What to tell an operator who has no image yet."""
    image = image_for(board)
    where = ("written at 0x%x" % image["offset"] if image["offset"] is not None
             else "copied onto the BOOTSEL drive")
    return ("board %s (%s) needs MicroPython %s built for %s: the file %s from %s "
            "(the v%s release, not a preview build; %s). Put it in %s/ or pass it with "
            "--firmware FILE; anju flash never downloads anything."
            % (board["name"], board["title"], MICROPYTHON, image["board"], pattern(image),
               page(image), MICROPYTHON, where, firmware_dir))


def find(board, firmware_dir=FIRMWARE_DIR):
    """The one image in `firmware_dir` matching the board, or Refused saying what is needed."""
    image = image_for(board)
    found = sorted(Path(firmware_dir).glob(pattern(image))) if Path(firmware_dir).is_dir() else []
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise Refused("%s holds %d images for %s (%s); pass the one to write with --firmware"
                      % (firmware_dir, len(found), image["board"],
                         ", ".join(p.name for p in found)))
    raise Refused("no firmware given. " + needed(board, firmware_dir))
