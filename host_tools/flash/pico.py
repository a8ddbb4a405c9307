"""Pico W: MicroPython's UF2 copied onto the RP2040's BOOTSEL drive.

Holding BOOTSEL while plugging the board in makes it a USB drive (RPI-RP2)
holding INFO_UF2.TXT; a UF2 file written to it is flashed block by block by
the boot ROM, which then reboots into the new firmware and the drive goes
away. The ROM takes no other file and gives no answer, so everything is
checked before the copy: the drive is an RP2040's, every block of the file is
a UF2 block for the RP2040 family in order, and it writes only the board's
flash below its file system (MicroPython keeps that in the last `fs_bytes`). There is nothing to read back afterwards: the drive is gone.
"""
import os
from pathlib import Path

from host_tools.flash import FlashFailed, Refused, images
from host_tools.flash.progress import Progress

MOUNT_ROOTS = ("/media", "/run/media")
INFO = "INFO_UF2.TXT"
CHUNK = 64 * 1024


def drive_info(drive):
    """INFO_UF2.TXT's `Key: value` lines, or Refused if `drive` is no BOOTSEL drive."""
    path = Path(drive) / INFO
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError:
        raise Refused("%s is not a BOOTSEL drive (no %s): hold BOOTSEL while plugging the "
                      "Pico W in, then give its mount point with --port" % (drive, INFO)) from None
    info = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip()] = value.strip()
    board_id = info.get("Board-ID", "")
    if not board_id.startswith("RPI-RP2"):
        raise Refused("%s is a UF2 drive of another board (Board-ID '%s'; a Pico W's RP2040 "
                      "says RPI-RP2)" % (drive, board_id or "none"))
    return info


def find_drive(roots=MOUNT_ROOTS, depth=3):
    """The one mounted drive under `roots` that holds INFO_UF2.TXT."""
    found = []
    for root in roots:
        base = Path(root)
        if not base.is_dir():
            continue
        for level in range(1, depth + 1):
            found += [p.parent for p in base.glob("/".join(["*"] * level) + "/" + INFO)]
    found = sorted(set(found))
    if len(found) == 1:
        return found[0]
    if not found:
        raise Refused("no BOOTSEL drive (a mounted drive with %s) under %s: hold BOOTSEL while "
                      "plugging the Pico W in, or give its mount point with --port"
                      % (INFO, ", ".join(roots)))
    raise Refused("%d BOOTSEL drives mounted (%s); give the one to write with --port"
                  % (len(found), ", ".join(str(p) for p in found)))


def flash(board, drive, data, where, out=None, progress_stream=None):
    say = out or (lambda line: None)
    drive = Path(drive) if drive else find_drive()
    info = drive_info(drive)
    flash = board["flash"]
    checked = images.uf2(data, where, images.RP2040_FAMILY, flash["size_bytes"])
    fs_start = images.RP2040_FLASH + flash["size_bytes"] - flash["fs_bytes"]
    if checked["end"] > fs_start:
        raise Refused("%s writes up to 0x%08x, into the file system board %s keeps from 0x%08x "
                      "(the last %d bytes of its flash)"
                      % (where, checked["end"], board["name"], fs_start, flash["fs_bytes"]))
    say("found BOOTSEL drive %s (%s, %s)" % (drive, info.get("Board-ID"),
                                              info.get("Model", "model not given")))
    say("copying %s (%d UF2 blocks, flash 0x%08x..0x%08x)"
        % (where, checked["blocks"], checked["first"], checked["end"]))
    target = drive / Path(where).name
    progress = Progress("copying", progress_stream)
    try:
        with open(target, "wb") as f:
            for i in range(0, len(data), CHUNK):
                f.write(data[i:i + CHUNK])
                f.flush()
                progress.update(min(i + CHUNK, len(data)), len(data))
            os.fsync(f.fileno())
    except OSError as exc:
        raise FlashFailed("copying to %s failed after %d of %d bytes: %s; the board stays in "
                          "BOOTSEL mode, copy it again" % (drive, progress.done, len(data), exc)) from exc
    say("copied: the Pico W flashes it and restarts into MicroPython")
    return {"drive": str(drive), "blocks": checked["blocks"]}
