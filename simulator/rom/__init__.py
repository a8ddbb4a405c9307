"""A virtual ESP32 / ESP32-C3 on a serial line: the ROM bootloader's download
protocol as esptool speaks it (docs/flashing.md).

    slip.py      SLIP framing, both directions
    chips.py     what each chip answers: registers, eFuses, security info, flash id
    loader.py    the ROM loader's commands over a flash image (no I/O)
    board.py     the board: a pty, the reset circuit on DTR/RTS, an RFC 2217 port

`python -m simulator.rom --chip esp32c3 --flash FILE` runs one and prints its ports.
"""
