"""Peripheral chip models (docs/simulator.md, "Peripheral chips").

Each module runs twice: in the board, beside the firmware (as `_chip_<kind>`),
where the drivers talk to it, and on the host, where the world acts on it.
They are written for both MicroPython and CPython.
"""
